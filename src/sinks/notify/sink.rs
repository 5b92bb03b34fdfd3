//! One destination's delivery: its own thread, reading the outbox after its cursor, in order.
//! See the module documentation of `sinks::notify` for the rules; this file is how.
//!
//! The thread blocks on HTTP (ureq) with the destination's timeout; [`NotifySink::wake`] wakes
//! it when an event was stored, otherwise it looks at the outbox once a second. Nothing is
//! queued in memory: the outbox is the queue, so there is no channel to bound or to fill.

use crate::sinks::signal::{Outages, Signal};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::DateTime;
use tracing::{debug, error, info, warn};

use super::http::Answer;
use super::limit::{RateLimit, in_quiet_hours};
use super::message::{self, AckedBy, Held};
use super::{Destination, Message, Photo, Site};
use crate::backoff::Backoff;
use crate::events::{Event, Severity};
use crate::sinks::SinkError;
use crate::store::{Store, StoreError};
use crate::telemetry;

/// Events read from the outbox at a time.
const BATCH: usize = 100;
/// How often the outbox is looked at without a [`NotifySink::wake`].
const POLL: Duration = Duration::from_secs(1);
/// How long an alert's message waits for its snapshot to be indexed (the event is stored a
/// moment before its snapshot is written and its incident opened).
const SNAPSHOT_WAIT: Duration = Duration::from_secs(5);
/// After the shutdown deadline: how long to wait for the thread before leaving it behind.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// How long dropping a [`NotifySink`] (without [`NotifySink::shutdown`]) tries to deliver.
const DROP_FLUSH: Duration = Duration::from_secs(1);

/// A running destination. Dropping it stops it (after trying to deliver for a second); prefer
/// [`NotifySink::shutdown`].
pub struct NotifySink {
    name: String,
    /// The service's kind, the `service` label of its figures.
    service: &'static str,
    row: String,
    shared: Arc<Signal>,
    store: Arc<Store>,
    filter: Filter,
    thread: Option<JoinHandle<()>>,
    /// Disconnected (or sent to) when the thread is done.
    finished: mpsc::Receiver<()>,
}

/// Which events a destination wants.
#[derive(Clone, Debug)]
struct Filter {
    min_severity: Severity,
    kinds: Option<Vec<crate::events::EventKind>>,
}

impl Filter {
    fn wants(&self, e: &Event) -> bool {
        e.severity >= self.min_severity && self.kinds.as_ref().is_none_or(|k| k.contains(&e.kind))
    }
}

