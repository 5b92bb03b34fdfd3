//! The webhook's delivery thread: reads the outbox after its cursor, POSTs each wanted event,
//! retries with backoff, moves the cursor (see the folder's `webhook.rs` for the rules).

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::{ANSWER_READ, ANSWER_SHOWN, BATCH, POLL, WebhookOptions};
use crate::backoff::Backoff;
use crate::config::redact_webhook_url;
use crate::events::Event;
use crate::sinks::signal::Signal;
use crate::store::{Store, StoreError};
use crate::telemetry;

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

pub(super) struct Worker {
    pub(super) opts: Arc<WebhookOptions>,
    pub(super) agent: ureq::Agent,
    pub(super) store: Arc<Store>,
    pub(super) shared: Arc<Signal>,
    /// Every event up to here is done (in memory; stored unless `unmarked`).
    pub(super) cursor: i64,
    /// Done, but storing the cursor failed: stored with the next mark (it never moves back).
    pub(super) unmarked: Option<i64>,
    pub(super) backoff: Backoff,
    /// Since when the endpoint is failing (the outage was logged once).
    pub(super) outage: Option<Instant>,
    pub(super) store_failing: bool,
}

impl Worker {
    pub(super) fn run(mut self) {
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
                    // a Retry-After longer than our own delay is honoured, up to the cap
                    let step = self.backoff.next_delay();
                    let delay = after
                        .map_or(step, |a| a.max(step))
                        .min(self.opts.backoff_max);
                    if self.outage.is_none() {
                        telemetry::webhook_unreachable(
                            &self.opts.redacted_url,
                            &e.id,
                            &reason,
                            (delay, self.opts.backoff_max),
                            self.shared.outages(),
                        );
                        self.outage = Some(Instant::now());
                        self.shared.set_failing(true);
                    } else {
                        debug!(event = %e.id, "webhook: still failing: {reason}");
                    }
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
        let retry_after = crate::sinks::signal::retry_after(resp.headers());
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
        self.backoff.reset();
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

/// The HTTP client of the webhook, for the events and the gate book's daily report alike: one
/// request within `timeout`.
pub(super) fn agent(timeout: Duration) -> ureq::Agent {
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
