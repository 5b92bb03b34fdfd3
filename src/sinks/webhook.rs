//! The webhook (`[webhook]`): alerts as JSON POSTs to a web address, e.g. a WhatsApp or
//! Telegram gateway that forwards them to the village group.
//!
//! How delivery works, and why it is as safe as MQTT's:
//! - The store's outbox is the only queue, as for MQTT, but the webhook keeps its own place in it
//!   (a cursor, `store::Cursor`), independent of MQTT's `sent_at`. The sink reads the events after
//!   its cursor in seq order. Events its filter does not want (below `min_severity`, or a type
//!   not in `kinds`) are skipped and count as done.
//! - Each wanted event is POSTed as the event JSON (`Content-Type: application/json`). A 2xx
//!   answer delivers it: the cursor moves past it in the store. Nothing newer is sent before, so
//!   the endpoint gets the alerts in order.
//! - No answer (connection refused, DNS, TLS, timeout), a 5xx, 408 or 429: the same event is
//!   tried again after 1, 2, 4 ... up to 60 s (or the server's `Retry-After`, up to 60 s). One
//!   warning per outage, one info line when the endpoint answers again.
//! - Another 4xx (or a redirect) is the endpoint refusing *this* request for good (bad token,
//!   unknown chat, a payload it does not take): retrying would block every later alert behind it
//!   forever. It is logged once with the status and the event id and the sink moves on.
//! - At least once: if ronda stops between a 2xx and storing the cursor, or an answer is lost,
//!   the event is POSTed again after the restart. Receivers de-duplicate by the event's `id`.
//! - The first start on a store begins at the end of the outbox as it is then (see
//!   `store::Store::webhook_cursor`): events stored before the webhook was configured are never
//!   sent. Later starts resume from the stored cursor.
//!
//! Secrets: the URL may carry a token from `${VAR}` (in its path or query, or as the password
//! of a `user:${VAR}@`, which is sent as HTTP basic authentication). It is expanded when the
//! sink is built and kept only in [`WebhookOptions`] (whose `Debug` hides it); logs show
//! [`crate::config::redact_webhook_url`] of the URL as written, and the values of the variables
//! are blanked out of every error text and answer shown in a log line.
//!
//! The sink runs on its own thread with blocking HTTP (ureq); [`WebhookSink::notify`] wakes it
//! when an event was stored, otherwise it looks at the outbox once a second.

use crate::sinks::signal::Signal;
use std::io::Read;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::SinkError;
use crate::config::{Settings, Webhook, expand_env, redact_webhook_url};
use crate::events::{Event, EventKind, Severity};
use crate::store::{Store, StoreError};

/// Events read from the outbox at a time.
const BATCH: usize = 100;
/// How often the outbox is looked at without a [`WebhookSink::notify`].
const POLL: Duration = Duration::from_secs(1);
/// How long dropping a [`WebhookSink`] (without [`WebhookSink::shutdown`]) tries to deliver.
const DROP_FLUSH: Duration = Duration::from_secs(1);
/// After the shutdown deadline: how long to wait for the thread before leaving it behind.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// How much of an error answer's body is read, and shown in the log.
const ANSWER_READ: u64 = 4096;
const ANSWER_SHOWN: usize = 200;
/// Variable values shorter than this are not blanked out of log lines (they would blank out
/// ordinary words); a token is longer.
const MIN_SECRET: usize = 4;

