//! The up-link (`[uplink]`): the village's events, and if wanted its camera status and line
//! counts, also go to an upstream broker (the city's) under the site's topics
//! (`ronda/<site id>/events`, `.../cameras/<camera>/status`, `.../lines/<camera>/<line>/counts`,
//! `.../availability`), beside the local broker of the guard post.
//!
//! How delivery is made safe, and independent of the guard post:
//! - The store's outbox is the only queue, as for the local MQTT sink, but the up-link keeps its
//!   own place in it: the cursor row `uplink` (`store::Store::sink_cursor`), the webhook's
//!   pattern. The local sink's `sent_at`, the webhook's and the phones' cursors are never
//!   touched, so a city that is down for a day holds back nothing but the up-link.
//! - Events go out in seq order with QoS 1, at most [`UplinkOptions`]' `window` unacknowledged.
//!   The cursor moves over an event only when its PUBACK arrived and every event before it is
//!   acknowledged too (a broker acknowledges in order; the cursor never skips a hole).
//! - When the connection drops, what was requested but not acknowledged is thrown away and the
//!   next connection starts again after the cursor. Such an event may so reach the city twice
//!   (only one that was in flight when the link broke); none is missed. After a restart of
//!   ronda the stored cursor is where it resumes. Event ids are the consumers' idempotency key.
//! - The session is persistent (`clean_session = false`, client id `ronda-<site id>`): the city
//!   broker keeps what it holds for this box across reconnects. Delivery does not rely on it:
//!   the outbox cursor is the truth, which also covers a city broker that lost its sessions.
//! - Camera status and line counts are retained messages: the last payload of each is in the
//!   store (`retained`), compared once a second with what was sent upstream, and all of them are
//!   published again after every reconnect (the city broker may have restarted without them).
//!   `availability` is `online` while connected and `offline` as the last will.
//! - A message the city broker would refuse (too large, a topic it cannot take) is skipped with
//!   one warning instead of costing the connection at every retry.
//!
//! On a store that never had an up-link, the cursor is made at the end of the outbox: the city
//! gets the events from then on, not the village's history. Removing `[uplink]` lets go of the
//! cursor, so a dead up-link never keeps old events from retention.
//!
//! It runs on its own thread with a small single-threaded tokio runtime, the guard post's
//! delivery driver in the up-link's [`Role`] (`super::mqtt`). Talking to it never blocks: [`UplinkSink::notify`] sets a flag (wakes coalesce: one pending wake stands for any
//! number of new events, which the sink reads from the store), and the stop is a watch value.

mod options;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{info, warn};

pub use options::UplinkOptions;

use super::SinkError;
use super::mqtt::{self, Control, Hints, Outbox, Role, Shared, State};
use crate::config::UplinkTopics;
use crate::store::{Store, StoreError};
use crate::telemetry;

/// The up-link's row in the store's `sink_cursors`.
pub const CURSOR: &str = "uplink";
/// How long dropping an [`UplinkSink`] (without [`UplinkSink::shutdown`]) tries to flush.
const DROP_FLUSH: Duration = Duration::from_secs(1);

/// The running up-link. Dropping it shuts it down (briefly flushing).
pub struct UplinkSink {
    status: UplinkStatus,
    stop: watch::Sender<Option<Instant>>,
    thread: Option<JoinHandle<()>>,
}

/// What `/metrics` reads of the up-link, from any thread.
#[derive(Clone)]
pub struct UplinkStatus {
    shared: Arc<Shared>,
    store: Arc<Store>,
    events: bool,
}

