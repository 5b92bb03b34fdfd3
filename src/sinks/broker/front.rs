//! The embedded broker's front door: every client but ronda's own connects here, on
//! `[mqtt] listen` (plain or TLS), and is passed on to rumqttd on loopback once the front has
//! checked who it is and while it keeps to its rights (module docs of [`super`]).
//!
//! One connection, step by step:
//! 1. TLS, when configured; then the first packet must be a CONNECT, within
//!    [`HELLO_TIMEOUT`]. MQTT 5 gets an MQTT 5 CONNACK "unsupported protocol version", MQTT
//!    3.1 a 3.1.1 one, then the connection is closed.
//! 2. The login: with users configured, a user of the list with its password (a wrong one is
//!    answered after [`REFUSED_LOGIN_DELAY`]; after five for one name from one address that
//!    pair is braked like the web login, see `refusals`); without users, anybody, to read. Client ids
//!    starting with `ronda-` are refused (ronda's own session cannot be taken over), and so is
//!    a last will the user could not publish itself.
//! 3. The CONNECT goes on to rumqttd with the front's own login in place of the client's;
//!    rumqttd's CONNACK comes back as it is. From then on bytes cross both ways, cut into
//!    packets: the client's PUBLISH and SUBSCRIBE packets are read against its rights, the
//!    broker's SUBACK is rewritten when the front took filters out of its SUBSCRIBE.
//!
//! Refusals are logged at warn, once per address and cause a minute (a client retrying every
//! second does not flood the log); the rest at debug. Passwords are never logged, names and
//! topics only through `topic::shown` (a client chooses them).

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rumqttc::tokio_rustls::{TlsAcceptor, rustls};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tracing::{debug, warn};

use super::packet::{self, Connect, Hello, PacketError};
use super::rights::Rights;
use super::sessions::{Book, Deliveries};
use super::{BrokerUser, SinkError};
use crate::config::MqttRole;
use crate::sinks::mqtt::Readers;
use crate::topic::shown;

/// The most clients connected at once (rumqttd's own limit is a little above).
pub const MAX_CLIENTS: usize = 1000;
mod check;
mod refusals;
use check::{check, widen};
pub use refusals::Refusals;
use refusals::{Brake, Cause};

/// How long a new connection has for TLS and its CONNECT.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long rumqttd may take to accept the front's connection.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(5);
/// A wrong password is answered this late: guessing costs a second a try and connection.
const REFUSED_LOGIN_DELAY: Duration = Duration::from_secs(1);
/// A refusal is logged at warn at most this often per address and cause.
const LOG_EVERY: Duration = Duration::from_secs(60);
/// The largest packet a client may send (ronda's own messages are the largest anybody sends,
/// and they do not come through here).
const MAX_FROM_CLIENT: usize = crate::sinks::mqtt::MAX_PACKET;
/// The largest packet rumqttd sends: a message of the largest size with a long topic.
pub(super) const MAX_FROM_BROKER: usize = crate::sinks::mqtt::MAX_PACKET + 70 * 1024;
/// Bytes read at a time.
const CHUNK: usize = 16 * 1024;
/// Client ids ronda's own client uses; nobody else may.
const OWN_ID_PREFIX: &str = "ronda-";
/// After the front is stopped, how long its clients have for what is already on its way (the
/// `offline` ronda publishes last) before they are closed.
const DRAIN: Duration = Duration::from_millis(500);

/// What [`Front::start`] needs.
pub(super) struct Setup {
    pub listener: std::net::TcpListener,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// rumqttd, on loopback.
    pub upstream: SocketAddr,
    /// The login rumqttd takes (the front logs every client in with it).
    pub upstream_login: BrokerUser,
    pub users: Vec<BrokerUser>,
    pub rights: Rights,
    /// Told when a client's subscription to the events is in place.
    pub readers: Arc<Readers>,
    /// Where persistent sessions are written down (`None`: they are not).
    pub book: Option<Arc<Book>>,
}

