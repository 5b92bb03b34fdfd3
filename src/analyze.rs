//! Offline analysis of a recorded video: the live pipeline's per-camera chain
//! (`rules::CameraChain`: tracker, lines, zones, mask watch, alert rules) run over a file, fed
//! with the video's own timestamps, so that what `analyze` says of a recording is what
//! `ronda run` would have said of the same pictures. `--fps N` keeps the pictures a live camera
//! analysed at N fps would keep (the camera path's rate gate, on the same timestamps), so a live
//! run can be reproduced offline exactly.
//!
//! Decoding runs on its own thread and hands frames over a bounded channel of 4 (the decoder
//! waits when inference is slower: for a file nothing may be dropped), so decode overlaps with
//! inference on the other core.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::detect::{DetectError, Detector, DetectorInfo, DetectorOptions};
use crate::events::MaskVerdict;
use crate::frame::Frame;
use crate::ingest::IngestError;
use crate::ingest::file::VideoFile;
use crate::ingest::rate::RateGate;
use crate::rules::{
    CameraChain, Cooldown, CountingParams, Counts, Direction, Finding, LineCounter, LineRules,
    LineSpec, MaskParams, MaskWatch, Moment, ZoneSpec, ZoneWatch,
};
use crate::track::{Tracker, TrackerParams};

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
    /// The alert rules of each line (same order as `lines`; missing ones: count only).
    pub line_rules: Vec<LineRules>,
    pub zones: Vec<ZoneSpec>,
    pub detector: DetectorOptions,
    pub tracker: TrackerParams,
    pub counting: CountingParams,
    /// How long the same alert is held back (as `[alerts] cooldown_seconds`).
    pub cooldown: Duration,
    /// The site's time zone and the wall-clock time of the first frame: curfew and zone
    /// windows are judged on `start` plus the video's own time.
    pub timezone: chrono_tz::Tz,
    pub start: chrono::DateTime<chrono::Utc>,
    /// Add a mask verdict to each crossing (face + mask models on the person's head region,
    /// as the live mask watch does on a gate).
    pub mask: bool,
    /// Analyse at most this many pictures a second, kept by the camera path's rate gate.
    pub fps: Option<f64>,
    /// Keep a crop of each person at the moment their crossing counted (for `--report`).
    pub crops: bool,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        let tracker = TrackerParams::default();
        Self {
            lines: Vec::new(),
            line_rules: Vec::new(),
            zones: Vec::new(),
            detector: detector_options_for_tracking(&tracker),
            tracker,
            counting: CountingParams::default(),
            cooldown: Duration::from_secs(60),
            timezone: chrono_tz::Asia::Jakarta,
            start: chrono::Utc::now(),
            mask: false,
            fps: None,
            crops: false,
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
    /// Where the person was when the crossing counted: `[x1, y1, x2, y2]` in video pixels (whole
    /// pixels), so a count can be checked against the picture or another copy of the footage.
    #[serde(rename = "box")]
    pub bbox: [i32; 4],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask: Option<MaskVerdict>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask_score: Option<f32>,
}

/// One alert the camera's rules raised (only with `--config --camera`, whose rules they are).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertRecord {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub track_id: Option<u64>,
    pub frame: u64,
    pub time_s: f64,
}

/// The result, in the JSON shape of DESIGN.md (plus `analysed` frames and `alerts`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Analysis {
    pub video: String,
    /// Frames decoded.
    pub frames: u64,
    pub fps: f64,
    /// Frames the chain saw (fewer than `frames` with `--fps` below the video's rate).
    pub analysed: u64,
    /// Frames the container's declared duration promises, when it declares one.
    #[serde(skip)]
    pub expected_frames: Option<u64>,
    pub lines: BTreeMap<String, Counts>,
    pub crossings: Vec<CrossingRecord>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<AlertRecord>,
    /// The person model, its precision and, for int8, how this CPU computes it.
    pub detector: DetectorInfo,
}

/// A crop of the person whose crossing counted, from the frame where it counted.
#[derive(Clone, Debug)]
pub struct CrossingCrop {
    /// Index into [`Analysis::crossings`] once sorted (set by [`GateAnalysis::finish`]).
    pub crossing: usize,
    pub image: image::RgbImage,
}

/// Per-stage time spent, for the summary and the bench.
#[derive(Clone, Debug, Default)]
pub struct StageTimes {
    pub detect: Duration,
    pub track_rules: Duration,
    pub mask: Duration,
    pub wall: Duration,
}

