//! Unit tests of `.dockerignore` matching.

use super::*;

fn ig(src: &str) -> DockerIgnore {
    DockerIgnore::parse(src).unwrap()
}

#[test]
fn go_match_semantics() {
    let i = ig("*.md\nsrc/*/gen\n?.txt\n[ab]c\n");
    assert!(i.matches("README.md"));
    assert!(!i.matches("docs/README.md"), "* does not cross directories");
    assert!(i.matches("src/x/gen"));
    assert!(
        i.matches("src/x/gen/deep/file"),
        "children of a match are excluded"
    );
    assert!(!i.matches("src/x/y/gen"));
    assert!(i.matches("a.txt"));
    assert!(!i.matches("ab.txt"));
    assert!(i.matches("bc"));
    assert!(!i.matches("cc"));
}

#[test]
fn double_star() {
    let i = ig("**/*.log\nbuild/**\n");
    assert!(i.matches("x.log"));
    assert!(i.matches("a/b/x.log"));
    assert!(i.matches("build/a/b"));
    assert!(!i.matches("build"));
    let i = ig("a/**/b\n");
    assert!(i.matches("a/b"));
    assert!(i.matches("a/x/y/b"));
}

#[test]
fn exceptions_last_match_wins() {
    let i = ig("*.md\n!README.md\nREADME*.md\n");
    assert!(i.matches("README.md"));
    let i = ig("docs\n!docs/keep.md\n");
    assert!(i.matches("docs/other.md"));
    assert!(!i.matches("docs/keep.md"));
    assert!(!i.can_skip_dir("docs"));
}

#[test]
fn cleaning_and_comments() {
    let i = ig("\u{feff}# comment\n  /abs  \n./rel/\nx/../y\n\n  # not a comment? trimmed later\n");
    assert!(i.matches("abs"));
    assert!(i.matches("rel"));
    assert!(i.matches("y"));
    assert!(!i.matches("x"));
    assert_eq!(i.patterns()[0], "abs");
}

#[test]
fn skipping_directories() {
    let i = ig("node_modules\n!node_modules/keep\n**/target\n!**/*.rs\n");
    assert!(!i.can_skip_dir("node_modules"));
    assert!(
        !i.can_skip_dir("a/target"),
        "!**/*.rs may re-include below it"
    );
    let i = ig("node_modules\ntarget\n!src\n!docs/*.md\n");
    assert!(i.can_skip_dir("node_modules"));
    assert!(i.can_skip_dir("target"));
    assert!(!i.can_skip_dir("src"));
    let i = ig("docs\n!docs/*.md\n");
    assert!(!i.can_skip_dir("docs"));
    assert!(!i.matches("docs/a.md"));
    assert!(i.matches("docs/a.txt"));
    let i = ig("*\n!src\n");
    assert!(i.can_skip_dir("target"));
    assert!(!i.can_skip_dir("src"));
}

#[test]
fn bad_patterns() {
    assert_eq!(DockerIgnore::parse("ok\n[abc\n").unwrap_err().line, 2);
    assert!(DockerIgnore::parse("a\\").is_err());
    assert!(DockerIgnore::parse("!").is_err());
}

#[test]
fn candidates() {
    let [a, b] = ignore_file_candidates(Path::new("ctx/sub/app.Dockerfile"), Path::new("ctx"));
    assert_eq!(a, Path::new("ctx/sub/app.Dockerfile.dockerignore"));
    assert_eq!(b, Path::new("ctx/.dockerignore"));
}

#[test]
fn dockerfile_specific_file_wins() {
    let df = Path::new("ctx/app.Dockerfile");
    let both =
        |p: &Path| p.ends_with(".dockerignore") || p.ends_with("app.Dockerfile.dockerignore");
    assert_eq!(
        pick_ignore_file(df, Path::new("ctx"), both).unwrap(),
        Path::new("ctx/app.Dockerfile.dockerignore")
    );
    assert_eq!(pick_ignore_file(df, Path::new("ctx"), |_| false), None);
}
