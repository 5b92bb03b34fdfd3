//! The webhook sink against a real HTTP server: a tiny one in the test (std TcpListener on a
//! thread) that answers as each test tells it (503 for the first N requests, a 400 for one
//! event, no answer at all...) and records what it got. Every log line of the process (the
//! sink's, and ureq's through the `log` bridge) is captured at debug level to check that the
//! URL's token never shows.
//!
//! Figures are printed to stderr: `cargo test --test webhook -- --nocapture`.

use crate::support as common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::Utc;
use ronda::config::Settings;
use ronda::events::{Event, EventKind, Severity};
use ronda::sinks::{WebhookOptions, WebhookSink};
use ronda::store::Store;

const TOKEN_VAR: &str = "RONDA_TEST_WEBHOOK_TOKEN";
const TOKEN: &str = "tok-5e1f0c9a7b3d42e8";

// ---------------------------------------------------------------------------------------------
// Log capture and environment, once per process (before any test starts a thread that could
// read the environment).

static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock().unwrap().extend_from_slice(buf);
        if std::env::var_os("RONDA_LOG").is_some() {
            let _ = std::io::stderr().write_all(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: every test calls setup() first, and Once makes them wait until this is done,
        // so no other thread of this process reads the environment meanwhile.
        unsafe { std::env::set_var(TOKEN_VAR, TOKEN) };
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(|| Capture)
            .try_init()
            .expect("the test's log subscriber");
    });
}

fn log_text() -> String {
    String::from_utf8_lossy(&LOG.lock().unwrap()).into_owned()
}

