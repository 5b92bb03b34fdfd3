//! The gate book (issue 15) on the real pipeline: `ronda sim` serves vtest.avi (people walking
//! across a campus, 480x360) to `ronda run`, both real processes, with the embedded MQTT broker.
//!
//! - A guard in headless Chromium sees each crossing of the gate line in the log with the
//!   person's picture, records one as a guest, finds her by name; at night (the gate book's
//!   night window covers now) the entries nobody recorded raise `unrecorded_entry` on MQTT with
//!   ids only; "Di dalam" counts the guest until her exit is linked.
//! - The daily report is made by the running pipeline at its time on a clock set through
//!   `RONDA_GATEBOOK_NOW`: page, CSV and the webhook's message (a local HTTP receiver); a second
//!   run on the same day does not send it again.
//! - Every new route answers each role as the role matrix says (guard, admin, reviewer,
//!   anonymous).
//! - Retention deletes old entries, their pictures and records, and keeps the recent ones.
//!
//! With `RONDA_WRITE_DOCS=1` the browser test writes the README's pictures
//! (`tests/pictures/gatebook-*.png`). Pipelines run one at a time (a static lock).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use browser_driver::{Driver, log_in_at, wait};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use common::broker::{Subscriber, wait_for};
use common::web::{Web, light_hash};
use common::{Proc, free_port, ronda, sample, start_sim_with};
use ronda::gate::report::{period_ending, period_of};
use ronda::rules::Direction;
use ronda::store::{EntryFilter, NewGateEntry, PersonKind, RecordFields, Store, StoredReport};
use serde_json::{Value, json};

use crate::support as common;
use crate::support::browser_driver;

const GUARD_PW: &str = "jaga-malam-9";
const ADMIN_PW: &str = "kepala-rw-sembilan";
const REVIEWER_PW: &str = "tinjau-rekaman";
const JAKARTA: chrono_tz::Tz = chrono_tz::Asia::Jakarta;

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

// ------------------------------------------------------------------------------ the village

/// A village of one gate camera on the sim, everything on free ports, in `dir` (as
/// `tests/ronda/web_live.rs` sets it up).
struct Village {
    dir: tempfile::TempDir,
    cfg: PathBuf,
    sim_port: u16,
    mqtt: u16,
    http: u16,
}

impl Village {
    /// `gatebook` is the `[gatebook]` table's keys, `extra` more tables (a `[webhook]`).
    fn new(gatebook: &str, extra: &str) -> Village {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("ronda.toml");
        let v = Village {
            sim_port: free_port(),
            mqtt: free_port(),
            http: free_port(),
            cfg,
            dir,
        };
        let text = format!(
            r#"[site]
id = "rw9"
name = "Kepatihan RW 9"
timezone = "Asia/Jakarta"
[mqtt]
listen = "127.0.0.1:{mqtt}"
[http]
listen = "127.0.0.1:{http}"
[[http.users]]
name = "pos1"
role = "guard"
password_hash = "{guard}"
[[http.users]]
name = "pak-rw"
role = "admin"
password_hash = "{admin}"
[[http.users]]
name = "tinjau"
role = "reviewer"
password_hash = "{reviewer}"
[store]
path = "{store}/ronda.db"
clips_dir = "{store}/clips"
[detector]
model = "int8"
[alerts]
cooldown_seconds = 5
[clips]
pre_seconds = 1
post_seconds = 2
[gatebook]
{gatebook}
{extra}
[[cameras]]
id = "gate-1"
name = "Gapura utama"
url = "rtsp://127.0.0.1:{sim}/cam01"
role = "gate"
analysis_fps = 5
mask_check = false
size = [480, 360]
  [[cameras.lines]]
  name = "gapura"
  points = [[240, 40], [240, 320]]
"#,
            mqtt = v.mqtt,
            http = v.http,
            sim = v.sim_port,
            guard = light_hash(GUARD_PW),
            admin = light_hash(ADMIN_PW),
            reviewer = light_hash(REVIEWER_PW),
            store = v.dir.path().display(),
        );
        std::fs::write(&v.cfg, text).unwrap();
        v
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }

