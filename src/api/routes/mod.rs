//! The router: which route is in which area of the role matrix ([`super::auth`]), the shared
//! state, JSON errors, and the headers every answer gets.
//!
//! Uses (of the crate, besides its own folder): config, events, gate, geometry, ingest, rules, store, topic.

mod admin;
mod feed;
mod gatebook;
mod guard;
mod incidents;
mod login;
pub(crate) mod metrics;
pub(crate) mod pages;

pub(crate) use guard::ack_json;
pub(crate) use login::check as check_login;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_TYPE, HOST, ORIGIN, REFERRER_POLICY, RETRY_AFTER,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use tokio::sync::{Semaphore, broadcast};
use tokio_util::sync::CancellationToken;

use super::auth::{Area, Limiter};
use super::session::{SessionUser, Sessions};
use super::{AckRecord, ApiConfig, Village};
use crate::config::User;

/// Password checks at once (each holds ~19 MiB and a core for tens of milliseconds).
const PARALLEL_HASHES: usize = 2;

/// Shared by every request.
pub(crate) struct AppState {
    pub config: ApiConfig,
    pub users: HashMap<String, User>,
    pub village: Arc<dyn Village>,
    pub sessions: Sessions,
    pub limiter: Mutex<Limiter>,
    pub hashing: Semaphore,
    /// Acknowledgements for the live feeds: the village's channel (the guard page's and the
    /// phones'), or one of the server's own.
    pub acks: broadcast::Sender<AckRecord>,
    /// Cancelled when the server stops: live feeds end.
    pub stop: CancellationToken,
    pub pages: pages::Pages,
    pub logins_failed: AtomicU64,
    pub feeds_open: AtomicU64,
}

pub(crate) type Shared = Arc<AppState>;

impl AppState {
    pub fn new(config: ApiConfig, village: Arc<dyn Village>) -> Shared {
        for u in &config.users {
            if let Err(e) = super::auth::check_hash(&u.password_hash) {
                tracing::error!(user = %u.name, "http.users: password_hash is {e}; this user cannot log in (make one with `ronda passwd`)");
            }
        }
        if config.users.is_empty() {
            tracing::warn!(
                "no [[http.users]]: nobody can log in to the web UI (add one with `ronda passwd`)"
            );
        }
        let users = config
            .users
            .iter()
            .map(|u| (u.name.clone(), u.clone()))
            .collect();
        let acks = village
            .ack_feed()
            .unwrap_or_else(|| broadcast::channel(256).0);
        Arc::new(AppState {
            users,
            village,
            sessions: Sessions::new(config.session_ttl),
            limiter: Mutex::new(Limiter::new(config.lockout)),
            hashing: Semaphore::new(PARALLEL_HASHES),
            acks,
            stop: CancellationToken::new(),
            pages: pages::Pages::new(&config.site),
            logins_failed: AtomicU64::new(0),
            feeds_open: AtomicU64::new(0),
            config,
        })
    }

    /// Local time of the site, e.g. `2026-11-22T21:04:05+07:00`.
    pub fn local(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.config.site.timezone)
            .format("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
    }

    /// Ask the pipeline on the blocking pool.
    pub async fn ask<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Village) -> T + Send + 'static,
    ) -> Result<T, Failure> {
        let v = self.village.clone();
        tokio::task::spawn_blocking(move || f(v.as_ref()))
            .await
            .map_err(|e| {
                tracing::error!("the pipeline failed to answer the API: {e}");
                Failure::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the pipeline did not answer",
                )
            })
    }

    pub fn count_failed_login(&self) {
        self.logins_failed.fetch_add(1, Ordering::Relaxed);
    }
}

/// An error answer: `{"error": "..."}` with its status (and `Retry-After` when locked).
#[derive(Debug)]
pub(crate) struct Failure {
    pub status: StatusCode,
    pub message: String,
    pub retry_after: Option<u64>,
    /// A form's problems by field (`{"name": "..."}`), answered as `fields`.
    pub fields: Option<serde_json::Value>,
}

