//! The event writer: every event into the store and out (MQTT, webhook, the local output); for
//! each alert a snapshot, a clip from the camera's encoded ring and an incident for reviewers;
//! each crossing of a gate line into the gate log.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::camera::*;
use super::{Raised, village};
use crate::events::{Event, EventKind, Severity};
use crate::gate::GateBook;
use crate::geometry::BBox;
use crate::ingest::camera::Health;
use crate::ingest::ring::EncodedRing;
use crate::sinks::{ClipOutcome, ClipRecorder, Outlet};
use crate::store::Store;

/// The event writer: every event into the store and out (MQTT, webhook, the local output); for
/// each alert a clip from the camera's encoded ring and an incident for reviewers. Returns the
/// outlet for its shutdown.
pub(super) struct EventWriter {
    pub events: Receiver<Raised>,
    pub outlet: Outlet,
    pub clips: Arc<ClipRecorder>,
    /// Each camera's encoded ring, where its clips come from.
    pub rings: HashMap<String, Arc<EncodedRing>>,
    pub clips_dir: std::path::PathBuf,
    pub tz: chrono_tz::Tz,
    /// The web UI's live feeds (after each event is stored).
    pub feed: tokio::sync::broadcast::Sender<Event>,
    /// Events waiting in the queue (for /metrics).
    pub waiting: Arc<std::sync::atomic::AtomicU64>,
    pub status: StatusRefresh,
    /// The gate log: each crossing of a gate line goes in with the person's picture.
    pub gatebook: Option<Arc<GateBook>>,
}

impl EventWriter {
    /// Until every sender is gone; returns the outlet for its shutdown.
    pub(super) fn run(self) -> Outlet {
        let EventWriter {
            events: rx,
            mut outlet,
            clips,
            rings,
            clips_dir,
            tz,
            feed,
            waiting,
            mut status,
            gatebook,
        } = self;
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
}

/// The cameras' retained MQTT status with their delivered frame rate: the status published at
/// `camera_online` cannot know it yet, so it is published again once the rate is measured (a
/// few seconds later) and then whenever it changed by half a frame per second or more, at most
/// every 30 s per camera (checked every 5 s, never per frame).
pub(super) struct StatusRefresh {
    pub(super) health: Arc<village::HealthBoard>,
    pub(super) figures: Arc<Mutex<HashMap<String, CameraFigures>>>,
    pub(super) cameras: Vec<String>,
    /// The rate last published per camera, and when.
    pub(super) published: HashMap<String, (f64, Instant)>,
    pub(super) last: Instant,
}

impl StatusRefresh {
    const EVERY: Duration = Duration::from_secs(5);
    const AT_MOST: Duration = Duration::from_secs(30);

    pub(super) fn check(&mut self, outlet: &Outlet) {
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
pub(super) fn write_event_snapshot(
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
    let label = e.kind.as_str();
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
pub(super) fn record_clip(store: &Store, clips_dir: &std::path::Path, o: ClipOutcome) {
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
