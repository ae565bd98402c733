//! Unit tests of the syntax layer: line structure, arguments, heredocs,
//! spans and errors.

use super::*;
use crate::syntax::Keyword;

fn dump(src: &str) -> String {
    parse(src).unwrap().dump()
}

fn err(src: &str) -> Error {
    parse(src).unwrap_err()
}

#[test]
fn continuations_comments_and_blank_lines() {
    assert_eq!(
        dump("FROM a\nRUN x \\\n# c\n\n  y \\\n\tz\n"),
        "(from \"a\")\n(run \"x   y \\tz\")\n"
    );
    assert_eq!(
        dump("# escape=`\nFROM a\nRUN b `\n c\n"),
        "(from \"a\")\n(run \"b  c\")\n"
    );
    assert_eq!(
        dump("FROM a\r\nRUN b \\\r\n c\r\n"),
        "(from \"a\")\n(run \"b  c\")\n"
    );
    assert_eq!(dump("FROM a\nRUN b \\"), "(from \"a\")\n(run \"b\")\n");
}

#[test]
fn keywords_are_case_insensitive() {
    let tree = parse("from a\nRuN b\n").unwrap();
    assert_eq!(tree.nodes[1].keyword, Keyword::Run);
}

#[test]
fn spans_point_at_instructions_and_flags() {
    let src = "FROM a\n\n  COPY --from=x \\\n   --chown=1 a b\n";
    let tree = parse(src).unwrap();
    let copy = &tree.nodes[1];
    assert_eq!((copy.span.line, copy.span.col), (3, 3));
    assert_eq!(copy.span.text(src), "COPY --from=x \\\n   --chown=1 a b");
    assert_eq!((copy.flags[1].span.line, copy.flags[1].span.col), (4, 4));
    assert_eq!(copy.flags[1].span.text(src), "--chown=1");
}

#[test]
fn heredocs_are_read_after_the_line() {
    let src = "FROM a\nRUN <<A cat - <<-'B'\none $x\nA\n\ttwo\n\tB\nRUN done\n";
    let tree = parse(src).unwrap();
    let run = &tree.nodes[1];
    assert_eq!(run.heredocs.len(), 2);
    assert_eq!(run.heredocs[0].content, "one $x\n");
    assert!(run.heredocs[0].expand);
    assert_eq!(run.heredocs[1].body(), "two\n");
    assert!(!run.heredocs[1].expand);
    assert_eq!(
        run.span.text(src),
        "RUN <<A cat - <<-'B'\none $x\nA\n\ttwo\n\tB"
    );
    assert_eq!(tree.nodes[2].original, "RUN done");
    assert!(
        parse("FROM a\nRUN [\"<<EOF\"]\nRUN x\n").unwrap().nodes[1]
            .heredocs
            .is_empty()
    );
    let onbuild = parse("FROM a\nONBUILD RUN <<E\nx\nE\n").unwrap();
    assert_eq!(onbuild.nodes[1].heredocs[0].content, "x\n");
}

#[test]
fn errors_have_positions() {
    let e = err("FROM a\nRUN <<EOF\nno end\n");
    assert!(matches!(e.kind, ErrorKind::UnterminatedHeredoc { .. }));
    assert_eq!((e.span.line, e.span.col), (2, 1));
    let e = err("FROM a\n  FORM b\n");
    assert!(matches!(
        e.kind,
        ErrorKind::UnknownInstruction {
            suggestion: Some("FROM"),
            ..
        }
    ));
    assert_eq!((e.span.line, e.span.col), (2, 3));
    let e = err("FROM a\nENV X\n");
    assert!(matches!(e.kind, ErrorKind::MissingValue { .. }));
    let e = err("# only\n\n");
    assert!(matches!(e.kind, ErrorKind::NoInstructions));
    assert!(matches!(err("").kind, ErrorKind::NoInstructions));
}

#[test]
fn json_fallback_warns() {
    let tree = parse("FROM a\nCMD [1, 2]\n").unwrap();
    assert_eq!(tree.nodes[1].args, Args::Text("[1, 2]".into()));
    assert_eq!(tree.warnings[0].kind, WarningKind::JsonNotStringArray);
}
