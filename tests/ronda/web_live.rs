//! The web UI in front of the real pipeline: `ronda sim` serves vtest.avi (people walking across
//! a campus, 480x360) to `ronda run`, both real processes, with its embedded MQTT broker. A guard
//! follows the live feed and acknowledges an alert (stored, published on `<prefix>/acks`); an
//! admin adds a line on the camera's live snapshot and the running pipeline counts on it
//! without a restart; `/metrics` shows the real figures; alerts leave a snapshot with the box
//! drawn; killing ronda while a clip records leaves no broken MP4.
//!
//! The pipelines run one at a time (a static lock): two at once on a 2-core box starve both.

use crate::support as common;
use crate::support::browser_driver;

use std::process::Stdio;
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::broker::{Subscriber, wait_for};
use common::web::{Web, light_hash};
use common::{Proc, free_port, ronda, sample, start_sim_with};
use serde_json::Value;

const GUARD_PW: &str = "jaga-malam-9";
const ADMIN_PW: &str = "kepala-rw-sembilan";
const REVIEWER_PW: &str = "tinjau-rekaman";

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A village of one gate camera on the sim, everything on free ports, in `dir`.
struct Village {
    dir: tempfile::TempDir,
    cfg: std::path::PathBuf,
    sim_port: u16,
    mqtt: u16,
    http: u16,
}

impl Village {
    /// `extra` goes into the gate camera's table (lines, zones).
    fn new(clips: (u64, u64), extra: &str) -> Village {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("ronda.toml");
        let v = Village {
            sim_port: free_port(),
            mqtt: free_port(),
            http: free_port(),
            cfg,
            dir,
        };
        let text = format!(
            r#"# The test village (this comment must survive the admin's edits)
[site]
id = "rw9"
timezone = "Asia/Jakarta"
[mqtt]
listen = "127.0.0.1:{mqtt}"
[http]
listen = "127.0.0.1:{http}"
[[http.users]]
name = "pos1"
role = "guard"
password_hash = "{guard}"
[[http.users]]
name = "pak-rw"
role = "admin"
password_hash = "{admin}"
[[http.users]]
name = "tinjau"
role = "reviewer"
password_hash = "{reviewer}"
[store]
path = "{store}/ronda.db"
clips_dir = "{store}/clips"
[detector]
model = "int8"
[alerts]
cooldown_seconds = 5
[clips]
pre_seconds = {pre}
post_seconds = {post}

[[cameras]]
id = "gate-1"
name = "Gapura utama"
url = "rtsp://127.0.0.1:{sim}/cam01"
role = "gate"
analysis_fps = 5
size = [480, 360]
{extra}
"#,
            mqtt = v.mqtt,
            http = v.http,
            sim = v.sim_port,
            guard = light_hash(GUARD_PW),
            admin = light_hash(ADMIN_PW),
            reviewer = light_hash(REVIEWER_PW),
            store = v.dir.path().display(),
            pre = clips.0,
            post = clips.1,
        );
        std::fs::write(&v.cfg, text).unwrap();
        v
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }

    fn web(&self, name: &str, password: &str) -> Web {
        let mut w = Web::new(&self.base());
        w.login(name, password);
        w
    }

    fn sim(&self) -> Proc {
        start_sim_with(
            self.sim_port,
            &sample("vtest.avi"),
            &["--cameras", "1", "--height", "360"],
        )
    }

    /// `ronda run` with its events (JSON lines) on a channel, once its web UI answers.
    fn run(&self) -> (Proc, mpsc::Receiver<Value>) {
        let mut run = Proc(
            ronda()
                .args(["run", "--config"])
                .arg(&self.cfg)
                .env("NO_COLOR", "1")
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap(),
        );
        let rx = common::json_lines(run.0.stdout.take().unwrap());
        Web::new(&self.base()).wait_up(Duration::from_secs(90));
        (run, rx)
    }
}

fn seconds_since(time: &str) -> f64 {
    let t = chrono::DateTime::parse_from_rfc3339(time).unwrap();
    (chrono::Utc::now().timestamp_millis() - t.timestamp_millis()) as f64 / 1000.0
}

/// A restricted zone over the middle of the picture: vtest's walkers raise `intrusion` alerts
/// every few seconds (cooldown 5 s per person).
const GUDANG: &str = r#"  [[cameras.zones]]
  name = "gudang"
  kind = "restricted"
  polygon = [[100, 60], [380, 60], [380, 320], [100, 320]]
"#;

