//! `kiln build --ssh default|ID[=SOCKET]`: the SSH agents `RUN
//! --mount=type=ssh` reaches. As with docker buildx, a missing socket path
//! means `$SSH_AUTH_SOCK`. kiln relays agent sockets only (buildx also
//! loads key files into an agent of its own): a path that is not a socket is
//! refused with a hint. The socket path never enters a cache key, a layer or
//! the history; steps see a relay socket at the mount's target
//! (`/run/buildkit/ssh_agent.N` by default) and `SSH_AUTH_SOCK` pointing
//! at it.

use std::collections::HashMap;
use std::os::unix::fs::FileTypeExt;
use std::path::PathBuf;

/// Errors in `--ssh` values.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SshSpecError {
    #[error("invalid --ssh {0:?}: expected default|ID[=SOCKET]")]
    Syntax(String),
    #[error(
        "--ssh {id}: no agent socket given and SSH_AUTH_SOCK is not set (start ssh-agent, or pass --ssh {id}=/path/to/agent.sock)"
    )]
    NoAgent { id: String },
    #[error(
        "--ssh {id}={path}: not an agent socket (kiln forwards ssh-agent sockets only: add the key with ssh-add and pass the agent's socket)"
    )]
    NotASocket { id: String, path: String },
    #[error("--ssh {id}={path}: the socket cannot be read: {reason}")]
    Unreadable {
        id: String,
        path: String,
        reason: String,
    },
    #[error("--ssh {id}: one agent socket per id (got {count} paths)")]
    SeveralPaths { id: String, count: usize },
}

/// Parses `--ssh` values into agent sockets by id (`auth_sock` is the value
/// of `SSH_AUTH_SOCK`), checking that each path is a socket.
pub fn parse(
    values: &[String],
    auth_sock: Option<&str>,
) -> Result<HashMap<String, PathBuf>, SshSpecError> {
    let mut out = HashMap::new();
    for v in values {
        let (id, paths) = match v.split_once('=') {
            Some((id, p)) => (id, p.split(',').filter(|p| !p.is_empty()).collect()),
            None => (v.as_str(), Vec::new()),
        };
        if id.is_empty() || id.contains(',') {
            return Err(SshSpecError::Syntax(v.clone()));
        }
        let path = match paths.as_slice() {
            [] => auth_sock
                .filter(|s| !s.is_empty())
                .ok_or_else(|| SshSpecError::NoAgent { id: id.into() })?,
            [one] => one,
            more => {
                return Err(SshSpecError::SeveralPaths {
                    id: id.into(),
                    count: more.len(),
                });
            }
        };
        match std::fs::metadata(path) {
            Ok(m) if m.file_type().is_socket() => {}
            Ok(_) => {
                return Err(SshSpecError::NotASocket {
                    id: id.into(),
                    path: path.into(),
                });
            }
            Err(e) => {
                return Err(SshSpecError::Unreadable {
                    id: id.into(),
                    path: path.into(),
                    reason: e.to_string(),
                });
            }
        }
        out.insert(id.to_string(), PathBuf::from(path));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("agent.sock");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let s = sock.to_str().unwrap();
        let m = parse(&["default".into()], Some(s)).unwrap();
        assert_eq!(m["default"], sock);
        let m = parse(&[format!("gh={s}")], None).unwrap();
        assert_eq!(m["gh"], sock);
        assert_eq!(
            parse(&["default".into()], None).unwrap_err(),
            SshSpecError::NoAgent {
                id: "default".into()
            }
        );
        let file = dir.path().join("id_ed25519");
        std::fs::write(&file, "key").unwrap();
        assert!(matches!(
            parse(&[format!("default={}", file.display())], None).unwrap_err(),
            SshSpecError::NotASocket { .. }
        ));
        assert!(matches!(
            parse(&["default=/nonexistent/sock".into()], None).unwrap_err(),
            SshSpecError::Unreadable { .. }
        ));
        assert!(matches!(
            parse(&[format!("default={s},{s}")], None).unwrap_err(),
            SshSpecError::SeveralPaths { .. }
        ));
        assert!(parse(&["=x".into()], None).is_err());
    }
}
