//! What every request of the hub's web server shares: the configuration, the store, the
//! sessions and the password brake, the rendered pages, who sees which village, how an event
//! and a village are shown, and the JSON error answer.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::store::{HubStore, StoredEvent, VillageState};
use super::subscriber::LinkState;
use crate::api::SiteInfo;
use crate::api::auth::{Limiter, Lockout, Refused, check_password};
use crate::api::pages::{I18N, LOGIN_BODY, LOGIN_JS, Page, STYLE, render_with};
use crate::api::session::Sessions;
use crate::config::{HubRole, HubSettings, HubUser, HubVillage};

const HUB_BODY: &str = include_str!("static/hub.html");
const HUB_JS: &str = include_str!("static/hub.js");
const HUB_CSS: &str = include_str!("static/hub.css");

/// How long a login lasts.
pub(super) const SESSION_TTL: std::time::Duration = std::time::Duration::from_secs(12 * 3600);
/// Password checks at once (each holds ~19 MiB and a core for tens of milliseconds).
const PARALLEL_HASHES: usize = 2;
/// Most events one answer of `/api/events` carries.
pub(super) const MAX_EVENTS: usize = 500;

/// A configured village and the password of the account it gave the hub (from the
/// environment; never shown).
pub(crate) struct VillageLink {
    pub cfg: HubVillage,
    pub password: Option<String>,
}

pub(crate) struct WebState {
    pub settings: HubSettings,
    pub users: HashMap<String, HubUser>,
    pub villages: HashMap<String, VillageLink>,
    pub store: Arc<HubStore>,
    pub link: Arc<LinkState>,
    pub sessions: Sessions<HubRole>,
    pub(super) limiter: Mutex<Limiter>,
    pub(super) hashing: Semaphore,
    pub(super) login_page: Page,
    pub(super) hub_page: Page,
    /// For the clips: no redirects (the village's account must not follow one elsewhere).
    pub agent: ureq::Agent,
}

pub(crate) type Shared = Arc<WebState>;

impl WebState {
    pub fn new(
        settings: HubSettings,
        passwords: HashMap<String, String>,
        store: Arc<HubStore>,
        link: Arc<LinkState>,
    ) -> Shared {
        for u in &settings.users {
            if let Err(e) = crate::api::auth::check_hash(&u.password_hash) {
                tracing::error!(user = %u.name, "users: password_hash is {e}; this user cannot log in (make one with `ronda passwd`)");
            }
        }
        let site = SiteInfo {
            id: "hub".into(),
            name: settings.name.clone(),
            timezone: settings.timezone,
            language: settings.language,
        };
        let with = |js: &str| format!("{I18N}\n{js}");
        let login_page = render_with(
            &site,
            "login",
            "login-page",
            LOGIN_BODY,
            &with(LOGIN_JS),
            STYLE,
            "",
        );
        // the clips play from this server (the hub's proxy): media-src for the video element
        let hub_page = render_with(
            &site,
            "kota",
            "hub-page",
            HUB_BODY,
            &with(HUB_JS),
            &format!("{STYLE}\n{HUB_CSS}"),
            "media-src 'self'; ",
        );
        let users = settings
            .users
            .iter()
            .map(|u| (u.name.clone(), u.clone()))
            .collect();
        let villages = settings
            .villages
            .iter()
            .map(|v| {
                let link = VillageLink {
                    cfg: v.clone(),
                    password: passwords.get(&v.site).cloned(),
                };
                (v.site.clone(), link)
            })
            .collect();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(std::time::Duration::from_secs(10)))
            .timeout_recv_response(Some(std::time::Duration::from_secs(30)))
            .build()
            .new_agent();
        Arc::new(WebState {
            settings,
            users,
            villages,
            store,
            link,
            sessions: Sessions::new(SESSION_TTL),
            limiter: Mutex::new(Limiter::new(Lockout::default())),
            hashing: Semaphore::new(PARALLEL_HASHES),
            login_page,
            hub_page,
            agent,
        })
    }

    /// Whether `user` may see village `site` (configured or not).
    pub fn sees(&self, user: &HubUser, site: &str) -> bool {
        match user.role {
            HubRole::CityAdmin => true,
            HubRole::DistrictOfficer => self
                .villages
                .get(site)
                .is_some_and(|v| Some(&v.cfg.district) == user.district.as_ref()),
        }
    }

    /// The villages `user` sees, for a store query (`None`: all).
    pub(super) fn visible(&self, user: &HubUser) -> Option<Vec<String>> {
        match user.role {
            HubRole::CityAdmin => None,
            HubRole::DistrictOfficer => Some(
                self.villages
                    .values()
                    .filter(|v| Some(&v.cfg.district) == user.district.as_ref())
                    .map(|v| v.cfg.site.clone())
                    .collect(),
            ),
        }
    }

    /// The hub's midnight, in ms: "today" of the gate counts and the alerts.
    pub(super) fn today_ms(&self) -> i64 {
        let tz = self.settings.timezone;
        let day = Utc::now().with_timezone(&tz).date_naive();
        let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
        tz.from_local_datetime(&midnight)
            .earliest()
            .map_or(0, |t| t.timestamp_millis())
    }

    /// The hub page's link to an event's clip, if the hub can fetch it.
    pub(super) fn clip_url(&self, e: &StoredEvent) -> Option<String> {
        let v = self.villages.get(&e.site)?;
        (e.clip.is_some() && v.cfg.url.is_some() && v.password.is_some())
            .then(|| format!("/villages/{}/incidents/{}/clip.mp4", e.site, e.id))
    }

    pub(super) fn event_json(&self, e: &StoredEvent) -> Value {
        let village = self.villages.get(&e.site).map(|v| v.cfg.name.clone());
        json!({
            "seq": e.seq,
            "site": e.site,
            "village": village,
            "id": e.id,
            "camera": e.camera,
            "type": e.kind,
            "severity": e.severity,
            "time": e.time,
            "received_ms": e.received_ms,
            "clip": self.clip_url(e),
            "event": serde_json::from_str::<Value>(&e.json).unwrap_or(Value::Null),
        })
    }

    pub(super) fn village_json(&self, site: &str, state: Option<&VillageState>) -> Value {
        let cfg = self.villages.get(site).map(|v| &v.cfg);
        let d = VillageState::default();
        let s = state.unwrap_or(&d);
        json!({
            "site": site,
            "name": cfg.map(|c| c.name.clone()),
            "district": cfg.map(|c| c.district.clone()),
            "known": cfg.is_some(),
            "availability": s.availability,
            "availability_ms": s.availability_ms,
            "last_seen_ms": s.last_seen_ms,
            "open_alerts": s.alerts,
            "cameras": s.cameras,
            "cameras_down": s.cameras_down,
            "count_in": s.count_in,
            "count_out": s.count_out,
        })
    }

    /// Ask the store on the blocking pool.
    pub(super) async fn ask<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&HubStore) -> Result<T, super::store::HubStoreError> + Send + 'static,
    ) -> Result<T, Failure> {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || f(&store)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                tracing::error!("hub: the store failed to answer: {e}");
                Err(Failure::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the store did not answer",
                ))
            }
            Err(_) => Err(Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the store did not answer",
            )),
        }
    }

    /// One stored event of `site`.
    pub async fn store_event(
        self: &Arc<Self>,
        site: String,
        id: String,
    ) -> Result<Option<StoredEvent>, Failure> {
        self.ask(move |s| s.event(&site, &id)).await
    }
}

