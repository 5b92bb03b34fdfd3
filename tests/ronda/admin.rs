//! The admin's line and zone editor against the real HTTP server, a real SQLite store and a real
//! configuration file in a temporary directory, with the fake village behind it: saves written
//! back with their comments, versioned and applied; refused edits that change nothing; stale
//! saves; the role matrix; history, diff and revert; the camera picture; and the page itself in
//! headless Chromium (drawing a line with pointer actions).

use std::path::PathBuf;
use std::sync::Arc;

use chrono::Utc;
use ronda::api::CameraPicture;
use ronda::config::Settings;
use ronda::geometry::Point;
use ronda::store::Store;
use serde_json::{Value, json};

use crate::support as common;
use crate::support::browser_driver;
use crate::support::fake_village;

use common::web::{Reply, agent, reply};

use browser_driver::{
    Driver, click_at, log_in_at, on_canvas, pointer, screenshot, scroll_to_middle, wait,
};
use fake_village::{ADMIN_PW, Fake, GUARD_PW, REVIEWER_PW, Server, Sight, config_text, start_fake};

// ---------------------------------------------------------------- HTTP

fn get(s: &Server, path: &str, cookie: Option<&str>) -> Reply {
    let mut req = agent().get(&s.url(path));
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    reply(req.call())
}

fn send(s: &Server, method: &str, path: &str, cookie: Option<&str>, body: &str) -> Reply {
    let url = s.url(path);
    let a = agent();
    let mut req = match method {
        "PUT" => a.put(&url),
        _ => a.post(&url),
    }
    .header("Content-Type", "application/json");
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    reply(req.send(body))
}

fn login(s: &Server, name: &str, password: &str) -> String {
    let body = json!({"name": name, "password": password}).to_string();
    let r = send(s, "POST", "/api/login", None, &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let set = r.header("set-cookie").expect("a session cookie");
    set.split(';').next().unwrap().to_string()
}

// ---------------------------------------------------------------- the village

/// The fake village's file with comments in it, as an installer would have written it.
fn commented_file() -> String {
    let mut t = config_text().to_string();
    for (from, to) in [
        (
            "[[cameras]]\nid = \"gate-1\"",
            "# The gate, by the portal.\n[[cameras]]\nid = \"gate-1\"",
        ),
        (
            "  [[cameras.lines]]\n  name = \"gate\"",
            "  # the main line, from the left post\n  [[cameras.lines]]\n  name = \"gate\"",
        ),
        (
            "points = [[320, 100], [320, 360]]",
            "points = [[320, 100], [320, 360]]  # measured 2026-01-10",
        ),
    ] {
        assert_eq!(t.matches(from).count(), 1, "{from}");
        t = t.replacen(from, to, 1);
    }
    format!("# Kepatihan RW 9: cameras and users of the village.\n{t}")
}

const COMMENTS: [&str; 4] = [
    "# Kepatihan RW 9: cameras and users of the village.",
    "# The gate, by the portal.",
    "  # the main line, from the left post",
    "points = [[320, 100], [320, 360]]  # measured 2026-01-10",
];

/// A 640x360 camera picture (a JPEG).
fn picture() -> CameraPicture {
    let img = image::RgbImage::from_fn(640, 360, |x, y| {
        image::Rgb([
            (x / 3) as u8,
            (y / 2) as u8,
            if (x / 40 + y / 40) % 2 == 0 { 60 } else { 120 },
        ])
    });
    let mut jpeg = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut jpeg),
        image::ImageFormat::Jpeg,
    )
    .unwrap();
    CameraPicture {
        jpeg,
        width: 640,
        height: 360,
        at: Utc::now(),
    }
}

struct Village {
    s: Server,
    path: PathBuf,
    store: Arc<Store>,
    fake: Arc<Fake>,
    _dir: tempfile::TempDir,
}

impl Village {
    fn file(&self) -> String {
        std::fs::read_to_string(&self.path).unwrap()
    }

