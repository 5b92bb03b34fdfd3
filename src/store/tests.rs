use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::*;
use crate::events::{Event, EventKind, Severity};
use crate::rules::Counts;

const JAKARTA: Tz = chrono_tz::Asia::Jakarta;

fn local(tz: Tz, s: &str) -> DateTime<Utc> {
    let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
    tz.from_local_datetime(&naive)
        .earliest()
        .unwrap()
        .with_timezone(&Utc)
}

fn hm(s: &str) -> NaiveTime {
    NaiveTime::parse_from_str(s, "%H:%M").unwrap()
}

fn event(camera: &str) -> Event {
    Event::new(
        "rw9",
        JAKARTA,
        camera,
        EventKind::LineCrossing,
        Severity::Info,
        Utc::now(),
    )
}

fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("var/ronda.db")).unwrap();
    (dir, store)
}

#[test]
fn store_is_shareable_between_threads() {
    fn check<T: Send + Sync>() {}
    check::<Store>();
}

#[test]
fn reset_due_at_the_local_reset_time() {
    let at = hm("05:00");
    let d = |since, now| reset_due(local(JAKARTA, since), local(JAKARTA, now), at, JAKARTA);
    assert!(!d("2026-11-22 04:00", "2026-11-22 04:59"));
    assert!(
        d("2026-11-22 04:00", "2026-11-22 05:00"),
        "now is inclusive"
    );
    assert!(
        !d("2026-11-22 05:00", "2026-11-22 23:59"),
        "since is exclusive"
    );
    assert!(!d("2026-11-22 06:00", "2026-11-23 04:59"));
    assert!(d("2026-11-22 06:00", "2026-11-23 05:01"));
    // Ronda was off from 23:00 to 10:00: the 05:00 reset passed while it was down.
    assert!(d("2026-11-22 23:00", "2026-11-23 10:00"));
    // Off for days.
    assert!(d("2026-11-19 12:00", "2026-11-23 04:00"));
    // The clock went back.
    assert!(!d("2026-11-23 10:00", "2026-11-23 09:00"));
}

#[test]
fn reset_due_uses_the_site_time_zone() {
    // 05:00 WIT (Jayapura, UTC+9) is 03:00 WIB (Jakarta, UTC+7).
    let since = local(JAKARTA, "2026-11-22 02:00");
    let now = local(JAKARTA, "2026-11-22 03:30");
    assert!(reset_due(
        since,
        now,
        hm("05:00"),
        chrono_tz::Asia::Jayapura
    ));
    assert!(!reset_due(since, now, hm("05:00"), JAKARTA));
}

#[test]
fn reset_due_across_daylight_saving_jumps() {
    let berlin = chrono_tz::Europe::Berlin;
    // 2026-03-29: 02:00 -> 03:00, so 02:30 does not exist that day; the reset still happens once.
    let at = hm("02:30");
    let since = local(berlin, "2026-03-29 01:00");
    assert!(!reset_due(
        since,
        local(berlin, "2026-03-29 01:59"),
        at,
        berlin
    ));
    assert!(reset_due(
        since,
        local(berlin, "2026-03-29 04:00"),
        at,
        berlin
    ));
    // 2026-10-25: 03:00 -> 02:00, 02:30 happens twice; the first one resets, the second not again.
    let first = local(berlin, "2026-10-25 02:30"); // earliest() = the first pass
    assert!(reset_due(
        first - chrono::Duration::minutes(1),
        first,
        at,
        berlin
    ));
    assert!(!reset_due(
        first,
        first + chrono::Duration::minutes(90),
        at,
        berlin
    ));
}

#[test]
fn open_creates_the_directory_and_migrations_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/ronda.db");
    let s = Store::open(&path).unwrap();
    let seq = s.append(&event("gate-1")).unwrap();
    s.set_retained("cameras/gate-1/status", "{}").unwrap();
    drop(s);
    for _ in 0..2 {
        let s = Store::open(&path).unwrap();
        assert_eq!(s.backlog().unwrap(), 1);
        assert_eq!(s.unsent(0, 10).unwrap()[0].0, seq);
        assert_eq!(s.retained().unwrap().len(), 1);
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    let v: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ronda.db");
    drop(Store::open(&path).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let msg = Store::open(&path).unwrap_err().to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("newer ronda") && msg.contains("99"), "{msg}");
}

