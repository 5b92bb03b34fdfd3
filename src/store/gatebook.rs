//! The gate book in the store (migration 6): the gate log (one entry per counted crossing of a
//! gate line, keyed by its `line_crossing` event, with the person's picture and mask verdict),
//! the guards' records of who came in (residents, guests, newcomers) with their audit trail, the
//! starting occupancy admins set, the daily reports (each made once: its row is the marker) and
//! when the gate book first ran.
//!
//! What a record may hold is checked by `gate` before it gets here; the store keeps the links
//! right: an entry belongs to at most one record, an exit likewise, a record's entry is an `in`
//! and its exit an `out`. Every change to a record writes a row of its audit trail in the same
//! transaction.
//!
//! Personal data: only the API's guard and admin routes read it; nothing here goes to MQTT.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, Transaction, params};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, from_ms, to_ms};
use crate::detect::MaskVerdict;
use crate::rules::Direction;

/// Who a record is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PersonKind {
    /// *Warga*: lives here (recorded at night so the entry is known).
    Resident,
    /// *Tamu*: visits someone and leaves again.
    Guest,
    /// *Warga pendatang*: comes to stay (rents, works here) and is recorded with their RT.
    Newcomer,
}

impl PersonKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PersonKind::Resident => "resident",
            PersonKind::Guest => "guest",
            PersonKind::Newcomer => "newcomer",
        }
    }

    pub fn parse(s: &str) -> Option<PersonKind> {
        match s {
            "resident" => Some(PersonKind::Resident),
            "guest" => Some(PersonKind::Guest),
            "newcomer" => Some(PersonKind::Newcomer),
            _ => None,
        }
    }

    /// Guests and newcomers are who "Di dalam" counts (residents are at home).
    pub fn counts_inside(self) -> bool {
        self != PersonKind::Resident
    }
}

/// A crossing to log (and as logged).
#[derive(Clone, Debug, PartialEq)]
pub struct NewGateEntry {
    /// The `line_crossing` event's id.
    pub id: String,
    pub camera: String,
    pub line: String,
    pub direction: Direction,
    pub track_id: Option<u64>,
    /// The event's time as written (site time with offset).
    pub time: String,
    pub at: DateTime<Utc>,
    pub mask: Option<(MaskVerdict, f32)>,
    /// Relative to `[store] clips_dir`.
    pub crop: Option<PathBuf>,
    pub night: bool,
}

/// A record an entry (or exit) belongs to, as the log shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct EntryRecord {
    pub id: i64,
    pub kind: PersonKind,
    pub name: String,
    /// This entry is the record's exit (not its entry).
    pub exit: bool,
}

/// One entry of the gate log: the crossing as logged (its fields read through), the alert raised
/// for it and the record it belongs to.
#[derive(Clone, Debug, PartialEq)]
pub struct GateEntry {
    pub logged: NewGateEntry,
    /// The `unrecorded_entry` event raised for it.
    pub alert_id: Option<String>,
    pub record: Option<EntryRecord>,
}

impl std::ops::Deref for GateEntry {
    type Target = NewGateEntry;

    fn deref(&self) -> &NewGateEntry {
        &self.logged
    }
}

/// Which entries to list (newest first).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EntryFilter {
    /// `[from, to)` in UTC.
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub direction: Option<Direction>,
    /// Only entries no record is linked to.
    pub unrecorded: bool,
    /// Only the entry this `unrecorded_entry` event was raised for.
    pub alert_id: Option<String>,
    /// Entries strictly older than this `(time_ms, id)` (the page cursor).
    pub before: Option<(i64, String)>,
    pub limit: usize,
}

/// What a guard writes into a record (checked by `gate::RecordForm`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordFields {
    pub kind: Option<PersonKind>,
    pub name: String,
    /// Where from.
    pub origin: String,
    /// Whom they visit, or where they stay.
    pub visiting: String,
    pub purpose: String,
    pub phone: String,
    /// Newcomers: how long they expect to stay.
    pub stay: String,
    /// Newcomers: the RT they stay in.
    pub rt: String,
}