impl NotifySink {
    /// Start delivering the outbox of `store` to destination `d`. Makes its cursor first (at
    /// the end of the outbox on its first start on this store), so every event stored after
    /// this returns is delivered.
    pub fn start(
        d: Destination,
        store: Arc<Store>,
        site: Arc<Site>,
    ) -> Result<NotifySink, SinkError> {
        let name = d.conf.name.clone();
        let row = Destination::cursor_row(&name);
        let kind = d.conf.service.kind();
        let cursor = store.sink_cursor(&row)?;
        if cursor.new {
            info!(
                destination = %name,
                kind,
                "notify: first start on this store; alerts stored from now on are sent, none \
                 stored before"
            );
        } else {
            info!(
                destination = %name,
                kind,
                waiting = store.sink_backlog(&row).unwrap_or(0),
                "notify: resuming after the last event it handled"
            );
        }
        let filter = Filter {
            min_severity: d.conf.min_severity,
            kinds: d.conf.kinds.clone(),
        };
        let shared = Arc::new(Signal::default());
        let worker = Worker {
            limit: RateLimit::new(d.conf.rate_max, d.conf.rate_window),
            backoff: Backoff::new(d.backoff_min, d.backoff_max),
            d,
            filter: filter.clone(),
            row: row.clone(),
            store: store.clone(),
            shared: shared.clone(),
            site,
            pos: cursor.seq,
            unmarked: None,
            held: None,
            outage: None,
            token_bad: false,
            photo_refused: false,
            store_failing: false,
        };
        let (done, finished) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("notify-{name}"))
            .spawn(move || {
                worker.run();
                let _ = done.send(());
            })
            .map_err(|e| SinkError::Thread {
                what: "notify sink",
                reason: e.to_string(),
            })?;
        Ok(NotifySink {
            name,
            service: kind,
            row,
            shared,
            store,
            filter,
            thread: Some(thread),
            finished,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// New events were stored: look at them now. Never blocks.
    pub fn wake(&self) {
        self.shared.wake();
    }

    /// Whether the service is failing (no answer, 5xx/429, or a refused token).
    pub fn failing(&self) -> bool {
        self.shared.failing()
    }

    /// The kind of service it sends through (`telegram`, `waha`, `gateway-form`, `ntfy`).
    pub fn service(&self) -> &'static str {
        self.service
    }

    /// Times the service stopped answering since the start (`ronda_notify_outages_total`;
    /// each outage once, however many retries it took; a refused token is not counted).
    pub fn outages(&self) -> u64 {
        self.outage_count().total()
    }

    /// A handle on [`NotifySink::outages`] for /metrics, which does not own the sink.
    pub(crate) fn outage_count(&self) -> Outages {
        Outages::new(self.shared.clone())
    }

    /// Events this destination wants, stored and not yet handled by it.
    pub fn backlog(&self) -> Result<u64, StoreError> {
        let mut n = 0;
        let mut after = 0;
        loop {
            let page = self.store.sink_pending(&self.row, after, 1000)?;
            let Some((last, _)) = page.last() else {
                return Ok(n);
            };
            after = *last;
            n += page.iter().filter(|(_, e)| self.filter.wants(e)).count() as u64;
        }
    }

    /// Try to deliver what waits within `timeout`, then stop; returns how many wanted events
    /// still wait (they go out after the next start).
    pub fn shutdown(mut self, timeout: Duration) -> Result<u64, StoreError> {
        self.stop(timeout);
        self.backlog()
    }

    fn stop(&mut self, timeout: Duration) {
        if let Some(thread) = self.thread.take() {
            self.shared.stop_thread(
                thread,
                &self.finished,
                timeout,
                STOP_GRACE,
                &format!("notify destination `{}`", self.name),
            );
        }
    }
}

impl Drop for NotifySink {
    fn drop(&mut self) {
        self.stop(DROP_FLUSH);
    }
}

/// What became of one message.
enum Outcome {
    /// Delivered (or refused for good) to every recipient.
    Done,
    /// Shutting down first: it stays for the next start.
    Stopped,
}

struct Worker {
    d: Destination,
    filter: Filter,
    row: String,
    store: Arc<Store>,
    shared: Arc<Signal>,
    site: Arc<Site>,
    /// The last event looked at.
    pos: i64,
    /// Done, but storing the cursor failed: stored with the next mark.
    unmarked: Option<i64>,
    /// Events the rate limit held back since the last message: not marked done until their
    /// summary went out (so a restart sends them rather than losing them).
    held: Option<Held>,
    limit: RateLimit,
    backoff: Backoff,
    /// Since when the service fails (the outage was logged once).
    outage: Option<Instant>,
    /// The token is refused (logged once).
    token_bad: bool,
    /// A photo was refused and its text sent alone (logged once).
    photo_refused: bool,
    store_failing: bool,
}

impl Worker {
    fn run(mut self) {
        let timeout = self.d.conf.timeout;
        match self.d.service.check(timeout) {
            Some(Answer::Sent) => info!(destination = %self.d.conf.name, "notify: the token works"),
            Some(Answer::BadToken { reason }) => self.bad_token(&reason),
            Some(Answer::Retry { reason, .. } | Answer::Refused { reason }) => {
                debug!(destination = %self.d.conf.name, "notify: cannot check the token now: {}", self.d.scrub(&reason))
            }
            None => {}
        }
        'run: loop {
            let deadline = self.shared.deadline();
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            let batch = match self.store.sink_pending(&self.row, self.pos, BATCH) {
                Ok(b) => {
                    self.store_ok();
                    b
                }
                Err(e) => {
                    self.store_trouble(e);
                    if !self.sleep_until(Instant::now() + POLL) {
                        break;
                    }
                    continue;
                }
            };
            if batch.is_empty() {
                if deadline.is_some() {
                    break;
                }
                if self.held.is_some() {
                    let room = self.limit.next_room(Instant::now());
                    if room <= Instant::now() {
                        if let Outcome::Stopped = self.send_summary() {
                            break;
                        }
                        continue;
                    }
                    self.wait_for_events(room);
                } else {
                    self.wait_for_events(Instant::now() + POLL);
                }
                continue;
            }
            let mut skipped = None;
            for (seq, e) in batch {
                let quiet = DateTime::parse_from_rfc3339(&e.time)
                    .is_ok_and(|t| in_quiet_hours(self.d.conf.quiet_hours, t, self.site.tz));
                if !self.filter.wants(&e) || quiet {
                    if quiet && self.filter.wants(&e) {
                        debug!(destination = %self.d.conf.name, event = %e.id, "notify: in the quiet hours; not sent");
                    }
                    self.pos = seq;
                    if self.held.is_none() {
                        skipped = Some(seq);
                    }
                    continue;
                }
                if self.held.is_some()
                    && self.limit.room(Instant::now())
                    && let Outcome::Stopped = self.send_summary()
                {
                    break 'run;
                }
                if !self.limit.room(Instant::now()) {
                    self.held.get_or_insert_with(Held::default).add(&e);
                    self.pos = seq;
                    skipped = None;
                    continue;
                }
                match self.deliver(&e) {
                    Outcome::Done => {
                        self.limit.record(Instant::now());
                        self.pos = seq;
                        skipped = None;
                        self.mark(seq);
                    }
                    Outcome::Stopped => {
                        if let Some(s) = skipped {
                            self.mark(s);
                        }
                        break 'run;
                    }
                }
            }
            if let Some(s) = skipped {
                self.mark(s);
            }
        }
        if let Some(seq) = self.unmarked {
            self.mark(seq);
        }
    }