#[test]
fn unwritable_places_are_named() {
    // /proc refuses new files and directories even to root.
    for p in ["/proc/ronda-test/var/ronda.db", "/proc/ronda-test.db"] {
        let msg = Store::open(Path::new(p)).unwrap_err().to_string();
        assert!(msg.contains("/proc/ronda-test"), "{msg}");
        assert!(msg.contains("[store] path"), "{msg}");
    }
    // A regular file where the directory should be.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let msg = Store::open(&file.join("ronda.db")).unwrap_err().to_string();
    assert!(msg.contains(&file.display().to_string()), "{msg}");
    // Not a database.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![7u8; 4096]).unwrap();
    let msg = Store::open(&junk).unwrap_err().to_string();
    assert!(
        msg.contains("junk.db") && msg.contains("not a ronda database"),
        "{msg}"
    );
}

#[test]
fn unsent_is_in_seq_order_and_skips_sent_events() {
    let (_d, s) = temp_store();
    let events: Vec<Event> = (0..10).map(|_| event("gate-1")).collect();
    let seqs: Vec<i64> = events.iter().map(|e| s.append(e).unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    s.mark_sent(seqs[0]).unwrap();
    s.mark_sent(seqs[3]).unwrap();
    s.mark_sent(seqs[3]).unwrap(); // twice is harmless
    assert_eq!(s.backlog().unwrap(), 8);

    let got = s.unsent(0, 4).unwrap();
    let want = [seqs[1], seqs[2], seqs[4], seqs[5]];
    assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), want);
    assert_eq!(got[0].1, events[1]);
    let rest = s.unsent(seqs[5], 100).unwrap();
    assert_eq!(rest.iter().map(|g| g.0).collect::<Vec<_>>(), &seqs[6..]);

    let stored = s.event(&events[3].id).unwrap().unwrap();
    assert_eq!(stored.seq, seqs[3]);
    assert!(stored.sent_at.is_some());
    assert!(s.event(&events[4].id).unwrap().unwrap().sent_at.is_none());
    assert!(s.event("0000").unwrap().is_none());
}

#[test]
fn appending_the_same_event_twice_stores_it_once() {
    let (_d, s) = temp_store();
    let e = event("gate-1");
    let a = s.append(&e).unwrap();
    assert_eq!(s.append(&e).unwrap(), a);
    assert_eq!(s.backlog().unwrap(), 1);
}

/// Make every insert into `table` fail, from outside the store (as a full disk would).
fn sabotage(path: &Path, table: &str) {
    rusqlite::Connection::open(path)
        .unwrap()
        .execute_batch(&format!(
            "CREATE TRIGGER sabotage BEFORE INSERT ON {table} BEGIN SELECT RAISE(ABORT, 'sabotaged'); END;"
        ))
        .unwrap();
}

#[test]
fn a_crossing_is_stored_with_its_counts_or_not_at_all() {
    let since = local(JAKARTA, "2026-11-22 05:00");
    let c1 = Counts { in_: 1, out: 0 };
    let c2 = Counts { in_: 2, out: 0 };

    // The counts write fails: the event must not be stored either.
    let (_d, s) = temp_store();
    let first = event("gate-1");
    s.append_crossing(&first, "gate-1", "gate", c1, since)
        .unwrap();
    sabotage(s.path(), "line_counts");
    // (An update of the existing row does not insert, so use a new line.)
    let e = event("gate-1");
    let err = s
        .append_crossing(&e, "gate-1", "side", c2, since)
        .unwrap_err();
    assert!(err.to_string().contains("sabotaged"), "{err}");
    assert!(s.event(&e.id).unwrap().is_none());
    assert_eq!(s.backlog().unwrap(), 1);
    assert!(s.counts("gate-1", "side").unwrap().is_none());

    // The event write fails: the counts must not change.
    let (_d, s) = temp_store();
    s.append_crossing(&first, "gate-1", "gate", c1, since)
        .unwrap();
    sabotage(s.path(), "events");
    let e = event("gate-1");
    assert!(s.append_crossing(&e, "gate-1", "gate", c2, since).is_err());
    assert_eq!(s.counts("gate-1", "gate").unwrap(), Some((c1, since)));
    assert_eq!(s.backlog().unwrap(), 1);
}