/// The running front: its thread serves until this is dropped.
pub(super) struct Front {
    pub refusals: Arc<Refusals>,
    stop: Option<oneshot::Sender<()>>,
    closed: std::sync::mpsc::Receiver<()>,
}

impl Front {
    /// Serve `setup.listener` on a thread of its own (one small tokio runtime).
    pub fn start(setup: Setup) -> Result<Front, SinkError> {
        let thread_err = |e: std::io::Error| SinkError::Thread {
            what: "MQTT front",
            reason: e.to_string(),
        };
        setup.listener.set_nonblocking(true).map_err(thread_err)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(thread_err)?;
        let listener = {
            let _enter = runtime.enter();
            tokio::net::TcpListener::from_std(setup.listener).map_err(thread_err)?
        };
        let ctx = Arc::new(Ctx {
            tls: setup.tls.map(TlsAcceptor::from),
            upstream: setup.upstream,
            upstream_login: setup.upstream_login,
            logins: setup
                .users
                .iter()
                .map(|u| Login {
                    name: u.name.clone(),
                    digest: digest(u.password.as_bytes()),
                    role: u.role,
                })
                .collect(),
            rights: setup.rights,
            logged: Mutex::default(),
            refusals: Arc::default(),
            brake: Brake::default(),
            readers: setup.readers,
            book: setup.book,
        });
        let refusals = ctx.refusals.clone();
        let (stop, mut stopped) = oneshot::channel();
        let (closed_tx, closed) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("mqtt-front".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let clients = Arc::new(Semaphore::new(MAX_CLIENTS));
                    loop {
                        tokio::select! {
                            _ = &mut stopped => break,
                            r = listener.accept() => match r {
                                Ok((sock, peer)) => match clients.clone().try_acquire_owned() {
                                    Ok(permit) => {
                                        let ctx = ctx.clone();
                                        tokio::spawn(async move {
                                            serve(sock, peer, &ctx).await;
                                            drop(permit);
                                        });
                                    }
                                    Err(_) => {
                                        ctx.refused(peer.ip(), Cause::Full, || {
                                            format!(
                                                "MQTT: a client from {} is turned away: \
                                                 {MAX_CLIENTS} clients are connected already",
                                                peer.ip()
                                            )
                                        });
                                    }
                                },
                                Err(e) => {
                                    // out of file descriptors and the like: pause, not spin
                                    debug!("MQTT front: accept failed: {e}");
                                    tokio::time::sleep(Duration::from_millis(100)).await;
                                }
                            },
                        }
                    }
                    drop(listener);
                    let _ = closed_tx.send(());
                    let all = MAX_CLIENTS as u32;
                    let _ = tokio::time::timeout(DRAIN, clients.acquire_many(all)).await;
                });
                // the runtime goes with this thread, and every open connection with it
            })
            .map_err(thread_err)?;
        Ok(Front {
            refusals,
            stop: Some(stop),
            closed,
        })
    }
}

impl Drop for Front {
    /// Stop accepting; return once the port is free (a restart can bind it again).
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
            let _ = self.closed.recv_timeout(Duration::from_secs(2));
        }
    }
}

/// A user as the front keeps it: the password only as its SHA-256.
struct Login {
    name: String,
    digest: [u8; 32],
    role: MqttRole,
}

struct Ctx {
    tls: Option<TlsAcceptor>,
    upstream: SocketAddr,
    upstream_login: BrokerUser,
    logins: Vec<Login>,
    rights: Rights,
    /// When each (address, cause) was last logged at warn.
    logged: Mutex<HashMap<(IpAddr, Cause), Instant>>,
    /// Every refusal, by cause (for `/metrics`).
    refusals: Arc<Refusals>,
    /// Wrong passwords per user name and address.
    brake: Brake,
    readers: Arc<Readers>,
    book: Option<Arc<Book>>,
}

