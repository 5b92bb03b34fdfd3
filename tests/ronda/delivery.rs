//! Alerts are never lost on the way to the guard post, end to end with real processes:
//! `ronda sim` (vtest.avi, people crossing the gate line) -> `ronda run` -> a real Mosquitto
//! started by the test -> a recording subscriber. The broker is stopped for 30 s while crossings
//! happen, ronda is killed with SIGKILL and restarted; every event id ronda printed (it prints an
//! event only after storing it) must reach the subscriber, in order, each valid against
//! src/events.schema.json, and the gate counts must go on from where they were.

use crate::support as common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::broker::{Mosquitto, Proxy, Subscriber, checked, free_port, wait_for};
use common::{Proc, ronda, sample};
use ronda::events::EventKind;
use serde_json::Value;

fn start_sim(port: u16) -> Proc {
    common::start_sim_with(port, &sample("vtest.avi"), &["--cameras", "2"])
}

/// The events `ronda run` printed, in order, shared with the reading thread.
type Printed = Arc<Mutex<Vec<Value>>>;

fn start_run(cfg: &Path, printed: &Printed) -> Proc {
    let mut child = ronda()
        .args(["run", "--config"])
        .arg(cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let p = printed.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                p.lock().unwrap().push(v);
            }
        }
    });
    Proc(child)
}

fn crossings(printed: &Printed) -> Vec<Value> {
    printed
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "line_crossing")
        .cloned()
        .collect()
}

fn total(e: &Value) -> u64 {
    e["counts"]["in"].as_u64().unwrap() + e["counts"]["out"].as_u64().unwrap()
}

