//! The daily run: each day's report made once at `[gatebook] report_at` on the gate book's
//! clock, and its message handed to the webhook until it takes it.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::forms::{text, webhook_body};
use super::times::{next_after, period_ending};
use super::{ReportSite, build};
use crate::store::{Store, StoreError, StoredReport};

/// How long after a failed send the webhook is tried again.
const RETRY: Duration = Duration::minutes(1);
/// How long a report's message is tried: a day's report is stale the day after.
const SEND_FOR: Duration = Duration::hours(24);

/// One POST of a JSON body: the status of a 2xx answer, or what went wrong (no secrets).
pub type Post = Box<dyn Fn(&str) -> Result<u16, String> + Send>;

/// Where the daily report's message goes: the webhook, as the app wires it
/// (`sinks::webhook::post_once`).
pub struct ReportHook {
    /// The address as logs show it (no secrets).
    pub shown: String,
    /// Sends the message once (retrying is the scheduler's).
    pub post: Post,
}

/// Makes each day's report once, at its time, and hands its text to the webhook.
pub struct Scheduler {
    store: Arc<Store>,
    site: ReportSite,
    webhook: Option<ReportHook>,
    /// No report for a day that ended before this.
    first_start: DateTime<Utc>,
    last_day: Option<String>,
    next_send: Option<DateTime<Utc>>,
}

impl Scheduler {
    /// `now` on the gate book's clock: stored as its first start on a new store.
    pub fn new(
        store: Arc<Store>,
        site: ReportSite,
        webhook: Option<ReportHook>,
        now: DateTime<Utc>,
    ) -> Scheduler {
        let first_start = store.gate_first_start(now).unwrap_or_else(|e| {
            tracing::error!("gate book: {e}");
            now
        });
        Scheduler {
            store,
            site,
            webhook,
            first_start,
            last_day: None,
            next_send: None,
        }
    }

    /// The link to a day's report page, with `[http] public_url`.
    fn link(&self, day: &str) -> Option<String> {
        self.site
            .public_url
            .as_ref()
            .map(|u| format!("{u}/gatebook#report={day}"))
    }

    /// Make the report that is due at `now` (if not made yet) and send what waits.
    pub fn check(&mut self, now: DateTime<Utc>) {
        let (from, to) = period_ending(now, self.site.report_at, self.site.tz);
        let day = from
            .with_timezone(&self.site.tz)
            .format("%Y-%m-%d")
            .to_string();
        if to > self.first_start && self.last_day.as_deref() != Some(day.as_str()) {
            match self.make(&day, from, to, now) {
                Ok(()) => {
                    self.last_day = Some(day);
                    self.next_send = None;
                }
                Err(e) => tracing::error!(day, "gate book: the daily report is not made: {e}"),
            }
        }
        self.send(now);
    }

    fn make(
        &self,
        day: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if self.store.gate_report(day)?.is_some() {
            tracing::debug!(day, "gate book: the daily report was made already");
            return Ok(());
        }
        let r = build(&self.store, &self.site, from, to, now)?;
        let link = self.link(day);
        let stored = StoredReport {
            day: day.to_string(),
            from,
            to,
            made_at: now,
            json: serde_json::to_string(&r).unwrap_or_else(|_| "{}".into()),
            text: text(&r, self.site.tz, self.site.language, link.as_deref()),
            sent_at: None,
            send_note: None,
        };
        if self.store.save_gate_report(&stored)? {
            tracing::info!(
                day,
                entries_in = r.total_in,
                entries_out = r.total_out,
                "gate book: daily report made"
            );
            if self.webhook.is_none() {
                self.store
                    .mark_gate_report(day, None, Some("no [webhook] configured"))?;
            }
        }
        Ok(())
    }

    /// Send the reports of the last day the webhook has not taken yet.
    fn send(&mut self, now: DateTime<Utc>) {
        let Some(hook) = &self.webhook else {
            return;
        };
        if self.next_send.is_some_and(|t| now < t) {
            return;
        }
        let unsent = match self.store.gate_reports_unsent() {
            Ok(u) => u,
            Err(e) => {
                tracing::error!("gate book: {e}");
                self.next_send = Some(now + RETRY);
                return;
            }
        };
        for r in unsent.into_iter().filter(|r| r.to + SEND_FOR > now) {
            let link = self.link(&r.day);
            let body = webhook_body(&self.site.id, &r, self.site.tz, link.as_deref());
            match (hook.post)(&body) {
                Ok(status) => {
                    tracing::info!(day = %r.day, status, "gate book: daily report sent to the webhook");
                    if let Err(e) = self.store.mark_gate_report(&r.day, Some(now), None) {
                        tracing::error!("gate book: {e}");
                    }
                }
                Err(why) => {
                    tracing::warn!(
                        day = %r.day,
                        url = %hook.shown,
                        "gate book: the daily report could not be sent: {why}; trying again in a \
                         minute"
                    );
                    let _ = self.store.mark_gate_report(&r.day, None, Some(&why));
                    self.next_send = Some(now + RETRY);
                    return;
                }
            }
        }
        self.next_send = None;
    }

    /// When the next report is due after `now`.
    pub fn next_after(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        next_after(now, self.site.report_at, self.site.tz)
    }

    /// The day of the last report made (or found made).
    pub fn last_day(&self) -> Option<String> {
        self.last_day.clone()
    }
}
