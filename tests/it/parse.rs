//! `kiln debug parse`, `expand-word` and `expand-words` driven as a user
//! would: dumps, typed output, and errors with `FILE:LINE:COL`, the offending
//! line, a caret and exit status 1.

use crate::util::*;

fn write(root: &TestRoot, name: &str, text: &str) -> String {
    let path = root.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn parse_dumps_the_syntax_tree() {
    let root = TestRoot::new();
    let case = workspace().join("testdata/dockerfiles/copy-add-flags");
    let out = root.ok(["debug", "parse", case.join("Dockerfile").to_str().unwrap()]);
    assert_eq!(out, std::fs::read_to_string(case.join("syntax")).unwrap());
}

#[test]
fn parse_typed_prints_stages() {
    let root = TestRoot::new();
    let file = write(
        &root,
        "Dockerfile",
        "FROM busybox AS base\nRUN --network=none true\n",
    );
    let out = root.ok(["debug", "parse", "--typed", &file]);
    assert!(
        out.contains("name: Some(\n") && out.contains("\"base\""),
        "{out}"
    );
    assert!(
        out.contains("network: Some(\n") && out.contains("None,"),
        "{out}"
    );
}

#[test]
fn syntax_error_shows_position_line_and_caret() {
    let root = TestRoot::new();
    let file = write(
        &root,
        "Dockerfile",
        "FROM busybox\nRUN echo ok\n  COPPY a /b/\n",
    );
    let out = root.run(["debug", "parse", &file]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{file}:3:3: unknown instruction: COPPY")),
        "{err}"
    );
    assert!(err.contains("3 | ") && err.contains("COPPY a /b/"), "{err}");
    let caret_line = err
        .lines()
        .find(|l| l.contains("^^^^^"))
        .unwrap_or_else(|| panic!("{err}"));
    let code_line = err.lines().find(|l| l.contains("COPPY a /b/")).unwrap();
    assert_eq!(caret_line.find('^'), code_line.find("COPPY"), "{err}");
    assert!(err.contains("did you mean COPY?"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn typed_error_points_at_the_flag() {
    let root = TestRoot::new();
    let file = write(
        &root,
        "Dockerfile",
        "FROM busybox\nCOPY --link \\\n     --chmode=755 a /b\n",
    );
    let out = root.run(["debug", "parse", "--typed", &file]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{file}:3:6: unknown flag: --chmode for COPY")),
        "{err}"
    );
    assert!(err.contains("--chmode=755 a /b"), "{err}");
    assert!(err.contains("did you mean --chmod?"), "{err}");
}

#[test]
fn unterminated_heredoc_and_empty_files_exit_1() {
    let root = TestRoot::new();
    let file = write(
        &root,
        "Dockerfile",
        "FROM busybox\nRUN <<EOF\necho never ends\n",
    );
    let out = root.run(["debug", "parse", &file]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(":2:1: unterminated heredoc \"EOF\""),
        "{}",
        stderr(&out)
    );
    let empty = write(&root, "Empty", "# only a comment\n\n");
    let out = root.run(["debug", "parse", &empty]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("file with no instructions"),
        "{}",
        stderr(&out)
    );
    let out = root.run(["debug", "parse", "/nonexistent/Dockerfile"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot read /nonexistent/Dockerfile"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn expand_word_and_words() {
    let root = TestRoot::new();
    let out = root.ok([
        "debug",
        "expand-word",
        "--env",
        "A=a b",
        "--",
        "x${A}'$A'${B:-def}",
    ]);
    assert_eq!(out, "xa b$Adef\n");
    let out = root.ok([
        "debug",
        "expand-words",
        "--env",
        "A=a  b",
        "--",
        "x${A} \"$A\"",
    ]);
    assert_eq!(out, "xa\nb\na  b\n");
    let out = root.ok(["debug", "expand-word", "--escape", "`", "--", "a`$A"]);
    assert_eq!(out, "a$A\n");
    let out = root.run(["debug", "expand-word", "--", "${A:?is required}"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("A: is required"), "{}", stderr(&out));
}
