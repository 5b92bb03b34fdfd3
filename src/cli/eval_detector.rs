//! `ronda eval-detector`: the person models measured on annotated footage, by day and by night,
//! and timed, as one table (issue 13; the README's "Person detector" section shows its output).
//!
//! Models: the person models of `models/manifest.toml` (keys `person`, `person_int8` and any
//! entry with an `architecture`) and of the candidates' manifest that `scripts/convert-candidates`
//! writes to `.cache/candidates/` (skipped with a note when absent). Clips: every folder of the
//! data directory with `gt/gt.txt` (MOTChallenge), its pictures from `img1/*.jpg` when present
//! (the originals), otherwise from the first video in the folder.
//!
//! Accuracy does not depend on the machine; time does, and this machine is shared: the models are
//! timed in turns (round-robin, best of three rounds) so that a burst of someone else's load
//! hits them alike, and the table gives time as a ratio to NanoDet-m of the same precision.

use super::{CliError, CliResult};
use crate::detect::eval::{self, Night, Tally};
use crate::detect::light::LightParams;
use crate::detect::manifest::Manifest;
use crate::detect::person::Architecture;
use crate::detect::{DetectorOptions, PersonDetector, RuntimeOptions};
use crate::geometry::BBox;
use crate::ingest::file::VideoFile;
use image::RgbImage;
use std::path::{Path, PathBuf};
use std::time::Instant;

mod regions;
mod tracking;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder of annotated clips (default: ../shared/data beside the project).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Models directory (default: RONDA_MODELS_DIR, else the project's models/).
    #[arg(long, value_name = "DIR")]
    pub models: Option<PathBuf>,
    /// Candidates directory made by scripts/convert-candidates (default: .cache/candidates).
    #[arg(long, value_name = "DIR")]
    pub candidates: Option<PathBuf>,
    /// Only these manifest keys (comma separated, e.g. person,ssdlite_int8).
    #[arg(long, value_delimiter = ',', value_name = "KEYS")]
    pub only: Vec<String>,
    /// At most this many annotated frames per clip, spread evenly (default: all).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub frames: Option<u32>,
    /// Frames timed per model, thread count and round.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub timing_frames: usize,
    /// Thread counts to time (comma separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,2",
        value_name = "N,..."
    )]
    pub threads: Vec<usize>,
    /// Leave out the night pictures.
    #[arg(long)]
    pub no_night: bool,
    /// Compare region search with whole-picture search instead (`[detector] area_regions`), for
    /// these area models (comma separated manifest keys, e.g. person,person_small), each clip
    /// played in order at `--step`.
    #[arg(long, value_delimiter = ',', value_name = "KEYS")]
    pub regions: Vec<String>,
    /// With --regions: every Nth picture (5 of 25 fps footage: a live area camera at 5 fps).
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub step: usize,
    /// With --regions or --tracking: the footage's frames per second.
    #[arg(long, default_value_t = 25.0, value_name = "FPS")]
    pub fps: f64,
    /// Measure the tracker instead: people followed, id switches and swaps against the
    /// annotated ids, each clip played in order at 25, 12.5 and 5 pictures a second, by day and
    /// at night (`--no-night`: by day only).
    #[arg(long, conflicts_with_all = ["regions", "frames"])]
    pub tracking: bool,
    /// ONNX Runtime library (default: RONDA_ORT_LIB, else the copy `make setup` installed).
    #[arg(long, value_name = "FILE")]
    pub ort_lib: Option<PathBuf>,
}

/// Detections below this are dropped before matching: low enough for the precision-recall
/// curve (AP), far below any operating threshold.
const AP_FLOOR: f32 = 0.05;
/// Operating threshold of a model whose manifest gives none (NanoDet-m's, FACTS.md).
const DEFAULT_THRESHOLD: f32 = 0.4;
/// Timing rounds per thread count; the best round counts.
const ROUNDS: usize = 3;

