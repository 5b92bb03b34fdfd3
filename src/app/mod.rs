//! The live chain: camera supervisors -> one inference worker (motion gate, person detector,
//! per-camera tracker and lines) -> events. Built and shut down here, in order.
//!
//! Uses (of the crate, besides its own folder): api, config, detect, events, frame, gate, geometry, ingest, motion, rules, sinks, store, telemetry, track.
//!
//! Channels and their policy when full:
//! - camera -> worker: a one-frame slot per camera, the newest frame replaces an unconsumed one
//!   (counted as dropped): a live picture is worth more than an old one; a gated camera's frame
//!   that passed the motion gate waits in the worker as the camera's one pending picture (the
//!   newest that passed replaces it, keeping whether either moved);
//! - worker -> event writer and health -> event writer: bounded (1024), the sender waits:
//!   events are never dropped;
//! - camera health -> app: bounded (64), the camera thread waits (a few changes a minute at most).
//! - event writer -> web UI live feeds: a broadcast of 256 after each event is stored; a browser
//!   that falls behind loses the oldest and is told so (it reloads the recent events);
//! - web UI -> worker (new lines and zones): bounded (1); the worker takes a change between two
//!   frames and answers it; a second save while one is pending is refused with a message.
//! - gate book keeper -> event writer: the same bounded queue (its `unrecorded_entry` events
//!   wait like the others); the writer logs each crossing of a gate line into the gate log.
//!
//! Scheduling (`turns`): the worker runs the motion gate on every gated camera's newest frame,
//! then serves gate cameras first (in turn) whenever they have a frame (but at most 3 looks in a
//! row while another camera waits: a gate the detector cannot keep up with would otherwise take
//! every look), then the first look of a still camera that just woke (once per wake-up), then the
//! other cameras round-robin, so under overload every camera slows down, the gates keep most of
//! the detector, and a passer-by in a quiet corner is looked at without waiting a round of the
//! busy cameras. A gate camera whose pictures the detector does not keep up with is flagged
//! (`keep_up`: the log, `/metrics`, the admin page).
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
mod camera;
mod daily;
mod health;
mod keep_up;
mod turns;
pub mod village;
mod worker;
mod writer;

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::config::{CameraRole, Settings};
use crate::detect::Detector;
use crate::detect::dark::DarkWatch;
use crate::events::{Event, EventKind};
use crate::gate::{GateBook, GateMark};
use crate::ingest::camera::{Camera, CameraSpec, Doorbell, Health, HealthChange};
use crate::motion::{MotionGate, MotionParams};
use crate::rules::{Recent, RecentLimits, Severities};
use crate::sinks::{ClipOptions, ClipRecorder, Outlet, RetentionOptions, RetentionTask};
use crate::store::Store;

