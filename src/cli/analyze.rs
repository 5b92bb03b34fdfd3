//! `ronda analyze VIDEO [--line NAME=x1,y1,x2,y2]... [--config FILE --camera ID] [--json]`.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{CliError, CliResult};
use crate::analyze::{
    self, AnalyzeError, AnalyzeOptions, CrossingRecord, detector_options_for_tracking,
};
use crate::config::Settings;
use crate::detect::Variant;
use crate::detect::eval::{GroundTruthPeople, parse_gt_people};
use crate::events::{Counts, Direction};
use crate::geometry::Point;
use crate::rules::LineSpec;
use crate::rules::truth::{match_crossings, true_crossings};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelArg {
    Fp32,
    Int8,
}

/// `--low-light`: see `detect::light`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LowLight {
    Auto,
    Off,
}

/// `--int8-arithmetic`: see `detect::RuntimeOptions::int8_exact`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Int8Arithmetic {
    /// The same on every CPU.
    Exact,
    /// ONNX Runtime's quicker kernels, whose sums saturate on x86 without VNNI.
    Fast,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The video file (MP4, MKV, AVI, ...). A bare name such as vtest.avi is also looked up
    /// among the sample media that `make setup` installs.
    pub video: PathBuf,
    /// A counting line NAME=x1,y1,x2,y2 in video pixels; `in` is A->B turned a quarter turn
    /// clockwise. Repeatable.
    #[arg(long = "line", value_name = "NAME=x1,y1,x2,y2")]
    pub lines: Vec<String>,
    /// Take the lines (and tracking settings) of a camera from this configuration file.
    #[arg(long, value_name = "FILE", requires = "camera")]
    pub config: Option<PathBuf>,
    /// The camera id in --config whose lines to use.
    #[arg(long, value_name = "ID", requires = "config")]
    pub camera: Option<String>,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Add a mask verdict to each crossing (face + mask models on the person's head).
    #[arg(long)]
    pub mask: bool,
    /// Person model precision.
    #[arg(long, value_enum, default_value = "int8")]
    pub model: ModelArg,
    /// Dark pictures: `auto` lifts them before detection (as `ronda run` does by default),
    /// `off` gives the detector the pictures as they are. Default: the configuration's
    /// `[detector] low_light` with --config, else auto.
    #[arg(long, value_enum, value_name = "MODE")]
    pub low_light: Option<LowLight>,
    /// How an int8 model computes on an x86 CPU without VNNI: `exact` (the same as on every
    /// other CPU) or `fast` (quicker, sums that saturate: counts can differ from other
    /// machines'). Default: the configuration's `[detector] int8_arithmetic` with --config, else
    /// exact.
    #[arg(long, value_enum, value_name = "MODE")]
    pub int8_arithmetic: Option<Int8Arithmetic>,
    /// Person model, by its key in the models' manifest (`<key>_int8` for int8): `person` is
    /// the default; e.g. `ssdlite` with RONDA_MODELS_DIR=.cache/candidates (issue 13's
    /// candidates). Default: the configuration's, else `person`.
    #[arg(long, value_name = "NAME")]
    pub person_model: Option<String>,
    /// Inference threads (default: all cores, at most 4).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub threads: Option<u16>,
    /// Measure instead: detector-only vs whole-analysis throughput over the same decoded
    /// frames, fp32 and int8, 1 and 2 threads.
    #[arg(long)]
    pub bench: bool,
    /// Analyse at most N pictures a second, kept as a live camera with `analysis_fps = N`
    /// keeps them (by their timestamps): reproduces a live run offline.
    #[arg(long, value_name = "N", value_parser = parse_fps)]
    pub fps: Option<f64>,
    /// Write a counting report into DIR: a crop of each person at the moment their crossing
    /// counted, a contact sheet of them all (sheet.jpg) and index.html to check the counts by eye.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Try another counting setting on this video, e.g. `--counting confirm_heights=0.3`
    /// (the keys of `[counting]`, README "Counting"). Repeatable; applied after --config.
    #[arg(long = "counting", value_name = "KEY=VALUE")]
    pub counting: Vec<String>,
    /// Frames decoded into memory for --bench.
    #[arg(long, default_value_t = 300, value_name = "N")]
    pub bench_frames: usize,
    /// Judge the counts against this video's ground truth: a MOTChallenge `gt.txt`
    /// (`frame,id,x,y,w,h,...`, frames from 1). Adds the true counts and each crossing counted
    /// falsely or missed (README "Lines, directions and counting").
    #[arg(long, value_name = "FILE")]
    pub truth: Option<PathBuf>,
    /// The frame rate the ground truth's frame numbers count at (default: the video's own; give
    /// the original's for a copy at another rate).
    #[arg(long, value_name = "N", value_parser = parse_fps, requires = "truth")]
    pub truth_fps: Option<f64>,
    /// The ground truth's pixels times this are the video's (e.g. 0.75 for a 480x360 copy of
    /// 640x480 footage annotated at its own size).
    #[arg(long, value_name = "S", value_parser = parse_scale, requires = "truth")]
    pub truth_scale: Option<f32>,
}