struct Clip {
    name: String,
    /// The annotated frames, in order (a frame nobody is annotated in is not loaded).
    frames: Vec<Frame>,
}

/// One annotated frame of a clip.
struct Frame {
    picture: RgbImage,
    /// 1-based, as in gt.txt.
    number: u32,
    /// The annotated people: (id, box).
    people: Vec<(u32, BBox)>,
}

impl Frame {
    /// The annotated people's boxes.
    fn boxes(&self) -> Vec<BBox> {
        self.people.iter().map(|&(_, b)| b).collect()
    }
}

/// A person model to evaluate: where its manifest is and its key there.
struct Candidate {
    manifest: Manifest,
    key: String,
    name: String,
    precision: String,
    architecture: Architecture,
    threshold: f32,
    input: String,
}

#[derive(Default)]
struct Row {
    day: Tally,
    night: Tally,
    /// The night pictures lifted as `ronda run` lifts dark pictures (`detect::light`).
    lifted: Tally,
    /// ms per frame per thread count (same order as `--threads`)
    ms: Vec<Option<f64>>,
}

pub fn run(args: Args) -> CliResult {
    if args.threads.is_empty() || args.threads.iter().any(|&t| t == 0 || t > 64) {
        return Err(CliError::Usage(
            "--threads takes counts from 1 to 64".into(),
        ));
    }
    let data = match &args.data {
        Some(d) => d.clone(),
        None => crate::paths::shared_data_dir().ok_or_else(|| {
            CliError::Usage(format!(
                "no annotated footage: {} is absent; pass --data DIR (folders with gt/gt.txt)",
                crate::paths::project_root()
                    .join("..")
                    .join("shared")
                    .join("data")
                    .display()
            ))
        })?,
    };
    let clips = load_clips(&data, args.frames)?;
    if args.tracking {
        return tracking::run(&clips, args.ort_lib.clone(), args.fps, !args.no_night);
    }
    if !args.regions.is_empty() {
        return regions::run(
            &clips,
            &args.regions,
            args.ort_lib.clone(),
            args.step,
            args.fps,
        );
    }
    let mut candidates = person_models(&args)?;
    if candidates.is_empty() {
        return Err(CliError::Usage(format!(
            "no person model to evaluate{}",
            if args.only.is_empty() {
                String::new()
            } else {
                format!(" among --only {}", args.only.join(","))
            }
        )));
    }
    // NanoDet-m first: it is the reference of the time ratios.
    candidates.sort_by_key(|c| c.architecture != Architecture::NanoDet);
    let night = Night::default();
    let light = LightParams::default();
    let runtime = |threads: usize| RuntimeOptions {
        library: args.ort_lib.clone(),
        threads,
        ..RuntimeOptions::default()
    };
    let options = |threads: usize| DetectorOptions {
        runtime: runtime(threads),
        person_threshold: AP_FLOOR,
        faces: false,
        ..DetectorOptions::default()
    };

    let mut rows: Vec<Row> = candidates.iter().map(|_| Row::default()).collect();
    for (c, row) in candidates.iter().zip(rows.iter_mut()) {
        eprintln!("eval-detector: {} ({}) ...", c.name, c.key);
        let mut det = PersonDetector::from_key(&c.manifest, &c.key, &options(1))
            .map_err(|e| CliError::Runtime(e.to_string()))?;
        for (k, clip) in clips.iter().enumerate() {
            for (i, frame) in clip.frames.iter().enumerate() {
                let (img, gt) = (&frame.picture, &frame.boxes());
                let dets = det
                    .detect(img)
                    .map_err(|e| CliError::Runtime(e.to_string()))?;
                row.day.add_frame(&dets, gt, c.threshold);
                if !args.no_night {
                    let dark = eval::darken(img, &night, ((k as u64) << 32) | i as u64);
                    let dets = det
                        .detect(&dark)
                        .map_err(|e| CliError::Runtime(e.to_string()))?;
                    row.night.add_frame(&dets, gt, c.threshold);
                    let (lifted, _) = light.correct(&dark);
                    let dets = det
                        .detect(&lifted)
                        .map_err(|e| CliError::Runtime(e.to_string()))?;
                    row.lifted.add_frame(&dets, gt, c.threshold);
                }
            }
        }
    }

    // Timing: the first frames of the clips, every model in turn, best of the rounds.
    let timing: Vec<&RgbImage> = clips
        .iter()
        .flat_map(|c| c.frames.iter().map(|f| &f.picture))
        .take(args.timing_frames.max(1))
        .collect();
    for &threads in &args.threads {
        eprintln!("eval-detector: timing at {threads} thread(s) ...");
        let mut dets = Vec::new();
        for c in &candidates {
            let mut d = PersonDetector::from_key(&c.manifest, &c.key, &options(threads))
                .map_err(|e| CliError::Runtime(e.to_string()))?;
            // warm-up: the first runs allocate the session's buffers
            for img in timing.iter().take(2) {
                d.detect(img)
                    .map_err(|e| CliError::Runtime(e.to_string()))?;
            }
            dets.push(d);
        }
        let mut best = vec![f64::MAX; candidates.len()];
        for _ in 0..ROUNDS {
            for (d, b) in dets.iter_mut().zip(best.iter_mut()) {
                let t = Instant::now();
                for img in &timing {
                    std::hint::black_box(
                        d.detect(img)
                            .map_err(|e| CliError::Runtime(e.to_string()))?,
                    );
                }
                *b = b.min(t.elapsed().as_secs_f64() * 1000.0 / timing.len() as f64);
            }
        }
        for (row, b) in rows.iter_mut().zip(best) {
            row.ms.push(Some(b));
        }
    }

    print!(
        "{}",
        table(&args, &clips, &candidates, &rows, &night, timing.len())
    );
    Ok(())
}

