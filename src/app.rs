//! The live chain: camera supervisors -> one inference worker (motion gate, person detector,
//! per-camera tracker and lines) -> events. Built and shut down here, in order.
//!
//! Channels and their policy when full:
//! - camera -> worker: a one-frame slot per camera, the newest frame replaces an unconsumed one
//!   (counted as dropped): a live picture is worth more than an old one;
//! - worker -> event writer and health -> event writer: bounded (1024), the sender waits:
//!   events are never dropped;
//! - camera health -> app: bounded (64), the camera thread waits (a few changes a minute at most).
//! - event writer -> web UI live feeds: a broadcast of 256 after each event is stored; a browser
//!   that falls behind loses the oldest and is told so (it reloads the recent events);
//! - web UI -> worker (new lines and zones): bounded (1); the worker takes a change between two
//!   frames and answers it; a second save while one is pending is refused with a message.
//!
//! Scheduling: the worker serves gate cameras first whenever they have a frame, then the other
//! cameras round-robin, so under overload every camera slows down evenly and the gate keeps its
//! rate.
//!
//! Rules, per analysed frame of a camera, after the tracker: the mask watch picks the few people
//! near a mask-checking gate line whose faces are looked at (bounded, see `rules::mask`); each
//! line counts crossings (`line_crossing`, always) and judges entries (`curfew_entry`, `no_mask`);
//! each zone judges stays (`intrusion`, `loitering`, `crowding`). Alerts (everything but
//! `line_crossing` and camera health) pass the camera's `Cooldown`, keyed by type, line or zone
//! and person. Severities come from `[alerts.severity]`. All of this is `rules::CameraChain`, the
//! same chain `ronda analyze` runs on a file; the worker only feeds it detections, faces and the
//! moment (the frame's own stream time, see `StreamClock`, and the site's wall clock) and turns
//! its findings into events.

mod apply;
pub mod village;

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::config::{self, CameraRole, Settings};
use crate::detect::{Detector, MaskVerdict};
use crate::events::{Event, EventKind, Severity};
use crate::gate::{GateBook, GateMark};
use crate::geometry::BBox;
use crate::ingest::camera::{Camera, CameraSpec, Doorbell, FrameSlot, Health, HealthChange};
use crate::ingest::ring::EncodedRing;
use crate::motion::{MotionGate, MotionParams};
use crate::rules::{
    CameraChain, Cooldown, Counts, Finding, LineCounter, MaskParams, MaskWatch, Moment, Recent,
    RecentLimits, Severities, ZoneWatch,
};
use crate::sinks::{
    ClipOptions, ClipOutcome, ClipRecorder, Outlet, RetentionOptions, RetentionTask,
};
use crate::store::Store;
use crate::track::{Track, Tracker};

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
    /// Counters at the last rate reading: (when, delivered, analysed).
    rate_mark: Option<(Instant, u64, u64)>,
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
    /// The camera as configured (lines and zones as last applied).
    conf: config::Camera,
    gate: bool,
    motion_gate: bool,
    slot: Arc<FrameSlot>,
    /// The tracks of the last minutes and pictures of the people in them ("preview this line").
    recent: Arc<Mutex<Recent>>,
    /// The camera's tracker and rules.
    rules: CameraChain,
    clock: StreamClock,
    motion: MotionGate,
    figures: CameraFigures,
    /// Since when the camera has been still (motion-gated cameras only).
    still_since: Option<Instant>,
    /// Arrival of the first moving frame after a still spell, until a person is found.
    woke_at: Option<Instant>,
    person_score: f32,
}