    fn web(&self, name: &str, password: &str) -> Web {
        let mut w = Web::new(&self.base());
        w.login(name, password);
        w
    }

    fn sim(&self) -> Proc {
        start_sim_with(
            self.sim_port,
            &sample("vtest.avi"),
            &["--cameras", "1", "--height", "360"],
        )
    }

    fn store_path(&self) -> PathBuf {
        self.dir.path().join("ronda.db")
    }

    fn clips(&self) -> PathBuf {
        self.dir.path().join("clips")
    }

    /// `ronda run` (with more environment), once its web UI answers.
    fn run_with(&self, env: &[(&str, String)]) -> Proc {
        let mut c = ronda();
        c.args(["run", "--config"])
            .arg(&self.cfg)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            c.env(k, v);
        }
        let run = Proc(c.spawn().unwrap());
        Web::new(&self.base()).wait_up(Duration::from_secs(90));
        run
    }
}

/// SIGTERM and wait for a clean exit.
fn stop(mut run: Proc) {
    unsafe {
        libc::kill(run.0.id() as i32, libc::SIGTERM);
    }
    let t0 = Instant::now();
    loop {
        if let Some(status) = run.0.try_wait().unwrap() {
            assert!(status.success(), "ronda run after SIGTERM: {status}");
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "ronda run did not stop within 60 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A daily window "HH:MM-HH:MM" from `from` to `to` minutes after now, in Jakarta time.
fn window(from: i64, to: i64) -> String {
    let now = Utc::now().with_timezone(&JAKARTA);
    let at = |m: i64| {
        (now + chrono::Duration::minutes(m))
            .format("%H:%M")
            .to_string()
    };
    format!("{}-{}", at(from), at(to))
}

/// With `RONDA_WRITE_DOCS=1`, what the browser shows into `tests/pictures/<name>` (the README's
/// pictures); with `RONDA_SCREENSHOTS=DIR` into DIR as the other browser tests do.
fn picture(d: &Driver, name: &str) {
    browser_driver::screenshot(d, name);
    if std::env::var_os("RONDA_WRITE_DOCS").is_none() {
        return;
    }
    let png = d.cmd("GET", "/screenshot", None);
    let bytes = ronda::api::auth::base64_decode(png.as_str().unwrap()).unwrap();
    let out = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/pictures")
        .join(name);
    std::fs::write(&out, bytes).unwrap();
    println!("wrote {}", out.display());
}

/// Click a button of the live log in one step (found and clicked in the page): the log reloads
/// at every crossing, so an element found first could be gone when the click comes.
fn click_in_log(d: &Driver, css: &str) {
    let done = d.exec(
        "const b = document.querySelector(arguments[0]); if (b === null) return false; \
         b.scrollIntoView({block: 'center'}); b.click(); return true;",
        json!([css]),
    );
    assert_eq!(done, Value::Bool(true), "no {css} in the log");
}

// ------------------------------------------------------------------------------ the browser

#[test]
fn a_guard_records_a_guest_from_the_live_gate_log_and_night_entries_left_unrecorded_raise_alerts() {
    let _one = one_at_a_time();
    // it is night now (the gate book's night window covers this minute); one minute to record
    let v = Village::new(
        &format!(
            "record_within_minutes = 1\nnight = \"{}\"\n",
            window(-60, 180)
        ),
        "",
    );
    let _sim = v.sim();
    let run = v.run_with(&[]);
    let sub = Subscriber::new(v.mqtt, "ronda/rw9/#");
    let guard = v.web("pos1", GUARD_PW);
    let d = Driver::start();

    // the guard page links to the gate book
    log_in_at(&d, &format!("{}/guard", v.base()), "pos1", GUARD_PW);
    wait(
        &d,
        "the guard page shows its link to the gate book",
        "const a = document.getElementById('to-gatebook'); return a !== null && !a.hidden;",
        json!([]),
        15,
    );
    d.click("#to-gatebook");

    // a person crossing the gate line appears in the log with the picture of the crossing
    wait(
        &d,
        "an entry (in) with its picture in the gate log",
        "const img = document.querySelector('#log li.dir-in.open img.crop'); \
         return img !== null && img.complete && img.naturalWidth > 0;",
        json!([]),
        120,
    );
    let entry_id = d
        .exec(
            "return document.querySelector('#log li.dir-in.open img.crop').closest('li').dataset.id;",
            json!([]),
        )
        .as_str()
        .unwrap()
        .to_string();
    let entry = guard.get(&format!("/api/gate/entries/{entry_id}")).json();
    println!("the entry: {entry}");
    assert_eq!(entry["direction"], "in", "{entry}");
    assert_eq!(entry["line"], "gapura");
    assert_eq!(entry["night"], true, "{entry}");
    let crop = guard.get(entry["crop"].as_str().unwrap());
    assert_eq!(crop.status, 200);
    assert_eq!(crop.header("content-type").as_deref(), Some("image/jpeg"));
    let pic = image::load_from_memory(&crop.body).expect("a JPEG of the person");
    assert!(
        pic.width() < 480 && pic.height() <= 360,
        "the person, not the whole frame"
    );
    picture(&d, "gatebook-guard.png");

    // the guard records her as a guest
    click_in_log(
        &d,
        &format!("#log li[data-id=\"{entry_id}\"] button.record"),
    );
    wait(
        &d,
        "the form opens",
        "return !document.getElementById('form-wrap').hidden;",
        json!([]),
        5,
    );
    d.click("#f-kind-guest");
    d.type_into("#f-name", "Siti Aminah");
    d.type_into("#f-origin", "Malang");
    d.type_into("#f-visiting", "Pak Budi, RT 03");
    d.type_into("#f-purpose", "Arisan");
    d.type_into("#f-phone", "0812 3456 7890");
    picture(&d, "gatebook-form.png");
    d.click("#f-save");
    wait(
        &d,
        "the entry shows its record",
        "const li = document.querySelector('#log li[data-id=\"' + arguments[0] + '\"]'); \
         return document.getElementById('form-wrap').hidden && li !== null \
         && li.textContent.includes('Siti Aminah');",
        json!([entry_id]),
        15,
    );

    // found by name, the phone number masked in the list
    let found = guard.get("/api/gate/records?q=aminah").json();
    let list = found.as_array().unwrap();
    assert_eq!(list.len(), 1, "{found}");
    let rec = &list[0];
    assert_eq!(rec["kind"], "guest");
    assert_eq!(rec["entry_id"], entry_id.as_str());
    assert_eq!(rec["phone"], "0812•••••890", "masked in lists: {rec}");
    assert_eq!(rec["created_by"], "pos1");
    let rec_id = rec["id"].as_i64().unwrap();
    let whole = guard.get(&format!("/api/gate/records/{rec_id}")).json();
    assert_eq!(whole["phone"], "0812 3456 7890");
    assert_eq!(whole["changes"][0]["action"], "created", "{whole}");
    d.click("#tab-book");
    d.type_into("#q-name", "siti");
    d.click("#q-go");
    wait(
        &d,
        "the guest book finds her by name",
        "const li = document.querySelector('#book li[data-id=\"' + arguments[0] + '\"]'); \
         return li !== null && li.textContent.includes('Siti Aminah') \
         && document.querySelectorAll('#book li').length === 1;",
        json!([rec_id]),
        10,
    );

    // "Di dalam": the guest, on the gate book and on the guard page
    wait(
        &d,
        "Di dalam counts the guest",
        "return document.getElementById('inside-now').textContent === '1';",
        json!([]),
        10,
    );
    let inside = guard.get("/api/gate/inside").json();
    assert_eq!(
        (inside["inside"].as_u64(), inside["guests"].as_u64()),
        (Some(1), Some(1))
    );

    // at night, the entries nobody recorded within a minute raise unrecorded_entry on MQTT,
    // with ids only; hers never does
    let deadline = Duration::from_secs(180);
    assert!(
        wait_for(deadline, || sub
            .events()
            .iter()
            .any(|e| e.kind == ronda::events::EventKind::UnrecordedEntry)),
        "no unrecorded_entry on MQTT within {deadline:?}"
    );
    let raw: Vec<Value> = sub
        .on("ronda/rw9/events")
        .iter()
        .map(|m| serde_json::from_str::<Value>(&m.payload).unwrap())
        .filter(|e| e["type"] == "unrecorded_entry")
        .collect();
    for e in &raw {
        println!("on MQTT: {e}");
        assert_eq!(e["severity"], "alert");
        assert_eq!(
            (&e["line"], &e["direction"]),
            (&json!("gapura"), &json!("in"))
        );
        assert!(
            e["snapshot"].is_null() && e["clip"].is_null() && e["box"].is_null(),
            "{e}"
        );
        let text = e.to_string();
        assert!(!text.contains("Siti") && !text.contains("0812"), "{text}");
        let of = guard.get(&format!(
            "/api/gate/entries?alert={}",
            e["id"].as_str().unwrap()
        ));
        let items = of.json()["items"].as_array().unwrap().clone();
        assert_eq!(items.len(), 1, "{}", of.text());
        assert_ne!(
            items[0]["id"],
            entry_id.as_str(),
            "the recorded entry raised an alert"
        );
        assert!(items[0]["record"].is_null());
    }
    let recorded = guard.get(&format!("/api/gate/entries/{entry_id}")).json();
    assert!(recorded["alert_id"].is_null(), "{recorded}");
    // the guard's feed has it too, with the way to record the person
    let feed = guard.get("/api/events?min_severity=alert&limit=200").json();
    assert!(
        feed.as_array()
            .unwrap()
            .iter()
            .any(|i| i["event"]["type"] == "unrecorded_entry"),
        "not in the guard feed"
    );

    // her exit is linked: she is no longer inside
    let entered = rec["entered"].as_str().unwrap().to_string();
    d.click("#tab-log");
    wait(
        &d,
        "an exit after her entry in the log",
        "return [...document.querySelectorAll('#log li.dir-out.open')].some((li) => li.dataset.id > arguments[0]);",
        json!([entry_id]),
        120,
    );
    let exit_id = d
        .exec(
            "return [...document.querySelectorAll('#log li.dir-out.open')].find((li) => li.dataset.id > arguments[0]).dataset.id;",
            json!([entry_id]),
        )
        .as_str()
        .unwrap()
        .to_string();
    click_in_log(
        &d,
        &format!("#log li[data-id=\"{exit_id}\"] button.exit-link"),
    );
    wait(
        &d,
        "the picker lists her",
        "return document.querySelector('#exit-picker button[data-record=\"' + arguments[0] + '\"]') !== null;",
        json!([rec_id.to_string()]),
        10,
    );
    d.click(&format!("#exit-picker button[data-record=\"{rec_id}\"]"));
    wait(
        &d,
        "Di dalam goes back to 0 once her exit is linked",
        "return document.getElementById('exit-wrap').hidden \
         && document.getElementById('inside-now').textContent === '0';",
        json!([]),
        15,
    );
    let left = guard.get(&format!("/api/gate/records/{rec_id}")).json();
    assert_eq!(left["status"], "left", "{left}");
    assert_eq!(left["exit_id"], exit_id.as_str());
    assert!(left["left"].as_str().unwrap() > entered.as_str());
    let trail: Vec<&str> = left["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert_eq!(trail, ["created", "exit"]);

    // the reviewer sees incidents, not the guest book
    let reviewer = v.web("tinjau", REVIEWER_PW);
    assert_eq!(reviewer.get("/api/gate/records").status, 403);
    let incidents = reviewer.get("/api/incidents?type=unrecorded_entry").json();
    assert!(
        !incidents["items"].as_array().unwrap().is_empty(),
        "the unrecorded entry is an incident for reviewers: {incidents}"
    );
    stop(run);
}

// -------------------------------------------------------------------------- the daily report

/// A webhook receiver: every POST body, answered 200.
struct Receiver {
    port: u16,
    bodies: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (b, s) = (bodies.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let b = b.clone();
                        std::thread::spawn(move || serve(stream, &b));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Receiver { port, bodies, stop }
    }

    /// The daily reports it got.
    fn reports(&self) -> Vec<Value> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .filter_map(|b| serde_json::from_str::<Value>(b).ok())
            .filter(|v| v["type"] == "daily_report")
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(stream: std::net::TcpStream, bodies: &Mutex<Vec<String>>) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
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
        if let Some((k, v)) = h.split_once(':')
            && k.trim().eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    bodies
        .lock()
        .unwrap()
        .push(String::from_utf8_lossy(&body).into_owned());
    let mut stream = reader.into_inner();
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\
         Connection: close\r\n\r\n{{\"ok\":true}}"
    );
}

#[test]
fn the_running_pipeline_makes_the_daily_report_at_its_time_once() {
    let _one = one_at_a_time();
    let hook = Receiver::start();
    let v = Village::new(
        "report_at = \"06:00\"\n",
        &format!(
            "[webhook]\nurl = \"http://127.0.0.1:{}/hook\"\nmin_severity = \"alert\"\n",
            hook.port
        ),
    );
    let six = NaiveTime::from_hms_opt(6, 0, 0).unwrap();

    // a day at the gate (run A, the real clock): people cross, a guest is recorded
    {
        let _sim = v.sim();
        let run = v.run_with(&[]);
        let guard = v.web("pos1", GUARD_PW);
        let entries = || -> Vec<Value> {
            guard.get("/api/gate/entries?limit=500").json()["items"]
                .as_array()
                .unwrap()
                .clone()
        };
        assert!(
            wait_for(Duration::from_secs(120), || {
                let e = entries();
                e.iter().filter(|e| e["direction"] == "in").count() >= 2
                    && e.iter().any(|e| e["direction"] == "out")
            }),
            "no crossings in 120 s: {:?}",
            entries()
        );
        let first_in = entries()
            .into_iter()
            .find(|e| e["direction"] == "in")
            .unwrap();
        let made = guard.send(
            "POST",
            "/api/gate/records",
            Some(
                json!({"entry_id": first_in["id"], "kind": "newcomer", "name": "Dewi Lestari",
                        "origin": "Kediri", "visiting": "kos Bu Sri", "purpose": "kerja",
                        "stay": "6 bulan", "rt": "04", "phone": "085712345678"}),
            ),
        );
        assert_eq!(made.status, 201, "{}", made.text());
        stop(run);
    }
    // what the report must say: the store as run A left it
    let now = Utc::now();
    let (from, to) = {
        let (_, last) = period_ending(now, six, JAKARTA);
        (last, last + chrono::Duration::days(1))
    };
    assert!(from <= now && now < to);
    let day = from.with_timezone(&JAKARTA).format("%Y-%m-%d").to_string();
    let (n_in, n_out) = {
        let s = Store::open(&v.store_path()).unwrap();
        let all = s
            .gate_entries(&EntryFilter {
                from: Some(from),
                to: Some(to),
                limit: 1000,
                ..Default::default()
            })
            .unwrap();
        let n_in = all.iter().filter(|e| e.direction == Direction::In).count();
        (n_in, all.len() - n_in)
    };
    println!("day {day}: {n_in} in, {n_out} out");

    // run B, the camera off, on a clock 8 s before the report time: the report is made at it
    let clock = (to - chrono::Duration::seconds(8))
        .with_timezone(&JAKARTA)
        .to_rfc3339();
    let run = v.run_with(&[("RONDA_GATEBOOK_NOW", clock.clone())]);
    let guard = v.web("pos1", GUARD_PW);
    let ours = |hook: &Receiver| -> Vec<Value> {
        hook.reports()
            .into_iter()
            .filter(|r| r["day"] == day.as_str())
            .collect()
    };
    assert!(
        wait_for(Duration::from_secs(90), || !ours(&hook).is_empty()),
        "no daily report on the webhook within 90 s; got {:?}",
        hook.bodies.lock().unwrap()
    );
    let msg = ours(&hook)[0].clone();
    println!("the webhook's message:\n{}", msg["text"].as_str().unwrap());
    assert_eq!(msg["site"], "rw9");
    let text = msg["text"].as_str().unwrap();
    assert!(
        text.contains("Laporan harian gerbang · Kepatihan RW 9"),
        "{text}"
    );
    assert!(
        text.contains(&format!("Masuk {n_in}, keluar {n_out}")),
        "{text}"
    );
    assert!(
        text.contains("Tercatat: 0 tamu, 1 pendatang, 0 warga"),
        "{text}"
    );
    assert!(
        !text.contains("Dewi") && !text.contains("0857"),
        "counts only: {text}"
    );

    // the page's report, stored once at its time
    let page = guard.get(&format!("/api/gate/reports/{day}")).json();
    let r = &page["report"];
    assert_eq!(page["draft"], false, "{page}");
    assert_eq!(r["total_in"].as_u64(), Some(n_in as u64), "{r}");
    assert_eq!(r["total_out"].as_u64(), Some(n_out as u64), "{r}");
    assert_eq!(r["hours"].as_array().unwrap().len(), 24);
    assert_eq!(r["recorded"]["people"][0]["name"], "Dewi Lestari");
    let made_at = DateTime::parse_from_rfc3339(r["made_at"].as_str().unwrap()).unwrap();
    assert!(made_at >= to, "made at {made_at}, before its time {to}");
    let list = guard.get("/api/gate/reports").json();
    assert_eq!(list["reports"][0]["day"], day.as_str(), "{list}");
    assert!(list["reports"][0]["sent_at"].is_string(), "{list}");
    // the CSV
    let csv = guard.get(&format!("/api/gate/reports/{day}/report.csv"));
    assert_eq!(csv.status, 200);
    assert!(
        csv.header("content-type")
            .is_some_and(|c| c.starts_with("text/csv"))
    );
    let csv = csv.text();
    assert!(csv.contains(&format!("total,,{n_in},{n_out},,")), "{csv}");
    assert!(
        csv.contains("person,newcomer,,,,Dewi Lestari: Kediri; kos Bu Sri; kerja; 04;"),
        "{csv}"
    );
    // the printable page, as the guard sees it
    {
        let d = Driver::start();
        log_in_at(&d, &format!("{}/guard", v.base()), "pos1", GUARD_PW);
        d.goto(&format!("{}/gatebook#report={day}", v.base()));
        wait(
            &d,
            "the report page shows the day's figures",
            "const r = document.getElementById('report'); \
             return r.textContent.includes('Dewi Lestari') && r.querySelectorAll('table').length >= 2;",
            json!([]),
            20,
        );
        d.exec(
            "document.getElementById('pane-report').scrollIntoView();",
            json!([]),
        );
        picture(&d, "gatebook-report.png");
    }
    stop(run);

    // run C, the same day again: nothing is sent twice
    let run = v.run_with(&[("RONDA_GATEBOOK_NOW", clock)]);
    // sessions end with the process: log in again
    let guard = v.web("pos1", GUARD_PW);
    let next = to + chrono::Duration::days(1);
    assert!(
        wait_for(Duration::from_secs(60), || {
            let l = guard.get("/api/gate/reports").json();
            l["last"] == day.as_str()
                && l["next"]
                    .as_str()
                    .and_then(|n| DateTime::parse_from_rfc3339(n).ok())
                    .is_some_and(|n| n == next)
        }),
        "the keeper did not pass the report time: {}",
        guard.get("/api/gate/reports").json()
    );
    assert_eq!(ours(&hook).len(), 1, "sent twice: {:?}", ours(&hook));
    stop(run);
}

// ------------------------------------------------------------------------------------ roles

#[test]
fn every_gate_book_route_answers_each_role_as_the_matrix_says() {
    use crate::support::fake_village::{ADMIN_PW, Fake, GUARD_PW, REVIEWER_PW, start_fake};
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("ronda.db")).unwrap());
    let clips = dir.path().join("clips");
    let fake = Fake::new(64);
    fake.set_store(store.clone());
    let s = start_fake(|c| c.clips_dir = clips.clone(), fake);
    let now = Utc::now();
    // per role: an entry in, an exit out (with a picture) and a record
    let make = |tag: &str| -> (String, String, i64) {
        let ms = now.timestamp_millis();
        let (i, o) = (format!("{ms}1{tag}"), format!("{ms}2{tag}"));
        for (id, d) in [(&i, Direction::In), (&o, Direction::Out)] {
            let rel = PathBuf::from(format!("gatebook.crops/x/{id}.jpg"));
            std::fs::create_dir_all(clips.join("gatebook.crops/x")).unwrap();
            image::RgbImage::new(8, 16)
                .save_with_format(clips.join(&rel), image::ImageFormat::Jpeg)
                .unwrap();
            store
                .log_gate_entry(&NewGateEntry {
                    id: id.clone(),
                    camera: "gate-1".into(),
                    line: "gate".into(),
                    direction: d,
                    track_id: Some(3),
                    time: now.with_timezone(&JAKARTA).to_rfc3339(),
                    at: now,
                    mask: None,
                    crop: Some(rel),
                    night: false,
                })
                .unwrap();
        }
        let r = store
            .create_gate_record(
                &RecordFields {
                    kind: Some(PersonKind::Guest),
                    name: format!("Tamu {tag}"),
                    ..Default::default()
                },
                None,
                "pak-rw",
                now,
            )
            .unwrap();
        (i, o, r.id)
    };
    let day = now.with_timezone(&JAKARTA).format("%Y-%m-%d").to_string();
    // (method, path, body) for one role's objects
    let routes = |(i, o, r): &(String, String, i64)| -> Vec<(&'static str, String, Option<Value>)> {
        vec![
            ("GET", "/gatebook".into(), None),
            ("GET", "/api/gate/entries".into(), None),
            ("GET", format!("/api/gate/entries/{i}"), None),
            ("GET", format!("/api/gate/entries/{i}/crop.jpg"), None),
            ("GET", "/api/gate/records?q=tamu".into(), None),
            (
                "POST",
                "/api/gate/records".into(),
                Some(json!({"entry_id": i, "kind": "guest", "name": "Baru"})),
            ),
            ("GET", format!("/api/gate/records/{r}"), None),
            (
                "PUT",
                format!("/api/gate/records/{r}"),
                Some(json!({"kind": "guest", "name": "Tamu diubah"})),
            ),
            (
                "POST",
                format!("/api/gate/records/{r}/exit"),
                Some(json!({"entry_id": o})),
            ),
            ("GET", "/api/gate/inside".into(), None),
            ("GET", "/api/gate/reports".into(), None),
            ("GET", format!("/api/gate/reports/{day}"), None),
            ("GET", format!("/api/gate/reports/{day}/report.csv"), None),
            ("GET", "/api/gate/export/records.csv".into(), None),
            ("GET", "/api/gate/export/entries.csv".into(), None),
            (
                "PUT",
                "/api/gate/occupancy".into(),
                Some(json!({"start": 40})),
            ),
        ]
    };
    let admin_only = |path: &str| path == "/api/gate/occupancy";
    for (who, pw, tag) in [
        (Some("pos1"), GUARD_PW, "g"),
        (Some("pak-rw"), ADMIN_PW, "a"),
        (Some("tinjau"), REVIEWER_PW, "r"),
        (None, "", "x"),
    ] {
        let mut web = Web::new(&s.base);
        if let Some(name) = who {
            web.login(name, pw);
        }
        let objects = make(tag);
        for (method, path, body) in routes(&objects) {
            let page = !path.starts_with("/api/");
            let a = web.send(method, &path, body);
            let want: &[u16] = match who {
                None if page => &[303, 307],
                None => &[401],
                Some("tinjau") => &[403],
                Some("pos1") if admin_only(&path) => &[403],
                _ if method == "POST" && path == "/api/gate/records" => &[201],
                _ => &[200],
            };
            assert!(
                want.contains(&a.status),
                "{who:?} {method} {path}: {} {}",
                a.status,
                a.text()
            );
            if a.status == 403 && !page {
                assert!(!a.error().is_empty());
            }
            if who.is_none() && page {
                assert_eq!(a.header("location").as_deref(), Some("/login"));
            }
        }
    }
    // what the guard did is in the records' audit trails; lists mask phone numbers
    let mut admin = Web::new(&s.base);
    admin.login("pak-rw", ADMIN_PW);
    let r = admin
        .send(
            "POST",
            "/api/gate/records",
            Some(json!({"kind": "guest", "name": "Ani", "phone": "081234567890"})),
        )
        .json();
    let listed = admin.get("/api/gate/records?q=ani").json();
    assert_eq!(listed[0]["phone"], "0812•••••890");
    assert_eq!(r["phone"], "081234567890");
    let csv = admin.get("/api/gate/export/records.csv?q=ani").text();
    assert!(
        csv.contains("081234567890"),
        "admins export whole numbers: {csv}"
    );
    let mut guard = Web::new(&s.base);
    guard.login("pos1", GUARD_PW);
    let csv = guard.get("/api/gate/export/records.csv?q=ani").text();
    assert!(
        csv.contains("0812•••••890") && !csv.contains("081234567890"),
        "guards export masked numbers: {csv}"
    );
    // a form with problems answers by field
    let bad = guard.send(
        "POST",
        "/api/gate/records",
        Some(json!({"kind": "newcomer", "name": " ", "phone": "telepon"})),
    );
    assert_eq!(bad.status, 400);
    let fields = bad.json()["fields"].clone();
    for k in ["name", "phone", "rt", "stay"] {
        assert!(fields[k].is_string(), "{k}: {fields}");
    }
}

// -------------------------------------------------------------------------------- retention

#[test]
fn retention_deletes_old_entries_records_and_pictures_with_the_incident_retention() {
    let _one = one_at_a_time();
    let v = Village::new("retention_days = 30\n", "");
    let now = Utc::now();
    let old = now - chrono::Duration::days(40);
    let recent = now - chrono::Duration::days(2);
    let crop = |id: &str| PathBuf::from(format!("gatebook.crops/d/{id}.jpg"));
    {
        let s = Store::open(&v.store_path()).unwrap();
        std::fs::create_dir_all(v.clips().join("gatebook.crops/d")).unwrap();
        for (id, at) in [("1000000000001old", old), ("1000000000002new", recent)] {
            std::fs::write(v.clips().join(crop(id)), b"jpeg").unwrap();
            s.log_gate_entry(&NewGateEntry {
                id: id.into(),
                camera: "gate-1".into(),
                line: "gapura".into(),
                direction: Direction::In,
                track_id: None,
                time: at.with_timezone(&JAKARTA).to_rfc3339(),
                at,
                mask: None,
                crop: Some(crop(id)),
                night: false,
            })
            .unwrap();
            s.create_gate_record(
                &RecordFields {
                    kind: Some(PersonKind::Guest),
                    name: format!("Tamu {id}"),
                    ..Default::default()
                },
                Some(id),
                "pos1",
                at,
            )
            .unwrap();
        }
        let (from, to) = period_of(
            NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
            NaiveTime::MIN,
            JAKARTA,
        );
        s.save_gate_report(&StoredReport {
            day: "2020-01-01".into(),
            from,
            to,
            made_at: to,
            json: "{}".into(),
            text: "old".into(),
            sent_at: None,
            send_note: None,
        })
        .unwrap();
    }
    // retention runs when the pipeline starts (and every 10 minutes)
    let run = v.run_with(&[]);
    let gone = v.clips().join(crop("1000000000001old"));
    assert!(
        wait_for(Duration::from_secs(30), || !gone.exists()),
        "the old picture is still there"
    );
    let guard = v.web("pos1", GUARD_PW);
    assert_eq!(guard.get("/api/gate/entries/1000000000001old").status, 404);
    assert_eq!(guard.get("/api/gate/entries/1000000000002new").status, 200);
    let names: Vec<String> = guard
        .get("/api/gate/records")
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["Tamu 1000000000002new"]);
    assert!(v.clips().join(crop("1000000000002new")).exists());
    assert_eq!(
        guard.get("/api/gate/reports").json()["reports"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    stop(run);
}
