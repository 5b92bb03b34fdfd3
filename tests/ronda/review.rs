//! The reviewers' side of incidents against the real thing: the axum server on a free port in
//! front of a real SQLite store holding incidents indexed from real events, a real MP4 (H.264
//! from x264 through GStreamer's mp4mux) and real JPEG snapshots (the project's snapshot
//! writer) in a temporary clips directory; and the review page in headless Chromium, which
//! filters, plays and seeks the clip and marks the incident reviewed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, TimeZone, Utc};
use gstreamer as gst;
use gstreamer::prelude::*;
use image::{Rgb, RgbImage};
use ronda::events::{Event, EventKind, Severity};
use ronda::geometry::BBox;
use ronda::sinks::clips::incident_path;
use ronda::sinks::snapshot::write_snapshot;
use ronda::store::Store;
use serde_json::{Value, json};

use crate::support as common;
use crate::support::browser_driver;
use crate::support::fake_village;

use common::web::{Reply, agent, reply};

use browser_driver::{Driver, screenshot};
use fake_village::{ADMIN_PW, Fake, GUARD_PW, REVIEWER_PW, Server, start_fake};

const TZ: chrono_tz::Tz = chrono_tz::Asia::Jakarta;
/// A test clip: H.264 at 640x360, 15 fps, a keyframe every second.
#[derive(Clone, Copy)]
struct Footage {
    seconds: u32,
    /// videotestsrc's picture: moving bars compress well; snow keeps the bitrate asked.
    pattern: &'static str,
    kbps: u32,
}

/// For the API: small and quick to make.
const SHORT: Footage = Footage {
    seconds: 12,
    pattern: "smpte horizontal-speed=6",
    kbps: 1500,
};

// ---------------------------------------------------------------- real media

/// A real H.264 MP4 at `path`, muxed as the recorder does (faststart).
fn make_mp4(path: &Path, f: Footage) {
    gst::init().unwrap();
    let desc = format!(
        "videotestsrc num-buffers={} pattern={} \
         ! video/x-raw,format=I420,width=640,height=360,framerate=15/1 \
         ! x264enc speed-preset=ultrafast key-int-max=15 bframes=0 bitrate={} \
         ! h264parse ! mp4mux faststart=true ! filesink location={}",
        f.seconds * 15,
        f.pattern,
        f.kbps,
        path.display()
    );
    let pipeline = gst::parse::launch(&desc).expect("x264enc and mp4mux are installed");
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("the clip is written within a minute");
    pipeline.set_state(gst::State::Null).unwrap();
    if let gst::MessageView::Error(e) = msg.view() {
        panic!("making the test clip: {}", e.error());
    }
}

/// A real JPEG of a scene with one labelled box, written by the project's snapshot writer.
fn make_jpeg(path: &Path, shade: u8) -> u64 {
    let frame = RgbImage::from_fn(320, 180, |x, y| {
        Rgb([(x % 256) as u8, (y + shade as u32) as u8, shade])
    });
    write_snapshot(
        &frame,
        &[(BBox::new(100.0, 40.0, 160.0, 170.0), "no_mask")],
        path,
    )
    .unwrap()
}

// ---------------------------------------------------------------- a village with incidents

/// Site time (Jakarta, +07:00) as UTC.
fn site(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    TZ.with_ymd_and_hms(y, mo, d, h, mi, s)
        .unwrap()
        .with_timezone(&Utc)
}

/// The incidents of [`Village::new`], newest first.
struct Incidents {
    /// gate-1 crowding, 2026-11-23 08:00, no clip asked (camera keeps no ring).
    none: Event,
    /// pos-ronda loitering, 2026-11-22 23:40, clip failed.
    failed: Event,
    /// gate-1 curfew entry, 2026-11-22 23:30, clip still recording.
    pending: Event,
    /// pos-ronda intrusion, 2026-11-21 02:00 (2026-11-20 in UTC), clip ready.
    night: Event,
    /// gate-1 no mask, 2026-11-20 21:00, clip ready; `joined` is part of it.
    mask: Event,
    /// gate-1 intrusion 5 s later, joined to `mask`'s clip, with its own snapshot.
    joined: Event,
}

struct Village {
    dir: tempfile::TempDir,
    store: Arc<Store>,
    inc: Incidents,
    /// The clip of `mask` on disk.
    clip: PathBuf,
    /// The snapshots of `mask` and `joined` on disk.
    snap: PathBuf,
    joined_snap: PathBuf,
}

impl Village {
    fn new() -> Village {
        Village::with(SHORT)
    }

