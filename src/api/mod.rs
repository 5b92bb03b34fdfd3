//! HTTP API and web UI (DESIGN.md "HTTP API and web UI"): login with a session cookie, the guard
//! post's page (live alert feed, gate counts, camera health), `/metrics` for Prometheus.
//!
//! Uses (of the crate, besides its own folder): backoff, config, events, gate, geometry, ingest, rules, store, topic.
//!
//! The server knows the running pipeline only through the [`Village`] trait, so it is tested with
//! a fake and the pipeline stays free of HTTP.
//!
//! Running it: either `serve(listener, config, village, shutdown).await` inside a tokio runtime
//! (spawn it), or [`ApiServer::start`], which binds the address at once (a port in use fails
//! there), runs the server on its own thread with its own small runtime, and stops it with
//! [`ApiServer::shutdown`]. Open live feeds end when the server stops, so shutdown never waits
//! for a browser.
//!
//! Who may use which route: see [`auth`] (the role matrix). Every route needs a logged-in user
//! except `GET /login`, `POST /api/login` and, unless [`ApiConfig::metrics_public`] is off,
//! `/metrics`. No response carries a password hash or a camera URL with its password.

pub mod auth;
mod routes;
pub mod session;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;

use crate::config::{Language, Settings, User};
use crate::events::{CountsView, Event, Severity};
use crate::ingest::camera::Health;
use crate::rules::{CountingParams, LineSpec, Preview};
use crate::store::Store;

pub use auth::{Lockout, hash_password, verify_password};
/// The pages' shell, style, dictionary and login form, for the city hub's pages.
pub(crate) use routes::pages;

/// What the HTTP API needs from the running pipeline. `Live` implements it; tests use a fake.
///
/// The server calls these methods on tokio's blocking pool (never on the async runtime), so they
/// may lock mutexes or read SQLite; they should still answer within milliseconds.
pub trait Village: Send + Sync + 'static {
    /// Every configured camera, in config order, as it is now.
    fn cameras(&self) -> Vec<CameraStatus>;

    /// The counts of every line of every camera since the last daily reset, in config order.
    fn line_counts(&self) -> Vec<LineCount>;

    /// The newest stored events at or above `min_severity`, newest first, at most `limit`, each
    /// with its acknowledgement if it has one. For a page that opens (or reconnects) to show
    /// what it missed.
    fn recent_events(&self, limit: usize, min_severity: Severity) -> Vec<FeedItem>;

    /// Every event from now on, once it is stored. A subscriber that falls behind the channel's
    /// capacity loses the oldest (`RecvError::Lagged`) and is told so; the sender being dropped
    /// (pipeline stopped) ends the live feeds.
    fn subscribe(&self) -> broadcast::Receiver<Event>;

    /// A guard saw the event `event_id`: store who and when, publish it (MQTT `ack`), and return
    /// the record. Acknowledging an event that already has an acknowledgement returns the
    /// first one unchanged.
    fn acknowledge(&self, event_id: &str, user: &str) -> Result<AckRecord, AckError>;

    /// Stored events the MQTT broker has not acknowledged yet.
    fn outbox_backlog(&self) -> u64;

    /// Whether the MQTT client is connected to its broker now.
    fn mqtt_connected(&self) -> bool;

    /// Times the MQTT broker became unreachable since the start.
    fn mqtt_outages(&self) -> u64 {
        0
    }

    /// Times the webhook's endpoint stopped answering since the start; `None` without a
    /// webhook.
    fn webhook_outages(&self) -> Option<u64> {
        None
    }

    /// Times each running phone destination's service stopped answering since the start, in
    /// config order.
    fn notify_outages(&self) -> Vec<DestinationOutages> {
        Vec::new()
    }

    /// Messages set aside (kept in the store, never sent) because the broker or the MQTT client
    /// would refuse them for their size or shape.
    fn mqtt_quarantined(&self) -> u64 {
        0
    }

    /// What the embedded broker's front refused since the start: (cause, count) for every
    /// cause; empty with an external broker.
    fn mqtt_refusals(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }

    /// The guard apps with a persistent session on the embedded broker (the admin page's list);
    /// `None` with an external broker, which keeps its sessions itself.
    fn guard_apps(&self) -> Option<GuardApps> {
        None
    }

    /// Forget guard app `client_id`'s persistent session on the embedded broker (a phone lost
    /// or replaced): the broker drops what it queued for it, and it leaves the list.
    fn forget_guard_app(&self, client_id: &str) -> Result<(), ForgetAppError> {
        let _ = client_id;
        Err(ForgetAppError::NotKept)
    }

    /// The up-link to the city's broker; `None` when there is none.
    fn uplink(&self) -> Option<UplinkFigures> {
        None
    }

    /// The pipeline's queues and how full they are.
    fn queues(&self) -> Vec<QueueDepth> {
        Vec::new()
    }

    /// The store holding the incidents (reviewers) and the configuration versions (admins);
    /// `None` when this village keeps none (the incident and version routes answer 503).
    fn store(&self) -> Option<Arc<Store>> {
        None
    }

    /// Where acknowledgements made elsewhere (a phone's button) reach the live feeds; `None`:
    /// the server keeps its own channel and shows only the ones made through it.
    fn ack_feed(&self) -> Option<broadcast::Sender<AckRecord>> {
        None
    }

    /// The gate book's keeper as it last looked (its clock, the next daily report); `None`
    /// when this village runs none.
    fn gate_status(&self) -> Option<crate::gate::KeeperStatus> {
        None
    }

    /// A fresh picture of camera `camera` (its newest decoded frame) as JPEG, for the admin's
    /// line and zone editor; `None` while the camera has no picture (offline, unknown).
    fn snapshot(&self, camera: &str) -> Option<CameraPicture> {
        let _ = camera;
        None
    }

    /// What `lines` would have counted on camera `camera` over the minutes of tracks it keeps
    /// for the editor's "preview this line" (`rules::preview`); `None` when it keeps none
    /// (unknown camera, one that could not start, or previews off).
    fn preview_lines(
        &self,
        camera: &str,
        lines: &[LineSpec],
        params: &CountingParams,
    ) -> Option<Preview> {
        let _ = (camera, lines, params);
        None
    }

    /// Apply validated settings to the running pipeline without a restart: lines, zones, their
    /// thresholds, curfew windows and mask checks of the cameras (anything else needs a
    /// restart and is left as it runs). Returns what it changed, in words, or why it could not.
    fn apply_settings(&self, settings: &Settings) -> Result<Vec<String>, String> {
        let _ = settings;
        Err("this village cannot change its rules while running".into())
    }
}

