//! The guest book: records listed, made from an entry, read with their audit trail, changed,
//! and an exit linked.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;

use super::{
    MAX_PAGE, PAGE, changes_json, checked_entry_id, day_range, gate_error, json_body, kind_of,
    parse_day, record_id, record_json, store_failure, with_store,
};
use crate::api::routes::{Failure, Me, Shared};
use crate::gate::check_record;
use crate::store::{RecordFields, RecordFilter};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(in crate::api::routes) struct RecordsQuery {
    q: Option<String>,
    date: Option<String>,
    status: Option<String>,
    kind: Option<String>,
    pub(super) limit: Option<usize>,
}

pub(super) fn record_filter(
    st: &Shared,
    q: &RecordsQuery,
    max: usize,
) -> Result<RecordFilter, Failure> {
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
pub(in crate::api::routes) async fn records(
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
pub(in crate::api::routes) struct RecordBody {
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
pub(in crate::api::routes) async fn create_record(
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
pub(in crate::api::routes) async fn record(
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
pub(in crate::api::routes) async fn update_record(
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
pub(in crate::api::routes) struct ExitBody {
    entry_id: Option<String>,
}

/// `POST /api/gate/records/{id}/exit`.
pub(in crate::api::routes) async fn exit(
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
