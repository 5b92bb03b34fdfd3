//! Where the live pipeline's events go, in this order: the store's outbox (so nothing is lost
//! whatever happens next), then the MQTT sink is woken to publish it, then one JSON line on the
//! local output (`ronda run`'s stdout). Line counts travel with their crossing in one store
//! transaction and are re-published as the line's retained counts topic.
//!
//! When the store cannot write (disk full, file removed), [`Outlet::record`] keeps retrying the
//! same event once a second, saying so once per outage: the event channel fills, the inference
//! worker waits, cameras drop frames (counted), and no event already raised is lost.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Broker, MqttOptions, MqttSink, SinkError, SinkHandle};
use crate::config::Settings;
use crate::events::{Event, EventKind};
use crate::rules::Counts;
use crate::store::{Store, StoreError};

/// The store, the broker and the sink of a running pipeline.
pub struct Outlet {
    store: Arc<Store>,
    sink: Option<MqttSink>,
    broker: Option<Broker>,
    out: Box<dyn Write + Send>,
    tz: chrono_tz::Tz,
    /// Since when each line's counts run (camera, line).
    since: HashMap<(String, String), DateTime<Utc>>,
}

/// Why the outlet cannot start.
#[derive(Debug, thiserror::Error)]
pub enum OutletError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sink(#[from] SinkError),
}

impl Outlet {
    /// Embedded broker (when `[mqtt] embedded`), store, MQTT sink.
    pub fn start(settings: &Settings, out: Box<dyn Write + Send>) -> Result<Outlet, OutletError> {
        let broker = if settings.mqtt.embedded {
            let b = Broker::start(&settings.mqtt.listen)?;
            tracing::info!(listen = %b.addr(), "embedded MQTT broker running");
            Some(b)
        } else {
            None
        };
        let store = Arc::new(Store::open(&settings.store.path)?);
        let opts = MqttOptions::from_settings(settings)?;
        tracing::info!(broker = %opts.broker(), prefix = %opts.topic_prefix, "publishing events over MQTT");
        let sink = MqttSink::start(opts, store.clone())?;
        Ok(Outlet {
            store,
            sink: Some(sink),
            broker,
            out,
            tz: settings.site.timezone,
            since: HashMap::new(),
        })
    }

    pub fn store(&self) -> Arc<Store> {
        self.store.clone()
    }

    pub fn sink(&self) -> Option<SinkHandle> {
        self.sink.as_ref().map(|s| s.handle())
    }

    /// The counts a line starts with (stored, or zero after a due daily reset), published as
    /// its retained counts.
    pub fn line_start(
        &mut self,
        camera: &str,
        line: &str,
        reset_at: chrono::NaiveTime,
    ) -> Result<Counts, StoreError> {
        let (c, since) = self
            .store
            .current_counts(camera, line, Utc::now(), reset_at, self.tz)?;
        self.since
            .insert((camera.to_string(), line.to_string()), since);
        self.publish_counts(camera, line, c, since);
        Ok(c)
    }

    /// A line's counts went back to zero at `at` (the daily reset).
    pub fn line_reset(&mut self, camera: &str, line: &str, at: DateTime<Utc>) {
        self.retry("reset the line counts", || {
            self.store.reset_counts(camera, line, at)
        });
        self.since
            .insert((camera.to_string(), line.to_string()), at);
        self.publish_counts(camera, line, Counts::default(), at);
    }

    /// Store, publish and print one event. Waits (retrying) while the store cannot write.
    pub fn record(&mut self, e: &Event) {
        let crossing = match (e.kind, &e.line, e.counts) {
            (EventKind::LineCrossing, Some(line), Some(c)) => Some((
                line.clone(),
                Counts {
                    in_: c.in_,
                    out: c.out,
                },
            )),
            _ => None,
        };
        match &crossing {
            Some((line, counts)) => {
                let key = (e.camera.clone(), line.clone());
                let since = *self.since.entry(key).or_insert_with(Utc::now);
                self.retry("store an event", || {
                    self.store
                        .append_crossing(e, &e.camera, line, *counts, since)
                        .map(|_| ())
                });
                self.publish_counts(&e.camera, line, *counts, since);
            }
            None => self.retry("store an event", || self.store.append(e).map(|_| ())),
        }
        if let Some(s) = &self.sink {
            s.notify();
        }
        match serde_json::to_string(e) {
            Ok(line) => {
                let _ = writeln!(self.out, "{line}");
                let _ = self.out.flush();
            }
            Err(err) => tracing::error!("event {} cannot be printed: {err}", e.id),
        }
    }

    /// A camera's retained status: `{"state", "since", "fps"}`.
    pub fn camera_status(&self, camera: &str, state: &str, since: DateTime<Utc>, fps: Option<f64>) {
        let json = serde_json::json!({
            "state": state,
            "since": self.local(since),
            "fps": fps.map(|f| (f * 100.0).round() / 100.0),
        });
        if let Some(s) = &self.sink
            && let Err(e) = s.publish_status(camera, &json.to_string())
        {
            tracing::error!(camera, "camera status not stored: {e}");
        }
    }

    fn publish_counts(&self, camera: &str, line: &str, c: Counts, since: DateTime<Utc>) {
        let json = serde_json::json!({
            "in": c.in_,
            "out": c.out,
            "occupancy": c.occupancy(),
            "since": self.local(since),
        });
        if let Some(s) = &self.sink
            && let Err(e) = s.publish_counts(camera, line, &json.to_string())
        {
            tracing::error!(camera, line, "line counts not stored: {e}");
        }
    }

    fn local(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz)
            .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
            .to_string()
    }

    /// Run `f` until it succeeds, once a second; one error line per outage, one when it is over.
    fn retry(&self, what: &str, mut f: impl FnMut() -> Result<(), StoreError>) {
        let mut failing = false;
        loop {
            match f() {
                Ok(()) => {
                    if failing {
                        tracing::warn!(store = %self.store.path().display(), "the store writes again");
                    }
                    return;
                }
                Err(e) => {
                    if !failing {
                        tracing::error!(
                            store = %self.store.path().display(),
                            "cannot {what}: {e}; events wait in memory and are stored once it works again"
                        );
                        failing = true;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }

    /// Flush the outbox to the broker for up to `flush`, then stop the sink (availability goes
    /// `offline`). Returns how many events are still unsent (they go out at the next start).
    pub fn shutdown(mut self, flush: Duration) -> u64 {
        let _ = self.out.flush();
        let left = match self.sink.take() {
            Some(s) => s.shutdown(flush).unwrap_or(0),
            None => 0,
        };
        if left > 0 {
            tracing::warn!(
                unsent = left,
                "events not yet acknowledged by the broker; they are sent at the next start"
            );
        }
        drop(self.broker.take());
        left
    }
}
