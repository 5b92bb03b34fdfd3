//! Configuration: the TOML file admins edit, read into validated [`Settings`].
//!
//! Reading reports **every** problem at once, each with its place in the file
//! (`cameras[2].lines[0].points: a line needs 2 points, got 3`), unknown keys included with a
//! "did you mean". Secrets are never in the file: camera URLs refer to environment variables
//! (`rtsp://admin:${RONDA_CAM_PASS}@...`) and MQTT names the variable holding its password;
//! they are expanded only when a connection is made and never printed (see
//! [`Camera::redacted_url`]; a `[webhook] url` may carry a `${TOKEN}` the same way, see
//! [`redact_webhook_url`]).
//!
//! Coordinates of lines and zones are pixels of the camera picture as analysed (x right, y down,
//! origin top-left), the same numbers `ronda analyze --line` and the admin UI use. A camera may
//! declare its picture `size = [w, h]`; points are then checked to lie inside it.

pub mod edit;
mod gatebook;
mod notify;
mod read;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveTime;
use toml::Table;

pub use gatebook::{Gatebook, parse_time_of_day};
pub use notify::{
    FONNTE_SEND, NTFY_SH, Notify, Service as NotifyService, TELEGRAM_API, is_env_ref,
};
pub use read::Issue;
use read::{Reader, join};

use crate::detect::{DetectorOptions, Provider, Variant};
use crate::events::{EventKind, Severity};
use crate::geometry::{Point, Polygon, Segment};
use crate::rules::alert::{
    EVENT_KINDS, SEVERITY_NAMES, kind_name, parse_kind, parse_severity, severity_name,
};
use crate::rules::{Anchor, CountingParams, LineRules, LineSpec, Severities, ZoneSpec};
use crate::topic;
use crate::track::TrackerParams;

/// The most corners a zone may have.
pub const MAX_ZONE_POINTS: usize = 100;

/// The configuration compiled into the binary (`ronda print-default-config`).
pub const DEFAULT_CONFIG: &str = include_str!("../../config/default.toml");

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read the file: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path}: not valid TOML: {reason}")]
    Syntax { path: PathBuf, reason: String },
    #[error("{path}: {} problem(s):\n{}", issues.len(), issues.iter().map(|i| format!("  {i}")).collect::<Vec<_>>().join("\n"))]
    Invalid { path: PathBuf, issues: Vec<Issue> },
}

