//! What the guard post's sink and the city up-link do differently, as data for the one delivery
//! driver (`driver.rs`), and how commands reach it.

use std::time::Instant;

use tokio::sync::{mpsc, watch};

use crate::telemetry;

/// What the guard post's sink and the up-link do differently; everything else (the window, the
/// packet-id FIFO, PUBACKs, reconnects, the shutdown's steps) is this driver's, the same for both.
pub(in crate::sinks) struct Role {
    /// How errors and the debug lines name the sink ("MQTT sink", "up-link").
    pub what: &'static str,
    /// Its thread's name.
    pub thread: &'static str,
    /// How its log lines start ("MQTT", "up-link").
    pub name: &'static str,
    /// How its log lines name the broker ("MQTT broker", "up-link: the city broker").
    pub broker_named: &'static str,
    pub outbox: Outbox,
    pub state: State,
    /// `online` on `<prefix>/availability` at every connect, `offline` at shutdown and as the
    /// last will.
    pub availability: bool,
    /// Whether the broker may forget this box's session between connections (delivery relies
    /// on the outbox either way).
    pub clean_session: bool,
    /// At shutdown, whether an unreachable broker is retried until the deadline (the guard
    /// post) or not waited out at all (the city's: its events wait in the store).
    pub wait_out_outage: bool,
    /// Whose broker it is, for the outage's log line and series (once per outage).
    pub broker: telemetry::MqttBroker,
    pub hints: Hints,
}

/// How the sink keeps its place in the store's outbox.
#[derive(Clone, Copy)]
pub(in crate::sinks) enum Outbox {
    /// The guard post: an event is marked sent (`sent_at`) on its own PUBACK, the guards'
    /// acknowledgements follow the events (`<prefix>/acks`), and what the broker would refuse
    /// is quarantined (it would block the outbox for every sink).
    Marked,
    /// Its own row `name` in `sink_cursors`, at `from` now: it moves over an event only when it
    /// and every event before it are acknowledged. What the broker would refuse is skipped with
    /// a warning: quarantining it would take it from the guard post too.
    Cursor { name: &'static str, from: i64 },
    /// No events at all (an up-link for status and counts only).
    Off,
}

/// How the retained camera status and line counts reach the broker. Both publish all of them
/// again at every connect: the broker may have restarted without them.
#[derive(Clone, Copy)]
pub(in crate::sinks) enum State {
    /// The guard post: each change as a handle stores it ([`Command::Retained`]); one the
    /// broker would refuse is quarantined, a clear is forgotten in the store once acknowledged.
    Pushed,
    /// The up-link: the store's state under `cameras/` (`status`) and `lines/` (`counts`),
    /// compared once a second with what was sent, so the guard post's handles never wait on
    /// it; one the broker would refuse is skipped.
    Polled { status: bool, counts: bool },
}

/// What to check for the failures a user can fix, after the broker's own words.
pub(in crate::sinks) struct Hints {
    /// The login was refused.
    pub login: &'static str,
    /// The client id was refused.
    pub client_id: &'static str,
    /// TLS failed.
    pub tls: &'static str,
}

/// What the rest of ronda says to the driver.
pub(in crate::sinks) enum Command {
    Retained { topic: String, payload: String },
    Shutdown { deadline: Instant },
}

/// How commands reach the driver; neither ever blocks the sender.
pub(in crate::sinks) enum Control {
    /// The guard post's handles: retained state and the shutdown, in order.
    Commands(mpsc::UnboundedReceiver<Command>),
    /// The up-link's stop, a watch value (its deadline).
    Stop(watch::Receiver<Option<Instant>>),
}

impl Control {
    /// The next command; `None` once every sender is gone.
    pub(super) async fn recv(&mut self) -> Option<Command> {
        match self {
            Control::Commands(rx) => rx.recv().await,
            Control::Stop(rx) => match rx.changed().await {
                Ok(()) => Some(Command::Shutdown {
                    deadline: rx.borrow_and_update().unwrap_or_else(Instant::now),
                }),
                Err(_) => None,
            },
        }
    }
}
