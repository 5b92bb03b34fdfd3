//! The README's picture of a phone message: the alert text exactly as ronda composes it
//! (`sinks::notify::message`) with a snapshot made the way ronda makes them (`write_snapshot`,
//! the person's box drawn), laid out as a Telegram chat shows a photo with its caption and the
//! acknowledge button, in headless Chromium. The test checks that the page shows the caption
//! word for word and that the photo loads; with `RONDA_WRITE_DOCS=1` it writes
//! `tests/pictures/notify-telegram.png`.
//!
//! The box has no colour emoji font, so the page draws the three signs (🚨 ✅ ⚠️) as small
//! badges after the text was checked; a phone shows them as emoji.

use crate::support as common;
use crate::support::browser_driver;

use browser_driver::{Driver, wait};
use chrono::TimeZone;
use ronda::config::Language;
use ronda::events::{Event, EventKind, Severity};
use ronda::geometry::BBox;
use ronda::sinks::notify::message::{self, AckedBy};
use serde_json::json;

#[test]
fn a_telegram_alert_as_the_phone_shows_it() {
    let tz = chrono_tz::Asia::Jakarta;
    let at = tz
        .with_ymd_and_hms(2026, 11, 26, 21, 4, 5)
        .unwrap()
        .with_timezone(&chrono::Utc);
    let mut e = Event::new(
        "kepatihan-rw9",
        tz,
        "yard",
        EventKind::Intrusion,
        Severity::Alert,
        at,
    );
    e.zone = Some("gudang".into());
    let text = message::alert(
        &e,
        "Halaman Belakang",
        None,
        Some(&format!("https://ronda.kepatihan.example/review#{}", e.id)),
        Language::Id,
        tz,
    );
    let ack = message::acked_line(
        &AckedBy {
            user: "Budi Santoso (Telegram)".into(),
            at: at + chrono::Duration::seconds(95),
        },
        Language::Id,
        tz,
    );

    let dir = tempfile::tempdir().unwrap();
    let frame = image::open(common::sample("zidane.jpg")).unwrap().to_rgb8();
    let jpeg_path = dir.path().join("snapshot.jpg");
    ronda::sinks::write_snapshot(
        &frame,
        &[(BBox::new(740.0, 40.0, 1150.0, 715.0), "intrusion")],
        &jpeg_path,
    )
    .unwrap();
    let jpeg = std::fs::read(&jpeg_path).unwrap();

    let page = dir.path().join("chat.html");
    std::fs::write(&page, PAGE).unwrap();
    let d = Driver::start();
    d.goto(&format!("file://{}", page.display()));
    let photo = format!(
        "data:image/jpeg;base64,{}",
        ronda::api::auth::base64_encode(&jpeg)
    );
    d.exec(
        "show(arguments[0], arguments[1], arguments[2], arguments[3])",
        json!([photo, text.body, "✅ Tandai diterima", ack]),
    );
    wait(
        &d,
        "the photo",
        "return document.querySelector('img').naturalWidth > 0",
        json!([]),
        10,
    );
    // what the guard reads is the message as sent, word for word
    let shown = d.exec(
        "return document.querySelector('.caption').innerText",
        json!([]),
    );
    assert_eq!(shown.as_str().unwrap(), text.body);
    let button = d.exec(
        "return document.querySelector('.button').innerText",
        json!([]),
    );
    assert_eq!(button.as_str().unwrap(), "✅ Tandai diterima");
    d.exec("badges()", json!([]));

    let chat = d.find(".chat");
    let png = d.cmd("GET", &format!("/element/{chat}/screenshot"), None);
    let bytes = ronda::api::auth::base64_decode(png.as_str().unwrap()).unwrap();
    assert!(bytes.starts_with(b"\x89PNG"), "a PNG");
    if std::env::var_os("RONDA_WRITE_DOCS").is_some() {
        let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/pictures/notify-telegram.png");
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        std::fs::write(&out, &bytes).unwrap();
        println!("wrote {}", out.display());
    }
}

/// A Telegram-like chat: the bot's photo message with its caption, the inline button, and the
/// line the bot adds once a guard pressed it.
const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><style>
body { margin: 0; background: #d6e4cf; font-family: "DejaVu Sans", sans-serif; }
.chat { width: 380px; padding: 14px 12px 18px; background: #d6e4cf; }
.who { font-size: 12px; color: #3a6d99; font-weight: bold; margin: 0 0 4px 8px; }
.bubble { background: #fff; border-radius: 12px; overflow: hidden; box-shadow: 0 1px 1px rgba(0,0,0,.15); }
.bubble img { display: block; width: 100%; }
.caption { white-space: pre-wrap; font-size: 14px; line-height: 1.4; padding: 8px 10px 4px; color: #111; word-break: break-word; }
.acked { white-space: pre-wrap; font-size: 14px; padding: 0 10px 8px; color: #1c7c34; }
.time { text-align: right; font-size: 11px; color: #8a9a8a; padding: 0 10px 6px; }
.button { margin-top: 4px; background: rgba(0,0,0,.28); color: #fff; text-align: center; border-radius: 10px; padding: 9px; font-size: 14px; }
.note { font-size: 11px; color: #556; margin: 10px 8px 0; }
.e { display: inline-block; width: 16px; height: 16px; border-radius: 4px; color: #fff; font-size: 12px; line-height: 16px; text-align: center; vertical-align: -2px; font-weight: bold; }
.e.alert { background: #d93025; } .e.ok { background: #1c7c34; } .e.warn { background: #e8a200; }
</style></head><body>
<div class="chat">
  <div class="who">Ronda RW 9 (bot)</div>
  <div class="bubble"><img alt=""><div class="caption"></div><div class="time">21:04</div></div>
  <div class="button"></div>
  <div class="note">… and after Budi pressed the button:</div>
  <div class="bubble" style="margin-top:6px"><div class="caption" id="c2"></div><div class="acked"></div></div>
</div>
<script>
function show(photo, caption, button, acked) {
  document.querySelector("img").src = photo;
  document.querySelector(".caption").textContent = caption;
  document.querySelector(".button").textContent = button;
  document.getElementById("c2").textContent = caption.split("\n")[0] + "\n…";
  document.querySelector(".acked").textContent = acked;
}
function badges() {
  const signs = { "🚨": ["alert", "!"], "✅": ["ok", "✓"], "⚠️": ["warn", "!"] };
  for (const el of document.querySelectorAll(".caption, .button, .acked")) {
    let html = el.textContent.replace(/[&<>]/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;" })[c]);
    for (const [sign, [cls, mark]] of Object.entries(signs)) {
      html = html.split(sign).join(`<span class="e ${cls}">${mark}</span>`);
    }
    el.innerHTML = html;
  }
}
</script></body></html>
"#;