#[test]
fn a_guard_follows_live_alerts_and_acknowledges_one_on_mqtt() {
    let _one = one_at_a_time();
    let v = Village::new((2, 3), GUDANG);
    let _sim = v.sim();
    let (_run, _events) = v.run();
    let sub = Subscriber::new(v.mqtt, "ronda/rw9/#");
    let guard = v.web("pos1", GUARD_PW);
    let feed = guard.feed();

    // the first three alerts, each timed from its own `time` to its arrival in the feed
    let mut alerts: Vec<(Value, f64)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while alerts.len() < 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        let (kind, data) = feed
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("{} alert(s) in the feed within 90 s", alerts.len()));
        if kind != "event" {
            continue;
        }
        let e: Value = serde_json::from_str(&data).unwrap();
        if e["severity"] == "alert" {
            let late = seconds_since(e["time"].as_str().unwrap());
            println!(
                "{} {} in the feed {late:.3} s after it was raised",
                e["type"], e["id"]
            );
            alerts.push((e, late));
        }
    }
    for (e, late) in &alerts {
        assert!(
            *late < 2.0,
            "{} reached the guard {late:.2} s after it was raised",
            e["id"]
        );
    }

    // the alert's snapshot is the guard feed's thumbnail: the camera's picture, served to the
    // guard at the link the event carries
    let link = alerts[0].0["snapshot"].as_str().unwrap().to_string();
    let snap = guard.get(&link);
    assert_eq!(snap.status, 200, "{link}: {}", snap.text());
    assert_eq!(snap.header("content-type").as_deref(), Some("image/jpeg"));
    let picture = image::load_from_memory(&snap.body).expect("a JPEG snapshot");
    assert_eq!((picture.width(), picture.height()), (480, 360));

    // acknowledged: stored with who, answered, and published on MQTT
    let id = alerts[0].0["id"].as_str().unwrap().to_string();
    let a = guard.send("POST", &format!("/api/events/{id}/ack"), None);
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json()["user"], "pos1", "{}", a.text());
    let admin = v.web("pak-rw", ADMIN_PW);
    let again = admin.send("POST", &format!("/api/events/{id}/ack"), None);
    assert_eq!(
        again.json()["user"],
        "pos1",
        "a second ack replaced the first: {}",
        again.text()
    );
    assert!(
        wait_for(Duration::from_secs(10), || !sub
            .on("ronda/rw9/acks")
            .is_empty()),
        "no ack on ronda/rw9/acks within 10 s"
    );
    let acks = sub.on("ronda/rw9/acks");
    assert_eq!(
        acks.len(),
        1,
        "one ack published: {:?}",
        acks.iter().map(|m| &m.payload).collect::<Vec<_>>()
    );
    let ack: Value = serde_json::from_str(&acks[0].payload).unwrap();
    assert_eq!(ack["event_id"], id.as_str());
    assert_eq!(ack["user"], "pos1");
    assert!(
        ack["time"].as_str().unwrap().ends_with("+07:00"),
        "site time: {ack}"
    );
    // a page that opens later sees the alert with its acknowledgement
    let recent = guard.get("/api/events?min_severity=alert").json();
    let listed = recent
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["event"]["id"] == id.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("{id} not in the recent events: {recent}"));
    assert_eq!(listed["ack"]["user"], "pos1", "{listed}");

    // camera health and rates from the running pipeline (rates are measured over a few
    // seconds, so the first readings after the start may still be empty)
    let gate = || {
        let cams = guard.get("/api/cameras").json();
        cams.as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == "gate-1")
            .cloned()
            .unwrap_or_else(|| panic!("no gate-1 in {cams}"))
    };
    assert!(
        wait_for(Duration::from_secs(15), || gate()["delivered_fps"]
            .as_f64()
            .is_some_and(|f| f > 2.0)),
        "no delivery rate within 15 s: {}",
        gate()
    );
    let gate = gate();
    println!("gate-1 as the guard sees it: {gate}");
    assert_eq!(gate["state"], "online", "{gate}");

    // the camera's retained status carries its frame rate once it is measured
    assert!(
        wait_for(Duration::from_secs(20), || sub
            .on("ronda/rw9/cameras/gate-1/status")
            .iter()
            .any(|m| serde_json::from_str::<Value>(&m.payload).is_ok_and(
                |v| v["state"] == "online" && v["fps"].as_f64().is_some_and(|f| f > 3.0)
            ))),
        "no status with the delivered fps: {:?}",
        sub.on("ronda/rw9/cameras/gate-1/status")
            .iter()
            .map(|m| &m.payload)
            .collect::<Vec<_>>()
    );

    // /metrics: the real figures, one series per camera, the queues
    let m = Web::new(&v.base()).get("/metrics").text();
    let value = |series: &str| -> f64 {
        m.lines()
            .find_map(|l| {
                l.strip_prefix(series)
                    .map(|v| v.trim().parse::<f64>().unwrap())
            })
            .unwrap_or_else(|| panic!("no {series} in /metrics:\n{m}"))
    };
    assert_eq!(value("ronda_camera_online{camera=\"gate-1\"}"), 1.0);
    let fps = value("ronda_camera_delivered_fps{camera=\"gate-1\"}");
    assert!(
        (3.0..=7.0).contains(&fps),
        "delivered {fps} fps at analysis_fps 5"
    );
    let decode = value("ronda_decode_ms{camera=\"gate-1\"}");
    let inference = value("ronda_inference_ms{camera=\"gate-1\"}");
    println!("decode {decode:.2} ms, inference {inference:.1} ms per frame");
    assert!(decode > 0.0 && decode < 100.0, "decode {decode} ms");
    assert!(inference > 0.0, "inference {inference} ms");
    assert!(value("ronda_queue_depth{queue=\"events\"}") >= 0.0);
    assert_eq!(value("ronda_queue_capacity{queue=\"events\"}"), 1024.0);
    assert_eq!(value("ronda_mqtt_connected"), 1.0);

    // each alert left its snapshot, the person's box drawn in the alert's colour
    let snap = v.dir.path().join("clips").join("gate-1");
    assert!(
        wait_for(Duration::from_secs(10), || jpegs(&snap) >= 3),
        "fewer than 3 snapshots in {}",
        snap.display()
    );
}

