//! The up-link to the city (`[uplink]`), end to end with real processes: `ronda sim`
//! (vtest.avi, people crossing the gate line) -> `ronda run` -> the guard post's Mosquitto and
//! the city's Mosquitto (persistence on, the hub's subscriber with a persistent session).
//!
//! The city broker is stopped while people cross, and ronda is killed (SIGKILL) and started
//! again during that outage: the guard post keeps getting every event meanwhile, `/metrics`
//! shows the events waiting for the city, and once the city broker is back every event ronda
//! stored arrives there exactly once, in the store's order. A second test drives the sinks
//! themselves on one store (no cameras): the same, with a shutdown of the up-link during the
//! outage. A third takes the up-link to a city broker over TLS with a login, and past a wrong
//! password. Every wait is for a condition; the deadlines only end a test that would otherwise
//! hang.

use crate::support as common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::broker::{
    Mosquitto, Subscriber, append, check_delivery, checked, free_port, opts, temp_store, wait_for,
};
use common::{Proc, metrics, run_printing_events, sample, stored_ids};
use serde_json::Value;

/// Only ends a test that would otherwise hang: a slow box waits as long as it needs below it.
const HANG: Duration = Duration::from_secs(900);
const PREFIX: &str = "ronda/village";
const EVENTS: &str = "ronda/village/events";

/// The events `ronda run` printed (each printed only once stored), in order.
type Printed = Arc<Mutex<Vec<Value>>>;

fn start_run(cfg: &Path, printed: &Printed) -> Proc {
    let (run, events) = run_printing_events(cfg);
    let p = printed.clone();
    std::thread::spawn(move || {
        for e in events {
            p.lock().unwrap().push(e);
        }
    });
    run
}

