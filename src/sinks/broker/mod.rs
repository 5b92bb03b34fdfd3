//! The embedded MQTT broker (rumqttd), so that one box needs nothing else installed: the sink
//! publishes to it and the guard post's app (or `mosquitto_sub`) subscribes to it.
//!
//! MQTT 3.1.1 on one TCP listener, no TLS, no console, no metrics endpoint. Loopback by default
//! (`[mqtt] listen = "127.0.0.1:1883"`). With `[mqtt] username` and `password_env` it takes only
//! clients that log in with that user and password (ronda's own sink does); without them anyone
//! who reaches the port may read every alert and publish fake ones, which is why `check-config`
//! and `ronda run` warn when it listens beyond loopback without them. rumqttd has no per-topic
//! rights: everyone with the password may publish too; use an external broker with an ACL when
//! that matters. rumqttd 0.20 cannot be stopped: the broker runs until the process exits.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::info;

use super::SinkError;

/// How long the broker may take to answer its first CONNECT.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// The one user the embedded broker takes (the password comes from the environment).
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerUser {
    pub name: String,
    pub password: String,
}

impl std::fmt::Debug for BrokerUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerUser")
            .field("name", &self.name)
            .field("password", &"***")
            .finish()
    }
}

/// The embedded broker's TLS (`[mqtt] tls_cert`, `tls_key`): PEM files of its certificate
/// (chain) and private key.
#[derive(Clone, Debug, PartialEq)]
pub struct BrokerTls {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

impl BrokerTls {
    /// Both files readable and PEM of the right kind, or what is wrong with which.
    fn check(&self) -> Result<(), SinkError> {
        let look = |key: &'static str, file: &std::path::Path, marker: &str| {
            let text = std::fs::read(file).map_err(|e| SinkError::BrokerTls {
                key,
                file: file.to_path_buf(),
                reason: e.to_string(),
            })?;
            let has = |m: &str| text.windows(m.len()).any(|w| w == m.as_bytes());
            if has(marker) {
                Ok(())
            } else {
                Err(SinkError::BrokerTls {
                    key,
                    file: file.to_path_buf(),
                    reason: format!("it holds no PEM {}", marker.trim_matches('-')),
                })
            }
        };
        look("tls_cert", &self.cert, "-----BEGIN CERTIFICATE-----")?;
        look("tls_key", &self.key, "PRIVATE KEY-----")
    }
}

/// A running embedded broker.
pub struct Broker {
    /// Where clients connect (TLS when configured).
    addr: SocketAddr,
    /// Where ronda's own client connects: `addr`, or with TLS a plain listener on loopback.
    client: SocketAddr,
    _thread: JoinHandle<()>,
}

impl Broker {
    /// Start rumqttd on `listen` (`IP:PORT`), open to every client, and return once it answers
    /// MQTT there.
    pub fn start(listen: &str) -> Result<Broker, SinkError> {
        Broker::start_with(listen, None)
    }

    /// Start rumqttd on `listen`; with `user`, only clients logging in as that user are
    /// accepted.
    pub fn start_with(listen: &str, user: Option<BrokerUser>) -> Result<Broker, SinkError> {
        Broker::start_secured(listen, user, None)
    }

    /// Start rumqttd on `listen`, with `tls` there when given. With TLS, ronda's own client
    /// reaches the broker on a second, plain listener on loopback (a free port): nothing leaves
    /// the machine unencrypted, and ronda needs no copy of the CA.
    pub fn start_secured(
        listen: &str,
        user: Option<BrokerUser>,
        tls: Option<BrokerTls>,
    ) -> Result<Broker, SinkError> {
        if let Some(t) = &tls {
            t.check()?;
        }
        let addr: SocketAddr = listen.parse().map_err(|_| SinkError::Listen {
            listen: listen.to_string(),
            reason: "not an address; write IP:PORT, e.g. \"127.0.0.1:1883\"".into(),
        })?;
        // rumqttd only logs a failed bind (and its start() then returns as if all went well), so
        // try the address first for an error that says what to do.
        let addr = match TcpListener::bind(addr) {
            Ok(l) => l.local_addr().unwrap_or(addr),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                return Err(SinkError::PortInUse {
                    addr: addr.to_string(),
                });
            }
            Err(e) => {
                return Err(SinkError::Bind {
                    addr: addr.to_string(),
                    reason: e.to_string(),
                });
            }
        };
        let client = match &tls {
            None => addr,
            Some(_) => {
                let l =
                    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| SinkError::Bind {
                        addr: "127.0.0.1:0".into(),
                        reason: e.to_string(),
                    })?;
                l.local_addr().map_err(|e| SinkError::Bind {
                    addr: "127.0.0.1:0".into(),
                    reason: e.to_string(),
                })?
            }
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let config = config(addr, user.as_ref(), tls.as_ref(), client);
        // rumqttd's start() blocks for the broker's life.
        let thread = std::thread::Builder::new()
            .name("mqtt-broker".into())
            .spawn(move || {
                let reason = match rumqttd::Broker::new(config).start() {
                    Ok(()) => "it stopped (its log says why)".to_string(),
                    Err(e) => e.to_string(),
                };
                let _ = tx.send(reason);
            })
            .map_err(|e| SinkError::Thread {
                what: "MQTT broker",
                reason: e.to_string(),
            })?;

