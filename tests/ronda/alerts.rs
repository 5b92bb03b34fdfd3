//! Alert events of the live pipeline, end to end: `ronda sim` serves the sample clip vtest.avi
//! (people walking across a campus, 480x360) to `ronda run`, both real processes; the events are
//! read as JSON lines from `ronda run`'s stdout.
//!
//! An area camera has a restricted zone in the middle of the picture, a loiter zone on the right
//! and a crowd zone over the whole picture for at most one person; a gate camera on the same clip
//! has a line whose curfew window covers the current time and one whose window does not. The
//! area camera runs on `[detector] area_person_model = "person_small"` (NanoDet-m at 320), the
//! gate on the default model.
//! (`no_mask` needs faces vtest does not show well: its bookkeeping is unit-tested in
//! `rules::mask` and `app`.)

use crate::support as common;

use std::collections::{BTreeMap, HashMap};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Proc, free_port, ronda, sample, start_sim_with};
use serde_json::Value;

/// Clip lengths for this test (short, so that the test does not wait for the default 15 s).
const PRE_S: u64 = 2;
const POST_S: u64 = 3;

/// `ronda run --config cfg` with its events (JSON lines) on a channel; its log goes to stderr.
fn start_run(cfg: &std::path::Path) -> (Proc, mpsc::Receiver<Value>) {
    let mut run = Proc(
        ronda()
            .args(["run", "--config"])
            .arg(cfg)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let rx = common::json_lines(run.0.stdout.take().unwrap());
    (run, rx)
}

/// A daily window "HH:MM-HH:MM" from `from` to `to` minutes after now (UTC; may wrap midnight).
fn window(from: i64, to: i64) -> String {
    let now = chrono::Utc::now();
    let at = |m: i64| {
        (now + chrono::Duration::minutes(m))
            .format("%H:%M")
            .to_string()
    };
    format!("{}-{}", at(from), at(to))
}

/// The configuration's site, a free MQTT port, the web UI on `http` and the store in `dir`.
fn site_head(http: u16, dir: &std::path::Path) -> String {
    format!(
        r#"[site]
id = "test"
timezone = "UTC"
[mqtt]
listen = "127.0.0.1:{mqtt}"
[http]
listen = "127.0.0.1:{http}"
[store]
path = "{store}/ronda.db"
clips_dir = "{store}/clips""#,
        mqtt = free_port(),
        store = dir.display(),
    )
}

/// Seconds since the Unix epoch of an event's `time`.
fn time_s(e: &Value) -> f64 {
    let t = chrono::DateTime::parse_from_rfc3339(e["time"].as_str().unwrap()).unwrap();
    t.timestamp_millis() as f64 / 1000.0
}

fn str_of<'a>(e: &'a Value, k: &str) -> &'a str {
    e[k].as_str().unwrap_or("")
}

fn assert_box(e: &Value) {
    let b = e["box"].as_array().unwrap_or_else(|| panic!("no box: {e}"));
    assert_eq!(b.len(), 4, "{e}");
    let b: Vec<f64> = b.iter().map(|v| v.as_f64().unwrap()).collect();
    assert!(
        b[0] < b[2] && b[1] < b[3] && b[2] > 0.0 && b[0] < 480.0 && b[3] > 0.0 && b[1] < 360.0,
        "box not in the 480x360 picture: {e}"
    );
}

const COOLDOWN_S: f64 = 5.0;
/// The event types that pass the cooldown.
const ALERTS: [&str; 5] = [
    "intrusion",
    "loitering",
    "crowding",
    "curfew_entry",
    "no_mask",
];

