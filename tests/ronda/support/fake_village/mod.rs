//! A fake village behind the real HTTP server, for `tests/api.rs` and `tests/browser.rs`:
//! two cameras (gate-1 online, pos-ronda offline), one gate line, events raised by the test,
//! acknowledgements recorded; three users (guard, admin, reviewer) with cheap argon2 hashes.
#![allow(dead_code)]

use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::PasswordHasher;
use argon2::{Algorithm, Argon2, Params, Version};
use chrono::Utc;
use ronda::api::{
    AckError, AckRecord, ApiConfig, ApiServer, CameraPicture, CameraStatus, FeedItem, LineCount,
    Village,
};
use ronda::config::Settings;
use ronda::events::{CountsView, Event, EventKind, Severity};
use ronda::ingest::camera::Health;
use ronda::store::Store;
use tokio::sync::broadcast;

// ---------------------------------------------------------------- the fake village

pub struct Fake {
    pub events: Mutex<Vec<Event>>,
    pub acks: Mutex<Vec<AckRecord>>,
    pub tx: broadcast::Sender<Event>,
    /// A real SQLite store for incidents and config versions, when the test gives one.
    pub store: Mutex<Option<Arc<Store>>>,
    /// What `snapshot` answers for every known camera.
    pub picture: Mutex<Option<CameraPicture>>,
    /// Every settings `apply_settings` was given, in order.
    pub applied: Mutex<Vec<Settings>>,
    /// What gate-1 sees (brightness, night mode, too dark, noisy) and whether the detector keeps
    /// up with it, as the tests set it.
    pub sight: Mutex<Sight>,
}

/// What a camera's picture looks like to the pipeline (the `CameraStatus` fields the pages mark).
#[derive(Clone, Copy, Default)]
pub struct Sight {
    pub brightness: Option<f64>,
    pub low_light: bool,
    pub too_dark: bool,
    pub noisy: bool,
    /// The detector does not keep up with the camera (`CameraStatus::behind`).
    pub behind: bool,
}

impl Fake {
    pub fn new(capacity: usize) -> Arc<Fake> {
        Arc::new(Fake {
            events: Mutex::new(Vec::new()),
            acks: Mutex::new(Vec::new()),
            tx: broadcast::channel(capacity).0,
            store: Mutex::new(None),
            picture: Mutex::new(None),
            applied: Mutex::new(Vec::new()),
            sight: Mutex::new(Sight::default()),
        })
    }

    pub fn set_store(&self, store: Arc<Store>) {
        *self.store.lock().unwrap() = Some(store);
    }

    pub fn set_sight(&self, sight: Sight) {
        *self.sight.lock().unwrap() = sight;
    }

    pub fn set_picture(&self, picture: CameraPicture) {
        *self.picture.lock().unwrap() = Some(picture);
    }

    /// Store an event and publish it, like the pipeline does.
    pub fn raise(&self, kind: EventKind, severity: Severity) -> Event {
        let e = Event::new(
            "kepatihan-rw9",
            chrono_tz::Asia::Jakarta,
            "gate-1",
            kind,
            severity,
            Utc::now(),
        );
        self.events.lock().unwrap().push(e.clone());
        let _ = self.tx.send(e.clone());
        e
    }
}

impl Village for Fake {
    fn cameras(&self) -> Vec<CameraStatus> {
        let sight = *self.sight.lock().unwrap();
        vec![
            CameraStatus {
                id: "gate-1".into(),
                name: "Gapura utama".into(),
                gate: true,
                health: Health::Online,
                since: Some(Utc::now()),
                delivered_fps: 12.5,
                analysed_fps: 5.0,
                frames_delivered: 120,
                frames_analysed: 117,
                frames_dropped: 3,
                reconnects: 1,
                offline: 0,
                inference_ms: Some(21.4),
                decode_ms: Some(1.2),
                frames_waiting: 0,
                brightness: sight.brightness,
                low_light: sight.low_light,
                frames_still: 0,
                light_changes: 0,
                too_dark: sight.too_dark,
                noisy: sight.noisy,
                behind: sight.behind,
                face_looks: 0,
                face_errors: 0,
                inference_errors: 0,
                alerts_suppressed: 0,
                pictures_skipped: 0,
                keyframes_only: false,
                whole_searches: 0,
                region_searches: 0,
                regions_searched: 0,
            },
            CameraStatus {
                id: "pos-ronda".into(),
                name: "Pos ronda".into(),
                gate: false,
                health: Health::Offline,
                since: None,
                delivered_fps: 0.0,
                analysed_fps: 0.0,
                frames_delivered: 0,
                frames_analysed: 0,
                frames_dropped: 0,
                reconnects: 7,
                offline: 2,
                inference_ms: None,
                decode_ms: None,
                frames_waiting: 0,
                brightness: None,
                low_light: false,
                frames_still: 0,
                light_changes: 0,
                too_dark: false,
                noisy: false,
                behind: false,
                face_looks: 0,
                face_errors: 0,
                inference_errors: 0,
                alerts_suppressed: 0,
                pictures_skipped: 0,
                keyframes_only: false,
                whole_searches: 0,
                region_searches: 0,
                regions_searched: 0,
            },
        ]
    }