    /// The incidents of [`Incidents`]; `mask` and `night` have a clip of `footage`.
    fn with(footage: Footage) -> Village {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("var/ronda.db")).unwrap());
        let clips = dir.path().join("clips");
        std::fs::create_dir_all(&clips).unwrap();
        let made = dir.path().join("made.mp4");
        make_mp4(&made, footage);
        let v = |camera: &str, kind: EventKind, at: DateTime<Utc>| {
            let e = Event::new("kepatihan-rw9", TZ, camera, kind, Severity::Alert, at);
            store.append(&e).unwrap();
            e
        };
        let paths = |e: &Event| {
            let t = SystemTime::from(DateTime::parse_from_rfc3339(&e.time).unwrap());
            let clip = incident_path(&clips, &e.camera, t, TZ, &e.id, "mp4");
            let snap = incident_path(&clips, &e.camera, t, TZ, &e.id, "jpg");
            (clip, snap)
        };
        let rel = |p: &Path| p.strip_prefix(&clips).unwrap().to_path_buf();
        let ready = |e: &Event, snap_shade: u8| -> (PathBuf, PathBuf) {
            let (clip, snap) = paths(e);
            std::fs::create_dir_all(clip.parent().unwrap()).unwrap();
            std::fs::copy(&made, &clip).unwrap();
            make_jpeg(&snap, snap_shade);
            let opened = store
                .open_incident(e, Some(&rel(&clip)), Some(&rel(&snap)))
                .unwrap();
            assert!(!opened.joined);
            (clip, snap)
        };

        let mask = v(
            "gate-1",
            EventKind::NoMask,
            site(2026, 11, 20, 21, 0, 0) + chrono::Duration::milliseconds(250),
        );
        let (clip, snap) = ready(&mask, 10);
        // a second alert while the clip records joins the incident, with its own snapshot
        let joined = v("gate-1", EventKind::Intrusion, site(2026, 11, 20, 21, 0, 5));
        let joined_snap = paths(&joined).1;
        make_jpeg(&joined_snap, 200);
        let opened = store
            .open_incident(&joined, Some(&rel(&clip)), Some(&rel(&joined_snap)))
            .unwrap();
        assert!(opened.joined);
        let bytes = std::fs::metadata(&clip).unwrap().len();
        let n = store
            .clip_done(
                &[mask.id.clone(), joined.id.clone()],
                &rel(&clip),
                Duration::from_secs(footage.seconds as u64),
                bytes,
            )
            .unwrap();
        assert_eq!(n, 2);

        let night = v(
            "pos-ronda",
            EventKind::Intrusion,
            site(2026, 11, 21, 2, 0, 0),
        );
        let (night_clip, _) = ready(&night, 90);
        store
            .clip_done(
                std::slice::from_ref(&night.id),
                &rel(&night_clip),
                Duration::from_secs(footage.seconds as u64),
                bytes,
            )
            .unwrap();

        let pending = v(
            "gate-1",
            EventKind::CurfewEntry,
            site(2026, 11, 22, 23, 30, 0),
        );
        let (pending_clip, _) = paths(&pending);
        store
            .open_incident(&pending, Some(&rel(&pending_clip)), None)
            .unwrap();

        let failed = v(
            "pos-ronda",
            EventKind::Loitering,
            site(2026, 11, 22, 23, 40, 0),
        );
        let (failed_clip, _) = paths(&failed);
        store
            .open_incident(&failed, Some(&rel(&failed_clip)), None)
            .unwrap();
        store
            .clip_failed(std::slice::from_ref(&failed.id), "the disk is full")
            .unwrap();

        let none = v("gate-1", EventKind::Crowding, site(2026, 11, 23, 8, 0, 0));
        store.open_incident(&none, None, None).unwrap();

        Village {
            store,
            inc: Incidents {
                none,
                failed,
                pending,
                night,
                mask,
                joined,
            },
            clip,
            snap,
            joined_snap,
            dir,
        }
    }

    /// The API server in front of it (the fake village's two cameras and three users).
    fn serve(&self) -> Server {
        let fake = Fake::new(16);
        fake.set_store(self.store.clone());
        let clips = self.dir.path().join("clips");
        start_fake(move |c| c.clips_dir = clips, fake)
    }

    /// Ids newest first, as the list must give them.
    fn all_ids(&self) -> Vec<String> {
        let i = &self.inc;
        [&i.none, &i.failed, &i.pending, &i.night, &i.mask]
            .iter()
            .map(|e| e.id.clone())
            .collect()
    }
}

// ---------------------------------------------------------------- HTTP

fn get_with(url: &str, cookie: Option<&str>, headers: &[(&str, &str)]) -> Reply {
    let mut req = agent().get(url);
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    reply(req.call())
}

fn get(url: &str, cookie: Option<&str>) -> Reply {
    get_with(url, cookie, &[])
}

fn head(url: &str, cookie: &str, range: Option<&str>) -> Reply {
    let mut req = agent().head(url).header("Cookie", cookie);
    if let Some(r) = range {
        req = req.header("Range", r);
    }
    reply(req.call())
}

fn post_json(url: &str, cookie: Option<&str>, body: &str) -> Reply {
    let mut req = agent().post(url).header("Content-Type", "application/json");
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    reply(req.send(body))
}

/// Log in; the `Cookie` header value to send.
fn login(s: &Server, name: &str, password: &str) -> String {
    let body = json!({"name": name, "password": password}).to_string();
    let r = post_json(&s.url("/api/login"), None, &body);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let set = r.header("set-cookie").expect("a session cookie");
    set.split(';').next().unwrap().to_string()
}

