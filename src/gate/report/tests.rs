//! The daily report: its periods, its figures and forms, the scheduler.

use std::sync::Arc;

use chrono::NaiveDate;

use super::*;
use crate::events::{Event, EventKind, Severity};
use crate::store::{NewGateEntry, RecordFields};

const JKT: Tz = chrono_tz::Asia::Jakarta;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn six() -> NaiveTime {
    NaiveTime::from_hms_opt(6, 0, 0).unwrap()
}

#[test]
fn the_period_is_the_24_hours_before_the_last_report_time() {
    let (f, t) = period_ending(at("2026-11-23T06:00:00+07:00"), six(), JKT);
    assert_eq!(f, at("2026-11-22T06:00:00+07:00"));
    assert_eq!(t, at("2026-11-23T06:00:00+07:00"));
    let (f, t) = period_ending(at("2026-11-23T05:59:59+07:00"), six(), JKT);
    assert_eq!(
        (f, t),
        (
            at("2026-11-21T06:00:00+07:00"),
            at("2026-11-22T06:00:00+07:00")
        )
    );
    assert_eq!(
        next_after(at("2026-11-23T05:59:59+07:00"), six(), JKT),
        at("2026-11-23T06:00:00+07:00")
    );
    assert_eq!(
        next_after(at("2026-11-23T06:00:00+07:00"), six(), JKT),
        at("2026-11-24T06:00:00+07:00")
    );
    // a clock change: Berlin skips 02:30 on 2026-03-29
    let berlin = chrono_tz::Europe::Berlin;
    let t = instant(
        NaiveDate::from_ymd_opt(2026, 3, 29).unwrap(),
        NaiveTime::from_hms_opt(2, 30, 0).unwrap(),
        berlin,
    );
    assert_eq!(t, at("2026-03-29T03:30:00+02:00"));
}

fn crossing(store: &Store, id: &str, time: &str, d: Direction, night: bool) {
    store
        .log_gate_entry(&NewGateEntry {
            id: id.into(),
            camera: "gate-1".into(),
            line: "gapura".into(),
            direction: d,
            track_id: Some(1),
            time: time.into(),
            at: at(time),
            mask: None,
            crop: None,
            night,
        })
        .unwrap();
}

fn event(store: &Store, kind: EventKind, sev: Severity, camera: &str, time: &str) {
    let e = Event::new("rw9", JKT, camera, kind, sev, at(time));
    store.append(&e).unwrap();
}

fn site() -> ReportSite {
    ReportSite {
        id: "rw9".into(),
        name: "Kepatihan RW 9".into(),
        tz: JKT,
        language: Language::Id,
        report_at: six(),
        cameras: vec![
            ("gate-1".into(), "Gapura utama".into()),
            ("pos".into(), "Pos ronda".into()),
        ],
        public_url: None,
    }
}

