//! Configuration: the TOML file admins edit, read into validated [`Settings`].
//!
//! Uses (of the crate, besides its own folder): detect, events, geometry, rules, topic, track.
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

mod camera;
pub mod edit;
mod gatebook;
mod hub;
mod mqtt_users;
mod notify;
mod read;
mod secrets;
mod sections;
mod settings;
mod uplink;
mod values;

use std::collections::BTreeSet;
use std::path::PathBuf;

use toml::Table;

pub use gatebook::parse_time_of_day;
pub use hub::{HubBroker, HubRole, HubSettings, HubUser, HubVillage};
pub use mqtt_users::{MqttRole, MqttUser};
pub use notify::{
    FONNTE_SEND, NTFY_SH, Notify, Service as NotifyService, TELEGRAM_API, is_env_ref,
};
pub use read::Issue;
use read::Reader;
pub use uplink::{Uplink, UplinkTopics};

use camera::read_camera;
pub use secrets::{Piece, expand_env, pieces, redact_url, redact_webhook_url};
use secrets::{on_local_network, url_host};
use sections::{
    read_alerts, read_clips, read_counting, read_detector, read_http, read_mqtt, read_site,
    read_store, read_tracking, read_webhook,
};
pub use settings::{
    Alerts, Camera, CameraRole, Clips, DetectorSettings, Gatebook, Http, Language, Line, Mqtt,
    Role, Settings, Site, Store, User, Webhook, Zone,
};
use values::read_window;

pub use crate::rules::{Window, ZoneKind};

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

fn read_settings(r: &mut Reader, root: &Table) -> Settings {
    r.known_keys(
        root,
        "",
        &[
            "site", "mqtt", "detector", "tracking", "counting", "alerts", "clips", "store", "http",
            "webhook", "notify", "gatebook", "uplink", "cameras",
        ],
    );

    let site = read_site(r, root);

    let mqtt = read_mqtt(r, root, &site.id);

    let detector = read_detector(r, root);

    let tracker = read_tracking(r, root);

    let (counting, preview_minutes) = read_counting(r, root);

    let alerts = read_alerts(r, root);
    let clips = read_clips(r, root);

    let store = read_store(r, root);

    let http = read_http(r, root);
    let webhook = read_webhook(r, root);
    let notify = notify::read_notify(r, root, site.language);
    let gatebook = gatebook::read_gatebook(r, root);
    let uplink = uplink::read_uplink(r, root, &site.id);

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
        uplink,
        cameras,
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

#[cfg(test)]
mod tests {
    use super::values::parse_hhmm;
    use super::*;
    use crate::detect::Variant;
    use crate::events::{EventKind, Severity};
    use crate::rules::{Anchor, Severities};
    use std::path::Path;
    use std::time::Duration;

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
    fn area_cameras_may_have_their_own_person_model() {
        let s = parse("[site]\nid = \"a\"\n").unwrap();
        assert_eq!(s.detector_options().area_person_model, None);
        let s = parse("[site]\nid = \"a\"\n[detector]\narea_person_model = \"person_small\"\n")
            .unwrap();
        assert_eq!(
            s.detector_options().area_person_model.as_deref(),
            Some("person_small")
        );
        let e =
            parse("[site]\nid = \"a\"\n[detector]\narea_person_model = \"Small!\"\n").unwrap_err();
        let text: Vec<String> = e.issues().iter().map(|i| i.to_string()).collect();
        assert!(
            text.len() == 1 && text[0].starts_with("detector.area_person_model:"),
            "{text:?}"
        );
    }

    #[test]
    fn int8_arithmetic_is_exact_unless_fast_is_asked() {
        let s = parse("[site]\nid = \"a\"\n").unwrap();
        assert!(s.detector_options().runtime.int8_exact);
        let s = parse("[site]\nid = \"a\"\n[detector]\nint8_arithmetic = \"fast\"\n").unwrap();
        assert!(!s.detector_options().runtime.int8_exact);
        let e = parse("[site]\nid = \"a\"\n[detector]\nint8_arithmetic = \"quick\"\n").unwrap_err();
        let text: Vec<String> = e.issues().iter().map(|i| i.to_string()).collect();
        assert!(
            text.len() == 1
                && text[0].starts_with("detector.int8_arithmetic:")
                && text[0].contains("exact")
                && text[0].contains("fast"),
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
        // the gate's short path is watched at 10 pictures a second, the rest at 5, unless set
        assert_eq!((gate.analysis_fps, area.analysis_fps), (10.0, 5.0));
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
        // [[mqtt.users]] are authentication too: without TLS the same warning, with it none
        let guard = "[[mqtt.users]]\nname = \"pos1\"\nrole = \"guard\"\npassword_env = \"P1\"\n";
        let w = mqtt(&format!("listen = \"0.0.0.0:1883\"\n{guard}"))
            .unwrap()
            .warnings();
        assert!(w.len() == 1 && w[0].contains("without TLS"), "{w:?}");
        let w = mqtt(&format!(
            "listen = \"0.0.0.0:8883\"\ntls_cert = \"b.pem\"\ntls_key = \"b.key\"\n{guard}"
        ))
        .unwrap()
        .warnings();
        assert_eq!(w, Vec::<String>::new());
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
