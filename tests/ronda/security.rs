//! Issue #18 (hardening), each finding reproduced against the real thing and shown harmless:
//! a 65,600-character line name is refused by `check-config` and by the admin editor; a bad
//! retained row, an oversized event and an unreadable event planted in the store are set
//! aside (quarantined, counted in `/metrics`) while the events around them are delivered
//! through Mosquitto and the embedded broker; a renamed or removed line's retained counts are
//! cleared on the broker; strangers failing against the guard's name from other addresses do
//! not lock the guard out. `ronda run` runs as a child process against a Mosquitto of its own.

use crate::support as common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::broker::{
    EVENTS, Mosquitto, PREFIX, Subscriber, check_delivery, embedded, event, free_port, init_log,
    opts, own_opts, temp_store, wait_for,
};
use common::web::{Web, light_hash, login_from};
use common::{Proc, ronda};
use ronda::events::Event;
use ronda::sinks::{Broker, BrokerOptions, MqttOptions, MqttSink};
use ronda::store::Store;
use serde_json::json;

const ADMIN_PW: &str = "kepala-rw-sembilan";

fn long_name() -> String {
    "y".repeat(65_600)
}

/// An event whose JSON is over the MQTT client's 256 KiB packet limit.
fn oversized(i: usize) -> Event {
    let mut e = event(i);
    e.zone = Some("y".repeat(300_000));
    e
}

/// An event row that no longer reads as an event (a damaged file, a hand edit), written with
/// SQLite itself beside the store's own connection.
fn plant_unreadable(db: &Path, id: &str) {
    let c = rusqlite::Connection::open(db).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c.execute(
        "INSERT INTO events (id, camera, type, time, severity, json) \
         VALUES (?1, 'gate-1', 'line_crossing', '2026-11-22T21:04:05.120+07:00', 'info', '{\"schema\": 1, broken')",
        [id],
    )
    .unwrap();
}

fn append(store: &Store, e: &Event) -> String {
    store.append(e).unwrap();
    e.id.clone()
}

/// Good events around a bad retained row, an oversized event and an unreadable one: the good
/// ones arrive in order, the bad ones are quarantined once and never sent, the connection holds,
/// and a restart sends none of them again.
/// Subscribers connect on `port`, the sink with `own`.
fn poison_is_set_aside(port: u16, own: MqttOptions, broker: &str) {
    init_log();
    let dir = tempfile::tempdir().unwrap();
    let store = temp_store(dir.path());
    let bad_topic = format!("lines/cam-05/{}/counts", long_name());
    let counts = r#"{"in":1,"out":0,"occupancy":1,"since":"2026-11-22T05:00:00.000+07:00"}"#;
    store.set_retained(&bad_topic, counts).unwrap();
    store
        .set_retained("lines/gate-1/gate/counts", counts)
        .unwrap();
    let mut want = Vec::new();
    for i in 0..3 {
        want.push(append(&store, &event(i)));
    }
    let big = append(&store, &oversized(3));
    for i in 4..7 {
        want.push(append(&store, &event(i)));
    }
    plant_unreadable(&dir.path().join("ronda.db"), "unreadable-1");
    for i in 7..9 {
        want.push(append(&store, &event(i)));
    }
    // a guard's acknowledgement too large to publish (a user name of 300,000 characters), then
    // a good one
    let now = chrono::Utc::now();
    store
        .acknowledge(&want[0], &"y".repeat(300_000), now, "t")
        .unwrap();
    store.acknowledge(&want[1], "pos1", now, "t").unwrap();

    let sub = Subscriber::new(port, "ronda/rw9/#");
    let sink = MqttSink::start(own.clone(), store.clone()).unwrap();
    assert!(
        wait_for(Duration::from_secs(20), || sub.distinct_events()
            == want.len()
            && store.backlog().unwrap() == 0),
        "{broker}: {} of {} events delivered, backlog {}",
        sub.distinct_events(),
        want.len(),
        store.backlog().unwrap()
    );
    check_delivery(&sub.events(), &want);
    assert!(sink.connected(), "{broker}: the connection was lost");
    assert!(!sub.events().iter().any(|e| e.id == big));
    assert!(
        wait_for(Duration::from_secs(5), || !sub
            .on("ronda/rw9/lines/gate-1/gate/counts")
            .is_empty()),
        "{broker}: the good retained counts did not arrive"
    );
    assert!(
        wait_for(Duration::from_secs(5), || store.ack_backlog().unwrap() == 0),
        "{broker}: the good acknowledgement was not sent"
    );
    let acks: Vec<String> = sub
        .on("ronda/rw9/acks")
        .iter()
        .map(|m| {
            serde_json::from_str::<serde_json::Value>(&m.payload).unwrap()["event_id"].to_string()
        })
        .collect();
    assert_eq!(acks, [format!("\"{}\"", want[1])], "{broker}");
    let q = store.quarantined().unwrap();
    let mut refs: Vec<(&str, &str)> = q
        .iter()
        .map(|q| (q.kind.as_str(), q.reference.as_str()))
        .collect();
    refs.sort();
    assert_eq!(
        refs,
        [
            ("ack", want[0].as_str()),
            ("event", big.as_str()),
            ("event", "unreadable-1"),
            ("retained", bad_topic.as_str())
        ],
        "{broker}"
    );
    assert!(q.iter().all(|q| !q.reason.is_empty()));
    assert!(
        !store
            .retained()
            .unwrap()
            .iter()
            .any(|(t, _)| *t == bad_topic)
    );
    assert_eq!(sink.shutdown(Duration::from_secs(2)).unwrap(), 0);

    // a restart: nothing of it is sent again, and what comes next goes out
    let sink = MqttSink::start(own.clone(), store.clone()).unwrap();
    let more = vec![append(&store, &event(9)), append(&store, &event(10))];
    sink.notify();
    assert!(
        wait_for(Duration::from_secs(20), || sub.distinct_events()
            == want.len() + 2),
        "{broker}: after a restart {} events",
        sub.distinct_events()
    );
    want.extend(more);
    check_delivery(&sub.events(), &want);
    assert_eq!(store.quarantine_count().unwrap(), 4);
    assert_eq!(sink.shutdown(Duration::from_secs(2)).unwrap(), 0);
}