/// How many JPEG files are under `dir`.
fn jpegs(dir: &std::path::Path) -> usize {
    let Ok(days) = std::fs::read_dir(dir) else {
        return 0;
    };
    days.flatten()
        .filter_map(|d| std::fs::read_dir(d.path()).ok())
        .flat_map(|f| f.flatten())
        .filter(|f| f.path().extension().is_some_and(|e| e == "jpg"))
        .count()
}

/// Line `a` near the right edge of the picture; the admin adds `b` across the middle.
const LINE_A: &str = r#"  [[cameras.lines]]
  name = "a"
  points = [[440, 40], [440, 320]]
"#;

#[test]
fn an_admin_adds_a_line_and_the_running_pipeline_counts_on_it_without_a_restart() {
    let _one = one_at_a_time();
    let v = Village::new((2, 3), LINE_A);
    let _sim = v.sim();
    let (mut run, events) = v.run();
    let sub = Subscriber::new(v.mqtt, "ronda/rw9/#");
    let admin = v.web("pak-rw", ADMIN_PW);

    // the live picture the admin draws on: the camera's own frame, at its own size
    // (503 until the camera's first frame)
    let t0 = Instant::now();
    let mut snap = admin.get("/api/admin/cameras/gate-1/snapshot.jpg");
    while snap.status != 200 && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(200));
        snap = admin.get("/api/admin/cameras/gate-1/snapshot.jpg");
    }
    assert_eq!(
        snap.status,
        200,
        "no snapshot after {:.1?}: {}",
        t0.elapsed(),
        snap.text()
    );
    assert_eq!(snap.headers["content-type"], "image/jpeg");
    let picture = image::load_from_memory(&snap.body).expect("a JPEG picture");
    assert_eq!((picture.width(), picture.height()), (480, 360));

    let loaded = admin.get("/api/admin/cameras").json();
    let version = loaded["version"].clone();
    let before = std::fs::read(&v.cfg).unwrap();

    // a refused edit changes nothing
    let bad = admin.send(
        "PUT",
        "/api/admin/cameras/gate-1",
        Some(serde_json::json!({
            "base_version": version,
            "lines": [{"name": "a", "was": "a", "points": [[440, 40], [440, 320]]},
                      {"name": "b", "points": [[240, 40]]}],
            "zones": [],
        })),
    );
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert!(bad.text().contains("2 points"), "{}", bad.text());
    assert_eq!(
        std::fs::read(&v.cfg).unwrap(),
        before,
        "a refused edit changed the file"
    );

    // the new line, saved
    let saved = admin.send(
        "PUT",
        "/api/admin/cameras/gate-1",
        Some(serde_json::json!({
            "base_version": version,
            "lines": [{"name": "a", "was": "a", "points": [[440, 40], [440, 320]]},
                      {"name": "b", "points": [[240, 40], [240, 320]]}],
            "zones": [],
        })),
    );
    let t_saved = Instant::now();
    assert_eq!(saved.status, 200, "{}", saved.text());
    let applied = saved.json()["applied"].to_string();
    println!("saved: {}", saved.text());
    assert!(applied.contains("line `b` added"), "{applied}");
    let text = std::fs::read_to_string(&v.cfg).unwrap();
    assert!(
        text.contains("this comment must survive"),
        "comments lost:\n{text}"
    );
    assert!(
        text.contains("name = \"b\""),
        "line b not in the file:\n{text}"
    );

    // the running pipeline counts on it: JSON line, MQTT event and retained counts
    let mut first_b: Option<Value> = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while first_b.is_none() && Instant::now() < deadline {
        if let Ok(e) = events.recv_timeout(Duration::from_millis(200)) {
            assert_ne!(e["type"], "camera_offline", "the camera restarted: {e}");
            if e["type"] == "line_crossing" && e["line"] == "b" {
                first_b = Some(e);
            }
        }
    }
    let e = first_b.expect("no crossing of the new line b within 60 s of saving it");
    println!(
        "first crossing of b {:.1} s after the save: {e}",
        t_saved.elapsed().as_secs_f64()
    );
    assert!(run.0.try_wait().unwrap().is_none(), "ronda run exited");
    let id = e["id"].as_str().unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || sub
            .events()
            .iter()
            .any(|m| m.id == id)),
        "the crossing of b is not on MQTT"
    );
    assert!(
        !sub.on("ronda/rw9/lines/gate-1/b/counts").is_empty(),
        "no retained counts of line b"
    );
    let guard = v.web("pos1", GUARD_PW);
    let counts = guard.get("/api/counts").json();
    let b = counts["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["line"] == "b")
        .unwrap_or_else(|| panic!("the guard view has no line b: {counts}"));
    assert!(
        b["in"].as_u64().unwrap() + b["out"].as_u64().unwrap() >= 1,
        "{b}"
    );

    // the versions: the file as found, then the admin's save
    let versions = admin.get("/api/admin/versions").json();
    println!("versions: {versions}");
    assert!(versions.to_string().contains("pak-rw"), "{versions}");
}

