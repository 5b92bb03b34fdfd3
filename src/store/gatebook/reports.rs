//! The daily reports (each made once: its row is the marker), when the gate book first ran,
//! the day's events for a report, and the gate book's retention.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};

use super::{GateRemoved, StoredReport};
use crate::store::{Store, StoreError, from_ms, to_ms};

impl Store {
    /// Store the report of `day` unless one is stored already (then nothing changes): whether
    /// it was stored now.
    pub fn save_gate_report(&self, r: &StoredReport) -> Result<bool, StoreError> {
        let n = self
            .conn()
            .prepare_cached(
                "INSERT INTO gate_reports (day, from_ms, to_ms, made_ms, json, text) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(day) DO NOTHING",
            )
            .and_then(|mut st| {
                st.execute(params![
                    r.day,
                    to_ms(r.from),
                    to_ms(r.to),
                    to_ms(r.made_at),
                    r.json,
                    r.text
                ])
            })
            .map_err(self.err("storing a daily report"))?;
        Ok(n == 1)
    }

    /// The webhook took the report of `day` (`sent`), or why not yet (`note`).
    pub fn mark_gate_report(
        &self,
        day: &str,
        sent: Option<DateTime<Utc>>,
        note: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached("UPDATE gate_reports SET sent_ms = ?2, send_note = ?3 WHERE day = ?1")
            .and_then(|mut st| st.execute(params![day, sent.map(to_ms), note]))
            .map_err(self.err("marking a daily report sent"))?;
        Ok(())
    }

    const REPORT_COLUMNS: &str = "day, from_ms, to_ms, made_ms, json, text, sent_ms, send_note";

    fn read_report(r: &Row<'_>) -> rusqlite::Result<StoredReport> {
        Ok(StoredReport {
            day: r.get(0)?,
            from: from_ms(r.get(1)?),
            to: from_ms(r.get(2)?),
            made_at: from_ms(r.get(3)?),
            json: r.get(4)?,
            text: r.get(5)?,
            sent_at: r.get::<_, Option<i64>>(6)?.map(from_ms),
            send_note: r.get(7)?,
        })
    }

    /// The stored report of `day`.
    pub fn gate_report(&self, day: &str) -> Result<Option<StoredReport>, StoreError> {
        self.conn()
            .prepare_cached(&format!(
                "SELECT {} FROM gate_reports WHERE day = ?1",
                Self::REPORT_COLUMNS
            ))
            .and_then(|mut st| st.query_row([day], Self::read_report).optional())
            .map_err(self.err("reading a daily report"))
    }

    /// The newest stored reports, newest first.
    pub fn gate_reports(&self, limit: usize) -> Result<Vec<StoredReport>, StoreError> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(&format!(
                "SELECT {} FROM gate_reports ORDER BY day DESC LIMIT ?1",
                Self::REPORT_COLUMNS
            ))
            .map_err(self.err("listing daily reports"))?;
        st.query_map([limit.clamp(1, 1000) as i64], Self::read_report)
            .and_then(|rows| rows.collect())
            .map_err(self.err("listing daily reports"))
    }

    /// Reports the webhook has not taken yet, oldest first.
    pub fn gate_reports_unsent(&self) -> Result<Vec<StoredReport>, StoreError> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(&format!(
                "SELECT {} FROM gate_reports WHERE sent_ms IS NULL ORDER BY day",
                Self::REPORT_COLUMNS
            ))
            .map_err(self.err("listing unsent daily reports"))?;
        st.query_map([], Self::read_report)
            .and_then(|rows| rows.collect())
            .map_err(self.err("listing unsent daily reports"))
    }

    /// When the gate book first ran on this store (`now`, the first time this is asked).
    pub fn gate_first_start(&self, now: DateTime<Utc>) -> Result<DateTime<Utc>, StoreError> {
        let what = "reading when the gate book started";
        let conn = self.conn();
        conn.prepare_cached(
            "INSERT INTO gate_meta (key, value) VALUES ('first_start_ms', ?1) \
             ON CONFLICT(key) DO NOTHING",
        )
        .and_then(|mut st| st.execute([to_ms(now)]))
        .map_err(self.err(what))?;
        conn.prepare_cached("SELECT value FROM gate_meta WHERE key = 'first_start_ms'")
            .and_then(|mut st| st.query_row([], |r| r.get(0)))
            .map(from_ms)
            .map_err(self.err(what))
    }

    /// Events of `kinds` (type names) with a time in `[from, to)`, oldest first: `(type,
    /// camera, time)`. For the daily report.
    pub fn events_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        min_severity: &[&str],
    ) -> Result<Vec<(String, String, DateTime<Utc>)>, StoreError> {
        let what = "reading the day's events";
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(
                "SELECT type, camera, time_ms FROM events WHERE time_ms >= ?1 AND time_ms < ?2 \
                 AND (severity IN (SELECT value FROM json_each(?3)) \
                      OR type IN ('camera_offline', 'camera_online')) \
                 ORDER BY time_ms, seq",
            )
            .map_err(self.err(what))?;
        let severities = serde_json::to_string(min_severity).unwrap_or_else(|_| "[]".into());
        st.query_map(params![to_ms(from), to_ms(to), severities], |r| {
            Ok((r.get(0)?, r.get(1)?, from_ms(r.get(2)?)))
        })
        .and_then(|rows| rows.collect())
        .map_err(self.err(what))
    }

    /// Delete entries (their pictures are returned to delete), records untouched since, reports
    /// and starting occupancies older than `before`. Audit trails go with their records.
    pub fn delete_old_gate(&self, before: DateTime<Utc>) -> Result<GateRemoved, StoreError> {
        let what = "deleting old gate book rows";
        let cutoff = to_ms(before);
        let day = before.format("%Y-%m-%d").to_string();
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.err(what))?;
        let mut removed = GateRemoved::default();
        {
            let mut st = tx
                .prepare_cached(
                    "SELECT crop_path FROM gate_entries WHERE time_ms < ?1 AND crop_path IS NOT NULL",
                )
                .map_err(self.err(what))?;
            removed.crops = st
                .query_map([cutoff], |r| r.get::<_, String>(0))
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(self.err(what))?
                .into_iter()
                .map(PathBuf::from)
                .collect();
        }
        // records first: an entry still linked to a kept record is kept unlinked (SET NULL)
        removed.records = tx
            .execute(
                "DELETE FROM gate_records WHERE MAX(entered_ms, COALESCE(left_ms, 0), updated_ms) < ?1",
                [cutoff],
            )
            .map_err(self.err(what))?;
        removed.entries = tx
            .execute("DELETE FROM gate_entries WHERE time_ms < ?1", [cutoff])
            .map_err(self.err(what))?;
        removed.reports = tx
            .execute("DELETE FROM gate_reports WHERE to_ms < ?1", [cutoff])
            .map_err(self.err(what))?;
        tx.execute("DELETE FROM gate_start_occupancy WHERE day < ?1", [&day])
            .map_err(self.err(what))?;
        tx.commit().map_err(self.err(what))?;
        Ok(removed)
    }
}
