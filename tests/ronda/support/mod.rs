//! Helpers shared by the integration tests: the built binary, sample pictures, shared data.
#![allow(dead_code)]

pub mod broker;
pub mod browser_driver;
pub mod fake_village;
pub mod web;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};

/// The `ronda` binary cargo built for these tests.
pub fn ronda() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ronda"));
    // The tests choose the library and models themselves; the caller's shell must not.
    c.env_remove("RONDA_ORT_LIB")
        .env_remove("ORT_DYLIB_PATH")
        .env_remove("RONDA_MODELS_DIR");
    c
}

/// `bus.jpg`, `zidane.jpg`, ... from `.cache/samples` (installed by `make setup`).
pub fn sample(name: &str) -> PathBuf {
    let p = ronda::paths::samples_dir().join(name);
    assert!(p.is_file(), "{} is missing: run `make setup`", p.display());
    p
}

/// `scripts/night-footage SRC .cache/night VARIANT`: the night copy's file (made once; tests
/// making the same copy at once each write their own and the last one's rename wins).
pub fn night_copy(src: &Path, variant: &str) -> PathBuf {
    let dir = ronda::paths::cache_dir().join("night");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/night-footage");
    let st = Command::new("bash")
        .arg(&script)
        .arg(src)
        .arg(&dir)
        .arg(variant)
        .status()
        .expect("bash runs");
    assert!(st.success(), "{} {variant} failed", script.display());
    let stem = src.file_stem().unwrap().to_string_lossy();
    dir.join(format!("{stem}-{variant}.mp4"))
}

/// `../shared/data/<rel>`, or `None` with a message saying the test is skipped.
pub fn shared(rel: &str, test: &str) -> Option<PathBuf> {
    match ronda::paths::shared_data_dir() {
        Some(d) if d.join(rel).exists() => Some(d.join(rel)),
        _ => {
            eprintln!(
                "{test}: SKIPPED: ../shared/data/{rel} is not here (this test needs the shared test data)"
            );
            None
        }
    }
}

/// `ronda analyze ARGS... --json`, run once per test process for the same ARGS (in the same
/// order): several tests check their own property of one analysis (vtest.avi's whole clip keeps
/// a core busy for 20 s), and an analysis of the same file with the same settings gives the same
/// result every time (`live.rs` holds live and offline to the same crossings on it).
pub fn analyze_json(args: &[impl AsRef<str>]) -> serde_json::Value {
    let args: Vec<String> = args.iter().map(|a| a.as_ref().to_string()).collect();
    type Cell = Arc<OnceLock<serde_json::Value>>;
    static DONE: OnceLock<Mutex<HashMap<Vec<String>, Cell>>> = OnceLock::new();
    let cell = DONE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(args.clone())
        .or_default()
        .clone();
    // a test that asks while another runs the same analysis waits for it (a failed run leaves
    // the cell empty, and the next asker runs it again)
    cell.get_or_init(|| {
        let out = ronda()
            .arg("analyze")
            .args(&args)
            .arg("--json")
            .output()
            .expect("ronda runs");
        assert!(
            out.status.success(),
            "ronda analyze {args:?} failed: {}",
            stderr(&out)
        );
        serde_json::from_str(&stdout(&out)).expect("one JSON object on stdout")
    })
    .clone()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A failure the user must understand: exit 1, one line naming `must_name`, no panic or trace.
pub fn assert_one_line_failure(o: &Output, must_name: &Path) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "exit status; stderr: {err}");
    assert!(
        !err.contains("panicked") && !err.to_lowercase().contains("backtrace"),
        "stderr: {err}"
    );
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "expected one line, got: {err}"
    );
    assert!(
        err.contains(&must_name.display().to_string()),
        "stderr does not name {}: {err}",
        must_name.display()
    );
}

/// A copy of the models directory that a test may damage.
pub fn models_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(ronda::paths::models_dir()).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
        }
    }
    dir
}