fn parse_scale(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(v) if v.is_finite() && (0.01..=100.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "`{s}` is not a scale between 0.01 and 100 (e.g. 0.75 for a 480x360 copy of 640x480)"
        )),
    }
}

/// The ground truth of `--truth`, read before the (long) analysis so that a wrong file is said
/// at once.
fn read_truth(file: &Path, lines: &[LineSpec]) -> Result<GroundTruthPeople, CliError> {
    if lines.is_empty() {
        return Err(CliError::Usage(
            "--truth: give the lines to judge (--line NAME=x1,y1,x2,y2, or --config --camera)"
                .into(),
        ));
    }
    let text = std::fs::read_to_string(file).map_err(|e| {
        CliError::Usage(format!(
            "--truth {}: {e} (give the MOTChallenge gt.txt of this video)",
            file.display()
        ))
    })?;
    let gt = parse_gt_people(&text)
        .map_err(|e| CliError::Usage(format!("--truth {}: {e}", file.display())))?;
    if gt.is_empty() {
        return Err(CliError::Usage(format!(
            "--truth {}: no annotated person in it",
            file.display()
        )));
    }
    Ok(gt)
}

/// What `--json` prints: the analysis, and with `--truth` its judgement as the last key.
#[derive(Serialize)]
struct Output<'a> {
    #[serde(flatten)]
    analysis: &'a analyze::Analysis,
    #[serde(skip_serializing_if = "Option::is_none")]
    truth: Option<&'a Judged<'a>>,
}

/// The counts judged against the ground truth: the `truth` object of the JSON.
#[derive(Debug, Serialize)]
struct Judged<'a> {
    file: String,
    /// The annotation's frame rate and scale onto this video.
    fps: f64,
    scale: f32,
    /// The true counts per line.
    lines: BTreeMap<String, Counts>,
    #[serde(rename = "true")]
    hits: usize,
    #[serde(rename = "false")]
    wrong: usize,
    missed: usize,
    false_crossings: Vec<&'a CrossingRecord>,
    missed_crossings: Vec<Missed>,
}

/// A true crossing nobody counted.
#[derive(Debug, Serialize)]
struct Missed {
    line: String,
    direction: Direction,
    /// The annotation's id of the person.
    person: u32,
    time_s: f64,
    /// Their annotated box then, in the video's pixels.
    #[serde(rename = "box")]
    bbox: [i32; 4],
}

/// The counts of `result` judged against the ground truth `gt` of `--truth`.
fn judge<'a>(
    args: &Args,
    gt: &GroundTruthPeople,
    lines: &[LineSpec],
    result: &'a analyze::Analysis,
) -> Result<Judged<'a>, CliError> {
    let fps = args.truth_fps.unwrap_or(result.fps);
    if fps <= 0.0 {
        return Err(CliError::Usage(format!(
            "--truth: {} declares no frame rate; give the annotation's with --truth-fps",
            result.video
        )));
    }
    let scale = args.truth_scale.unwrap_or(1.0);
    let truth = true_crossings(gt, lines, fps, scale);
    let counted: Vec<(&str, Direction, f64)> = result
        .crossings
        .iter()
        .map(|c| (c.line.as_str(), c.direction, c.time_s))
        .collect();
    let m = match_crossings(&counted, &truth);
    let mut per_line: BTreeMap<String, Counts> = lines
        .iter()
        .map(|l| (l.name.clone(), Counts::default()))
        .collect();
    for c in &truth {
        if let Some(n) = per_line.get_mut(&c.line) {
            n.add(c.direction);
        }
    }
    Ok(Judged {
        file: args
            .truth
            .as_ref()
            .map_or_else(String::new, |f| f.display().to_string()),
        fps,
        scale,
        lines: per_line,
        hits: m.true_count(),
        wrong: m.false_count(),
        missed: m.missed.len(),
        false_crossings: result
            .crossings
            .iter()
            .zip(&m.counted)
            .filter(|(_, t)| t.is_none())
            .map(|(c, _)| c)
            .collect(),
        missed_crossings: m
            .missed
            .iter()
            .map(|&k| {
                let c = &truth[k];
                let b = &c.bbox;
                Missed {
                    line: c.line.clone(),
                    direction: c.direction,
                    person: c.person,
                    time_s: (c.time * 100.0).round() / 100.0,
                    bbox: [b.x1, b.y1, b.x2, b.y2].map(|v| v.round() as i32),
                }
            })
            .collect(),
    })
}