/// Every clip folder of `data` (sorted by name), its annotated frames with their pictures.
fn load_clips(data: &Path, limit: Option<u32>) -> Result<Vec<Clip>, CliError> {
    let entries = std::fs::read_dir(data).map_err(|e| {
        CliError::Usage(format!(
            "cannot read the data directory {}: {e}",
            data.display()
        ))
    })?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("gt").join("gt.txt").is_file())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        return Err(CliError::Usage(format!(
            "{} holds no clip folder with gt/gt.txt",
            data.display()
        )));
    }
    let mut clips = Vec::new();
    for dir in dirs {
        let gt_path = dir.join("gt").join("gt.txt");
        let text = std::fs::read_to_string(&gt_path)
            .map_err(|e| CliError::Runtime(format!("{}: {e}", gt_path.display())))?;
        let gt = eval::parse_gt_people(&text)
            .map_err(|e| CliError::Runtime(format!("{}: {e}", gt_path.display())))?;
        let mut wanted: Vec<u32> = gt.keys().copied().collect();
        if let Some(n) = limit {
            wanted = spread(&wanted, n as usize);
        }
        let pictures = pictures(&dir, &wanted)?;
        let name = dir
            .file_name()
            .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into());
        let frames = wanted
            .iter()
            .zip(pictures)
            .map(|(&number, picture)| Frame {
                picture,
                number,
                people: gt[&number].clone(),
            })
            .collect();
        clips.push(Clip { name, frames });
    }
    Ok(clips)
}

/// `n` of `items`, evenly spaced, first and last included.
fn spread(items: &[u32], n: usize) -> Vec<u32> {
    if n >= items.len() {
        return items.to_vec();
    }
    if n == 1 {
        return vec![items[0]];
    }
    (0..n)
        .map(|k| items[k * (items.len() - 1) / (n - 1)])
        .collect()
}

