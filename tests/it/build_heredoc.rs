//! Heredocs through `kiln build`: inline files of COPY (expanded or not,
//! several at once, `--chmod`) and RUN scripts (shell, shebang, as stdin),
//! checked inside the built image.

use crate::build_check::*;
use crate::require_root;
use crate::util::*;

#[test]
fn heredocs_make_files() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[(
        "Dockerfile",
        "FROM busybox\n\
         ARG WHO=world\n\
         COPY <<EOF /h/greeting\n\
         hello $WHO\n\
         EOF\n\
         COPY <<\"EOF\" /h/literal\n\
         hello $WHO\n\
         EOF\n\
         COPY <<one.txt <<two.txt /h/multi/\n\
         first\n\
         one.txt\n\
         second\n\
         two.txt\n\
         COPY --chmod=755 <<EOF /h/script.sh\n\
         #!/bin/sh\n\
         echo from script\n\
         EOF\n\
         COPY --chown=app <<-EOF /h/tabs\n\
         \tindented\n\
         \tEOF\n",
    )]);
    build(&root, ctx.path(), "heredocs");
    assert_eq!(
        sh(
            &root,
            "heredocs",
            "cat /h/greeting /h/literal /h/multi/one.txt /h/multi/two.txt; /h/script.sh; cat /h/tabs"
        ),
        "hello world\nhello $WHO\nfirst\nsecond\nfrom script\nindented\n"
    );
    assert_eq!(
        stat(
            &root,
            "heredocs",
            &["/h/greeting", "/h/multi/two.txt", "/h/script.sh", "/h/tabs"]
        ),
        [
            "644 0:0 regular file",
            "644 0:0 regular file",
            "755 0:0 regular file",
            "644 1000:1000 regular file"
        ]
    );
}

#[test]
fn heredocs_make_run_scripts() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[(
        "Dockerfile",
        "FROM busybox\n\
         ENV GREETING=hi\n\
         RUN <<EOF\n\
         echo one > /r1\n\
         echo two >> /r1\n\
         EOF\n\
         RUN <<EOF\n\
         #!/usr/bin/awk -f\n\
         BEGIN { print \"awk ran\" > \"/r2\" }\n\
         EOF\n\
         RUN cat <<EOF > /r3\n\
         line $GREETING\n\
         EOF\n\
         RUN <<EOF sh -e\n\
         echo piped > /r4\n\
         EOF\n\
         RUN cat <<A > /r5 && cat <<B >> /r5\n\
         first\n\
         A\n\
         second\n\
         B\n\
         RUN <<-EOF\n\
         \techo tabbed > /r6\n\
         \tEOF\n",
    )]);
    build(&root, ctx.path(), "scripts");
    assert_eq!(
        sh(&root, "scripts", "cat /r1 /r2 /r3 /r4 /r5 /r6"),
        "one\ntwo\nawk ran\nline hi\npiped\nfirst\nsecond\ntabbed\n"
    );
}
