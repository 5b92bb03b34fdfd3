//! Gate counts must not depend on how the footage reached the box. Each clip is re-encoded by
//! `scripts/reencode` (a low bitrate, 480x360 with the lines scaled with the picture, 5 fps, 10
//! fps; made once into `.cache/variants/`) and analysed with the built binary at default settings:
//! - TUD-Campus (../shared/data, with true counts): exact at native quality, every variant within
//!   2 per direction of the truth (at 5 fps the 2.8 s clip is 14 pictures), at most one false
//!   crossing in a variant (none at native quality);
//! - TUD-Stadtmitte (a crowded street from a lossy copy): native within 1 per direction with at
//!   most 3 false crossings, variants within 2 and at most 2 false crossings each. Issue 12 asks
//!   for exact / within 1; what is left is the detector and tracker losing people in the crowd
//!   (two walkers through each other, one box for two, a track on weak boxes drifting onto a
//!   passer-by), not the crossing rule. Counts alone hide that (a false count can cancel a
//!   miss), so each counted crossing is also matched to a true one (`ronda analyze --truth
//!   gt/gt.txt`: same line and direction, within a second): the table of true / false / missed
//!   printed here is the measure to improve on;
//! - vtest.avi (setup's sample as Debian ships it, no ground truth): every variant within 2 per
//!   direction of vtest's own native counts (issue 12 asks for 1).
//!
//! The variants are encoded with one x264 thread, so that the same packages make the same files
//! and the figures printed here are the same on every run of one machine. The int8 detector
//! computes exactly on every CPU (`[detector] int8_arithmetic = "exact"`, the default), so the
//! native clips count the same on every machine; the copies themselves come out a little
//! different on another kind of CPU (README "Counts and the CPU": an AVX2 machine's figures
//! beside a VNNI machine's), and the bounds hold on both. Before that, ONNX Runtime's fast u8 x s8 kernels saturated some sums on x86
//! without VNNI (AVX2 alone), a person's score moved a few hundredths and a count in the crowd by
//! one to three (README "Counts and the CPU": figures of both). Each bound (`tolerance`) was set
//! then as the worse of the two kinds' figures, not fitted to either, and stays: a box that asks
//! for `"fast"` still computes the other way.
//!
//! Night copies (`scripts/night-footage`: dim, infrared flat and lit in the middle by the
//! camera's lamp, dim with a street lamp in view) are held like the variants: TUD-Campus within
//! 2 per direction of the truth, TUD-Stadtmitte within 3, vtest within 2 of its own daytime
//! counts (issue "Ronda malam" asks for 1; a siskamling watches at night, so every change of
//! counting or detection is judged in the dark too). `dusk` and `dark` are not: `dark` turns
//! TUD's walkers black (README "At night").
//!
//! Also `analyze --fps` (the live rate gate offline), `--report` (the counting report) and a bad
//! `--truth` file refused before the analysis.

use crate::support as common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{night_copy, ronda, sample, shared};
use serde_json::Value;

/// The re-encodings of `scripts/reencode` (its recipes: 300 kbit/s, 480x360, 5 and 10 pictures
/// a second, each by x264 with one thread, so that the same packages make the same file on every
/// run and the counts printed here do not vary from run to run).
const VARIANTS: [&str; 4] = ["300k", "480x360", "5fps", "10fps"];

