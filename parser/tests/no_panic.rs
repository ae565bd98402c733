//! Properties: no input makes the parser, the typed layer, the scope or the
//! expander panic. Inputs are arbitrary bytes (as lossy UTF-8) and
//! Dockerfile-shaped text built from the pieces that drive the interesting
//! paths (keywords, flags, quotes, escapes, continuations, heredocs).

mod common;

use std::collections::BTreeMap;

use common::exercise::exercise;
use kiln_parser::{DockerIgnore, Lexer};
use proptest::prelude::*;

fn piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "FROM ",
        "RUN ",
        "COPY ",
        "ADD ",
        "ENV ",
        "ARG ",
        "LABEL ",
        "ONBUILD ",
        "HEALTHCHECK ",
        "CMD ",
        "SHELL ",
        "EXPOSE ",
        "WORKDIR ",
        "USER ",
        "VOLUME ",
        "STOPSIGNAL ",
        "MAINTAINER ",
        "ENTRYPOINT ",
        "# escape=`\n",
        "# syntax=x\n",
        "--mount=",
        "type=cache,",
        "target=/x",
        "--from=",
        "--chown=",
        "--link ",
        "--interval=",
        "--",
        "-",
        "=",
        "\\",
        "`",
        "\\\n",
        "`\n",
        "\n",
        " ",
        "\t",
        "\"",
        "'",
        "$",
        "${",
        "}",
        ":-",
        ":+",
        ":?",
        "#",
        "%",
        "/",
        "//",
        "<<",
        "<<-",
        "EOF",
        "\nEOF\n",
        "[",
        "]",
        ",",
        "\"a\"",
        "NONE",
        "CMD",
        "AS ",
        "x",
        "a=b",
        "\r",
        "é",
        "\u{feff}",
        "*",
        "?",
        "!",
        "..",
    ])
}

fn dockerfile_like() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..60).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_the_parser(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        exercise(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn dockerfile_shaped_text_never_panics(src in dockerfile_like()) {
        exercise(&src);
        exercise(&format!("FROM x\n{src}"));
    }

    #[test]
    fn arbitrary_words_never_panic_the_expander(word in ".{0,64}", shaped in dockerfile_like()) {
        let env: BTreeMap<String, String> =
            [("A", "a b"), ("E", ""), ("P", "x/y.z")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        for w in [word.as_str(), shaped.as_str()] {
            for escape in ['\\', '`'] {
                let lexer = Lexer::new(escape);
                let _ = lexer.expand(w, &env);
                let _ = lexer.expand_words(w, &env);
            }
            let _ = Lexer::heredoc().expand(w, &env);
        }
    }

    #[test]
    fn arbitrary_ignore_files_never_panic(src in ".{0,128}", path in "[a-z./*!]{0,24}") {
        if let Ok(ignore) = DockerIgnore::parse(&src) {
            let _ = ignore.matches(&path);
            let _ = ignore.can_skip_dir(&path);
        }
    }
}

/// Inputs the fuzzer found (`testdata/fuzz-regressions/`), kept so they stay
/// fixed.
#[test]
fn fuzz_regressions() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/fuzz-regressions");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        exercise(&String::from_utf8_lossy(&bytes));
    }
}
