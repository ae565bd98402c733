//! An error inside the helper or the container's init before `exec`: which
//! stage failed, on which path, with which errno. It crosses process
//! boundaries as JSON and becomes a [`SandboxError`] in the caller.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::SandboxError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SetupError {
    pub stage: String,
    pub path: Option<PathBuf>,
    /// The OS error, or 0 for a logical error described by `message`.
    pub errno: i32,
    pub message: String,
    /// Set when `exec` itself failed (the program is in `path`).
    #[serde(default)]
    pub exec: bool,
}

impl SetupError {
    pub fn at(stage: &str, path: impl AsRef<Path>) -> impl FnOnce(io::Error) -> SetupError {
        let stage = stage.to_string();
        let path = path.as_ref().to_path_buf();
        move |e| SetupError {
            stage,
            path: Some(path),
            errno: e.raw_os_error().unwrap_or(0),
            message: e.to_string(),
            exec: false,
        }
    }

    pub fn os(stage: &str) -> impl FnOnce(io::Error) -> SetupError {
        let stage = stage.to_string();
        move |e| SetupError {
            stage,
            path: None,
            errno: e.raw_os_error().unwrap_or(0),
            message: e.to_string(),
            exec: false,
        }
    }

    pub fn invalid(message: &str) -> SetupError {
        SetupError {
            stage: "check the spec".into(),
            path: None,
            errno: 0,
            message: message.to_string(),
            exec: false,
        }
    }

    fn io_error(&self) -> io::Error {
        if self.errno != 0 {
            io::Error::from_raw_os_error(self.errno)
        } else {
            io::Error::other(self.message.clone())
        }
    }

    pub fn into_sandbox_error(self) -> SandboxError {
        if self.exec {
            let kind = io::Error::from_raw_os_error(self.errno).kind();
            return SandboxError::Exec {
                program: self
                    .path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                source: io::Error::new(kind, self.message),
            };
        }
        if self.errno == 0 && self.stage == "check the spec" {
            return SandboxError::InvalidSpec {
                reason: self.message,
            };
        }
        if self.stage == "resolve the user" {
            return SandboxError::InvalidSpec {
                reason: self.message,
            };
        }
        SandboxError::Setup {
            source: self.io_error(),
            stage: self.stage,
            path: self.path,
        }
    }
}
