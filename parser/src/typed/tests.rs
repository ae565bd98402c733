//! Unit tests of the typed layer: stages, every instruction's fields and the
//! validation errors.

use std::time::Duration;

use super::*;
use crate::error::ErrorKind;

fn parse(src: &str) -> Dockerfile {
    Dockerfile::parse(src).unwrap()
}

fn kind(src: &str) -> ErrorKind {
    Dockerfile::parse(src).unwrap_err().kind
}

fn only(src: &str) -> Instruction {
    let mut df = parse(&format!("FROM scratch\n{src}\n"));
    df.stages.remove(0).instructions.remove(0).instruction
}

#[test]
fn stages_and_global_args() {
    let df =
        parse("ARG A B=2\nFROM --platform=$P x AS Build\nRUN a\nFROM build\nCOPY --from=0 a b\n");
    assert_eq!(df.global_args.len(), 2);
    assert_eq!(df.global_args[1].default.as_deref(), Some("2"));
    assert_eq!(df.stages.len(), 2);
    assert_eq!(df.stages[0].name.as_deref(), Some("build"));
    assert_eq!(df.stages[0].platform.as_deref(), Some("$P"));
    assert_eq!(df.stage_index("BUILD"), Some(0));
    assert_eq!(df.stage_index("1"), Some(1));
    assert_eq!(df.stage_index("busybox"), None);
    assert_eq!(df.stages[1].instructions[0].original, "COPY --from=0 a b");
}

#[test]
fn run_fields() {
    let Instruction::Run(run) =
        only("RUN --mount=type=cache,target=/c --network=none --security=insecure [\"a\", \"b\"]")
    else {
        panic!("not RUN");
    };
    assert_eq!(run.command, CommandLine::Exec(vec!["a".into(), "b".into()]));
    assert_eq!(run.mounts.len(), 1);
    assert_eq!(run.network, Some(NetworkMode::None));
    assert_eq!(run.security, Some(SecurityMode::Insecure));
}

#[test]
fn copy_and_add_flags() {
    let Instruction::Copy(c) = only(
        "COPY --from=b --chown=1:2 --chmod=755 --link --parents --exclude=*.md --exclude=x a b /d/",
    ) else {
        panic!("not COPY");
    };
    assert_eq!(c.from.as_deref(), Some("b"));
    assert!(c.parents && c.spec.link);
    assert_eq!(c.spec.exclude, vec!["*.md", "x"]);
    assert_eq!(c.spec.sources.len(), 2);
    assert_eq!(c.spec.dest, "/d/");
    let Instruction::Add(a) =
        only("ADD --checksum=sha256:00 --keep-git-dir=true --unpack=false https://x/y.tar /d")
    else {
        panic!("not ADD");
    };
    assert_eq!(a.checksum.as_deref(), Some("sha256:00"));
    assert!(a.keep_git_dir);
    assert_eq!(a.unpack, Some(false));
}

#[test]
fn copy_heredoc_sources() {
    let df = parse("FROM s\nCOPY <<A <<\"B\" /etc/\na $x\nA\nb\nB\n");
    let Instruction::Copy(c) = &df.stages[0].instructions[0].instruction else {
        panic!("not COPY");
    };
    let [Source::Heredoc(a), Source::Heredoc(b)] = c.spec.sources.as_slice() else {
        panic!("not heredocs: {:?}", c.spec.sources);
    };
    assert_eq!(
        (a.name.as_str(), a.content.as_str(), a.expand),
        ("A", "a $x\n", true)
    );
    assert_eq!((b.name.as_str(), b.expand), ("B", false));
}

#[test]
fn simple_instructions() {
    assert_eq!(
        only("ENV A=1 B=\"x y\""),
        Instruction::Env(vec![
            KeyValue {
                key: "A".into(),
                value: "1".into()
            },
            KeyValue {
                key: "B".into(),
                value: "\"x y\"".into()
            },
        ])
    );
    assert_eq!(
        only("ENV A x y"),
        Instruction::Env(vec![KeyValue {
            key: "A".into(),
            value: "x y".into()
        }])
    );
    assert_eq!(
        only("EXPOSE 80 53/udp 8000-8010"),
        Instruction::Expose(vec!["80".into(), "53/udp".into(), "8000-8010".into()])
    );
    assert_eq!(
        only("VOLUME [\"/a\", \"/b\"]"),
        Instruction::Volume(vec!["/a".into(), "/b".into()])
    );
    assert_eq!(only("USER 1:2"), Instruction::User("1:2".into()));
    assert_eq!(only("WORKDIR /a b"), Instruction::Workdir("/a b".into()));
    assert_eq!(
        only("STOPSIGNAL SIGTERM"),
        Instruction::StopSignal("SIGTERM".into())
    );
    assert_eq!(
        only("SHELL [\"sh\", \"-c\"]"),
        Instruction::Shell(vec!["sh".into(), "-c".into()])
    );
    assert_eq!(
        only("ENTRYPOINT"),
        Instruction::Entrypoint(CommandLine::Exec(vec![]))
    );
    assert_eq!(
        only("CMD echo hi"),
        Instruction::Cmd(CommandLine::Shell("echo hi".into()))
    );
    assert_eq!(
        only("MAINTAINER me <m@e>"),
        Instruction::Maintainer("me <m@e>".into())
    );
}

