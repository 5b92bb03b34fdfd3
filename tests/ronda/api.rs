//! The HTTP API against the real axum server on a free port, with a fake village behind it:
//! login and cookies, the role matrix, the lockout, `/metrics`, the live feed, acknowledge,
//! malformed requests; and `ronda passwd`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ronda::events::{Event, EventKind, Severity};
use serde_json::Value;

use crate::support as common;
use crate::support::fake_village;

use common::web::{Reply, agent, reply};

use fake_village::{ADMIN_PW, GUARD_PW, REVIEWER_PW, Server, start, start_with};

// ---------------------------------------------------------------- HTTP

fn get(url: &str, cookie: Option<&str>) -> Reply {
    let mut req = agent().get(url);
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    reply(req.call())
}

fn post(url: &str, cookie: Option<&str>, content_type: &str, body: &str) -> Reply {
    let mut req = agent().post(url).header("Content-Type", content_type);
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    reply(req.send(body))
}

fn post_empty(url: &str, cookie: Option<&str>) -> Reply {
    let mut req = agent().post(url);
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    reply(req.send_empty())
}

fn try_login(s: &Server, name: &str, password: &str) -> Reply {
    let body = serde_json::json!({"name": name, "password": password}).to_string();
    post(&s.url("/api/login"), None, "application/json", &body)
}

/// Log in; the `Cookie` header value to send.
fn login(s: &Server, name: &str, password: &str) -> String {
    let r = try_login(s, name, password);
    assert_eq!(r.status, 200, "{}", r.text());
    let set = r.header("set-cookie").expect("a session cookie");
    set.split(';').next().unwrap().to_string()
}

// ---------------------------------------------------------------- login

#[test]
fn login_sets_a_strict_http_only_session_cookie_and_logout_ends_it() {
    let s = start();
    let r = try_login(&s, "pos1", GUARD_PW);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["role"], "guard");
    assert_eq!(v["home"], "/guard");
    let set = r.header("set-cookie").unwrap();
    println!("{set}");
    let parts: Vec<&str> = set.split(';').map(str::trim).collect();
    let (name, token) = parts[0].split_once('=').unwrap();
    assert_eq!(name, "ronda_session");
    assert_eq!(token.len(), 64, "256 random bits as hex");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(parts.contains(&flag), "{flag} missing in {set}");
    }
    let cookie = parts[0].to_string();
    let me = get(&s.url("/api/me"), Some(&cookie));
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["name"], "pos1");
    assert!(me.json()["expires_in_s"].as_u64().unwrap() > 43_000);

    // a second login is a second session
    let other = login(&s, "pos1", GUARD_PW);
    assert_ne!(other, cookie);

    let out = post_empty(&s.url("/api/logout"), Some(&cookie));
    assert_eq!(out.status, 200);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(get(&s.url("/api/me"), Some(&cookie)).status, 401);
    assert_eq!(get(&s.url("/api/me"), Some(&other)).status, 200);
}

#[test]
fn wrong_password_and_unknown_name_are_refused_alike() {
    let s = start();
    for (name, pw) in [
        ("pos1", "jaga-malam-8"),
        ("nobody", GUARD_PW),
        ("POS1", GUARD_PW),
    ] {
        let r = try_login(&s, name, pw);
        assert_eq!(r.status, 401, "{name}");
        assert_eq!(r.error(), "wrong name or password");
        assert!(r.header("set-cookie").is_none());
    }
}