fn list(s: &Server, cookie: &str, query: &str) -> Value {
    let r = get(&s.url(&format!("/api/incidents?{query}")), Some(cookie));
    assert_eq!(
        r.status,
        200,
        "{query}: {}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()
}

fn ids(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------- the API

#[test]
fn incidents_are_listed_newest_first_with_their_clip_snapshots_and_events() {
    let v = Village::new();
    let s = v.serve();
    let me = login(&s, "tinjau", REVIEWER_PW);
    let all = list(&s, &me, "");
    assert_eq!(ids(&all), v.all_ids());
    assert_eq!(all["next"], Value::Null);

    let mask = &all["items"][4];
    let id = &v.inc.mask.id;
    assert_eq!(mask["camera"], "gate-1");
    assert_eq!(mask["type"], "no_mask");
    assert_eq!(mask["severity"], "alert");
    assert_eq!(mask["time"], "2026-11-20T21:00:00+07:00", "site time");
    let clip_len = std::fs::metadata(&v.clip).unwrap().len();
    assert_eq!(
        mask["clip"],
        json!({
            "state": "ready",
            "duration_s": SHORT.seconds as f64,
            "bytes": clip_len,
            "url": format!("/api/incidents/{id}/clip.mp4"),
            "note": null,
        })
    );
    assert_eq!(
        mask["snapshot"],
        format!("/api/incidents/{id}/snapshot.jpg")
    );
    assert_eq!(mask["review"], Value::Null);
    let events = mask["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{mask}");
    assert_eq!(events[0]["id"], *id, "the opening event first");
    assert_eq!(events[1]["id"], v.inc.joined.id);
    assert_eq!(events[1]["type"], "intrusion");
    assert_eq!(events[1]["time"], "2026-11-20T21:00:05+07:00");
    assert_eq!(
        events[1]["snapshot"],
        format!("/api/incidents/{}/snapshot.jpg", v.inc.joined.id)
    );

    // clips that cannot be played have no url, and say why
    let by_id = |want: &str| {
        all["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == want)
            .unwrap()
            .clone()
    };
    let pending = by_id(&v.inc.pending.id);
    assert_eq!(pending["clip"]["state"], "pending");
    assert_eq!(pending["clip"]["url"], Value::Null);
    assert_eq!(pending["snapshot"], Value::Null);
    let failed = by_id(&v.inc.failed.id);
    assert_eq!(failed["clip"]["state"], "failed");
    assert_eq!(failed["clip"]["note"], "the disk is full");
    assert_eq!(by_id(&v.inc.none.id)["clip"]["state"], "none");

    // one incident, by its own id or by the id of any of its events
    for by in [id, &v.inc.joined.id] {
        let r = get(&s.url(&format!("/api/incidents/{by}")), Some(&me));
        assert_eq!(r.status, 200);
        assert_eq!(r.json(), *mask, "GET /api/incidents/{by}");
    }
    // the reviewers' camera list: ids and names, no URLs
    let r = get(&s.url("/api/review/cameras"), Some(&me));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!([{"id": "gate-1", "name": "Gapura utama"}, {"id": "pos-ronda", "name": "Pos ronda"}])
    );
}

#[test]
fn each_filter_selects_and_pages_follow_each_other() {
    let v = Village::new();
    let s = v.serve();
    let me = login(&s, "tinjau", REVIEWER_PW);
    let i = &v.inc;
    let want = |events: &[&Event]| events.iter().map(|e| e.id.clone()).collect::<Vec<_>>();

    assert_eq!(
        ids(&list(&s, &me, "camera=pos-ronda")),
        want(&[&i.failed, &i.night])
    );
    assert_eq!(
        ids(&list(&s, &me, "camera=no-such-camera")),
        Vec::<String>::new(),
        "an unknown camera finds nothing"
    );
    // a type matches any event of the incident: the joined intrusion finds the no-mask incident
    assert_eq!(
        ids(&list(&s, &me, "type=intrusion")),
        want(&[&i.night, &i.mask])
    );
    assert_eq!(
        ids(&list(&s, &me, "type=no_mask,curfew_entry")),
        want(&[&i.pending, &i.mask])
    );
    assert_eq!(
        ids(&list(&s, &me, "type=intrusion&camera=gate-1")),
        want(&[&i.mask])
    );
    // days are the site's: 2026-11-21 02:00 in Jakarta is still the 20th in UTC, and `to` as a
    // day includes that day
    assert_eq!(
        ids(&list(&s, &me, "from=2026-11-21&to=2026-11-22")),
        want(&[&i.failed, &i.pending, &i.night])
    );
    assert_eq!(
        ids(&list(&s, &me, "to=2026-11-20")),
        want(&[&i.mask]),
        "to=<day> includes the day"
    );
    assert_eq!(
        ids(&list(
            &s,
            &me,
            "from=2026-11-22T23:35&to=2026-11-23T08:00:00%2B07:00"
        )),
        want(&[&i.failed]),
        "from includes its instant, to excludes its own"
    );
    assert_eq!(
        ids(&list(&s, &me, "from=2026-11-22T16:30:00Z")),
        want(&[&i.none, &i.failed, &i.pending])
    );

    // reviewed / not yet
    assert_eq!(ids(&list(&s, &me, "reviewed=true")), Vec::<String>::new());
    let r = post_json(
        &s.url(&format!("/api/incidents/{}/review", i.night.id)),
        Some(&me),
        "{}",
    );
    assert_eq!(r.status, 200);
    assert_eq!(ids(&list(&s, &me, "reviewed=true")), want(&[&i.night]));
    assert_eq!(
        ids(&list(&s, &me, "reviewed=false")),
        want(&[&i.none, &i.failed, &i.pending, &i.mask])
    );
    assert_eq!(
        ids(&list(&s, &me, "reviewed=false&camera=pos-ronda")),
        want(&[&i.failed])
    );

    // pages of two: no gaps, no repeats, the last says there is no next
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let q = match &cursor {
            Some(c) => format!("limit=2&cursor={c}"),
            None => "limit=2".to_string(),
        };
        let page = list(&s, &me, &q);
        let got = ids(&page);
        assert!(got.len() <= 2, "{q}: {got:?}");
        seen.extend(got);
        pages += 1;
        match page["next"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, v.all_ids());
    // a filter keeps its pages
    let first = list(&s, &me, "camera=gate-1&limit=2");
    assert_eq!(ids(&first), want(&[&i.none, &i.pending]));
    let next = first["next"].as_str().unwrap();
    let second = list(&s, &me, &format!("camera=gate-1&limit=2&cursor={next}"));
    assert_eq!(ids(&second), want(&[&i.mask]));
    assert_eq!(second["next"], Value::Null);
}

#[test]
fn bad_parameters_get_400_naming_them_and_unknown_ids_404() {
    let v = Village::new();
    let s = v.serve();
    let me = login(&s, "tinjau", REVIEWER_PW);
    for (query, says) in [
        ("from=yesterday", vec!["from", "2026-11-22"]),
        ("to=2026-02-30", vec!["to", "Asia/Jakarta"]),
        ("type=ghost", vec!["type", "no_mask", "intrusion"]),
        ("reviewed=yes", vec!["reviewed", "true", "false"]),
        ("limit=0", vec!["limit", "1 to 200"]),
        ("limit=201", vec!["limit", "1 to 200"]),
        ("limit=lots", vec!["limit", "whole number"]),
        ("cursor=garbage", vec!["cursor", "first page"]),
        (
            "from=2026-11-23&to=2026-11-20",
            vec!["starts", "after it ends"],
        ),
        ("colour=red", vec!["colour", "from, to, camera, type"]),
    ] {
        let r = get(&s.url(&format!("/api/incidents?{query}")), Some(&me));
        assert_eq!(r.status, 400, "{query}");
        let msg = r.error();
        for word in says {
            assert!(msg.contains(word), "{query}: `{word}` not in: {msg}");
        }
    }

    let ghost = "17950000000000000abcd";
    for path in [
        format!("/api/incidents/{ghost}"),
        format!("/api/incidents/{ghost}/clip.mp4"),
        format!("/api/incidents/{ghost}/snapshot.jpg"),
    ] {
        let r = get(&s.url(&path), Some(&me));
        assert_eq!(r.status, 404, "{path}");
        assert!(r.error().contains(ghost), "{path}");
    }
    let r = post_json(
        &s.url(&format!("/api/incidents/{ghost}/review")),
        Some(&me),
        r#"{"note": "x"}"#,
    );
    assert_eq!(r.status, 404);
    assert!(r.error().contains(ghost));
    // not an id at all (a path trick is refused before the store)
    let r = get(
        &s.url("/api/incidents/..%2F..%2Fetc%2Fpasswd/clip.mp4"),
        Some(&me),
    );
    assert_eq!(r.status, 400);
    assert!(r.error().contains("not an incident or event id"));

    // clips that are not there say what state they are in
    for (e, state) in [
        (&v.inc.pending, "pending"),
        (&v.inc.failed, "failed"),
        (&v.inc.none, "none"),
    ] {
        let r = get(
            &s.url(&format!("/api/incidents/{}/clip.mp4", e.id)),
            Some(&me),
        );
        assert_eq!(r.status, 404, "{state}");
        let msg = r.error();
        assert!(msg.contains(&format!("state {state}")), "{msg}");
    }
    // a snapshot asked of an event of another incident, or of one without a snapshot
    let r = get(
        &s.url(&format!(
            "/api/incidents/{}/snapshot.jpg?event={}",
            v.inc.mask.id, v.inc.night.id
        )),
        Some(&me),
    );
    assert_eq!(r.status, 404);
    assert!(r.error().contains("not one of incident"));
    let r = get(
        &s.url(&format!("/api/incidents/{}/snapshot.jpg", v.inc.pending.id)),
        Some(&me),
    );
    assert_eq!(r.status, 404);
    assert!(r.error().contains("has no snapshot"));
    // a clip the index has but the disk lost
    std::fs::remove_file(&v.clip).unwrap();
    let r = get(
        &s.url(&format!("/api/incidents/{}/clip.mp4", v.inc.mask.id)),
        Some(&me),
    );
    assert_eq!(r.status, 404);
    assert!(r.error().contains("not on disk"), "{}", r.error());
}

#[test]
fn only_reviewers_and_admins_may_use_the_incident_routes() {
    let v = Village::new();
    let s = v.serve();
    let guard = login(&s, "pos1", GUARD_PW);
    let reviewer = login(&s, "tinjau", REVIEWER_PW);
    let admin = login(&s, "pak-rw", ADMIN_PW);
    let id = &v.inc.mask.id;
    let reads = [
        "/api/incidents".to_string(),
        format!("/api/incidents/{id}"),
        format!("/api/incidents/{id}/clip.mp4"),
        "/api/review/cameras".to_string(),
    ];
    for path in &reads {
        let r = get(&s.url(path), Some(&guard));
        assert_eq!(r.status, 403, "{path}");
        assert!(r.error().contains("guard"), "{path}");
        let r = get(&s.url(path), None);
        assert_eq!(r.status, 401, "{path}");
        assert!(r.error().contains("log in"), "{path}");
        assert_eq!(get(&s.url(path), Some(&reviewer)).status, 200, "{path}");
        assert_eq!(get(&s.url(path), Some(&admin)).status, 200, "{path}");
    }
    // the snapshot is also the guard feed's thumbnail: any logged-in user, nobody else
    let snap = s.url(&format!("/api/incidents/{id}/snapshot.jpg"));
    for who in [&guard, &reviewer, &admin] {
        assert_eq!(get(&snap, Some(who)).status, 200);
    }
    assert_eq!(get(&snap, None).status, 401);
    let review = s.url(&format!("/api/incidents/{id}/review"));
    assert_eq!(post_json(&review, Some(&guard), "{}").status, 403);
    assert_eq!(post_json(&review, None, "{}").status, 401);
    assert!(
        v.store.incident(id).unwrap().unwrap().review.is_none(),
        "refused reviews store nothing"
    );
    assert_eq!(post_json(&review, Some(&admin), "{}").status, 200);
    // the page
    assert_eq!(get(&s.url("/review"), Some(&guard)).status, 403);
    let page = get(&s.url("/review"), Some(&reviewer));
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("media-src 'self'") && csp.contains("img-src 'self'"),
        "{csp}"
    );
    let html = String::from_utf8(page.body).unwrap();
    assert!(html.contains("<video id=\"video\""));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no CDN"
    );
}

