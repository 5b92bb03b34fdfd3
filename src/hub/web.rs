//! The hub's web pages and JSON API (axum): login (the village's sessions, password brake and
//! argon2 check), the villages with their state, the alert feed of all villages, a village's
//! drill-down, and its incident clips through [`super::proxy`].
//!
//! | route | who |
//! |---|---|
//! | `GET /login`, `POST /api/login` | anyone |
//! | `GET /`, `GET /api/me`, `POST /api/logout` | any user |
//! | `GET /api/villages`, `GET /api/villages/{site}`, `GET /api/events?site=&after=&limit=`, `GET /villages/{site}/incidents/{id}/clip.mp4` | any user, for the villages they see |
//! | `GET /metrics` (in [`super::metrics`]) | any user (session or HTTP Basic), for the villages they see; hub-wide figures for city admins |
//!
//! A `city_admin` sees every village (unknown ones too); a `district_officer` only the
//! configured villages of their district: any other village is answered 404, as if it did not
//! exist, on every route. No answer carries a password, a hash or a village's account.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::header::{
    CACHE_CONTROL, HOST, ORIGIN, REFERRER_POLICY, SET_COOKIE, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::proxy;
use super::state::{Failure, MAX_EVENTS, SESSION_TTL, Shared, Who, no_village};
use super::store::VillageState;
use crate::api::auth::MAX_PASSWORD_BYTES;
use crate::api::session;

async fn require(State(st): State<Shared>, mut req: Request, next: Next) -> Response {
    let user = st
        .sessions
        .from_headers(req.headers())
        .and_then(|s| st.users.get(&s.name).cloned());
    match user {
        Some(u) => {
            req.extensions_mut().insert(Who(u));
            next.run(req).await
        }
        None if req.uri().path().starts_with("/api/") => {
            Failure::new(StatusCode::UNAUTHORIZED, "not logged in: log in at /login")
                .into_response()
        }
        None => Redirect::to("/login").into_response(),
    }
}

/// Safety headers on every answer; cross-site writes refused (the cookie is SameSite=Strict
/// too).
async fn harden(req: Request, next: Next) -> Response {
    if !matches!(*req.method(), Method::GET | Method::HEAD)
        && let Some(origin) = req.headers().get(ORIGIN)
    {
        let host = req.headers().get(HOST).and_then(|h| h.to_str().ok());
        let same = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .is_some_and(|(_, a)| Some(a) == host);
        if !same {
            return Failure::new(
                StatusCode::FORBIDDEN,
                "cross-site request refused (Origin is not this server)",
            )
            .into_response();
        }
    }
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if !h.contains_key(CACHE_CONTROL) {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

pub(crate) fn router(st: Shared) -> Router {
    let users = Router::new()
        .route("/", get(home))
        .route("/api/me", get(me))
        .route("/api/logout", post(logout))
        .route("/api/villages", get(villages))
        .route("/api/villages/{site}", get(village))
        .route("/api/events", get(events))
        .route("/villages/{site}/incidents/{id}/clip.mp4", get(proxy::clip))
        .route_layer(from_fn_with_state(st.clone(), require));
    Router::new()
        .route("/login", get(login_page))
        .route("/api/login", post(login))
        // its own login check: a session, or HTTP Basic for Prometheus
        .route("/metrics", get(super::metrics::metrics))
        .merge(users)
        .fallback(|| async { Failure::not_found("no such page") })
        .layer(from_fn(harden))
        .with_state(st)
}

async fn login_page(State(st): State<Shared>, headers: HeaderMap) -> Response {
    match st.sessions.from_headers(&headers) {
        Some(_) => Redirect::to("/").into_response(),
        None => st.login_page.answer(StatusCode::OK),
    }
}

async fn home(State(st): State<Shared>) -> Response {
    st.hub_page.answer(StatusCode::OK)
}

#[derive(Deserialize)]
struct Credentials {
    name: String,
    password: String,
}

/// `POST /api/login` with JSON `{"name", "password"}`: the village's login (the same brake on
/// wrong passwords per name and address, the same argon2 check and session cookie).
async fn login(
    State(st): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Result<Json<Credentials>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(c)) = body else {
        return Failure::new(
            StatusCode::BAD_REQUEST,
            "send JSON {\"name\": ..., \"password\": ...}",
        )
        .into_response();
    };
    if c.name.trim().is_empty() || c.password.is_empty() {
        return Failure::new(StatusCode::BAD_REQUEST, "name or password is empty").into_response();
    }
    if c.password.len() > MAX_PASSWORD_BYTES || c.name.len() > 256 {
        return Failure::new(StatusCode::BAD_REQUEST, "name or password is too long")
            .into_response();
    }
    match super::state::check(&st, &c.name, c.password, peer.ip()).await {
        Ok(user) => {
            let token = st.sessions.create(&user.name, user.role);
            tracing::info!(user = %user.name, role = user.role.as_str(), peer = %peer.ip(), "hub: login");
            let mut res = Json(json!({"name": user.name, "role": user.role.as_str(), "home": "/"}))
                .into_response();
            let cookie = session::set_cookie(&token, SESSION_TTL, st.settings.secure_cookie);
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                res.headers_mut().insert(SET_COOKIE, v);
            }
            res
        }
        Err(f) => f.into_response(),
    }
}

async fn logout(State(st): State<Shared>, headers: HeaderMap) -> Response {
    st.sessions.remove_from_headers(&headers);
    let mut res = Json(json!({"ok": true})).into_response();
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie(st.settings.secure_cookie)) {
        res.headers_mut().insert(SET_COOKIE, v);
    }
    res
}

