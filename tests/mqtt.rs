//! The store and the MQTT sink against real brokers: a Mosquitto per test (a child process on a
//! free port, killed at the end even when the test fails) and the embedded rumqttd. Every event a
//! subscriber receives is checked against src/events.schema.json.
//!
//! Figures (durations, duplicates) are printed to stderr: `cargo test --test mqtt -- --nocapture`.
//! `RONDA_LOG=debug` shows the sink's log.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use ronda::detect::MaskVerdict;
use ronda::events::{CountsView, Event, EventKind, Severity};
use ronda::rules::Direction;
use ronda::sinks::mqtt::Tls;
use ronda::sinks::{Broker, MqttOptions, MqttSink};
use ronda::store::Store;
use rumqttc::{Event as MqttEvent, Packet, QoS};
use serde_json::Value;

const SITE: &str = "rw9";
const EVENTS: &str = "ronda/rw9/events";
const AVAILABILITY: &str = "ronda/rw9/availability";
const MOSQUITTO: &str = "/usr/sbin/mosquitto";

fn init_log() {
    if std::env::var_os("RONDA_LOG").is_some() {
        ronda::telemetry::init();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if done() {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

fn opts(port: u16) -> MqttOptions {
    MqttOptions::new("127.0.0.1", port, SITE)
}

fn temp_store(dir: &Path) -> Arc<Store> {
    Arc::new(Store::open(&dir.join("ronda.db")).unwrap())
}

// ---------------------------------------------------------------------------------------------
// Mosquitto, one per test

/// A Mosquitto child process; killed when dropped, whatever happens in the test.
struct Mosquitto {
    port: u16,
    conf: PathBuf,
    _dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Mosquitto {
    fn start() -> Mosquitto {
        let mut m = Mosquitto::configured(free_port(), "");
        m.resume();
        m
    }

    /// Configured for `port` (plus `extra` lines, which may add listeners), not started.
    fn configured(port: u16, extra: &str) -> Mosquitto {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                // `user root`: started as root, Mosquitto would switch to the `mosquitto` user,
                // who cannot read the key files in this test's private directory.
                "allow_anonymous true\npersistence false\nlog_dest none\nuser root\n\
                 listener {port} 127.0.0.1\n{extra}\n"
            ),
        )
        .unwrap();
        Mosquitto {
            port,
            conf,
            _dir: dir,
            child: None,
        }
    }

    fn resume(&mut self) {
        assert!(self.child.is_none());
        let child = Command::new(MOSQUITTO)
            .arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto runs");
        self.child = Some(child);
        assert!(
            wait_for(Duration::from_secs(5), || listening(self.port)),
            "mosquitto did not start on port {}",
            self.port
        );
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// A subscriber (rumqttc) that records everything and subscribes again after every reconnect

#[derive(Clone, Debug)]
struct Msg {
    topic: String,
    payload: String,
    retain: bool,
    at: Instant,
}

struct Subscriber {
    msgs: Arc<Mutex<Vec<Msg>>>,
    subacks: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    client: rumqttc::Client,
}

static SUBSCRIBERS: AtomicU64 = AtomicU64::new(0);

impl Subscriber {
    /// Connected and subscribed to `filter` (QoS 1) when this returns.
    fn new(port: u16, filter: &str) -> Subscriber {
        let id = format!(
            "test-sub-{}-{}",
            std::process::id(),
            SUBSCRIBERS.fetch_add(1, Ordering::Relaxed)
        );
        let mut o = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(5))
            .set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut conn) = rumqttc::Client::new(o, 64);
        let s = Subscriber {
            msgs: Arc::default(),
            subacks: Arc::default(),
            stop: Arc::default(),
            client: client.clone(),
        };
        let (msgs, subacks, stop) = (s.msgs.clone(), s.subacks.clone(), s.stop.clone());
        let filter = filter.to_string();
        std::thread::spawn(move || {
            for ev in conn.iter() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match ev {
                    Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => {
                        let _ = client.try_subscribe(&filter, QoS::AtLeastOnce);
                    }
                    Ok(MqttEvent::Incoming(Packet::SubAck(_))) => {
                        subacks.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                        msgs.lock().unwrap().push(Msg {
                            topic: p.topic.clone(),
                            payload: String::from_utf8_lossy(&p.payload).into_owned(),
                            retain: p.retain,
                            at: Instant::now(),
                        });
                    }
                    Ok(_) => {}
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        });
        assert!(
            s.subscribed(1, Duration::from_secs(5)),
            "subscriber did not get SUBACK"
        );
        s
    }

    fn subscribed(&self, times: u64, timeout: Duration) -> bool {
        wait_for(timeout, || self.subacks.load(Ordering::Relaxed) >= times)
    }

    fn on(&self, topic: &str) -> Vec<Msg> {
        let all = self.msgs.lock().unwrap();
        all.iter().filter(|m| m.topic == topic).cloned().collect()
    }

    /// The events received, in order, each checked against the schema.
    fn events(&self) -> Vec<Event> {
        self.on(EVENTS)
            .iter()
            .map(|m| checked(&m.payload))
            .collect()
    }

    fn distinct_events(&self) -> usize {
        let ids: HashSet<String> = self.events().into_iter().map(|e| e.id).collect();
        ids.len()
    }

    /// Whether `payload` arrived on `topic` after `since`.
    fn got_after(&self, topic: &str, payload: &str, since: Instant) -> Option<Instant> {
        self.on(topic)
            .into_iter()
            .find(|m| m.payload == payload && m.at >= since)
            .map(|m| m.at)
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.client.try_disconnect();
    }
}

// ---------------------------------------------------------------------------------------------
// A TCP proxy that can lose the connection the hard way (no DISCONNECT, no FIN: silence)

struct Proxy {
    port: u16,
    generation: Arc<AtomicU64>,
    refuse: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    fn new(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = Proxy {
            port: listener.local_addr().unwrap().port(),
            generation: Arc::default(),
            refuse: Arc::default(),
            stop: Arc::default(),
        };
        let (generation, refuse, stop) = (p.generation.clone(), p.refuse.clone(), p.stop.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                if refuse.load(Ordering::Relaxed) {
                    continue; // dropped: closed at once
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let g = generation.load(Ordering::Relaxed);
                for (from, to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let (generation, stop) = (generation.clone(), stop.clone());
                    std::thread::spawn(move || pipe(from, to, g, &generation, &stop));
                }
            }
        });
        p
    }

    /// Every open connection goes silent (kept open, nothing forwarded, as when a cable is cut)
    /// and new ones are refused.
    fn cut(&self) {
        self.refuse.store(true, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    fn resume(&self) {
        self.refuse.store(false, Ordering::Relaxed);
    }
}

fn pipe(
    mut from: TcpStream,
    mut to: TcpStream,
    born: u64,
    generation: &AtomicU64,
    stop: &AtomicBool,
) {
    from.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 16 * 1024];
    while !stop.load(Ordering::Relaxed) {
        if generation.load(Ordering::Relaxed) != born {
            // Cut: hold both sockets open and forward nothing.
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => {
                let _ = to.shutdown(std::net::Shutdown::Write);
                return;
            }
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wake the accept
    }
}

// ---------------------------------------------------------------------------------------------
// Events of every kind

fn event(i: usize) -> Event {
    use EventKind::*;
    let kinds = [
        LineCrossing,
        NoMask,
        CurfewEntry,
        Intrusion,
        Loitering,
        Crowding,
        CameraOffline,
        CameraOnline,
    ];
    let kind = kinds[i % kinds.len()];
    let mut e = Event::new(
        SITE,
        chrono_tz::Asia::Jakarta,
        "gate-1",
        kind,
        Severity::Info,
        Utc::now(),
    );
    match kind {
        LineCrossing | NoMask | CurfewEntry => {
            e.line = Some("gate".into());
            e.direction = Some(if i.is_multiple_of(2) {
                Direction::In
            } else {
                Direction::Out
            });
            e.track_id = Some(i as u64);
            e.bbox = Some([10.0, 20.5, 50.0, 120.25]);
            e.score = Some(0.87);
            e.counts = Some(CountsView {
                in_: i as u64,
                out: 1,
                occupancy: i as i64 - 1,
            });
            if kind == NoMask {
                e.mask = Some(MaskVerdict::NoMask);
                e.severity = Severity::Alert;
            }
        }
        Intrusion | Loitering | Crowding => {
            e.zone = Some("yard".into());
            e.track_id = Some(i as u64);
            e.bbox = Some([0.0, 0.0, 5.0, 5.0]);
            e.score = Some(0.5);
            e.severity = Severity::Warning;
        }
        CameraOffline | CameraOnline => {
            e.snapshot = None;
            e.clip = None;
        }
    }
    e
}

fn append(store: &Store, sink: &MqttSink, range: std::ops::Range<usize>) -> Vec<String> {
    range
        .map(|i| {
            let e = event(i);
            store.append(&e).unwrap();
            sink.notify();
            e.id
        })
        .collect()
}

/// Every id of `want` arrived, the first arrival of each in `want`'s order, nothing else;
/// returns the number of duplicates.
fn check_delivery(got: &[Event], want: &[String]) -> usize {
    let place: HashMap<&str, usize> = want
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let mut seen = HashSet::new();
    let mut firsts = Vec::new();
    for e in got {
        let i = *place
            .get(e.id.as_str())
            .unwrap_or_else(|| panic!("unexpected event {}", e.id));
        if seen.insert(i) {
            firsts.push(i);
        }
    }
    assert_eq!(
        firsts,
        (0..want.len()).collect::<Vec<_>>(),
        "events missing or out of order"
    );
    got.len() - want.len()
}

// ---------------------------------------------------------------------------------------------
// JSON Schema: the subset src/events.schema.json uses

const SCHEMA_TEXT: &str = include_str!("../src/events.schema.json");

fn schema() -> Value {
    serde_json::from_str(SCHEMA_TEXT).expect("src/events.schema.json is JSON")
}

/// Parse a received payload, check it against the schema, and read it as an Event.
fn checked(payload: &str) -> Event {
    let v: Value = serde_json::from_str(payload).expect("event payload is JSON");
    let errors = validate(&schema(), &v);
    assert!(
        errors.is_empty(),
        "{payload}\ndoes not match the schema: {errors:#?}"
    );
    serde_json::from_value(v).expect("a valid event reads as an Event")
}

fn validate(schema: &Value, v: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(schema, v, "$", &mut errors);
    errors
}

fn check(s: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    const KNOWN: &[&str] = &[
        "$schema",
        "$id",
        "title",
        "description",
        "type",
        "enum",
        "required",
        "additionalProperties",
        "properties",
        "items",
        "minItems",
        "maxItems",
        "minimum",
        "maximum",
        "minLength",
        "pattern",
    ];
    let s = s.as_object().expect("a schema is an object");
    for k in s.keys() {
        // A keyword this validator ignores would pass anything.
        assert!(
            KNOWN.contains(&k.as_str()),
            "the test validator does not know `{k}`"
        );
    }
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => panic!("bad type keyword"),
        };
        if !types.iter().any(|t| has_type(v, t)) {
            errors.push(format!("{at}: {v} is not of type {types:?}"));
            return;
        }
    }
    if let Some(Value::Array(allowed)) = s.get("enum")
        && !allowed.contains(v)
    {
        errors.push(format!("{at}: {v} is not one of {allowed:?}"));
    }
    match v {
        Value::Object(map) => {
            for r in s
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let r = r.as_str().unwrap();
                if !map.contains_key(r) {
                    errors.push(format!("{at}: `{r}` is missing"));
                }
            }
            let props = s.get("properties").and_then(Value::as_object);
            for (k, x) in map {
                match props.and_then(|p| p.get(k)) {
                    Some(sub) => check(sub, x, &format!("{at}.{k}"), errors),
                    None if s.get("additionalProperties") == Some(&Value::Bool(false)) => {
                        errors.push(format!("{at}: `{k}` is not allowed"))
                    }
                    None => {}
                }
            }
        }
        Value::Array(items) => {
            let n = items.len() as u64;
            if s.get("minItems")
                .and_then(Value::as_u64)
                .is_some_and(|m| n < m)
            {
                errors.push(format!("{at}: {n} items are too few"));
            }
            if s.get("maxItems")
                .and_then(Value::as_u64)
                .is_some_and(|m| n > m)
            {
                errors.push(format!("{at}: {n} items are too many"));
            }
            if let Some(sub) = s.get("items") {
                for (i, x) in items.iter().enumerate() {
                    check(sub, x, &format!("{at}[{i}]"), errors);
                }
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap();
            if s.get("minimum")
                .and_then(Value::as_f64)
                .is_some_and(|m| x < m)
            {
                errors.push(format!("{at}: {x} is below the minimum"));
            }
            if s.get("maximum")
                .and_then(Value::as_f64)
                .is_some_and(|m| x > m)
            {
                errors.push(format!("{at}: {x} is above the maximum"));
            }
        }
        Value::String(text) => {
            if s.get("minLength")
                .and_then(Value::as_u64)
                .is_some_and(|m| (text.chars().count() as u64) < m)
            {
                errors.push(format!("{at}: `{text}` is too short"));
            }
            if let Some(p) = s.get("pattern").and_then(Value::as_str)
                && !pattern_matches(p, text)
            {
                errors.push(format!("{at}: `{text}` does not match {p}"));
            }
        }
        _ => {}
    }
}

fn has_type(v: &Value, t: &str) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64(),
        other => panic!("unknown type {other}"),
    }
}

