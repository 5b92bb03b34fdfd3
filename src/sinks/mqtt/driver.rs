//! The sink's thread: drives the rumqttc event loop and delivers the outbox (see the parent
//! module for how delivery is made safe).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, MqttState, Outgoing, Packet, QoS};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::{Command, MAX_PACKET, MqttOptions, Shared, inflight_limit};
use crate::backoff::Backoff;
use crate::store::{Store, StoreError};
use crate::telemetry;
use crate::topic;

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
    State,
    /// An empty retained message that clears a topic gone from the configuration (its suffix):
    /// forgotten in the store once the broker has it.
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
    /// Requested from rumqttc, packet id not yet known.
    requested: VecDeque<Tag>,
    /// Sent with this packet id, PUBACK awaited.
    inflight: HashMap<u16, Tag>,
    /// To request when the window has room.
    queue: VecDeque<Out>,
    /// The highest seq queued on this connection.
    cursor: i64,
    /// The highest acknowledgement seq queued on this connection.
    ack_cursor: i64,
    offline_acked: bool,
}

impl Link {
    fn outstanding(&self) -> usize {
        self.requested.len() + self.inflight.len()
    }
}

struct ShutdownState {
    deadline: Instant,
    /// `offline` is queued (at the deadline or when the outbox was empty): no more events.
    offline_queued: Option<Instant>,
    disconnect_sent: bool,
}

pub(super) struct Driver {
    opts: MqttOptions,
    client: AsyncClient,
    store: Arc<Store>,
    shared: Arc<Shared>,
    commands: mpsc::UnboundedReceiver<Command>,
    /// Some while connected.
    link: Option<Link>,
    backoff: Backoff,
    /// Since when the broker is unreachable (the outage was logged once).
    outage: Option<Instant>,
    store_failing: bool,
    shutdown: Option<ShutdownState>,
    /// Every handle is gone (the sink was dropped without a shutdown command).
    commands_closed: bool,
    finished: bool,
}

type Polled = (EventLoop, Result<Event, ConnectionError>);

/// One poll of the event loop, after `delay` (the reconnect backoff). The event loop moves in
/// and out so that the pending poll is one future the driver keeps across its loop.
async fn poll_after(mut eventloop: EventLoop, delay: Duration) -> Polled {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let r = eventloop.poll().await;
    (eventloop, r)
}

impl Driver {
    pub(super) fn new(
        opts: MqttOptions,
        client: AsyncClient,
        store: Arc<Store>,
        shared: Arc<Shared>,
        commands: mpsc::UnboundedReceiver<Command>,
    ) -> Driver {
        Driver {
            backoff: Backoff::new(opts.backoff_min, opts.backoff_max),
            opts,
            client,
            store,
            shared,
            commands,
            link: None,
            outage: None,
            store_failing: false,
            shutdown: None,
            commands_closed: false,
            finished: false,
        }
    }