/// The log lines that mention `needle` (tests run in parallel: each looks at its own port).
fn log_lines(needle: &str) -> Vec<String> {
    log_text()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

fn assert_no_token_in_log() {
    let log = log_text();
    assert!(!log.contains(TOKEN), "the token is in the log:\n{log}");
}

// ---------------------------------------------------------------------------------------------
// The HTTP server

#[derive(Clone, Debug)]
struct Hit {
    path: String,
    content_type: String,
    authorization: String,
    body: String,
    /// What it answered; 0: no answer (the request was held until the client gave up).
    status: u16,
}

impl Hit {
    fn event(&self) -> Event {
        serde_json::from_str(&self.body).expect("the body is an event")
    }
}

/// How the server answers request number `n` (from 0) with this body: a status, or 0 to hold
/// the request for a second and answer nothing.
type Plan = Box<dyn FnMut(usize, &str) -> u16 + Send>;

struct Server {
    port: u16,
    hits: Arc<Mutex<Vec<Hit>>>,
    plan: Arc<Mutex<Plan>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(plan: impl FnMut(usize, &str) -> u16 + Send + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let plan: Arc<Mutex<Plan>> = Arc::new(Mutex::new(Box::new(plan)));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (hits, plan, stop) = (hits.clone(), plan.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        // One thread per connection: a request held without an answer must
                        // not hold back the client's retry.
                        Ok((stream, _)) => {
                            let (hits, plan) = (hits.clone(), plan.clone());
                            std::thread::spawn(move || serve(stream, &hits, &plan));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        Server {
            port,
            hits,
            plan,
            stop,
            thread: Some(thread),
        }
    }

    fn set_plan(&self, plan: impl FnMut(usize, &str) -> u16 + Send + 'static) {
        *self.plan.lock().unwrap() = Box::new(plan);
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// The events it answered 2xx to, in the order it got them.
    fn delivered(&self) -> Vec<Event> {
        self.hits()
            .iter()
            .filter(|h| (200..300).contains(&h.status))
            .map(Hit::event)
            .collect()
    }

    fn url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/hook/${{{TOKEN_VAR}}}?key=${{{TOKEN_VAR}}}&chat=village",
            self.port
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(stream: TcpStream, hits: &Mutex<Vec<Hit>>, plan: &Mutex<Plan>) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    let mut length = 0;
    let mut content_type = String::new();
    let mut authorization = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = v.trim().parse().unwrap_or(0),
                "content-type" => content_type = v.trim().to_string(),
                "authorization" => authorization = v.trim().to_string(),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    let n = hits.lock().unwrap().len();
    let status = (plan.lock().unwrap())(n, &body);
    hits.lock().unwrap().push(Hit {
        path,
        content_type,
        authorization,
        body: body.clone(),
        status,
    });
    let mut stream = reader.into_inner();
    if status == 0 {
        // no answer: the connection stays open, silent, past the client's timeout (300 ms in
        // the test that plans this), then closes
        std::thread::sleep(Duration::from_secs(1));
        return;
    }
    let answer = match status {
        400 => r#"{"ok":false,"description":"Bad Request: chat not found"}"#,
        503 => "busy, come back later",
        _ => r#"{"ok":true}"#,
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} Whatever\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{answer}",
        answer.len()
    );
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn wait_for(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if done() {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Options as ronda builds them from a config file with this `[webhook]` section, with short
/// retry delays so the tests do not wait a minute.
fn options(webhook_section: &str) -> WebhookOptions {
    let text = format!("[site]\nid = \"rw9\"\n[webhook]\n{webhook_section}\n");
    let settings = Settings::parse(&text, Path::new("test.toml")).unwrap();
    let mut o = WebhookOptions::from_settings(&settings)
        .unwrap()
        .expect("a webhook");
    o.backoff_min = Duration::from_millis(50);
    o.backoff_max = Duration::from_millis(400);
    o
}

fn event(kind: EventKind, severity: Severity) -> Event {
    Event::new(
        "rw9",
        chrono_tz::Asia::Jakarta,
        "gate-1",
        kind,
        severity,
        Utc::now(),
    )
}

/// The kinds of a village evening, with their default severities.
const MIX: [(EventKind, Severity); 6] = [
    (EventKind::LineCrossing, Severity::Info),
    (EventKind::Intrusion, Severity::Alert),
    (EventKind::LineCrossing, Severity::Info),
    (EventKind::CameraOffline, Severity::Warning),
    (EventKind::CameraOnline, Severity::Info),
    (EventKind::NoMask, Severity::Alert),
];

/// Store (and announce) `n` events of the mix; returns them.
fn append_mix(store: &Store, sink: &WebhookSink, n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let (kind, severity) = MIX[i % MIX.len()];
            let e = event(kind, severity);
            store.append(&e).unwrap();
            sink.notify();
            e
        })
        .collect()
}

fn ids(events: &[Event]) -> Vec<String> {
    events.iter().map(|e| e.id.clone()).collect()
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn alerts_go_out_in_order_exactly_once_after_an_outage() {
    setup();
    let server = Server::start(|n, _| if n < 3 { 503 } else { 200 });
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("ronda.db")).unwrap());
    let opts = options(&format!("url = \"{}\"", server.url()));
    let sink = WebhookSink::start(opts.clone(), store.clone()).unwrap();

    let start = Instant::now();
    let events = append_mix(&store, &sink, 30);
    let wanted: Vec<Event> = events.iter().filter(|e| opts.wants(e)).cloned().collect();
    assert_eq!(wanted.len(), 15);
    assert!(
        wait_for(Duration::from_secs(20), || server.delivered().len()
            >= wanted.len()),
        "delivered {} of {}",
        server.delivered().len(),
        wanted.len()
    );
    let took = start.elapsed();
    assert!(!sink.failing());
    // the outage once, however many retries it took
    assert_eq!(sink.outages(), 1);
    // stopped (its thread joined) before the requests are looked at: nothing more can come
    assert_eq!(sink.shutdown(Duration::from_secs(1)).unwrap(), 0);
    let hits = server.hits();
    let delivered = server.delivered();

    // The outage: the first alert, three times, nothing after it meanwhile.
    assert!(hits[..3].iter().all(|h| h.status == 503));
    assert!(hits[..3].iter().all(|h| h.event().id == wanted[0].id));
    // Every alert once, in order; no info event ever asked for.
    assert_eq!(ids(&delivered), ids(&wanted));
    assert_eq!(hits.len(), wanted.len() + 3, "no duplicates");
    assert!(hits.iter().all(|h| h.event().severity != Severity::Info));
    // As stored, as JSON, to the URL with the token filled in.
    for (got, want) in delivered.iter().zip(&wanted) {
        assert_eq!(got, want);
    }
    assert!(hits.iter().all(|h| h.content_type == "application/json"));
    assert_eq!(
        hits[0].path,
        format!("/hook/{TOKEN}?key={TOKEN}&chat=village")
    );

    assert_eq!(store.webhook_backlog().unwrap(), 0);
    // MQTT's outbox is untouched: nothing was marked sent for it.
    assert_eq!(store.backlog().unwrap(), 30);

    // One warning for the outage, one line when it is over; the URL shown without the token.
    let port = format!("127.0.0.1:{}", server.port);
    let warned = log_lines(&port)
        .into_iter()
        .filter(|l| l.contains("cannot deliver"))
        .collect::<Vec<_>>();
    assert_eq!(warned.len(), 1, "{warned:#?}");
    assert!(
        warned[0].contains("HTTP 503: busy, come back later"),
        "{warned:?}"
    );
    assert!(warned[0].contains(&wanted[0].id), "{warned:?}");
    assert!(
        warned[0].contains(&format!(
            "http://{port}/hook/${{{TOKEN_VAR}}}?key=***&chat=***"
        )),
        "{warned:?}"
    );
    let recovered = log_lines(&port)
        .into_iter()
        .filter(|l| l.contains("answers again"))
        .count();
    assert_eq!(recovered, 1);
    assert_no_token_in_log();
    eprintln!(
        "webhook outage: 30 events stored, {} alerts delivered in order after 3 x 503, {} requests, \
         0 duplicates, {:.2} s",
        delivered.len(),
        hits.len(),
        took.as_secs_f64()
    );
}

#[test]
fn ronda_counts_an_endpoint_outage_once_in_metrics() {
    setup(); // sets the token's variable, which `ronda run` inherits
    // two 503s (a try and its retry), then the endpoint takes alerts again
    let server = Server::start(|n, _| if n < 2 { 503 } else { 200 });
    let dir = tempfile::tempdir().unwrap();
    let http = common::free_port();
    let cfg = dir.path().join("ronda.toml");
    // a camera nobody serves: it goes offline after its offline time, and its camera_offline
    // (a warning) is the alert the webhook sends; no video needed
    let text = format!(
        "[site]\nid = \"rw9\"\n[mqtt]\nlisten = \"127.0.0.1:{mqtt}\"\n\
         [http]\nlisten = \"127.0.0.1:{http}\"\nmetrics_public = true\n\
         [store]\npath = \"{d}/ronda.db\"\nclips_dir = \"{d}/clips\"\n\
         [detector]\nmodel = \"int8\"\n[webhook]\nurl = \"{url}\"\n\
         [[cameras]]\nid = \"gate-1\"\nurl = \"rtsp://127.0.0.1:{dead}/cam01\"\n",
        mqtt = common::free_port(),
        dead = common::free_port(),
        d = dir.path().display(),
        url = server.url(),
    );
    std::fs::write(&cfg, text).unwrap();
    let (_run, _events) = common::run_printing_events(&cfg);
    let outages =
        || common::metrics(http).and_then(|m| common::series(&m, "ronda_webhook_outages_total"));
    assert!(
        wait_for(Duration::from_secs(180), || !server.delivered().is_empty()),
        "no alert delivered; the endpoint got {:?}",
        server.hits()
    );
    let hits = server.hits();
    assert!(hits[..2].iter().all(|h| h.status == 503), "{hits:?}");
    assert_eq!(
        hits[2].event().id,
        hits[0].event().id,
        "the same alert again"
    );
    assert_eq!(hits[2].event().kind, EventKind::CameraOffline);
    // counted when it began, once for both failed tries, and still 1 now that it is over
    assert_eq!(outages(), Some(1.0));
}

#[test]
fn kinds_and_min_severity_choose_what_goes_out() {
    setup();
    let server = Server::start(|_, _| 200);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("ronda.db")).unwrap());
    let opts = options(&format!(
        "url = \"{}\"\nmin_severity = \"info\"\nkinds = [\"intrusion\", \"camera_offline\"]",
        server.url()
    ));
    let sink = WebhookSink::start(opts, store.clone()).unwrap();
    let events = append_mix(&store, &sink, 12);
    let wanted: Vec<Event> = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Intrusion | EventKind::CameraOffline))
        .cloned()
        .collect();
    assert_eq!(wanted.len(), 4);
    assert!(wait_for(Duration::from_secs(10), || store
        .webhook_backlog()
        .unwrap()
        == 0));
    assert_eq!(sink.shutdown(Duration::from_secs(1)).unwrap(), 0);
    assert_eq!(ids(&server.delivered()), ids(&wanted));
    assert_eq!(server.hits().len(), 4);

    // min_severity = "alert" without kinds: the camera going offline (a warning) stays home.
    let server = Server::start(|_, _| 200);
    let opts = options(&format!(
        "url = \"{}\"\nmin_severity = \"alert\"",
        server.url()
    ));
    let sink = WebhookSink::start(opts, store.clone()).unwrap();
    let events = append_mix(&store, &sink, 6);
    assert!(wait_for(Duration::from_secs(10), || store
        .webhook_backlog()
        .unwrap()
        == 0));
    drop(sink);
    let alerts: Vec<Event> = events
        .into_iter()
        .filter(|e| e.severity == Severity::Alert)
        .collect();
    assert_eq!(ids(&server.delivered()), ids(&alerts));
    assert_eq!(server.hits().len(), 2);
}