fn printed_ids(printed: &Printed) -> Vec<String> {
    let all = printed.lock().unwrap();
    all.iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

/// The ids `sub` received on `ronda/village/events`, in arrival order (duplicates kept).
fn received(sub: &Subscriber) -> Vec<String> {
    received_on(sub, EVENTS)
}

fn received_on(sub: &Subscriber, topic: &str) -> Vec<String> {
    sub.on(topic)
        .iter()
        .map(|m| checked(&m.payload).id)
        .collect()
}

fn has_all(sub: &Subscriber, ids: &[String]) -> bool {
    has_all_on(sub, EVENTS, ids)
}

fn has_all_on(sub: &Subscriber, topic: &str, ids: &[String]) -> bool {
    let got: HashSet<String> = received_on(sub, topic).into_iter().collect();
    ids.iter().all(|id| got.contains(id))
}

/// The hub: a subscriber with a persistent session on the city broker, to `ronda/<site>/#`.
fn hub(port: u16, prefix: &str) -> Subscriber {
    let mut o = rumqttc::MqttOptions::new(
        format!("city-hub-{}", std::process::id()),
        "127.0.0.1",
        port,
    );
    o.set_keep_alive(Duration::from_secs(5))
        .set_clean_session(false)
        .set_max_packet_size(1 << 20, 1 << 20);
    let s = Subscriber::start(o, &format!("{prefix}/#"));
    assert!(s.subscribed(1, HANG), "the hub did not get SUBACK");
    s
}

/// A single (unlabelled) metric of `/metrics` text.
fn value(text: &str, name: &str) -> Option<f64> {
    let key = format!("{name} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.trim().parse().ok())
}

fn uplink_metric(http: u16, name: &str) -> f64 {
    metrics(http)
        .and_then(|t| value(&t, name))
        .unwrap_or(f64::NAN)
}

#[test]
fn a_city_outage_and_a_restart_hold_back_nothing_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ronda.db");
    let local = Mosquitto::start();
    let mut city = Mosquitto::persistent();
    let guard_post = Subscriber::new(local.port, EVENTS);
    let hub = hub(city.port, PREFIX);
    let sim_port = free_port();
    let http = free_port();
    let cfg = dir.path().join("ronda.toml");
    std::fs::write(
        &cfg,
        format!(
            "[site]\nid = \"village\"\n\
             [mqtt]\nembedded = false\nurl = \"mqtt://127.0.0.1:{local}\"\n\
             [uplink]\nurl = \"mqtt://127.0.0.1:{city}\"\n\
             [http]\nlisten = \"127.0.0.1:{http}\"\nmetrics_public = true\n\
             [store]\npath = \"{db}\"\nclips_dir = \"{d}/clips\"\n\
             [[cameras]]\nid = \"gate-1\"\nrole = \"gate\"\nmask_check = false\nanalysis_fps = 8\n\
             url = \"rtsp://127.0.0.1:{sim_port}/cam01\"\n\
             [[cameras.lines]]\nname = \"gate\"\npoints = [[240, 94], [240, 360]]\n",
            local = local.port,
            city = city.port,
            db = db.display(),
            d = dir.path().display(),
        ),
    )
    .unwrap();
    let _sim = common::start_sim_with(sim_port, &sample("vtest.avi"), &["--cameras", "1"]);
    let printed: Printed = Arc::default();
    let run = start_run(&cfg, &printed);

    // 1. Both brokers up: events reach the guard post and the city, with the retained state.
    assert!(
        wait_for(HANG, || printed.lock().unwrap().len() >= 3),
        "ronda printed no events"
    );
    let before = printed_ids(&printed);
    assert!(
        wait_for(HANG, || has_all(&hub, &before)
            && has_all(&guard_post, &before)),
        "the first events did not reach both brokers"
    );
    let retained = |topic: &str| !hub.on(&format!("{PREFIX}/{topic}")).is_empty();
    assert!(
        wait_for(HANG, || retained("availability")
            && retained("cameras/gate-1/status")
            && retained("lines/gate-1/gate/counts")),
        "camera status, line counts or availability did not go up: {:?}",
        hub.msgs.lock().unwrap()
    );
    assert_eq!(uplink_metric(http, "ronda_uplink_connected"), 1.0);

    // 2. The city broker goes away while people cross: the guard post gets every event.
    city.stop_gracefully();
    let n = printed.lock().unwrap().len();
    assert!(
        wait_for(HANG, || printed.lock().unwrap().len() >= n + 2),
        "no event during the city's outage"
    );
    let during = printed_ids(&printed);
    assert!(
        wait_for(HANG, || has_all(&guard_post, &during)),
        "the guard post was held back by the city's outage"
    );
    assert!(
        wait_for(HANG, || uplink_metric(http, "ronda_uplink_pending") >= 2.0
            && uplink_metric(http, "ronda_uplink_outages_total") >= 1.0),
        "/metrics does not show the events waiting for the city: {:?}",
        metrics(http)
    );

    // 3. ronda is killed and started again, still during the outage.
    drop(run);
    let n = printed.lock().unwrap().len();
    let _run = start_run(&cfg, &printed);
    assert!(
        wait_for(HANG, || printed.lock().unwrap().len() >= n + 2),
        "no event after the restart"
    );
    let after_restart = printed_ids(&printed);
    assert!(
        wait_for(HANG, || has_all(&guard_post, &after_restart)),
        "the guard post was held back after the restart"
    );

    // 4. The city broker is back: everything stored goes up, in order, once.
    city.resume();
    let stored = stored_ids(&db);
    let printed_now: HashSet<String> = printed_ids(&printed).into_iter().collect();
    assert!(
        printed_now.iter().all(|id| stored.contains(id)),
        "a printed event is not in the store"
    );
    assert!(
        wait_for(HANG, || has_all(&hub, &stored)),
        "events stored during the outage never reached the city"
    );
    // A fence instead of a sleep: one event stored after `stored` arrives. The up-link sends
    // in order on one connection and the broker hands them on in order, so a duplicate of an
    // earlier event would have arrived before it.
    assert!(
        wait_for(HANG, || stored_ids(&db).len() > stored.len()),
        "no event after the city came back"
    );
    let fence = stored_ids(&db)[stored.len()].clone();
    assert!(
        wait_for(HANG, || has_all(&hub, std::slice::from_ref(&fence))),
        "the event after the outage did not reach the city"
    );
    let got = received(&hub);
    let mut times: HashMap<&str, usize> = HashMap::new();
    for id in &got {
        *times.entry(id.as_str()).or_default() += 1;
    }
    let twice: Vec<&&str> = times
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id)
        .collect();
    assert!(twice.is_empty(), "the city got events twice: {twice:?}");
    let want: Vec<&String> = stored.iter().chain(std::iter::once(&fence)).collect();
    let firsts: Vec<&String> = got.iter().take(want.len()).collect();
    assert_eq!(
        firsts, want,
        "the city got the events out of the store's order"
    );
    assert!(
        wait_for(HANG, || uplink_metric(http, "ronda_uplink_connected")
            == 1.0),
        "/metrics does not show the up-link connected again"
    );
    println!(
        "{} events stored, {} during the outage; the city got each once, in order",
        stored.len(),
        stored.len() - before.len()
    );
}

