//! The one delivery driver of the outbox to an MQTT broker, for the guard post's sink and the
//! city up-link alike: it drives the rumqttc event loop, keeps at most a window of QoS 1
//! publishes unacknowledged, maps packet ids to what they were, records a delivery only on its
//! PUBACK and starts again from the outbox after a reconnect (see the parent module for why this
//! is safe). What the two sinks do differently is data, a [`Role`].

use std::collections::{HashMap, VecDeque};
use std::fmt::Display;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, MqttState, Outgoing, Packet, QoS};
use tracing::{debug, info, warn};

pub(in crate::sinks) use super::role::{Command, Control, Hints, Outbox, Role, State};
use super::{MAX_PACKET, MqttOptions, Shared, inflight_limit};
use crate::backoff::Backoff;
use crate::store::{Store, StoreError};
use crate::{telemetry, topic};
pub(crate) use helpers::ack_payload;
use helpers::{bad_seq, hint, quarantine};

/// After the shutdown deadline: how long `offline` and DISCONNECT may still take.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// How long the DISCONNECT may take to go out after that.
const DISCONNECT_GRACE: Duration = Duration::from_millis(250);

/// What a publish in flight was.
#[derive(Clone, Debug, PartialEq)]
enum Tag {
    Event(i64),
    /// A guard's acknowledgement (its seq in the store's `acks`).
    Ack(i64),
    /// Retained state (camera status, line counts, `online`): sent again at every connect, so
    /// its acknowledgement moves nothing.
    State,
    /// An empty retained message that clears a topic gone from the configuration (its suffix):
    /// forgotten in the store once the broker has it ([`State::Pushed`] only).
    Clear(String),
    Offline,
}

struct Out {
    tag: Tag,
    topic: String,
    payload: Vec<u8>,
    retain: bool,
}

/// Delivery state of one connection; dropped with it.
#[derive(Default)]
struct Link {
    /// Requested from rumqttc, packet id not yet known (rumqttc reports ids in request order).
    requested: VecDeque<Tag>,
    /// Sent with this packet id, PUBACK awaited.
    inflight: HashMap<u16, Tag>,
    /// To request when the window has room.
    queue: VecDeque<Out>,
    /// [`Outbox::Cursor`]: the events read on this connection, in seq order, and whether each
    /// is done (acknowledged, or skipped as one the broker would refuse): the cursor moves over
    /// the done ones at the front, never over a hole.
    events: VecDeque<(i64, bool)>,
    /// The highest seq read from the outbox on this connection.
    read_to: i64,
    /// The highest acknowledgement seq read on this connection.
    acks_read_to: i64,
    offline_acked: bool,
}

impl Link {
    fn outstanding(&self) -> usize {
        self.requested.len() + self.inflight.len()
    }
}

struct Shutdown {
    deadline: Instant,
    /// `offline` is queued (when flushed or at the deadline): no more events; the hard end.
    offline_queued: Option<Instant>,
    disconnect_sent: bool,
}

pub(in crate::sinks) struct Driver {
    role: Role,
    opts: MqttOptions,
    client: AsyncClient,
    store: Arc<Store>,
    shared: Arc<Shared>,
    control: Control,
    /// Every sender is gone (the sink was dropped without a shutdown command).
    control_closed: bool,
    /// [`Outbox::Cursor`]: every event up to here is acknowledged (in memory; stored unless
    /// `unmarked`). 0 otherwise: the outbox is read from its start at every connect.
    cursor: i64,
    unmarked: bool,
    /// Some while connected.
    link: Option<Link>,
    /// [`State::Polled`]: the retained payload last requested, by topic suffix.
    state_sent: HashMap<String, String>,
    backoff: Backoff,
    /// Since when the broker is unreachable (the outage was logged once).
    outage: Option<Instant>,
    store_failing: bool,
    shutdown: Option<Shutdown>,
    finished: bool,
}

type Polled = (EventLoop, Result<Event, ConnectionError>);

/// One poll of the event loop, after `delay` (the reconnect backoff). The event loop moves in
/// and out so that the pending poll is one future the driver keeps across its loop: it is
/// never cancelled half-way, so publishing never blocks pings or acknowledgements.
async fn poll_after(mut eventloop: EventLoop, delay: Duration) -> Polled {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let r = eventloop.poll().await;
    (eventloop, r)
}