#[test]
fn form_login_redirects_a_browser_and_answers_json_to_a_script() {
    let s = start();
    let form = format!("name=pos1&password={GUARD_PW}");
    let r = post(
        &s.url("/api/login"),
        None,
        "application/x-www-form-urlencoded",
        &form,
    );
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location").as_deref(), Some("/guard"));
    assert!(
        r.header("set-cookie")
            .unwrap()
            .starts_with("ronda_session=")
    );
    let wrong = post(
        &s.url("/api/login"),
        None,
        "application/x-www-form-urlencoded",
        "name=pos1&password=nope-nope",
    );
    assert_eq!(wrong.status, 303);
    assert_eq!(
        wrong.header("location").as_deref(),
        Some("/login?error=wrong")
    );
    let json = reply(
        agent()
            .post(&s.url("/api/login"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Accept", "application/json")
            .send(&form),
    );
    assert_eq!(json.status, 200);
    assert_eq!(json.json()["name"], "pos1");
}

// ---------------------------------------------------------------- who may do what

/// Every API route (method, path) except the login.
const API_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/me"),
    ("POST", "/api/logout"),
    ("GET", "/api/cameras"),
    ("GET", "/api/counts"),
    ("GET", "/api/events"),
    ("GET", "/api/events/stream"),
    ("POST", "/api/events/1795432178883000078cb/ack"),
    ("GET", "/api/admin/config"),
    ("GET", "/api/no-such-route"),
];

fn call(s: &Server, method: &str, path: &str, cookie: Option<&str>) -> Reply {
    match method {
        "GET" => get(&s.url(path), cookie),
        _ => post_empty(&s.url(path), cookie),
    }
}

#[test]
fn nothing_answers_without_login_but_the_login_page_and_metrics() {
    let s = start();
    for (method, path) in API_ROUTES {
        let r = call(&s, method, path, None);
        assert_eq!(r.status, 401, "{method} {path}: {}", r.text());
        assert!(r.error().contains("log in"), "{method} {path}");
        // a made-up session is no session
        let fake = format!("ronda_session={}", "ab".repeat(32));
        assert_eq!(call(&s, method, path, Some(&fake)).status, 401);
    }
    for page in ["/", "/guard", "/review", "/admin", "/no-such-page"] {
        let r = get(&s.url(page), None);
        assert_eq!(r.status, 303, "{page}");
        assert_eq!(r.header("location").as_deref(), Some("/login"), "{page}");
    }
    let login_page = get(&s.url("/login"), None);
    assert_eq!(login_page.status, 200);
    assert!(
        login_page
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(login_page.text().contains("id=\"password\""));
    let csp = login_page.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"));
    assert!(!login_page.text().contains("http://") && !login_page.text().contains("https://"));
    assert_eq!(get(&s.url("/metrics"), None).status, 200);
}

#[test]
fn roles_guard_reviewer_admin() {
    let s = start();
    let guard = login(&s, "pos1", GUARD_PW);
    let reviewer = login(&s, "tinjau", REVIEWER_PW);
    let admin = login(&s, "pak-rw", ADMIN_PW);
    let e = s.fake.raise(EventKind::Intrusion, Severity::Alert);
    let ack_path = format!("/api/events/{}/ack", e.id);
    let guard_routes = [
        ("GET", "/api/cameras"),
        ("GET", "/api/counts"),
        ("GET", "/api/events"),
        ("POST", ack_path.as_str()),
    ];
    for (method, path) in guard_routes {
        assert_eq!(call(&s, method, path, Some(&guard)).status, 200, "{path}");
        assert_eq!(call(&s, method, path, Some(&admin)).status, 200, "{path}");
        let r = call(&s, method, path, Some(&reviewer));
        assert_eq!(r.status, 403, "{path}");
        assert!(r.error().contains("reviewer"), "{}", r.text());
    }
    let r = get(&s.url("/api/admin/config"), Some(&guard));
    assert_eq!(r.status, 403);
    assert!(r.error().contains("guard"));
    assert_eq!(
        get(&s.url("/api/admin/config"), Some(&reviewer)).status,
        403
    );
    // pages
    assert_eq!(get(&s.url("/guard"), Some(&guard)).status, 200);
    assert_eq!(get(&s.url("/admin"), Some(&guard)).status, 403);
    assert_eq!(get(&s.url("/review"), Some(&guard)).status, 403);
    assert_eq!(get(&s.url("/review"), Some(&reviewer)).status, 200);
    assert_eq!(get(&s.url("/guard"), Some(&reviewer)).status, 403);
    for (cookie, home) in [
        (&guard, "/guard"),
        (&reviewer, "/review"),
        (&admin, "/guard"),
    ] {
        let r = get(&s.url("/"), Some(cookie));
        assert_eq!(r.header("location").as_deref(), Some(home));
        let r = get(&s.url("/login"), Some(cookie));
        assert_eq!(r.header("location").as_deref(), Some(home));
    }
    // everything for an admin, and nothing secret in it
    let r = get(&s.url("/api/admin/config"), Some(&admin));
    assert_eq!(r.status, 200);
    let v = r.json();
    println!("{v:#}");
    assert_eq!(
        v["cameras"][0]["url"],
        "rtsp://admin:***@192.168.1.21:554/stream2"
    );
    assert_eq!(v["http"]["users"][0]["name"], "pos1");
    assert!(!r.text().contains("argon2") && !r.text().contains("password_hash"));
    assert!(!r.text().contains("RONDA_CAM_PASS"));
    // a phone destination by name and kind; no token, not even its variable, no chat id
    assert_eq!(
        v["notify"],
        serde_json::json!([{"name": "grup-ronda", "kind": "telegram", "enabled": false, "min_severity": "warning"}])
    );
    assert!(!r.text().contains("RONDA_TEST_TG_TOKEN") && !r.text().contains("-1001234567890"));
}

#[test]
fn cameras_counts_and_recent_events_for_the_guard() {
    let s = start();
    let guard = login(&s, "pos1", GUARD_PW);
    let cams = get(&s.url("/api/cameras"), Some(&guard)).json();
    assert_eq!(cams.as_array().unwrap().len(), 2);
    assert_eq!(cams[0]["state"], "online");
    assert_eq!(cams[0]["delivered_fps"], 12.5);
    assert!(cams[0]["since"].as_str().unwrap().ends_with("+07:00"));
    assert_eq!(cams[1]["state"], "offline");
    assert!(cams[1]["since"].is_null());
    assert!(cams[0].get("url").is_none());
    let counts = get(&s.url("/api/counts"), Some(&guard)).json();
    assert_eq!(counts["gate"]["in"], 12);
    assert_eq!(counts["gate"]["occupancy"], 3);
    assert_eq!(counts["lines"][0]["line"], "gate");

    let crossing = s.fake.raise(EventKind::LineCrossing, Severity::Info);
    let alert = s.fake.raise(EventKind::CurfewEntry, Severity::Alert);
    let all = get(&s.url("/api/events?limit=10"), Some(&guard)).json();
    assert_eq!(all[0]["event"]["id"], alert.id.as_str());
    assert_eq!(all[1]["event"]["id"], crossing.id.as_str());
    assert!(all[0]["ack"].is_null());
    let alerts = get(&s.url("/api/events?min_severity=warning"), Some(&guard)).json();
    assert_eq!(alerts.as_array().unwrap().len(), 1);
}

#[test]
fn logging_in_again_and_again_ends_only_ones_own_oldest_sessions() {
    let s = start();
    let guard = login(&s, "pos1", GUARD_PW);
    let first = login(&s, "pak-rw", ADMIN_PW);
    let mut last = String::new();
    for _ in 0..40 {
        last = login(&s, "pak-rw", ADMIN_PW);
    }
    assert_eq!(
        get(&s.url("/api/me"), Some(&guard)).status,
        200,
        "the guard was logged out"
    );
    assert_eq!(get(&s.url("/api/me"), Some(&last)).status, 200);
    assert_eq!(get(&s.url("/api/me"), Some(&first)).status, 401);
    let m = get(&s.url("/metrics"), None).text();
    assert!(m.contains("ronda_http_sessions 33\n"), "{m}");
}

#[test]
fn behind_tls_the_session_cookie_is_secure() {
    let s = start_with(|c| c.secure_cookie = true, 64);
    let r = try_login(&s, "pos1", GUARD_PW);
    assert_eq!(r.status, 200, "{}", r.text());
    let set = r.header("set-cookie").unwrap();
    assert!(set.split(';').any(|p| p.trim() == "Secure"), "{set}");
    // the default (plain HTTP on the village network) is not
    let plain = try_login(&start(), "pos1", GUARD_PW);
    assert!(!plain.header("set-cookie").unwrap().contains("Secure"));
}

/// `GET path` with the `Host` header `host`: status line and body.
fn get_as_host(s: &Server, host: &str, path: &str) -> (u16, String) {
    use std::io::Read;
    let addr = s.base.trim_start_matches("http://");
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    c.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

#[test]
fn a_page_of_another_site_cannot_reach_the_server_under_its_own_name() {
    let s = start_with(|c| c.hosts = vec!["ronda.example.org".into()], 64);
    // DNS rebinding: evil.example resolved to this box
    let (status, answer) = get_as_host(&s, "evil.example:8080", "/metrics");
    assert_eq!(status, 421, "{answer}");
    assert!(answer.contains("add it to [http] hosts"), "{answer}");
    assert!(!answer.contains("ronda_camera_online"));
    for host in [
        "127.0.0.1:8080",
        "pos-ronda:8080",
        "ronda.local",
        "ronda.example.org",
    ] {
        let (status, answer) = get_as_host(&s, host, "/metrics");
        assert_eq!(status, 200, "{host}: {answer}");
    }
}

#[test]
fn a_body_over_the_limit_gets_the_apis_json_error() {
    use std::io::{Read, Write};
    let s = start();
    let admin = login(&s, "pak-rw", ADMIN_PW);
    let big = format!("{{\"lines\": [{{\"name\": \"{}\"}}]}}", "y".repeat(3 << 20));
    // By hand, asking before sending the body (`Expect: 100-continue`): the server refuses on
    // the length alone and closes, and a client still writing 3 MB then may get a broken pipe
    // (or a reset that loses the answer) instead of the answer, depending on timing.
    let addr: std::net::SocketAddr = s.base.trim_start_matches("http://").parse().unwrap();
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    write!(
        tcp,
        "PUT /api/admin/cameras/gate-1 HTTP/1.1\r\nHost: {addr}\r\nCookie: {admin}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\
         Connection: close\r\n\r\n",
        big.len()
    )
    .unwrap();
    let mut reader = tcp.try_clone().unwrap();
    let mut head = [0u8; 12];
    reader.read_exact(&mut head).unwrap();
    if head.starts_with(b"HTTP/1.1 100") {
        // the server reads before it judges: send the body from another thread while the
        // answer is read here
        std::thread::spawn(move || {
            let _ = tcp.write_all(big.as_bytes());
        });
    }
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
    let all = [head.as_slice(), &rest].concat();
    let text = String::from_utf8_lossy(&all).to_string();
    let answer = text
        .split("\r\n\r\n")
        .skip_while(|h| h.starts_with("HTTP/1.1 100"))
        .collect::<Vec<_>>()
        .join("\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 413"), "{text}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{answer}"
    );
    assert!(answer.contains("too large"), "{answer}");
}

// ---------------------------------------------------------------- wrong passwords

/// POST /api/login from the local address `from`; the status code.
fn login_from(s: &Server, from: [u8; 4], name: &str, password: &str) -> u16 {
    common::web::login_from(&s.base, from, name, password)
}

#[test]
fn a_stranger_failing_against_the_guards_name_does_not_lock_the_guard_out() {
    let s = start();
    let post = [127, 0, 0, 1];
    // the guard logged in at the post before (its address is known for `pos1`)
    assert_eq!(login_from(&s, post, "pos1", GUARD_PW), 200);
    // strangers on other addresses keep failing: each is braked after five, and every time
    // the guard tries in between, the guard gets in
    let mut refused = 0;
    for n in 2..=41u8 {
        let stranger = [127, 0, 1, n];
        for _ in 0..6 {
            match login_from(&s, stranger, "pos1", "salah-terus") {
                401 => {}
                429 => refused += 1,
                other => panic!("stranger got {other}"),
            }
        }
        assert_eq!(
            login_from(&s, post, "pos1", GUARD_PW),
            200,
            "the guard is locked out after stranger {n}"
        );
    }
    // each stranger's sixth try was refused without looking at the password
    assert!(
        refused >= 40,
        "the strangers were not braked: {refused} refusals"
    );
}

#[test]
fn five_wrong_passwords_lock_the_sixth_and_the_lock_grows() {
    let s = start();
    for i in 1..=5 {
        let r = try_login(&s, "pos1", "salah-terus");
        assert_eq!(r.status, 401, "attempt {i}");
    }
    let sixth = try_login(&s, "pos1", "salah-terus");
    assert_eq!(sixth.status, 429, "{}", sixth.text());
    let wait: u64 = sixth.header("retry-after").unwrap().parse().unwrap();
    assert!(wait >= 1);
    assert_eq!(sixth.json()["retry_after"], wait);
    assert!(sixth.error().contains("try again"));
    // even the right password waits; another name from the same address does not (an address
    // is braked only after 20 failures over all names)
    assert_eq!(try_login(&s, "pos1", GUARD_PW).status, 429);
    login(&s, "pak-rw", ADMIN_PW);

    // Waiting out the lockout is what is tested here, through a real server on the real clock
    // (the limiter's own unit tests in api::auth drive its clock instead, without sleeping).
    std::thread::sleep(Duration::from_secs(wait) + Duration::from_millis(100));
    assert_eq!(try_login(&s, "pos1", "salah-terus").status, 401);
    let eighth = try_login(&s, "pos1", "salah-terus");
    assert_eq!(eighth.status, 429);
    let longer: u64 = eighth.header("retry-after").unwrap().parse().unwrap();
    assert!(longer > wait, "{longer} after {wait}");

    std::thread::sleep(Duration::from_secs(longer) + Duration::from_millis(100));
    login(&s, "pos1", GUARD_PW);
    // a success starts again from zero
    assert_eq!(try_login(&s, "pos1", "salah-terus").status, 401);
    assert_eq!(try_login(&s, "pos1", "salah-terus").status, 401);
    let m = get(&s.url("/metrics"), None).text();
    assert!(m.contains("ronda_http_failed_logins_total 8\n"), "{m}");
}

// ---------------------------------------------------------------- /metrics

/// One sample: name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

/// Metric name and its TYPE.
type Types = Vec<(String, String)>;

/// A small parser of the Prometheus text format: `# HELP`, `# TYPE` and `name{labels} value`.
fn parse_prometheus(text: &str) -> Result<(Vec<Sample>, Types), String> {
    let mut samples = Vec::new();
    let mut types = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut it = rest.splitn(3, ' ');
            match (it.next(), it.next(), it.next()) {
                (Some("HELP"), Some(_), Some(_)) => {}
                (Some("TYPE"), Some(name), Some(kind)) => {
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(format!("line {n}: unknown type {kind}"));
                    }
                    types.push((name.to_string(), kind.to_string()));
                }
                _ => return Err(format!("line {n}: bad comment {line:?}")),
            }
            continue;
        }
        let name_end = line
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .ok_or(format!("line {n}: no value"))?;
        let name = &line[..name_end];
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(format!("line {n}: bad metric name"));
        }
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(r) = rest.strip_prefix('{') {
            let mut r = r;
            loop {
                if let Some(after) = r.strip_prefix('}') {
                    r = after;
                    break;
                }
                let eq = r.find('=').ok_or(format!("line {n}: label without ="))?;
                let key = &r[..eq];
                r = r[eq + 1..]
                    .strip_prefix('"')
                    .ok_or(format!("line {n}: label value not quoted"))?;
                let mut value = String::new();
                let mut chars = r.char_indices();
                let end = loop {
                    match chars.next() {
                        Some((i, '"')) => break i,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, c)) => value.push(c),
                            None => return Err(format!("line {n}: open escape")),
                        },
                        Some((_, c)) => value.push(c),
                        None => return Err(format!("line {n}: open label value")),
                    }
                };
                labels.push((key.to_string(), value));
                r = &r[end + 1..];
                r = r.strip_prefix(',').unwrap_or(r);
            }
            rest = r;
        }
        let value = rest
            .strip_prefix(' ')
            .ok_or(format!("line {n}: no space before the value"))?;
        let value: f64 = match value {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .map_err(|_| format!("line {n}: bad value {v:?}"))?,
        };
        if !types.iter().any(|(t, _)| t == name) {
            return Err(format!("line {n}: {name} has no TYPE line before it"));
        }
        samples.push((name.to_string(), labels, value));
    }
    Ok((samples, types))
}

