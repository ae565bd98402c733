//! HEALTHCHECK: `NONE`, or `CMD` with its timing flags, and Go-style
//! durations (`1m30s`).

use std::time::Duration;

use super::CommandLine;

/// `HEALTHCHECK NONE` or `HEALTHCHECK [flags] CMD command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `NONE`: disable any healthcheck inherited from the base image.
    None,
    /// `CMD ...`.
    Check(HealthcheckCommand),
}

/// The `CMD` form of HEALTHCHECK. Durations of zero or unset mean "inherit
/// the default".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthcheckCommand {
    /// The test command (shell form becomes `CMD-SHELL` in the image config,
    /// exec form `CMD`). Not expanded.
    pub command: CommandLine,
    /// `--interval=`.
    pub interval: Option<Duration>,
    /// `--timeout=`.
    pub timeout: Option<Duration>,
    /// `--start-period=`.
    pub start_period: Option<Duration>,
    /// `--start-interval=`.
    pub start_interval: Option<Duration>,
    /// `--retries=`.
    pub retries: Option<u32>,
}

/// Parses a Go `time.ParseDuration` string: a sequence of decimal numbers
/// with units `ns`, `us` (`µs`), `ms`, `s`, `m`, `h` (`1m30s`, `1.5h`,
/// `300ms`); `0` alone needs no unit. Negative durations are refused.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, &'static str> {
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if let Some(negative) = rest.strip_prefix('-') {
        return if !negative.is_empty() && negative.chars().all(|c| c == '0' || c == '.') {
            Ok(Duration::ZERO)
        } else {
            Err("negative duration")
        };
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err("empty duration");
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err("expected a number");
        }
        let value: f64 = num.parse().map_err(|_| "expected a number")?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let nanos_per = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err("missing unit (ns, us, ms, s, m, h)"),
            _ => return Err("unknown unit (ns, us, ms, s, m, h)"),
        };
        rest = &rest[unit_len..];
        total += value * nanos_per;
    }
    if !total.is_finite() || total > u64::MAX as f64 {
        return Err("duration out of range");
    }
    Ok(Duration::from_nanos(total.round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_duration("2us"), Ok(Duration::from_micros(2)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("1x").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("1..2s").is_err());
    }
}