/// The pictures of 1-based `frames` (sorted): img1/NNNNNN.jpg, else decoded from the video.
fn pictures(dir: &Path, frames: &[u32]) -> Result<Vec<RgbImage>, CliError> {
    let img1 = dir.join("img1");
    if img1.is_dir() {
        return frames
            .iter()
            .map(|f| {
                let p = img1.join(format!("{f:06}.jpg"));
                image::open(&p)
                    .map(|i| i.to_rgb8())
                    .map_err(|e| CliError::Runtime(format!("{}: {e}", p.display())))
            })
            .collect();
    }
    let mut videos: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| CliError::Runtime(format!("{}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|x| matches!(x.to_str(), Some("mp4" | "avi" | "mkv")))
        })
        .collect();
    videos.sort();
    let Some(video) = videos.first() else {
        return Err(CliError::Runtime(format!(
            "{} has neither img1/ nor a video",
            dir.display()
        )));
    };
    let fail = |e: &dyn std::fmt::Display| CliError::Runtime(e.to_string());
    let mut file = VideoFile::open(video).map_err(|e| fail(&e))?;
    let mut out = Vec::with_capacity(frames.len());
    let mut want = frames.iter().peekable();
    // video frame k (from 0) is ground-truth frame k + 1 (data/README.md)
    while let Some(&&f) = want.peek() {
        let Some(frame) = file.next_frame().map_err(|e| fail(&e))? else {
            return Err(CliError::Runtime(format!(
                "{} ends before ground-truth frame {f}",
                video.display()
            )));
        };
        if frame.index + 1 == f as u64 {
            out.push((*frame.image).clone());
            want.next();
        }
    }
    Ok(out)
}

/// A person model entry: `person`, `person_int8`, or anything with an `architecture`.
fn person_models(args: &Args) -> Result<Vec<Candidate>, CliError> {
    let models_dir = args
        .models
        .clone()
        .unwrap_or_else(crate::detect::default_models_dir);
    let mut dirs = vec![models_dir];
    let cand_dir = args
        .candidates
        .clone()
        .unwrap_or_else(|| crate::paths::cache_dir().join("candidates"));
    if cand_dir
        .join(crate::detect::manifest::MANIFEST_FILE)
        .is_file()
    {
        dirs.push(cand_dir);
    } else {
        eprintln!(
            "eval-detector: no candidates in {} (scripts/convert-candidates makes them): the committed models only",
            cand_dir.display()
        );
    }
    let mut out: Vec<Candidate> = Vec::new();
    let mut seen = Vec::new();
    for dir in dirs {
        let manifest = Manifest::load(&dir).map_err(|e| CliError::Runtime(e.to_string()))?;
        for (key, e) in &manifest.models {
            let is_person = key == "person" || key == "person_int8" || e.architecture.is_some();
            if !is_person || (!args.only.is_empty() && !args.only.contains(key)) {
                continue;
            }
            // the same file twice (a candidate that became the default) is measured once; a
            // model with a dynamic input is measured at each size the manifests give it
            let model = (e.sha256.clone(), e.input_size);
            if seen.contains(&model) {
                continue;
            }
            seen.push(model);
            let architecture = match &e.architecture {
                Some(a) => a.parse().map_err(CliError::Runtime)?,
                None => Architecture::NanoDet,
            };
            let precision = e.precision.clone().unwrap_or_else(|| {
                if key.ends_with("_int8") {
                    "int8"
                } else {
                    "fp32"
                }
                .into()
            });
            let input = match (e.inputs.first().map(|i| i.shape.as_slice()), e.input_size) {
                (_, Some([w, h])) => format!("{w}x{h}"),
                (Some([1, 3, h, w]), _) | (Some([1, h, w, 3]), _) => format!("{w}x{h}"),
                _ => "?".into(),
            };
            out.push(Candidate {
                manifest: manifest.clone(),
                key: key.clone(),
                name: e.name.clone().unwrap_or_else(|| match architecture {
                    Architecture::NanoDet => "NanoDet-m".into(),
                    _ => key.clone(),
                }),
                precision,
                architecture,
                threshold: e.score_threshold.unwrap_or(DEFAULT_THRESHOLD),
                input,
            });
        }
    }
    if let Some(k) = args.only.iter().find(|k| !out.iter().any(|c| &c.key == *k)) {
        return Err(CliError::Usage(format!(
            "--only: `{k}` is not a person model of the manifests"
        )));
    }
    Ok(out)
}