    /// The message of event `e`, sent to every recipient.
    fn deliver(&mut self, e: &Event) -> Outcome {
        let Some(m) = self.compose(e) else {
            return Outcome::Stopped;
        };
        self.send_all(&m, &e.id)
    }

    /// The held events' summary, sent; they are done once it went.
    fn send_summary(&mut self) -> Outcome {
        let Some(h) = self.held.clone() else {
            return Outcome::Done;
        };
        let text = message::summary(&h, self.d.conf.language, self.site.tz);
        let m = Message {
            text,
            photo: None,
            severity: Severity::Warning,
            tag: None,
            event_id: None,
            link: self.site.public_url.as_ref().map(|u| format!("{u}/review")),
        };
        let outcome = self.send_all(&m, "summary");
        if let Outcome::Done = outcome {
            self.limit.record(Instant::now());
            self.held = None;
            self.mark(self.pos);
            debug!(destination = %self.d.conf.name, held = h.count, "notify: sent the summary of the held alerts");
        }
        outcome
    }

    /// The message of `e`: its text, its snapshot (waiting a moment for it to be indexed), who
    /// acknowledged it. `None` when the shutdown deadline came while waiting.
    fn compose(&mut self, e: &Event) -> Option<Message> {
        let camera = self
            .site
            .cameras
            .get(&e.camera)
            .cloned()
            .unwrap_or_else(|| e.camera.clone());
        let has_incident = e.snapshot.is_some();
        let photo = if has_incident && self.d.conf.photo {
            self.photo(e)?
        } else {
            None
        };
        let ack = self.store.ack_of(&e.id).ok().flatten().map(|a| AckedBy {
            user: a.user,
            at: a.at,
        });
        let link = self.site.public_url.as_ref().map(|u| {
            if has_incident {
                format!("{u}/review#{}", e.id)
            } else {
                format!("{u}/guard")
            }
        });
        let text = message::alert(
            e,
            &camera,
            ack.as_ref(),
            link.as_deref(),
            self.d.conf.language,
            self.site.tz,
        );
        Some(Message {
            text,
            photo,
            severity: e.severity,
            tag: Some(e.kind.as_str()),
            // an event acknowledged already needs no button
            event_id: ack.is_none().then(|| e.id.clone()),
            link,
        })
    }

