//! One camera's state in the worker: its chain (tracker, lines, zones, mask watch, alert
//! rules), its stream clock and its figures.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::{self, Settings};
use crate::detect::dark::DarkWatch;
use crate::frame::Frame;
use crate::ingest::camera::FrameSlot;
use crate::motion::MotionGate;
use crate::rules::{
    CameraChain, Cooldown, Counts, LineCounter, MaskParams, MaskWatch, Recent, ZoneWatch,
};
use crate::track::Tracker;

/// Figures of one camera, kept for logs, `ronda bench live` (and later /metrics).
#[derive(Clone, Debug, Default)]
pub struct CameraFigures {
    pub analysed: u64,
    pub skipped_still: u64,
    pub inference: Duration,
    /// Frames whose person detection failed (skipped).
    pub inference_errors: u64,
    /// Frame arrival (appsink) to its event being handed to the writer, ms; the last
    /// [`Samples::CAP`] events.
    pub event_latency_ms: Samples,
    /// A still camera that starts moving: first moving frame's arrival to the first person
    /// found, ms (how fast a quiet camera reacts to a passer-by).
    pub wake_latency_ms: Samples,
    /// The same from the last picture judged still before the movement, ms: the passer-by
    /// came into view at some time between the two, so this bounds how late they were noticed.
    /// Judged still: by the motion gate, or, for a picture not decoded (key frames only), by
    /// its size (`ingest::stir`).
    pub notice_latency_ms: Samples,
    /// Area cameras searching regions (`[detector] area_regions`): whole-picture searches and
    /// their time, searches of regions only, the regions searched in them and their time.
    pub whole_looks: u64,
    pub whole_time: Duration,
    pub region_looks: u64,
    pub regions: u64,
    pub region_time: Duration,
    /// Head regions searched for a face (gate cameras that check masks), and the time spent.
    pub face_looks: u64,
    pub face_time: Duration,
    pub face_errors: u64,
    /// Alerts held back by the cooldown (the same incident again within the window).
    pub alerts_suppressed: u64,
    /// Frames per second delivered by the camera and analysed, over the last few seconds.
    pub delivered_fps: f64,
    pub analysed_fps: f64,
    /// Mean luma of the analysed pictures, smoothed over about ten of them (`detect::light`).
    pub brightness: Option<f64>,
    /// The last analysed picture was lifted as dark.
    pub low_light: bool,
    /// Light changes the motion gate saw (`motion::MotionGate::light_changes`).
    pub light_changes: u64,
    /// Motion in low light for hours and nobody found (`detect::dark`).
    pub too_dark: bool,
    /// A gate camera whose pictures the detector does not keep up with (`app::keep_up`).
    pub behind: bool,
    /// When the motion gate last judged the view noisy (rain, snow, a swarm in front of the
    /// lamp, a shaking camera: `motion::MotionGate::noisy`).
    pub last_noisy: Option<Instant>,
    /// Counters at the last rate reading: (when, delivered, analysed).
    pub(super) rate_mark: Option<(Instant, u64, u64)>,
}

impl CameraFigures {
    /// A search of a camera that searches regions: the whole picture (`None`) or that many
    /// regions, taking `took`.
    pub(super) fn searched(&mut self, regions: Option<usize>, took: Duration) {
        match regions {
            None => {
                self.whole_looks += 1;
                self.whole_time += took;
            }
            Some(n) => {
                self.region_looks += 1;
                self.regions += n as u64;
                self.region_time += took;
            }
        }
    }
}

/// The most recent values of a figure, bounded.
#[derive(Clone, Debug, Default)]
pub struct Samples {
    pub(super) values: Vec<f32>,
    pub(super) next: usize,
}

impl Samples {
    pub const CAP: usize = 2048;

    pub fn push(&mut self, v: f32) {
        if self.values.len() < Self::CAP {
            self.values.push(v);
        } else {
            self.values[self.next] = v;
        }
        self.next = (self.next + 1) % Self::CAP;
    }

    pub fn values(&self) -> &[f32] {
        &self.values
    }
}

