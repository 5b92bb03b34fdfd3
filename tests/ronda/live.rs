//! The live pipeline against the RTSP simulator over loopback, both as real processes:
//! cameras come online, go offline when the sim dies or hangs (SIGSTOP), and come back.

use crate::support as common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Proc, free_port, metric, metrics, ronda, sample, start_sim_with};
use serde_json::Value;

fn start_sim(port: u16) -> Proc {
    start_sim_with(port, &sample("vtest.avi"), &["--cameras", "4"])
}

fn signal(p: &Proc, sig: i32) {
    unsafe {
        libc::kill(p.0.id() as i32, sig);
    }
}

/// The tests of this file each run a whole pipeline; run together on a 2-core box they starve
/// each other of CPU (and a starved gate camera drops frames, which changes its counts).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// `[mqtt]`, `[http]` and `[store]` of a test's own: the embedded broker and the web UI on free
/// ports, the store and clips in the test's directory (never the project's `var/`, never the
/// ports 1883 and 8080 that a demo or another test may hold).
fn private_outlets(dir: &std::path::Path) -> String {
    format!(
        "[mqtt]\nlisten = \"127.0.0.1:{}\"\n[http]\nlisten = \"127.0.0.1:{}\"\n[store]\npath = \"{}/ronda.db\"\nclips_dir = \"{}/clips\"\n",
        free_port(),
        free_port(),
        dir.display(),
        dir.display()
    )
}

/// The log lines of a running process (also echoed to the test's stderr).
type Log = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// `ronda run --config cfg` with its events (JSON lines) on a channel and its log collected.
fn start_run(cfg: &std::path::Path) -> (Proc, mpsc::Receiver<Value>, Log) {
    let mut run = Proc(
        ronda()
            .args(["run", "--config"])
            .arg(cfg)
            .env("RONDA_TEST_CAM_PASS", "s3cret-pw")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let rx = common::json_lines(run.0.stdout.take().unwrap());
    let log: Log = Default::default();
    let err = run.0.stderr.take().unwrap();
    let l = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            eprintln!("{line}");
            l.lock().unwrap().push(line);
        }
    });
    (run, rx, log)
}

/// Wait for events until `done` says so; panics with what was seen after `limit`.
fn wait_for(
    rx: &mpsc::Receiver<Value>,
    limit: Duration,
    what: &str,
    mut done: impl FnMut(&Value) -> bool,
) {
    let t0 = Instant::now();
    let mut seen = Vec::new();
    while t0.elapsed() < limit {
        if let Ok(e) = rx.recv_timeout(Duration::from_millis(200)) {
            let hit = done(&e);
            seen.push(format!("{} {}", e["camera"], e["type"]));
            if hit {
                println!("{what}: after {:.1} s", t0.elapsed().as_secs_f64());
                return;
            }
        }
    }
    panic!("{what}: not within {limit:?}; events seen: {seen:?}");
}

