//! Image references (`busybox`, `example/echo:1.0`, `host:5000/a/b:tag`,
//! `name@sha256:…`), parsed and normalised as docker does.
//!
//! [`Reference::parse`] is docker's `ParseNormalizedNamed`: a 64-hex id is
//! refused, the registry is split off (`localhost`, a first component with
//! `.` or `:` or an upper-case letter, else `docker.io` with `library/` for
//! one-component names), the repository must be lower-case, the rest must
//! follow the distribution grammar ([`grammar`]: checked by hand over ASCII,
//! no regex to compile), the full name is at most 255 characters, and a
//! digest must be a sha256/sha384/sha512 one. A name with neither tag nor
//! digest gets `latest`. The short "familiar" form shown to users drops
//! `docker.io/` and `library/` again (`busybox:latest`).

mod grammar;

use std::fmt;
use std::str::FromStr;

use oci_spec::distribution::Reference as OciReference;
use oci_spec::image::Digest;

pub use grammar::DigestProblem;

/// The registry docker uses when a name has none.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The tag a name without tag or digest gets.
pub const DEFAULT_TAG: &str = "latest";
/// Docker Hub's legacy name, normalised to [`DEFAULT_REGISTRY`].
const LEGACY_REGISTRY: &str = "index.docker.io";
/// The namespace of Docker Hub's official images.
const OFFICIAL_PREFIX: &str = "library/";
/// The longest full name (`registry/repository`) docker accepts.
pub const NAME_MAX: usize = 255;

/// Which part of a reference breaks the grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error(
        "a name is lower-case letters and digits separated by '.', '_', '__', '-' or '/', after an optional registry host[:port]/"
    )]
    Name,
    #[error("a tag is 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'")]
    Tag,
    #[error("a digest is algorithm:hex, e.g. sha256: and 64 hexadecimal digits")]
    Digest,
}

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format: the image name is empty")]
    Empty,
    #[error("invalid reference format: repository name {name:?} must be lowercase")]
    Uppercase { name: String },
    #[error(
        "invalid repository name {name:?}: a 64-digit hexadecimal string is an image id, not a name"
    )]
    HexName { name: String },
    #[error("invalid reference format {input:?}: {problem}")]
    Invalid { input: String, problem: Malformed },
    #[error(
        "invalid reference format: repository name {name:?} is {len} characters long, more than {NAME_MAX}"
    )]
    NameTooLong { name: String, len: usize },
    #[error("invalid digest in reference {input:?}")]
    Digest {
        input: String,
        #[source]
        problem: DigestProblem,
    },
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
    registry: String,
    repository: String,
    tag: Option<String>,
    /// Checked by [`grammar::check_digest`]: a valid oci-spec digest.
    digest: Option<String>,
}

