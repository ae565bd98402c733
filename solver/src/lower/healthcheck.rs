//! HEALTHCHECK: `NONE` disables an inherited check; `CMD` sets the test
//! (`CMD-SHELL` for the shell form) and its timings, in nanoseconds as
//! docker stores them.

use std::time::Duration;

use kiln_parser::{CommandLine, Healthcheck as PHealthcheck};

use crate::error::LowerError;
use crate::image::Healthcheck;

use super::gofmt::{duration, plain_list};
use super::state::StageState;

fn nanos(d: Option<Duration>) -> i64 {
    d.map(|d| d.as_nanos().min(i64::MAX as u128) as i64)
        .unwrap_or(0)
}

pub(crate) fn lower(st: &mut StageState, h: &PHealthcheck) -> Result<(), LowerError> {
    let hc = match h {
        PHealthcheck::None => Healthcheck {
            test: vec!["NONE".into()],
            ..Healthcheck::default()
        },
        PHealthcheck::Check(c) => Healthcheck {
            test: match &c.command {
                CommandLine::Shell(s) => vec!["CMD-SHELL".into(), s.clone()],
                CommandLine::Exec(v) => {
                    let mut t = vec!["CMD".to_string()];
                    t.extend(v.iter().cloned());
                    t
                }
            },
            interval: nanos(c.interval),
            timeout: nanos(c.timeout),
            start_period: nanos(c.start_period),
            start_interval: nanos(c.start_interval),
            retries: c.retries.map(i64::from).unwrap_or(0),
        },
    };
    // Go's `%+v` of docker's HealthcheckConfig.
    let d = |n: i64| duration(Duration::from_nanos(n.max(0) as u64));
    let created_by = format!(
        "HEALTHCHECK {{Test:{} Interval:{} Timeout:{} StartPeriod:{} StartInterval:{} Retries:{}}}",
        plain_list(&hc.test),
        d(hc.interval),
        d(hc.timeout),
        d(hc.start_period),
        d(hc.start_interval),
        hc.retries
    );
    st.image.healthcheck = Some(hc);
    st.history_empty(created_by);
    Ok(())
}