impl Ctx {
    /// Log a refusal at warn, or at debug when this address had one for the same cause in
    /// the last minute. True when it went to warn.
    fn refused(&self, ip: IpAddr, cause: Cause, message: impl FnOnce() -> String) -> bool {
        self.refusals.add(cause);
        let now = Instant::now();
        let fresh = {
            let mut logged = self.logged.lock().unwrap_or_else(PoisonError::into_inner);
            if logged.len() >= 10_000 {
                logged.retain(|_, at| now.duration_since(*at) < LOG_EVERY);
            }
            match logged.get(&(ip, cause)) {
                Some(at) if now.duration_since(*at) < LOG_EVERY => false,
                // a flood from more addresses than the map holds is logged at debug only
                _ if logged.len() >= 10_000 => false,
                _ => {
                    logged.insert((ip, cause), now);
                    true
                }
            }
        };
        if fresh {
            warn!(
                "{} (refusals of this kind from {ip} are logged once a minute)",
                message()
            );
        } else {
            debug!("{}", message());
        }
        fresh
    }

    /// The role of the client logging in with `c`, or the CONNACK code refusing it.
    fn login(&self, c: &Connect) -> Result<MqttRole, (u8, Cause)> {
        if self.logins.is_empty() {
            // an open broker: any login (or none) reads
            return Ok(MqttRole::Reader);
        }
        let Some(name) = &c.username else {
            return Err((packet::NOT_AUTHORIZED, Cause::Anonymous));
        };
        let given = digest(c.password.as_deref().unwrap_or_default());
        // every user's digest is compared, so the time taken does not tell which names exist
        let mut role = None;
        for l in &self.logins {
            let same = same_digest(&l.digest, &given);
            if same && l.name == *name {
                role = Some(l.role);
            }
        }
        role.ok_or((packet::BAD_LOGIN, Cause::BadLogin))
    }
}

fn digest(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// Equal without an early exit.
fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A client stream, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Who a connection is, for the log.
struct Who {
    ip: IpAddr,
    client_id: String,
    user: Option<String>,
}

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.user {
            Some(u) => write!(
                f,
                "client `{}` (user `{}`) from {}",
                shown(&self.client_id),
                shown(u),
                self.ip
            ),
            None => write!(
                f,
                "client `{}` (no user) from {}",
                shown(&self.client_id),
                self.ip
            ),
        }
    }
}