/// The chain of camera `c` (its tracker, lines, zones, mask watch and alert rules), each line
/// starting from its stored counts (`starts`, same order as the lines); the mask watch only if
/// `faces` are loaded and a line checks masks.
fn camera_chain(
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
fn fresh_chain(c: &config::Camera, settings: &Settings, faces: bool) -> CameraChain {
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
struct StreamClock {
    /// The last frame's timestamp (ns) and the chain time given to it.
    last: Option<(u64, f64)>,
}

impl StreamClock {
    /// Chain seconds for a frame with timestamp `pts_ns`, which arrived `arrived_s` seconds
    /// after the pipeline started.
    fn time(&mut self, pts_ns: Option<u64>, arrived_s: f64) -> f64 {
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

/// A running pipeline.
pub struct Live {
    stop: Arc<AtomicBool>,
    cameras: Vec<Camera>,
    worker: Option<std::thread::JoinHandle<()>>,
    writer: Option<std::thread::JoinHandle<Outlet>>,
    clips: Option<Arc<ClipRecorder>>,
    retention: Option<RetentionTask>,
    store: Arc<Store>,
    health: Option<std::thread::JoinHandle<()>>,
    /// The gate book's night check and daily report, and how to stop it.
    keeper: Option<(std::thread::JoinHandle<()>, Arc<StopFlag>)>,
    pub figures: Arc<Mutex<HashMap<String, CameraFigures>>>,
    village: Arc<village::LiveVillage>,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Detect(#[from] crate::detect::DetectError),
    #[error(transparent)]
    Outlet(#[from] crate::sinks::OutletError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Start(String),
}

impl Live {
    /// Start everything; events are written as JSON lines to `out`.
    pub fn start(settings: &Settings, out: Box<dyn Write + Send>) -> Result<Live, AppError> {
        crate::ingest::init_gstreamer().map_err(|e| AppError::Start(e.to_string()))?;
        // broker, store and sinks first: a port in use or an unwritable store stops the start
        // before any camera connects
        let mut outlet = Outlet::start(settings, out)?;
        let store = outlet.store();
        let removed = crate::sinks::startup_cleanup(&settings.store.clips_dir).unwrap_or(0);
        if removed > 0 {
            tracing::warn!(removed, dir = %settings.store.clips_dir.display(), "unfinished clips of an interrupted run removed");
        }
        // clips of an interrupted run: a finished file (they appear only by rename) becomes
        // ready, anything else failed, so no incident points at a file that is not there
        match store.recover_clips(&settings.store.clips_dir) {
            Ok(r) if r.ready + r.failed > 0 => {
                tracing::info!(
                    ready = r.ready,
                    failed = r.failed,
                    "clips of the last run recovered"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::error!("clips of the last run not recovered: {e}"),
        }
        let clips_dir = settings.store.clips_dir.clone();
        let report_store = store.clone();
        let clips = Arc::new(
            ClipRecorder::start(
                ClipOptions::new(
                    &settings.store.clips_dir,
                    settings.clips.pre,
                    settings.clips.post,
                    settings.site.timezone,
                ),
                move |o| record_clip(&report_store, &clips_dir, o),
            )
            .map_err(|e| AppError::Start(e.to_string()))?,
        );
        // the gate book's entries, pictures and records go with the incidents' retention
        let gate_retention = {
            let (store, dir, days) = (
                store.clone(),
                settings.store.clips_dir.clone(),
                settings.gatebook.retention_days,
            );
            move |now| {
                if let Err(e) = crate::gate::retention(&store, &dir, days, now) {
                    tracing::error!("gate book retention: {e}");
                }
            }
        };
        let retention = RetentionTask::start_also(
            store.clone(),
            RetentionOptions::from_settings(&settings.store),
            gate_retention,
        )
        .map_err(|e| AppError::Start(e.to_string()))?;
        let gate_clock = crate::gate::clock_from_env().map_err(AppError::Start)?;
        let gatebook = Arc::new(GateBook::new(store.clone(), settings));
        let gate_status = crate::gate::SharedStatus::default();
        let mut rings = HashMap::new();
        let mut dopts = settings.detector_options();
        // faces cost far more than persons: loaded only where a gate checks masks
        dopts.faces = settings
            .cameras
            .iter()
            .any(|c| c.role == CameraRole::Gate && c.mask_check);
        let detector = Detector::new(&dopts)?;
        let start = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let bell = Arc::new(Doorbell::default());
        let (event_tx, event_rx) = sync_channel::<Raised>(EVENT_QUEUE);
        let waiting = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let event_tx = Events {
            tx: event_tx,
            waiting: waiting.clone(),
        };
        let (health_tx, health_rx) = sync_channel::<HealthChange>(64);

        let mut cameras = Vec::new();
        let mut states = Vec::new();
        let mut shares = HashMap::new();
        let board = Arc::new(village::HealthBoard::default());
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
            let mut spec = CameraSpec::new(&c.id, &url, &c.redacted_url(), c.analysis_fps);
            // the recorder collects the post-roll as it arrives: the ring needs the pre-roll
            // plus a keyframe interval or so
            spec.ring = Some(settings.clips.pre + RING_SLACK);
            let cam = Camera::start(spec, bell.clone(), health_tx.clone())
                .map_err(|e| AppError::Start(e.to_string()))?;
            if let Some(r) = &cam.ring {
                rings.insert(c.id.clone(), r.clone());
            }
            let recent = Arc::new(Mutex::new(Recent::new(RecentLimits {
                keep: settings.preview_minutes * 60.0,
                ..RecentLimits::default()
            })));
            shares.insert(
                c.id.clone(),
                village::CameraShare {
                    slot: cam.slot.clone(),
                    recent: recent.clone(),
                },
            );
            let mut starts = Vec::new();
            for l in &c.lines {
                starts.push(outlet.line_start(&c.id, &l.name, settings.site.counts_reset)?);
            }
            states.push(CamState {
                id: c.id.clone(),
                conf: c.clone(),
                gate: c.role == CameraRole::Gate,
                motion_gate: c.motion_gate && c.role != CameraRole::Gate,
                slot: cam.slot.clone(),
                recent,
                rules: camera_chain(c, settings, dopts.faces, starts),
                clock: StreamClock::default(),
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
        let feed = tokio::sync::broadcast::channel(village::FEED_CAPACITY).0;
        // one change at a time: the editor saves seldom, and a second save while the worker is
        // still on the first is refused with a message rather than queued
        let (rules_tx, rules_rx) = sync_channel::<apply::RulesChange>(1);
        let village = Arc::new(village::LiveVillage::new(
            settings,
            &shares,
            board.clone(),
            figures.clone(),
            store.clone(),
            outlet.sink(),
            feed.clone(),
            rules_tx,
            village::Queues {
                events: waiting.clone(),
                clips: Arc::downgrade(&clips),
                webhook: settings.webhook.is_some(),
                notify: outlet.notify_rows(),
            },
            gate_status.clone(),
        ));
        // a press of a phone's acknowledge button goes the guard page's way
        outlet.listen_for_acks(village.clone());
        let site = EventSite {
            id: settings.site.id.clone(),
            timezone: settings.site.timezone,
            severities: settings.alerts.severities,
        };
        let worker = {
            let (stop, bell, tx, figs, site) = (
                stop.clone(),
                bell.clone(),
                event_tx.clone(),
                figures.clone(),
                site.clone(),
            );
            let clock = Clock { start, site };
            let resets = DailyReset {
                at: settings.site.counts_reset,
                store: store.clone(),
                sink: outlet.sink(),
                last_check: Instant::now(),
            };
            let rules = apply::RulesContext {
                store: store.clone(),
                sink: outlet.sink(),
                settings: settings.clone(),
                faces: dopts.faces,
            };
            let changes = (rules_rx, rules);
            let night = settings.gatebook.night;
            std::thread::Builder::new()
                .name("inference".into())
                .spawn(move || {
                    inference(
                        detector, states, bell, stop, tx, figs, clock, resets, changes, night,
                    )
                })
                .map_err(|e| AppError::Start(e.to_string()))?
        };
        let keeper = {
            let tx = event_tx.clone();
            let keeper = crate::gate::Keeper::new(
                gatebook.clone(),
                gate_clock.clone(),
                crate::gate::EventSite {
                    id: settings.site.id.clone(),
                    severity: settings.alerts.severity(EventKind::UnrecordedEntry),
                },
                Box::new(move |e| tx.send(Raised::bare(e))),
                crate::gate::report::Scheduler::new(
                    store.clone(),
                    crate::gate::report::ReportSite::from_settings(settings),
                    crate::sinks::WebhookOptions::from_settings(settings)
                        .map_err(|e| AppError::Start(e.to_string()))?,
                    gate_clock.now(),
                ),
                gate_status,
            );
            let stop: Arc<StopFlag> = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
            let flag = stop.clone();
            let thread = std::thread::Builder::new()
                .name("gatebook".into())
                .spawn(move || keeper.run(flag, KEEPER_EVERY))
                .map_err(|e| AppError::Start(e.to_string()))?;
            (thread, stop)
        };
        let health = {
            let (tx, site, board) = (event_tx, site, board.clone());
            std::thread::Builder::new()
                .name("health".into())
                .spawn(move || health_events(health_rx, tx, site, board))
                .map_err(|e| AppError::Start(e.to_string()))?
        };
        let writer = {
            let clips = clips.clone();
            let dir = settings.store.clips_dir.clone();
            let tz = settings.site.timezone;
            let status = StatusRefresh {
                health: board,
                figures: figures.clone(),
                cameras: settings.cameras.iter().map(|c| c.id.clone()).collect(),
                published: HashMap::new(),
                last: Instant::now(),
            };
            let book = Some(gatebook);
            std::thread::Builder::new()
                .name("events".into())
                .spawn(move || {
                    write_events(
                        event_rx, outlet, clips, rings, dir, tz, feed, waiting, status, book,
                    )
                })
                .map_err(|e| AppError::Start(e.to_string()))?
        };
        Ok(Live {
            stop,
            cameras,
            worker: Some(worker),
            writer: Some(writer),
            clips: Some(clips),
            retention: Some(retention),
            store,
            health: Some(health),
            keeper: Some(keeper),
            figures,
            village,
        })
    }

    /// The pipeline as the web UI sees it.
    pub fn village(&self) -> Arc<village::LiveVillage> {
        self.village.clone()
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

    /// The event store (outbox, counts) of the running pipeline.
    pub fn store(&self) -> Arc<Store> {
        self.store.clone()
    }

    /// Stop in order: cameras, inference, the event writer drains what is left into the store,
    /// open clips are finished, the outbox is flushed to the broker (up to [`FLUSH_ON_STOP`]),
    /// then the broker stops.
    pub fn shutdown(mut self) {
        for c in &mut self.cameras {
            c.stop();
        }
        self.cameras.clear();
        self.stop.store(true, Ordering::Relaxed);
        if let Some(r) = self.retention.take() {
            r.stop();
        }
        let keeper = self.keeper.take().map(|(thread, stop)| {
            let (lock, wake) = &*stop;
            *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
            wake.notify_all();
            thread
        });
        for t in [self.worker.take(), self.health.take(), keeper]
            .into_iter()
            .flatten()
        {
            let _ = t.join();
        }
        let outlet = self.writer.take().and_then(|t| t.join().ok());
        if let Some(c) = self.clips.take().and_then(|c| Arc::try_unwrap(c).ok()) {
            c.shutdown();
        }
        if let Some(o) = outlet {
            o.shutdown(FLUSH_ON_STOP);
        }
    }
}

/// A flag a thread waits on, and the condvar that wakes it when set.
type StopFlag = (Mutex<bool>, std::sync::Condvar);

/// How often the gate book's keeper looks for night entries due and the daily report.
const KEEPER_EVERY: Duration = Duration::from_secs(1);
/// How long stopping waits for the broker to acknowledge what is still in the outbox (the rest
/// goes out at the next start).
const FLUSH_ON_STOP: Duration = Duration::from_secs(5);
/// Encoded ring beyond the pre-roll: room for the keyframe before the clip's start.
const RING_SLACK: Duration = Duration::from_secs(3);

/// The event writer: every event into the store and out (MQTT, webhook, the local output); for
/// each alert a clip from the camera's encoded ring and an incident for reviewers. Returns the
/// outlet for its shutdown.
#[allow(clippy::too_many_arguments)]
fn write_events(
    rx: Receiver<Raised>,
    mut outlet: Outlet,
    clips: Arc<ClipRecorder>,
    rings: HashMap<String, Arc<EncodedRing>>,
    clips_dir: std::path::PathBuf,
    tz: chrono_tz::Tz,
    feed: tokio::sync::broadcast::Sender<Event>,
    waiting: Arc<std::sync::atomic::AtomicU64>,
    mut status: StatusRefresh,
    gatebook: Option<Arc<GateBook>>,
) -> Outlet {
    let store = outlet.store();
    loop {
        let Raised {
            event: e,
            picture,
            gate,
        } = match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(r) => r,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                status.check(&outlet);
                continue;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        };
        status.check(&outlet);
        waiting.fetch_sub(1, Ordering::Relaxed);
        outlet.record(&e);
        // a crossing of a gate line: into the gate log with the person's picture, before the
        // live feeds hear of it (the gate book page reloads the log on it)
        if let (Some(book), Some(mark)) = (&gatebook, gate) {
            book.log(&e, picture.as_deref(), mark);
        }
        if e.kind == EventKind::UnrecordedEntry {
            // ids and status only: an incident for the reviewers, without picture or clip
            if let Err(err) = store.open_incident(&e, None, None) {
                tracing::error!(camera = %e.camera, event = %e.id, "incident not indexed: {err}");
            }
            let _ = feed.send(e);
            continue;
        }
        if e.severity != Severity::Alert {
            // stored: the web UI's live feeds may show it (nobody listening is fine)
            let _ = feed.send(e);
            continue;
        }
        let snapshot = picture.and_then(|p| write_event_snapshot(&e, &p, &clips_dir, tz));
        // the clip is asked for first: an alert that joins a clip already recording joins
        // that clip's incident
        let planned = rings.get(&e.camera).and_then(|ring| {
            let at = std::time::SystemTime::now();
            clips
                .request(&e.camera, ring.clone(), &e.id, at)
                .inspect_err(
                    |why| tracing::warn!(camera = %e.camera, event = %e.id, "no clip: {why}"),
                )
                .ok()
        });
        let rel = planned
            .as_ref()
            .and_then(|p| p.path.strip_prefix(&clips_dir).ok());
        let snap_rel = snapshot
            .as_ref()
            .and_then(|p| p.strip_prefix(&clips_dir).ok());
        if let Err(err) = store.open_incident(&e, rel, snap_rel) {
            tracing::error!(camera = %e.camera, event = %e.id, "incident not indexed: {err}");
        }
        // after its snapshot is indexed: the guard's page loads the thumbnail at once
        let _ = feed.send(e);
    }
    outlet
}

/// The cameras' retained MQTT status with their delivered frame rate: the status published at
/// `camera_online` cannot know it yet, so it is published again once the rate is measured (a
/// few seconds later) and then whenever it changed by half a frame per second or more, at most
/// every 30 s per camera (checked every 5 s, never per frame).
struct StatusRefresh {
    health: Arc<village::HealthBoard>,
    figures: Arc<Mutex<HashMap<String, CameraFigures>>>,
    cameras: Vec<String>,
    /// The rate last published per camera, and when.
    published: HashMap<String, (f64, Instant)>,
    last: Instant,
}

impl StatusRefresh {
    const EVERY: Duration = Duration::from_secs(5);
    const AT_MOST: Duration = Duration::from_secs(30);

    fn check(&mut self, outlet: &Outlet) {
        if self.last.elapsed() < Self::EVERY {
            return;
        }
        self.last = Instant::now();
        let figures = self.figures.lock().map(|f| f.clone()).unwrap_or_default();
        for cam in &self.cameras {
            let (health, since) = self.health.get(cam);
            if health != Health::Online {
                self.published.remove(cam);
                continue;
            }
            let Some(fps) = figures
                .get(cam)
                .map(|f| f.delivered_fps)
                .filter(|f| *f > 0.0)
            else {
                continue;
            };
            if self
                .published
                .get(cam)
                .is_some_and(|(old, at)| (old - fps).abs() < 0.5 || at.elapsed() < Self::AT_MOST)
            {
                continue;
            }
            self.published.insert(cam.clone(), (fps, Instant::now()));
            let since = since.unwrap_or_else(chrono::Utc::now);
            outlet.camera_status(cam, "online", since, Some(fps));
        }
    }
}

/// The alert's snapshot: its picture with the person's box and the alert's type drawn, next to
/// its clip. `None` (logged) when it cannot be written: the incident is indexed without one.
fn write_event_snapshot(
    e: &Event,
    picture: &image::RgbImage,
    clips_dir: &std::path::Path,
    tz: chrono_tz::Tz,
) -> Option<std::path::PathBuf> {
    if !crate::sinks::clips::files::safe_component(&e.camera)
        || !crate::sinks::clips::files::safe_component(&e.id)
    {
        return None;
    }
    let path = crate::sinks::clips::incident_path(
        clips_dir,
        &e.camera,
        std::time::SystemTime::now(),
        tz,
        &e.id,
        "jpg",
    );
    let label = crate::rules::alert::kind_name(e.kind);
    let boxes: Vec<(BBox, &str)> = e
        .bbox
        .map(|b| (BBox::new(b[0], b[1], b[2], b[3]), label))
        .into_iter()
        .collect();
    match crate::sinks::write_snapshot(picture, &boxes, &path) {
        Ok(_) => Some(path),
        Err(err) => {
            tracing::error!(camera = %e.camera, event = %e.id, "snapshot not written: {err}");
            None
        }
    }
}

/// The recorder's report, into the incident index (runs on the recorder's thread: quick).
fn record_clip(store: &Store, clips_dir: &std::path::Path, o: ClipOutcome) {
    match o {
        ClipOutcome::Done {
            camera,
            incident_ids,
            path,
            info,
        } => {
            tracing::info!(camera, incidents = incident_ids.len(), path = %path.display(),
                seconds = info.duration.as_secs_f64(), "clip written");
            let rel = path.strip_prefix(clips_dir).unwrap_or(&path);
            if let Err(e) = store.clip_done(&incident_ids, rel, info.duration, info.bytes) {
                tracing::error!(camera, "clip not indexed: {e}");
            }
        }
        ClipOutcome::Failed {
            camera,
            incident_ids,
            reason,
            ..
        } => {
            tracing::error!(
                camera,
                incidents = incident_ids.len(),
                "clip not written: {reason}"
            );
            if let Err(e) = store.clip_failed(&incident_ids, &reason) {
                tracing::error!(camera, "clip failure not indexed: {e}");
            }
        }
    }
}

/// The daily reset of line counts (`[site] counts_reset`, site time), checked by the worker.
struct DailyReset {
    at: chrono::NaiveTime,
    store: Arc<Store>,
    sink: Option<crate::sinks::SinkHandle>,
    last_check: Instant,
}

impl DailyReset {
    /// Reset the lines whose reset time has come; checked every 20 s, not per frame.
    fn check(&mut self, cams: &mut [CamState], tz: chrono_tz::Tz) {
        if self.last_check.elapsed() < Duration::from_secs(20) {
            return;
        }
        self.last_check = Instant::now();
        let now = chrono::Utc::now();
        for cam in cams.iter_mut() {
            let rules = &mut cam.rules;
            for (line, since) in rules.lines.iter_mut().zip(rules.since.iter_mut()) {
                if !crate::store::reset_due(*since, now, self.at, tz) {
                    continue;
                }
                let name = line.spec().name.clone();
                tracing::info!(camera = %cam.id, line = %name, counts = ?line.counts(), "daily reset of the line counts");
                line.reset_counts();
                *since = now;
                if let Err(e) = self.store.reset_counts(&cam.id, &name, now) {
                    tracing::error!(camera = %cam.id, line = %name, "daily reset not stored: {e}");
                }
                if let Some(s) = &self.sink {
                    let json = crate::sinks::outlet::counts_json(Counts::default(), now, tz);
                    let _ = s.publish_counts(&cam.id, &name, &json);
                }
            }
        }
    }
}

/// What every event of this site carries: its id, its time zone, and the configured severities.
#[derive(Clone, Debug)]
struct EventSite {
    id: String,
    timezone: chrono_tz::Tz,
    severities: Severities,
}

impl EventSite {
    /// A blank event of `kind` with the configured severity.
    fn event(&self, camera: &str, kind: EventKind, at: chrono::DateTime<chrono::Utc>) -> Event {
        Event::new(
            &self.id,
            self.timezone,
            camera,
            kind,
            self.severities.get(kind),
            at,
        )
    }
}

fn health_events(
    rx: Receiver<HealthChange>,
    tx: Events,
    site: EventSite,
    board: Arc<village::HealthBoard>,
) {
    for h in rx {
        board.set(&h.camera, h.health, chrono::DateTime::from(h.at));
        let kind = match h.health {
            Health::Online => EventKind::CameraOnline,
            Health::Offline => EventKind::CameraOffline,
            Health::Connecting => continue,
        };
        let mut e = site.event(&h.camera, kind, chrono::DateTime::from(h.at));
        e.snapshot = None;
        e.clip = None;
        if !tx.send(Raised::bare(e)) {
            break;
        }
    }
}

/// The worker's clock: seconds since the start (a camera's stream time falls back on it), the
/// wall clock in the site's time zone for event times and daily windows.
struct Clock {
    start: Instant,
    site: EventSite,
}

impl Clock {
    /// The moment of frame `frame` whose chain time is `t`.
    fn moment(&self, frame: u64, t: f64) -> Moment {
        let utc = chrono::Utc::now();
        Moment {
            frame,
            t,
            utc,
            local: utc.with_timezone(&self.site.timezone).time(),
        }
    }
}

/// An event on its way to the writer, with the picture it was raised on (alerts only: the
/// writer draws the snapshot from it, off the detector's thread).
pub(crate) struct Raised {
    pub event: Event,
    pub picture: Option<Arc<image::RgbImage>>,
    /// A crossing of a gate camera's line: for the gate log (with `picture`, the frame that
    /// counted).
    pub gate: Option<GateMark>,
}

impl Raised {
    fn bare(event: Event) -> Self {
        Raised {
            event,
            picture: None,
            gate: None,
        }
    }
}

/// The bounded queue to the event writer (capacity [`EVENT_QUEUE`]; a full queue makes the
/// sender wait: events are never dropped), with how many wait in it for /metrics.
#[derive(Clone)]
pub(crate) struct Events {
    tx: SyncSender<Raised>,
    waiting: Arc<std::sync::atomic::AtomicU64>,
}

impl Events {
    /// `false` when the writer is gone (shutting down).
    fn send(&self, r: Raised) -> bool {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let ok = self.tx.send(r).is_ok();
        if !ok {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        }
        ok
    }
}

/// Events that may wait for the writer (a burst of crossings while the disk is slow).
const EVENT_QUEUE: usize = 1024;

/// Hands the events of one frame to the writer.
struct Emit<'a> {
    tx: &'a Events,
    /// The frame's picture, handed along with alerts for their snapshot (shared, not copied).
    picture: Option<&'a Arc<image::RgbImage>>,
    figures: &'a mut CameraFigures,
    arrived: Instant,
    /// The picture's width and height: boxes are clamped to it (a tracker's prediction for a
    /// person leaving the picture can run past its edge).
    size: (f32, f32),
}

impl Emit<'_> {
    /// Hand `e` over; `gate` marks a crossing of a gate camera's line (the frame that counted
    /// goes with it, for the gate log's picture). `false` when the writer is gone (shutting
    /// down).
    fn send_marked(&mut self, mut e: Event, gate: Option<GateMark>) -> bool {
        if let Some(b) = &mut e.bbox {
            let (w, h) = self.size;
            for (i, v) in b.iter_mut().enumerate() {
                *v = v.clamp(0.0, if i % 2 == 0 { w } else { h });
            }
        }
        self.figures
            .event_latency_ms
            .push(self.arrived.elapsed().as_secs_f32() * 1000.0);
        let picture = (e.severity == Severity::Alert || gate.is_some())
            .then(|| self.picture.cloned())
            .flatten();
        // events are never dropped: wait for the writer
        self.tx.send(Raised {
            event: e,
            picture,
            gate,
        })
    }
}

#[allow(clippy::too_many_arguments)]
fn inference(
    mut detector: Detector,
    mut cams: Vec<CamState>,
    bell: Arc<Doorbell>,
    stop: Arc<AtomicBool>,
    tx: Events,
    figures: Arc<Mutex<HashMap<String, CameraFigures>>>,
    clock: Clock,
    mut resets: DailyReset,
    (changes, mut rules): (Receiver<apply::RulesChange>, apply::RulesContext),
    gate_night: Option<config::Window>,
) {
    let mut next_area = 0usize;
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
                cam.figures.light_changes = cam.motion.light_changes;
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
            if let Some((b, dark)) = detector.last_light() {
                let mean = b.mean as f64;
                cam.figures.brightness = Some(
                    cam.figures
                        .brightness
                        .map_or(mean, |old| old + (mean - old) / BRIGHTNESS_FRAMES),
                );
                cam.figures.low_light = dark;
            }
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
            let arrived_s = arrived.saturating_duration_since(clock.start).as_secs_f64();
            let at = clock.moment(frame.index, cam.clock.time(frame.pts_ns, arrived_s));
            let tracks = cam.rules.track(&at, &dets);
            // anyone (even not yet confirmed) in view keeps the still camera's re-check short
            cam.motion.occupied = !tracks.is_empty();
            remember(&cam.recent, &at, tracks, &frame.image);
            look_for_faces(
                &mut detector,
                &mut cam.rules,
                &frame.image,
                &at,
                &mut cam.figures,
            );
            let suppressed = cam.rules.suppressed;
            // copied out (usually empty: no allocation) so the camera's figures can be updated
            let findings = cam.rules.judge(&at).to_vec();
            let mut emit = Emit {
                tx: &tx,
                picture: Some(&frame.image),
                figures: &mut cam.figures,
                arrived,
                size: (frame.width() as f32, frame.height() as f32),
            };
            for f in &findings {
                let e = finding_event(f, &cam.id, &cam.rules.lines, &clock.site, at.utc);
                let mark = match f {
                    Finding::Crossing {
                        line,
                        crossing,
                        look,
                        ..
                    } if cam.gate => {
                        let curfew = cam.rules.line_rules.get(*line).and_then(|r| r.curfew);
                        Some(GateMark {
                            look: *look,
                            night: crossing.direction == crate::rules::Direction::In
                                && curfew.or(gate_night).is_some_and(|w| w.contains(at.local)),
                        })
                    }
                    _ => None,
                };
                if !emit.send_marked(e, mark) {
                    return;
                }
            }
            cam.figures.alerts_suppressed += cam.rules.suppressed - suppressed;
            // under saturation this loop never runs dry: figures, resets and new rules are
            // handled in it
            publish_figures(&mut cams, &figures, &mut last_publish, &mut last_log);
            resets.check(&mut cams, clock.site.timezone);
            take_new_rules(&changes, &mut rules, &mut cams);
            if stop.load(Ordering::Relaxed) {
                break;
            }
        }
        publish_figures(&mut cams, &figures, &mut last_publish, &mut last_log);
        resets.check(&mut cams, clock.site.timezone);
        take_new_rules(&changes, &mut rules, &mut cams);
    }
}

/// Apply a change the editor sent, if any, and answer it.
fn take_new_rules(
    changes: &Receiver<apply::RulesChange>,
    rules: &mut apply::RulesContext,
    cams: &mut [CamState],
) {
    if let Ok(c) = changes.try_recv() {
        let done = rules.apply(cams, c.settings);
        // the editor may have given up waiting: the change holds all the same
        let _ = c.reply.send(done);
    }
}

/// Record the frame's tracks for "preview this line", with a small picture of each person
/// whose picture is due (see `rules::preview`). A picture that cannot be encoded is skipped: the
/// preview shows the crossing without it.
fn remember(recent: &Mutex<Recent>, at: &Moment, tracks: &[Track], image: &image::RgbImage) {
    let mut r = recent.lock().unwrap_or_else(PoisonError::into_inner);
    r.record(at, tracks);
    let due: Vec<Track> = r.pictures_due(at, tracks).copied().collect();
    for k in due {
        let crop = crate::frame::person_crop(image, &k.bbox);
        let small = if crop.height() > PREVIEW_PICTURE_HEIGHT {
            let w = (crop.width() * PREVIEW_PICTURE_HEIGHT / crop.height()).max(1);
            image::imageops::thumbnail(&crop, w, PREVIEW_PICTURE_HEIGHT)
        } else {
            crop
        };
        match crate::sinks::snapshot::encode_jpeg(&small) {
            Ok(jpeg) => r.add_picture(k.id, at.t, jpeg),
            Err(e) => tracing::debug!("preview picture not encoded: {e}"),
        }
    }
}

/// Frames the camera's brightness figure is smoothed over (an exponential mean).
const BRIGHTNESS_FRAMES: f64 = 10.0;

/// Height of a person's picture in a line preview (pixels): enough to tell people apart, small
/// enough to keep minutes of them for every camera.
const PREVIEW_PICTURE_HEIGHT: u32 = 96;

/// Search the head regions of the people the chain's mask watch picks in this frame and hand
/// back what was found. Failures are counted; only the first of a camera is logged above debug.
fn look_for_faces(
    detector: &mut Detector,
    chain: &mut CameraChain,
    image: &image::RgbImage,
    at: &Moment,
    figures: &mut CameraFigures,
) {
    let looks = chain.faces_wanted(at).to_vec();
    if looks.is_empty() {
        return;
    }
    let t0 = Instant::now();
    for &(id, bbox) in &looks {
        match detector.faces_of_person(image, &bbox) {
            Ok(faces) => chain.record_faces(id, at, &faces),
            Err(e) => {
                if figures.face_errors == 0 {
                    tracing::warn!(camera = %chain.camera(), "face search failed: {e} (further failures are counted, logged at debug)");
                } else {
                    tracing::debug!(camera = %chain.camera(), "face search failed: {e}");
                }
                figures.face_errors += 1;
            }
        }
    }
    figures.face_looks += looks.len() as u64;
    figures.face_time += t0.elapsed();
}

/// The event a finding of camera `camera` becomes.
fn finding_event(
    f: &Finding,
    camera: &str,
    lines: &[LineCounter],
    site: &EventSite,
    utc: chrono::DateTime<chrono::Utc>,
) -> Event {
    let mut e = site.event(camera, f.kind(), utc);
    match f {
        Finding::Crossing {
            line,
            crossing,
            counts,
            ..
        }
        | Finding::CurfewEntry {
            line,
            crossing,
            counts,
        }
        | Finding::NoMask {
            line,
            crossing,
            counts,
            ..
        } => {
            e.line = Some(lines[*line].spec().name.clone());
            e.direction = Some(crossing.direction);
            e.track_id = Some(crossing.track_id);
            e.bbox = Some(crossing.bbox.to_array());
            e.score = Some(crossing.score);
            e.counts = Some((*counts).into());
            if let Finding::NoMask { .. } = f {
                e.mask = Some(MaskVerdict::NoMask);
            }
        }
        Finding::Zone(a) => {
            e.zone = Some(a.zone.clone());
            e.track_id = a.track_id;
            e.bbox = Some(a.bbox.to_array());
            e.score = Some(a.score);
        }
    }
    e
}

/// How often the worker copies its figures out for readers (bench, later /metrics).
const PUBLISH_EVERY: Duration = Duration::from_secs(2);

/// Copy the figures out every few seconds and log them once a minute, never per frame.
fn publish_figures(
    cams: &mut [CamState],
    figures: &Mutex<HashMap<String, CameraFigures>>,
    last_publish: &mut Instant,
    last_log: &mut Instant,
) {
    if last_publish.elapsed() >= PUBLISH_EVERY {
        let now = Instant::now();
        *last_publish = now;
        if let Ok(mut f) = figures.lock() {
            for c in cams.iter_mut() {
                let delivered = c.slot.stats.frames_delivered.load(Ordering::Relaxed);
                let fig = &mut c.figures;
                if let Some((then, d0, a0)) = fig.rate_mark {
                    let dt = now.duration_since(then).as_secs_f64().max(1e-3);
                    fig.delivered_fps = delivered.saturating_sub(d0) as f64 / dt;
                    fig.analysed_fps = fig.analysed.saturating_sub(a0) as f64 / dt;
                }
                fig.rate_mark = Some((now, delivered, fig.analysed));
                f.insert(c.id.clone(), fig.clone());
            }
        }
    }
    if last_log.elapsed() >= Duration::from_secs(60) {
        *last_log = Instant::now();
        log_figures(cams);
    }
}

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
            face_looks = c.figures.face_looks,
            face_ms = c.figures.face_time.as_secs_f64() * 1000.0 / c.figures.face_looks.max(1) as f64,
            face_errors = c.figures.face_errors,
            alerts_suppressed = c.figures.alerts_suppressed,
            "camera figures"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Face;
    use crate::events::Severity;
    use crate::geometry::Point;
    use crate::rules::Direction;
    use crate::track::Track;
    use chrono::NaiveTime;
    use std::path::Path;

    const CONFIG: &str = r#"
[site]
id = "test"
timezone = "UTC"
[alerts]
cooldown_seconds = 5
[alerts.severity]
loitering = "alert"
[[cameras]]
id = "gate-1"
url = "rtsp://127.0.0.1:1/cam01"
role = "gate"
  [[cameras.lines]]
  name = "gapura"
  points = [[300, 0], [300, 400]]
  curfew = "22:00-04:00"
[[cameras]]
id = "yard"
url = "rtsp://127.0.0.1:1/cam02"
  [[cameras.zones]]
  name = "gudang"
  polygon = [[100, 100], [300, 100], [300, 300], [100, 300]]
  [[cameras.zones]]
  name = "pos"
  kind = "loiter"
  loiter_seconds = 2
  polygon = [[400, 100], [500, 100], [500, 300], [400, 300]]
  [[cameras.zones]]
  name = "halaman"
  kind = "crowd"
  max_people = 1
  polygon = [[0, 0], [600, 0], [600, 400], [0, 400]]
"#;

    /// One camera's chain fed by hand, as the worker feeds it, events collected.
    struct Harness {
        camera: String,
        rules: CameraChain,
        site: EventSite,
        figures: CameraFigures,
        tx: Events,
        rx: Receiver<Raised>,
        frame: u64,
    }

    impl Harness {
        fn new(camera: &str) -> Self {
            let settings = Settings::parse(CONFIG, Path::new("test.toml")).unwrap();
            let c = settings.camera(camera).unwrap();
            let (tx, rx) = sync_channel(1024);
            let tx = Events {
                tx,
                waiting: Arc::default(),
            };
            Self {
                camera: camera.into(),
                rules: fresh_chain(c, &settings, true),
                site: EventSite {
                    id: settings.site.id.clone(),
                    timezone: settings.site.timezone,
                    severities: settings.alerts.severities,
                },
                figures: CameraFigures::default(),
                tx,
                rx,
                frame: 0,
            }
        }

        /// One analysed frame at `now` with these tracks (as the tracker gave them); every
        /// face looked at shows `face` (if any).
        fn step(
            &mut self,
            now: f64,
            local: NaiveTime,
            tracks: &[Track],
            face: Option<MaskVerdict>,
        ) -> Vec<Event> {
            self.frame += 1;
            let at = Moment {
                frame: self.frame,
                t: now,
                utc: chrono::Utc::now(),
                local,
            };
            self.rules.set_tracks(tracks);
            for (id, b) in self.rules.faces_wanted(&at).to_vec() {
                let faces: Vec<Face> = face
                    .map(|v| Face {
                        bbox: BBox::new(b.x1, b.y1, b.x1 + 10.0, b.y1 + 10.0),
                        score: 0.9,
                        landmarks: [Point::default(); 5],
                        mask: Some((v, 0.9)),
                    })
                    .into_iter()
                    .collect();
                self.rules.record_faces(id, &at, &faces);
            }
            let mut emit = Emit {
                tx: &self.tx,
                picture: None,
                figures: &mut self.figures,
                arrived: Instant::now(),
                size: (10_000.0, 10_000.0),
            };
            for f in self.rules.judge(&at).to_vec() {
                let e = finding_event(&f, &self.camera, &self.rules.lines, &self.site, at.utc);
                assert!(emit.send_marked(e, None));
            }
            self.rx.try_iter().map(|r| r.event).collect()
        }
    }

    fn person(id: u64, x: f32, y: f32) -> Track {
        Track {
            id,
            bbox: BBox::new(x - 20.0, y - 100.0, x + 20.0, y),
            score: 0.8,
            hits: 10,
            age: 10,
            misses: 0,
            confirmed: true,
        }
    }

    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    /// Person `id` walks across the gate line (x = 300) from x0 to x1 in 8 frames at 5 fps,
    /// starting at `t0`; the events of the walk.
    fn walk(
        h: &mut Harness,
        id: u64,
        t0: f64,
        (x0, x1): (f32, f32),
        local: NaiveTime,
        face: Option<MaskVerdict>,
    ) -> Vec<Event> {
        let mut out = Vec::new();
        for k in 0..8 {
            let x = x0 + (x1 - x0) * k as f32 / 7.0;
            out.extend(h.step(t0 + k as f64 * 0.2, local, &[person(id, x, 200.0)], face));
        }
        out
    }

    fn kinds(events: &[Event]) -> Vec<EventKind> {
        events.iter().map(|e| e.kind).collect()
    }

    #[test]
    fn an_entry_during_the_curfew_without_a_mask_raises_both_alerts_once_per_cooldown() {
        let mut h = Harness::new("gate-1");
        assert!(
            h.rules.masks.is_some(),
            "a gate camera checks masks by default"
        );
        let night = hm(23, 0);
        let no = Some(MaskVerdict::NoMask);
        // in (right to left), at 23:00, seen without a mask
        let ev = walk(&mut h, 7, 0.0, (440.0, 160.0), night, no);
        use EventKind::*;
        assert_eq!(kinds(&ev), vec![LineCrossing, CurfewEntry, NoMask]);
        for e in &ev {
            assert_eq!(e.camera, "gate-1");
            assert_eq!(e.line.as_deref(), Some("gapura"));
            assert_eq!(e.direction, Some(Direction::In));
            assert_eq!(e.track_id, Some(7));
            assert!(e.bbox.is_some() && e.score.is_some());
            assert_eq!(e.counts.map(|c| c.in_), Some(1));
        }
        assert_eq!(ev[0].severity, Severity::Info);
        assert_eq!(ev[1].severity, Severity::Alert);
        assert_eq!((ev[2].severity, ev[2].mask), (Severity::Alert, no));
        assert_eq!(ev[0].mask, None);
        // out again: counted, no alert; back in within the cooldown: counted, alerts held back
        assert_eq!(
            kinds(&walk(&mut h, 7, 1.6, (160.0, 440.0), night, no)),
            vec![LineCrossing]
        );
        assert_eq!(
            kinds(&walk(&mut h, 7, 3.2, (440.0, 160.0), night, no)),
            vec![LineCrossing]
        );
        assert_eq!(h.rules.suppressed, 2);
        // another person is another incident
        let ev = walk(&mut h, 8, 4.8, (440.0, 160.0), night, no);
        assert_eq!(kinds(&ev), vec![LineCrossing, CurfewEntry, NoMask]);
        // the first one again after the cooldown: alerts again
        walk(&mut h, 7, 6.4, (160.0, 440.0), night, no);
        let ev = walk(&mut h, 7, 8.0, (440.0, 160.0), night, no);
        assert_eq!(kinds(&ev), vec![LineCrossing, CurfewEntry, NoMask]);
    }

    #[test]
    fn no_alert_by_day_with_a_mask_or_without_a_face() {
        let mut h = Harness::new("gate-1");
        let day = hm(12, 0);
        // by day without a mask: no curfew entry, but no_mask
        let ev = walk(
            &mut h,
            1,
            0.0,
            (440.0, 160.0),
            day,
            Some(MaskVerdict::NoMask),
        );
        use EventKind::*;
        assert_eq!(kinds(&ev), vec![LineCrossing, NoMask]);
        // at night with a mask, or no face seen: only the curfew
        let ev = walk(
            &mut h,
            2,
            2.0,
            (440.0, 160.0),
            hm(1, 0),
            Some(MaskVerdict::Mask),
        );
        assert_eq!(kinds(&ev), vec![LineCrossing, CurfewEntry]);
        let ev = walk(&mut h, 3, 4.0, (440.0, 160.0), hm(1, 0), None);
        assert_eq!(kinds(&ev), vec![LineCrossing, CurfewEntry]);
        // leaving is never an alert
        let ev = walk(
            &mut h,
            4,
            6.0,
            (160.0, 440.0),
            hm(1, 0),
            Some(MaskVerdict::NoMask),
        );
        assert_eq!(kinds(&ev), vec![LineCrossing]);
        assert_eq!(ev[0].direction, Some(Direction::Out));
    }

    #[test]
    fn without_faces_loaded_there_is_no_mask_watch_and_no_no_mask() {
        let settings = Settings::parse(CONFIG, Path::new("test.toml")).unwrap();
        let rules = fresh_chain(settings.camera("gate-1").unwrap(), &settings, false);
        assert!(rules.masks.is_none());
        let yard = fresh_chain(settings.camera("yard").unwrap(), &settings, true);
        assert!(yard.masks.is_none(), "an area camera checks no masks");
        assert_eq!((yard.lines.len(), yard.zones.len()), (0, 3));
    }

    #[test]
    fn zone_alerts_carry_zone_track_box_and_the_configured_severity() {
        let mut h = Harness::new("yard");
        let noon = hm(12, 0);
        use EventKind::*;
        // one person walks into the restricted zone: an intrusion about them
        let mut ev = Vec::new();
        for k in 0..10 {
            let x = 20.0 + 20.0 * k as f32;
            ev.extend(h.step(k as f64 * 0.2, noon, &[person(1, x, 200.0)], None));
        }
        assert_eq!(kinds(&ev), vec![Intrusion]);
        let e = &ev[0];
        assert_eq!(e.zone.as_deref(), Some("gudang"));
        assert_eq!(
            (e.track_id, e.severity, e.line.as_deref()),
            (Some(1), Severity::Alert, None)
        );
        assert!(e.bbox.is_some_and(|b| b[3] == 200.0) && e.score == Some(0.8));
        // a second person in the yard: a crowd (about the group: no track)
        let ev = h.step(
            2.0,
            noon,
            &[person(1, 200.0, 200.0), person(2, 550.0, 350.0)],
            None,
        );
        assert_eq!(kinds(&ev), vec![Crowding]);
        assert_eq!(
            (ev[0].zone.as_deref(), ev[0].track_id, ev[0].severity),
            (Some("halaman"), None, Severity::Warning)
        );
        let b = ev[0].bbox.unwrap();
        assert!(b[0] <= 180.0 && b[2] >= 570.0, "{b:?}");
        // the second person stays at the post for 2 s: loitering, with the severity from
        // [alerts.severity] (alert instead of warning)
        let mut ev = Vec::new();
        for k in 0..15 {
            let now = 2.2 + k as f64 * 0.2;
            ev.extend(h.step(
                now,
                noon,
                &[person(1, 200.0, 200.0), person(2, 450.0, 200.0)],
                None,
            ));
        }
        assert_eq!(kinds(&ev), vec![Loitering]);
        assert_eq!(
            (ev[0].zone.as_deref(), ev[0].track_id, ev[0].severity),
            (Some("pos"), Some(2), Severity::Alert)
        );
    }
}
