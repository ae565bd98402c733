//! Cache keys: the lasting identity of a vertex's result.
//!
//! A key is the sha256 of a canonical JSON document
//! `{"schema":N,"type":TAG,"def":…,"inputs":[…],"content":[…]}`:
//! - `schema` is [`SCHEMA_VERSION`]; bump it whenever a definition's shape
//!   or meaning changes, so old index entries can never be mistaken for new;
//! - `type` tags the operation (`image`, `exec`, `file`, `image-config`);
//! - `def` is the operation's normalised definition: only what changes the
//!   result (never progress names, source locations, secrets' content or
//!   proxy variables). Definitions are structs serialised in declaration
//!   order with `BTreeMap`s for maps, so the bytes are stable;
//! - `inputs` are the keys of the vertices it reads, in input order;
//! - `content` are content checksums computed at build time (the files a
//!   COPY selects from the context), never mtimes.
//!
//! `docs/cache-keys.md` describes every definition; the golden tests below
//! pin the bytes, so an accidental change fails loudly.

use std::fmt;
use std::str::FromStr;

use oci_spec::image::Digest;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

/// Version of the key schema. Bump on any change of a key definition.
pub const SCHEMA_VERSION: u32 = 1;

/// A cache key: a sha256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    /// Hex form (64 characters), used as the index file name.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// As an OCI digest (`sha256:…`).
    pub fn digest(&self) -> Digest {
        Digest::from_str(&self.to_string()).expect("a sha256 hex string is a valid digest")
    }

    /// Parses the 64-character hex form.
    pub fn from_hex(s: &str) -> Option<CacheKey> {
        let bytes = hex::decode(s).ok()?;
        Some(CacheKey(bytes.try_into().ok()?))
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({})", &self.hex()[..12])
    }
}

impl Serialize for CacheKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Serialize)]
struct KeyDocument<'a, T: Serialize> {
    schema: u32,
    #[serde(rename = "type")]
    type_tag: &'a str,
    def: &'a T,
    inputs: &'a [CacheKey],
    content: &'a [Digest],
}

/// The canonical bytes a key is the digest of.
pub(crate) fn canonical_bytes<T: Serialize>(
    type_tag: &str,
    def: &T,
    inputs: &[CacheKey],
    content: &[Digest],
) -> Vec<u8> {
    let doc = KeyDocument {
        schema: SCHEMA_VERSION,
        type_tag,
        def,
        inputs,
        content,
    };
    // Serialising plain structs, strings, integers and BTreeMaps cannot fail.
    serde_json::to_vec(&doc).expect("cache key definitions serialise")
}

/// Computes a cache key.
pub(crate) fn compute<T: Serialize>(
    type_tag: &str,
    def: &T,
    inputs: &[CacheKey],
    content: &[Digest],
) -> CacheKey {
    let bytes = canonical_bytes(type_tag, def, inputs, content);
    CacheKey(Sha256::digest(&bytes).into())
}

/// The sha256 digest of some bytes, as an OCI digest.
pub fn sha256_digest(bytes: &[u8]) -> Digest {
    let hex = hex::encode(Sha256::digest(bytes));
    Digest::from_str(&format!("sha256:{hex}")).expect("a sha256 hex string is a valid digest")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Serialize)]
    struct Def {
        args: Vec<String>,
        env: BTreeMap<String, String>,
    }

    fn def() -> Def {
        Def {
            args: vec!["/bin/sh".into(), "-c".into(), "echo hi".into()],
            env: [
                ("B".to_string(), "2".to_string()),
                ("A".to_string(), "1".to_string()),
            ]
            .into_iter()
            .collect(),
        }
    }

    #[test]
    fn canonical_form_is_pinned() {
        let bytes = canonical_bytes("exec", &def(), &[], &[]);
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"schema":1,"type":"exec","def":{"args":["/bin/sh","-c","echo hi"],"env":{"A":"1","B":"2"}},"inputs":[],"content":[]}"#
        );
    }

    #[test]
    fn key_changes_with_tag_def_inputs_and_content() {
        let base = compute("exec", &def(), &[], &[]);
        assert_eq!(base, compute("exec", &def(), &[], &[]));
        assert_ne!(base, compute("file", &def(), &[], &[]));
        let mut d = def();
        d.args[2] = "echo ho".into();
        assert_ne!(base, compute("exec", &d, &[], &[]));
        assert_ne!(base, compute("exec", &def(), &[base], &[]));
        let c = sha256_digest(b"x");
        assert_ne!(base, compute("exec", &def(), &[], &[c]));
    }

    #[test]
    fn hex_round_trips() {
        let k = compute("exec", &def(), &[], &[]);
        assert_eq!(CacheKey::from_hex(&k.hex()), Some(k));
        assert_eq!(k.digest().to_string(), k.to_string());
        assert_eq!(CacheKey::from_hex("zz"), None);
    }
}