    fn settings(&self) -> Settings {
        Settings::load(&self.path).unwrap()
    }

    fn applied(&self) -> Vec<Settings> {
        self.fake.applied.lock().unwrap().clone()
    }
}

fn village(with_file: bool) -> Village {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ronda.toml");
    std::fs::write(&path, commented_file()).unwrap();
    let store = Arc::new(Store::open(&dir.path().join("ronda.db")).unwrap());
    let fake = Fake::new(64);
    fake.set_store(store.clone());
    let p = path.clone();
    let s = start_fake(
        move |cfg| {
            if with_file {
                cfg.config_path = Some(p);
            }
        },
        fake.clone(),
    );
    Village {
        s,
        path,
        store,
        fake,
        _dir: dir,
    }
}

fn gate_line() -> Value {
    json!({"name": "gate", "was": "gate", "points": [[320, 100], [320, 360]],
           "anchor": "bottom_center", "no_mask_alert": true})
}

fn edit(base: i64, lines: Value, zones: Value) -> String {
    json!({"base_version": base, "mask_check": true, "lines": lines, "zones": zones}).to_string()
}

fn with_gate_2(base: i64) -> String {
    edit(
        base,
        json!([gate_line(), {"name": "gate-2", "points": [[100, 300], [540, 280]],
                             "curfew": "22:00-05:00"}]),
        json!([]),
    )
}

/// The version the editor would load.
fn loaded_version(v: &Village, cookie: &str) -> i64 {
    let r = get(&v.s, "/api/admin/cameras", Some(cookie));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["version"].as_i64().unwrap()
}

fn near(p: Point, x: f32, y: f32, within: f32) -> bool {
    (p.x - x).abs() <= within && (p.y - y).abs() <= within
}

// ---------------------------------------------------------------- the API

#[test]
fn a_valid_edit_is_written_with_its_comments_versioned_by_the_admin_and_applied() {
    let v = village(true);
    let admin = login(&v.s, "pak-rw", ADMIN_PW);

    let r = get(&v.s, "/api/admin/cameras", Some(&admin));
    assert_eq!(r.status, 200, "{}", r.text());
    let cams = r.json();
    assert_eq!(cams["version"], 1, "the file as found is version 1");
    let gate = &cams["cameras"][0];
    assert_eq!(gate["id"], "gate-1");
    assert_eq!(gate["role"], "gate");
    assert_eq!(gate["url"], "rtsp://admin:***@192.168.1.21:554/stream2");
    assert_eq!(gate["state"], "online");
    assert_eq!(
        gate["lines"][0]["points"],
        json!([[320.0, 100.0], [320.0, 360.0]])
    );
    assert_eq!(gate["mask_check"], true);
    assert!(!r.text().contains("argon2") && !r.text().contains("RONDA_CAM_PASS"));

    let r = send(
        &v.s,
        "PUT",
        "/api/admin/cameras/gate-1",
        Some(&admin),
        &with_gate_2(1),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let a = r.json();
    assert_eq!(a["version"], 2);
    assert_eq!(a["changed"], true);
    assert_eq!(a["summary"], "gate-1: line `gate-2` added");
    assert_eq!(a["applied"], json!(["applied to the fake village"]));

    // the file: every comment kept, the new line in it, valid
    let text = v.file();
    for c in COMMENTS {
        assert!(text.contains(c), "lost `{c}`:\n{text}");
    }
    assert!(
        text.contains(
            "  name = \"gate-2\"\n  points = [[100, 300], [540, 280]]\n  curfew = \"22:00-05:00\"\n"
        ),
        "{text}"
    );
    let before = commented_file();
    let tail = &before[before.find("[[cameras]]\nid = \"pos-ronda\"").unwrap()..];
    assert!(text.ends_with(tail), "the other camera changed:\n{text}");
    let gate = v.settings().camera("gate-1").unwrap().clone();
    assert_eq!(gate.lines.len(), 2);

    // the version: by the admin, the file's text
    let newest = v.store.latest_config_version().unwrap().unwrap();
    assert_eq!(newest.version.version, 2);
    assert_eq!(newest.version.saved_by, "pak-rw");
    assert_eq!(newest.text, text);

    // applied: the running village got the settings with the new line
    let applied = v.applied();
    assert_eq!(applied.len(), 1);
    let line = &applied[0].camera("gate-1").unwrap().lines[1];
    assert_eq!(line.name, "gate-2");
    assert_eq!(
        (line.a, line.b),
        (Point::new(100.0, 300.0), Point::new(540.0, 280.0))
    );
    assert!(line.curfew.is_some());

    // the configuration view follows the file, not the one read at the start
    let r = get(&v.s, "/api/admin/config", Some(&admin));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["cameras"][0]["lines"][1]["name"], "gate-2");

    // the same edit again changes nothing and stores no version
    let r = send(
        &v.s,
        "PUT",
        "/api/admin/cameras/gate-1",
        Some(&admin),
        &with_gate_2(2),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["changed"], false);
    assert_eq!(v.store.config_versions(10).unwrap().len(), 2);
    assert_eq!(v.applied().len(), 1);
}

