//! The guards' records of who came in, with their audit trail; who is inside; the starting
//! occupancy admins set.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{
    FieldChange, GateError, GateRecord, RECORD_COLUMNS, RecordChange, RecordFields, RecordFilter,
    StartOccupancy, audit, diff, entry_in, read_record, record_in,
};
use crate::rules::Direction;
use crate::store::{Store, StoreError, from_ms, to_ms};

impl Store {
    /// Write a new record, linked to entry `entry_id` (an `in` no record has) when given; it
    /// entered then (or at `now` without an entry). The audit trail starts with `created`.
    pub fn create_gate_record(
        &self,
        fields: &RecordFields,
        entry_id: Option<&str>,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<GateRecord, GateError> {
        let what = "writing a gate record";
        let kind = fields
            .kind
            .ok_or_else(|| GateError::Bad("say who it is: resident, guest or newcomer".into()))?;
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.err(what))?;
        let entered = match entry_id {
            Some(id) => {
                let e = entry_in(&tx, id)
                    .map_err(self.err(what))?
                    .ok_or_else(|| GateError::NotFound(format!("no gate entry with id {id}")))?;
                if e.direction != Direction::In {
                    return Err(GateError::Bad(format!(
                        "entry {id} is someone going out; record a person at their entry (in) \
                         and link the exit to their record"
                    )));
                }
                if let Some(r) = &e.record {
                    return Err(GateError::Conflict(format!(
                        "entry {id} is already recorded (record {}, {})",
                        r.id, r.name
                    )));
                }
                e.at
            }
            None => now,
        };
        tx.prepare_cached(
            "INSERT INTO gate_records (kind, name, origin, visiting, purpose, phone, stay, rt, \
             entry_id, entered_ms, created_by, created_ms, updated_by, updated_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?11, ?12)",
        )
        .and_then(|mut st| {
            st.execute(params![
                kind.as_str(),
                fields.name,
                fields.origin,
                fields.visiting,
                fields.purpose,
                fields.phone,
                fields.stay,
                fields.rt,
                entry_id,
                to_ms(entered),
                user,
                to_ms(now),
            ])
        })
        .map_err(self.err(what))?;
        let id = tx.last_insert_rowid();
        let mut changes = diff(&RecordFields::default(), fields);
        if let Some(e) = entry_id {
            changes.push(FieldChange {
                field: "entry".into(),
                from: String::new(),
                to: e.into(),
            });
        }
        audit(&tx, id, user, now, "created", &changes).map_err(self.err(what))?;
        let rec = record_in(&tx, id)
            .map_err(self.err(what))?
            .ok_or_else(|| GateError::NotFound(format!("record {id} vanished")))?;
        tx.commit().map_err(self.err(what))?;
        Ok(rec)
    }

    /// Change a record's fields; the audit trail gets what changed (nothing changed: no row).
    pub fn update_gate_record(
        &self,
        id: i64,
        fields: &RecordFields,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<GateRecord, GateError> {
        let what = "changing a gate record";
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.err(what))?;
        let old = record_in(&tx, id)
            .map_err(self.err(what))?
            .ok_or_else(|| GateError::NotFound(format!("no gate record with id {id}")))?;
        let mut new = fields.clone();
        new.kind = new.kind.or(Some(old.kind));
        let changes = diff(&old.fields, &new);
        if changes.is_empty() {
            return Ok(old);
        }
        tx.prepare_cached(
            "UPDATE gate_records SET kind = ?2, name = ?3, origin = ?4, visiting = ?5, \
             purpose = ?6, phone = ?7, stay = ?8, rt = ?9, updated_by = ?10, updated_ms = ?11 \
             WHERE id = ?1",
        )
        .and_then(|mut st| {
            st.execute(params![
                id,
                new.kind.unwrap_or(old.kind).as_str(),
                new.name,
                new.origin,
                new.visiting,
                new.purpose,
                new.phone,
                new.stay,
                new.rt,
                user,
                to_ms(now),
            ])
        })
        .map_err(self.err(what))?;
        audit(&tx, id, user, now, "edited", &changes).map_err(self.err(what))?;
        let rec = record_in(&tx, id)
            .map_err(self.err(what))?
            .ok_or_else(|| GateError::NotFound(format!("no gate record with id {id}")))?;
        tx.commit().map_err(self.err(what))?;
        Ok(rec)
    }

    /// The person of record `id` left: through exit `exit_id` (an `out` no record has), or
    /// at `now` when the camera did not see it. A record leaves once.
    pub fn link_gate_exit(
        &self,
        id: i64,
        exit_id: Option<&str>,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<GateRecord, GateError> {
        let what = "linking a gate exit";
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.err(what))?;
        let old = record_in(&tx, id)
            .map_err(self.err(what))?
            .ok_or_else(|| GateError::NotFound(format!("no gate record with id {id}")))?;
        if let Some(left) = old.left_at {
            return Err(GateError::Conflict(format!(
                "record {id} ({}) has left already (at {})",
                old.fields.name,
                left.to_rfc3339()
            )));
        }
        let left = match exit_id {
            Some(x) => {
                let e = entry_in(&tx, x)
                    .map_err(self.err(what))?
                    .ok_or_else(|| GateError::NotFound(format!("no gate entry with id {x}")))?;
                if e.direction != Direction::Out {
                    return Err(GateError::Bad(format!(
                        "entry {x} is someone coming in; pick an exit (out) for this record"
                    )));
                }
                if let Some(r) = &e.record {
                    return Err(GateError::Conflict(format!(
                        "exit {x} already belongs to record {} ({})",
                        r.id, r.name
                    )));
                }
                if e.at < old.entered_at {
                    return Err(GateError::Bad(format!(
                        "exit {x} is before this person came in; pick a later exit"
                    )));
                }
                e.at
            }
            None => now,
        };
        tx.prepare_cached(
            "UPDATE gate_records SET exit_id = ?2, left_ms = ?3, updated_by = ?4, updated_ms = ?5 \
             WHERE id = ?1",
        )
        .and_then(|mut st| st.execute(params![id, exit_id, to_ms(left), user, to_ms(now)]))
        .map_err(self.err(what))?;
        let change = FieldChange {
            field: "exit".into(),
            from: String::new(),
            to: exit_id.map_or_else(|| "left (no camera exit)".to_string(), str::to_string),
        };
        audit(&tx, id, user, now, "exit", &[change]).map_err(self.err(what))?;
        let rec = record_in(&tx, id)
            .map_err(self.err(what))?
            .ok_or_else(|| GateError::NotFound(format!("no gate record with id {id}")))?;
        tx.commit().map_err(self.err(what))?;
        Ok(rec)
    }

