//! Sinks with their own place in the outbox: the webhook and each notification destination
//! (`[[notify]]`, row `notify:<name>`). MQTT marks each event `sent_at`; these sinks instead keep
//! a cursor, because each delivers strictly in seq order and never skips ahead: every event up
//! to the cursor is done for it (delivered, refused for good, or not wanted by its filter),
//! every event after it is still to do. Each sink has its own row, so a destination that is
//! down holds back only itself.
//!
//! Why a cursor and not a `webhook_at` column or a row per delivery: one small row per sink,
//! one update per delivery (a run of skipped events costs one), no index on `events`, nothing
//! that grows and needs cleaning, and nothing that touches MQTT's `sent_at`. A column added by a
//! migration would also be NULL on every old event, which is exactly the flood a first start
//! must not cause.
//!
//! **First start on an existing store**: the cursor is made at the end of the outbox as it is
//! then, so events stored before the webhook was configured are never sent to it (a village
//! group must not get last month's alerts the day the gateway is added). From then on the
//! cursor survives restarts: what was stored while the endpoint was unreachable or ronda was
//! stopped goes out, in order, when it is back.

use chrono::Utc;
use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, to_ms};
use crate::events::Event;

/// The webhook's row in `sink_cursors`.
pub const WEBHOOK: &str = "webhook";
/// The prefix of a notification destination's row: `notify:<name>`.
pub const NOTIFY_PREFIX: &str = "notify:";

/// Where a sink stands in the outbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// Every event with a seq up to this one is done for the sink (0: none was stored).
    pub seq: i64,
    /// The cursor was made just now, at the end of the outbox: the sink's first start on this
    /// store. Events stored before are not for it.
    pub new: bool,
}

impl Store {
    /// Sink `sink`'s cursor, made at the current end of the outbox if the sink never ran on this
    /// store (see the module documentation). The sink calls it when it starts; until then
    /// [`Store::sink_pending`] finds nothing for it.
    pub fn sink_cursor(&self, sink: &str) -> Result<Cursor, StoreError> {
        let what = "reading a sink's place in the outbox";
        let conn = self.conn();
        // One statement, under the store's lock: an event appended meanwhile is either before
        // the cursor's place or after it, never lost between the two.
        let made = conn
            .prepare_cached(
                "INSERT INTO sink_cursors (sink, seq, updated_ms) \
                 SELECT ?1, COALESCE(MAX(seq), 0), ?2 FROM events WHERE true \
                 ON CONFLICT(sink) DO NOTHING",
            )
            .and_then(|mut st| st.execute(params![sink, to_ms(Utc::now())]))
            .map_err(self.err(what))?;
        let seq: i64 = conn
            .prepare_cached("SELECT seq FROM sink_cursors WHERE sink = ?1")
            .and_then(|mut st| st.query_row([sink], |r| r.get(0)))
            .map_err(self.err(what))?;
        Ok(Cursor {
            seq,
            new: made == 1,
        })
    }

    /// Up to `limit` events sink `sink` has still to handle (after its cursor) with a seq above
    /// `after_seq`, in seq order. Every event is returned, whatever its severity or type: the
    /// sink filters and marks the ones it skips as done too. Nothing before
    /// [`Store::sink_cursor`] made the cursor.
    pub fn sink_pending(
        &self,
        sink: &str,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Event)>, StoreError> {
        let what = "reading the outbox for a sink";
        let rows: Vec<(i64, String)> = {
            let conn = self.conn();
            let mut st = conn
                .prepare_cached(
                    "SELECT seq, json FROM events WHERE seq > ?1 \
                     AND seq > (SELECT seq FROM sink_cursors WHERE sink = ?2) \
                     ORDER BY seq LIMIT ?3",
                )
                .map_err(self.err(what))?;
            st.query_map(params![after_seq, sink, limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .and_then(|rows| rows.collect())
            .map_err(self.err(what))?
        };
        rows.into_iter()
            .map(|(seq, json)| Ok((seq, self.parse(seq, &json)?)))
            .collect()
    }

    /// Sink `sink` is done with event `seq` and every event before it (delivered, refused for
    /// good, or skipped by its filter). The cursor never moves back: marking an older seq again
    /// changes nothing.
    pub fn mark_sink_done(&self, sink: &str, seq: i64) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "INSERT INTO sink_cursors (sink, seq, updated_ms) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(sink) DO UPDATE SET seq = max(seq, excluded.seq), \
                 updated_ms = excluded.updated_ms",
            )
            .and_then(|mut st| st.execute(params![sink, seq, to_ms(Utc::now())]))
            .map_err(self.err("storing a sink's place in the outbox"))?;
        Ok(())
    }

