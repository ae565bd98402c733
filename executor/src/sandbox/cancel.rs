//! Cancellation of a running sandbox: a token fired from anywhere (a Ctrl-C
//! handler, another task, a timeout) that a blocked [`Running::wait`] sees at
//! once, because it polls the token's eventfd beside its other file
//! descriptors.
//!
//! [`Running::wait`]: super::Running::wait

use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use nix::sys::eventfd::{EfdFlags, EventFd};
use serde::{Deserialize, Serialize};

/// Why a sandbox was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    /// The user interrupted (Ctrl-C) or the caller gave up.
    Interrupted,
    /// The deadline passed.
    TimedOut,
}

#[derive(Debug)]
struct Inner {
    /// 0: not cancelled, 1: interrupted, 2: timed out.
    state: AtomicU8,
    /// Made readable by `cancel`, so pollers wake up.
    event: Option<EventFd>,
}

/// A cancellation token: cheap to clone, shared by every clone. A token may
/// carry a deadline ([`Cancel::with_timeout`]); waiting past it cancels with
/// [`CancelReason::TimedOut`].
#[derive(Debug, Clone)]
pub struct Cancel {
    inner: Arc<Inner>,
    deadline: Option<Instant>,
}

impl Default for Cancel {
    fn default() -> Self {
        Cancel::new()
    }
}

impl Cancel {
    /// A token that is not cancelled and has no deadline.
    pub fn new() -> Cancel {
        // Without an eventfd (fd exhaustion) waits fall back to polling
        // the flag every few milliseconds.
        let event = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK).ok();
        Cancel {
            inner: Arc::new(Inner {
                state: AtomicU8::new(0),
                event,
            }),
            deadline: None,
        }
    }

    /// This token (sharing its cancellation) with a deadline `timeout` from
    /// now; the earlier deadline wins if it already had one.
    pub fn with_timeout(&self, timeout: Duration) -> Cancel {
        let deadline = Instant::now() + timeout;
        Cancel {
            inner: self.inner.clone(),
            deadline: Some(self.deadline.map_or(deadline, |d| d.min(deadline))),
        }
    }

    /// Cancels every wait on this token (and its clones). The first reason
    /// given wins.
    pub fn cancel(&self, reason: CancelReason) {
        let code = match reason {
            CancelReason::Interrupted => 1,
            CancelReason::TimedOut => 2,
        };
        if self
            .inner
            .state
            .compare_exchange(0, code, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
            && let Some(event) = &self.inner.event
        {
            let _ = event.write(1);
        }
    }

    /// Why this token was cancelled, if it was (a passed deadline counts).
    pub fn reason(&self) -> Option<CancelReason> {
        match self.inner.state.load(Ordering::SeqCst) {
            1 => Some(CancelReason::Interrupted),
            2 => Some(CancelReason::TimedOut),
            _ if self.deadline.is_some_and(|d| Instant::now() >= d) => Some(CancelReason::TimedOut),
            _ => None,
        }
    }

    /// Whether [`Cancel::reason`] is set.
    pub fn is_cancelled(&self) -> bool {
        self.reason().is_some()
    }

    /// The deadline, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// How long a poll may sleep before the deadline (or `max`); `None`
    /// when neither is set.
    pub(crate) fn poll_timeout(&self, max: Option<Duration>) -> Option<Duration> {
        let until_deadline = self
            .deadline
            .map(|d| d.saturating_duration_since(Instant::now()));
        let fallback = self
            .inner
            .event
            .is_none()
            .then_some(Duration::from_millis(10));
        [until_deadline, max, fallback].into_iter().flatten().min()
    }

    /// The descriptor that becomes readable when the token is cancelled.
    pub(crate) fn event_fd(&self) -> Option<BorrowedFd<'_>> {
        self.inner.event.as_ref().map(|e| e.as_fd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_reason_wins_and_clones_share_it() {
        let c = Cancel::new();
        let c2 = c.clone();
        assert_eq!(c.reason(), None);
        c2.cancel(CancelReason::Interrupted);
        c.cancel(CancelReason::TimedOut);
        assert_eq!(c.reason(), Some(CancelReason::Interrupted));
        let mut buf = [0u8; 8];
        let n = nix::unistd::read(c.event_fd().unwrap(), &mut buf).unwrap();
        assert_eq!(n, 8);
    }

    #[test]
    fn deadline_times_out() {
        let c = Cancel::new().with_timeout(Duration::from_millis(0));
        assert_eq!(c.reason(), Some(CancelReason::TimedOut));
        let d = Cancel::new().with_timeout(Duration::from_secs(60));
        assert!(!d.is_cancelled());
        assert!(d.poll_timeout(None).unwrap() <= Duration::from_secs(60));
    }
}