/// An error answer: `{"error": "..."}` with its status.
#[derive(Debug)]
pub(crate) struct Failure {
    pub status: StatusCode,
    pub message: String,
    pub retry_after: Option<u64>,
}

impl Failure {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn not_found(message: impl Into<String>) -> Failure {
        Failure::new(StatusCode::NOT_FOUND, message)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let mut res = (self.status, Json(json!({ "error": self.message }))).into_response();
        if let Some(s) = self.retry_after {
            res.headers_mut().insert(RETRY_AFTER, HeaderValue::from(s));
        }
        res
    }
}

/// The logged-in user, put into the request by `web::require`.
#[derive(Clone, Debug)]
pub(crate) struct Who(pub HubUser);

pub(crate) fn no_village(site: &str) -> Failure {
    Failure::not_found(format!("no village `{}` here", crate::topic::shown(site)))
}

fn locked(wait: std::time::Duration) -> Failure {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    Failure {
        retry_after: Some(secs),
        ..Failure::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many wrong passwords: try again in {secs} s"),
        )
    }
}

/// A hub user's password, through the village's brake and argon2 check (the login page and
/// `/metrics`' HTTP Basic both ask here).
pub(super) async fn check(
    st: &Shared,
    name: &str,
    password: String,
    ip: IpAddr,
) -> Result<HubUser, Failure> {
    let user = st.users.get(name).cloned();
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    match check_password(&st.limiter, &st.hashing, name, password, ip, hash).await {
        Ok(()) => Ok(user.expect("a password matched, so the user exists")),
        Err(Refused::Locked(wait)) => Err(locked(wait)),
        Err(Refused::Stopping) => Err(Failure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is stopping",
        )),
        Err(Refused::Wrong(lock)) => {
            tracing::warn!(user = %crate::topic::shown(name), peer = %ip, "hub: failed login");
            let mut f = Failure::new(StatusCode::UNAUTHORIZED, "wrong name or password");
            f.retry_after = lock.map(|d| d.as_secs().max(1));
            Err(f)
        }
    }
}
