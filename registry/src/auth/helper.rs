//! The docker credential-helper protocol: `docker-credential-<name> get`,
//! `store` and `erase`, with the server URL or a JSON document on stdin and a
//! JSON answer on stdout. Secrets travel only through the pipes.

use std::io::Write;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use super::{CredentialError, Credentials, Secret};

/// What a helper says when it has nothing for a server.
const NOT_FOUND: &str = "credentials not found in native keychain";

/// The program for a helper name (`desktop` → `docker-credential-desktop`).
pub(crate) fn program(name: &str) -> String {
    format!("docker-credential-{name}")
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperCredentials {
    #[serde(rename = "ServerURL", default)]
    server_url: String,
    username: String,
    secret: String,
}

/// Runs `program action` with `input` on stdin; returns (success, stdout,
/// stderr).
fn run(
    program: &str,
    action: &'static str,
    input: &[u8],
) -> Result<(bool, String, String), CredentialError> {
    let mut child = Command::new(program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| CredentialError::HelperMissing {
            program: program.to_string(),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading its input closes the pipe;
        // its exit status tells what happened.
        let _ = stdin.write_all(input);
    }
    let out = child
        .wait_with_output()
        .map_err(|source| CredentialError::HelperMissing {
            program: program.to_string(),
            source,
        })?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    ))
}

/// A short, single-line failure message from a helper's output.
fn failure_message(stdout: &str, stderr: &str) -> String {
    let text = if stderr.is_empty() { stdout } else { stderr };
    let line = text.lines().next().unwrap_or("").trim();
    let mut msg: String = line.chars().take(200).collect();
    if msg.is_empty() {
        msg = "it exited with an error and no message".into();
    }
    msg
}

/// Asks `program` for `server`'s credentials; `None` when it has none.
pub(crate) fn get(program: &str, server: &str) -> Result<Option<Credentials>, CredentialError> {
    let (ok, stdout, stderr) = run(program, "get", server.as_bytes())?;
    if !ok {
        if stdout.contains(NOT_FOUND) || stderr.contains(NOT_FOUND) {
            return Ok(None);
        }
        return Err(CredentialError::HelperFailed {
            program: program.to_string(),
            action: "get",
            registry: server.to_string(),
            message: failure_message(&stdout, &stderr),
        });
    }
    let creds: HelperCredentials =
        serde_json::from_str(&stdout).map_err(|source| CredentialError::HelperOutput {
            program: program.to_string(),
            registry: server.to_string(),
            source,
        })?;
    if creds.username == "<token>" {
        return Err(CredentialError::IdentityToken {
            registry: server.to_string(),
            held_by: program.to_string(),
        });
    }
    if creds.username.is_empty() && creds.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials {
        username: creds.username,
        password: Secret::new(creds.secret),
    }))
}

/// Gives `program` credentials to keep for `server`.
pub(crate) fn store(
    program: &str,
    server: &str,
    creds: &Credentials,
) -> Result<(), CredentialError> {
    let doc = HelperCredentials {
        server_url: server.to_string(),
        username: creds.username.clone(),
        secret: creds.password.expose().to_string(),
    };
    let input = serde_json::to_vec(&doc).expect("credentials serialise");
    let (ok, stdout, stderr) = run(program, "store", &input)?;
    if !ok {
        return Err(CredentialError::HelperFailed {
            program: program.to_string(),
            action: "store",
            registry: server.to_string(),
            message: failure_message(&stdout, &stderr),
        });
    }
    Ok(())
}

/// Asks `program` to forget `server`; false when it knew nothing of it.
pub(crate) fn erase(program: &str, server: &str) -> Result<bool, CredentialError> {
    let (ok, stdout, stderr) = run(program, "erase", server.as_bytes())?;
    if ok {
        return Ok(true);
    }
    if stdout.contains(NOT_FOUND) || stderr.contains(NOT_FOUND) {
        return Ok(false);
    }
    Err(CredentialError::HelperFailed {
        program: program.to_string(),
        action: "erase",
        registry: server.to_string(),
        message: failure_message(&stdout, &stderr),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};

    /// Writes a tiny credential helper (a shell script keeping one file per
    /// server under `dir/store`) and returns its path.
    pub(crate) fn fake_helper(dir: &Path) -> PathBuf {
        let store = dir.join("store");
        std::fs::create_dir_all(&store).unwrap();
        let script = format!(
            r#"#!/bin/sh
store='{}'
case "$1" in
get)
  read -r server
  key=$(printf %s "$server" | tr -c 'A-Za-z0-9' _)
  if [ -f "$store/$key" ]; then cat "$store/$key"; else echo "{NOT_FOUND}"; exit 1; fi ;;
store)
  doc=$(cat)
  server=$(printf %s "$doc" | sed 's/.*"ServerURL":"\([^"]*\)".*/\1/')
  key=$(printf %s "$server" | tr -c 'A-Za-z0-9' _)
  printf %s "$doc" > "$store/$key" ;;
erase)
  read -r server
  key=$(printf %s "$server" | tr -c 'A-Za-z0-9' _)
  if [ -f "$store/$key" ]; then rm "$store/$key"; else echo "{NOT_FOUND}"; exit 1; fi ;;
*) echo "unknown action $1" >&2; exit 2 ;;
esac
"#,
            store.display()
        );
        let path = dir.join("docker-credential-kilntest");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn store_get_erase_through_a_helper() {
        let dir = tempfile::tempdir().unwrap();
        let helper = fake_helper(dir.path());
        let helper = helper.to_str().unwrap();
        assert_eq!(get(helper, "127.0.0.1:5000").unwrap(), None);
        let creds = Credentials {
            username: "alice".into(),
            password: Secret::new("s3cret"),
        };
        store(helper, "127.0.0.1:5000", &creds).unwrap();
        assert_eq!(get(helper, "127.0.0.1:5000").unwrap(), Some(creds));
        assert!(erase(helper, "127.0.0.1:5000").unwrap());
        assert!(!erase(helper, "127.0.0.1:5000").unwrap());
        assert_eq!(get(helper, "127.0.0.1:5000").unwrap(), None);
    }

    #[test]
    fn missing_and_failing_helpers_are_named() {
        let err = get("docker-credential-kiln-does-not-exist", "x.io").unwrap_err();
        assert!(
            err.to_string()
                .contains("docker-credential-kiln-does-not-exist")
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker-credential-broken");
        std::fs::write(&path, "#!/bin/sh\necho 'keychain locked' >&2\nexit 3\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = get(path.to_str().unwrap(), "x.io").unwrap_err();
        assert!(err.to_string().contains("keychain locked"), "{err}");
    }
}
