//! `POST /api/login`, `POST /api/logout`, `GET /api/me`.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequest, Request, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde::Deserialize;
use serde_json::json;

use super::{Failure, Me, Shared};
use crate::api::auth::{self, MAX_PASSWORD_BYTES, Refused, home_of};
use crate::api::session;
use crate::config::User;

#[derive(Deserialize)]
struct Credentials {
    name: String,
    password: String,
}

/// Log in with JSON `{"name": ..., "password": ...}` or a form (`name`, `password`). Answers
/// JSON (`{"name", "role", "home"}`, or `{"error"}` with 400, 401, 429 + `Retry-After`); a form
/// post from a browser without `Accept: application/json` gets a redirect instead (to the home
/// page, or back to `/login?error=...`).
pub(super) async fn login(
    State(st): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let is_form = content_type(req.headers()).starts_with("application/x-www-form-urlencoded");
    let wants_redirect = is_form && !accepts_json(req.headers());
    let old_session = req.headers().clone();
    let creds = match read_credentials(&st, req).await {
        Ok(c) => c,
        Err(f) => return answer_failure(f, wants_redirect),
    };
    match check(&st, &creds.name, creds.password, peer.ip()).await {
        Ok(user) => {
            st.sessions.remove_from_headers(&old_session);
            let token = st.sessions.create(&user.name, user.role);
            tracing::info!(user = %user.name, role = user.role.as_str(), peer = %peer.ip(), "login");
            let home = home_of(user.role);
            let mut res = if wants_redirect {
                see_other(home)
            } else {
                Json(json!({"name": user.name, "role": user.role.as_str(), "home": home}))
                    .into_response()
            };
            if let Ok(v) = HeaderValue::from_str(&session::set_cookie(
                &token,
                st.sessions.ttl(),
                st.config.secure_cookie,
            )) {
                res.headers_mut().insert(SET_COOKIE, v);
            }
            res
        }
        Err(f) => answer_failure(f, wants_redirect),
    }
}

fn content_type(h: &HeaderMap) -> String {
    h.get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
}

fn accepts_json(h: &HeaderMap) -> bool {
    h.get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"))
}

fn see_other(to: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        res.headers_mut().insert(LOCATION, v);
    }
    res
}

fn answer_failure(f: Failure, redirect: bool) -> Response {
    if !redirect {
        return f.into_response();
    }
    let code = match f.status {
        StatusCode::TOO_MANY_REQUESTS => "locked",
        StatusCode::UNAUTHORIZED => "wrong",
        _ => "invalid",
    };
    see_other(&format!("/login?error={code}"))
}

async fn read_credentials(st: &Shared, req: Request) -> Result<Credentials, Failure> {
    let ct = content_type(req.headers());
    let creds = if ct.starts_with("application/json") {
        Json::<Credentials>::from_request(req, st)
            .await
            .map(|Json(c)| c)
            .map_err(|e| Failure::bad_request(e.body_text()))?
    } else if ct.starts_with("application/x-www-form-urlencoded") {
        Form::<Credentials>::from_request(req, st)
            .await
            .map(|Form(c)| c)
            .map_err(|e| Failure::bad_request(e.body_text()))?
    } else {
        return Err(Failure::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send JSON {\"name\": ..., \"password\": ...} (Content-Type: application/json) or a form",
        ));
    };
    if creds.name.trim().is_empty() {
        return Err(Failure::bad_request("name is empty"));
    }
    if creds.password.is_empty() {
        return Err(Failure::bad_request("password is empty"));
    }
    if creds.password.len() > MAX_PASSWORD_BYTES || creds.name.len() > 256 {
        return Err(Failure::bad_request("name or password is too long"));
    }
    Ok(creds)
}

fn locked(wait: Duration) -> Failure {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    Failure {
        retry_after: Some(secs),
        ..Failure::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many wrong passwords: try again in {secs} s"),
        )
    }
}

/// Check a name and password against the configured users, through the lockout. Also used by
/// `/metrics` with HTTP Basic credentials.
pub(crate) async fn check(
    st: &Shared,
    name: &str,
    password: String,
    ip: IpAddr,
) -> Result<User, Failure> {
    let user = st.users.get(name).cloned();
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    match auth::check_password(&st.limiter, &st.hashing, name, password, ip, hash).await {
        Ok(()) => Ok(user.expect("a password matched, so the user exists")),
        Err(Refused::Locked(wait)) => Err(locked(wait)),
        Err(Refused::Stopping) => Err(Failure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is stopping",
        )),
        Err(Refused::Wrong(lock)) => {
            st.count_failed_login();
            tracing::warn!(user = %crate::topic::shown(name), peer = %ip, locked_s = lock.map(|d| d.as_secs()), "failed login");
            let mut f = Failure::new(StatusCode::UNAUTHORIZED, "wrong name or password");
            f.retry_after = lock.map(|d| d.as_secs().max(1));
            Err(f)
        }
    }
}

/// End this session.
pub(super) async fn logout(State(st): State<Shared>, me: Me) -> Response {
    st.sessions.remove(&me.key);
    tracing::info!(user = %me.name, "logout");
    let mut res = Json(json!({"ok": true})).into_response();
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie(st.config.secure_cookie)) {
        res.headers_mut().insert(SET_COOKIE, v);
    }
    res
}

/// Who is logged in, for the pages.
pub(super) async fn me(State(st): State<Shared>, me: Me) -> Response {
    let left = me.expires.saturating_duration_since(Instant::now());
    let site = &st.config.site;
    Json(json!({
        "name": me.name,
        "role": me.role.as_str(),
        "home": home_of(me.role),
        "expires_in_s": left.as_secs(),
        "site": {"id": site.id, "name": site.name, "timezone": site.timezone.name()},
    }))
    .into_response()
}
