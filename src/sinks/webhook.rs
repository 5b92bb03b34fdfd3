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
//!   warning per outage (and one more in `ronda_webhook_outages_total`), one info line when the
//!   endpoint answers again.
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

use crate::sinks::signal::{Outages, Signal};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::info;

use super::SinkError;
use crate::backoff::Backoff;
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

mod options;
mod worker;

pub use options::WebhookOptions;
use worker::Worker;
pub use worker::post_once;

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
        let agent = worker::agent(opts.timeout);
        let shared = Arc::new(Signal::default());
        let opts = Arc::new(opts);
        let worker = Worker {
            backoff: Backoff::new(opts.backoff_min, opts.backoff_max),
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

    /// Times the endpoint stopped answering since the start (`ronda_webhook_outages_total`;
    /// each outage once, however many retries it took).
    pub fn outages(&self) -> u64 {
        self.outage_count().total()
    }

    /// A handle on [`WebhookSink::outages`] for /metrics, which does not own the sink.
    pub(crate) fn outage_count(&self) -> Outages {
        Outages::new(self.shared.clone())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Event, EventKind, Severity};

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
