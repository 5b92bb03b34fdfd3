//! The gate log: one entry per counted crossing of a gate line, the night entries due for
//! `unrecorded_entry`.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{
    ENTRY_COLUMNS, ENTRY_FROM, EntryFilter, GateEntry, NewGateEntry, dir_text, read_entry,
};
use crate::store::{Store, StoreError, to_ms};

impl Store {
    /// Log a crossing of a gate line. Logging the same event twice changes nothing; returns
    /// whether it was new.
    pub fn log_gate_entry(&self, e: &NewGateEntry) -> Result<bool, StoreError> {
        let n = self
            .conn()
            .prepare_cached(
                "INSERT INTO gate_entries (id, camera, line, direction, track_id, time, time_ms, \
                 mask, mask_score, crop_path, night) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT(id) DO NOTHING",
            )
            .and_then(|mut st| {
                st.execute(params![
                    e.id,
                    e.camera,
                    e.line,
                    dir_text(e.direction),
                    e.track_id.map(|t| t.min(i64::MAX as u64) as i64),
                    e.time,
                    to_ms(e.at),
                    e.mask.map(|(v, _)| v.as_str()),
                    e.mask.map(|(_, s)| f64::from(s)),
                    e.crop.as_ref().and_then(|p| p.to_str()),
                    e.night,
                ])
            })
            .map_err(self.err("logging a gate entry"))?;
        Ok(n == 1)
    }

    /// One entry of the gate log with its record.
    pub fn gate_entry(&self, id: &str) -> Result<Option<GateEntry>, StoreError> {
        self.conn()
            .prepare_cached(&format!(
                "SELECT {ENTRY_COLUMNS} {ENTRY_FROM} WHERE e.id = ?1"
            ))
            .and_then(|mut st| st.query_row([id], read_entry).optional())
            .map_err(self.err("reading a gate entry"))
    }

    /// Entries of the gate log, newest first.
    pub fn gate_entries(&self, f: &EntryFilter) -> Result<Vec<GateEntry>, StoreError> {
        let mut sql = format!("SELECT {ENTRY_COLUMNS} {ENTRY_FROM} WHERE 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        let mut arg = |sql: &mut String, clause: &str, v: rusqlite::types::Value| {
            args.push(v);
            sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
        };
        if let Some(t) = f.from {
            arg(&mut sql, " AND e.time_ms >= ?", to_ms(t).into());
        }
        if let Some(t) = f.to {
            arg(&mut sql, " AND e.time_ms < ?", to_ms(t).into());
        }
        if let Some(d) = f.direction {
            arg(
                &mut sql,
                " AND e.direction = ?",
                dir_text(d).to_string().into(),
            );
        }
        if let Some(a) = &f.alert_id {
            arg(&mut sql, " AND e.alert_id = ?", a.clone().into());
        }
        if let Some((ms, id)) = &f.before {
            args.push((*ms).into());
            args.push(id.clone().into());
            let (a, b) = (args.len() - 1, args.len());
            sql.push_str(&format!(
                " AND (e.time_ms < ?{a} OR (e.time_ms = ?{a} AND e.id < ?{b}))"
            ));
        }
        if f.unrecorded {
            sql.push_str(" AND r.id IS NULL");
        }
        args.push((f.limit.clamp(1, 1000) as i64).into());
        sql.push_str(&format!(
            " ORDER BY e.time_ms DESC, e.id DESC LIMIT ?{}",
            args.len()
        ));
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(&sql)
            .map_err(self.err("listing gate entries"))?;
        st.query_map(rusqlite::params_from_iter(args), read_entry)
            .and_then(|rows| rows.collect())
            .map_err(self.err("listing gate entries"))
    }

    /// Night entries made at or before `due` (and after `not_before`) that no record is linked
    /// to and no `unrecorded_entry` was raised for yet, oldest first.
    pub fn gate_unrecorded_due(
        &self,
        due: DateTime<Utc>,
        not_before: DateTime<Utc>,
    ) -> Result<Vec<GateEntry>, StoreError> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(&format!(
                "SELECT {ENTRY_COLUMNS} {ENTRY_FROM} WHERE e.night = 1 AND e.alert_id IS NULL \
                 AND e.direction = 'in' AND e.time_ms <= ?1 AND e.time_ms > ?2 AND r.id IS NULL \
                 ORDER BY e.time_ms, e.id LIMIT 100"
            ))
            .map_err(self.err("looking for unrecorded night entries"))?;
        st.query_map(params![to_ms(due), to_ms(not_before)], read_entry)
            .and_then(|rows| rows.collect())
            .map_err(self.err("looking for unrecorded night entries"))
    }

    /// Note that `unrecorded_entry` event `alert_id` is raised for entry `entry_id`, if it
    /// still has neither a record nor an alert: false when a guard recorded it meanwhile.
    pub fn mark_gate_unrecorded(&self, entry_id: &str, alert_id: &str) -> Result<bool, StoreError> {
        let n = self
            .conn()
            .prepare_cached(
                "UPDATE gate_entries SET alert_id = ?2 WHERE id = ?1 AND alert_id IS NULL \
                 AND NOT EXISTS (SELECT 1 FROM gate_records r WHERE r.entry_id = ?1)",
            )
            .and_then(|mut st| st.execute(params![entry_id, alert_id]))
            .map_err(self.err("marking an unrecorded night entry"))?;
        Ok(n == 1)
    }
}
