use super::*;

const FILE: &str = r#"# Kepatihan RW 9: the village's cameras.
[site]
id = "rw9" # used in MQTT topics

# The gate, by the portal.
[[cameras]]
id = "gate-1"
name = "Gapura utama"
url = "rtsp://admin:${RONDA_CAM_PASS}@192.168.1.21:554/stream2"
role = "gate"
  # the main gate line, drawn from the portal's left post
  [[cameras.lines]]
  name = "gate"
  points = [[320, 100], [320, 360]]  # measured 2026-01-10
  curfew = "22:00-05:00"

  # the football field next to the gate
  [[cameras.zones]]
  name = "lapangan"
  kind = "crowd"   # only crowds matter here
  polygon = [[0, 200], [200, 200], [200, 360], [0, 360]]
  max_people = 8

# The night post.
[[cameras]]
id = "pos-ronda"
url = "rtsp://192.168.1.22/ch1"
  [[cameras.lines]]
  name = "lane"
  points = [[0, 100], [100, 100]]
"#;

fn path() -> &'static Path {
    Path::new("ronda.toml")
}

/// The edit that changes nothing: gate-1 as it is in FILE.
fn as_is() -> CameraEdit {
    CameraEdit {
        lines: vec![LineEdit {
            name: "gate".into(),
            was: Some("gate".into()),
            points: vec![[320.0, 100.0], [320.0, 360.0]],
            anchor: Some("bottom_center".into()),
            curfew: Some("22:00-05:00".into()),
            no_mask_alert: Some(true),
        }],
        zones: vec![ZoneEdit {
            name: "lapangan".into(),
            was: Some("lapangan".into()),
            kind: "crowd".into(),
            polygon: vec![[0.0, 200.0], [200.0, 200.0], [200.0, 360.0], [0.0, 360.0]],
            active: None,
            loiter_seconds: Some(60.0),
            max_people: Some(8),
        }],
        mask_check: Some(true),
        analysis_fps: None,
    }
}

fn new_line(name: &str, points: Vec<[f64; 2]>) -> LineEdit {
    LineEdit {
        name: name.into(),
        was: None,
        points,
        anchor: None,
        curfew: None,
        no_mask_alert: None,
    }
}

fn invalid(r: Result<Edited, EditError>) -> Vec<FieldIssue> {
    match r {
        Err(EditError::Invalid { issues }) => issues,
        other => panic!("expected a refused edit, got {other:?}"),
    }
}

#[test]
fn the_unchanged_camera_gives_the_same_bytes() {
    let e = apply_camera_edit(FILE, path(), "gate-1", &as_is()).unwrap();
    assert_eq!(e.text, FILE);
    assert!(!e.changed);
    assert_eq!(e.summary, "gate-1: no change");
}

#[test]
fn a_new_line_and_a_moved_zone_keep_every_comment_and_the_other_camera() {
    let mut edit = as_is();
    edit.lines
        .push(new_line("gate-2", vec![[100.0, 300.0], [500.5, 310.0]]));
    edit.zones[0].polygon[0] = [10.0, 200.0];
    let e = apply_camera_edit(FILE, path(), "gate-1", &edit).unwrap();
    assert!(e.changed);
    assert_eq!(
        e.summary,
        "gate-1: line `gate-2` added; zone `lapangan` moved"
    );
    for line in FILE.lines().filter(|l| l.contains('#')) {
        if line.contains("polygon") {
            continue;
        }
        assert!(e.text.contains(line), "lost `{line}`:\n{}", e.text);
    }
    assert!(
        e.text
            .contains("  kind = \"crowd\"   # only crowds matter here\n")
    );
    let tail = &FILE[FILE.find("# The night post.").unwrap()..];
    assert!(
        e.text.ends_with(tail),
        "the other camera changed:\n{}",
        e.text
    );
    // the new block looks like its neighbours and sits with its camera's lines
    assert!(
        e.text.contains(
            "  curfew = \"22:00-05:00\"\n\n  [[cameras.lines]]\n  name = \"gate-2\"\n  points = [[100, 300], [500.5, 310]]\n"
        ),
        "{}",
        e.text
    );
    assert!(
        e.text
            .contains("  polygon = [[10, 200], [200, 200], [200, 360], [0, 360]]\n")
    );
    let cam = e.settings.camera("gate-1").unwrap();
    assert_eq!(cam.lines.len(), 2);
    assert_eq!(cam.lines[1].name, "gate-2");
    assert_eq!(cam.lines[1].b, crate::geometry::Point::new(500.5, 310.0));
    assert_eq!(cam.zones[0].max_people, 8);
}

#[test]
fn a_changed_value_keeps_its_trailing_comment_and_a_renamed_line_its_block() {
    let mut edit = as_is();
    edit.lines[0].name = "portal".into();
    edit.lines[0].points = vec![[330.0, 100.0], [330.0, 360.0]];
    edit.lines[0].curfew = None;
    let e = apply_camera_edit(FILE, path(), "gate-1", &edit).unwrap();
    assert!(
        e.text.contains(
            "  # the main gate line, drawn from the portal's left post\n  [[cameras.lines]]\n  name = \"portal\"\n  points = [[330, 100], [330, 360]]  # measured 2026-01-10\n"
        ),
        "{}",
        e.text
    );
    assert!(!e.text.contains("curfew"), "{}", e.text);
    assert_eq!(
        e.summary,
        "gate-1: line `gate` renamed to `portal`, moved, curfew removed"
    );
}

