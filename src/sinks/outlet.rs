//! Where the live pipeline's events go, in this order: the store's outbox (so nothing is lost
//! whatever happens next), then the MQTT sink, the webhook, the phone destinations
//! (`[[notify]]`) and the up-link to the city (`[uplink]`) are woken to deliver it, each from
//! its own place in the outbox, then one JSON line on the local output (`ronda run`'s stdout).
//! Line counts travel with their crossing in one store transaction and are re-published as the
//! line's retained counts topic.
//!
//! When the store cannot write (disk full, file removed), [`Outlet::record`] keeps retrying the
//! same event once a second, saying so once per outage: the event channel fills, the inference
//! worker waits, cameras drop frames (counted), and no event already raised is lost.

use std::collections::HashSet;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::signal::Outages;
use super::{
    AckDesk, Broker, BrokerOptions, BrokerTls, BrokerUser, MqttOptions, MqttSink, NotifySinks,
    SinkError, SinkHandle, UplinkOptions, UplinkSink, UplinkStatus, WebhookOptions, WebhookSink,
};
use crate::config::{MqttRole, Settings};
use crate::events::{Event, EventKind};
use crate::rules::Counts;
use crate::sinks::mqtt::RESEND_AFTER_CRASH;
use crate::store::{Store, StoreError};
use crate::topic;

/// The store, the broker and the sink of a running pipeline.
pub struct Outlet {
    store: Arc<Store>,
    sink: Option<MqttSink>,
    webhook: Option<WebhookSink>,
    /// The guards' phones: one sink per enabled `[[notify]]` destination.
    notify: Option<NotifySinks>,
    /// The city's broker (`[uplink]`), with its own place in the outbox.
    uplink: Option<UplinkSink>,
    broker: Option<Broker>,
    out: Box<dyn Write + Send>,
    tz: chrono_tz::Tz,
    /// Set when the pipeline stops: the store's retries then end after [`STOP_GRACE`].
    stopping: Option<Arc<AtomicBool>>,
    /// Since when the store has failed while stopping: the grace is one for the whole stop, not
    /// one per event still queued.
    failing_at_stop: std::cell::Cell<Option<std::time::Instant>>,
}

/// How long a stopping pipeline keeps retrying a store that cannot write (a full disk that
/// retention cannot make room on) before it gives the event to the log instead: a stop must
/// end (a service manager kills what does not, and the events in memory with it).
pub const STOP_GRACE: Duration = Duration::from_secs(15);

/// The outage counts of the delivery sinks besides MQTT's (whose handle has its own), for
/// /metrics: handles on the counts the sinks' threads keep.
pub(crate) struct SinkOutages {
    /// `None` without a webhook.
    pub webhook: Option<Outages>,
    /// Each running phone destination in config order: its name, its service, its count.
    pub notify: Vec<(String, &'static str, Outages)>,
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
        for w in settings.warnings() {
            tracing::warn!("{w}");
        }
        let m = &settings.mqtt;
        let store = Arc::new(Store::open(&settings.store.path)?);
        prune_retained(&store, settings)?;
        let broker = if m.embedded {
            resend_after_crash(&store)?;
            let tls = match (&m.tls_cert, &m.tls_key) {
                (Some(cert), Some(key)) => Some(BrokerTls {
                    cert: cert.clone(),
                    key: key.clone(),
                }),
                _ => None,
            };
            let started = broker_users(settings, |var| std::env::var(var).ok())
                .map_err(OutletError::from)
                .and_then(|users| {
                    Ok(Broker::start(BrokerOptions {
                        listen: m.listen.clone(),
                        prefix: m.topic_prefix.clone(),
                        users,
                        tls,
                        reader_grace: crate::sinks::mqtt::READER_GRACE,
                        store: Some(store.clone()),
                    })?)
                });
            let b = match started {
                Ok(b) => b,
                Err(e) => {
                    // this run's broker took nothing: not a crash to the next start
                    let _ = store.end_broker_run();
                    return Err(e);
                }
            };
            tracing::info!(listen = %b.addr(), "embedded MQTT broker running");
            Some(b)
        } else {
            None
        };
        let mut opts = MqttOptions::from_settings(settings)?;
        if let Some(b) = &broker {
            // behind the broker's front, with the login of this start (see `Broker`)
            b.connect_own(&mut opts);
        }
        tracing::info!(broker = %opts.broker(), prefix = %opts.topic_prefix, "publishing events over MQTT");
        let sink = MqttSink::start(opts, store.clone())?;
        let webhook = match WebhookOptions::from_settings(settings)? {
            Some(opts) => Some(WebhookSink::start(opts, store.clone())?),
            None => {
                // re-enabling it later starts at the end of the outbox: no flood of old alerts
                store.forget_webhook_cursor()?;
                None
            }
        };
        let notify = NotifySinks::start(settings, store.clone())?;
        let uplink = match UplinkOptions::from_settings(settings)? {
            Some(opts) => {
                tracing::info!(
                    broker = %opts.broker(),
                    prefix = %opts.link.topic_prefix,
                    "up-link to the city's broker"
                );
                Some(UplinkSink::start(opts, store.clone())?)
            }
            None => {
                // a removed up-link must not keep events from retention; added again, it
                // starts at the end of the outbox
                store.forget_sink_cursor(super::uplink::CURSOR)?;
                None
            }
        };
        Ok(Outlet {
            store,
            sink: Some(sink),
            webhook,
            notify: Some(notify),
            uplink,
            broker,
            out,
            tz: settings.site.timezone,
            stopping: None,
            failing_at_stop: std::cell::Cell::new(None),
        })
    }

