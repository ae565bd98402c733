//! The port publisher: `-p HOST:CONTAINER` as a userspace proxy. Host
//! sockets are bound before the container starts (so "port already
//! allocated" fails the start); each accepted TCP connection gets a fresh
//! connection to `127.0.0.1:CONTAINER` opened inside the container's
//! network namespace by the [`Connector`], and bytes are copied both ways
//! (half-closes included). UDP keeps one inner socket per client address,
//! dropped after a minute of silence.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockProtocol, SockType, SockaddrStorage, bind, listen,
    setsockopt, sockopt,
};
use tokio::sync::Mutex;
use tokio::task::JoinSet;

use crate::error::PortError;
use crate::network::Connector;
use crate::ports::{PortSpec, Protocol, PublishedPort};

/// A bound host socket and what it publishes.
pub(crate) enum BoundSocket {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

pub(crate) struct BoundPort {
    pub published: PublishedPort,
    pub socket: BoundSocket,
}

fn bind_one(addr: SocketAddr, protocol: Protocol) -> io::Result<BoundSocket> {
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let (ty, proto) = match protocol {
        Protocol::Tcp => (SockType::Stream, SockProtocol::Tcp),
        Protocol::Udp => (SockType::Datagram, SockProtocol::Udp),
    };
    let fd: OwnedFd = nix::sys::socket::socket(family, ty, SockFlag::SOCK_CLOEXEC, proto)?;
    if protocol == Protocol::Tcp {
        setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    }
    if addr.is_ipv6() {
        // The IPv4 socket covers IPv4; this one only IPv6, as docker binds.
        setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
    }
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrStorage::from(addr),
    )?;
    Ok(match protocol {
        Protocol::Tcp => {
            listen(&fd, Backlog::new(511).unwrap_or(Backlog::MAXCONN))?;
            BoundSocket::Tcp(TcpListener::from(fd))
        }
        Protocol::Udp => BoundSocket::Udp(UdpSocket::from(fd)),
    })
}

fn local_port(socket: &BoundSocket) -> io::Result<u16> {
    Ok(match socket {
        BoundSocket::Tcp(l) => l.local_addr()?.port(),
        BoundSocket::Udp(u) => u.local_addr()?.port(),
    })
}

fn bound(socket: BoundSocket, ip: IpAddr, spec: &PortSpec) -> io::Result<BoundPort> {
    Ok(BoundPort {
        published: PublishedPort {
            host_ip: ip,
            host_port: local_port(&socket)?,
            container_port: spec.container_port,
            protocol: spec.protocol,
        },
        socket,
    })
}

/// Binds every publication. Without an address: `0.0.0.0` and, when the
/// host has IPv6, `[::]` on the same port.
pub(crate) fn bind_ports(specs: &[PortSpec]) -> Result<Vec<BoundPort>, PortError> {
    let mut out = Vec::new();
    for spec in specs {
        let candidates: Vec<u16> = match spec.host_ports {
            None => vec![0],
            Some((a, b)) => (a..=b).collect(),
        };
        let range_error = || PortError::NoFreePort {
            start: candidates[0],
            end: *candidates.last().unwrap_or(&candidates[0]),
            container_port: spec.container_port,
        };
        let mut last_err = None;
        let mut done = false;
        for &port in &candidates {
            let primary_ip = spec.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            let addr = SocketAddr::new(primary_ip, port);
            match bind_one(addr, spec.protocol) {
                Ok(socket) => {
                    let first =
                        bound(socket, primary_ip, spec).map_err(|source| PortError::Bind {
                            address: addr.to_string(),
                            source,
                        })?;
                    let port = first.published.host_port;
                    out.push(first);
                    if spec.host_ip.is_none() {
                        let v6 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
                        match bind_one(SocketAddr::new(v6, port), spec.protocol) {
                            Ok(socket) => {
                                if let Ok(b) = bound(socket, v6, spec) {
                                    out.push(b);
                                }
                            }
                            // No IPv6 on this host: IPv4 only.
                            Err(e)
                                if e.raw_os_error() == Some(libc::EAFNOSUPPORT)
                                    || e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => {}
                            Err(source) => {
                                return Err(PortError::Bind {
                                    address: format!("[::]:{port}"),
                                    source,
                                });
                            }
                        }
                    }
                    done = true;
                    break;
                }
                Err(e) => last_err = Some((addr, e)),
            }
        }
        if !done {
            return Err(match (candidates.len(), last_err) {
                (1, Some((addr, source))) => PortError::Bind {
                    address: addr.to_string(),
                    source,
                },
                _ => range_error(),
            });
        }
    }
    Ok(out)
}