impl Failure {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
            retry_after: None,
            fields: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Failure {
        Failure::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Failure {
        Failure::new(StatusCode::NOT_FOUND, message)
    }

    pub fn unauthorized() -> Failure {
        Failure::new(StatusCode::UNAUTHORIZED, "not logged in: log in at /login")
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "error": self.message });
        if let Some(s) = self.retry_after {
            body["retry_after"] = s.into();
        }
        if let Some(f) = self.fields {
            body["fields"] = f;
        }
        let mut res = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after {
            res.headers_mut().insert(RETRY_AFTER, HeaderValue::from(s));
        }
        res
    }
}

/// Whether a route answers with JSON (API) or a page (redirect to /login, HTML 403).
#[derive(Clone, Copy, Debug)]
enum Kind {
    Api,
    Page,
}

/// Let the request through if it has a session whose role the area allows.
async fn require(
    State((st, area, kind)): State<(Shared, Area, Kind)>,
    mut req: Request,
    next: Next,
) -> Response {
    match st.sessions.from_headers(req.headers()) {
        Some(user) if area.allows(user.role) => {
            req.extensions_mut().insert(user);
            next.run(req).await
        }
        Some(user) => match kind {
            Kind::Api => Failure::new(
                StatusCode::FORBIDDEN,
                format!(
                    "a {} may not use this ({} area)",
                    user.role.as_str(),
                    area.as_str()
                ),
            )
            .into_response(),
            Kind::Page => st.pages.forbidden(&user),
        },
        None => match kind {
            Kind::Api => Failure::unauthorized().into_response(),
            Kind::Page => Redirect::to("/login").into_response(),
        },
    }
}

/// [`require`], or else HTTP Basic credentials of a user whose role the area allows, checked
/// like a login (the same brake on wrong passwords). Only for the incident's clip: the city hub
/// fetches it with the account the village gave it (README "City command room"), and a
/// program has no cookie. Never answers with `WWW-Authenticate`, so a browser never offers
/// a Basic login form of its own.
async fn require_or_basic(
    State((st, area)): State<(Shared, Area)>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let creds = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(super::auth::basic_credentials);
    let Some((name, password)) =
        creds.filter(|_| st.sessions.from_headers(req.headers()).is_none())
    else {
        return require(State((st.clone(), area, Kind::Api)), req, next).await;
    };
    match check_login(&st, &name, password, peer.ip()).await {
        // no session is made: the credentials come with every request
        Ok(user) if area.allows(user.role) => next.run(req).await,
        Ok(user) => Failure::new(
            StatusCode::FORBIDDEN,
            format!(
                "a {} may not use this ({} area)",
                user.role.as_str(),
                area.as_str()
            ),
        )
        .into_response(),
        Err(f) => f.into_response(),
    }
}

