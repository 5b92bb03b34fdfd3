//! `ronda eval-detector --regions`: does searching regions around motion and tracked people
//! (`[detector] area_regions`) find the people that searching the whole picture finds? Each
//! annotated clip is played in order at a live area camera's rate (every `--step`th picture),
//! through the same motion gate, tracker and region search as `ronda run`, and person recall at
//! the operating threshold is counted against the ground truth beside the whole-picture search
//! of the same pictures with the same model.

use std::time::{Duration, Instant};

use super::{Clip, DEFAULT_THRESHOLD};
use crate::cli::{CliError, CliResult};
use crate::detect::eval::Tally;
use crate::detect::region::RegionSearch;
use crate::detect::{Detector, DetectorOptions, RuntimeOptions, Variant};
use crate::motion::{MotionGate, MotionParams};
use crate::track::{Tracker, TrackerParams};

/// One model's figures: whole-picture search, then region search.
#[derive(Default)]
struct Figures {
    whole: Tally,
    regions: Tally,
    whole_s: f64,
    region_s: f64,
    /// In the region search: whole-picture looks, region looks and regions searched.
    full: u64,
    region_looks: u64,
    searched: u64,
}

/// Compare the searches for each model key of `models` (area cameras' model), `step` pictures
/// apart at `fps` frames a second of footage.
pub(super) fn run(
    clips: &[Clip],
    models: &[String],
    ort_lib: Option<std::path::PathBuf>,
    step: usize,
    fps: f64,
) -> CliResult {
    println!(
        "Region search against whole-picture search, every {step}th picture of {fps} fps footage \
         (a live area camera at {:.1} fps), threshold {DEFAULT_THRESHOLD}, 1 thread",
        fps / step as f64
    );
    println!(
        "| area model | whole: recall | whole ms | regions: recall | ms a search | whole looks / region looks | regions a look |"
    );
    println!("|---|---|---|---|---|---|---|");
    for m in models {
        let opts = DetectorOptions {
            runtime: RuntimeOptions {
                library: ort_lib.clone(),
                threads: 1,
                ..RuntimeOptions::default()
            },
            area_person_model: Some(m.clone()),
            area_regions: true,
            // as `ronda run` by default (the small model exists in int8 only)
            variant: Variant::Int8,
            person_threshold: DEFAULT_THRESHOLD,
            faces: false,
            ..DetectorOptions::default()
        };
        let fail = |e: &dyn std::fmt::Display| CliError::Runtime(e.to_string());
        let mut det = Detector::new(&opts).map_err(|e| fail(&e))?;
        let mut f = Figures::default();
        let mut out = Vec::new();
        for clip in clips {
            let mut gate = MotionGate::new(MotionParams::default());
            let mut tracker = Tracker::new(TrackerParams::default());
            let mut search = RegionSearch::default();
            let mut people: Vec<crate::geometry::BBox> = Vec::new();
            let start = Instant::now();
            for (k, frame) in clip.frames.iter().enumerate().step_by(step.max(1)) {
                let (img, gt) = (&frame.picture, &frame.boxes());
                let now = start + Duration::from_secs_f64(k as f64 / fps);
                let t = Instant::now();
                det.persons_into(img, true, &mut out)
                    .map_err(|e| fail(&e))?;
                f.whole_s += t.elapsed().as_secs_f64();
                f.whole.add_frame(&out, gt, DEFAULT_THRESHOLD);

                gate.pass(img, now);
                gate.moved_boxes(&mut search.motion);
                let t = Instant::now();
                let how = search
                    .search(&mut det, img, people.iter().copied(), now, &mut out)
                    .map_err(|e| fail(&e))?;
                f.region_s += t.elapsed().as_secs_f64();
                match how {
                    None => f.full += 1,
                    Some(n) => {
                        f.region_looks += 1;
                        f.searched += n as u64;
                    }
                }
                f.regions.add_frame(&out, gt, DEFAULT_THRESHOLD);
                people.clear();
                people.extend(
                    tracker
                        .update_at(k as f64 / fps, &out)
                        .iter()
                        .map(|t| t.bbox),
                );
            }
        }
        let looks = (f.full + f.region_looks).max(1) as f64;
        println!(
            "| {m} | {:.3} ({}/{}) | {:.1} | {:.3} ({}/{}) | {:.1} | {} / {} | {:.2} |",
            f.whole.recall(),
            f.whole.found,
            f.whole.ground_truth,
            f.whole_s * 1000.0 / looks,
            f.regions.recall(),
            f.regions.found,
            f.regions.ground_truth,
            f.region_s * 1000.0 / looks,
            f.full,
            f.region_looks,
            f.searched as f64 / f.region_looks.max(1) as f64,
        );
    }
    Ok(())
}
