//! Sandbox start-to-exit of `/bin/true` as a build pays it for a RUN step:
//! from `LinuxSandbox::spawn` to the outcome, in a process that is already
//! running (no CLI start), with the kiln binary as the helper — its
//! re-exec, the namespaces, mounts, pivot_root, the process and the
//! cleanup. Prints min, median and p90 over the runs for the default
//! network (own namespace, `lo` up) and for `--network host`.
//!
//! usage: cargo run --release -p kiln-executor --example sandbox_bench -- \
//!            ROOTFS_DIR [KILN_BINARY [RUNS]]        (needs root)

use std::path::Path;
use std::time::{Duration, Instant};

use kiln_executor::{Cancel, LinuxSandbox, Rootfs, Sandbox, SandboxRequest, Stdio};

fn run_once(sandbox: &LinuxSandbox, rootfs: &Path, host_net: bool) -> Result<Duration, String> {
    let mut spec = kiln_executor::spec::default_spec(&["/bin/true".to_string()]);
    if host_net {
        kiln_executor::spec::set_host_network(&mut spec);
    }
    let mut request = SandboxRequest::new(Rootfs::Dir(rootfs.to_path_buf()), spec);
    request.stdin = Stdio::Null;
    request.stdout = Stdio::Null;
    request.stderr = Stdio::Null;
    let start = Instant::now();
    let mut running = sandbox.spawn(request).map_err(|e| e.to_string())?;
    let outcome = running.wait(&Cancel::new()).map_err(|e| e.to_string())?;
    drop(running);
    let took = start.elapsed();
    if outcome.code() != 0 {
        return Err(format!("/bin/true ended with {outcome}"));
    }
    Ok(took)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: sandbox_bench ROOTFS_DIR [KILN_BINARY [RUNS]]";
    let rootfs = std::fs::canonicalize(args.next().ok_or(usage)?)?;
    let kiln = args.next().unwrap_or_else(|| "target/release/kiln".into());
    let runs: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(300);
    let sandbox = LinuxSandbox::with_helper(std::fs::canonicalize(kiln)?);
    for (label, host_net) in [("defaults", false), ("--network host", true)] {
        for _ in 0..20 {
            run_once(&sandbox, &rootfs, host_net)?;
        }
        let mut times = (0..runs)
            .map(|_| run_once(&sandbox, &rootfs, host_net))
            .collect::<Result<Vec<_>, _>>()?;
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "spawn to exit ({label}): median {:.2} ms, min {:.2} ms, p90 {:.2} ms over {runs} runs",
            ms(times[runs / 2]),
            ms(times[0]),
            ms(times[runs * 9 / 10]),
        );
    }
    Ok(())
}