        let started = Instant::now();
        loop {
            if let Ok(reason) = rx.try_recv() {
                return Err(SinkError::BrokerStart {
                    addr: addr.to_string(),
                    reason,
                });
            }
            // with TLS the loopback listener answers MQTT, and the TLS one must accept
            let ready = probe(reachable(client), user.as_ref()).and_then(|()| match &tls {
                Some(_) => {
                    TcpStream::connect_timeout(&reachable(addr), Duration::from_secs(1)).map(|_| ())
                }
                None => Ok(()),
            });
            match ready {
                Ok(()) => break,
                Err(e) if started.elapsed() > READY_TIMEOUT => {
                    return Err(SinkError::BrokerStart {
                        addr: addr.to_string(),
                        reason: format!("it does not answer MQTT after {READY_TIMEOUT:?}: {e}"),
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        let how = if tls.is_some() { "TLS" } else { "plain MQTT" };
        match &user {
            Some(u) => info!(
                "embedded MQTT broker listening on {addr}, {how} (user `{}` only)",
                u.name
            ),
            None => info!("embedded MQTT broker listening on {addr}, {how} (no authentication)"),
        }
        Ok(Broker {
            addr,
            client,
            _thread: thread,
        })
    }

    /// The address it listens on (with the real port when `listen` asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where ronda's own client connects (plain MQTT on this machine).
    pub fn client_addr(&self) -> SocketAddr {
        reachable(self.client)
    }
}

/// Where a client on this machine reaches a listener on `addr`.
fn reachable(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

/// A broker is ready when it accepts an MQTT 3.1.1 CONNECT (not merely a TCP connection).
fn probe(addr: SocketAddr, user: Option<&BrokerUser>) -> std::io::Result<()> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    s.set_read_timeout(Some(Duration::from_secs(1)))?;
    s.write_all(&connect_packet(b"ronda-broker-probe", user))?;
    let mut connack = [0u8; 4];
    s.read_exact(&mut connack)?;
    if connack[0] != 0x20 || connack[3] != 0 {
        return Err(std::io::Error::other(format!(
            "unexpected answer {connack:02x?} to CONNECT"
        )));
    }
    s.write_all(&[0xe0, 0])?; // DISCONNECT
    Ok(())
}

/// An MQTT 3.1.1 CONNECT (clean session, keep-alive 5 s), with the user's name and password.
fn connect_packet(id: &[u8], user: Option<&BrokerUser>) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, b: &[u8]) {
        out.extend_from_slice(&(b.len().min(u16::MAX as usize) as u16).to_be_bytes());
        out.extend_from_slice(&b[..b.len().min(u16::MAX as usize)]);
    }
    let flags = if user.is_some() { 0xC2 } else { 0x02 };
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, flags, 0, 5];
    string(&mut body, id);
    if let Some(u) = user {
        string(&mut body, u.name.as_bytes());
        string(&mut body, u.password.as_bytes());
    }
    let mut packet = vec![0x10];
    let mut len = body.len();
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        packet.push(byte);
        if len == 0 {
            break;
        }
    }
    packet.extend_from_slice(&body);
    packet
}

fn config(
    addr: SocketAddr,
    user: Option<&BrokerUser>,
    tls: Option<&BrokerTls>,
    client: SocketAddr,
) -> rumqttd::Config {
    let connections = rumqttd::ConnectionSettings {
        // Time a new TCP connection has to send CONNECT.
        connection_timeout_ms: 10_000,
        // The sink's own limit: what it sends, the broker takes (bigger is quarantined).
        max_payload_size: super::mqtt::MAX_PACKET,
        // Also the most retained messages a new subscriber is sent at once: room for the status
        // of 40 cameras and the counts of their lines.
        max_inflight_count: 500,
        // rumqttd compares the password in constant time.
        auth: user.map(|u| HashMap::from([(u.name.clone(), u.password.clone())])),
        external_auth: None,
        dynamic_filters: true,
    };
    let server = rumqttd::ServerSettings {
        name: "ronda-mqtt".into(),
        listen: addr,
        tls: tls.map(|t| rumqttd::TlsConfig::Rustls {
            // no client certificates: clients log in with the user and password
            capath: None,
            certpath: t.cert.display().to_string(),
            keypath: t.key.display().to_string(),
        }),
        next_connection_delay_ms: 1,
        connections: connections.clone(),
    };
    let mut servers = HashMap::from([("1".to_string(), server)]);
    if tls.is_some() {
        servers.insert(
            "2".to_string(),
            rumqttd::ServerSettings {
                name: "ronda-mqtt-loopback".into(),
                listen: client,
                tls: None,
                next_connection_delay_ms: 1,
                connections,
            },
        );
    }
    rumqttd::Config {
        id: 0,
        router: rumqttd::RouterConfig {
            max_connections: 1000,
            max_outgoing_packet_count: 200,
            // Messages are kept in memory per subscribed filter: 4 x 1 MiB is thousands of
            // events for a subscriber that lags, and little RAM.
            max_segment_size: 1024 * 1024,
            max_segment_count: 4,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(servers),
        v5: None,
        ws: None,
        cluster: None,
        console: None,
        bridge: None,
        prometheus: None,
        metrics: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_packets_are_framed() {
        assert_eq!(
            connect_packet(b"x", None),
            [
                0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 5, 0, 1, b'x'
            ]
        );
        let u = BrokerUser {
            name: "ronda".into(),
            password: "p".repeat(200),
        };
        let p = connect_packet(b"x", Some(&u));
        // 10 + 3 + 7 + 202 = 222 bytes: two bytes of remaining length
        assert_eq!(&p[..3], [0x10, 0xDE, 0x01]);
        assert_eq!(p.len(), 3 + 222);
        assert_eq!(p[10], 0xC2);
        assert!(!format!("{u:?}").contains("ppp"));
    }
}