#[test]
fn cameras_go_offline_and_come_back_with_the_sim() {
    let _serial = one_at_a_time();
    let port = free_port();
    let dead = free_port(); // nothing listens here
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ronda.toml");
    let mut text = String::from("[site]\nid = \"test\"\n[detector]\nmodel = \"int8\"\n");
    text += &private_outlets(dir.path());
    for n in 1..=4 {
        text += &format!(
            "[[cameras]]\nid = \"cam-{n:02}\"\nurl = \"rtsp://127.0.0.1:{port}/cam{n:02}\"\nanalysis_fps = 2\n"
        );
    }
    // badly configured cameras: nobody listens (and the URL holds a password), a wrong path,
    // a camera sending Motion-JPEG instead of H.264
    text += &format!(
        "[[cameras]]\nid = \"cam-dead\"\nurl = \"rtsp://admin:${{RONDA_TEST_CAM_PASS}}@127.0.0.1:{dead}/nothing\"\n\
         [[cameras]]\nid = \"cam-nopath\"\nurl = \"rtsp://127.0.0.1:{port}/nothing\"\n\
         [[cameras]]\nid = \"cam-mjpeg\"\nurl = \"rtsp://127.0.0.1:{port}/mjpeg\"\n"
    );
    std::fs::write(&cfg, text).unwrap();

    let sim = start_sim(port);
    let (mut run, rx, log) = start_run(&cfg);

    let cams = ["cam-01", "cam-02", "cam-03", "cam-04"];
    let mut online = std::collections::BTreeSet::new();
    let mut bad = std::collections::BTreeSet::new();
    wait_for(
        &rx,
        Duration::from_secs(30),
        "4 cameras online, the 3 bad ones offline",
        |e| {
            let cam = e["camera"].as_str().unwrap().to_string();
            if e["type"] == "camera_online" {
                online.insert(cam);
            } else if e["type"] == "camera_offline" {
                bad.insert(cam);
            }
            online.len() == 4 && bad.len() == 3
        },
    );
    assert!(
        online.iter().all(|c| cams.contains(&c.as_str())),
        "{online:?}"
    );
    // each bad camera's log line names it and says what to fix; the password never shows
    {
        let log = log.lock().unwrap();
        let said = |cam: &str, what: &str| {
            log.iter()
                .any(|l| l.contains(&format!("camera={cam}")) && l.contains(what))
        };
        assert!(said("cam-dead", "cannot connect"), "{log:#?}");
        assert!(said("cam-nopath", "no stream at that path"), "{log:#?}");
        assert!(said("cam-mjpeg", "not H.264"), "{log:#?}");
        assert!(log.iter().all(|l| !l.contains("s3cret-pw")), "{log:#?}");
        assert!(log.iter().any(|l| l.contains("admin:***@")), "{log:#?}");
    }

    // the sim dies: every camera goes offline within watchdog + debounce
    drop(sim);
    let mut offline = std::collections::BTreeSet::new();
    wait_for(
        &rx,
        Duration::from_secs(15),
        "offline after the sim was killed",
        |e| {
            if e["type"] == "camera_offline" && cams.contains(&e["camera"].as_str().unwrap()) {
                offline.insert(e["camera"].as_str().unwrap().to_string());
            }
            offline.len() == 4
        },
    );

    // it comes back: online again (backoff is at most a few seconds this early)
    let sim = start_sim(port);
    let mut back = std::collections::BTreeSet::new();
    wait_for(
        &rx,
        Duration::from_secs(20),
        "online again after the sim restarted",
        |e| {
            if e["type"] == "camera_online" {
                back.insert(e["camera"].as_str().unwrap().to_string());
            }
            back.len() == 4
        },
    );

    // a hung server (SIGSTOP): only the watchdog can notice
    signal(&sim, libc::SIGSTOP);
    let mut hung = std::collections::BTreeSet::new();
    wait_for(
        &rx,
        Duration::from_secs(15),
        "offline while the sim is stopped",
        |e| {
            if e["type"] == "camera_offline" && cams.contains(&e["camera"].as_str().unwrap()) {
                hung.insert(e["camera"].as_str().unwrap().to_string());
            }
            hung.len() == 4
        },
    );
    signal(&sim, libc::SIGCONT);
    let mut again = std::collections::BTreeSet::new();
    wait_for(&rx, Duration::from_secs(30), "online after SIGCONT", |e| {
        if e["type"] == "camera_online" {
            again.insert(e["camera"].as_str().unwrap().to_string());
        }
        again.len() == 4
    });
    signal(&run, libc::SIGTERM);
    let status = run.0.wait().unwrap();
    assert!(
        status.success(),
        "ronda run exits cleanly on SIGTERM: {status:?}"
    );
    drop(sim);
}

/// Live equals offline: the gate camera served live from TUD-Stadtmitte counts exactly what
/// `ronda analyze --fps 10` counts on the very stream the sim serves (its cached H.264: the same
/// pictures, the same timestamps), when live analysed every picture. The sim shows every frame
/// of the 25 fps clip at 5 fps (`--speed 0.2`) and appends 14 s of the empty street after each
/// pass, long enough for every person of the pass to be settled before the next one starts.
///
/// Nothing here depends on the machine's speed: a pass is measured in the camera's analysed
/// frames (from /metrics), not in seconds. If the live pipeline had to drop frames (a box too
/// loaded to keep 5 fps), the test says how many and compares no counts: a different set of
/// pictures is a different count, and that is not the counting's fault.
const SERVED_FPS: f64 = 5.0;
/// Seconds of empty street after each pass.
const GAP_S: u32 = 14;

/// (line, direction, track id) of a crossing, in an event or in `analyze`'s list.
fn line_direction_track(c: &Value) -> (String, String, u64) {
    (
        c["line"].as_str().unwrap().to_string(),
        c["direction"].as_str().unwrap().to_string(),
        c["track_id"].as_u64().unwrap(),
    )
}

/// The crossing an event is, if it is one.
fn crossing_of(e: &Value) -> Option<(String, String, u64)> {
    (e["type"] == "line_crossing").then(|| line_direction_track(e))
}

