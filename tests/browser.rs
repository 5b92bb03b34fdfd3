//! The guard page in headless Chromium, driven through chromedriver's WebDriver HTTP API (plain
//! ureq, no WebDriver crate): log in as a guard, see a new alert appear in the feed within 2 s,
//! acknowledge it, switch to English. Skipped (with a message) where chromedriver is missing.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ronda::events::{EventKind, Severity};
use serde_json::{Value, json};

mod fake_village;

use fake_village::{GUARD_PW, start};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// The W3C WebDriver element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Driver {
    child: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Driver {
    fn start() -> Option<Driver> {
        if !std::path::Path::new(CHROMEDRIVER).exists() || !std::path::Path::new(CHROMIUM).exists()
        {
            eprintln!("SKIP: {CHROMEDRIVER} or {CHROMIUM} is not installed");
            return None;
        }
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .new_agent();
        let base = format!("http://127.0.0.1:{port}");
        let profile = tempfile::tempdir().unwrap();
        let mut d = Driver {
            child,
            base,
            session: String::new(),
            agent,
            _profile: profile,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = d
                .agent
                .get(&format!("{}/status", d.base))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=412,915", "--autoplay-policy=no-user-gesture-required",
                    format!("--user-data-dir={}", d._profile.path().display()),
                ],
            },
        }}});
        let v = d.cmd("POST", "/session", Some(caps));
        d.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        Some(d)
    }

    /// A WebDriver command; its `value`.
    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = if path == "/session" {
            format!("{}{path}", self.base)
        } else {
            format!("{}/session/{}{path}", self.base, self.session)
        };
        let r = match method {
            "GET" => self.agent.get(&url).call(),
            "DELETE" => self.agent.delete(&url).call(),
            _ => self
                .agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(body.unwrap_or(json!({})).to_string()),
        };
        let mut r = r.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = r.status().as_u16();
        let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        assert!(status < 300, "{method} {path}: {status} {v}");
        v["value"].clone()
    }

    fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    fn url(&self) -> String {
        self.cmd("GET", "/url", None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    fn find(&self, css: &str) -> String {
        let v = self.cmd(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("{css}: {v}"))
            .to_string()
    }

    fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css);
        self.cmd(
            "POST",
            &format!("/element/{el}/value"),
            Some(json!({ "text": text })),
        );
    }

    fn click(&self, css: &str) {
        let el = self.find(css);
        self.cmd("POST", &format!("/element/{el}/click"), Some(json!({})));
    }

    fn exec(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Poll `script` (returning a bool) until true, at most `within`; how long it took.
    fn wait_for(&self, script: &str, args: Value, within: Duration) -> Option<Duration> {
        let t0 = Instant::now();
        while t0.elapsed() < within {
            if self.exec(script, args.clone()) == Value::Bool(true) {
                return Some(t0.elapsed());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        None
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self
                .agent
                .delete(&format!("{}/session/{}", self.base, self.session))
                .call();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn live_feeds(base: &str) -> u64 {
    let text = ureq::get(&format!("{base}/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("ronda_http_live_feeds "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_guard_sees_a_new_alert_within_two_seconds_and_acknowledges_it() {
    let Some(d) = Driver::start() else { return };
    let s = start();

    d.goto(&s.url("/guard"));
    assert!(
        d.url().ends_with("/login"),
        "not sent to the login: {}",
        d.url()
    );
    d.type_into("#name", "pos1");
    d.type_into("#password", GUARD_PW);
    d.click("#submit");
    let deadline = Instant::now() + Duration::from_secs(15);
    while !d.url().ends_with("/guard") {
        assert!(Instant::now() < deadline, "still at {}", d.url());
        std::thread::sleep(Duration::from_millis(50));
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while live_feeds(&s.base) == 0 {
        assert!(
            Instant::now() < deadline,
            "the page did not open the live feed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // the page loaded its counts and cameras (and the script runs under the CSP)
    d.wait_for(
        "return document.getElementById('total-in').textContent === '12' \
         && document.querySelectorAll('#cameras li').length === 2;",
        json!([]),
        Duration::from_secs(10),
    )
    .expect("counts and cameras shown");

    let e = s.fake.raise(EventKind::NoMask, Severity::Alert);
    let took = d
        .wait_for(
            "return document.querySelector('#feed li[data-id=\"' + arguments[0] + '\"]') !== null;",
            json!([e.id]),
            Duration::from_secs(2),
        )
        .expect("the alert did not appear in the feed within 2 s");
    println!("alert shown after {took:?}");
    let text = d.exec(
        "return document.querySelector('#feed li[data-id=\"' + arguments[0] + '\"]').textContent;",
        json!([e.id]),
    );
    let text = text.as_str().unwrap();
    assert!(
        text.contains("Tanpa masker") && text.contains("Siaga"),
        "{text}"
    );
    assert!(text.contains("Gapura utama"), "camera name: {text}");

    d.click(&format!("#feed li[data-id=\"{}\"] button.ack", e.id));
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.fake.acks.lock().unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "no acknowledgement reached the village"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(s.fake.acks.lock().unwrap()[0].user, "pos1");
    d.wait_for(
        "const li = document.querySelector('#feed li[data-id=\"' + arguments[0] + '\"]'); \
         return li.classList.contains('acked') && li.textContent.includes('pos1') \
         && !li.querySelector('button.ack');",
        json!([e.id]),
        Duration::from_secs(5),
    )
    .expect("the item shows who acknowledged it");

    screenshot(&d, "guard-id.png");
    d.click("#lang");
    let english = d.wait_for(
        "return document.querySelector('#feed li[data-id=\"' + arguments[0] + '\"]').textContent.includes('No mask');",
        json!([e.id]),
        Duration::from_secs(2),
    );
    assert!(
        english.is_some(),
        "the English switch did not translate the feed"
    );
    screenshot(&d, "guard-en.png");
}

/// With `RONDA_SCREENSHOTS=DIR`, save what the browser shows (to look at the page by eye).
fn screenshot(d: &Driver, name: &str) {
    let Some(dir) = std::env::var_os("RONDA_SCREENSHOTS") else {
        return;
    };
    let png = d.cmd("GET", "/screenshot", None);
    let bytes = ronda::api::auth::base64_decode(png.as_str().unwrap()).unwrap();
    std::fs::write(std::path::Path::new(&dir).join(name), bytes).unwrap();
}