/// The judgement as text, after the crossings.
fn print_truth(out: &mut impl Write, t: &Judged) {
    let _ = writeln!(
        out,
        "\ntruth: {} (frames at {} fps)\n{:<16} {:>6} {:>6}",
        t.file, t.fps, "line", "in", "out"
    );
    for (name, c) in &t.lines {
        let _ = writeln!(out, "{:<16} {:>6} {:>6}", name, c.in_, c.out);
    }
    let _ = writeln!(
        out,
        "crossings: {} true, {} false, {} missed",
        t.hits, t.wrong, t.missed
    );
    for c in &t.false_crossings {
        let _ = writeln!(
            out,
            "  false:  {} {} at {:.2} s (track {})",
            c.line,
            c.direction.as_str(),
            c.time_s,
            c.track_id
        );
    }
    for c in &t.missed_crossings {
        let _ = writeln!(
            out,
            "  missed: {} {} at {:.2} s (person {}, box {:?})",
            c.line,
            c.direction.as_str(),
            c.time_s,
            c.person,
            c.bbox
        );
    }
}

/// `KEY=VALUE` of `[counting]` onto `c`.
fn set_counting(c: &mut crate::rules::CountingParams, kv: &str) -> Result<(), String> {
    let (key, value) = kv.split_once('=').ok_or_else(|| {
        format!("--counting `{kv}`: write it KEY=VALUE, e.g. confirm_heights=0.3")
    })?;
    let v: f32 = value
        .trim()
        .parse()
        .ok()
        .filter(|v: &f32| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| format!("--counting `{kv}`: `{value}` is not a number of 0 or more"))?;
    match key.trim() {
        "dead_band" => c.dead_band = v,
        "dead_band_px" => c.dead_band_px = v,
        "confirm_heights" => c.confirm_heights = v,
        "confirm_seconds" => c.confirm_seconds = v,
        "min_track_hits" => c.min_track_hits = v as u32,
        "min_track_seconds" => c.min_track_seconds = v,
        "handover_seconds" => c.handover_seconds = v,
        "handover_heights" => c.handover_heights = v,
        other => {
            return Err(format!(
                "--counting: unknown key `{other}`; keys: dead_band, dead_band_px, confirm_heights, confirm_seconds, min_track_hits, min_track_seconds, handover_seconds, handover_heights"
            ));
        }
    }
    Ok(())
}

fn parse_fps(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && (0.1..=120.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "`{s}` is not a frame rate between 0.1 and 120 (e.g. 10, as a camera's analysis_fps)"
        )),
    }
}

/// Parse `NAME=x1,y1,x2,y2`.
fn parse_line(s: &str) -> Result<LineSpec, String> {
    let (name, coords) = s.split_once('=').ok_or_else(|| {
        format!("--line `{s}`: write it NAME=x1,y1,x2,y2, e.g. gate=320,100,320,360")
    })?;
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("--line `{s}`: the line needs a name before ="));
    }
    let nums: Result<Vec<f32>, _> = coords.split(',').map(|v| v.trim().parse::<f32>()).collect();
    match nums {
        Ok(v) if v.len() == 4 && v.iter().all(|x| x.is_finite()) => {
            if v[0] == v[2] && v[1] == v[3] {
                return Err(format!(
                    "--line `{s}`: both points are the same; a line needs length"
                ));
            }
            Ok(LineSpec::new(
                name,
                Point::new(v[0], v[1]),
                Point::new(v[2], v[3]),
            ))
        }
        _ => Err(format!(
            "--line `{s}`: needs four numbers x1,y1,x2,y2 after the name, e.g. gate=320,100,320,360"
        )),
    }
}

