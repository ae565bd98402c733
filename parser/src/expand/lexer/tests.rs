//! Unit tests of the lexer: quoting, substitution forms, word splitting and
//! what an expansion records.

use std::collections::BTreeMap;

use super::*;
use crate::expand::Var;

fn env() -> BTreeMap<String, String> {
    [
        ("PWD", "/home"),
        ("EMPTY", ""),
        ("SP", "a  b "),
        ("P", "a/b/c.tar.gz"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn word(w: &str) -> Result<String, ExpandErrorKind> {
    Lexer::new('\\')
        .expand(w, &env())
        .map(|e| e.value)
        .map_err(|e| e.kind)
}

fn words(w: &str) -> Vec<String> {
    Lexer::new('\\').expand_words(w, &env()).unwrap().value
}

#[test]
fn quotes_and_escapes() {
    assert_eq!(word(r#"a"b c"'d e'\ f"#).unwrap(), "ab cd e f");
    assert_eq!(word(r#""\$PWD \x""#).unwrap(), r"$PWD \x");
    assert_eq!(word(r"'\$PWD'").unwrap(), r"\$PWD");
    assert!(matches!(
        word("'open"),
        Err(ExpandErrorKind::UnterminatedQuote { .. })
    ));
    assert!(matches!(
        word("\"open"),
        Err(ExpandErrorKind::UnterminatedQuote { .. })
    ));
}

#[test]
fn substitutions() {
    assert_eq!(word("$PWD${PWD}").unwrap(), "/home/home");
    assert_eq!(word("${NOPE:-x}${EMPTY:-y}${EMPTY-z}").unwrap(), "xy");
    assert_eq!(
        word("${PWD:+x}${EMPTY:+y}${EMPTY+z}${NOPE+w}").unwrap(),
        "xz"
    );
    assert_eq!(word("${PWD?}").unwrap(), "/home");
    assert!(
        matches!(word("${NOPE?gone}"), Err(ExpandErrorKind::Required { message, .. }) if message == "gone")
    );
    assert!(matches!(
        word("${EMPTY:?}"),
        Err(ExpandErrorKind::Required { .. })
    ));
    assert!(matches!(word("${}"), Err(ExpandErrorKind::BadSubstitution)));
    assert!(matches!(word("${PWD"), Err(ExpandErrorKind::MissingBrace)));
    assert!(matches!(
        word("${PWD:x}"),
        Err(ExpandErrorKind::UnsupportedModifier { .. })
    ));
    assert!(matches!(
        word("${PWD:#x}"),
        Err(ExpandErrorKind::UnsupportedModifier { .. })
    ));
}

#[test]
fn pattern_forms() {
    assert_eq!(word("${P#*/}").unwrap(), "b/c.tar.gz");
    assert_eq!(word("${P##*/}").unwrap(), "c.tar.gz");
    assert_eq!(word("${P%.*}").unwrap(), "a/b/c.tar");
    assert_eq!(word("${P%%.*}").unwrap(), "a/b/c");
    assert_eq!(word("${P/\\//-}").unwrap(), "a-b/c.tar.gz");
    assert_eq!(word("${P//\\//-}").unwrap(), "a-b-c.tar.gz");
    assert_eq!(word("${NOPE#x}").unwrap(), "");
}

#[test]
fn splitting() {
    assert_eq!(words("x${SP}y"), vec!["xa", "b", "y"]);
    assert_eq!(words("\"x${SP}y\""), vec!["xa  b y"]);
    assert_eq!(words("a\\ b c"), vec!["a b", "c"]);
    assert!(words("\"\"").is_empty());
}

#[test]
fn backtick_escape() {
    let lexer = Lexer::new('`');
    assert_eq!(lexer.expand("a`$PWD\\x", &env()).unwrap().value, "a$PWD\\x");
}

#[test]
fn records_args_and_unset() {
    struct Mixed;
    impl Vars for Mixed {
        fn var(&self, name: &str) -> Option<Var<'_>> {
            match name {
                "A" => Some(Var {
                    value: "1",
                    from_arg: true,
                }),
                "E" => Some(Var {
                    value: "2",
                    from_arg: false,
                }),
                _ => None,
            }
        }
    }
    let e = Lexer::new('\\').expand("$A$E$U${V:-x}", &Mixed).unwrap();
    assert_eq!(e.value, "12x");
    assert_eq!(e.used_args.into_iter().collect::<Vec<_>>(), vec!["A"]);
    assert_eq!(e.unset.into_iter().collect::<Vec<_>>(), vec!["U", "V"]);
}

#[test]
fn heredoc_lexer_keeps_quotes() {
    let e = Lexer::heredoc()
        .expand("echo \"$PWD\" 'x' \\$y", &env())
        .unwrap();
    assert_eq!(e.value, "echo \"/home\" 'x' $y");
}