    /// The snapshot of alert `e`, once its incident is indexed (at most [`SNAPSHOT_WAIT`]):
    /// `Some(None)` when it has none (not written, removed), `None` at the shutdown deadline.
    fn photo(&self, e: &Event) -> Option<Option<Photo>> {
        let start = Instant::now();
        loop {
            match self.store.incident(&e.id) {
                Ok(Some(inc)) => {
                    let Some(rel) = inc.snapshot_of(&e.id) else {
                        return Some(None);
                    };
                    let plain = rel.components().next().is_some()
                        && rel
                            .components()
                            .all(|c| matches!(c, std::path::Component::Normal(_)));
                    if !plain {
                        return Some(None);
                    }
                    return Some(match std::fs::read(self.site.clips_dir.join(rel)) {
                        Ok(jpeg) => Some(Photo {
                            jpeg,
                            filename: format!("{}.jpg", e.id),
                        }),
                        Err(err) => {
                            debug!(event = %e.id, "notify: the snapshot cannot be read ({err}); sending the text alone");
                            None
                        }
                    });
                }
                Ok(None) if start.elapsed() < SNAPSHOT_WAIT => {
                    if !self.sleep_until(Instant::now() + Duration::from_millis(100)) {
                        return None;
                    }
                }
                Ok(None) => return Some(None),
                Err(err) => {
                    debug!(event = %e.id, "notify: the incident cannot be read ({err}); sending the text alone");
                    return Some(None);
                }
            }
        }
    }

    /// Send `m` to every recipient until each took it or refused it for good, or the shutdown
    /// deadline comes. `what` names it in log lines (an event id).
    fn send_all(&mut self, m: &Message, what: &str) -> Outcome {
        let n = self.d.service.recipients();
        let mut left: Vec<usize> = (0..n).collect();
        let mut text_only = vec![false; n];
        let bare = m.without_photo();
        while let Some(&to) = left.first() {
            let Some(timeout) = self.shared.request_timeout(self.d.conf.timeout) else {
                return Outcome::Stopped;
            };
            let msg = if text_only[to] { &bare } else { m };
            match self.d.service.send(msg, to, timeout) {
                Answer::Sent => {
                    self.answered();
                    debug!(destination = %self.d.conf.name, what, to, "notify: sent");
                    left.remove(0);
                }
                Answer::Refused { reason } => {
                    self.answered();
                    let reason = self.d.scrub(&reason);
                    if msg.photo.is_some() {
                        // a photo too large, or a plan without media: the words still matter
                        if !self.photo_refused {
                            warn!(
                                destination = %self.d.conf.name,
                                "notify `{}`: the service refused the photo ({reason}); the text \
                                 goes alone (set photo = false to stop trying)",
                                self.d.conf.name
                            );
                            self.photo_refused = true;
                        }
                        text_only[to] = true;
                        continue;
                    }
                    // the event stays in the store, on MQTT and on the guard page; retrying
                    // what the service refuses would hold every later alert back for good
                    warn!(
                        destination = %self.d.conf.name,
                        event = what,
                        "notify `{}`: the service refused {what} for recipient {} ({reason}); not \
                         retried (it stays in the store and on MQTT)",
                        self.d.conf.name,
                        to + 1
                    );
                    left.remove(0);
                }
                Answer::BadToken { reason } => {
                    self.bad_token(&reason);
                    let until = Instant::now() + self.d.backoff_max;
                    if !self.sleep_until(until) {
                        return Outcome::Stopped;
                    }
                }
                Answer::Retry { reason, after } => {
                    // the service's retry_after is honoured even when shorter than our own
                    // delay (Telegram's flood control says exactly when it takes messages again)
                    let step = self.backoff.next_delay();
                    let delay = after
                        .map_or(step, |a| a.max(self.d.backoff_min))
                        .min(self.d.backoff_max);
                    if self.outage.is_none() {
                        telemetry::notify_unreachable(
                            &self.d.conf.name,
                            what,
                            &self.d.scrub(&reason),
                            (delay, self.d.backoff_max),
                            self.shared.outages(),
                        );
                        self.outage = Some(Instant::now());
                        self.shared.set_failing(true);
                    } else {
                        debug!(destination = %self.d.conf.name, "notify: still failing: {}", self.d.scrub(&reason));
                    }
                    if !self.sleep_until(Instant::now() + delay) {
                        return Outcome::Stopped;
                    }
                }
            }
        }
        Outcome::Done
    }