#[test]
fn a_restart_resumes_from_the_cursor_and_old_events_are_never_sent() {
    setup();
    let server = Server::start(|_, _| 200);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ronda.db");
    let store = Arc::new(Store::open(&path).unwrap());
    // Stored before the webhook was configured: never sent to it.
    let old: Vec<Event> = (0..3)
        .map(|_| {
            let e = event(EventKind::Intrusion, Severity::Alert);
            store.append(&e).unwrap();
            e
        })
        .collect();
    let opts = options(&format!("url = \"{}\"", server.url()));

    // First run: two alerts delivered.
    let sink = WebhookSink::start(opts.clone(), store.clone()).unwrap();
    let first = append_mix(&store, &sink, 4); // intrusion, camera_offline (+2 info)
    assert!(wait_for(Duration::from_secs(10), || server
        .delivered()
        .len()
        == 2));
    assert_eq!(sink.shutdown(Duration::from_secs(1)).unwrap(), 0);

    // Second run: the endpoint is down; three alerts wait when ronda stops.
    server.set_plan(|_, _| 503);
    // after the first failure the next try is an hour away: a shutdown that waited for it
    // instead of its own 300 ms would hang past the deadline below
    let mut patient = opts.clone();
    patient.backoff_min = Duration::from_secs(3600);
    patient.backoff_max = Duration::from_secs(3600);
    let sink = WebhookSink::start(patient, store.clone()).unwrap();
    let second = append_mix(&store, &sink, 6); // no_mask last
    assert!(wait_for(Duration::from_secs(10), || sink.failing()));
    let t = Instant::now();
    // returns at all: a shutdown that waited for the retry would hang this test for an hour
    // (no bound on how long it took: that would be a bound on the machine's speed)
    assert_eq!(sink.shutdown(Duration::from_millis(300)).unwrap(), 3);
    let stop_took = t.elapsed();
    // the one failed try of this run, no retry: the next was an hour away when it stopped
    assert_eq!(
        server.hits().iter().filter(|h| h.status == 503).count(),
        1,
        "{:?}",
        server.hits()
    );
    drop(store);

    // Third run: a new Store on the same file, a new sink, the endpoint back.
    server.set_plan(|_, _| 200);
    let store = Arc::new(Store::open(&path).unwrap());
    let sink = WebhookSink::start(opts.clone(), store.clone()).unwrap();
    assert!(wait_for(Duration::from_secs(10), || server
        .delivered()
        .len()
        == 5));
    assert_eq!(sink.shutdown(Duration::from_secs(1)).unwrap(), 0);

    let want: Vec<Event> = first
        .iter()
        .chain(&second)
        .filter(|e| opts.wants(e))
        .cloned()
        .collect();
    assert_eq!(ids(&server.delivered()), ids(&want));
    let asked: Vec<String> = server.hits().iter().map(|h| h.event().id).collect();
    assert!(old.iter().all(|e| !asked.contains(&e.id)));
    assert_no_token_in_log();
    eprintln!(
        "webhook restart: 3 old events not sent, 2 + 3 alerts delivered once each across 3 runs, \
         shutdown during the outage took {} ms",
        stop_took.as_millis()
    );
}