/// Where and what the sink sends. Build it with [`WebhookOptions::from_settings`] (or
/// [`WebhookOptions::new`] in tests); the backoff fields have working defaults.
#[derive(Clone)]
pub struct WebhookOptions {
    /// With `${VAR}` filled in and without `user:password@`: a secret, never logged.
    url: String,
    /// `Basic ...` from the URL's `user:password@` (HTTP clients do not send it by themselves).
    authorization: Option<String>,
    /// The values of those variables, blanked out of error texts.
    secrets: Vec<String>,
    /// The URL as shown in logs.
    pub redacted_url: String,
    pub min_severity: Severity,
    /// Only these types (`None`: all).
    pub kinds: Option<Vec<EventKind>>,
    /// One POST, from connecting to the end of the answer.
    pub timeout: Duration,
    /// Retry delays: from `backoff_min`, doubling up to `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl std::fmt::Debug for WebhookOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookOptions")
            .field("url", &self.redacted_url)
            .field("min_severity", &self.min_severity)
            .field("kinds", &self.kinds)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl WebhookOptions {
    /// From `[webhook]`; `None` when the section is absent (no webhook). `${VAR}` references
    /// are filled in now, so a missing variable stops ronda at start-up.
    pub fn from_settings(settings: &Settings) -> Result<Option<WebhookOptions>, SinkError> {
        settings
            .webhook
            .as_ref()
            .map(WebhookOptions::from_config)
            .transpose()
    }

    /// From a validated `[webhook]` section.
    pub fn from_config(w: &Webhook) -> Result<WebhookOptions, SinkError> {
        let mut o = WebhookOptions::new(&w.url)?;
        o.min_severity = w.min_severity;
        o.kinds = w.kinds.clone();
        o.timeout = w.timeout;
        Ok(o)
    }

    /// POST to `url` (as written in a config file: `${VAR}` references are filled in from the
    /// environment) every event of severity `warning` and above, with a 10 s timeout and
    /// retries after 1 s doubling up to 60 s. The URL is not checked here: the config reader
    /// does that.
    /// A `user:password@` in the URL is sent as HTTP basic authentication; its parts are
    /// expanded separately, so a password may hold any character.
    pub fn new(url: &str) -> Result<WebhookOptions, SinkError> {
        let expand = |s: &str| expand_env(s).map_err(|var| SinkError::WebhookEnv { var });
        let (without_userinfo, userinfo) = split_userinfo(url);
        let resolved = expand(&without_userinfo)?;
        let authorization = match userinfo {
            Some(u) => {
                let (user, password) = u.split_once(':').unwrap_or((u.as_str(), ""));
                let pair = format!("{}:{}", expand(user)?, expand(password)?);
                Some(format!("Basic {}", base64(pair.as_bytes())))
            }
            None => None,
        };
        let mut secrets = env_values(url);
        if resolved != without_userinfo {
            secrets.push(resolved.clone());
        }
        // Longest first, so a value containing another is blanked out whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Ok(WebhookOptions {
            url: resolved,
            authorization,
            secrets,
            redacted_url: redact_webhook_url(url),
            min_severity: Severity::Warning,
            kinds: None,
            timeout: Duration::from_secs(10),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
        })
    }

    /// Whether an event goes to the webhook: its severity is at least `min_severity` and its
    /// type is in `kinds` (when given).
    pub fn wants(&self, e: &Event) -> bool {
        rank(e.severity) >= rank(self.min_severity)
            && self.kinds.as_ref().is_none_or(|k| k.contains(&e.kind))
    }

    /// `text` with every secret of the URL replaced by `***`.
    fn scrub(&self, text: &str) -> String {
        let mut t = text.to_string();
        for s in &self.secrets {
            t = t.replace(s.as_str(), "***");
        }
        t
    }
}

fn rank(s: Severity) -> u8 {
    match s {
        Severity::Info => 0,
        Severity::Warning => 1,
        Severity::Alert => 2,
    }
}

/// `url` without its `user:password@`, and that part (without the `@`).
fn split_userinfo(url: &str) -> (String, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_string(), None);
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rsplit_once('@') {
        Some((userinfo, host)) => (
            format!("{scheme}://{host}{}", &rest[end..]),
            Some(userinfo.to_string()),
        ),
        None => (url.to_string(), None),
    }
}

/// Standard base64 with padding (RFC 4648), for the basic authentication header.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The values of the `${VAR}` references of `url` that are set and long enough to be secrets.
fn env_values(url: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = url;
    while let Some(i) = rest.find("${") {
        let after = &rest[i + 2..];
        let Some(j) = after.find('}') else { break };
        if let Ok(v) = std::env::var(&after[..j])
            && v.len() >= MIN_SECRET
        {
            out.push(v);
        }
        rest = &after[j + 1..];
    }
    out
}