/// Serves published ports until dropped (its tasks are aborted then).
pub(crate) struct Publisher {
    _tasks: JoinSet<()>,
}

/// Starts proxying every bound port into the namespace behind `connector`.
/// Must be called inside a tokio runtime.
pub(crate) fn publish(ports: Vec<BoundPort>, connector: Connector) -> io::Result<Publisher> {
    let mut tasks = JoinSet::new();
    for port in ports {
        // Inside, the container's own loopback: services listening on
        // 0.0.0.0 or 127.0.0.1 are reached.
        let target = SocketAddr::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            port.published.container_port,
        );
        match port.socket {
            BoundSocket::Tcp(listener) => {
                listener.set_nonblocking(true)?;
                let listener = tokio::net::TcpListener::from_std(listener)?;
                tasks.spawn(serve_tcp(listener, target, connector.clone()));
            }
            BoundSocket::Udp(socket) => {
                socket.set_nonblocking(true)?;
                let socket = tokio::net::UdpSocket::from_std(socket)?;
                tasks.spawn(serve_udp(Arc::new(socket), target, connector.clone()));
            }
        }
    }
    Ok(Publisher { _tasks: tasks })
}

async fn serve_tcp(listener: tokio::net::TcpListener, target: SocketAddr, connector: Connector) {
    let mut conns = JoinSet::new();
    loop {
        let (mut client, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let connector = connector.clone();
        conns.spawn(async move {
            let inner = match connector.tcp(target).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%peer, %target, error = %e, "cannot reach the container port");
                    return;
                }
            };
            let Ok(()) = inner.set_nonblocking(true) else {
                return;
            };
            let Ok(mut inner) = tokio::net::TcpStream::from_std(inner) else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = inner.set_nodelay(true);
            if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut inner).await {
                tracing::debug!(%peer, error = %e, "proxied connection ended with an error");
            }
        });
        // Reap finished connections so the set does not grow.
        while conns.try_join_next().is_some() {}
    }
}

const UDP_IDLE: Duration = Duration::from_secs(60);