#[test]
fn the_uplink_resumes_from_its_cursor_and_never_holds_back_the_guard_post() {
    use common::broker::{EVENTS as RW9_EVENTS, PREFIX as RW9, SITE};
    use ronda::sinks::{MqttSink, UplinkOptions, UplinkSink};

    let dir = tempfile::tempdir().unwrap();
    let store = temp_store(dir.path());
    let local = Mosquitto::start();
    let mut city = Mosquitto::persistent();
    let guard_post = Subscriber::new(local.port, RW9_EVENTS);
    let hub = hub(city.port, RW9);
    let city_port = city.port;
    let city_opts = move || UplinkOptions::new("127.0.0.1", city_port, SITE);
    let sink = MqttSink::start(opts(local.port), store.clone()).unwrap();
    let up = UplinkSink::start(city_opts(), store.clone()).unwrap();

    let mut want = append(&store, &sink, 0..5);
    up.notify();
    assert!(wait_for(HANG, || has_all_on(&hub, RW9_EVENTS, &want)));
    assert!(wait_for(HANG, || up.status().pending().unwrap() == 0));

    // the city goes away: the guard post gets the next ten, the city's wait in the store
    city.stop_gracefully();
    assert!(wait_for(HANG, || !up.status().connected()));
    let during = append(&store, &sink, 5..15);
    up.notify();
    assert!(
        wait_for(HANG, || has_all_on(&guard_post, RW9_EVENTS, &during)),
        "the guard post was held back by the city's outage"
    );
    assert!(wait_for(HANG, || up.status().pending().unwrap() == 10));
    assert_eq!(up.status().outages(), 1);
    want.extend(during);
    // stopped during the outage (as at a restart of the box): nothing to wait for, nothing lost
    assert_eq!(up.shutdown(Duration::from_millis(200)).unwrap(), 10);
    want.extend(append(&store, &sink, 15..20));

    // the city is back and the up-link starts again: it resumes from its cursor
    city.resume();
    let up = UplinkSink::start(city_opts(), store.clone()).unwrap();
    assert!(
        wait_for(HANG, || has_all_on(&hub, RW9_EVENTS, &want)),
        "events stored during the outage never reached the city"
    );
    // a fence instead of a sleep: a duplicate of an earlier event arrives before it or never
    let fence = append(&store, &sink, 20..21);
    up.notify();
    assert!(wait_for(HANG, || has_all_on(&hub, RW9_EVENTS, &fence)));
    want.extend(fence);
    let got: Vec<ronda::events::Event> = hub
        .on(RW9_EVENTS)
        .iter()
        .map(|m| checked(&m.payload))
        .collect();
    assert_eq!(
        check_delivery(&got, &want),
        0,
        "the city got an event twice"
    );
    assert!(wait_for(HANG, || up.status().pending().unwrap() == 0));
    // the guard post's own delivery was never touched by the up-link's cursor
    assert!(wait_for(HANG, || store.backlog().unwrap() == 0));
    assert_eq!(up.shutdown(Duration::from_secs(5)).unwrap(), 0);
    assert!(
        wait_for(HANG, || hub
            .on(&format!("{RW9}/availability"))
            .last()
            .is_some_and(|m| m.payload == "offline")),
        "no `offline` on the city's availability topic after a clean stop"
    );
    drop(sink);
}

