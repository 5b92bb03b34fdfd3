//! A disk that fills up, for real: `ronda run`'s store and clips on a small tmpfs (mounted by
//! the test: it runs as root, as `make setup` does), the RTSP simulator's walkers raising an
//! intrusion every few seconds, each with a snapshot and a clip. Before `[store] keep_free_gb`,
//! the disk filled within half a minute, the event store stopped and no alert reached the guard
//! post any more (they waited in memory) while `max_gb` (20) was nowhere near.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{self as common, free_port, sample, start_sim_with, stored_ids};

/// A tmpfs of `size` mounted on a temporary directory, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "this test fills a small tmpfs and needs root to mount it (as `make setup` needs \
             root): mount said {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // lazy: a process still holding a file there does not keep the mount busy
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Every `.mp4` under `dir`, with its size.
fn clips_under(dir: &Path, seen: &mut std::collections::HashMap<PathBuf, u64>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            clips_under(&p, seen);
        } else if p.extension().is_some_and(|x| x == "mp4")
            && let Ok(m) = std::fs::metadata(&p)
        {
            seen.insert(p, m.len());
        }
    }
}

/// Incidents whose clip retention removed to keep the disk's free space, from the store.
fn recycled(db: &Path) -> usize {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    conn.query_row(
        "SELECT count(*) FROM incidents WHERE clip_state = 'expired' \
         AND clip_note LIKE '%keep_free_gb%'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .unwrap() as usize
}

/// A yard camera with a restricted zone over its whole picture (vtest's walkers raise an
/// intrusion every few seconds, each with a snapshot and a clip), its store and clips on `disk`.
fn yard_config(disk: &Path, port: u16, http: u16, keep_free_gb: f64) -> String {
    format!(
        r#"[site]
id = "penuh"
timezone = "UTC"
[mqtt]
listen = "127.0.0.1:{mqtt}"
[http]
listen = "127.0.0.1:{http}"
[store]
path = "{db}"
clips_dir = "{clips}"
keep_free_gb = {keep_free_gb}
[detector]
model = "int8"
[alerts]
cooldown_seconds = 3
[clips]
pre_seconds = 2
post_seconds = 2

[[cameras]]
id = "yard"
url = "rtsp://127.0.0.1:{port}/cam01"
role = "area"
analysis_fps = 5
size = [480, 360]
  [[cameras.zones]]
  name = "gudang"
  kind = "restricted"
  polygon = [[0, 0], [480, 0], [480, 360], [0, 360]]
"#,
        mqtt = free_port(),
        db = disk.join("ronda.db").display(),
        clips = disk.join("clips").display(),
    )
}

/// `ronda run` on `cfg`, its log in `log`; the events it prints.
fn start_run(
    cfg: &Path,
    log: &Path,
) -> (common::Proc, std::sync::mpsc::Receiver<serde_json::Value>) {
    let mut run = common::Proc(
        common::ronda()
            .args(["run", "--config"])
            .arg(cfg)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("ronda run starts"),
    );
    let events = common::json_lines(run.0.stdout.take().unwrap());
    (run, events)
}

/// Stop `run` as a service manager does (SIGTERM) and wait for it to end (a stop that never
/// ends fails the test after 10 minutes rather than hanging it).
fn stop(run: &mut common::Proc) -> std::process::ExitStatus {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(run.0.id().to_string())
        .status();
    let t0 = Instant::now();
    loop {
        if let Some(status) = run.0.try_wait().unwrap() {
            return status;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(600),
            "ronda run did not end 10 minutes after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_disk_that_fills_up_loses_its_oldest_clips_and_the_watch_goes_on() {
    const DISK_BYTES: u64 = 12 << 20;
    let disk = Tmpfs::mount("12M");
    let (port, http) = (free_port(), free_port());
    let work = tempfile::tempdir().unwrap();
    let cfg = work.path().join("ronda.toml");
    let (db, clips) = (disk.path().join("ronda.db"), disk.path().join("clips"));
    // 5 MB kept free of 12 (SQLite's write-ahead log alone may take 4 MB of the rest)
    let text = yard_config(disk.path(), port, http, 0.005);
    std::fs::write(&cfg, &text).unwrap();
    let _sim = start_sim_with(
        port,
        &sample("vtest.avi"),
        &["--cameras", "1", "--height", "360"],
    );
    let log = work.path().join("run.log");
    let (mut run, events) = start_run(&cfg, &log);

    // until more video was written than the whole disk holds, and alerts still come after
    let mut seen = std::collections::HashMap::new();
    let mut printed: Vec<String> = Vec::new();
    let mut after_full = 0;
    let t0 = Instant::now();
    loop {
        while let Ok(e) = events.try_recv() {
            printed.push(e["id"].as_str().unwrap().to_string());
            if seen.values().sum::<u64>() > DISK_BYTES {
                after_full += 1;
            }
        }
        clips_under(&clips, &mut seen);
        let written: u64 = seen.values().sum();
        if written > DISK_BYTES && after_full >= 3 {
            println!(
                "{} clips of {} kB in all written on a disk of {} kB; {} events, {} after that",
                seen.len(),
                written / 1000,
                DISK_BYTES / 1000,
                printed.len(),
                after_full
            );
            break;
        }
        let log_text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            t0.elapsed() < Duration::from_secs(900),
            "after {} s: {} kB of clips written ({} clips), {} events, {after_full} since the \
             disk would have been full; log:\n{log_text}",
            t0.elapsed().as_secs(),
            written / 1000,
            seen.len(),
            printed.len()
        );
        assert!(
            !log_text.contains("cannot store an event"),
            "the event store stopped (the disk filled up):\n{log_text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // the admin sees the disk's free space: the tmpfs's, never more than it holds
    let text = common::metrics(http).expect("/metrics answers");
    let free = common::series(&text, "ronda_disk_free_bytes").expect("the disk's free space");
    assert!(free >= 0.0 && free <= DISK_BYTES as f64, "{free}");

    // stop as a service manager does, and read what stayed
    let status = stop(&mut run);
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        status.success(),
        "ronda run ended with {status}:\n{log_text}"
    );
    assert!(
        !log_text.contains("cannot store an event"),
        "the event store stopped:\n{log_text}"
    );
    let stored = stored_ids(&db);
    let lost: Vec<&String> = printed.iter().filter(|id| !stored.contains(id)).collect();
    assert!(lost.is_empty(), "events printed but not stored: {lost:?}");
    let gone = recycled(&db);
    assert!(
        gone >= 1,
        "no incident's clip was recycled to keep room:\n{log_text}"
    );
    // the newest clips are there, the incidents of the recycled ones kept (marked expired)
    let mut left = std::collections::HashMap::new();
    clips_under(&clips, &mut left);
    assert!(!left.is_empty(), "every clip is gone");
    println!(
        "{gone} incidents' clips recycled (rows kept), {} clips on the disk, {} events stored",
        left.len(),
        stored.len()
    );
}

#[test]
fn a_disk_full_of_others_files_is_said_and_a_stop_still_ends_with_the_waiting_event_in_the_log() {
    let disk = Tmpfs::mount("8M");
    // someone else's file leaves 1.5 MB: the first clips fill the rest, and nothing of ronda's
    // is left to remove for room (the clips of undelivered alerts stay)
    let filler = vec![0u8; 6_600_000];
    std::fs::write(disk.path().join("others.bin"), &filler).unwrap();
    let (port, http) = (free_port(), free_port());
    let work = tempfile::tempdir().unwrap();
    let cfg = work.path().join("ronda.toml");
    std::fs::write(&cfg, yard_config(disk.path(), port, http, 0.002)).unwrap();
    let _sim = start_sim_with(
        port,
        &sample("vtest.avi"),
        &["--cameras", "1", "--height", "360"],
    );
    let log = work.path().join("run.log");
    let (mut run, _events) = start_run(&cfg, &log);
    let t0 = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("cannot store an event") {
            assert!(
                text.contains("the disk of [store] clips_dir is nearly full"),
                "the admin was not told before the store stopped:\n{text}"
            );
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(900),
            "the disk never filled:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // the event waiting for the store is in the log when the stop ends (before, the stop waited
    // for the store for ever: this wait would not end)
    let status = stop(&mut run);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "ronda run ended with {status}:\n{text}");
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("event not stored"))
        .collect();
    assert!(
        !kept.is_empty(),
        "no waiting event given to the log:\n{text}"
    );
    for l in &kept {
        // the event whole: its id and type in its JSON
        assert!(l.contains("\"id\":") && l.contains("\"type\":"), "{l}");
    }
    println!(
        "{} event(s) given to the log at the stop; the first: {}",
        kept.len(),
        kept[0]
    );
}
