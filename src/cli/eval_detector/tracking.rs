//! `ronda eval-detector --tracking`: does the tracker keep each person's identity? Each
//! annotated clip is played in order through the gate camera's detector (int8, the tracker's
//! low score as threshold, dark pictures lifted as `ronda run` lifts them) and the tracker with
//! its default settings, at 25, 12.5 and 5 pictures a second of 25 fps footage, by day and as
//! eval-detector's night pictures; `track::eval::IdTally` counts people followed, id switches
//! and swaps (README "Lines, directions and counting").

use super::Clip;
use crate::analyze::detector_options_for_tracking;
use crate::cli::{CliError, CliResult};
use crate::detect::eval::{self, Night};
use crate::detect::{Detector, RuntimeOptions, Variant};
use crate::track::eval::IdTally;
use crate::track::{Tracker, TrackerParams};

/// Every Nth picture of the footage: 25, 12.5 and 5 a second of 25 fps footage.
const STEPS: [usize; 3] = [1, 2, 5];

pub(super) fn run(
    clips: &[Clip],
    ort_lib: Option<std::path::PathBuf>,
    fps: f64,
    night_too: bool,
) -> CliResult {
    let params = TrackerParams::default();
    let mut opts = detector_options_for_tracking(&params);
    opts.runtime = RuntimeOptions {
        library: ort_lib,
        threads: 1,
        ..RuntimeOptions::default()
    };
    opts.variant = Variant::Int8;
    let fail = |e: &dyn std::fmt::Display| CliError::Runtime(e.to_string());
    let mut det = Detector::new(&opts).map_err(|e| fail(&e))?;
    let night = Night::default();
    let lights: &[&str] = if night_too {
        &["day", "night"]
    } else {
        &["day"]
    };
    println!(
        "Identity kept by the tracker (defaults), person model `{}` int8, tracks matched to the \
         annotated people at IoU {}",
        opts.person_model,
        crate::track::eval::MATCH_IOU
    );
    println!("| clip | pictures a second | light | people | followed | id switches | swaps |");
    println!("|---|---|---|---|---|---|---|");
    let mut out = Vec::new();
    for &light in lights {
        let mut total = IdTally::default();
        for step in STEPS {
            for (c, clip) in clips.iter().enumerate() {
                let mut tracker = Tracker::new(params.clone());
                let mut tally = IdTally::default();
                // by frame number, so the stream's time is right even where a frame nobody is
                // annotated in was left out
                let played = clip
                    .frames
                    .iter()
                    .filter(|f| ((f.number - 1) as usize).is_multiple_of(step));
                for frame in played {
                    let (img, number) = (&frame.picture, frame.number);
                    let dark;
                    let seen = if light == "night" {
                        dark = eval::darken(img, &night, ((c as u64) << 32) | number as u64);
                        &dark
                    } else {
                        img
                    };
                    det.persons_into(seen, false, &mut out)
                        .map_err(|e| fail(&e))?;
                    let tracks = tracker.update_at((number - 1) as f64 / fps, &out);
                    tally.add(tracks, &frame.people);
                }
                println!(
                    "| {} | {} | {light} | {} | {} ({:.3}) | {} | {} |",
                    clip.name,
                    fps / step as f64,
                    tally.people,
                    tally.followed,
                    tally.followed_share(),
                    tally.switches,
                    tally.swaps
                );
                total.merge(&tally);
            }
        }
        println!(
            "| all | all | {light} | {} | {} ({:.3}) | {} | {} |",
            total.people,
            total.followed,
            total.followed_share(),
            total.switches,
            total.swaps
        );
    }
    Ok(())
}
