//! Unit tests of ARG/ENV scoping.

use super::*;
use crate::typed::Dockerfile;

fn scopes(src: &str, build_args: &[(&str, &str)]) -> (Scope, Vec<Scope>) {
    let df = Dockerfile::parse(src).unwrap();
    let args: BuildArgs = build_args
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let platform = PlatformArgs {
        build: "linux/amd64".parse().unwrap(),
        target: "linux/arm64".parse().unwrap(),
    };
    let global = df.global_scope(&args, &platform).unwrap();
    let mut stages = Vec::new();
    for stage in &df.stages {
        let mut scope = global.stage(vec![("PATH".into(), "/bin".into())]);
        for step in &stage.instructions {
            scope.apply(&step.instruction).unwrap();
        }
        stages.push(scope);
    }
    (global, stages)
}

fn val(scope: &Scope, word: &str) -> String {
    scope.expand(word).unwrap().value
}

#[test]
fn global_args_reach_from_lines_only() {
    let (global, stages) = scopes("ARG A=1\nARG B=${A}2\nFROM x\nRUN y\n", &[]);
    assert_eq!(val(&global, "$A$B"), "112");
    assert_eq!(val(&stages[0], "[$A]"), "[]");
}

#[test]
fn redeclared_arg_takes_global_or_build_value() {
    let (_, stages) = scopes("ARG A=1\nARG C=3\nFROM x\nARG A\nARG C\n", &[("C", "9")]);
    assert_eq!(val(&stages[0], "$A$C"), "19");
    let used = stages[0].expand("$A").unwrap().used_args;
    assert!(used.contains("A"));
}

#[test]
fn build_arg_wins_over_default() {
    let (global, stages) = scopes("ARG A=1\nFROM x\nARG B=2\n", &[("A", "a"), ("B", "b")]);
    assert_eq!(val(&global, "$A"), "a");
    assert_eq!(val(&stages[0], "$B"), "b");
}

#[test]
fn env_pairs_see_old_values_and_win_over_args() {
    let (_, stages) = scopes("FROM x\nARG V=arg\nENV A=1\nENV A=2 B=$A V=env\n", &[]);
    assert_eq!(val(&stages[0], "$A$B"), "21");
    assert_eq!(val(&stages[0], "$V"), "env");
    assert!(stages[0].expand("$V").unwrap().used_args.is_empty());
    let env = stages[0].run_env();
    assert_eq!(env.iter().filter(|(k, _)| k == "V").count(), 1);
    assert_eq!(stages[0].env()[0], ("PATH".to_string(), "/bin".to_string()));
}

#[test]
fn platform_args_are_global() {
    let (global, stages) = scopes("FROM x\nARG TARGETARCH\nARG BUILDOS\n", &[]);
    assert_eq!(val(&global, "$TARGETPLATFORM"), "linux/arm64");
    assert_eq!(
        val(&stages[0], "$TARGETARCH-$BUILDOS-[$BUILDARCH]"),
        "arm64-linux-[]"
    );
}

#[test]
fn arg_without_value_is_unset() {
    let (_, stages) = scopes("FROM x\nARG NOPE\n", &[]);
    assert_eq!(val(&stages[0], "${NOPE-unset}"), "unset");
    assert_eq!(stages[0].args().count(), 0);
}

#[test]
fn set_env_is_literal() {
    let (_, mut stages) = scopes("FROM x\nENV A=1\n", &[]);
    let scope = &mut stages[0];
    scope.set_env("PATH", "/sbin:$HOME");
    scope.set_env("NEW", "'q'");
    assert_eq!(
        scope.env()[0],
        ("PATH".to_string(), "/sbin:$HOME".to_string())
    );
    assert_eq!(val(scope, "$NEW"), "'q'");
}