    pub(super) async fn run(mut self, eventloop: EventLoop) {
        let mut poll = Box::pin(poll_after(eventloop, Duration::ZERO));
        // A safety net: pick up events whose notify was not sent, retry after a store error.
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
                c = self.commands.recv(), if !self.commands_closed => self.on_command(c),
                _ = tick.tick() => {}
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)),
                    if deadline.is_some() => {}
            }
            self.pump();
            // Shutdown steps (queue `offline`, DISCONNECT) take effect now, not at the next tick.
            if self.shutdown.is_some() {
                self.check_shutdown();
                self.pump();
            }
        }
        self.shared.connected.store(false, Ordering::Relaxed);
        debug!("MQTT sink stopped");
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
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                if self.shutdown.is_some() {
                    self.finished = true;
                }
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
        let backlog = self.store.backlog().unwrap_or(0);
        match self.outage.take() {
            Some(since) => info!(
                "MQTT broker {} is reachable again after {:.0?}; {backlog} event(s) to send",
                self.opts.broker(),
                since.elapsed()
            ),
            None => info!(
                "MQTT connected to {} ({backlog} event(s) to send)",
                self.opts.broker()
            ),
        }
        let mut link = Link::default();
        link.queue
            .extend(self.state_out(topic::AVAILABILITY, "online"));
        // The broker may have restarted without its retained messages: publish them again.
        match self.store.retained() {
            Ok(all) => {
                for (suffix, payload) in all {
                    link.queue.extend(self.state_out(&suffix, &payload));
                }
            }
            Err(e) => warn!("MQTT: cannot re-publish camera status and counts: {e}"),
        }
        self.link = Some(link);
    }

    fn on_puback(&mut self, pkid: u16) {
        let Some(link) = &mut self.link else { return };
        match link.inflight.remove(&pkid) {
            Some(Tag::Event(seq)) => {
                if let Err(e) = self.store.mark_sent(seq) {
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

    fn on_disconnected(&mut self, el: &mut EventLoop, e: &ConnectionError) {
        self.shared.connected.store(false, Ordering::Relaxed);
        self.link = None;
        // rumqttc keeps unacknowledged publishes and unsent requests to resume the session; the
        // outbox re-sends them in order instead, so start the next connection from nothing.
        el.state = MqttState::new(inflight_limit(&self.opts), false);
        el.pending.clear();
        if let Some(sd) = &self.shutdown
            && (sd.disconnect_sent || Instant::now() >= sd.deadline)
        {
            self.finished = true;
            return;
        }
        if self.outage.is_none() {
            self.outage = Some(Instant::now());
            telemetry::mqtt_unreachable(
                &self.opts.broker(),
                e,
                hint(e),
                (self.opts.backoff_min, self.opts.backoff_max),
                &self.shared.outages,
            );
        } else {
            debug!("MQTT broker {} still unreachable: {e}", self.opts.broker());
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
            Some(Command::Shutdown { deadline }) => {
                self.shutdown = Some(ShutdownState {
                    deadline,
                    offline_queued: None,
                    disconnect_sent: false,
                });
            }
            // Every handle is gone: nobody can append or shut down any more.
            None => {
                self.commands_closed = true;
                self.shutdown.get_or_insert(ShutdownState {
                    deadline: Instant::now(),
                    offline_queued: None,
                    disconnect_sent: false,
                });
            }
        }
    }

    /// The retained message for topic `<prefix>/<suffix>`; an empty payload clears the topic.
    /// `None` when the broker or client would refuse it: it is set aside in the store instead
    /// (a clear of a topic the broker never took is simply dropped).
    fn state_out(&mut self, suffix: &str, payload: &str) -> Option<Out> {
        let topic = topic::full(&self.opts.topic_prefix, suffix);
        if let Some(why) = topic::refusal(&topic, payload.len(), MAX_PACKET) {
            let stored = if payload.is_empty() {
                self.store.forget_retained(suffix).map(|()| false)
            } else {
                self.store
                    .quarantine_retained(suffix, &topic, payload, &why.to_string())
            };
            match stored {
                Ok(true) => warn!(
                    "MQTT: the retained message on {} is set aside, not sent: {why}; see the \
                     quarantine table of the store",
                    topic::shown(&topic)
                ),
                Ok(false) => debug!(topic = %topic::shown(&topic), "MQTT: refused again: {why}"),
                Err(e) => self.store_trouble(e),
            }
            return None;
        }
        let tag = if payload.is_empty() {
            Tag::Clear(suffix.to_string())
        } else {
            Tag::State
        };
        Some(Out {
            tag,
            topic,
            payload: payload.as_bytes().to_vec(),
            retain: true,
        })
    }

    /// Request publishes while the window has room: queued state first, then the outbox.
    fn pump(&mut self) {
        let Some(link) = &mut self.link else { return };
        let more_events = self
            .shutdown
            .as_ref()
            .is_none_or(|s| s.offline_queued.is_none());
        let window = self.opts.window.max(1);
        let mut trouble = None;
        // The unreadable row set aside last: seen again, setting it aside did not take, and
        // trying once more would only spin.
        let mut last_bad = None;
        loop {
            if link.queue.is_empty() && more_events && link.outstanding() < window {
                let room = window - link.outstanding();
                match self.store.unsent(link.cursor, room) {
                    // events first; guards' acknowledgements when the outbox is empty
                    Ok(events) if events.is_empty() => {
                        match self.store.unsent_acks(link.ack_cursor, room) {
                            Ok(acks) if acks.is_empty() => break,
                            Ok(acks) => {
                                for a in acks {
                                    link.ack_cursor = a.seq;
                                    let topic = topic::full(&self.opts.topic_prefix, topic::ACKS);
                                    let payload = ack_payload(&a);
                                    if let Some(why) =
                                        topic::refusal(&topic, payload.len(), MAX_PACKET)
                                    {
                                        if let Err(e) =
                                            quarantine_ack(&self.store, a.seq, &topic, &why)
                                        {
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
                            link.cursor = seq;
                            let payload = serde_json::to_vec(&e).unwrap_or_default();
                            let topic = topic::full(&self.opts.topic_prefix, topic::EVENTS);
                            // Sent, it would cost the connection, and the outbox would send it
                            // first again after every reconnect: set it aside, go on.
                            if let Some(why) = topic::refusal(&topic, payload.len(), MAX_PACKET) {
                                if let Err(e) = quarantine_event(&self.store, seq, &topic, &why) {
                                    trouble = Some(e);
                                }
                                continue;
                            }
                            link.queue.push_back(Out {
                                tag: Tag::Event(seq),
                                topic,
                                payload,
                                retain: false,
                            });
                        }
                    }
                    // A row that no longer reads would stop the outbox at it for good.
                    // Set aside, it leaves the outbox query and the next round reads on.
                    Err(e @ StoreError::BadEvent { .. }) if last_bad == bad_seq(&e) => {
                        trouble = Some(e);
                        break;
                    }
                    Err(StoreError::BadEvent { seq, reason, .. }) => {
                        last_bad = Some(seq);
                        let topic = topic::full(&self.opts.topic_prefix, topic::EVENTS);
                        let why = format!("the stored event cannot be read: {reason}");
                        if let Err(e) = quarantine_event(&self.store, seq, &topic, &why) {
                            trouble = Some(e);
                            break;
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
                debug!(seq, "MQTT publish");
            }
            if let Some(out) = link.queue.pop_front() {
                link.requested.push_back(out.tag);
            }
        }
        match trouble {
            Some(e) => self.store_trouble(e),
            None if self.store_failing => {
                self.store_failing = false;
                info!("MQTT: the outbox can be read again");
            }
            None => {}
        }
    }

    /// One warning per run of store failures, not one per attempt.
    fn store_trouble(&mut self, e: StoreError) {
        if !self.store_failing {
            warn!("MQTT: the outbox cannot be used: {e}; retrying every second");
            self.store_failing = true;
        }
    }

    fn check_shutdown(&mut self) {
        let Some(sd) = &mut self.shutdown else { return };
        let now = Instant::now();
        let Some(link) = &mut self.link else {
            // Not connected: nothing more can be done once the time is up.
            if now >= sd.deadline {
                self.finished = true;
            }
            return;
        };
        match sd.offline_queued {
            None => {
                let flushed = link.queue.is_empty()
                    && link.outstanding() == 0
                    && self
                        .store
                        .unsent(link.cursor, 1)
                        .is_ok_and(|v| v.is_empty())
                    && self
                        .store
                        .unsent_acks(link.ack_cursor, 1)
                        .is_ok_and(|v| v.is_empty());
                if flushed || now >= sd.deadline {
                    // Events and acks still queued stay in the store for the next start.
                    link.queue
                        .retain(|o| matches!(o.tag, Tag::State | Tag::Clear(_)));
                    link.queue.push_back(Out {
                        tag: Tag::Offline,
                        topic: topic::full(&self.opts.topic_prefix, topic::AVAILABILITY),
                        payload: b"offline".to_vec(),
                        retain: true,
                    });
                    sd.offline_queued = Some(now.max(sd.deadline) + SHUTDOWN_GRACE);
                }
            }
            Some(hard) if !sd.disconnect_sent => {
                if link.offline_acked || now >= hard {
                    // A clean DISCONNECT: the broker drops the will (`offline` is published).
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

fn bad_seq(e: &StoreError) -> Option<i64> {
    match e {
        StoreError::BadEvent { seq, .. } => Some(*seq),
        _ => None,
    }
}

/// Set event `seq` aside instead of sending it (see `topic::refusal`); said once (an event is
/// quarantined once), with the event's id.
fn quarantine_event(
    store: &Store,
    seq: i64,
    topic: &str,
    why: &dyn std::fmt::Display,
) -> Result<(), StoreError> {
    if let Some(id) = store.quarantine_event(seq, topic, &why.to_string())? {
        warn!(
            "MQTT: event {id} (#{seq}) is set aside, not sent: {why}; the events after it go \
             on; see the quarantine table of the store"
        );
    }
    Ok(())
}

/// Set acknowledgement `seq` aside instead of sending it, the same way as an event.
fn quarantine_ack(
    store: &Store,
    seq: i64,
    topic: &str,
    why: &dyn std::fmt::Display,
) -> Result<(), StoreError> {
    if let Some(id) = store.quarantine_ack(seq, topic, &why.to_string())? {
        warn!(
            "MQTT: the acknowledgement of event {id} (#{seq}) is set aside, not sent: {why}; \
             see the quarantine table of the store"
        );
    }
    Ok(())
}

/// What to check for the failures a user can fix.
fn hint(e: &ConnectionError) -> &'static str {
    use rumqttc::ConnectReturnCode as C;
    match e {
        ConnectionError::ConnectionRefused(C::BadUserNamePassword | C::NotAuthorized) => {
            ": check [mqtt] username and the password in the variable named by password_env"
        }
        ConnectionError::ConnectionRefused(C::BadClientId) => {
            ": the broker refuses the client id ronda-<site id>"
        }
        ConnectionError::Tls(_) => {
            ": check that [mqtt] ca_file is the CA that signed the broker's certificate and \
             that the url's host name is in that certificate"
        }
        _ => "",
    }
}

/// `<prefix>/acks`: `{"schema": 1, "event_id": ..., "user": ..., "time": ...}` (site time).
fn ack_payload(a: &crate::store::Ack) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schema": 1,
        "event_id": a.event_id,
        "user": a.user,
        "time": a.time,
    }))
    .unwrap_or_default()
}