/// The regular expressions the schema uses: `^...$` around literals, `.`, `[...]` classes with
/// ranges, `\x` escapes, each optionally followed by `{n}`, `{n,m}`, `?`, `*` or `+`.
fn pattern_matches(pattern: &str, text: &str) -> bool {
    #[derive(Debug)]
    enum Atom {
        Any,
        Class(Vec<(char, char)>),
    }
    let body = pattern
        .strip_prefix('^')
        .and_then(|p| p.strip_suffix('$'))
        .expect("schema patterns are anchored with ^ and $");
    let mut pieces: Vec<(Atom, usize, usize)> = Vec::new();
    let mut cs = body.chars().peekable();
    while let Some(c) = cs.next() {
        let atom = match c {
            '.' => Atom::Any,
            '\\' => {
                let l = cs.next().unwrap();
                Atom::Class(vec![(l, l)])
            }
            '[' => {
                let mut ranges = Vec::new();
                loop {
                    let a = cs.next().expect("unclosed [");
                    if a == ']' {
                        break;
                    }
                    if cs.peek() == Some(&'-') {
                        cs.next();
                        match cs.next() {
                            Some(']') => {
                                ranges.push((a, a));
                                ranges.push(('-', '-'));
                                break;
                            }
                            Some(b) => ranges.push((a, b)),
                            None => panic!("unclosed ["),
                        }
                    } else {
                        ranges.push((a, a));
                    }
                }
                Atom::Class(ranges)
            }
            '(' | ')' | '|' | '*' | '+' | '?' | '{' => {
                panic!("pattern {pattern}: `{c}` here is not supported by the test validator")
            }
            l => Atom::Class(vec![(l, l)]),
        };
        let (min, max) = match cs.peek() {
            Some('?') => (0, 1),
            Some('*') => (0, usize::MAX),
            Some('+') => (1, usize::MAX),
            Some('{') => {
                cs.next();
                let spec: String = cs.by_ref().take_while(|c| *c != '}').collect();
                let (a, b) = spec.split_once(',').unwrap_or((&spec, &spec));
                let max = if b.is_empty() {
                    usize::MAX
                } else {
                    b.parse().unwrap()
                };
                pieces.push((atom, a.parse().unwrap(), max));
                continue;
            }
            _ => (1, 1),
        };
        if (min, max) != (1, 1) {
            cs.next();
        }
        pieces.push((atom, min, max));
    }
    fn fits(a: &Atom, c: char) -> bool {
        match a {
            Atom::Any => true,
            Atom::Class(r) => r.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)),
        }
    }
    fn go(pieces: &[(Atom, usize, usize)], s: &[char]) -> bool {
        let Some(((atom, min, max), rest)) = pieces.split_first() else {
            return s.is_empty();
        };
        let mut n = 0;
        while n < *max && n < s.len() && fits(atom, s[n]) {
            n += 1;
        }
        (*min..=n).rev().any(|k| go(rest, &s[k..]))
    }
    go(&pieces, &text.chars().collect::<Vec<_>>())
}

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
    std::thread::sleep(Duration::from_millis(500)); // any late duplicate
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
        std::thread::sleep(Duration::from_millis(700));
        assert!(!sink.connected());
        let t = Instant::now();
        assert_eq!(sink.shutdown(Duration::from_millis(300)).unwrap(), 5);
        assert!(
            t.elapsed() < Duration::from_secs(2),
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
    std::thread::sleep(Duration::from_millis(500));
    let duplicates = check_delivery(&sub.events(), &second);
    assert_eq!(duplicates, 0);
    for id in first.iter().chain(&second) {
        assert!(store.event(id).unwrap().unwrap().sent_at.is_some(), "{id}");
    }
    assert_eq!(sink.shutdown(Duration::from_secs(2)).unwrap(), 0);
}

