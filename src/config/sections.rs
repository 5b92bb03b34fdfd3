//! One reader per top-level section of the file (`[site]`, `[mqtt]`, `[detector]`, `[tracking]`,
//! `[counting]`, `[store]`, `[http]`): each checks its keys and reports every problem with its place.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use toml::Table;

use super::read;
use super::read::{Reader, join};
use super::secrets::{redact_url, url_has_literal_password, webhook_url_problems};
use super::settings::{
    Alerts, Clips, DetectorSettings, Http, Language, Mqtt, Role, Site, Store, User, Webhook,
};
use super::values::{check_addr, is_env_name, is_slug, read_time};
use crate::detect::{Provider, Variant};
use crate::events::{EventKind, Severity};
use crate::rules::{CountingParams, Severities};
use crate::topic;
use crate::track::TrackerParams;

/// `[site]`.
pub(super) fn read_site(r: &mut Reader, root: &Table) -> Site {
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
    Site {
        id: id.clone(),
        name,
        timezone,
        language,
        counts_reset,
    }
}

/// `[mqtt]`.
pub(super) fn read_mqtt(r: &mut Reader, root: &Table, id: &str) -> Mqtt {
    let empty = Table::new();
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
            "users",
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
    let users = super::mqtt_users::read_mqtt_users(r, t, embedded, username.as_deref());
    Mqtt {
        embedded,
        listen,
        url,
        username,
        password_env,
        ca_file: r.string(t, "mqtt", "ca_file").map(PathBuf::from),
        tls_cert,
        tls_key,
        topic_prefix,
        users,
    }
}

/// The form of a manifest key (checked against the manifest when the models load).
fn model_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 40
        && k.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// `[detector] area_regions` when not set: area cameras search around motion and tracked people.
pub const AREA_REGIONS: bool = false;

/// `[detector]`.
pub(super) fn read_detector(r: &mut Reader, root: &Table) -> DetectorSettings {
    let empty = Table::new();
    let t = r.table(root, "", "detector").unwrap_or(&empty);
    r.known_keys(
        t,
        "detector",
        &[
            "models",
            "ort_library",
            "person_model",
            "area_person_model",
            "area_regions",
            "model",
            "threads",
            "provider",
            "score_threshold",
            "low_light",
            "int8_arithmetic",
            "too_dark_after_hours",
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
    if !model_key(&person_model) {
        r.issue(
            "detector.person_model",
            "should be a person model's key in the models' manifest, such as \"person\" (the default)",
        );
    }
    let area_person_model = r.string(t, "detector", "area_person_model");
    if let Some(m) = &area_person_model
        && !model_key(m)
    {
        r.issue(
            "detector.area_person_model",
            "should be a person model's key in the models' manifest, such as \"person_small\" \
             (NanoDet-m at 320, int8 only), or left out (area cameras use person_model)",
        );
    }
    DetectorSettings {
        models_dir: r.string(t, "detector", "models").map(PathBuf::from),
        area_person_model,
        area_regions: r.boolean(t, "detector", "area_regions", AREA_REGIONS),
        ort_library: r.string(t, "detector", "ort_library").map(PathBuf::from),
        person_model,
        variant,
        threads: r.integer(t, "detector", "threads", 1, 1..=64) as usize,
        provider,
        score_threshold: r.number(t, "detector", "score_threshold", 0.4, 0.05..=0.99) as f32,
        low_light: r.choice(t, "detector", "low_light", "auto", &["auto", "off"]) == "auto",
        int8_exact: r.choice(
            t,
            "detector",
            "int8_arithmetic",
            "exact",
            &["exact", "fast"],
        ) == "exact",
        too_dark_after: Duration::from_secs_f64(
            3600.0 * r.number(t, "detector", "too_dark_after_hours", 3.0, 0.05..=168.0),
        ),
    }
}

/// `[tracking]`.
pub(super) fn read_tracking(r: &mut Reader, root: &Table) -> TrackerParams {
    let empty = Table::new();
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
    tracker
}

/// `[counting]`.
pub(super) fn read_counting(r: &mut Reader, root: &Table) -> (CountingParams, f64) {
    let empty = Table::new();
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
    (counting, preview_minutes)
}

/// `[store]`.
pub(super) fn read_store(r: &mut Reader, root: &Table) -> Store {
    let empty = Table::new();
    let t = r.table(root, "", "store").unwrap_or(&empty);
    r.known_keys(
        t,
        "store",
        &[
            "path",
            "clips_dir",
            "retention_days",
            "max_gb",
            "keep_free_gb",
        ],
    );
    Store {
        path: PathBuf::from(r.string_or(t, "store", "path", "var/ronda.db")),
        clips_dir: PathBuf::from(r.string_or(t, "store", "clips_dir", "var/clips")),
        retention_days: r.integer(t, "store", "retention_days", 30, 1..=3650) as u32,
        max_gb: r.number(t, "store", "max_gb", 20.0, 0.1..=100_000.0),
        keep_free_gb: r.number(t, "store", "keep_free_gb", 1.0, 0.0..=100_000.0),
    }
}

/// `[http]`.
pub(super) fn read_http(r: &mut Reader, root: &Table) -> Http {
    let empty = Table::new();
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
    Http {
        listen,
        users,
        metrics_public,
        secure_cookie,
        hosts,
        public_url,
    }
}

pub(super) fn read_alerts(r: &mut Reader, root: &Table) -> Alerts {
    let empty = Table::new();
    let t = r.table(root, "", "alerts").unwrap_or(&empty);
    r.known_keys(t, "alerts", &["cooldown_seconds", "severity"]);
    let cooldown = r.number(t, "alerts", "cooldown_seconds", 60.0, 0.0..=86_400.0);
    let mut severities = Severities::default();
    let st = r.table(t, "alerts", "severity").unwrap_or(&empty);
    r.known_keys(st, "alerts.severity", &EventKind::names());
    for kind in EventKind::ALL {
        let default = Severities::default_for(kind);
        let chosen = read::severity(r, st, "alerts.severity", kind.as_str(), default);
        severities.set(kind, chosen);
    }
    Alerts {
        cooldown: Duration::from_secs_f64(cooldown),
        severities,
    }
}

pub(super) fn read_clips(r: &mut Reader, root: &Table) -> Clips {
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

pub(super) fn read_webhook(r: &mut Reader, root: &Table) -> Option<Webhook> {
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
    let min_severity = read::severity(r, t, "webhook", "min_severity", Severity::Warning);
    let timeout = r.number(t, "webhook", "timeout_seconds", 10.0, 1.0..=120.0);
    let kinds = read::event_kinds(r, t, "webhook");
    Some(Webhook {
        url,
        min_severity,
        timeout: Duration::from_secs_f64(timeout),
        kinds,
    })
}
