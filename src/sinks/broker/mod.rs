//! The embedded MQTT broker, so that one box needs nothing else installed: the sink publishes
//! to it and the guard post's app (or `mosquitto_sub`) subscribes to it.
//!
//! Uses (of the crate, besides its own folder): api, config, store, topic.
//!
//! Two parts: rumqttd, listening only on loopback on a free port with a login made afresh at
//! every start that only ronda knows, and in front of it our own small MQTT front
//! ([`front`]) on `[mqtt] listen` (plain or TLS), which every other client goes through.
//! rumqttd 0.20 has users but no per-topic rights; the front has both: it checks the client's
//! login against `[[mqtt.users]]` (and `[mqtt] username`), refuses client ids starting with
//! `ronda-` (ronda's own session cannot be taken over) and MQTT versions other than 3.1.1
//! with an answer the client understands, and then passes bytes both ways, reading only the
//! client's PUBLISH and SUBSCRIBE packets against the user's rights ([`rights`]): a publish
//! the user may not make closes the connection (MQTT 3.1.1 has no refusal of one publish), a
//! filter reaching beyond `<prefix>/` gets 0x80 in the SUBACK. ronda's own client talks to
//! rumqttd directly ([`Broker::connect_own`]).
//!
//! Loopback by default (`[mqtt] listen = "127.0.0.1:1883"`); `check-config` and `ronda run`
//! warn when it listens beyond loopback without users, or with users but without TLS.
//! rumqttd 0.20 cannot be stopped: dropping a [`Broker`] closes the front (its port and its
//! clients) and leaves rumqttd idle on its loopback port until the process exits.
//!
//! rumqttd keeps the guard apps' persistent sessions (and what it queued for an app out of
//! reach) in memory. Given the store, the front writes those sessions down ([`sessions`]) and
//! the next start makes them again before any client can connect, sending each app what it
//! missed ([`restore`]).

mod front;
mod packet;
mod restore;
mod rights;
mod sessions;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rumqttc::tokio_rustls::rustls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tracing::{info, warn};

pub use restore::KEEP_SESSIONS;
pub use rights::Rights;

use super::SinkError;
use super::mqtt::{Hold, MqttOptions, READER_GRACE, Readers};
use crate::config::MqttRole;
use crate::store::{MqttSession, Store};
use front::Front;
pub use front::Refusals;
pub use sessions::Book;
use sessions::Keeper;

/// How long the broker may take to answer its first CONNECT.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// A user of the embedded broker: `[[mqtt.users]]` (the password from the environment), or
/// `[mqtt] username` (a reader).
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerUser {
    pub name: String,
    pub password: String,
    pub role: MqttRole,
}

impl std::fmt::Debug for BrokerUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerUser")
            .field("name", &self.name)
            .field("password", &"***")
            .field("role", &self.role)
            .finish()
    }
}

/// What the web UI may see of the embedded broker while it runs, and the one change it may make:
/// forget a guard app's session.
#[derive(Clone)]
pub struct BrokerWatch {
    /// What the front has refused since the start, by cause.
    pub refusals: Arc<Refusals>,
    /// The guard apps' persistent sessions (`None` when the broker keeps none: no store).
    pub apps: Option<Arc<Book>>,
    /// rumqttd itself and this start's login to it: a forgotten session is dropped there.
    inner: SocketAddr,
    own: BrokerUser,
}

impl BrokerWatch {
    /// Forget app `client_id`'s persistent session (a phone lost or replaced): rumqttd drops it
    /// and what it queued (a connection with its client id and a clean session, the way MQTT
    /// asks a broker to forget one), and the book leaves it out at its next write. Refused
    /// while the app is connected: that connection would be cut off.
    pub fn forget_app(&self, client_id: &str) -> Result<(), crate::api::ForgetAppError> {
        use crate::api::ForgetAppError as E;
        let book = self.apps.as_ref().ok_or(E::NotKept)?;
        match book.online(client_id) {
            None => return Err(E::Unknown(client_id.to_string())),
            Some(true) => return Err(E::Connected(client_id.to_string())),
            Some(false) => {}
        }
        restore::forget(self.inner, &self.own, client_id).map_err(|e| {
            E::Failed(format!(
                "the embedded broker did not drop the session of `{}`: {e}",
                crate::topic::shown(client_id)
            ))
        })?;
        book.forget(client_id);
        Ok(())
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
    /// The front's TLS set-up from the two files, or what is wrong with which.
    fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, SinkError> {
        let fail =
            |key: &'static str, file: &std::path::Path, reason: String| SinkError::BrokerTls {
                key,
                file: file.to_path_buf(),
                reason,
            };
        let read = |key, file: &std::path::Path| {
            std::fs::read(file).map_err(|e| fail(key, file, e.to_string()))
        };
        let pem = read("tls_cert", &self.cert)?;
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .map_err(|e| fail("tls_cert", &self.cert, format!("it is not PEM ({e})")))?;
        if chain.is_empty() {
            return Err(fail(
                "tls_cert",
                &self.cert,
                "it holds no PEM CERTIFICATE".into(),
            ));
        }
        let pem = read("tls_key", &self.key)?;
        let key = PrivateKeyDer::from_pem_slice(&pem)
            .map_err(|_| fail("tls_key", &self.key, "it holds no PEM PRIVATE KEY".into()))?;
        // name the provider rather than rely on a process default that another part may set
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| fail("tls_cert", &self.cert, e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| {
                fail(
                    "tls_key",
                    &self.key,
                    format!("it does not go with {} ({e})", self.cert.display()),
                )
            })?;
        Ok(Arc::new(config))
    }
}

