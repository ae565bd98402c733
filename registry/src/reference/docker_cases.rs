//! What docker answers for image references, as a table of our own cases:
//! each rule of distribution/reference's `ParseNormalizedNamed` (domain
//! split, `library/` prefix, lower-case repository, path-component
//! separators, tag and digest grammar, IPv6 hosts, length limits) exercised
//! by inputs written for kiln, with what kiln must answer.

use super::*;

const F64: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// 64 lower-case hexadecimal digits: an image id, never a name.
const ID: &str = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";

/// (input, registry, repository, tag) for inputs without a digest.
const ACCEPTED: &[(&str, &str, &str, &str)] = &[
    // one component: Docker Hub's official namespace, `latest` by default
    ("alpine", "docker.io", "library/alpine", "latest"),
    ("alpine:3.20", "docker.io", "library/alpine", "3.20"),
    ("my_app", "docker.io", "library/my_app", "latest"),
    ("my.app:v1", "docker.io", "library/my.app", "v1"),
    // a dotted first component without '/' is a name, and `:NNNN` a tag
    (
        "web.example:8443",
        "docker.io",
        "library/web.example",
        "8443",
    ),
    ("10.0.0.7", "docker.io", "library/10.0.0.7", "latest"),
    ("10.0.0.7:9000", "docker.io", "library/10.0.0.7", "9000"),
    ("localhost", "docker.io", "library/localhost", "latest"),
    ("localhost:8080", "docker.io", "library/localhost", "8080"),
    // tags keep their case
    (
        "tools:Nightly_2.x",
        "docker.io",
        "library/tools",
        "Nightly_2.x",
    ),
    // a first component without '.', ':' or upper case is a Hub namespace
    ("acme/api", "docker.io", "acme/api", "latest"),
    ("acme/team/api:2", "docker.io", "acme/team/api", "2"),
    (
        "acme/web.example:8443",
        "docker.io",
        "acme/web.example",
        "8443",
    ),
    ("x/y", "docker.io", "x/y", "latest"),
    ("a-b/c", "docker.io", "a-b/c", "latest"),
    ("a----b/c", "docker.io", "a----b/c", "latest"),
    ("a__b/c_d", "docker.io", "a__b/c_d", "latest"),
    ("library/alpine", "docker.io", "library/alpine", "latest"),
    // Docker Hub spelt out, and its legacy name
    ("docker.io/alpine", "docker.io", "library/alpine", "latest"),
    ("docker.io/acme/api", "docker.io", "acme/api", "latest"),
    (
        "docker.io/library/alpine:edge",
        "docker.io",
        "library/alpine",
        "edge",
    ),
    (
        "index.docker.io/alpine",
        "docker.io",
        "library/alpine",
        "latest",
    ),
    (
        "index.docker.io/acme/api",
        "docker.io",
        "acme/api",
        "latest",
    ),
    // other registries: a dot, a port, localhost or upper case
    (
        "registry.acme.test/api",
        "registry.acme.test",
        "api",
        "latest",
    ),
    (
        "registry.acme.test/team/api:rc-1",
        "registry.acme.test",
        "team/api",
        "rc-1",
    ),
    ("ci:5000/api", "ci:5000", "api", "latest"),
    ("ci:5000/api:7", "ci:5000", "api", "7"),
    ("localhost/api", "localhost", "api", "latest"),
    (
        "localhost:5000/team/api",
        "localhost:5000",
        "team/api",
        "latest",
    ),
    ("10.0.0.7/api", "10.0.0.7", "api", "latest"),
    ("10.0.0.7:5000/api:9000", "10.0.0.7:5000", "api", "9000"),
    ("Mirror/api", "Mirror", "api", "latest"),
    (
        "MIRROR.Acme.Test:443/api",
        "MIRROR.Acme.Test:443",
        "api",
        "latest",
    ),
    (
        "xn--bcher-kva.test/api:xn--bcher-kva.test",
        "xn--bcher-kva.test",
        "api",
        "xn--bcher-kva.test",
    ),
    (
        "gcr.test/acme.test/web-app:acme.test",
        "gcr.test",
        "acme.test/web-app",
        "acme.test",
    ),
    // IPv6 hosts in brackets, with or without a port
    ("[fd00::7]/api", "[fd00::7]", "api", "latest"),
    ("[fd00::7]:5000/api:1", "[fd00::7]:5000", "api", "1"),
    (
        "[fd00:1:2:3:4:5:6:7]/team/api",
        "[fd00:1:2:3:4:5:6:7]",
        "team/api",
        "latest",
    ),
    ("[::]:5000/api", "[::]:5000", "api", "latest"),
    // 63 hex digits is a name, and so is an id under a namespace
    (
        "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee0",
        "docker.io",
        "library/c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee0",
        "latest",
    ),
    (
        "acme/c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00",
        "docker.io",
        "acme/c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00",
        "latest",
    ),
    // a first component that is no host but a valid path component with a
    // dot: docker keeps the name as it is (no domain); so does kiln
    ("my_mirror.test/api", "my_mirror.test", "api", "latest"),
];