/// All routes. Adding one means putting it in an area here.
pub(crate) fn router(st: Shared) -> Router {
    let area = |a: Area, k: Kind| from_fn_with_state((st.clone(), a, k), require);
    let public = Router::new()
        .route("/login", get(pages::login))
        .route("/", get(pages::home))
        .route("/api/login", post(login::login))
        .route("/metrics", get(metrics::metrics));
    let any_api = Router::new()
        .route("/api/me", get(login::me))
        .route("/api/logout", post(login::logout))
        // the guard's feed shows each alert's snapshot as a thumbnail; the clip and the rest of
        // the incident stay with reviewers
        .route("/api/incidents/{id}/snapshot.jpg", get(incidents::snapshot))
        .route_layer(area(Area::Any, Kind::Api));
    let guard_api = Router::new()
        .route("/api/cameras", get(guard::cameras))
        .route("/api/counts", get(guard::counts))
        .route("/api/events", get(guard::events))
        .route("/api/events/stream", get(feed::stream))
        .route("/api/events/{id}/ack", post(guard::ack))
        // the gate book: personal data, guards and admins only
        .route("/api/gate/entries", get(gatebook::entries))
        .route("/api/gate/entries/{id}", get(gatebook::entry))
        .route("/api/gate/entries/{id}/crop.jpg", get(gatebook::crop))
        .route(
            "/api/gate/records",
            get(gatebook::records).post(gatebook::create_record),
        )
        .route(
            "/api/gate/records/{id}",
            get(gatebook::record).put(gatebook::update_record),
        )
        .route("/api/gate/records/{id}/exit", post(gatebook::exit))
        .route("/api/gate/inside", get(gatebook::inside))
        .route("/api/gate/reports", get(gatebook::reports))
        .route("/api/gate/reports/{day}", get(gatebook::report))
        .route(
            "/api/gate/reports/{day}/report.csv",
            get(gatebook::report_csv),
        )
        .route("/api/gate/export/records.csv", get(gatebook::records_csv))
        .route("/api/gate/export/entries.csv", get(gatebook::entries_csv))
        .route_layer(area(Area::Guard, Kind::Api));
    let admin_api = Router::new()
        .route("/api/admin/config", get(admin::config))
        .route("/api/admin/cameras", get(admin::cameras))
        .route(
            "/api/admin/cameras/{id}",
            axum::routing::put(admin::save_camera),
        )
        .route("/api/admin/cameras/{id}/snapshot.jpg", get(admin::snapshot))
        .route("/api/admin/cameras/{id}/preview", post(admin::preview))
        .route("/api/admin/apps", get(admin::apps))
        .route(
            "/api/admin/apps/{client_id}",
            axum::routing::delete(admin::forget_app),
        )
        .route("/api/admin/versions", get(admin::versions))
        .route("/api/admin/versions/{n}", get(admin::version))
        .route("/api/admin/versions/{n}/revert", post(admin::revert))
        .route(
            "/api/gate/occupancy",
            axum::routing::put(gatebook::set_occupancy),
        )
        // the editor's one-save-at-a-time lock, for its routes only
        .layer(axum::Extension(admin::Editor::new()))
        .route_layer(area(Area::Admin, Kind::Api));
    let guard_pages = Router::new()
        .route("/guard", get(pages::guard))
        .route("/gatebook", get(pages::gatebook))
        .route_layer(area(Area::Guard, Kind::Page));
    let review_api = Router::new()
        .route("/api/incidents", get(incidents::list))
        .route("/api/incidents/{id}", get(incidents::one))
        .route("/api/incidents/{id}/review", post(incidents::review))
        .route("/api/review/cameras", get(incidents::cameras))
        .route_layer(area(Area::Review, Kind::Api));
    // the clip also with HTTP Basic credentials (the city hub's proxy, see require_or_basic)
    let review_clip = Router::new()
        .route("/api/incidents/{id}/clip.mp4", get(incidents::clip))
        .route_layer(from_fn_with_state(
            (st.clone(), Area::Review),
            require_or_basic,
        ));
    let review_pages = Router::new()
        .route("/review", get(pages::review))
        .route_layer(area(Area::Review, Kind::Page));
    let admin_pages = Router::new()
        .route("/admin", get(pages::admin))
        .route_layer(area(Area::Admin, Kind::Page));
    Router::new()
        .merge(public)
        .merge(any_api)
        .merge(guard_api)
        .merge(admin_api)
        .merge(guard_pages)
        .merge(review_api)
        .merge(review_clip)
        .merge(review_pages)
        .merge(admin_pages)
        .fallback(fallback)
        .layer(from_fn_with_state(
            Arc::<[String]>::from(st.config.hosts.clone()),
            harden,
        ))
        .with_state(st)
}

/// Unknown paths: without a session the same as any other route (401 / to the login page), so
/// that nothing about the routes is told to strangers; with one, 404.
async fn fallback(State(st): State<Shared>, req: Request) -> Response {
    let api = req.uri().path().starts_with("/api/");
    match (st.sessions.from_headers(req.headers()), api) {
        (None, true) => Failure::unauthorized().into_response(),
        (None, false) => Redirect::to("/login").into_response(),
        (Some(_), true) => Failure::not_found(format!(
            "no such API route: {} {}",
            req.method(),
            req.uri().path()
        ))
        .into_response(),
        (Some(_), false) => st.pages.not_found(),
    }
}

