//! The embedded MQTT broker (rumqttd), so that one box needs nothing else installed: the sink
//! publishes to it and the guard post's app (or `mosquitto_sub`) subscribes to it.
//!
//! MQTT 3.1.1 on one TCP listener, no TLS, no users (keep `[mqtt] listen` on loopback or a
//! trusted LAN; use an external broker for anything else), no console, no metrics endpoint.
//! rumqttd 0.20 cannot be stopped: the broker runs until the process exits.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::info;

use super::SinkError;

/// How long the broker may take to answer its first CONNECT.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// A running embedded broker.
pub struct Broker {
    addr: SocketAddr,
    _thread: JoinHandle<()>,
}

impl Broker {
    /// Start rumqttd on `listen` (`IP:PORT`) and return once it answers MQTT there.
    pub fn start(listen: &str) -> Result<Broker, SinkError> {
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
        let (tx, rx) = std::sync::mpsc::channel();
        let config = config(addr);
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
            match probe(reachable(addr)) {
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
        info!("embedded MQTT broker listening on {addr}");
        Ok(Broker {
            addr,
            _thread: thread,
        })
    }

    /// The address it listens on (with the real port when `listen` asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
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
fn probe(addr: SocketAddr) -> std::io::Result<()> {
    const ID: &[u8] = b"ronda-broker-probe";
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    s.set_read_timeout(Some(Duration::from_secs(1)))?;
    let mut connect = vec![0x10, (12 + ID.len()) as u8];
    connect.extend_from_slice(&[0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 5]);
    connect.extend_from_slice(&[0, ID.len() as u8]);
    connect.extend_from_slice(ID);
    s.write_all(&connect)?;
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

fn config(addr: SocketAddr) -> rumqttd::Config {
    let connections = rumqttd::ConnectionSettings {
        // Time a new TCP connection has to send CONNECT.
        connection_timeout_ms: 10_000,
        // The sink's own limit: what it sends, the broker takes (bigger is quarantined).
        max_payload_size: super::mqtt::MAX_PACKET,
        // Also the most retained messages a new subscriber is sent at once: room for the status
        // of 40 cameras and the counts of their lines.
        max_inflight_count: 500,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = rumqttd::ServerSettings {
        name: "ronda-mqtt".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
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
        v4: Some(HashMap::from([("1".to_string(), server)])),
        v5: None,
        ws: None,
        cluster: None,
        console: None,
        bridge: None,
        prometheus: None,
        metrics: None,
    }
}
