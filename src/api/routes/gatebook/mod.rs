//! The gate book's API (issue 15): the gate log, the guest book's records, who is inside, the
//! daily reports. Guards and admins only (reviewers see incidents, not the guest book); setting
//! the day's starting occupancy is for admins.
//!
//! | route | answer |
//! |---|---|
//! | `GET /api/gate/entries?date&direction&unrecorded&alert&limit&cursor` | `{"items": [entry], "next": cursor \| null}`, newest first; `date` a site date (default today) |
//! | `GET /api/gate/entries/{id}` | entry |
//! | `GET /api/gate/entries/{id}/crop.jpg` | the person at the crossing |
//! | `GET /api/gate/records?q&date&status&kind&limit` | `[record]`, phone numbers masked |
//! | `POST /api/gate/records` | `{entry_id, kind, name, origin, visiting, purpose, phone, stay, rt}` -> 201 record |
//! | `GET /api/gate/records/{id}` | record with the whole phone number and its `changes` (the audit trail) |
//! | `PUT /api/gate/records/{id}` | the same fields -> record; what changed goes into the trail |
//! | `POST /api/gate/records/{id}/exit` | `{"entry_id": "<an out>"}` or `{}` (left unseen) -> record |
//! | `GET /api/gate/inside` | `{guests, newcomers, inside, in, out, day, start, estimate}` |
//! | `PUT /api/gate/occupancy` (admin) | `{"start": 40}`: people inside at the start of today's count |
//! | `GET /api/gate/reports` | `{reports: [{day, from, to, made_at, sent_at, send_note}], now, next}` |
//! | `GET /api/gate/reports/{day}` | the day's report (stored; a day not reported yet is made now, `draft: true`) |
//! | `GET /api/gate/reports/{day}/report.csv` | the same as CSV |
//! | `GET /api/gate/export/records.csv?...` | records (filters as the list; whole phone numbers for admins only) |
//! | `GET /api/gate/export/entries.csv?date` | the day's log |
//!
//! An entry: `{id, camera, camera_name, line, direction, time, track_id, mask, mask_score,
//! crop, night, alert_id, record: {id, kind, name, exit} | null}`. A record: `{id, kind, name,
//! origin, visiting, purpose, phone, stay, rt, entry_id, exit_id, entered, left, status:
//! "inside" | "left", crop, created_by, created, updated_by, updated}`. A form that does not
//! pass answers 400 with `{"error", "fields": {"name": "..."}}`.
//!
//! Uses (of the crate, besides its own folder): config, gate, rules, store.
//!
//! Here what the routes share (the store on the blocking pool, paths and days, the JSON of an
//! entry and a record); the routes by what they serve: `log.rs` (the gate log and its
//! pictures), `records.rs` (the guest book), `inside.rs` (who is inside, the starting
//! occupancy), `reports.rs` (the daily reports), `export.rs` (the CSV exports).

mod export;
mod inside;
mod log;
mod records;
mod reports;

use axum::Json;
use axum::extract::Path;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde_json::{Value, json};

use super::incidents::store_failure;
use super::{Failure, Shared};
use crate::gate::mask_phone;
use crate::gate::report;
use crate::store::{GateEntry, GateError, GateRecord, PersonKind, RecordChange, Store};

pub(super) use export::{entries_csv, records_csv};
pub(super) use inside::{inside, set_occupancy};
pub(super) use log::{crop, entries, entry};
pub(super) use records::{create_record, exit, record, records, update_record};
pub(super) use reports::{report, report_csv, reports};

/// Entries on a page unless asked otherwise, and at most.
const PAGE: usize = 100;
const MAX_PAGE: usize = 500;

/// Run `f` with the store on the blocking pool; 503 without one.
async fn with_store<T: Send + 'static>(
    st: &Shared,
    f: impl FnOnce(&Store) -> T + Send + 'static,
) -> Result<T, Failure> {
    st.ask(move |v| v.store().map(|s| f(&s)))
        .await?
        .ok_or_else(|| {
            Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "this server keeps no store, so there is no gate book; run ronda with a [store]",
            )
        })
}

fn gate_error(e: GateError) -> Failure {
    match e {
        GateError::NotFound(m) => Failure::not_found(m),
        GateError::Conflict(m) => Failure::new(StatusCode::CONFLICT, m),
        GateError::Bad(m) => Failure::bad_request(m),
        GateError::Store(e) => store_failure("the gate book", e),
    }
}

