//! `GET /api/admin/apps`: the guard apps with a persistent session on the embedded broker, so an
//! admin sees which phones the box keeps alerts for, when each was last heard, and how many
//! alerts one out of reach has still to take (it gets them when it connects again, also after a
//! restart of the box: `crate::sinks::broker::restore`).
//!
//! `{broker: "embedded" | "external", apps: [{client_id, user, topics: [{filter, qos}], since,
//! heard, online, reads_events, missed}]}`: online apps first, then the most recently heard.
//! `missed` is counted for an app away that reads the alerts (else `null`). With an external
//! broker the list is empty: that broker keeps its sessions itself.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::super::{Failure, Shared};
use crate::api::GuardApp;
use crate::store::Store;

pub(in crate::api::routes) async fn apps(State(st): State<Shared>) -> Result<Json<Value>, Failure> {
    let st2 = st.clone();
    st.ask(move |v| {
        let Some(apps) = v.guard_apps() else {
            return Ok(Json(json!({"broker": "external", "apps": []})));
        };
        let store = v.store();
        let list: Vec<Value> = apps
            .iter()
            .map(|a| app_json(&st2, store.as_deref(), a))
            .collect::<Result<_, _>>()?;
        Ok(Json(json!({"broker": "embedded", "apps": list})))
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