/// A camera's picture for the editor.
#[derive(Clone, Debug, PartialEq)]
pub struct CameraPicture {
    pub jpeg: Vec<u8>,
    /// The picture's size in pixels: the frame lines and zones are drawn in.
    pub width: u32,
    pub height: u32,
    pub at: DateTime<Utc>,
}

/// One camera as the guard view and `/metrics` show it. Deliberately no URL (it may hold a
/// password).
#[derive(Clone, Debug, PartialEq)]
pub struct CameraStatus {
    pub id: String,
    pub name: String,
    /// `role = "gate"` (counting) rather than an area camera.
    pub gate: bool,
    pub health: Health,
    /// Since when `health` holds, if it changed since the start.
    pub since: Option<DateTime<Utc>>,
    /// Frames per second the camera delivers (decoded), over the last few seconds.
    pub delivered_fps: f64,
    /// Frames per second analysed (after the motion gate and the analysis rate).
    pub analysed_fps: f64,
    /// Frames handed to the analysis since the start (after the analysis rate).
    pub frames_delivered: u64,
    /// Frames analysed since the start (delivered, not dropped, past the motion gate).
    pub frames_analysed: u64,
    /// Frames dropped since the start (the analysis was busy: the newest frame is kept).
    pub frames_dropped: u64,
    /// Reconnects since the start.
    pub reconnects: u64,
    /// Times the camera went offline since the start.
    pub offline: u64,
    /// Mean person-detection time per analysed frame, if any was analysed.
    pub inference_ms: Option<f64>,
    /// Mean decode time per picture, if any was decoded.
    pub decode_ms: Option<f64>,
    /// Frames waiting for the detector (0 or 1: each camera keeps only its newest).
    pub frames_waiting: u64,
    /// Mean luma (0-255) of the pictures analysed lately, if any (`detect::light`).
    pub brightness: Option<f64>,
    /// The last picture analysed was dark and lifted before detection (night).
    pub low_light: bool,
    /// Frames the motion gate kept from the detector (nothing moved) since the start.
    pub frames_still: u64,
    /// Changes of the whole picture's light the motion gate saw (infrared switch, exposure
    /// jump) since the start.
    pub light_changes: u64,
    /// The camera saw motion in low light for hours and found nobody: too dark to detect
    /// (`detect::dark`).
    pub too_dark: bool,
    /// The motion gate saw changes all over the view lately (rain, snow, a swarm in front of
    /// the lamp, a shaking camera): not woken by motion, looked at every second instead.
    pub noisy: bool,
    /// A gate camera whose pictures the detector does not keep up with (the box is overloaded:
    /// `app::keep_up`).
    pub behind: bool,
    /// Head regions searched for a face (gate cameras that check masks), and searches that
    /// failed, since the start.
    pub face_looks: u64,
    pub face_errors: u64,
    /// Frames whose person detection failed since the start.
    pub inference_errors: u64,
    /// Alerts held back by the cooldown (the same incident again within the window).
    pub alerts_suppressed: u64,
    /// Pictures not decoded at all since the start: the camera was quiet and only its key
    /// frames were decoded.
    pub pictures_skipped: u64,
    /// The camera is quiet and decodes only its key frames now.
    pub keyframes_only: bool,
    /// Searches for people of an area camera that searches regions (`[detector]
    /// area_regions`): of the whole picture, of regions only, and the regions searched.
    pub whole_searches: u64,
    pub region_searches: u64,
    pub regions_searched: u64,
}