async fn me(State(st): State<Shared>, axum::Extension(Who(u)): axum::Extension<Who>) -> Response {
    Json(json!({
        "name": u.name,
        "role": u.role.as_str(),
        "district": u.district,
        "hub": {"name": st.settings.name, "timezone": st.settings.timezone.name()},
        "broker_connected": st.link.connected.load(Ordering::Relaxed),
    }))
    .into_response()
}

/// `GET /api/villages`: every village the user sees, configured ones first (in the file's
/// order), then the unknown ones that publish.
async fn villages(
    State(st): State<Shared>,
    axum::Extension(Who(u)): axum::Extension<Who>,
) -> Result<Response, Failure> {
    let since = st.today_ms();
    let states = st.ask(move |s| s.villages(since)).await?;
    let by_site: HashMap<&str, &VillageState> =
        states.iter().map(|v| (v.site.as_str(), v)).collect();
    let mut out: Vec<Value> = st
        .settings
        .villages
        .iter()
        .filter(|v| st.sees(&u, &v.site))
        .map(|v| st.village_json(&v.site, by_site.get(v.site.as_str()).copied()))
        .collect();
    out.extend(
        states
            .iter()
            .filter(|s| !st.villages.contains_key(&s.site) && st.sees(&u, &s.site))
            .map(|s| st.village_json(&s.site, Some(s))),
    );
    Ok(Json(json!({
        "villages": out,
        "broker_connected": st.link.connected.load(Ordering::Relaxed),
    }))
    .into_response())
}

/// `GET /api/villages/{site}`: the village, its cameras, line counts and newest events.
async fn village(
    State(st): State<Shared>,
    axum::Extension(Who(u)): axum::Extension<Who>,
    Path(site): Path<String>,
) -> Result<Response, Failure> {
    let since = st.today_ms();
    let s = site.clone();
    let (states, cameras, counts, recent) = st
        .ask(move |store| {
            let one = [s.clone()];
            Ok((
                store.villages(since)?,
                store.cameras(&s)?,
                store.counts(&s)?,
                store.recent(Some(&one[..]), &[], 100)?,
            ))
        })
        .await?;
    let state = states.iter().find(|v| v.site == site);
    if !st.sees(&u, &site) || (state.is_none() && !st.villages.contains_key(&site)) {
        return Err(no_village(&site));
    }
    let cameras: Vec<Value> = cameras
        .iter()
        .map(|c| {
            let status: Value = serde_json::from_str(&c.json).unwrap_or(Value::Null);
            json!({"camera": c.camera, "state": c.state, "since": status["since"],
                   "fps": status["fps"], "received_ms": c.received_ms})
        })
        .collect();
    let lines: Vec<Value> = counts
        .iter()
        .map(|c| {
            json!({"camera": c.camera, "line": c.line, "in": c.count_in, "out": c.count_out,
                   "occupancy": c.occupancy, "since": c.since})
        })
        .collect();
    let events: Vec<Value> = recent.iter().map(|e| st.event_json(e)).collect();
    Ok(Json(json!({
        "village": st.village_json(&site, state),
        "cameras": cameras,
        "lines": lines,
        "events": events,
    }))
    .into_response())
}

#[derive(Deserialize)]
struct EventsQuery {
    site: Option<String>,
    /// `warning`: warnings and alerts; `alert`: alerts only.
    min_severity: Option<String>,
    after: Option<i64>,
    limit: Option<usize>,
}

/// `GET /api/events?site=&after=&limit=&min_severity=`: events in the hub's arrival order (`seq`), after
/// `after`; without `after`, the newest `limit` (the page's first look). `last` is where to go
/// on from.
async fn events(
    State(st): State<Shared>,
    axum::Extension(Who(u)): axum::Extension<Who>,
    Query(q): Query<EventsQuery>,
) -> Result<Response, Failure> {
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_EVENTS);
    let sites = match q.site.filter(|s| !s.is_empty()) {
        Some(site) if st.sees(&u, &site) => Some(vec![site]),
        Some(site) => return Err(no_village(&site)),
        None => st.visible(&u),
    };
    let severities: &'static [&'static str] = match q.min_severity.as_deref() {
        None | Some("" | "info") => &[],
        Some("warning") => &["warning", "alert"],
        Some("alert") => &["alert"],
        Some(other) => {
            return Err(Failure::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "min_severity `{}` is not info, warning or alert",
                    crate::topic::shown(other)
                ),
            ));
        }
    };
    let after = q.after;
    let (items, last) = st
        .ask(move |s| {
            let last = s.last_seq();
            let items = match after {
                Some(a) => s.events_after(sites.as_deref(), severities, a, limit)?,
                None => {
                    let mut newest = s.recent(sites.as_deref(), severities, limit)?;
                    newest.reverse();
                    newest
                }
            };
            Ok((items, last))
        })
        .await?;
    // where the next poll goes on from: past what this answer holds, or (nothing new) past
    // everything stored now
    let next = match (items.last(), after) {
        (Some(e), _) if items.len() == limit => e.seq,
        (e, _) => last.max(after.unwrap_or(0)).max(e.map_or(0, |e| e.seq)),
    };
    let items: Vec<Value> = items.iter().map(|e| st.event_json(e)).collect();
    Ok(Json(json!({"items": items, "last": next})).into_response())
}