    pub fn store(&self) -> Arc<Store> {
        self.store.clone()
    }

    /// The pipeline's stop flag: once set, a store that cannot write is retried for
    /// [`STOP_GRACE`] at most (see [`Outlet::record`]).
    pub fn stop_with(&mut self, stopping: Arc<AtomicBool>) {
        self.stopping = Some(stopping);
    }

    /// What the embedded broker's front has refused and its guard apps (none with an external
    /// broker).
    pub fn broker_watch(&self) -> Option<crate::sinks::broker::BrokerWatch> {
        self.broker.as_ref().map(|b| b.watch())
    }

    /// The up-link's figures for `/metrics` (none without `[uplink]`).
    pub fn uplink_status(&self) -> Option<UplinkStatus> {
        self.uplink.as_ref().map(UplinkSink::status)
    }

    pub fn sink(&self) -> Option<SinkHandle> {
        self.sink.as_ref().map(|s| s.handle())
    }

    /// Take acknowledgements from the phones (Telegram's buttons) into `desk`: stored and
    /// published as the guard page's are.
    pub fn listen_for_acks(&mut self, desk: Arc<dyn AckDesk>) {
        if let Some(n) = &mut self.notify {
            n.listen_for_acks(desk);
        }
    }

    /// The outage counts of the webhook and the phone destinations (for /metrics).
    pub(crate) fn outages(&self) -> SinkOutages {
        SinkOutages {
            webhook: self.webhook.as_ref().map(WebhookSink::outage_count),
            notify: self.notify.as_ref().map_or_else(Vec::new, |n| {
                n.sinks()
                    .iter()
                    .map(|s| (s.name().to_string(), s.service(), s.outage_count()))
                    .collect()
            }),
        }
    }

    /// The phone destinations' outbox rows (for the queue figures).
    pub fn notify_rows(&self) -> Vec<String> {
        self.notify.as_ref().map_or_else(Vec::new, |n| {
            n.sinks()
                .iter()
                .map(|s| super::notify::Destination::cursor_row(s.name()))
                .collect()
        })
    }

    /// The counts a line starts with (stored, or zero after a due daily reset), published as
    /// its retained counts.
    pub fn line_start(
        &mut self,
        camera: &str,
        line: &str,
        reset_at: chrono::NaiveTime,
    ) -> Result<(Counts, DateTime<Utc>), StoreError> {
        let (c, since) = self
            .store
            .current_counts(camera, line, Utc::now(), reset_at, self.tz)?;
        self.publish_counts(camera, line, c, since);
        Ok((c, since))
    }

    /// Store, publish and print one event. Waits (retrying) while the store cannot write; while
    /// the pipeline stops, for [`STOP_GRACE`] at most, and then the event goes to the log
    /// whole (error level, its JSON), so that it is not lost with the process.
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
        let stored = match &crossing {
            Some((line, counts)) => {
                // the store is the one record of since when a line counts (the worker's daily
                // reset writes it there)
                let since = self
                    .store
                    .counts(&e.camera, line)
                    .ok()
                    .flatten()
                    .map_or_else(Utc::now, |(_, s)| s);
                let stored = self.retry("store an event", || {
                    self.store
                        .append_crossing(e, &e.camera, line, *counts, since)
                        .map(|_| ())
                });
                if stored {
                    self.publish_counts(&e.camera, line, *counts, since);
                }
                stored
            }
            None => self.retry("store an event", || self.store.append(e).map(|_| ())),
        };
        if !stored {
            tracing::error!(
                event = %serde_json::to_string(e).unwrap_or_default(),
                "event not stored: the store could not write for {} s while ronda stopped \
                 (is the disk full?); here it is whole, so that it is not lost",
                STOP_GRACE.as_secs()
            );
        }
        if let Some(s) = &self.sink {
            s.notify();
        }
        if let Some(w) = &self.webhook {
            w.notify();
        }
        if let Some(n) = &self.notify {
            n.wake();
        }
        if let Some(u) = &self.uplink {
            u.notify();
        }
        match e.kind {
            EventKind::CameraOnline => self.camera_status(&e.camera, "online", Utc::now(), None),
            EventKind::CameraOffline => self.camera_status(&e.camera, "offline", Utc::now(), None),
            _ => {}
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
        let json = counts_json(c, since, self.tz);
        if let Some(s) = &self.sink
            && let Err(e) = s.publish_counts(camera, line, &json)
        {
            tracing::error!(camera, line, "line counts not stored: {e}");
        }
    }

