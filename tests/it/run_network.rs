//! `--network default`: outbound IPv4 through pasta (docker's default
//! bridge is IPv4-only too), checked by reaching a server on the host's
//! loopback through the gateway address pasta maps to it.

use std::io::Read;
use std::net::TcpListener;
use std::time::Duration;

use crate::require_root;
use crate::util::*;

#[test]
fn default_network_reaches_the_host() {
    require_root!();
    if !["/usr/bin/pasta", "/usr/sbin/pasta", "/bin/pasta"]
        .iter()
        .any(|p| std::path::Path::new(p).exists())
    {
        eprintln!("skipped: pasta (package passt) is not installed");
        return;
    }
    let root = TestRoot::with_busybox();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = String::new();
        s.read_to_string(&mut got).unwrap();
        got
    });
    let script = format!(
        "gw=$(ip route | awk '/^default/ {{print $3}}'); echo \"gw=$gw\" >&2; \
         echo hello-from-the-container | nc -w 5 \"$gw\" {port}; \
         ip -6 addr show scope global | grep -c inet6 || true"
    );
    let out = root.run(["run", "--rm", "busybox", "sh", "-c", &script]);
    assert_success(&out);
    assert_eq!(
        server.join().unwrap(),
        "hello-from-the-container\n",
        "{}",
        stderr(&out)
    );
    // no global IPv6 address: IPv4 only, as docker's default network
    assert_eq!(stdout(&out).trim(), "0", "{}", stderr(&out));
}