/// Seconds since the epoch of an RFC 3339 time, to the whole second (events carry whole
/// seconds).
fn whole_seconds(time: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(time)
        .unwrap_or_else(|e| panic!("{time}: {e}"))
        .timestamp()
}

#[test]
fn an_admin_previews_lines_on_the_last_minutes_and_the_preview_counts_what_the_live_line_did() {
    let _one = one_at_a_time();
    let v = Village::new((2, 3), LINE_A);
    let _sim = v.sim();
    let (_run, events) = v.run();
    let admin = v.web("pak-rw", ADMIN_PW);

    // let line a count a few people live first
    let mut live: Vec<Value> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while live.len() < 3 && Instant::now() < deadline {
        if let Ok(e) = events.recv_timeout(Duration::from_millis(200))
            && e["type"] == "line_crossing"
        {
            live.push(e);
        }
    }
    assert!(live.len() >= 3, "line a counted only {} people", live.len());

    // the editor's draft: line a as saved and a new line b, not saved
    let draft = serde_json::json!({
        "lines": [{"name": "a", "was": "a", "points": [[440, 40], [440, 320]]},
                  {"name": "b", "points": [[240, 40], [240, 320]]}],
        "zones": [],
    });
    let before = std::fs::read(&v.cfg).unwrap();
    let r = admin.send("POST", "/api/admin/cameras/gate-1/preview", Some(draft));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        std::fs::read(&v.cfg).unwrap(),
        before,
        "a preview changed the file"
    );
    let p = r.json();
    println!(
        "preview over {} s, {} frames: a {}/{}, b {}/{}",
        p["seconds"],
        p["frames"],
        p["lines"][0]["in"],
        p["lines"][0]["out"],
        p["lines"][1]["in"],
        p["lines"][1]["out"]
    );
    assert!(p["frames"].as_u64().unwrap() > 0 && p["seconds"].as_f64().unwrap() > 0.0);
    assert!(
        p["to"].as_str().unwrap().ends_with("+07:00"),
        "site time: {p}"
    );
    let to = whole_seconds(p["to"].as_str().unwrap());
    let lines = p["lines"].as_array().unwrap();
    assert_eq!(
        (lines[0]["name"].as_str(), lines[1]["name"].as_str()),
        (Some("a"), Some("b"))
    );
    let b = &lines[1];
    assert!(
        b["in"].as_u64().unwrap() + b["out"].as_u64().unwrap() >= 1,
        "nobody crossed the middle of the pavement in the preview: {b}"
    );
    for c in lines
        .iter()
        .flat_map(|l| l["crossings"].as_array().unwrap())
    {
        let pic = c["picture"].as_str().expect("a picture of each crossing");
        let jpeg = ronda::api::auth::base64_decode(
            pic.strip_prefix("data:image/jpeg;base64,")
                .expect("a JPEG data URL"),
        )
        .expect("base64");
        let img = image::load_from_memory(&jpeg).expect("a picture");
        assert!(
            img.height() >= 20 && img.height() <= 96,
            "{}x{}",
            img.width(),
            img.height()
        );
    }

    // line a's preview is what the running line counted: the same people, the same way. Every
    // crossing previewed was counted live (its event may still be on its way: wait for it), and
    // every live crossing before the preview's last whole second was previewed (events carry
    // whole seconds).
    let key =
        |track: &Value, dir: &Value| (track.as_u64().unwrap(), dir.as_str().unwrap().to_string());
    let previewed: Vec<(u64, String)> = lines[0]["crossings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| key(&c["track_id"], &c["direction"]))
        .collect();
    assert!(previewed.len() >= 3, "{previewed:?}");
    let counted = |live: &[Value]| -> Vec<(u64, String)> {
        live.iter()
            .map(|e| key(&e["track_id"], &e["direction"]))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline && !previewed.iter().all(|k| counted(&live).contains(k)) {
        if let Ok(e) = events.recv_timeout(Duration::from_millis(200))
            && e["type"] == "line_crossing"
        {
            live.push(e);
        }
    }
    let all_live = counted(&live);
    for k in &previewed {
        assert!(
            all_live.contains(k),
            "previewed {k:?} was not counted live: {all_live:?}"
        );
    }
    for e in live
        .iter()
        .filter(|e| whole_seconds(e["time"].as_str().unwrap()) < to)
    {
        let k = key(&e["track_id"], &e["direction"]);
        assert!(
            previewed.contains(&k),
            "counted live {k:?} is not in the preview {previewed:?}"
        );
    }

    // a draft the editor could not save cannot be previewed either, with the place of the
    // problem; an unknown camera is named
    let bad = admin.send(
        "POST",
        "/api/admin/cameras/gate-1/preview",
        Some(serde_json::json!({"lines": [{"name": "b", "points": [[240, 40]]}], "zones": []})),
    );
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert!(bad.text().contains("2 points"), "{}", bad.text());
    let none = admin.send(
        "POST",
        "/api/admin/cameras/gerbang-9/preview",
        Some(serde_json::json!({"lines": [], "zones": []})),
    );
    assert_eq!(none.status, 404, "{}", none.text());
    assert!(none.text().contains("gerbang-9"), "{}", none.text());
    // and a guard may not use it
    let guard = v.web("pos1", GUARD_PW);
    let g = guard.send(
        "POST",
        "/api/admin/cameras/gate-1/preview",
        Some(serde_json::json!({"lines": [], "zones": []})),
    );
    assert_eq!(g.status, 403, "{}", g.text());
}

/// Every MP4 under `dir`, and whether any `.part` file is left.
fn clip_files(dir: &std::path::Path) -> (Vec<std::path::PathBuf>, bool) {
    let mut mp4 = Vec::new();
    let mut part = false;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for f in rd.flatten() {
            let p = f.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".part") {
                part = true;
            } else if p.extension().is_some_and(|e| e == "mp4") {
                mp4.push(p);
            }
        }
    }
    (mp4, part)
}