#[test]
fn the_clip_answers_ranges_with_exactly_the_bytes_asked() {
    let v = Village::new();
    let s = v.serve();
    let me = login(&s, "tinjau", REVIEWER_PW);
    let file = std::fs::read(&v.clip).unwrap();
    let len = file.len();
    assert!(len > 100_000, "a clip of some size: {len}");
    let url = s.url(&format!("/api/incidents/{}/clip.mp4", v.inc.mask.id));

    let whole = get(&url, Some(&me));
    assert_eq!(whole.status, 200);
    assert_eq!(whole.header("content-type").as_deref(), Some("video/mp4"));
    assert_eq!(whole.header("accept-ranges").as_deref(), Some("bytes"));
    assert_eq!(
        whole.header("content-length").as_deref(),
        Some(len.to_string().as_str())
    );
    assert_eq!(whole.header("content-range"), None);
    assert!(whole.body == file, "the whole clip, byte for byte");

    for (range, start, end) in [
        ("bytes=0-99".to_string(), 0, 99),
        ("bytes=0-0".to_string(), 0, 0),
        ("bytes=70000-70999".to_string(), 70_000, 70_999),
        (format!("bytes={}-", len - 5000), len - 5000, len - 1),
        ("bytes=-300".to_string(), len - 300, len - 1),
        (
            format!("bytes={}-{}", len - 10, len + 500),
            len - 10,
            len - 1,
        ),
        (format!("bytes=1-{}", len - 2), 1, len - 2),
    ] {
        let r = get_with(&url, Some(&me), &[("Range", &range)]);
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {start}-{end}/{len}")),
            "{range}"
        );
        assert_eq!(
            r.header("content-length"),
            Some((end - start + 1).to_string())
        );
        assert_eq!(r.header("content-type").as_deref(), Some("video/mp4"));
        assert!(r.body == file[start..=end], "{range}: wrong bytes");
    }

    for range in [
        format!("bytes={len}-"),
        format!("bytes={}-{}", len + 1, len + 9),
    ] {
        let r = get_with(&url, Some(&me), &[("Range", &range)]);
        assert_eq!(r.status, 416, "{range}");
        assert_eq!(r.header("content-range"), Some(format!("bytes */{len}")));
        assert!(r.error().contains(&len.to_string()));
    }
    // several ranges at once, or a unit it does not know: the whole clip
    for range in ["bytes=0-9,20-29", "seconds=1-2"] {
        let r = get_with(&url, Some(&me), &[("Range", range)]);
        assert_eq!(r.status, 200, "{range}");
        assert!(r.body == file);
    }
    // HEAD: the sizes without the bytes
    let h = head(&url, &me, None);
    assert_eq!(h.status, 200);
    assert_eq!(h.header("content-length"), Some(len.to_string()));
    assert_eq!(h.header("accept-ranges").as_deref(), Some("bytes"));
    assert!(h.body.is_empty());
    let h = head(&url, &me, Some("bytes=100-199"));
    assert_eq!(h.status, 206);
    assert_eq!(
        h.header("content-range"),
        Some(format!("bytes 100-199/{len}"))
    );
    assert!(h.body.is_empty());

    // the joined alert's link plays the same clip
    let joined = s.url(&format!("/api/incidents/{}/clip.mp4", v.inc.joined.id));
    let r = get_with(&joined, Some(&me), &[("Range", "bytes=1000-1999")]);
    assert_eq!(r.status, 206);
    assert!(r.body == file[1000..2000]);

    // the snapshots: a real JPEG, each event its own
    let snap = std::fs::read(&v.snap).unwrap();
    let joined_snap = std::fs::read(&v.joined_snap).unwrap();
    assert_ne!(snap, joined_snap);
    for (path, want) in [
        (
            format!("/api/incidents/{}/snapshot.jpg", v.inc.mask.id),
            &snap,
        ),
        (
            format!("/api/incidents/{}/snapshot.jpg", v.inc.joined.id),
            &joined_snap,
        ),
        (
            format!(
                "/api/incidents/{}/snapshot.jpg?event={}",
                v.inc.mask.id, v.inc.joined.id
            ),
            &joined_snap,
        ),
    ] {
        let r = get(&s.url(&path), Some(&me));
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type").as_deref(), Some("image/jpeg"));
        assert!(r.body == *want, "{path}: wrong picture");
        let img = image::load_from_memory(&r.body).expect("a JPEG that decodes");
        assert_eq!((img.width(), img.height()), (320, 180));
    }
}