/// `ronda run` for `village` (the sim's camera 1 with a gate line, the embedded broker as the
/// guard post's) up-linked to `city_url` with `ca_file`, user `village` and the password in
/// `CITY_TEST_PW` (set for this child only, `password`). Its web port for `/metrics`.
fn start_tls_run(
    dir: &Path,
    sim_port: u16,
    city_url: &str,
    ca: &Path,
    password: &str,
) -> (Proc, u16, u16) {
    let http = free_port();
    let mqtt = free_port();
    let cfg = dir.join("ronda.toml");
    std::fs::write(
        &cfg,
        format!(
            "[site]\nid = \"village\"\n\
             [mqtt]\nlisten = \"127.0.0.1:{mqtt}\"\n\
             [uplink]\nurl = \"{city_url}\"\nusername = \"village\"\npassword = \"${{CITY_TEST_PW}}\"\nca_file = \"{ca}\"\n\
             [http]\nlisten = \"127.0.0.1:{http}\"\nmetrics_public = true\n\
             [store]\npath = \"{d}/ronda.db\"\nclips_dir = \"{d}/clips\"\n\
             [[cameras]]\nid = \"gate-1\"\nrole = \"gate\"\nmask_check = false\nanalysis_fps = 8\n\
             url = \"rtsp://127.0.0.1:{sim_port}/cam01\"\n\
             [[cameras.lines]]\nname = \"gate\"\npoints = [[240, 94], [240, 360]]\n",
            ca = ca.display(),
            d = dir.display(),
        ),
    )
    .unwrap();
    let run = Proc(
        common::ronda()
            .args(["run", "--config"])
            .arg(&cfg)
            .env("NO_COLOR", "1")
            .env("CITY_TEST_PW", password)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("ronda run starts"),
    );
    (run, http, mqtt)
}

/// The city broker as a city runs it: TLS with the city's own CA and a login (Mosquitto's
/// password file). With `[uplink] url = "mqtts://localhost:..."`, `ca_file` and the password
/// from ronda's environment, events reach the city; with a wrong password the city refuses the
/// up-link (`ronda_uplink_connected` 0, nothing arrives) while the events wait in the store and
/// the guard post still gets them.
#[test]
fn the_uplink_speaks_tls_and_logs_in_to_the_city() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = crate::mqtt::make_certs(dir.path(), "city");
    let pwfile = dir.path().join("city.passwd");
    let st = std::process::Command::new("mosquitto_passwd")
        .args(["-b", "-c"])
        .arg(&pwfile)
        .args(["village", "kota-rahasia"])
        .status()
        .expect("mosquitto_passwd runs (make setup installs mosquitto)");
    assert!(st.success());
    let tls = free_port();
    let mut city = Mosquitto::configured(
        free_port(),
        &format!(
            "listener {tls} 127.0.0.1\ncertfile {}\nkeyfile {}\npassword_file {}\n",
            cert.display(),
            key.display(),
            pwfile.display()
        ),
    );
    city.resume();
    assert!(wait_for(HANG, || common::broker::listening(tls)));
    // the city's side reads on its plain listener
    let hub = Subscriber::new(city.port, "ronda/+/events");
    let sim_port = free_port();
    let _sim = common::start_sim_with(sim_port, &sample("vtest.avi"), &["--cameras", "1"]);
    let url = format!("mqtts://localhost:{tls}");

    // 1. the right password: events go up over TLS
    let good = dir.path().join("good");
    std::fs::create_dir_all(&good).unwrap();
    let (run, http, _) = start_tls_run(&good, sim_port, &url, &ca, "kota-rahasia");
    assert!(
        wait_for(HANG, || received_on(&hub, EVENTS).len() >= 3),
        "no event reached the city over TLS"
    );
    assert_eq!(uplink_metric(http, "ronda_uplink_connected"), 1.0);
    drop(run);
    let up = received_on(&hub, EVENTS).len();

    // 2. a wrong password: refused, the events wait in the store, the guard post has them
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let (_run, http, mqtt) = start_tls_run(&bad, sim_port, &url, &ca, "salah");
    assert!(wait_for(HANG, || common::broker::listening(mqtt)));
    let guard_post = Subscriber::new(mqtt, EVENTS);
    let db = bad.join("ronda.db");
    // what is stored from now on, once the guard post listens
    let before = stored_ids(&db);
    assert!(
        wait_for(HANG, || stored_ids(&db).len() >= before.len() + 3
            && uplink_metric(http, "ronda_uplink_pending") >= 3.0),
        "the refused up-link's events are not waiting"
    );
    let since: Vec<String> = stored_ids(&db)
        .into_iter()
        .filter(|id| !before.contains(id))
        .collect();
    assert!(
        wait_for(HANG, || has_all(&guard_post, &since)),
        "the guard post did not get the events the city refused"
    );
    assert_eq!(uplink_metric(http, "ronda_uplink_connected"), 0.0);
    assert!(uplink_metric(http, "ronda_uplink_outages_total") >= 1.0);
    assert_eq!(
        received_on(&hub, EVENTS).len(),
        up,
        "the city took events from a wrong password"
    );
}