/// A child process killed (and reaped) when dropped, even when the test fails.
pub struct Proc(pub std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port nobody listens on right now, for a child to listen on later.
pub fn free_port() -> u16 {
    // Never the same port twice in this test process: a port is free when asked but bound by a
    // child only later (a web server after its cameras start), and two tests running side by
    // side could otherwise both be handed it (seen once: one test's web port taken by another
    // test's broker).
    //
    // And never one the kernel hands out for port 0: every `ronda run` starts its embedded
    // broker on a free loopback port of its own (port 0), and the kernel gave one village the
    // port the test had just picked (with port 0 too) for another village's web UI, which then
    // could not start. So test ports come from below the ephemeral range, which port 0 never
    // returns; where in it to start is spread by the process id.
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    const LOWEST: u32 = 10_000;
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .filter(|&low| low > LOWEST + 1_000)
        .unwrap_or(32_768);
    let span = ephemeral - LOWEST;
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let start = (std::process::id().wrapping_mul(7_919) + given.len() as u32) % span;
    for k in 0..span {
        let port = (LOWEST + (start + k) % span) as u16;
        if given.contains(&port) {
            continue;
        }
        let free = std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
            && std::net::TcpListener::bind(("0.0.0.0", port)).is_ok();
        if free {
            given.insert(port);
            return port;
        }
    }
    panic!("no free port between {LOWEST} and {ephemeral}");
}

/// `ronda sim --port PORT --clip CLIP ARGS...`, returned once it listens (the first run on a
/// machine transcodes the clip once).
pub fn start_sim_with(port: u16, clip: &Path, args: &[&str]) -> Proc {
    let child = ronda()
        .args(["sim", "--port", &port.to_string(), "--clip"])
        .arg(clip)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("sim starts");
    let mut sim = Proc(child);
    let t0 = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        // a simulator that gave up has said why on stderr: no point waiting for it
        if let Some(status) = sim.0.try_wait().unwrap() {
            panic!("sim exited ({status}) before it listened on port {port}");
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(300),
            "sim does not listen on port {port}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    sim
}

/// `ronda run --config CFG` with its events (the JSON lines it prints) on a channel.
pub fn run_printing_events(cfg: &Path) -> (Proc, std::sync::mpsc::Receiver<serde_json::Value>) {
    let mut run = Proc(
        ronda()
            .args(["run", "--config"])
            .arg(cfg)
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("ronda run starts"),
    );
    let events = json_lines(run.0.stdout.take().expect("stdout is piped"));
    (run, events)
}

/// The JSON lines a child prints on stdout (events of `ronda run`), on a channel; other lines
/// are skipped.
pub fn json_lines(out: std::process::ChildStdout) -> std::sync::mpsc::Receiver<serde_json::Value> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                let _ = tx.send(v);
            }
        }
    });
    rx
}

/// `/metrics` of a run on 127.0.0.1:`http` (public in the test's config), if it answers.
pub fn metrics(http: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", http)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .ok()?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.starts_with("HTTP/1.1 200").then_some(text)
}

/// The value of a per-camera metric of camera `cam` in `/metrics` text.
pub fn metric(text: &str, name: &str, cam: &str) -> Option<f64> {
    let key = format!("{name}{{camera=\"{cam}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.trim().parse().ok())
}

/// The value of one series in `/metrics` text: a metric's name with its labels as /metrics
/// writes them (`ronda_notify_outages_total{destination="x",service="ntfy"}`), or a bare name.
pub fn series(text: &str, series: &str) -> Option<f64> {
    let key = format!("{series} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.trim().parse().ok())
}

/// Every event in the store `db` (a running ronda's, read-only), in its order (the order every
/// sink delivers them in).
pub fn stored_events(db: &Path) -> Vec<serde_json::Value> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut st = conn
        .prepare("SELECT json FROM events ORDER BY seq")
        .unwrap();
    st.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|j| serde_json::from_str(&j.unwrap()).unwrap())
        .collect()
}

/// The ids of [`stored_events`].
pub fn stored_ids(db: &Path) -> Vec<String> {
    stored_events(db)
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}