/// Refuse requests for host names this server is not (DNS rebinding) and cross-site writes;
/// add the safety headers; give bodiless errors (405, 413 ...) a JSON body that says what is
/// wrong.
async fn harden(State(hosts): State<Arc<[String]>>, req: Request, next: Next) -> Response {
    if let Some(name) = unknown_host(req.headers().get(HOST), &hosts) {
        return Failure::new(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "this server does not answer to the name `{}`; if that is how you reach ronda, \
                 add it to [http] hosts",
                crate::topic::shown(&name)
            ),
        )
        .into_response();
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        && let Some(origin) = req.headers().get(ORIGIN)
        && !same_origin(origin, req.headers().get(HOST))
    {
        return Failure::new(
            StatusCode::FORBIDDEN,
            "cross-site request refused (Origin is not this server)",
        )
        .into_response();
    }
    let mut res = next.run(req).await;
    let status = res.status();
    // axum answers an oversized body with 413 in plain text: the API's clients expect JSON
    let text_413 = status == StatusCode::PAYLOAD_TOO_LARGE
        && !res
            .headers()
            .get(CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if text_413 {
        res.headers_mut().remove(CONTENT_TYPE);
    }
    if (status.is_client_error() || status.is_server_error())
        && !res.headers().contains_key(CONTENT_TYPE)
    {
        let reason = if text_413 {
            "the request is too large: send less (a line or zone with fewer points)".to_string()
        } else {
            status.canonical_reason().unwrap_or("error").to_lowercase()
        };
        let mut replaced = Failure::new(status, reason).into_response();
        for (k, v) in res.headers() {
            if !replaced.headers().contains_key(k) {
                replaced.headers_mut().insert(k.clone(), v.clone());
            }
        }
        res = replaced;
    }
    let h = res.headers_mut();
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if !h.contains_key(CACHE_CONTROL) {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// The name of a `Host` header this server does not answer to, if it is one. A web page of
/// another site can make a browser send requests here under the site's own name (its DNS
/// pointing to this box); the session cookie does not go with them, but the public routes
/// would answer. Addresses, `localhost`, names without a dot and names under a local-only
/// suffix cannot be such a site's; any other name must be listed in `[http] hosts`.
fn unknown_host(host: Option<&HeaderValue>, hosts: &[String]) -> Option<String> {
    let host = host?.to_str().unwrap_or("?");
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(n, _)| n),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let local = name.parse::<std::net::IpAddr>().is_ok()
        || !name.contains('.')
        || [".localhost", ".local", ".lan", ".home.arpa", ".internal"]
            .iter()
            .any(|s| name.ends_with(s));
    (!(local || hosts.contains(&name))).then_some(name)
}

/// `Origin: http://host:port` names the `Host` the request was sent to.
fn same_origin(origin: &HeaderValue, host: Option<&HeaderValue>) -> bool {
    let (Ok(origin), Some(Ok(host))) = (origin.to_str(), host.map(|h| h.to_str())) else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
}

/// The session user the area check put into the request.
pub(crate) type Me = axum::Extension<SessionUser>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_or_listed_host_names_are_answered() {
        let h = |v: &'static str| HeaderValue::from_static(v);
        let listed = ["ronda.example.org".to_string()];
        for ok in [
            "127.0.0.1:8080",
            "192.168.1.5",
            "[::1]:8080",
            "localhost:8080",
            "pos-ronda",
            "ronda.local:8080",
            "ronda.lan",
            "Ronda.Example.Org:443",
        ] {
            assert_eq!(unknown_host(Some(&h(ok)), &listed), None, "{ok}");
        }
        assert_eq!(unknown_host(None, &listed), None);
        assert_eq!(
            unknown_host(Some(&h("evil.example:8080")), &listed),
            Some("evil.example".into())
        );
        assert!(unknown_host(Some(&h("ronda.example.org.evil.example")), &listed).is_some());
    }

    #[test]
    fn origin_check() {
        let host = HeaderValue::from_static("192.168.1.5:8080");
        let ok = HeaderValue::from_static("http://192.168.1.5:8080");
        let other = HeaderValue::from_static("https://evil.example");
        let null = HeaderValue::from_static("null");
        assert!(same_origin(&ok, Some(&host)));
        assert!(!same_origin(&other, Some(&host)));
        assert!(!same_origin(&null, Some(&host)));
        assert!(!same_origin(&ok, None));
    }
}
