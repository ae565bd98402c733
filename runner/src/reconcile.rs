//! What a recorded container state really is, given the live processes:
//! a container recorded as running whose supervisor and process are both
//! gone (SIGKILLed, or the machine rebooted) has exited — with the outcome
//! the sandbox helper wrote to `exit.json` if it could, else an unknown
//! status.

use chrono::Utc;
use kiln_executor::ExitOutcome;

use crate::container::{ContainerState, Status};
use crate::process::ProcessTable;

/// Decides what a recorded state really is, given the live processes and
/// the outcome the sandbox helper wrote when the process ended (if it did).
/// Returns the corrected state when it changed.
pub(crate) fn reconcile(
    state: &ContainerState,
    procs: &dyn ProcessTable,
    outcome: Option<ExitOutcome>,
) -> Option<ContainerState> {
    if !state.status.is_active() {
        return None;
    }
    let supervisor_alive = state.supervisor.is_some_and(|s| procs.is_alive(&s));
    if supervisor_alive {
        // It owns the container and will record what happens.
        return None;
    }
    let process_alive = state.process().is_some_and(|p| procs.is_alive(&p));
    let mut next = state.clone();
    next.supervisor = None;
    if process_alive && state.status == Status::Running {
        // The process outlived its supervisor: still running, but nobody
        // will record its exit status.
        // Unchanged when no supervisor was recorded in the first place.
        state.supervisor?;
        return Some(next);
    }
    next.sandbox = None;
    next.ports.clear();
    next.status = match (state.status, state.start_count) {
        // A start that died before running anything leaves it as it was.
        (Status::Starting, 0) => Status::Created,
        _ => Status::Exited,
    };
    if state.status == Status::Running {
        next.finished_at = Some(Utc::now());
        match outcome {
            Some(o) => {
                next.exit_code = Some(o.code());
                next.oom_killed = matches!(o, ExitOutcome::OomKilled);
                next.error = Some("the supervisor was killed".to_string());
            }
            None => {
                next.exit_code = None;
                next.error =
                    Some("the supervisor was killed: the exit status is unknown".to_string());
            }
        }
    } else {
        next.error = Some("the supervisor died while starting the container".to_string());
    }
    Some(next)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::container::ProcRef;
    use crate::process::fake::FakeProcesses;

    pub(crate) fn running(
        process: Option<(i32, u64)>,
        supervisor: Option<(i32, u64)>,
    ) -> ContainerState {
        let mut s = ContainerState::created();
        s.status = Status::Running;
        s.start_count = 1;
        s.sandbox = process.map(|(pid, start_time)| kiln_executor::SandboxHandle {
            id: "x".into(),
            init_pid: pid,
            init_start_time: start_time,
            helper_pid: 0,
            cgroup_dirs: vec![],
        });
        s.supervisor = supervisor.map(|(pid, start_time)| ProcRef { pid, start_time });
        s
    }

    #[test]
    fn reconcile_rules() {
        // Supervisor alive: trusted.
        let procs = FakeProcesses::with(&[(10, 1), (20, 2)]);
        assert!(reconcile(&running(Some((20, 2)), Some((10, 1))), &procs, None).is_none());
        // Supervisor alive, process gone: the supervisor will record it.
        let procs = FakeProcesses::with(&[(10, 1)]);
        assert!(reconcile(&running(Some((20, 2)), Some((10, 1))), &procs, None).is_none());
        // Supervisor gone, process alive: running, unsupervised.
        let procs = FakeProcesses::with(&[(20, 2)]);
        let s = reconcile(&running(Some((20, 2)), Some((10, 1))), &procs, None).unwrap();
        assert_eq!(s.status, Status::Running);
        assert!(s.supervisor.is_none());
        assert!(reconcile(&s, &procs, None).is_none());
        // Both gone: exited, status unknown.
        let procs = FakeProcesses::with(&[]);
        let s = reconcile(&running(Some((20, 2)), Some((10, 1))), &procs, None).unwrap();
        assert_eq!(s.status, Status::Exited);
        assert_eq!(s.exit_code, None);
        assert!(s.error.is_some() && s.finished_at.is_some());
        // A recycled pid (other start time) is not our process.
        let procs = FakeProcesses::with(&[(20, 99), (10, 98)]);
        let s = reconcile(&running(Some((20, 2)), Some((10, 1))), &procs, None).unwrap();
        assert_eq!(s.status, Status::Exited);
        // A first start whose supervisor died: back to created.
        let mut starting = running(None, Some((10, 1)));
        starting.status = Status::Starting;
        starting.start_count = 0;
        let s = reconcile(&starting, &FakeProcesses::default(), None).unwrap();
        assert_eq!(s.status, Status::Created);
        // Exited and created states are left alone.
        assert!(reconcile(&ContainerState::created(), &procs, None).is_none());
        // The helper's exit file gives the status back.
        let s = reconcile(
            &running(Some((20, 2)), Some((10, 1))),
            &FakeProcesses::default(),
            Some(ExitOutcome::OomKilled),
        )
        .unwrap();
        assert_eq!((s.exit_code, s.oom_killed), (Some(137), true));
    }
}
