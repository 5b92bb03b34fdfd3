//! Offline analysis of a recorded video: the same detect -> track -> count stages the live
//! pipeline uses, run over every frame of a file as fast as the machine allows.
//!
//! Decoding runs on its own thread and hands frames over a bounded channel of 4 (the decoder
//! waits when inference is slower: for a file nothing may be dropped), so decode overlaps with
//! inference on the other core.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::detect::{DetectError, Detector, DetectorOptions, MaskVerdict, head_region};
use crate::frame::Frame;
use crate::ingest::IngestError;
use crate::ingest::file::VideoFile;
use crate::rules::{CountingParams, Counts, Crossing, Direction, LineCounter, LineSpec};
use crate::track::{Track, Tracker, TrackerParams};

/// Frames either side of a crossing in which a face is looked for (`--mask`).
pub const MASK_WINDOW: u64 = 12;

#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error(transparent)]
    Video(#[from] IngestError),
    #[error(transparent)]
    Detect(#[from] DetectError),
    #[error("{0}")]
    Other(String),
}

/// Everything an analysis needs.
#[derive(Clone, Debug)]
pub struct AnalyzeOptions {
    pub lines: Vec<LineSpec>,
    pub detector: DetectorOptions,
    pub tracker: TrackerParams,
    pub counting: CountingParams,
    /// Add a mask verdict to each crossing (face + mask models on the person's head region).
    pub mask: bool,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        let tracker = TrackerParams::default();
        Self {
            lines: Vec::new(),
            detector: detector_options_for_tracking(&tracker),
            tracker,
            counting: CountingParams::default(),
            mask: false,
        }
    }
}

/// The person detector feeds the tracker down to its low-score stage (ByteTrack keeps partly
/// hidden people with their weak detections); births still need the high score.
pub fn detector_options_for_tracking(tracker: &TrackerParams) -> DetectorOptions {
    DetectorOptions {
        person_threshold: tracker.low_score,
        faces: false,
        ..DetectorOptions::default()
    }
}

/// One counted crossing in the output.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CrossingRecord {
    pub line: String,
    pub direction: Direction,
    pub track_id: u64,
    pub frame: u64,
    pub time_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask: Option<MaskVerdict>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask_score: Option<f32>,
}

/// The result, in the JSON shape of DESIGN.md.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Analysis {
    pub video: String,
    pub frames: u64,
    pub fps: f64,
    pub lines: BTreeMap<String, Counts>,
    pub crossings: Vec<CrossingRecord>,
}

/// Per-stage time spent, for the summary and the bench.
#[derive(Clone, Debug, Default)]
pub struct StageTimes {
    pub detect: Duration,
    pub track_rules: Duration,
    pub mask: Duration,
    pub wall: Duration,
}

/// The per-frame chain after decoding: detect, track, count. Reused by the bench.
pub struct GateAnalysis {
    detector: Detector,
    tracker: Tracker,
    counters: Vec<LineCounter>,
    crossings: Vec<Crossing>,
    mask: bool,
    /// (frame, face score, verdict, verdict score) per track, near a line, for `--mask`.
    faces_seen: HashMap<u64, Vec<(u64, f32, MaskVerdict, f32)>>,
    pub records: Vec<(usize, Crossing)>,
    pub times: StageTimes,
}

impl GateAnalysis {
    pub fn new(opts: &AnalyzeOptions) -> Result<Self, AnalyzeError> {
        let mut d = opts.detector.clone();
        d.faces = opts.mask;
        let detector = Detector::new(&d)?;
        Ok(Self::with_detector(detector, opts))
    }

    pub fn with_detector(detector: Detector, opts: &AnalyzeOptions) -> Self {
        Self {
            detector,
            tracker: Tracker::new(opts.tracker.clone()),
            counters: opts
                .lines
                .iter()
                .map(|l| LineCounter::new(l.clone(), opts.counting.clone()))
                .collect(),
            crossings: Vec::with_capacity(8),
            mask: opts.mask,
            faces_seen: HashMap::new(),
            records: Vec::new(),
            times: StageTimes::default(),
        }
    }

    pub fn detector(&mut self) -> &mut Detector {
        &mut self.detector
    }

    pub fn counters(&self) -> &[LineCounter] {
        &self.counters
    }

