//! How kiln reaches a registry: HTTPS unless the registry is on the loopback
//! interface or named insecure, retries with exponential backoff, and the
//! limits that keep a pull or push within bounded memory and sockets.

use std::net::IpAddr;
use std::time::Duration;

/// Environment variable listing extra plain-HTTP registries, comma
/// separated (the same entries as `--insecure-registry`).
pub const INSECURE_REGISTRIES_ENV: &str = "KILN_INSECURE_REGISTRIES";

/// Settings for talking to registries.
#[derive(Debug, Clone)]
pub struct RemoteConfig {
    /// Registries spoken to over plain HTTP: `host`, `host:port`, or an IP
    /// network (`10.0.0.0/8`).
    pub insecure_registries: Vec<String>,
    /// Blobs transferred at once by one pull or push.
    pub max_concurrent_transfers: usize,
    /// How failed requests are retried.
    pub retry: RetryPolicy,
    /// The docker config file credentials come from; `None` for the default
    /// (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`).
    pub docker_config: Option<std::path::PathBuf>,
}

impl Default for RemoteConfig {
    fn default() -> Self {
        RemoteConfig {
            insecure_registries: Vec::new(),
            max_concurrent_transfers: 4,
            retry: RetryPolicy::default(),
            docker_config: None,
        }
    }
}

impl RemoteConfig {
    /// The defaults plus the registries in `KILN_INSECURE_REGISTRIES`.
    pub fn from_env() -> RemoteConfig {
        let mut config = RemoteConfig::default();
        if let Ok(list) = std::env::var(INSECURE_REGISTRIES_ENV) {
            config.add_insecure(list.split(','));
        }
        config
    }

    /// Adds registries (blank entries and URL schemes are ignored).
    pub fn add_insecure<'a>(&mut self, entries: impl IntoIterator<Item = &'a str>) {
        for entry in entries {
            let entry = entry.trim();
            let entry = entry
                .strip_prefix("http://")
                .or_else(|| entry.strip_prefix("https://"))
                .unwrap_or(entry)
                .trim_end_matches('/');
            if !entry.is_empty() {
                self.insecure_registries.push(entry.to_ascii_lowercase());
            }
        }
    }

    /// Whether `registry` (`host[:port]`) is spoken to over plain HTTP:
    /// loopback registries always, others when listed as insecure.
    pub fn is_plain_http(&self, registry: &str) -> bool {
        let registry = registry.to_ascii_lowercase();
        let (host, _port) = split_host_port(&registry);
        if is_loopback(host) {
            return true;
        }
        self.insecure_registries.iter().any(|entry| {
            if entry == &registry || entry == host {
                return true;
            }
            match (
                entry.split_once('/'),
                host.trim_matches(['[', ']']).parse::<IpAddr>(),
            ) {
                (Some((net, bits)), Ok(ip)) => in_network(ip, net, bits),
                _ => false,
            }
        })
    }

    /// `http` or `https` for this registry.
    pub fn scheme(&self, registry: &str) -> &'static str {
        if self.is_plain_http(registry) {
            "http"
        } else {
            "https"
        }
    }
}

/// Splits `host:port`, `[v6]:port`, `host` into host and optional port.
fn split_host_port(registry: &str) -> (&str, Option<&str>) {
    if let Some(rest) = registry.strip_prefix('[') {
        if let Some((host, after)) = rest.split_once(']') {
            return (host, after.strip_prefix(':'));
        }
        return (registry, None);
    }
    match registry.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, Some(port)),
        _ => (registry, None),
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn in_network(ip: IpAddr, net: &str, bits: &str) -> bool {
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// Bounded retries with exponential backoff, for connection errors, 429 and
/// 5xx answers.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Tries in all (the first one included); at least 1.
    pub attempts: u32,
    /// The wait after the first failure; doubled after each further one.
    pub initial_delay: Duration,
    /// The longest wait between two tries.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The wait before try number `attempt + 1` (`attempt` counts from 1),
    /// with up to 25% jitter so parallel transfers do not retry in step.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .initial_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let base = exp.min(self.max_delay);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let jitter = base.mul_f64(f64::from(nanos % 250) / 1000.0);
        base + jitter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_are_plain_http() {
        let c = RemoteConfig::default();
        for r in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.8.9.10",
            "[::1]:5000",
        ] {
            assert!(c.is_plain_http(r), "{r}");
        }
        for r in [
            "docker.io",
            "registry.example.com:5000",
            "10.0.0.1:5000",
            "localhost.example.com",
        ] {
            assert!(!c.is_plain_http(r), "{r}");
            assert_eq!(c.scheme(r), "https");
        }
    }

    #[test]
    fn insecure_entries_match_host_port_host_and_networks() {
        let mut c = RemoteConfig::default();
        c.add_insecure(" reg.lan:5000, http://other.lan/ ,10.1.0.0/16,,".split(','));
        assert!(c.is_plain_http("reg.lan:5000"));
        assert!(!c.is_plain_http("reg.lan:6000"));
        assert!(c.is_plain_http("other.lan:443"));
        assert!(c.is_plain_http("OTHER.lan"));
        assert!(c.is_plain_http("10.1.200.3:5000"));
        assert!(!c.is_plain_http("10.2.0.1:5000"));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy {
            attempts: 10,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
        };
        let d1 = p.delay(1);
        assert!(d1 >= Duration::from_millis(100) && d1 < Duration::from_millis(126));
        let d3 = p.delay(3);
        assert!(d3 >= Duration::from_millis(400) && d3 < Duration::from_millis(501));
        let d9 = p.delay(9);
        assert!(d9 >= Duration::from_millis(500) && d9 < Duration::from_millis(626));
    }
}
