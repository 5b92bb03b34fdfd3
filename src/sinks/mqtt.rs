//! The MQTT publisher (DESIGN.md "MQTT"): every stored event goes to `<prefix>/events` at least
//! once and in outbox order; camera status and line counts are retained topics; the
//! availability topic says `online`, and `offline` as the last will. Guards' acknowledgements
//! go to `<prefix>/acks` the same way from the store's `acks` table, after the events.
//!
//! How delivery is made safe:
//! - The outbox in the store is the only queue. The sink reads unsent events from it in seq
//!   order, publishes them with QoS 1 and marks one sent only when its PUBACK arrives. At most
//!   `window` publishes are unacknowledged at a time.
//! - rumqttc tells which packet id it gave a publish (`Outgoing::Publish(pkid)`) in the order the
//!   requests were made, and this sink is the only one making them, so a FIFO of what was
//!   requested maps each packet id to its event.
//! - The session is clean and, when the connection drops, everything rumqttc still held for it
//!   (unacknowledged publishes, requests not yet sent, buffered notifications) is thrown away:
//!   the next connection starts again from the oldest unsent event of the outbox. A broker may
//!   so see an event twice (consumers de-duplicate by id), but never miss one.
//! - A message the broker or the client would refuse (a topic over 65,535 bytes or with a
//!   wildcard, more than [`MAX_PACKET`] bytes, an event row that no longer reads) is set aside
//!   before it is sent (`crate::topic::refusal`, the store's `quarantine` table): sent, it
//!   would cost the connection, and being first in line again after every reconnect it would
//!   block everything behind it for good.
//! - The rumqttc event loop is polled continuously and never cancelled half-way (it is one
//!   future kept across the loop), so publishing never blocks pings or acknowledgements.
//!
//! It runs on its own thread with a small single-threaded tokio runtime; the rest of ronda talks
//! to it through a [`SinkHandle`] (cheap to clone, never blocks). The driver, the client and its
//! TLS set-up are the up-link's too (`super::uplink`): what differs is a [`Role`].

mod driver;
mod options;
mod readers;
mod role;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, EventLoop, LastWill, QoS, TlsConfiguration, Transport};
use tokio::sync::{Notify, mpsc};
use tracing::warn;

use driver::{Command, Driver};
pub(super) use driver::{Control, Hints, Outbox, Role, State};

pub(crate) use driver::ack_payload;
pub use options::{MqttOptions, Tls};
pub(crate) use options::{parse_url, read_ca};
pub use readers::{Hold, READER_GRACE, RESEND_AFTER_CRASH, Readers};

use super::SinkError;
use crate::store::{Store, StoreError};
use crate::{telemetry, topic};

/// Events and retained messages can be large-ish (an event is ~600 bytes; keep room). The
/// embedded broker takes the same; a message over it is quarantined, never sent.
pub(crate) const MAX_PACKET: usize = 256 * 1024;
/// How long dropping an [`MqttSink`] (without [`MqttSink::shutdown`]) tries to flush.
const DROP_FLUSH: Duration = Duration::from_secs(1);

/// The running sink. Dropping it shuts it down (briefly flushing); prefer
/// [`MqttSink::shutdown`] with the time the caller can spare.
pub struct MqttSink {
    handle: SinkHandle,
    thread: Option<JoinHandle<()>>,
}

/// What the rest of ronda uses to talk to the sink, from any thread.
#[derive(Clone)]
pub struct SinkHandle {
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
    store: Arc<Store>,
}

/// What a driver and its sink's handles share.
pub(super) struct Shared {
    pub(super) wake: Notify,
    pub(super) connected: AtomicBool,
    /// Times the broker became unreachable (`ronda_mqtt_outages_total`,
    /// `ronda_uplink_outages_total`).
    pub(super) outages: AtomicU64,
}

/// The guard post's sink: every event marked sent on its PUBACK, the guards' acknowledgements,
/// retained state pushed by the handles, `online`/`offline`, retried until the shutdown's end.
fn village() -> Role {
    Role {
        what: "MQTT sink",
        thread: "mqtt-sink",
        name: "MQTT",
        broker_named: "MQTT broker",
        outbox: Outbox::Marked,
        state: State::Pushed,
        availability: true,
        clean_session: true,
        wait_out_outage: true,
        broker: telemetry::MqttBroker::GuardPost,
        hints: Hints {
            login: ": check [mqtt] username and the password in the variable named by password_env",
            client_id: ": the broker refuses the client id ronda-<site id>",
            tls: ": check that [mqtt] ca_file is the CA that signed the broker's certificate and \
                  that the url's host name is in that certificate",
        },
    }
}