use camera::{CamState, StreamClock, camera_chain};
pub use camera::{CameraFigures, Samples};
use daily::DailyReset;
use health::health_events;
use worker::{Clock, Worker};
use writer::{EventWriter, StatusRefresh, record_clip};

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
        match store.recover_clips(&settings.store.clips_dir, &crate::sinks::clips::probe_mp4) {
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
        let gatebook = Arc::new(GateBook::new(
            store.clone(),
            settings,
            Box::new(|picture, path| {
                crate::sinks::write_snapshot(picture, &[], path)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }),
        ));
        let gate_status = crate::gate::SharedStatus::default();
        let mut rings = HashMap::new();
        let mut dopts = settings.detector_options();
        // faces cost far more than persons: loaded only where a gate checks masks
        dopts.faces = settings
            .cameras
            .iter()
            .any(|c| c.role == CameraRole::Gate && c.mask_check);
        let detector = Detector::new(&dopts)?;
        // so that a count compared with `ronda analyze` on another machine can be read right
        // (README "Counts and the CPU")
        let info = detector.info();
        tracing::info!(
            model = %info.model,
            precision = info.precision,
            int8_arithmetic = info.int8_arithmetic.unwrap_or("-"),
            "person detector loaded"
        );
        // exact on a CPU without VNNI is ONNX Runtime's slower U8U8 kernels: measured 1.36x the
        // fast kernels' time on an AVX2 Xeon, enough to hold a 40-camera gate under its rate
        if info.int8_arithmetic.is_some()
            && dopts.runtime.int8_exact
            && crate::detect::runtime::int8_arithmetic(false) == "saturating"
        {
            tracing::info!(
                "this CPU has no VNNI: the int8 model's exact arithmetic takes about 1.4 times as \
                 long here; if `ronda bench live` shows the gate short of its analysis_fps, set \
                 [detector] int8_arithmetic = \"fast\" (README \"Counts and the CPU\")"
            );
        }
        let start = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        // a store that cannot write while stopping is waited for only so long (`Outlet::record`)
        outlet.stop_with(stop.clone());
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
                dark: DarkWatch::new(settings.detector.too_dark_after),
                keep_up: Default::default(),
                figures: CameraFigures::default(),
                still_since: None,
                last_still: None,
                still_run: 0,
                woke_at: None,
                first_look: false,
                pending: None,
                person_score: settings.tracker.high_score,
                look: (settings.detector.area_regions
                    && c.motion_gate
                    && c.role != CameraRole::Gate)
                    .then(crate::detect::region::RegionSearch::default),
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
                uplink: outlet.uplink_status(),
            },
            gate_status.clone(),
            outlet.broker_watch(),
            outlet.outages(),
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
            let gate_night = settings.gatebook.night;
            let rules = apply::RulesContext {
                store: store.clone(),
                sink: outlet.sink(),
                settings: settings.clone(),
                faces: dopts.faces,
            };
            std::thread::Builder::new()
                .name("inference".into())
                .spawn(move || {
                    Worker {
                        detector,
                        cams: states,
                        bell,
                        stop,
                        events: tx,
                        figures: figs,
                        clock,
                        resets,
                        changes: rules_rx,
                        rules,
                        gate_night,
                    }
                    .run()
                })
                .map_err(|e| AppError::Start(e.to_string()))?
        };
        let keeper = {
            let tx = event_tx.clone();
            let webhook = crate::sinks::WebhookOptions::from_settings(settings)
                .map_err(|e| AppError::Start(e.to_string()))?
                .map(|opts| crate::gate::report::ReportHook {
                    shown: opts.redacted_url.clone(),
                    post: Box::new(move |body| crate::sinks::webhook::post_once(&opts, body)),
                });
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
                    webhook,
                    gate_clock.now(),
                ),
                gate_status,
            );
            let stop: Arc<StopFlag> = Arc::new((Mutex::new(false), Condvar::new()));
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
            std::thread::Builder::new()
                .name("events".into())
                .spawn(move || {
                    EventWriter {
                        events: event_rx,
                        outlet,
                        clips,
                        rings,
                        clips_dir: dir,
                        tz,
                        feed,
                        waiting,
                        status,
                        gatebook: Some(gatebook),
                    }
                    .run()
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

    /// Each camera's ingest counters, read live.
    pub fn camera_counters(&self) -> Vec<CameraCounters> {
        self.cameras
            .iter()
            .map(|c| {
                let s = &c.slot.stats;
                let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
                CameraCounters {
                    id: c.id.clone(),
                    delivered: n(&s.frames_delivered),
                    dropped: n(&s.frames_dropped),
                    reconnects: n(&s.reconnects),
                    decoded: n(&s.pictures_decoded),
                    decode_ns: n(&s.decode_ns),
                    skipped: n(&s.pictures_skipped),
                    stirs: n(&s.stirs),
                    caught_up: n(&s.pictures_caught_up),
                }
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
        self.stop_all();
    }

    /// The ordered stop behind [`Live::shutdown`] and the drop guard; a second call finds
    /// everything already stopped.
    fn stop_all(&mut self) {
        for c in &mut self.cameras {
            c.stop();
        }
        self.cameras.clear();
        self.stop.store(true, Ordering::Relaxed);
        // the keeper sends to the writer too: joined before it
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
        // only now: while the last events were stored it could still make room on a full disk
        if let Some(r) = self.retention.take() {
            r.stop();
        }
        if let Some(c) = self.clips.take().and_then(|c| Arc::try_unwrap(c).ok()) {
            c.shutdown();
        }
        if let Some(o) = outlet {
            o.shutdown(FLUSH_ON_STOP);
        }
    }
}

/// A `Live` dropped without [`Live::shutdown`] (an error path, a panic in a caller) still stops
/// its threads and cameras in order and flushes what was captured, rather than leaving a worker
/// running with nobody to join it.
/// One camera's ingest counters since the start (`Live::camera_counters`).
#[derive(Clone, Debug, Default)]
pub struct CameraCounters {
    pub id: String,
    /// Frames handed to the analysis, and those replaced before it took them.
    pub delivered: u64,
    pub dropped: u64,
    pub reconnects: u64,
    /// Pictures decoded and the time spent on them (ns); pictures not decoded at all (quiet).
    pub decoded: u64,
    pub decode_ns: u64,
    pub skipped: u64,
    /// Stirs seen in skipped pictures' sizes, and skipped pictures decoded after all on them.
    pub stirs: u64,
    pub caught_up: u64,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// A flag a thread waits on, and the condvar that wakes it when set.
type StopFlag = (Mutex<bool>, Condvar);

/// How often the gate book's keeper looks for night entries due and the daily report.
const KEEPER_EVERY: Duration = Duration::from_secs(1);
/// How long stopping waits for the broker to acknowledge what is still in the outbox (the rest
/// goes out at the next start).
const FLUSH_ON_STOP: Duration = Duration::from_secs(5);
/// Encoded ring beyond the pre-roll: room for the keyframe before the clip's start.
const RING_SLACK: Duration = Duration::from_secs(3);

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

/// An event on its way to the writer, with the picture it was raised on (alerts, and crossings
/// of gate lines: the writer draws the snapshot or cuts the gate log's picture from it, off the
/// detector's thread).
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