#[test]
fn metrics_parse_as_prometheus_text_with_one_series_per_camera() {
    let s = start();
    let r = get(&s.url("/metrics"), None);
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    println!("{}", r.text());
    let (samples, types) = parse_prometheus(&r.text()).unwrap();
    for name in [
        "ronda_camera_delivered_fps",
        "ronda_camera_analysed_fps",
        "ronda_camera_frames_dropped_total",
        "ronda_camera_reconnects_total",
        "ronda_camera_online",
        "ronda_inference_ms",
    ] {
        let cams: Vec<&str> = samples
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, l, _)| {
                assert_eq!(l.len(), 1);
                assert_eq!(l[0].0, "camera");
                l[0].1.as_str()
            })
            .collect();
        assert_eq!(cams, ["gate-1", "pos-ronda"], "{name}");
    }
    let value = |name: &str, cam: Option<&str>| {
        samples
            .iter()
            .find(|(n, l, _)| n == name && cam.is_none_or(|c| l[0].1 == c))
            .unwrap()
            .2
    };
    assert_eq!(value("ronda_camera_delivered_fps", Some("gate-1")), 12.5);
    assert_eq!(value("ronda_camera_online", Some("pos-ronda")), 0.0);
    assert_eq!(
        value("ronda_camera_reconnects_total", Some("pos-ronda")),
        7.0
    );
    assert!(value("ronda_inference_ms", Some("pos-ronda")).is_nan());
    assert_eq!(value("ronda_outbox_backlog", None), 4.0);
    assert_eq!(value("ronda_mqtt_connected", None), 1.0);
    assert!(types.contains(&("ronda_camera_reconnects_total".into(), "counter".into())));
    assert!(parse_prometheus("x{a=\"1} 2").is_err());
    assert!(parse_prometheus("x 2").is_err(), "no TYPE line");
}