/// How the embedded broker is set up.
#[derive(Clone, Debug)]
pub struct BrokerOptions {
    /// Where clients connect (`[mqtt] listen`, `IP:PORT`; port 0 picks a free one).
    pub listen: String,
    /// `[mqtt] topic_prefix`: the one part of the topic tree clients may read.
    pub prefix: String,
    /// Who may log in. None: anybody may, to read only.
    pub users: Vec<BrokerUser>,
    /// TLS on `listen` when given.
    pub tls: Option<BrokerTls>,
    /// How long after the start ronda's own client holds events for a reader at most
    /// ([`READER_GRACE`]; `super::mqtt::readers`).
    pub reader_grace: Duration,
    /// Where the guard apps' persistent sessions are kept across restarts (`None`: they are
    /// not, as with rumqttd alone).
    pub store: Option<Arc<Store>>,
}

impl BrokerOptions {
    /// Plain MQTT on `listen` for the topics under `prefix`, no users (anybody reads).
    pub fn new(listen: &str, prefix: &str) -> BrokerOptions {
        BrokerOptions {
            listen: listen.to_string(),
            prefix: prefix.to_string(),
            users: Vec::new(),
            tls: None,
            reader_grace: READER_GRACE,
            store: None,
        }
    }
}

/// A running embedded broker.
pub struct Broker {
    /// Where clients connect: the front (TLS when configured).
    addr: SocketAddr,
    /// rumqttd itself, on loopback: only ronda's own client connects here.
    inner: SocketAddr,
    /// The login rumqttd takes, made at this start; the front and ronda's client use it.
    own: BrokerUser,
    /// Whether a guard post has subscribed to the events since this start, and until when
    /// ronda's own client holds events for one (`super::mqtt::readers`).
    hold: Hold,
    /// The guard apps' persistent sessions (with a store).
    book: Option<Arc<Book>>,
    /// Dropped first: clients are gone before anything else.
    _front: Front,
    /// Then the sessions' last write: what the apps took up to the stop.
    _keeper: Option<Keeper>,
    _thread: JoinHandle<()>,
}