impl RecordFields {
    /// The fields by name, in form order (the audit trail's names).
    fn pairs(&self) -> [(&'static str, String); 8] {
        [
            ("kind", self.kind.map_or("", PersonKind::as_str).to_string()),
            ("name", self.name.clone()),
            ("origin", self.origin.clone()),
            ("visiting", self.visiting.clone()),
            ("purpose", self.purpose.clone()),
            ("phone", self.phone.clone()),
            ("stay", self.stay.clone()),
            ("rt", self.rt.clone()),
        ]
    }
}

/// A record of the book.
#[derive(Clone, Debug, PartialEq)]
pub struct GateRecord {
    pub id: i64,
    pub kind: PersonKind,
    pub fields: RecordFields,
    pub entry_id: Option<String>,
    pub exit_id: Option<String>,
    pub entered_at: DateTime<Utc>,
    pub left_at: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_by: String,
    pub updated_at: DateTime<Utc>,
}

impl GateRecord {
    pub fn inside(&self) -> bool {
        self.left_at.is_none()
    }
}

/// One change of a record: who, when, what (`created`, `edited`, `exit`), and the fields that
/// changed from what to what.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordChange {
    pub user: String,
    #[serde(skip)]
    pub at: DateTime<Utc>,
    pub action: String,
    pub changes: Vec<FieldChange>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub from: String,
    pub to: String,
}

/// Which records to list (newest entry first).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecordFilter {
    /// Part of the name (any case).
    pub name: Option<String>,
    /// Entered in `[from, to)`.
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// `Some(true)`: still inside; `Some(false)`: left.
    pub inside: Option<bool>,
    pub kind: Option<PersonKind>,
    pub limit: usize,
}

/// Why a record could not be written.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409: the entry or exit is taken, or the record already has an exit.
    #[error("{0}")]
    Conflict(String),
    /// 400.
    #[error("{0}")]
    Bad(String),
}

/// A daily report as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredReport {
    /// The day it is about (site date of its start), `YYYY-MM-DD`.
    pub day: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub made_at: DateTime<Utc>,
    pub json: String,
    pub text: String,
    pub sent_at: Option<DateTime<Utc>>,
    pub send_note: Option<String>,
}

/// How many people were inside at the start of a counting day.
#[derive(Clone, Debug, PartialEq)]
pub struct StartOccupancy {
    pub start: u64,
    pub set_by: String,
    pub set_at: DateTime<Utc>,
}

/// What the gate book's retention removed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GateRemoved {
    pub entries: usize,
    /// The pictures of the deleted entries (relative to `[store] clips_dir`), to delete.
    pub crops: Vec<PathBuf>,
    pub records: usize,
    pub reports: usize,
}

const ENTRY_COLUMNS: &str = "e.id, e.camera, e.line, e.direction, e.track_id, e.time, e.time_ms, \
     e.mask, e.mask_score, e.crop_path, e.night, e.alert_id, \
     r.id, r.kind, r.name, r.exit_id = e.id";

/// The entries with the record each belongs to (as its entry or its exit).
const ENTRY_FROM: &str = "FROM gate_entries e \
     LEFT JOIN gate_records r ON r.entry_id = e.id OR r.exit_id = e.id";

const RECORD_COLUMNS: &str = "id, kind, name, origin, visiting, purpose, phone, stay, rt, \
     entry_id, exit_id, entered_ms, left_ms, created_by, created_ms, updated_by, updated_ms";

fn dir_text(d: Direction) -> &'static str {
    match d {
        Direction::In => "in",
        Direction::Out => "out",
    }
}