impl MqttSink {
    /// Start publishing the outbox of `store` to the broker of `opts`. Returns at once: the
    /// connection is made (and remade) in the background.
    pub fn start(opts: MqttOptions, store: Arc<Store>) -> Result<MqttSink, SinkError> {
        let no_roots = SinkError::Tls {
            broker: opts.broker(),
            reason: "this system has no CA certificates to check the broker with".into(),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let (shared, thread) = spawn(
            village(),
            opts,
            store.clone(),
            Control::Commands(rx),
            no_roots,
        )?;
        Ok(MqttSink {
            handle: SinkHandle {
                shared,
                commands: tx,
                store,
            },
            thread: Some(thread),
        })
    }

    /// A handle for other threads.
    pub fn handle(&self) -> SinkHandle {
        self.handle.clone()
    }

    /// Try to deliver the outbox within `timeout`, then publish `offline` on the availability
    /// topic and disconnect cleanly. Returns within `timeout` + 1.25 s at most, with the number of
    /// events still unsent: they stay in the outbox and go out after the next start.
    pub fn shutdown(mut self, timeout: Duration) -> Result<u64, StoreError> {
        self.stop(timeout);
        self.handle.backlog()
    }

    fn stop(&mut self, timeout: Duration) {
        if let Some(thread) = self.thread.take() {
            let deadline = Instant::now() + timeout;
            let _ = self.handle.commands.send(Command::Shutdown { deadline });
            if thread.join().is_err() {
                warn!("the MQTT sink thread panicked while shutting down");
            }
        }
    }
}

impl Drop for MqttSink {
    fn drop(&mut self) {
        self.stop(DROP_FLUSH);
    }
}

impl std::ops::Deref for MqttSink {
    type Target = SinkHandle;
    fn deref(&self) -> &SinkHandle {
        &self.handle
    }
}

impl SinkHandle {
    /// New events were appended to the outbox: send them now (not at the next 1 s check).
    pub fn notify(&self) {
        self.shared.wake.notify_one();
    }

    /// Publish a camera's status (retained) on `<prefix>/cameras/<camera>/status`. It is stored
    /// first, so it is published again after a reconnect or a restart.
    pub fn publish_status(&self, camera: &str, json: &str) -> Result<(), StoreError> {
        self.retained(topic::camera_status(camera), json)
    }

    /// Publish a line's counts (retained) on `<prefix>/lines/<camera>/<line>/counts`.
    pub fn publish_counts(&self, camera: &str, line: &str, json: &str) -> Result<(), StoreError> {
        self.retained(topic::line_counts(camera, line), json)
    }

    /// A line was removed or renamed: clear its retained counts on the broker (an empty
    /// retained message), so subscribers see no ghost line. Kept in the store until the broker
    /// has it, so a restart meanwhile still clears it.
    pub fn clear_counts(&self, camera: &str, line: &str) -> Result<(), StoreError> {
        self.clear(topic::line_counts(camera, line))
    }

    /// Clear the retained topic `<prefix>/<suffix>` if ronda ever published it.
    pub fn clear(&self, suffix: String) -> Result<(), StoreError> {
        if self.store.clear_retained(&suffix)? {
            let _ = self.commands.send(Command::Retained {
                topic: suffix,
                payload: String::new(),
            });
        }
        Ok(())
    }

    fn retained(&self, topic: String, payload: &str) -> Result<(), StoreError> {
        self.store.set_retained(&topic, payload)?;
        // If the sink is gone the state is stored and goes out after the next start.
        let _ = self.commands.send(Command::Retained {
            topic,
            payload: payload.to_string(),
        });
        Ok(())
    }

    /// Whether the broker accepted the connection and it has not failed since.
    pub fn connected(&self) -> bool {
        self.shared.connected.load(Ordering::Relaxed)
    }

