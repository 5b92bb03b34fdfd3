//! Headless Chromium (Debian's chromium + chromedriver, installed by scripts/setup) driven through
//! chromedriver's WebDriver HTTP API with plain ureq: shared by the browser tests. A missing
//! browser fails the test with what to install; it is never skipped.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// The W3C WebDriver element reference key.
pub const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Driver {
    child: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
    _profile: tempfile::TempDir,
}

impl Driver {
    pub fn start() -> Driver {
        if !std::path::Path::new(CHROMEDRIVER).exists() || !std::path::Path::new(CHROMIUM).exists()
        {
            panic!(
                "{CHROMEDRIVER} or {CHROMIUM} is not installed: run `bash scripts/setup` (installs Debian's chromium and chromium-driver)"
            );
        }
        let port = super::free_port();
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
        d
    }

    /// A WebDriver command; its `value`.
    pub fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
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

    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    pub fn url(&self) -> String {
        self.cmd("GET", "/url", None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub fn find(&self, css: &str) -> String {
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

    pub fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css);
        self.cmd(
            "POST",
            &format!("/element/{el}/value"),
            Some(json!({ "text": text })),
        );
    }

    pub fn click(&self, css: &str) {
        let el = self.find(css);
        self.cmd("POST", &format!("/element/{el}/click"), Some(json!({})));
    }

    pub fn exec(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Poll `script` (returning a bool) until true, at most `within`; how long it took.
    pub fn wait_for(&self, script: &str, args: Value, within: Duration) -> Option<Duration> {
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

/// With `RONDA_SCREENSHOTS=DIR`, save what the browser shows (to look at the page by eye).
pub fn screenshot(d: &Driver, name: &str) {
    let Some(dir) = std::env::var_os("RONDA_SCREENSHOTS") else {
        return;
    };
    let png = d.cmd("GET", "/screenshot", None);
    let bytes = ronda::api::auth::base64_decode(png.as_str().unwrap()).unwrap();
    std::fs::write(std::path::Path::new(&dir).join(name), bytes).unwrap();
}

/// Open `page` (a full URL) without a session: the browser must land on the login page; log in
/// as `name` and wait until the login page is left.
pub fn log_in_at(d: &Driver, page: &str, name: &str, password: &str) {
    d.goto(page);
    assert!(
        d.url().ends_with("/login"),
        "not sent to the login: {}",
        d.url()
    );
    d.type_into("#name", name);
    d.type_into("#password", password);
    d.click("#submit");
    let deadline = Instant::now() + Duration::from_secs(15);
    while d.url().ends_with("/login") {
        assert!(Instant::now() < deadline, "the login did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Scroll element `id` to the middle of the view and wait until the page stands still (the same
/// scroll position on two polls in a row): clicks computed after it land where it is.
pub fn scroll_to_middle(d: &Driver, id: &str) {
    d.exec(
        "document.getElementById(arguments[0]).scrollIntoView({block: 'center'}); \
         window.__scrolled = undefined;",
        json!([id]),
    );
    wait(
        d,
        &format!("#{id} did not come to rest in view"),
        "const y = window.scrollY; const rest = window.__scrolled === y; \
         window.__scrolled = y; return rest;",
        json!([]),
        5,
    );
}

/// Viewport position of picture pixel (x, y) on the admin page's overlay canvas.
pub fn on_canvas(d: &Driver, x: f64, y: f64) -> (i64, i64) {
    let r = d.exec(
        "const c = document.getElementById('overlay'); const r = c.getBoundingClientRect(); \
         return [r.left, r.top, r.width, r.height, c.width, c.height];",
        json!([]),
    );
    let n = |i: usize| r[i].as_f64().unwrap();
    (
        (n(0) + x * n(2) / n(4)).round() as i64,
        (n(1) + y * n(3) / n(5)).round() as i64,
    )
}

/// Perform pointer (mouse) actions.
pub fn pointer(d: &Driver, steps: Vec<Value>) {
    d.cmd(
        "POST",
        "/actions",
        Some(json!({"actions": [{
            "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
            "actions": steps,
        }]})),
    );
    d.cmd("DELETE", "/actions", None);
}

/// A click at a viewport position, as pointer actions.
pub fn click_at(p: (i64, i64)) -> Vec<Value> {
    vec![
        json!({"type": "pointerMove", "x": p.0, "y": p.1, "origin": "viewport", "duration": 50}),
        json!({"type": "pointerDown", "button": 0}),
        json!({"type": "pointerUp", "button": 0}),
    ]
}

/// Wait until `script` returns true; on timeout fail with `what` and the page's text.
pub fn wait(d: &Driver, what: &str, script: &str, args: Value, secs: u64) {
    if d.wait_for(script, args, Duration::from_secs(secs))
        .is_none()
    {
        screenshot(d, "failed.png");
        let text = d.exec("return document.body.innerText;", json!([]));
        panic!("{what}; the page shows:\n{}", text.as_str().unwrap_or(""));
    }
}