#[test]
fn a_refusal_is_logged_once_and_the_next_alert_goes_out() {
    setup();
    let server = Server::start(|_, body| if body.contains("refuse-me") { 400 } else { 200 });
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("ronda.db")).unwrap());
    let sink = WebhookSink::start(
        options(&format!("url = \"{}\"", server.url())),
        store.clone(),
    )
    .unwrap();
    let mut refused = event(EventKind::Intrusion, Severity::Alert);
    refused.zone = Some("refuse-me".into());
    let rest = [
        event(EventKind::NoMask, Severity::Alert),
        event(EventKind::Crowding, Severity::Warning),
    ];
    for e in std::iter::once(&refused).chain(&rest) {
        store.append(e).unwrap();
        sink.notify();
    }
    assert!(wait_for(Duration::from_secs(10), || server
        .delivered()
        .len()
        == 2));
    assert_eq!(sink.shutdown(Duration::from_secs(1)).unwrap(), 0);
    let hits = server.hits();
    assert_eq!(hits.len(), 3, "the refused event is not retried");
    assert_eq!(hits[0].status, 400);
    assert_eq!(ids(&server.delivered()), ids(&rest));
    // It stays in the store (and MQTT's outbox).
    assert!(store.event(&refused.id).unwrap().unwrap().sent_at.is_none());

    let lines = log_lines(&refused.id)
        .into_iter()
        .filter(|l| l.contains("refused"))
        .collect::<Vec<_>>();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].contains(
            "with HTTP 400: {\"ok\":false,\"description\":\"Bad Request: chat not found\"}"
        ),
        "{lines:?}"
    );
    assert_no_token_in_log();
}