#[test]
fn zone_and_curfew_alerts_arrive_live_with_severities_and_cooldown() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ronda.toml");
    // now lies inside the first window and outside the second, whatever the time of day
    let (curfew_now, curfew_later) = (window(-60, 120), window(180, 240));
    let head = site_head(free_port(), dir.path());
    let text = format!(
        r#"{head}
[detector]
model = "int8"
# the yard on NanoDet-m at 320, the gate on the default: each camera's alerts from its own model
area_person_model = "person_small"
[alerts]
cooldown_seconds = {COOLDOWN_S}
[alerts.severity]
loitering = "info"
[clips]
pre_seconds = {PRE_S}
post_seconds = {POST_S}

[[cameras]]
id = "yard"
url = "rtsp://127.0.0.1:{port}/cam01"
role = "area"
analysis_fps = 5
size = [480, 360]
  [[cameras.zones]]
  name = "gudang"
  kind = "restricted"
  polygon = [[120, 80], [360, 80], [360, 280], [120, 280]]
  [[cameras.zones]]
  name = "pos"
  kind = "loiter"
  loiter_seconds = 3
  polygon = [[240, 60], [480, 60], [480, 300], [240, 300]]
  [[cameras.zones]]
  name = "halaman"
  kind = "crowd"
  max_people = 1
  polygon = [[0, 0], [480, 0], [480, 360], [0, 360]]

[[cameras]]
id = "gate-1"
url = "rtsp://127.0.0.1:{port}/cam02"
role = "gate"
analysis_fps = 5
size = [480, 360]
  [[cameras.lines]]
  name = "gapura"
  points = [[240, 40], [240, 320]]
  curfew = "{curfew_now}"
  [[cameras.lines]]
  name = "timur"
  points = [[380, 40], [380, 320]]
  curfew = "{curfew_later}"
"#,
        PRE_S = PRE_S,
        POST_S = POST_S,
    );
    std::fs::write(&cfg, &text).unwrap();
    println!("config:\n{text}");

    let sim = start_sim_with(
        port,
        &sample("vtest.avi"),
        &["--cameras", "2", "--height", "360"],
    );
    let (mut run, rx) = start_run(&cfg);

    // every event, with the seconds since the yard camera came online
    let t_start = Instant::now();
    let mut online: Option<Instant> = None;
    let mut events: Vec<(f64, Value)> = Vec::new();
    let mut first: BTreeMap<String, f64> = BTreeMap::new();
    let needed = |first: &BTreeMap<String, f64>| {
        ["intrusion", "crowding", "loitering", "curfew_entry"]
            .iter()
            .all(|k| first.contains_key(*k))
    };
    let mut done_at: Option<Instant> = None;
    loop {
        if online.is_none() {
            assert!(
                t_start.elapsed() < Duration::from_secs(180),
                "the yard camera did not come online within 180 s"
            );
        } else if online.is_some_and(|t| t.elapsed() > Duration::from_secs(300)) {
            break;
        }
        // once everything was seen, 5 s more: time must pass, not work get done. The cooldown
        // is a real-clock rule (COOLDOWN_S seconds), checked below over every event seen, and
        // a repeat it should hold back can only come once the cooldown's time has gone by. A
        // slow box sees fewer events in it, which weakens that check but cannot fail it.
        if done_at.is_some_and(|t| t.elapsed() > Duration::from_secs(5)) {
            break;
        }
        let Ok(e) = rx.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        if online.is_none() && e["type"] == "camera_online" && e["camera"] == "yard" {
            online = Some(Instant::now());
        }
        let t = online.map_or(0.0, |o| o.elapsed().as_secs_f64());
        let kind = str_of(&e, "type").to_string();
        first.entry(kind).or_insert(t);
        events.push((t, e));
        if done_at.is_none() && needed(&first) {
            done_at = Some(Instant::now());
        }
    }
    // the alerts' clips: MP4 from the camera's own stream, indexed as incidents
    let store = ronda::store::Store::open(&dir.path().join("ronda.db")).unwrap();
    let clip_ready = || {
        let page = store
            .incidents(&ronda::store::IncidentFilter {
                limit: 200,
                ..Default::default()
            })
            .unwrap();
        page.items
            .into_iter()
            .find(|i| i.clip.state == ronda::store::ClipState::Ready && i.events.len() == 1)
    };
    let t0 = Instant::now();
    let incident = loop {
        if let Some(i) = clip_ready() {
            break i;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no clip written within 120 s of the alerts"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let file = dir
        .path()
        .join("clips")
        .join(incident.clip.path.as_ref().unwrap());
    let mut video = ronda::ingest::file::VideoFile::open(&file).expect("GStreamer opens the clip");
    let mut frames = 0u64;
    while video.next_frame().unwrap().is_some() {
        frames += 1;
    }
    let secs = frames as f64 / 15.0; // the sim serves 15 fps
    // alerts on one camera within a clip's post-roll share it: the clip then runs from the
    // first alert's pre-roll to the last one's post-roll
    let first_at = incident.events.iter().map(|e| e.at).min().unwrap();
    let last_at = incident.events.iter().map(|e| e.at).max().unwrap();
    let span = (last_at - first_at).num_milliseconds() as f64 / 1000.0;
    let want = span + (PRE_S + POST_S) as f64;
    println!(
        "clip of {} ({:?}, {} alert(s) over {span:.1} s): {frames} frames = {secs:.2} s, want {want:.2} s, {} bytes",
        incident.id,
        incident.kind,
        incident.events.len(),
        incident.clip.bytes.unwrap_or(0),
    );
    assert!(
        (secs - want).abs() <= 1.0,
        "clip lasts {secs:.2} s, pre + alerts' span + post = {want:.2} s"
    );
    let indexed = incident.clip.duration.unwrap().as_secs_f64();
    assert!((indexed - secs).abs() < 0.5, "index says {indexed} s");

    unsafe {
        libc::kill(run.0.id() as i32, libc::SIGTERM);
    }
    // the rest, until the writer closes stdout
    while let Ok(e) = rx.recv_timeout(Duration::from_secs(15)) {
        let t = online.map_or(0.0, |o| o.elapsed().as_secs_f64());
        events.push((t, e));
    }
    let status = run.0.wait().unwrap();
    drop(sim);

    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (_, e) in &events {
        *counts
            .entry((str_of(e, "camera").into(), str_of(e, "type").into()))
            .or_default() += 1;
    }
    for (t, e) in &events {
        println!(
            "{t:6.2} s  {:7} {:14} {:8} line={} zone={} dir={} track={} mask={}",
            str_of(e, "camera"),
            str_of(e, "type"),
            str_of(e, "severity"),
            e["line"],
            e["zone"],
            e["direction"],
            e["track_id"],
            e["mask"]
        );
    }
    println!("events by camera and type: {counts:?}");
    println!("first of each type, seconds after the yard camera came online: {first:.2?}");
    assert!(status.success(), "ronda run exits cleanly: {status:?}");
    assert!(
        needed(&first),
        "not every alert type within 300 s of the camera coming online: {first:?}"
    );

    // the fields and severities of each kind, as the config says
    let of = |kind: &'static str| {
        events
            .iter()
            .map(|(_, e)| e)
            .filter(move |e| e["type"] == kind)
    };
    for e in of("intrusion") {
        assert_eq!(
            (
                str_of(e, "camera"),
                str_of(e, "zone"),
                str_of(e, "severity")
            ),
            ("yard", "gudang", "alert"),
            "{e}"
        );
        assert!(e["track_id"].is_u64(), "{e}");
        assert!(e["line"].is_null() && e["direction"].is_null(), "{e}");
        assert_box(e);
    }
    for e in of("crowding") {
        assert_eq!(
            (
                str_of(e, "camera"),
                str_of(e, "zone"),
                str_of(e, "severity")
            ),
            ("yard", "halaman", "warning"),
            "{e}"
        );
        assert!(e["track_id"].is_null(), "crowding is about the group: {e}");
        assert_box(e);
    }
    for e in of("loitering") {
        // [alerts.severity] loitering = "info" instead of the built-in "warning"
        assert_eq!(
            (
                str_of(e, "camera"),
                str_of(e, "zone"),
                str_of(e, "severity")
            ),
            ("yard", "pos", "info"),
            "{e}"
        );
        assert!(e["track_id"].is_u64(), "{e}");
        assert_box(e);
    }
    for e in of("line_crossing") {
        assert_eq!(
            (str_of(e, "camera"), str_of(e, "severity")),
            ("gate-1", "info"),
            "{e}"
        );
    }
    assert!(of("intrusion").count() >= 1 && of("crowding").count() >= 1);

    // the gate: every curfew_entry comes with (right after) the `in` crossing of the same
    // person on the line whose curfew is on; every such crossing has one unless the same person
    // had one on that line within the cooldown; the other line never raises one
    let gate: Vec<&Value> = events
        .iter()
        .map(|(_, e)| e)
        .filter(|e| e["camera"] == "gate-1" && !str_of(e, "type").starts_with("camera_"))
        .collect();
    let mut last_curfew: HashMap<u64, f64> = HashMap::new();
    let mut entries = 0;
    for (i, e) in gate.iter().enumerate() {
        if e["type"] == "curfew_entry" {
            assert_eq!(
                (
                    str_of(e, "line"),
                    str_of(e, "direction"),
                    str_of(e, "severity")
                ),
                ("gapura", "in", "alert"),
                "{e}"
            );
            assert_box(e);
            let crossing = gate[..i]
                .iter()
                .rev()
                .find(|p| p["type"] == "line_crossing")
                .unwrap_or_else(|| panic!("curfew_entry without a crossing before it: {e}"));
            assert_eq!(
                (
                    str_of(crossing, "line"),
                    str_of(crossing, "direction"),
                    &crossing["track_id"]
                ),
                ("gapura", "in", &e["track_id"]),
                "{e} does not follow its crossing {crossing}"
            );
        }
        if e["type"] == "line_crossing" && e["line"] == "gapura" && e["direction"] == "in" {
            entries += 1;
            let id = e["track_id"].as_u64().unwrap();
            let next = gate.get(i + 1);
            let has = next.is_some_and(|n| n["type"] == "curfew_entry" && n["track_id"] == id);
            let cooling = last_curfew
                .get(&id)
                .is_some_and(|t| time_s(e) - t < COOLDOWN_S);
            assert!(
                has || cooling,
                "an entry during the curfew without curfew_entry: {e}"
            );
            if has {
                last_curfew.insert(id, time_s(e));
            }
        }
    }
    assert!(
        entries >= 1 && !last_curfew.is_empty(),
        "no entry on the gate line"
    );
    assert!(
        gate.iter()
            .all(|e| !(e["type"] == "curfew_entry" && e["line"] == "timur")),
        "the line whose curfew is later raised curfew_entry"
    );

    // the cooldown: no two alerts about the same thing within it
    let mut last: HashMap<String, (f64, &Value)> = HashMap::new();
    for (_, e) in &events {
        let kind = str_of(e, "type");
        if !ALERTS.contains(&kind) {
            continue;
        }
        let key = format!(
            "{} {kind} zone={} line={} track={}",
            str_of(e, "camera"),
            e["zone"],
            e["line"],
            e["track_id"]
        );
        let t = time_s(e);
        if let Some((prev, pe)) = last.get(&key) {
            // times are printed to the millisecond: allow for the rounding
            assert!(
                t - prev >= COOLDOWN_S - 0.01,
                "{key}: two alerts {:.3} s apart:\n{pe}\n{e}",
                t - prev
            );
        }
        last.insert(key, (t, e));
    }
}