    /// A record and its audit trail (oldest change first).
    pub fn gate_record(
        &self,
        id: i64,
    ) -> Result<Option<(GateRecord, Vec<RecordChange>)>, StoreError> {
        let what = "reading a gate record";
        let conn = self.conn();
        let rec = conn
            .prepare_cached(&format!(
                "SELECT {RECORD_COLUMNS} FROM gate_records WHERE id = ?1"
            ))
            .and_then(|mut st| st.query_row([id], read_record).optional())
            .map_err(self.err(what))?;
        let Some(rec) = rec else {
            return Ok(None);
        };
        let mut st = conn
            .prepare_cached(
                "SELECT user, at_ms, action, changes FROM gate_record_changes \
                 WHERE record_id = ?1 ORDER BY id",
            )
            .map_err(self.err(what))?;
        let trail = st
            .query_map([id], |r| {
                let changes: String = r.get(3)?;
                Ok(RecordChange {
                    user: r.get(0)?,
                    at: from_ms(r.get(1)?),
                    action: r.get(2)?,
                    changes: serde_json::from_str(&changes).unwrap_or_default(),
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(self.err(what))?;
        Ok(Some((rec, trail)))
    }

    /// Records, newest entry first.
    pub fn gate_records(&self, f: &RecordFilter) -> Result<Vec<GateRecord>, StoreError> {
        let mut sql = format!("SELECT {RECORD_COLUMNS} FROM gate_records WHERE 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(n) = f.name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
            // LIKE without its wildcards from the search text: `%` and `_` match themselves
            let escaped = n
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            args.push(format!("%{escaped}%").into());
            sql.push_str(&format!(" AND name LIKE ?{} ESCAPE '\\'", args.len()));
        }
        if let Some(t) = f.from {
            args.push(to_ms(t).into());
            sql.push_str(&format!(" AND entered_ms >= ?{}", args.len()));
        }
        if let Some(t) = f.to {
            args.push(to_ms(t).into());
            sql.push_str(&format!(" AND entered_ms < ?{}", args.len()));
        }
        match f.inside {
            Some(true) => sql.push_str(" AND left_ms IS NULL"),
            Some(false) => sql.push_str(" AND left_ms IS NOT NULL"),
            None => {}
        }
        if let Some(k) = f.kind {
            args.push(k.as_str().to_string().into());
            sql.push_str(&format!(" AND kind = ?{}", args.len()));
        }
        args.push((f.limit.clamp(1, 5000) as i64).into());
        sql.push_str(&format!(
            " ORDER BY entered_ms DESC, id DESC LIMIT ?{}",
            args.len()
        ));
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(&sql)
            .map_err(self.err("listing gate records"))?;
        st.query_map(rusqlite::params_from_iter(args), read_record)
            .and_then(|rows| rows.collect())
            .map_err(self.err("listing gate records"))
    }

    /// Guests and newcomers recorded in and not out: `(guests, newcomers)`.
    pub fn gate_inside(&self) -> Result<(u64, u64), StoreError> {
        self.conn()
            .prepare_cached(
                "SELECT COALESCE(SUM(kind = 'guest'), 0), COALESCE(SUM(kind = 'newcomer'), 0) \
                 FROM gate_records WHERE left_ms IS NULL",
            )
            .and_then(|mut st| {
                st.query_row([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?.max(0) as u64,
                        r.get::<_, i64>(1)?.max(0) as u64,
                    ))
                })
            })
            .map_err(self.err("counting who is inside"))
    }

    /// Set how many people were inside at the start of counting day `day` (`YYYY-MM-DD`).
    pub fn set_gate_start(
        &self,
        day: &str,
        start: u64,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "INSERT INTO gate_start_occupancy (day, start, set_by, set_ms) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT(day) DO UPDATE SET start = ?2, \
                 set_by = ?3, set_ms = ?4",
            )
            .and_then(|mut st| {
                st.execute(params![
                    day,
                    start.min(i64::MAX as u64) as i64,
                    user,
                    to_ms(now)
                ])
            })
            .map_err(self.err("storing the starting occupancy"))?;
        Ok(())
    }

    /// The starting occupancy of counting day `day`, if an admin set one.
    pub fn gate_start(&self, day: &str) -> Result<Option<StartOccupancy>, StoreError> {
        self.conn()
            .prepare_cached("SELECT start, set_by, set_ms FROM gate_start_occupancy WHERE day = ?1")
            .and_then(|mut st| {
                st.query_row([day], |r| {
                    Ok(StartOccupancy {
                        start: r.get::<_, i64>(0)?.max(0) as u64,
                        set_by: r.get(1)?,
                        set_at: from_ms(r.get(2)?),
                    })
                })
                .optional()
            })
            .map_err(self.err("reading the starting occupancy"))
    }
}
