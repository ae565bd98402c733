//! Processes as the state files remember them: a pid plus its start time,
//! read from `/proc/<pid>/stat`, so that a pid recycled after a crash is
//! never mistaken for the container's process. Behind a trait so the
//! reconciliation logic is tested with a fake process table.

use crate::container::ProcRef;

/// Looks processes up.
pub trait ProcessTable {
    /// The start time of a live (not zombie) process, or `None`.
    fn start_time(&self, pid: i32) -> Option<u64>;

    /// True when `p` still names the same live process.
    fn is_alive(&self, p: &ProcRef) -> bool {
        self.start_time(p.pid) == Some(p.start_time)
    }
}

/// The real `/proc`.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostProcesses;

/// Parses `/proc/<pid>/stat`: returns (state, start time). The command name
/// may contain spaces and parentheses, so fields are counted after the
/// last `)`.
pub(crate) fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 3 is the state; the start time is field 22.
    let start = fields.nth(22 - 4)?.parse().ok()?;
    Some((state, start))
}

impl ProcessTable for HostProcesses {
    fn start_time(&self, pid: i32) -> Option<u64> {
        if pid <= 0 {
            return None;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        match parse_stat(&stat)? {
            ('Z' | 'X', _) => None,
            (_, start) => Some(start),
        }
    }
}

impl ProcRef {
    /// The live process `pid`, identified with its start time.
    pub fn of(pid: i32) -> Option<ProcRef> {
        HostProcesses
            .start_time(pid)
            .map(|start_time| ProcRef { pid, start_time })
    }

    /// The calling process.
    pub fn current() -> Option<ProcRef> {
        ProcRef::of(std::process::id() as i32)
    }
}

#[cfg(test)]
pub(crate) mod fake {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use super::ProcessTable;

    /// A process table the test fills in.
    #[derive(Default)]
    pub struct FakeProcesses {
        pub live: RefCell<HashMap<i32, u64>>,
    }

    impl FakeProcesses {
        pub fn with(live: &[(i32, u64)]) -> FakeProcesses {
            FakeProcesses {
                live: RefCell::new(live.iter().copied().collect()),
            }
        }
    }

    impl ProcessTable for FakeProcesses {
        fn start_time(&self, pid: i32) -> Option<u64> {
            self.live.borrow().get(&pid).copied()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_command_names() {
        let stat =
            "1234 (a) b (c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100";
        assert_eq!(parse_stat(stat), Some(('S', 987654)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_alive_and_stable() {
        let me = ProcRef::current().unwrap();
        assert!(HostProcesses.is_alive(&me));
        let other = ProcRef {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!HostProcesses.is_alive(&other));
        assert_eq!(HostProcesses.start_time(-1), None);
    }

    #[test]
    fn zombies_are_dead() {
        let child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        // Wait until it has exited but is not yet reaped.
        for _ in 0..200 {
            if HostProcesses.start_time(pid).is_none() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(HostProcesses.start_time(pid), None);
        let mut child = child;
        child.wait().unwrap();
    }
}
