//! The guard page in headless Chromium, driven through chromedriver's WebDriver HTTP API (plain
//! ureq, no WebDriver crate): log in as a guard, see a new alert appear in the feed within 2 s,
//! acknowledge it, switch to English.

use std::time::{Duration, Instant};

use ronda::events::{EventKind, Severity};
use serde_json::json;

use crate::support::browser_driver;
use crate::support::fake_village;

use browser_driver::{Driver, screenshot};
use fake_village::{GUARD_PW, Sight, start};

fn live_feeds(base: &str) -> u64 {
    let text = ureq::get(&format!("{base}/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("ronda_http_live_feeds "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_guard_sees_a_new_alert_at_once_and_acknowledges_it() {
    let d = Driver::start();
    let s = start();
    // gate-1 at night in the rain: the guard's camera list marks both
    s.fake.set_sight(Sight {
        brightness: Some(14.4),
        low_light: true,
        too_dark: false,
        noisy: true,
        behind: false,
    });

    d.goto(&s.url("/guard"));
    assert!(
        d.url().ends_with("/login"),
        "not sent to the login: {}",
        d.url()
    );
    d.type_into("#name", "pos1");
    d.type_into("#password", GUARD_PW);
    d.click("#submit");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !d.url().ends_with("/guard") {
        assert!(Instant::now() < deadline, "still at {}", d.url());
        std::thread::sleep(Duration::from_millis(50));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while live_feeds(&s.base) == 0 {
        assert!(
            Instant::now() < deadline,
            "the page did not open the live feed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // the page loaded its counts and cameras (and the script runs under the CSP)
    d.wait_for(
        "return document.getElementById('total-in').textContent === '12' \
         && document.querySelectorAll('#cameras li').length === 2;",
        json!([]),
        Duration::from_secs(60),
    )
    .expect("counts and cameras shown");
    let marks = d.exec(
        "return Array.from(document.querySelectorAll('#cameras li')).map((li) => li.dataset.camera + ':' + Array.from(li.querySelectorAll('.cnight')).map((e) => e.textContent).join('|'));",
        json!([]),
    );
    assert_eq!(
        marks,
        json!(["gate-1:mode malam|hujan/berisik", "pos-ronda:"]),
        "the night and rain marks"
    );

    let e = s.fake.raise(EventKind::NoMask, Severity::Alert);
    let took = d
        .wait_for(
            "return document.querySelector('#feed li[data-id=\"' + arguments[0] + '\"]') !== null;",
            json!([e.id]),
            // a failure deadline; the time it took is the figure (about 0.1 s on an idle box)
            Duration::from_secs(60),
        )
        .expect("the alert did not appear in the feed");
    println!("alert shown after {took:?}");
    let text = d.exec(
        "return document.querySelector('#feed li[data-id=\"' + arguments[0] + '\"]').textContent;",
        json!([e.id]),
    );
    let text = text.as_str().unwrap();
    assert!(
        text.contains("Tanpa masker") && text.contains("Siaga"),
        "{text}"
    );
    assert!(text.contains("Gapura utama"), "camera name: {text}");

    d.click(&format!("#feed li[data-id=\"{}\"] button.ack", e.id));
    let deadline = Instant::now() + Duration::from_secs(60);
    while s.fake.acks.lock().unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "no acknowledgement reached the village"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(s.fake.acks.lock().unwrap()[0].user, "pos1");
    d.wait_for(
        "const li = document.querySelector('#feed li[data-id=\"' + arguments[0] + '\"]'); \
         return li.classList.contains('acked') && li.textContent.includes('pos1') \
         && !li.querySelector('button.ack');",
        json!([e.id]),
        Duration::from_secs(60),
    )
    .expect("the item shows who acknowledged it");

    screenshot(&d, "guard-id.png");
    d.click("#lang");
    let english = d.wait_for(
        "return document.querySelector('#feed li[data-id=\"' + arguments[0] + '\"]').textContent.includes('No mask');",
        json!([e.id]),
        Duration::from_secs(60),
    );
    assert!(
        english.is_some(),
        "the English switch did not translate the feed"
    );
    d.wait_for(
        "return Array.from(document.querySelectorAll('#cameras li[data-camera=\"gate-1\"] .cnight')).map((e) => e.textContent).join('|') === 'night mode|rain/noisy';",
        json!([]),
        Duration::from_secs(60),
    )
    .expect("the night and rain marks in English");
    screenshot(&d, "guard-en.png");
}