#[test]
fn counts_survive_a_reopen_and_reset_daily() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ronda.db");
    let since = local(JAKARTA, "2026-11-22 05:00");
    let c = Counts { in_: 12, out: 7 };
    Store::open(&path)
        .unwrap()
        .append_crossing(&event("gate-1"), "gate-1", "gate", c, since)
        .unwrap();

    let s = Store::open(&path).unwrap();
    assert_eq!(s.counts("gate-1", "gate").unwrap(), Some((c, since)));
    assert_eq!(s.counts("gate-1", "other").unwrap(), None);

    let at = hm("05:00");
    let evening = local(JAKARTA, "2026-11-22 21:00");
    assert_eq!(
        s.current_counts("gate-1", "gate", evening, at, JAKARTA)
            .unwrap(),
        (c, since)
    );
    // Restarted the next morning after the reset time: zero since now, stored.
    let morning = local(JAKARTA, "2026-11-23 07:00");
    assert_eq!(
        s.current_counts("gate-1", "gate", morning, at, JAKARTA)
            .unwrap(),
        (Counts::default(), morning)
    );
    assert_eq!(
        s.counts("gate-1", "gate").unwrap(),
        Some((Counts::default(), morning))
    );
    s.set_counts("gate-1", "gate", c, morning).unwrap();
    s.reset_counts("gate-1", "gate", evening).unwrap();
    assert_eq!(
        s.counts("gate-1", "gate").unwrap(),
        Some((Counts::default(), evening))
    );
}

#[test]
fn retained_state_keeps_the_last_payload_per_topic() {
    let (_d, s) = temp_store();
    s.set_retained("lines/gate-1/gate/counts", "{\"in\":1}")
        .unwrap();
    s.set_retained("cameras/gate-1/status", "{\"state\":\"online\"}")
        .unwrap();
    s.set_retained("lines/gate-1/gate/counts", "{\"in\":2}")
        .unwrap();
    assert_eq!(
        s.retained().unwrap(),
        vec![
            (
                "cameras/gate-1/status".to_string(),
                "{\"state\":\"online\"}".to_string()
            ),
            (
                "lines/gate-1/gate/counts".to_string(),
                "{\"in\":2}".to_string()
            ),
        ]
    );
}

#[test]
fn threads_append_concurrently() {
    let (_d, s) = temp_store();
    let s = Arc::new(s);
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                (0..50)
                    .map(|_| s.append(&event(&format!("cam-{t}"))).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<i64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 200);
    assert_eq!(s.backlog().unwrap(), 200);
}

#[test]
fn a_full_disk_is_named_and_nothing_half_written() {
    let (_d, s) = temp_store();
    s.append(&event("gate-1")).unwrap();
    // SQLite answers "database or disk is full" once the file may not grow any more.
    {
        let conn = s.conn();
        let pages: i64 = conn
            .pragma_query_value(None, "page_count", |r| r.get(0))
            .unwrap();
        conn.pragma_update(None, "max_page_count", pages).unwrap();
    }
    let mut big = event("gate-1");
    big.zone = Some("x".repeat(64 * 1024));
    let err = s.append(&big).unwrap_err();
    let msg = err.to_string();
    assert!(err.is_disk_full(), "{msg}");
    assert!(
        msg.contains("ronda.db") && msg.contains("the disk is full"),
        "{msg}"
    );
    assert!(s.event(&big.id).unwrap().is_none());
    assert_eq!(s.backlog().unwrap(), 1);
}

fn seqs(v: &[(i64, Event)]) -> Vec<i64> {
    v.iter().map(|(s, _)| *s).collect()
}

#[test]
fn the_webhook_cursor_starts_at_the_end_of_an_existing_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ronda.db");
    let s = Store::open(&path).unwrap();
    let before: Vec<i64> = (0..3)
        .map(|_| s.append(&event("gate-1")).unwrap())
        .collect();
    // No cursor yet: nothing is pending for the webhook, nothing counted.
    assert_eq!(s.webhook_cursor_if_any().unwrap(), None);
    assert!(s.webhook_pending(0, 10).unwrap().is_empty());
    assert_eq!(s.webhook_backlog().unwrap(), 0);

    let c = s.webhook_cursor().unwrap();
    assert_eq!(
        c,
        Cursor {
            seq: before[2],
            new: true
        }
    );
    assert!(s.webhook_pending(0, 10).unwrap().is_empty());
    let after: Vec<i64> = (0..3)
        .map(|_| s.append(&event("gate-1")).unwrap())
        .collect();
    assert_eq!(seqs(&s.webhook_pending(0, 10).unwrap()), after);
    assert_eq!(seqs(&s.webhook_pending(0, 2).unwrap()), &after[..2]);
    assert_eq!(seqs(&s.webhook_pending(after[0], 10).unwrap()), &after[1..]);
    assert_eq!(s.webhook_backlog().unwrap(), 3);

    s.mark_webhook_done(after[0]).unwrap();
    s.mark_webhook_done(before[0]).unwrap(); // never moves back
    assert_eq!(seqs(&s.webhook_pending(0, 10).unwrap()), &after[1..]);
    drop(s);

    // Reopened: the cursor is where it was, not at the end again.
    let s = Store::open(&path).unwrap();
    assert_eq!(
        s.webhook_cursor().unwrap(),
        Cursor {
            seq: after[0],
            new: false
        }
    );
    assert_eq!(seqs(&s.webhook_pending(0, 10).unwrap()), &after[1..]);

    // Forgotten (ronda ran without [webhook]): the next start is at the end again.
    assert!(s.forget_webhook_cursor().unwrap());
    assert!(!s.forget_webhook_cursor().unwrap());
    assert_eq!(
        s.webhook_cursor().unwrap(),
        Cursor {
            seq: after[2],
            new: true
        }
    );
    assert!(s.webhook_pending(0, 10).unwrap().is_empty());
}

