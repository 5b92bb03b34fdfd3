//! Events and the MQTT outbox: an event row is unsent until the broker acknowledged it.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Transaction, params};

use super::{Store, StoreError, from_ms, to_ms};
use crate::events::Event;
use crate::rules::Counts;

/// An event as stored, with its place in the outbox.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    pub seq: i64,
    pub event: Event,
    /// When the broker acknowledged it; `None` while it is still to be sent.
    pub sent_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Store an event in the outbox; returns its sequence number (the order it is published in).
    /// Appending an event whose id is already stored stores nothing and returns the existing seq,
    /// so a retry after an error cannot publish it twice.
    pub fn append(&self, e: &Event) -> Result<i64, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.err("storing an event"))?;
        let seq = insert_event(&tx, e).map_err(self.err("storing an event"))?;
        tx.commit().map_err(self.err("storing an event"))?;
        Ok(seq)
    }

    /// Store a line-crossing event and the line's new counts in one transaction: after a crash
    /// there is never a counted crossing without its event, nor an event without its count.
    pub fn append_crossing(
        &self,
        e: &Event,
        camera: &str,
        line: &str,
        counts: Counts,
        since: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let what = "storing a crossing and its counts";
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.err(what))?;
        let seq = insert_event(&tx, e).map_err(self.err(what))?;
        super::counts::upsert(&tx, camera, line, counts, since).map_err(self.err(what))?;
        tx.commit().map_err(self.err(what))?;
        Ok(seq)
    }

    /// Up to `limit` unsent events with a seq above `after_seq`, in seq order (quarantined ones
    /// left out).
    pub fn unsent(&self, after_seq: i64, limit: usize) -> Result<Vec<(i64, Event)>, StoreError> {
        let what = "reading the outbox";
        let rows: Vec<(i64, String)> = {
            let conn = self.conn();
            let mut st = conn
                .prepare_cached(
                    "SELECT seq, json FROM events WHERE sent_at IS NULL AND quarantined_ms IS NULL \
                     AND seq > ?1 ORDER BY seq LIMIT ?2",
                )
                .map_err(self.err(what))?;
            st.query_map(params![after_seq, limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .and_then(|rows| rows.collect())
            .map_err(self.err(what))?
        };
        rows.into_iter()
            .map(|(seq, json)| Ok((seq, self.parse(seq, &json)?)))
            .collect()
    }

    /// The broker acknowledged event `seq`.
    pub fn mark_sent(&self, seq: i64) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached("UPDATE events SET sent_at = ?2 WHERE seq = ?1 AND sent_at IS NULL")
            .and_then(|mut st| st.execute(params![seq, to_ms(Utc::now())]))
            .map_err(self.err("marking an event sent"))?;
        Ok(())
    }

    /// How many events wait to be sent (quarantined ones do not wait: they are never sent).
    pub fn backlog(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn()
            .prepare_cached(
                "SELECT count(*) FROM events WHERE sent_at IS NULL AND quarantined_ms IS NULL",
            )
            .and_then(|mut st| st.query_row([], |r| r.get(0)))
            .map_err(self.err("counting the outbox"))?;
        Ok(n as u64)
    }

    /// The stored event with this id.
    pub fn event(&self, id: &str) -> Result<Option<StoredEvent>, StoreError> {
        let row: Option<(i64, String, Option<i64>)> = self
            .conn()
            .prepare_cached("SELECT seq, json, sent_at FROM events WHERE id = ?1")
            .and_then(|mut st| {
                st.query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()
            })
            .map_err(self.err("looking up an event"))?;
        row.map(|(seq, json, sent)| {
            Ok(StoredEvent {
                seq,
                event: self.parse(seq, &json)?,
                sent_at: sent.map(from_ms),
            })
        })
        .transpose()
    }

    pub(super) fn parse(&self, seq: i64, json: &str) -> Result<Event, StoreError> {
        serde_json::from_str(json).map_err(|e| StoreError::BadEvent {
            path: self.path.clone(),
            seq,
            reason: e.to_string(),
        })
    }
}

fn insert_event(tx: &Transaction<'_>, e: &Event) -> rusqlite::Result<i64> {
    let json = serde_json::to_string(e)
        .map_err(|err| rusqlite::Error::ToSqlConversionFailure(Box::new(err)))?;
    let time_ms = DateTime::parse_from_rfc3339(&e.time)
        .ok()
        .map(|t| t.timestamp_millis());
    let inserted = tx
        .prepare_cached(
            "INSERT INTO events (id, camera, type, time, time_ms, severity, json) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(id) DO NOTHING",
        )?
        .execute(params![
            e.id,
            e.camera,
            enum_text(&e.kind),
            e.time,
            time_ms,
            enum_text(&e.severity),
            json
        ])?;
    if inserted == 1 {
        Ok(tx.last_insert_rowid())
    } else {
        tx.prepare_cached("SELECT seq FROM events WHERE id = ?1")?
            .query_row([&e.id], |r| r.get(0))
    }
}

/// `line_crossing`, `alert`: the JSON spelling of a unit enum, for the indexed columns.
fn enum_text<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

impl Store {
    /// Delete the outbox rows older than `before` that every sink is done with (MQTT
    /// acknowledged, at or before the cursor of the webhook and of every notification
    /// destination) and no incident references. Line counts
    /// live in their own table and are not touched. Works in small batches so the pipeline's
    /// appends never wait long for the store. Rows whose time could not be read are kept.
    /// Returns how many were deleted.
    pub fn delete_old_events(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        const BATCH: i64 = 1000;
        let behind = self.lowest_sink_cursor()?.unwrap_or(i64::MAX);
        let mut total = 0;
        loop {
            let n = self
                .conn()
                .prepare_cached(
                    "DELETE FROM events WHERE seq IN (SELECT e.seq FROM events e \
                     WHERE e.time_ms < ?1 AND e.sent_at IS NOT NULL AND e.seq <= ?2 \
                     AND NOT EXISTS (SELECT 1 FROM incident_events ie WHERE ie.event_id = e.id) \
                     LIMIT ?3)",
                )
                .and_then(|mut st| st.execute(params![to_ms(before), behind, BATCH]))
                .map_err(self.err("deleting old events"))?;
            total += n;
            if (n as i64) < BATCH {
                return Ok(total);
            }
        }
    }
}