fn read_entry(r: &Row<'_>) -> rusqlite::Result<GateEntry> {
    let direction: String = r.get(3)?;
    let mask: Option<String> = r.get(7)?;
    let mask_score: Option<f64> = r.get(8)?;
    let record_id: Option<i64> = r.get(12)?;
    let record = match record_id {
        Some(id) => {
            let kind: String = r.get(13)?;
            Some(EntryRecord {
                id,
                kind: PersonKind::parse(&kind).unwrap_or(PersonKind::Guest),
                name: r.get(14)?,
                exit: r.get::<_, Option<bool>>(15)?.unwrap_or(false),
            })
        }
        None => None,
    };
    Ok(GateEntry {
        logged: NewGateEntry {
            id: r.get(0)?,
            camera: r.get(1)?,
            line: r.get(2)?,
            direction: if direction == "out" {
                Direction::Out
            } else {
                Direction::In
            },
            track_id: r.get::<_, Option<i64>>(4)?.map(|t| t.max(0) as u64),
            time: r.get(5)?,
            at: from_ms(r.get(6)?),
            mask: match mask.as_deref() {
                Some("mask") => Some((MaskVerdict::Mask, mask_score.unwrap_or(0.0) as f32)),
                Some("no_mask") => Some((MaskVerdict::NoMask, mask_score.unwrap_or(0.0) as f32)),
                _ => None,
            },
            crop: r.get::<_, Option<String>>(9)?.map(PathBuf::from),
            night: r.get(10)?,
        },
        alert_id: r.get(11)?,
        record,
    })
}

fn read_record(r: &Row<'_>) -> rusqlite::Result<GateRecord> {
    let kind: String = r.get(1)?;
    let kind = PersonKind::parse(&kind).unwrap_or(PersonKind::Guest);
    Ok(GateRecord {
        id: r.get(0)?,
        kind,
        fields: RecordFields {
            kind: Some(kind),
            name: r.get(2)?,
            origin: r.get(3)?,
            visiting: r.get(4)?,
            purpose: r.get(5)?,
            phone: r.get(6)?,
            stay: r.get(7)?,
            rt: r.get(8)?,
        },
        entry_id: r.get(9)?,
        exit_id: r.get(10)?,
        entered_at: from_ms(r.get(11)?),
        left_at: r.get::<_, Option<i64>>(12)?.map(from_ms),
        created_by: r.get(13)?,
        created_at: from_ms(r.get(14)?),
        updated_by: r.get(15)?,
        updated_at: from_ms(r.get(16)?),
    })
}

fn record_in(tx: &Transaction<'_>, id: i64) -> rusqlite::Result<Option<GateRecord>> {
    tx.prepare_cached(&format!(
        "SELECT {RECORD_COLUMNS} FROM gate_records WHERE id = ?1"
    ))?
    .query_row([id], read_record)
    .optional()
}