#[test]
fn mosquitto_gets_every_good_event_past_a_poisoned_outbox() {
    let mosq = Mosquitto::start();
    poison_is_set_aside(mosq.port, opts(mosq.port), "mosquitto");
}

#[test]
fn the_embedded_broker_gets_every_good_event_past_a_poisoned_outbox() {
    let broker = embedded();
    poison_is_set_aside(broker.addr().port(), own_opts(&broker), "embedded");
}

#[test]
fn check_config_refuses_a_65600_character_line_name_in_a_few_words() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ronda.toml");
    std::fs::write(
        &cfg,
        format!(
            "[site]\nid = \"rw9\"\n[[cameras]]\nid = \"cam-05\"\nurl = \"rtsp://10.0.0.5/ch1\"\n\
             [[cameras.lines]]\nname = \"{}\"\npoints = [[0, 0], [0, 100]]\n\
             [[cameras.zones]]\nname = \"gudang/belakang\"\npolygon = [[0, 0], [10, 0], [10, 10]]\n",
            long_name()
        ),
    )
    .unwrap();
    let out = ronda().arg("check-config").arg(&cfg).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cameras[0].lines[0].name: `yyyy")
            && err.contains("65600 characters long; use at most 64"),
        "{err}"
    );
    assert!(
        err.contains("cameras[0].zones[0].name: `gudang/belakang` contains `/`"),
        "{err}"
    );
    assert!(err.len() < 2_000, "{} bytes of messages", err.len());
}

// ---------------------------------------------------------------------------------------------
// `ronda run`

fn config(dir: &Path, mqtt_port: u16, http_port: u16) -> String {
    format!(
        "[site]\nid = \"rw9\"\n\
         [mqtt]\nembedded = false\nurl = \"mqtt://127.0.0.1:{mqtt_port}\"\n\
         [http]\nlisten = \"127.0.0.1:{http_port}\"\n\
         [[http.users]]\nname = \"pak-rw\"\nrole = \"admin\"\npassword_hash = \"{hash}\"\n\
         [store]\npath = \"{d}/ronda.db\"\nclips_dir = \"{d}/clips\"\n\
         [[cameras]]\nid = \"gate-1\"\nrole = \"gate\"\nmask_check = false\n\
         url = \"rtsp://127.0.0.1:{dead}/cam01\"\n\
         [[cameras.lines]]\nname = \"gate\"\npoints = [[240, 94], [240, 360]]\n",
        hash = light_hash(ADMIN_PW),
        d = dir.display(),
        // nothing listens there: the camera is offline, which is all this test needs
        dead = free_port(),
    )
}

#[test]
fn ronda_run_sets_poison_aside_counts_it_and_clears_retained_counts_of_gone_lines() {
    init_log();
    let dir = tempfile::tempdir().unwrap();
    let mosq = Mosquitto::start();
    let http = free_port();
    let cfg = dir.path().join("ronda.toml");
    std::fs::write(&cfg, config(dir.path(), mosq.port, http)).unwrap();
    let counts = |n: u64| {
        format!(r#"{{"in":{n},"out":0,"occupancy":{n},"since":"2026-11-22T05:00:00.000+07:00"}}"#)
    };

    // what an earlier run left in the store: the 65,600-character line's counts (the name was
    // accepted then), a line removed from the file since, and events around an oversized one
    let (first, big, last) = {
        let store = Store::open(&dir.path().join("ronda.db")).unwrap();
        store
            .set_retained(&format!("lines/cam-05/{}/counts", long_name()), &counts(1))
            .unwrap();
        store
            .set_retained("lines/gate-1/old-gate/counts", &counts(7))
            .unwrap();
        (
            append(&store, &event(0)),
            append(&store, &oversized(1)),
            append(&store, &event(2)),
        )
    };
    // ... and the broker still has the removed line's counts
    let old = "ronda/rw9/lines/gate-1/old-gate/counts";
    let sub = Subscriber::new(mosq.port, "ronda/rw9/#");
    sub.client
        .publish(old, rumqttc::QoS::AtLeastOnce, true, counts(7))
        .unwrap();
    assert!(wait_for(Duration::from_secs(5), || !sub.on(old).is_empty()));

    let _run = Proc(
        ronda()
            .args(["run", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let ids = || -> Vec<String> { sub.events().into_iter().map(|e| e.id).collect() };
    assert!(
        wait_for(Duration::from_secs(90), || {
            let got = ids();
            got.contains(&first) && got.contains(&last)
        }),
        "the events around the oversized one were not delivered: {:?}",
        ids()
    );
    assert!(!ids().contains(&big));
    // the removed line's counts are cleared on the broker (an empty retained message)
    assert!(
        wait_for(Duration::from_secs(10), || sub
            .on(old)
            .iter()
            .any(|m| m.payload.is_empty())),
        "the removed line's retained counts were not cleared"
    );
    let web = {
        let mut w = Web::new(&format!("http://127.0.0.1:{http}"));
        w.wait_up(Duration::from_secs(60));
        w.login("pak-rw", ADMIN_PW);
        w
    };
    let mut metrics = String::new();
    assert!(
        wait_for(Duration::from_secs(10), || {
            metrics = web.get("/metrics").text();
            metrics.contains("ronda_mqtt_quarantined_total 2\n")
                && metrics.contains("ronda_mqtt_connected 1\n")
        }),
        "{metrics}"
    );

    // the admin renames the line: `gate` -> `gerbang`; its old counts topic is cleared
    let gate = "ronda/rw9/lines/gate-1/gate/counts";
    let gerbang = "ronda/rw9/lines/gate-1/gerbang/counts";
    assert!(
        wait_for(Duration::from_secs(10), || !sub.on(gate).is_empty()),
        "the line's counts were not published at the start"
    );
    let version = web.get("/api/admin/cameras").json()["version"].clone();
    let put = |name: &str| {
        web.send(
            "PUT",
            "/api/admin/cameras/gate-1",
            Some(
                json!({"base_version": version, "mask_check": false, "zones": [],
                        "lines": [{"name": name, "was": "gate",
                                   "points": [[240, 94], [240, 360]]}]}),
            ),
        )
    };
    // first the attack: refused, with its place, the file unchanged
    let before = std::fs::read_to_string(&cfg).unwrap();
    let r = put(&long_name());
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().len() < 2_000, "{} bytes", r.text().len());
    assert!(r.text().contains("use at most 64"), "{}", r.text());
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), before);
    let r = put("gerbang");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        wait_for(Duration::from_secs(10), || {
            sub.on(gate).iter().any(|m| m.payload.is_empty()) && !sub.on(gerbang).is_empty()
        }),
        "after the rename: {:?} on the old topic, {:?} on the new",
        sub.on(gate)
            .iter()
            .map(|m| m.payload.clone())
            .collect::<Vec<_>>(),
        sub.on(gerbang).len()
    );

    // a new subscriber sees the renamed line only, no ghosts
    let late = Subscriber::new(mosq.port, "ronda/rw9/lines/#");
    assert!(
        wait_for(Duration::from_secs(5), || late
            .on(gerbang)
            .iter()
            .any(|m| m.retain)),
        "the new line's counts are not retained"
    );
    let topics: Vec<String> = late
        .msgs
        .lock()
        .unwrap()
        .iter()
        .map(|m| m.topic.clone())
        .collect();
    assert_eq!(topics, [gerbang], "ghost lines for a new subscriber");
    // and nothing else ever reached the events topic but good events
    assert!(sub.on(EVENTS).iter().all(|m| m.payload.len() < 10_000));
}

// ---------------------------------------------------------------------------------------------
// The embedded broker

/// Whether a client logging in with `login` (or none) is accepted by the broker on `port`: the
/// broker's answer to CONNECT, a CONNACK or a refusal, whichever comes first.
fn accepted(port: u16, login: Option<(&str, &str)>) -> bool {
    let mut o = rumqttc::MqttOptions::new(format!("probe-{}", free_port()), "127.0.0.1", port);
    if let Some((u, p)) = login {
        o.set_credentials(u, p);
    }
    let (_client, mut conn) = rumqttc::Client::new(o, 8);
    for ev in conn.iter().take(20) {
        match ev {
            Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(a))) => {
                return a.code == rumqttc::ConnectReturnCode::Success;
            }
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

#[test]
fn the_embedded_broker_with_a_user_takes_nobody_else_and_ronda_still_delivers() {
    init_log();
    let password = format!("rahasia-{}", free_port());
    let mut bo = BrokerOptions::new("127.0.0.1:0", PREFIX);
    bo.users.push(ronda::sinks::BrokerUser {
        name: "ronda".into(),
        password: password.clone(),
        role: ronda::config::MqttRole::Reader,
    });
    let broker = Broker::start(bo).unwrap();
    let port = broker.addr().port();
    assert!(!accepted(port, None), "an anonymous client was let in");
    assert!(
        !accepted(port, Some(("ronda", "tebakan"))),
        "a wrong password was let in"
    );
    assert!(
        !accepted(port, Some(("tamu", &password))),
        "another user was let in"
    );
    assert!(accepted(port, Some(("ronda", &password))));

    // ronda's sink delivers (behind the front, with the login of this start); a subscriber
    // with the password receives
    let dir = tempfile::tempdir().unwrap();
    let store = temp_store(dir.path());
    let o = own_opts(&broker);
    let (tx, rx) = std::sync::mpsc::channel();
    let mut so = rumqttc::MqttOptions::new("guard-post", "127.0.0.1", port);
    so.set_credentials("ronda", &password);
    let (client, mut conn) = rumqttc::Client::new(so, 16);
    std::thread::spawn(move || {
        for ev in conn.iter() {
            match ev {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                    let _ = client.try_subscribe(EVENTS, rumqttc::QoS::AtLeastOnce);
                }
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                    let _ = tx.send(None);
                }
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                    let e: Event = serde_json::from_slice(&p.payload).unwrap();
                    if tx.send(Some(e.id)).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)).unwrap(),
        None,
        "no SUBACK"
    );
    let sink = MqttSink::start(o, store.clone()).unwrap();
    let want: Vec<String> = (0..3).map(|i| append(&store, &event(i))).collect();
    sink.notify();
    let got: Vec<String> = (0..3)
        .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap().unwrap())
        .collect();
    assert_eq!(got, want);
    assert!(sink.connected());
}

#[test]
fn check_config_warns_about_an_open_broker_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ronda.toml");
    let check = |mqtt: &str| {
        std::fs::write(&cfg, format!("[site]\nid = \"rw9\"\n[mqtt]\n{mqtt}")).unwrap();
        let out = ronda().arg("check-config").arg(&cfg).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{mqtt}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let open = check("listen = \"0.0.0.0:1883\"\n");
    assert!(
        open.contains("warning: mqtt.listen: the embedded MQTT broker listens on 0.0.0.0:1883 without authentication"),
        "{open}"
    );
    // a user but no TLS: the password crosses the network readable
    let plain = check(
        "listen = \"0.0.0.0:1883\"\nusername = \"ronda\"\npassword_env = \"RONDA_MQTT_PASS\"\n",
    );
    assert!(plain.contains("without TLS"), "{plain}");
    for fine in [
        "listen = \"127.0.0.1:1883\"\n",
        "listen = \"0.0.0.0:8883\"\nusername = \"ronda\"\npassword_env = \"RONDA_MQTT_PASS\"\n\
         tls_cert = \"broker.pem\"\ntls_key = \"broker.key\"\n",
    ] {
        let out = check(fine);
        assert!(!out.contains("warning"), "{fine}: {out}");
    }
    // and the shipped example is quiet
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/ronda.example.toml");
    let out = ronda().arg("check-config").arg(&example).output().unwrap();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("warning"));
}

#[test]
fn ronda_run_locks_its_embedded_broker_with_the_configured_user() {
    init_log();
    let dir = tempfile::tempdir().unwrap();
    let (mq, http) = (free_port(), free_port());
    let cfg = dir.path().join("ronda.toml");
    let text = config(dir.path(), mq, http).replace(
        &format!("[mqtt]\nembedded = false\nurl = \"mqtt://127.0.0.1:{mq}\"\n"),
        &format!(
            "[mqtt]\nembedded = true\nlisten = \"0.0.0.0:{mq}\"\nusername = \"ronda\"\n\
             password_env = \"RONDA_TEST_MQTT_PASS\"\n"
        ),
    );
    assert!(text.contains("embedded = true"));
    std::fs::write(&cfg, text).unwrap();

    // without the variable ronda says what to do and stops
    let out = ronda()
        .args(["run", "--config"])
        .arg(&cfg)
        .env_remove("RONDA_TEST_MQTT_PASS")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("export RONDA_TEST_MQTT_PASS="), "{err}");

    let password = format!("rahasia-{}", free_port());
    let _run = Proc(
        ronda()
            .args(["run", "--config"])
            .arg(&cfg)
            .env("RONDA_TEST_MQTT_PASS", &password)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let mut web = Web::new(&format!("http://127.0.0.1:{http}"));
    web.wait_up(Duration::from_secs(60));
    web.login("pak-rw", ADMIN_PW);
    assert!(
        wait_for(Duration::from_secs(10), || web
            .get("/metrics")
            .text()
            .contains("ronda_mqtt_connected 1\n")),
        "ronda's own client did not log in to its broker"
    );
    assert!(!accepted(mq, None), "an anonymous client was let in");
    assert!(!accepted(mq, Some(("ronda", "tebakan"))));
    assert!(accepted(mq, Some(("ronda", &password))));
}

// ---------------------------------------------------------------------------------------------
// logins

#[test]
fn ronda_run_lets_the_guard_in_while_strangers_fail_against_the_same_name() {
    // finding 3: one wrong password for `jaga` from another address each time the lock expired
    // kept the real guard out. Now a name is braked per address: strangers lock only themselves.
    init_log();
    let dir = tempfile::tempdir().unwrap();
    let mosq = Mosquitto::start();
    let http = free_port();
    let guard_pw = "jaga-malam-pos-satu";
    let cfg = dir.path().join("ronda.toml");
    let text = config(dir.path(), mosq.port, http).replacen(
        "[store]",
        &format!(
            "[[http.users]]\nname = \"jaga\"\nrole = \"guard\"\npassword_hash = \"{}\"\n[store]",
            light_hash(guard_pw)
        ),
        1,
    );
    std::fs::write(&cfg, text).unwrap();
    let _run = Proc(
        ronda()
            .args(["run", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{http}");
    Web::new(&base).wait_up(Duration::from_secs(60));
    let post = [127, 0, 0, 1];
    assert_eq!(login_from(&base, post, "jaga", guard_pw), 200);
    let mut braked = 0;
    for n in 2..=11u8 {
        let stranger = [127, 0, 2, n];
        for _ in 0..6 {
            match login_from(&base, stranger, "jaga", "tebak-tebak") {
                401 => {}
                429 => braked += 1,
                other => panic!("a stranger's wrong password got {other}"),
            }
        }
        assert_eq!(
            login_from(&base, post, "jaga", guard_pw),
            200,
            "the guard was locked out after stranger {n}"
        );
    }
    assert!(braked >= 10, "the strangers were never braked ({braked})");
}
