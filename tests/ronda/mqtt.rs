//! The store and the MQTT sink against real brokers: a Mosquitto per test (a child process on a
//! free port, killed at the end even when the test fails) and the embedded rumqttd. Every event a
//! subscriber receives is checked against src/events.schema.json.
//!
//! Figures (durations, duplicates) are printed to stderr: `cargo test --test mqtt -- --nocapture`.
//! `RONDA_LOG=debug` shows the sink's log.

use crate::support as common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ronda::config::MqttRole;
use ronda::events::Event;
use ronda::sinks::mqtt::Tls;
use ronda::sinks::{Broker, BrokerOptions, BrokerUser, MqttOptions, MqttSink};
use ronda::store::Store;
use serde_json::Value;

use common::broker::*;

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn schema_accepts_every_kind_of_event_and_rejects_wrong_shapes() {
    let s = schema();
    for i in 0..16 {
        let v = serde_json::to_value(event(i)).unwrap();
        assert_eq!(validate(&s, &v), Vec::<String>::new(), "{v}");
    }
    let good = serde_json::to_value(event(0)).unwrap();
    let bad = |f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        assert!(!validate(&s, &v).is_empty(), "accepted {v}");
    };
    bad(&|v| v["type"] = "fire".into());
    bad(&|v| v["severity"] = "critical".into());
    bad(&|v| v["direction"] = "up".into());
    bad(&|v| v["mask"] = "maybe".into());
    bad(&|v| v["schema"] = 2.into());
    bad(&|v| v["box"] = serde_json::json!([1, 2, 3]));
    bad(&|v| v["box"] = serde_json::json!([1, 2, 3, "4"]));
    bad(&|v| v["counts"] = serde_json::json!({"in": 1, "out": 2}));
    bad(&|v| v["counts"]["in"] = (-1).into());
    bad(&|v| v["id"] = "12345".into());
    bad(&|v| v["id"] = "17640000000000000001abcg".into());
    bad(&|v| v["time"] = "2026-11-22 21:04:05".into());
    bad(&|v| v["track_id"] = 1.5.into());
    bad(&|v| v["score"] = 1.5.into());
    bad(&|v| v["camera"] = "".into());
    bad(&|v| {
        v.as_object_mut().unwrap().remove("zone");
    });
    bad(&|v| {
        v.as_object_mut().unwrap().insert("extra".into(), 1.into());
    });
    assert!(pattern_matches("^[0-9]{17}[0-9a-f]{4}$", &event(0).id));
}

#[test]
fn mosquitto_outage_loses_no_event() {
    init_log();
    let started = Instant::now();
    let mut mosq = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let store = temp_store(dir.path());
    let sub = Subscriber::new(mosq.port, EVENTS);
    let sink = MqttSink::start(opts(mosq.port), store.clone()).unwrap();

    let mut want = append(&store, &sink, 0..20);
    assert!(
        wait_for(Duration::from_secs(10), || sub.distinct_events() == 20),
        "the first 20 events did not arrive"
    );
    assert!(wait_for(Duration::from_secs(5), || store
        .backlog()
        .unwrap()
        == 0));

    mosq.stop();
    assert!(wait_for(Duration::from_secs(5), || !sink.connected()));
    want.extend(append(&store, &sink, 20..50));
    // Not a wait for a condition but the window under test: five seconds of reconnect attempts
    // (0.5 s doubling) in which nothing may be acknowledged. An absence cannot be waited for.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        sink.backlog().unwrap(),
        30,
        "nothing can be acknowledged without a broker"
    );

    let back = Instant::now();
    mosq.resume();
    assert!(
        sub.subscribed(2, Duration::from_secs(5)),
        "subscriber did not come back"
    );
    assert!(
        wait_for(Duration::from_secs(30), || sub.distinct_events() == 50
            && sink.backlog().unwrap() == 0),
        "after the outage: {} of 50 events, backlog {}",
        sub.distinct_events(),
        sink.backlog().unwrap()
    );
    let recovered = back.elapsed();
    want.push(fence(&store, &sink, &sub, 50)); // any late duplicate arrives before it
    let duplicates = check_delivery(&sub.events(), &want);
    assert!(sink.connected());
    assert_eq!(sink.shutdown(Duration::from_secs(2)).unwrap(), 0);
    eprintln!(
        "FIGURES outage: 50 events, {duplicates} duplicate(s); backlog of 30 delivered {:.1?} \
         after the broker restarted; test took {:.1?}",
        recovered,
        started.elapsed()
    );
}