fn table(
    args: &Args,
    clips: &[Clip],
    cands: &[Candidate],
    rows: &[Row],
    night: &Night,
    timed: usize,
) -> String {
    let mut s = String::new();
    let frames: usize = clips.iter().map(|c| c.frames.len()).sum();
    let gt = rows.first().map_or(0, |r| r.day.ground_truth);
    let crowded = rows.first().map_or(0, |r| r.day.crowded);
    let names: Vec<String> = clips
        .iter()
        .map(|c| format!("{} {}", c.name, c.frames.len()))
        .collect();
    s += &format!(
        "Person detectors on {frames} annotated frames ({}): {gt} persons, {crowded} of them crowded (box IoU > {} with another's).\n",
        names.join(", "),
        eval::CROWDED_IOU
    );
    s += &format!(
        "AP at IoU {}; recall, precision and crowded recall at each model's threshold (thr). Night: luma x {}, noise sd {}; lifted: as `[detector] low_light = \"auto\"` lifts it.\n",
        eval::MATCH_IOU,
        night.level,
        night.noise
    );
    s += &format!(
        "Time: ms per frame (resize + inference + decoding), best of {ROUNDS} round-robin rounds of {timed} frames; x = ratio to NanoDet-m of the same precision.\n\n"
    );
    let mut head = "| model | prec. | input | thr | AP@0.5 | recall | precision | crowded recall |"
        .to_string();
    let mut rule = "|---|---|---|---|---|---|---|---|".to_string();
    if !args.no_night {
        head += " night AP | night recall | night lifted AP | night lifted recall |";
        rule += "---|---|---|---|";
    }
    for t in &args.threads {
        head += &format!(" ms {t} thr | x {t} thr |");
        rule += "---|---|";
    }
    s += &format!("{head}\n{rule}\n");
    for (c, r) in cands.iter().zip(rows) {
        let reference = cands
            .iter()
            .zip(rows)
            .find(|(o, _)| o.architecture == Architecture::NanoDet && o.precision == c.precision);
        s += &format!(
            "| {} | {} | {} | {:.2} | {:.3} | {:.3} | {:.3} | {:.3} ({}/{}) |",
            c.name,
            c.precision,
            c.input,
            c.threshold,
            r.day.ap(),
            r.day.recall(),
            r.day.precision(),
            r.day.crowded_recall(),
            r.day.crowded_found,
            r.day.crowded
        );
        if !args.no_night {
            s += &format!(
                " {:.3} | {:.3} | {:.3} | {:.3} |",
                r.night.ap(),
                r.night.recall(),
                r.lifted.ap(),
                r.lifted.recall()
            );
        }
        for (k, ms) in r.ms.iter().enumerate() {
            let ratio = match (
                ms,
                reference.and_then(|(_, rr)| rr.ms.get(k).copied().flatten()),
            ) {
                (Some(m), Some(base)) if base > 0.0 => format!("{:.2}", m / base),
                _ => "-".into(),
            };
            match ms {
                Some(m) => s += &format!(" {m:.1} | {ratio} |"),
                None => s += " - | - |",
            }
        }
        s += "\n";
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_keeps_ends_and_spacing() {
        let v: Vec<u32> = (1..=10).collect();
        assert_eq!(spread(&v, 3), vec![1, 5, 10]);
        assert_eq!(spread(&v, 1), vec![1]);
        assert_eq!(spread(&v, 20), v);
    }
}