#[test]
fn the_webhook_cursor_of_an_empty_store_takes_every_event() {
    let (_d, s) = temp_store();
    assert_eq!(s.webhook_cursor().unwrap(), Cursor { seq: 0, new: true });
    let seq = s.append(&event("gate-1")).unwrap();
    assert_eq!(seqs(&s.webhook_pending(0, 10).unwrap()), [seq]);
}

#[test]
fn webhook_and_mqtt_deliveries_are_independent() {
    let (_d, s) = temp_store();
    s.webhook_cursor().unwrap();
    let a = s.append(&event("gate-1")).unwrap();
    let b = s.append(&event("gate-1")).unwrap();
    s.mark_sent(a).unwrap();
    assert_eq!(seqs(&s.webhook_pending(0, 10).unwrap()), [a, b]);
    s.mark_webhook_done(b).unwrap();
    assert_eq!(s.backlog().unwrap(), 1);
    assert_eq!(s.unsent(0, 10).unwrap()[0].0, b);
    assert_eq!(s.webhook_backlog().unwrap(), 0);
    assert!(
        s.event(&s.unsent(0, 1).unwrap()[0].1.id)
            .unwrap()
            .unwrap()
            .sent_at
            .is_none()
    );
}

#[test]
fn a_version_1_file_is_migrated_and_keeps_its_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ronda.db");
    let s = Store::open(&path).unwrap();
    let seq = s.append(&event("gate-1")).unwrap();
    drop(s);
    // What ronda before the webhook left behind: schema 1.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TABLE gate_record_changes; DROP TABLE gate_records; DROP TABLE gate_entries; \
             DROP TABLE gate_reports; DROP TABLE gate_start_occupancy; DROP TABLE gate_meta; \
             DROP TABLE broker_run; DROP TABLE mqtt_sessions; \
             DROP TABLE acks; DROP TABLE config_versions; DROP TABLE incident_types; DROP TABLE incident_events; DROP TABLE incidents; \
         DROP TABLE sink_cursors; DROP TABLE quarantine; \
         ALTER TABLE events DROP COLUMN quarantined_ms; PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(conn);
    let s = Store::open(&path).unwrap();
    assert_eq!(s.unsent(0, 10).unwrap()[0].0, seq);
    assert_eq!(s.webhook_cursor().unwrap(), Cursor { seq, new: true });
}

#[test]
fn a_quarantined_event_leaves_the_outbox_and_is_kept() {
    let (_d, s) = temp_store();
    let a = s.append(&event("gate-1")).unwrap();
    let bad = event("gate-1");
    let b = s.append(&bad).unwrap();
    let c = s.append(&event("gate-1")).unwrap();
    assert_eq!(
        s.quarantine_event(b, "ronda/rw9/events", "too large")
            .unwrap(),
        Some(bad.id.clone())
    );
    // once only
    assert_eq!(
        s.quarantine_event(b, "ronda/rw9/events", "again").unwrap(),
        None
    );
    let seqs: Vec<i64> = s.unsent(0, 10).unwrap().iter().map(|(q, _)| *q).collect();
    assert_eq!(seqs, [a, c]);
    assert_eq!(s.backlog().unwrap(), 2);
    // the event itself is still there, never marked sent
    assert!(s.event(&bad.id).unwrap().unwrap().sent_at.is_none());
    let q = s.quarantined().unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(
        (q[0].kind.as_str(), q[0].reference.as_str()),
        ("event", bad.id.as_str())
    );
    assert_eq!(q[0].reason, "too large");
    // an acknowledged event is not quarantined after the fact
    s.mark_sent(a).unwrap();
    assert_eq!(s.quarantine_event(a, "t", "r").unwrap(), None);
    assert_eq!(s.quarantine_count().unwrap(), 1);
}