pub(super) struct CamState {
    pub(super) id: String,
    /// The camera as configured (lines and zones as last applied).
    pub(super) conf: config::Camera,
    pub(super) gate: bool,
    pub(super) motion_gate: bool,
    pub(super) slot: Arc<FrameSlot>,
    /// The tracks of the last minutes and pictures of the people in them ("preview this line").
    pub(super) recent: Arc<Mutex<Recent>>,
    /// The camera's tracker and rules.
    pub(super) rules: CameraChain,
    pub(super) clock: StreamClock,
    pub(super) motion: MotionGate,
    /// Whether the camera is too dark to detect anyone (motion-gated cameras only).
    pub(super) dark: DarkWatch,
    /// Whether the detector keeps up with the camera (gate cameras only).
    pub(super) keep_up: super::keep_up::KeepUp,
    pub(super) figures: CameraFigures,
    /// Since when the camera has been still (motion-gated cameras only).
    pub(super) still_since: Option<Instant>,
    /// Pictures in a row in which nothing stirred (`MotionGate::stirred`).
    pub(super) still_run: u32,
    /// The last picture the motion gate judged still (motion-gated cameras only).
    pub(super) last_still: Option<Instant>,
    /// Arrival of the first moving frame after a still spell and of the last still picture
    /// before it, until a person is found.
    pub(super) woke_at: Option<(Instant, Instant)>,
    /// The camera woke and its first picture since has not been looked at: it goes before the
    /// other area cameras (once).
    pub(super) first_look: bool,
    /// A picture the motion gate passed, waiting for the detector's turn (the newest wins), with
    /// its arrival and whether it (or one it replaced) moved (motion-gated cameras only).
    pub(super) pending: Option<(Frame, Instant, bool)>,
    pub(super) person_score: f32,
    /// Where the camera is searched, when it searches regions (area cameras with a motion gate
    /// and `[detector] area_regions`); `None`: the whole picture every time.
    pub(super) look: Option<crate::detect::region::RegionSearch>,
}

/// The chain of camera `c` (its tracker, lines, zones, mask watch and alert rules), each line
/// starting from its stored counts (`starts`, same order as the lines); the mask watch only if
/// `faces` are loaded and a line checks masks.
pub(super) fn camera_chain(
    c: &config::Camera,
    settings: &Settings,
    faces: bool,
    starts: Vec<(Counts, chrono::DateTime<chrono::Utc>)>,
) -> CameraChain {
    let mut chain = CameraChain::new(
        &c.id,
        Tracker::new(settings.tracker.clone()),
        Cooldown::new(settings.alerts.cooldown),
    );
    let mut mask_lines = Vec::new();
    for (l, (counts, since)) in c.lines.iter().zip(starts) {
        let rules = c.line_rules(l);
        if rules.no_mask {
            mask_lines.push(l.spec());
        }
        let counter = LineCounter::with_counts(l.spec(), settings.counting.clone(), counts);
        chain.add_line(counter, rules, since);
    }
    chain.zones = c.zones.iter().map(|z| ZoneWatch::new(z.spec())).collect();
    chain.masks = (faces && !mask_lines.is_empty())
        .then(|| MaskWatch::new(mask_lines, MaskParams::default()));
    chain
}

/// The chain of camera `c` with every line from zero (tests).
#[cfg(test)]
pub(super) fn fresh_chain(c: &config::Camera, settings: &Settings, faces: bool) -> CameraChain {
    let now = chrono::Utc::now();
    camera_chain(
        c,
        settings,
        faces,
        vec![(Counts::default(), now); c.lines.len()],
    )
}

/// Maps a camera's frame timestamps to the chain's clock: seconds that only go forward. A
/// camera's timestamps restart when its pipeline is rebuilt (reconnect) and can be missing; then
/// the clock continues from the frame's arrival instead, so no rule sees time jump back.
#[derive(Debug, Default)]
pub(super) struct StreamClock {
    /// The last frame's timestamp (ns) and the chain time given to it.
    pub(super) last: Option<(u64, f64)>,
}

impl StreamClock {
    /// Chain seconds for a frame with timestamp `pts_ns`, which arrived `arrived_s` seconds
    /// after the pipeline started.
    pub(super) fn time(&mut self, pts_ns: Option<u64>, arrived_s: f64) -> f64 {
        let t = match (self.last, pts_ns) {
            (Some((prev_pts, prev_t)), Some(pts)) if pts > prev_pts => {
                let step = (pts - prev_pts) as f64 / 1e9;
                // a jump of more than a minute is a new stream, not a gap in this one
                if step < 60.0 {
                    prev_t + step
                } else {
                    arrived_s.max(prev_t)
                }
            }
            (Some((_, prev_t)), _) => arrived_s.max(prev_t),
            (None, _) => arrived_s,
        };
        self.last = pts_ns.map(|p| (p, t));
        t
    }
}
