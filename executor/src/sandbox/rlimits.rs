//! Resource limits from the spec, clamped to the current hard limit:
//! without CAP_SYS_RESOURCE (this kind of host) raising one fails, and a
//! sandbox must still start.

use std::io;

use oci_spec::runtime::{PosixRlimit, PosixRlimitType};

fn resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

/// `(soft, hard)` wanted, clamped to the current hard limit.
pub(crate) fn clamp(soft: u64, hard: u64, current_hard: u64) -> (u64, u64) {
    let hard = hard.min(current_hard);
    (soft.min(hard), hard)
}

pub(crate) fn apply(limits: &[PosixRlimit]) -> io::Result<()> {
    for l in limits {
        let res = resource(l.typ());
        let mut cur = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit fills the struct.
        if unsafe { libc::getrlimit(res, &mut cur) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let (soft, hard) = clamp(l.soft(), l.hard(), cur.rlim_max);
        let new = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: setrlimit reads the struct.
        if unsafe { libc::setrlimit(res, &new) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_above_the_hard_limit() {
        assert_eq!(clamp(1_048_576, 1_048_576, 20_000), (20_000, 20_000));
        assert_eq!(clamp(100, 200, 20_000), (100, 200));
        assert_eq!(clamp(300, 200, 20_000), (200, 200));
    }
}