/// Retained state for late subscribers, the last will on an abrupt loss, state published again
/// after the reconnect, and `offline` on a clean shutdown.
fn retained_and_last_will(broker_port: u16, broker: &str) {
    let dir = tempfile::tempdir().unwrap();
    let store = temp_store(dir.path());
    let proxy = Proxy::new(broker_port);
    let live = Subscriber::new(broker_port, "ronda/rw9/#");
    let mut o = opts(proxy.port);
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
        bye.elapsed() < Duration::from_secs(3),
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
    retained_and_last_will(mosq.port, "mosquitto");
}

#[test]
fn embedded_broker_keeps_state_and_publishes_the_last_will() {
    init_log();
    let broker = Broker::start(&format!("127.0.0.1:{}", free_port())).unwrap();
    retained_and_last_will(broker.addr().port(), "rumqttd");
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
    let broker = Broker::start("127.0.0.1:0").unwrap();
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
            .args(["-t", "ronda/#", "-v", "-d", "-C", "4", "-W", "15"])
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
    let sink = MqttSink::start(opts(port), store.clone()).unwrap();
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

#[test]
fn embedded_broker_on_a_used_port_says_so() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let msg = Broker::start(&addr)
        .err()
        .expect("the port is taken")
        .to_string();
    assert!(
        msg.contains(&addr) && msg.contains("[mqtt] listen"),
        "{msg}"
    );
    let msg = Broker::start("localhost:1883").err().unwrap().to_string();
    assert!(
        msg.contains("[mqtt] listen") && msg.contains("IP:PORT"),
        "{msg}"
    );
}

