//! The container's argv from the image's ENTRYPOINT and CMD and the user's
//! `--entrypoint` and arguments, combined exactly as docker does:
//!
//! - no `--entrypoint`, no arguments: image ENTRYPOINT + image CMD;
//! - arguments: image ENTRYPOINT + arguments (they replace CMD);
//! - `--entrypoint E`: `E` + arguments; the image's CMD is cleared even when
//!   there are no arguments; `--entrypoint ""` clears ENTRYPOINT too.
//!
//! Shell forms (`CMD echo hi`) are already `["/bin/sh", "-c", "echo hi"]` in
//! the image config, as the builder writes them, so nothing else is needed.

use crate::error::CommandError;

/// Combines entrypoint and command; fails when nothing is left to run
/// (docker's "no command specified").
pub fn resolve_argv(
    image_entrypoint: Option<&[String]>,
    image_cmd: Option<&[String]>,
    user_entrypoint: Option<&str>,
    args: &[String],
) -> Result<Vec<String>, CommandError> {
    let mut argv: Vec<String> = Vec::new();
    match user_entrypoint {
        Some(entrypoint) => {
            if !entrypoint.is_empty() {
                argv.push(entrypoint.to_string());
            }
            argv.extend(args.iter().cloned());
        }
        None => {
            argv.extend(image_entrypoint.unwrap_or_default().iter().cloned());
            if args.is_empty() {
                argv.extend(image_cmd.unwrap_or_default().iter().cloned());
            } else {
                argv.extend(args.iter().cloned());
            }
        }
    }
    if argv.is_empty() || argv[0].is_empty() {
        return Err(CommandError::NoCommand);
    }
    Ok(argv)
}

/// The COMMAND column of `ps`: the argv joined by spaces, truncated to 20
/// characters with an ellipsis, then quoted (inner quotes escaped) as
/// docker prints it.
pub(crate) fn display_command(argv: &[String], truncate: bool) -> String {
    let joined = argv.join(" ");
    let text = if truncate && joined.chars().count() > 20 {
        let cut: String = joined.chars().take(19).collect();
        format!("{cut}…")
    } else {
        joined
    };
    serde_json::to_string(&text).unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn image_cmd_alone() {
        let cmd = v(&["/bin/sh", "-c", "echo hi"]);
        assert_eq!(resolve_argv(None, Some(&cmd), None, &[]).unwrap(), cmd);
    }

    #[test]
    fn arguments_replace_cmd_and_keep_entrypoint() {
        let ep = v(&["echo", "ep"]);
        let cmd = v(&["default"]);
        assert_eq!(
            resolve_argv(Some(&ep), Some(&cmd), None, &[]).unwrap(),
            v(&["echo", "ep", "default"])
        );
        assert_eq!(
            resolve_argv(Some(&ep), Some(&cmd), None, &v(&["x", "y"])).unwrap(),
            v(&["echo", "ep", "x", "y"])
        );
        assert_eq!(
            resolve_argv(None, Some(&cmd), None, &v(&["ls", "/"])).unwrap(),
            v(&["ls", "/"])
        );
    }

    #[test]
    fn user_entrypoint_replaces_entrypoint_and_clears_cmd() {
        let ep = v(&["echo", "ep"]);
        let cmd = v(&["default"]);
        assert_eq!(
            resolve_argv(Some(&ep), Some(&cmd), Some("/bin/true"), &[]).unwrap(),
            v(&["/bin/true"])
        );
        assert_eq!(
            resolve_argv(Some(&ep), Some(&cmd), Some("ls"), &v(&["-l"])).unwrap(),
            v(&["ls", "-l"])
        );
        // The flag's value is one word, never split.
        assert_eq!(
            resolve_argv(None, None, Some("my prog"), &[]).unwrap(),
            v(&["my prog"])
        );
    }

    #[test]
    fn empty_user_entrypoint_clears_both() {
        let ep = v(&["echo", "ep"]);
        let cmd = v(&["default"]);
        assert_eq!(
            resolve_argv(Some(&ep), Some(&cmd), Some(""), &v(&["ls"])).unwrap(),
            v(&["ls"])
        );
        assert!(matches!(
            resolve_argv(Some(&ep), Some(&cmd), Some(""), &[]),
            Err(CommandError::NoCommand)
        ));
    }

    #[test]
    fn nothing_to_run() {
        assert!(matches!(
            resolve_argv(None, None, None, &[]),
            Err(CommandError::NoCommand)
        ));
        assert!(matches!(
            resolve_argv(Some(&[]), Some(&[]), None, &[]),
            Err(CommandError::NoCommand)
        ));
    }

    #[test]
    fn ps_command_column_escapes_quotes() {
        assert_eq!(
            display_command(&v(&["echo", "\"x\""]), true),
            "\"echo \\\"x\\\"\""
        );
    }

    #[test]
    fn ps_command_column() {
        assert_eq!(display_command(&v(&["sleep", "5"]), true), "\"sleep 5\"");
        assert_eq!(
            display_command(&v(&["sh", "-c", "while true; do sleep 1; done"]), true),
            "\"sh -c while true; d…\""
        );
        assert_eq!(
            display_command(&v(&["sh", "-c", "while true; do sleep 1; done"]), false),
            "\"sh -c while true; do sleep 1; done\""
        );
    }
}
