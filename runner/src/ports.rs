//! `-p` port specifications as docker writes them:
//! `[IP:][HOST:]CONTAINER[/PROTO]`, with ranges (`8000-8001:80-81`), a host
//! range for one container port (the first free host port is used),
//! `IP::CONTAINER` and `CONTAINER` for a random host port, and IPv6 host
//! addresses in brackets (`[::1]:8080:80`). Also how `ps` prints them.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::error::PortError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// One requested publication, before any socket is bound.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    /// Host address to listen on; `None`: every address (IPv4 and IPv6).
    pub host_ip: Option<IpAddr>,
    /// Inclusive range of acceptable host ports; `None`: any free port.
    pub host_ports: Option<(u16, u16)>,
    pub container_port: u16,
    pub protocol: Protocol,
}

/// A publication as bound: what `ps` shows and the proxy serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPort {
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

impl fmt::Display for PublishedPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_ip {
            IpAddr::V4(ip) => write!(f, "{ip}:")?,
            IpAddr::V6(ip) if ip.is_unspecified() => write!(f, ":::")?,
            IpAddr::V6(ip) => write!(f, "[{ip}]:")?,
        }
        write!(
            f,
            "{}->{}/{}",
            self.host_port, self.container_port, self.protocol
        )
    }
}

/// The PORTS column of `ps`.
pub fn display_ports(ports: &[PublishedPort]) -> String {
    ports
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_port(text: &str, spec: &str) -> Result<u16, PortError> {
    match text.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(PortError::Invalid {
            spec: spec.to_string(),
            reason: format!("invalid port {text:?}"),
        }),
    }
}

fn parse_range(text: &str, spec: &str) -> Result<(u16, u16), PortError> {
    match text.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (parse_port(a, spec)?, parse_port(b, spec)?);
            if a > b {
                return Err(PortError::Invalid {
                    spec: spec.to_string(),
                    reason: format!("invalid range {text:?}"),
                });
            }
            Ok((a, b))
        }
        None => {
            let p = parse_port(text, spec)?;
            Ok((p, p))
        }
    }
}

/// Parses one `-p` value into one publication per container port.
pub fn parse_port_spec(spec: &str) -> Result<Vec<PortSpec>, PortError> {
    let invalid = |reason: &str| PortError::Invalid {
        spec: spec.to_string(),
        reason: reason.to_string(),
    };
    let (rest, protocol) = match spec.rsplit_once('/') {
        Some((rest, "tcp")) | Some((rest, "")) => (rest, Protocol::Tcp),
        Some((rest, "udp")) => (rest, Protocol::Udp),
        Some((_, proto)) => {
            return Err(PortError::Protocol {
                spec: spec.to_string(),
                protocol: proto.to_string(),
            });
        }
        None => (spec, Protocol::Tcp),
    };
    // Split off a bracketed IPv6 address first, then the colon fields.
    let (ip_text, fields): (Option<&str>, Vec<&str>) = if let Some(after) = rest.strip_prefix('[') {
        let (ip, tail) = after
            .split_once(']')
            .ok_or_else(|| invalid("unclosed '['"))?;
        let tail = tail
            .strip_prefix(':')
            .ok_or_else(|| invalid("expected ':' after the address"))?;
        let f: Vec<&str> = tail.split(':').collect();
        if f.len() != 2 {
            return Err(invalid("expected [IP]:HOST:CONTAINER"));
        }
        (Some(ip), f)
    } else {
        let f: Vec<&str> = rest.split(':').collect();
        match f.len() {
            1 | 2 => (None, f),
            3 => (Some(f[0]), f[1..].to_vec()),
            _ => return Err(invalid("too many ':'")),
        }
    };
    let host_ip = match ip_text {
        Some("") | None => None,
        Some(text) => Some(
            text.parse::<IpAddr>()
                .map_err(|_| invalid(&format!("invalid IP address {text:?}")))?,
        ),
    };
    let (host_text, container_text) = match fields.as_slice() {
        [c] => ("", *c),
        [h, c] => (*h, *c),
        _ => return Err(invalid("expected HOST:CONTAINER")),
    };
    if container_text.is_empty() {
        return Err(invalid("no container port"));
    }
    let container = parse_range(container_text, spec)?;
    let host = if host_text.is_empty() {
        None
    } else {
        Some(parse_range(host_text, spec)?)
    };
    let count = container.1 - container.0;
    let mut out = Vec::new();
    for i in 0..=count {
        let host_ports = match host {
            None => None,
            // A host range for a single container port: any port of it.
            Some(range) if count == 0 => Some(range),
            Some((a, b)) if b - a == count => Some((a + i, a + i)),
            Some(_) => {
                return Err(invalid(
                    "the host and container port ranges differ in length",
                ));
            }
        };
        out.push(PortSpec {
            host_ip,
            host_ports,
            container_port: container.0 + i,
            protocol,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(spec: &str) -> PortSpec {
        let mut v = parse_port_spec(spec).unwrap();
        assert_eq!(v.len(), 1, "{spec}");
        v.remove(0)
    }

    #[test]
    fn host_and_container() {
        let p = one("9000:8080");
        assert_eq!(p.host_ip, None);
        assert_eq!(p.host_ports, Some((9000, 9000)));
        assert_eq!(p.container_port, 8080);
        assert_eq!(p.protocol, Protocol::Tcp);
        assert_eq!(one("9000:8080/tcp"), p);
        assert_eq!(one("53:53/udp").protocol, Protocol::Udp);
    }

    #[test]
    fn random_host_ports() {
        let p = one("8080");
        assert_eq!((p.host_ports, p.container_port), (None, 8080));
        let p = one("127.0.0.1::8080");
        assert_eq!(p.host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(p.host_ports, None);
    }

    #[test]
    fn addresses() {
        let p = one("127.0.0.1:9000:80");
        assert_eq!(p.host_ip, Some("127.0.0.1".parse().unwrap()));
        let p = one("[::1]:9000:80");
        assert_eq!(p.host_ip, Some("::1".parse().unwrap()));
        assert_eq!(p.host_ports, Some((9000, 9000)));
    }

    #[test]
    fn ranges() {
        let v = parse_port_spec("8000-8002:80-82").unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(
            (v[2].host_ports, v[2].container_port),
            (Some((8002, 8002)), 82)
        );
        let v = parse_port_spec("80-81").unwrap();
        assert_eq!(v.len(), 2);
        assert!(v.iter().all(|p| p.host_ports.is_none()));
        let p = one("9000-9010:80");
        assert_eq!(p.host_ports, Some((9000, 9010)));
        assert!(parse_port_spec("8000-8001:80-82").is_err());
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "x",
            "0",
            "70000",
            "9000:",
            ":80:x",
            "a:b:c:d",
            "1.2.3:80:80",
            "80/sctp",
            "[::1:80:80",
            "81-80",
        ] {
            assert!(parse_port_spec(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn display_like_docker() {
        let v4 = PublishedPort {
            host_ip: "0.0.0.0".parse().unwrap(),
            host_port: 9000,
            container_port: 8080,
            protocol: Protocol::Tcp,
        };
        let v6 = PublishedPort {
            host_ip: "::".parse().unwrap(),
            ..v4.clone()
        };
        assert_eq!(
            display_ports(&[v4, v6]),
            "0.0.0.0:9000->8080/tcp, :::9000->8080/tcp"
        );
    }
}
