//! Helpers for build tests that look inside the built image: build a
//! context, run a shell script in a container of the result (`kiln run
//! --rm`, what a user of the image sees), `stat` paths there, and write
//! context files and symlinks.
#![allow(dead_code)]

use std::path::Path;

use crate::util::*;

/// Builds `ctx` as `tag` (progress output returned), panicking on failure.
pub fn build(root: &TestRoot, ctx: &Path, tag: &str) -> String {
    root.build_ok(ctx, ["-t", tag])
}

/// Runs `script` with `sh -c` in a container of `image`; its stdout.
pub fn sh(root: &TestRoot, image: &str, script: &str) -> String {
    root.ok([
        "run",
        "--rm",
        "--network",
        "none",
        image,
        "sh",
        "-c",
        script,
    ])
}

/// `mode uid:gid type` of each path, one line each, as `stat` shows them
/// inside the image (`-` for a missing path).
pub fn stat(root: &TestRoot, image: &str, paths: &[&str]) -> Vec<String> {
    let script = paths
        .iter()
        .map(|p| format!("stat -c '%a %u:%g %F' {p} 2>/dev/null || echo -"))
        .collect::<Vec<_>>()
        .join("; ");
    sh(root, image, &script)
        .lines()
        .map(str::to_owned)
        .collect()
}

pub fn write(dir: &Path, rel: &str, content: &[u8]) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

pub fn symlink(dir: &Path, rel: &str, target: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, p).unwrap();
}

/// The output of a build expected to fail: exit status 1, stderr returned.
pub fn build_fails(root: &TestRoot, ctx: &Path, args: &[&str]) -> String {
    let out = root.build(ctx, args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    err
}

/// `#N CACHED` / `#N DONE` of the `[i/n]` steps: (cached, ran).
pub fn step_outcomes(progress: &str) -> (Vec<String>, Vec<String>) {
    let mut names = std::collections::HashMap::new();
    let (mut cached, mut ran) = (Vec::new(), Vec::new());
    for l in progress.lines() {
        let Some((n, rest)) = l.split_once(' ') else {
            continue;
        };
        if rest.starts_with('[') && !rest.starts_with("[internal]") {
            names.entry(n.to_string()).or_insert(rest.to_string());
        } else if rest == "CACHED" {
            cached.extend(names.get(n).cloned());
        } else if rest.starts_with("DONE ") {
            ran.extend(names.get(n).cloned());
        }
    }
    ran.retain(|r| !cached.contains(r));
    (cached, ran)
}