    /// The token is refused: said once, with the variable's name and never its value.
    fn bad_token(&mut self, reason: &str) {
        self.shared.set_failing(true);
        if self.token_bad {
            return;
        }
        self.token_bad = true;
        let var = self
            .d
            .token_ref
            .clone()
            .unwrap_or_else(|| "the token".into());
        error!(
            destination = %self.d.conf.name,
            "notify `{}` ({}): the service refuses the token in {var} ({}); alerts for `{}` wait \
             in the store: put the right token in {var} and restart ronda",
            self.d.conf.name,
            self.d.conf.service.kind(),
            self.d.scrub(reason),
            self.d.conf.name
        );
    }

    /// The service answered (took or refused a message): any outage is over.
    fn answered(&mut self) {
        self.backoff.reset();
        if self.token_bad {
            self.token_bad = false;
            info!(destination = %self.d.conf.name, "notify `{}`: the token works again", self.d.conf.name);
        }
        if let Some(since) = self.outage.take() {
            info!(
                destination = %self.d.conf.name,
                "notify `{}`: the service answers again after {} s; waiting alerts go out in order",
                self.d.conf.name,
                since.elapsed().as_secs()
            );
        }
        self.shared.set_failing(false);
    }

    fn mark(&mut self, seq: i64) {
        match self.store.mark_sink_done(&self.row, seq) {
            Ok(()) => {
                self.unmarked = None;
                self.store_ok();
            }
            Err(e) => {
                self.unmarked = Some(seq);
                self.store_trouble(e);
            }
        }
    }

    fn store_trouble(&mut self, e: StoreError) {
        if !self.store_failing {
            warn!(destination = %self.d.conf.name, "notify: the outbox cannot be used: {e}; retrying every second");
            self.store_failing = true;
        }
    }

    fn store_ok(&mut self) {
        if self.store_failing {
            self.store_failing = false;
            info!(destination = %self.d.conf.name, "notify: the outbox can be used again");
        }
    }

    /// Until events are stored ([`NotifySink::wake`]), `until`, or a shutdown.
    fn wait_for_events(&self, until: Instant) {
        self.shared.wait_for_events(until);
    }

    /// Sleep until `until`; false when the shutdown deadline comes first.
    fn sleep_until(&self, until: Instant) -> bool {
        self.shared.sleep_until(until)
    }
}

#[cfg(test)]
mod tests {
    //! The worker's pacing with a recording service in place of a chat service (the services'
    //! formats are tested against local servers in tests/ronda/notify.rs); a real store.