/// How full one of the pipeline's queues is (for `/metrics`).
#[derive(Clone, Debug, PartialEq)]
pub struct QueueDepth {
    /// `events` (detector to the event writer), `clips` (alerts whose clip is being recorded),
    /// `acks` (acknowledgements the broker has not confirmed), `webhook` (alerts still to POST),
    /// `notify` (events the phone destinations have still to look at, all together).
    pub queue: &'static str,
    pub depth: u64,
    /// Its bound, if it has one.
    pub capacity: Option<u64>,
}

/// The up-link to the city's broker (`[uplink]`), for `/metrics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UplinkFigures {
    /// Events stored and not yet acknowledged by the city's broker.
    pub pending: u64,
    /// Times the city's broker became unreachable since the start.
    pub outages: u64,
    pub connected: bool,
}

/// The guard apps the embedded broker keeps a session for, and for how long.
#[derive(Clone, Debug, PartialEq)]
pub struct GuardApps {
    /// Connected ones first, then the most recently heard.
    pub apps: Vec<GuardApp>,
    /// A session not heard from for this long is forgotten at the next start of the box (the
    /// admin page says so, with the figure ronda uses, not one written into the page).
    pub keep: std::time::Duration,
}

/// A guard app's persistent session on the embedded broker (the admin page's list).
#[derive(Clone, Debug, PartialEq)]
pub struct GuardApp {
    /// The session as the broker keeps it (client id, user, filters, last heard).
    pub session: crate::store::MqttSession,
    /// Connected now.
    pub online: bool,
    /// One of its filters takes the alerts (`<prefix>/events`).
    pub reads_events: bool,
}

/// One phone destination's outages (for `/metrics`).
#[derive(Clone, Debug, PartialEq)]
pub struct DestinationOutages {
    /// The `[[notify]]` destination's name.
    pub destination: String,
    /// Its service: `telegram`, `waha`, `gateway-form` or `ntfy`.
    pub service: &'static str,
    /// Times its service stopped answering since the start.
    pub outages: u64,
}

/// The counts of one line.
#[derive(Clone, Debug, PartialEq)]
pub struct LineCount {
    pub camera: String,
    pub line: String,
    pub counts: CountsView,
    /// Start of the counts (the last daily reset).
    pub since: DateTime<Utc>,
}

/// Who acknowledged an event, and when.
#[derive(Clone, Debug, PartialEq)]
pub struct AckRecord {
    pub event_id: String,
    pub user: String,
    pub at: DateTime<Utc>,
}

/// Why an acknowledgement failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum AckError {
    /// No stored event has this id (answered 404).
    #[error("no event with this id")]
    UnknownEvent,
    /// The store failed (answered 500 with this message: no secrets in it).
    #[error("{0}")]
    Failed(String),
}

/// Why a guard app's session was not forgotten.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ForgetAppError {
    /// No embedded broker keeps sessions here (answered 503).
    #[error(
        "this box keeps no guard apps' sessions: the MQTT broker is an external one, which \
         keeps its sessions itself"
    )]
    NotKept,
    /// No session has this client id (answered 404).
    #[error("no guard app with client id `{0}`")]
    Unknown(String),
    /// The app is connected now (answered 409): forgetting it would cut it off mid-round.
    #[error(
        "guard app `{0}` is connected now: only an app that is away can be forgotten (switch \
         it off, or change its user's password in [[mqtt.users]] first)"
    )]
    Connected(String),
    /// The broker did not drop the session (answered 500 with this message: no secrets).
    #[error("{0}")]
    Failed(String),
}