#[test]
fn broker_outage_and_a_crash_lose_no_event_and_counts_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let sim_port = free_port();
    let mut mosq = Mosquitto::start();
    // ronda reaches the broker through a proxy the test can hold shut while the broker restarts:
    // the test's subscriber (straight to the broker) must be back in before ronda sends what
    // waited, or the broker, which keeps no sessions over a restart, has nobody to give it to
    let proxy = Proxy::new(mosq.port);
    let prefix = "ronda/village";
    let cfg = dir.path().join("ronda.toml");
    std::fs::write(
        &cfg,
        format!(
            "[site]\nid = \"village\"\n\
             [mqtt]\nembedded = false\nurl = \"mqtt://127.0.0.1:{mq}\"\n\
             [http]\nlisten = \"127.0.0.1:{http}\"\n\
             [store]\npath = \"{d}/ronda.db\"\nclips_dir = \"{d}/clips\"\n\
             [[cameras]]\nid = \"gate-1\"\nrole = \"gate\"\nmask_check = false\nanalysis_fps = 8\n\
             url = \"rtsp://127.0.0.1:{sim_port}/cam01\"\n\
             [[cameras.lines]]\nname = \"gate\"\npoints = [[240, 94], [240, 360]]\n\
             [[cameras]]\nid = \"cam-02\"\nanalysis_fps = 3\n\
             url = \"rtsp://127.0.0.1:{sim_port}/cam02\"\n",
            mq = proxy.port,
            // not 8080: the demo test beside this one serves its web UI there
            http = free_port(),
            d = dir.path().display(),
        ),
    )
    .unwrap();
    let events_topic = format!("{prefix}/events");
    let sub = Subscriber::new(mosq.port, &format!("{prefix}/#"));
    let _sim = start_sim(sim_port);
    let printed: Printed = Arc::default();
    let run = start_run(&cfg, &printed);

    // events flow
    assert!(
        wait_for(Duration::from_secs(60), || crossings(&printed).len() >= 3),
        "no crossings within 60 s: {:?}",
        printed.lock().unwrap()
    );
    let n_first = printed.lock().unwrap().len();
    assert!(
        wait_for(Duration::from_secs(10), || sub.on(&events_topic).len()
            >= n_first),
        "events do not reach the broker"
    );

    // a new subscriber gets camera status, line counts and availability at once, retained
    let late = Subscriber::new(mosq.port, &format!("{prefix}/#"));
    let t = Instant::now();
    let retained = |topic: &str| late.on(topic).iter().any(|m| m.retain);
    assert!(
        wait_for(Duration::from_secs(3), || {
            retained(&format!("{prefix}/availability"))
                && retained(&format!("{prefix}/cameras/gate-1/status"))
                && retained(&format!("{prefix}/lines/gate-1/gate/counts"))
        }),
        "retained messages missing for a new subscriber: {:?}",
        late.msgs.lock().unwrap()
    );
    let counts: Value =
        serde_json::from_str(&late.on(&format!("{prefix}/lines/gate-1/gate/counts"))[0].payload)
            .unwrap();
    for k in ["in", "out", "occupancy", "since"] {
        assert!(!counts[k].is_null(), "counts payload lacks {k}: {counts}");
    }
    println!("retained state for a new subscriber in {:?}", t.elapsed());
    drop(late);

    // the broker goes away while people keep crossing (and the proxy refuses ronda until the
    // subscriber is back; the connection it has closes with the broker)
    proxy.refuse.store(true, Ordering::Relaxed);
    mosq.stop();
    let before_outage = crossings(&printed).len();
    // down until people have crossed meanwhile (a few must wait in the outbox)
    assert!(
        wait_for(Duration::from_secs(300), || crossings(&printed).len()
            >= before_outage + 3),
        "no crossing happened during the outage"
    );
    let during = crossings(&printed).len() - before_outage;
    println!("{during} crossings while the broker was down");
    mosq.resume();
    assert!(
        sub.subscribed(2, Duration::from_secs(60)),
        "the subscriber did not get back in after the broker's restart"
    );
    proxy.resume();
    assert!(
        wait_for(Duration::from_secs(30), || {
            let ids: std::collections::HashSet<String> = sub
                .on(&events_topic)
                .iter()
                .map(|m| checked(&m.payload).id)
                .collect();
            printed
                .lock()
                .unwrap()
                .iter()
                .all(|e| ids.contains(e["id"].as_str().unwrap()))
        }),
        "events stored during the outage were not delivered after it"
    );

    // SIGKILL: the broker publishes the last will, a restart goes on counting (through the
    // proxy the broker sees ronda's connection half-closed and gives up on it at its keep-alive,
    // 1.5 x 15 s: the will comes about 23 s after the kill)
    let last_before = crossings(&printed).last().map(total).unwrap();
    let t = Instant::now();
    drop(run);
    let will = wait_for(Duration::from_secs(40), || {
        sub.on(&format!("{prefix}/availability"))
            .iter()
            .any(|m| m.payload == "offline" && m.at >= t)
    });
    assert!(will, "no `offline` on the availability topic after SIGKILL");
    println!(
        "last will `offline` after {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let n_before_restart = crossings(&printed).len();
    let _run2 = start_run(&cfg, &printed);
    assert!(
        wait_for(Duration::from_secs(60), || crossings(&printed).len()
            > n_before_restart),
        "no crossing after the restart"
    );
    let first_after = crossings(&printed)[n_before_restart].clone();
    assert_eq!(
        total(&first_after),
        last_before + 1,
        "counts after the restart go on from {last_before}: {first_after}"
    );

    // every printed event arrived, first occurrences in the printed order, all schema-valid
    let want: Vec<String> = printed
        .lock()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        wait_for(Duration::from_secs(30), || {
            let got: std::collections::HashSet<String> = sub
                .on(&events_topic)
                .iter()
                .map(|m| checked(&m.payload).id)
                .collect();
            want.iter().all(|id| got.contains(id))
        }),
        "some printed events never reached the broker"
    );
    let mut seen = std::collections::HashSet::new();
    let firsts: Vec<String> = sub
        .on(&events_topic)
        .iter()
        .map(|m| checked(&m.payload).id)
        .filter(|id| seen.insert(id.clone()))
        .filter(|id| want.contains(id))
        .collect();
    assert_eq!(firsts, want, "events arrived out of order");
    let received = sub.on(&events_topic).len();
    println!(
        "{} events printed, {received} received ({} duplicates), all valid against the schema",
        want.len(),
        received - seen.len()
    );
}