#[test]
fn private_metrics_need_a_session_or_basic_credentials() {
    let s = start_with(|c| c.metrics_public = false, 64);
    let r = get(&s.url("/metrics"), None);
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
    let cookie = login(&s, "pos1", GUARD_PW);
    assert_eq!(get(&s.url("/metrics"), Some(&cookie)).status, 200);
    // pos1:jaga-malam-9
    let basic = reply(
        agent()
            .get(&s.url("/metrics"))
            .header("Authorization", "Basic cG9zMTpqYWdhLW1hbGFtLTk=")
            .call(),
    );
    assert_eq!(basic.status, 200, "{}", basic.text());
    let wrong = reply(
        agent()
            .get(&s.url("/metrics"))
            .header("Authorization", "Basic cG9zMTp4eXo=")
            .call(),
    );
    assert_eq!(wrong.status, 401);
}

// ---------------------------------------------------------------- the live feed

#[derive(Debug, Default)]
struct Message {
    event: String,
    data: String,
    comment: bool,
}

/// Open the feed; its messages arrive on the channel.
fn open_feed(s: &Server, cookie: &str) -> mpsc::Receiver<Message> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(None)
        .build()
        .new_agent();
    let r = agent
        .get(&s.url("/api/events/stream"))
        .header("Cookie", cookie)
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let reader = BufReader::new(r.into_body().into_reader());
        let mut msg = Message::default();
        for line in reader.lines() {
            let Ok(line) = line else { break };
            if line.is_empty() {
                if tx.send(std::mem::take(&mut msg)).is_err() {
                    break;
                }
            } else if let Some(v) = line.strip_prefix("event:") {
                msg.event = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                msg.data.push_str(v.trim_start());
            } else if line.starts_with(':') {
                msg.comment = true;
            }
        }
    });
    rx
}