/// The per-frame work after decoding: detect, then the camera chain. Reused by the bench.
pub struct GateAnalysis {
    detector: Detector,
    chain: CameraChain,
    opts: AnalyzeOptions,
    /// Stream time of the first frame (ns), so that times count from the start of the video.
    first_pts: Option<u64>,
    /// (crossing record, crop) in the order they counted.
    records: Vec<(CrossingRecord, Option<image::RgbImage>)>,
    alerts: Vec<AlertRecord>,
    pub analysed: u64,
    /// Stream time of the last frame analysed.
    last_t: f64,
    pub times: StageTimes,
}

/// The chain `ronda analyze` runs: the options' lines, rules and zones on a fresh tracker.
fn chain_for(opts: &AnalyzeOptions) -> CameraChain {
    let mut chain = CameraChain::new(
        "analyze",
        Tracker::new(opts.tracker.clone()),
        Cooldown::new(opts.cooldown),
    );
    for (i, l) in opts.lines.iter().enumerate() {
        let rules = opts.line_rules.get(i).copied().unwrap_or_default();
        chain.add_line(
            LineCounter::new(l.clone(), opts.counting.clone()),
            rules,
            opts.start,
        );
    }
    chain.zones = opts.zones.iter().cloned().map(ZoneWatch::new).collect();
    // --mask watches every line, as a gate's mask watch does its mask-checking lines
    if opts.mask && !opts.lines.is_empty() {
        chain.masks = Some(MaskWatch::new(opts.lines.clone(), MaskParams::default()));
    }
    chain
}

impl GateAnalysis {
    pub fn new(opts: &AnalyzeOptions) -> Result<Self, AnalyzeError> {
        let mut d = opts.detector.clone();
        d.faces = opts.mask;
        let detector = Detector::new(&d)?;
        Ok(Self::with_detector(detector, opts))
    }

    fn with_detector(detector: Detector, opts: &AnalyzeOptions) -> Self {
        Self {
            detector,
            chain: chain_for(opts),
            opts: opts.clone(),
            first_pts: None,
            records: Vec::new(),
            alerts: Vec::new(),
            analysed: 0,
            last_t: 0.0,
            times: StageTimes::default(),
        }
    }

    pub fn detector(&mut self) -> &mut Detector {
        &mut self.detector
    }

    /// Seconds since the first frame, on the video's own clock (its timestamps; the frame
    /// number over the declared rate where a frame has none).
    fn time_of(&mut self, frame: &Frame, fps: f64) -> f64 {
        match frame.pts_ns {
            Some(p) => {
                let first = *self.first_pts.get_or_insert(p);
                p.saturating_sub(first) as f64 / 1e9
            }
            None if fps > 0.0 => frame.index as f64 / fps,
            None => frame.index as f64 * 0.04,
        }
    }

    /// Detect, track and judge one frame of a video declared at `fps`.
    pub fn process(&mut self, frame: &Frame, fps: f64) -> Result<(), AnalyzeError> {
        let t = self.time_of(frame, fps);
        self.last_t = t;
        let t0 = Instant::now();
        let dets = self.detector.persons(&frame.image)?;
        let t1 = Instant::now();
        let utc = self.opts.start + chrono::Duration::milliseconds((t * 1000.0) as i64);
        let at = Moment {
            frame: frame.index,
            t,
            utc,
            local: utc.with_timezone(&self.opts.timezone).time(),
        };
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
        for tr in self.chain.track(&at, &dets) {
            tracing::trace!(
                frame = frame.index,
                t,
                id = tr.id,
                x = tr.bbox.bottom_center().x,
                y = tr.bbox.bottom_center().y,
                h = tr.bbox.height(),
                hits = tr.hits,
                misses = tr.misses,
                score = tr.score,
                "track"
            );
        }
        let t2 = Instant::now();
        let looks = self.chain.faces_wanted(&at).to_vec();
        for (id, bbox) in looks {
            let faces = self.detector.faces_of_person(&frame.image, &bbox)?;
            self.chain.record_faces(id, &at, &faces);
        }
        let t3 = Instant::now();
        // copied out (usually empty: no allocation) to name the lines while reading them
        for f in &self.chain.judge(&at).to_vec() {
            self.record(f, &at, Some(&frame.image));
        }
        self.analysed += 1;
        self.times.detect += t1 - t0;
        self.times.mask += t3 - t2;
        self.times.track_rules += (t2 - t1) + t3.elapsed();
        Ok(())
    }

