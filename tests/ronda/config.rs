//! `ronda check-config` and `ronda print-default-config` through the built binary.

use crate::support as common;

use common::{ronda, stdout};

#[test]
fn three_mistakes_are_all_reported_with_their_places_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("ronda.toml");
    std::fs::write(
        &f,
        r#"
[site]
id = "kepatihan-rw9"
timezone = "Asia/Jakarta"

[detector]
threads = "two"

[[cameras]]
id = "gate-1"
url = "rtsp://10.0.0.21/ch1"
role = "gate"
  [[cameras.lines]]
  name = "gate"
  points = [[320, 100], [320, 360]]

[[cameras]]
id = "cam-02"
url = "rtsp://10.0.0.22/ch1"

[[cameras]]
id = "cam-03"
url = "rtsp://10.0.0.23/ch1"
analysis_fsp = 2
  [[cameras.lines]]
  name = "lane"
  points = [[0, 0], [100, 100], [200, 200]]
"#,
    )
    .unwrap();
    let out = ronda().arg("check-config").arg(&f).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    println!("{err}");
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("3 problem(s)"), "{err}");
    assert!(
        err.contains("detector.threads: should be a whole number, got text"),
        "{err}"
    );
    assert!(
        err.contains(
            "cameras[2].analysis_fsp: unknown key `analysis_fsp`; did you mean `analysis_fps`?"
        ),
        "{err}"
    );
    assert!(
        err.contains("cameras[2].lines[0].points: a line needs 2 points, got 3"),
        "{err}"
    );
    assert!(err.contains(f.to_str().unwrap()));
}

#[test]
fn shipped_configs_are_valid() {
    let root = ronda::paths::project_root();
    for (name, cameras) in [
        ("ronda.example.toml", Some(40)),
        ("default.toml", Some(0)),
        ("demo.toml", None),
    ] {
        let path = root.join("config").join(name);
        let out = ronda().arg("check-config").arg(&path).output().unwrap();
        let text = stdout(&out);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if let Some(n) = cameras {
            assert!(text.contains(&format!("{n} camera(s)")), "{name}: {text}");
        }
    }
}

/// A hub's file (`[hub]`) is checked as the hub's: the shipped example passes with a summary and
/// a note for its password variables that are not set; a mistake is named with its key.
#[test]
fn check_config_reads_a_hub_file_as_the_hub_would() {
    let root = ronda::paths::project_root();
    let example = root.join("config").join("hub.example.toml");
    let out = ronda()
        .arg("check-config")
        .arg(&example)
        .env_remove("HUB_MQTT_PASSWORD")
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("OK: hub `Kota Batu`"), "{text}");
    assert!(text.contains("village(s) in"), "{text}");
    assert!(
        text.contains("broker.password uses ${HUB_MQTT_PASSWORD}, not set here"),
        "{text}"
    );
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("hub.toml");
    let wrong = std::fs::read_to_string(&example)
        .unwrap()
        .replace("role = \"city_admin\"", "role = \"city_admn\"");
    std::fs::write(&typo, wrong).unwrap();
    let out = ronda().arg("check-config").arg(&typo).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("users[0].role"), "{err}");
}

#[test]
fn print_default_config_prints_a_valid_file() {
    let out = ronda().arg("print-default-config").output().unwrap();
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("default.toml");
    std::fs::write(&f, &out.stdout).unwrap();
    let check = ronda().arg("check-config").arg(&f).output().unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn syntax_errors_and_missing_files_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("broken.toml");
    std::fs::write(&f, "[site\nid = 1\n").unwrap();
    for p in [f.clone(), dir.path().join("missing.toml")] {
        let out = ronda().arg("check-config").arg(&p).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(p.to_str().unwrap()), "{err}");
    }
}

#[test]
fn secrets_in_the_file_are_refused_without_being_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("ronda.toml");
    std::fs::write(
        &f,
        "[site]\nid = \"v\"\n[[cameras]]\nid = \"gate-1\"\nurl = \"rtsp://admin:Rahasia123@10.0.0.2/ch1\"\n\
         [[notify]]\nname = \"grup\"\nkind = \"telegram\"\n\
         token = \"5512345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw\"\nchat_ids = [\"-100123\"]\n\
         [[notify]]\nname = \"wa\"\nkind = \"gateway-form\"\ntoken = \"Fonnte+Rahasia\"\ntarget = \"0812\"\n",
    )
    .unwrap();
    let out = ronda().arg("check-config").arg(&f).output().unwrap();
    let all = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(2));
    assert!(all.contains("cameras[0].url: contains a password"), "{all}");
    assert!(
        all.contains("notify[0].token: write it as a ${VARIABLE}"),
        "{all}"
    );
    assert!(
        all.contains("notify[1].token: write it as a ${VARIABLE}"),
        "{all}"
    );
    for secret in [
        "Rahasia123",
        "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
        "Fonnte+Rahasia",
    ] {
        assert!(!all.contains(secret), "{all}");
    }
}

#[test]
fn alerts_and_clips_mistakes_are_all_reported_with_their_places() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("ronda.toml");
    std::fs::write(
        &f,
        r#"
[site]
id = "kepatihan-rw9"

[alerts]
cooldown_seconds = 60
[alerts.severity]
intrusoin = "alert"
crowding = "urgent"

[clips]
pre_seconds = 45
post_seconds = 10
"#,
    )
    .unwrap();
    let out = ronda().arg("check-config").arg(&f).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("3 problem(s)"), "{err}");
    assert!(
        err.contains(
            "alerts.severity.intrusoin: unknown key `intrusoin`; did you mean `intrusion`?"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "alerts.severity.crowding: `urgent` is not allowed; use one of \"info\", \"warning\", \"alert\""
        ),
        "{err}"
    );
    assert!(
        err.contains("clips.pre_seconds: 45 is out of range: use a value from 0 to 30"),
        "{err}"
    );
}

#[test]
fn the_default_camera_example_is_valid_once_uncommented() {
    // config/default.toml documents a camera with a line and a zone in comments: an admin who
    // uncomments it must get a valid file
    let text = ronda::config::DEFAULT_CONFIG;
    let start = text
        .find("# [[cameras]]")
        .expect("a commented camera example");
    let (head, example) = text.split_at(start);
    let mut file = head.to_string();
    for line in example.lines() {
        if let Some(l) = line.strip_prefix("# ") {
            file.push_str(l);
            file.push('\n');
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("ronda.toml");
    std::fs::write(&f, &file).unwrap();
    let out = ronda().arg("check-config").arg(&f).output().unwrap();
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{file}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("1 camera(s), 1 line(s), 1 zone(s)"), "{text}");
}

#[test]
fn run_refuses_a_web_address_in_use_before_anything_starts_and_names_the_setting() {
    // the test holds the port; `ronda run` must say which setting to change and stop, with no
    // camera, broker or store started (the store's file is not even made)
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ronda.db");
    let f = dir.path().join("ronda.toml");
    std::fs::write(
        &f,
        format!(
            "[site]\nid = \"uji\"\n[mqtt]\nlisten = \"127.0.0.1:0\"\n\
             [http]\nlisten = \"127.0.0.1:{port}\"\n\
             [store]\npath = \"{}\"\nclips_dir = \"{}/clips\"\n",
            db.display(),
            dir.path().display()
        ),
    )
    .unwrap();
    let out = ronda().args(["run", "--config"]).arg(&f).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "http.listen 127.0.0.1:{port}: cannot listen there"
        )) && err.contains("set [http] listen to a free address"),
        "{err}"
    );
    assert!(
        !db.exists(),
        "the store was opened before the address was checked"
    );
    drop(taken);
}