impl Reference {
    /// Parses and normalises `input` (same as `input.parse()`).
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        if input.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if grammar::is_identifier(input) {
            return Err(ReferenceError::HexName { name: input.into() });
        }
        let (registry, remainder) = split_registry(input);
        // The repository before any `:`, as docker checks it for upper case
        // before the grammar (which would only say "invalid format").
        let remote = remainder.split(':').next().unwrap_or_default();
        if remote.to_lowercase() != remote {
            return Err(ReferenceError::Uppercase {
                name: remote.into(),
            });
        }
        let invalid = |problem| ReferenceError::Invalid {
            input: input.into(),
            problem,
        };
        let (rest, digest) = match remainder.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest)),
            None => (remainder.as_str(), None),
        };
        let (repository, tag) = match rest.split_once(':') {
            Some((repository, tag)) => (repository, Some(tag)),
            None => (rest, None),
        };
        // The registry part must be a host; docker also takes a first
        // component that is only a valid path component (`a_b.c/x`), with
        // no domain at all — kept here as the registry, so the name reads
        // the same.
        if !(grammar::is_domain(registry) || grammar::is_path_component(registry))
            || !grammar::is_remote_name(repository)
        {
            return Err(invalid(Malformed::Name));
        }
        if tag.is_some_and(|t| !grammar::is_tag(t)) {
            return Err(invalid(Malformed::Tag));
        }
        if digest.is_some_and(|d| !grammar::is_digest_shaped(d)) {
            return Err(invalid(Malformed::Digest));
        }
        let len = registry.len() + 1 + repository.len();
        if len > NAME_MAX {
            return Err(ReferenceError::NameTooLong {
                name: format!("{registry}/{repository}"),
                len,
            });
        }
        if let Some(d) = digest {
            grammar::check_digest(d).map_err(|problem| ReferenceError::Digest {
                input: input.into(),
                problem,
            })?;
        }
        Ok(Reference {
            registry: registry.into(),
            repository: repository.into(),
            tag: match (tag, digest) {
                (None, None) => Some(DEFAULT_TAG.into()),
                (tag, _) => tag.map(Into::into),
            },
            digest: digest.map(Into::into),
        })
    }

    /// The registry host (and port): `docker.io`, `localhost:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry: `library/busybox`, `a/b`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if any (`latest` when the input had neither tag nor digest).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if the reference pins one.
    pub fn digest(&self) -> Option<Digest> {
        self.digest
            .as_deref()
            .and_then(|d| Digest::from_str(d).ok())
    }

    /// The full repository name without tag or digest:
    /// `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The repository name as docker shows it: `busybox`, `example/echo`,
    /// `localhost:5000/a/b`.
    pub fn familiar_name(&self) -> String {
        if self.registry == DEFAULT_REGISTRY {
            match self.repository.strip_prefix(OFFICIAL_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.repository.clone(),
            }
        } else {
            self.name()
        }
    }

    /// The short form shown to users: `busybox:latest`,
    /// `example/echo@sha256:…`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        self.push_suffix(&mut s);
        s
    }

    /// `:tag` and `@digest`, as present.
    fn push_suffix(&self, s: &mut String) {
        if let Some(tag) = &self.tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
    }

    /// The same repository with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !grammar::is_tag(tag) {
            return Err(ReferenceError::Invalid {
                input: format!("{}:{tag}", self.name()),
                problem: Malformed::Tag,
            });
        }
        Ok(Reference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: Some(tag.into()),
            digest: None,
        })
    }

    /// The same repository pinned to a digest (and no tag).
    pub fn with_digest(&self, digest: &Digest) -> Reference {
        Reference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(digest.to_string()),
        }
    }
}

/// docker's `splitDockerDomain`: the registry and the rest of `name` (with
/// `library/` added for a one-component Docker Hub name).
fn split_registry(name: &str) -> (&str, String) {
    let official = |rest: &str| format!("{OFFICIAL_PREFIX}{rest}");
    let Some((first, rest)) = name.split_once('/') else {
        return (DEFAULT_REGISTRY, official(name));
    };
    let registry = if first == LEGACY_REGISTRY {
        DEFAULT_REGISTRY
    } else if first == "localhost" || first.contains(['.', ':']) || first.to_lowercase() != first {
        first
    } else {
        return (DEFAULT_REGISTRY, name.into());
    };
    if registry == DEFAULT_REGISTRY && !rest.contains('/') {
        (registry, official(rest))
    } else {
        (registry, rest.into())
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
        let mut s = self.name();
        self.push_suffix(&mut s);
        f.write_str(&s)
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl From<&Reference> for OciReference {
    /// The oci-spec form (built from the parts: oci-spec's own parser is
    /// never run).
    fn from(r: &Reference) -> OciReference {
        let (registry, repository) = (r.registry.clone(), r.repository.clone());
        match (&r.tag, &r.digest) {
            (Some(t), Some(d)) => {
                OciReference::with_tag_and_digest(registry, repository, t.clone(), d.clone())
            }
            (None, Some(d)) => OciReference::with_digest(registry, repository, d.clone()),
            (t, None) => OciReference::with_tag(
                registry,
                repository,
                t.clone().unwrap_or_else(|| DEFAULT_TAG.into()),
            ),
        }
    }
}

impl TryFrom<&OciReference> for Reference {
    type Error = ReferenceError;
    fn try_from(r: &OciReference) -> Result<Reference, ReferenceError> {
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
mod docker_cases;

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