async fn serve_udp(socket: Arc<tokio::net::UdpSocket>, target: SocketAddr, connector: Connector) {
    let flows: Arc<Mutex<HashMap<SocketAddr, Arc<tokio::net::UdpSocket>>>> = Arc::default();
    let mut relays = JoinSet::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, peer) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(_) => continue,
        };
        let existing = flows.lock().await.get(&peer).cloned();
        let inner = match existing {
            Some(s) => s,
            None => {
                let Ok(std_sock) = connector.udp(target).await else {
                    continue;
                };
                let Ok(()) = std_sock.set_nonblocking(true) else {
                    continue;
                };
                let Ok(inner) = tokio::net::UdpSocket::from_std(std_sock) else {
                    continue;
                };
                let inner = Arc::new(inner);
                flows.lock().await.insert(peer, inner.clone());
                // Replies go back to this client until the flow is idle.
                let (outer, back, flows) = (socket.clone(), inner.clone(), flows.clone());
                relays.spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    while let Ok(Ok(n)) = tokio::time::timeout(UDP_IDLE, back.recv(&mut buf)).await
                    {
                        let _ = outer.send_to(&buf[..n], peer).await;
                    }
                    flows.lock().await.remove(&peer);
                });
                inner
            }
        };
        let _ = inner.send(&buf[..n]).await;
        while relays.try_join_next().is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::parse_port_spec;

    #[tokio::test]
    async fn tcp_and_udp_reach_a_server_inside_the_namespace() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        use std::io::{Read, Write};
        let dir = tempfile::tempdir().unwrap();
        let net =
            crate::network::ContainerNetwork::create(&dir.path().join("netns"), None).unwrap();
        // Echo servers inside the namespace, on 127.0.0.1:7 (tcp and udp).
        let ns_path = net.path().to_path_buf();
        std::thread::spawn(move || {
            let f = std::fs::File::open(&ns_path).unwrap();
            nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let udp = UdpSocket::bind("127.0.0.1:7").unwrap();
            std::thread::spawn(move || {
                let mut buf = [0u8; 100];
                while let Ok((n, peer)) = udp.recv_from(&mut buf) {
                    udp.send_to(&buf[..n], peer).unwrap();
                }
            });
            let l = TcpListener::bind("127.0.0.1:7").unwrap();
            for conn in l.incoming() {
                let mut c = conn.unwrap();
                let mut buf = Vec::new();
                c.read_to_end(&mut buf).unwrap();
                c.write_all(&buf).unwrap();
            }
        });
        std::thread::sleep(Duration::from_millis(100));
        let ports = bind_ports(&parse_port_spec("127.0.0.1::7").unwrap()).unwrap();
        let udp_ports = bind_ports(&parse_port_spec("127.0.0.1::7/udp").unwrap()).unwrap();
        let (tcp_port, udp_port) = (
            ports[0].published.host_port,
            udp_ports[0].published.host_port,
        );
        let _publisher = publish(
            ports.into_iter().chain(udp_ports).collect(),
            net.connector(),
        )
        .unwrap();
        let got = tokio::task::spawn_blocking(move || {
            let mut c = std::net::TcpStream::connect(("127.0.0.1", tcp_port)).unwrap();
            c.write_all(b"hello through the proxy").unwrap();
            c.shutdown(std::net::Shutdown::Write).unwrap();
            let mut out = String::new();
            c.read_to_string(&mut out).unwrap();
            let u = UdpSocket::bind("127.0.0.1:0").unwrap();
            u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            u.send_to(b"datagram", ("127.0.0.1", udp_port)).unwrap();
            let mut buf = [0u8; 100];
            let n = u.recv(&mut buf).unwrap();
            (out, buf[..n].to_vec())
        })
        .await
        .unwrap();
        assert_eq!(got.0, "hello through the proxy");
        assert_eq!(got.1, b"datagram");
        net.close();
    }

    #[test]
    fn binds_both_families_on_one_port() {
        let specs = parse_port_spec("127.0.0.1::80").unwrap();
        let bound = bind_ports(&specs).unwrap();
        assert_eq!(bound.len(), 1);
        assert_ne!(bound[0].published.host_port, 0);
        assert_eq!(bound[0].published.container_port, 80);

        let specs = parse_port_spec("8080").unwrap();
        let bound = bind_ports(&specs).unwrap();
        assert!(!bound.is_empty());
        let port = bound[0].published.host_port;
        assert!(bound.iter().all(|b| b.published.host_port == port));
    }

    #[test]
    fn a_taken_port_is_refused_and_a_range_moves_on() {
        let taken = bind_ports(&parse_port_spec("127.0.0.1::80").unwrap()).unwrap();
        let port = taken[0].published.host_port;
        let err = bind_ports(&parse_port_spec(&format!("127.0.0.1:{port}:80")).unwrap())
            .err()
            .unwrap();
        assert!(matches!(err, PortError::Bind { .. }), "{err}");
        if port < 65535 {
            let spec = format!("127.0.0.1:{port}-{}:80", port + 1);
            if let Ok(b) = bind_ports(&parse_port_spec(&spec).unwrap()) {
                assert_eq!(b[0].published.host_port, port + 1);
            }
        }
    }
}
