//! `ronda eval-detector` (issue 13) on a few frames of the real annotated footage in
//! ../shared/data: the table comes out for the committed person models, with sane figures. When
//! the data is absent the test says SKIPPED and passes (the unit tests of `detect::eval` still
//! check the AP and matching logic).

use crate::support as common;

use common::{ronda, shared, stderr, stdout};

/// Table rows (not the header or the rule), split into trimmed cells.
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| model") && !l.starts_with("|---"))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

/// The ground truth of both TUD clips, or None (the test says SKIPPED) when the data is absent.
fn annotated_clips(test: &str) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    Some((
        shared("TUD-Campus/gt/gt.txt", test)?,
        shared("TUD-Stadtmitte/gt/gt.txt", test)?,
    ))
}

#[test]
fn eval_detector_on_a_few_real_frames() {
    let Some(_) = annotated_clips("eval_detector_on_a_few_real_frames") else {
        return;
    };
    let data = ronda::paths::shared_data_dir().unwrap();
    // An empty candidates folder: the committed models only, so the rows do not depend on what
    // scripts/convert-candidates left in .cache on this machine.
    let no_candidates = tempfile::tempdir().unwrap();
    let o = ronda()
        .arg("eval-detector")
        .arg("--data")
        .arg(&data)
        .arg("--candidates")
        .arg(no_candidates.path())
        .args(["--frames", "3", "--timing-frames", "2", "--threads", "1"])
        .output()
        .unwrap();
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(o.status.success(), "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains("on 6 annotated frames (TUD-Campus 3, TUD-Stadtmitte 3)"),
        "{out}"
    );
    assert!(err.contains("no candidates in"), "{err}");
    let rows = rows(&out);
    // every committed person model: at least NanoDet-m or the default, fp32 and int8
    assert!(rows.len() >= 2, "{out}");
    for r in &rows {
        // model, prec., input, thr, AP, recall, precision, crowded, night AP, night recall,
        // night lifted AP, night lifted recall, ms, x
        assert_eq!(r.len(), 14, "{r:?}");
        for (i, what) in [
            (4, "AP"),
            (5, "recall"),
            (6, "precision"),
            (8, "night AP"),
            (10, "night lifted AP"),
        ] {
            let v: f64 = r[i].parse().unwrap_or_else(|_| panic!("{what} {r:?}"));
            assert!((0.0..=1.0).contains(&v), "{what} {r:?}");
        }
        // 3 frames of each clip hold dozens of persons: every model finds some by day
        let ap: f64 = r[4].parse().unwrap();
        assert!(ap > 0.3, "day AP of {} is {ap}: {out}", r[0]);
        let ms: f64 = r[12].parse().unwrap();
        assert!(ms > 0.0, "{r:?}");
    }
    // NanoDet-m is the time reference of its precision
    let nanodet: Vec<_> = rows.iter().filter(|r| r[0] == "NanoDet-m").collect();
    assert!(!nanodet.is_empty(), "NanoDet-m stays selectable: {out}");
    assert!(nanodet.iter().all(|r| r[13] == "1.00"), "{out}");
}

#[test]
fn eval_detector_without_data_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-data");
    let o = ronda()
        .arg("eval-detector")
        .arg("--data")
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "stderr: {}", stderr(&o));
    assert!(
        stderr(&o).contains(&missing.display().to_string()),
        "{}",
        stderr(&o)
    );
    // a folder without any gt/gt.txt is refused the same way
    let o = ronda()
        .arg("eval-detector")
        .arg("--data")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "stderr: {}", stderr(&o));
    assert!(stderr(&o).contains("gt/gt.txt"), "{}", stderr(&o));
}

/// People per analysed picture of a MOTChallenge gt.txt, every `step`th frame from the first.
fn people_every(gt: &str, step: usize) -> u64 {
    let mut per_frame = std::collections::BTreeMap::<u32, u64>::new();
    for l in gt.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = l.split(',').collect();
        if f.get(6).and_then(|s| s.trim().parse::<f32>().ok()) == Some(0.0) {
            continue;
        }
        *per_frame.entry(f[0].trim().parse().unwrap()).or_default() += 1;
    }
    per_frame.values().step_by(step).sum()
}

#[test]
fn eval_detector_tracking_follows_most_people_and_counts_switches() {
    let Some((campus, stadt)) =
        annotated_clips("eval_detector_tracking_follows_most_people_and_counts_switches")
    else {
        return;
    };
    let data = ronda::paths::shared_data_dir().unwrap();
    // spreading the annotated frames apart would break the tracks: refused, naming both
    let o = ronda()
        .args(["eval-detector", "--tracking", "--frames", "3"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--frames"), "{}", stderr(&o));

    let o = ronda()
        .arg("eval-detector")
        .arg("--data")
        .arg(&data)
        .args(["--tracking", "--no-night"])
        .output()
        .unwrap();
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(o.status.success(), "stdout: {out}\nstderr: {err}");
    let rows: Vec<Vec<String>> = rows(&out).into_iter().filter(|r| r[0] != "clip").collect();
    // clip, pictures a second, light, people, followed (share), id switches, swaps
    assert_eq!(rows.len(), 7, "2 clips x 3 rates and the total: {out}");
    let texts = [
        ("TUD-Campus", std::fs::read_to_string(campus).unwrap()),
        ("TUD-Stadtmitte", std::fs::read_to_string(stadt).unwrap()),
    ];
    for r in &rows[..6] {
        assert_eq!(r.len(), 7, "{r:?}");
        let step = match r[1].as_str() {
            "25" => 1,
            "12.5" => 2,
            "5" => 5,
            other => panic!("rate {other}: {out}"),
        };
        let gt = &texts
            .iter()
            .find(|(n, _)| *n == r[0])
            .expect("a clip row")
            .1;
        let people: u64 = r[3].parse().unwrap();
        assert_eq!(
            people,
            people_every(gt, step),
            "every annotated person of the pictures played: {r:?}"
        );
        let followed: u64 = r[4].split(' ').next().unwrap().parse().unwrap();
        let (switches, swaps): (u64, u64) = (r[5].parse().unwrap(), r[6].parse().unwrap());
        assert!(followed <= people && swaps <= switches, "{r:?}");
        // TUD's people walk in plain view most of the time: most are followed, and a person
        // keeps their track from one picture to the next far more often than not (a tracker
        // that lost everyone between pictures would switch at nearly every sighting)
        assert!(followed * 2 > people, "{r:?}");
        assert!(switches * 2 < followed, "{r:?}");
    }
    let total: u64 = rows[6][3].parse().unwrap();
    assert_eq!(
        total,
        rows[..6]
            .iter()
            .map(|r| r[3].parse::<u64>().unwrap())
            .sum::<u64>()
    );
}
