//! The guard post's API: camera health, gate counts, recent events, acknowledge.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Failure, Me, Shared};
use crate::api::{AckError, AckRecord, CameraStatus, FeedItem};
use crate::events::Severity;

/// Rounded for display; the exact figures are in `/metrics`.
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn camera_json(st: &Shared, c: &CameraStatus) -> Value {
    json!({
        "id": c.id,
        "name": c.name,
        "gate": c.gate,
        "state": c.health.as_str(),
        "since": c.since.map(|t| st.local(t)),
        "delivered_fps": round2(c.delivered_fps),
        "analysed_fps": round2(c.analysed_fps),
        "frames_dropped": c.frames_dropped,
        "reconnects": c.reconnects,
        "inference_ms": c.inference_ms.map(round2),
        "decode_ms": c.decode_ms.map(round2),
        "brightness": c.brightness.map(round2),
        "low_light": c.low_light,
        "noisy": c.noisy,
        "behind": c.behind,
    })
}

/// `GET /api/cameras`: `[{id, name, gate, state, since, delivered_fps, ...}]`.
pub(super) async fn cameras(State(st): State<Shared>) -> Result<Response, Failure> {
    let cams = st.ask(|v| v.cameras()).await?;
    let list: Vec<Value> = cams.iter().map(|c| camera_json(&st, c)).collect();
    Ok(Json(list).into_response())
}

/// `GET /api/counts`: every line's counts, and the sum over the gate cameras' lines:
/// `{"lines": [{camera, line, gate, in, out, occupancy, since}], "gate": {in, out, occupancy}}`.
pub(super) async fn counts(State(st): State<Shared>) -> Result<Response, Failure> {
    let (cams, lines) = st.ask(|v| (v.cameras(), v.line_counts())).await?;
    let gate_cams: std::collections::HashSet<&str> = cams
        .iter()
        .filter(|c| c.gate)
        .map(|c| c.id.as_str())
        .collect();
    let (mut tin, mut tout, mut tocc) = (0u64, 0u64, 0i64);
    let list: Vec<Value> = lines
        .iter()
        .map(|l| {
            let gate = gate_cams.contains(l.camera.as_str());
            if gate {
                tin += l.counts.in_;
                tout += l.counts.out;
                tocc += l.counts.occupancy;
            }
            json!({
                "camera": l.camera,
                "line": l.line,
                "gate": gate,
                "in": l.counts.in_,
                "out": l.counts.out,
                "occupancy": l.counts.occupancy,
                "since": st.local(l.since),
            })
        })
        .collect();
    Ok(Json(json!({
        "lines": list,
        "gate": {"in": tin, "out": tout, "occupancy": tocc},
    }))
    .into_response())
}

pub(crate) fn ack_json(st: &Shared, a: &AckRecord) -> Value {
    json!({"event_id": a.event_id, "user": a.user, "at": st.local(a.at)})
}

pub(super) fn item_json(st: &Shared, i: &FeedItem) -> Value {
    json!({"event": i.event, "ack": i.ack.as_ref().map(|a| ack_json(st, a))})
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EventsQuery {
    limit: Option<usize>,
    min_severity: Option<Severity>,
}

/// Most events `GET /api/events` returns.
const MAX_EVENTS: usize = 500;

/// `GET /api/events?limit=50&min_severity=warning`: the newest stored events, newest first,
/// `[{event, ack: null | {event_id, user, at}}]`.
pub(super) async fn events(
    State(st): State<Shared>,
    q: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Response, Failure> {
    let Query(q) = q.map_err(|e| Failure::bad_request(e.body_text()))?;
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_EVENTS {
        return Err(Failure::bad_request(format!(
            "limit must be 1 to {MAX_EVENTS}, got {limit}"
        )));
    }
    let min = q.min_severity.unwrap_or(Severity::Info);
    let items = st.ask(move |v| v.recent_events(limit, min)).await?;
    let list: Vec<Value> = items.iter().map(|i| item_json(&st, i)).collect();
    Ok(Json(list).into_response())
}

/// Event ids are digits and hex (`events::new_id`); anything else is refused before the store.
fn valid_event_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `POST /api/events/{id}/ack` (no body): 200 `{event_id, user, at}`; 404 unknown id. The live
/// feeds show the acknowledgement to every guard.
pub(super) async fn ack(
    State(st): State<Shared>,
    me: Me,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, Failure> {
    let Path(id) = id.map_err(|e| Failure::bad_request(e.body_text()))?;
    if !valid_event_id(&id) {
        return Err(Failure::bad_request(
            "not an event id (letters and digits, at most 64)",
        ));
    }
    let user = me.name.clone();
    let event_id = id.clone();
    let result = st.ask(move |v| v.acknowledge(&event_id, &user)).await?;
    match result {
        Ok(rec) => {
            tracing::info!(event = %rec.event_id, user = %rec.user, "event acknowledged");
            let _ = st.acks.send(rec.clone());
            Ok(Json(ack_json(&st, &rec)).into_response())
        }
        Err(AckError::UnknownEvent) => Err(Failure::not_found(format!("no event with id {id}"))),
        Err(AckError::Failed(e)) => {
            tracing::error!(event = %id, "acknowledge failed: {e}");
            Err(Failure::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                format!("could not store the acknowledgement: {e}"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn event_ids() {
        assert!(super::valid_event_id("1795432178883000078cb"));
        for bad in ["", "../x", "a b", &"9".repeat(65), "é"] {
            assert!(!super::valid_event_id(bad), "{bad}");
        }
    }
}