/// One connection, from accept to close.
async fn serve(sock: TcpStream, peer: SocketAddr, ctx: &Ctx) {
    let ip = peer.ip();
    let _ = sock.set_nodelay(true);
    let mut client: Box<dyn Io> = match &ctx.tls {
        None => Box::new(sock),
        Some(acceptor) => match tokio::time::timeout(HELLO_TIMEOUT, acceptor.accept(sock)).await {
            Ok(Ok(s)) => Box::new(s),
            Ok(Err(e)) => {
                ctx.refused(ip, Cause::Tls, || {
                    format!("MQTT: a client from {ip} failed the TLS handshake: {e}")
                });
                return;
            }
            Err(_) => return,
        },
    };
    let mut buf = Vec::with_capacity(CHUNK);
    let first = match tokio::time::timeout(HELLO_TIMEOUT, first_packet(&mut client, &mut buf)).await
    {
        Ok(Ok(Some(p))) => p,
        Ok(Err(e)) => {
            ctx.refused(ip, Cause::NotMqtt, || {
                format!("MQTT: a client from {ip} does not speak MQTT ({e}); closed")
            });
            return;
        }
        // closed, or nothing within the time
        Ok(Ok(None)) | Err(_) => return,
    };
    let connect = match packet::parse_connect(&first) {
        Ok(Hello::Mqtt311(c)) => c,
        Ok(Hello::OtherVersion(level)) => {
            let (answer, version) = match level {
                5 => (
                    &packet::connack_v5(packet::V5_UNSUPPORTED_VERSION)[..],
                    "MQTT 5",
                ),
                3 => (
                    &packet::connack(packet::UNACCEPTABLE_VERSION)[..],
                    "MQTT 3.1",
                ),
                _ => (
                    &packet::connack(packet::UNACCEPTABLE_VERSION)[..],
                    "an unknown MQTT",
                ),
            };
            ctx.refused(ip, Cause::Version, || {
                format!(
                    "MQTT: a client from {ip} speaks {version}; the embedded broker speaks MQTT \
                     3.1.1 only: set the client's MQTT version to 3.1.1 (mosquitto_sub: -V \
                     mqttv311)"
                )
            });
            refuse(client, answer).await;
            return;
        }
        Err(e) => {
            ctx.refused(ip, Cause::NotMqtt, || {
                format!("MQTT: a client from {ip} sent a CONNECT that is not MQTT 3.1.1 ({e})")
            });
            return;
        }
    };
    let who = Who {
        ip,
        client_id: connect.client_id.clone(),
        user: connect.username.clone(),
    };
    // a name braked for this address is refused without looking at the password
    if !ctx.logins.is_empty()
        && let Some(name) = &connect.username
        && let Some(wait) = ctx.brake.locked(name, ip)
    {
        ctx.refused(ip, Cause::Braked, || {
            format!(
                "MQTT: refused {who}: too many wrong passwords for this name from this address; \
                 it may try again in {} s",
                wait.as_secs().max(1)
            )
        });
        tokio::time::sleep(REFUSED_LOGIN_DELAY).await;
        refuse(client, &packet::connack(packet::NOT_AUTHORIZED)).await;
        return;
    }
    let role = match ctx.login(&connect) {
        Ok(role) => {
            if let Some(name) = &connect.username {
                ctx.brake.passed(name, ip);
            }
            role
        }
        Err((code, cause)) => {
            ctx.refused(ip, cause, || match cause {
                Cause::Anonymous => format!(
                    "MQTT: refused {who}: this broker takes only its [[mqtt.users]] (and [mqtt] \
                     username); give the client a user name and password"
                ),
                _ => format!("MQTT: refused {who}: wrong user name or password"),
            });
            if code == packet::BAD_LOGIN {
                tokio::time::sleep(REFUSED_LOGIN_DELAY).await;
                // counted when the answer goes out: a lock starts when the client learns of it
                if let Some(name) = &connect.username {
                    ctx.brake.failed(name, ip);
                }
            }
            refuse(client, &packet::connack(code)).await;
            return;
        }
    };
    if connect.client_id.starts_with(OWN_ID_PREFIX) {
        ctx.refused(ip, Cause::OwnId, || {
            format!(
                "MQTT: refused {who}: client ids starting with `{OWN_ID_PREFIX}` are ronda's \
                 own; give the client another id"
            )
        });
        refuse(client, &packet::connack(packet::IDENTIFIER_REJECTED)).await;
        return;
    }
    if let Some(will) = &connect.will
        && let Err(why) = ctx.rights.may_publish(role, &will.topic, will.retain)
    {
        ctx.refused(ip, Cause::Will, || {
            format!(
                "MQTT: refused {who}: its last will on `{}` is a message it may not publish: \
                 {why}",
                shown(&will.topic)
            )
        });
        refuse(client, &packet::connack(packet::NOT_AUTHORIZED)).await;
        return;
    }
    let upstream =
        match tokio::time::timeout(UPSTREAM_TIMEOUT, TcpStream::connect(ctx.upstream)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return unavailable(client, ctx, &who, e.to_string()).await,
            Err(_) => return unavailable(client, ctx, &who, "no answer".into()).await,
        };
    let _ = upstream.set_nodelay(true);
    let mut forwarded = connect;
    forwarded.username = Some(ctx.upstream_login.name.clone());
    forwarded.password = Some(ctx.upstream_login.password.as_bytes().to_vec());
    let (mut ur, mut uw) = upstream.into_split();
    if let Err(e) = uw.write_all(&packet::encode_connect(&forwarded)).await {
        return unavailable(client, ctx, &who, e.to_string()).await;
    }
    debug!("MQTT front: {who} logged in as a {}", role.as_str());
    // a persistent session is written down, with what it takes (`super::sessions`)
    let deliveries = match &ctx.book {
        Some(book) if !forwarded.client_id.is_empty() => {
            let (id, user) = (&forwarded.client_id, who.user.as_deref());
            book.connected(id, user, forwarded.clean_session, chrono::Utc::now());
            (!forwarded.clean_session).then(|| Deliveries::new(book.clone(), id))
        }
        _ => None,
    };
    let (mut cr, mut cw) = tokio::io::split(client);
    let (notes, notes_rx) = mpsc::unbounded_channel();
    let by = (role, deliveries.as_ref());
    let end = tokio::select! {
        end = upward(&mut cr, &mut uw, buf, by, &who, ctx, &notes) => end,
        end = downward(&mut ur, &mut cw, notes_rx, (&ctx.readers, who.user.as_deref()), by.1) => end,
    };
    debug!("MQTT front: {who}: {end}");
    let _ = tokio::time::timeout(Duration::from_secs(1), cw.shutdown()).await;
    let _ = uw.shutdown().await;
}

