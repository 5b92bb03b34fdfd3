//! The running pipeline as the web UI sees it ([`crate::api::Village`]): camera health and
//! rates, line counts, stored events and their acknowledgements, the live feed, snapshots for
//! the editor, and new rules applied to the worker.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;

use super::apply::RulesChange;
use super::camera::CameraFigures;
use crate::api::{
    AckError, AckRecord, CameraPicture, CameraStatus, DestinationOutages, FeedItem, ForgetAppError,
    GuardApps, LineCount, QueueDepth, Village,
};
use crate::config::{CameraRole, Settings};
use crate::events::{CountsView, Event, Severity};
use crate::ingest::camera::{FrameSlot, Health};
use crate::rules::{CountingParams, LineSpec, Preview, Recent};
use crate::sinks::SinkHandle;
use crate::sinks::outlet::SinkOutages;
use crate::store::{Acked, Store};

/// How many events the live feed buffers for a slow browser before it tells it it lagged.
pub const FEED_CAPACITY: usize = 256;
/// How long the editor waits for the worker to take new rules (it looks between frames, at
/// least every 200 ms).
const APPLY_WAIT: Duration = Duration::from_secs(5);
/// A snapshot older than this is not "live": the camera stopped delivering.
const PICTURE_FRESH: Duration = Duration::from_secs(10);

/// How long a camera shows as noisy (`ronda_camera_noisy`, the admin and guard pages) after the
/// motion gate last judged its view so: rain does not stop between two pictures, but the gate's
/// judgement can (a picture that repeats the one before), and a scrape every 15 s must see it.
const NOISY_SHOWN: Duration = Duration::from_secs(10);

/// A camera's health and since when it holds (`None`: since the start).
type Since = (Health, Option<DateTime<Utc>>);

/// Each camera's health and since when (from the camera threads' health changes).
#[derive(Debug, Default)]
pub struct HealthBoard {
    map: Mutex<HashMap<String, Since>>,
}

impl HealthBoard {
    pub fn set(&self, camera: &str, health: Health, at: DateTime<Utc>) {
        let mut m = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let e = m
            .entry(camera.to_string())
            .or_insert((Health::Connecting, None));
        if e.0 != health || e.1.is_none() {
            *e = (health, Some(at));
        }
    }

    pub fn get(&self, camera: &str) -> Since {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(camera)
            .copied()
            .unwrap_or((Health::Connecting, None))
    }
}

/// The queues /metrics shows.
pub(crate) struct Queues {
    /// Events waiting for the writer.
    pub events: Arc<std::sync::atomic::AtomicU64>,
    /// Weak: the recorder is shut down (and so must be the last owner) when the pipeline stops.
    pub clips: std::sync::Weak<crate::sinks::ClipRecorder>,
    pub webhook: bool,
    /// The outbox cursor rows of the notification destinations that run.
    pub notify: Vec<String>,
    /// The up-link to the city (`[uplink]`), if it runs.
    pub uplink: Option<crate::sinks::UplinkStatus>,
}

/// One camera as the view knows it.
struct CameraEntry {
    id: String,
    name: String,
    gate: bool,
    /// `None` when the camera could not start (its URL names an unset variable).
    slot: Option<Arc<FrameSlot>>,
    /// The camera's recent tracks, for "preview this line" (`None` as `slot`).
    recent: Option<Arc<Mutex<Recent>>>,
}

/// What the pipeline shares with the HTTP side of each running camera.
pub(crate) struct CameraShare {
    pub slot: Arc<FrameSlot>,
    pub recent: Arc<Mutex<Recent>>,
}

/// The live pipeline's face to the HTTP API.
pub struct LiveVillage {
    cameras: Vec<CameraEntry>,
    health: Arc<HealthBoard>,
    figures: Arc<Mutex<HashMap<String, CameraFigures>>>,
    store: Arc<Store>,
    sink: Option<SinkHandle>,
    feed: broadcast::Sender<Event>,
    /// The settings as applied (lines and zones change with the editor).
    settings: Mutex<Settings>,
    rules: Mutex<SyncSender<RulesChange>>,
    tz: chrono_tz::Tz,
    queues: Queues,
    /// Acknowledgements, for the live feeds: the guard page's and the phones' alike.
    acks: broadcast::Sender<AckRecord>,
    /// The gate book's keeper: its clock and the next daily report.
    gate: crate::gate::SharedStatus,
    /// What the embedded broker refused, and its guard apps (none with an external broker).
    broker: Option<crate::sinks::broker::BrokerWatch>,
    /// The webhook's and the phone destinations' outages.
    outages: SinkOutages,
}