/// `ronda demo` (what `make demo` runs) on this box: 40 simulated cameras, the embedded broker
/// on 127.0.0.1:1883 (the demo's fixed ports: this test needs 1883 and 8554 free), alerts shown
/// once the pipeline runs (how long after its start is printed: about 10 s on an idle box; the
/// deadlines are for failure only), on its output and to a `mosquitto_sub` client; SIGTERM
/// stops it cleanly.
#[test]
fn the_demo_shows_alerts() {
    let mut demo = Proc(
        ronda()
            .arg("demo")
            .env("RONDA_LOG", "warn")
            .stdout(Stdio::piped())
            // warnings and errors in the test's output: a demo that cannot start says why
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let lines: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let out = demo.0.stdout.take().unwrap();
    let l = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            println!("demo: {line}");
            l.lock().unwrap().push((Instant::now(), line));
        }
    });
    // the first run on a machine encodes the footage once (about a minute)
    assert!(
        wait_for(Duration::from_secs(300), || {
            if let Some(status) = demo.0.try_wait().unwrap() {
                panic!(
                    "the demo exited ({status}) before it ran: {:?}",
                    lines.lock().unwrap()
                );
            }
            lines
                .lock()
                .unwrap()
                .iter()
                .any(|(_, l)| l.starts_with("ronda demo running"))
        }),
        "the demo did not start: {:?}",
        lines.lock().unwrap()
    );
    let started = Instant::now();
    let sub = std::process::Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            "1883",
            "-t",
            "ronda/demo/events",
            "-C",
            "1",
            "-W",
            "300",
        ])
        .output()
        .expect("mosquitto_sub runs (make setup installs mosquitto-clients)");
    let event = String::from_utf8_lossy(&sub.stdout).to_string();
    assert!(sub.status.success(), "no event on MQTT within 300 s");
    checked(event.trim());
    let alert = wait_for(Duration::from_secs(300), || {
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|(_, l)| l.contains(" ALERT ") || l.contains(" WARNING "))
    });
    assert!(alert, "no alert within 300 s: {:?}", lines.lock().unwrap());
    println!(
        "first alert {:.1} s after the start",
        started.elapsed().as_secs_f64()
    );
    unsafe {
        libc::kill(demo.0.id() as i32, libc::SIGTERM);
    }
    let status = demo.0.wait().unwrap();
    assert!(
        status.success(),
        "the demo stops cleanly on SIGTERM: {status:?}"
    );
}

/// Whether the store at `db` has event `id` marked sent (acknowledged by the broker).
fn marked_sent(db: &Path, id: &str) -> bool {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    conn.query_row("SELECT sent_at FROM events WHERE id = ?1", [id], |r| {
        r.get::<_, Option<i64>>(0)
    })
    .ok()
    .flatten()
    .is_some()
}

/// The ids of the events a subscriber got.
fn ids_of(sub: &Subscriber, topic: &str) -> Vec<String> {
    sub.on(topic)
        .iter()
        .map(|m| checked(&m.payload).id)
        .collect()
}

/// The embedded broker lives in ronda's process: an event it acknowledged (marked sent) and
/// had not yet handed to a guard post when the box crashed would be lost for good. After a
/// crash (SIGKILL here) the next start sends what it acknowledged in its last minute again, to
/// the guard post that reconnects; after a clean stop (SIGTERM) nothing is sent twice. The
/// events are the `camera_offline` of a camera nobody serves, one per run: no video needed.
#[test]
fn after_a_crash_the_embedded_broker_sends_again_what_it_had_last_taken() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, db, mqtt) = box_with_a_dead_camera(dir.path());
    let topic = "ronda/rw9/events";
    let guard = |what: &str| {
        let s = Subscriber::start(Subscriber::options(mqtt), topic);
        assert!(
            s.subscribed(1, Duration::from_secs(120)),
            "the guard post could not subscribe to the embedded broker {what}"
        );
        s
    };
    // the one camera_offline of a run, once the guard post has it and the store has it sent
    let offline_of_run = |sub: &Subscriber, not: &[String]| -> String {
        let mut id = None;
        assert!(
            wait_for(Duration::from_secs(180), || {
                id = sub
                    .on(topic)
                    .iter()
                    .map(|m| checked(&m.payload))
                    .find(|e| e.kind == EventKind::CameraOffline && !not.contains(&e.id))
                    .map(|e| e.id);
                id.as_ref().is_some_and(|id| marked_sent(&db, id))
            }),
            "no camera_offline of this run delivered and marked sent: {:?}",
            ids_of(sub, topic)
        );
        id.unwrap()
    };

    // 1. a run that crashes once its event is delivered and acknowledged
    let (run, _printed) = common::run_printing_events(&cfg);
    let first = offline_of_run(&guard("(first run)"), &[]);
    drop(run); // SIGKILL

    // 2. the restart sends it again to the guard post coming back, before its own event
    let (mut run, _printed) = common::run_printing_events(&cfg);
    let back = guard("after the crash");
    let second = offline_of_run(&back, std::slice::from_ref(&first));
    let got = ids_of(&back, topic);
    let at = |id: &String| got.iter().position(|g| g == id);
    assert!(
        at(&first).is_some_and(|a| Some(a) < at(&second)),
        "the event acknowledged just before the crash did not come again first: {got:?}"
    );
    // a clean stop
    unsafe {
        libc::kill(run.0.id() as i32, libc::SIGTERM);
    }
    let status = run.0.wait().unwrap();
    assert!(status.success(), "ronda run after SIGTERM: {status}");

    // 3. after a clean stop nothing comes twice: the next run's own event is the first
    let (_run, _printed) = common::run_printing_events(&cfg);
    let again = guard("after a clean stop");
    let third = offline_of_run(&again, &[first.clone(), second.clone()]);
    let got = ids_of(&again, topic);
    assert_eq!(
        got.first(),
        Some(&third),
        "events of the runs before came again after a clean stop: {got:?}"
    );
}