#[test]
fn a_review_stores_who_when_and_the_note() {
    let v = Village::new();
    let s = v.serve();
    let me = login(&s, "tinjau", REVIEWER_PW);
    let id = &v.inc.mask.id;
    let before = Utc::now() - chrono::Duration::seconds(1);
    // through the joined alert's id: the incident is marked
    let r = post_json(
        &s.url(&format!("/api/incidents/{}/review", v.inc.joined.id)),
        Some(&me),
        r#"{"note": "  Warga RT 3, sudah ditegur.  "}"#,
    );
    let after = Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let body = r.json();
    assert_eq!(body["id"], *id);
    assert_eq!(body["review"]["by"], "tinjau");
    assert_eq!(body["review"]["note"], "Warga RT 3, sudah ditegur.");
    let at = DateTime::parse_from_rfc3339(body["review"]["at"].as_str().unwrap()).unwrap();
    assert!(
        body["review"]["at"].as_str().unwrap().ends_with("+07:00"),
        "site time"
    );
    assert!(
        at >= before - chrono::Duration::seconds(1) && at <= after,
        "{at}"
    );
    let stored = v.store.incident(id).unwrap().unwrap().review.unwrap();
    assert_eq!(stored.by, "tinjau");
    assert_eq!(stored.note.as_deref(), Some("Warga RT 3, sudah ditegur."));
    assert!(stored.at >= before && stored.at <= after);
    let got = get(&s.url(&format!("/api/incidents/{id}")), Some(&me)).json();
    assert_eq!(got["review"], body["review"]);

    // reviewing again (an admin, no note) replaces it
    let admin = login(&s, "pak-rw", ADMIN_PW);
    let r = post_json(
        &s.url(&format!("/api/incidents/{id}/review")),
        Some(&admin),
        r#"{"note": null}"#,
    );
    assert_eq!(r.status, 200);
    let stored = v.store.incident(id).unwrap().unwrap().review.unwrap();
    assert_eq!(stored.by, "pak-rw");
    assert_eq!(stored.note, None);

    // refused: too long a note, not JSON, unknown fields; nothing changes
    let long = json!({"note": "x".repeat(2001)}).to_string();
    let url = s.url(&format!("/api/incidents/{id}/review"));
    let r = post_json(&url, Some(&me), &long);
    assert_eq!(r.status, 400);
    assert!(r.error().contains("2001") && r.error().contains("2000"));
    for bad in ["note: hello", r#"{"note": 5}"#, r#"{"notes": "x"}"#] {
        let r = post_json(&url, Some(&me), bad);
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.error().contains("send JSON like"), "{}", r.error());
    }
    assert_eq!(
        v.store.incident(id).unwrap().unwrap().review.unwrap().by,
        "pak-rw"
    );
}