/// Frames GStreamer reads from an MP4 (panics if it cannot open it).
fn frames_of(path: &std::path::Path) -> usize {
    let video = ronda::ingest::file::VideoFile::open(path)
        .unwrap_or_else(|e| panic!("{}: GStreamer cannot open it: {e}", path.display()));
    video.count()
}

#[test]
fn killing_ronda_while_a_clip_records_leaves_no_broken_mp4() {
    let _one = one_at_a_time();
    // a long post-roll: the clip is still recording when ronda dies
    let v = Village::new((2, 20), GUDANG);
    let _sim = v.sim();
    let clips = v.dir.path().join("clips");
    let first_alert = |events: &mpsc::Receiver<Value>| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(e) = events.recv_timeout(Duration::from_millis(200))
                && e["severity"] == "alert"
            {
                return e["id"].as_str().unwrap().to_string();
            }
        }
        panic!("no alert within 60 s");
    };

    // SIGKILL 3 s into the clip's post-roll. The moment is the scenario, not a condition: a
    // clip that has recorded a while and has 17 s to go (ronda runs on the real clock).
    let (mut run, events) = v.run();
    let killed = first_alert(&events);
    std::thread::sleep(Duration::from_secs(3));
    run.0.kill().unwrap();
    run.0.wait().unwrap();
    drop(run);

    // restarted: the interrupted clip is settled, nothing broken on disk
    let (run, events) = v.run();
    let reviewer = v.web("tinjau", REVIEWER_PW);
    let incident = reviewer.get(&format!("/api/incidents/{killed}")).json();
    println!("after SIGKILL: {incident}");
    let state = incident["clip"]["state"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        state == "failed" || state == "ready",
        "the interrupted clip is left `{state}`: {incident}"
    );
    let (files, part) = clip_files(&clips);
    assert!(!part, "a .part file is left in {}", clips.display());
    for f in &files {
        assert!(frames_of(f) > 0, "{}: no pictures", f.display());
    }

    // SIGTERM during a clip: the clip is finished with what was recorded, and opens
    let stopped = first_alert(&events);
    // as above: 3 s of post-roll recorded is the scenario (the clip is finished with those)
    std::thread::sleep(Duration::from_secs(3));
    let pid = run.0.id();
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let mut run = run;
    let status = run.0.wait().unwrap();
    assert!(status.success(), "ronda run after SIGTERM: {status}");
    drop(run);
    let (_run, _events) = v.run();
    // sessions end with the process: log in again
    let reviewer = v.web("tinjau", REVIEWER_PW);
    let incident = reviewer.get(&format!("/api/incidents/{stopped}")).json();
    println!("after SIGTERM: {incident}");
    assert_eq!(incident["clip"]["state"], "ready", "{incident}");
    let (files, part) = clip_files(&clips);
    assert!(!part, "a .part file is left in {}", clips.display());
    for f in &files {
        let n = frames_of(f);
        println!("{}: {n} pictures", f.display());
        assert!(n > 0, "{}: no pictures", f.display());
    }
}