#[test]
fn restart_sends_what_was_not_acknowledged_and_nothing_else() {
    init_log();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ronda.db");
    let mut mosq = Mosquitto::configured(free_port(), "");

    // 1. No broker at all: the events wait in the outbox, through a shutdown.
    let first: Vec<String> = {
        let store = Arc::new(Store::open(&path).unwrap());
        let sink = MqttSink::start(opts(mosq.port), store.clone()).unwrap();
        let ids = append(&store, &sink, 0..5);
        // the window under test: the sink tries to connect (nobody listens) and must not lose
        // the events through the shutdown that follows; there is no condition to wait for
        std::thread::sleep(Duration::from_millis(700));
        assert!(!sink.connected());
        let t = Instant::now();
        assert_eq!(sink.shutdown(Duration::from_millis(300)).unwrap(), 5);
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "shutdown took {:?}",
            t.elapsed()
        );
        ids
    };

    // 2. Restart with a broker: those go out; then the broker goes away again and 10 more wait.
    mosq.resume();
    let second: Vec<String> = {
        let sub = Subscriber::new(mosq.port, EVENTS);
        let store = Arc::new(Store::open(&path).unwrap());
        assert_eq!(store.backlog().unwrap(), 5);
        let sink = MqttSink::start(opts(mosq.port), store.clone()).unwrap();
        assert!(wait_for(Duration::from_secs(10), || store
            .backlog()
            .unwrap()
            == 0));
        assert!(wait_for(Duration::from_secs(5), || sub.distinct_events() == 5));
        check_delivery(&sub.events(), &first);
        for id in &first {
            assert!(store.event(id).unwrap().unwrap().sent_at.is_some());
        }
        mosq.stop();
        assert!(wait_for(Duration::from_secs(5), || !sink.connected()));
        let ids = append(&store, &sink, 5..15);
        drop(sink); // dropping shuts down too
        assert_eq!(store.backlog().unwrap(), 10);
        ids
    };

    // 3. Restart again: exactly the 10 unsent go out, the 5 acknowledged ones are not re-sent.
    mosq.resume();
    let sub = Subscriber::new(mosq.port, EVENTS);
    let store = Arc::new(Store::open(&path).unwrap());
    let sink = MqttSink::start(opts(mosq.port), store.clone()).unwrap();
    assert!(wait_for(Duration::from_secs(10), || store
        .backlog()
        .unwrap()
        == 0));
    assert!(wait_for(Duration::from_secs(5), || sub.distinct_events() == 10));
    let mut second = second;
    second.push(fence(&store, &sink, &sub, 15));
    let duplicates = check_delivery(&sub.events(), &second);
    assert_eq!(duplicates, 0);
    // the subscriber has the fence before the broker's acknowledgement reaches the sink and the
    // sink marks it sent (seen on a loaded box): wait for that, not for time
    assert!(wait_for(Duration::from_secs(10), || store
        .backlog()
        .unwrap()
        == 0));
    for id in first.iter().chain(&second) {
        assert!(store.event(id).unwrap().unwrap().sent_at.is_some(), "{id}");
    }
    assert_eq!(sink.shutdown(Duration::from_secs(2)).unwrap(), 0);
}