/// The HTTP client of the webhook: one request within `timeout`.
fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        // 4xx and 5xx are answers to look at, not errors.
        .http_status_as_error(false)
        // A redirected POST would be re-sent as a GET (301/302) or refused (307/308): do not
        // follow, tell the admin where it points instead.
        .max_redirects(0)
        .timeout_global(Some(timeout))
        .user_agent(format!("ronda/{}", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent()
}

/// The running sink. Dropping it stops it (after trying to deliver for a second); prefer
/// [`WebhookSink::shutdown`] with the time the caller can spare.
pub struct WebhookSink {
    shared: Arc<Signal>,
    store: Arc<Store>,
    opts: Arc<WebhookOptions>,
    thread: Option<JoinHandle<()>>,
    /// Disconnected (or sent to) when the thread is done.
    finished: mpsc::Receiver<()>,
}

impl WebhookSink {
    /// Start delivering the outbox of `store` to the webhook of `opts`. Makes the webhook's
    /// cursor (at the end of the outbox on its first start on this store) before returning, so
    /// every event stored after this returns is delivered.
    pub fn start(opts: WebhookOptions, store: Arc<Store>) -> Result<WebhookSink, SinkError> {
        let cursor = store.webhook_cursor()?;
        if cursor.new {
            info!(
                url = %opts.redacted_url,
                "webhook: first start on this store; alerts stored from now on are sent, none \
                 stored before"
            );
        } else {
            info!(
                url = %opts.redacted_url,
                after_event = cursor.seq,
                waiting = store.webhook_backlog().unwrap_or(0),
                "webhook: resuming after the last event it handled"
            );
        }
        let agent = agent(opts.timeout);
        let shared = Arc::new(Signal::default());
        let opts = Arc::new(opts);
        let worker = Worker {
            backoff: opts.backoff_min,
            opts: opts.clone(),
            agent,
            store: store.clone(),
            shared: shared.clone(),
            cursor: cursor.seq,
            unmarked: None,
            outage: None,
            store_failing: false,
        };
        let (done, finished) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("webhook-sink".into())
            .spawn(move || {
                worker.run();
                let _ = done.send(());
            })
            .map_err(|e| SinkError::Thread {
                what: "webhook sink",
                reason: e.to_string(),
            })?;
        Ok(WebhookSink {
            shared,
            store,
            opts,
            thread: Some(thread),
            finished,
        })
    }

    /// New events were stored: look at them now (not at the next 1 s check). Never blocks.
    pub fn notify(&self) {
        self.shared.wake();
    }

    /// Whether the endpoint is failing (no answer, or 5xx/408/429) and alerts wait.
    pub fn failing(&self) -> bool {
        self.shared.failing()
    }

    /// Alerts (events the filter wants) stored and not yet handled by the webhook.
    pub fn backlog(&self) -> Result<u64, StoreError> {
        let mut n = 0;
        let mut after = 0;
        loop {
            let page = self.store.webhook_pending(after, 1000)?;
            let Some((last, _)) = page.last() else {
                return Ok(n);
            };
            after = *last;
            n += page.iter().filter(|(_, e)| self.opts.wants(e)).count() as u64;
        }
    }

    /// Try to deliver what waits within `timeout`, then stop. Returns within `timeout` + 2 s,
    /// with the number of alerts still waiting: they stay in the store and go out after the next
    /// start.
    pub fn shutdown(mut self, timeout: Duration) -> Result<u64, StoreError> {
        self.stop(timeout);
        self.backlog()
    }

    fn stop(&mut self, timeout: Duration) {
        if let Some(thread) = self.thread.take() {
            self.shared
                .stop_thread(thread, &self.finished, timeout, STOP_GRACE, "webhook sink");
        }
    }
}

impl Drop for WebhookSink {
    fn drop(&mut self) {
        self.stop(DROP_FLUSH);
    }
}

/// What became of one POST.
enum Answer {
    /// 2xx.
    Delivered(u16),
    /// Refused for good (4xx other than 408/429, or a redirect), with what to say about it.
    Refused { status: u16, detail: String },
    /// Try the same event again later.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
}

/// What became of one event.
enum Outcome {
    /// Delivered or refused for good: the cursor moves past it.
    Done,
    /// Shutting down before it was delivered: it stays for the next start.
    Stopped,
}

struct Worker {
    opts: Arc<WebhookOptions>,
    agent: ureq::Agent,
    store: Arc<Store>,
    shared: Arc<Signal>,
    /// Every event up to here is done (in memory; stored unless `unmarked`).
    cursor: i64,
    /// Done, but storing the cursor failed: stored with the next mark (it never moves back).
    unmarked: Option<i64>,
    backoff: Duration,
    /// Since when the endpoint is failing (the outage was logged once).
    outage: Option<Instant>,
    store_failing: bool,
}

impl Worker {
    fn run(mut self) {
        'run: loop {
            let deadline = self.shared.deadline();
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            let batch = match self.store.webhook_pending(self.cursor, BATCH) {
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
                    break; // everything delivered
                }
                self.wait_for_events();
                continue;
            }
            // A run of skipped events is stored with one write, at its end or before the next
            // delivery (whose mark covers it).
            let mut skipped = None;
            for (seq, e) in batch {
                if !self.opts.wants(&e) {
                    self.cursor = seq;
                    skipped = Some(seq);
                    continue;
                }
                match self.deliver(&e) {
                    Outcome::Done => {
                        self.cursor = seq;
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
        if let Some(since) = self.outage {
            debug!(
                "webhook: stopping while the endpoint fails (for {} s)",
                since.elapsed().as_secs()
            );
        }
    }

    /// POST one event until it is delivered or refused, or the shutdown deadline comes.
    fn deliver(&mut self, e: &Event) -> Outcome {
        let body = match serde_json::to_string(e) {
            Ok(b) => b,
            Err(err) => {
                warn!(
                    event = %e.id,
                    "webhook: the event cannot be written as JSON ({err}); skipped"
                );
                return Outcome::Done;
            }
        };
        loop {
            let Some(timeout) = self.shared.request_timeout(self.opts.timeout) else {
                return Outcome::Stopped;
            };
            match self.post(&body, timeout) {
                Answer::Delivered(status) => {
                    self.answered();
                    debug!(event = %e.id, status, "webhook: delivered");
                    return Outcome::Done;
                }
                Answer::Refused { status, detail } => {
                    self.answered();
                    // Not a lost event: it stays in the store (the API and reviewers see it) and
                    // goes to the guard post over MQTT like every event; only this endpoint
                    // would not take it. Retrying a request the endpoint refuses would hold
                    // every later alert back behind it, for good.
                    warn!(
                        url = %self.opts.redacted_url,
                        event = %e.id,
                        status,
                        "webhook: the endpoint refused event {} with HTTP {status}{detail}; not \
                         retried (the event stays in the store and on MQTT)",
                        e.id
                    );
                    return Outcome::Done;
                }
                Answer::Retry { reason, after } => {
                    let delay = after
                        .map_or(self.backoff, |a| a.max(self.backoff))
                        .min(self.opts.backoff_max);
                    if self.outage.is_none() {
                        warn!(
                            url = %self.opts.redacted_url,
                            event = %e.id,
                            "webhook: cannot deliver: {reason}; retrying the same alert after \
                             {} s, then up to every {} s; alerts wait in the store, in order",
                            delay.as_secs_f64(),
                            self.opts.backoff_max.as_secs_f64()
                        );
                        self.outage = Some(Instant::now());
                        self.shared.set_failing(true);
                    } else {
                        debug!(event = %e.id, "webhook: still failing: {reason}");
                    }
                    self.backoff = (self.backoff * 2).min(self.opts.backoff_max);
                    if !self.sleep_until(Instant::now() + delay) {
                        return Outcome::Stopped;
                    }
                }
            }
        }
    }

    fn post(&self, body: &str, timeout: Duration) -> Answer {
        let mut request = self
            .agent
            .post(&self.opts.url)
            .config()
            .timeout_global(Some(timeout))
            .build()
            .header("Content-Type", "application/json");
        if let Some(auth) = &self.opts.authorization {
            // ureq leaves Authorization out of its own debug log.
            request = request.header("Authorization", auth);
        }
        let sent = request.send(body);
        let mut resp = match sent {
            Ok(r) => r,
            Err(e) => {
                return Answer::Retry {
                    reason: self.opts.scrub(&describe(&e, timeout)),
                    after: None,
                };
            }
        };
        let status = resp.status().as_u16();
        let retry_after = crate::sinks::notify::http::retry_after(resp.headers());
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(redact_webhook_url);
        // Read (some of) the answer: it says why in an error, and a connection is only reused
        // once its answer was read.
        let mut text = Vec::new();
        let _ = resp
            .body_mut()
            .as_reader()
            .take(ANSWER_READ)
            .read_to_end(&mut text);
        let detail = self.detail(&text);
        match status {
            200..=299 => Answer::Delivered(status),
            408 | 429 | 500..=599 => Answer::Retry {
                reason: format!("HTTP {status}{detail}"),
                after: retry_after,
            },
            300..=399 => Answer::Refused {
                status,
                detail: match location {
                    Some(l) => format!(
                        ": it redirects to {l}; put the address it redirects to in [webhook] url"
                    ),
                    None => ": a redirect; check [webhook] url".into(),
                },
            },
            400..=499 => Answer::Refused { status, detail },
            _ => Answer::Retry {
                reason: format!("unexpected HTTP status {status}{detail}"),
                after: None,
            },
        }
    }

    /// `: <the start of the answer>` on one line, secrets blanked out; empty if there is none.
    fn detail(&self, body: &[u8]) -> String {
        let text = String::from_utf8_lossy(body);
        let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.is_empty() {
            return String::new();
        }
        let mut shown: String = line.chars().take(ANSWER_SHOWN).collect();
        if shown.len() < line.len() {
            shown.push_str("...");
        }
        format!(": {}", self.opts.scrub(&shown))
    }

    /// The endpoint answered (delivered or refused): any outage is over.
    fn answered(&mut self) {
        self.backoff = self.opts.backoff_min;
        if let Some(since) = self.outage.take() {
            self.shared.set_failing(false);
            info!(
                url = %self.opts.redacted_url,
                "webhook: the endpoint answers again after {} s; waiting alerts go out in order",
                since.elapsed().as_secs()
            );
        }
    }

    /// Store that the webhook is done up to `seq`.
    fn mark(&mut self, seq: i64) {
        match self.store.mark_webhook_done(seq) {
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

    /// One warning per run of store failures, not one per attempt.
    fn store_trouble(&mut self, e: StoreError) {
        if !self.store_failing {
            warn!("webhook: the outbox cannot be used: {e}; retrying every second");
            self.store_failing = true;
        }
    }

    fn store_ok(&mut self) {
        if self.store_failing {
            self.store_failing = false;
            info!("webhook: the outbox can be used again");
        }
    }

    /// Until events are stored ([`WebhookSink::notify`]), the next poll, or a shutdown.
    fn wait_for_events(&self) {
        self.shared.wait_for_events(Instant::now() + POLL);
    }

    /// Sleep until `until` (the next retry); false when the shutdown deadline comes first.
    fn sleep_until(&self, until: Instant) -> bool {
        self.shared.sleep_until(until)
    }
}

/// POST one JSON `body` that is not an event (the gate book's daily report) to the webhook of
/// `opts`, once, with its authentication and timeout: the status of a 2xx answer, or what went
/// wrong (secrets blanked out). Retrying is the caller's.
pub fn post_once(opts: &WebhookOptions, body: &str) -> Result<u16, String> {
    let mut request = agent(opts.timeout)
        .post(&opts.url)
        .header("Content-Type", "application/json");
    if let Some(auth) = &opts.authorization {
        request = request.header("Authorization", auth);
    }
    match request.send(body) {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            let mut text = Vec::new();
            let _ = resp
                .body_mut()
                .as_reader()
                .take(ANSWER_READ)
                .read_to_end(&mut text);
            if (200..300).contains(&status) {
                Ok(status)
            } else {
                let line = String::from_utf8_lossy(&text)
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                let shown: String = line.chars().take(ANSWER_SHOWN).collect();
                Err(opts.scrub(&format!("HTTP {status}: {shown}")))
            }
        }
        Err(e) => Err(opts.scrub(&describe(&e, opts.timeout))),
    }
}

/// What went wrong when no answer came, in a user's words.
fn describe(e: &ureq::Error, timeout: Duration) -> String {
    match e {
        ureq::Error::Timeout(_) => format!("no answer within {} s", timeout.as_secs_f64()),
        ureq::Error::HostNotFound => "the host name is not found (DNS)".into(),
        ureq::Error::ConnectionFailed => "cannot connect".into(),
        ureq::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind, severity: Severity) -> Event {
        Event::new(
            "rw9",
            chrono_tz::Asia::Jakarta,
            "gate-1",
            kind,
            severity,
            chrono::Utc::now(),
        )
    }

    #[test]
    fn the_filter_takes_severity_and_kinds() {
        let mut o = WebhookOptions::new("http://127.0.0.1:9/hook").unwrap();
        assert!(!o.wants(&event(EventKind::LineCrossing, Severity::Info)));
        assert!(o.wants(&event(EventKind::CameraOffline, Severity::Warning)));
        assert!(o.wants(&event(EventKind::Intrusion, Severity::Alert)));
        o.kinds = Some(vec![EventKind::Intrusion, EventKind::LineCrossing]);
        assert!(!o.wants(&event(EventKind::CameraOffline, Severity::Warning)));
        assert!(o.wants(&event(EventKind::Intrusion, Severity::Alert)));
        assert!(!o.wants(&event(EventKind::LineCrossing, Severity::Info)));
        o.min_severity = Severity::Info;
        assert!(o.wants(&event(EventKind::LineCrossing, Severity::Info)));
        o.min_severity = Severity::Alert;
        o.kinds = None;
        assert!(!o.wants(&event(EventKind::Crowding, Severity::Warning)));
    }

    #[test]
    fn base64_is_rfc_4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
        assert_eq!(
            base64(b"Aladdin:open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }

    #[test]
    fn user_and_password_become_basic_authentication() {
        let o = WebhookOptions::new("http://wa:p@ss@10.0.0.5:3000/send?x=1").unwrap();
        assert_eq!(o.url, "http://10.0.0.5:3000/send?x=1");
        assert_eq!(o.authorization.as_deref(), Some("Basic d2E6cEBzcw=="));
        let o = WebhookOptions::new("http://10.0.0.5/a@b").unwrap();
        assert_eq!(o.url, "http://10.0.0.5/a@b");
        assert_eq!(o.authorization, None);
    }

    #[test]
    fn a_missing_variable_is_named_and_secrets_are_hidden() {
        let e = WebhookOptions::new("https://gw.example/${RONDA_TEST_WEBHOOK_UNSET}/send")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("${RONDA_TEST_WEBHOOK_UNSET}") && e.contains("export"),
            "{e}"
        );
        // PATH is set everywhere; stands in for a token.
        let path = std::env::var("PATH").unwrap();
        let o = WebhookOptions::new("https://gw.example/send?token=${PATH}").unwrap();
        assert_eq!(o.redacted_url, "https://gw.example/send?token=***");
        let debug = format!("{o:?}");
        assert!(!debug.contains(&path), "{debug}");
        assert_eq!(o.scrub(&format!("bad token {path}!")), "bad token ***!");
    }
}