    fn local(&self, t: DateTime<Utc>) -> String {
        local_time(t, self.tz)
    }

    /// Run `f` until it succeeds, once a second; one error line per outage, one when it is over.
    /// False when it gave up: the pipeline is stopping and it failed for [`STOP_GRACE`] since.
    fn retry(&self, what: &str, mut f: impl FnMut() -> Result<(), StoreError>) -> bool {
        let mut failing = false;
        loop {
            match f() {
                Ok(()) => {
                    if failing {
                        tracing::warn!(store = %self.store.path().display(), "the store writes again");
                    }
                    return true;
                }
                Err(e) => {
                    if !failing {
                        tracing::error!(
                            store = %self.store.path().display(),
                            "cannot {what}: {e}; events wait in memory and are stored once it works again"
                        );
                        failing = true;
                    }
                    if self
                        .stopping
                        .as_ref()
                        .is_some_and(|s| s.load(Ordering::Relaxed))
                    {
                        let since = self.failing_at_stop.get().unwrap_or_else(|| {
                            let now = std::time::Instant::now();
                            self.failing_at_stop.set(Some(now));
                            now
                        });
                        if since.elapsed() >= STOP_GRACE {
                            return false;
                        }
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
        // every sink flushes at the same time: stopping takes `flush`, not a multiple of it
        let (mqtt, webhook, notify) = (self.sink.take(), self.webhook.take(), self.notify.take());
        let uplink = self.uplink.take();
        let (left, hook_left, phones_left, city_left) = std::thread::scope(|s| {
            let h = s.spawn(move || webhook.map_or(0, |w| w.shutdown(flush).unwrap_or(0)));
            let n = s.spawn(move || notify.map_or_else(Vec::new, |n| n.shutdown(flush)));
            let u = s.spawn(move || uplink.map_or(0, |u| u.shutdown(flush).unwrap_or(0)));
            let left = mqtt.map_or(0, |m| m.shutdown(flush).unwrap_or(0));
            (
                left,
                h.join().unwrap_or(0),
                n.join().unwrap_or_default(),
                u.join().unwrap_or(0),
            )
        });
        if city_left > 0 {
            tracing::warn!(
                unsent = city_left,
                "events not yet acknowledged by the city's broker; they go up at the next start"
            );
        }
        for (name, waiting) in phones_left {
            tracing::warn!(
                destination = %name,
                unsent = waiting,
                "alerts not yet taken by notify `{name}`; they are sent at the next start"
            );
        }
        if hook_left > 0 {
            tracing::warn!(
                unsent = hook_left,
                "alerts not yet accepted by the webhook; they are sent at the next start"
            );
        }
        if left > 0 {
            tracing::warn!(
                unsent = left,
                "events not yet acknowledged by the broker; they are sent at the next start"
            );
        }
        if let Some(broker) = self.broker.take() {
            drop(broker);
            // only now is nothing the broker acknowledged in doubt (`Store::begin_broker_run`)
            if let Err(e) = self.store.end_broker_run() {
                tracing::warn!("{e}; the next start sends the last minute's events again");
            }
        }
        left
    }
}

/// The embedded broker starts: if its run before ended in a crash, what that broker may have
/// taken down with it goes out again (`Store::begin_broker_run`), held for the guard posts
/// like any backlog after a start.
fn resend_after_crash(store: &Store) -> Result<(), StoreError> {
    let crashed = store.begin_broker_run(Utc::now(), RESEND_AFTER_CRASH)?;
    let Some(started) = crashed.run_started else {
        return Ok(());
    };
    if crashed.events + crashed.acks == 0 {
        tracing::warn!(
            run_started = %started.to_rfc3339(),
            "ronda did not stop cleanly last time; the embedded broker had taken nothing in its \
             last {} s, so nothing is sent again",
            RESEND_AFTER_CRASH.as_secs()
        );
    } else {
        tracing::warn!(
            run_started = %started.to_rfc3339(),
            "ronda did not stop cleanly last time: {} event(s) and {} acknowledgement(s) the \
             embedded broker took in its last {} s are sent again (a guard post may see them \
             twice; they keep their ids)",
            crashed.events,
            crashed.acks,
            RESEND_AFTER_CRASH.as_secs()
        );
    }
    Ok(())
}

/// Who the embedded broker takes: `[mqtt] username` (a reader) and `[[mqtt.users]]`, each
/// with the password from the variable its `password_env` names (`env` reads one). An unset
/// or empty variable stops the start, naming the user and the variable.
fn broker_users(
    settings: &Settings,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<BrokerUser>, SinkError> {
    let m = &settings.mqtt;
    let mut users = Vec::new();
    if let (Some(name), Some(var)) = (&m.username, &m.password_env) {
        users.push(BrokerUser {
            name: name.clone(),
            password: env(var)
                .filter(|p| !p.is_empty())
                .ok_or_else(|| SinkError::PasswordEnv { var: var.clone() })?,
            role: MqttRole::Reader,
        });
    }
    for u in &m.users {
        users.push(BrokerUser {
            name: u.name.clone(),
            password: env(&u.password_env)
                .filter(|p| !p.is_empty())
                .ok_or_else(|| SinkError::UserPasswordEnv {
                    name: u.name.clone(),
                    var: u.password_env.clone(),
                })?,
            role: u.role,
        });
    }
    Ok(users)
}

/// Retained topics of cameras and lines no longer in the configuration (removed or renamed
/// since) are cleared on the broker at the next connect and then forgotten, so subscribers see
/// no ghosts. One whose topic the broker would refuse (left by an earlier ronda that took any
/// name) is quarantined instead: it was never delivered, and sent again it would block the
/// outbox at every connect.
fn prune_retained(store: &Store, settings: &Settings) -> Result<(), StoreError> {
    let keep: HashSet<String> = settings
        .cameras
        .iter()
        .flat_map(|c| {
            std::iter::once(topic::camera_status(&c.id))
                .chain(c.lines.iter().map(|l| topic::line_counts(&c.id, &l.name)))
        })
        .collect();
    let mut cleared = Vec::new();
    for (suffix, payload) in store.retained()? {
        if keep.contains(&suffix) || payload.is_empty() {
            continue;
        }
        let full = topic::full(&settings.mqtt.topic_prefix, &suffix);
        match topic::refusal(&full, payload.len(), super::mqtt::MAX_PACKET) {
            Some(why) => {
                if store.quarantine_retained(&suffix, &full, &payload, &why.to_string())? {
                    tracing::warn!(
                        "MQTT: the retained message on {} is set aside, not sent: {why}; see the \
                         quarantine table of the store",
                        topic::shown(&full)
                    );
                }
            }
            None => {
                store.clear_retained(&suffix)?;
                cleared.push(topic::shown(&suffix));
            }
        }
    }
    if !cleared.is_empty() {
        tracing::info!(
            count = cleared.len(),
            "clearing the retained MQTT topics of cameras and lines no longer configured: {}{}",
            cleared[..cleared.len().min(5)].join(", "),
            if cleared.len() > 5 { ", ..." } else { "" }
        );
    }
    Ok(())
}

/// The retained payload of a line's counts: `{"in", "out", "occupancy", "since"}`.
pub fn counts_json(c: Counts, since: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    serde_json::json!({
        "in": c.in_,
        "out": c.out,
        "occupancy": c.occupancy(),
        "since": local_time(since, tz),
    })
    .to_string()
}

/// Site-local time with its offset, milliseconds (the events' format).
fn local_time(t: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    t.with_timezone(&tz)
        .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_users_take_their_passwords_from_the_environment() {
        let s = Settings::parse(
            "[site]\nid = \"rw9\"\n[mqtt]\nusername = \"ronda\"\npassword_env = \"PW_RONDA\"\n\
             [[mqtt.users]]\nname = \"pos1\"\nrole = \"guard\"\npassword_env = \"PW_POS1\"\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        let users = broker_users(&s, |v| Some(format!("secret-of-{v}"))).unwrap();
        let got: Vec<(&str, &str, MqttRole)> = users
            .iter()
            .map(|u| (u.name.as_str(), u.password.as_str(), u.role))
            .collect();
        assert_eq!(
            got,
            [
                ("ronda", "secret-of-PW_RONDA", MqttRole::Reader),
                ("pos1", "secret-of-PW_POS1", MqttRole::Guard),
            ]
        );
        let e = broker_users(&s, |v| (v == "PW_RONDA").then(|| "x".to_string()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`pos1`") && e.contains("export PW_POS1="), "{e}");
        let e = broker_users(&s, |_| Some(String::new()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("PW_RONDA"), "{e}");
    }
}