impl Driver {
    pub(in crate::sinks) fn new(
        role: Role,
        opts: MqttOptions,
        client: AsyncClient,
        store: Arc<Store>,
        shared: Arc<Shared>,
        control: Control,
    ) -> Driver {
        let cursor = match role.outbox {
            Outbox::Cursor { from, .. } => from,
            Outbox::Marked | Outbox::Off => 0,
        };
        Driver {
            backoff: Backoff::new(opts.backoff_min, opts.backoff_max),
            role,
            opts,
            client,
            store,
            shared,
            control,
            control_closed: false,
            cursor,
            unmarked: false,
            link: None,
            state_sent: HashMap::new(),
            outage: None,
            store_failing: false,
            shutdown: None,
            finished: false,
        }
    }

    pub(in crate::sinks) async fn run(mut self, eventloop: EventLoop) {
        let mut poll = Box::pin(poll_after(eventloop, Duration::ZERO));
        // A safety net: pick up events whose wake was missed, look at the polled retained
        // state, retry after a store error.
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !self.finished {
            let deadline = self.next_deadline().map(tokio::time::Instant::from_std);
            tokio::select! {
                (mut eventloop, r) = &mut poll => {
                    let delay = self.on_poll(&mut eventloop, r);
                    poll = Box::pin(poll_after(eventloop, delay));
                }
                _ = self.shared.wake.notified() => {}
                c = self.control.recv(), if !self.control_closed => self.on_command(c),
                _ = tick.tick() => {
                    self.sync_state(false);
                    if self.unmarked {
                        self.store_cursor();
                    }
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)),
                    if deadline.is_some() => {}
                // events held for a reader go out as soon as one comes (or nobody did)
                _ = released(&self.opts.hold), if holding(&self.opts.hold) => {}
            }
            self.pump();
            // Shutdown steps (queue `offline`, DISCONNECT) take effect now, not at the next tick.
            if self.shutdown.is_some() {
                self.check_shutdown();
                self.pump();
            }
        }
        self.shared.connected.store(false, Ordering::Relaxed);
        if self.unmarked {
            self.store_cursor();
        }
        debug!("{} stopped", self.role.what);
    }

    /// Handle one result of the event loop; returns how long to wait before polling again.
    fn on_poll(&mut self, el: &mut EventLoop, r: Result<Event, ConnectionError>) -> Duration {
        match r {
            Ok(Event::Incoming(Packet::ConnAck(_))) => self.on_connected(),
            Ok(Event::Incoming(Packet::PubAck(ack))) => self.on_puback(ack.pkid),
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                if let Some(link) = &mut self.link
                    && let Some(tag) = link.requested.pop_front()
                {
                    link.inflight.insert(pkid, tag);
                }
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) if self.shutdown.is_some() => {
                self.finished = true;
            }
            Ok(_) => {}
            Err(e) => {
                self.on_disconnected(el, &e);
                return self.backoff.next_delay();
            }
        }
        Duration::ZERO
    }

    fn on_connected(&mut self) {
        self.shared.connected.store(true, Ordering::Relaxed);
        self.backoff.reset();
        let waiting = self.waiting();
        match self.outage.take() {
            Some(since) => info!(
                "{} {} is reachable again after {:.0?}; {waiting} event(s) to send",
                self.role.broker_named,
                self.opts.broker(),
                since.elapsed()
            ),
            None => info!(
                "{} connected to {} ({waiting} event(s) to send)",
                self.role.name,
                self.opts.broker()
            ),
        }
        if let Some(h) = self
            .opts
            .hold
            .as_ref()
            .filter(|h| h.holding(Instant::now()))
        {
            info!(
                "events wait for a guard post to subscribe to the embedded broker (at most \
                 {:.0?} more: it started afresh, without their sessions)",
                h.until.saturating_duration_since(Instant::now())
            );
        }
        let mut link = Link {
            read_to: self.cursor,
            ..Link::default()
        };
        if self.role.availability {
            link.queue
                .extend(self.state_out(topic::AVAILABILITY, "online"));
        }
        // The broker may have restarted without its retained messages: publish them again.
        if let State::Pushed = self.role.state {
            match self.store.retained() {
                Ok(all) => {
                    for (suffix, payload) in all {
                        link.queue.extend(self.state_out(&suffix, &payload));
                    }
                }
                Err(e) => warn!(
                    "{}: cannot re-publish camera status and counts: {e}",
                    self.role.name
                ),
            }
        }
        self.link = Some(link);
        self.sync_state(true);
    }

    fn on_puback(&mut self, pkid: u16) {
        let Some(link) = &mut self.link else { return };
        match link.inflight.remove(&pkid) {
            Some(Tag::Event(seq)) => {
                if let Outbox::Cursor { .. } = self.role.outbox {
                    if let Some(e) = link.events.iter_mut().find(|e| e.0 == seq) {
                        e.1 = true;
                    }
                    self.advance();
                } else if let Err(e) = self.store.mark_sent(seq) {
                    // Not marked: it is sent again later, a duplicate at worst.
                    self.store_trouble(e);
                }
            }
            Some(Tag::Ack(seq)) => {
                if let Err(e) = self.store.mark_ack_sent(seq) {
                    self.store_trouble(e);
                }
            }
            Some(Tag::Clear(suffix)) => {
                if let Err(e) = self.store.forget_cleared(&suffix) {
                    // Kept: cleared again at the next connect, which does no harm.
                    self.store_trouble(e);
                }
            }
            Some(Tag::Offline) => link.offline_acked = true,
            Some(Tag::State) | None => {}
        }
    }

    /// Move the cursor over the done events at the front of this connection's list.
    fn advance(&mut self) {
        let Some(link) = &mut self.link else { return };
        let mut moved = None;
        while let Some(&(seq, true)) = link.events.front() {
            link.events.pop_front();
            moved = Some(seq);
        }
        if let Some(seq) = moved {
            self.cursor = seq;
            self.store_cursor();
        }
    }

    fn store_cursor(&mut self) {
        let Outbox::Cursor { name, .. } = self.role.outbox else {
            return;
        };
        match self.store.mark_sink_done(name, self.cursor) {
            Ok(()) => {
                self.unmarked = false;
                self.store_ok();
            }
            // Kept in memory and stored with the next mark or tick: after a crash meanwhile,
            // the events since the stored cursor go out again (duplicates, never a loss).
            Err(e) => {
                self.unmarked = true;
                self.store_trouble(e);
            }
        }
    }

    fn on_disconnected(&mut self, el: &mut EventLoop, e: &ConnectionError) {
        self.shared.connected.store(false, Ordering::Relaxed);
        self.link = None;
        // rumqttc keeps unacknowledged publishes and unsent requests to resume the session; the
        // outbox re-sends them in order instead, so start the next connection from nothing.
        el.state = MqttState::new(inflight_limit(&self.opts), false);
        el.pending.clear();
        if let Some(sd) = &self.shutdown
            && (!self.role.wait_out_outage || sd.disconnect_sent || Instant::now() >= sd.deadline)
        {
            self.finished = true;
            return;
        }
        if self.outage.is_none() {
            self.outage = Some(Instant::now());
            telemetry::mqtt_unreachable(
                self.role.broker,
                &self.opts.broker(),
                e,
                hint(e, &self.role.hints),
                (self.opts.backoff_min, self.opts.backoff_max),
                &self.shared.outages,
            );
        } else {
            debug!(
                "{} {} still unreachable: {e}",
                self.role.broker_named,
                self.opts.broker()
            );
        }
    }

    fn on_command(&mut self, c: Option<Command>) {
        match c {
            Some(Command::Retained { topic, payload }) => {
                let accepting = self
                    .shutdown
                    .as_ref()
                    .is_none_or(|s| s.offline_queued.is_none());
                // While disconnected it is in the store, published on the next connection.
                if accepting && self.link.is_some() {
                    let out = self.state_out(&topic, &payload);
                    if let Some(link) = &mut self.link {
                        link.queue.extend(out);
                    }
                }
            }
            Some(Command::Shutdown { deadline }) => self.begin_shutdown(deadline),
            // Every sender is gone: nobody can append or shut down any more.
            None => {
                self.control_closed = true;
                self.begin_shutdown(Instant::now());
            }
        }
    }

    /// The first shutdown command counts (a sink sends one at most).
    fn begin_shutdown(&mut self, deadline: Instant) {
        self.shutdown.get_or_insert(Shutdown {
            deadline,
            offline_queued: None,
            disconnect_sent: false,
        });
    }

    /// Request publishes while the window has room: queued state first, then the outbox (for
    /// [`Outbox::Marked`], the guards' acknowledgements when no event waits).
    fn pump(&mut self) {
        let Some(link) = &mut self.link else { return };
        let outbox = self.role.outbox;
        let name = self.role.name;
        let more_events = !matches!(outbox, Outbox::Off)
            && !holding(&self.opts.hold)
            && self
                .shutdown
                .as_ref()
                .is_none_or(|s| s.offline_queued.is_none());
        let window = self.opts.window.max(1);
        let mut trouble = None;
        // The unreadable row set aside last: seen again, setting it aside did not take, and
        // trying once more would only spin.
        let mut last_bad = None;
        // An event was skipped: the cursor may move over it.
        let mut skipped = false;
        loop {
            if link.queue.is_empty() && more_events && link.outstanding() < window {
                let room = window - link.outstanding();
                let read = match outbox {
                    Outbox::Cursor { name, .. } => {
                        self.store.sink_pending(name, link.read_to, room)
                    }
                    Outbox::Marked | Outbox::Off => self.store.unsent(link.read_to, room),
                };
                match read {
                    Ok(events) if events.is_empty() => {
                        if !matches!(outbox, Outbox::Marked) {
                            break;
                        }
                        match self.store.unsent_acks(link.acks_read_to, room) {
                            Ok(acks) if acks.is_empty() => break,
                            Ok(acks) => {
                                for a in acks {
                                    link.acks_read_to = a.seq;
                                    let topic = topic::full(&self.opts.topic_prefix, topic::ACKS);
                                    let payload = ack_payload(&a);
                                    if let Some(why) =
                                        topic::refusal(&topic, payload.len(), MAX_PACKET)
                                    {
                                        if let Err(e) = quarantine(
                                            &self.store,
                                            name,
                                            Tag::Ack(a.seq),
                                            &topic,
                                            &why,
                                        ) {
                                            trouble = Some(e);
                                        }
                                        continue;
                                    }
                                    link.queue.push_back(Out {
                                        tag: Tag::Ack(a.seq),
                                        topic,
                                        payload,
                                        retain: false,
                                    });
                                }
                            }
                            Err(e) => {
                                trouble = Some(e);
                                break;
                            }
                        }
                    }
                    Ok(events) => {
                        for (seq, e) in events {
                            link.read_to = seq;
                            let payload = serde_json::to_vec(&e).unwrap_or_default();
                            let topic = topic::full(&self.opts.topic_prefix, topic::EVENTS);
                            let cursor = matches!(outbox, Outbox::Cursor { .. });
                            // Sent, it would cost the connection, and it would be first again
                            // after every reconnect: set it aside (or skip it), go on.
                            if let Some(why) = topic::refusal(&topic, payload.len(), MAX_PACKET) {
                                if cursor {
                                    warn!("{name}: event {} (#{seq}) is not sent: {why}", e.id);
                                    link.events.push_back((seq, true));
                                    skipped = true;
                                } else if let Err(e) =
                                    quarantine(&self.store, name, Tag::Event(seq), &topic, &why)
                                {
                                    trouble = Some(e);
                                }
                                continue;
                            }
                            if cursor {
                                link.events.push_back((seq, false));
                            }
                            link.queue.push_back(Out {
                                tag: Tag::Event(seq),
                                topic,
                                payload,
                                retain: false,
                            });
                        }
                    }
                    // A row that no longer reads would stop the outbox at it for good. Set
                    // aside, it leaves the outbox query; skipped, the cursor moves over it.
                    Err(e @ StoreError::BadEvent { .. }) if last_bad == bad_seq(&e) => {
                        trouble = Some(e);
                        break;
                    }
                    Err(StoreError::BadEvent { seq, reason, .. }) => {
                        if let Outbox::Cursor { .. } = outbox {
                            warn!("{name}: stored event #{seq} cannot be read ({reason}); skipped");
                            link.read_to = seq;
                            link.events.push_back((seq, true));
                            skipped = true;
                        } else {
                            last_bad = Some(seq);
                            let topic = topic::full(&self.opts.topic_prefix, topic::EVENTS);
                            let why = format!("the stored event cannot be read: {reason}");
                            if let Err(e) =
                                quarantine(&self.store, name, Tag::Event(seq), &topic, &why)
                            {
                                trouble = Some(e);
                                break;
                            }
                        }
                    }
                    Err(e) => {
                        trouble = Some(e);
                        break;
                    }
                }
            }
            let Some(out) = link.queue.front() else { break };
            if link.outstanding() >= window {
                break;
            }
            let r = self.client.try_publish(
                &out.topic,
                QoS::AtLeastOnce,
                out.retain,
                out.payload.clone(),
            );
            if r.is_err() {
                // The request channel is full; the event loop empties it and we come back.
                break;
            }
            if let Tag::Event(seq) = out.tag {
                debug!(seq, "{name} publish");
            }
            if let Some(out) = link.queue.pop_front() {
                link.requested.push_back(out.tag);
            }
        }
        if skipped {
            self.advance();
        }
        match trouble {
            Some(e) => self.store_trouble(e),
            None => self.store_ok(),
        }
    }

    fn store_ok(&mut self) {
        if self.store_failing && !self.unmarked {
            self.store_failing = false;
            info!("{}: the outbox can be used again", self.role.name);
        }
    }

    /// One warning per run of store failures, not one per attempt.
    fn store_trouble(&mut self, e: StoreError) {
        if !self.store_failing {
            warn!(
                "{}: the outbox cannot be used: {e}; retrying every second",
                self.role.name
            );
            self.store_failing = true;
        }
    }

    /// Events the broker has not acknowledged yet (for the log lines).
    fn waiting(&self) -> u64 {
        match self.role.outbox {
            Outbox::Marked => self.store.backlog().unwrap_or(0),
            Outbox::Cursor { name, .. } => self.store.sink_backlog(name).unwrap_or(0),
            Outbox::Off => 0,
        }
    }

    fn check_shutdown(&mut self) {
        let Some(sd) = &mut self.shutdown else { return };
        let now = Instant::now();
        let Some(link) = &mut self.link else {
            // Not connected: nothing more can be done once the time is up, or at once where an
            // outage is not waited out (the events wait in the store for the next start).
            if !self.role.wait_out_outage || now >= sd.deadline {
                self.finished = true;
            }
            return;
        };
        match sd.offline_queued {
            None => {
                let flushed = link.queue.is_empty()
                    && link.outstanding() == 0
                    && match self.role.outbox {
                        Outbox::Marked => {
                            self.store
                                .unsent(link.read_to, 1)
                                .is_ok_and(|v| v.is_empty())
                                && self
                                    .store
                                    .unsent_acks(link.acks_read_to, 1)
                                    .is_ok_and(|v| v.is_empty())
                        }
                        Outbox::Cursor { name, .. } => self
                            .store
                            .sink_pending(name, link.read_to, 1)
                            .is_ok_and(|v| v.is_empty()),
                        Outbox::Off => true,
                    };
                // Events held for the guard posts (`holding`) wait for them, not for this stop:
                // they stay in the store for the next start, which holds them again, so the stop
                // does not sit out its deadline for nothing.
                if flushed || holding(&self.opts.hold) || now >= sd.deadline {
                    // Events and acks still queued stay in the store for the next start.
                    link.queue
                        .retain(|o| matches!(o.tag, Tag::State | Tag::Clear(_)));
                    if self.role.availability {
                        link.queue.push_back(Out {
                            tag: Tag::Offline,
                            topic: topic::full(&self.opts.topic_prefix, topic::AVAILABILITY),
                            payload: b"offline".to_vec(),
                            retain: true,
                        });
                    } else {
                        link.offline_acked = true;
                    }
                    sd.offline_queued = Some(now.max(sd.deadline) + SHUTDOWN_GRACE);
                }
            }
            Some(hard) if !sd.disconnect_sent => {
                if link.offline_acked || now >= hard {
                    // A clean DISCONNECT: the broker drops the will (`offline` went out itself).
                    let _ = self.client.try_disconnect();
                    sd.disconnect_sent = true;
                }
            }
            Some(hard) => {
                // The DISCONNECT did not go out: leaving anyway, the broker publishes the will.
                if now >= hard + DISCONNECT_GRACE {
                    self.finished = true;
                }
            }
        }
    }

    /// When `check_shutdown` must run again even if nothing happens.
    fn next_deadline(&self) -> Option<Instant> {
        let sd = self.shutdown.as_ref()?;
        Some(match sd.offline_queued {
            None => sd.deadline,
            Some(hard) if !sd.disconnect_sent => hard,
            Some(hard) => hard + DISCONNECT_GRACE,
        })
    }
}

/// Events wait for a reader (`super::readers`); retained state does not.
fn holding(hold: &Option<super::Hold>) -> bool {
    hold.as_ref().is_some_and(|h| h.holding(Instant::now()))
}

async fn released(hold: &Option<super::Hold>) {
    if let Some(h) = hold {
        h.released().await;
    }
}

// the retained state and the small pure helpers live beside the driver, each file one job
mod helpers;
mod retained;