    fn line_counts(&self) -> Vec<LineCount> {
        vec![LineCount {
            camera: "gate-1".into(),
            line: "gate".into(),
            counts: CountsView {
                in_: 12,
                out: 9,
                occupancy: 3,
            },
            since: Utc::now(),
        }]
    }

    fn recent_events(&self, limit: usize, min_severity: Severity) -> Vec<FeedItem> {
        let rank = |s: Severity| s as u8;
        let acks = self.acks.lock().unwrap();
        self.events
            .lock()
            .unwrap()
            .iter()
            .rev()
            .filter(|e| rank(e.severity) >= rank(min_severity))
            .take(limit)
            .map(|e| FeedItem {
                event: e.clone(),
                ack: acks.iter().find(|a| a.event_id == e.id).cloned(),
            })
            .collect()
    }

    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    fn acknowledge(&self, event_id: &str, user: &str) -> Result<AckRecord, AckError> {
        if !self.events.lock().unwrap().iter().any(|e| e.id == event_id) {
            return Err(AckError::UnknownEvent);
        }
        let mut acks = self.acks.lock().unwrap();
        if let Some(a) = acks.iter().find(|a| a.event_id == event_id) {
            return Ok(a.clone());
        }
        let rec = AckRecord {
            event_id: event_id.into(),
            user: user.into(),
            at: Utc::now(),
        };
        acks.push(rec.clone());
        Ok(rec)
    }

    fn outbox_backlog(&self) -> u64 {
        4
    }

    fn mqtt_connected(&self) -> bool {
        true
    }

    fn store(&self) -> Option<Arc<Store>> {
        self.store.lock().unwrap().clone()
    }

    fn snapshot(&self, camera: &str) -> Option<CameraPicture> {
        if !["gate-1", "pos-ronda"].contains(&camera) {
            return None;
        }
        self.picture.lock().unwrap().clone()
    }

    fn apply_settings(&self, settings: &Settings) -> Result<Vec<String>, String> {
        self.applied.lock().unwrap().push(settings.clone());
        Ok(vec!["applied to the fake village".into()])
    }
}

// ---------------------------------------------------------------- the server

pub const GUARD_PW: &str = "jaga-malam-9";
pub const ADMIN_PW: &str = "kepala-rw-sembilan";
pub const REVIEWER_PW: &str = "tinjau-rekaman";

/// Cheap hashes (1 MiB, 1 pass) so the tests do not spend their time in argon2.
pub fn light_hash(pw: &str) -> String {
    let a = Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(1024, 1, 1, None).unwrap(),
    );
    let h: argon2::PasswordHash = a.hash_password(pw.as_bytes()).unwrap();
    h.to_string()
}

pub fn settings() -> Settings {
    Settings::parse(config_text(), std::path::Path::new("api-test.toml")).unwrap()
}

/// The fake village's configuration file (for tests that let the admin editor write one).
pub fn config_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        format!(
            r#"
[site]
id = "kepatihan-rw9"
name = "Kepatihan RW 9"
timezone = "Asia/Jakarta"

[http]
listen = "127.0.0.1:8080"
[[http.users]]
name = "pos1"
role = "guard"
password_hash = "{}"
[[http.users]]
name = "pak-rw"
role = "admin"
password_hash = "{}"
[[http.users]]
name = "tinjau"
role = "reviewer"
password_hash = "{}"

[[cameras]]
id = "gate-1"
name = "Gapura utama"
url = "rtsp://admin:${{RONDA_CAM_PASS}}@192.168.1.21:554/stream2"
role = "gate"
  [[cameras.lines]]
  name = "gate"
  points = [[320, 100], [320, 360]]

[[cameras]]
id = "pos-ronda"
url = "rtsp://192.168.1.22/ch1"

[[notify]]
name = "grup-ronda"
kind = "telegram"
enabled = false
token = "${{RONDA_TEST_TG_TOKEN}}"
chat_ids = ["-1001234567890"]
"#,
            light_hash(GUARD_PW),
            light_hash(ADMIN_PW),
            light_hash(REVIEWER_PW)
        )
    })
}

pub struct Server {
    pub api: Option<ApiServer>,
    pub base: String,
    pub fake: Arc<Fake>,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

pub fn start_with(change: impl FnOnce(&mut ApiConfig), capacity: usize) -> Server {
    start_fake(change, Fake::new(capacity))
}

/// The server in front of `fake` (set its store or picture first).
pub fn start_fake(change: impl FnOnce(&mut ApiConfig), fake: Arc<Fake>) -> Server {
    let mut cfg = ApiConfig::from_settings(&settings());
    change(&mut cfg);
    let api = ApiServer::start("127.0.0.1:0", cfg, fake.clone()).unwrap();
    Server {
        base: format!("http://{}", api.local_addr()),
        api: Some(api),
        fake,
    }
}

pub fn start() -> Server {
    start_with(|_| {}, 64)
}
