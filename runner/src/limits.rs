//! Resource limits as docker spells them: `--memory 32m` (binary units,
//! at least 6 MiB), `--cpus 1.5` (a CFS quota over a 100 ms period, at most
//! the host's CPU count), `--pids-limit N` (0 or -1: unlimited).

use serde::{Deserialize, Serialize};

use crate::error::LimitError;

/// The CFS period docker uses for `--cpus`.
pub const CPU_PERIOD_US: u64 = 100_000;
/// Docker's minimum memory limit.
pub const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// A container's limits; `None` means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Bytes of memory; swap is not granted on top of it.
    pub memory: Option<i64>,
    /// Thousandths of a CPU (`--cpus 1.5` = 1500).
    pub milli_cpus: Option<u64>,
    pub pids: Option<i64>,
}

impl Limits {
    /// The CFS quota in microseconds per [`CPU_PERIOD_US`].
    pub fn cpu_quota_us(&self) -> Option<i64> {
        self.milli_cpus.map(|m| (m * CPU_PERIOD_US / 1000) as i64)
    }
}

/// Parses a docker memory size: digits with an optional fraction and an
/// optional unit `b k m g t p` (any case, optionally followed by `i` and/or
/// `b`), binary multiples: `32m` = 32 MiB.
pub fn parse_memory(text: &str) -> Result<i64, LimitError> {
    let invalid = || LimitError::Memory {
        value: text.to_string(),
    };
    let s = text.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let unit = unit.trim_start().to_ascii_lowercase();
    let mult: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "ki" | "kib" => 1024.0,
        "m" | "mb" | "mi" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gi" | "gib" => 1024f64.powi(3),
        "t" | "tb" | "ti" | "tib" => 1024f64.powi(4),
        "p" | "pb" | "pi" | "pib" => 1024f64.powi(5),
        _ => return Err(invalid()),
    };
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return Err(invalid());
    }
    let value: f64 = number.parse().map_err(|_| invalid())?;
    let bytes = value * mult;
    if !bytes.is_finite() || bytes > i64::MAX as f64 {
        return Err(invalid());
    }
    Ok(bytes as i64)
}

/// `--memory`: a size of at least 6 MiB.
pub fn parse_memory_limit(text: &str) -> Result<i64, LimitError> {
    let bytes = parse_memory(text)?;
    if bytes < MIN_MEMORY {
        return Err(LimitError::MemoryTooSmall {
            value: text.to_string(),
        });
    }
    Ok(bytes)
}

/// `--cpus`: a decimal number of CPUs between 0.01 and `host_cpus`.
pub fn parse_cpus(text: &str, host_cpus: usize) -> Result<u64, LimitError> {
    let value: f64 = text.trim().parse().map_err(|_| LimitError::Cpus {
        value: text.to_string(),
    })?;
    if !value.is_finite() || value < 0.0 {
        return Err(LimitError::Cpus {
            value: text.to_string(),
        });
    }
    let milli = (value * 1000.0).round() as u64;
    if milli < 10 || milli > host_cpus as u64 * 1000 {
        return Err(LimitError::CpusRange {
            value: text.to_string(),
            host_cpus,
        });
    }
    Ok(milli)
}

/// `--pids-limit`: a positive count, or 0 / -1 for unlimited.
pub fn parse_pids_limit(value: i64) -> Result<Option<i64>, LimitError> {
    match value {
        0 | -1 => Ok(None),
        n if n > 0 => Ok(Some(n)),
        n => Err(LimitError::Pids { value: n }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("32m").unwrap(), 32 << 20);
        assert_eq!(parse_memory("32M").unwrap(), 32 << 20);
        assert_eq!(parse_memory("32MiB").unwrap(), 32 << 20);
        assert_eq!(parse_memory("32mb").unwrap(), 32 << 20);
        assert_eq!(parse_memory("1g").unwrap(), 1 << 30);
        assert_eq!(parse_memory("1.5k").unwrap(), 1536);
        assert_eq!(parse_memory("4096").unwrap(), 4096);
        assert_eq!(parse_memory("10 k").unwrap(), 10240);
        for bad in ["", "m", "12x", "-1m", "1..2m", ".5m", "1e3"] {
            assert!(parse_memory(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn memory_minimum() {
        assert!(matches!(
            parse_memory_limit("4m"),
            Err(LimitError::MemoryTooSmall { .. })
        ));
        assert_eq!(parse_memory_limit("6m").unwrap(), 6 << 20);
    }

    #[test]
    fn cpus() {
        assert_eq!(parse_cpus("1.5", 2).unwrap(), 1500);
        assert_eq!(parse_cpus("0.01", 2).unwrap(), 10);
        assert!(matches!(
            parse_cpus("3", 2),
            Err(LimitError::CpusRange { .. })
        ));
        assert!(parse_cpus("0", 2).is_err());
        assert!(parse_cpus("lots", 2).is_err());
        let l = Limits {
            milli_cpus: Some(1500),
            ..Limits::default()
        };
        assert_eq!(l.cpu_quota_us(), Some(150_000));
    }

    #[test]
    fn pids() {
        assert_eq!(parse_pids_limit(0).unwrap(), None);
        assert_eq!(parse_pids_limit(-1).unwrap(), None);
        assert_eq!(parse_pids_limit(20).unwrap(), Some(20));
        assert!(parse_pids_limit(-5).is_err());
    }
}