/// The variant `v` of `src` (made once by `scripts/reencode` into .cache/variants).
fn variant(src: &Path, v: &str) -> PathBuf {
    let dir = ronda::paths::cache_dir().join("variants");
    let stem = src.file_stem().unwrap().to_string_lossy();
    let out = dir.join(format!("{stem}-{v}.mp4"));
    if out.exists() {
        return out;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/reencode");
    let st = Command::new(&script)
        .arg(src)
        .arg(&dir)
        .arg(v)
        .status()
        .expect("scripts/reencode runs");
    assert!(st.success(), "making {}", out.display());
    out
}

/// How much a variant's picture is scaled from the native width (lines scale with it).
fn scale_of(v: &str, native_width: f32) -> f32 {
    if v == "480x360" {
        480.0 / native_width
    } else {
        1.0
    }
}

/// `ronda analyze VIDEO --line ... EXTRA... --json` with the lines scaled by `scale` (once per
/// test process for the same arguments: `common::analyze_json`).
fn analyze(video: &Path, lines: &[(&str, [f32; 4])], scale: f32, extra: &[&str]) -> Value {
    let mut args = vec![video.display().to_string()];
    for (name, p) in lines {
        let s: Vec<String> = p
            .iter()
            .map(|v| format!("{}", (v * scale).round()))
            .collect();
        args.push("--line".into());
        args.push(format!("{name}={}", s.join(",")));
    }
    args.extend(extra.iter().map(|e| e.to_string()));
    common::analyze_json(&args)
}

fn counts(v: &Value, line: &str) -> (i64, i64) {
    (
        v["lines"][line]["in"].as_i64().unwrap(),
        v["lines"][line]["out"].as_i64().unwrap(),
    )
}

struct Clip {
    name: &'static str,
    video: PathBuf,
    width: f32,
    lines: Vec<(&'static str, [f32; 4])>,
    /// (in, out) per line, when the truth is known.
    truth: Option<Vec<(i64, i64)>>,
}

fn tud() -> Option<Vec<Clip>> {
    let campus = shared("TUD-Campus/TUD-Campus_25fps.mp4", "counting")?;
    let stadt = shared("TUD-Stadtmitte/TUD-Stadtmitte_25fps.mp4", "counting")?;
    Some(vec![
        Clip {
            name: "TUD-Campus",
            video: campus,
            width: 640.0,
            lines: vec![
                ("a", [360.0, 300.0, 360.0, 480.0]),
                ("b", [480.0, 300.0, 480.0, 480.0]),
            ],
            truth: Some(vec![(0, 5), (0, 3)]),
        },
        Clip {
            name: "TUD-Stadtmitte",
            video: stadt,
            width: 640.0,
            lines: vec![
                ("a", [440.0, 200.0, 440.0, 380.0]),
                ("b", [560.0, 200.0, 560.0, 380.0]),
            ],
            truth: Some(vec![(3, 2), (3, 3)]),
        },
    ])
}

/// `ronda analyze --truth`'s arguments for TUD's ground truth (25 fps, the native pixels) on a
/// copy scaled by `scale`.
fn truth_args(gt: &Path, scale: f32) -> Vec<String> {
    vec![
        "--truth".into(),
        gt.display().to_string(),
        "--truth-fps".into(),
        "25".into(),
        "--truth-scale".into(),
        scale.to_string(),
    ]
}

/// (true, false, missed) crossings of an analysis run with `--truth`.
fn judged(r: &Value) -> (u64, u64, u64) {
    let n = |k: &str| r["truth"][k].as_u64().unwrap();
    (n("true"), n("false"), n("missed"))
}

/// Every variant of `clip` against `reference(line index)`; returns the worst difference per
/// direction and prints the table. With the ground truth `gt`, also the most false crossings in
/// one variant.
fn worst_over_variants(clip: &Clip, reference: &[(i64, i64)], gt: Option<&Path>) -> (i64, u64) {
    let (mut worst, mut most_false) = (0, 0);
    for v in VARIANTS {
        let file = variant(&clip.video, v);
        let scale = scale_of(v, clip.width);
        let extra = gt.map(|gt| truth_args(gt, scale)).unwrap_or_default();
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let r = analyze(&file, &clip.lines, scale, &extra);
        for (k, (line, _)) in clip.lines.iter().enumerate() {
            let (i, o) = counts(&r, line);
            let (ri, ro) = reference[k];
            println!(
                "{:<15} {:<8} line {line}: in {i} out {o} (reference {ri} / {ro})",
                clip.name, v
            );
            worst = worst.max((i - ri).abs()).max((o - ro).abs());
            if gt.is_some() {
                // the annotation, at its own rate and size, read onto the copy's
                assert_eq!(
                    counts(&r["truth"], line),
                    reference[k],
                    "{} {}",
                    clip.name,
                    v
                );
            }
        }
        if gt.is_some() {
            let (hit, wrong, missed) = judged(&r);
            println!(
                "{:<15} {:<8} crossings: {hit} true, {wrong} false, {missed} missed",
                clip.name, v
            );
            most_false = most_false.max(wrong);
        }
    }
    (worst, most_false)
}

/// How far a clip's counts may be off, per direction, and how many false crossings a copy may
/// have. Each bound holds on both kinds of CPU measured (README "Counts and the CPU"): where the
/// two differed (before exact int8 arithmetic everywhere), the bound is the worse of the two, so
/// neither machine's figures are fitted.
struct Tolerance {
    /// Native quality, per direction.
    native: i64,
    /// False crossings at native quality.
    native_false: u64,
    /// Each re-encoded copy, per direction.
    variants: i64,
    /// False crossings in one re-encoded copy.
    variant_false: u64,
    /// Each night copy, per direction (of the truth, or vtest's daytime count).
    night: i64,
}

fn tolerance(clip: &str) -> Tolerance {
    match clip {
        // one false crossing in a variant: at 480x360 on both CPUs (three tracks cross where two
        // people walk, two of them boxes inside the third's)
        "TUD-Campus" => Tolerance {
            native: 0,
            native_false: 0,
            variants: 2,
            variant_false: 1,
            night: 2,
        },
        // The crowded street: which way a track goes where two walkers pass through each other
        // on the line turns on a few hundredths of a score, so the CPU's int8 arithmetic moves
        // it. Native, no false crossing where the sums saturate (AVX2), three where they are
        // exact (VNNI: tracks on a far passer-by's boxes at the end of line b, one of them
        // slid there from a walker; a box born beside someone standing at line a, taking over a
        // lost track's side); at night line b 0/4 in the flat infrared copy
        // and 0/5 with a lamp in view on VNNI, 1/4 and 2/3 on AVX2 (truth 3/3).
        "TUD-Stadtmitte" => Tolerance {
            native: 1,
            native_false: 3,
            variants: 2,
            variant_false: 2,
            night: 3,
        },
        // vtest, against its own native counts (no truth: no false crossings to judge)
        _ => Tolerance {
            native: 0,
            native_false: 0,
            variants: 2,
            variant_false: 0,
            night: 2,
        },
    }
}

#[test]
fn tud_counts_hold_at_native_quality_and_for_every_variant() {
    let Some(clips) = tud() else { return };
    let mut failures = Vec::new();
    for clip in &clips {
        let truth = clip.truth.as_ref().unwrap();
        let gt = clip.video.parent().unwrap().join("gt/gt.txt");
        let tol = tolerance(clip.name);
        let extra = truth_args(&gt, 1.0);
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let r = analyze(&clip.video, &clip.lines, 1.0, &extra);
        // the crossings `--truth` reads from the annotation give the README's true counts
        for (k, (line, _)) in clip.lines.iter().enumerate() {
            assert_eq!(
                counts(&r["truth"], line),
                truth[k],
                "{} {line}: the crossings read from {} disagree with ../shared/data/README.md",
                clip.name,
                gt.display()
            );
        }
        // the figures below hold for this CPU's int8 arithmetic (see the top of this file)
        println!("{:<15} detector {}", clip.name, r["detector"]);
        for (k, (line, _)) in clip.lines.iter().enumerate() {
            let got = counts(&r, line);
            println!(
                "{:<15} native   line {line}: in {} out {} (true {} / {})",
                clip.name, got.0, got.1, truth[k].0, truth[k].1
            );
            let off = [(got.0 - truth[k].0).abs(), (got.1 - truth[k].1).abs()];
            if off[0].max(off[1]) > tol.native {
                failures.push(format!(
                    "{} {line} native: {got:?} vs {:?}",
                    clip.name, truth[k]
                ));
            }
        }
        // A miss is the detector losing someone in the crowd; a false count is the rule's (or
        // the tracker's) fault: none on the open campus, few in the crowd (`tolerance`).
        let (hit, wrong, missed) = judged(&r);
        println!(
            "{:<15} native   crossings: {hit} true, {wrong} false, {missed} missed",
            clip.name
        );
        if wrong > tol.native_false {
            failures.push(format!(
                "{} native: {wrong} false crossings (allowed {})",
                clip.name, tol.native_false
            ));
        }
        let (worst, most_false) = worst_over_variants(clip, truth, Some(&gt));
        if worst > tol.variants {
            failures.push(format!(
                "{}: a variant is {worst} off the truth in one direction (allowed {})",
                clip.name, tol.variants
            ));
        }
        if most_false > tol.variant_false {
            failures.push(format!(
                "{}: a variant counted {most_false} false crossings (allowed {})",
                clip.name, tol.variant_false
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:?} (see the table above)");
}

#[test]
fn vtest_counts_hold_within_two_of_native_for_every_variant() {
    let clip = Clip {
        name: "vtest",
        // the file as Debian ships it (setup's H.264 transcode of it is made anew on each
        // machine, and x264 with several threads does not make the same file twice)
        video: sample("vtest.avi"),
        width: 768.0,
        // across the pavement in the middle of the picture, where people walk both ways
        lines: vec![("mid", [384.0, 150.0, 384.0, 576.0])],
        truth: None,
    };
    let r = analyze(&clip.video, &clip.lines, 1.0, &[]);
    let native: Vec<(i64, i64)> = clip.lines.iter().map(|(l, _)| counts(&r, l)).collect();
    println!("vtest native: {native:?}");
    assert!(native[0].0 >= 5 && native[0].1 >= 5, "implausible: {r}");
    let (worst, _) = worst_over_variants(&clip, &native, None);
    let allowed = tolerance(clip.name).variants;
    assert!(
        worst <= allowed,
        "a re-encoded variant of vtest is {worst} off its native counts (allowed {allowed}; see above)"
    );
}

/// The night copies the counts are held on (see the top of this file), per clip.
const NIGHT_TUD: [&str; 4] = ["dim", "ir", "ir-centre", "lamp"];
const NIGHT_VTEST: [&str; 2] = ["ir-centre", "lamp"];

#[test]
fn night_copies_count_near_the_daytime_counts() {
    let video = sample("vtest.avi");
    let lines = vec![("mid", [384.0, 150.0, 384.0, 576.0])];
    let day = analyze(&video, &lines, 1.0, &[]);
    let vtest = Clip {
        name: "vtest",
        video,
        width: 768.0,
        lines,
        // (no ground truth: its own daytime counts)
        truth: Some(vec![counts(&day, "mid")]),
    };
    let mut runs: Vec<(Clip, &[&str])> = vec![(vtest, &NIGHT_VTEST)];
    runs.extend(tud().into_iter().flatten().map(|c| (c, &NIGHT_TUD[..])));
    let mut failures = Vec::new();
    for (clip, variants) in &runs {
        let reference = clip.truth.as_ref().unwrap();
        for v in variants.iter() {
            let r = analyze(&night_copy(&clip.video, v), &clip.lines, 1.0, &[]);
            for (k, (line, _)) in clip.lines.iter().enumerate() {
                let (i, o) = counts(&r, line);
                let (ri, ro) = reference[k];
                println!(
                    "{:<15} {v:<9} line {line}: in {i} out {o} (truth or daytime {ri} / {ro})",
                    clip.name
                );
                let allowed = tolerance(clip.name).night;
                if (i - ri).abs().max((o - ro).abs()) > allowed {
                    failures.push(format!(
                        "{} {v} {line}: {i}/{o} against {ri}/{ro} (allowed {allowed})",
                        clip.name
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:?} (see the table above)");
}

#[test]
fn analyze_fps_keeps_the_pictures_a_live_camera_at_that_rate_would() {
    // the file as Debian ships it: the same pictures on every machine (see above)
    let v = sample("vtest.avi");
    let line = [("mid", [384.0, 150.0, 384.0, 576.0])];
    let all = analyze(&v, &line, 1.0, &[]);
    let half = analyze(&v, &line, 1.0, &["--fps", "5"]);
    // 795 pictures at 10 fps: every other one at 5 fps
    assert_eq!(all["frames"], 795);
    assert_eq!(all["analysed"], 795);
    assert_eq!(half["frames"], 795);
    let n = half["analysed"].as_u64().unwrap();
    assert!((396..=399).contains(&n), "analysed {n} of 795 at 5 fps");
    // a rate above the video's keeps everything: TUD-Campus (71 pictures at 25 fps) at 30, a
    // short clip rather than vtest's 795 pictures a third time
    if let Some(clips) = tud() {
        let c = &clips[0];
        let native = analyze(&c.video, &c.lines, 1.0, &[]);
        let fast = analyze(&c.video, &c.lines, 1.0, &["--fps", "30"]);
        assert_eq!(native["frames"], 71);
        assert_eq!(fast["analysed"], 71);
        assert_eq!(fast["lines"], native["lines"]);
    }
    // every crossing at 5 fps is on a kept (even) picture
    for c in half["crossings"].as_array().unwrap() {
        assert_eq!(c["frame"].as_u64().unwrap() % 2, 0, "{c}");
    }
    let (hi, ho) = counts(&half, "mid");
    let (ai, ao) = counts(&all, "mid");
    println!("vtest mid: all frames {ai}/{ao}, --fps 5: {hi}/{ho}");
    // half the pictures, the same people: as close as the 5 fps re-encoding (see above)
    assert!((hi - ai).abs() <= 2 && (ho - ao).abs() <= 2);
    // a rate that is not one is refused with the reason
    let out = ronda()
        .args(["analyze", "vtest.avi", "--fps", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(common::stderr(&out).contains("frame rate"));
}

#[test]
fn the_counting_report_shows_each_crossing_and_a_contact_sheet() {
    let v = sample("vtest.mp4");
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report");
    // at 5 pictures a second, as a busy camera might analyse: the report is the point here
    let r = analyze(
        &v,
        &[("mid", [384.0, 150.0, 384.0, 576.0])],
        1.0,
        &["--report", report.to_str().unwrap(), "--fps", "5"],
    );
    let n = r["crossings"].as_array().unwrap().len();
    assert!(n >= 5, "{r}");
    for k in 1..=n {
        let crop = report.join(format!("crossing-{k:03}.jpg"));
        let img = image::open(&crop).unwrap_or_else(|e| panic!("{}: {e}", crop.display()));
        assert!(
            img.height() >= 20,
            "{} is {}x{}",
            crop.display(),
            img.width(),
            img.height()
        );
    }
    assert!(!report.join(format!("crossing-{:03}.jpg", n + 1)).exists());
    let sheet = image::open(report.join("sheet.jpg")).unwrap();
    // rows of 8 cells, each 108 wide and 168 high with its frame
    assert_eq!(sheet.width(), 108 * (n.min(8) as u32));
    assert_eq!(sheet.height(), 168 * n.div_ceil(8) as u32);
    let page = std::fs::read_to_string(report.join("index.html")).unwrap();
    assert_eq!(page.matches("<img src=\"crossing-").count(), n);
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("analysis.json")).unwrap())
            .unwrap();
    assert_eq!(json["lines"], r["lines"]);
}

#[test]
fn analyze_truth_refuses_a_bad_annotation_before_analysing() {
    let dir = tempfile::tempdir().unwrap();
    let run = |truth: &Path, extra: &[&str]| {
        let out = ronda()
            .args([
                "analyze",
                "vtest.avi",
                "--line",
                "mid=384,150,384,576",
                "--truth",
            ])
            .arg(truth)
            .args(extra)
            .output()
            .unwrap();
        (out.status.code(), common::stderr(&out))
    };
    let absent = dir.path().join("gt.txt");
    let (code, err) = run(&absent, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("gt.txt") && err.contains("MOTChallenge"),
        "{err}"
    );
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "1,1,10,20,30,40,1\n2,1,ten,20,30,40,1\n").unwrap();
    let (code, err) = run(&bad, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("bad.txt") && err.contains("line 2"), "{err}");
    let (code, err) = run(&bad, &["--truth-scale", "0"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("scale"), "{err}");
}