/// The next message that is not a keep-alive, within `within`.
fn next_message(rx: &mpsc::Receiver<Message>, within: Duration) -> Message {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let m = rx
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("no message within {within:?}: {e}"));
        if !m.comment || !m.event.is_empty() {
            return m;
        }
    }
}

#[test]
fn the_feed_delivers_a_new_event_and_acks_to_everyone() {
    let s = start();
    let guard = login(&s, "pos1", GUARD_PW);
    let admin = login(&s, "pak-rw", ADMIN_PW);
    let feed = open_feed(&s, &guard);
    let other = open_feed(&s, &admin);
    for rx in [&feed, &other] {
        let ready = next_message(rx, Duration::from_secs(60));
        assert_eq!(ready.event, "ready");
        assert_eq!(
            serde_json::from_str::<Value>(&ready.data).unwrap()["keep_alive_s"],
            15
        );
    }

    let t0 = Instant::now();
    let e = s.fake.raise(EventKind::NoMask, Severity::Alert);
    let m = next_message(&feed, Duration::from_secs(60));
    println!("delivered in {:?}", t0.elapsed());
    assert_eq!(m.event, "event");
    let got: Event = serde_json::from_str(&m.data).unwrap();
    assert_eq!(got, e);
    assert_eq!(next_message(&other, Duration::from_secs(60)).event, "event");

    let r = post_empty(&s.url(&format!("/api/events/{}/ack", e.id)), Some(&guard));
    assert_eq!(r.status, 200);
    for rx in [&feed, &other] {
        let m = next_message(rx, Duration::from_secs(60));
        assert_eq!(m.event, "ack");
        let v: Value = serde_json::from_str(&m.data).unwrap();
        assert_eq!(
            (v["event_id"].as_str(), v["user"].as_str()),
            (Some(e.id.as_str()), Some("pos1"))
        );
    }
}

