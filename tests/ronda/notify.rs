//! The guards' phones (`[[notify]]`) end to end: the real `ronda run` on the sample clip served
//! by `ronda sim`, with its embedded MQTT broker, against small HTTP servers in this test that
//! speak each service's documented request format and answer as the service does:
//!
//! - a Telegram Bot API (`/bot<token>/getMe`, `sendPhoto` multipart, `getUpdates` long polling,
//!   `answerCallbackQuery`, `editMessageCaption`) whose first send is answered 429 with
//!   `parameters.retry_after`; a guard presses the acknowledge button on the phone;
//! - a second Telegram bot whose token is wrong (401 `Unauthorized` to everything);
//! - a WAHA server (`/api/sendImage` JSON with the base64 photo, `X-Api-Key`) that answers 503
//!   twice first;
//! - a Fonnte-style gateway (multipart `target`, `message`, `file`, `Authorization: TOKEN`);
//! - an ntfy server (`PUT /<topic>` with the JPEG, `Filename`, `Title`, `Priority`, `Tags`,
//!   `Authorization: Bearer`), and an ntfy address where nothing listens at all.
//!
//! Each server checks the request field by field (token placement included) and records it;
//! the test then checks that every working destination got the alerts in order and once, that
//! MQTT got every event although one destination never answered, that the dead destination's
//! alerts wait in the store, that the phone's acknowledgement was stored and published like the
//! guard page's, and that no token appears in the log.
//!
//! Figures are printed: `cargo test --test notify -- --nocapture`.

use crate::support as common;

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::broker::Subscriber;
use common::{Proc, free_port, ronda, sample, start_sim_with};
use serde_json::{Value, json};

const TG_TOKEN: &str = "5512345678:AAHtest-token-for-the-village-bot_x1";
const TG_BAD: &str = "5599999999:AAHthis-token-was-revoked-by-botfather";
const WAHA_KEY: &str = "waha-key-7f3c9e1d2b";
const FONNTE_TOKEN: &str = "fonnte+Tok3n!rw9";
const NTFY_TOKEN: &str = "tk_ntfy0123456789abcdefghijkl";
const SECRETS: [&str; 5] = [TG_TOKEN, TG_BAD, WAHA_KEY, FONNTE_TOKEN, NTFY_TOKEN];
const SITE: &str = "rw9";
const PUBLIC: &str = "https://ronda.kepatihan.example";

// ---------------------------------------------------------------------------------------------
// A small HTTP server: one thread per connection, one request per connection, what it got kept.

#[derive(Clone, Debug)]
struct Req {
    method: String,
    /// Path and query as sent.
    target: String,
    /// Names in lower case.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    fn query(&self, key: &str) -> Option<String> {
        let q = self.target.split_once('?')?.1;
        q.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == key).then(|| percent_decode(v))
        })
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The parts of a `multipart/form-data` body.
    fn parts(&self) -> Vec<Part> {
        let ct = self.header("content-type").unwrap_or("");
        let boundary = ct
            .split_once("boundary=")
            .map(|(_, b)| b.trim_matches('"').to_string())
            .unwrap_or_else(|| panic!("not multipart: {ct}"));
        let delim = format!("--{boundary}").into_bytes();
        let mut parts = Vec::new();
        let b = &self.body;
        let mut starts = Vec::new();
        let mut i = 0;
        while i + delim.len() <= b.len() {
            if b[i..].starts_with(&delim) {
                starts.push(i);
                i += delim.len();
            } else {
                i += 1;
            }
        }
        for w in starts.windows(2) {
            let chunk = &b[w[0] + delim.len() + 2..w[1] - 2]; // after CRLF, before CRLF--
            let head_end = chunk
                .windows(4)
                .position(|x| x == b"\r\n\r\n")
                .expect("part headers");
            let head = String::from_utf8_lossy(&chunk[..head_end]).into_owned();
            let data = chunk[head_end + 4..].to_vec();
            let attr = |name: &str| {
                head.split(';')
                    .map(str::trim)
                    .find_map(|a| a.strip_prefix(&format!("{name}=\"")))
                    .map(|v| v.split('"').next().unwrap_or("").to_string())
            };
            let content_type = head.lines().find_map(|l| {
                l.to_ascii_lowercase()
                    .starts_with("content-type:")
                    .then(|| l[13..].trim().to_string())
            });
            parts.push(Part {
                name: attr("name").unwrap_or_default(),
                filename: attr("filename"),
                content_type,
                data,
            });
        }
        assert!(
            b.ends_with(format!("--{boundary}--\r\n").as_bytes()),
            "the body ends with the closing boundary"
        );
        parts
    }
}