/// The up-link: its own cursor (or none), retained state polled from the store as `topics`
/// say, `online`/`offline` only with the status, an outage not waited out at shutdown.
fn city(topics: UplinkTopics, cursor: Option<i64>) -> Role {
    Role {
        what: "up-link",
        thread: "uplink",
        name: "up-link",
        broker_named: "up-link: the city broker",
        outbox: match cursor {
            Some(from) => Outbox::Cursor { name: CURSOR, from },
            None => Outbox::Off,
        },
        state: State::Polled {
            status: topics.status,
            counts: topics.counts,
        },
        availability: topics.status,
        // see the module documentation: the city keeps this box's session across reconnects
        clean_session: false,
        wait_out_outage: false,
        broker: telemetry::MqttBroker::City,
        hints: Hints {
            login: ": the city broker refuses the login; check [uplink] username and the \
                    password in the variable named by `password`",
            client_id: ": the city broker refuses the client id; set [uplink] client_id to the \
                        one the city gave this village",
            tls: ": check that [uplink] ca_file is the CA that signed the city broker's \
                  certificate and that the url's host name is in that certificate",
        },
    }
}

impl UplinkSink {
    /// Start sending the outbox of `store` to the broker of `opts`. The cursor is made before
    /// this returns, so every event stored afterwards goes up. The connection is made (and
    /// remade) in the background.
    pub fn start(opts: UplinkOptions, store: Arc<Store>) -> Result<UplinkSink, SinkError> {
        let cursor = if opts.topics.events {
            let c = store.sink_cursor(CURSOR)?;
            if c.new {
                info!(
                    broker = %opts.broker(),
                    "up-link: first start on this store; events stored from now on go to the \
                     city, none stored before"
                );
            } else {
                info!(
                    broker = %opts.broker(),
                    waiting = store.sink_backlog(CURSOR).unwrap_or(0),
                    "up-link: resuming after the last event the city acknowledged"
                );
            }
            Some(c.seq)
        } else {
            // events not wanted: no cursor to hold the outbox against retention
            store.forget_sink_cursor(CURSOR)?;
            None
        };
        let no_roots = SinkError::Uplink {
            key: "ca_file",
            reason: "this system has no CA certificates to check the city broker with; install \
                     the ca-certificates package or set ca_file"
                .into(),
        };
        let (stop, stop_rx) = watch::channel(None);
        let events = opts.topics.events;
        let role = city(opts.topics, cursor);
        let (shared, thread) = mqtt::spawn(
            role,
            opts.link,
            store.clone(),
            Control::Stop(stop_rx),
            no_roots,
        )?;
        Ok(UplinkSink {
            status: UplinkStatus {
                shared,
                store,
                events,
            },
            stop,
            thread: Some(thread),
        })
    }

    /// New events were stored: send them now (not at the next 1 s look). Never blocks.
    pub fn notify(&self) {
        self.status.shared.wake.notify_one();
    }

    /// The figures for `/metrics`.
    pub fn status(&self) -> UplinkStatus {
        self.status.clone()
    }

    /// Try to deliver what waits within `timeout` (only while the city broker is reachable:
    /// an outage is not waited out), publish `offline` and disconnect. Returns within `timeout`
    /// + 1.25 s, with the number of events still waiting: they go up after the next start.
    pub fn shutdown(mut self, timeout: Duration) -> Result<u64, StoreError> {
        self.stop(timeout);
        self.status.pending()
    }

    fn stop(&mut self, timeout: Duration) {
        if let Some(thread) = self.thread.take() {
            self.stop.send_replace(Some(Instant::now() + timeout));
            if thread.join().is_err() {
                warn!("the up-link thread panicked while shutting down");
            }
        }
    }
}

impl Drop for UplinkSink {
    fn drop(&mut self) {
        self.stop(DROP_FLUSH);
    }
}

impl UplinkStatus {
    /// Whether the city broker accepted the connection and it has not failed since.
    pub fn connected(&self) -> bool {
        self.shared.connected.load(Ordering::Relaxed)
    }

    /// Times the city broker became unreachable since the start (each outage once).
    pub fn outages(&self) -> u64 {
        self.shared.outages.load(Ordering::Relaxed)
    }

    /// Events stored and not yet acknowledged by the city broker (`ronda_uplink_pending`).
    pub fn pending(&self) -> Result<u64, StoreError> {
        if self.events {
            self.store.sink_backlog(CURSOR)
        } else {
            Ok(0)
        }
    }
}
