//! STOPSIGNAL: the signal `kiln stop` sends first (a name like `SIGTERM`
//! or `TERM`, or a number).

use kiln_parser::Step;

use crate::error::LowerError;

use super::state::{StageState, invalid};

const SIGNALS: [&str; 33] = [
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL",
    "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP",
    "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU",
];

fn valid(signal: &str) -> bool {
    if let Ok(n) = signal.parse::<u32>() {
        return (1..=64).contains(&n);
    }
    let name = signal.to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    if let Some(rt) = name
        .strip_prefix("RTMIN")
        .or_else(|| name.strip_prefix("RTMAX"))
    {
        return rt.is_empty()
            || rt
                .strip_prefix(['+', '-'])
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n <= 30);
    }
    SIGNALS.contains(&name) || name == "XFSZ"
}

pub(crate) fn lower(st: &mut StageState, step: &Step, signal: &str) -> Result<(), LowerError> {
    let signal = st.expand(signal, step.span)?;
    if !valid(&signal) {
        return Err(invalid(format!("invalid signal: {signal}"), step.span));
    }
    st.image.update_config(|c| {
        c.set_stop_signal(Some(signal.clone()));
    });
    st.history_empty(format!("STOPSIGNAL {signal}"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::valid;

    #[test]
    fn signals() {
        for s in ["SIGTERM", "TERM", "sigkill", "9", "SIGRTMIN+3", "SIGUSR1"] {
            assert!(valid(s), "{s}");
        }
        for s in ["SIGFOO", "0", "99", "", "SIGRTMIN+99"] {
            assert!(!valid(s), "{s}");
        }
    }
}