/// An event with its acknowledgement, if any.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedItem {
    pub event: Event,
    pub ack: Option<AckRecord>,
}

/// The site as the pages show it.
#[derive(Clone, Debug, PartialEq)]
pub struct SiteInfo {
    pub id: String,
    pub name: String,
    pub timezone: chrono_tz::Tz,
    pub language: Language,
}

/// Everything the server needs from the configuration.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    pub users: Vec<User>,
    /// `/metrics` without login (`[http] metrics_public`, default true). When false it needs a
    /// session or HTTP Basic credentials of any configured user (for Prometheus'
    /// `basic_auth`).
    pub metrics_public: bool,
    pub site: SiteInfo,
    /// The redacted configuration for `GET /api/admin/config` (no hashes, no passwords).
    pub config_summary: serde_json::Value,
    /// How long a login lasts (12 h).
    pub session_ttl: Duration,
    /// Keep-alive comments on the live feed (15 s).
    pub keep_alive: Duration,
    pub lockout: Lockout,
    /// Where incident clips and snapshots are (`[store] clips_dir`); the paths in the store
    /// are relative to it.
    pub clips_dir: std::path::PathBuf,
    /// The configuration file the admin editor reads and writes back (comments and order
    /// kept); `None`: the editor only shows the configuration.
    pub config_path: Option<std::path::PathBuf>,
    /// Session cookies marked `Secure` (`[http] secure_cookie`, behind a TLS proxy).
    pub secure_cookie: bool,
    /// Host names answered to besides the local ones (`[http] hosts`).
    pub hosts: Vec<String>,
    /// `[gatebook]`: the report's time for the gate book's pages.
    pub gatebook: crate::config::Gatebook,
    /// `[site] counts_reset`: the counting day the starting occupancy belongs to.
    pub counts_reset: chrono::NaiveTime,
}

impl ApiConfig {
    /// From the validated settings.
    pub fn from_settings(s: &Settings) -> ApiConfig {
        ApiConfig {
            users: s.http.users.clone(),
            metrics_public: s.http.metrics_public,
            site: SiteInfo {
                id: s.site.id.clone(),
                name: s.site.name.clone(),
                timezone: s.site.timezone,
                language: s.site.language,
            },
            config_summary: config_summary(s),
            session_ttl: Duration::from_secs(12 * 3600),
            keep_alive: Duration::from_secs(15),
            lockout: Lockout::default(),
            clips_dir: s.store.clips_dir.clone(),
            config_path: None,
            secure_cookie: s.http.secure_cookie,
            hosts: s.http.hosts.clone(),
            gatebook: s.gatebook.clone(),
            counts_reset: s.site.counts_reset,
        }
    }
}

/// The configuration as admins may see it: user names and roles but no hashes, camera URLs with
/// the password replaced by `***`, the webhook URL redacted, the phone destinations without
/// their tokens (only the names of the variables holding them) and chat ids.
pub fn config_summary(s: &Settings) -> serde_json::Value {
    use serde_json::json;
    let lang = match s.site.language {
        Language::Id => "id",
        Language::En => "en",
    };
    let cameras: Vec<_> = s
        .cameras
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "name": c.name,
                "url": c.redacted_url(),
                "role": if c.role == crate::config::CameraRole::Gate { "gate" } else { "area" },
                "analysis_fps": c.analysis_fps,
                "mask_check": c.mask_check,
                "motion_gate": c.motion_gate,
                "size": c.size.map(|(w, h)| [w, h]),
                "lines": c.lines.iter().map(|l| json!({
                    "name": l.name,
                    "points": [[l.a.x, l.a.y], [l.b.x, l.b.y]],
                    "no_mask_alert": l.no_mask_alert,
                })).collect::<Vec<_>>(),
                "zones": c.zones.iter().map(|z| json!({
                    "name": z.name,
                    "kind": z.kind.as_str(),
                    "polygon": z.polygon.points.iter().map(|p| [p.x, p.y]).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "site": {
            "id": s.site.id,
            "name": s.site.name,
            "timezone": s.site.timezone.name(),
            "language": lang,
            "counts_reset": s.site.counts_reset.format("%H:%M").to_string(),
        },
        "http": {
            "listen": s.http.listen,
            "users": s.http.users.iter().map(|u| json!({"name": u.name, "role": u.role.as_str()})).collect::<Vec<_>>(),
        },
        "mqtt": {
            "embedded": s.mqtt.embedded,
            "listen": s.mqtt.listen,
            "url": s.mqtt.url.as_deref().map(crate::config::redact_url),
            "topic_prefix": s.mqtt.topic_prefix,
            "users": s.mqtt.users.iter().map(|u| json!({"name": u.name, "role": u.role.as_str()})).collect::<Vec<_>>(),
        },
        "store": {
            "retention_days": s.store.retention_days,
            "max_gb": s.store.max_gb,
            "keep_free_gb": s.store.keep_free_gb,
        },
        "webhook": s.webhook.as_ref().map(|w| json!({"url": w.redacted_url()})),
        "notify": s.notify.iter().map(|n| json!({
            "name": n.name,
            "kind": n.service.kind(),
            "enabled": n.enabled,
            "min_severity": n.min_severity.as_str(),
        })).collect::<Vec<_>>(),
        "cameras": cameras,
    })
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("http.listen {listen}: cannot listen there: {reason}")]
    Bind { listen: String, reason: String },
    #[error("http server: {0}")]
    Serve(String),
}