/// Entry ids are event ids: digits and hex.
fn checked_entry_id(id: &str) -> Result<(), Failure> {
    let plain = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric());
    if plain {
        Ok(())
    } else {
        Err(Failure::bad_request(
            "not a gate entry id (letters and digits, at most 64)",
        ))
    }
}

fn path_text(p: Result<Path<String>, PathRejection>) -> Result<String, Failure> {
    p.map(|Path(s)| s)
        .map_err(|e| Failure::bad_request(e.body_text()))
}

fn record_id(p: Result<Path<String>, PathRejection>) -> Result<i64, Failure> {
    let s = path_text(p)?;
    s.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Failure::bad_request(format!("`{s}` is not a record number")))
}

/// `[start, end)` of site date `day`.
fn day_range(st: &Shared, day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    report::period_of(day, NaiveTime::MIN, st.config.site.timezone)
}

fn parse_day(s: &str) -> Result<NaiveDate, Failure> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
        Failure::bad_request(format!(
            "`{s}` is not a date; write YYYY-MM-DD, e.g. 2026-11-22"
        ))
    })
}

fn today(st: &Shared) -> NaiveDate {
    Utc::now()
        .with_timezone(&st.config.site.timezone)
        .date_naive()
}

fn kind_of(s: &str) -> Result<PersonKind, Failure> {
    PersonKind::parse(s.trim()).ok_or_else(|| {
        Failure::bad_request(format!(
            "`{s}` is not a kind of person; use resident, guest or newcomer"
        ))
    })
}

fn crop_url(id: &str) -> String {
    format!("/api/gate/entries/{id}/crop.jpg")
}

async fn camera_names(st: &Shared) -> Result<Vec<(String, String)>, Failure> {
    let cams = st.ask(|v| v.cameras()).await?;
    Ok(cams.into_iter().map(|c| (c.id, c.name)).collect())
}

fn name_of(names: &[(String, String)], id: &str) -> String {
    names
        .iter()
        .find(|(c, _)| c == id)
        .map(|(_, n)| n.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| id.to_string())
}

fn entry_json(st: &Shared, names: &[(String, String)], e: &GateEntry) -> Value {
    json!({
        "id": e.id,
        "camera": e.camera,
        "camera_name": name_of(names, &e.camera),
        "line": e.line,
        "direction": e.direction,
        "time": st.local(e.at),
        "track_id": e.track_id,
        "mask": e.mask.map(|(v, _)| v),
        "mask_score": e.mask.map(|(_, s)| (f64::from(s) * 100.0).round() / 100.0),
        "crop": e.crop.as_ref().map(|_| crop_url(&e.id)),
        "night": e.night,
        "alert_id": e.alert_id,
        "record": e.record.as_ref().map(|r| json!({
            "id": r.id, "kind": r.kind, "name": r.name, "exit": r.exit,
        })),
    })
}

/// A record; `whole_phone` only where one record is shown (lists mask it).
fn record_json(st: &Shared, r: &GateRecord, whole_phone: bool) -> Value {
    let f = &r.fields;
    json!({
        "id": r.id,
        "kind": r.kind,
        "name": f.name,
        "origin": f.origin,
        "visiting": f.visiting,
        "purpose": f.purpose,
        "phone": if whole_phone { f.phone.clone() } else { mask_phone(&f.phone) },
        "stay": f.stay,
        "rt": f.rt,
        "entry_id": r.entry_id,
        "exit_id": r.exit_id,
        "entered": st.local(r.entered_at),
        "left": r.left_at.map(|t| st.local(t)),
        "status": if r.inside() { "inside" } else { "left" },
        "crop": r.entry_id.as_ref().map(|id| crop_url(id)),
        "created_by": r.created_by,
        "created": st.local(r.created_at),
        "updated_by": r.updated_by,
        "updated": st.local(r.updated_at),
    })
}

fn changes_json(st: &Shared, trail: &[RecordChange]) -> Value {
    trail
        .iter()
        .map(|c| {
            json!({
                "user": c.user,
                "at": st.local(c.at),
                "action": c.action,
                "changes": c.changes,
            })
        })
        .collect()
}

fn json_body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, Failure> {
    b.map(|Json(v)| v).map_err(|e| {
        Failure::bad_request(format!(
            "{}; send JSON like {{\"kind\": \"guest\", \"name\": \"Siti Aminah\", \"origin\": \
             \"Malang\", \"visiting\": \"Pak RT 03\", \"purpose\": \"arisan\", \"phone\": \
             \"081234567890\"}}",
            e.body_text()
        ))
    })
}