#[test]
fn without_a_store_the_incident_routes_answer_503() {
    let s = start_fake(|_| {}, Fake::new(16));
    let me = login(&s, "tinjau", REVIEWER_PW);
    for path in [
        "/api/incidents",
        "/api/incidents/1795000000000000000ab",
        "/api/incidents/1795000000000000000ab/clip.mp4",
        "/api/incidents/1795000000000000000ab/snapshot.jpg",
    ] {
        let r = get(&s.url(path), Some(&me));
        assert_eq!(r.status, 503, "{path}");
        assert!(r.error().contains("[store]"), "{path}");
    }
    let r = post_json(
        &s.url("/api/incidents/1795000000000000000ab/review"),
        Some(&me),
        "{}",
    );
    assert_eq!(r.status, 503);
}

// ---------------------------------------------------------------- the page in a browser

/// A TCP relay between the browser and the server that notes every `Range` the browser sends
/// and every `206` status line the server answers: what the server saw, without changing it.
struct Tap {
    base: String,
    ranges: Arc<Mutex<Vec<String>>>,
    partials: Arc<Mutex<usize>>,
}

fn tap(server: SocketAddr) -> Tap {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let partials = Arc::new(Mutex::new(0));
    let (r, p) = (ranges.clone(), partials.clone());
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(upstream) = TcpStream::connect(server) else {
                continue;
            };
            let (r, p) = (r.clone(), p.clone());
            let (c2, u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
            // requests: header lines are text; note the Range lines
            std::thread::spawn(move || {
                relay(client, upstream, |text| {
                    for line in text.split("\r\n") {
                        if line.len() > 6 && line[..6].eq_ignore_ascii_case("range:") {
                            r.lock().unwrap().push(line[6..].trim().to_string());
                        }
                    }
                })
            });
            // answers: count the 206 status lines
            std::thread::spawn(move || {
                relay(u2, c2, |text| {
                    *p.lock().unwrap() += text.matches("HTTP/1.1 206 ").count();
                })
            });
        }
    });
    Tap {
        base,
        ranges,
        partials,
    }
}

