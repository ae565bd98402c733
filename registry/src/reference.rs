//! Image references (`busybox`, `example/echo:1.0`, `host:5000/a/b:tag`,
//! `name@sha256:…`), parsed and normalised as docker does.
//!
//! Parsing is oci-spec's [`oci_spec::distribution::Reference`] (the
//! distribution grammar and docker's domain rules); [`Reference`] wraps it
//! with docker's extra checks (a lower-case repository, no 64-hex names) and
//! the short "familiar" form shown to users (`busybox:latest`). The remote
//! client takes the oci-spec type through [`Reference::as_oci`].

use std::fmt;
use std::str::FromStr;

use oci_spec::distribution::{ParseError, Reference as OciReference};
use oci_spec::image::Digest;

/// The registry docker uses when a name has none.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The tag a name without tag or digest gets.
pub const DEFAULT_TAG: &str = "latest";

/// Why a string is not an image reference.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format: repository name {name:?} must be lowercase")]
    Uppercase { name: String },
    #[error(
        "invalid repository name {name:?}: a 64-digit hexadecimal string is an image id, not a name"
    )]
    HexName { name: String },
    #[error("invalid reference format {input:?}")]
    Invalid {
        input: String,
        #[source]
        source: ParseError,
    },
    #[error("invalid digest in reference {input:?}")]
    Digest { input: String },
}

/// A normalised image reference: registry, repository, and a tag and/or a
/// digest. A name with neither gets the tag `latest`.
///
/// # Examples
///
/// ```
/// use kiln_registry::Reference;
///
/// let r: Reference = "busybox".parse().unwrap();
/// assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
/// assert_eq!(r.familiar(), "busybox:latest");
/// let r: Reference = "localhost:5000/a/b:v1".parse().unwrap();
/// assert_eq!((r.registry(), r.repository(), r.tag()), ("localhost:5000", "a/b", Some("v1")));
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    inner: OciReference,
}

impl Reference {
    /// Parses and normalises `input` (same as `input.parse()`).
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        let name = name_part(input);
        if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ReferenceError::HexName { name: name.into() });
        }
        let inner = OciReference::try_from(input).map_err(|source| {
            // The distribution grammar only says "invalid format"; docker
            // names the common mistake.
            let path = match name.split_once('/') {
                Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => rest,
                _ => name,
            };
            if path.bytes().any(|b| b.is_ascii_uppercase()) {
                ReferenceError::Uppercase { name: name.into() }
            } else {
                ReferenceError::Invalid {
                    input: input.into(),
                    source,
                }
            }
        })?;
        if let Some(d) = inner.digest()
            && Digest::from_str(d).is_err()
        {
            return Err(ReferenceError::Digest {
                input: input.into(),
            });
        }
        Ok(Reference { inner })
    }

    /// The registry host (and port): `docker.io`, `localhost:5000`.
    pub fn registry(&self) -> &str {
        self.inner.registry()
    }

    /// The repository path inside the registry: `library/busybox`, `a/b`.
    pub fn repository(&self) -> &str {
        self.inner.repository()
    }

    /// The tag, if any (`latest` when the input had neither tag nor digest).
    pub fn tag(&self) -> Option<&str> {
        self.inner.tag()
    }

    /// The digest, if the reference pins one.
    pub fn digest(&self) -> Option<Digest> {
        self.inner.digest().and_then(|d| Digest::from_str(d).ok())
    }

    /// The full repository name without tag or digest:
    /// `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry(), self.repository())
    }

    /// The repository name as docker shows it: `busybox`, `example/echo`,
    /// `localhost:5000/a/b`.
    pub fn familiar_name(&self) -> String {
        if self.registry() == DEFAULT_REGISTRY {
            let repo = self.repository();
            match repo.strip_prefix("library/") {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => repo.to_string(),
            }
        } else {
            self.name()
        }
    }

    /// The short form shown to users: `busybox:latest`,
    /// `example/echo@sha256:…`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(tag) = self.tag() {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(d) = self.inner.digest() {
            s.push('@');
            s.push_str(d);
        }
        s
    }

    /// The same repository with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        Reference::parse(&format!("{}:{tag}", self.name()))
    }

    /// The same repository pinned to a digest (and no tag).
    pub fn with_digest(&self, digest: &Digest) -> Reference {
        Reference {
            inner: OciReference::with_digest(
                self.registry().to_string(),
                self.repository().to_string(),
                digest.to_string(),
            ),
        }
    }

    /// The oci-spec form the registry client takes.
    pub fn as_oci(&self) -> &OciReference {
        &self.inner
    }
}