/// Retained state for late subscribers, the last will on an abrupt loss, state published again
/// after the reconnect, and `offline` on a clean shutdown.
/// Subscribers connect on `broker_port`, the sink with `own` (through a proxy that can cut it).
fn retained_and_last_will(broker_port: u16, own: MqttOptions, broker: &str) {
    let dir = tempfile::tempdir().unwrap();
    let store = temp_store(dir.path());
    let proxy = Proxy::new(own.port);
    let live = Subscriber::new(broker_port, "ronda/rw9/#");
    let mut o = own;
    o.port = proxy.port;
    o.keep_alive = Duration::from_secs(2);
    let sink = MqttSink::start(o, store.clone()).unwrap();
    assert!(wait_for(Duration::from_secs(10), || sink.connected()));

    let status = r#"{"state":"online","since":"2026-11-22T21:00:00.000+07:00","fps":5.0}"#;
    let counts = r#"{"in":3,"out":1,"occupancy":2,"since":"2026-11-22T05:00:00.000+07:00"}"#;
    let status_topic = "ronda/rw9/cameras/gate-1/status";
    let counts_topic = "ronda/rw9/lines/gate-1/gate/counts";
    sink.publish_status("gate-1", status).unwrap();
    sink.publish_counts("gate-1", "gate", counts).unwrap();
    assert!(wait_for(Duration::from_secs(5), || {
        !live.on(status_topic).is_empty() && !live.on(counts_topic).is_empty()
    }));

    // A subscriber that comes later gets the state at once, marked retained.
    let late = Subscriber::new(broker_port, "ronda/rw9/#");
    assert!(
        wait_for(Duration::from_secs(3), || {
            [
                (AVAILABILITY, "online"),
                (status_topic, status),
                (counts_topic, counts),
            ]
            .iter()
            .all(|(t, p)| late.on(t).iter().any(|m| m.payload == *p))
        }),
        "{broker}: a late subscriber got {:#?}",
        late.msgs.lock().unwrap()
    );
    let not_retained: Vec<Msg> = late
        .msgs
        .lock()
        .unwrap()
        .iter()
        .filter(|m| !m.retain)
        .cloned()
        .collect();
    assert!(
        not_retained.is_empty(),
        "{broker}: retained messages came without the retain flag: {not_retained:#?}"
    );

    // The network goes silent: the broker publishes the last will.
    let cut = Instant::now();
    proxy.cut();
    assert!(
        wait_for(Duration::from_secs(15), || live
            .got_after(AVAILABILITY, "offline", cut)
            .is_some()),
        "{broker}: no last will after the connection was cut"
    );
    let will_after = live.got_after(AVAILABILITY, "offline", cut).unwrap() - cut;
    let later = Subscriber::new(broker_port, AVAILABILITY);
    assert!(
        wait_for(Duration::from_secs(3), || later
            .on(AVAILABILITY)
            .iter()
            .any(|m| m.payload == "offline" && m.retain)),
        "{broker}: the will was not retained: {:?}",
        later.on(AVAILABILITY)
    );

    // Reachable again: online, and the state published again.
    let resumed = Instant::now();
    proxy.resume();
    assert!(
        wait_for(Duration::from_secs(25), || live
            .got_after(AVAILABILITY, "online", resumed)
            .is_some()),
        "{broker}: the sink did not come back"
    );
    assert!(wait_for(Duration::from_secs(3), || live
        .got_after(status_topic, status, resumed)
        .is_some()));
    let back_after = live.got_after(AVAILABILITY, "online", resumed).unwrap() - resumed;

    // A clean shutdown says offline itself (a clean DISCONNECT drops the will).
    let bye = Instant::now();
    assert_eq!(sink.shutdown(Duration::from_secs(2)).unwrap(), 0);
    assert!(
        bye.elapsed() < Duration::from_secs(60),
        "shutdown took {:?}",
        bye.elapsed()
    );
    assert!(
        wait_for(Duration::from_secs(3), || live
            .got_after(AVAILABILITY, "offline", bye)
            .is_some()),
        "{broker}: no offline on shutdown"
    );
    eprintln!(
        "FIGURES {broker}: last will {will_after:.1?} after the cut (keepalive 2 s); back online \
         {back_after:.1?} after the network returned; shutdown {:.0?}",
        bye.elapsed()
    );
}

#[test]
fn mosquitto_keeps_state_and_publishes_the_last_will() {
    init_log();
    let mosq = Mosquitto::start();
    retained_and_last_will(mosq.port, opts(mosq.port), "mosquitto");
}

#[test]
fn embedded_broker_keeps_state_and_publishes_the_last_will() {
    init_log();
    let broker = Broker::start(BrokerOptions::new(
        &format!("127.0.0.1:{}", free_port()),
        PREFIX,
    ))
    .unwrap();
    retained_and_last_will(broker.addr().port(), own_opts(&broker), "rumqttd");
}