    /// How many events sink `sink` has still to look at (all of them, wanted by its filter or
    /// not); 0 before its cursor was made.
    pub fn sink_backlog(&self, sink: &str) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn()
            .prepare_cached(
                "SELECT count(*) FROM events \
                 WHERE seq > (SELECT seq FROM sink_cursors WHERE sink = ?1)",
            )
            .and_then(|mut st| st.query_row([sink], |r| r.get(0)))
            .map_err(self.err("counting a sink's backlog"))?;
        Ok(n as u64)
    }

    /// Forget sink `sink`'s cursor (when ronda runs without it): configured again later, it
    /// starts from the end of the outbox as it is then, instead of sending everything stored
    /// while it was switched off. Returns whether there was one.
    pub fn forget_sink_cursor(&self, sink: &str) -> Result<bool, StoreError> {
        let n = self
            .conn()
            .prepare_cached("DELETE FROM sink_cursors WHERE sink = ?1")
            .and_then(|mut st| st.execute([sink]))
            .map_err(self.err("forgetting a sink's place in the outbox"))?;
        Ok(n > 0)
    }

    /// Forget the cursors of notification destinations (`notify:<name>`) whose row is not in
    /// `keep`: a destination removed from the configuration (or disabled) must not hold the
    /// outbox against retention, and added again it starts at the end. Returns how many went.
    pub fn forget_notify_cursors_except(&self, keep: &[String]) -> Result<usize, StoreError> {
        let what = "forgetting removed destinations' places in the outbox";
        let names: Vec<String> = {
            let conn = self.conn();
            let mut st = conn
                .prepare_cached("SELECT sink FROM sink_cursors WHERE substr(sink, 1, 7) = ?1")
                .map_err(self.err(what))?;
            st.query_map([NOTIFY_PREFIX], |r| r.get(0))
                .and_then(|rows| rows.collect())
                .map_err(self.err(what))?
        };
        let mut n = 0;
        for name in names.iter().filter(|n| !keep.contains(n)) {
            n += usize::from(self.forget_sink_cursor(name)?);
        }
        Ok(n)
    }

    /// Sink `sink`'s cursor if it was made, without making it.
    pub fn sink_cursor_if_any(&self, sink: &str) -> Result<Option<i64>, StoreError> {
        self.conn()
            .prepare_cached("SELECT seq FROM sink_cursors WHERE sink = ?1")
            .and_then(|mut st| st.query_row([sink], |r| r.get(0)).optional())
            .map_err(self.err("reading a sink's place in the outbox"))
    }

    /// The lowest cursor of every sink that has one (`None`: no such sink): every event after it
    /// is still to do for some sink, so retention keeps it.
    pub fn lowest_sink_cursor(&self) -> Result<Option<i64>, StoreError> {
        self.conn()
            .prepare_cached("SELECT MIN(seq) FROM sink_cursors")
            .and_then(|mut st| st.query_row([], |r| r.get(0)))
            .map_err(self.err("reading the sinks' places in the outbox"))
    }

    /// [`Store::sink_cursor`] of the webhook.
    pub fn webhook_cursor(&self) -> Result<Cursor, StoreError> {
        self.sink_cursor(WEBHOOK)
    }

    /// [`Store::sink_pending`] of the webhook.
    pub fn webhook_pending(
        &self,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Event)>, StoreError> {
        self.sink_pending(WEBHOOK, after_seq, limit)
    }

    /// [`Store::mark_sink_done`] of the webhook.
    pub fn mark_webhook_done(&self, seq: i64) -> Result<(), StoreError> {
        self.mark_sink_done(WEBHOOK, seq)
    }

    /// [`Store::sink_backlog`] of the webhook.
    pub fn webhook_backlog(&self) -> Result<u64, StoreError> {
        self.sink_backlog(WEBHOOK)
    }

    /// [`Store::forget_sink_cursor`] of the webhook.
    pub fn forget_webhook_cursor(&self) -> Result<bool, StoreError> {
        self.forget_sink_cursor(WEBHOOK)
    }

    /// [`Store::sink_cursor_if_any`] of the webhook.
    pub fn webhook_cursor_if_any(&self) -> Result<Option<i64>, StoreError> {
        self.sink_cursor_if_any(WEBHOOK)
    }
}