#[test]
fn in_the_browser_an_admin_draws_a_line_on_the_live_picture_and_the_guard_view_counts_on_it() {
    use browser_driver::{
        Driver, click_at, log_in_at, on_canvas, pointer, screenshot, scroll_to_middle, wait,
    };
    use serde_json::json;
    let _one = one_at_a_time();
    let v = Village::new((2, 3), LINE_A);
    let _sim = v.sim();
    let (_run, events) = v.run();
    let sub = Subscriber::new(v.mqtt, "ronda/rw9/#");
    let base = v.base();

    let d = Driver::start();
    log_in_at(&d, &format!("{base}/admin"), "pak-rw", ADMIN_PW);
    d.goto(&format!("{base}/admin"));
    wait(
        &d,
        "no camera list",
        "return document.querySelectorAll('#camera-list button').length === 1;",
        json!([]),
        10,
    );
    d.click("#camera-list button[data-id=\"gate-1\"]");
    // the sim camera's own picture, at its own size
    wait(
        &d,
        "the live picture did not load",
        "const i = document.getElementById('picture'); const c = document.getElementById('overlay'); \
         return i.dataset.loaded === 'true' && i.naturalWidth === 480 && c.width === 480 && c.height === 360;",
        json!([]),
        20,
    );

    // a line across the middle: two clicks on the picture, then its name
    d.click("#add-line");
    scroll_to_middle(&d, "overlay");
    let mut steps = click_at(on_canvas(&d, 240.0, 40.0));
    steps.extend(click_at(on_canvas(&d, 240.0, 320.0)));
    pointer(&d, steps);
    wait(
        &d,
        "the drawn line has no card",
        "return document.querySelectorAll('#items .card[data-kind=\"line\"]').length === 2;",
        json!([]),
        5,
    );
    let card = "#items .card[data-kind=\"line\"][data-index=\"1\"]";
    let name = d.find(&format!("{card} input[name=name]"));
    d.cmd("POST", &format!("/element/{name}/clear"), Some(json!({})));
    d.type_into(&format!("{card} input[name=name]"), "tengah");
    screenshot(&d, "live-admin-drawn.png");
    // before saving, what it would have counted over the last minutes
    d.click("#preview");
    wait(
        &d,
        "the preview of the drawn line did not show",
        "const l = document.querySelector('#preview-result .preview-line[data-line=\"tengah\"] h3'); \
         return !!l && /tengah: masuk \\d+, keluar \\d+/.test(l.textContent);",
        json!([]),
        15,
    );
    println!(
        "preview: {}",
        d.exec(
            "return document.getElementById('preview-result').innerText;",
            json!([])
        )
    );
    screenshot(&d, "live-admin-preview.png");
    d.click("#save");
    wait(
        &d,
        "the save was not confirmed",
        "return document.getElementById('result').textContent.includes('Tersimpan sebagai versi');",
        json!([]),
        15,
    );
    let t_saved = Instant::now();
    let text = std::fs::read_to_string(&v.cfg).unwrap();
    assert!(
        text.contains("name = \"tengah\""),
        "not in the file:\n{text}"
    );

    // the guard view (an admin may open it) counts on the new line, live
    d.goto(&format!("{base}/guard"));
    wait(
        &d,
        "the guard view shows no count on line `tengah` within 60 s",
        "const li = document.querySelector('#lines li[data-line=\"tengah\"]'); \
         return !!li && /[1-9]/.test(li.querySelector('.lnum').textContent);",
        json!([]),
        60,
    );
    println!(
        "the guard view counts on `tengah` {:.1} s after the save",
        t_saved.elapsed().as_secs_f64()
    );
    screenshot(&d, "live-guard-counts.png");
    // the same crossings on MQTT, and no restart of the camera meanwhile
    let crossed: Vec<Value> = events
        .try_iter()
        .filter(|e| e["type"] == "line_crossing" && e["line"] == "tengah")
        .collect();
    assert!(!crossed.is_empty(), "no crossing of `tengah` printed");
    let id = crossed[0]["id"].as_str().unwrap().to_string();
    assert!(
        wait_for(Duration::from_secs(10), || sub
            .events()
            .iter()
            .any(|e| e.id == id)),
        "the crossing of `tengah` is not on MQTT"
    );
    assert!(
        sub.events()
            .iter()
            .all(|e| e.kind != ronda::events::EventKind::CameraOffline),
        "the camera went offline: the change restarted it"
    );
}