fn options(args: &Args) -> Result<AnalyzeOptions, CliError> {
    let mut opts = AnalyzeOptions::default();
    if let (Some(file), Some(id)) = (&args.config, &args.camera) {
        let settings = Settings::load(file).map_err(|e| CliError::Usage(e.to_string()))?;
        let cam = settings.camera(id).ok_or_else(|| {
            let ids: Vec<&str> = settings.cameras.iter().map(|c| c.id.as_str()).collect();
            CliError::Usage(format!(
                "{}: no camera `{id}`; cameras there: {}",
                file.display(),
                if ids.is_empty() {
                    "none".into()
                } else {
                    ids.join(", ")
                }
            ))
        })?;
        opts.tracker = settings.tracker.clone();
        opts.counting = settings.counting.clone();
        // the camera's own rules, as live: curfew and mask alerts of its lines, its zones
        opts.line_rules = cam.lines.iter().map(|l| cam.line_rules(l)).collect();
        opts.zones = cam.zones.iter().map(|z| z.spec()).collect();
        opts.cooldown = settings.alerts.cooldown;
        opts.timezone = settings.site.timezone;
        opts.detector = detector_options_for_tracking(&opts.tracker);
        let d = settings.detector_options();
        opts.detector.runtime = d.runtime;
        opts.detector.models_dir = d.models_dir;
        opts.detector.light = d.light;
        opts.detector.person_model = d.person_model;
        opts.lines = cam.lines.iter().map(|l| l.spec()).collect();
        if opts.lines.is_empty() && args.lines.is_empty() {
            return Err(CliError::Usage(format!(
                "{}: camera `{id}` has no [[cameras.lines]]; add one or use --line",
                file.display()
            )));
        }
    }
    for l in &args.lines {
        let spec = parse_line(l).map_err(CliError::Usage)?;
        if opts.lines.iter().any(|x| x.name == spec.name) {
            return Err(CliError::Usage(format!(
                "--line: the name `{}` is used twice",
                spec.name
            )));
        }
        opts.lines.push(spec);
    }
    if let Some(m) = &args.person_model {
        opts.detector.person_model = m.clone();
    }
    opts.detector.variant = match args.model {
        ModelArg::Fp32 => Variant::Fp32,
        ModelArg::Int8 => Variant::Int8,
    };
    opts.detector.runtime.threads = match args.threads {
        Some(n) => n as usize,
        None => std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(4),
    };
    if let Some(mode) = args.low_light {
        opts.detector.light.enabled = mode == LowLight::Auto;
    }
    if let Some(mode) = args.int8_arithmetic {
        opts.detector.runtime.int8_exact = mode == Int8Arithmetic::Exact;
    }
    opts.mask = args.mask;
    opts.fps = args.fps;
    for kv in &args.counting {
        set_counting(&mut opts.counting, kv).map_err(CliError::Usage)?;
    }
    opts.crops = args.report.is_some();
    Ok(opts)
}

fn runtime(e: AnalyzeError) -> CliError {
    CliError::Runtime(crate::detect::one_line_error(e))
}

