//! An HTTP client for tests against a running `ronda run` (ureq, no redirects, errors as
//! answers): log in, call the API, read the live feed (server-sent events).

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// An answer: status, headers and body.
pub struct Reply {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.text()))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }

    /// The JSON error's message (it must have one).
    pub fn error(&self) -> String {
        let v = self.json();
        let msg = v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error: {v}"));
        assert!(!msg.is_empty());
        msg.to_string()
    }
}

/// A client that returns errors as answers and follows no redirects.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent()
}

/// The answer to a request (bodies up to 64 MiB: clips).
pub fn reply(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut r = r.unwrap();
    Reply {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .unwrap(),
    }
}

/// One web client with its session cookie.
pub struct Web {
    pub base: String,
    pub cookie: Option<String>,
    agent: ureq::Agent,
}

impl Web {
    pub fn new(base: &str) -> Web {
        Web {
            base: base.trim_end_matches('/').to_string(),
            cookie: None,
            agent: agent(),
        }
    }

    /// Wait until the server answers `/login` (the pipeline starts it after its cameras).
    pub fn wait_up(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self
                .agent
                .get(&format!("{}/login", self.base))
                .call()
                .is_ok_and(|r| r.status() == 200)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "the web UI at {} did not answer within {within:?}",
            self.base
        );
    }

    /// Log in as `name`; keeps the session cookie.
    pub fn login(&mut self, name: &str, password: &str) {
        let a = self.send(
            "POST",
            "/api/login",
            Some(serde_json::json!({"name": name, "password": password})),
        );
        assert_eq!(a.status, 200, "login as {name}: {}", a.text());
        let set = a.headers["set-cookie"].to_str().unwrap();
        self.cookie = Some(set.split(';').next().unwrap().to_string());
    }

    pub fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None)
    }

    /// A request with an optional JSON body.
    pub fn send(&self, method: &str, path: &str, json: Option<Value>) -> Reply {
        let url = format!("{}{path}", self.base);
        let cookie = self.cookie.clone().unwrap_or_default();
        match (method, json) {
            ("GET", _) => reply(self.agent.get(&url).header("Cookie", &cookie).call()),
            (m, Some(body)) => {
                let req = match m {
                    "POST" => self.agent.post(&url),
                    "PUT" => self.agent.put(&url),
                    other => panic!("method {other}"),
                };
                reply(
                    req.header("Cookie", &cookie)
                        .header("Content-Type", "application/json")
                        .send(body.to_string()),
                )
            }
            ("POST", None) => reply(self.agent.post(&url).header("Cookie", &cookie).send_empty()),
            ("DELETE", None) => reply(self.agent.delete(&url).header("Cookie", &cookie).call()),
            (other, None) => panic!("method {other}"),
        }
    }

    /// Open the live feed: `(SSE event name, data)` pairs arrive on the channel, keep-alives
    /// left out.
    pub fn feed(&self) -> mpsc::Receiver<(String, String)> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(None)
            .build()
            .new_agent();
        let r = agent
            .get(&format!("{}/api/events/stream", self.base))
            .header("Cookie", self.cookie.as_deref().unwrap_or(""))
            .call()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "the live feed did not open");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let reader = BufReader::new(r.into_body().into_reader());
            let (mut event, mut data) = (String::new(), String::new());
            for line in reader.lines() {
                let Ok(line) = line else { break };
                if line.is_empty() {
                    if !event.is_empty()
                        && tx
                            .send((std::mem::take(&mut event), std::mem::take(&mut data)))
                            .is_err()
                    {
                        break;
                    }
                    data.clear();
                } else if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
        });
        rx
    }
}

/// Cheap argon2id hashes (1 MiB, 1 pass) for test users: the login checks them with their own
/// parameters, so the tests do not spend their time hashing.
pub fn light_hash(pw: &str) -> String {
    use argon2::password_hash::PasswordHasher;
    let a = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(1024, 1, 1, None).unwrap(),
    );
    let h: argon2::PasswordHash = a.hash_password(pw.as_bytes()).unwrap();
    h.to_string()
}

/// Send `request` to `server` over TCP from the local address `from` (any of 127.0.0.0/8) and
/// read the answer: `answer_len` bytes, or everything until the server closes.
pub fn talk_from(
    server: std::net::SocketAddr,
    from: [u8; 4],
    request: &[u8],
    answer_len: Option<usize>,
) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind((std::net::Ipv4Addr::from(from), 0).into())
            .unwrap();
        let mut c = sock.connect(server).await.unwrap();
        c.write_all(request).await.unwrap();
        let mut answer = Vec::new();
        let read = async {
            match answer_len {
                Some(n) => {
                    answer.resize(n, 0);
                    c.read_exact(&mut answer).await.map(|_| ())
                }
                None => c.read_to_end(&mut answer).await.map(|_| ()),
            }
        };
        tokio::time::timeout(Duration::from_secs(60), read)
            .await
            .expect("an answer within a minute")
            .expect("an answer");
        answer
    })
}

/// POST /api/login from the local address `from` (any of 127.0.0.0/8); the status code.
pub fn login_from(base: &str, from: [u8; 4], name: &str, password: &str) -> u16 {
    let server: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let body = serde_json::json!({"name": name, "password": password}).to_string();
    let req = format!(
        "POST /api/login HTTP/1.1\r\nHost: {server}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let answer = talk_from(server, from, req.as_bytes(), None);
    String::from_utf8_lossy(&answer)
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}
