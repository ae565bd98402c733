//! Platforms (`linux/amd64`, `linux/arm/v7`) and choosing one manifest from
//! an index or manifest list.

use std::fmt;
use std::str::FromStr;

use oci_spec::image::{Arch, Descriptor, ImageIndex, Os};

/// An OS, architecture and optional variant, as `--platform` takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

/// Why a `--platform` value was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid platform {input:?}: expected OS/ARCH[/VARIANT], e.g. linux/amd64")]
pub struct PlatformError {
    pub input: String,
}

impl Platform {
    /// The machine kiln runs on (no variant: any matches, as the store's
    /// own choice of an index's manifest).
    pub fn host() -> Platform {
        Platform {
            os: Os::default().to_string(),
            architecture: Arch::default().to_string(),
            variant: None,
        }
    }

    /// Whether this is the host's OS and architecture.
    pub fn is_host(&self) -> bool {
        let host = Platform::host();
        self.os == host.os && self.architecture == host.architecture
    }

    fn matches(&self, d: &Descriptor) -> bool {
        let Some(p) = d.platform() else {
            return false;
        };
        p.os().to_string() == self.os
            && p.architecture().to_string() == self.architecture
            && match &self.variant {
                Some(v) => p.variant().as_deref() == Some(v.as_str()),
                None => true,
            }
    }

    /// The first image manifest of `index` for this platform.
    pub fn select<'a>(&self, index: &'a ImageIndex) -> Option<&'a Descriptor> {
        index
            .manifests()
            .iter()
            .filter(|d| !is_index_media_type(d.media_type().as_ref()))
            .find(|d| self.matches(d))
    }
}

/// Lists an index's platforms, for errors: `linux/amd64, linux/arm64/v8`.
pub(crate) fn available(index: &ImageIndex) -> String {
    let list: Vec<String> = index
        .manifests()
        .iter()
        .filter_map(|d| d.platform().as_ref())
        .map(|p| {
            let mut s = format!("{}/{}", p.os(), p.architecture());
            if let Some(v) = p.variant() {
                s.push('/');
                s.push_str(v);
            }
            s
        })
        .collect();
    if list.is_empty() {
        "no platforms".into()
    } else {
        list.join(", ")
    }
}

pub(crate) fn is_index_media_type(media_type: &str) -> bool {
    media_type == "application/vnd.oci.image.index.v1+json"
        || media_type == "application/vnd.docker.distribution.manifest.list.v2+json"
}

impl FromStr for Platform {
    type Err = PlatformError;

    fn from_str(s: &str) -> Result<Platform, PlatformError> {
        let err = || PlatformError {
            input: s.to_string(),
        };
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(err());
        }
        let (os, architecture, variant) = match parts.as_slice() {
            [os, arch] => (*os, *arch, None),
            [os, arch, variant] => (*os, *arch, Some(variant.to_string())),
            _ => return Err(err()),
        };
        // The names docker accepts for the same architectures.
        let architecture = match architecture {
            "x86_64" | "x86-64" => "amd64",
            "aarch64" => "arm64",
            "armhf" => "arm",
            "i386" => "386",
            other => other,
        };
        Ok(Platform {
            os: os.to_ascii_lowercase(),
            architecture: architecture.to_string(),
            variant,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> ImageIndex {
        serde_json::from_str(
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","platform":{"os":"linux","architecture":"arm","variant":"v6"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","platform":{"os":"linux","architecture":"arm","variant":"v7"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333","platform":{"os":"linux","architecture":"amd64"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"sha256:4444444444444444444444444444444444444444444444444444444444444444","platform":{"os":"linux","architecture":"arm64","variant":"v8"}}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn parses_and_normalises() {
        let p: Platform = "linux/x86_64".parse().unwrap();
        assert_eq!(p.to_string(), "linux/amd64");
        let p: Platform = "linux/arm/v7".parse().unwrap();
        assert_eq!(p.variant.as_deref(), Some("v7"));
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d"] {
            assert!(bad.parse::<Platform>().is_err(), "{bad}");
        }
    }

    #[test]
    fn selects_by_os_arch_and_variant() {
        let idx = index();
        let pick = |p: &str| {
            p.parse::<Platform>()
                .unwrap()
                .select(&idx)
                .map(|d| d.digest().to_string()[7..8].to_string())
        };
        assert_eq!(pick("linux/arm/v7").as_deref(), Some("2"));
        assert_eq!(pick("linux/arm").as_deref(), Some("1"));
        assert_eq!(pick("linux/arm64").as_deref(), Some("4"));
        assert_eq!(pick("linux/amd64").as_deref(), Some("3"));
        assert_eq!(pick("linux/s390x"), None);
        assert_eq!(
            available(&idx),
            "linux/arm/v6, linux/arm/v7, linux/amd64, linux/arm64/v8"
        );
    }
}
