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
//!
//! Uses (of the crate, besides its own folder): events, rules.
//!
//! Here the types and the row readers; the statements by what they keep: `entries.rs` (the gate
//! log), `records.rs` (the records, who is inside, the starting occupancy), `reports.rs` (the
//! daily reports, the day's events, retention).

mod entries;
mod records;
mod reports;

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, Transaction, params};
use serde::{Deserialize, Serialize};

use super::{StoreError, from_ms, to_ms};
use crate::events::MaskVerdict;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
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