fn entry_in(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<Option<GateEntry>> {
    tx.prepare_cached(&format!(
        "SELECT {ENTRY_COLUMNS} {ENTRY_FROM} WHERE e.id = ?1"
    ))?
    .query_row([id], read_entry)
    .optional()
}

fn audit(
    tx: &Transaction<'_>,
    record: i64,
    user: &str,
    at: DateTime<Utc>,
    action: &str,
    changes: &[FieldChange],
) -> rusqlite::Result<()> {
    let json = serde_json::to_string(changes).unwrap_or_else(|_| "[]".into());
    tx.prepare_cached(
        "INSERT INTO gate_record_changes (record_id, user, at_ms, action, changes) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![record, user, to_ms(at), action, json])?;
    Ok(())
}

/// The changes from `old` to `new`, field by field.
fn diff(old: &RecordFields, new: &RecordFields) -> Vec<FieldChange> {
    old.pairs()
        .into_iter()
        .zip(new.pairs())
        .filter(|((_, a), (_, b))| a != b)
        .map(|((field, from), (_, to))| FieldChange {
            field: field.to_string(),
            from,
            to,
        })
        .collect()
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("ronda.db")).unwrap();
        (dir, s)
    }

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-22T14:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn entry(id: &str, d: Direction, at: DateTime<Utc>, night: bool) -> NewGateEntry {
        NewGateEntry {
            id: id.into(),
            camera: "gate-1".into(),
            line: "gapura".into(),
            direction: d,
            track_id: Some(7),
            time: at.to_rfc3339(),
            at,
            mask: Some((MaskVerdict::Mask, 0.91)),
            crop: Some(PathBuf::from(format!("gatebook.crops/2026-11-22/{id}.jpg"))),
            night,
        }
    }

    fn guest(name: &str) -> RecordFields {
        RecordFields {
            kind: Some(PersonKind::Guest),
            name: name.into(),
            origin: "Malang".into(),
            visiting: "Pak RT".into(),
            purpose: "arisan".into(),
            phone: "081234567890".into(),
            ..RecordFields::default()
        }
    }

    #[test]
    fn entries_are_logged_once_and_listed_newest_first_with_their_record() {
        let (_d, s) = store();
        assert!(
            s.log_gate_entry(&entry("a", Direction::In, t0(), false))
                .unwrap()
        );
        assert!(
            !s.log_gate_entry(&entry("a", Direction::In, t0(), false))
                .unwrap()
        );
        s.log_gate_entry(&entry(
            "b",
            Direction::Out,
            t0() + Duration::minutes(5),
            false,
        ))
        .unwrap();
        let all = s
            .gate_entries(&EntryFilter {
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            all.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["b", "a"]
        );
        assert_eq!(all[1].mask, Some((MaskVerdict::Mask, 0.91)));
        assert_eq!(all[1].direction, Direction::In);
        let rec = s
            .create_gate_record(&guest("Siti Aminah"), Some("a"), "pos1", t0())
            .unwrap();
        assert_eq!(rec.entered_at, t0());
        let a = s.gate_entry("a").unwrap().unwrap();
        assert_eq!(
            a.record,
            Some(EntryRecord {
                id: rec.id,
                kind: PersonKind::Guest,
                name: "Siti Aminah".into(),
                exit: false
            })
        );
        let open = s
            .gate_entries(&EntryFilter {
                unrecorded: true,
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].id, "b");
        // paging: entries before "b"
        let page = s
            .gate_entries(&EntryFilter {
                before: Some((to_ms(all[0].at), "b".into())),
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].id, "a");
    }

    #[test]
    fn records_link_one_entry_and_one_exit_with_an_audit_trail() {
        let (_d, s) = store();
        s.log_gate_entry(&entry("in1", Direction::In, t0(), false))
            .unwrap();
        s.log_gate_entry(&entry(
            "out1",
            Direction::Out,
            t0() + Duration::hours(1),
            false,
        ))
        .unwrap();
        s.log_gate_entry(&entry(
            "out0",
            Direction::Out,
            t0() - Duration::hours(1),
            false,
        ))
        .unwrap();
        let r = s
            .create_gate_record(&guest("Budi"), Some("in1"), "pos1", t0())
            .unwrap();
        assert_eq!(s.gate_inside().unwrap(), (1, 0));
        // the same entry twice, an exit as an entry, an unknown entry
        assert!(matches!(
            s.create_gate_record(&guest("X"), Some("in1"), "pos1", t0()),
            Err(GateError::Conflict(_))
        ));
        assert!(matches!(
            s.create_gate_record(&guest("X"), Some("out1"), "pos1", t0()),
            Err(GateError::Bad(_))
        ));
        assert!(matches!(
            s.create_gate_record(&guest("X"), Some("nope"), "pos1", t0()),
            Err(GateError::NotFound(_))
        ));
        // edit: only what changed goes into the trail
        let mut f = r.fields.clone();
        f.phone = "0899".into();
        f.kind = Some(PersonKind::Newcomer);
        f.rt = "03".into();
        let r2 = s
            .update_gate_record(r.id, &f, "pak-rw", t0() + Duration::minutes(1))
            .unwrap();
        assert_eq!(
            (r2.kind, r2.updated_by.as_str()),
            (PersonKind::Newcomer, "pak-rw")
        );
        assert_eq!(s.gate_inside().unwrap(), (0, 1));
        // an exit before the entry is refused; the right one closes the record
        assert!(matches!(
            s.link_gate_exit(r.id, Some("out0"), "pos1", t0()),
            Err(GateError::Bad(_))
        ));
        let r3 = s
            .link_gate_exit(r.id, Some("out1"), "pos1", t0() + Duration::hours(2))
            .unwrap();
        assert_eq!(r3.left_at, Some(t0() + Duration::hours(1)));
        assert!(!r3.inside());
        assert_eq!(s.gate_inside().unwrap(), (0, 0));
        assert!(matches!(
            s.link_gate_exit(r.id, None, "pos1", t0()),
            Err(GateError::Conflict(_))
        ));
        assert!(s.gate_entry("out1").unwrap().unwrap().record.unwrap().exit);
        let (_, trail) = s.gate_record(r.id).unwrap().unwrap();
        let actions: Vec<&str> = trail.iter().map(|c| c.action.as_str()).collect();
        assert_eq!(actions, ["created", "edited", "exit"]);
        assert_eq!(trail[1].user, "pak-rw");
        let fields: Vec<&str> = trail[1].changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["kind", "phone", "rt"]);
        assert_eq!(trail[1].changes[1].from, "081234567890");
        assert_eq!(trail[1].changes[1].to, "0899");
        assert_eq!(trail[2].changes[0].to, "out1");
        // an edit that changes nothing writes nothing
        s.update_gate_record(r.id, &r3.fields, "pos1", t0())
            .unwrap();
        assert_eq!(s.gate_record(r.id).unwrap().unwrap().1.len(), 3);
    }

    #[test]
    fn records_are_found_by_name_date_and_status() {
        let (_d, s) = store();
        let a = s
            .create_gate_record(&guest("Siti Aminah"), None, "pos1", t0())
            .unwrap();
        s.create_gate_record(&guest("Budi 50%"), None, "pos1", t0() + Duration::days(1))
            .unwrap();
        s.link_gate_exit(a.id, None, "pos1", t0() + Duration::hours(3))
            .unwrap();
        let find = |f: RecordFilter| -> Vec<String> {
            s.gate_records(&RecordFilter { limit: 50, ..f })
                .unwrap()
                .into_iter()
                .map(|r| r.fields.name)
                .collect()
        };
        assert_eq!(find(RecordFilter::default()), ["Budi 50%", "Siti Aminah"]);
        assert_eq!(
            find(RecordFilter {
                name: Some("aMiN".into()),
                ..Default::default()
            }),
            ["Siti Aminah"]
        );
        assert_eq!(
            find(RecordFilter {
                name: Some("%".into()),
                ..Default::default()
            }),
            ["Budi 50%"],
            "% is a character, not a wildcard"
        );
        assert_eq!(
            find(RecordFilter {
                from: Some(t0() - Duration::hours(1)),
                to: Some(t0() + Duration::hours(1)),
                ..Default::default()
            }),
            ["Siti Aminah"]
        );
        assert_eq!(
            find(RecordFilter {
                inside: Some(true),
                ..Default::default()
            }),
            ["Budi 50%"]
        );
        assert_eq!(
            find(RecordFilter {
                inside: Some(false),
                kind: Some(PersonKind::Guest),
                ..Default::default()
            }),
            ["Siti Aminah"]
        );
    }

    #[test]
    fn unrecorded_night_entries_are_found_once_and_never_after_a_record() {
        let (_d, s) = store();
        s.log_gate_entry(&entry("n1", Direction::In, t0(), true))
            .unwrap();
        s.log_gate_entry(&entry("n2", Direction::In, t0(), true))
            .unwrap();
        s.log_gate_entry(&entry("day", Direction::In, t0(), false))
            .unwrap();
        s.log_gate_entry(&entry("nout", Direction::Out, t0(), true))
            .unwrap();
        let later = t0() + Duration::minutes(11);
        let due = |now| {
            s.gate_unrecorded_due(now, t0() - Duration::hours(12))
                .unwrap()
                .into_iter()
                .map(|e| e.logged.id)
                .collect::<Vec<_>>()
        };
        assert!(due(t0() - Duration::seconds(1)).is_empty());
        assert_eq!(due(later), ["n1", "n2"]);
        s.create_gate_record(&guest("Budi"), Some("n2"), "pos1", later)
            .unwrap();
        assert_eq!(due(later), ["n1"]);
        assert!(!s.mark_gate_unrecorded("n2", "ev2").unwrap(), "recorded");
        assert!(s.mark_gate_unrecorded("n1", "ev1").unwrap());
        assert!(!s.mark_gate_unrecorded("n1", "ev1b").unwrap(), "once");
        assert!(due(later).is_empty());
        let by_alert = s
            .gate_entries(&EntryFilter {
                alert_id: Some("ev1".into()),
                limit: 5,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(by_alert[0].id, "n1");
        // too old to be worth an alert
        assert!(
            s.gate_unrecorded_due(later, t0()).unwrap().is_empty(),
            "not_before is exclusive"
        );
    }

    #[test]
    fn reports_are_stored_once_and_old_rows_go() {
        let (_d, s) = store();
        let rep = StoredReport {
            day: "2026-11-22".into(),
            from: t0(),
            to: t0() + Duration::days(1),
            made_at: t0() + Duration::days(1),
            json: "{}".into(),
            text: "Laporan".into(),
            sent_at: None,
            send_note: None,
        };
        assert!(s.save_gate_report(&rep).unwrap());
        assert!(!s.save_gate_report(&rep).unwrap());
        assert_eq!(s.gate_reports_unsent().unwrap().len(), 1);
        s.mark_gate_report("2026-11-22", Some(t0()), None).unwrap();
        assert!(s.gate_reports_unsent().unwrap().is_empty());
        assert_eq!(
            s.gate_report("2026-11-22").unwrap().unwrap().sent_at,
            Some(t0())
        );
        // first start is kept
        assert_eq!(s.gate_first_start(t0()).unwrap(), t0());
        assert_eq!(s.gate_first_start(t0() + Duration::days(3)).unwrap(), t0());
        // retention
        s.log_gate_entry(&entry("old", Direction::In, t0(), false))
            .unwrap();
        s.log_gate_entry(&entry(
            "new",
            Direction::In,
            t0() + Duration::days(40),
            false,
        ))
        .unwrap();
        let old = s
            .create_gate_record(&guest("Lama"), Some("old"), "pos1", t0())
            .unwrap();
        let kept = s
            .create_gate_record(
                &guest("Baru"),
                Some("new"),
                "pos1",
                t0() + Duration::days(40),
            )
            .unwrap();
        s.set_gate_start("2026-11-22", 40, "pak-rw", t0()).unwrap();
        let gone = s.delete_old_gate(t0() + Duration::days(30)).unwrap();
        assert_eq!((gone.entries, gone.records, gone.reports), (1, 1, 1));
        assert_eq!(
            gone.crops,
            [PathBuf::from("gatebook.crops/2026-11-22/old.jpg")]
        );
        assert!(s.gate_record(old.id).unwrap().is_none());
        assert!(s.gate_record(kept.id).unwrap().is_some());
        assert!(s.gate_entry("old").unwrap().is_none());
        assert!(s.gate_start("2026-11-22").unwrap().is_none());
    }
}