#[test]
fn the_feed_keeps_alive_tells_a_lagging_client_and_ends_with_the_server() {
    let mut s = start_with(|c| c.keep_alive = Duration::from_millis(300), 4);
    let guard = login(&s, "pos1", GUARD_PW);
    let feed = open_feed(&s, &guard);
    assert_eq!(next_message(&feed, Duration::from_secs(60)).event, "ready");
    let ka = feed.recv_timeout(Duration::from_secs(60)).unwrap();
    assert!(ka.comment && ka.event.is_empty(), "{ka:?}");

    // far more than the channel holds, at once
    for _ in 0..200 {
        s.fake.raise(EventKind::LineCrossing, Severity::Info);
    }
    let mut lagged = false;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let m = next_message(&feed, Duration::from_secs(60));
        if m.event == "lagged" {
            let v: Value = serde_json::from_str(&m.data).unwrap();
            assert!(v["missed"].as_u64().unwrap() > 0);
            lagged = true;
            break;
        }
    }
    assert!(lagged, "no lagged message");
    // and it goes on
    let e = s.fake.raise(EventKind::Intrusion, Severity::Alert);
    let deadline = Instant::now() + Duration::from_secs(2);
    while !next_message(&feed, deadline.saturating_duration_since(Instant::now()))
        .data
        .contains(&e.id)
    {}

    // stopping the server ends the stream (and does not wait for the browser)
    let t0 = Instant::now();
    s.api.take().unwrap().shutdown();
    // a failure deadline, not a speed bound: a server that waited for the browser would hang
    assert!(t0.elapsed() < Duration::from_secs(60), "{:?}", t0.elapsed());
    let end = Instant::now() + Duration::from_secs(3);
    loop {
        match feed.recv_timeout(end.saturating_duration_since(Instant::now())) {
            Ok(_) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("the feed did not end"),
        }
    }
}