#[test]
fn a_day_in_figures_page_csv_and_text() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("r.db")).unwrap();
    crossing(
        &store,
        "a",
        "2026-11-22T07:10:00+07:00",
        Direction::In,
        false,
    );
    crossing(
        &store,
        "b",
        "2026-11-22T07:20:00+07:00",
        Direction::In,
        false,
    );
    crossing(
        &store,
        "c",
        "2026-11-22T17:05:00+07:00",
        Direction::Out,
        false,
    );
    crossing(
        &store,
        "n",
        "2026-11-22T23:30:00+07:00",
        Direction::In,
        true,
    );
    crossing(
        &store,
        "n2",
        "2026-11-23T01:30:00+07:00",
        Direction::In,
        true,
    );
    crossing(
        &store,
        "late",
        "2026-11-23T06:00:00+07:00",
        Direction::In,
        false,
    );
    crossing(
        &store,
        "early",
        "2026-11-22T05:59:59+07:00",
        Direction::In,
        false,
    );
    store.mark_gate_unrecorded("n", "ev-n").unwrap();
    store
        .create_gate_record(
            &RecordFields {
                kind: Some(PersonKind::Guest),
                name: "=Siti, \"Bu RT\"".into(),
                origin: "Malang".into(),
                ..Default::default()
            },
            Some("a"),
            "pos1",
            at("2026-11-22T07:12:00+07:00"),
        )
        .unwrap();
    store
        .create_gate_record(
            &RecordFields {
                kind: Some(PersonKind::Resident),
                name: "Pak Budi".into(),
                ..Default::default()
            },
            Some("n2"),
            "pos1",
            at("2026-11-23T01:31:00+07:00"),
        )
        .unwrap();
    use EventKind::*;
    use Severity::*;
    event(&store, NoMask, Alert, "gate-1", "2026-11-22T07:10:00+07:00");
    event(&store, NoMask, Alert, "gate-1", "2026-11-22T08:10:00+07:00");
    event(&store, Intrusion, Alert, "pos", "2026-11-22T22:10:00+07:00");
    event(
        &store,
        LineCrossing,
        Info,
        "gate-1",
        "2026-11-22T08:10:00+07:00",
    );
    // pos: down from before the day until 06:30, then 10:00-10:15; gate-1 down at the end
    event(
        &store,
        CameraOffline,
        Warning,
        "pos",
        "2026-11-22T05:00:00+07:00",
    );
    event(
        &store,
        CameraOnline,
        Info,
        "pos",
        "2026-11-22T06:30:00+07:00",
    );
    event(
        &store,
        CameraOffline,
        Warning,
        "pos",
        "2026-11-22T10:00:00+07:00",
    );
    event(
        &store,
        CameraOnline,
        Info,
        "pos",
        "2026-11-22T10:15:00+07:00",
    );
    event(
        &store,
        CameraOffline,
        Warning,
        "gate-1",
        "2026-11-23T05:50:00+07:00",
    );
    let (from, to) = period_of(NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(), six(), JKT);
    let r = build(&store, &site(), from, to, to).unwrap();
    assert_eq!(r.day, "2026-11-22");
    assert_eq!(r.hours.len(), 24);
    assert_eq!(r.hours[0].hour, "06:00");
    assert_eq!(
        r.hours[1],
        HourCount {
            hour: "07:00".into(),
            in_: 2,
            out: 0
        }
    );
    assert_eq!((r.total_in, r.total_out), (4, 1));
    assert_eq!(
        r.alerts,
        [
            KindCount {
                kind: "camera_offline".into(),
                count: 2
            },
            KindCount {
                kind: "no_mask".into(),
                count: 2
            },
            KindCount {
                kind: "intrusion".into(),
                count: 1
            },
        ]
    );
    assert_eq!((r.recorded.guests, r.recorded.residents), (1, 1));
    assert_eq!(r.unrecorded_night.len(), 1);
    assert_eq!(r.unrecorded_night[0].id, "n");
    assert!(r.unrecorded_night[0].alerted);
    assert_eq!(
        r.cameras_offline,
        [
            Outage {
                camera: "gate-1".into(),
                name: "Gapura utama".into(),
                times: 1,
                minutes: 10,
                offline_at_end: true
            },
            Outage {
                camera: "pos".into(),
                name: "Pos ronda".into(),
                times: 1,
                minutes: 45,
                offline_at_end: false
            },
        ]
    );
    let msg = text(
        &r,
        JKT,
        Language::Id,
        Some("https://r.example/gatebook#report=2026-11-22"),
    );
    println!("{msg}");
    assert!(
        msg.contains("Masuk 4, keluar 1; tersibuk mulai 07:00 (2 orang)"),
        "{msg}"
    );
    assert!(
        msg.contains("Tercatat: 1 tamu, 0 pendatang, 1 warga"),
        "{msg}"
    );
    assert!(msg.contains("Masuk malam tidak tercatat: 1"), "{msg}");
    assert!(msg.contains("2× Tanpa masker di gerbang"), "{msg}");
    assert!(
        msg.contains("Gapura utama (1×, 10 menit, masih mati)"),
        "{msg}"
    );
    assert!(msg.contains("Sen 23 Nov 06:00 WIB"), "{msg}");
    assert!(!msg.contains("Siti"), "no names in the chat message: {msg}");
    let en = text(&r, JKT, Language::En, None);
    assert!(
        en.contains("In 4, out 1") && en.contains("Cameras offline: Gapura utama"),
        "{en}"
    );
    let c = csv(&r);
    assert!(c.starts_with("section,item,in,out,count,detail\r\n"), "{c}");
    assert!(c.contains("hour,07:00,2,0,,\r\n"), "{c}");
    assert!(c.contains("total,,4,1,,\r\n"), "{c}");
    assert!(
        c.contains("person,guest,,,,\"'=Siti, \"\"Bu RT\"\": Malang;"),
        "{c}"
    );
}

#[test]
fn the_scheduler_makes_each_day_once_and_never_a_day_before_its_first_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("r.db")).unwrap());
    let start = at("2026-11-23T05:59:50+07:00");
    let mut s = Scheduler::new(store.clone(), site(), None, start);
    s.check(start);
    assert!(
        store.gate_reports(10).unwrap().is_empty(),
        "21-22 Nov ended before the start"
    );
    assert_eq!(s.next_after(start), at("2026-11-23T06:00:00+07:00"));
    s.check(at("2026-11-23T06:00:00+07:00"));
    let made = store.gate_reports(10).unwrap();
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].day, "2026-11-22");
    assert_eq!(
        made[0].send_note.as_deref(),
        Some("no [webhook] configured")
    );
    // a second scheduler (a restart) on the same day makes nothing new
    let mut again = Scheduler::new(store.clone(), site(), None, at("2026-11-23T07:00:00+07:00"));
    again.check(at("2026-11-23T07:00:00+07:00"));
    assert_eq!(store.gate_reports(10).unwrap().len(), 1);
    assert_eq!(again.last_day().as_deref(), Some("2026-11-22"));
    again.check(at("2026-11-24T06:00:01+07:00"));
    assert_eq!(store.gate_reports(10).unwrap().len(), 2);
}