#[test]
fn a_quarantined_retained_topic_is_not_published_again() {
    let (_d, s) = temp_store();
    s.set_retained("lines/c/bad/counts", "{}").unwrap();
    s.set_retained("lines/c/good/counts", "{}").unwrap();
    assert!(
        s.quarantine_retained(
            "lines/c/bad/counts",
            "ronda/x/lines/c/bad/counts",
            "{}",
            "too long"
        )
        .unwrap()
    );
    assert!(
        !s.quarantine_retained(
            "lines/c/bad/counts",
            "ronda/x/lines/c/bad/counts",
            "{}",
            "too long"
        )
        .unwrap()
    );
    let topics: Vec<String> = s.retained().unwrap().into_iter().map(|(t, _)| t).collect();
    assert_eq!(topics, ["lines/c/good/counts"]);
    assert_eq!(s.quarantine_count().unwrap(), 1);
}

#[test]
fn a_cleared_topic_is_forgotten_once_the_broker_has_it_unless_it_came_back() {
    let (_d, s) = temp_store();
    s.set_retained("lines/c/a/counts", "{\"in\":1}").unwrap();
    s.set_retained("lines/c/b/counts", "{\"in\":1}").unwrap();
    assert!(s.clear_retained("lines/c/a/counts").unwrap());
    assert!(s.clear_retained("lines/c/b/counts").unwrap());
    assert!(!s.clear_retained("lines/c/never/counts").unwrap());
    // b was drawn again before the broker acknowledged its clearing
    s.set_retained("lines/c/b/counts", "{\"in\":0}").unwrap();
    s.forget_cleared("lines/c/a/counts").unwrap();
    s.forget_cleared("lines/c/b/counts").unwrap();
    assert_eq!(
        s.retained().unwrap(),
        [("lines/c/b/counts".to_string(), "{\"in\":0}".to_string())]
    );
}

#[test]
fn a_quarantined_acknowledgement_is_not_published_again() {
    let (_d, s) = temp_store();
    let e = event("gate-1");
    s.append(&e).unwrap();
    let Acked::New(a) = s.acknowledge(&e.id, "pos1", Utc::now(), "t").unwrap() else {
        panic!("not stored");
    };
    assert_eq!(s.ack_backlog().unwrap(), 1);
    assert_eq!(
        s.quarantine_ack(a.seq, "ronda/rw9/acks", "too large")
            .unwrap(),
        Some(e.id.clone())
    );
    assert_eq!(
        s.quarantine_ack(a.seq, "ronda/rw9/acks", "again").unwrap(),
        None
    );
    assert!(s.unsent_acks(0, 10).unwrap().is_empty());
    assert_eq!(s.ack_backlog().unwrap(), 0);
    assert_eq!(s.quarantined().unwrap()[0].kind, "ack");
}

#[test]
fn a_new_database_is_private_to_its_user() {
    use std::os::unix::fs::PermissionsExt;
    let (d, s) = temp_store();
    s.append(&event("gate-1")).unwrap();
    let db = d.path().join("var/ronda.db");
    for f in [db.clone(), db.with_extension("db-wal")] {
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
    }
}

#[test]
fn each_notification_destination_keeps_its_own_place_and_retention_waits_for_the_slowest() {
    let (_d, s) = temp_store();
    let old = s.append(&event("gate-1")).unwrap();
    assert_eq!(s.lowest_sink_cursor().unwrap(), None);
    let tg = s.sink_cursor("notify:grup").unwrap();
    assert_eq!(
        tg,
        Cursor {
            seq: old,
            new: true
        }
    );
    let a = s.append(&event("gate-1")).unwrap();
    let b = s.append(&event("gate-1")).unwrap();
    let wa = s.sink_cursor("notify:wa").unwrap();
    assert_eq!(wa.seq, b);
    assert_eq!(seqs(&s.sink_pending("notify:grup", 0, 10).unwrap()), [a, b]);
    assert!(s.sink_pending("notify:wa", 0, 10).unwrap().is_empty());
    s.mark_sink_done("notify:grup", a).unwrap();
    assert_eq!(s.sink_backlog("notify:grup").unwrap(), 1);
    assert_eq!(s.sink_backlog("notify:wa").unwrap(), 0);
    // the slowest destination holds retention back
    assert_eq!(s.lowest_sink_cursor().unwrap(), Some(a));
    // a destination no longer configured lets go
    assert_eq!(
        s.forget_notify_cursors_except(&["notify:wa".to_string()])
            .unwrap(),
        1
    );
    assert_eq!(s.sink_cursor_if_any("notify:grup").unwrap(), None);
    assert_eq!(s.lowest_sink_cursor().unwrap(), Some(b));
    // the webhook's row is not a destination's
    s.webhook_cursor().unwrap();
    assert_eq!(s.forget_notify_cursors_except(&[]).unwrap(), 1);
    assert!(s.webhook_cursor_if_any().unwrap().is_some());
}