#[test]
fn logout_ends_an_open_feed() {
    let s = start_with(|c| c.keep_alive = Duration::from_millis(200), 64);
    let guard = login(&s, "pos1", GUARD_PW);
    let feed = open_feed(&s, &guard);
    assert_eq!(next_message(&feed, Duration::from_secs(5)).event, "ready");
    assert_eq!(post_empty(&s.url("/api/logout"), Some(&guard)).status, 200);
    let end = Instant::now() + Duration::from_secs(3);
    loop {
        match feed.recv_timeout(end.saturating_duration_since(Instant::now())) {
            Ok(_) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("the feed did not end"),
        }
    }
}

// ---------------------------------------------------------------- acknowledge

#[test]
fn acknowledge_known_and_unknown_events() {
    let s = start();
    let guard = login(&s, "pos1", GUARD_PW);
    let admin = login(&s, "pak-rw", ADMIN_PW);
    let r = post_empty(
        &s.url("/api/events/1795432178883000078cb/ack"),
        Some(&guard),
    );
    assert_eq!(r.status, 404);
    assert!(r.error().contains("1795432178883000078cb"));
    let r = post_empty(&s.url("/api/events/..%2Fetc/ack"), Some(&guard));
    assert_eq!(r.status, 400, "{}", r.text());
    r.error();

    let e = s.fake.raise(EventKind::Loitering, Severity::Warning);
    let r = post_empty(&s.url(&format!("/api/events/{}/ack", e.id)), Some(&guard));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["event_id"], e.id.as_str());
    assert_eq!(v["user"], "pos1");
    assert!(v["at"].as_str().unwrap().ends_with("+07:00"));
    let acks = s.fake.acks.lock().unwrap().clone();
    assert_eq!(acks.len(), 1);
    assert_eq!(
        (acks[0].event_id.as_str(), acks[0].user.as_str()),
        (e.id.as_str(), "pos1")
    );
    // the first acknowledgement stays
    let again = post_empty(&s.url(&format!("/api/events/{}/ack", e.id)), Some(&admin));
    assert_eq!(again.json()["user"], "pos1");
    let recent = get(&s.url("/api/events"), Some(&guard)).json();
    assert_eq!(recent[0]["ack"]["user"], "pos1");
}

// ---------------------------------------------------------------- malformed requests