pub fn run(args: Args) -> CliResult {
    let opts = options(&args)?;
    let video = analyze::resolve_video(&args.video);
    // a file that is not there is a bad argument (exit 2); one that cannot be read, a failure
    if !video.is_file() {
        return Err(CliError::Usage(format!(
            "{}: no such file (give the path of a video file, or a sample name such as vtest.avi)",
            video.display()
        )));
    }
    if args.bench {
        return bench(&args, &video, &opts);
    }
    let gt = match &args.truth {
        Some(file) => Some(read_truth(file, &opts.lines)?),
        None => None,
    };
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {pos}/{len} frames {per_sec} [{elapsed_precise}] {wide_bar}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let mut progress = |done: u64, expected: Option<u64>| {
        if let Some(b) = &bar {
            if let Some(n) = expected
                && b.length() != Some(n.max(done))
            {
                b.set_length(n.max(done));
            }
            b.set_position(done);
        }
    };
    let (result, crops, times) = analyze::analyze(&video, &opts, &mut progress).map_err(runtime)?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    // a container that promises more than it holds was cut short (a copy interrupted, a full
    // disk): the counts cover only what was read, and the user must know
    if let Some(expected) = result.expected_frames
        && result.frames * 10 < expected * 9
    {
        eprintln!(
            "warning: {} ends after {} of the {} frames its header announces: the file looks truncated; the counts cover only the frames read",
            result.video, result.frames, expected
        );
    }
    if let Some(dir) = &args.report {
        let written = crate::report::write(dir, &result, &crops)
            .map_err(|e| CliError::Runtime(format!("counting report in {}: {e}", dir.display())))?;
        eprintln!(
            "counting report: {} ({} crossings)",
            written.display(),
            result.crossings.len()
        );
    }
    let truth = match &gt {
        Some(gt) => Some(judge(&args, gt, &opts.lines, &result)?),
        None => None,
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        let whole = Output {
            analysis: &result,
            truth: truth.as_ref(),
        };
        let text = serde_json::to_string(&whole).map_err(|e| CliError::Runtime(e.to_string()))?;
        let _ = writeln!(out, "{text}");
    } else {
        let _ = writeln!(
            out,
            "{}: {} frames at {:.2} fps ({:.1} s of video), {} analysed, in {:.1} s ({:.1} frames/s)",
            result.video,
            result.frames,
            result.fps,
            if result.fps > 0.0 {
                result.frames as f64 / result.fps
            } else {
                0.0
            },
            result.analysed,
            times.wall.as_secs_f64(),
            result.frames as f64 / times.wall.as_secs_f64().max(1e-9)
        );
        let d = &result.detector;
        let _ = match d.int8_arithmetic {
            Some(a) => writeln!(
                out,
                "detector: {} {} ({a} int8 arithmetic on this CPU: compare counts with another \
                 machine's only where it says the same)",
                d.model, d.precision
            ),
            None => writeln!(out, "detector: {} {}", d.model, d.precision),
        };
        if result.lines.is_empty() {
            let _ = writeln!(
                out,
                "no lines given (use --line NAME=x1,y1,x2,y2): nothing counted"
            );
        } else {
            let _ = writeln!(
                out,
                "\n{:<16} {:>6} {:>6} {:>10}",
                "line", "in", "out", "occupancy"
            );
            for (name, c) in &result.lines {
                let _ = writeln!(
                    out,
                    "{:<16} {:>6} {:>6} {:>10}",
                    name,
                    c.in_,
                    c.out,
                    c.occupancy()
                );
            }
            let _ = writeln!(
                out,
                "\n{:<16} {:>4} {:>6} {:>7} {:>9}  mask",
                "line", "dir", "track", "frame", "time"
            );
            for c in &result.crossings {
                let mask = match (c.mask, c.mask_score) {
                    (Some(m), Some(s)) => format!("{} {:.2}", m.as_str(), s),
                    _ if opts.mask => "no face seen".into(),
                    _ => String::new(),
                };
                let _ = writeln!(
                    out,
                    "{:<16} {:>4} {:>6} {:>7} {:>8.2}s  {mask}",
                    c.line,
                    c.direction.as_str(),
                    c.track_id,
                    c.frame,
                    c.time_s
                );
            }
        }
        if let Some(t) = &truth {
            print_truth(&mut out, t);
        }
    }
    Ok(())
}

fn bench(args: &Args, video: &std::path::Path, opts: &AnalyzeOptions) -> CliResult {
    let (frames, _fps) = analyze::decode_frames(video, args.bench_frames).map_err(runtime)?;
    eprintln!(
        "bench: {} frames of {} decoded into memory; every figure below runs over the same frames",
        frames.len(),
        video.display()
    );
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{:<6} {:>7} {:>12} {:>12} {:>7} {:>16}",
        "model", "threads", "detector f/s", "analysis f/s", "ratio", "track+rules us/f"
    );
    let rows =
        analyze::bench(&frames, opts, &[Variant::Fp32, Variant::Int8], &[1, 2]).map_err(runtime)?;
    for r in &rows {
        let _ = writeln!(
            out,
            "{:<6} {:>7} {:>12.1} {:>12.1} {:>6.1}% {:>16.1}",
            r.model,
            r.threads,
            r.detector_fps,
            r.analysis_fps,
            r.ratio * 100.0,
            r.track_rules_us_per_frame
        );
    }
    if args.json {
        let _ = writeln!(out, "{}", serde_json::to_string(&rows).unwrap_or_default());
    }
    Ok(())
}
