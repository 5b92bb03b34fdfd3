//! The reviewers' API (DESIGN.md "HTTP API and web UI", issue 7): search incidents, read one,
//! stream its clip with HTTP Range, its snapshots, mark it reviewed.
//!
//! Uses (of the crate, besides its own folder): events, store.
//!
//! | route | answer |
//! |---|---|
//! | `GET /api/incidents?from&to&camera&type&reviewed&limit&cursor` | `{"items": [incident], "next": cursor \| null}`, newest first |
//! | `GET /api/incidents/{id}` | incident |
//! | `GET /api/incidents/{id}/clip.mp4` | the MP4 (200, or 206 for a `Range`; 416; HEAD too) |
//! | `GET /api/incidents/{id}/snapshot.jpg[?event=<id>]` | the JPEG of that event |
//! | `POST /api/incidents/{id}/review` `{"note": "..."}` | incident, reviewed by the session's user |
//! | `GET /api/review/cameras` | `[{"id", "name"}]`: the configured cameras, for the filter |
//!
//! An incident: `{"id", "camera", "type", "severity", "time", "clip": {"state", "duration_s",
//! "bytes", "url", "note"}, "snapshot", "events": [{"id", "type", "time", "snapshot"}], "review":
//! {"by", "at", "note"} | null}`; times in the site's zone with its offset; `url` and `snapshot`
//! are `null` when there is nothing to fetch.
//!
//! `{id}` may be the id of any event of the incident, not only the one that opened it: every
//! alert's JSON links `/api/incidents/<its own id>/...`, and the recorder joins overlapping
//! alerts into one incident. A camera filter naming no camera of the configuration is not an
//! error: it finds nothing, or the incidents of a camera since removed from the configuration.
//!
//! Files: only paths from the store, checked to be plain and relative and joined to `[store]
//! clips_dir`; nothing of the request becomes a path. Without a store (`Village::store` is
//! `None`) every route answers 503.

mod files;
mod query;
mod range;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Failure, Me, Shared};
use crate::store::{Incident, IncidentError, Store};

pub(super) use files::{clip, snapshot};

/// Run `f` with the store on the blocking pool (SQLite waits on a mutex and the disk);
/// 503 when this village keeps no store.
async fn with_store<T: Send + 'static>(
    st: &Shared,
    f: impl FnOnce(&Store) -> T + Send + 'static,
) -> Result<T, Failure> {
    st.ask(move |v| v.store().map(|s| f(&s)))
        .await?
        .ok_or_else(|| {
            Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "this server keeps no incident store, so there are no incidents to review; \
                 run ronda with a [store] in its configuration",
            )
        })
}

/// A store failure: logged whole, answered 500 with what failed.
pub(super) fn store_failure(what: &str, e: impl std::fmt::Display) -> Failure {
    tracing::error!("{what}: {e}");
    Failure::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("{what} failed in the store: {e}"),
    )
}

fn incident_error(e: IncidentError) -> Failure {
    if e.is_bad_request() {
        Failure::bad_request(e.to_string())
    } else if e.is_not_found() {
        Failure::not_found(e.to_string())
    } else {
        store_failure("the incident request", e)
    }
}

/// Incident and event ids are digits and hex (`events::new_id`); anything else is refused
/// before the store, with the same answer as an unknown id would get.
fn checked_id(id: Result<Path<String>, PathRejection>) -> Result<String, Failure> {
    let Path(id) = id.map_err(|e| Failure::bad_request(e.body_text()))?;
    let plain = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if plain {
        Ok(id)
    } else {
        Err(Failure::bad_request(
            "not an incident or event id (letters, digits, - and _, at most 64)",
        ))
    }
}

fn unknown(id: &str) -> Failure {
    Failure::not_found(format!(
        "no incident with id {id}, and no event of one (check the id; only alerts make incidents)"
    ))
}

/// The incident `id` (or of event `id`), or 404.
async fn find(st: &Shared, id: &str) -> Result<Incident, Failure> {
    let key = id.to_string();
    with_store(st, move |s| s.incident(&key))
        .await?
        .map_err(|e| store_failure("reading an incident", e))?
        .ok_or_else(|| unknown(id))
}

