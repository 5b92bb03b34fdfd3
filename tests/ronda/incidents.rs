//! Incident index and retention against the real thing: a SQLite store on disk and real files in
//! a temporary clips directory (small fake MP4 and JPEG bytes; retention never reads them).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, TimeZone, Utc};
use ronda::events::{Event, EventKind, Severity};
use ronda::rules::Counts;
use ronda::sinks::clips::incident_path;
use ronda::sinks::retention::{Retention, RetentionOptions, RetentionReport, RetentionTask, Room};
use ronda::store::{ClipState, Store};

const TZ: chrono_tz::Tz = chrono_tz::Asia::Jakarta;
const CLIP: usize = 100_000;
const SNAP: usize = 10_000;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
}

struct Site {
    dir: tempfile::TempDir,
    store: Store,
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("var/ronda.db")).unwrap();
        fs::create_dir_all(dir.path().join("clips")).unwrap();
        Site { dir, store }
    }

    fn clips(&self) -> PathBuf {
        self.dir.path().join("clips")
    }

    /// An alert `days` old, stored (and acknowledged by the broker if `sent`), with its clip
    /// and snapshot written where the recorder puts them and indexed as the lead wires it.
    fn incident(&self, camera: &str, days: i64, sent: bool) -> Event {
        let at = now() - chrono::Duration::days(days);
        let e = Event::new("rw9", TZ, camera, EventKind::Intrusion, Severity::Alert, at);
        let seq = self.store.append(&e).unwrap();
        if sent {
            self.store.mark_sent(seq).unwrap();
        }
        let t = SystemTime::from(at);
        let clip = incident_path(&self.clips(), camera, t, TZ, &e.id, "mp4");
        let snap = incident_path(&self.clips(), camera, t, TZ, &e.id, "jpg");
        fs::create_dir_all(clip.parent().unwrap()).unwrap();
        fs::write(&clip, vec![1u8; CLIP]).unwrap();
        fs::write(&snap, vec![2u8; SNAP]).unwrap();
        let (clip_rel, snap_rel) = (self.rel(&clip), self.rel(&snap));
        let opened = self
            .store
            .open_incident(&e, Some(&clip_rel), Some(&snap_rel))
            .unwrap();
        assert!(!opened.joined);
        let n = self
            .store
            .clip_done(
                std::slice::from_ref(&e.id),
                &clip_rel,
                Duration::from_secs(15),
                CLIP as u64,
            )
            .unwrap();
        assert_eq!(n, 1);
        e
    }

    fn rel(&self, p: &Path) -> PathBuf {
        p.strip_prefix(self.clips()).unwrap().to_path_buf()
    }

    fn state(&self, e: &Event) -> ClipState {
        self.store.incident(&e.id).unwrap().unwrap().clip.state
    }

    /// The clip and snapshot files of `e` exist.
    fn files_of(&self, e: &Event) -> (bool, bool) {
        let t = SystemTime::from(DateTime::parse_from_rfc3339(&e.time).unwrap());
        let clip = incident_path(&self.clips(), &e.camera, t, TZ, &e.id, "mp4");
        let snap = incident_path(&self.clips(), &e.camera, t, TZ, &e.id, "jpg");
        (clip.exists(), snap.exists())
    }

    fn run(&self, max_bytes: u64) -> RetentionReport {
        Retention::run_once(&self.store, &self.clips(), 30, max_bytes, None, now()).unwrap()
    }
}