/// rumqttd did not take the connection: CONNACK "server unavailable".
async fn unavailable(client: Box<dyn Io>, ctx: &Ctx, who: &Who, e: String) {
    ctx.refused(who.ip, Cause::Upstream, || {
        format!("MQTT: the broker behind the front does not answer ({e}); {who} is turned away")
    });
    refuse(client, &packet::connack(packet::SERVER_UNAVAILABLE)).await;
}

/// Answer `answer`, close, and read what the client still sends until it closes too (a close
/// with unread bytes would reset the connection, and the client might never see the answer).
async fn refuse(mut client: Box<dyn Io>, answer: &[u8]) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        client.write_all(answer).await?;
        client.shutdown().await?;
        let mut sink = [0u8; 1024];
        while client.read(&mut sink).await? > 0 {}
        Ok::<(), std::io::Error>(())
    })
    .await;
}

/// The first whole packet of a connection (`None`: it closed first). What arrived after it
/// stays in `buf`.
async fn first_packet(
    client: &mut Box<dyn Io>,
    buf: &mut Vec<u8>,
) -> Result<Option<Vec<u8>>, PacketError> {
    loop {
        if let Some(n) = packet::frame_len(buf, MAX_FROM_CLIENT)? {
            return Ok(Some(buf.drain(..n).collect()));
        }
        buf.reserve(CHUNK);
        match client.read_buf(buf).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(_) => {}
        }
    }
}

/// Why a relayed connection ended.
enum End {
    ClientClosed,
    BrokerClosed,
    /// The client broke its rights or the protocol; it was logged.
    CutOff,
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            End::ClientClosed => "the client closed the connection",
            End::BrokerClosed => "the broker closed the connection",
            End::CutOff => "cut off",
        })
    }
}

/// From the front's reader of the client to its writer to the client.
enum Note {
    /// The front took the refused filters out of SUBSCRIBE `pkid`: `allowed` says which of
    /// the client's filters went on, so the broker's SUBACK can be given a 0x80 for the others.
    Narrowed { pkid: u16, allowed: Vec<bool> },
    /// Send this to the client (a SUBACK refusing every filter, answered by the front).
    Answer(Vec<u8>),
    /// SUBSCRIBE `pkid` reads the events: once its SUBACK comes back, a reader is in.
    Reader { pkid: u16 },
}