    /// Detect, track and count one frame.
    pub fn process(&mut self, frame: &Frame) -> Result<(), AnalyzeError> {
        let t0 = Instant::now();
        let dets = self.detector.persons(&frame.image)?;
        let t1 = Instant::now();
        for d in &dets {
            tracing::trace!(
                frame = frame.index,
                x1 = d.bbox.x1,
                y1 = d.bbox.y1,
                x2 = d.bbox.x2,
                y2 = d.bbox.y2,
                score = d.score,
                "detection"
            );
        }
        let tracks = self.tracker.update(&dets);
        for t in tracks {
            tracing::trace!(
                frame = frame.index,
                id = t.id,
                x = t.bbox.bottom_center().x,
                y = t.bbox.bottom_center().y,
                h = t.bbox.height(),
                hits = t.hits,
                misses = t.misses,
                score = t.score,
                "track"
            );
        }
        for (li, c) in self.counters.iter_mut().enumerate() {
            self.crossings.clear();
            c.update(frame.index, tracks, &mut self.crossings);
            self.records.extend(self.crossings.iter().map(|x| (li, *x)));
        }
        let t2 = Instant::now();
        self.times.detect += t1 - t0;
        self.times.track_rules += t2 - t1;
        if self.mask {
            // Only tracks near a line are looked at: faces cost far more than persons.
            let near: Vec<Track> = tracks
                .iter()
                .filter(|t| t.confirmed && t.misses == 0 && near_a_line(&self.counters, t))
                .copied()
                .collect();
            for t in near {
                let region = head_region(&t.bbox);
                let faces = self.detector.faces_in(&frame.image, region)?;
                if let Some(best) = faces
                    .iter()
                    .filter(|f| f.mask.is_some())
                    .max_by(|a, b| a.score.total_cmp(&b.score))
                {
                    let (v, s) = best.mask.expect("filtered");
                    self.faces_seen
                        .entry(t.id)
                        .or_default()
                        .push((frame.index, best.score, v, s));
                }
            }
            self.times.mask += t2.elapsed();
        }
        Ok(())
    }

    /// The mask verdict for a crossing: the most confident face of that track within the window.
    fn mask_for(&self, c: &Crossing) -> Option<(MaskVerdict, f32)> {
        let seen = self.faces_seen.get(&c.track_id)?;
        seen.iter()
            .filter(|(f, ..)| f.abs_diff(c.frame) <= MASK_WINDOW)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|&(_, _, v, s)| (v, s))
    }

    pub fn finish(self, video: &Path, frames: u64, fps: f64) -> Analysis {
        let time = |f: u64| if fps > 0.0 { f as f64 / fps } else { 0.0 };
        let mut crossings: Vec<CrossingRecord> = self
            .records
            .iter()
            .map(|(li, c)| {
                let m = if self.mask { self.mask_for(c) } else { None };
                CrossingRecord {
                    line: self.counters[*li].spec().name.clone(),
                    direction: c.direction,
                    track_id: c.track_id,
                    frame: c.frame,
                    time_s: (time(c.frame) * 1000.0).round() / 1000.0,
                    mask: m.map(|m| m.0),
                    mask_score: m.map(|m| (m.1 * 1000.0).round() / 1000.0),
                }
            })
            .collect();
        crossings.sort_by_key(|c| (c.frame, c.track_id));
        Analysis {
            video: video.display().to_string(),
            frames,
            fps,
            lines: self
                .counters
                .iter()
                .map(|c| (c.spec().name.clone(), c.counts()))
                .collect(),
            crossings,
        }
    }
}

/// Within two box heights of any line (where a crossing can happen within the mask window).
fn near_a_line(counters: &[LineCounter], t: &Track) -> bool {
    counters.iter().any(|c| {
        let p = c.spec().anchor.point(&t.bbox);
        c.spec().segment.signed_distance(p).abs() < 2.0 * t.bbox.height().max(1.0)
    })
}