#[test]
fn live_gate_counts_equal_analyze_on_the_same_stream() {
    let _serial = one_at_a_time();
    let Some(clip) = common::shared(
        "TUD-Stadtmitte/TUD-Stadtmitte_25fps.mp4",
        "live_gate_counts_equal_analyze_on_the_same_stream",
    ) else {
        return;
    };
    let lines = [("a", "440,200,440,380"), ("b", "560,200,560,380")];
    // the stream the sim will serve, made (or found) exactly as the sim makes it
    ronda::ingest::init_gstreamer().unwrap();
    let served = ronda::ingest::sim::footage::prepare_with_gap(
        &clip,
        &ronda::ingest::sim::footage::Encoding {
            height: 480,
            fps: SERVED_FPS as u32,
            kbit: ronda::ingest::sim::SimOptions::default().bitrate_kbit,
            constant_quality: false,
        },
        GAP_S,
        SERVED_FPS / 25.0,
    )
    .unwrap();
    let mut analyze = ronda();
    analyze
        .arg("analyze")
        .arg(&served)
        .args(["--json", "--fps", "10"]);
    for (n, l) in lines {
        analyze.args(["--line", &format!("{n}={l}")]);
    }
    let out = analyze.output().unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    let offline: Value = serde_json::from_slice(&out.stdout).unwrap();
    let pass_frames = offline["frames"].as_u64().unwrap();
    assert_eq!(
        offline["analysed"], pass_frames,
        "at 10 fps every 5 fps picture is analysed"
    );
    println!(
        "offline, one pass of {pass_frames} frames: {}",
        offline["lines"]
    );

    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ronda.toml");
    let http = free_port();
    let mut text = format!(
        "[mqtt]\nlisten = \"127.0.0.1:{}\"\n[http]\nlisten = \"127.0.0.1:{http}\"\nmetrics_public = true\n[store]\npath = \"{}/ronda.db\"\nclips_dir = \"{}/clips\"\n",
        free_port(),
        dir.path().display(),
        dir.path().display()
    );
    text += &format!(
        "[site]\nid = \"test\"\n[detector]\nmodel = \"int8\"\nthreads = 2\n\
         [[cameras]]\nid = \"gate-1\"\nurl = \"rtsp://127.0.0.1:{port}/cam01\"\nrole = \"gate\"\nmask_check = false\nanalysis_fps = 10\n"
    );
    for (n, l) in lines {
        let p: Vec<&str> = l.split(',').collect();
        text += &format!(
            "[[cameras.lines]]\nname = \"{n}\"\npoints = [[{}, {}], [{}, {}]]\n",
            p[0], p[1], p[2], p[3]
        );
    }
    std::fs::write(&cfg, text).unwrap();
    let sim = start_sim_with(
        port,
        &clip,
        &[
            "--cameras",
            "1",
            "--height",
            "480",
            "--fps",
            &SERVED_FPS.to_string(),
            "--speed",
            &(SERVED_FPS / 25.0).to_string(),
            "--gap",
            &GAP_S.to_string(),
        ],
    );
    let (run, rx, _log) = start_run(&cfg);
    wait_for(&rx, Duration::from_secs(60), "gate camera online", |e| {
        e["type"] == "camera_online"
    });
    // one pass = the camera's first `pass_frames` pictures; stop collecting in the pass's gap,
    // where nobody crosses, well before the next pass begins
    let stop_at = pass_frames.saturating_sub(u64::from(GAP_S) * 2);
    let mut live: Vec<(String, String, u64)> = Vec::new();
    let (mut delivered, mut analysed, mut dropped, mut reconnects) = (0.0, 0.0, 0.0, 0.0);
    let mut last_poll = Instant::now() - Duration::from_secs(1);
    loop {
        if let Ok(e) = rx.recv_timeout(Duration::from_millis(100)) {
            live.extend(crossing_of(&e));
        }
        if last_poll.elapsed() >= Duration::from_millis(500) {
            last_poll = Instant::now();
            if let Some(m) = metrics(http) {
                let get = |n| metric(&m, n, "gate-1").unwrap_or(0.0);
                delivered = get("ronda_camera_frames_delivered_total");
                analysed = get("ronda_camera_frames_analysed_total");
                dropped = get("ronda_camera_frames_dropped_total");
                reconnects = get("ronda_camera_reconnects_total");
            }
            if analysed as u64 >= stop_at {
                break;
            }
        }
    }
    // the events of the last analysed frames may still be on their way: take what comes
    // until the stream is quiet (the gap has no crossings)
    while let Ok(e) = rx.recv_timeout(Duration::from_secs(2)) {
        live.extend(crossing_of(&e));
    }
    drop(run);
    drop(sim);
    println!(
        "live: {delivered} frames delivered, {analysed} analysed, {dropped} dropped, {reconnects} reconnects; crossings {live:?}"
    );
    let mut offline_list: Vec<(String, String, u64)> = offline["crossings"]
        .as_array()
        .unwrap()
        .iter()
        .map(line_direction_track)
        .collect();
    offline_list.sort();
    live.sort();
    println!("offline crossings {offline_list:?}");
    if dropped > 0.0 || reconnects > 0.0 {
        println!(
            "NOT COMPARED: the live pipeline dropped {dropped} frames and reconnected {reconnects} times \
             (the box was too loaded to analyse every picture), so it saw other pictures than analyze"
        );
        return;
    }
    assert!(
        analysed >= stop_at as f64,
        "live analysed {analysed} frames"
    );
    let count = |v: &[(String, String, u64)]| {
        let mut m = std::collections::BTreeMap::<(String, String), i64>::new();
        for (l, d, _) in v {
            *m.entry((l.clone(), d.clone())).or_default() += 1;
        }
        m
    };
    assert_eq!(
        count(&live),
        count(&offline_list),
        "live counts differ from analyze on the same stream"
    );
    // the same pictures in the same order: the same people, under the same track ids
    assert_eq!(live, offline_list, "same counts, other people");
}