    /// Times the broker became unreachable since the start (each outage once, however many
    /// reconnects it took).
    pub fn outages(&self) -> u64 {
        self.shared.outages.load(Ordering::Relaxed)
    }

    /// Events waiting in the outbox (not yet acknowledged by the broker).
    pub fn backlog(&self) -> Result<u64, StoreError> {
        self.store.backlog()
    }
}

/// Start `role`'s driver for the broker of `opts` on its own thread, with a small
/// single-threaded tokio runtime. `no_roots`: the error to give when `mqtts://` has no CA file
/// and the system no CA certificates.
pub(super) fn spawn(
    role: Role,
    opts: MqttOptions,
    store: Arc<Store>,
    control: Control,
    no_roots: SinkError,
) -> Result<(Arc<Shared>, JoinHandle<()>), SinkError> {
    let (client, eventloop) = client(&opts, &role, no_roots)?;
    let shared = Arc::new(Shared {
        wake: Notify::new(),
        connected: AtomicBool::new(false),
        outages: AtomicU64::new(0),
    });
    let (what, thread) = (role.what, role.thread);
    let thread_error = |e: std::io::Error| SinkError::Thread {
        what,
        reason: e.to_string(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(thread_error)?;
    let driver = Driver::new(role, opts, client, store, shared.clone(), control);
    let thread = std::thread::Builder::new()
        .name(thread.into())
        .spawn(move || runtime.block_on(driver.run(eventloop)))
        .map_err(thread_error)?;
    Ok((shared, thread))
}

/// The rumqttc client of `o`, for the guard post's sink and the up-link alike: the same packet
/// limits, in-flight limit, request channel and TLS set-up; the session and the last will as
/// `role` says.
fn client(
    o: &MqttOptions,
    role: &Role,
    no_roots: SinkError,
) -> Result<(AsyncClient, EventLoop), SinkError> {
    let mut m = rumqttc::MqttOptions::new(&o.client_id, &o.host, o.port);
    m.set_keep_alive(o.keep_alive.max(Duration::from_secs(1)))
        .set_clean_session(role.clean_session)
        .set_inflight(inflight_limit(o))
        .set_max_packet_size(MAX_PACKET, MAX_PACKET);
    if role.availability {
        m.set_last_will(LastWill::new(
            topic::full(&o.topic_prefix, topic::AVAILABILITY),
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
    }
    if o.username.is_some() || o.password.is_some() {
        m.set_credentials(
            o.username.clone().unwrap_or_default(),
            o.password.clone().unwrap_or_default(),
        );
    }
    if let Some(tls) = &o.tls {
        install_crypto_provider();
        let config = match tls {
            Tls::Ca { pem, .. } => TlsConfiguration::Simple {
                ca: pem.clone(),
                alpn: None,
                client_auth: None,
            },
            // rumqttc panics when the system has no CA certificates; say what to do instead.
            Tls::SystemRoots => {
                std::panic::catch_unwind(TlsConfiguration::default).map_err(|_| no_roots)?
            }
        };
        m.set_transport(Transport::tls_with_config(config));
    }
    // The request channel holds at most a window of publishes plus a few commands or the
    // retained state queued at a reconnect; `try_publish` on a full channel waits for the next
    // round, never blocks.
    let (client, mut eventloop) = AsyncClient::new(m, o.window + 16);
    eventloop
        .network_options
        .set_connection_timeout(o.connect_timeout.as_secs().max(1));
    Ok((client, eventloop))
}

/// rustls needs a process-wide crypto provider for rumqttc's TLS set-up, which panics without
/// one. ronda builds rustls with ring only (Cargo.toml), which rustls would pick by itself; it is
/// installed by name so that a dependency bringing a second provider later cannot make it panic.
pub(crate) fn install_crypto_provider() {
    use rustls::crypto::{CryptoProvider, ring};
    if CryptoProvider::get_default().is_none() {
        // Err: another thread installed one meanwhile, which is as good.
        let _ = ring::default_provider().install_default();
    }
}

/// rumqttc's own limit is kept above ours, so its flow control never holds a request back and
/// packet ids never collide.
pub(super) fn inflight_limit(o: &MqttOptions) -> u16 {
    (o.window.clamp(1, 1000) + 28) as u16
}