#[derive(Clone, Debug)]
struct Part {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    data: Vec<u8>,
}

fn part<'a>(parts: &'a [Part], name: &str) -> &'a Part {
    parts
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no part `{name}` in {:?}", names(parts)))
}

fn names(parts: &[Part]) -> Vec<&str> {
    parts.iter().map(|p| p.name.as_str()).collect()
}

fn text(p: &Part) -> String {
    String::from_utf8(p.data.clone()).unwrap()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 3 <= b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else if b[i] == b'+' {
            out.push(b' ');
            i += 1;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// How a server answers a request: status, content type, body.
type Responder = Box<dyn Fn(&Req) -> (u16, &'static str, String) + Send + Sync>;

struct Fake {
    port: u16,
    hits: Arc<Mutex<Vec<(Req, u16)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Fake {
    fn start(
        respond: impl Fn(&Req) -> (u16, &'static str, String) + Send + Sync + 'static,
    ) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let respond: Arc<Responder> = Arc::new(Box::new(respond));
        let thread = {
            let (hits, stop) = (hits.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let (hits, respond) = (hits.clone(), respond.clone());
                            std::thread::spawn(move || serve(stream, &hits, &respond));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        Fake {
            port,
            hits,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn hits(&self) -> Vec<(Req, u16)> {
        self.hits.lock().unwrap().clone()
    }

    /// The requests to paths ending in `suffix`, with what they were answered.
    fn to(&self, suffix: &str) -> Vec<(Req, u16)> {
        self.hits()
            .into_iter()
            .filter(|(r, _)| r.path().ends_with(suffix))
            .collect()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(stream: TcpStream, hits: &Mutex<Vec<(Req, u16)>>, respond: &Responder) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or("").to_string();
    let target = words.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    let mut length = 0;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let k = k.trim().to_ascii_lowercase();
            if k == "content-length" {
                length = v.trim().parse().unwrap_or(0);
            }
            headers.push((k, v.trim().to_string()));
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let req = Req {
        method,
        target,
        headers,
        body,
    };
    let (status, ct, answer) = respond(&req);
    hits.lock().unwrap().push((req, status));
    let mut stream = reader.into_inner();
    let extra = if status == 429 {
        "Retry-After: 1\r\n"
    } else {
        ""
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} Whatever\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n{extra}\
         Connection: close\r\n\r\n{answer}",
        answer.len()
    );
}

const JSON: &str = "application/json";

// ---------------------------------------------------------------------------------------------
// The services as documented

/// A Telegram Bot API for token `token`: the first send of all is answered 429 with
/// `retry_after`, `getUpdates` hands out the presses queued in `presses`.
fn telegram(token: &'static str, presses: Arc<Mutex<VecDeque<Value>>>) -> Fake {
    let sends = Arc::new(Mutex::new(0usize));
    Fake::start(move |r| {
        let ok = |result: Value| (200, JSON, json!({"ok": true, "result": result}).to_string());
        let Some(method) = r.path().strip_prefix(&format!("/bot{token}/")) else {
            // a path that is not this bot's
            return (
                404,
                JSON,
                r#"{"ok":false,"error_code":404,"description":"Not Found"}"#.into(),
            );
        };
        assert_eq!(r.method, "POST", "the Bot API is called with POST");
        match method {
            "getMe" => ok(
                json!({"id": 5512345678u64, "is_bot": true, "first_name": "Ronda", "username": "ronda_rw9_bot"}),
            ),
            "sendPhoto" | "sendMessage" => {
                let mut n = sends.lock().unwrap();
                *n += 1;
                if *n == 1 {
                    return (
                        429,
                        JSON,
                        r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 1","parameters":{"retry_after":1}}"#.into(),
                    );
                }
                ok(
                    json!({"message_id": 100 + *n, "date": 0, "chat": {"id": -1001, "type": "supergroup"}}),
                )
            }
            "getUpdates" => {
                let body = r.json();
                assert_eq!(body["allowed_updates"], json!(["callback_query"]), "{body}");
                assert!(
                    body["timeout"].as_u64().is_some_and(|t| t > 0),
                    "long polling: {body}"
                );
                // long polling: held until a press is queued, at most a moment here
                let t0 = Instant::now();
                loop {
                    let queued: Vec<Value> = presses.lock().unwrap().drain(..).collect();
                    if !queued.is_empty() || t0.elapsed() > Duration::from_millis(500) {
                        let offset = body["offset"].as_i64().unwrap_or(0);
                        let fresh: Vec<Value> = queued
                            .into_iter()
                            .filter(|u| u["update_id"].as_i64().unwrap() >= offset)
                            .collect();
                        return ok(json!(fresh));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            "answerCallbackQuery" | "editMessageCaption" | "editMessageText" => ok(json!(true)),
            other => panic!("unexpected Bot API method {other}"),
        }
    })
}

fn waha() -> Fake {
    let n = Arc::new(Mutex::new(0usize));
    Fake::start(move |r| {
        if r.header("x-api-key") != Some(WAHA_KEY) {
            return (
                401,
                JSON,
                r#"{"message":"Unauthorized","statusCode":401}"#.into(),
            );
        }
        let mut n = n.lock().unwrap();
        *n += 1;
        if *n <= 2 {
            return (503, "text/plain", "WhatsApp session is starting".into());
        }
        (
            201,
            JSON,
            r#"{"id":"true_120363000000000001@g.us_3EB0","ack":1}"#.into(),
        )
    })
}

fn fonnte() -> Fake {
    Fake::start(move |r| {
        if r.header("authorization") != Some(FONNTE_TOKEN) {
            return (
                200,
                JSON,
                r#"{"reason":"invalid token","status":false}"#.into(),
            );
        }
        (
            200,
            JSON,
            r#"{"detail":"success! message in queue","id":["80367170"],"process":"pending","status":true,"target":["6281234567890"]}"#.into(),
        )
    })
}

fn ntfy() -> Fake {
    Fake::start(move |r| {
        if r.header("authorization") != Some(&format!("Bearer {NTFY_TOKEN}")) {
            return (
                401,
                JSON,
                r#"{"code":40101,"http":401,"error":"unauthorized"}"#.into(),
            );
        }
        (
            200,
            JSON,
            r#"{"id":"sPs71M8A2T","event":"message","topic":"ronda-rw9"}"#.into(),
        )
    })
}

// ---------------------------------------------------------------------------------------------

fn wait_for(what: &str, bound: Duration, mut done: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !done() {
        assert!(
            t0.elapsed() < bound,
            "gave up waiting for {what} after {:.1?}",
            t0.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The event ids a destination took (2xx), per recipient, in order.
fn taken(
    hits: &[(Req, u16)],
    id_of: impl Fn(&Req) -> Option<(String, String)>,
) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for (r, status) in hits {
        if (200..300).contains(status)
            && let Some((to, id)) = id_of(r)
        {
            out.entry(to).or_default().push(id);
        }
    }
    out
}

/// The event id in a photo's file name `<id>.jpg`.
fn id_of_file(name: &str) -> String {
    name.strip_suffix(".jpg").unwrap_or(name).to_string()
}

#[test]
fn alerts_reach_every_phone_service_in_its_format_and_a_press_acknowledges() {
    let sim_port = free_port();
    let mqtt_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let presses = Arc::new(Mutex::new(VecDeque::new()));
    let tg = telegram(TG_TOKEN, presses.clone());
    let tg_bad = Fake::start(|_| {
        (
            401,
            JSON,
            r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#.into(),
        )
    });
    let wa = waha();
    let fo = fonnte();
    let nt = ntfy();
    let dead = free_port(); // nothing listens there
    let http = free_port();

    let cfg = dir.path().join("ronda.toml");
    let config = format!(
        r#"[site]
id = "{SITE}"
timezone = "Asia/Jakarta"
[mqtt]
listen = "127.0.0.1:{mqtt_port}"
[http]
listen = "127.0.0.1:{http}"
public_url = "{PUBLIC}/"
[store]
path = "{store}/ronda.db"
clips_dir = "{store}/clips"
[detector]
model = "int8"
[alerts]
cooldown_seconds = 4
[clips]
pre_seconds = 1
post_seconds = 2

[[cameras]]
id = "yard"
name = "Halaman"
url = "rtsp://127.0.0.1:{sim_port}/cam01"
role = "area"
analysis_fps = 5
size = [480, 360]
  [[cameras.zones]]
  name = "gudang"
  kind = "restricted"
  polygon = [[40, 40], [440, 40], [440, 320], [40, 320]]

[[notify]]
name = "grup-ronda"
kind = "telegram"
token = "${{RONDA_TEST_TG}}"
chat_ids = [-1001, "-1002"]
api_base = "{tg}"
rate_limit = 100

[[notify]]
name = "salah"
kind = "telegram"
token = "${{RONDA_TEST_TG_BAD}}"
chat_ids = ["-1003"]
api_base = "{tg_bad}"

[[notify]]
name = "wa-waha"
kind = "waha"
url = "{wa}"
chat_ids = ["120363000000000001@g.us"]
api_key = "${{RONDA_TEST_WAHA}}"
language = "en"
rate_limit = 100

[[notify]]
name = "wa-fonnte"
kind = "gateway-form"
url = "{fo}/send"
token = "${{RONDA_TEST_FONNTE}}"
target = "6281234567890"
rate_limit = 100

[[notify]]
name = "push"
kind = "ntfy"
url = "{nt}"
topic = "ronda-rw9"
token = "${{RONDA_TEST_NTFY}}"
rate_limit = 100

[[notify]]
name = "mati"
kind = "ntfy"
url = "http://127.0.0.1:{dead}"
topic = "ronda-rw9"
"#,
        store = dir.path().display(),
        tg = tg.url(),
        tg_bad = tg_bad.url(),
        wa = wa.url(),
        fo = fo.url(),
        nt = nt.url(),
    );
    std::fs::write(&cfg, &config).unwrap();

    let _sim = start_sim_with(
        sim_port,
        &sample("vtest.avi"),
        &["--cameras", "1", "--height", "360"],
    );
    let mut run = Proc(
        ronda()
            .args(["run", "--config"])
            .arg(&cfg)
            .env("NO_COLOR", "1")
            .env("RONDA_LOG", "debug")
            .env("RONDA_TEST_TG", TG_TOKEN)
            .env("RONDA_TEST_TG_BAD", TG_BAD)
            .env("RONDA_TEST_WAHA", WAHA_KEY)
            .env("RONDA_TEST_FONNTE", FONNTE_TOKEN)
            .env("RONDA_TEST_NTFY", NTFY_TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let events_rx = common::json_lines(run.0.stdout.take().unwrap());
    let log = Arc::new(Mutex::new(String::new()));
    let log_thread = {
        let (err, log) = (run.0.stderr.take().unwrap(), log.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if std::env::var_os("RONDA_TEST_LOG").is_some() {
                    eprintln!("{line}");
                }
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        })
    };
    wait_for("the embedded broker", Duration::from_secs(60), || {
        TcpStream::connect(("127.0.0.1", mqtt_port)).is_ok()
    });
    let sub = Subscriber::new(mqtt_port, &format!("ronda/{SITE}/#"));

    // every working destination has taken a few alerts (the first Telegram send waited out a
    // 429, WAHA two 503s)
    let t_photo = |h: &[(Req, u16)]| {
        taken(h, |r| {
            let p = r.parts();
            Some((
                text(part(&p, "chat_id")),
                id_of_file(part(&p, "photo").filename.as_deref()?),
            ))
        })
    };
    let mut pressed: Option<String> = None;
    wait_for("alerts on every phone", Duration::from_secs(240), || {
        let tg_taken = t_photo(&tg.to("/sendPhoto"));
        if pressed.is_none()
            && let Some(first) = tg_taken.get("-1001").and_then(|v| v.first())
        {
            // a guard presses the button under the first alert in the group; someone presses
            // a button of a chat ronda does not serve
            let caption = tg
                .to("/sendPhoto")
                .iter()
                .map(|(r, _)| r.parts())
                .find(|p| id_of_file(part(p, "photo").filename.as_deref().unwrap()) == *first)
                .map(|p| text(part(&p, "caption")))
                .unwrap();
            let mut q = presses.lock().unwrap();
            q.push_back(json!({"update_id": 9001, "callback_query": {
                "id": "cb-1",
                "from": {"id": 4242, "is_bot": false, "first_name": "Budi", "last_name": "Santoso", "username": "budi_rw9"},
                "message": {"message_id": 102, "date": 0, "chat": {"id": -1001, "type": "supergroup"}, "caption": caption, "photo": []},
                "chat_instance": "1",
                "data": format!("ack:{first}"),
            }}));
            q.push_back(json!({"update_id": 9002, "callback_query": {
                "id": "cb-2",
                "from": {"id": 77, "is_bot": false, "first_name": "Orang Lain"},
                "message": {"message_id": 5, "date": 0, "chat": {"id": -999, "type": "group"}, "text": "x"},
                "chat_instance": "2",
                "data": format!("ack:{first}"),
            }}));
            pressed = Some(first.clone());
        }
        let enough =
            |m: &HashMap<String, Vec<String>>, k: &str| m.get(k).is_some_and(|v| v.len() >= 3);
        enough(&tg_taken, "-1001")
            && enough(&tg_taken, "-1002")
            && wa
                .to("/api/sendImage")
                .iter()
                .filter(|(_, s)| *s == 201)
                .count()
                >= 3
            && fo.to("/send").len() >= 3
            && nt.hits().len() >= 3
            && !tg.to("/editMessageCaption").is_empty()
    });
    let acked = pressed.unwrap();

    // the acknowledgement from the phone went out on MQTT like the guard page's
    wait_for(
        "the acknowledgement on MQTT",
        Duration::from_secs(30),
        || !sub.on(&format!("ronda/{SITE}/acks")).is_empty(),
    );
    // /metrics counts each destination's outages once, however many retries each took:
    // Telegram's 429, WAHA's two 503s, the dead ntfy's refused connections; none where
    // nothing failed, and a refused token is not an outage
    let outages = |name: &str, service: &str| {
        common::metrics(http).and_then(|m| {
            common::series(
                &m,
                &format!(
                    "ronda_notify_outages_total{{destination=\"{name}\",service=\"{service}\"}}"
                ),
            )
        })
    };
    wait_for(
        "the dead destination's outage in /metrics",
        Duration::from_secs(30),
        || outages("mati", "ntfy") == Some(1.0),
    );
    assert_eq!(
        outages("wa-waha", "waha"),
        Some(1.0),
        "two 503s, one outage"
    );
    assert_eq!(outages("grup-ronda", "telegram"), Some(1.0), "one 429");
    assert_eq!(outages("wa-fonnte", "gateway-form"), Some(0.0));
    assert_eq!(outages("push", "ntfy"), Some(0.0));
    assert_eq!(outages("salah", "telegram"), Some(0.0), "a refused token");
    unsafe {
        libc::kill(run.0.id() as i32, libc::SIGTERM);
    }
    let status = run.0.wait().unwrap();
    let _ = log_thread.join();
    let mut stdout_events = Vec::new();
    while let Ok(e) = events_rx.recv_timeout(Duration::from_secs(5)) {
        stdout_events.push(e);
    }
    assert!(status.success(), "ronda run exits cleanly: {status:?}");
    let log = log.lock().unwrap().clone();

    // what ronda raised, and which of it the destinations want (warning and above)
    let wanted: Vec<String> = stdout_events
        .iter()
        .filter(|e| e["severity"] == "alert" || e["severity"] == "warning")
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    let alerts: Vec<&Value> = stdout_events
        .iter()
        .filter(|e| e["type"] == "intrusion")
        .collect();
    assert!(alerts.len() >= 3, "{} intrusions", alerts.len());

    // every destination that works: each event once per recipient, in the order raised, and
    // what it did not take yet waits in the store after its cursor
    let store = ronda::store::Store::open(&dir.path().join("ronda.db")).unwrap();
    let check_order = |name: &str, got: &[String]| {
        let mut seen = std::collections::HashSet::new();
        assert!(
            got.iter().all(|id| seen.insert(id)),
            "{name}: a duplicate in {got:?}"
        );
        assert_eq!(got, &wanted[..got.len()], "{name}: not the alerts in order");
        let cursor = store
            .sink_cursor_if_any(&format!("notify:{name}"))
            .unwrap()
            .unwrap();
        for id in &wanted[got.len()..] {
            let seq = store.event(id).unwrap().unwrap().seq;
            assert!(
                seq > cursor,
                "{name}: {id} was neither sent nor left waiting"
            );
        }
    };
    let tg_taken = t_photo(&tg.to("/sendPhoto"));
    check_order("grup-ronda", &tg_taken["-1001"]);
    check_order("grup-ronda", &tg_taken["-1002"]);
    let wa_taken = taken(&wa.to("/api/sendImage"), |r| {
        Some((
            "g".into(),
            id_of_file(r.json()["file"]["filename"].as_str()?),
        ))
    });
    check_order("wa-waha", &wa_taken["g"]);
    let fo_taken = taken(&fo.to("/send"), |r| {
        Some((
            "t".into(),
            id_of_file(part(&r.parts(), "file").filename.as_deref()?),
        ))
    });
    check_order("wa-fonnte", &fo_taken["t"]);
    let nt_taken = taken(&nt.hits(), |r| {
        Some(("n".into(), id_of_file(r.header("filename")?)))
    });
    check_order("push", &nt_taken["n"]);

    // --- Telegram, field by field: multipart photo, caption, the button; the token in the path
    let tg_hits = tg.hits();
    assert!(
        tg_hits
            .iter()
            .all(|(r, _)| r.path().starts_with(&format!("/bot{TG_TOKEN}/")))
    );
    let sends = tg.to("/sendPhoto");
    assert_eq!(sends[0].1, 429, "the first send was answered 429");
    let first = sends[0].0.parts();
    assert_eq!(
        names(&first),
        ["chat_id", "caption", "reply_markup", "photo"],
        "sendPhoto's fields"
    );
    let retried = sends[1].0.parts();
    assert_eq!(
        text(part(&retried, "chat_id")),
        text(part(&first, "chat_id"))
    );
    assert_eq!(
        part(&retried, "photo").filename,
        part(&first, "photo").filename,
        "the same alert again after retry_after"
    );
    for (r, _) in &sends {
        let p = r.parts();
        let photo = part(&p, "photo");
        assert_eq!(photo.content_type.as_deref(), Some("image/jpeg"));
        assert!(photo.data.starts_with(&[0xff, 0xd8]), "a JPEG");
        let id = id_of_file(photo.filename.as_deref().unwrap());
        let caption = text(part(&p, "caption"));
        assert!(
            caption.starts_with(
                "🚨 AWAS: Penyusup di area terlarang\nTempat: Halaman, zona \"gudang\"\nWaktu: "
            ),
            "{caption}"
        );
        assert!(caption.contains(" WIB"), "{caption}");
        assert!(
            caption.ends_with(&format!("\nLihat: {PUBLIC}/review#{id}")),
            "{caption}"
        );
        let markup: Value = serde_json::from_str(&text(part(&p, "reply_markup"))).unwrap();
        assert_eq!(
            markup["inline_keyboard"][0][0]["callback_data"],
            format!("ack:{id}")
        );
        assert_eq!(
            markup["inline_keyboard"][0][0]["text"],
            "✅ Tandai diterima"
        );
    }
    // the press: answered, the alert marked, the acknowledgement stored and published
    let answers = tg.to("/answerCallbackQuery");
    let a1 = answers
        .iter()
        .find(|(r, _)| r.json()["callback_query_id"] == "cb-1")
        .expect("cb-1 answered");
    assert_eq!(a1.0.json()["text"], "Tercatat: diterima. Terima kasih!");
    assert!(
        answers
            .iter()
            .any(|(r, _)| r.json()["callback_query_id"] == "cb-2"),
        "a foreign press is answered too"
    );
    let edit = tg.to("/editMessageCaption")[0].0.json();
    assert_eq!(
        (edit["chat_id"].as_i64(), edit["message_id"].as_i64()),
        (Some(-1001), Some(102))
    );
    let marked = edit["caption"].as_str().unwrap();
    assert!(marked.starts_with("🚨 AWAS: Penyusup"), "{edit}");
    assert!(
        marked.contains("\n✅ Diterima: Budi Santoso (Telegram), "),
        "{edit}"
    );
    assert!(edit.get("reply_markup").is_none(), "the button goes");
    let ack = store.ack_of(&acked).unwrap().expect("the press is stored");
    assert_eq!(
        ack.user, "Budi Santoso (Telegram)",
        "the press from the other chat did not count"
    );
    let published: Vec<Value> = sub
        .on(&format!("ronda/{SITE}/acks"))
        .iter()
        .map(|m| serde_json::from_str(&m.payload).unwrap())
        .collect();
    assert_eq!(published.len(), 1, "{published:?}");
    assert_eq!(published[0]["event_id"], acked.as_str());
    assert_eq!(published[0]["user"], "Budi Santoso (Telegram)");

    // --- WAHA: JSON with the photo in base64, the key in X-Api-Key; English as configured
    let wa_hits = wa.hits();
    assert_eq!((wa_hits[0].1, wa_hits[1].1), (503, 503));
    for (r, _) in &wa_hits {
        assert_eq!(r.path(), "/api/sendImage");
        assert_eq!(r.header("content-type"), Some(JSON));
        let b = r.json();
        assert_eq!(b["session"], "default");
        assert_eq!(b["chatId"], "120363000000000001@g.us");
        assert_eq!(b["file"]["mimetype"], "image/jpeg");
        assert!(
            b["file"]["data"].as_str().unwrap().starts_with("/9j/"),
            "base64 of a JPEG"
        );
        let caption = b["caption"].as_str().unwrap();
        assert!(
            caption.starts_with(
                "🚨 ALERT: Intruder in a restricted area\nWhere: Halaman, zone \"gudang\"\nWhen: "
            ),
            "{caption}"
        );
        assert!(
            caption.contains(&format!("\nOpen: {PUBLIC}/review#")),
            "{caption}"
        );
    }
    assert_eq!(
        wa_hits[0].0.json(),
        wa_hits[2].0.json(),
        "the same alert until WAHA took it"
    );

    // --- Fonnte style: form fields, the file, the token as it is in Authorization
    for (r, _) in fo.hits() {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path(), "/send");
        assert_eq!(r.header("authorization"), Some(FONNTE_TOKEN));
        let p = r.parts();
        assert_eq!(names(&p), ["target", "message", "file"]);
        assert_eq!(text(part(&p, "target")), "6281234567890");
        assert!(text(part(&p, "message")).starts_with("🚨 AWAS: Penyusup di area terlarang\n"));
        assert_eq!(part(&p, "file").content_type.as_deref(), Some("image/jpeg"));
        assert!(part(&p, "file").data.starts_with(&[0xff, 0xd8]));
    }

    // --- ntfy: PUT the JPEG with Filename; Title, Priority, Tags, Click; Bearer token
    for (r, _) in nt.hits() {
        assert_eq!(r.method, "PUT");
        assert_eq!(r.path(), "/ronda-rw9");
        assert!(
            r.body.starts_with(&[0xff, 0xd8]),
            "the attachment is the body"
        );
        let id = id_of_file(r.header("filename").unwrap());
        assert_eq!(r.header("title"), Some("Penyusup di area terlarang"));
        assert_eq!(r.header("priority"), Some("5"));
        assert_eq!(r.header("tags"), Some("rotating_light,intrusion"));
        assert_eq!(
            r.header("click"),
            Some(format!("{PUBLIC}/review#{id}").as_str())
        );
        let message = r.query("message").unwrap();
        assert!(
            message.starts_with("🚨 AWAS: Penyusup di area terlarang\nTempat: Halaman"),
            "{message}"
        );
    }

    // --- the dead destination held back nothing else: MQTT has every alert (the subscriber
    // came after the broker started, so events before it may be missing), and its alerts wait
    // in the store for it
    let on_mqtt: std::collections::HashSet<String> =
        sub.events().into_iter().map(|e| e.id).collect();
    for id in &wanted {
        assert!(on_mqtt.contains(id), "not on MQTT: {id}");
    }
    let mati = store.sink_cursor_if_any("notify:mati").unwrap().unwrap();
    for id in &wanted {
        assert!(
            store.event(id).unwrap().unwrap().seq > mati,
            "the dead destination's alert {id} is not waiting"
        );
    }
    let outage: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("notify `mati`: cannot deliver"))
        .collect();
    assert_eq!(outage.len(), 1, "one warning per outage: {outage:#?}");

    // --- the bad token: said once, by name and variable, never the value
    let bad: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("notify `salah`") && l.contains("refuses the token"))
        .collect();
    assert_eq!(bad.len(), 1, "{bad:#?}");
    assert!(bad[0].contains("${RONDA_TEST_TG_BAD}"), "{}", bad[0]);
    for s in SECRETS {
        assert!(!log.contains(s), "a secret is in the log: {s}");
    }
    assert!(
        tg_bad
            .hits()
            .iter()
            .all(|(r, _)| r.path().starts_with(&format!("/bot{TG_BAD}/")))
    );

    println!(
        "notify: {} events ({} intrusions); taken: telegram {}+{} (after one 429), waha {} (after two 503), \
         fonnte {}, ntfy {}; dead ntfy: {} waiting; 1 acknowledgement from Telegram on MQTT",
        stdout_events.len(),
        alerts.len(),
        tg_taken["-1001"].len(),
        tg_taken["-1002"].len(),
        wa_taken["g"].len(),
        fo_taken["t"].len(),
        nt_taken["n"].len(),
        wanted.len(),
    );
}
