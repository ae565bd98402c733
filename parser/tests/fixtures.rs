//! Data-driven tests over `testdata/dockerfiles/<case>/`: each case holds a
//! `Dockerfile` (and optionally `build-args`, `KEY=VALUE` lines) and the
//! expected outputs beside it:
//!
//! - `syntax`: the syntax tree dump, or `error LINE:COL: message`;
//! - `typed`: the typed stages (Rust debug form), or the error;
//! - `expanded`: each stage's FROM and every instruction's words expanded in
//!   its scope, with the ARGs each expansion used.
//!
//! `UPDATE_EXPECT=1 cargo test -p kiln-parser --test fixtures` rewrites them.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use kiln_parser::{
    BuildArgs, CommandLine, Dockerfile, Error, Expanded, Instruction, PlatformArgs, Scope, Source,
    SyntaxTree,
};

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/dockerfiles");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("read {}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Dockerfile").is_file())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases under {}", root.display());
    cases
}

fn error_line(e: &Error) -> String {
    let mut out = format!("error {}: {}\n", e.span, e);
    if let Some(help) = e.help() {
        writeln!(out, "help: {help}").unwrap();
    }
    out
}

fn used(e: &Expanded<impl std::fmt::Debug>) -> String {
    if e.used_args.is_empty() {
        String::new()
    } else {
        let names: Vec<&str> = e.used_args.iter().map(String::as_str).collect();
        format!("  [args: {}]", names.join(" "))
    }
}

/// Expands a word and renders it with the ARGs it used.
fn word(scope: &Scope, label: &str, w: &str, out: &mut String) {
    match scope.expand(w) {
        Ok(e) => writeln!(out, "    {label}: {:?}{}", e.value, used(&e)).unwrap(),
        Err(err) => writeln!(out, "    {label}: error: {err}").unwrap(),
    }
}

fn expanded(df: &Dockerfile, build_args: &BuildArgs) -> String {
    let platform = PlatformArgs {
        build: "linux/amd64".parse().unwrap(),
        target: "linux/arm64".parse().unwrap(),
    };
    let mut out = String::new();
    let global = match df.global_scope(build_args, &platform) {
        Ok(g) => g,
        Err(e) => return error_line(&e),
    };
    let mut finals: Vec<Scope> = Vec::new();
    for stage in &df.stages {
        writeln!(
            out,
            "stage {} {:?}",
            stage.index,
            stage.name.as_deref().unwrap_or("")
        )
        .unwrap();
        word(&global, "from", &stage.base, &mut out);
        if let Some(p) = &stage.platform {
            word(&global, "platform", p, &mut out);
        }
        let base = global
            .expand(&stage.base)
            .map(|e| e.value)
            .unwrap_or_default();
        let mut scope = match df.stage_index(&base).filter(|&i| i < stage.index) {
            Some(i) => finals[i].clone(),
            None => global.stage(vec![("PATH".into(), "/usr/bin:/bin".into())]),
        };
        for step in &stage.instructions {
            writeln!(out, "  {}", step.original).unwrap();
            match &step.instruction {
                Instruction::Env(pairs) | Instruction::Label(pairs) => {
                    for p in pairs {
                        word(&scope, &format!("{:?}", p.key), &p.value, &mut out);
                    }
                }
                Instruction::Arg(decls) => {
                    for d in decls {
                        if let Some(default) = &d.default {
                            word(&scope, &format!("default {}", d.name), default, &mut out);
                        }
                    }
                }
                Instruction::Workdir(w) => word(&scope, "path", w, &mut out),
                Instruction::User(u) => word(&scope, "user", u, &mut out),
                Instruction::StopSignal(s) => word(&scope, "signal", s, &mut out),
                Instruction::Volume(v) => v.iter().for_each(|p| word(&scope, "path", p, &mut out)),
                Instruction::Expose(ports) => {
                    for p in ports {
                        match scope.expand_words(p) {
                            Ok(e) => writeln!(out, "    ports: {:?}{}", e.value, used(&e)).unwrap(),
                            Err(err) => writeln!(out, "    ports: error: {err}").unwrap(),
                        }
                    }
                }
                Instruction::Copy(c) => {
                    for s in &c.spec.sources {
                        match s {
                            Source::Path(p) => word(&scope, "src", p, &mut out),
                            Source::Heredoc(h) if h.expand => {
                                match scope.expand_heredoc(&h.body()) {
                                    Ok(e) => writeln!(
                                        out,
                                        "    heredoc {}: {:?}{}",
                                        h.name,
                                        e.value,
                                        used(&e)
                                    )
                                    .unwrap(),
                                    Err(err) => {
                                        writeln!(out, "    heredoc {}: error: {err}", h.name)
                                            .unwrap()
                                    }
                                }
                            }
                            Source::Heredoc(h) => {
                                writeln!(out, "    heredoc {} (literal): {:?}", h.name, h.body())
                                    .unwrap()
                            }
                        }
                    }
                    word(&scope, "dest", &c.spec.dest, &mut out);
                    if let Some(ch) = &c.spec.chown {
                        word(&scope, "chown", ch, &mut out);
                    }
                }
                Instruction::Add(a) => {
                    for s in &a.spec.sources {
                        if let Source::Path(p) = s {
                            word(&scope, "src", p, &mut out);
                        }
                    }
                    word(&scope, "dest", &a.spec.dest, &mut out);
                }
                Instruction::Run(run) => {
                    for m in &run.mounts {
                        match m.resolve(&scope) {
                            Ok(e) => writeln!(out, "    mount: {:?}{}", e.value, used(&e)).unwrap(),
                            Err(err) => writeln!(out, "    mount: error: {err}").unwrap(),
                        }
                    }
                    if let CommandLine::Shell(_) = run.command {
                        let env: Vec<String> = scope
                            .run_env()
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect();
                        writeln!(out, "    env: {env:?}").unwrap();
                    }
                }
                _ => {}
            }
            if let Err(err) = scope.apply(&step.instruction) {
                writeln!(out, "    scope error: {err}").unwrap();
            }
        }
        finals.push(scope);
    }
    out
}

fn check(path: &Path, actual: &str, failures: &mut Vec<String>) {
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    if expected != actual {
        failures.push(format!(
            "{}:\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        ));
    }
}

#[test]
fn dockerfile_fixtures() {
    let mut failures = Vec::new();
    for case in cases() {
        let src = std::fs::read_to_string(case.join("Dockerfile")).unwrap();
        let syntax = match SyntaxTree::parse(&src) {
            Ok(tree) => tree.dump(),
            Err(e) => error_line(&e),
        };
        check(&case.join("syntax"), &syntax, &mut failures);
        let typed = Dockerfile::parse(&src);
        let typed_out = match &typed {
            Ok(df) => format!("{df:#?}\n"),
            Err(e) => error_line(e),
        };
        check(&case.join("typed"), &typed_out, &mut failures);
        if let Ok(df) = &typed {
            let mut build_args = BuildArgs::new();
            if let Ok(text) = std::fs::read_to_string(case.join("build-args")) {
                for line in text.lines().filter(|l| !l.is_empty()) {
                    let (k, v) = line.split_once('=').unwrap_or((line, ""));
                    build_args.insert(k.to_string(), v.to_string());
                }
            }
            check(
                &case.join("expanded"),
                &expanded(df, &build_args),
                &mut failures,
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