    /// Keep a finding of the chain: a crossing (with a crop of the person from `picture` when
    /// the report wants one) or an alert.
    fn record(&mut self, f: &Finding, at: &Moment, picture: Option<&image::RgbImage>) {
        let time_s = |t: f64| (t * 1000.0).round() / 1000.0;
        match f {
            Finding::Crossing {
                line,
                crossing,
                look,
                ..
            } => {
                let crop = picture
                    .filter(|_| self.opts.crops)
                    .map(|p| crate::frame::person_crop(p, &crossing.bbox));
                self.records.push((
                    CrossingRecord {
                        line: self.chain.lines[*line].spec().name.clone(),
                        direction: crossing.direction,
                        track_id: crossing.track_id,
                        frame: crossing.frame,
                        time_s: time_s(crossing.time),
                        bbox: {
                            let b = crossing.bbox;
                            [b.x1, b.y1, b.x2, b.y2].map(|v| v.round() as i32)
                        },
                        mask: look.map(|l| l.verdict),
                        mask_score: look.map(|l| (l.verdict_score * 1000.0).round() / 1000.0),
                    },
                    crop,
                ));
            }
            Finding::CurfewEntry { line, crossing, .. }
            | Finding::NoMask { line, crossing, .. } => self.alerts.push(AlertRecord {
                kind: f.kind().as_str().to_string(),
                line: Some(self.chain.lines[*line].spec().name.clone()),
                zone: None,
                track_id: Some(crossing.track_id),
                frame: at.frame,
                time_s: time_s(at.t),
            }),
            Finding::Zone(z) => self.alerts.push(AlertRecord {
                kind: f.kind().as_str().to_string(),
                line: None,
                zone: Some(z.zone.clone()),
                track_id: z.track_id,
                frame: at.frame,
                time_s: time_s(at.t),
            }),
        }
    }

    /// The end of the video: people still followed are settled by the chain (`finish`).
    fn end_of_stream(&mut self, frames: u64) {
        let t = self.last_t;
        let utc = self.opts.start + chrono::Duration::milliseconds((t * 1000.0) as i64);
        let at = Moment {
            frame: frames,
            t,
            utc,
            local: utc.with_timezone(&self.opts.timezone).time(),
        };
        for f in &self.chain.finish(&at).to_vec() {
            self.record(f, &at, None);
        }
    }

    pub fn finish(mut self, video: &Path, frames: u64, fps: f64) -> (Analysis, Vec<CrossingCrop>) {
        self.end_of_stream(frames);
        let detector = self.detector.info();
        let mut records = self.records;
        records.sort_by_key(|(c, _)| (c.frame, c.track_id));
        let mut crops = Vec::new();
        let mut crossings = Vec::with_capacity(records.len());
        for (i, (c, crop)) in records.into_iter().enumerate() {
            crossings.push(c);
            if let Some(image) = crop {
                crops.push(CrossingCrop { crossing: i, image });
            }
        }
        let analysis = Analysis {
            video: video.display().to_string(),
            frames,
            fps,
            analysed: self.analysed,
            expected_frames: None,
            lines: self
                .chain
                .lines
                .iter()
                .map(|c| (c.spec().name.clone(), c.counts()))
                .collect(),
            crossings,
            alerts: self.alerts,
            detector,
        };
        (analysis, crops)
    }
}

/// Analyse a whole file. `progress(frames_done, frames_expected)` is called every frame.
pub fn analyze(
    video: &Path,
    opts: &AnalyzeOptions,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<(Analysis, Vec<CrossingCrop>, StageTimes), AnalyzeError> {
    let start = Instant::now();
    let file = VideoFile::open(video)?;
    let info = file.info().clone();
    let expected = info
        .duration_s
        .filter(|_| info.fps > 0.0)
        .map(|d| (d * info.fps).round() as u64);
    let mut chain = GateAnalysis::new(opts)?;
    let mut rate = opts.fps.map(RateGate::new);

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
        let f = match item {
            Ok(f) => f,
            Err(e) => {
                failure = Some(e.into());
                break;
            }
        };
        frames += 1;
        let keep = match &mut rate {
            // the camera path gates on the decoder's timestamps; a frame without one is
            // placed by its number
            Some(g) => g.keep(
                f.pts_ns
                    .unwrap_or_else(|| (f.index as f64 * 1e9 / info.fps.max(1.0)) as u64),
            ),
            None => true,
        };
        if keep && let Err(e) = chain.process(&f, info.fps) {
            failure = Some(e);
            break;
        }
        progress(frames, expected);
    }
    drop(rx);
    let _ = decoder.join();
    if let Some(e) = failure {
        return Err(e);
    }
    let mut times = chain.times.clone();
    times.wall = start.elapsed();
    let (mut analysis, crops) = chain.finish(video, frames, info.fps);
    analysis.expected_frames = expected;
    Ok((analysis, crops, times))
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
                    chain.process(f, 10.0)?;
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
