//! The up-link's thread: drives the rumqttc event loop, sends the outbox after the up-link's
//! cursor and the retained state, moves the cursor on PUBACKs (see the parent module for the
//! rules).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, MqttState, Outgoing, Packet, QoS};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::{CURSOR, MAX_PACKET, Shared, UplinkOptions, inflight_limit};
use crate::backoff::Backoff;
use crate::store::{Store, StoreError};
use crate::topic;

/// After the shutdown deadline: how long `offline` may still take to be acknowledged.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// How long the DISCONNECT may take to go out after that.
const DISCONNECT_GRACE: Duration = Duration::from_millis(250);

/// What a publish in flight was.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Tag {
    Event(i64),
    /// Retained state (camera status, line counts, `online`): sent again at every reconnect,
    /// so its acknowledgement moves nothing.
    State,
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
    /// The events read on this connection, in seq order, and whether each is done
    /// (acknowledged, or skipped as one the broker would refuse): the cursor moves over the
    /// done ones at the front, never over a hole.
    events: VecDeque<(i64, bool)>,
    /// The highest seq read from the outbox on this connection.
    read_to: i64,
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

pub(super) struct Driver {
    opts: UplinkOptions,
    client: AsyncClient,
    store: Arc<Store>,
    shared: Arc<Shared>,
    stop: watch::Receiver<Option<Instant>>,
    stop_closed: bool,
    /// Every event up to here is acknowledged by the city (in memory; stored unless
    /// `unmarked`).
    cursor: i64,
    unmarked: bool,
    /// Some while connected.
    link: Option<Link>,
    /// The retained payload last requested upstream, by topic suffix.
    state_sent: HashMap<String, String>,
    backoff: Backoff,
    /// Since when the city broker is unreachable (the outage was logged once).
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
    pub(super) fn new(
        opts: UplinkOptions,
        client: AsyncClient,
        store: Arc<Store>,
        shared: Arc<Shared>,
        stop: watch::Receiver<Option<Instant>>,
        cursor: i64,
    ) -> Driver {
        Driver {
            backoff: Backoff::new(opts.link.backoff_min, opts.link.backoff_max),
            opts,
            client,
            store,
            shared,
            stop,
            stop_closed: false,
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

    pub(super) async fn run(mut self, eventloop: EventLoop) {
        let mut poll = Box::pin(poll_after(eventloop, Duration::ZERO));
        // A safety net for a missed wake, the retained state's look and store retries.
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
                r = self.stop.changed(), if !self.stop_closed => {
                    // the sink dropped without a deadline: stop now
                    let deadline = match r {
                        Ok(()) => *self.stop.borrow_and_update(),
                        Err(_) => {
                            self.stop_closed = true;
                            None
                        }
                    };
                    self.begin_shutdown(deadline.unwrap_or_else(Instant::now));
                }
                _ = tick.tick() => {
                    self.sync_state(false);
                    if self.unmarked {
                        self.store_cursor();
                    }
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)),
                    if deadline.is_some() => {}
            }
            self.pump();
            if self.shutdown.is_some() {
                self.check_shutdown();
                self.pump();
            }
        }
        self.shared.connected.store(false, Ordering::Relaxed);
        if self.unmarked {
            self.store_cursor();
        }
        debug!("up-link stopped");
    }

    fn begin_shutdown(&mut self, deadline: Instant) {
        self.shutdown.get_or_insert(Shutdown {
            deadline,
            offline_queued: None,
            disconnect_sent: false,
        });
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
                "up-link: the city broker {} is reachable again after {:.0?}; {waiting} event(s) \
                 to send",
                self.opts.broker(),
                since.elapsed()
            ),
            None => info!(
                "up-link connected to {} ({waiting} event(s) to send)",
                self.opts.broker()
            ),
        }
        let mut link = Link {
            read_to: self.cursor,
            ..Link::default()
        };
        if self.opts.topics.status {
            link.queue.push_back(Out {
                tag: Tag::State,
                topic: topic::full(&self.opts.link.topic_prefix, topic::AVAILABILITY),
                payload: b"online".to_vec(),
                retain: true,
            });
        }
        self.link = Some(link);
        // the city broker may have restarted without its retained messages
        self.sync_state(true);
    }

    fn on_puback(&mut self, pkid: u16) {
        let Some(link) = &mut self.link else { return };
        match link.inflight.remove(&pkid) {
            Some(Tag::Event(seq)) => {
                if let Some(e) = link.events.iter_mut().find(|e| e.0 == seq) {
                    e.1 = true;
                }
                self.advance();
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
        match self.store.mark_sink_done(CURSOR, self.cursor) {
            Ok(()) => {
                self.unmarked = false;
                self.store_ok();
            }
            // kept in memory and stored with the next mark or tick: after a crash meanwhile,
            // the events since the stored cursor go up again (duplicates, never a loss)
            Err(e) => {
                self.unmarked = true;
                self.store_trouble(e);
            }
        }
    }

    fn on_disconnected(&mut self, el: &mut EventLoop, e: &ConnectionError) {
        self.shared.connected.store(false, Ordering::Relaxed);
        self.link = None;
        // rumqttc keeps unacknowledged publishes to resend them on the session; the outbox
        // resends from the cursor instead, in order, so the next connection starts from nothing
        el.state = MqttState::new(inflight_limit(&self.opts), false);
        el.pending.clear();
        if self.shutdown.is_some() {
            // an outage is not waited out at shutdown: the events wait in the store
            self.finished = true;
            return;
        }
        if self.outage.is_none() {
            self.outage = Some(Instant::now());
            self.shared.outages.fetch_add(1, Ordering::Relaxed);
            warn!(
                "up-link: the city broker {} is unreachable ({e}){}; the guard post is not \
                 affected, events wait in the store and go up in order when it is back \
                 (retrying every {} s to {} s)",
                self.opts.broker(),
                hint(e),
                self.opts.link.backoff_min.as_secs(),
                self.opts.link.backoff_max.as_secs()
            );
        } else {
            debug!("up-link: {} still unreachable: {e}", self.opts.broker());
        }
    }

    /// Queue the retained status and counts that changed since they were last sent (`all`:
    /// every one, after a reconnect), and clear upstream the topics gone from the store.
    fn sync_state(&mut self, all: bool) {
        let topics = self.opts.topics;
        if !(topics.status || topics.counts) {
            return;
        }
        let Some(link) = &mut self.link else { return };
        if self
            .shutdown
            .as_ref()
            .is_some_and(|s| s.offline_queued.is_some())
        {
            return;
        }
        let rows = match self.store.retained() {
            Ok(rows) => rows,
            Err(e) => {
                debug!("up-link: retained state not readable now: {e}");
                return;
            }
        };
        let wanted = |suffix: &str| {
            (topics.status && suffix.starts_with("cameras/"))
                || (topics.counts && suffix.starts_with("lines/"))
        };
        let now: HashMap<String, String> = rows.into_iter().filter(|(s, _)| wanted(s)).collect();
        let gone: Vec<String> = self
            .state_sent
            .iter()
            .filter(|(s, p)| !p.is_empty() && !now.contains_key(*s))
            .map(|(s, _)| s.clone())
            .collect();
        let changed: Vec<(String, String)> = now
            .into_iter()
            .filter(|(s, p)| all || self.state_sent.get(s) != Some(p))
            .chain(gone.into_iter().map(|s| (s, String::new())))
            .collect();
        for (suffix, payload) in changed {
            let topic = topic::full(&self.opts.link.topic_prefix, &suffix);
            if let Some(why) = topic::refusal(&topic, payload.len(), MAX_PACKET) {
                debug!(topic = %topic::shown(&topic), "up-link: not sent: {why}");
            } else {
                link.queue.push_back(Out {
                    tag: Tag::State,
                    topic,
                    payload: payload.as_bytes().to_vec(),
                    retain: true,
                });
            }
            self.state_sent.insert(suffix, payload);
        }
    }

    /// Request publishes while the window has room: queued state first, then the outbox.
    fn pump(&mut self) {
        let Some(link) = &mut self.link else { return };
        let more_events = self.opts.topics.events
            && self
                .shutdown
                .as_ref()
                .is_none_or(|s| s.offline_queued.is_none());
        let window = self.opts.link.window.max(1);
        let mut trouble = None;
        let mut skipped = false;
        loop {
            if link.queue.is_empty() && more_events && link.outstanding() < window {
                let room = window - link.outstanding();
                match self.store.sink_pending(CURSOR, link.read_to, room) {
                    Ok(events) if events.is_empty() => break,
                    Ok(events) => {
                        for (seq, e) in events {
                            link.read_to = seq;
                            let payload = serde_json::to_vec(&e).unwrap_or_default();
                            let topic = topic::full(&self.opts.link.topic_prefix, topic::EVENTS);
                            // sent, it would cost the connection at every retry
                            if let Some(why) = topic::refusal(&topic, payload.len(), MAX_PACKET) {
                                warn!("up-link: event {} (#{seq}) is not sent: {why}", e.id);
                                link.events.push_back((seq, true));
                                skipped = true;
                                continue;
                            }
                            link.events.push_back((seq, false));
                            link.queue.push_back(Out {
                                tag: Tag::Event(seq),
                                topic,
                                payload,
                                retain: false,
                            });
                        }
                    }
                    // a row that no longer reads would stop the up-link at it for good
                    Err(StoreError::BadEvent { seq, reason, .. }) => {
                        warn!("up-link: stored event #{seq} cannot be read ({reason}); skipped");
                        link.read_to = seq;
                        link.events.push_back((seq, true));
                        skipped = true;
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
                // the request channel is full; the event loop empties it and we come back
                break;
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
            info!("up-link: the outbox can be used again");
        }
    }

    /// One warning per run of store failures, not one per attempt.
    fn store_trouble(&mut self, e: StoreError) {
        if !self.store_failing {
            warn!("up-link: the outbox cannot be used: {e}; retrying every second");
            self.store_failing = true;
        }
    }

    /// Events the city has not acknowledged yet (for the log lines).
    fn waiting(&self) -> u64 {
        if self.opts.topics.events {
            self.store.sink_backlog(CURSOR).unwrap_or(0)
        } else {
            0
        }
    }

    fn check_shutdown(&mut self) {
        let Some(sd) = &mut self.shutdown else { return };
        let now = Instant::now();
        let Some(link) = &mut self.link else {
            // not connected: the events wait in the store for the next start
            self.finished = true;
            return;
        };
        match sd.offline_queued {
            None => {
                let flushed = link.queue.is_empty()
                    && link.outstanding() == 0
                    && (!self.opts.topics.events
                        || self
                            .store
                            .sink_pending(CURSOR, link.read_to, 1)
                            .is_ok_and(|v| v.is_empty()));
                if flushed || now >= sd.deadline {
                    // events still queued stay in the store for the next start
                    link.queue.retain(|o| o.tag == Tag::State);
                    if self.opts.topics.status {
                        link.queue.push_back(Out {
                            tag: Tag::Offline,
                            topic: topic::full(&self.opts.link.topic_prefix, topic::AVAILABILITY),
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
                    // a clean DISCONNECT: the broker drops the will (`offline` went out itself)
                    let _ = self.client.try_disconnect();
                    sd.disconnect_sent = true;
                }
            }
            Some(hard) => {
                // the DISCONNECT did not go out: leaving anyway, the broker publishes the will
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

/// What to check for the failures a village admin can fix.
fn hint(e: &ConnectionError) -> &'static str {
    use rumqttc::ConnectReturnCode as C;
    match e {
        ConnectionError::ConnectionRefused(C::BadUserNamePassword | C::NotAuthorized) => {
            ": the city broker refuses the login; check [uplink] username and the password in \
             the variable named by `password`"
        }
        ConnectionError::ConnectionRefused(C::BadClientId) => {
            ": the city broker refuses the client id; set [uplink] client_id to the one the city \
             gave this village"
        }
        ConnectionError::Tls(_) => {
            ": check that [uplink] ca_file is the CA that signed the city broker's certificate \
             and that the url's host name is in that certificate"
        }
        _ => "",
    }
}