#[test]
fn onbuild_and_healthcheck() {
    let Instruction::Onbuild(o) = only("ONBUILD COPY --from=x a b") else {
        panic!("not ONBUILD");
    };
    assert_eq!(o.expression, "COPY --from=x a b");
    assert!(matches!(*o.instruction, Instruction::Copy(_)));
    assert_eq!(
        only("HEALTHCHECK NONE"),
        Instruction::Healthcheck(Healthcheck::None)
    );
    let Instruction::Healthcheck(Healthcheck::Check(h)) =
        only("HEALTHCHECK --interval=1m30s --timeout=0 --retries=3 CMD curl x")
    else {
        panic!("not HEALTHCHECK CMD");
    };
    assert_eq!(h.interval, Some(Duration::from_secs(90)));
    assert_eq!(h.timeout, None);
    assert_eq!(h.retries, Some(3));
    assert_eq!(h.command, CommandLine::Shell("curl x".into()));
}

#[test]
fn validation_errors() {
    assert!(matches!(
        kind("FROM a\nCOPY --form=x a b\n"),
        ErrorKind::UnknownFlag {
            suggestion: Some("from"),
            ..
        }
    ));
    assert!(matches!(
        kind("FROM a\nCOPY --from=x --from=y a b\n"),
        ErrorKind::DuplicateFlag { .. }
    ));
    assert!(matches!(
        kind("FROM a\nCOPY --from a b\n"),
        ErrorKind::FlagNeedsValue { .. }
    ));
    assert!(matches!(
        kind("FROM a\nCOPY --link=maybe a b\n"),
        ErrorKind::BadFlagValue { .. }
    ));
    assert!(matches!(
        kind("FROM a\nCOPY a\n"),
        ErrorKind::MissingArguments { .. }
    ));
    assert!(matches!(
        kind("FROM a\nCOPY a b c\n"),
        ErrorKind::DestinationNotDirectory { .. }
    ));
    assert!(matches!(
        kind("FROM a\nCOPY a <<E\nx\nE\n"),
        ErrorKind::MisplacedHeredoc { .. }
    ));
    assert!(matches!(
        kind("FROM a\nHEALTHCHECK --interval=5 CMD x\n"),
        ErrorKind::BadDuration { .. }
    ));
    assert!(matches!(
        kind("FROM a\nHEALTHCHECK --retries=-1 CMD x\n"),
        ErrorKind::BadFlagValue { .. }
    ));
    assert!(matches!(
        kind("FROM a\nHEALTHCHECK NONE x\n"),
        ErrorKind::BadHealthcheck { .. }
    ));
    assert!(matches!(
        kind("FROM a\nHEALTHCHECK TEST x\n"),
        ErrorKind::BadHealthcheck { .. }
    ));
    assert!(matches!(
        kind("FROM a\nONBUILD ONBUILD RUN x\n"),
        ErrorKind::BadOnbuildTrigger { .. }
    ));
    assert!(matches!(
        kind("FROM a\nONBUILD FROM b\n"),
        ErrorKind::BadOnbuildTrigger { .. }
    ));
    assert!(matches!(
        kind("FROM a\nONBUILD MAINTAINER b\n"),
        ErrorKind::BadOnbuildTrigger { .. }
    ));
    assert!(matches!(kind("RUN x\n"), ErrorKind::NoStage { .. }));
    assert!(matches!(kind("ARG x\n"), ErrorKind::NoFrom));
    assert!(matches!(kind("FROM a b\n"), ErrorKind::BadFrom));
    assert!(matches!(
        kind("FROM a AS 1x\n"),
        ErrorKind::BadStageName { .. }
    ));
    assert!(matches!(
        kind("FROM a AS x\nFROM b AS X\n"),
        ErrorKind::DuplicateStageName { .. }
    ));
    assert!(matches!(
        kind("FROM a\nSHELL sh -c\n"),
        ErrorKind::JsonFormRequired { .. }
    ));
    assert!(matches!(
        kind("FROM a\nEXPOSE http\n"),
        ErrorKind::BadPort { .. }
    ));
    assert!(matches!(
        kind("FROM a\nRUN\n"),
        ErrorKind::MissingArguments { .. }
    ));
    assert!(matches!(
        kind("FROM a\nRUN --mount=type=nfs x\n"),
        ErrorKind::Mount(_)
    ));
    assert!(matches!(
        kind("FROM a\nRUN --network=bridge x\n"),
        ErrorKind::BadFlagValue { .. }
    ));
    assert!(matches!(
        kind("FROM a\nENV --x=1 A=1\n"),
        ErrorKind::UnknownFlag { .. }
    ));
    assert!(matches!(
        kind("FROM a\nARG =x\n"),
        ErrorKind::BlankName { .. }
    ));
}

#[test]
fn flag_error_points_at_the_flag() {
    let src = "FROM a\nCOPY --link \\\n  --bogus=1 a b\n";
    let e = Dockerfile::parse(src).unwrap_err();
    assert_eq!((e.span.line, e.span.col), (3, 3));
    assert_eq!(e.span.text(src), "--bogus=1");
}

#[test]
fn ports() {
    let p = ExposedPort::parse("8000-8010/UDP").unwrap();
    assert_eq!((p.start, p.end, p.protocol), (8000, 8010, Protocol::Udp));
    assert_eq!(p.to_string(), "8000-8010/udp");
    assert_eq!(ExposedPort::parse("80").unwrap().to_string(), "80/tcp");
    assert!(ExposedPort::parse("80/xyz").is_none());
    assert!(ExposedPort::parse("90-80").is_none());
    assert!(ExposedPort::parse("1:80").is_none());
}