impl ConfigError {
    pub fn issues(&self) -> &[Issue] {
        match self {
            ConfigError::Invalid { issues, .. } => issues,
            _ => &[],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    Id,
    En,
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
}

#[derive(Clone, Debug, PartialEq)]
pub struct DetectorSettings {
    pub models_dir: Option<PathBuf>,
    pub ort_library: Option<PathBuf>,
    /// Manifest key of the person model (`person` = the default, NanoDet-m).
    pub person_model: String,
    pub variant: Variant,
    pub threads: usize,
    pub provider: Provider,
    pub score_threshold: f32,
    /// Lift dark pictures before person detection (`low_light = "auto"`, the default; `"off"`).
    pub low_light: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Store {
    pub path: PathBuf,
    pub clips_dir: PathBuf,
    pub retention_days: u32,
    pub max_gb: f64,
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

/// A daily time window such as 22:00-05:00 (may wrap past midnight).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl Window {
    pub fn contains(&self, t: NaiveTime) -> bool {
        if self.start <= self.end {
            t >= self.start && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneKind {
    /// Nobody may be inside (during `active`, or always): `intrusion`.
    Restricted,
    /// Staying longer than `loiter_seconds`: `loitering`.
    Loiter,
    /// More than `max_people` at once: `crowding`.
    Crowd,
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
        if m.embedded && beyond_loopback && m.username.is_none() {
            out.push(format!(
                "mqtt.listen: the embedded MQTT broker listens on {} without authentication: \
                 anyone on the network can read every alert and publish fake ones. Keep \
                 listen = \"127.0.0.1:1883\", or set [mqtt] username and password_env",
                m.listen
            ));
        } else if m.embedded && beyond_loopback && m.tls_cert.is_none() {
            out.push(format!(
                "mqtt.listen: the embedded MQTT broker listens on {} without TLS: the guard \
                 post's password and every alert cross the network readable; set [mqtt] \
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
        notify::warnings(&self.notify, &mut out);
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
            variant: d.variant,
            person_threshold: d.score_threshold.min(self.tracker.low_score),
            ..DetectorOptions::default()
        };
        o.runtime.threads = d.threads;
        o.runtime.provider = d.provider;
        o.light.enabled = d.low_light;
        o.runtime.library = d.ort_library.clone();
        if let Some(m) = &d.models_dir {
            o.models_dir = m.clone();
        }
        o
    }
}

fn read_settings(r: &mut Reader, root: &Table) -> Settings {
    r.known_keys(
        root,
        "",
        &[
            "site", "mqtt", "detector", "tracking", "counting", "alerts", "clips", "store", "http",
            "webhook", "notify", "gatebook", "cameras",
        ],
    );
    let empty = Table::new();

    let t = r.table(root, "", "site").unwrap_or(&empty);
    r.known_keys(
        t,
        "site",
        &["id", "name", "timezone", "language", "counts_reset"],
    );
    let id = r.required(t, "site", "id");
    if !id.is_empty() && !is_slug(&id) {
        r.issue(
            "site.id",
            format!(
                "`{}` may only use lowercase letters, digits and -, at most {} of them (it is \
                 part of MQTT topics)",
                topic::shown(&id),
                topic::MAX_NAME_CHARS
            ),
        );
    }
    let name = r.string_or(t, "site", "name", &id);
    let tz_name = r.string_or(t, "site", "timezone", "Asia/Jakarta");
    let timezone = tz_name.parse::<chrono_tz::Tz>().unwrap_or_else(|_| {
        r.issue(
            "site.timezone",
            format!("`{tz_name}` is not a time zone; use e.g. \"Asia/Jakarta\" (WIB), \"Asia/Makassar\" (WITA), \"Asia/Jayapura\" (WIT)"),
        );
        chrono_tz::Asia::Jakarta
    });
    let language = match r.choice(t, "site", "language", "id", &["id", "en"]) {
        "en" => Language::En,
        _ => Language::Id,
    };
    let counts_reset = read_time(r, t, "site", "counts_reset", "05:00");
    let site = Site {
        id: id.clone(),
        name,
        timezone,
        language,
        counts_reset,
    };

    let t = r.table(root, "", "mqtt").unwrap_or(&empty);
    r.known_keys(
        t,
        "mqtt",
        &[
            "embedded",
            "listen",
            "url",
            "username",
            "password_env",
            "ca_file",
            "tls_cert",
            "tls_key",
            "topic_prefix",
        ],
    );
    let url = r.string(t, "mqtt", "url").filter(|u| !u.is_empty());
    let embedded = r.boolean(t, "mqtt", "embedded", url.is_none());
    if embedded && url.is_some() {
        r.issue(
            "mqtt.url",
            "set either `embedded = true` or an external broker `url`, not both",
        );
    }
    if let Some(u) = &url
        && !(u.starts_with("mqtt://") || u.starts_with("mqtts://"))
    {
        r.issue(
            "mqtt.url",
            format!(
                "`{}` should look like mqtt://host:1883 or mqtts://host:8883",
                redact_url(u)
            ),
        );
    }
    if let Some(u) = &url
        && url_has_literal_password(u)
    {
        r.issue(
            "mqtt.url",
            "contains a password; put it in an environment variable and name it in `password_env`",
        );
    }
    let password_env = r.string(t, "mqtt", "password_env");
    if let Some(v) = &password_env
        && !is_env_name(v)
    {
        r.issue(
            "mqtt.password_env",
            "should be the NAME of an environment variable (like RONDA_MQTT_PASS), not the password",
        );
    }
    let listen = r.string_or(t, "mqtt", "listen", "127.0.0.1:1883");
    check_addr(r, "mqtt.listen", &listen);
    let username = r.string(t, "mqtt", "username");
    // The embedded broker takes the user named here, with the password of `password_env`:
    // both or neither, or it would run open while the admin thinks it is locked.
    if embedded {
        match (&username, &password_env) {
            (Some(_), None) => r.issue(
                "mqtt.password_env",
                "the embedded broker needs a password for `username`: put it in an environment \
                 variable and name that variable here, e.g. password_env = \"RONDA_MQTT_PASS\"",
            ),
            (None, Some(_)) => r.issue(
                "mqtt.username",
                "the embedded broker needs the user name that goes with `password_env`, e.g. \
                 username = \"ronda\"",
            ),
            _ => {}
        }
    }
    if let Some(u) = &username
        && (u.is_empty() || u.chars().count() > 64 || u.chars().any(char::is_control))
    {
        r.issue("mqtt.username", "should be 1 to 64 characters on one line");
    }
    let prefix_default = format!("ronda/{id}");
    let topic_prefix = r.string_or(t, "mqtt", "topic_prefix", &prefix_default);
    if let Some(problem) = topic::prefix_problem(&topic_prefix) {
        r.issue("mqtt.topic_prefix", problem);
    }
    let tls_cert = r.string(t, "mqtt", "tls_cert").map(PathBuf::from);
    let tls_key = r.string(t, "mqtt", "tls_key").map(PathBuf::from);
    match (&tls_cert, &tls_key) {
        (Some(_), None) => r.issue(
            "mqtt.tls_key",
            "the embedded broker's TLS needs the private key that goes with tls_cert (PEM file)",
        ),
        (None, Some(_)) => r.issue(
            "mqtt.tls_cert",
            "the embedded broker's TLS needs the certificate that goes with tls_key (PEM file)",
        ),
        (Some(_), Some(_)) if !embedded => r.issue(
            "mqtt.tls_cert",
            "tls_cert and tls_key are for the embedded broker; an external broker is reached \
             with an mqtts:// url (and ca_file)",
        ),
        _ => {}
    }
    let mqtt = Mqtt {
        embedded,
        listen,
        url,
        username,
        password_env,
        ca_file: r.string(t, "mqtt", "ca_file").map(PathBuf::from),
        tls_cert,
        tls_key,
        topic_prefix,
    };

    let t = r.table(root, "", "detector").unwrap_or(&empty);
    r.known_keys(
        t,
        "detector",
        &[
            "models",
            "ort_library",
            "person_model",
            "model",
            "threads",
            "provider",
            "score_threshold",
            "low_light",
        ],
    );
    let variant = match r.choice(t, "detector", "model", "int8", &["int8", "fp32"]) {
        "fp32" => Variant::Fp32,
        _ => Variant::Int8,
    };
    let provider = match r.choice(t, "detector", "provider", "cpu", &["cpu", "cuda"]) {
        "cuda" => Provider::Cuda,
        _ => Provider::Cpu,
    };
    let person_model = r
        .string(t, "detector", "person_model")
        .unwrap_or_else(|| crate::detect::manifest::PERSON.into());
    // A manifest key: checked against the manifest when the models load; here only its form.
    if person_model.is_empty()
        || person_model.len() > 40
        || !person_model
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        r.issue(
            "detector.person_model",
            "should be a person model's key in the models' manifest, such as \"person\" (the default)",
        );
    }
    let detector = DetectorSettings {
        models_dir: r.string(t, "detector", "models").map(PathBuf::from),
        ort_library: r.string(t, "detector", "ort_library").map(PathBuf::from),
        person_model,
        variant,
        threads: r.integer(t, "detector", "threads", 1, 1..=64) as usize,
        provider,
        score_threshold: r.number(t, "detector", "score_threshold", 0.4, 0.05..=0.99) as f32,
        low_light: r.choice(t, "detector", "low_light", "auto", &["auto", "off"]) == "auto",
    };

    let t = r.table(root, "", "tracking").unwrap_or(&empty);
    r.known_keys(
        t,
        "tracking",
        &[
            "high_score",
            "low_score",
            "match_iou",
            "min_hits",
            "max_misses",
        ],
    );
    let d = TrackerParams::default();
    let tracker = TrackerParams {
        high_score: r.number(
            t,
            "tracking",
            "high_score",
            d.high_score as f64,
            0.05..=0.99,
        ) as f32,
        low_score: r.number(t, "tracking", "low_score", d.low_score as f64, 0.01..=0.99) as f32,
        match_iou: r.number(t, "tracking", "match_iou", d.match_iou as f64, 0.01..=0.99) as f32,
        low_match_iou: d.low_match_iou,
        min_hits: r.integer(t, "tracking", "min_hits", d.min_hits as i64, 1..=50) as u32,
        max_misses: r.integer(t, "tracking", "max_misses", d.max_misses as i64, 0..=1000) as u32,
    };
    if tracker.low_score > tracker.high_score {
        r.issue(
            "tracking.low_score",
            "must not be above tracking.high_score",
        );
    }

    let t = r.table(root, "", "counting").unwrap_or(&empty);
    r.known_keys(
        t,
        "counting",
        &[
            "dead_band",
            "dead_band_px",
            "confirm_heights",
            "confirm_seconds",
            "min_track_hits",
            "min_track_seconds",
            "handover_seconds",
            "handover_heights",
            "preview_minutes",
        ],
    );
    let d = CountingParams::default();
    let min_track_hits = r.integer(
        t,
        "counting",
        "min_track_hits",
        d.min_track_hits as i64,
        1..=100,
    ) as u32;
    let mut num = |key: &str, default: f32, range: std::ops::RangeInclusive<f64>| {
        r.number(t, "counting", key, default as f64, range) as f32
    };
    let counting = CountingParams {
        dead_band: num("dead_band", d.dead_band, 0.0..=1.0),
        dead_band_px: num("dead_band_px", d.dead_band_px, 0.0..=200.0),
        confirm_heights: num("confirm_heights", d.confirm_heights, 0.0..=3.0),
        confirm_seconds: num("confirm_seconds", d.confirm_seconds, 0.0..=30.0),
        min_track_seconds: num("min_track_seconds", d.min_track_seconds, 0.0..=30.0),
        handover_seconds: num("handover_seconds", d.handover_seconds, 0.0..=30.0),
        handover_heights: num("handover_heights", d.handover_heights, 0.0..=5.0),
        min_track_hits,
    };
    let preview_minutes = r.number(t, "counting", "preview_minutes", 5.0, 0.0..=30.0);

    let alerts = read_alerts(r, root);
    let clips = read_clips(r, root);

    let t = r.table(root, "", "store").unwrap_or(&empty);
    r.known_keys(
        t,
        "store",
        &["path", "clips_dir", "retention_days", "max_gb"],
    );
    let store = Store {
        path: PathBuf::from(r.string_or(t, "store", "path", "var/ronda.db")),
        clips_dir: PathBuf::from(r.string_or(t, "store", "clips_dir", "var/clips")),
        retention_days: r.integer(t, "store", "retention_days", 30, 1..=3650) as u32,
        max_gb: r.number(t, "store", "max_gb", 20.0, 0.1..=100_000.0),
    };

    let t = r.table(root, "", "http").unwrap_or(&empty);
    r.known_keys(
        t,
        "http",
        &[
            "listen",
            "users",
            "metrics_public",
            "secure_cookie",
            "hosts",
            "public_url",
        ],
    );
    let public_url = r
        .string(t, "http", "public_url")
        .map(|u| u.trim().trim_end_matches('/').to_string())
        .filter(|u| !u.is_empty());
    if let Some(u) = &public_url {
        let lower = u.to_ascii_lowercase();
        let rest = lower.split_once("://").map_or("", |(_, r)| r);
        if !(lower.starts_with("https://") || lower.starts_with("http://"))
            || rest.is_empty()
            || rest.starts_with('/')
            || u.contains(['?', '#', '@'])
            || u.chars().any(char::is_whitespace)
        {
            r.issue(
                "http.public_url",
                "should be the web address guards open from outside, e.g.                  \"https://ronda.kepatihan.id\" (no user, ?query or #fragment)",
            );
        }
    }
    let secure_cookie = r.boolean(t, "http", "secure_cookie", false);
    let mut hosts = Vec::new();
    match t.get("hosts") {
        None => {}
        Some(toml::Value::Array(a)) => {
            for (i, v) in a.iter().enumerate() {
                match v.as_str().map(str::trim) {
                    Some(h)
                        if !h.is_empty()
                            && h.len() <= 253
                            && h.chars()
                                .all(|c| c.is_ascii_alphanumeric() || "-.".contains(c)) =>
                    {
                        hosts.push(h.trim_end_matches('.').to_ascii_lowercase());
                    }
                    _ => r.issue(
                        format!("http.hosts[{i}]"),
                        "should be a host name only, as typed in the browser (no http://, port \
                         or path), e.g. \"ronda.example.org\"",
                    ),
                }
            }
        }
        Some(v) => r.issue(
            "http.hosts",
            format!(
                "should be a list of host names, e.g. [\"ronda.example.org\"], got {}",
                read::type_name(v)
            ),
        ),
    }
    let metrics_public = r.boolean(t, "http", "metrics_public", true);
    let listen = r.string_or(t, "http", "listen", "127.0.0.1:8080");
    check_addr(r, "http.listen", &listen);
    let mut users = Vec::new();
    let mut names = BTreeSet::new();
    for (i, u) in r.tables(t, "http", "users").into_iter().enumerate() {
        let place = format!("http.users[{i}]");
        r.known_keys(u, &place, &["name", "role", "password_hash"]);
        let name = r.required(u, &place, "name");
        if !name.is_empty() && !names.insert(name.clone()) {
            r.issue(
                join(&place, "name"),
                format!("user `{name}` is listed twice"),
            );
        }
        let role = match r.choice(u, &place, "role", "guard", &["guard", "reviewer", "admin"]) {
            "admin" => Role::Admin,
            "reviewer" => Role::Reviewer,
            _ => Role::Guard,
        };
        let hash = r.required(u, &place, "password_hash");
        if !hash.is_empty() && !hash.starts_with("$argon2") {
            r.issue(
                join(&place, "password_hash"),
                "is not a password hash; make one with `ronda passwd` (never write the password itself)",
            );
        }
        users.push(User {
            name,
            role,
            password_hash: hash,
        });
    }
    let http = Http {
        listen,
        users,
        metrics_public,
        secure_cookie,
        hosts,
        public_url,
    };
    let webhook = read_webhook(r, root);
    let notify = notify::read_notify(r, root, site.language);
    let gatebook = gatebook::read_gatebook(r, root);

    let mut cameras = Vec::new();
    let mut ids = BTreeSet::new();
    for (i, c) in r.tables(root, "", "cameras").into_iter().enumerate() {
        let cam = read_camera(r, c, i);
        if !cam.id.is_empty() && !ids.insert(cam.id.clone()) {
            r.issue(
                format!("cameras[{i}].id"),
                format!(
                    "camera id `{}` is used twice; every camera needs its own",
                    cam.id
                ),
            );
        }
        cameras.push(cam);
    }

    Settings {
        site,
        mqtt,
        detector,
        tracker,
        counting,
        preview_minutes,
        alerts,
        clips,
        store,
        http,
        webhook,
        notify,
        gatebook,
        cameras,
    }
}

fn read_alerts(r: &mut Reader, root: &Table) -> Alerts {
    let empty = Table::new();
    let t = r.table(root, "", "alerts").unwrap_or(&empty);
    r.known_keys(t, "alerts", &["cooldown_seconds", "severity"]);
    let cooldown = r.number(t, "alerts", "cooldown_seconds", 60.0, 0.0..=86_400.0);
    let mut severities = Severities::default();
    let st = r.table(t, "alerts", "severity").unwrap_or(&empty);
    let names = EVENT_KINDS.map(kind_name);
    r.known_keys(st, "alerts.severity", &names);
    for kind in EVENT_KINDS {
        let default = severity_name(Severities::default_for(kind));
        let chosen = r.choice(
            st,
            "alerts.severity",
            kind_name(kind),
            default,
            &SEVERITY_NAMES,
        );
        if let Some(s) = parse_severity(chosen) {
            severities.set(kind, s);
        }
    }
    Alerts {
        cooldown: Duration::from_secs_f64(cooldown),
        severities,
    }
}

fn read_clips(r: &mut Reader, root: &Table) -> Clips {
    let empty = Table::new();
    let t = r.table(root, "", "clips").unwrap_or(&empty);
    r.known_keys(t, "clips", &["pre_seconds", "post_seconds"]);
    // the pre-roll is held in memory for every camera: 30 s bounds that for 40 cameras
    let pre = r.number(t, "clips", "pre_seconds", 5.0, 0.0..=30.0);
    let post = r.number(t, "clips", "post_seconds", 10.0, 1.0..=120.0);
    Clips {
        pre: Duration::from_secs_f64(pre),
        post: Duration::from_secs_f64(post),
    }
}

fn read_webhook(r: &mut Reader, root: &Table) -> Option<Webhook> {
    let t = r.table(root, "", "webhook")?;
    r.known_keys(
        t,
        "webhook",
        &["url", "min_severity", "timeout_seconds", "kinds"],
    );
    let url = r.required(t, "webhook", "url");
    if !url.is_empty() {
        for problem in webhook_url_problems(&url) {
            r.issue("webhook.url", problem);
        }
    }
    let min_severity =
        parse_severity(r.choice(t, "webhook", "min_severity", "warning", &SEVERITY_NAMES))
            .unwrap_or(Severity::Warning);
    let timeout = r.number(t, "webhook", "timeout_seconds", 10.0, 1.0..=120.0);
    let kinds = match t.get("kinds") {
        None => None,
        Some(toml::Value::Array(items)) => {
            if items.is_empty() {
                r.issue(
                    "webhook.kinds",
                    "an empty list sends nothing; leave `kinds` out to send every type",
                );
            }
            let names = EVENT_KINDS.map(kind_name);
            let mut kinds = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let place = format!("webhook.kinds[{i}]");
                let Some(name) = item.as_str() else {
                    r.issue(
                        place,
                        format!(
                            "should be an event type in quotes, got {}",
                            read::type_name(item)
                        ),
                    );
                    continue;
                };
                match parse_kind(name.trim()) {
                    Some(k) if !kinds.contains(&k) => kinds.push(k),
                    Some(_) => {}
                    None => {
                        let hint = match read::suggest(name, &names) {
                            Some(s) => format!("did you mean `{s}`?"),
                            None => format!("known types: {}", names.join(", ")),
                        };
                        r.issue(place, format!("unknown event type `{name}`; {hint}"));
                    }
                }
            }
            Some(kinds)
        }
        Some(v) => {
            r.issue(
                "webhook.kinds",
                format!(
                    "should be a list of event types, e.g. [\"intrusion\", \"no_mask\"], got {}",
                    read::type_name(v)
                ),
            );
            None
        }
    };
    Some(Webhook {
        url,
        min_severity,
        timeout: Duration::from_secs_f64(timeout),
        kinds,
    })
}

/// What is wrong with a `[webhook] url`, without printing any secret in it.
fn webhook_url_problems(url: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let shown = redact_webhook_url(url);
    let lower = url.to_ascii_lowercase();
    let Some((scheme, rest)) = lower.split_once("://") else {
        return vec![format!(
            "`{shown}` is not a web address; write http://host:port/path or https://..."
        )];
    };
    if scheme != "http" && scheme != "https" {
        problems.push(format!(
            "`{shown}` should start with http:// or https:// (the address of the gateway that \
             receives the alerts)"
        ));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.is_empty() || host.starts_with(':') {
        problems.push(format!("`{shown}` has no host name"));
    } else {
        let port = match host.rsplit_once(']') {
            Some((_, after)) => after.strip_prefix(':'), // [::1]:8080
            None => host.rsplit_once(':').map(|(_, p)| p),
        };
        if let Some(p) = port
            && !p.contains("${")
            && !p.parse::<u16>().is_ok_and(|p| p > 0)
        {
            problems.push(format!(
                "`{shown}`: `{p}` is not a port; use a number from 1 to 65535"
            ));
        }
    }
    if url.chars().any(char::is_whitespace) {
        problems.push("contains a space; encode it as %20".into());
    }
    if url_has_literal_password(url) {
        problems.push(
            "contains a password; write it as ${VARIABLE} and set that environment variable on the box"
                .into(),
        );
    }
    // A token written out in the query is a secret in the file and in every copy of it, like a
    // camera password: it comes from the environment too.
    if let Some(key) = literal_query_secret(url) {
        problems.push(format!(
            "`?{key}=` holds a secret written out; write it as ${{VARIABLE}} (e.g. \
             ?{key}=${{RONDA_WEBHOOK_TOKEN}}) and set that environment variable on the box"
        ));
    }
    let mut rest = url;
    while let Some(i) = rest.find("${") {
        let after = &rest[i + 2..];
        match after.find('}') {
            Some(j) if is_env_name(&after[..j]) => rest = &after[j + 1..],
            _ => {
                problems.push(
                    "has a `${` that is not a variable reference; write ${NAME} with letters, \
                     digits and _"
                        .into(),
                );
                break;
            }
        }
    }
    // The rest of the syntax (port, characters), with the references filled by a stand-in.
    if problems.is_empty() {
        let filled = fill_env_refs(url, "x");
        if let Err(e) = filled.parse::<ureq::http::Uri>() {
            problems.push(format!("`{shown}` is not a valid web address ({e})"));
        }
    }
    problems
}

/// `url` with every `${NAME}` replaced by `with`.
fn fill_env_refs(url: &str, with: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(j) = after.find('}') else {
            out.push_str(&rest[i..]);
            return out;
        };
        out.push_str(with);
        rest = &after[j + 1..];
    }
    out.push_str(rest);
    out
}

fn read_camera(r: &mut Reader, c: &Table, i: usize) -> Camera {
    let place = format!("cameras[{i}]");
    r.known_keys(
        c,
        &place,
        &[
            "id",
            "name",
            "url",
            "role",
            "analysis_fps",
            "mask_check",
            "motion_gate",
            "size",
            "lines",
            "zones",
        ],
    );
    let id = r.required(c, &place, "id");
    if !id.is_empty() && !is_slug(&id) {
        r.issue(
            join(&place, "id"),
            format!(
                "`{}` may only use lowercase letters, digits and -, at most {} of them (it is \
                 part of MQTT topics, file names and web addresses)",
                topic::shown(&id),
                topic::MAX_NAME_CHARS
            ),
        );
    }
    let url = r.required(c, &place, "url");
    if !url.is_empty() {
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("rtsp://") || lower.starts_with("rtsps://")) {
            r.issue(
                join(&place, "url"),
                format!(
                    "`{}` should start with rtsp:// (the camera's RTSP address)",
                    redact_url(&url)
                ),
            );
        }
        if url_has_literal_password(&url) {
            r.issue(
                join(&place, "url"),
                "contains a password; write it as ${VARIABLE} and set that environment variable on the box",
            );
        }
    }
    let role = match r.choice(c, &place, "role", "area", &["gate", "area"]) {
        "gate" => CameraRole::Gate,
        _ => CameraRole::Area,
    };
    let size = match c.get("size") {
        None => None,
        Some(toml::Value::Array(a))
            if a.len() == 2
                && a.iter()
                    .all(|v| matches!(v, toml::Value::Integer(n) if *n > 0 && *n <= 10_000)) =>
        {
            Some((
                a[0].as_integer().unwrap_or(0) as u32,
                a[1].as_integer().unwrap_or(0) as u32,
            ))
        }
        Some(_) => {
            r.issue(
                join(&place, "size"),
                "should be [width, height] in pixels, e.g. [640, 360]",
            );
            None
        }
    };
    let mut cam = Camera {
        name: r.string_or(c, &place, "name", &id),
        id,
        url,
        role,
        analysis_fps: r.number(c, &place, "analysis_fps", 5.0, 0.5..=30.0),
        mask_check: r.boolean(c, &place, "mask_check", role == CameraRole::Gate),
        motion_gate: r.boolean(c, &place, "motion_gate", true),
        size,
        lines: Vec::new(),
        zones: Vec::new(),
    };
    let in_frame = |r: &mut Reader, p: &str, pts: &[[f64; 2]]| {
        for (k, pt) in pts.iter().enumerate() {
            let bad_neg = pt[0] < 0.0 || pt[1] < 0.0;
            let bad_size = size.is_some_and(|(w, h)| pt[0] > w as f64 || pt[1] > h as f64);
            if bad_neg || bad_size {
                let within = match size {
                    Some((w, h)) => format!("0..{w} x 0..{h}"),
                    None => "non-negative pixels".into(),
                };
                r.issue(
                    format!("{p}[{k}]"),
                    format!("[{}, {}] is outside the picture ({within})", pt[0], pt[1]),
                );
            }
        }
    };

    let mut names = BTreeSet::new();
    for (j, l) in r.tables(c, &place, "lines").into_iter().enumerate() {
        let lp = format!("{place}.lines[{j}]");
        r.known_keys(
            l,
            &lp,
            &["name", "points", "anchor", "curfew", "no_mask_alert"],
        );
        let name = r.required(l, &lp, "name");
        if !name.is_empty()
            && let Err(problem) = topic::check_name(&name)
        {
            r.issue(
                join(&lp, "name"),
                format!("`{}` {problem}", topic::shown(&name)),
            );
        } else if !name.is_empty() && !names.insert(name.clone()) {
            r.issue(
                join(&lp, "name"),
                format!("`{name}` is used twice on this camera"),
            );
        }
        let anchor = match r.choice(
            l,
            &lp,
            "anchor",
            "bottom_center",
            &["bottom_center", "center", "top_center"],
        ) {
            "center" => Anchor::Center,
            "top_center" => Anchor::TopCenter,
            _ => Anchor::BottomCenter,
        };
        let curfew = read_window(r, l, &lp, "curfew");
        let no_mask_alert = r.boolean(l, &lp, "no_mask_alert", cam.mask_check);
        let Some(pts) = r.points(l, &lp, "points") else {
            continue;
        };
        let pp = join(&lp, "points");
        if pts.len() != 2 {
            r.issue(pp, format!("a line needs 2 points, got {}", pts.len()));
            continue;
        }
        in_frame(r, &pp, &pts);
        if pts[0] == pts[1] {
            r.issue(pp, "the two points are the same: a line needs length");
            continue;
        }
        cam.lines.push(Line {
            name,
            a: Point::new(pts[0][0] as f32, pts[0][1] as f32),
            b: Point::new(pts[1][0] as f32, pts[1][1] as f32),
            anchor,
            curfew,
            no_mask_alert,
        });
    }
    let mut znames = BTreeSet::new();
    for (j, z) in r.tables(c, &place, "zones").into_iter().enumerate() {
        let zp = format!("{place}.zones[{j}]");
        r.known_keys(
            z,
            &zp,
            &[
                "name",
                "polygon",
                "kind",
                "active",
                "loiter_seconds",
                "max_people",
            ],
        );
        let name = r.required(z, &zp, "name");
        if !name.is_empty()
            && let Err(problem) = topic::check_name(&name)
        {
            r.issue(
                join(&zp, "name"),
                format!("`{}` {problem}", topic::shown(&name)),
            );
        } else if !name.is_empty() && !znames.insert(name.clone()) {
            r.issue(
                join(&zp, "name"),
                format!("`{name}` is used twice on this camera"),
            );
        }
        let kind = match r.choice(
            z,
            &zp,
            "kind",
            "restricted",
            &["restricted", "loiter", "crowd"],
        ) {
            "loiter" => ZoneKind::Loiter,
            "crowd" => ZoneKind::Crowd,
            _ => ZoneKind::Restricted,
        };
        let active = read_window(r, z, &zp, "active");
        let loiter_seconds = r.number(z, &zp, "loiter_seconds", 60.0, 1.0..=86_400.0);
        let max_people = r.integer(z, &zp, "max_people", 5, 1..=1000) as u32;
        let Some(pts) = r.points(z, &zp, "polygon") else {
            continue;
        };
        let pp = join(&zp, "polygon");
        if pts.len() < 3 {
            r.issue(
                pp,
                format!("a zone needs at least 3 points, got {}", pts.len()),
            );
            continue;
        }
        // Far more than anyone draws; the self-crossing check below compares every edge with
        // every other, and a 94,000-point zone made each check take seconds.
        if pts.len() > MAX_ZONE_POINTS {
            r.issue(
                pp,
                format!(
                    "a zone may have at most {MAX_ZONE_POINTS} points, got {}: draw it with fewer \
                     corners",
                    pts.len()
                ),
            );
            continue;
        }
        in_frame(r, &pp, &pts);
        let polygon = Polygon::new(
            pts.iter()
                .map(|p| Point::new(p[0] as f32, p[1] as f32))
                .collect(),
        );
        // before the area: a bow tie's two halves cancel out to no area at all
        if let Some((a, b)) = polygon.self_crossing() {
            r.issue(
                pp,
                format!(
                    "the polygon crosses itself at edge {a} and {b} (edge N runs from point N \
                     to the next): move the points so the edges don't cross"
                ),
            );
            continue;
        }
        if polygon.doubled_area().abs() < 1.0 {
            r.issue(pp, "the points lie on one line: a zone needs an area");
            continue;
        }
        cam.zones.push(Zone {
            name,
            polygon,
            kind,
            active,
            loiter_seconds,
            max_people,
        });
    }
    cam
}

fn read_time(r: &mut Reader, t: &Table, place: &str, key: &str, default: &str) -> NaiveTime {
    let s = r.string_or(t, place, key, default);
    parse_hhmm(&s).unwrap_or_else(|| {
        r.issue(
            join(place, key),
            format!("`{s}` is not a time; write HH:MM, e.g. \"05:00\""),
        );
        NaiveTime::MIN
    })
}

fn read_window(r: &mut Reader, t: &Table, place: &str, key: &str) -> Option<Window> {
    let s = r.string(t, place, key)?;
    let parsed = s.split_once('-').and_then(|(a, b)| {
        Some(Window {
            start: parse_hhmm(a)?,
            end: parse_hhmm(b)?,
        })
    });
    if parsed.is_none() {
        r.issue(
            join(place, key),
            format!("`{s}` is not a time window; write \"HH:MM-HH:MM\", e.g. \"22:00-05:00\""),
        );
    }
    parsed
}

fn parse_hhmm(s: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M").ok()
}

fn check_addr(r: &mut Reader, place: &str, addr: &str) {
    if addr.parse::<std::net::SocketAddr>().is_err() {
        r.issue(
            place,
            format!("`{addr}` is not an address; write IP:PORT, e.g. \"0.0.0.0:8080\""),
        );
    }
}

/// `line 2, column 10: invalid basic string, expected `"``: where and what, without the line
/// itself (toml's own message quotes it whole, and a broken line may be 600 KB long or hold a
/// password).
pub(crate) fn syntax_reason(
    text: &str,
    message: &str,
    span: Option<std::ops::Range<usize>>,
) -> String {
    let message = message.trim().replace('\n', " ");
    let Some(before) = span.and_then(|s| text.get(..s.start)) else {
        return message;
    };
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    format!("line {line}, column {column}: {message}")
}

/// The host of `user:pw@host:port/...` (what follows `scheme://`).
fn url_host(rest: &str) -> &str {
    let auth = rest.split(['/', '?']).next().unwrap_or("");
    let hostport = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
    if let Some(v6) = hostport.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    hostport.split(':').next().unwrap_or(hostport)
}

/// Whether `host` is on this box or the local network: loopback, private and link-local
/// addresses, and names without a domain or under a local-only one (`.local`, `.lan`,
/// `.home.arpa`, `.internal`). Anything else may be across the internet.
fn on_local_network(host: &str) -> bool {
    use std::net::IpAddr;
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback() || ip.is_private() || ip.is_link_local(),
        Ok(IpAddr::V6(ip)) => {
            let first = ip.segments()[0];
            ip.is_loopback() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
        Err(_) => {
            let h = host.trim_end_matches('.').to_ascii_lowercase();
            h == "localhost"
                || !h.contains('.')
                || [".local", ".lan", ".home.arpa", ".internal"]
                    .iter()
                    .any(|d| h.ends_with(d))
        }
    }
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= crate::topic::MAX_NAME_CHARS
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn is_env_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `scheme://user:password@host...`: is the password written out (not a `${VAR}`)?
fn url_has_literal_password(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let auth = rest.split('/').next().unwrap_or("");
    let Some((userinfo, _)) = auth.rsplit_once('@') else {
        return false;
    };
    match userinfo.split_once(':') {
        Some((_, pw)) => !(pw.is_empty() || pw.starts_with("${") && pw.ends_with('}')),
        None => false,
    }
}

/// Replace the password part of a URL with `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match auth.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{path}")
            } else {
                format!("{scheme}://{user}@{host}{path}")
            }
        }
        None => url.to_string(),
    }
}

/// A webhook URL as it may be shown (logs, `check-config`, the API). Webhook URLs often carry
/// their secret in the path (Telegram `/bot<token>/`, Slack and Discord hook ids) or the query
/// (`?token=`), so more goes than in [`redact_url`]:
/// - a password in `user:password@` becomes `***`;
/// - every query value becomes `***` (the keys stay) and a `#fragment` is dropped;
/// - a path segment stays only if it holds a `${NAME}` reference (a name is no secret) and is
///   otherwise short plain words (letters, `-`, `_`, `.`, at most 16 of them), or if it is one of
///   the gateways' common path words (`api`, `send`, `sendMessage`, `hooks`, `services`, `v1`
///   ...); otherwise it becomes `***`. A plain word of its own may be the secret: an ntfy topic
///   (`https://ntfy.sh/ronda-kepatihan`) is its own password.
///
/// `https://api.telegram.org/bot${TG_TOKEN}/sendMessage?chat_id=-100123` is shown as
/// `https://api.telegram.org/bot${TG_TOKEN}/sendMessage?chat_id=***`.
pub fn redact_webhook_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".into();
    };
    let rest = rest.split('#').next().unwrap_or("");
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match before_query.find('/') {
        Some(i) => before_query.split_at(i),
        None => (before_query, ""),
    };
    let mut out = format!("{scheme}://");
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            let user = if plain_segment(user) { user } else { "***" };
            if userinfo.contains(':') {
                out.push_str(&format!("{user}:***@{host}"));
            } else {
                out.push_str(&format!("{user}@{host}"));
            }
        }
        None => out.push_str(authority),
    }
    for (i, seg) in path.split('/').enumerate() {
        if i == 0 {
            continue; // before the first `/`
        }
        out.push('/');
        let shown = if seg.contains("${") {
            plain_segment(seg)
        } else {
            seg.is_empty() || PATH_WORDS.iter().any(|w| seg.eq_ignore_ascii_case(w))
        };
        out.push_str(if shown { seg } else { "***" });
    }
    if let Some(q) = query {
        out.push('?');
        let pairs: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if plain_segment(k) => format!("{k}=***"),
                Some(_) => "***=***".into(),
                None if plain_segment(pair) => pair.to_string(),
                None => "***".into(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    out
}

/// Path words of the gateways ronda's webhook is used with, shown as they are in a redacted URL.
const PATH_WORDS: [&str; 18] = [
    "api",
    "send",
    "sendMessage",
    "sendPhoto",
    "sendDocument",
    "message",
    "messages",
    "hook",
    "hooks",
    "webhook",
    "webhooks",
    "services",
    "notify",
    "alert",
    "alerts",
    "v1",
    "v2",
    "v3",
];

/// Short plain words once `${NAME}` references are taken out (see [`redact_webhook_url`]).
fn plain_segment(seg: &str) -> bool {
    let words = fill_env_refs(seg, "");
    words.len() <= 16
        && words
            .chars()
            .all(|c| c.is_ascii_alphabetic() || matches!(c, '-' | '_' | '.'))
}

/// The first query key of `url` that names a secret (`token`, `key`, `api_key`, `secret`,
/// `password`, `sig` ...) and has a value written out rather than a `${VAR}` reference.
fn literal_query_secret(url: &str) -> Option<String> {
    const SECRET: [&str; 11] = [
        "token",
        "key",
        "apikey",
        "secret",
        "password",
        "passwd",
        "pass",
        "pw",
        "sig",
        "signature",
        "auth",
    ];
    let query = url.split_once('?')?.1.split('#').next().unwrap_or("");
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        let key = k.to_ascii_lowercase();
        let secret = SECRET.iter().any(|w| {
            key == *w || key.ends_with(&format!("_{w}")) || key.ends_with(&format!("-{w}"))
        });
        (secret && !fill_env_refs(v, "").is_empty()).then(|| crate::topic::shown(k))
    })
}