/// Gate cameras the detector cannot keep up with still leave turns to an area camera: four gate
/// cameras at 15 pictures a second ask 60 looks a second of one detector that takes tens of
/// milliseconds a look on a 2-core box, so the gate always has its next picture waiting; served
/// strictly first it took every look and the yard beside it was never looked at (its intruder
/// raised nothing). The gates keep most of the looks (`app::turns`: at most 3 in a row while
/// another camera waits); on a box fast enough to keep up, nobody waits anyway.
#[test]
fn gates_the_detector_cannot_keep_up_with_leave_turns_to_an_area_camera() {
    let port = free_port();
    let http = free_port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ronda.toml");
    let head = site_head(http, dir.path());
    let mut text = format!(
        r#"{head}
[detector]
model = "int8"
threads = 1

[[cameras]]
id = "yard"
url = "rtsp://127.0.0.1:{port}/cam05"
role = "area"
analysis_fps = 5
size = [480, 360]
  [[cameras.zones]]
  name = "gudang"
  kind = "restricted"
  polygon = [[0, 0], [480, 0], [480, 360], [0, 360]]
"#
    );
    for k in 1..=4 {
        text.push_str(&format!(
            r#"
[[cameras]]
id = "gate-{k}"
url = "rtsp://127.0.0.1:{port}/cam0{k}"
role = "gate"
analysis_fps = 15
size = [480, 360]
  [[cameras.lines]]
  name = "gapura"
  points = [[240, 40], [240, 320]]
"#
        ));
    }
    std::fs::write(&cfg, &text).unwrap();
    let _sim = start_sim_with(
        port,
        &sample("vtest.avi"),
        &["--cameras", "5", "--height", "360"],
    );
    let (_run, rx) = start_run(&cfg);
    let figure = |text: &str, name: &str, cam: &str| common::metric(text, name, cam).unwrap_or(0.0);
    let gates = |text: &str, name: &str| -> f64 {
        (1..=4)
            .map(|k| figure(text, name, &format!("gate-{k}")))
            .sum()
    };
    // Once every gate camera has delivered 3 s of pictures (the start, when cameras come up one
    // by one, is over), the yard must still be looked at, and its intruders still raise alerts.
    // The deadline is for failure only: on this box the yard's next look comes within a second.
    let t0 = Instant::now();
    let mut mark: Option<(Instant, f64, f64, f64, String)> = None;
    let mut intrusion_after_mark = None;
    let mut last_poll = Instant::now();
    let last = loop {
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "the yard camera was not looked at (or raised no intrusion) within 300 s while the \
             gate cameras had their pictures waiting: {:?} (since, yard's looks, gates' looks, \
             gates' pictures dropped)",
            mark.as_ref().map(|m| (m.0, m.1, m.2, m.3))
        );
        if let Ok(e) = rx.recv_timeout(Duration::from_millis(200))
            && e["type"] == "intrusion"
            && e["camera"] == "yard"
            && let Some((at, ..)) = mark
            && intrusion_after_mark.is_none()
        {
            println!(
                "intrusion on the yard {:.1} s after the mark: {e}",
                at.elapsed().as_secs_f64()
            );
            intrusion_after_mark = Some(e);
        }
        if last_poll.elapsed() < Duration::from_secs(1) {
            continue;
        }
        last_poll = Instant::now();
        let Some(m) = common::metrics(http) else {
            continue;
        };
        let yard = figure(&m, "ronda_camera_frames_analysed_total", "yard");
        let looks = gates(&m, "ronda_camera_frames_analysed_total");
        let dropped = gates(&m, "ronda_camera_frames_dropped_total");
        match &mark {
            None if (1..=4).all(|k| {
                figure(
                    &m,
                    "ronda_camera_frames_delivered_total",
                    &format!("gate-{k}"),
                ) >= 45.0
            }) =>
            {
                mark = Some((Instant::now(), yard, looks, dropped, m));
            }
            Some((_, y0, ..)) if yard >= *y0 + 10.0 && intrusion_after_mark.is_some() => {
                break (yard, looks, dropped, m);
            }
            _ => {}
        }
    };
    let (_, y0, g0, d0, m0) = mark.unwrap();
    let (yard, looks) = (last.0 - y0, last.1 - g0);
    println!(
        "since the mark: the gates' looks {looks} (their pictures dropped meanwhile {}), the yard's {yard}: the gates' share {:.2}",
        last.2 - d0,
        looks / (looks + yard)
    );
    assert!(
        looks > yard,
        "the gates lost their precedence: {looks} vs {yard}"
    );
    // and the gates take their looks in turn: the first in the list does not take them all
    let each: Vec<f64> = (1..=4)
        .map(|k| {
            let cam = format!("gate-{k}");
            figure(&last.3, "ronda_camera_frames_analysed_total", &cam)
                - figure(&m0, "ronda_camera_frames_analysed_total", &cam)
        })
        .collect();
    println!("each gate's looks since the mark: {each:?}");
    let (least, most) = (
        each.iter().cloned().fold(f64::MAX, f64::min),
        each.iter().cloned().fold(0.0, f64::max),
    );
    assert!(
        least > 0.0 && least * 3.0 >= most,
        "the gates' looks are not shared: {each:?}"
    );
    // the admin is told (`app::keep_up`, judged over 30 s): when the gates' pictures were mostly
    // dropped, /metrics (and the admin page) say they are behind; a box that keeps up says not
    let delivered = gates(&now_metrics(http), "ronda_camera_frames_delivered_total");
    let share = last.1 / delivered.max(1.0);
    println!("the gates' pictures looked at since the start: {share:.2}");
    if share < 0.5 {
        let t1 = Instant::now();
        while !(1..=4).any(|k| {
            figure(
                &now_metrics(http),
                "ronda_camera_behind",
                &format!("gate-{k}"),
            ) == 1.0
        }) {
            assert!(
                t1.elapsed() < Duration::from_secs(120),
                "no gate camera shown behind in /metrics with {share:.2} of their pictures looked at"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// `/metrics` of the web UI on `http` (it answers within seconds of the start).
fn now_metrics(http: u16) -> String {
    let t0 = Instant::now();
    loop {
        if let Some(m) = common::metrics(http) {
            return m;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "/metrics does not answer"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