/// The name part of a reference string: without `@digest` and `:tag`.
fn name_part(input: &str) -> &str {
    let no_digest = input.split_once('@').map_or(input, |(n, _)| n);
    match no_digest.rfind(':') {
        Some(i) if !no_digest[i..].contains('/') => &no_digest[..i],
        _ => no_digest,
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Reference, ReferenceError> {
        Reference::parse(s)
    }
}

impl fmt::Display for Reference {
    /// The full normalised form: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.inner.whole())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({})", self.inner.whole())
    }
}

impl From<Reference> for OciReference {
    fn from(r: Reference) -> OciReference {
        r.inner
    }
}

impl TryFrom<OciReference> for Reference {
    type Error = ReferenceError;
    fn try_from(r: OciReference) -> Result<Reference, ReferenceError> {
        Reference::parse(&r.whole())
    }
}

impl PartialOrd for Reference {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Reference {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.to_string().cmp(&other.to_string())
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Reference, D::Error> {
        let s = String::deserialize(d)?;
        Reference::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn normalises_as_docker_does() {
        let cases = [
            (
                "busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "busybox:1.36",
                "docker.io/library/busybox:1.36",
                "busybox:1.36",
            ),
            (
                "library/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "docker.io/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "index.docker.io/library/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "example/echo",
                "docker.io/example/echo:latest",
                "example/echo:latest",
            ),
            (
                "docker.io/library/a/b",
                "docker.io/library/a/b:latest",
                "library/a/b:latest",
            ),
            (
                "host:5000/a/b:tag",
                "host:5000/a/b:tag",
                "host:5000/a/b:tag",
            ),
            ("localhost/x", "localhost/x:latest", "localhost/x:latest"),
            (
                "127.0.0.1:5000/x:1",
                "127.0.0.1:5000/x:1",
                "127.0.0.1:5000/x:1",
            ),
            (
                "quay.io/a/b/c",
                "quay.io/a/b/c:latest",
                "quay.io/a/b/c:latest",
            ),
            (
                "foo_bar.com:8080",
                "docker.io/library/foo_bar.com:8080",
                "foo_bar.com:8080",
            ),
            (
                "a-b__c.d:Tag_1.x",
                "docker.io/library/a-b__c.d:Tag_1.x",
                "a-b__c.d:Tag_1.x",
            ),
        ];
        for (input, full, short) in cases {
            let r = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), full, "{input}");
            assert_eq!(r.familiar(), short, "{input}");
            // the normalised form parses to itself
            assert_eq!(Reference::parse(full).unwrap(), r);
            assert_eq!(Reference::parse(short).unwrap(), r);
        }
    }

    #[test]
    fn digests() {
        let r = Reference::parse(&format!("busybox@{D}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().unwrap().to_string(), D);
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{D}"));
        assert_eq!(r.familiar(), format!("busybox@{D}"));
        let r = Reference::parse(&format!("h:5000/a:v@{D}")).unwrap();
        assert_eq!(r.tag(), Some("v"));
        assert!(r.digest().is_some());
        let pinned = Reference::parse("busybox")
            .unwrap()
            .with_digest(&r.digest().unwrap());
        assert_eq!(pinned.to_string(), format!("docker.io/library/busybox@{D}"));
    }

    #[test]
    fn rejects_what_docker_rejects() {
        for bad in [
            "",
            "Busybox",
            "example/Echo",
            "a b",
            "busybox:",
            ":tag",
            "busybox@sha256:abc",
            "busybox@md5:0123456789abcdef0123456789abcdef",
            "-leading/x",
            "x/",
            "a//b",
            "busybox:-tag",
            &"a".repeat(300),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert!(matches!(
            Reference::parse("Busybox:1"),
            Err(ReferenceError::Uppercase { .. })
        ));
        assert!(matches!(
            Reference::parse("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"),
            Err(ReferenceError::HexName { .. })
        ));
        // upper case is fine in a registry host and in a tag
        assert!(Reference::parse("Registry.Example:5000/a:TAG").is_ok());
    }

    #[test]
    fn with_tag_and_serde() {
        let r = Reference::parse("example/echo").unwrap();
        let t = r.with_tag("v2").unwrap();
        assert_eq!(t.to_string(), "docker.io/example/echo:v2");
        assert!(r.with_tag("bad tag").is_err());
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"docker.io/example/echo:v2\"");
        let back: Reference = serde_json::from_str(&json).unwrap();
        assert_eq!(back, t);
        assert_eq!(t.name(), "docker.io/example/echo");
        assert_eq!(t.familiar_name(), "example/echo");
    }
}