/// Client -> broker: packets in order, the PUBLISH and SUBSCRIBE ones checked.
async fn upward(
    cr: &mut ReadHalf<Box<dyn Io>>,
    uw: &mut OwnedWriteHalf,
    mut buf: Vec<u8>,
    (role, deliveries): (MqttRole, Option<&Deliveries>),
    who: &Who,
    ctx: &Ctx,
    notes: &mpsc::UnboundedSender<Note>,
) -> End {
    let mut out = Vec::with_capacity(CHUNK);
    loop {
        let mut at = 0;
        let mut cut = false;
        while !cut {
            let n = match packet::frame_len(&buf[at..], MAX_FROM_CLIENT) {
                Ok(Some(n)) => n,
                Ok(None) => break,
                Err(e) => {
                    not_mqtt(ctx, who, &e);
                    cut = true;
                    break;
                }
            };
            let p = &buf[at..at + n];
            at += n;
            if let Some(d) = deliveries {
                d.up(p, |f| ctx.rights.may_subscribe(f));
            }
            cut = !check(p, role, who, ctx, notes, &mut out);
        }
        // what came before a refused packet was the client's right: it goes on
        if !out.is_empty() {
            if uw.write_all(&out).await.is_err() {
                return End::BrokerClosed;
            }
            out.clear();
        }
        if cut {
            return End::CutOff;
        }
        buf.drain(..at);
        buf.reserve(CHUNK);
        match cr.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return End::ClientClosed,
            Ok(_) => {}
        }
    }
}

fn not_mqtt(ctx: &Ctx, who: &Who, e: &PacketError) {
    ctx.refused(who.ip, Cause::NotMqtt, || {
        format!("MQTT: {who} sent what MQTT 3.1.1 does not allow ({e}); the connection is closed")
    });
}