/// A child process killed when dropped.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn embedded_broker_serves_mosquitto_sub() {
    init_log();
    let broker = embedded();
    let port = broker.addr().port();
    assert_ne!(port, 0);
    // -d prints the SUBACK, so the events are published only once it listens; stdbuf makes it
    // print each line at once into the pipe.
    let mut sub = Kill(
        Command::new("stdbuf")
            .args([
                "-oL",
                "mosquitto_sub",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .args(["-t", "ronda/rw9/#", "-v", "-d", "-C", "4", "-W", "15"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub runs"),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = sub.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    while !lines.iter().any(|l: &String| l.contains("SUBACK")) {
        lines.push(
            rx.recv_timeout(Duration::from_secs(5))
                .expect("mosquitto_sub subscribes"),
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let store = temp_store(dir.path());
    let sink = MqttSink::start(own_opts(&broker), store.clone()).unwrap();
    let ids = append(&store, &sink, 0..3);
    let status = wait_for(Duration::from_secs(20), || {
        matches!(sub.0.try_wait(), Ok(Some(_)))
    });
    lines.extend(rx.try_iter());
    assert!(status, "mosquitto_sub did not get 4 messages: {lines:#?}");
    assert!(sub.0.wait().unwrap().success(), "{lines:#?}");
    let msgs: Vec<(&str, &str)> = lines
        .iter()
        .filter(|l| l.starts_with("ronda/"))
        .map(|l| l.split_once(' ').unwrap())
        .collect();
    assert_eq!(msgs[0], (AVAILABILITY, "online"), "{lines:#?}");
    let got: Vec<Event> = msgs[1..]
        .iter()
        .map(|(t, p)| {
            assert_eq!(*t, EVENTS);
            checked(p)
        })
        .collect();
    assert_eq!(check_delivery(&got, &ids), 0);
    assert!(wait_for(Duration::from_secs(5), || store
        .backlog()
        .unwrap()
        == 0));
    assert_eq!(sink.shutdown(Duration::from_secs(2)).unwrap(), 0);
}

/// The embedded broker started afresh (`opts`) and ronda's sink on a store in `dir` holding 3
/// events it never sent (a box that went down with them in its outbox): the broker, the store,
/// the events' ids and the sink.
fn restarted_with_a_backlog(
    mut opts: BrokerOptions,
    dir: &Path,
) -> (Broker, Arc<Store>, Vec<String>, MqttSink) {
    // long enough that only a reader can release the events here, however slow the machine
    opts.reader_grace = Duration::from_secs(3600);
    let broker = Broker::start(opts).unwrap();
    let store = temp_store(dir);
    let want = (0..3)
        .map(|i| {
            let e = event(i);
            store.append(&e).unwrap();
            e.id
        })
        .collect();
    let sink = MqttSink::start(own_opts(&broker), store.clone()).unwrap();
    (broker, store, want, sink)
}

/// A box that went down with events in its outbox (stored, not yet taken by the broker) comes
/// back with a new embedded broker, which knows none of the guard posts' sessions: the events
/// wait for a guard post to subscribe again instead of going out to nobody (before: published
/// and acknowledged at once, and lost to the guard post, which the city-outage test in
/// `hub.rs` once caught). The retained state does not wait.
#[test]
fn after_a_restart_the_embedded_broker_holds_the_events_until_a_guard_post_reads() {
    init_log();
    let dir = tempfile::tempdir().unwrap();
    let (broker, store, want, sink) =
        restarted_with_a_backlog(BrokerOptions::new("127.0.0.1:0", PREFIX), dir.path());
    let port = broker.addr().port();
    // a client reading only the availability: the sink is connected and has published its
    // `online` (in the same round as the backlog, were the events not held) ...
    let status = Subscriber::new(port, AVAILABILITY);
    assert!(
        wait_for(Duration::from_secs(60), || !status
            .on(AVAILABILITY)
            .is_empty()),
        "no `online` from the sink"
    );
    // ... and the events are still in the outbox
    assert_eq!(
        store.backlog().unwrap(),
        3,
        "the events went out before any guard post was back"
    );
    // the guard post subscribes: every event comes, once, in order
    let guard = Subscriber::new(port, &format!("{PREFIX}/#"));
    assert!(
        wait_for(Duration::from_secs(60), || guard.distinct_events() == 3),
        "the guard post got {} of the 3 held events",
        guard.distinct_events()
    );
    assert_eq!(check_delivery(&guard.events(), &want), 0);
    assert!(wait_for(Duration::from_secs(60), || store
        .backlog()
        .unwrap()
        == 0));
    assert_eq!(
        status.distinct_events(),
        0,
        "the status reader reads no events"
    );
    assert_eq!(sink.shutdown(Duration::from_secs(2)).unwrap(), 0);
}

/// A box stopped while its events wait for the guard posts (within the grace after a start)
/// stops without sitting out its flush deadline: nobody could take the events before it, and
/// they stay in the store for the next start. Before, every stop in the first 30 s after a start
/// with events in the outbox waited its whole 5 s flush. The deadline here is an hour: a stop that
/// waited for it would not return within the watchdog's ten minutes.
#[test]
fn a_stop_while_events_wait_for_the_guard_posts_keeps_them_and_does_not_wait() {
    init_log();
    let dir = tempfile::tempdir().unwrap();
    let (broker, store, _want, sink) =
        restarted_with_a_backlog(BrokerOptions::new("127.0.0.1:0", PREFIX), dir.path());
    let status = Subscriber::new(broker.addr().port(), AVAILABILITY);
    assert!(
        wait_for(Duration::from_secs(60), || !status
            .on(AVAILABILITY)
            .is_empty()),
        "no `online` from the sink"
    );
    let (done, stopped) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(sink.shutdown(Duration::from_secs(3600)));
    });
    let left = stopped
        .recv_timeout(Duration::from_secs(600))
        .expect("the stop waited for its flush deadline although the events are held")
        .unwrap();
    assert_eq!(left, 3, "the held events stay unsent");
    assert_eq!(store.backlog().unwrap(), 3, "and in the store");
    // the sink said goodbye properly (`offline`, not the broker's will after a dropped link)
    assert!(
        wait_for(Duration::from_secs(60), || status
            .on(AVAILABILITY)
            .last()
            .is_some_and(|m| m.payload == "offline")),
        "no `offline` after the stop: {:?}",
        status.on(AVAILABILITY)
    );
}

/// With guard posts as users of the embedded broker, each of them is waited for after a start,
/// not only the first one back; a reader account does not count.
#[test]
fn after_a_restart_every_guard_post_is_waited_for() {
    init_log();
    let mut opts = BrokerOptions::new("127.0.0.1:0", PREFIX);
    for (name, role) in [
        ("pos1", MqttRole::Guard),
        ("pos2", MqttRole::Guard),
        ("layar", MqttRole::Reader),
    ] {
        opts.users.push(BrokerUser {
            name: name.into(),
            password: format!("{name}-sandi"),
            role,
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let (broker, store, want, sink) = restarted_with_a_backlog(opts, dir.path());
    let port = broker.addr().port();
    let login = |name: &str| {
        let mut o = Subscriber::options(port);
        o.set_credentials(name, format!("{name}-sandi"));
        let s = Subscriber::start(o, &format!("{PREFIX}/#"));
        assert!(
            s.subscribed(1, Duration::from_secs(60)),
            "{name} subscribes"
        );
        s
    };
    let screen = login("layar");
    let pos1 = login("pos1");
    // both have `online` (retained, so it came with their subscriptions) and no event yet
    assert!(wait_for(Duration::from_secs(60), || !pos1
        .on(AVAILABILITY)
        .is_empty()));
    assert_eq!(store.backlog().unwrap(), 3, "pos2 is not back yet");
    let pos2 = login("pos2");
    for (name, s) in [("pos1", &pos1), ("pos2", &pos2), ("layar", &screen)] {
        assert!(
            wait_for(Duration::from_secs(60), || s.distinct_events() == 3),
            "{name} got {} of the 3 held events",
            s.distinct_events()
        );
        assert_eq!(check_delivery(&s.events(), &want), 0, "{name}");
    }
    assert_eq!(sink.shutdown(Duration::from_secs(2)).unwrap(), 0);
}

#[test]
fn embedded_broker_on_a_used_port_says_so() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let msg = Broker::start(BrokerOptions::new(&addr, PREFIX))
        .err()
        .expect("the port is taken")
        .to_string();
    assert!(
        msg.contains(&addr) && msg.contains("[mqtt] listen"),
        "{msg}"
    );
    let msg = Broker::start(BrokerOptions::new("localhost:1883", PREFIX))
        .err()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("[mqtt] listen") && msg.contains("IP:PORT"),
        "{msg}"
    );
}

/// A CA and a certificate for 127.0.0.1 signed by it, made with openssl.
pub(crate) fn make_certs(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = dir.join(format!("{name}-ca.key"));
    let ca = dir.join(format!("{name}-ca.pem"));
    let key = dir.join(format!("{name}-server.key"));
    let csr = dir.join(format!("{name}-server.csr"));
    let cert = dir.join(format!("{name}-server.pem"));
    let ext = dir.join(format!("{name}-ext.cnf"));
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    let p = |p: &PathBuf| p.to_str().unwrap().to_string();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut args = vec!["req", "-x509", "-days", "2", "-subj", "/CN=ronda test CA"];
    args.extend(ec);
    let (ca_key_s, ca_s) = (p(&ca_key), p(&ca));
    args.extend(["-keyout", &ca_key_s, "-out", &ca_s]);
    args.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
    args.extend(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    run(&args);
    let (key_s, csr_s, cert_s, ext_s) = (p(&key), p(&csr), p(&cert), p(&ext));
    let mut args = vec![
        "req",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &key_s,
        "-out",
        &csr_s,
    ];
    args.extend(ec);
    run(&args);
    run(&[
        "x509",
        "-req",
        "-days",
        "2",
        "-in",
        &csr_s,
        "-CA",
        &ca_s,
        "-CAkey",
        &ca_key_s,
        "-CAcreateserial",
        "-out",
        &cert_s,
        "-extfile",
        &ext_s,
    ]);
    (ca, cert, key)
}

/// Sink options for the broker on `port` over TLS, trusting the CA in `ca`.
fn tls_opts(port: u16, ca: &Path) -> ronda::sinks::MqttOptions {
    let mut o = opts(port);
    o.tls = Some(Tls::Ca {
        file: ca.to_path_buf(),
        pem: std::fs::read(ca).unwrap(),
    });
    o
}

/// Against a TLS broker on `port` whose events `sub` sees: a sink trusting `other_ca` never
/// connects, one trusting `ca` delivers every event. Stores go under `dir`.
fn only_the_trusted_ca_delivers(
    dir: &Path,
    port: u16,
    ca: &Path,
    other_ca: &Path,
    sub: &Subscriber,
) {
    let store = temp_store(&dir.join("a"));
    let wrong = MqttSink::start(tls_opts(port, other_ca), store.clone()).unwrap();
    append(&store, &wrong, 0..1);
    assert!(!wait_for(Duration::from_secs(2), || wrong.connected()));
    assert_eq!(wrong.shutdown(Duration::ZERO).unwrap(), 1);

    let store = temp_store(&dir.join("b"));
    let sink = MqttSink::start(tls_opts(port, ca), store.clone()).unwrap();
    let ids = append(&store, &sink, 0..3);
    assert!(wait_for(Duration::from_secs(10), || sub.distinct_events() == 3));
    assert_eq!(check_delivery(&sub.events(), &ids), 0);
    assert_eq!(sink.shutdown(Duration::from_secs(2)).unwrap(), 0);
}

#[test]
fn mqtts_with_a_ca_file() {
    init_log();
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_certs(dir.path(), "good");
    let (other_ca, _, _) = make_certs(dir.path(), "other");
    let tls_port = free_port();
    let mosq = Mosquitto::configured(
        free_port(),
        &format!(
            "listener {tls_port} 127.0.0.1\ncertfile {}\nkeyfile {}\n",
            cert.display(),
            key.display()
        ),
    );
    let mut mosq = mosq;
    mosq.resume();
    assert!(wait_for(Duration::from_secs(5), || listening(tls_port)));
    let sub = Subscriber::new(mosq.port, EVENTS);
    // a CA that did not sign the broker's certificate: never connected
    only_the_trusted_ca_delivers(dir.path(), tls_port, &ca, &other_ca, &sub);
}

#[test]
fn network_cut_during_a_burst_loses_no_event() {
    init_log();
    let started = Instant::now();
    let mosq = Mosquitto::start();
    let proxy = Proxy::new(mosq.port);
    let dir = tempfile::tempdir().unwrap();
    let store = temp_store(dir.path());
    let sub = Subscriber::new(mosq.port, EVENTS);
    let mut o = opts(proxy.port);
    o.keep_alive = Duration::from_secs(2);
    let sink = MqttSink::start(o, store.clone()).unwrap();
    assert!(wait_for(Duration::from_secs(10), || sink.connected()));

    const N: usize = 2000;
    let mut want = append(&store, &sink, 0..N);
    assert!(wait_for(Duration::from_secs(20), || sub.on(EVENTS).len() >= 200));
    // Mid-burst: publishes and acknowledgements in flight are lost with the connection.
    proxy.cut();
    let at_cut = sub.distinct_events();
    // the outage lasts until the sink has seen its connection go (the proxy closes it)
    let t0 = Instant::now();
    assert!(
        wait_for(Duration::from_secs(10), || !sink.connected()),
        "the sink still thinks it is connected {:.1?} after the cut",
        t0.elapsed()
    );
    proxy.resume();
    assert!(
        wait_for(Duration::from_secs(60), || sub.distinct_events() == N
            && store.backlog().unwrap() == 0),
        "{} of {N} events, backlog {}",
        sub.distinct_events(),
        store.backlog().unwrap()
    );
    want.push(fence(&store, &sink, &sub, N)); // any late duplicate arrives before it
    let duplicates = check_delivery(&sub.events(), &want);
    assert_eq!(sink.shutdown(Duration::from_secs(2)).unwrap(), 0);
    eprintln!(
        "FIGURES cut: {N} events, cut after {at_cut} arrived, {duplicates} duplicate(s), all \
         delivered in order in {:.1?}",
        started.elapsed()
    );
}

#[test]
fn a_burst_goes_out_in_order_through_both_brokers() {
    init_log();
    let mosq = Mosquitto::start();
    let rumqttd = embedded();
    for (port, own, name) in [
        (mosq.port, opts(mosq.port), "mosquitto"),
        (rumqttd.addr().port(), own_opts(&rumqttd), "rumqttd"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store = temp_store(dir.path());
        let sub = Subscriber::new(port, EVENTS);
        let sink = MqttSink::start(own, store.clone()).unwrap();
        const N: usize = 1000;
        let t = Instant::now();
        let want = append(&store, &sink, 0..N);
        assert!(
            wait_for(Duration::from_secs(30), || sub.on(EVENTS).len() >= N
                && store.backlog().unwrap() == 0),
            "{name}: {} of {N}",
            sub.on(EVENTS).len()
        );
        let took = t.elapsed();
        assert_eq!(check_delivery(&sub.events(), &want), 0, "{name}");
        assert_eq!(sink.shutdown(Duration::from_secs(2)).unwrap(), 0);
        eprintln!("FIGURES burst {name}: {N} events appended and acknowledged in {took:.1?}");
    }
}

/// A subscriber to `EVENTS` over TLS on `port`, trusting the CA certificate in `ca`.
fn tls_subscriber(port: u16, ca: &Path) -> Subscriber {
    // rumqttc's TLS set-up needs a process-wide crypto provider: ronda builds rustls with ring
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut o = Subscriber::options(port);
    o.set_transport(rumqttc::Transport::tls_with_config(
        rumqttc::TlsConfiguration::Simple {
            ca: std::fs::read(ca).unwrap(),
            alpn: None,
            client_auth: None,
        },
    ));
    Subscriber::start(o, EVENTS)
}

#[test]
fn the_embedded_broker_speaks_tls_when_given_a_certificate() {
    use ronda::sinks::BrokerTls;
    use std::io::{Read, Write};
    init_log();
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_certs(dir.path(), "village");
    let (other_ca, _, _) = make_certs(dir.path(), "other");
    let port = free_port();
    let mut o = BrokerOptions::new(&format!("127.0.0.1:{port}"), PREFIX);
    o.tls = Some(BrokerTls {
        cert: cert.clone(),
        key: key.clone(),
    });
    let broker = Broker::start(o.clone()).unwrap();
    assert_eq!(broker.addr().port(), port);
    assert_ne!(
        broker.client_addr().port(),
        port,
        "ronda's own client reaches the broker itself, on loopback"
    );
    // plain MQTT on the TLS port: no CONNACK
    let mut plain = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let connect = [
        0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 5, 0, 1, b'x',
    ];
    let _ = plain.write_all(&connect);
    let mut answer = [0u8; 4];
    let got = plain.read(&mut answer).unwrap_or(0);
    assert!(
        got == 0 || answer[0] != 0x20,
        "a plain MQTT client was answered on the TLS port: {answer:02x?}"
    );

    // a guard post that trusts the village's CA reads every event over TLS; one that trusts
    // another CA never gets in
    let stranger = tls_subscriber(port, &other_ca);
    let post = tls_subscriber(port, &ca);
    assert!(
        post.subscribed(1, Duration::from_secs(10)),
        "no SUBACK over TLS"
    );
    let store = temp_store(dir.path());
    let sink = MqttSink::start(own_opts(&broker), store.clone()).unwrap();
    let ids = append(&store, &sink, 0..3);
    assert!(wait_for(Duration::from_secs(10), || post.distinct_events() == 3));
    assert_eq!(check_delivery(&post.events(), &ids), 0);
    assert_eq!(sink.shutdown(Duration::from_secs(2)).unwrap(), 0);
    assert!(!stranger.subscribed(1, Duration::ZERO));
    assert!(stranger.msgs.lock().unwrap().is_empty());

    // a key file that is not one is refused, naming the key and the file
    o.listen = format!("127.0.0.1:{}", free_port());
    o.tls = Some(BrokerTls {
        cert,
        key: ca.clone(),
    });
    let err = Broker::start(o).err().expect("refused").to_string();
    assert!(
        err.contains("tls_key") && err.contains(&ca.display().to_string()),
        "{err}"
    );
}

/// A guard's phone loses its connection on the round (out of the village wifi, mobile data
/// gone) while alerts go out. An app that connects with a fixed client id and a persistent
/// session (clean session off, QoS 1) gets what it missed when it comes back: the embedded
/// broker keeps its session and subscription meanwhile. The phone's second connection
/// subscribes to nothing but the availability: the events can only come from the kept session.
#[test]
fn a_guard_phone_back_in_reach_gets_what_it_missed() {
    init_log();
    let dir = tempfile::tempdir().unwrap();
    let broker = embedded();
    let port = broker.addr().port();
    let store = temp_store(dir.path());
    let sink = MqttSink::start(own_opts(&broker), store.clone()).unwrap();
    let mut o = Subscriber::options(port);
    o.set_client_id(format!("pos1-phone-{}", std::process::id()));
    o.set_clean_session(false);
    let phone = Subscriber::start(o.clone(), EVENTS);
    assert!(phone.subscribed(1, Duration::from_secs(60)));
    let seen = append(&store, &sink, 0..2);
    assert!(wait_for(Duration::from_secs(60), || phone
        .distinct_events()
        == 2));
    phone.leave(); // out of reach
    let missed = append(&store, &sink, 2..5);
    assert!(
        wait_for(Duration::from_secs(60), || store.backlog().unwrap() == 0),
        "the broker did not take the events while the phone was away"
    );
    let phone = Subscriber::start(o, AVAILABILITY);
    assert!(
        wait_for(Duration::from_secs(60), || phone.distinct_events() == 3),
        "the phone back in reach got {} of the 3 events it missed",
        phone.distinct_events()
    );
    assert_eq!(check_delivery(&phone.events(), &missed), 0);
    assert!(phone.events().iter().all(|e| !seen.contains(&e.id)));
    assert_eq!(sink.shutdown(Duration::from_secs(2)).unwrap(), 0);
}

/// The embedded broker with the guard apps' sessions kept in `store` across its restarts.
fn embedded_keeping_sessions(store: &Arc<Store>) -> Broker {
    let mut o = BrokerOptions::new("127.0.0.1:0", PREFIX);
    o.store = Some(store.clone());
    Broker::start(o).unwrap()
}

/// A guard app with a persistent session (fixed client id, clean session off) on `port`.
fn persistent_app(id: &str, port: u16) -> rumqttc::MqttOptions {
    let mut o = Subscriber::options(port);
    o.set_client_id(format!("{id}-{}", std::process::id()));
    o.set_clean_session(false);
    o
}

/// The box restarts while one guard's phone is out of reach: the phone back in reach gets what
/// it missed before the restart (which the broker had queued in memory), then the new run's
/// events; the other guard's phone, in reach until the stop, gets only the new run's events,
/// nothing twice. Before, the restart emptied the queue: the phone got only the new run's.
#[test]
fn a_guard_phone_away_while_the_box_restarts_gets_what_it_missed() {
    init_log();
    let dir = tempfile::tempdir().unwrap();
    let store = temp_store(dir.path());
    let broker = embedded_keeping_sessions(&store);
    let sink = MqttSink::start(own_opts(&broker), store.clone()).unwrap();
    let port = broker.addr().port();
    let away = Subscriber::start(persistent_app("pos1-phone", port), EVENTS);
    let near = Subscriber::start(persistent_app("pos2-phone", port), EVENTS);
    assert!(away.subscribed(1, Duration::from_secs(60)));
    assert!(near.subscribed(1, Duration::from_secs(60)));
    let seen = append(&store, &sink, 0..2);
    // what each phone took is written down (within seconds of its PUBACK)
    let written = |id: &str, last: &str| {
        store
            .mqtt_sessions()
            .unwrap()
            .iter()
            .any(|s| s.client_id.starts_with(id) && s.last_event.as_deref() == Some(last))
    };
    assert!(
        wait_for(Duration::from_secs(60), || written("pos1-phone", &seen[1])
            && written("pos2-phone", &seen[1])),
        "the phones' sessions were not written down with the 2 events they took: {:?}",
        store.mqtt_sessions().unwrap()
    );
    away.leave(); // out of reach
    let missed = append(&store, &sink, 2..5);
    assert!(
        wait_for(Duration::from_secs(60), || written(
            "pos2-phone",
            &missed[2]
        )),
        "the phone in reach was not written down with the last event it took: {:?}",
        store.mqtt_sessions().unwrap()
    );
    // the box restarts (a clean stop); the near phone loses its connection with it
    assert_eq!(sink.shutdown(Duration::from_secs(5)).unwrap(), 0);
    drop(broker);
    drop(near);
    let broker = embedded_keeping_sessions(&store);
    let sink = MqttSink::start(own_opts(&broker), store.clone()).unwrap();
    let port = broker.addr().port();
    let new_run = append(&store, &sink, 5..6);
    assert!(wait_for(Duration::from_secs(60), || store
        .backlog()
        .unwrap()
        == 0));
    // both phones come back: one subscribing again as mosquitto_sub does, the other to nothing
    // new (an app that trusts the session it finds)
    let away = Subscriber::start(persistent_app("pos1-phone", port), EVENTS);
    let near = Subscriber::start(persistent_app("pos2-phone", port), AVAILABILITY);
    // one more event as a fence: once it is there, everything before it is
    let fence = append(&store, &sink, 6..7);
    assert!(
        wait_for(Duration::from_secs(60), || away
            .events()
            .iter()
            .any(|e| e.id == fence[0])
            && near.events().iter().any(|e| e.id == fence[0])),
        "the phones back in reach got {} and {} events",
        away.distinct_events(),
        near.distinct_events()
    );
    let ids = |s: &Subscriber| s.events().into_iter().map(|e| e.id).collect::<Vec<_>>();
    let want_away: Vec<String> = [&missed[..], &new_run, &fence].concat();
    assert_eq!(
        ids(&away),
        want_away,
        "the phone away during the restart: what it missed, then the new run's, once each"
    );
    assert_eq!(
        ids(&near),
        [&new_run[..], &fence].concat(),
        "the phone in reach until the stop: only the new run's, nothing twice"
    );
    assert_eq!(sink.shutdown(Duration::from_secs(5)).unwrap(), 0);
}