#[test]
fn retention_removes_the_oldest_first_and_keeps_rows_and_undelivered_files() {
    let site = Site::new();
    let s = &site.store;
    let clips = site.clips();

    let a45 = site.incident("gate-1", 45, true);
    let unsent40 = site.incident("gate-1", 40, false);
    let gone40 = site.incident("gate-2", 40, true);
    let d20 = site.incident("gate-1", 20, true);
    let d10 = site.incident("gate-2", 10, true);
    let d5 = site.incident("gate-1", 5, true);
    let d2 = site.incident("gate-2", 2, true);
    let d1 = site.incident("gate-1", 1, true);
    let d0 = site.incident("gate-2", 0, true);

    // someone removed a clip by hand
    let t = SystemTime::from(now() - chrono::Duration::days(40));
    fs::remove_file(incident_path(&clips, "gate-2", t, TZ, &gone40.id, "mp4")).unwrap();

    // a file outside the clips directory, reachable from inside by a file symlink and by a
    // directory symlink; old incidents point at both
    let outside = site.dir.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("secret.mp4"), b"not ronda's").unwrap();
    fs::write(outside.join("other.mp4"), b"not ronda's either").unwrap();
    fs::create_dir_all(clips.join("gate-3")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.mp4"), clips.join("gate-3/link.mp4")).unwrap();
    std::os::unix::fs::symlink(&outside, clips.join("gate-3/evil")).unwrap();
    let mut escapes = Vec::new();
    for rel in ["gate-3/link.mp4", "gate-3/evil/other.mp4"] {
        let at = now() - chrono::Duration::days(60);
        let e = Event::new(
            "rw9",
            TZ,
            "gate-3",
            EventKind::Intrusion,
            Severity::Alert,
            at,
        );
        s.mark_sent(s.append(&e).unwrap()).unwrap();
        s.open_incident(&e, Some(Path::new(rel)), None).unwrap();
        s.clip_done(
            std::slice::from_ref(&e.id),
            Path::new(rel),
            Duration::ZERO,
            1,
        )
        .unwrap();
        escapes.push(e);
    }
    // and a path that climbs out cannot even be indexed
    let climb = Event::new(
        "rw9",
        TZ,
        "gate-3",
        EventKind::Intrusion,
        Severity::Alert,
        now(),
    );
    assert!(
        s.open_incident(&climb, Some(Path::new("../outside/secret.mp4")), None)
            .is_err()
    );

    // old events without incidents: three delivered (go), one not (stays); and line counts
    let mut plain = Vec::new();
    for sent in [true, true, true, false] {
        let at = now() - chrono::Duration::days(40);
        let e = Event::new(
            "rw9",
            TZ,
            "gate-1",
            EventKind::LineCrossing,
            Severity::Info,
            at,
        );
        let seq = s
            .append_crossing(&e, "gate-1", "main", Counts { in_: 7, out: 3 }, at)
            .unwrap();
        if sent {
            s.mark_sent(seq).unwrap();
        }
        plain.push(e);
    }

    // the webhook joins now; an incident stored after is not past its cursor yet, although
    // MQTT delivered it
    s.webhook_cursor().unwrap();
    let behind = site.incident("gate-1", 3, true);

    // 30 days, 440 kB: a45 goes by age (gone40's snapshot too, its clip is marked), unsent40
    // stays; then the oldest until 440 kB: d20, d10, d5, d2 (behind is protected)
    let r = site.run(440_000);
    println!("{r:?}");
    let both = (CLIP + SNAP) as u64;
    assert_eq!(
        r,
        RetentionReport {
            removed_files: 11,
            freed_bytes: 5 * both + SNAP as u64,
            kept_bytes: 4 * both,
            expired_clips: 6,
            removed_snapshots: 6,
            missing_files: 1,
            protected_files: 4,
            refused_files: 2,
            failed_files: 0,
            over_budget: false,
            short_bytes: 0,
            deleted_events: 3,
        }
    );
    for e in [&a45, &gone40, &d20, &d10, &d5, &d2] {
        let inc = s.incident(&e.id).unwrap().expect("the row stays");
        assert_eq!(inc.clip.state, ClipState::Expired, "{}", e.id);
        assert_eq!(inc.clip.path, None);
        assert_eq!(inc.clip.duration, Some(Duration::from_secs(15)), "kept");
        assert_eq!(inc.snapshot(), None);
        assert_eq!(site.files_of(e), (false, false), "{}", e.id);
        assert!(s.event(&e.id).unwrap().is_some(), "its event row stays");
    }
    let note = |e: &Event| s.incident(&e.id).unwrap().unwrap().clip.note.unwrap();
    assert!(note(&a45).contains("retention_days"), "{}", note(&a45));
    assert!(note(&d20).contains("max_gb"), "{}", note(&d20));
    for e in [&unsent40, &behind, &d1, &d0] {
        assert_eq!(site.state(e), ClipState::Ready, "{}", e.id);
        assert_eq!(site.files_of(e), (true, true), "{}", e.id);
        assert!(s.incident(&e.id).unwrap().unwrap().snapshot().is_some());
    }
    // outside the clips directory nothing moved, and the links stay too
    assert_eq!(
        fs::read(outside.join("secret.mp4")).unwrap(),
        b"not ronda's"
    );
    assert_eq!(
        fs::read(outside.join("other.mp4")).unwrap(),
        b"not ronda's either"
    );
    assert!(
        fs::symlink_metadata(clips.join("gate-3/link.mp4"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    for e in &escapes {
        assert_eq!(site.state(e), ClipState::Ready);
    }
    // emptied day directories are gone, the clips directory stays
    let day = |e: &Event| {
        let t = SystemTime::from(DateTime::parse_from_rfc3339(&e.time).unwrap());
        incident_path(&clips, &e.camera, t, TZ, &e.id, "mp4")
            .parent()
            .unwrap()
            .to_path_buf()
    };
    assert!(!day(&a45).exists());
    assert!(day(&d0).exists() && clips.exists());
    // events: the three delivered ones without incidents went, the rest stays; counts stay
    for (e, stays) in plain.iter().zip([false, false, false, true]) {
        assert_eq!(s.event(&e.id).unwrap().is_some(), stays, "{}", e.id);
    }
    let (c, _) = s.counts("gate-1", "main").unwrap().unwrap();
    assert_eq!(c, Counts { in_: 7, out: 3 });

    // again: nothing more to do
    let again = site.run(440_000);
    assert_eq!(
        again.removed_files + again.expired_clips + again.deleted_events,
        0
    );
    assert_eq!(again.kept_bytes, 4 * both);

    // once delivered everywhere, the old unsent one goes by age, and `behind` by budget
    s.mark_sent(s.event(&unsent40.id).unwrap().unwrap().seq)
        .unwrap();
    s.mark_webhook_done(i64::MAX).unwrap();
    let r = site.run(2 * both);
    assert_eq!(
        (r.removed_files, r.kept_bytes, r.protected_files),
        (4, 2 * both, 0)
    );
    assert_eq!(site.state(&unsent40), ClipState::Expired);
    assert_eq!(site.state(&behind), ClipState::Expired);
    assert_eq!(site.state(&d1), ClipState::Ready);
}

#[test]
fn a_disk_short_of_room_loses_the_oldest_files_and_no_more_than_it_needs() {
    let site = Site::new();
    let s = &site.store;
    let days: Vec<Event> = (1..=5)
        .rev()
        .map(|d| site.incident("gate-1", d, true))
        .collect();
    let (d5, d4) = (&days[0], &days[1]);
    // 50 kB free where 250 kB are to stay free: 200 kB must go, oldest first (d5's clip and
    // snapshot are 110 kB, d4's clip makes it 210 kB); max_gb is far from reached
    let room = Room {
        free: 50_000,
        keep_free: 250_000,
    };
    let r = Retention::run_once(s, &site.clips(), 30, u64::MAX, Some(room), now()).unwrap();
    assert_eq!((r.removed_files, r.freed_bytes), (3, 210_000), "{r:?}");
    assert_eq!((r.short_bytes, r.over_budget), (0, false), "{r:?}");
    assert_eq!(site.files_of(d5), (false, false));
    assert_eq!(site.files_of(d4), (false, true));
    for e in &days[2..] {
        assert_eq!(site.files_of(e), (true, true), "{}", e.id);
        assert_eq!(site.state(e), ClipState::Ready);
    }
    let inc = s.incident(&d5.id).unwrap().expect("the row stays");
    assert_eq!(inc.clip.state, ClipState::Expired);
    let note = inc.clip.note.unwrap();
    assert!(note.contains("keep_free_gb"), "{note}");
    assert!(s.event(&d5.id).unwrap().is_some(), "its event row stays");

    // enough room: nothing more goes
    let room = Room {
        free: 260_000,
        keep_free: 250_000,
    };
    let r = Retention::run_once(s, &site.clips(), 30, u64::MAX, Some(room), now()).unwrap();
    assert_eq!((r.removed_files, r.short_bytes), (0, 0), "{r:?}");
}

#[test]
fn a_full_disk_keeps_the_files_of_undelivered_alerts_and_says_it_is_still_short() {
    let site = Site::new();
    let a = site.incident("gate-1", 2, false);
    let b = site.incident("gate-1", 1, true);
    let room = Room {
        free: 0,
        keep_free: 1_000_000,
    };
    let r =
        Retention::run_once(&site.store, &site.clips(), 30, u64::MAX, Some(room), now()).unwrap();
    // b's files go (110 kB), a's stay (the guard post has not got its alert yet)
    assert_eq!(site.files_of(&a), (true, true));
    assert_eq!(site.files_of(&b), (false, false));
    assert_eq!(r.short_bytes, 1_000_000 - 110_000, "{r:?}");
    assert_eq!(r.protected_files, 2, "{r:?}");
}

#[test]
fn the_room_of_a_real_disk_is_read_and_a_missing_directory_has_none() {
    let site = Site::new();
    let room = Room::of(&site.clips(), 1).expect("a temporary directory's disk");
    assert!(room.free > 0, "{room:?}");
    assert_eq!(room.short(), 0);
    assert_eq!(Room::of(&site.clips().join("not-yet"), 1), None);
    // nothing to keep free: the disk is not looked at
    assert_eq!(Room::of(&site.clips(), 0), None);
}

#[test]
fn undelivered_files_may_keep_the_disk_over_budget_and_that_is_said() {
    let site = Site::new();
    let a = site.incident("gate-1", 1, false);
    let b = site.incident("gate-1", 0, false);
    let r = site.run(1);
    assert!(r.over_budget, "{r:?}");
    assert_eq!((r.removed_files, r.protected_files), (0, 4));
    assert_eq!(r.kept_bytes, 2 * (CLIP + SNAP) as u64);
    assert_eq!(site.files_of(&a), (true, true));
    assert_eq!(site.files_of(&b), (true, true));
}

#[test]
fn a_missing_clips_directory_is_no_error_and_recent_missing_files_keep_their_rows() {
    let site = Site::new();
    let e = site.incident("gate-1", 1, true);
    // the disk is not mounted: the directory is empty (or missing)
    fs::remove_dir_all(site.clips()).unwrap();
    let r = site.run(1);
    assert_eq!(r.removed_files + r.expired_clips, 0, "{r:?}");
    assert_eq!(
        site.state(&e),
        ClipState::Ready,
        "recent rows are not wiped"
    );
    fs::create_dir_all(site.clips()).unwrap();
    let r = site.run(1);
    assert_eq!((r.expired_clips, r.missing_files), (0, 0), "{r:?}");
    assert_eq!(site.state(&e), ClipState::Ready);
}

#[test]
fn the_task_runs_at_start_and_stops_promptly() {
    let site = Site::new();
    let old = site.incident("gate-1", 40, true);
    let store = Arc::new(Store::open(site.store.path()).unwrap());
    let task = RetentionTask::start(
        store,
        RetentionOptions {
            clips_dir: site.clips(),
            retention_days: 30,
            max_bytes: 1_000_000_000,
            keep_free_bytes: 0,
            every: Duration::from_secs(3600),
            check: Duration::from_secs(3600),
        },
    )
    .unwrap();
    let t = Instant::now();
    // the task works with the real clock: 40 days before 2026-11-22 is long past
    while site.files_of(&old) != (false, false) && t.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(site.files_of(&old), (false, false));
    // the task sleeps for an hour between runs: stopping must not wait for it. It returns once
    // the thread has ended, so a stop that waited would hang this test for the hour (no bound on
    // how long it took here: that would be a bound on the machine's speed)
    task.stop();
    assert_eq!(site.state(&old), ClipState::Expired);
}