fn snapshot_url(event_id: &str) -> String {
    format!("/api/incidents/{event_id}/snapshot.jpg")
}

/// Seconds with two decimals, for display.
fn seconds(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 100.0).round() / 100.0
}

/// An incident as the API shows it (module docs).
fn incident_json(st: &Shared, i: &Incident) -> Value {
    let playable = i.clip.state == crate::store::ClipState::Ready && i.clip.path.is_some();
    json!({
        "id": i.id,
        "camera": i.camera,
        "type": i.kind,
        "severity": i.severity,
        "time": st.local(i.at),
        "clip": {
            "state": i.clip.state.as_str(),
            "duration_s": i.clip.duration.map(seconds),
            "bytes": i.clip.bytes,
            "url": playable.then(|| format!("/api/incidents/{}/clip.mp4", i.id)),
            "note": i.clip.note,
        },
        "snapshot": i.snapshot().map(|_| snapshot_url(&i.id)),
        "events": i.events.iter().map(|e| json!({
            "id": e.id,
            "type": e.kind,
            "time": st.local(e.at),
            "snapshot": e.snapshot.as_ref().map(|_| snapshot_url(&e.id)),
        })).collect::<Vec<_>>(),
        "review": i.review.as_ref().map(|r| json!({
            "by": r.by,
            "at": st.local(r.at),
            "note": r.note,
        })),
    })
}

/// `GET /api/incidents`: a page of incidents, newest first (parameters: [`query`]).
pub(super) async fn list(
    State(st): State<Shared>,
    q: Result<Query<query::ListQuery>, QueryRejection>,
) -> Result<Response, Failure> {
    let Query(q) = q.map_err(|e| {
        Failure::bad_request(format!(
            "{}; the parameters are from, to, camera, type, reviewed, limit and cursor",
            e.body_text()
        ))
    })?;
    let filter = q
        .filter(st.config.site.timezone)
        .map_err(Failure::bad_request)?;
    let page = with_store(&st, move |s| s.incidents(&filter))
        .await?
        .map_err(incident_error)?;
    let items: Vec<Value> = page.items.iter().map(|i| incident_json(&st, i)).collect();
    Ok(Json(json!({"items": items, "next": page.next})).into_response())
}

/// `GET /api/incidents/{id}`: one incident.
pub(super) async fn one(
    State(st): State<Shared>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, Failure> {
    let id = checked_id(id)?;
    let inc = find(&st, &id).await?;
    Ok(Json(incident_json(&st, &inc)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReviewBody {
    note: Option<String>,
}

/// `POST /api/incidents/{id}/review` with `{"note": "..."}` (or `{}`): the session's user
/// reviewed it now; reviewing again replaces the review. Answers the incident.
pub(super) async fn review(
    State(st): State<Shared>,
    me: Me,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<ReviewBody>, JsonRejection>,
) -> Result<Response, Failure> {
    let id = checked_id(id)?;
    let Json(body) = body.map_err(|e| {
        Failure::bad_request(format!(
            "{}; send JSON like {{\"note\": \"checked, a neighbour\"}}",
            e.body_text()
        ))
    })?;
    let user = me.name.clone();
    let key = id.clone();
    let inc = with_store(&st, move |s| {
        s.mark_reviewed(&key, &user, body.note.as_deref())
    })
    .await?
    .map_err(|e| {
        if e.is_not_found() {
            unknown(&id)
        } else {
            incident_error(e)
        }
    })?;
    tracing::info!(incident = %inc.id, user = %me.name, "incident reviewed");
    Ok(Json(incident_json(&st, &inc)).into_response())
}

/// `GET /api/review/cameras`: the configured cameras' ids and names, for the camera filter
/// (never their URLs).
pub(super) async fn cameras(State(st): State<Shared>) -> Result<Response, Failure> {
    let cams = st.ask(|v| v.cameras()).await?;
    let list: Vec<Value> = cams
        .iter()
        .map(|c| json!({"id": c.id, "name": c.name}))
        .collect();
    Ok(Json(list).into_response())
}