/// Copy `from` to `to`, showing `look` each piece as text with the end of the previous one in
/// front (so a line split between two reads is still seen whole, if seen twice: callers only
/// look at whole lines of requests, which arrive in one piece, and at status lines).
fn relay(mut from: TcpStream, mut to: TcpStream, mut look: impl FnMut(&str)) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        look(&String::from_utf8_lossy(&buf[..n]));
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

fn wait_url(d: &Driver, suffix: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !d.url().ends_with(suffix) {
        assert!(
            Instant::now() < deadline,
            "still at {} (waiting for {suffix})",
            d.url()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// For the browser: a clip much larger than what a player reads ahead (80 s at 4 Mbit/s, 40 MB;
/// Chromium buffers at most 25 MB), so that a seek near its end has to ask the server for a
/// range from there.
const LONG: Footage = Footage {
    seconds: 80,
    pattern: "snow",
    kbps: 4000,
};

#[test]
fn a_reviewer_filters_plays_seeks_and_marks_an_incident_reviewed() {
    let made = Instant::now();
    let v = Village::with(LONG);
    println!("two {} s clips made in {:?}", LONG.seconds, made.elapsed());
    let s = v.serve();
    let relay = tap(s.api.as_ref().unwrap().local_addr());
    let url = |p: &str| format!("{}{p}", relay.base);
    let d = Driver::start();
    // a phone held upright
    d.cmd(
        "POST",
        "/window/rect",
        Some(json!({"width": 360, "height": 740})),
    );

    d.goto(&url("/review"));
    wait_url(&d, "/login");
    d.type_into("#name", "tinjau");
    d.type_into("#password", REVIEWER_PW);
    d.click("#submit");
    wait_url(&d, "/review");
    d.wait_for(
        "return document.querySelectorAll('#list li').length === 5;",
        json!([]),
        Duration::from_secs(10),
    )
    .expect("the five incidents listed");
    let order = d.exec(
        "return [...document.querySelectorAll('#list li')].map(li => li.dataset.id);",
        json!([]),
    );
    assert_eq!(order, json!(v.all_ids()), "newest first");
    // Indonesian by default, site times
    let first_mask = d.exec(
        "return document.querySelector('#list li[data-id=\"' + arguments[0] + '\"]').textContent;",
        json!([v.inc.mask.id]),
    );
    let text = first_mask.as_str().unwrap();
    assert!(
        text.contains("Tanpa masker") && text.contains("20/11/2026 21:00:00"),
        "{text}"
    );
    assert!(text.contains("Gapura utama"), "camera name: {text}");
    let label = d.exec(
        "return document.getElementById('f-apply').textContent;",
        json!([]),
    );
    assert_eq!(label, "Tampilkan");
    // nothing wider than the phone
    let overflow = d.exec(
        "return document.documentElement.scrollWidth - window.innerWidth;",
        json!([]),
    );
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "the page is wider than a 360 px phone by {overflow} px"
    );
    screenshot(&d, "review-list.png");

    // filter by type: of the two playable incidents, the no-mask one remains
    d.click("#f-type option[value=no_mask]");
    d.click("#f-apply");
    d.wait_for(
        "const li = document.querySelectorAll('#list li'); \
         return li.length === 1 && li[0].dataset.id === arguments[0];",
        json!([v.inc.mask.id]),
        Duration::from_secs(10),
    )
    .expect("only the no-mask incident after filtering by type");

    // open it: the clip plays
    d.click(&format!(
        "#list li[data-id=\"{}\"] button.pick",
        v.inc.mask.id
    ));
    let playing = d
        .wait_for(
            "const v = document.getElementById('video'); \
             return v.readyState >= 2 && !v.paused && v.currentTime > 0;",
            json!([]),
            Duration::from_secs(15),
        )
        .unwrap_or_else(|| {
            let state = d.exec(
                "const v = document.getElementById('video'); \
                 return {src: v.currentSrc, ready: v.readyState, paused: v.paused, \
                 error: v.error && v.error.code, msg: v.error && v.error.message, \
                 canPlay: v.canPlayType('video/mp4; codecs=\"avc1.64001e\"')};",
                json!([]),
            );
            panic!("the clip did not start playing: {state}")
        });
    let t0 = d
        .exec(
            "return document.getElementById('video').currentTime;",
            json!([]),
        )
        .as_f64()
        .unwrap();
    d.wait_for(
        "return document.getElementById('video').currentTime > arguments[0] + 0.5;",
        json!([t0]),
        Duration::from_secs(10),
    )
    .expect("currentTime advances while playing");
    let duration = d
        .exec(
            "return document.getElementById('video').duration;",
            json!([]),
        )
        .as_f64()
        .unwrap();
    assert!(
        (duration - LONG.seconds as f64).abs() < 0.5,
        "duration {duration}"
    );
    // seekable over the whole clip: the browser knows it may ask for any byte range
    let seekable_end = d
        .exec(
            "const s = document.getElementById('video').seekable; \
             return s.length ? s.end(s.length - 1) : 0;",
            json!([]),
        )
        .as_f64()
        .unwrap();
    assert!(
        seekable_end > duration - 0.5,
        "seekable to {seekable_end} of {duration}"
    );

    // seek to 8 s before the end: it holds there and plays on from there, having asked the
    // server for the bytes from about there on (not the whole file)
    let seek_to = LONG.seconds as f64 - 8.0;
    let ranges_before = relay.ranges.lock().unwrap().len();
    let partials_before = *relay.partials.lock().unwrap();
    d.exec(
        "document.getElementById('video').currentTime = arguments[0];",
        json!([seek_to]),
    );
    let seeked = d
        .wait_for(
            "const v = document.getElementById('video'); \
             return !v.seeking && v.currentTime >= arguments[0] && v.readyState >= 2;",
            json!([seek_to]),
            Duration::from_secs(10),
        )
        .expect("the seek completes where asked");
    d.wait_for(
        "const v = document.getElementById('video'); \
         return v.currentTime > arguments[0] + 0.5 && v.currentTime < arguments[0] + 4;",
        json!([seek_to]),
        Duration::from_secs(10),
    )
    .expect("it plays on from where it was seeked to");
    let ranges = relay.ranges.lock().unwrap().clone();
    let partials = *relay.partials.lock().unwrap();
    println!(
        "first frame {:.0} ms after the click; seek done in {:.0} ms; ranges the browser asked: \
         {ranges:?}; 206 answers: {partials}",
        playing.as_secs_f64() * 1000.0,
        seeked.as_secs_f64() * 1000.0,
    );
    assert!(
        ranges[..ranges_before]
            .iter()
            .any(|r| r.starts_with("bytes=")),
        "the browser asked the clip by ranges from the start"
    );
    let clip_len = std::fs::metadata(&v.clip).unwrap().len();
    let seek_starts: Vec<u64> = ranges[ranges_before..]
        .iter()
        .filter_map(|r| r.strip_prefix("bytes=")?.split('-').next()?.parse().ok())
        .collect();
    assert!(
        seek_starts.iter().any(|&b| b > clip_len / 2),
        "the seek asked for a range near the end of the {clip_len} bytes: {seek_starts:?}"
    );
    assert!(
        partials > partials_before && partials_before >= 1,
        "the server answered the ranges with 206 ({partials_before} before the seek, \
         {partials} after)"
    );

    // the snapshot is shown (loaded under the page's CSP)
    d.wait_for(
        "const i = document.getElementById('d-snap'); \
         return !i.hidden && i.complete && i.naturalWidth === 320;",
        json!([]),
        Duration::from_secs(10),
    )
    .expect("the snapshot shows");
    screenshot(&d, "review-detail.png");

    // mark it reviewed with a note
    d.type_into("#note", "Sudah dicek, warga RT 2.");
    d.click("#mark");
    d.wait_for(
        "return document.getElementById('d-review').textContent.includes('Ditinjau oleh tinjau');",
        json!([]),
        Duration::from_secs(10),
    )
    .expect("the page shows the review");
    let stored = v
        .store
        .incident(&v.inc.mask.id)
        .unwrap()
        .unwrap()
        .review
        .expect("reviewed in the store");
    assert_eq!(stored.by, "tinjau");
    assert_eq!(stored.note.as_deref(), Some("Sudah dicek, warga RT 2."));
    let me = login(&s, "tinjau", REVIEWER_PW);
    let api = get(
        &s.url(&format!("/api/incidents/{}", v.inc.mask.id)),
        Some(&me),
    )
    .json();
    assert_eq!(api["review"]["by"], "tinjau");
    assert_eq!(api["review"]["note"], "Sudah dicek, warga RT 2.");
    assert_eq!(
        ids(&list(&s, &me, "reviewed=true")),
        vec![v.inc.mask.id.clone()]
    );

    // English on the switch
    d.click("#lang");
    d.wait_for(
        "return document.getElementById('d-title').textContent === 'No mask' \
         && document.getElementById('d-review').textContent.includes('Reviewed by tinjau') \
         && document.getElementById('f-apply').textContent === 'Show';",
        json!([]),
        Duration::from_secs(5),
    )
    .expect("the English switch translates the page");
    screenshot(&d, "review-en.png");
}