impl Broker {
    /// Start rumqttd on loopback and the front on `opts.listen`, and return once both answer.
    pub fn start(opts: BrokerOptions) -> Result<Broker, SinkError> {
        let tls = opts
            .tls
            .as_ref()
            .map(BrokerTls::server_config)
            .transpose()?;
        let addr: SocketAddr = opts.listen.parse().map_err(|_| SinkError::Listen {
            listen: opts.listen.clone(),
            reason: "not an address; write IP:PORT, e.g. \"127.0.0.1:1883\"".into(),
        })?;
        let listener = match TcpListener::bind(addr) {
            Ok(l) => l,
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
        let addr = listener.local_addr().unwrap_or(addr);
        let loopback_err = |e: std::io::Error| SinkError::Bind {
            addr: "127.0.0.1:0".into(),
            reason: e.to_string(),
        };
        // rumqttd binds the address itself (and only logs a failure): take a free port for it
        let inner = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map_err(loopback_err)?;
        let own = BrokerUser {
            name: format!("ronda-own-{:08x}", rand::random::<u32>()),
            password: format!("{:032x}", rand::random::<u128>()),
            role: MqttRole::Guard,
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let config = config(inner, &own);
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
            match probe(inner, &own) {
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
        let who = match opts.users.len() {
            0 => "no users: anybody may read, nobody but ronda publishes".to_string(),
            _ => opts
                .users
                .iter()
                .map(|u| format!("{} ({})", u.name, u.role.as_str()))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let guards = opts.users.iter().filter(|u| u.role == MqttRole::Guard);
        let readers = Readers::new(
            crate::topic::full(&opts.prefix, crate::topic::EVENTS),
            guards.map(|u| u.name.clone()),
        );
        let (book, keeper) = match &opts.store {
            Some(store) => {
                let made = remake_sessions(store, &opts, inner, &own);
                // an app whose session is back reads the events as if it had subscribed
                for s in &made {
                    if s.filters.iter().any(|(f, _)| readers.wants(f)) {
                        readers.arrived(s.user.as_deref());
                    }
                }
                let book = Book::new(&opts.prefix, made);
                (Some(book.clone()), Some(Keeper::start(book, store.clone())))
            }
            None => (None, None),
        };
        let front = Front::start(front::Setup {
            listener,
            tls,
            upstream: inner,
            upstream_login: own.clone(),
            users: opts.users,
            rights: Rights::new(&opts.prefix),
            readers: readers.clone(),
            book: book.clone(),
        })?;
        info!("embedded MQTT broker listening on {addr}, {how}; users: {who}");
        Ok(Broker {
            addr,
            inner,
            own,
            hold: Hold {
                readers,
                until: Instant::now() + opts.reader_grace,
            },
            book,
            _front: front,
            _keeper: keeper,
            _thread: thread,
        })
    }

    /// What the web UI may see of this broker: what the front refused, and the guard apps.
    pub fn watch(&self) -> BrokerWatch {
        BrokerWatch {
            refusals: self._front.refusals.clone(),
            apps: self.book.clone(),
            inner: self.inner,
            own: self.own.clone(),
        }
    }

    /// The address clients connect to (with the real port when `listen` asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where ronda's own client connects: rumqttd itself, plain MQTT on loopback.
    pub fn client_addr(&self) -> SocketAddr {
        self.inner
    }

    /// Point ronda's own client at rumqttd itself, with this start's login: it is the one
    /// client that publishes under the prefix, and no client of the front can be it. Its
    /// events wait for a guard post's subscription, at most [`READER_GRACE`] from this start.
    pub fn connect_own(&self, o: &mut MqttOptions) {
        o.host = self.inner.ip().to_string();
        o.port = self.inner.port();
        o.tls = None;
        o.username = Some(self.own.name.clone());
        o.password = Some(self.own.password.clone());
        o.hold = Some(self.hold.clone());
    }
}

/// Make the guard apps' sessions written down in `store` again ([`restore`]) and return them
/// (those kept). A failure is logged: the apps then get only what comes from now on.
fn remake_sessions(
    store: &Store,
    opts: &BrokerOptions,
    inner: SocketAddr,
    own: &BrokerUser,
) -> Vec<MqttSession> {
    let r = match restore::prepare(store, &opts.prefix, &opts.users, chrono::Utc::now()) {
        Ok(r) => r,
        Err(e) => {
            warn!("{e}; the guard apps' sessions are not made again: they get what comes from now");
            return Vec::new();
        }
    };
    if r.sessions.is_empty() {
        return r.sessions;
    }
    match r.run(inner, own) {
        Ok(()) => info!(
            "guard apps' sessions made again, each sent what it had not taken: {}",
            r.summary()
        ),
        Err(e) => warn!(
            "the guard apps' sessions could not all be made again ({e}); those not made get \
             what comes from now: {}",
            r.summary()
        ),
    }
    r.sessions
}

/// A broker is ready when it accepts an MQTT 3.1.1 CONNECT (not merely a TCP connection).
fn probe(addr: SocketAddr, user: &BrokerUser) -> std::io::Result<()> {
    let timeout = Duration::from_secs(1);
    restore::Conn::open(addr, user, "ronda-broker-probe", true, timeout)?.leave()?;
    Ok(())
}

/// rumqttd on `inner` (loopback), taking only the `own` login.
fn config(inner: SocketAddr, own: &BrokerUser) -> rumqttd::Config {
    let connections = rumqttd::ConnectionSettings {
        // Time a new TCP connection has to send CONNECT (the front gives clients its own).
        connection_timeout_ms: 10_000,
        // The sink's own limit: what it sends, the broker takes (bigger is quarantined).
        max_payload_size: super::mqtt::MAX_PACKET,
        // Also the most retained messages a new subscriber is sent at once: room for the status
        // of 40 cameras and the counts of their lines.
        max_inflight_count: 500,
        // rumqttd compares the password in constant time.
        auth: Some(HashMap::from([(own.name.clone(), own.password.clone())])),
        external_auth: None,
        dynamic_filters: true,
    };
    let server = rumqttd::ServerSettings {
        name: "ronda-mqtt".into(),
        listen: inner,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    rumqttd::Config {
        id: 0,
        router: rumqttd::RouterConfig {
            max_connections: front::MAX_CLIENTS + 10,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_password_is_never_shown() {
        let u = BrokerUser {
            name: "pos1".into(),
            password: "p".repeat(20),
            role: MqttRole::Guard,
        };
        assert!(!format!("{u:?}").contains("ppp"), "{u:?}");
    }

    #[test]
    fn tls_files_are_checked_naming_key_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert, "not pem").unwrap();
        std::fs::write(
            &key,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let tls = BrokerTls {
            cert: cert.clone(),
            key: key.clone(),
        };
        let e = tls.server_config().err().unwrap().to_string();
        assert!(e.contains("tls_cert") && e.contains("c.pem"), "{e}");
        std::fs::copy(&key, &cert).unwrap();
        let e = tls.server_config().err().unwrap().to_string();
        assert!(e.contains("tls_key") && e.contains("k.pem"), "{e}");
        let missing = BrokerTls {
            cert: dir.path().join("none.pem"),
            key,
        };
        let e = missing.server_config().err().unwrap().to_string();
        assert!(e.contains("tls_cert") && e.contains("none.pem"), "{e}");
    }
}