/// Broker -> client: packets in order; a SUBACK of a narrowed SUBSCRIBE gets its refusals
/// back; the front's own answers go in between packets; the SUBACK of a subscription to the
/// events tells `readers` a guard post is in.
async fn downward(
    ur: &mut OwnedReadHalf,
    cw: &mut WriteHalf<Box<dyn Io>>,
    mut notes: mpsc::UnboundedReceiver<Note>,
    (readers, user): (&Readers, Option<&str>),
    deliveries: Option<&Deliveries>,
) -> End {
    let mut buf = Vec::with_capacity(CHUNK);
    let mut out = Vec::with_capacity(CHUNK);
    let mut narrowed: HashMap<u16, Vec<bool>> = HashMap::new();
    let mut reading: Vec<u16> = Vec::new();
    loop {
        buf.reserve(CHUNK);
        tokio::select! {
            note = notes.recv() => match note {
                Some(Note::Answer(bytes)) => {
                    if cw.write_all(&bytes).await.is_err() {
                        return End::ClientClosed;
                    }
                }
                Some(Note::Narrowed { pkid, allowed }) => {
                    narrowed.insert(pkid, allowed);
                }
                Some(Note::Reader { pkid }) => reading.push(pkid),
                None => return End::ClientClosed,
            },
            r = ur.read_buf(&mut buf) => {
                if !matches!(r, Ok(n) if n > 0) {
                    return End::BrokerClosed;
                }
                let mut at = 0;
                while let Ok(Some(n)) = packet::frame_len(&buf[at..], MAX_FROM_BROKER) {
                    let p = &buf[at..at + n];
                    at += n;
                    if let Some(d) = deliveries {
                        d.down(p);
                    }
                    if packet::kind(p[0]) == packet::SUBACK {
                        while let Ok(note) = notes.try_recv() {
                            match note {
                                Note::Narrowed { pkid, allowed } => {
                                    narrowed.insert(pkid, allowed);
                                }
                                Note::Answer(bytes) => out.extend_from_slice(&bytes),
                                Note::Reader { pkid } => reading.push(pkid),
                            }
                        }
                        let acked = packet::parse_suback(p);
                        if let Ok((pkid, _)) = &acked
                            && let Some(i) = reading.iter().position(|r| r == pkid)
                        {
                            reading.swap_remove(i);
                            readers.arrived(user);
                        }
                        if let Ok((pkid, codes)) = acked
                            && let Some(allowed) = narrowed.remove(&pkid)
                        {
                            out.extend_from_slice(&packet::encode_suback(
                                pkid,
                                &widen(&allowed, &codes),
                            ));
                            continue;
                        }
                    }
                    out.extend_from_slice(p);
                }
                // rumqttd never sends a packet over its own limit; if it did, the client
                // could not take it either
                if packet::frame_len(&buf[at..], MAX_FROM_BROKER).is_err() {
                    return End::BrokerClosed;
                }
                buf.drain(..at);
                if !out.is_empty() {
                    if cw.write_all(&out).await.is_err() {
                        return End::ClientClosed;
                    }
                    out.clear();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(users: Vec<BrokerUser>) -> Ctx {
        Ctx {
            tls: None,
            upstream: "127.0.0.1:1".parse().unwrap(),
            upstream_login: BrokerUser {
                name: "own".into(),
                password: "own".into(),
                role: MqttRole::Guard,
            },
            logins: users
                .iter()
                .map(|u| Login {
                    name: u.name.clone(),
                    digest: digest(u.password.as_bytes()),
                    role: u.role,
                })
                .collect(),
            rights: Rights::new("ronda/rw9"),
            logged: Mutex::default(),
            refusals: Arc::default(),
            brake: Brake::default(),
            readers: Readers::new("ronda/rw9/events".into(), []),
            book: None,
        }
    }

    fn hello(user: Option<(&str, &str)>) -> Connect {
        Connect {
            clean_session: true,
            keep_alive: 5,
            client_id: "pos".into(),
            will: None,
            username: user.map(|(u, _)| u.to_string()),
            password: user.map(|(_, p)| p.as_bytes().to_vec()),
        }
    }

    #[test]
    fn logins_give_the_users_role_or_the_right_refusal() {
        let open = ctx(Vec::new());
        assert_eq!(open.login(&hello(None)), Ok(MqttRole::Reader));
        assert_eq!(open.login(&hello(Some(("x", "y")))), Ok(MqttRole::Reader));
        let c = ctx(vec![
            BrokerUser {
                name: "pos1".into(),
                password: "rahasia".into(),
                role: MqttRole::Guard,
            },
            BrokerUser {
                name: "layar".into(),
                password: "lain".into(),
                role: MqttRole::Reader,
            },
        ]);
        assert_eq!(
            c.login(&hello(Some(("pos1", "rahasia")))),
            Ok(MqttRole::Guard)
        );
        assert_eq!(
            c.login(&hello(Some(("layar", "lain")))),
            Ok(MqttRole::Reader)
        );
        let bad = Err((packet::BAD_LOGIN, Cause::BadLogin));
        assert_eq!(c.login(&hello(Some(("pos1", "lain")))), bad);
        assert_eq!(c.login(&hello(Some(("layar", "rahasia")))), bad);
        assert_eq!(c.login(&hello(Some(("tamu", "rahasia")))), bad);
        assert_eq!(
            c.login(&hello(None)),
            Err((packet::NOT_AUTHORIZED, Cause::Anonymous))
        );
    }

    #[test]
    fn a_narrowed_suback_gets_its_refusals_back_in_place() {
        assert_eq!(
            widen(&[false, true, false, true], &[1, 0]),
            [0x80, 1, 0x80, 0]
        );
        assert_eq!(widen(&[true], &[]), [0x80]);
    }

    #[test]
    fn refusals_are_logged_once_a_minute_per_address_and_cause() {
        let c = ctx(Vec::new());
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        let warned: Vec<bool> = (0..5)
            .map(|_| c.refused(ip, Cause::BadLogin, String::new))
            .collect();
        assert_eq!(warned, [true, false, false, false, false]);
        assert!(c.refused(ip, Cause::Publish, String::new));
        assert!(c.refused(other, Cause::BadLogin, String::new));
        assert!(!c.refused(other, Cause::BadLogin, String::new));
    }
}