#[test]
fn malformed_requests_get_a_json_error_that_says_what_is_wrong() {
    let s = start();
    let url = s.url("/api/login");
    let bad_json = post(&url, None, "application/json", "{\"name\": \"pos1\", ");
    assert_eq!(bad_json.status, 400);
    assert!(bad_json.error().contains("JSON"), "{}", bad_json.text());
    let missing = post(&url, None, "application/json", "{\"name\": \"pos1\"}");
    assert_eq!(missing.status, 400);
    assert!(missing.error().contains("password"), "{}", missing.text());
    let wrong_type = post(
        &url,
        None,
        "application/json",
        "{\"name\": 1, \"password\": []}",
    );
    assert_eq!(wrong_type.status, 400);
    wrong_type.error();
    let empty = post(
        &url,
        None,
        "application/json",
        "{\"name\": \"\", \"password\": \"x\"}",
    );
    assert_eq!(empty.status, 400);
    assert!(empty.error().contains("name"));
    let text = post(&url, None, "text/plain", "pos1 jaga");
    assert_eq!(text.status, 415);
    assert!(text.error().contains("JSON"));
    let huge = serde_json::json!({"name": "pos1", "password": "x".repeat(5000)}).to_string();
    assert_eq!(post(&url, None, "application/json", &huge).status, 400);
    let not_utf8 = reply(
        agent()
            .post(&url)
            .header("Content-Type", "application/json")
            .send(&[0xff, 0xfe, 0x00][..]),
    );
    assert_eq!(not_utf8.status, 400);
    not_utf8.error();
    let get_login = get(&url, None);
    assert_eq!(get_login.status, 405);
    get_login.error();
    // none of these counted as wrong passwords
    assert_eq!(try_login(&s, "pos1", GUARD_PW).status, 200);

    let guard = login(&s, "pos1", GUARD_PW);
    for q in [
        "limit=abc",
        "limit=0",
        "limit=100000",
        "min_severity=bogus",
        "colour=red",
    ] {
        let r = get(&s.url(&format!("/api/events?{q}")), Some(&guard));
        assert_eq!(r.status, 400, "{q}");
        println!("{q}: {}", r.error());
    }
    let r = get(&s.url("/api/nope"), Some(&guard));
    assert_eq!(r.status, 404);
    assert!(r.error().contains("/api/nope"));
    // a write from another site is refused even with the cookie
    let cross = reply(
        agent()
            .post(&s.url("/api/logout"))
            .header("Cookie", &guard)
            .header("Origin", "http://evil.example")
            .send_empty(),
    );
    assert_eq!(cross.status, 403);
    assert_eq!(get(&s.url("/api/me"), Some(&guard)).status, 200);
}

#[test]
fn pages_are_self_contained() {
    let s = start();
    let guard = login(&s, "pos1", GUARD_PW);
    let r = get(&s.url("/guard"), Some(&guard));
    assert_eq!(r.status, 200);
    for needle in [
        "EventSource",
        "AudioContext",
        "Asia/Jakarta",
        "Konfirmasi",
        "Acknowledge",
    ] {
        assert!(r.text().contains(needle), "{needle}");
    }
    // no external resources
    assert!(!r.text().contains("src=\"http") && !r.text().contains("href=\"http"));
    assert_eq!(r.header("x-frame-options").as_deref(), Some("DENY"));
}

// ---------------------------------------------------------------- ronda passwd

fn passwd(input: &str, args: &[&str]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ronda"))
        .arg("passwd")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn passwd_prints_an_argon2id_hash_and_refuses_short_passwords() {
    let out = passwd("kopi-tubruk-9\n", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hash = String::from_utf8(out.stdout).unwrap();
    let hash = hash.trim();
    assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
    assert!(ronda::api::verify_password("kopi-tubruk-9", hash));
    assert!(!ronda::api::verify_password("kopi-tubruk-8", hash));

    let short = passwd("kopi\n", &[]);
    assert_eq!(short.status.code(), Some(2));
    let err = String::from_utf8_lossy(&short.stderr);
    assert!(err.contains("too short") && err.contains('8'), "{err}");
    assert!(short.stdout.is_empty());

    let block = passwd("kopi-tubruk-9\n", &["--user", "pos1", "--role", "guard"]);
    let text = String::from_utf8(block.stdout).unwrap();
    assert!(
        text.starts_with(
            "[[http.users]]\nname = \"pos1\"\nrole = \"guard\"\npassword_hash = \"$argon2id$"
        ),
        "{text}"
    );
}