#[test]
fn an_answer_that_never_comes_is_retried_and_may_arrive_twice() {
    setup();
    // The first request is held without an answer until the client gives up.
    let server = Server::start(|n, _| if n == 0 { 0 } else { 200 });
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("ronda.db")).unwrap());
    let mut opts = options(&format!("url = \"{}\"\ntimeout_seconds = 1", server.url()));
    opts.timeout = Duration::from_millis(300);
    let sink = WebhookSink::start(opts, store.clone()).unwrap();
    let e = event(EventKind::CurfewEntry, Severity::Alert);
    store.append(&e).unwrap();
    sink.notify();
    assert!(wait_for(Duration::from_secs(10), || server
        .delivered()
        .len()
        == 1));
    assert_eq!(sink.shutdown(Duration::from_secs(1)).unwrap(), 0);
    // The only duplicate at-least-once allows: the answer to the first POST was lost.
    let hits = server.hits();
    assert_eq!(hits.len(), 2);
    assert!(hits.iter().all(|h| h.event().id == e.id));
    let port = format!("127.0.0.1:{}", server.port);
    let warned: Vec<String> = log_lines(&port)
        .into_iter()
        .filter(|l| l.contains("cannot deliver"))
        .collect();
    assert_eq!(warned.len(), 1, "{warned:#?}");
    assert!(warned[0].contains("no answer within 0.3 s"), "{warned:?}");
    assert_no_token_in_log();
}

