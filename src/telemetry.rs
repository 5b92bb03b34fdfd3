//! Logging: tracing to stderr, level from `RONDA_LOG` (default `info`). Nothing per frame above debug.
//! And the named events: each condition that is logged and counted, in one function that does both.

use std::fmt::Display;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing_subscriber::EnvFilter;

/// Install the stderr subscriber once; later calls are no-ops (tests may call it repeatedly).
pub fn init() {
    // Whatever RONDA_LOG says, two libraries are set apart: rumqttd logs every normal client
    // disconnect as an ERROR ("no-connection id N is already gone"), which would teach guards to
    // ignore errors; ureq's debug and trace lines name request URLs, which may hold a webhook
    // token or a Telegram bot token (the sinks say what failed themselves, without secrets), and
    // so do those of ureq_proto, the HTTP protocol under it. A directive
    // sets a target's level rather than capping it: `ureq=debug` printed those lines at the
    // default `info`.
    let base = std::env::var("RONDA_LOG").unwrap_or_else(|_| "info".into());
    let filter = EnvFilter::try_new(format!("{base},rumqttd=off,ureq=warn,ureq_proto=warn"))
        .unwrap_or_else(|_| EnvFilter::new("info,rumqttd=off,ureq=warn,ureq_proto=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // colour codes only for a person at a terminal: a log file or a pipe (journald, a
        // test's captured stderr) gets plain text that grep and editors read
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

// Named events. A condition that is both logged and counted has one function here that does
// both, so the log line and its counter in /metrics cannot drift apart (a condition logged in
// one place and counted in another was how `face_errors` and `alerts_suppressed` stayed out of
// /metrics). The callers own the counters (a camera's `FrameSlot` stats, the worker's figures);
// this module owns what is said, at which level and how often. Each function names its metric.

/// `ronda_camera_reconnects_total`: a camera's pipeline ended with `reason`; the supervisor
/// starts it again after its backoff. A reason is logged when it differs from the last one:
/// a camera that fails the same way every minute says so once, and is counted every time.
pub fn camera_failed(
    cam: &str,
    url: &str,
    reason: &str,
    last_reason: &mut String,
    reconnects: &AtomicU64,
) {
    reconnects.fetch_add(1, Ordering::Relaxed);
    if reason != last_reason {
        tracing::warn!(camera = %cam, url = %url, "camera: {reason}");
        *last_reason = reason.to_string();
    }
}

/// A camera delivers frames (again); `ronda_camera_online` shows it as 1.
pub fn camera_online(cam: &str) {
    tracing::info!(camera = %cam, "camera online");
}

/// `ronda_camera_offline_total` (and `ronda_camera_online` 0): no frames for the camera's
/// offline time.
pub fn camera_offline(cam: &str, reason: &str, offline: &AtomicU64) {
    offline.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(camera = %cam, "camera offline: {reason}");
}

/// `ronda_camera_inference_errors_total`: person detection failed on a frame (the frame is
/// skipped). The first of a camera is logged as an error; the rest, which would come once a
/// frame, are counted and logged at debug.
pub fn inference_failed(cam: &str, err: &dyn Display, errors: &mut u64) {
    if *errors == 0 {
        tracing::error!(camera = %cam, "inference failed: {err} (further failures are counted, logged at debug)");
    } else {
        tracing::debug!(camera = %cam, "inference failed: {err}");
    }
    *errors += 1;
}

/// `ronda_camera_face_errors_total`: a face search failed. The first of a camera is logged
/// as a warning, the rest counted and logged at debug.
pub fn face_search_failed(cam: &str, err: &dyn Display, errors: &mut u64) {
    if *errors == 0 {
        tracing::warn!(camera = %cam, "face search failed: {err} (further failures are counted, logged at debug)");
    } else {
        tracing::debug!(camera = %cam, "face search failed: {err}");
    }
    *errors += 1;
}

/// `ronda_camera_alerts_suppressed_total`: `n` alerts of one frame held back by the cooldown
/// (the same incident again within its window). Normal, so only at debug.
pub fn alerts_suppressed(cam: &str, n: u64, total: &mut u64) {
    if n > 0 {
        tracing::debug!(camera = %cam, "{n} alert(s) held back by the cooldown");
        *total += n;
    }
}

/// Whose broker an MQTT delivery lost ([`mqtt_unreachable`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MqttBroker {
    /// The guard post's (`ronda_mqtt_outages_total`): events wait in the outbox.
    GuardPost,
    /// The city's, through the up-link (`ronda_uplink_outages_total`): the guard post goes on,
    /// events wait in the store behind the up-link's cursor.
    City,
}

/// `ronda_mqtt_outages_total` or `ronda_uplink_outages_total` (`outages`, as `whose` says): the
/// broker became unreachable (`err`, with a `hint` of what to do, or empty). Logged and counted
/// once per outage, however many reconnects it takes (the driver logs those at debug).
pub fn mqtt_unreachable(
    whose: MqttBroker,
    broker: &dyn Display,
    err: &dyn Display,
    hint: &str,
    (min, max): (std::time::Duration, std::time::Duration),
    outages: &AtomicU64,
) {
    outages.fetch_add(1, Ordering::Relaxed);
    match whose {
        MqttBroker::GuardPost => tracing::warn!(
            "MQTT broker {broker} is unreachable ({err}){hint}; retrying from every {} s to every \
             {} s, events wait in the outbox",
            min.as_secs_f32(),
            max.as_secs_f32()
        ),
        MqttBroker::City => tracing::warn!(
            "up-link: the city broker {broker} is unreachable ({err}){hint}; the guard post is \
             not affected, events wait in the store and go up in order when it is back \
             (retrying every {} s to {} s)",
            min.as_secs(),
            max.as_secs()
        ),
    }
}

/// `ronda_webhook_outages_total`: the webhook's endpoint stopped taking alerts (`reason`: no
/// answer, a 5xx, 408 or 429, secrets blanked out already) while it was sent `event`; that alert
/// is tried again after `first`, then up to every `max`, and the later ones wait in the store.
/// Logged and counted once per outage, however many retries it takes (the sink logs those at
/// debug, and says at info when the endpoint answers again). `url` is the redacted address.
pub fn webhook_unreachable(
    url: &str,
    event: &str,
    reason: &str,
    (first, max): (std::time::Duration, std::time::Duration),
    outages: &AtomicU64,
) {
    outages.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(
        url = %url,
        event = %event,
        "webhook: cannot deliver: {reason}; retrying the same alert after {} s, then up to every \
         {} s; alerts wait in the store, in order",
        first.as_secs_f64(),
        max.as_secs_f64()
    );
}

/// `ronda_notify_outages_total`: the service of phone destination `destination` stopped taking
/// messages (`reason`: no answer, a 5xx or 429, secrets blanked out already) while it was sent
/// `what` (an event id, or "summary"); the same message is tried again after `first`, then up
/// to every `max`, and the later alerts wait in the store. Logged and counted once per outage,
/// however many retries it takes (a refused token is not an outage: it is said on its own).
pub fn notify_unreachable(
    destination: &str,
    what: &str,
    reason: &str,
    (first, max): (std::time::Duration, std::time::Duration),
    outages: &AtomicU64,
) {
    outages.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(
        destination = %destination,
        event = what,
        "notify `{destination}`: cannot deliver: {reason}; retrying the same message after {} \
         s, then up to every {} s; alerts wait in the store, in order",
        first.as_secs_f64(),
        max.as_secs_f64()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_counts_every_time() {
        let reconnects = AtomicU64::new(0);
        let mut last = String::new();
        for _ in 0..3 {
            camera_failed("c", "rtsp://c", "EOS", &mut last, &reconnects);
        }
        assert_eq!(reconnects.load(Ordering::Relaxed), 3);
        assert_eq!(last, "EOS");
        let offline = AtomicU64::new(0);
        camera_offline("c", "EOS", &offline);
        assert_eq!(offline.load(Ordering::Relaxed), 1);
        let (mut inference, mut faces, mut suppressed) = (0, 0, 0);
        for _ in 0..4 {
            inference_failed("c", &"bad tensor", &mut inference);
            face_search_failed("c", &"bad tensor", &mut faces);
        }
        alerts_suppressed("c", 0, &mut suppressed);
        alerts_suppressed("c", 2, &mut suppressed);
        assert_eq!((inference, faces, suppressed), (4, 4, 2));
        let outages = AtomicU64::new(0);
        let backoff = (
            std::time::Duration::from_millis(500),
            std::time::Duration::from_secs(10),
        );
        mqtt_unreachable(
            MqttBroker::GuardPost,
            &"mqtt://127.0.0.1:1",
            &"refused",
            "",
            backoff,
            &outages,
        );
        assert_eq!(outages.load(Ordering::Relaxed), 1);
        let webhook = AtomicU64::new(0);
        webhook_unreachable("http://gw/hook", "ev-1", "HTTP 503", backoff, &webhook);
        assert_eq!(webhook.load(Ordering::Relaxed), 1);
        let notify = AtomicU64::new(0);
        for what in ["ev-1", "summary"] {
            notify_unreachable("grup", what, "cannot connect", backoff, &notify);
        }
        assert_eq!(notify.load(Ordering::Relaxed), 2);
    }
}