/// Fill `${VAR}` from the environment; `Err(VAR)` names the first one missing.
pub fn expand_env(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(j) = after.find('}') else {
            out.push_str(&rest[i..]);
            return Ok(out);
        };
        let var = &after[..j];
        match std::env::var(var) {
            Ok(v) => out.push_str(&v),
            Err(_) => return Err(var.to_string()),
        }
        rest = &after[j + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Settings, ConfigError> {
        Settings::parse(s, Path::new("test.toml"))
    }

    #[test]
    fn built_in_default_is_valid() {
        let s = Settings::default_config();
        assert!(s.mqtt.embedded);
    }

    #[test]
    fn minimal_file_gets_defaults() {
        let s = parse("[site]\nid = \"rw9\"\n").unwrap();
        assert_eq!(s.mqtt.topic_prefix, "ronda/rw9");
        assert_eq!(s.site.timezone, chrono_tz::Asia::Jakarta);
        assert_eq!(s.detector.variant, Variant::Int8);
        assert_eq!(s.detector.person_model, "person");
    }

    #[test]
    fn person_model_is_selectable_and_checked() {
        let s = parse("[site]\nid = \"a\"\n[detector]\nperson_model = \"ssdlite\"\n").unwrap();
        assert_eq!(s.detector_options().person_model, "ssdlite");
        let e = parse("[site]\nid = \"a\"\n[detector]\nperson_model = \"../x\"\n").unwrap_err();
        let text: Vec<String> = e.issues().iter().map(|i| i.to_string()).collect();
        assert!(
            text.len() == 1 && text[0].starts_with("detector.person_model:"),
            "{text:?}"
        );
    }

    #[test]
    fn all_problems_are_reported_with_places() {
        let e = parse(
            r#"
[site]
id = "rw9"
timezne = "Asia/Jakarta"
[[cameras]]
id = "gate-1"
url = "rtsp://10.0.0.2/live"
[[cameras]]
id = "gate-2"
url = "rtsp://10.0.0.3/live"
role = "portal"
[[cameras]]
id = "gate-3"
url = "rtsp://10.0.0.4/live"
[[cameras.lines]]
name = "gate"
points = [[0, 0], [10, 10], [20, 20]]
"#,
        )
        .unwrap_err();
        let text: Vec<String> = e.issues().iter().map(|i| i.to_string()).collect();
        assert_eq!(text.len(), 3, "{text:#?}");
        assert!(text[0].starts_with("site.timezne: unknown key") && text[0].contains("timezone"));
        assert!(text[1].starts_with("cameras[1].role: `portal` is not allowed"));
        assert_eq!(
            text[2],
            "cameras[2].lines[0].points: a line needs 2 points, got 3"
        );
    }

    #[test]
    fn passwords_are_never_literal_and_are_redacted() {
        let e = parse("[site]\nid = \"a\"\n[[cameras]]\nid = \"c\"\nurl = \"rtsp://admin:hunter2@10.0.0.2/\"\n").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("cameras[0].url: contains a password"), "{msg}");
        assert!(!msg.contains("hunter2"));
        assert_eq!(
            redact_url("rtsp://admin:${PASS}@10.0.0.2:554/ch1"),
            "rtsp://admin:***@10.0.0.2:554/ch1"
        );
        let ok = parse("[site]\nid = \"a\"\n[[cameras]]\nid = \"c\"\nurl = \"rtsp://admin:${RONDA_TEST_NOPE}@10.0.0.2/\"\n").unwrap();
        let err = ok.cameras[0].resolved_url().unwrap_err();
        assert!(err.contains("RONDA_TEST_NOPE"));
    }

    #[test]
    fn alerts_and_clips_have_defaults() {
        let s = parse("[site]\nid = \"rw9\"\n").unwrap();
        assert_eq!(s.alerts.cooldown, Duration::from_secs(60));
        assert_eq!(s.alerts.severity(EventKind::Intrusion), Severity::Alert);
        assert_eq!(s.alerts.severity(EventKind::LineCrossing), Severity::Info);
        assert_eq!(s.alerts.severities, Severities::default());
        assert_eq!(s.clips.pre, Duration::from_secs(5));
        assert_eq!(s.clips.post, Duration::from_secs(10));
    }

    #[test]
    fn alerts_and_clips_are_read() {
        let s = parse(
            r#"
[site]
id = "rw9"
[alerts]
cooldown_seconds = 30
[alerts.severity]
loitering = "alert"
camera_offline = "Alert"
line_crossing = "info"
[clips]
pre_seconds = 0
post_seconds = 2.5
"#,
        )
        .unwrap();
        assert_eq!(s.alerts.cooldown, Duration::from_secs(30));
        assert_eq!(s.alerts.severity(EventKind::Loitering), Severity::Alert);
        assert_eq!(s.alerts.severity(EventKind::CameraOffline), Severity::Alert);
        assert_eq!(s.alerts.severity(EventKind::Crowding), Severity::Warning);
        assert_eq!(s.clips.pre, Duration::ZERO);
        assert_eq!(s.clips.post, Duration::from_millis(2500));
    }

    #[test]
    fn alerts_and_clips_problems_are_all_reported() {
        let e = parse(
            r#"
[site]
id = "rw9"
[alerts]
cooldown_seconds = -1
coldown_seconds = 5
cooldown = 5
[alerts.severity]
intrusoin = "alert"
crowding = "critical"
no_mask = 3
[clips]
pre_seconds = 31
post_seconds = 0
"#,
        )
        .unwrap_err();
        let text: Vec<String> = e.issues().iter().map(|i| i.to_string()).collect();
        let has = |s: &str| text.iter().any(|t| t.contains(s));
        assert_eq!(text.len(), 8, "{text:#?}");
        assert!(
            has("alerts.cooldown_seconds: -1 is out of range"),
            "{text:#?}"
        );
        assert!(has(
            "alerts.coldown_seconds: unknown key `coldown_seconds`; did you mean `cooldown_seconds`?"
        ));
        assert!(has(
            "alerts.cooldown: unknown key `cooldown`; known keys here: cooldown_seconds, severity"
        ));
        assert!(has(
            "alerts.severity.intrusoin: unknown key `intrusoin`; did you mean `intrusion`?"
        ));
        assert!(has(
            "alerts.severity.crowding: `critical` is not allowed; use one of \"info\", \"warning\", \"alert\""
        ));
        assert!(has("alerts.severity.no_mask: should be text in quotes"));
        assert!(has(
            "clips.pre_seconds: 31 is out of range: use a value from 0 to 30"
        ));
        assert!(has(
            "clips.post_seconds: 0 is out of range: use a value from 1 to 120"
        ));
    }

    #[test]
    fn zones_and_lines_give_their_rules() {
        let s = parse(
            r#"
[site]
id = "rw9"
[[cameras]]
id = "gate-1"
url = "rtsp://10.0.0.2/live"
role = "gate"
  [[cameras.lines]]
  name = "gate"
  points = [[320, 100], [320, 360]]
  curfew = "22:00-04:00"
  [[cameras.zones]]
  name = "portal"
  kind = "loiter"
  polygon = [[240, 120], [400, 120], [400, 360]]
  loiter_seconds = 120
  active = "18:00-06:00"
[[cameras]]
id = "cam-02"
url = "rtsp://10.0.0.3/live"
mask_check = true
  [[cameras.lines]]
  name = "lane"
  points = [[0, 100], [100, 100]]
  no_mask_alert = true
"#,
        )
        .unwrap();
        let gate = &s.cameras[0];
        let rules = gate.line_rules(&gate.lines[0]);
        assert!(rules.no_mask, "a gate camera checks masks by default");
        assert_eq!(rules.curfew.map(|w| w.start), parse_hhmm("22:00"));
        let z = gate.zones[0].spec();
        assert_eq!(z.name, "portal");
        assert_eq!(z.kind, ZoneKind::Loiter);
        assert_eq!(z.loiter_seconds, 120.0);
        assert_eq!(z.polygon.points.len(), 3);
        assert_eq!(z.anchor, Anchor::BottomCenter);
        assert!(
            z.active
                .is_some_and(|w| w.contains(parse_hhmm("23:00").unwrap()))
        );
        // mask checks are a gate rule: an area camera never raises no_mask
        let area = &s.cameras[1];
        assert!(!area.line_rules(&area.lines[0]).no_mask);
    }

    #[test]
    fn no_webhook_section_no_webhook() {
        assert_eq!(parse("[site]\nid = \"rw9\"\n").unwrap().webhook, None);
    }

    #[test]
    fn webhook_is_read_with_defaults() {
        let s = parse(
            "[site]\nid = \"rw9\"\n[webhook]\nurl = \"https://gw.example/hook/${RONDA_TEST_WH}\"\n",
        )
        .unwrap();
        let w = s.webhook.unwrap();
        assert_eq!(w.url, "https://gw.example/hook/${RONDA_TEST_WH}");
        assert_eq!(w.min_severity, Severity::Warning);
        assert_eq!(w.timeout, Duration::from_secs(10));
        assert_eq!(w.kinds, None);
        assert!(w.resolved_url().unwrap_err().contains("RONDA_TEST_WH"));

        let s = parse(
            r#"
[site]
id = "rw9"
[webhook]
url = "http://127.0.0.1:3000/send?key=${RONDA_TEST_WH}"
min_severity = "Alert"
timeout_seconds = 2.5
kinds = ["intrusion", "no_mask", "intrusion"]
"#,
        )
        .unwrap();
        let w = s.webhook.unwrap();
        assert_eq!(w.min_severity, Severity::Alert);
        assert_eq!(w.timeout, Duration::from_millis(2500));
        assert_eq!(w.kinds, Some(vec![EventKind::Intrusion, EventKind::NoMask]));
        let debug = format!("{w:?}");
        assert!(
            debug.contains("key=***") && !debug.contains("RONDA_TEST_WH"),
            "{debug}"
        );
    }

    #[test]
    fn webhook_problems_are_all_reported_with_their_places() {
        let e = parse(
            r#"
[site]
id = "rw9"
[webhook]
url = "ftp://gw.example/hook?token=abc123"
min_severity = "critical"
timeout_seconds = 0
kinds = ["intrusoin", "no_mask", 3, "teleport"]
retries = 3
"#,
        )
        .unwrap_err();
        let text: Vec<String> = e.issues().iter().map(|i| i.to_string()).collect();
        let has = |s: &str| text.iter().any(|t| t.contains(s));
        assert_eq!(text.len(), 8, "{text:#?}");
        assert!(
            has("webhook.url: `?token=` holds a secret written out"),
            "{text:#?}"
        );
        assert!(
            has(
                "webhook.url: `ftp://gw.example/hook?token=***` should start with http:// or https://"
            ),
            "{text:#?}"
        );
        assert!(!e.to_string().contains("abc123"), "{e}");
        assert!(has(
            "webhook.min_severity: `critical` is not allowed; use one of \"info\", \"warning\", \"alert\""
        ));
        assert!(has(
            "webhook.timeout_seconds: 0 is out of range: use a value from 1 to 120"
        ));
        assert!(has(
            "webhook.kinds[0]: unknown event type `intrusoin`; did you mean `intrusion`?"
        ));
        assert!(has(
            "webhook.kinds[2]: should be an event type in quotes, got a whole number"
        ));
        assert!(has(
            "webhook.kinds[3]: unknown event type `teleport`; known types: line_crossing, no_mask"
        ));
        assert!(has("webhook.retries: unknown key `retries`"));
    }

    #[test]
    fn webhook_urls_are_checked() {
        let problems = |url: &str| {
            let text = format!("[site]\nid = \"rw9\"\n[webhook]\nurl = \"{url}\"\n");
            match parse(&text) {
                Ok(_) => Vec::new(),
                Err(e) => e.issues().iter().map(|i| i.to_string()).collect(),
            }
        };
        assert!(problems("https://api.telegram.org/bot${TG}/sendMessage").is_empty());
        assert!(problems("HTTP://10.0.0.5:3000/").is_empty());
        assert!(problems("http://user:${PASS}@10.0.0.5/hook").is_empty());
        let p = problems("gw.example/hook");
        assert!(p[0].contains("is not a web address"), "{p:?}");
        let p = problems("http:///hook");
        assert!(p[0].contains("has no host name"), "{p:?}");
        let p = problems("http://admin:hunter2@gw.example/hook");
        assert!(p[0].contains("contains a password"), "{p:?}");
        assert!(!p[0].contains("hunter2"));
        for literal in [
            "https://gw.example/send?token=abc123&to=group",
            "https://gw.example/send?to=group&api_key=abc123",
            "https://gw.example/send?X-Api-Key=abc123",
        ] {
            let p = problems(literal);
            assert!(
                p.len() == 1 && p[0].contains("holds a secret written out"),
                "{p:?}"
            );
            assert!(!p[0].contains("abc123"), "{p:?}");
        }
        for fine in [
            "https://gw.example/send?token=${WA_TOKEN}&to=group",
            "https://gw.example/send?author=pak-rw&keyboard=1",
            "https://gw.example/send?token=",
        ] {
            assert!(problems(fine).is_empty(), "{fine}: {:?}", problems(fine));
        }
        let p = problems("http://gw.example/${token/x");
        assert!(p[0].contains("not a variable reference"), "{p:?}");
        let p = problems("http://gw.example:99999999/");
        assert!(p[0].contains("`99999999` is not a port"), "{p:?}");
        assert!(problems("http://[::1]:8080/hook").is_empty());
        let p = problems("http://gw.example/<hook>");
        assert!(p[0].contains("not a valid web address"), "{p:?}");
        let p = problems("");
        assert_eq!(p, ["webhook.url: must not be empty"]);
        let e = parse("[site]\nid = \"rw9\"\n[webhook]\nmin_severity = \"alert\"\n").unwrap_err();
        assert_eq!(e.issues()[0].to_string(), "webhook.url: is missing");
    }

    #[test]
    fn the_default_webhook_example_is_valid_once_uncommented() {
        let start = DEFAULT_CONFIG
            .find("# [webhook]")
            .expect("a commented example");
        let mut text = DEFAULT_CONFIG.to_string();
        text.push('\n');
        for line in DEFAULT_CONFIG[start..].lines() {
            match line.strip_prefix("# ") {
                Some(l) => text.push_str(l),
                None => break,
            }
            text.push('\n');
        }
        let w = parse(&text).unwrap().webhook.unwrap();
        assert_eq!(w.min_severity, Severity::Warning);
        assert_eq!(w.kinds.as_ref().map(Vec::len), Some(6));
        assert_eq!(
            w.redacted_url(),
            "https://gateway.example/api/send?token=***"
        );
    }

    #[test]
    fn webhook_urls_are_redacted() {
        let r = redact_webhook_url;
        assert_eq!(
            r("https://api.telegram.org/bot${TG_TOKEN}/sendMessage?chat_id=-100123"),
            "https://api.telegram.org/bot${TG_TOKEN}/sendMessage?chat_id=***"
        );
        // The same URL once expanded: the token goes, whatever it looks like.
        assert_eq!(
            r("https://api.telegram.org/bot123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage"),
            "https://api.telegram.org/***/sendMessage"
        );
        assert_eq!(
            r("https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"),
            "https://hooks.slack.com/services/***/***/***"
        );
        assert_eq!(
            r("http://wa:${WA_PASS}@10.0.0.5:3000/api/send?token=${WA_TOKEN}&to=group#frag"),
            "http://wa:***@10.0.0.5:3000/api/send?token=***&to=***"
        );
        // a plain word may be the secret itself (an ntfy topic is its own password)
        assert_eq!(r("https://ntfy.sh/rondakepatihan"), "https://ntfy.sh/***");
        assert_eq!(
            r("https://ntfy.sh/${NTFY_TOPIC}"),
            "https://ntfy.sh/${NTFY_TOPIC}"
        );
        assert_eq!(r("http://gw.local"), "http://gw.local");
        assert_eq!(r("http://gw.local/"), "http://gw.local/");
        assert_eq!(r("not a url s3cret"), "***");
    }

    #[test]
    fn a_zone_that_crosses_itself_is_refused() {
        let zone = |polygon: &str| {
            format!(
                "[site]\nid = \"rw9\"\n[[cameras]]\nid = \"c\"\nurl = \"rtsp://10.0.0.2/\"\n\
                 [[cameras.zones]]\nname = \"z\"\npolygon = {polygon}\n"
            )
        };
        let e = parse(&zone("[[0, 0], [100, 100], [100, 0], [0, 100]]")).unwrap_err();
        let text: Vec<String> = e.issues().iter().map(|i| i.to_string()).collect();
        assert_eq!(
            text,
            [
                "cameras[0].zones[0].polygon: the polygon crosses itself at edge 0 and 2 (edge N \
              runs from point N to the next): move the points so the edges don't cross"
            ]
        );
        // a concave zone whose edges do not cross is fine
        let s = parse(&zone("[[0, 0], [100, 0], [50, 40], [100, 100], [0, 100]]")).unwrap();
        assert_eq!(s.cameras[0].zones[0].polygon.points.len(), 5);
    }

    #[test]
    fn curfew_window_wraps_midnight() {
        let w = Window {
            start: parse_hhmm("22:00").unwrap(),
            end: parse_hhmm("05:00").unwrap(),
        };
        assert!(w.contains(parse_hhmm("23:30").unwrap()));
        assert!(w.contains(parse_hhmm("04:59").unwrap()));
        assert!(!w.contains(parse_hhmm("12:00").unwrap()));
    }

    fn with_names(camera: &str, line: &str, zone: &str, prefix: &str) -> String {
        let q = |v: &str| toml::Value::String(v.to_string()).to_string();
        format!(
            "[site]\nid = \"rw9\"\n[mqtt]\ntopic_prefix = {}\n\
             [[cameras]]\nid = {}\nurl = \"rtsp://10.0.0.2/\"\n\
             [[cameras.lines]]\nname = {}\npoints = [[0, 0], [0, 100]]\n\
             [[cameras.zones]]\nname = {}\npolygon = [[0, 0], [100, 0], [100, 100]]\n",
            q(prefix),
            q(camera),
            q(line),
            q(zone)
        )
    }

    #[test]
    fn names_that_become_topic_levels_are_bounded_and_safe() {
        let long = "y".repeat(65_600);
        let e = parse(&with_names(&long, &long, "a/b", &format!("ronda/{long}"))).unwrap_err();
        let issues = e.issues();
        let places: Vec<&str> = issues.iter().map(|i| i.place.as_str()).collect();
        assert_eq!(
            places,
            [
                "mqtt.topic_prefix",
                "cameras[0].id",
                "cameras[0].lines[0].name",
                "cameras[0].zones[0].name"
            ],
            "{e}"
        );
        // each message says what to fix, without echoing the whole name
        assert!(e.to_string().len() < 2_000, "{} bytes", e.to_string().len());
        assert!(
            issues[2]
                .message
                .contains("65600 characters long; use at most 64"),
            "{e}"
        );
        assert!(issues[3].message.contains("contains `/`"), "{e}");
        for bad in ["gate\n2", "ga\u{202E}te", "#", "+1", " "] {
            let e = parse(&with_names("gate-1", bad, "z", "ronda/rw9")).unwrap_err();
            assert_eq!(
                e.issues()[0].place,
                "cameras[0].lines[0].name",
                "{bad:?}: {e}"
            );
        }
        let fine = parse(&with_names(
            "gate-1",
            "Gerbang Utara (masuk)",
            "pos ronda",
            "rw9/x",
        ));
        assert!(fine.is_ok(), "{fine:?}");
    }

    #[test]
    fn an_open_broker_beyond_loopback_is_warned_about_and_auth_needs_both_parts() {
        let mqtt = |extra: &str| {
            parse(&format!(
                "[site]\nid = \"rw9\"\n[mqtt]\nembedded = true\n{extra}"
            ))
        };
        let w = mqtt("listen = \"0.0.0.0:1883\"\n").unwrap().warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("without authentication"), "{w:?}");
        for quiet in [
            "listen = \"127.0.0.1:1883\"\n",
            "listen = \"[::1]:1883\"\n",
            "listen = \"0.0.0.0:1883\"\nusername = \"ronda\"\npassword_env = \"RONDA_MQTT_PASS\"\n\
             tls_cert = \"broker.pem\"\ntls_key = \"broker.key\"\n",
        ] {
            assert_eq!(
                mqtt(quiet).unwrap().warnings(),
                Vec::<String>::new(),
                "{quiet}"
            );
        }
        // with a password but no TLS: the password crosses the network readable
        let w = mqtt(
            "listen = \"0.0.0.0:1883\"\nusername = \"ronda\"\npassword_env = \"RONDA_MQTT_PASS\"\n",
        )
        .unwrap()
        .warnings();
        assert!(w.len() == 1 && w[0].contains("without TLS"), "{w:?}");
        // TLS needs both files, and only for the embedded broker
        for (bad, place) in [
            ("tls_cert = \"b.pem\"\n", "mqtt.tls_key"),
            ("tls_key = \"b.key\"\n", "mqtt.tls_cert"),
        ] {
            let e = mqtt(bad).unwrap_err().to_string();
            assert!(e.contains(place), "{e}");
        }
        let http = |listen: &str, public: bool| {
            parse(&format!(
                "[site]\nid = \"rw9\"\n[http]\nlisten = \"{listen}\"\nmetrics_public = {public}\n"
            ))
            .unwrap()
            .warnings()
        };
        let w = http("0.0.0.0:8080", true);
        assert!(
            w.len() == 1 && w[0].starts_with("http.metrics_public"),
            "{w:?}"
        );
        assert!(http("0.0.0.0:8080", false).is_empty());
        assert!(http("127.0.0.1:8080", true).is_empty());
        let external = |url: &str| {
            parse(&format!(
                "[site]\nid = \"rw9\"\n[mqtt]\nembedded = false\nurl = \"{url}\"\n"
            ))
            .unwrap()
            .warnings()
        };
        for far in [
            "mqtt://broker.example.com:1883",
            "mqtt://203.0.113.5",
            "mqtt://u@[2001:db8::1]:1883",
        ] {
            let w = external(far);
            assert!(w.len() == 1 && w[0].starts_with("mqtt.url"), "{far}: {w:?}");
        }
        for near in [
            "mqtts://broker.example.com:8883",
            "mqtt://192.168.1.10:1883",
            "mqtt://10.0.0.5",
            "mqtt://localhost:1883",
            "mqtt://pos-ronda",
            "mqtt://broker.lan",
            "mqtt://[fd00::5]:1883",
        ] {
            assert_eq!(external(near), Vec::<String>::new(), "{near}");
        }
        let e = mqtt("username = \"ronda\"\n").unwrap_err();
        assert_eq!(e.issues()[0].place, "mqtt.password_env", "{e}");
        let e = mqtt("password_env = \"RONDA_MQTT_PASS\"\n").unwrap_err();
        assert_eq!(e.issues()[0].place, "mqtt.username", "{e}");
    }

    #[test]
    fn http_hosts_are_host_names_only() {
        let http = |hosts: &str| parse(&format!("[site]\nid = \"rw9\"\n[http]\nhosts = {hosts}\n"));
        let s = http("[\"Ronda.Example.Org.\", \"pos-ronda\"]").unwrap();
        assert_eq!(s.http.hosts, ["ronda.example.org", "pos-ronda"]);
        let e = http("[\"https://ronda.example.org/\", \"ok.example\", \"a:8080\"]").unwrap_err();
        let places: Vec<&str> = e.issues().iter().map(|i| i.place.as_str()).collect();
        assert_eq!(places, ["http.hosts[0]", "http.hosts[2]"], "{e}");
        assert_eq!(http("\"x\"").unwrap_err().issues()[0].place, "http.hosts");
    }

    #[test]
    fn a_syntax_error_says_where_without_echoing_the_line() {
        let long = format!("[site]\nid = \"rw9\"\nname = \"{}\n", "y".repeat(600_000));
        let e = parse(&long).unwrap_err().to_string();
        assert!(e.len() < 300, "{} bytes", e.len());
        assert!(e.contains("line 3, column"), "{e}");
        let secret = "[[cameras]]\nurl = \"rtsp://admin:Rahasia123@10.0.0.2/ch1\nid = \"c\"\n";
        let e = parse(secret).unwrap_err().to_string();
        assert!(
            !e.contains("Rahasia123") && e.contains("line 2, column"),
            "{e}"
        );
    }

    #[test]
    fn a_zone_of_too_many_points_is_refused_at_once() {
        let ring: Vec<String> = (0..94_000)
            .map(|i| {
                let a = i as f64 / 94_000.0 * std::f64::consts::TAU;
                format!(
                    "[{:.2}, {:.2}]",
                    300.0 + 200.0 * a.cos(),
                    300.0 + 200.0 * a.sin()
                )
            })
            .collect();
        let text = format!(
            "[site]\nid = \"rw9\"\n[[cameras]]\nid = \"c\"\nurl = \"rtsp://10.0.0.2/\"\n\
             [[cameras.zones]]\nname = \"z\"\npolygon = [{}]\n",
            ring.join(", ")
        );
        let t = std::time::Instant::now();
        let e = parse(&text).unwrap_err();
        assert_eq!(e.issues()[0].place, "cameras[0].zones[0].polygon");
        assert!(
            e.issues()[0]
                .message
                .contains("at most 100 points, got 94000"),
            "{e}"
        );
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            t.elapsed()
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        #[test]
        fn hostile_names_never_panic_and_every_problem_is_placed(
            camera in "\\PC{0,80}",
            line in proptest::prelude::any::<String>(),
            zone in "[a-z/+# \t\n\u{200b}]{0,70}",
            prefix in proptest::prelude::any::<String>(),
        ) {
            match parse(&with_names(&camera, &line, &zone, &prefix)) {
                Ok(s) => {
                    let c = &s.cameras[0];
                    proptest::prop_assert!(crate::topic::check_name(&c.lines[0].name).is_ok());
                    proptest::prop_assert!(crate::topic::check_name(&c.zones[0].name).is_ok());
                    proptest::prop_assert!(crate::topic::prefix_problem(&s.mqtt.topic_prefix).is_none());
                    proptest::prop_assert!(crate::topic::check_name(&c.id).is_ok());
                }
                Err(e) => {
                    proptest::prop_assert!(!e.issues().is_empty(), "{}", e);
                    for i in e.issues() {
                        proptest::prop_assert!(!i.place.is_empty(), "{}", e);
                        proptest::prop_assert!(i.message.chars().count() < 400, "{}", i);
                    }
                }
            }
        }
    }
}
