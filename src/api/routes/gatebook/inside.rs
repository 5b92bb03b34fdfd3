//! Who is inside: guests and newcomers recorded in and not out, beside the raw counts; the day's
//! starting occupancy (admins).

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::{store_failure, with_store};
use crate::api::routes::{Failure, Me, Shared};
use crate::gate::report;

/// The site date of the counting day running at `now` (it starts at `[site] counts_reset`).
fn counting_day(st: &Shared, now: DateTime<Utc>) -> String {
    let tz = st.config.site.timezone;
    let (_, started) = report::period_ending(now, st.config.counts_reset, tz);
    started.with_timezone(&tz).format("%Y-%m-%d").to_string()
}

/// `GET /api/gate/inside`: guests and newcomers inside now (recorded in, not out), the gate
/// lines' raw counts since the daily reset, and with the starting occupancy an admin set, the
/// estimate of everyone inside (never below zero).
pub(in crate::api::routes) async fn inside(State(st): State<Shared>) -> Result<Response, Failure> {
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
pub(in crate::api::routes) struct OccupancyBody {
    start: i64,
}

/// `PUT /api/gate/occupancy` (admins): how many people were inside when today's count started.
pub(in crate::api::routes) async fn set_occupancy(
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