/// Run the server on `listener` until `shutdown` completes; then open live feeds end, running
/// requests finish and it returns. Spawn it on a tokio runtime.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: ApiConfig,
    village: Arc<dyn Village>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ApiError> {
    let state = routes::AppState::new(config, village);
    let stop = state.stop.clone();
    let app = routes::router(state);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        stop.cancel();
    })
    .await
    .map_err(|e| ApiError::Serve(e.to_string()))
}

/// The server on its own thread and runtime (two worker threads; argon2 on the blocking pool).
#[derive(Debug)]
pub struct ApiServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How long [`ApiServer::shutdown`] waits for running requests.
const STOP_GRACE: Duration = Duration::from_secs(5);

impl ApiServer {
    /// Bind `listen` (e.g. `127.0.0.1:8080`; port 0 picks a free one) and start serving.
    pub fn start(
        listen: &str,
        config: ApiConfig,
        village: Arc<dyn Village>,
    ) -> Result<ApiServer, ApiError> {
        let bind_err = |e: std::io::Error| ApiError::Bind {
            listen: listen.to_string(),
            reason: e.to_string(),
        };
        let std_listener = std::net::TcpListener::bind(listen).map_err(bind_err)?;
        Self::start_on(std_listener, config, village)
    }

    /// Start serving on a listener bound beforehand: `ronda run` binds `[http] listen` before
    /// anything else takes a port (the embedded broker's own loopback port is a free one picked
    /// at start, which could otherwise be this very port).
    pub fn start_on(
        std_listener: std::net::TcpListener,
        config: ApiConfig,
        village: Arc<dyn Village>,
    ) -> Result<ApiServer, ApiError> {
        let addr = std_listener.local_addr().map_err(|e| ApiError::Bind {
            listen: "the web UI's listener".into(),
            reason: e.to_string(),
        })?;
        let bind_err = |e: std::io::Error| ApiError::Bind {
            listen: addr.to_string(),
            reason: e.to_string(),
        };
        std_listener.set_nonblocking(true).map_err(bind_err)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(16)
            .thread_name("http")
            .enable_all()
            .build()
            .map_err(|e| ApiError::Serve(e.to_string()))?;
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(std_listener).map_err(bind_err)?
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("http".into())
            .spawn(move || {
                let stopping = tokio_util::sync::CancellationToken::new();
                let signal = stopping.clone();
                runtime.block_on(async move {
                    let mut server = tokio::spawn(serve(listener, config, village, async move {
                        let _ = rx.await;
                        signal.cancel();
                    }));
                    tokio::select! {
                        r = &mut server => match r {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => tracing::error!("{e}"),
                            Err(e) => tracing::error!("http server failed: {e}"),
                        },
                        _ = async {
                            stopping.cancelled().await;
                            tokio::time::sleep(STOP_GRACE).await;
                        } => tracing::warn!(
                            "http: requests still running {} s after the stop; dropping them",
                            STOP_GRACE.as_secs()
                        ),
                    }
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .map_err(|e| ApiError::Serve(e.to_string()))?;
        tracing::info!(%addr, "web UI and API listening");
        Ok(ApiServer {
            addr,
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting, end the live feeds, let running requests finish, join the thread.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}