impl LiveVillage {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        settings: &Settings,
        shares: &HashMap<String, CameraShare>,
        health: Arc<HealthBoard>,
        figures: Arc<Mutex<HashMap<String, CameraFigures>>>,
        store: Arc<Store>,
        sink: Option<SinkHandle>,
        feed: broadcast::Sender<Event>,
        rules: SyncSender<RulesChange>,
        queues: Queues,
        gate: crate::gate::SharedStatus,
        broker: Option<crate::sinks::broker::BrokerWatch>,
        outages: SinkOutages,
    ) -> LiveVillage {
        LiveVillage {
            cameras: settings
                .cameras
                .iter()
                .map(|c| CameraEntry {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    gate: c.role == CameraRole::Gate,
                    slot: shares.get(&c.id).map(|s| s.slot.clone()),
                    recent: shares.get(&c.id).map(|s| s.recent.clone()),
                })
                .collect(),
            health,
            figures,
            store,
            sink,
            feed,
            settings: Mutex::new(settings.clone()),
            rules: Mutex::new(rules),
            tz: settings.site.timezone,
            queues,
            acks: broadcast::channel(FEED_CAPACITY).0,
            gate,
            broker,
            outages,
        }
    }

    fn settings(&self) -> Settings {
        self.settings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A press of Telegram's acknowledge button is an acknowledgement like the guard page's: stored
/// (the first stays), published on MQTT by the sink, and shown on every live feed.
impl crate::sinks::AckDesk for LiveVillage {
    fn acknowledge(&self, event_id: &str, user: &str) -> Result<AckRecord, AckError> {
        let rec = Village::acknowledge(self, event_id, user)?;
        let _ = self.acks.send(rec.clone());
        Ok(rec)
    }
}

fn ack_record(a: crate::store::Ack) -> AckRecord {
    AckRecord {
        event_id: a.event_id,
        user: a.user,
        at: a.at,
    }
}

impl Village for LiveVillage {
    fn cameras(&self) -> Vec<CameraStatus> {
        let figures = self
            .figures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        self.cameras
            .iter()
            .map(|c| {
                let (health, since) = self.health.get(&c.id);
                let f = figures.get(&c.id);
                let (delivered, dropped, reconnects, offline, decode_ms, waiting) =
                    c.slot.as_ref().map_or((0, 0, 0, 0, None, 0), |s| {
                        (
                            s.stats.frames_delivered.load(Ordering::Relaxed),
                            s.stats.frames_dropped.load(Ordering::Relaxed),
                            s.stats.reconnects.load(Ordering::Relaxed),
                            s.stats.offline.load(Ordering::Relaxed),
                            s.stats.decode_ms(),
                            u64::from(s.has_frame()),
                        )
                    });
                let (pictures_skipped, keyframes_only) = c.slot.as_ref().map_or((0, false), |s| {
                    (
                        s.stats.pictures_skipped.load(Ordering::Relaxed),
                        s.decoding_keyframes_only(),
                    )
                });
                CameraStatus {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    gate: c.gate,
                    health,
                    since,
                    // rates are meaningless for a camera that is not delivering
                    delivered_fps: if health == Health::Online {
                        f.map_or(0.0, |f| f.delivered_fps)
                    } else {
                        0.0
                    },
                    analysed_fps: if health == Health::Online {
                        f.map_or(0.0, |f| f.analysed_fps)
                    } else {
                        0.0
                    },
                    frames_delivered: delivered,
                    frames_analysed: f.map_or(0, |f| f.analysed),
                    frames_dropped: dropped,
                    reconnects,
                    offline,
                    inference_ms: f
                        .filter(|f| f.analysed > 0)
                        .map(|f| f.inference.as_secs_f64() * 1000.0 / f.analysed as f64),
                    decode_ms,
                    frames_waiting: waiting,
                    brightness: f.and_then(|f| f.brightness),
                    low_light: f.is_some_and(|f| f.low_light),
                    frames_still: f.map_or(0, |f| f.skipped_still),
                    light_changes: f.map_or(0, |f| f.light_changes),
                    too_dark: f.is_some_and(|f| f.too_dark),
                    behind: f.is_some_and(|f| f.behind),
                    // (a noisy view comes and goes picture by picture: shown for a while)
                    noisy: f
                        .is_some_and(|f| f.last_noisy.is_some_and(|t| t.elapsed() < NOISY_SHOWN)),
                    face_looks: f.map_or(0, |f| f.face_looks),
                    face_errors: f.map_or(0, |f| f.face_errors),
                    inference_errors: f.map_or(0, |f| f.inference_errors),
                    alerts_suppressed: f.map_or(0, |f| f.alerts_suppressed),
                    pictures_skipped,
                    keyframes_only,
                    whole_searches: f.map_or(0, |f| f.whole_looks),
                    region_searches: f.map_or(0, |f| f.region_looks),
                    regions_searched: f.map_or(0, |f| f.regions),
                }
            })
            .collect()
    }

    fn line_counts(&self) -> Vec<LineCount> {
        let settings = self.settings();
        let mut out = Vec::new();
        for c in &settings.cameras {
            for l in &c.lines {
                let (counts, since) = match self.store.counts(&c.id, &l.name) {
                    Ok(Some((counts, since))) => (counts, since),
                    Ok(None) => (Default::default(), Utc::now()),
                    Err(e) => {
                        tracing::warn!(camera = %c.id, line = %l.name, "counts not read: {e}");
                        continue;
                    }
                };
                out.push(LineCount {
                    camera: c.id.clone(),
                    line: l.name.clone(),
                    counts: CountsView::from(counts),
                    since,
                });
            }
        }
        out
    }

    fn recent_events(&self, limit: usize, min_severity: Severity) -> Vec<FeedItem> {
        match self.store.recent_events(limit, min_severity) {
            Ok(rows) => rows
                .into_iter()
                .map(|(event, ack)| FeedItem {
                    event,
                    ack: ack.map(ack_record),
                })
                .collect(),
            Err(e) => {
                tracing::warn!("recent events not read: {e}");
                Vec::new()
            }
        }
    }

    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.feed.subscribe()
    }

    fn acknowledge(&self, event_id: &str, user: &str) -> Result<AckRecord, AckError> {
        let at = Utc::now();
        let time = at
            .with_timezone(&self.tz)
            .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
            .to_string();
        match self.store.acknowledge(event_id, user, at, &time) {
            Ok(Acked::New(a)) => {
                // published on the sink's next round; the route logs who acknowledged
                if let Some(s) = &self.sink {
                    s.notify();
                }
                Ok(ack_record(a))
            }
            Ok(Acked::Earlier(a)) => Ok(ack_record(a)),
            Ok(Acked::UnknownEvent) => Err(AckError::UnknownEvent),
            Err(e) => Err(AckError::Failed(e.to_string())),
        }
    }

    fn outbox_backlog(&self) -> u64 {
        self.store.backlog().unwrap_or(0)
    }

    fn mqtt_connected(&self) -> bool {
        self.sink.as_ref().is_some_and(|s| s.connected())
    }

    fn mqtt_outages(&self) -> u64 {
        self.sink.as_ref().map_or(0, |s| s.outages())
    }

    fn mqtt_quarantined(&self) -> u64 {
        self.store.quarantine_count().unwrap_or(0)
    }

    fn uplink(&self) -> Option<crate::api::UplinkFigures> {
        self.queues
            .uplink
            .as_ref()
            .map(|u| crate::api::UplinkFigures {
                pending: u.pending().unwrap_or(0),
                outages: u.outages(),
                connected: u.connected(),
            })
    }

    fn webhook_outages(&self) -> Option<u64> {
        self.outages.webhook.as_ref().map(|o| o.total())
    }

    fn notify_outages(&self) -> Vec<DestinationOutages> {
        self.outages
            .notify
            .iter()
            .map(|(destination, service, o)| DestinationOutages {
                destination: destination.clone(),
                service,
                outages: o.total(),
            })
            .collect()
    }

    fn mqtt_refusals(&self) -> Vec<(&'static str, u64)> {
        self.broker
            .as_ref()
            .map(|b| b.refusals.by_cause())
            .unwrap_or_default()
    }

    fn guard_apps(&self) -> Option<GuardApps> {
        self.broker.as_ref()?.apps.as_ref().map(|book| GuardApps {
            apps: book.apps(),
            keep: crate::sinks::broker::KEEP_SESSIONS,
        })
    }

    fn forget_guard_app(&self, client_id: &str) -> Result<(), ForgetAppError> {
        match &self.broker {
            Some(b) => b.forget_app(client_id),
            None => Err(ForgetAppError::NotKept),
        }
    }

    fn queues(&self) -> Vec<QueueDepth> {
        let mut out = vec![QueueDepth {
            queue: "events",
            depth: self.queues.events.load(Ordering::Relaxed),
            capacity: Some(super::EVENT_QUEUE as u64),
        }];
        if let Some(c) = self.queues.clips.upgrade() {
            out.push(QueueDepth {
                queue: "clips",
                depth: c.pending() as u64,
                capacity: Some(crate::sinks::clips::MAX_PENDING as u64),
            });
        }
        out.push(QueueDepth {
            queue: "acks",
            depth: self.store.ack_backlog().unwrap_or(0),
            capacity: None,
        });
        if self.queues.webhook {
            out.push(QueueDepth {
                queue: "webhook",
                depth: self.store.webhook_backlog().unwrap_or(0),
                capacity: None,
            });
        }
        if !self.queues.notify.is_empty() {
            out.push(QueueDepth {
                queue: "notify",
                depth: self
                    .queues
                    .notify
                    .iter()
                    .map(|row| self.store.sink_backlog(row).unwrap_or(0))
                    .sum(),
                capacity: None,
            });
        }
        out
    }

    fn store(&self) -> Option<Arc<Store>> {
        Some(self.store.clone())
    }

    fn ack_feed(&self) -> Option<broadcast::Sender<AckRecord>> {
        Some(self.acks.clone())
    }

    fn gate_status(&self) -> Option<crate::gate::KeeperStatus> {
        Some(
            self.gate
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }

    fn snapshot(&self, camera: &str) -> Option<CameraPicture> {
        let slot = self
            .cameras
            .iter()
            .find(|c| c.id == camera)?
            .slot
            .as_ref()?;
        let (frame, at) = slot.last_frame()?;
        if SystemTime::now().duration_since(at).unwrap_or_default() > PICTURE_FRESH {
            return None;
        }
        let jpeg = crate::sinks::snapshot::encode_jpeg(&frame.image)
            .map_err(|e| tracing::warn!(camera, "snapshot not encoded: {e}"))
            .ok()?;
        Some(CameraPicture {
            jpeg,
            width: frame.width(),
            height: frame.height(),
            at: at.into(),
        })
    }

    fn preview_lines(
        &self,
        camera: &str,
        lines: &[LineSpec],
        params: &CountingParams,
    ) -> Option<Preview> {
        let recent = self
            .cameras
            .iter()
            .find(|c| c.id == camera)?
            .recent
            .as_ref()?;
        // the replay runs under the camera's lock: a few milliseconds for minutes of tracks,
        // during which that camera's next frame waits (the editor asks seldom)
        let r = recent.lock().unwrap_or_else(PoisonError::into_inner);
        Some(r.preview(lines, params))
    }

    fn apply_settings(&self, settings: &Settings) -> Result<Vec<String>, String> {
        let (reply, answer) = sync_channel(1);
        let change = RulesChange {
            settings: settings.clone(),
            reply,
        };
        match self
            .rules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .try_send(change)
        {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(
                    "the pipeline is still applying an earlier change: save again in a few seconds"
                        .into(),
                );
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(
                    "the pipeline is stopping: the file is saved and applies at the next start"
                        .into(),
                );
            }
        }
        let changes = answer.recv_timeout(APPLY_WAIT).map_err(|_| {
            format!(
                "the pipeline did not take the change within {} s (overloaded?); it applies when it does, or at the next start",
                APPLY_WAIT.as_secs()
            )
        })?;
        *self.settings.lock().unwrap_or_else(PoisonError::into_inner) = settings.clone();
        Ok(changes)
    }
}