#[test]
fn a_dead_endpoint_keeps_the_alerts_and_names_no_token() {
    setup();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port(); // nobody listens there any more
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("ronda.db")).unwrap());
    let url = format!("http://127.0.0.1:{port}/bot${{{TOKEN_VAR}}}/sendMessage");
    let sink = WebhookSink::start(options(&format!("url = \"{url}\"")), store.clone()).unwrap();
    let events = append_mix(&store, &sink, 6);
    assert!(wait_for(Duration::from_secs(10), || sink.failing()));
    // a few retries (said at debug, under the first alert's id), the same alert each time
    assert!(
        wait_for(Duration::from_secs(30), || log_lines(&events[1].id)
            .iter()
            .filter(|l| l.contains("still failing"))
            .count()
            >= 3),
        "{:#?}",
        log_lines(&events[1].id)
    );
    assert_eq!(sink.backlog().unwrap(), 3);
    // one outage, however many retries
    assert_eq!(sink.outages(), 1);
    assert_eq!(sink.shutdown(Duration::from_millis(200)).unwrap(), 3);
    // The info event before the first alert was skipped (done); the rest waits.
    assert_eq!(store.webhook_backlog().unwrap(), 5);

    let lines = log_lines(&format!("127.0.0.1:{port}"));
    let warned: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("cannot deliver"))
        .collect();
    assert_eq!(warned.len(), 1, "{lines:#?}");
    assert!(warned[0].contains("refused"), "{warned:?}");
    assert!(warned[0].contains(&events[1].id), "{warned:?}");
    assert!(
        warned[0].contains(&format!(
            "http://127.0.0.1:{port}/bot${{{TOKEN_VAR}}}/sendMessage"
        )),
        "{warned:?}"
    );
    assert_no_token_in_log();
}

#[test]
fn a_user_and_password_in_the_url_go_as_basic_authentication() {
    setup();
    let server = Server::start(|_, _| 200);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("ronda.db")).unwrap());
    let url = format!("http://wa:${{{TOKEN_VAR}}}@127.0.0.1:{}/send", server.port);
    let sink = WebhookSink::start(options(&format!("url = \"{url}\"")), store.clone()).unwrap();
    let e = event(EventKind::Intrusion, Severity::Alert);
    store.append(&e).unwrap();
    sink.notify();
    assert!(wait_for(Duration::from_secs(10), || server
        .delivered()
        .len()
        == 1));
    drop(sink);
    let hit = &server.hits()[0];
    assert_eq!(hit.path, "/send");
    // base64("wa:" + TOKEN)
    assert_eq!(hit.authorization, "Basic d2E6dG9rLTVlMWYwYzlhN2IzZDQyZTg=");
    assert_no_token_in_log();
    assert!(!log_text().contains("d2E6dG9rLTVlMWYwYzlhN2IzZDQyZTg"));
}

#[test]
fn a_missing_token_variable_stops_the_start() {
    setup();
    let text = "[site]\nid = \"rw9\"\n[webhook]\nurl = \"https://gw.example/${RONDA_TEST_WEBHOOK_NOT_SET}\"\n";
    let settings = Settings::parse(text, Path::new("test.toml")).unwrap();
    let err = WebhookOptions::from_settings(&settings)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[webhook] url") && err.contains("RONDA_TEST_WEBHOOK_NOT_SET"),
        "{err}"
    );
    // No [webhook] section: no webhook.
    let none = Settings::parse("[site]\nid = \"rw9\"\n", Path::new("test.toml")).unwrap();
    assert!(WebhookOptions::from_settings(&none).unwrap().is_none());
}
