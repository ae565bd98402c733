//! Platforms (`linux/arm64/v8`) and the automatic platform ARGs BuildKit
//! defines in the global scope (`BUILDPLATFORM`, `TARGETARCH`, ...).

use std::fmt;
use std::str::FromStr;

/// An OS/architecture/variant triple, normalised the way containerd does
/// (`x86_64` is `amd64`, `aarch64` is `arm64`, `arm` means `arm/v7`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`, `arm`, `386`, `ppc64le`, `s390x`, `riscv64`, ...
    pub architecture: String,
    /// `v7`, `v8`, ...; `None` when there is none.
    pub variant: Option<String>,
}

/// A platform string that is not `os[/arch[/variant]]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid platform {value:?}: expected os/arch[/variant]")]
pub struct PlatformError {
    /// The string given.
    pub value: String,
}

impl Platform {
    /// The platform kiln runs on.
    pub fn host() -> Platform {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", None),
            "arm" => ("arm", Some("v7")),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "loongarch64" => ("loong64", None),
            other => (other, None),
        };
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture: arch.to_string(),
            variant: variant.map(str::to_string),
        }
    }

    fn normalize(os: &str, arch: &str, variant: Option<&str>) -> Platform {
        let os = os.to_ascii_lowercase();
        let arch = arch.to_ascii_lowercase();
        let variant = variant.map(str::to_ascii_lowercase);
        let (arch, variant) = match arch.as_str() {
            "x86_64" | "x86-64" | "amd64" => (
                "amd64",
                variant.filter(|v| v != "v1").map(|v| v.to_string()),
            ),
            "aarch64" | "arm64" => (
                "arm64",
                variant
                    .filter(|v| !matches!(v.as_str(), "8" | "v8" | "v8.0"))
                    .map(|v| v.to_string()),
            ),
            "armhf" => ("arm", Some("v7".to_string())),
            "armel" => ("arm", Some("v6".to_string())),
            "arm" => (
                "arm",
                Some(match variant.as_deref() {
                    None | Some("") | Some("7") => "v7".to_string(),
                    Some(v @ ("5" | "6" | "8")) => format!("v{v}"),
                    Some(v) => v.to_string(),
                }),
            ),
            "i386" | "i686" | "x86" => ("386", variant),
            _ => (arch.as_str(), variant),
        };
        Platform {
            os,
            architecture: arch.to_string(),
            variant: variant.filter(|v| !v.is_empty()),
        }
    }
}

impl FromStr for Platform {
    type Err = PlatformError;

    /// Parses `os/arch[/variant]` (an architecture alone is taken as
    /// `linux/arch`).
    fn from_str(s: &str) -> Result<Platform, PlatformError> {
        let err = || PlatformError {
            value: s.to_string(),
        };
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(err());
        }
        match parts.as_slice() {
            [arch] => Ok(Platform::normalize("linux", arch, None)),
            [os, arch] => Ok(Platform::normalize(os, arch, None)),
            [os, arch, variant] => Ok(Platform::normalize(os, arch, Some(variant))),
            _ => Err(err()),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// The build and target platforms, as the automatic ARGs see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformArgs {
    /// Where the build runs (`BUILDPLATFORM`, ...).
    pub build: Platform,
    /// What the build produces (`TARGETPLATFORM`, ...).
    pub target: Platform,
}

impl PlatformArgs {
    /// Building on and for the host.
    pub fn host() -> PlatformArgs {
        PlatformArgs {
            build: Platform::host(),
            target: Platform::host(),
        }
    }

    /// The automatic ARGs and their values: `BUILDPLATFORM`, `BUILDOS`,
    /// `BUILDARCH`, `BUILDVARIANT`, `TARGETPLATFORM`, `TARGETOS`,
    /// `TARGETARCH`, `TARGETVARIANT`.
    pub fn vars(&self) -> Vec<(String, String)> {
        let mut out = Vec::with_capacity(8);
        for (prefix, p) in [("BUILD", &self.build), ("TARGET", &self.target)] {
            out.push((format!("{prefix}PLATFORM"), p.to_string()));
            out.push((format!("{prefix}OS"), p.os.clone()));
            out.push((format!("{prefix}ARCH"), p.architecture.clone()));
            out.push((
                format!("{prefix}VARIANT"),
                p.variant.clone().unwrap_or_default(),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_normalise() {
        let p: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(p.to_string(), "linux/arm64");
        let p: Platform = "linux/arm".parse().unwrap();
        assert_eq!(p.to_string(), "linux/arm/v7");
        let p: Platform = "Linux/x86_64".parse().unwrap();
        assert_eq!(p.to_string(), "linux/amd64");
        let p: Platform = "linux/arm/v6".parse().unwrap();
        assert_eq!(p.variant.as_deref(), Some("v6"));
        assert!("linux//x".parse::<Platform>().is_err());
        assert!("a/b/c/d".parse::<Platform>().is_err());
    }

    #[test]
    fn automatic_args() {
        let args = PlatformArgs {
            build: "linux/amd64".parse().unwrap(),
            target: "linux/arm/v7".parse().unwrap(),
        };
        let vars = args.vars();
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_eq!(get("BUILDPLATFORM"), "linux/amd64");
        assert_eq!(get("BUILDVARIANT"), "");
        assert_eq!(get("TARGETPLATFORM"), "linux/arm/v7");
        assert_eq!(get("TARGETARCH"), "arm");
        assert_eq!(get("TARGETVARIANT"), "v7");
    }
}
