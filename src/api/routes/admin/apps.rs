//! `GET /api/admin/apps`: the guard apps with a persistent session on the embedded broker, so an
//! admin sees which phones the box keeps alerts for, when each was last heard, and how many
//! alerts one out of reach has still to take (it gets them when it connects again, also after a
//! restart of the box: `crate::sinks::broker::restore`).
//!
//! `{broker: "embedded" | "external", keep_days, apps: [{client_id, user, topics: [{filter,
//! qos}], since, heard, online, reads_events, missed}]}`: online apps first, then the most
//! recently heard; `keep_days` (embedded only): a session not heard from for longer is
//! forgotten at the next start of the box.
//! `missed` is counted for an app away that reads the alerts (else `null`). With an external
//! broker the list is empty: that broker keeps its sessions itself.
//!
//! `DELETE /api/admin/apps/{client_id}` forgets an app's session (a phone lost or replaced):
//! the broker drops what it queued for it and the app leaves the list; `{forgotten}`. 404 for an
//! unknown id, 409 while it is connected, 503 with an external broker.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde_json::{Value, json};

use super::super::{Failure, Me, Shared};
use crate::api::{ForgetAppError, GuardApp};
use crate::store::Store;

pub(in crate::api::routes) async fn apps(State(st): State<Shared>) -> Result<Json<Value>, Failure> {
    let st2 = st.clone();
    st.ask(move |v| {
        let Some(kept) = v.guard_apps() else {
            return Ok(Json(json!({"broker": "external", "apps": []})));
        };
        let store = v.store();
        let list: Vec<Value> = kept
            .apps
            .iter()
            .map(|a| app_json(&st2, store.as_deref(), a))
            .collect::<Result<_, _>>()?;
        let keep_days = kept.keep.as_secs().div_ceil(24 * 3600);
        Ok(Json(
            json!({"broker": "embedded", "keep_days": keep_days, "apps": list}),
        ))
    })
    .await?
}

fn app_json(st: &Shared, store: Option<&Store>, a: &GuardApp) -> Result<Value, Failure> {
    let s = &a.session;
    let missed = match store {
        Some(store) if a.reads_events && !a.online => {
            let place = store.event_place(s.last_event.as_deref(), s.since);
            Some(
                place
                    .and_then(|p| store.sent_events_count_after(p))
                    .map_err(|e| Failure::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?,
            )
        }
        _ => None,
    };
    Ok(json!({
        "client_id": s.client_id,
        "user": s.user,
        "topics": s.filters.iter().map(|(f, q)| json!({"filter": f, "qos": q})).collect::<Vec<_>>(),
        "since": st.local(s.since),
        "heard": st.local(s.heard),
        "online": a.online,
        "reads_events": a.reads_events,
        "missed": missed,
    }))
}

pub(in crate::api::routes) async fn forget(
    State(st): State<Shared>,
    Extension(me): Me,
    Path(client_id): Path<String>,
) -> Result<Json<Value>, Failure> {
    let id = client_id.clone();
    match st.ask(move |v| v.forget_guard_app(&id)).await? {
        Ok(()) => {
            tracing::info!(
                admin = %me.name,
                app = %crate::topic::shown(&client_id),
                "guard app's session forgotten: the broker dropped what it kept for it"
            );
            Ok(Json(json!({"forgotten": client_id})))
        }
        Err(e) => {
            let status = match e {
                ForgetAppError::NotKept => StatusCode::SERVICE_UNAVAILABLE,
                ForgetAppError::Unknown(_) => StatusCode::NOT_FOUND,
                ForgetAppError::Connected(_) => StatusCode::CONFLICT,
                ForgetAppError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            Err(Failure::new(status, e.to_string()))
        }
    }
}