#[test]
fn invalid_edits_are_refused_at_their_place_and_change_nothing() {
    let v = village(true);
    let admin = login(&v.s, "pak-rw", ADMIN_PW);
    let base = loaded_version(&v, &admin);
    let before = std::fs::read(&v.path).unwrap();

    // a line of one point
    let r = send(
        &v.s,
        "PUT",
        "/api/admin/cameras/gate-1",
        Some(&admin),
        &edit(
            base,
            json!([gate_line(), {"name": "gate-2", "points": [[100, 300]]}]),
            json!([]),
        ),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let b = r.json();
    assert!(b["error"].as_str().unwrap().contains("not saved"), "{b}");
    let issue = &b["issues"][0];
    assert_eq!(issue["place"], "cameras[0].lines[1].points");
    assert_eq!(issue["line"], 1);
    assert_eq!(issue["field"], "points");
    assert_eq!(issue["message"], "a line needs 2 points, got 1");
    assert_eq!(b["issues"].as_array().unwrap().len(), 1, "{b}");

    // a zone that crosses itself
    let r = send(
        &v.s,
        "PUT",
        "/api/admin/cameras/gate-1",
        Some(&admin),
        &edit(
            base,
            json!([gate_line()]),
            json!([{"name": "lapangan", "kind": "crowd",
                    "polygon": [[0, 0], [100, 100], [100, 0], [0, 100]]}]),
        ),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let issue = &r.json()["issues"][0];
    assert_eq!(issue["place"], "cameras[0].zones[0].polygon");
    assert_eq!(
        (issue["zone"].as_i64(), issue["field"].as_str()),
        (Some(0), Some("polygon"))
    );
    assert!(issue.get("line").is_none());
    assert!(
        issue["message"]
            .as_str()
            .unwrap()
            .contains("crosses itself at edge 0 and 2"),
        "{issue}"
    );

    // a kind that does not exist, a curfew that is no time: both reported at once
    let r = send(
        &v.s,
        "PUT",
        "/api/admin/cameras/gate-1",
        Some(&admin),
        &edit(
            base,
            json!([{"name": "gate", "was": "gate", "points": [[320, 100], [320, 360]], "curfew": "jam 10"}]),
            json!([{"name": "z", "kind": "forbidden", "polygon": [[0, 0], [10, 0], [10, 10]]}]),
        ),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let fields: Vec<(Value, Value, Value)> = r.json()["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["line"].clone(), i["zone"].clone(), i["field"].clone()))
        .collect();
    assert_eq!(
        fields,
        [
            (json!(0), Value::Null, json!("curfew")),
            (Value::Null, json!(0), json!("kind"))
        ]
    );

    // not understood at all, or without the version it was made on
    let r = send(
        &v.s,
        "PUT",
        "/api/admin/cameras/gate-1",
        Some(&admin),
        "{\"lines\": 3}",
    );
    assert_eq!(r.status, 400);
    assert!(r.error().contains("not understood"), "{}", r.text());
    let r = send(
        &v.s,
        "PUT",
        "/api/admin/cameras/gate-1",
        Some(&admin),
        "{\"lines\": []}",
    );
    assert_eq!(r.status, 400);
    assert!(r.error().contains("base_version is missing"));
    let r = send(
        &v.s,
        "PUT",
        "/api/admin/cameras/cam-99",
        Some(&admin),
        &with_gate_2(base),
    );
    assert_eq!(r.status, 404);
    assert!(r.error().contains("no camera `cam-99`"));

    assert_eq!(
        std::fs::read(&v.path).unwrap(),
        before,
        "the file was touched"
    );
    assert!(v.applied().is_empty(), "something was applied");
    assert_eq!(v.store.config_versions(10).unwrap().len(), 1);
}

#[test]
fn a_save_on_a_stale_version_is_refused_and_a_hand_edit_becomes_a_version() {
    let v = village(true);
    let admin = login(&v.s, "pak-rw", ADMIN_PW);
    let base = loaded_version(&v, &admin);
    let r = send(
        &v.s,
        "PUT",
        "/api/admin/cameras/gate-1",
        Some(&admin),
        &with_gate_2(base),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let after_first = v.file();

    // another editor still on version 1
    let r = send(
        &v.s,
        "PUT",
        "/api/admin/cameras/gate-1",
        Some(&admin),
        &edit(base, json!([gate_line()]), json!([])),
    );
    assert_eq!(r.status, 409, "{}", r.text());
    let msg = r.error();
    assert!(
        msg.contains("someone else saved meanwhile") && msg.contains("reload"),
        "{msg}"
    );
    assert!(msg.contains("by pak-rw"), "{msg}");
    assert_eq!(r.json()["version"], 2);
    assert_eq!(v.file(), after_first);

    // the file edited by hand: kept as a version of its own, and saves on version 2 refused
    let hand = after_first.replace("name = \"Gapura utama\"", "name = \"Gapura timur\"");
    std::fs::write(&v.path, &hand).unwrap();
    let r = send(
        &v.s,
        "PUT",
        "/api/admin/cameras/gate-1",
        Some(&admin),
        &with_gate_2(2),
    );
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(v.file(), hand);
    let list = v.store.config_versions(10).unwrap();
    assert_eq!(list[0].version, 3);
    assert_eq!(list[0].saved_by, "file");
    assert_eq!(list[0].summary, "edited by hand or first start");
    assert_eq!(v.applied().len(), 1);
}

#[test]
fn two_saves_at_once_do_not_interleave() {
    let v = village(true);
    let admin = login(&v.s, "pak-rw", ADMIN_PW);
    let base = loaded_version(&v, &admin);
    let v = Arc::new(v);
    let threads: Vec<_> = (0..2)
        .map(|i| {
            let (v, admin) = (v.clone(), admin.clone());
            std::thread::spawn(move || {
                let body = edit(
                    base,
                    json!([gate_line(), {"name": format!("line-{i}"), "points": [[10, 10 + i], [200, 20]]}]),
                    json!([]),
                );
                send(&v.s, "PUT", "/api/admin/cameras/gate-1", Some(&admin), &body).status
            })
        })
        .collect();
    let mut statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 409]);
    let text = v.file();
    assert_eq!(
        text.matches("name = \"line-").count(),
        1,
        "exactly one save is in the file:\n{text}"
    );
    assert_eq!(v.store.config_versions(10).unwrap().len(), 2);
    assert_eq!(v.applied().len(), 1);
}

#[test]
fn only_admins_may_use_the_editor() {
    let v = village(true);
    v.fake.set_picture(picture());
    let guard = login(&v.s, "pos1", GUARD_PW);
    let reviewer = login(&v.s, "tinjau", REVIEWER_PW);
    let calls: [(&str, &str); 7] = [
        ("GET", "/api/admin/config"),
        ("GET", "/api/admin/cameras"),
        ("GET", "/api/admin/cameras/gate-1/snapshot.jpg"),
        ("PUT", "/api/admin/cameras/gate-1"),
        ("GET", "/api/admin/versions"),
        ("GET", "/api/admin/versions/1"),
        ("POST", "/api/admin/versions/1/revert"),
    ];
    let before = v.file();
    for (method, path) in calls {
        for (who, cookie) in [
            ("guard", Some(&guard)),
            ("reviewer", Some(&reviewer)),
            ("nobody", None),
        ] {
            let r = match method {
                "GET" => get(&v.s, path, cookie.map(String::as_str)),
                m => send(&v.s, m, path, cookie.map(String::as_str), &with_gate_2(1)),
            };
            let want = if cookie.is_some() { 403 } else { 401 };
            assert_eq!(r.status, want, "{who} {method} {path}: {}", r.text());
            assert!(!r.text().contains("argon2"));
        }
    }
    assert_eq!(v.file(), before);
    assert!(v.applied().is_empty());
    let r = get(&v.s, "/admin", Some(&guard));
    assert_eq!(r.status, 403);
}

#[test]
fn versions_list_diff_and_revert() {
    let v = village(true);
    let admin = login(&v.s, "pak-rw", ADMIN_PW);
    let original = v.file();
    let r = send(
        &v.s,
        "PUT",
        "/api/admin/cameras/gate-1",
        Some(&admin),
        &with_gate_2(1),
    );
    assert_eq!(r.status, 200, "{}", r.text());

    let r = get(&v.s, "/api/admin/versions", Some(&admin));
    assert_eq!(r.status, 200, "{}", r.text());
    let b = r.json();
    assert_eq!(b["current"], 2);
    let list = b["versions"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["version"], 2);
    assert_eq!(list[0]["saved_by"], "pak-rw");
    assert_eq!(list[0]["summary"], "gate-1: line `gate-2` added");
    assert!(
        list[0]["saved_at"].as_str().unwrap().ends_with("+07:00"),
        "site time"
    );
    assert_eq!(list[1]["saved_by"], "file");
    assert!(list[0].get("text").is_none(), "the list carries no texts");

    let r = get(&v.s, "/api/admin/versions/2", Some(&admin));
    assert_eq!(r.status, 200, "{}", r.text());
    let two = r.json();
    assert_eq!(two["previous"], 1);
    let diff = two["diff"].as_array().unwrap();
    let changed: Vec<String> = diff
        .iter()
        .filter(|l| l["op"] != "same")
        .map(|l| {
            format!(
                "{} {}",
                l["op"].as_str().unwrap(),
                l["text"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        changed,
        [
            "add   [[cameras.lines]]",
            "add   name = \"gate-2\"",
            "add   points = [[100, 300], [540, 280]]",
            "add   curfew = \"22:00-05:00\"",
            "add ",
        ]
    );
    assert_eq!(
        diff.len(),
        original.lines().count() + 5,
        "every line of the file is in the diff"
    );
    // no secrets in a version's text
    let text = two["text"].as_str().unwrap();
    assert!(!r.text().contains("$argon2"), "a password hash was shown");
    assert!(text.contains("password_hash = \"<hidden>\""));
    assert!(text.contains("rtsp://admin:***@192.168.1.21:554/stream2"));
    assert_eq!(get(&v.s, "/api/admin/versions/9", Some(&admin)).status, 404);
    assert_eq!(
        get(&v.s, "/api/admin/versions/abc", Some(&admin)).status,
        400
    );

    // revert to the file as it was
    let r = send(
        &v.s,
        "POST",
        "/api/admin/versions/1/revert",
        Some(&admin),
        "",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let b = r.json();
    assert_eq!(b["version"], 3);
    assert_eq!(b["reverted_from"], 1);
    assert_eq!(
        b["summary"],
        "reverted to version 1: gate-1: line `gate-2` removed"
    );
    assert_eq!(v.file(), original, "the old text, byte for byte");
    let applied = v.applied();
    assert_eq!(applied.len(), 2);
    assert_eq!(applied[1].camera("gate-1").unwrap().lines.len(), 1);
    let newest = v.store.latest_config_version().unwrap().unwrap();
    assert_eq!(newest.version.reverted_from, Some(1));
    assert_eq!(newest.version.saved_by, "pak-rw");
    let r = send(
        &v.s,
        "POST",
        "/api/admin/versions/1/revert",
        Some(&admin),
        "",
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["changed"],
        false,
        "reverting to what the file holds does nothing"
    );
    assert_eq!(v.store.config_versions(10).unwrap().len(), 3);

    // a version that no longer passes the checks is refused with its problems
    let broken = original.replace("points = [[320, 100], [320, 360]]", "points = [[320, 100]]");
    let n = v
        .store
        .save_config_version("file", "by hand", &broken, None)
        .unwrap();
    std::fs::write(&v.path, &broken).unwrap();
    let r = send(
        &v.s,
        "POST",
        "/api/admin/versions/3/revert",
        Some(&admin),
        "",
    );
    assert_eq!(
        r.status,
        200,
        "a broken file can be reverted away: {}",
        r.text()
    );
    assert_eq!(v.file(), original);
    let r = send(
        &v.s,
        "POST",
        &format!("/api/admin/versions/{n}/revert"),
        Some(&admin),
        "",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["issues"][0]["place"], "cameras[0].lines[0].points");
    assert_eq!(v.file(), original);
}

#[test]
fn the_snapshot_is_the_live_picture_never_cached() {
    let v = village(true);
    let admin = login(&v.s, "pak-rw", ADMIN_PW);
    let r = get(&v.s, "/api/admin/cameras/gate-1/snapshot.jpg", Some(&admin));
    assert_eq!(r.status, 404);
    assert!(
        r.error().contains("has no picture right now"),
        "{}",
        r.text()
    );

    let pic = picture();
    v.fake.set_picture(pic.clone());
    let r = get(&v.s, "/api/admin/cameras/gate-1/snapshot.jpg", Some(&admin));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type").as_deref(), Some("image/jpeg"));
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(r.header("x-picture-width").as_deref(), Some("640"));
    assert_eq!(r.header("x-picture-height").as_deref(), Some("360"));
    assert_eq!(r.body, pic.jpeg);

    let r = get(&v.s, "/api/admin/cameras/cam-99/snapshot.jpg", Some(&admin));
    assert_eq!(r.status, 404);
    assert!(r.error().contains("there is no camera `cam-99`"));
}

#[test]
fn without_a_config_file_the_editor_says_what_to_do() {
    let v = village(false);
    let admin = login(&v.s, "pak-rw", ADMIN_PW);
    for r in [
        get(&v.s, "/api/admin/cameras", Some(&admin)),
        send(
            &v.s,
            "PUT",
            "/api/admin/cameras/gate-1",
            Some(&admin),
            &with_gate_2(1),
        ),
        get(&v.s, "/api/admin/versions", Some(&admin)),
    ] {
        assert_eq!(r.status, 503, "{}", r.text());
        assert!(r.error().contains("--config FILE"), "{}", r.text());
    }
    // the configuration is still shown, as read at the start
    let r = get(&v.s, "/api/admin/config", Some(&admin));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["cameras"][0]["id"], "gate-1");
    assert!(v.applied().is_empty());
}

// ---------------------------------------------------------------- the page

/// Viewport coordinates of picture pixel (x, y) on the editor's canvas.
#[test]
fn an_admin_draws_a_line_on_the_picture_saves_it_and_sees_a_refusal_next_to_its_field() {
    let v = village(true);
    v.fake.set_picture(picture());
    // gate-1 at night in the rain, too dark to find anyone, on a box that cannot keep up with
    // it: the camera list must say all four
    v.fake.set_sight(Sight {
        brightness: Some(14.4),
        low_light: true,
        too_dark: true,
        noisy: true,
        behind: true,
    });
    let admin = login(&v.s, "pak-rw", ADMIN_PW);
    let page = get(&v.s, "/admin", Some(&admin));
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("img-src 'self' data: blob:"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");

    let d = Driver::start();
    log_in_at(&d, &v.s.url("/admin"), "pak-rw", ADMIN_PW);
    d.goto(&v.s.url("/admin"));

    // the camera list, Indonesian by default; gate-1 with its live picture
    wait(
        &d,
        "no camera list",
        "return document.querySelectorAll('#camera-list button').length === 2;",
        json!([]),
        10,
    );
    let marks = |id: &str| {
        d.exec(
            "return Array.from(document.querySelectorAll('#camera-list button[data-id=\"' + arguments[0] + '\"] .clight')).map((e) => e.textContent);",
            json!([id]),
        )
    };
    let gate = marks("gate-1");
    let gate: Vec<&str> = gate
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(gate.len(), 4, "{gate:?}");
    assert!(gate[0].starts_with("gelap 14/255: mode malam"), "{gate:?}");
    assert!(gate[1].starts_with("terlalu gelap"), "{gate:?}");
    assert!(gate[2].starts_with("gambar berisik"), "{gate:?}");
    assert!(gate[3].starts_with("kewalahan"), "{gate:?}");
    assert_eq!(
        marks("pos-ronda"),
        json!([]),
        "pos-ronda is as the camera reports it"
    );
    d.click("#camera-list button[data-id=\"gate-1\"]");
    wait(
        &d,
        "the picture did not load",
        "const i = document.getElementById('picture'); const c = document.getElementById('overlay'); \
         return i.dataset.loaded === 'true' && i.naturalWidth === 640 && c.width === 640 && c.height === 360;",
        json!([]),
        10,
    );
    let label = d.exec(
        "return document.getElementById('save').textContent;",
        json!([]),
    );
    assert_eq!(label, "Simpan");
    assert_eq!(
        d.exec(
            "return document.querySelectorAll('#items .card').length;",
            json!([])
        ),
        1
    );

    // draw a line: two clicks on the picture
    d.click("#add-line");
    scroll_to_middle(&d, "overlay");
    let (a, b, moved) = ((100.0, 300.0), (540.0, 280.0), (500.0, 200.0));
    let mut steps = click_at(on_canvas(&d, a.0, a.1));
    steps.extend(click_at(on_canvas(&d, b.0, b.1)));
    pointer(&d, steps);
    wait(
        &d,
        "no new line card",
        "return document.querySelectorAll('#items .card[data-kind=\"line\"]').length === 2;",
        json!([]),
        5,
    );
    // move its end B by dragging it
    let from = on_canvas(&d, b.0, b.1);
    let to = on_canvas(&d, moved.0, moved.1);
    pointer(
        &d,
        vec![
            json!({"type": "pointerMove", "x": from.0, "y": from.1, "origin": "viewport", "duration": 50}),
            json!({"type": "pointerDown", "button": 0}),
            json!({"type": "pointerMove", "x": (from.0 + to.0) / 2, "y": (from.1 + to.1) / 2, "origin": "viewport", "duration": 100}),
            json!({"type": "pointerMove", "x": to.0, "y": to.1, "origin": "viewport", "duration": 100}),
            json!({"type": "pointerUp", "button": 0}),
        ],
    );
    let card = "#items .card[data-kind=\"line\"][data-index=\"1\"]";
    let name = d.find(&format!("{card} input[name=name]"));
    d.cmd("POST", &format!("/element/{name}/clear"), Some(json!({})));
    d.type_into(&format!("{card} input[name=name]"), "gerbang-2");
    d.exec(
        "document.getElementById('overlay').scrollIntoView({block: 'center'});",
        json!([]),
    );
    screenshot(&d, "admin-drawn.png");
    d.click("#save");
    wait(
        &d,
        "the save was not confirmed",
        "return document.getElementById('result').textContent.includes('Tersimpan sebagai versi 2');",
        json!([]),
        10,
    );
    screenshot(&d, "admin-saved.png");

    let saved = v.settings();
    let lines = &saved.camera("gate-1").unwrap().lines;
    assert_eq!(lines.len(), 2, "{}", v.file());
    let new = &lines[1];
    assert_eq!(new.name, "gerbang-2");
    assert!(
        near(new.a, 100.0, 300.0, 4.0),
        "A drawn at (100, 300), saved {:?}",
        new.a
    );
    assert!(
        near(new.b, 500.0, 200.0, 4.0),
        "B dragged to (500, 200), saved {:?}",
        new.b
    );
    for c in COMMENTS {
        assert!(v.file().contains(c), "lost `{c}`");
    }
    let applied = v.applied();
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].camera("gate-1").unwrap().lines[1], *new);
    let newest = v.store.latest_config_version().unwrap().unwrap();
    assert_eq!(newest.version.saved_by, "pak-rw");
    // the history shows it
    wait(
        &d,
        "the history does not show version 2",
        "const li = document.querySelector('#versions li[data-version=\"2\"]'); \
         return !!li && li.textContent.includes('pak-rw') && li.textContent.includes('gerbang-2');",
        json!([]),
        5,
    );

    // an invalid curfew: refused, the message next to that field, nothing written
    let file_before = std::fs::read(&v.path).unwrap();
    d.type_into(&format!("{card} input[name=curfew]"), "jam 10");
    d.click("#save");
    wait(
        &d,
        "the refusal is not shown next to the curfew",
        "const e = document.querySelector(arguments[0] + ' .err[data-field=\"curfew\"]'); \
         return !!e && e.textContent.includes('is not a time window');",
        json!([card]),
        10,
    );
    screenshot(&d, "admin-refused.png");
    assert_eq!(std::fs::read(&v.path).unwrap(), file_before);
    assert_eq!(v.applied().len(), 1);

    // English on the switch
    d.click("#lang");
    wait(
        &d,
        "the English switch did not translate the editor",
        "return document.getElementById('save').textContent === 'Save' \
         && document.querySelector(arguments[0] + ' .what').textContent === 'Line';",
        json!([card]),
        3,
    );
    d.wait_for(
        "return document.querySelector('#camera-list button[data-id=\"gate-1\"] .clight.noisy').textContent.startsWith('noisy view');",
        json!([]),
        std::time::Duration::from_secs(10),
    )
    .expect("the noisy marker is not in English");
    // the wide layout (cameras, editor and history side by side), to look at by eye
    d.cmd(
        "POST",
        "/window/rect",
        Some(json!({"width": 1400, "height": 1000})),
    );
    d.exec("window.scrollTo(0, 0);", json!([]));
    d.click("#versions li[data-version=\"2\"] button.show-diff");
    wait(
        &d,
        "the diff of version 2 is not shown",
        "const p = document.getElementById('diff-body'); \
         return !document.getElementById('diff').hidden && p.textContent.includes('+   name = \"gerbang-2\"');",
        json!([]),
        5,
    );
    screenshot(&d, "admin-wide.png");

    // revert to version 1: the first press asks, the second reverts
    let revert = "#versions li[data-version=\"1\"] button.revert";
    d.click(revert);
    let asked = d.exec(
        "return document.querySelector(arguments[0]).textContent;",
        json!([revert]),
    );
    assert_eq!(asked, "Sure? Revert to version 1");
    assert_eq!(v.applied().len(), 1, "one press reverted nothing");
    d.click(revert);
    wait(
        &d,
        "the revert was not confirmed",
        "return document.getElementById('result').textContent.startsWith('Reverted to version 1, saved as version 3.');",
        json!([]),
        10,
    );
}
