//! The settings types: what a configuration file means once read and checked.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveTime;
use toml::Table;

use super::read::Reader;
use super::read_settings;
use super::secrets::{expand_env, on_local_network, redact_url, redact_webhook_url, url_host};
use super::{ConfigError, DEFAULT_CONFIG, Notify, syntax_reason};
use crate::detect::{DetectorOptions, Provider, Variant};
use crate::events::{EventKind, Severity};
use crate::geometry::{Point, Polygon, Segment};
use crate::rules::{
    Anchor, CountingParams, LineRules, LineSpec, Severities, Window, ZoneKind, ZoneSpec,
};
use crate::track::TrackerParams;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    Id,
    En,
}

impl Language {
    /// The event type in the guards' words (the phones' messages, the gate book's daily
    /// report).
    pub fn kind_words(self, k: EventKind) -> &'static str {
        match (k, self) {
            (EventKind::LineCrossing, Language::Id) => "Orang melewati garis",
            (EventKind::LineCrossing, Language::En) => "Someone crossed a line",
            (EventKind::NoMask, Language::Id) => "Tanpa masker di gerbang",
            (EventKind::NoMask, Language::En) => "No mask at the gate",
            (EventKind::CurfewEntry, Language::Id) => "Masuk saat jam malam",
            (EventKind::CurfewEntry, Language::En) => "Entry during the curfew",
            (EventKind::Intrusion, Language::Id) => "Penyusup di area terlarang",
            (EventKind::Intrusion, Language::En) => "Intruder in a restricted area",
            (EventKind::Loitering, Language::Id) => "Orang berlama-lama",
            (EventKind::Loitering, Language::En) => "Someone loitering",
            (EventKind::Crowding, Language::Id) => "Kerumunan",
            (EventKind::Crowding, Language::En) => "Crowding",
            (EventKind::CameraOffline, Language::Id) => "Kamera mati",
            (EventKind::CameraOffline, Language::En) => "Camera offline",
            (EventKind::CameraOnline, Language::Id) => "Kamera menyala lagi",
            (EventKind::CameraOnline, Language::En) => "Camera back online",
            (EventKind::UnrecordedEntry, Language::Id) => "Masuk malam belum dicatat di buku tamu",
            (EventKind::UnrecordedEntry, Language::En) => {
                "Night entry not recorded in the gate book"
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Site {
    pub id: String,
    pub name: String,
    pub timezone: chrono_tz::Tz,
    pub language: Language,
    /// Local time at which gate counts start again from zero each day.
    pub counts_reset: NaiveTime,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Mqtt {
    /// Run the embedded broker (rumqttd) on `listen`.
    pub embedded: bool,
    pub listen: String,
    /// An external broker `mqtt://host:1883` or `mqtts://host:8883` (instead of the embedded one).
    pub url: Option<String>,
    pub username: Option<String>,
    /// Name of the environment variable that holds the password (never the password itself).
    pub password_env: Option<String>,
    pub ca_file: Option<PathBuf>,
    /// The embedded broker's TLS: PEM certificate and key (both or neither).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Topic prefix, default `ronda/<site id>`.
    pub topic_prefix: String,
    /// `[[mqtt.users]]`: the embedded broker's users with their rights (guard, reader).
    pub users: Vec<super::MqttUser>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DetectorSettings {
    pub models_dir: Option<PathBuf>,
    pub ort_library: Option<PathBuf>,
    /// Manifest key of the person model (`person` = the default, NanoDet-m).
    pub person_model: String,
    /// Manifest key of the person model for area cameras (`None`: `person_model`, the default;
    /// `person_small`: NanoDet-m at 320, 0.57 of the time). Gate cameras keep `person_model`.
    pub area_person_model: Option<String>,
    /// Area cameras search square regions around motion and tracked people rather than the
    /// whole picture, which is still searched every few seconds (`detect::region`).
    pub area_regions: bool,
    pub variant: Variant,
    pub threads: usize,
    pub provider: Provider,
    pub score_threshold: f32,
    /// Lift dark pictures before person detection (`low_light = "auto"`, the default; `"off"`).
    pub low_light: bool,
    /// Int8 models computed exactly on every CPU (`int8_arithmetic = "exact"`, the default) or
    /// with the fast kernels that saturate on x86 without VNNI (`"fast"`): see
    /// [`crate::detect::RuntimeOptions::int8_exact`].
    pub int8_exact: bool,
    /// A camera whose motion gate saw motion in low light this long with no person found is
    /// flagged too dark to detect (`too_dark_after_hours`, default 3; see `detect::dark`).
    pub too_dark_after: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Store {
    pub path: PathBuf,
    pub clips_dir: PathBuf,
    pub retention_days: u32,
    pub max_gb: f64,
    /// Free space kept on the disk of `clips_dir`: below it retention removes the oldest
    /// incident files at once (a full disk would stop the event store, and the watch with it).
    pub keep_free_gb: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Guard,
    Reviewer,
    Admin,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Guard => "guard",
            Role::Reviewer => "reviewer",
            Role::Admin => "admin",
        }
    }
}

#[derive(Clone, PartialEq)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// argon2 PHC string (`ronda passwd`); never shown anywhere.
    pub password_hash: String,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("password_hash", &"<hidden>")
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Http {
    pub listen: String,
    pub users: Vec<User>,
    /// `/metrics` without login (default true: Prometheus on the box scrapes it). When false it
    /// needs a session or HTTP Basic credentials of a configured user.
    pub metrics_public: bool,
    /// Mark the session cookie `Secure` (browsers send it over HTTPS only): for ronda behind a
    /// TLS proxy. Off by default: on the village network ronda is reached over plain HTTP,
    /// where a `Secure` cookie would never come back and nobody could log in.
    pub secure_cookie: bool,
    /// Host names the web UI answers to besides addresses, `localhost`, names without a dot
    /// and names under `.local`, `.lan`, `.home.arpa`, `.internal` (against DNS rebinding).
    pub hosts: Vec<String>,
    /// The address guards reach the web UI at from outside the village network (through a
    /// tunnel or proxy), without a trailing `/`. Phone messages link to the incident only when
    /// it is set: a link to the box's own address would lead nowhere from a phone on mobile data.
    pub public_url: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CameraRole {
    /// The village gate: counting, mask checks, curfew.
    Gate,
    /// Anywhere else: zones.
    Area,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub name: String,
    pub a: Point,
    pub b: Point,
    pub anchor: Anchor,
    /// Entering (`in`) during this window raises `curfew_entry`.
    pub curfew: Option<Window>,
    /// A person crossing `in` without a mask raises `no_mask`.
    pub no_mask_alert: bool,
}

impl Line {
    pub fn spec(&self) -> LineSpec {
        LineSpec {
            name: self.name.clone(),
            segment: Segment::new(self.a, self.b),
            anchor: self.anchor,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Zone {
    pub name: String,
    pub polygon: Polygon,
    pub kind: ZoneKind,
    pub active: Option<Window>,
    pub loiter_seconds: f64,
    pub max_people: u32,
}

impl Zone {
    /// The zone as the rules see it (a person is inside when their feet are).
    pub fn spec(&self) -> ZoneSpec {
        ZoneSpec {
            name: self.name.clone(),
            polygon: self.polygon.clone(),
            kind: self.kind,
            active: self.active,
            loiter_seconds: self.loiter_seconds,
            max_people: self.max_people,
            anchor: Anchor::default(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Camera {
    pub id: String,
    pub name: String,
    /// As written in the file, `${VAR}` references unexpanded.
    pub url: String,
    pub role: CameraRole,
    pub analysis_fps: f64,
    pub mask_check: bool,
    pub motion_gate: bool,
    pub size: Option<(u32, u32)>,
    pub lines: Vec<Line>,
    pub zones: Vec<Zone>,
}

impl Camera {
    /// The URL with any password replaced by `***`: for logs, the API and the UI.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }

    /// The alert rules of one of this camera's lines: the curfew, and the mask check, which
    /// needs a gate camera with `mask_check` and the line's `no_mask_alert`.
    pub fn line_rules(&self, line: &Line) -> LineRules {
        LineRules {
            curfew: line.curfew,
            no_mask: self.role == CameraRole::Gate && self.mask_check && line.no_mask_alert,
        }
    }

    /// The URL with `${VAR}` references filled in from the environment (only for connecting).
    pub fn resolved_url(&self) -> Result<String, String> {
        expand_env(&self.url).map_err(|var| {
            format!(
                "camera `{}`: its url uses ${{{var}}} but that environment variable is not set",
                self.id
            )
        })
    }
}

/// `[alerts]`: de-duplication and severities of the events.
#[derive(Clone, Debug, PartialEq)]
pub struct Alerts {
    /// One alert per camera, type and person (or zone) within this time (`rules::Cooldown`).
    pub cooldown: Duration,
    /// `[alerts.severity]` over the built-in defaults.
    pub severities: Severities,
}

impl Alerts {
    pub fn severity(&self, kind: EventKind) -> Severity {
        self.severities.get(kind)
    }
}

/// `[clips]`: the video kept with each incident.
#[derive(Clone, Debug, PartialEq)]
pub struct Clips {
    /// Before the incident, from the in-memory ring of encoded video.
    pub pre: Duration,
    /// After the incident, from the live stream.
    pub post: Duration,
}

/// `[webhook]`: alerts as JSON POSTs to a URL, e.g. a WhatsApp or Telegram gateway for the
/// village group. Absent section: no webhook. Delivery goes through the store's outbox like MQTT
/// (`sinks::webhook`).
#[derive(Clone, PartialEq)]
pub struct Webhook {
    /// As written in the file, `${VAR}` references unexpanded. It may hold a token in its path
    /// or query: never print it, use [`Webhook::redacted_url`].
    pub url: String,
    /// Events below this severity are not sent.
    pub min_severity: Severity,
    /// How long one POST may take (connecting, sending and the answer).
    pub timeout: Duration,
    /// Only these event types are sent (`None`: every type). Both filters apply.
    pub kinds: Option<Vec<EventKind>>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &self.redacted_url())
            .field("min_severity", &self.min_severity)
            .field("timeout", &self.timeout)
            .field("kinds", &self.kinds)
            .finish()
    }
}

impl Webhook {
    /// The URL for logs, the API and the UI: see [`redact_webhook_url`].
    pub fn redacted_url(&self) -> String {
        redact_webhook_url(&self.url)
    }

    /// The URL with `${VAR}` references filled in from the environment (only for sending).
    pub fn resolved_url(&self) -> Result<String, String> {
        expand_env(&self.url).map_err(|var| {
            format!("[webhook] url uses ${{{var}}} but that environment variable is not set")
        })
    }
}

/// `[gatebook]`: the gate log and the guest book (*buku tamu*) at the village gate (`gate`),
/// read by `config::gatebook`.
#[derive(Clone, Debug, PartialEq)]
pub struct Gatebook {
    /// How long after a night entry the guard has to record it before `unrecorded_entry`.
    pub record_within: Duration,
    /// Site time of day the daily report is made (and sent), for the 24 hours before it.
    pub report_at: NaiveTime,
    /// Entries, their pictures, records and reports older than this many days are deleted.
    pub retention_days: u32,
    /// The night of gate lines that have no `curfew` window of their own.
    pub night: Option<Window>,
}

impl Default for Gatebook {
    fn default() -> Self {
        Gatebook {
            record_within: Duration::from_secs(10 * 60),
            report_at: NaiveTime::from_hms_opt(6, 0, 0).unwrap_or(NaiveTime::MIN),
            retention_days: 30,
            night: None,
        }
    }
}

impl Gatebook {
    /// The night window of a gate line whose own curfew is `curfew`.
    pub fn night_of(&self, curfew: Option<Window>) -> Option<Window> {
        curfew.or(self.night)
    }
}

/// Validated settings: everything the pipeline needs.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub site: Site,
    pub mqtt: Mqtt,
    pub detector: DetectorSettings,
    pub tracker: TrackerParams,
    pub counting: CountingParams,
    /// Minutes of each camera's tracks kept for the editor's "preview this line"
    /// (`[counting] preview_minutes`; 0: no preview).
    pub preview_minutes: f64,
    pub alerts: Alerts,
    pub clips: Clips,
    pub store: Store,
    pub http: Http,
    pub webhook: Option<Webhook>,
    /// `[[notify]]`: the guards' phones (Telegram, WhatsApp gateways, ntfy), in file order.
    pub notify: Vec<Notify>,
    /// `[gatebook]`: the gate log, the guest book and its daily report.
    pub gatebook: Gatebook,
    /// `[uplink]`: the city's broker, beside the local one (none without the section).
    pub uplink: Option<super::Uplink>,
    pub cameras: Vec<Camera>,
}

impl Settings {
    /// Read and validate a file. Relative paths in it are relative to the working directory of
    /// the process, as with any command-line program.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Settings::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Settings, ConfigError> {
        let table: Table = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            reason: syntax_reason(text, e.message(), e.span()),
        })?;
        let mut r = Reader::default();
        let settings = read_settings(&mut r, &table);
        if r.issues.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                issues: r.issues,
            })
        }
    }

    /// The compiled-in default configuration.
    pub fn default_config() -> Settings {
        Settings::parse(DEFAULT_CONFIG, Path::new("<built-in default>"))
            .expect("the built-in default configuration is valid (tested)")
    }

    pub fn camera(&self, id: &str) -> Option<&Camera> {
        self.cameras.iter().find(|c| c.id == id)
    }

    /// What is allowed but unsafe, in words that say what to change: `check-config` prints
    /// these and `ronda run` logs them at start.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let m = &self.mqtt;
        let beyond_loopback = m
            .listen
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|a| !a.ip().is_loopback());
        // Nobody but ronda publishes on the embedded broker whatever the users (its front
        // keeps the rights), but without users anyone reaches every alert, and without TLS
        // the users' passwords cross the network readable.
        let has_users = m.username.is_some() || !m.users.is_empty();
        if m.embedded && beyond_loopback && !has_users {
            out.push(format!(
                "mqtt.listen: the embedded MQTT broker listens on {} without authentication: \
                 anyone on the network can read every alert and camera state. Keep \
                 listen = \"127.0.0.1:1883\", or add [[mqtt.users]] (name, role, password_env) \
                 for the guard posts",
                m.listen
            ));
        } else if m.embedded && beyond_loopback && m.tls_cert.is_none() {
            out.push(format!(
                "mqtt.listen: the embedded MQTT broker listens on {} without TLS: the guard \
                 posts' passwords and every alert cross the network readable; set [mqtt] \
                 tls_cert and tls_key (PEM files), or keep it on 127.0.0.1",
                m.listen
            ));
        }
        let http_open = self
            .http
            .listen
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|a| !a.ip().is_loopback());
        if http_open && self.http.metrics_public {
            out.push(format!(
                "http.metrics_public: /metrics is open to anyone who reaches {} (camera states, \
                 failed logins, sessions); set metrics_public = false (then it needs a login, \
                 HTTP Basic works for Prometheus)",
                self.http.listen
            ));
        }
        if let Some(url) = m.url.as_deref().filter(|_| !m.embedded)
            && let Some(host) = url.strip_prefix("mqtt://").map(url_host)
            && !on_local_network(host)
        {
            out.push(format!(
                "mqtt.url: the broker `{host}` is reached without TLS and may be off the local \
                 network: alerts (and the broker password) cross it readable by anyone on the \
                 way; use mqtts:// (with ca_file if the broker has its own CA)"
            ));
        }
        super::notify::warnings(&self.notify, &mut out);
        let gate_lines = self
            .cameras
            .iter()
            .filter(|c| c.role == CameraRole::Gate)
            .flat_map(|c| &c.lines);
        let mut nightless = gate_lines
            .filter(|l| self.gatebook.night_of(l.curfew).is_none())
            .peekable();
        if nightless.peek().is_some() {
            let names: Vec<&str> = nightless.map(|l| l.name.as_str()).collect();
            out.push(format!(
                "gatebook.night: the gate line(s) {} have no curfew and [gatebook] night is not \
                 set, so a night entry there is never reported as not recorded \
                 (unrecorded_entry); set night = \"22:00-05:00\" (or the line's curfew) if the \
                 village records guests at night",
                names.join(", ")
            ));
        }
        out
    }

    /// Detector options from the `[detector]` table.
    pub fn detector_options(&self) -> DetectorOptions {
        let d = &self.detector;
        let mut o = DetectorOptions {
            person_model: d.person_model.clone(),
            area_person_model: d.area_person_model.clone(),
            area_regions: d.area_regions,
            variant: d.variant,
            person_threshold: d.score_threshold.min(self.tracker.low_score),
            ..DetectorOptions::default()
        };
        o.runtime.threads = d.threads;
        o.runtime.provider = d.provider;
        o.runtime.int8_exact = d.int8_exact;
        o.light.enabled = d.low_light;
        o.runtime.library = d.ort_library.clone();
        if let Some(m) = &d.models_dir {
            o.models_dir = m.clone();
        }
        o
    }
}