/// A box's configuration in `dir` with the embedded broker and one camera nobody serves (its
/// `camera_offline` is the one event of each run): the file, the store and the MQTT port.
fn box_with_a_dead_camera(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, u16) {
    let mqtt = common::free_port();
    let db = dir.join("ronda.db");
    let cfg = dir.join("ronda.toml");
    std::fs::write(
        &cfg,
        format!(
            "[site]\nid = \"rw9\"\n[mqtt]\nlisten = \"127.0.0.1:{mqtt}\"\n\
             [http]\nlisten = \"127.0.0.1:{http}\"\n\
             [store]\npath = \"{db}\"\nclips_dir = \"{d}/clips\"\n\
             [detector]\nmodel = \"int8\"\n\
             [[cameras]]\nid = \"gate-1\"\nurl = \"rtsp://127.0.0.1:{dead}/cam01\"\n",
            http = common::free_port(),
            dead = common::free_port(),
            db = db.display(),
            d = dir.display(),
        ),
    )
    .unwrap();
    (cfg, db, mqtt)
}

/// The last event the app with client id `app` took, as ronda wrote its session down.
fn session_took(db: &Path, app: &str) -> Option<String> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    conn.query_row(
        "SELECT last_event FROM mqtt_sessions WHERE client_id = ?1",
        [app],
        |r| r.get::<_, Option<String>>(0),
    )
    .ok()
    .flatten()
}

/// `ronda run` keeps a guard phone's persistent session across a crash of the box: the phone,
/// away when the box comes back, finds its session on the new embedded broker and gets the new
/// run's event it was not there for, without subscribing again. Before, the crash took the
/// session with it: a phone that trusted it (or came back after the 30 s hold) got nothing.
/// The event is the `camera_offline` of a camera nobody serves, one per run.
#[test]
fn a_guard_phones_session_outlives_a_crash_of_the_box() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, db, mqtt) = box_with_a_dead_camera(dir.path());
    let topic = "ronda/rw9/events";
    let app = format!("pos1-phone-{}", std::process::id());
    let phone = |filter: &str| {
        let mut o = Subscriber::options(mqtt);
        o.set_client_id(app.clone());
        o.set_clean_session(false);
        Subscriber::start(o, filter)
    };
    let offline = |sub: &Subscriber| -> Vec<String> {
        sub.on(topic)
            .iter()
            .map(|m| checked(&m.payload))
            .filter(|e| e.kind == EventKind::CameraOffline)
            .map(|e| e.id)
            .collect()
    };

    // 1. the phone takes the first run's event; ronda writes down that it did; the phone
    //    goes out of reach, and the box crashes
    let (run, _printed) = common::run_printing_events(&cfg);
    let first = phone(topic);
    assert!(
        first.subscribed(1, Duration::from_secs(120)),
        "the phone could not subscribe to the embedded broker"
    );
    let mut took = Vec::new();
    assert!(
        wait_for(Duration::from_secs(180), || {
            took = offline(&first);
            took.len() == 1 && session_took(&db, &app).as_ref() == took.first()
        }),
        "the phone's session was not written down with the event it took: got {took:?}, \
         written {:?}",
        session_took(&db, &app)
    );
    drop(first);
    drop(run); // SIGKILL

    // 2. the box comes back and raises its own event while the phone is away; the phone
    //    comes back subscribing to nothing: its session is there, and the event with it
    let (_run, _printed) = common::run_printing_events(&cfg);
    let back = phone("ronda/rw9/availability");
    let mut got = Vec::new();
    assert!(
        wait_for(Duration::from_secs(180), || {
            got = offline(&back);
            got.iter().any(|id| !took.contains(id))
        }),
        "the phone back in reach got no event of the run after the crash: {got:?}"
    );
}