/// (input, registry, repository, tag, digest).
type Case = (String, String, String, Option<String>, Option<String>);

/// Accepted inputs that need a computed string.
fn accepted_computed() -> Vec<Case> {
    let sha256 = format!("sha256:{F64}");
    let sha384 = format!("sha384:{F64}{}", &F64[..32]);
    let sha512 = format!("sha512:{F64}{F64}");
    let s = |x: &str| x.to_string();
    vec![
        (
            format!("alpine@{sha256}"),
            s("docker.io"),
            s("library/alpine"),
            None,
            Some(sha256.clone()),
        ),
        (
            format!("alpine:3@{sha256}"),
            s("docker.io"),
            s("library/alpine"),
            Some(s("3")),
            Some(sha256.clone()),
        ),
        (
            format!("ci:5000/api@{sha384}"),
            s("ci:5000"),
            s("api"),
            None,
            Some(sha384),
        ),
        (
            format!("[fd00::7]:5000/api:1@{sha512}"),
            s("[fd00::7]:5000"),
            s("api"),
            Some(s("1")),
            Some(sha512),
        ),
        // the longest tag, 128 characters
        (
            format!("t:{}", "x".repeat(128)),
            s("docker.io"),
            s("library/t"),
            Some("x".repeat(128)),
            None,
        ),
        // the longest full name, 255 characters (registry/repository)
        (
            format!("r.test/{}", "n".repeat(248)),
            s("r.test"),
            "n".repeat(248),
            Some(s("latest")),
            None,
        ),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Empty,
    Uppercase,
    Hex,
    Invalid,
    TooLong,
    Digest,
}

fn kind(e: &ReferenceError) -> Kind {
    match e {
        ReferenceError::Empty => Kind::Empty,
        ReferenceError::Uppercase { .. } => Kind::Uppercase,
        ReferenceError::HexName { .. } => Kind::Hex,
        ReferenceError::Invalid { .. } => Kind::Invalid,
        ReferenceError::NameTooLong { .. } => Kind::TooLong,
        ReferenceError::Digest { .. } => Kind::Digest,
    }
}

fn rejected() -> Vec<(String, Kind)> {
    use Kind::*;
    let s = |x: &str| x.to_string();
    vec![
        (s(""), Empty),
        // an image id is not a name
        (s(ID), Hex),
        // upper case in the repository (also when the registry is implied)
        (s("Alpine"), Uppercase),
        (s("acme/Api:1"), Uppercase),
        (s("ci:5000/Team/api"), Uppercase),
        (s("docker.io/acme/API"), Uppercase),
        (format!("alpine@SHA256:{F64}"), Uppercase),
        // no name, or an empty tag or path component
        (s(":1.0"), Invalid),
        (format!("@sha256:{F64}"), Invalid),
        (s("alpine:"), Invalid),
        (s("acme/"), Invalid),
        (s("acme//api"), Invalid),
        (s("docker.io/acme//api"), Invalid),
        (s("/api"), Invalid),
        // separators: one '.', one or two '_', any '-', never at an end
        (s("-api"), Invalid),
        (s("api-"), Invalid),
        (s("_api"), Invalid),
        (s("acme-/api"), Invalid),
        (s("-acme-/api"), Invalid),
        (s("a___b/c"), Invalid),
        (s("a..b/c"), Invalid),
        (s("a._b/c"), Invalid),
        (s("a-.b/c"), Invalid),
        (s("___/___"), Invalid),
        (s("acme/a%b"), Invalid),
        (s("a b"), Invalid),
        (s("alpine\t"), Invalid),
        (s("Ä/api"), Invalid),
        // registries: a valid host, an all-digit port, IPv6 in brackets
        // without zone or embedded IPv4, and never the whole reference
        (s("http://registry.acme.test/api"), Invalid),
        (s("-registry.test/api"), Invalid),
        (s("ci:50x0/api"), Invalid),
        (s("ci:/api"), Invalid),
        (s("fd00::7:5000/api"), Invalid),
        (s("[fd00::7]"), Invalid),
        (s("[fd00::7]:5000"), Invalid),
        (s("[fd00::7]:latest"), Invalid),
        (s("[fe80::7%eth1]:5000/api"), Invalid),
        (s("[::ffff:10.0.0.7]:5000/api"), Invalid),
        // tags: ASCII word characters, '.', '-', not first '.' or '-', ≤ 128
        (s("alpine:-rc"), Invalid),
        (s("alpine:.rc"), Invalid),
        (s("alpine:a/b"), Invalid),
        (s("alpine:ré"), Invalid),
        (format!("t:{}", "x".repeat(129)), Invalid),
        // digests: algorithm:hex shaped, then a known algorithm and length
        (s("alpine@nonsense"), Invalid),
        (format!("alpine@sha256:{}", &F64[..31]), Invalid),
        (format!("alpine@sha256:{}", &F64[..40]), Digest),
        (format!("alpine@sha256:{F64}00"), Digest),
        (format!("alpine@blake9:{F64}"), Digest),
        (format!("alpine@sha256:{}", F64.to_uppercase()), Digest),
        // the full name is at most 255 characters, counted after
        // normalisation (docker.io/ and library/ included)
        (format!("r.test/{}", "n".repeat(249)), TooLong),
        (format!("{}x", "n/".repeat(127)), TooLong),
        (s(&"n".repeat(240)), TooLong),
    ]
}

#[test]
fn docker_accepts() {
    let table = ACCEPTED.iter().map(|&(input, registry, repository, tag)| {
        (
            input.to_string(),
            registry.to_string(),
            repository.to_string(),
            Some(tag.to_string()),
            None,
        )
    });
    for (input, registry, repository, tag, digest) in table.chain(accepted_computed()) {
        let r = Reference::parse(&input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(r.registry(), registry, "{input}");
        assert_eq!(r.repository(), repository, "{input}");
        assert_eq!(r.tag(), tag.as_deref(), "{input}");
        assert_eq!(r.digest().map(|d| d.to_string()), digest, "{input}: digest");
        // the normalised and the familiar forms parse back to the same
        assert_eq!(Reference::parse(&r.to_string()).as_ref(), Ok(&r), "{input}");
        assert_eq!(Reference::parse(&r.familiar()).as_ref(), Ok(&r), "{input}");
    }
}

#[test]
fn docker_rejects() {
    for (input, want) in rejected() {
        match Reference::parse(&input) {
            Ok(r) => panic!("{input:?} parsed as {r}"),
            Err(e) => assert_eq!(kind(&e), want, "{input:?}: {e}"),
        }
    }
}

#[test]
fn familiar_names_as_docker_shows_them() {
    // (familiar name, full name, other spellings of the same)
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "alpine",
            "docker.io/library/alpine",
            &[
                "library/alpine",
                "docker.io/alpine",
                "index.docker.io/alpine",
            ],
        ),
        (
            "acme/api",
            "docker.io/acme/api",
            &["index.docker.io/acme/api"],
        ),
        ("acme/library", "docker.io/acme/library", &[]),
        ("library/acme/api", "docker.io/library/acme/api", &[]),
        (
            "my-app-1.2",
            "docker.io/library/my-app-1.2",
            &["index.docker.io/library/my-app-1.2"],
        ),
        ("localhost/api", "localhost/api", &[]),
        ("ci:5000/team/api", "ci:5000/team/api", &[]),
        ("registry.acme.test/api", "registry.acme.test/api", &[]),
        ("Mirror/api", "Mirror/api", &[]),
        ("[fd00::7]:5000/api", "[fd00::7]:5000/api", &[]),
    ];
    for (familiar, full, others) in cases {
        for input in [*familiar, *full].iter().chain(others.iter()) {
            let r = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.familiar_name(), *familiar, "{input}");
            assert_eq!(r.name(), *full, "{input}");
        }
    }
}

#[test]
fn oci_spec_form_is_built_from_the_parts() {
    let r = Reference::parse(&format!("ci:5000/team/api:v@sha256:{F64}")).unwrap();
    let oci = OciReference::from(&r);
    assert_eq!(oci.whole(), r.to_string());
    assert_eq!((oci.registry(), oci.repository()), ("ci:5000", "team/api"));
    assert_eq!(Reference::try_from(&oci), Ok(r));
}