/// Analyse a whole file. `progress(frames_done, frames_expected)` is called every frame.
pub fn analyze(
    video: &Path,
    opts: &AnalyzeOptions,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<(Analysis, StageTimes), AnalyzeError> {
    let start = Instant::now();
    let file = VideoFile::open(video)?;
    let info = file.info().clone();
    let expected = info
        .duration_s
        .filter(|_| info.fps > 0.0)
        .map(|d| (d * info.fps).round() as u64);
    let mut chain = GateAnalysis::new(opts)?;

    // Decode thread -> bounded channel (4 frames; the decoder blocks when full).
    let (tx, rx) = mpsc::sync_channel::<Result<Frame, IngestError>>(4);
    let decoder = std::thread::Builder::new()
        .name("analyze-decode".into())
        .spawn(move || {
            for item in file {
                let stop = item.is_err();
                if tx.send(item).is_err() || stop {
                    break;
                }
            }
        })
        .map_err(|e| AnalyzeError::Other(format!("cannot start the decode thread: {e}")))?;

    let mut frames = 0u64;
    let mut failure = None;
    for item in rx.iter() {
        match item
            .map_err(AnalyzeError::from)
            .and_then(|f| chain.process(&f))
        {
            Ok(()) => {
                frames += 1;
                progress(frames, expected);
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    drop(rx);
    let _ = decoder.join();
    if let Some(e) = failure {
        return Err(e);
    }
    let mut times = chain.times.clone();
    times.wall = start.elapsed();
    Ok((chain.finish(video, frames, info.fps), times))
}

/// Decode up to `limit` frames of a file into memory (for the bench).
pub fn decode_frames(video: &Path, limit: usize) -> Result<(Vec<Frame>, f64), AnalyzeError> {
    let mut file = VideoFile::open(video)?;
    let fps = file.info().fps;
    let mut out = Vec::new();
    while out.len() < limit {
        match file.next_frame()? {
            Some(f) => out.push(f),
            None => break,
        }
    }
    Ok((out, fps))
}

/// One row of the analysis bench.
#[derive(Clone, Debug, Serialize)]
pub struct BenchRow {
    pub model: String,
    pub threads: usize,
    pub frames: usize,
    pub detector_fps: f64,
    pub analysis_fps: f64,
    pub ratio: f64,
    pub track_rules_us_per_frame: f64,
}

/// Detector-only vs whole analysis over the same decoded frames, for each model and thread count.
pub fn bench(
    frames: &[Frame],
    opts: &AnalyzeOptions,
    variants: &[crate::detect::Variant],
    threads: &[usize],
) -> Result<Vec<BenchRow>, AnalyzeError> {
    let mut rows = Vec::new();
    for &v in variants {
        for &n in threads {
            let mut o = opts.clone();
            o.detector.variant = v;
            o.detector.runtime.threads = n;
            o.mask = false;
            let mut detector = Detector::new(&{
                let mut d = o.detector.clone();
                d.faces = false;
                d
            })?;
            // warm-up: first runs allocate the session's buffers
            for f in frames.iter().take(3) {
                detector.persons(&f.image)?;
            }
            // Two rounds, each detector-only then whole analysis, best of each: on a shared,
            // noisy machine the minimum is the figure least disturbed by other load.
            let (mut det_s, mut all_s) = (f64::MAX, f64::MAX);
            let mut chain = GateAnalysis::with_detector(detector, &o);
            let mut track_rules = Duration::ZERO;
            for _round in 0..2 {
                let t = Instant::now();
                for f in frames {
                    std::hint::black_box(chain.detector().persons(&f.image)?);
                }
                det_s = det_s.min(t.elapsed().as_secs_f64());
                chain = GateAnalysis::with_detector(chain.detector, &o);
                let t = Instant::now();
                for f in frames {
                    chain.process(f)?;
                }
                let whole = t.elapsed().as_secs_f64();
                if whole < all_s {
                    all_s = whole;
                    track_rules = chain.times.track_rules;
                }
            }
            let n_frames = frames.len().max(1) as f64;
            rows.push(BenchRow {
                model: format!("{v:?}").to_lowercase(),
                threads: n,
                frames: frames.len(),
                detector_fps: n_frames / det_s,
                analysis_fps: n_frames / all_s,
                ratio: det_s / all_s,
                track_rules_us_per_frame: track_rules.as_secs_f64() * 1e6 / n_frames,
            });
        }
    }
    Ok(rows)
}

/// A bare file name that does not exist here is looked up among setup's sample media.
pub fn resolve_video(arg: &Path) -> PathBuf {
    if arg.exists() || arg.components().count() > 1 {
        return arg.to_path_buf();
    }
    let sample = crate::paths::samples_dir().join(arg);
    if sample.exists() {
        sample
    } else {
        arg.to_path_buf()
    }
}
