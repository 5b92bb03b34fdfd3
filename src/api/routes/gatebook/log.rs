//! The gate log: entries of a day, one entry, the person's picture.

use std::path::{Component, Path as FsPath};

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    MAX_PAGE, PAGE, camera_names, checked_entry_id, day_range, entry_json, parse_day, path_text,
    store_failure, today, with_store,
};
use crate::api::routes::{Failure, Shared};
use crate::gate::CROPS_DIR;
use crate::rules::Direction;
use crate::store::{EntryFilter, GateEntry};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(in crate::api::routes) struct EntriesQuery {
    date: Option<String>,
    direction: Option<String>,
    unrecorded: Option<bool>,
    alert: Option<String>,
    pub(super) limit: Option<usize>,
    cursor: Option<String>,
}

pub(super) fn entry_filter(st: &Shared, q: &EntriesQuery) -> Result<EntryFilter, Failure> {
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
pub(in crate::api::routes) async fn entries(
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
pub(in crate::api::routes) async fn entry(
    State(st): State<Shared>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, Failure> {
    let e = find_entry(&st, path_text(id)?).await?;
    let names = camera_names(&st).await?;
    Ok(Json(entry_json(&st, &names, &e)).into_response())
}

/// `GET /api/gate/entries/{id}/crop.jpg`.
pub(in crate::api::routes) async fn crop(
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