#[test]
fn removed_items_go_and_defaults_are_not_written() {
    let mut edit = as_is();
    edit.zones.clear();
    edit.lines[0].points.reverse();
    edit.lines.push(LineEdit {
        no_mask_alert: Some(true), // what a gate camera does anyway
        anchor: Some("bottom_center".into()),
        ..new_line("lane-2", vec![[1.0, 2.0], [3.0, 4.0]])
    });
    let e = apply_camera_edit(FILE, path(), "gate-1", &edit).unwrap();
    assert!(!e.text.contains("lapangan") && !e.text.contains("cameras.zones"));
    assert!(!e.text.contains("no_mask_alert") && !e.text.contains("anchor"));
    assert!(
        !e.text.contains("# the football field next to the gate"),
        "the removed zone's own comment goes with it"
    );
    assert_eq!(
        e.summary,
        "gate-1: line `gate` turned round (in and out swapped); line `lane-2` added; zone `lapangan` removed"
    );
}

#[test]
fn camera_keys_are_added_only_when_they_mean_something() {
    let mut edit = as_is();
    edit.mask_check = Some(false);
    let e = apply_camera_edit(FILE, path(), "gate-1", &edit).unwrap();
    // mask checks off: the line's explicit `no_mask_alert = true` must now be written
    assert!(
        e.text.contains("role = \"gate\"\nmask_check = false\n"),
        "{}",
        e.text
    );
    assert!(e.text.contains("  no_mask_alert = true\n"), "{}", e.text);
    let cam = e.settings.camera("gate-1").unwrap();
    assert!(!cam.mask_check);
    assert!(cam.lines[0].no_mask_alert);
    assert!(e.summary.contains("mask check off"), "{}", e.summary);
}

#[test]
fn a_new_camera_line_block_is_made_when_the_camera_had_none() {
    let edit = CameraEdit {
        lines: vec![new_line("lane", vec![[0.0, 100.0], [100.0, 100.0]])],
        zones: vec![ZoneEdit {
            name: "gudang".into(),
            was: None,
            kind: "restricted".into(),
            polygon: vec![[10.0, 10.0], [50.0, 10.0], [50.0, 50.0]],
            active: Some("18:00-06:00".into()),
            loiter_seconds: None,
            max_people: None,
        }],
        mask_check: None,
        analysis_fps: Some(8.0),
    };
    let e = apply_camera_edit(FILE, path(), "pos-ronda", &edit).unwrap();
    assert!(
        e.text.ends_with(
            "url = \"rtsp://192.168.1.22/ch1\"\nanalysis_fps = 8\n  [[cameras.lines]]\n  name = \"lane\"\n  points = [[0, 100], [100, 100]]\n\n  [[cameras.zones]]\n  name = \"gudang\"\n  kind = \"restricted\"\n  polygon = [[10, 10], [50, 10], [50, 50]]\n  active = \"18:00-06:00\"\n"
        ),
        "{}",
        e.text
    );
    assert_eq!(
        e.summary,
        "pos-ronda: analysed at 8 fps; zone `gudang` added"
    );
}

#[test]
fn refused_edits_name_the_line_or_zone_and_the_field() {
    let mut edit = as_is();
    edit.lines.push(new_line("gate-2", vec![[100.0, 300.0]]));
    edit.lines[0].curfew = Some("jam 10".into());
    edit.zones[0].polygon = vec![[0.0, 0.0], [100.0, 100.0], [100.0, 0.0], [0.0, 100.0]];
    let issues = invalid(apply_camera_edit(FILE, path(), "gate-1", &edit));
    assert_eq!(issues.len(), 3, "{issues:#?}");
    let curfew = &issues[0];
    assert_eq!(curfew.place, "cameras[0].lines[0].curfew");
    assert_eq!(
        (curfew.line, curfew.field.as_deref()),
        (Some(0), Some("curfew"))
    );
    assert!(
        curfew.message.contains("is not a time window"),
        "{curfew:?}"
    );
    let points = &issues[1];
    assert_eq!(
        (points.line, points.zone, points.field.as_deref()),
        (Some(1), None, Some("points"))
    );
    assert_eq!(points.message, "a line needs 2 points, got 1");
    let polygon = &issues[2];
    assert_eq!(
        (polygon.zone, polygon.field.as_deref()),
        (Some(0), Some("polygon"))
    );
    assert!(polygon.message.contains("crosses itself"), "{polygon:?}");
    let json = serde_json::to_value(polygon).unwrap();
    assert_eq!(json["zone"], 0);
    assert!(json.get("line").is_none());
}