/// The admin page lists the guard apps the embedded broker keeps a persistent session for:
/// the phone in reach as connected, the phone away with when it was last heard and how many
/// alerts wait for it, never a clean-session client (it asked to be forgotten). The events are
/// the camera's own: offline while nobody serves it (before the away phone's session began),
/// online once the sim starts (while that phone is away).
#[test]
fn in_the_browser_an_admin_sees_which_guard_phones_are_away_and_what_waits_for_them() {
    use browser_driver::{Driver, log_in_at, screenshot, wait};
    use ronda::events::EventKind;
    use serde_json::json;
    let _one = one_at_a_time();
    let v = Village::new((2, 2), "");
    let (_run, _events) = v.run(); // the sim is not up yet: the camera goes offline
    let phone = |id: &str| {
        let mut o = Subscriber::options(v.mqtt);
        o.set_client_id(id.to_string());
        o.set_clean_session(false);
        let s = Subscriber::start(o, "ronda/rw9/events");
        assert!(
            s.subscribed(1, Duration::from_secs(60)),
            "{id} could not subscribe"
        );
        s
    };
    let got = |s: &Subscriber, kind: EventKind| s.events().iter().any(|e| e.kind == kind);
    let near = phone("hp-pos1");
    assert!(
        wait_for(Duration::from_secs(120), || got(
            &near,
            EventKind::CameraOffline
        )),
        "the phone in reach never got the camera's camera_offline"
    );
    drop(phone("hp-pos2")); // subscribed, then out of reach
    let _screen = Subscriber::new(v.mqtt, "ronda/rw9/events");
    let sim = v.sim();
    assert!(
        wait_for(Duration::from_secs(180), || got(
            &near,
            EventKind::CameraOnline
        )),
        "the phone in reach never got the camera's camera_online"
    );

    let admin = v.web("pak-rw", ADMIN_PW);
    let mut apps = Value::Null;
    let away_missed = |apps: &Value| {
        apps["apps"].as_array().and_then(|all| {
            all.iter()
                .find(|a| a["client_id"] == "hp-pos2" && a["online"] == false)
                .and_then(|a| a["missed"].as_u64())
        })
    };
    assert!(
        wait_for(Duration::from_secs(60), || {
            apps = admin.get("/api/admin/apps").json();
            away_missed(&apps).is_some_and(|n| n >= 1)
        }),
        "the away phone is not listed with the camera_online it missed: {apps}"
    );
    assert_eq!(apps["broker"], "embedded");
    // the page's hint takes the figure ronda forgets sessions by, not one of its own
    assert_eq!(apps["keep_days"], 7, "{apps}");
    let ids: Vec<&str> = apps["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["hp-pos1", "hp-pos2"],
        "connected first, and no clean session: {apps}"
    );
    let near_app = &apps["apps"][0];
    assert_eq!(near_app["online"], true, "{apps}");
    assert_eq!(near_app["missed"], Value::Null, "{apps}");
    assert_eq!(
        near_app["topics"],
        json!([{"filter": "ronda/rw9/events", "qos": 1}]),
        "{apps}"
    );
    assert!(apps["apps"][1]["heard"].as_str().is_some(), "{apps}");
    assert_eq!(
        v.web("pos1", GUARD_PW).get("/api/admin/apps").status,
        403,
        "a guard may not see the list"
    );

    let d = Driver::start();
    log_in_at(&d, &format!("{}/admin", v.base()), "pak-rw", ADMIN_PW);
    d.goto(&format!("{}/admin", v.base()));
    wait(
        &d,
        "the page does not show the away phone with the alerts waiting for it",
        "const a = document.querySelector('#app-list li[data-client=\"hp-pos2\"]'); \
         const n = document.querySelector('#app-list li[data-client=\"hp-pos1\"]'); \
         return !!a && !!n && a.classList.contains('away') && /\\d+ peringatan menunggu/.test(a.textContent) \
           && a.textContent.includes('terakhir terdengar') && n.classList.contains('online') \
           && n.textContent.includes('tersambung');",
        json!([]),
        20,
    );
    assert_eq!(
        d.exec(
            "return document.querySelectorAll('#app-list li').length;",
            json!([])
        ),
        2
    );
    d.click("#lang");
    wait(
        &d,
        "the list did not switch to English",
        "const a = document.querySelector('#app-list li[data-client=\"hp-pos2\"]'); \
         return !!a && /(\\d+ alerts|1 alert) waiting/.test(a.textContent) && a.textContent.includes('last heard') \
           && document.getElementById('apps-note').textContent.includes('over 7 days');",
        json!([]),
        5,
    );
    screenshot(&d, "admin-guard-apps.png");

    // the away phone was lost: the admin forgets it (two presses); the connected one cannot be
    let forget = "#app-list li[data-client=\"hp-pos2\"] button.forget";
    assert_eq!(
        d.exec(
            "return document.querySelectorAll('#app-list li[data-client=\"hp-pos1\"] button.forget').length;",
            json!([])
        ),
        0,
        "a connected app offers no forget"
    );
    d.click(forget);
    d.click(forget);
    wait(
        &d,
        "the page did not say the phone was forgotten",
        "return document.getElementById('apps-result').textContent.startsWith('hp-pos2 forgotten') \
           && document.querySelectorAll('#app-list li').length === 1;",
        json!([]),
        15,
    );
    screenshot(&d, "admin-guard-app-forgotten.png");
    let apps = admin.get("/api/admin/apps").json();
    assert_eq!(apps["apps"].as_array().unwrap().len(), 1, "{apps}");
    let refused = admin.send("DELETE", "/api/admin/apps/hp-pos1", None);
    assert_eq!(refused.status, 409, "{}", refused.text());
    assert!(
        refused.error().contains("connected now"),
        "{}",
        refused.text()
    );
    assert_eq!(
        admin.send("DELETE", "/api/admin/apps/hp-pos2", None).status,
        404
    );
    // the broker dropped what it kept for it: back on the same id without subscribing again,
    // it gets nothing, not even the next camera_offline (the fence the near phone gets)
    let mut o = Subscriber::options(v.mqtt);
    o.set_client_id("hp-pos2".to_string());
    o.set_clean_session(false);
    let back = Subscriber::start(o, "ronda/rw9/availability");
    assert!(back.subscribed(1, Duration::from_secs(60)));
    drop(sim);
    let offline = |s: &Subscriber| {
        s.events()
            .iter()
            .filter(|e| e.kind == EventKind::CameraOffline)
            .count()
    };
    assert!(
        wait_for(Duration::from_secs(120), || offline(&near) == 2),
        "the phone in reach did not get the second camera_offline"
    );
    assert_eq!(
        back.events().len(),
        0,
        "the forgotten session still held events: {:?}",
        back.events()
    );
}
