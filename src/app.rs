//! The live chain: camera supervisors -> one inference worker (motion gate, person detector,
//! per-camera tracker and lines) -> events. Built and shut down here, in order.
//!
//! Channels and their policy when full:
//! - camera -> worker: a one-frame slot per camera, the newest frame replaces an unconsumed one
//!   (counted as dropped): a live picture is worth more than an old one;
//! - worker -> event writer and health -> event writer: bounded (1024), the sender waits:
//!   events are never dropped;
//! - camera health -> app: bounded (64), the camera thread waits (a few changes a minute at most).
//!
//! Scheduling: the worker serves gate cameras first whenever they have a frame, then the other
//! cameras round-robin, so under overload every camera slows down evenly and the gate keeps its
//! rate.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::{CameraRole, Settings};
use crate::detect::Detector;
use crate::events::{Event, EventKind, Severity};
use crate::ingest::camera::{Camera, CameraSpec, Doorbell, FrameSlot, Health, HealthChange};
use crate::motion::{MotionGate, MotionParams};
use crate::rules::{Crossing, LineCounter};
use crate::track::Tracker;

/// Figures of one camera, kept for logs, `ronda bench live` (and later /metrics).
#[derive(Clone, Debug, Default)]
pub struct CameraFigures {
    pub analysed: u64,
    pub skipped_still: u64,
    pub inference: Duration,
    /// Frame arrival (appsink) to its event being handed to the writer, ms; the last
    /// [`Samples::CAP`] events.
    pub event_latency_ms: Samples,
    /// A still camera that starts moving: first moving frame's arrival to the first person
    /// found, ms (how fast a quiet camera reacts to a passer-by).
    pub wake_latency_ms: Samples,
}

/// The most recent values of a figure, bounded.
#[derive(Clone, Debug, Default)]
pub struct Samples {
    values: Vec<f32>,
    next: usize,
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

/// How long a camera must have been still before movement counts as a wake-up.
const STILL_BEFORE_WAKE: Duration = Duration::from_secs(2);
/// A wake-up with no person found within this long was not a passer-by (light, leaves).
const WAKE_GIVE_UP: Duration = Duration::from_secs(5);

struct CamState {
    id: String,
    gate: bool,
    motion_gate: bool,
    slot: Arc<FrameSlot>,
    tracker: Tracker,
    lines: Vec<LineCounter>,
    motion: MotionGate,
    figures: CameraFigures,
    /// Since when the camera has been still (motion-gated cameras only).
    still_since: Option<Instant>,
    /// Arrival of the first moving frame after a still spell, until a person is found.
    woke_at: Option<Instant>,
    person_score: f32,
}

/// A running pipeline.
pub struct Live {
    stop: Arc<AtomicBool>,
    cameras: Vec<Camera>,
    worker: Option<std::thread::JoinHandle<()>>,
    writer: Option<std::thread::JoinHandle<()>>,
    health: Option<std::thread::JoinHandle<()>>,
    pub figures: Arc<Mutex<HashMap<String, CameraFigures>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Detect(#[from] crate::detect::DetectError),
    #[error("{0}")]
    Start(String),
}

impl Live {
    /// Start everything; events are written as JSON lines to `out`.
    pub fn start(settings: &Settings, out: Box<dyn Write + Send>) -> Result<Live, AppError> {
        crate::ingest::init_gstreamer().map_err(|e| AppError::Start(e.to_string()))?;
        let mut dopts = settings.detector_options();
        dopts.faces = false;
        let detector = Detector::new(&dopts)?;
        let stop = Arc::new(AtomicBool::new(false));
        let bell = Arc::new(Doorbell::default());
        let (event_tx, event_rx) = sync_channel::<Event>(1024);
        let (health_tx, health_rx) = sync_channel::<HealthChange>(64);

        let mut cameras = Vec::new();
        let mut states = Vec::new();
        for c in &settings.cameras {
            let url = match c.resolved_url() {
                Ok(u) => u,
                Err(e) => {
                    // this camera cannot start; the others go on
                    tracing::error!(camera = %c.id, "{e}");
                    let _ = health_tx.try_send(HealthChange {
                        camera: c.id.clone(),
                        health: Health::Offline,
                        reason: e,
                        at: std::time::SystemTime::now(),
                    });
                    continue;
                }
            };
            let spec = CameraSpec::new(&c.id, &url, &c.redacted_url(), c.analysis_fps);
            let cam = Camera::start(spec, bell.clone(), health_tx.clone())
                .map_err(|e| AppError::Start(e.to_string()))?;
            states.push(CamState {
                id: c.id.clone(),
                gate: c.role == CameraRole::Gate,
                motion_gate: c.motion_gate && c.role != CameraRole::Gate,
                slot: cam.slot.clone(),
                tracker: Tracker::new(settings.tracker.clone()),
                lines: c
                    .lines
                    .iter()
                    .map(|l| LineCounter::new(l.spec(), settings.counting.clone()))
                    .collect(),
                motion: MotionGate::new(MotionParams::default()),
                figures: CameraFigures::default(),
                still_since: None,
                woke_at: None,
                person_score: settings.tracker.high_score,
            });
            cameras.push(cam);
        }
        drop(health_tx);

        let figures = Arc::new(Mutex::new(HashMap::new()));
        let site = (settings.site.id.clone(), settings.site.timezone);
        let worker = {
            let (stop, bell, tx, figs, site) = (
                stop.clone(),
                bell.clone(),
                event_tx.clone(),
                figures.clone(),
                site.clone(),
            );
            std::thread::Builder::new()
                .name("inference".into())
                .spawn(move || inference(detector, states, bell, stop, tx, figs, site))
                .map_err(|e| AppError::Start(e.to_string()))?
        };
        let health = {
            let (tx, site) = (event_tx, site);
            std::thread::Builder::new()
                .name("health".into())
                .spawn(move || health_events(health_rx, tx, site))
                .map_err(|e| AppError::Start(e.to_string()))?
        };
        let writer = std::thread::Builder::new()
            .name("events".into())
            .spawn(move || write_events(event_rx, out))
            .map_err(|e| AppError::Start(e.to_string()))?;
        Ok(Live {
            stop,
            cameras,
            worker: Some(worker),
            writer: Some(writer),
            health: Some(health),
            figures,
        })
    }