#[test]
fn issues_of_single_points_and_of_other_places_are_mapped() {
    let issues = vec![
        Issue {
            place: "cameras[1].zones[2].polygon[3]".into(),
            message: "[-5, 3] is outside the picture".into(),
        },
        Issue {
            place: "cameras[1].mask_check".into(),
            message: "should be true or false, got text".into(),
        },
        Issue {
            place: "cameras[10].lines[0].name".into(),
            message: "is missing".into(),
        },
        Issue {
            place: "site.id".into(),
            message: "is missing".into(),
        },
    ];
    let f = field_issues(&issues, Some(1));
    assert_eq!(
        (f[0].zone, f[0].field.as_deref(), f[0].point),
        (Some(2), Some("polygon"), Some(3))
    );
    assert_eq!(
        (f[1].line, f[1].field.as_deref()),
        (None, Some("mask_check"))
    );
    for other in &f[2..] {
        assert_eq!((other.line, other.zone, &other.field), (None, None, &None));
    }
    assert_eq!(f[3].place, "site.id");
}

#[test]
fn an_unknown_camera_or_a_broken_file_is_said_so() {
    assert_eq!(
        apply_camera_edit(FILE, path(), "cam-99", &as_is()).unwrap_err(),
        EditError::UnknownCamera("cam-99".into())
    );
    let e = apply_camera_edit("[[cameras]\nid = 1", path(), "gate-1", &as_is()).unwrap_err();
    assert!(
        matches!(&e, EditError::Unreadable(m) if !m.contains('\n')),
        "{e:?}"
    );
    assert!(e.to_string().contains("fix it by hand"), "{e}");
}

#[test]
fn the_editor_sends_json_the_edit_reads() {
    let edit: CameraEdit = serde_json::from_str(
        r#"{"lines": [{"name": "g", "points": [[1, 2], [3.5, 4]], "curfew": ""}],
            "zones": [], "mask_check": false}"#,
    )
    .unwrap();
    assert_eq!(edit.lines[0].points, vec![[1.0, 2.0], [3.5, 4.0]]);
    assert_eq!(edit.mask_check, Some(false));
    // an empty curfew is no curfew
    let e = apply_camera_edit(
        FILE,
        path(),
        "gate-1",
        &CameraEdit {
            zones: as_is().zones,
            ..edit
        },
    )
    .unwrap();
    assert!(
        e.settings.camera("gate-1").unwrap().lines[0]
            .curfew
            .is_none()
    );
    let typo = serde_json::from_str::<CameraEdit>(
        r#"{"lines": [{"name": "g", "points": [], "curfw": "x"}]}"#,
    );
    assert!(
        typo.unwrap_err()
            .to_string()
            .contains("unknown field `curfw`")
    );
}

#[test]
fn every_camera_of_the_shipped_files_saved_as_it_is_gives_the_same_bytes() {
    for (name, text) in [
        ("demo.toml", include_str!("../../../config/demo.toml")),
        (
            "ronda.example.toml",
            include_str!("../../../config/ronda.example.toml"),
        ),
        ("edit tests", FILE),
    ] {
        let settings = Settings::parse(text, Path::new(name)).unwrap();
        assert!(!settings.cameras.is_empty());
        for cam in &settings.cameras {
            let e = apply_camera_edit(text, Path::new(name), &cam.id, &CameraEdit::of(cam))
                .unwrap_or_else(|e| panic!("{name} {}: {e}", cam.id));
            assert!(!e.changed, "{name} {}:\n{}", cam.id, e.text);
            assert_eq!(e.summary, format!("{}: no change", cam.id));
        }
    }
}

#[test]
fn a_65600_character_line_name_is_refused_at_its_field() {
    let mut e = as_is();
    e.lines[0].name = "y".repeat(65_600);
    let Err(EditError::Invalid { issues }) = apply_camera_edit(FILE, path(), "gate-1", &e) else {
        panic!("accepted");
    };
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(
        (issues[0].line, issues[0].field.as_deref()),
        (Some(0), Some("name"))
    );
    assert!(issues[0].message.len() < 200, "{}", issues[0].message);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(100))]
    /// Whatever names the editor's JSON carries: no panic, and a refused edit names its place.
    #[test]
    fn hostile_names_in_an_edit_never_panic_and_are_placed(
        line in proptest::prelude::any::<String>(),
        zone in "[a-z/+#\"'\\\\\\[\\]=\n\t ]{0,80}",
        was in proptest::option::of(proptest::prelude::any::<String>()),
    ) {
        let mut e = as_is();
        e.lines[0].name = line;
        e.lines[0].was = was;
        e.zones[0].name = zone;
        match apply_camera_edit(FILE, path(), "gate-1", &e) {
            Ok(edited) => {
                let cam = edited.settings.camera("gate-1").unwrap();
                for l in &cam.lines {
                    proptest::prop_assert!(crate::topic::check_name(&l.name).is_ok());
                }
            }
            Err(EditError::Invalid { issues }) => {
                proptest::prop_assert!(!issues.is_empty());
                for i in &issues {
                    proptest::prop_assert!(!i.place.is_empty(), "{:?}", i);
                }
            }
            Err(other) => proptest::prop_assert!(false, "{}", other),
        }
    }
}
