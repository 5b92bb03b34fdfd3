//! Real MQTT brokers for tests: Mosquitto per test (a child process on a free port, killed at
//! the end even when the test fails), a recording subscriber, a TCP proxy to cut connections, and
//! the JSON Schema check of src/events.schema.json.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

pub use super::free_port;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use ronda::events::{CountsView, Event, EventKind, MaskVerdict, Severity};
use ronda::rules::Direction;
use ronda::sinks::{Broker, BrokerOptions, MqttOptions, MqttSink};
use ronda::store::Store;
use rumqttc::{Event as MqttEvent, Packet, QoS};
use serde_json::Value;

pub const SITE: &str = "rw9";
pub const PREFIX: &str = "ronda/rw9";
pub const EVENTS: &str = "ronda/rw9/events";
pub const AVAILABILITY: &str = "ronda/rw9/availability";

pub fn init_log() {
    if std::env::var_os("RONDA_LOG").is_some() {
        ronda::telemetry::init();
    }
}

pub fn wait_for(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
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

pub fn listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

pub fn opts(port: u16) -> MqttOptions {
    MqttOptions::new("127.0.0.1", port, SITE)
}

/// The embedded broker (ronda's front before rumqttd) on a free loopback port, without users:
/// anybody reads `ronda/rw9/...`, nobody but ronda's own client publishes.
pub fn embedded() -> Broker {
    Broker::start(BrokerOptions::new("127.0.0.1:0", PREFIX)).unwrap()
}

/// Options for ronda's own client on the embedded broker (behind its front, as `ronda run`
/// connects).
pub fn own_opts(broker: &Broker) -> MqttOptions {
    let mut o = opts(0);
    broker.connect_own(&mut o);
    o
}

pub fn temp_store(dir: &Path) -> Arc<Store> {
    Arc::new(Store::open(&dir.join("ronda.db")).unwrap())
}

// ---------------------------------------------------------------------------------------------
// Mosquitto, one per test

/// A Mosquitto child process (ronda's own launcher, `ronda::cli::mosquitto`), its files in a
/// temporary directory; killed when dropped, whatever happens in the test.
pub struct Mosquitto {
    pub port: u16,
    inner: ronda::cli::mosquitto::Mosquitto,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    pub fn start() -> Mosquitto {
        let mut m = Mosquitto::configured(free_port(), "");
        m.resume();
        m
    }

    /// Configured for `port` (plus `extra` lines, which may add listeners), not started.
    pub fn configured(port: u16, extra: &str) -> Mosquitto {
        Mosquitto::with(port, false, extra)
    }

    fn with(port: u16, persistent: bool, extra: &str) -> Mosquitto {
        let dir = tempfile::tempdir().unwrap();
        let inner =
            ronda::cli::mosquitto::Mosquitto::configure(dir.path(), port, persistent, extra)
                .unwrap();
        Mosquitto {
            port,
            inner,
            _dir: dir,
        }
    }

    /// With persistence on (as a city broker should run): what it holds for a persistent
    /// session (the hub's subscriptions and queued messages) survives [`Mosquitto::stop_gracefully`].
    /// No queue limit: a 10-minute outage backlogs thousands of events for the hub's session,
    /// beyond Mosquitto's default 1000 (which it would drop).
    pub fn persistent() -> Mosquitto {
        let mut m = Mosquitto::with(free_port(), true, "max_queued_messages 0\n");
        m.resume();
        m
    }

    /// SIGTERM: Mosquitto writes its persistence file as it stops (SIGKILL would lose it).
    pub fn stop_gracefully(&mut self) {
        self.inner.stop_gracefully();
    }

    pub fn resume(&mut self) {
        self.inner
            .resume()
            .unwrap_or_else(|e| panic!("mosquitto on port {}: {e}", self.port));
    }

    pub fn stop(&mut self) {
        self.inner.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// A subscriber (rumqttc) that records everything and subscribes again after every reconnect

#[derive(Clone, Debug)]
pub struct Msg {
    pub topic: String,
    pub payload: String,
    pub retain: bool,
    pub at: Instant,
}

pub struct Subscriber {
    pub msgs: Arc<Mutex<Vec<Msg>>>,
    pub subacks: Arc<AtomicU64>,
    pub stop: Arc<AtomicBool>,
    pub client: rumqttc::Client,
    /// The thread reading the connection (see [`Subscriber::leave`]).
    reader: Option<std::thread::JoinHandle<()>>,
}

pub static SUBSCRIBERS: AtomicU64 = AtomicU64::new(0);

impl Subscriber {
    /// Connected and subscribed to `filter` (QoS 1) when this returns.
    pub fn new(port: u16, filter: &str) -> Subscriber {
        let s = Subscriber::start(Subscriber::options(port), filter);
        assert!(
            s.subscribed(1, Duration::from_secs(5)),
            "subscriber did not get SUBACK"
        );
        s
    }

    /// A subscriber's options for the broker on `port`: a client id of its own, plain MQTT.
    pub fn options(port: u16) -> rumqttc::MqttOptions {
        let id = format!(
            "test-sub-{}-{}",
            std::process::id(),
            SUBSCRIBERS.fetch_add(1, Ordering::Relaxed)
        );
        let mut o = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(5))
            .set_max_packet_size(1 << 20, 1 << 20);
        o
    }

    /// Connecting (and subscribing to `filter` at every CONNACK) in the background; it may
    /// never get in (see [`Subscriber::subscribed`]).
    pub fn start(o: rumqttc::MqttOptions, filter: &str) -> Subscriber {
        let (client, mut conn) = rumqttc::Client::new(o, 64);
        let mut s = Subscriber {
            msgs: Arc::default(),
            subacks: Arc::default(),
            stop: Arc::default(),
            client: client.clone(),
            reader: None,
        };
        let (msgs, subacks, stop) = (s.msgs.clone(), s.subacks.clone(), s.stop.clone());
        let filter = filter.to_string();
        s.reader = Some(std::thread::spawn(move || {
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
        }));
        s
    }

    /// Go out of reach and return once the connection is closed: after this nothing published
    /// can reach this app any more (a plain drop closes it a moment later, in the background,
    /// and an event published in that moment is still taken, and acknowledged, by this app).
    pub fn leave(mut self) {
        let reader = self.reader.take();
        drop(self); // stops the reader and disconnects
        if let Some(reader) = reader {
            let _ = reader.join();
        }
    }

    pub fn subscribed(&self, times: u64, timeout: Duration) -> bool {
        wait_for(timeout, || self.subacks.load(Ordering::Relaxed) >= times)
    }

    pub fn on(&self, topic: &str) -> Vec<Msg> {
        let all = self.msgs.lock().unwrap();
        all.iter().filter(|m| m.topic == topic).cloned().collect()
    }

    /// The events received, in order, each checked against the schema.
    pub fn events(&self) -> Vec<Event> {
        self.on(EVENTS)
            .iter()
            .map(|m| checked(&m.payload))
            .collect()
    }

    pub fn distinct_events(&self) -> usize {
        let ids: HashSet<String> = self.events().into_iter().map(|e| e.id).collect();
        ids.len()
    }

    /// Whether `payload` arrived on `topic` after `since`.
    pub fn got_after(&self, topic: &str, payload: &str, since: Instant) -> Option<Instant> {
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

pub struct Proxy {
    pub port: u16,
    pub generation: Arc<AtomicU64>,
    pub refuse: Arc<AtomicBool>,
    pub stop: Arc<AtomicBool>,
}

impl Proxy {
    pub fn new(target: u16) -> Proxy {
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
    pub fn cut(&self) {
        self.refuse.store(true, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    pub fn resume(&self) {
        self.refuse.store(false, Ordering::Relaxed);
    }
}

pub fn pipe(
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

pub fn event(i: usize) -> Event {
    use EventKind::*;
    let kinds = ronda::events::EventKind::ALL;
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
        UnrecordedEntry => {
            // ids and status only: the camera, line, direction and track
            e.line = Some("gate".into());
            e.direction = Some(Direction::In);
            e.track_id = Some(i as u64);
            e.severity = Severity::Alert;
            e.snapshot = None;
            e.clip = None;
        }
    }
    e
}

pub fn append(store: &Store, sink: &MqttSink, range: std::ops::Range<usize>) -> Vec<String> {
    range
        .map(|i| {
            let e = event(i);
            store.append(&e).unwrap();
            sink.notify();
            e.id
        })
        .collect()
}

/// Wait until everything the sink published before now has reached `sub`, instead of sleeping
/// "long enough" for a late duplicate: one more event, number `n` (the fence), is appended and
/// waited for. The outbox is empty when this is called (every earlier event acknowledged, so no
/// re-send is pending), the sink publishes in order on one connection and the broker hands one
/// publisher's messages on a topic to a subscriber in order: a duplicate of an earlier event
/// arrives before the fence or not at all. Returns the fence's id, to add to what is wanted.
pub fn fence(store: &Store, sink: &MqttSink, sub: &Subscriber, n: usize) -> String {
    let before = sub.distinct_events();
    let id = append(store, sink, n..n + 1).remove(0);
    let t0 = Instant::now();
    assert!(
        wait_for(Duration::from_secs(20), || sub.distinct_events() > before),
        "the fence event {id} did not arrive in {:.1?}",
        t0.elapsed()
    );
    id
}

/// Every id of `want` arrived, the first arrival of each in `want`'s order, nothing else;
/// returns the number of duplicates.
pub fn check_delivery(got: &[Event], want: &[String]) -> usize {
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

pub const SCHEMA_TEXT: &str = include_str!("../../../src/events.schema.json");

pub fn schema() -> Value {
    serde_json::from_str(SCHEMA_TEXT).expect("src/events.schema.json is JSON")
}

/// Parse a received payload, check it against the schema, and read it as an Event.
pub fn checked(payload: &str) -> Event {
    let v: Value = serde_json::from_str(payload).expect("event payload is JSON");
    let errors = validate(&schema(), &v);
    assert!(
        errors.is_empty(),
        "{payload}\ndoes not match the schema: {errors:#?}"
    );
    serde_json::from_value(v).expect("a valid event reads as an Event")
}

pub fn validate(schema: &Value, v: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(schema, v, "$", &mut errors);
    errors
}

pub fn check(s: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
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

pub fn has_type(v: &Value, t: &str) -> bool {
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
pub fn pattern_matches(pattern: &str, text: &str) -> bool {
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
    pub fn fits(a: &Atom, c: char) -> bool {
        match a {
            Atom::Any => true,
            Atom::Class(r) => r.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)),
        }
    }
    pub fn go(pieces: &[(Atom, usize, usize)], s: &[char]) -> bool {
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