    /// Per camera: (id, frames delivered, frames dropped, reconnects), read live.
    pub fn camera_counters(&self) -> Vec<(String, u64, u64, u64)> {
        self.cameras
            .iter()
            .map(|c| {
                let s = &c.slot.stats;
                (
                    c.id.clone(),
                    s.frames_delivered.load(Ordering::Relaxed),
                    s.frames_dropped.load(Ordering::Relaxed),
                    s.reconnects.load(Ordering::Relaxed),
                )
            })
            .collect()
    }

    /// Stop in order: cameras, inference, then the event writer drains what is left.
    pub fn shutdown(mut self) {
        for c in &mut self.cameras {
            c.stop();
        }
        self.cameras.clear();
        self.stop.store(true, Ordering::Relaxed);
        for t in [self.worker.take(), self.health.take(), self.writer.take()]
            .into_iter()
            .flatten()
        {
            let _ = t.join();
        }
    }
}

fn write_events(rx: Receiver<Event>, mut out: Box<dyn Write + Send>) {
    for e in rx {
        match serde_json::to_string(&e) {
            Ok(line) => {
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
            Err(err) => tracing::error!("event {} cannot be written: {err}", e.id),
        }
    }
}

fn health_events(rx: Receiver<HealthChange>, tx: SyncSender<Event>, site: (String, chrono_tz::Tz)) {
    for h in rx {
        let (kind, sev) = match h.health {
            Health::Online => (EventKind::CameraOnline, Severity::Info),
            Health::Offline => (EventKind::CameraOffline, Severity::Warning),
            Health::Connecting => continue,
        };
        let mut e = Event::new(
            &site.0,
            site.1,
            &h.camera,
            kind,
            sev,
            chrono::DateTime::from(h.at),
        );
        e.snapshot = None;
        e.clip = None;
        if tx.send(e).is_err() {
            break;
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn inference(
    mut detector: Detector,
    mut cams: Vec<CamState>,
    bell: Arc<Doorbell>,
    stop: Arc<AtomicBool>,
    tx: SyncSender<Event>,
    figures: Arc<Mutex<HashMap<String, CameraFigures>>>,
    site: (String, chrono_tz::Tz),
) {
    let mut next_area = 0usize;
    let mut crossings: Vec<Crossing> = Vec::with_capacity(8);
    let mut last_log = Instant::now();
    let mut last_publish = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        bell.wait(Duration::from_millis(200));
        loop {
            // gate cameras first, then the others in turn
            let pick = cams
                .iter()
                .position(|c| c.gate && c.slot.has_frame())
                .or_else(|| {
                    let n = cams.len();
                    (0..n)
                        .map(|k| (next_area + k) % n)
                        .find(|&i| !cams[i].gate && cams[i].slot.has_frame())
                        .inspect(|&i| next_area = (i + 1) % n.max(1))
                });
            let Some(i) = pick else { break };
            let cam = &mut cams[i];
            let Some((frame, arrived)) = cam.slot.take() else {
                continue;
            };
            let now = Instant::now();
            if cam.motion_gate {
                let pass = cam.motion.pass(&frame.image, now);
                if cam.motion.moved {
                    if cam
                        .still_since
                        .take()
                        .is_some_and(|t| arrived.duration_since(t) >= STILL_BEFORE_WAKE)
                    {
                        cam.woke_at = Some(arrived);
                    }
                } else if cam.still_since.is_none() {
                    cam.still_since = Some(arrived);
                }
                if !pass {
                    cam.figures.skipped_still += 1;
                    continue;
                }
            }
            let t0 = Instant::now();
            let dets = match detector.persons(&frame.image) {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(camera = %cam.id, "inference failed: {e}");
                    continue;
                }
            };
            cam.figures.inference += t0.elapsed();
            cam.figures.analysed += 1;
            if let Some(w) = cam.woke_at {
                if dets.iter().any(|d| d.score >= cam.person_score) {
                    cam.figures
                        .wake_latency_ms
                        .push(w.elapsed().as_secs_f32() * 1000.0);
                    cam.woke_at = None;
                } else if w.elapsed() > WAKE_GIVE_UP {
                    cam.woke_at = None;
                }
            }
            let tracks = cam.tracker.update(&dets);
            for line in &mut cam.lines {
                crossings.clear();
                line.update(frame.index, tracks, &mut crossings);
                for c in &crossings {
                    let mut e = Event::new(
                        &site.0,
                        site.1,
                        &cam.id,
                        EventKind::LineCrossing,
                        Severity::Info,
                        chrono::Utc::now(),
                    );
                    e.line = Some(line.spec().name.clone());
                    e.direction = Some(c.direction);
                    e.track_id = Some(c.track_id);
                    e.bbox = Some(c.bbox.to_array());
                    e.score = Some(c.score);
                    e.counts = Some(line.counts().into());
                    cam.figures
                        .event_latency_ms
                        .push(arrived.elapsed().as_secs_f32() * 1000.0);
                    // events are never dropped: wait for the writer
                    if tx.send(e).is_err() {
                        return;
                    }
                }
            }
            if stop.load(Ordering::Relaxed) {
                break;
            }
        }
        // figures are published every few seconds and logged once a minute, not per frame
        if last_publish.elapsed() >= PUBLISH_EVERY {
            last_publish = Instant::now();
            if let Ok(mut f) = figures.lock() {
                for c in &cams {
                    f.insert(c.id.clone(), c.figures.clone());
                }
            }
        }
        if last_log.elapsed() >= Duration::from_secs(60) {
            last_log = Instant::now();
            log_figures(&cams);
        }
    }
}

/// How often the worker copies its figures out for readers (bench, later /metrics).
const PUBLISH_EVERY: Duration = Duration::from_secs(2);

fn log_figures(cams: &[CamState]) {
    for c in cams {
        let s = &c.slot.stats;
        tracing::info!(
            camera = %c.id,
            delivered = s.frames_delivered.load(Ordering::Relaxed),
            dropped = s.frames_dropped.load(Ordering::Relaxed),
            reconnects = s.reconnects.load(Ordering::Relaxed),
            analysed = c.figures.analysed,
            skipped_still = c.figures.skipped_still,
            inference_ms = c.figures.inference.as_secs_f64() * 1000.0 / c.figures.analysed.max(1) as f64,
            "camera figures"
        );
    }
}
