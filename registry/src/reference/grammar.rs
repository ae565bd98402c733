//! The distribution reference grammar (docker's `distribution/reference`),
//! checked byte by byte over ASCII: no regular expression, so nothing is
//! compiled at start-up and a name parses in well under a microsecond.
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [ domain "/" ] remote-name
//! domain           := host [ ":" port-number ]
//! host             := domain-name | "[" ipv6-address "]"
//! domain-name      := domain-component [ "." domain-component ]*
//! domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
//! port-number      := /[0-9]+/
//! ipv6-address     := /[a-fA-F0-9:]+/        (no zone, no embedded IPv4)
//! remote-name      := path-component [ "/" path-component ]*
//! path-component   := alpha-numeric [ separator alpha-numeric ]*
//! alpha-numeric    := /[a-z0-9]+/
//! separator        := /[_.]|__|[-]+/
//! tag              := /[\w][\w.-]{0,127}/    (\w is ASCII: [A-Za-z0-9_])
//! digest           := algorithm ":" /[0-9a-fA-F]{32,}/
//! algorithm        := component [ /[-_+.]/ component ]*, component := /[A-Za-z][A-Za-z0-9]*/
//! identifier       := /[a-f0-9]{64}/
//! ```
//!
//! Each function answers whether a whole string is one production.

/// `domain`: a host name, IPv4 address or bracketed IPv6 address, with an
/// optional `:port`.
pub(crate) fn is_domain(s: &str) -> bool {
    let (host_ok, port) = match s.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((addr, after)) => (
                !addr.is_empty() && addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':'),
                after,
            ),
            None => return false,
        },
        None => match s.find(':') {
            Some(i) => (is_domain_name(&s[..i]), &s[i..]),
            None => (is_domain_name(s), ""),
        },
    };
    host_ok
        && (port.is_empty()
            || port
                .strip_prefix(':')
                .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
}

/// `domain-name`: dot-separated components of letters, digits and inner
/// dashes.
fn is_domain_name(s: &str) -> bool {
    s.split('.').all(|c| {
        let b = c.as_bytes();
        !b.is_empty()
            && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
    })
}

/// `remote-name`: slash-separated path components.
pub(crate) fn is_remote_name(s: &str) -> bool {
    s.split('/').all(is_path_component)
}

/// `path-component`: lower-case alphanumeric runs joined by one `.`, one or
/// two `_`, or any number of `-`.
pub(crate) fn is_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &b[start..i];
        let ok = matches!(sep, b"." | b"_" | b"__") || sep.iter().all(|&x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// The longest tag docker accepts.
pub(crate) const TAG_MAX: usize = 128;

/// `tag`: 1 to 128 ASCII word characters, dots and dashes, not starting
/// with a dot or a dash.
pub(crate) fn is_tag(s: &str) -> bool {
    let b = s.as_bytes();
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    !b.is_empty()
        && b.len() <= TAG_MAX
        && word(b[0])
        && b[1..].iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

/// `digest` as the reference grammar has it (the algorithm and the length
/// are checked afterwards by [`check_digest`]).
pub(crate) fn is_digest_shaped(s: &str) -> bool {
    let Some((algorithm, hex)) = s.split_once(':') else {
        return false;
    };
    hex.len() >= 32
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
        && algorithm.split(['-', '_', '+', '.']).all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphabetic()
                && b.iter().all(|x| x.is_ascii_alphanumeric())
        })
}

/// Why a digest-shaped string is still not a digest docker accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestProblem {
    #[error("unsupported digest algorithm {algorithm:?} (sha256, sha384 and sha512 are)")]
    Unsupported { algorithm: String },
    #[error("a {algorithm} digest has {expected} hexadecimal digits, not {found}")]
    Length {
        algorithm: &'static str,
        expected: usize,
        found: usize,
    },
    #[error("a digest's hexadecimal digits are lower-case")]
    Format,
}

/// What go-digest checks of a digest-shaped string: a known algorithm and
/// exactly its length of lower-case hexadecimal digits.
pub(crate) fn check_digest(s: &str) -> Result<(), DigestProblem> {
    let (algorithm, hex) = s.split_once(':').ok_or(DigestProblem::Format)?;
    let (algorithm, expected) = match algorithm {
        "sha256" => ("sha256", 64),
        "sha384" => ("sha384", 96),
        "sha512" => ("sha512", 128),
        other => {
            return Err(DigestProblem::Unsupported {
                algorithm: other.into(),
            });
        }
    };
    if hex.len() != expected {
        return Err(DigestProblem::Length {
            algorithm,
            expected,
            found: hex.len(),
        });
    }
    if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(DigestProblem::Format);
    }
    Ok(())
}

/// `identifier`: 64 lower-case hexadecimal digits (an image id).
pub(crate) fn is_identifier(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn productions() {
        for d in [
            "docker.io",
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "a",
            "A-b.C9",
            "xn--n3h.com:18080",
            "[::1]",
            "[::1]:5000",
            "[2001:db8:1:2:3:4:5:6]",
        ] {
            assert!(is_domain(d), "{d}");
        }
        for d in [
            "",
            "-a",
            "a-",
            "a..b",
            "a_b",
            "a:",
            "a:b",
            ":5000",
            "[]",
            "[::1",
            "[::1]x",
            "[::1]:",
            "[fe80::1%eth0]",
            "[::1.2.3.4]",
            "a:1:2",
        ] {
            assert!(!is_domain(d), "{d}");
        }
        for p in ["a", "a.b", "a_b", "a__b", "a---b", "a-b_c.d", "0"] {
            assert!(is_path_component(p), "{p}");
        }
        for p in [
            "", "A", "_a", "a_", "a___b", "a..b", "a._b", "a-.b", "a/b", "é",
        ] {
            assert!(!is_path_component(p), "{p}");
        }
        assert!(is_tag("A"));
        assert!(is_tag("_x.y-Z"));
        assert!(is_tag(&"t".repeat(128)));
        assert!(!is_tag(&"t".repeat(129)));
        for t in ["", ".x", "-x", "a/b", "a:b", "é"] {
            assert!(!is_tag(t), "{t}");
        }
        assert!(is_digest_shaped(&format!(
            "sha256+b64.x-y_z:{}",
            "A".repeat(32)
        )));
        assert!(!is_digest_shaped(&format!("1sha:{}", "a".repeat(32))));
        assert!(!is_digest_shaped(&format!("sha256:{}", "a".repeat(31))));
        assert!(!is_digest_shaped(&format!("sha256:{}g", "a".repeat(32))));
        assert!(!is_digest_shaped(&format!("sha--256:{}", "a".repeat(32))));
        assert!(is_identifier(&"0a".repeat(32)));
        assert!(!is_identifier(&"0A".repeat(32)));
    }

    #[test]
    fn digests_as_go_digest_checks_them() {
        assert_eq!(check_digest(&format!("sha256:{}", "f".repeat(64))), Ok(()));
        assert_eq!(check_digest(&format!("sha384:{}", "f".repeat(96))), Ok(()));
        assert_eq!(check_digest(&format!("sha512:{}", "f".repeat(128))), Ok(()));
        assert!(matches!(
            check_digest(&format!("md5:{}", "f".repeat(32))),
            Err(DigestProblem::Unsupported { .. })
        ));
        assert!(matches!(
            check_digest(&format!("sha256:{}", "f".repeat(34))),
            Err(DigestProblem::Length { found: 34, .. })
        ));
        assert_eq!(
            check_digest(&format!("sha256:{}", "F".repeat(64))),
            Err(DigestProblem::Format)
        );
    }
}
