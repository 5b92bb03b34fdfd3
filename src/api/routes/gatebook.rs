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

use std::path::{Component, Path as FsPath};

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::incidents::store_failure;
use super::{Failure, Me, Shared};
use crate::config::Role;
use crate::gate::report::{self, DailyReport, ReportSite};
use crate::gate::{CROPS_DIR, check_record, mask_phone};
use crate::rules::Direction;
use crate::store::{
    EntryFilter, GateEntry, GateError, GateRecord, PersonKind, RecordChange, RecordFields,
    RecordFilter, Store,
};

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

// ----------------------------------------------------------------------------- the log

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct EntriesQuery {
    date: Option<String>,
    direction: Option<String>,
    unrecorded: Option<bool>,
    alert: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

fn entry_filter(st: &Shared, q: &EntriesQuery) -> Result<EntryFilter, Failure> {
    let mut f = EntryFilter {
        limit: q.limit.unwrap_or(PAGE),
        unrecorded: q.unrecorded.unwrap_or(false),
        ..EntryFilter::default()
    };
    if f.limit == 0 || f.limit > MAX_PAGE {
        return Err(Failure::bad_request(format!(
            "limit must be 1 to {MAX_PAGE}, got {}",
            f.limit
        )));
    }
    match &q.alert {
        Some(a) => {
            checked_entry_id(a)?;
            f.alert_id = Some(a.clone());
        }
        None => {
            let day = match &q.date {
                Some(d) => parse_day(d)?,
                None => today(st),
            };
            let (from, to) = day_range(st, day);
            (f.from, f.to) = (Some(from), Some(to));
        }
    }
    f.direction = match q.direction.as_deref() {
        None | Some("") => None,
        Some("in") => Some(Direction::In),
        Some("out") => Some(Direction::Out),
        Some(other) => {
            return Err(Failure::bad_request(format!(
                "direction `{other}`: use in or out"
            )));
        }
    };
    if let Some(c) = &q.cursor {
        let parsed = c
            .split_once('_')
            .and_then(|(ms, id)| Some((ms.parse::<i64>().ok()?, id.to_string())))
            .filter(|(_, id)| checked_entry_id(id).is_ok());
        f.before = Some(parsed.ok_or_else(|| {
            Failure::bad_request("cursor: pass the `next` of the page before, as it came")
        })?);
    }
    Ok(f)
}

/// `GET /api/gate/entries`.
pub(super) async fn entries(
    State(st): State<Shared>,
    q: Result<Query<EntriesQuery>, QueryRejection>,
) -> Result<Response, Failure> {
    let Query(q) = q.map_err(|e| {
        Failure::bad_request(format!(
            "{}; the parameters are date, direction, unrecorded, alert, limit and cursor",
            e.body_text()
        ))
    })?;
    let f = entry_filter(&st, &q)?;
    let limit = f.limit;
    let names = camera_names(&st).await?;
    let list = with_store(&st, move |s| s.gate_entries(&f))
        .await?
        .map_err(|e| store_failure("listing the gate log", e))?;
    let next = (list.len() == limit)
        .then(|| {
            list.last()
                .map(|e| format!("{}_{}", e.at.timestamp_millis(), e.id))
        })
        .flatten();
    let items: Vec<Value> = list.iter().map(|e| entry_json(&st, &names, e)).collect();
    Ok(Json(json!({"items": items, "next": next})).into_response())
}

async fn find_entry(st: &Shared, id: String) -> Result<GateEntry, Failure> {
    checked_entry_id(&id)?;
    let key = id.clone();
    with_store(st, move |s| s.gate_entry(&key))
        .await?
        .map_err(|e| store_failure("reading a gate entry", e))?
        .ok_or_else(|| Failure::not_found(format!("no gate entry with id {id}")))
}

/// `GET /api/gate/entries/{id}`.
pub(super) async fn entry(
    State(st): State<Shared>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, Failure> {
    let e = find_entry(&st, path_text(id)?).await?;
    let names = camera_names(&st).await?;
    Ok(Json(entry_json(&st, &names, &e)).into_response())
}

/// `GET /api/gate/entries/{id}/crop.jpg`.
pub(super) async fn crop(
    State(st): State<Shared>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, Failure> {
    let e = find_entry(&st, path_text(id)?).await?;
    let rel = e.logged.crop.clone().ok_or_else(|| {
        Failure::not_found(format!(
            "gate entry {} has no picture (none could be written, or retention removed it)",
            e.id
        ))
    })?;
    let plain =
        rel.components().all(|c| matches!(c, Component::Normal(_))) && rel.starts_with(CROPS_DIR);
    if !plain {
        tracing::error!(path = %rel.display(), "a gate picture path outside {CROPS_DIR}; refused");
        return Err(Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the stored path of this picture is not in the gate book's directory; not served",
        ));
    }
    let path = st.config.clips_dir.join(FsPath::new(&rel));
    let bytes = tokio::fs::read(&path).await.map_err(|err| {
        if err.kind() == std::io::ErrorKind::NotFound {
            Failure::not_found("the picture is in the log but not on disk (removed by hand?)")
        } else {
            tracing::error!(path = %path.display(), "cannot read a gate picture: {err}");
            Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot read the picture: {err}"),
            )
        }
    })?;
    Ok((
        [(CONTENT_TYPE, HeaderValue::from_static("image/jpeg"))],
        bytes,
    )
        .into_response())
}

// ---------------------------------------------------------------------------- records

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RecordsQuery {
    q: Option<String>,
    date: Option<String>,
    status: Option<String>,
    kind: Option<String>,
    limit: Option<usize>,
}

fn record_filter(st: &Shared, q: &RecordsQuery, max: usize) -> Result<RecordFilter, Failure> {
    let mut f = RecordFilter {
        name: q.q.clone().filter(|s| !s.trim().is_empty()),
        limit: q.limit.unwrap_or(PAGE),
        ..RecordFilter::default()
    };
    if f.limit == 0 || f.limit > max {
        return Err(Failure::bad_request(format!(
            "limit must be 1 to {max}, got {}",
            f.limit
        )));
    }
    if f.name.as_ref().is_some_and(|n| n.chars().count() > 100) {
        return Err(Failure::bad_request("q: search for at most 100 characters"));
    }
    if let Some(d) = q.date.as_deref().filter(|d| !d.is_empty()) {
        let (from, to) = day_range(st, parse_day(d)?);
        (f.from, f.to) = (Some(from), Some(to));
    }
    f.inside = match q.status.as_deref() {
        None | Some("") => None,
        Some("inside") => Some(true),
        Some("left") => Some(false),
        Some(other) => {
            return Err(Failure::bad_request(format!(
                "status `{other}`: use inside or left"
            )));
        }
    };
    f.kind = match q.kind.as_deref() {
        None | Some("") => None,
        Some(k) => Some(kind_of(k)?),
    };
    Ok(f)
}

/// `GET /api/gate/records`: phone numbers masked.
pub(super) async fn records(
    State(st): State<Shared>,
    q: Result<Query<RecordsQuery>, QueryRejection>,
) -> Result<Response, Failure> {
    let Query(q) = q.map_err(|e| {
        Failure::bad_request(format!(
            "{}; the parameters are q, date, status, kind and limit",
            e.body_text()
        ))
    })?;
    let f = record_filter(&st, &q, MAX_PAGE)?;
    let list = with_store(&st, move |s| s.gate_records(&f))
        .await?
        .map_err(|e| store_failure("searching the gate book", e))?;
    let items: Vec<Value> = list.iter().map(|r| record_json(&st, r, false)).collect();
    Ok(Json(items).into_response())
}

/// The form of a record.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RecordBody {
    entry_id: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    origin: String,
    #[serde(default)]
    visiting: String,
    #[serde(default)]
    purpose: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    stay: String,
    #[serde(default)]
    rt: String,
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

/// The checked fields, or 400 with each problem by field.
fn checked_fields(b: &RecordBody) -> Result<RecordFields, Failure> {
    let kind = match b.kind.as_deref() {
        None | Some("") => None,
        Some(k) => Some(kind_of(k)?),
    };
    let fields = RecordFields {
        kind,
        name: b.name.clone(),
        origin: b.origin.clone(),
        visiting: b.visiting.clone(),
        purpose: b.purpose.clone(),
        phone: b.phone.clone(),
        stay: b.stay.clone(),
        rt: b.rt.clone(),
    };
    check_record(&fields).map_err(|problems| {
        let first = problems
            .first()
            .map(|(k, m)| format!("{k}: {m}"))
            .unwrap_or_default();
        let fields: serde_json::Map<String, Value> = problems
            .into_iter()
            .map(|(k, m)| (k.to_string(), Value::String(m)))
            .collect();
        Failure {
            fields: Some(Value::Object(fields)),
            ..Failure::bad_request(first)
        }
    })
}

/// `POST /api/gate/records`: 201 with the record.
pub(super) async fn create_record(
    State(st): State<Shared>,
    me: Me,
    body: Result<Json<RecordBody>, JsonRejection>,
) -> Result<Response, Failure> {
    let b = json_body(body)?;
    let fields = checked_fields(&b)?;
    if let Some(id) = &b.entry_id {
        checked_entry_id(id)?;
    }
    let user = me.name.clone();
    let entry = b.entry_id.clone();
    let rec = with_store(&st, move |s| {
        s.create_gate_record(&fields, entry.as_deref(), &user, Utc::now())
    })
    .await?
    .map_err(gate_error)?;
    tracing::info!(record = rec.id, user = %me.name, kind = rec.kind.as_str(), "gate book: recorded");
    Ok((StatusCode::CREATED, Json(record_json(&st, &rec, true))).into_response())
}

/// `GET /api/gate/records/{id}`: the record with its whole phone number and its audit trail.
pub(super) async fn record(
    State(st): State<Shared>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, Failure> {
    let id = record_id(id)?;
    let (rec, trail) = with_store(&st, move |s| s.gate_record(id))
        .await?
        .map_err(|e| store_failure("reading a gate record", e))?
        .ok_or_else(|| Failure::not_found(format!("no gate record with number {id}")))?;
    let mut v = record_json(&st, &rec, true);
    v["changes"] = changes_json(&st, &trail);
    Ok(Json(v).into_response())
}

/// `PUT /api/gate/records/{id}`.
pub(super) async fn update_record(
    State(st): State<Shared>,
    me: Me,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<RecordBody>, JsonRejection>,
) -> Result<Response, Failure> {
    let id = record_id(id)?;
    let b = json_body(body)?;
    if b.entry_id.is_some() {
        return Err(Failure::bad_request(
            "the entry of a record stays as recorded; write a new record for another entry",
        ));
    }
    let fields = checked_fields(&b)?;
    let user = me.name.clone();
    let rec = with_store(&st, move |s| {
        s.update_gate_record(id, &fields, &user, Utc::now())
    })
    .await?
    .map_err(gate_error)?;
    tracing::info!(record = rec.id, user = %me.name, "gate book: record changed");
    Ok(Json(record_json(&st, &rec, true)).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ExitBody {
    entry_id: Option<String>,
}

/// `POST /api/gate/records/{id}/exit`.
pub(super) async fn exit(
    State(st): State<Shared>,
    me: Me,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<ExitBody>, JsonRejection>,
) -> Result<Response, Failure> {
    let id = record_id(id)?;
    let b = body.map(|Json(b)| b).map_err(|e| {
        Failure::bad_request(format!(
            "{}; send {{\"entry_id\": \"<the exit's id>\"}}, or {{}} when the camera did not \
             see them leave",
            e.body_text()
        ))
    })?;
    if let Some(x) = &b.entry_id {
        checked_entry_id(x)?;
    }
    let user = me.name.clone();
    let rec = with_store(&st, move |s| {
        s.link_gate_exit(id, b.entry_id.as_deref(), &user, Utc::now())
    })
    .await?
    .map_err(gate_error)?;
    tracing::info!(record = rec.id, user = %me.name, "gate book: exit linked");
    Ok(Json(record_json(&st, &rec, true)).into_response())
}

// ------------------------------------------------------------------------------- inside

/// The site date of the counting day running at `now` (it starts at `[site] counts_reset`).
fn counting_day(st: &Shared, now: DateTime<Utc>) -> String {
    let tz = st.config.site.timezone;
    let (_, started) = report::period_ending(now, st.config.counts_reset, tz);
    started.with_timezone(&tz).format("%Y-%m-%d").to_string()
}

/// `GET /api/gate/inside`: guests and newcomers inside now (recorded in, not out), the gate
/// lines' raw counts since the daily reset, and with the starting occupancy an admin set, the
/// estimate of everyone inside (never below zero).
pub(super) async fn inside(State(st): State<Shared>) -> Result<Response, Failure> {
    let (cams, lines) = st.ask(|v| (v.cameras(), v.line_counts())).await?;
    let gates: Vec<&str> = cams
        .iter()
        .filter(|c| c.gate)
        .map(|c| c.id.as_str())
        .collect();
    let (tin, tout) = lines
        .iter()
        .filter(|l| gates.contains(&l.camera.as_str()))
        .fold((0u64, 0u64), |(i, o), l| {
            (i + l.counts.in_, o + l.counts.out)
        });
    let day = counting_day(&st, Utc::now());
    let key = day.clone();
    let ((guests, newcomers), start) = with_store(&st, move |s| {
        Ok::<_, crate::store::StoreError>((s.gate_inside()?, s.gate_start(&key)?))
    })
    .await?
    .map_err(|e| store_failure("counting who is inside", e))?;
    let estimate = start
        .as_ref()
        .map(|s| (s.start as i64 + tin as i64 - tout as i64).max(0));
    Ok(Json(json!({
        "guests": guests,
        "newcomers": newcomers,
        "inside": guests + newcomers,
        "in": tin,
        "out": tout,
        "day": day,
        "start": start.as_ref().map(|s| s.start),
        "start_set_by": start.as_ref().map(|s| s.set_by.clone()),
        "estimate": estimate,
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OccupancyBody {
    start: i64,
}

/// `PUT /api/gate/occupancy` (admins): how many people were inside when today's count started.
pub(super) async fn set_occupancy(
    State(st): State<Shared>,
    me: Me,
    body: Result<Json<OccupancyBody>, JsonRejection>,
) -> Result<Response, Failure> {
    let b = body.map(|Json(b)| b).map_err(|e| {
        Failure::bad_request(format!(
            "{}; send {{\"start\": 40}}: how many people were inside when today's count began",
            e.body_text()
        ))
    })?;
    if !(0..=1_000_000).contains(&b.start) {
        return Err(Failure::bad_request(format!(
            "start must be 0 to 1000000 people, got {}",
            b.start
        )));
    }
    let day = counting_day(&st, Utc::now());
    let (key, user) = (day.clone(), me.name.clone());
    with_store(&st, move |s| {
        s.set_gate_start(&key, b.start as u64, &user, Utc::now())
    })
    .await?
    .map_err(|e| store_failure("storing the starting occupancy", e))?;
    tracing::info!(day, start = b.start, user = %me.name, "gate book: starting occupancy set");
    inside(State(st)).await
}

// ------------------------------------------------------------------------------ reports

/// `GET /api/gate/reports`.
pub(super) async fn reports(State(st): State<Shared>) -> Result<Response, Failure> {
    let list = with_store(&st, |s| s.gate_reports(60))
        .await?
        .map_err(|e| store_failure("listing the daily reports", e))?;
    let status = st.ask(|v| v.gate_status()).await?.unwrap_or_default();
    let items: Vec<Value> = list
        .iter()
        .map(|r| {
            json!({
                "day": r.day,
                "from": st.local(r.from),
                "to": st.local(r.to),
                "made_at": st.local(r.made_at),
                "sent_at": r.sent_at.map(|t| st.local(t)),
                "send_note": r.send_note,
            })
        })
        .collect();
    Ok(Json(json!({
        "reports": items,
        "report_at": st.config.gatebook.report_at.format("%H:%M:%S").to_string(),
        "now": status.now.map(|t| st.local(t)),
        "next": status.next_report.map(|t| st.local(t)),
        "last": status.last_report,
    }))
    .into_response())
}

/// The report of `day`: the stored one, or one made now from what the store has.
async fn day_report(st: &Shared, day: String) -> Result<(DailyReport, bool, String), Failure> {
    let date = parse_day(&day)?;
    let names = camera_names(st).await?;
    let site = ReportSite {
        id: st.config.site.id.clone(),
        name: st.config.site.name.clone(),
        tz: st.config.site.timezone,
        language: st.config.site.language,
        report_at: st.config.gatebook.report_at,
        cameras: names,
        public_url: None,
    };
    let (from, to) = report::period_of(date, site.report_at, site.tz);
    let key = date.format("%Y-%m-%d").to_string();
    let (stored, built) = with_store(st, move |s| {
        let stored = s.gate_report(&key)?;
        let built = match &stored {
            Some(_) => None,
            None => Some(report::build(s, &site, from, to, Utc::now())?),
        };
        Ok::<_, crate::store::StoreError>((stored, built))
    })
    .await?
    .map_err(|e| store_failure("making the daily report", e))?;
    match (stored, built) {
        (Some(s), _) => {
            let r: DailyReport = serde_json::from_str(&s.json)
                .map_err(|e| store_failure("reading the stored report", e))?;
            Ok((r, false, s.text))
        }
        (None, Some(r)) => {
            let text = report::text(&r, st.config.site.timezone, st.config.site.language, None);
            Ok((r, true, text))
        }
        (None, None) => Err(Failure::not_found("no report")),
    }
}

/// `GET /api/gate/reports/{day}`: `{report, draft, text}`.
pub(super) async fn report(
    State(st): State<Shared>,
    day: Result<Path<String>, PathRejection>,
) -> Result<Response, Failure> {
    let (r, draft, text) = day_report(&st, path_text(day)?).await?;
    Ok(Json(json!({"report": r, "draft": draft, "text": text})).into_response())
}

fn csv_answer(name: &str, body: String) -> Response {
    let disposition = format!("attachment; filename=\"{name}\"");
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition)
                    .unwrap_or(HeaderValue::from_static("attachment")),
            ),
        ],
        // a byte order mark: spreadsheet programs then read the names' letters right
        format!("\u{feff}{body}"),
    )
        .into_response()
}

/// `GET /api/gate/reports/{day}/report.csv`.
pub(super) async fn report_csv(
    State(st): State<Shared>,
    day: Result<Path<String>, PathRejection>,
) -> Result<Response, Failure> {
    let (r, _, _) = day_report(&st, path_text(day)?).await?;
    Ok(csv_answer(
        &format!("laporan-gerbang-{}.csv", r.day),
        report::csv(&r),
    ))
}

/// `GET /api/gate/export/records.csv`: whole phone numbers for admins, masked for guards.
pub(super) async fn records_csv(
    State(st): State<Shared>,
    me: Me,
    q: Result<Query<RecordsQuery>, QueryRejection>,
) -> Result<Response, Failure> {
    let Query(q) = q.map_err(|e| Failure::bad_request(e.body_text()))?;
    let mut q = q;
    q.limit = q.limit.or(Some(5000));
    let f = record_filter(&st, &q, 5000)?;
    let list = with_store(&st, move |s| s.gate_records(&f))
        .await?
        .map_err(|e| store_failure("exporting the gate book", e))?;
    let whole = me.role == Role::Admin;
    let mut out = report::csv_row(&[
        "id",
        "kind",
        "name",
        "origin",
        "visiting",
        "purpose",
        "phone",
        "stay",
        "rt",
        "entered",
        "left",
        "status",
        "created_by",
        "updated_by",
        "updated",
    ]);
    for r in &list {
        let f = &r.fields;
        let phone = if whole {
            f.phone.clone()
        } else {
            mask_phone(&f.phone)
        };
        let left = r.left_at.map(|t| st.local(t)).unwrap_or_default();
        out += &report::csv_row(&[
            &r.id.to_string(),
            r.kind.as_str(),
            &f.name,
            &f.origin,
            &f.visiting,
            &f.purpose,
            &phone,
            &f.stay,
            &f.rt,
            &st.local(r.entered_at),
            &left,
            if r.inside() { "inside" } else { "left" },
            &r.created_by,
            &r.updated_by,
            &st.local(r.updated_at),
        ]);
    }
    Ok(csv_answer("buku-tamu.csv", out))
}

/// `GET /api/gate/export/entries.csv?date`: the day's gate log.
pub(super) async fn entries_csv(
    State(st): State<Shared>,
    q: Result<Query<EntriesQuery>, QueryRejection>,
) -> Result<Response, Failure> {
    let Query(mut q) = q.map_err(|e| Failure::bad_request(e.body_text()))?;
    q.limit = Some(MAX_PAGE);
    let mut f = entry_filter(&st, &q)?;
    let day = f
        .from
        .map(|t| {
            t.with_timezone(&st.config.site.timezone)
                .format("%Y-%m-%d")
                .to_string()
        })
        .unwrap_or_default();
    let names = camera_names(&st).await?;
    let mut all = Vec::new();
    loop {
        let page_filter = f.clone();
        let page = with_store(&st, move |s| s.gate_entries(&page_filter))
            .await?
            .map_err(|e| store_failure("exporting the gate log", e))?;
        let full = page.len() == MAX_PAGE;
        f.before = page.last().map(|e| (e.at.timestamp_millis(), e.id.clone()));
        all.extend(page);
        if !full || all.len() >= 50_000 {
            break;
        }
    }
    all.reverse();
    let mut out = report::csv_row(&[
        "id",
        "time",
        "camera",
        "line",
        "direction",
        "mask",
        "night",
        "record",
        "record_kind",
        "record_name",
    ]);
    for e in &all {
        let rec = e.record.as_ref();
        out += &report::csv_row(&[
            &e.id,
            &st.local(e.at),
            &name_of(&names, &e.camera),
            &e.line,
            match e.direction {
                Direction::In => "in",
                Direction::Out => "out",
            },
            e.mask.map_or("", |(v, _)| v.as_str()),
            if e.night { "yes" } else { "" },
            &rec.map(|r| r.id.to_string()).unwrap_or_default(),
            rec.map_or("", |r| r.kind.as_str()),
            &rec.map(|r| r.name.clone()).unwrap_or_default(),
        ]);
    }
    Ok(csv_answer(&format!("log-gerbang-{day}.csv"), out))
}