/// A CA and a certificate for 127.0.0.1 signed by it, made with openssl.
fn make_certs(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
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
    let tls_opts = |ca: &Path| {
        let mut o = opts(tls_port);
        o.tls = Some(Tls::Ca {
            file: ca.to_path_buf(),
            pem: std::fs::read(ca).unwrap(),
        });
        o
    };

    // A CA that did not sign the broker's certificate: never connected.
    let store = temp_store(&dir.path().join("a"));
    let wrong = MqttSink::start(tls_opts(&other_ca), store.clone()).unwrap();
    append(&store, &wrong, 0..1);
    assert!(!wait_for(Duration::from_secs(2), || wrong.connected()));
    assert_eq!(wrong.shutdown(Duration::ZERO).unwrap(), 1);

    let store = temp_store(&dir.path().join("b"));
    let sink = MqttSink::start(tls_opts(&ca), store.clone()).unwrap();
    let ids = append(&store, &sink, 0..3);
    assert!(wait_for(Duration::from_secs(10), || sub.distinct_events() == 3));
    assert_eq!(check_delivery(&sub.events(), &ids), 0);
    assert_eq!(sink.shutdown(Duration::from_secs(2)).unwrap(), 0);
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
    let want = append(&store, &sink, 0..N);
    assert!(wait_for(Duration::from_secs(20), || sub.on(EVENTS).len() >= 200));
    // Mid-burst: publishes and acknowledgements in flight are lost with the connection.
    proxy.cut();
    let at_cut = sub.distinct_events();
    std::thread::sleep(Duration::from_secs(1));
    proxy.resume();
    assert!(
        wait_for(Duration::from_secs(60), || sub.distinct_events() == N
            && store.backlog().unwrap() == 0),
        "{} of {N} events, backlog {}",
        sub.distinct_events(),
        store.backlog().unwrap()
    );
    std::thread::sleep(Duration::from_millis(500));
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
    let embedded = Broker::start("127.0.0.1:0").unwrap();
    for (port, name) in [
        (mosq.port, "mosquitto"),
        (embedded.addr().port(), "rumqttd"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store = temp_store(dir.path());
        let sub = Subscriber::new(port, EVENTS);
        let sink = MqttSink::start(opts(port), store.clone()).unwrap();
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
