//! The live pipeline against the RTSP simulator over loopback, both as real processes:
//! cameras come online, go offline when the sim dies or hangs (SIGSTOP), and come back.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{ronda, sample};
use serde_json::Value;

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_sim(port: u16) -> Proc {
    let clip = sample("vtest.avi");
    let child = ronda()
        .args([
            "sim",
            "--cameras",
            "4",
            "--port",
            &port.to_string(),
            "--clip",
        ])
        .arg(&clip)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("sim starts");
    // wait until it listens (the first run transcodes the clip once)
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "sim does not listen"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Proc(child)
}

fn signal(p: &Proc, sig: i32) {
    unsafe {
        libc::kill(p.0.id() as i32, sig);
    }
}

/// Wait for events until `done` says so; panics with what was seen after `limit`.
fn wait_for(
    rx: &mpsc::Receiver<Value>,
    limit: Duration,
    what: &str,
    mut done: impl FnMut(&Value) -> bool,
) {
    let t0 = Instant::now();
    let mut seen = Vec::new();
    while t0.elapsed() < limit {
        if let Ok(e) = rx.recv_timeout(Duration::from_millis(200)) {
            let hit = done(&e);
            seen.push(format!("{} {}", e["camera"], e["type"]));
            if hit {
                println!("{what}: after {:.1} s", t0.elapsed().as_secs_f64());
                return;
            }
        }
    }
    panic!("{what}: not within {limit:?}; events seen: {seen:?}");
}

#[test]
fn cameras_go_offline_and_come_back_with_the_sim() {
    let port = free_port();
    let dead = free_port(); // nothing listens here
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ronda.toml");
    let mut text = String::from("[site]\nid = \"test\"\n[detector]\nmodel = \"int8\"\n");
    for n in 1..=4 {
        text += &format!(
            "[[cameras]]\nid = \"cam-{n:02}\"\nurl = \"rtsp://127.0.0.1:{port}/cam{n:02}\"\nanalysis_fps = 2\n"
        );
    }
    text += &format!("[[cameras]]\nid = \"cam-dead\"\nurl = \"rtsp://127.0.0.1:{dead}/nothing\"\n");
    std::fs::write(&cfg, text).unwrap();

    let sim = start_sim(port);
    let mut run = Proc(
        ronda()
            .args(["run", "--config"])
            .arg(&cfg)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let (tx, rx) = mpsc::channel();
    let out = run.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                let _ = tx.send(v);
            }
        }
    });

    let cams = ["cam-01", "cam-02", "cam-03", "cam-04"];
    let mut online = std::collections::BTreeSet::new();
    wait_for(
        &rx,
        Duration::from_secs(30),
        "4 cameras online (a dead one beside them)",
        |e| {
            if e["type"] == "camera_online" {
                online.insert(e["camera"].as_str().unwrap().to_string());
            }
            online.len() == 4
        },
    );

    // the sim dies: every camera goes offline within watchdog + debounce
    drop(sim);
    let mut offline = std::collections::BTreeSet::new();
    wait_for(
        &rx,
        Duration::from_secs(15),
        "offline after the sim was killed",
        |e| {
            if e["type"] == "camera_offline" && cams.contains(&e["camera"].as_str().unwrap()) {
                offline.insert(e["camera"].as_str().unwrap().to_string());
            }
            offline.len() == 4
        },
    );

    // it comes back: online again (backoff is at most a few seconds this early)
    let sim = start_sim(port);
    let mut back = std::collections::BTreeSet::new();
    wait_for(
        &rx,
        Duration::from_secs(20),
        "online again after the sim restarted",
        |e| {
            if e["type"] == "camera_online" {
                back.insert(e["camera"].as_str().unwrap().to_string());
            }
            back.len() == 4
        },
    );

    // a hung server (SIGSTOP): only the watchdog can notice
    signal(&sim, libc::SIGSTOP);
    let mut hung = std::collections::BTreeSet::new();
    wait_for(
        &rx,
        Duration::from_secs(15),
        "offline while the sim is stopped",
        |e| {
            if e["type"] == "camera_offline" && cams.contains(&e["camera"].as_str().unwrap()) {
                hung.insert(e["camera"].as_str().unwrap().to_string());
            }
            hung.len() == 4
        },
    );
    signal(&sim, libc::SIGCONT);
    let mut again = std::collections::BTreeSet::new();
    wait_for(&rx, Duration::from_secs(30), "online after SIGCONT", |e| {
        if e["type"] == "camera_online" {
            again.insert(e["camera"].as_str().unwrap().to_string());
        }
        again.len() == 4
    });
    signal(&run, libc::SIGTERM);
    let status = run.0.wait().unwrap();
    assert!(
        status.success(),
        "ronda run exits cleanly on SIGTERM: {status:?}"
    );
    drop(sim);
}