    use super::*;
    use crate::config::Settings;
    use crate::events::EventKind;
    use crate::sinks::notify::Deliver;
    use std::path::Path;
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<Message>>>);

    impl Deliver for Recorder {
        fn recipients(&self) -> usize {
            1
        }
        fn send(&mut self, m: &Message, _to: usize, _timeout: Duration) -> Answer {
            self.0.lock().unwrap().push(m.clone());
            Answer::Sent
        }
    }

    impl Recorder {
        fn texts(&self) -> Vec<String> {
            self.0
                .lock()
                .unwrap()
                .iter()
                .map(|m| m.text.body.clone())
                .collect()
        }
    }

    fn destination(extra: &str, rec: &Recorder, max: u32, window: Duration) -> Destination {
        let text = format!(
            "[site]\nid = \"rw9\"\n[[notify]]\nname = \"t\"\nkind = \"ntfy\"\ntopic = \"x\"\n{extra}\n"
        );
        let mut conf = Settings::parse(&text, Path::new("t.toml"))
            .unwrap()
            .notify
            .remove(0);
        conf.rate_max = max;
        conf.rate_window = window;
        Destination {
            conf,
            service: Box::new(rec.clone()),
            secrets: Vec::new(),
            token_ref: None,
            ack_poll: None,
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_millis(50),
        }
    }

    fn site() -> Arc<Site> {
        Arc::new(Site {
            tz: chrono_tz::Asia::Jakarta,
            clips_dir: "/nonexistent".into(),
            cameras: Default::default(),
            public_url: None,
        })
    }

    /// A warning (no incident, so no snapshot to wait for).
    fn crowd(store: &Store) -> Event {
        let e = Event::new(
            "rw9",
            chrono_tz::Asia::Jakarta,
            "yard",
            EventKind::Crowding,
            Severity::Warning,
            chrono::Utc::now(),
        );
        store.append(&e).unwrap();
        e
    }

    fn wait(what: &str, mut done: impl FnMut() -> bool) {
        let t0 = Instant::now();
        while !done() {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "gave up waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn repeats_beyond_the_rate_limit_collapse_into_one_summary() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("r.db")).unwrap());
        let rec = Recorder::default();
        let d = destination("", &rec, 2, Duration::from_millis(500));
        let sink = NotifySink::start(d, store.clone(), site()).unwrap();
        for _ in 0..6 {
            crowd(&store);
        }
        sink.wake();
        wait("two messages and a summary", || rec.texts().len() >= 3);
        let texts = rec.texts();
        assert!(
            texts[0].starts_with("⚠️ PERHATIAN: Kerumunan\n"),
            "{texts:?}"
        );
        assert!(
            texts[1].starts_with("⚠️ PERHATIAN: Kerumunan\n"),
            "{texts:?}"
        );
        assert!(
            texts[2].starts_with("➕ Dan 4 lainnya dalam 1 menit: 4× Kerumunan"),
            "{texts:?}"
        );
        wait("everything done", || {
            store.sink_backlog("notify:t").unwrap() == 0
        });
        assert_eq!(sink.shutdown(Duration::from_secs(1)).unwrap(), 0);
        assert_eq!(rec.texts().len(), 3, "nothing else");
    }

    #[test]
    fn held_alerts_are_not_lost_when_ronda_stops_before_their_summary() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("r.db")).unwrap());
        let rec = Recorder::default();
        let sink = NotifySink::start(
            destination("", &rec, 1, Duration::from_secs(3600)),
            store.clone(),
            site(),
        )
        .unwrap();
        let events: Vec<Event> = (0..3).map(|_| crowd(&store)).collect();
        sink.wake();
        wait("the first message", || rec.texts().len() == 1);
        // the other two are held: not done for the store
        wait("the held ones read", || sink.backlog().unwrap() == 2);
        assert_eq!(sink.shutdown(Duration::from_millis(100)).unwrap(), 2);

        let again = Recorder::default();
        let sink = NotifySink::start(
            destination("", &again, 10, Duration::from_secs(3600)),
            store.clone(),
            site(),
        )
        .unwrap();
        wait("the held ones after the restart", || {
            again.texts().len() == 2
        });
        assert_eq!(sink.shutdown(Duration::from_secs(1)).unwrap(), 0);
        let sent: Vec<String> = again
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|m| m.event_id.clone().unwrap())
            .collect();
        assert_eq!(sent, [events[1].id.clone(), events[2].id.clone()]);
    }

    #[test]
    fn quiet_hours_and_the_filter_skip_events_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("r.db")).unwrap());
        let now = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Jakarta);
        let hm = |t: chrono::DateTime<chrono_tz::Tz>| t.format("%H:%M").to_string();
        let quiet = format!(
            "quiet_hours = \"{}-{}\"",
            hm(now - chrono::Duration::hours(1)),
            hm(now + chrono::Duration::hours(1))
        );
        let rec = Recorder::default();
        let sink = NotifySink::start(
            destination(&quiet, &rec, 10, Duration::from_secs(60)),
            store.clone(),
            site(),
        )
        .unwrap();
        crowd(&store);
        sink.wake();
        wait("the quiet event done", || {
            store.sink_backlog("notify:t").unwrap() == 0
        });
        assert!(rec.texts().is_empty(), "sent in the quiet hours");
        drop(sink);

        let rec = Recorder::default();
        let sink = NotifySink::start(
            destination(
                "min_severity = \"alert\"",
                &rec,
                10,
                Duration::from_secs(60),
            ),
            store.clone(),
            site(),
        )
        .unwrap();
        crowd(&store);
        sink.wake();
        wait("the warning done", || {
            store.sink_backlog("notify:t").unwrap() == 0
        });
        assert!(
            rec.texts().is_empty(),
            "a warning went to an alert-only destination"
        );
        assert_eq!(sink.shutdown(Duration::from_secs(1)).unwrap(), 0);
    }
}
