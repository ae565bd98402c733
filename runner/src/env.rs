//! The container's environment, as docker builds it: `--env-file` entries,
//! then `-e` entries (a bare `KEY` takes the caller's value, or is dropped
//! when the caller has none); the image's `Env` fills in keys the user did
//! not set; finally `PATH` (when nobody set it), `HOSTNAME` and, with a
//! terminal, `TERM=xterm` come first (HOME is added by the sandbox from
//! the user's passwd entry). A later value of a key replaces an
//! earlier one in place.

use std::path::Path;

use crate::error::EnvError;

/// The PATH a container gets when neither the image nor the user sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Resolves one `-e` / env-file entry. `KEY=VALUE` is kept; a bare `KEY`
/// takes its value from `lookup` (the caller's environment) or yields
/// `None`.
pub(crate) fn resolve_entry(
    entry: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, EnvError> {
    let (key, value) = match entry.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (entry, None),
    };
    if key.is_empty() {
        return Err(EnvError::NoName {
            entry: entry.to_string(),
        });
    }
    if value.is_none() && key.chars().any(char::is_whitespace) {
        return Err(EnvError::Whitespace {
            name: key.to_string(),
        });
    }
    Ok(match value {
        Some(_) => Some(entry.to_string()),
        None => lookup(key).map(|v| format!("{key}={v}")),
    })
}

/// Parses an `--env-file`: one `KEY=VALUE` or `KEY` per line, leading
/// whitespace ignored, blank lines and lines starting with `#` skipped;
/// values are taken verbatim (quotes are not removed), as docker does.
pub fn parse_env_file(
    path: &Path,
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, EnvError> {
    let mut out = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let resolved = resolve_entry(line, lookup).map_err(|source| EnvError::File {
            path: path.to_path_buf(),
            line: index + 1,
            source: Box::new(source),
        })?;
        out.extend(resolved);
    }
    Ok(out)
}

/// Reads and parses an `--env-file`.
pub fn read_env_file(
    path: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, EnvError> {
    let text = std::fs::read_to_string(path).map_err(|source| EnvError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_env_file(path, &text, lookup)
}

/// The user's entries (env files first, then `-e` flags, in order) with
/// bare keys resolved against `lookup`.
pub fn user_env(
    env_files: &[Vec<String>],
    flags: &[String],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, EnvError> {
    let mut out: Vec<String> = env_files.iter().flatten().cloned().collect();
    for flag in flags {
        out.extend(resolve_entry(flag, lookup)?);
    }
    Ok(out)
}

fn key_of(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(k, _)| k)
}

/// Replaces the entry with the same key in place, or appends.
fn replace_or_append(list: &mut Vec<String>, entry: String) {
    let key = key_of(&entry).to_string();
    match list.iter_mut().find(|e| key_of(e) == key) {
        Some(slot) => *slot = entry,
        None => list.push(entry),
    }
}

/// The container's stored environment: the user's entries, then the
/// image's entries for keys the user did not set.
pub fn merge_image_env(user: &[String], image: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for entry in user {
        replace_or_append(&mut out, entry.clone());
    }
    for entry in image {
        if !user.iter().any(|u| key_of(u) == key_of(entry)) {
            out.push(entry.clone());
        }
    }
    out
}

/// The environment the process starts with: PATH, HOSTNAME and (with a
/// terminal) TERM defaults, replaced or extended by the container's env.
pub fn process_env(container_env: &[String], hostname: &str, tty: bool) -> Vec<String> {
    let mut out = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
    ];
    if tty {
        out.push("TERM=xterm".to_string());
    }
    for entry in container_env {
        replace_or_append(&mut out, entry.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(key: &str) -> Option<String> {
        match key {
            "FROM_HOST" => Some("hostval".into()),
            _ => None,
        }
    }

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn bare_keys_take_the_callers_value_or_vanish() {
        assert_eq!(
            resolve_entry("FROM_HOST", &lookup).unwrap(),
            Some("FROM_HOST=hostval".into())
        );
        assert_eq!(resolve_entry("UNSET", &lookup).unwrap(), None);
        assert_eq!(resolve_entry("A=", &lookup).unwrap(), Some("A=".into()));
        assert_eq!(
            resolve_entry("A=b=c", &lookup).unwrap(),
            Some("A=b=c".into())
        );
        assert!(matches!(
            resolve_entry("=x", &lookup),
            Err(EnvError::NoName { .. })
        ));
        assert!(matches!(
            resolve_entry("A B", &lookup),
            Err(EnvError::Whitespace { .. })
        ));
    }

    #[test]
    fn env_file_syntax() {
        let text = "# comment\n\n  A=1\nB=\"quoted\"\nFROM_HOST\nUNSET\nC=with space\n";
        let got = parse_env_file(Path::new("f"), text, &lookup).unwrap();
        assert_eq!(
            got,
            v(&["A=1", "B=\"quoted\"", "FROM_HOST=hostval", "C=with space"])
        );
        let err = parse_env_file(Path::new("f"), "A=1\n=2\n", &lookup).unwrap_err();
        assert!(matches!(err, EnvError::File { line: 2, .. }), "{err:?}");
    }

    #[test]
    fn flags_come_after_files_and_win() {
        let files = vec![v(&["A=file", "B=file"])];
        let user = user_env(&files, &v(&["A=flag"]), &lookup).unwrap();
        assert_eq!(user, v(&["A=file", "B=file", "A=flag"]));
        let merged = merge_image_env(&user, &v(&["PATH=/img", "B=img", "C=img"]));
        assert_eq!(merged, v(&["A=flag", "B=file", "PATH=/img", "C=img"]));
    }

    #[test]
    fn defaults_are_replaced_in_place() {
        let env = process_env(&v(&["PATH=/x", "A=1"]), "abc", true);
        assert_eq!(env, v(&["PATH=/x", "HOSTNAME=abc", "TERM=xterm", "A=1"]));
        let env = process_env(&v(&["A=1"]), "abc", false);
        assert_eq!(
            env,
            v(&[&format!("PATH={DEFAULT_PATH}"), "HOSTNAME=abc", "A=1"])
        );
    }
}
