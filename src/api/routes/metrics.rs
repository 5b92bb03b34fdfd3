//! `/metrics` in the Prometheus text format (version 0.0.4).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `ronda_camera_online` | gauge (1 online, 0 otherwise) | `camera` |
//! | `ronda_camera_delivered_fps` | gauge | `camera` |
//! | `ronda_camera_analysed_fps` | gauge | `camera` |
//! | `ronda_camera_frames_delivered_total` | counter: frames handed to the analysis | `camera` |
//! | `ronda_camera_frames_analysed_total` | counter | `camera` |
//! | `ronda_camera_frames_dropped_total` | counter | `camera` |
//! | `ronda_camera_reconnects_total` | counter | `camera` |
//! | `ronda_camera_offline_total` | counter: times the camera went offline | `camera` |
//! | `ronda_inference_ms` | gauge (mean per analysed frame; NaN before the first) | `camera` |
//! | `ronda_outbox_backlog` | gauge: stored events the broker has not acknowledged | |
//! | `ronda_mqtt_connected` | gauge (1 / 0) | |
//! | `ronda_mqtt_outages_total` | counter: times the broker became unreachable (events wait in the outbox) | |
//! | `ronda_mqtt_quarantined_total` | counter: messages set aside because the broker or client would refuse them (kept in the store's `quarantine` table) | |
//! | `ronda_webhook_outages_total` | counter: times the webhook's endpoint stopped answering (alerts wait in the store); only with a `[webhook]` | |
//! | `ronda_notify_outages_total` | counter: times a phone destination's service stopped answering (alerts wait in the store; a refused token is not counted) | `destination`, `service` |
//! | `ronda_mqtt_refused_total` | counter: clients the embedded broker's front refused or cut off (wrong password, braked, anonymous, ronda's client id, a forbidden publish or subscription, ...) | `cause` |
//! | `ronda_uplink_pending` | gauge: stored events the city's broker (`[uplink]`) has not acknowledged (only with `[uplink]`) | |
//! | `ronda_uplink_connected` | gauge (1 / 0; only with `[uplink]`) | |
//! | `ronda_uplink_outages_total` | counter: times the city's broker became unreachable (only with `[uplink]`) | |
//! | `ronda_http_sessions` | gauge: logged-in sessions | |
//! | `ronda_http_live_feeds` | gauge: open live feeds | |
//! | `ronda_http_failed_logins_total` | counter | |
//! | `ronda_disk_free_bytes` | gauge: free space on the disk of `[store] clips_dir` (retention keeps `[store] keep_free_gb` of it; absent where it cannot be read) | |
//! | `ronda_decode_ms` | gauge (mean per decoded picture; NaN before the first) | `camera` |
//! | `ronda_camera_pictures_skipped_total` | counter: pictures not decoded at all (quiet camera, key frames only) | `camera` |
//! | `ronda_camera_keyframes_only` | gauge: 1 while a quiet camera decodes only its key frames | `camera` |
//! | `ronda_camera_frames_waiting` | gauge: frames waiting for the detector (0 or 1) | `camera` |
//! | `ronda_camera_brightness` | gauge: mean luma 0-255 of the pictures analysed lately (NaN before the first) | `camera` |
//! | `ronda_camera_frames_still_total` | counter: frames the motion gate kept from the detector | `camera` |
//! | `ronda_camera_whole_searches_total` | counter: whole-picture searches of a camera that searches regions (`[detector] area_regions`) | `camera` |
//! | `ronda_camera_region_searches_total` | counter: searches of regions only (around motion and tracked people) | `camera` |
//! | `ronda_camera_regions_searched_total` | counter: regions searched in them | `camera` |
//! | `ronda_camera_light_changes_total` | counter: whole-picture light changes (infrared switch, exposure jump) | `camera` |
//! | `ronda_camera_low_light` | gauge: 1 when the last picture was dark and lifted before detection (night) | `camera` |
//! | `ronda_camera_too_dark` | gauge: 1 when the camera saw motion in low light for `[detector] too_dark_after_hours` and found nobody | `camera` |
//! | `ronda_camera_behind` | gauge: 1 when the detector looked at fewer than 8 in 10 of a gate camera's pictures over the last 30 s (the box cannot keep up; 0 again from 19 in 20) | `camera` |
//! | `ronda_camera_noisy` | gauge: 1 when the motion gate saw changes all over the view in the last 10 s (rain, snow, insects at the lamp, a shaking camera): looked at every second, not woken by motion | `camera` |
//! | `ronda_camera_face_looks_total` | counter: head regions searched for a face | `camera` |
//! | `ronda_camera_face_errors_total` | counter: face searches that failed | `camera` |
//! | `ronda_camera_inference_errors_total` | counter: frames whose person detection failed | `camera` |
//! | `ronda_camera_alerts_suppressed_total` | counter: alerts held back by the cooldown | `camera` |
//! | `ronda_queue_depth` | gauge: items waiting in a pipeline queue | `queue` |
//! | `ronda_queue_capacity` | gauge: the queue's bound (bounded queues only) | `queue` |

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use axum::extract::{ConnectInfo, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::{Failure, Shared};
use crate::api::CameraStatus;
use crate::api::auth::basic_credentials;
use crate::ingest::camera::Health;

/// Everything `/metrics` shows.
pub(crate) struct Figures {
    pub cameras: Vec<CameraStatus>,
    pub queues: Vec<crate::api::QueueDepth>,
    pub outbox_backlog: u64,
    pub mqtt_connected: bool,
    pub mqtt_outages: u64,
    pub mqtt_quarantined: u64,
    /// `None` without a webhook.
    pub webhook_outages: Option<u64>,
    /// Each running phone destination's.
    pub notify_outages: Vec<crate::api::DestinationOutages>,
    /// The embedded broker's refusals by cause (empty with an external broker).
    pub mqtt_refusals: Vec<(&'static str, u64)>,
    pub uplink: Option<crate::api::UplinkFigures>,
    pub sessions: usize,
    pub feeds: u64,
    pub failed_logins: u64,
    /// Free bytes on the clips' disk (`None`: it cannot be read).
    pub disk_free: Option<u64>,
}

/// A label value with `\`, `"` and newlines escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{x}")
    }
}

pub(crate) fn render(f: &Figures) -> String {
    let mut out = String::new();
    type Value = fn(&CameraStatus) -> f64;
    let per_camera: &[(&str, &str, &str, Value)] = &[
        (
            "ronda_camera_online",
            "gauge",
            "1 if the camera delivers frames, 0 if not",
            |c| f64::from(u8::from(c.health == Health::Online)),
        ),
        (
            "ronda_camera_delivered_fps",
            "gauge",
            "frames per second the camera delivers",
            |c| c.delivered_fps,
        ),
        (
            "ronda_camera_analysed_fps",
            "gauge",
            "frames per second analysed",
            |c| c.analysed_fps,
        ),
        (
            "ronda_camera_frames_delivered_total",
            "counter",
            "frames handed to the analysis (after the analysis rate)",
            |c| c.frames_delivered as f64,
        ),
        (
            "ronda_camera_frames_analysed_total",
            "counter",
            "frames analysed (a motion-gated camera skips still ones)",
            |c| c.frames_analysed as f64,
        ),
        (
            "ronda_camera_frames_dropped_total",
            "counter",
            "frames dropped because the analysis was busy",
            |c| c.frames_dropped as f64,
        ),
        (
            "ronda_camera_reconnects_total",
            "counter",
            "reconnects to the camera",
            |c| c.reconnects as f64,
        ),
        (
            "ronda_camera_offline_total",
            "counter",
            "times the camera went offline (no frames for its offline time)",
            |c| c.offline as f64,
        ),
        (
            "ronda_inference_ms",
            "gauge",
            "mean person detection time per analysed frame, milliseconds",
            |c| c.inference_ms.unwrap_or(f64::NAN),
        ),
        (
            "ronda_camera_frames_still_total",
            "counter",
            "frames the motion gate kept from the detector (nothing moved)",
            |c| c.frames_still as f64,
        ),
        (
            "ronda_camera_whole_searches_total",
            "counter",
            "searches of the whole picture for people by a camera that searches regions",
            |c| c.whole_searches as f64,
        ),
        (
            "ronda_camera_region_searches_total",
            "counter",
            "searches of regions only (around motion and tracked people) for people",
            |c| c.region_searches as f64,
        ),
        (
            "ronda_camera_regions_searched_total",
            "counter",
            "regions searched for people in the region searches",
            |c| c.regions_searched as f64,
        ),
        (
            "ronda_camera_light_changes_total",
            "counter",
            "changes of the whole picture's light (infrared switch, exposure jump), not motion",
            |c| c.light_changes as f64,
        ),
        (
            "ronda_camera_brightness",
            "gauge",
            "mean luma (0-255) of the pictures analysed lately",
            |c| c.brightness.unwrap_or(f64::NAN),
        ),
        (
            "ronda_camera_low_light",
            "gauge",
            "1 when the last picture analysed was dark and lifted before detection",
            |c| if c.low_light { 1.0 } else { 0.0 },
        ),
        (
            "ronda_camera_too_dark",
            "gauge",
            "1 when the camera saw motion in low light for hours and found nobody (too dark to detect)",
            |c| if c.too_dark { 1.0 } else { 0.0 },
        ),
        (
            "ronda_camera_behind",
            "gauge",
            "1 when the detector looked at fewer than 8 in 10 of a gate camera's pictures over the last 30 s (the box cannot keep up)",
            |c| if c.behind { 1.0 } else { 0.0 },
        ),
        (
            "ronda_camera_noisy",
            "gauge",
            "1 when the motion gate saw changes all over the view lately (rain, snow, insects at the lamp, a shaking camera)",
            |c| if c.noisy { 1.0 } else { 0.0 },
        ),
        (
            "ronda_decode_ms",
            "gauge",
            "mean H.264 decode time per picture, milliseconds",
            |c| c.decode_ms.unwrap_or(f64::NAN),
        ),
        (
            "ronda_camera_pictures_skipped_total",
            "counter",
            "pictures not decoded at all: the camera was quiet and decoded key frames only",
            |c| c.pictures_skipped as f64,
        ),
        (
            "ronda_camera_keyframes_only",
            "gauge",
            "1 while the camera is quiet and only its key frames are decoded",
            |c| if c.keyframes_only { 1.0 } else { 0.0 },
        ),
        (
            "ronda_camera_frames_waiting",
            "gauge",
            "frames waiting for the detector (each camera keeps only its newest)",
            |c| c.frames_waiting as f64,
        ),
        (
            "ronda_camera_face_looks_total",
            "counter",
            "head regions searched for a face (gate cameras that check masks)",
            |c| c.face_looks as f64,
        ),
        (
            "ronda_camera_face_errors_total",
            "counter",
            "face searches that failed (the first is logged, the rest only counted)",
            |c| c.face_errors as f64,
        ),
        (
            "ronda_camera_inference_errors_total",
            "counter",
            "frames whose person detection failed (the first is logged, the rest only counted)",
            |c| c.inference_errors as f64,
        ),
        (
            "ronda_camera_alerts_suppressed_total",
            "counter",
            "alerts held back by the cooldown (the same incident again within the window)",
            |c| c.alerts_suppressed as f64,
        ),
    ];
    for &(name, kind, help, value) in per_camera {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for c in &f.cameras {
            let _ = writeln!(
                out,
                "{name}{{camera=\"{}\"}} {}",
                label(&c.id),
                number(value(c))
            );
        }
    }
    let mut single: Vec<(&str, &str, &str, f64)> = vec![
        (
            "ronda_outbox_backlog",
            "gauge",
            "stored events the MQTT broker has not acknowledged",
            f.outbox_backlog as f64,
        ),
        (
            "ronda_mqtt_connected",
            "gauge",
            "1 if connected to the MQTT broker",
            f64::from(u8::from(f.mqtt_connected)),
        ),
        (
            "ronda_mqtt_outages_total",
            "counter",
            "times the MQTT broker became unreachable (events wait in the outbox meanwhile)",
            f.mqtt_outages as f64,
        ),
        (
            "ronda_mqtt_quarantined_total",
            "counter",
            "MQTT messages set aside, never sent, because the broker or client would refuse them \
             (too long a topic, too large); see the quarantine table of the store",
            f.mqtt_quarantined as f64,
        ),
        (
            "ronda_http_sessions",
            "gauge",
            "logged-in web sessions",
            f.sessions as f64,
        ),
        (
            "ronda_http_live_feeds",
            "gauge",
            "open live alert feeds",
            f.feeds as f64,
        ),
        (
            "ronda_http_failed_logins_total",
            "counter",
            "logins refused for a wrong name or password",
            f.failed_logins as f64,
        ),
    ];
    if let Some(free) = f.disk_free {
        single.push((
            "ronda_disk_free_bytes",
            "gauge",
            "free space on the disk of [store] clips_dir (retention keeps [store] keep_free_gb \
             of it free by removing the oldest incident files)",
            free as f64,
        ));
    }
    // the up-link's and the webhook's only when configured; in this order after the others
    if let Some(u) = &f.uplink {
        single.extend([
            (
                "ronda_uplink_pending",
                "gauge",
                "stored events the city's broker has not acknowledged (they go up in order)",
                u.pending as f64,
            ),
            (
                "ronda_uplink_connected",
                "gauge",
                "1 if connected to the city's broker",
                f64::from(u8::from(u.connected)),
            ),
            (
                "ronda_uplink_outages_total",
                "counter",
                "times the city's broker became unreachable (events wait in the store meanwhile)",
                u.outages as f64,
            ),
        ]);
    }
    if let Some(n) = f.webhook_outages {
        single.push((
            "ronda_webhook_outages_total",
            "counter",
            "times the webhook's endpoint stopped answering (alerts wait in the store meanwhile)",
            n as f64,
        ));
    }
    for (name, kind, help, v) in single {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name} {}", number(v));
    }
    if !f.notify_outages.is_empty() {
        let _ = writeln!(
            out,
            "# HELP ronda_notify_outages_total times a phone destination's service stopped \
             answering (alerts wait in the store meanwhile; a refused token is not counted)"
        );
        let _ = writeln!(out, "# TYPE ronda_notify_outages_total counter");
        for d in &f.notify_outages {
            let _ = writeln!(
                out,
                "ronda_notify_outages_total{{destination=\"{}\",service=\"{}\"}} {}",
                label(&d.destination),
                label(d.service),
                d.outages
            );
        }
    }
    if !f.mqtt_refusals.is_empty() {
        let _ = writeln!(
            out,
            "# HELP ronda_mqtt_refused_total clients the embedded broker refused or cut off, by \
             cause (bad_login: wrong password; braked: too many wrong passwords from one address)"
        );
        let _ = writeln!(out, "# TYPE ronda_mqtt_refused_total counter");
        for (cause, n) in &f.mqtt_refusals {
            let _ = writeln!(out, "ronda_mqtt_refused_total{{cause=\"{cause}\"}} {n}");
        }
    }
    if !f.queues.is_empty() {
        let _ = writeln!(
            out,
            "# HELP ronda_queue_depth items waiting in a pipeline queue"
        );
        let _ = writeln!(out, "# TYPE ronda_queue_depth gauge");
        for q in &f.queues {
            let _ = writeln!(
                out,
                "ronda_queue_depth{{queue=\"{}\"}} {}",
                label(q.queue),
                q.depth
            );
        }
        let _ = writeln!(
            out,
            "# HELP ronda_queue_capacity the bound of a pipeline queue"
        );
        let _ = writeln!(out, "# TYPE ronda_queue_capacity gauge");
        for q in &f.queues {
            if let Some(c) = q.capacity {
                let _ = writeln!(
                    out,
                    "ronda_queue_capacity{{queue=\"{}\"}} {c}",
                    label(q.queue)
                );
            }
        }
    }
    out
}

/// `GET /metrics`. Open unless `metrics_public` is off; then a session or HTTP Basic
/// credentials of a configured user (through the same lockout as the login).
pub(crate) async fn metrics(
    State(st): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if !st.config.metrics_public && st.sessions.from_headers(&headers).is_none() {
        let creds = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(basic_credentials);
        let allowed = match creds {
            Some((name, password)) => {
                match super::check_login(&st, &name, password, peer.ip()).await {
                    Ok(_) => true,
                    Err(f) => return f.into_response(),
                }
            }
            None => false,
        };
        if !allowed {
            let mut res = Failure::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "metrics need a login: a session or HTTP Basic credentials of a user",
            )
            .into_response();
            res.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"ronda metrics\""),
            );
            return res;
        }
    }
    let figures = st
        .ask(|v| {
            (
                v.cameras(),
                v.outbox_backlog(),
                v.mqtt_connected(),
                v.mqtt_outages(),
                v.mqtt_quarantined(),
                v.queues(),
                v.mqtt_refusals(),
                v.uplink(),
                v.webhook_outages(),
                v.notify_outages(),
            )
        })
        .await;
    let (
        cameras,
        outbox_backlog,
        mqtt_connected,
        mqtt_outages,
        mqtt_quarantined,
        queues,
        mqtt_refusals,
        uplink,
        webhook_outages,
        notify_outages,
    ) = match figures {
        Ok(f) => f,
        Err(f) => return f.into_response(),
    };
    let text = render(&Figures {
        cameras,
        queues,
        outbox_backlog,
        mqtt_connected,
        mqtt_outages,
        mqtt_quarantined,
        webhook_outages,
        notify_outages,
        mqtt_refusals,
        uplink,
        sessions: st.sessions.count(),
        feeds: st.feeds_open.load(Ordering::Relaxed),
        failed_logins: st.logins_failed.load(Ordering::Relaxed),
        disk_free: crate::store::free_bytes(&st.config.clips_dir).ok(),
    });
    let mut res = text.into_response();
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_series_per_camera_with_escaped_labels() {
        let cam = |id: &str, health| CameraStatus {
            id: id.into(),
            name: "x".into(),
            gate: true,
            health,
            since: None,
            delivered_fps: 12.5,
            analysed_fps: 5.0,
            frames_delivered: 100,
            frames_analysed: 90,
            frames_dropped: 3,
            reconnects: 1,
            offline: 2,
            inference_ms: None,
            decode_ms: Some(1.5),
            frames_waiting: 1,
            brightness: Some(12.5),
            low_light: true,
            frames_still: 40,
            light_changes: 2,
            too_dark: true,
            noisy: true,
            behind: true,
            face_looks: 6,
            face_errors: 1,
            inference_errors: 5,
            alerts_suppressed: 4,
            pictures_skipped: 120,
            keyframes_only: true,
            whole_searches: 7,
            region_searches: 11,
            regions_searched: 15,
        };
        let text = render(&Figures {
            cameras: vec![cam("gate-1", Health::Online), cam("a\"b", Health::Offline)],
            queues: vec![crate::api::QueueDepth {
                queue: "events",
                depth: 3,
                capacity: Some(1024),
            }],
            outbox_backlog: 7,
            mqtt_connected: true,
            mqtt_outages: 3,
            mqtt_quarantined: 2,
            webhook_outages: Some(1),
            notify_outages: vec![crate::api::DestinationOutages {
                destination: "grup \"rt\"".into(),
                service: "telegram",
                outages: 2,
            }],
            mqtt_refusals: vec![("bad_login", 3), ("braked", 1)],
            uplink: Some(crate::api::UplinkFigures {
                pending: 7,
                outages: 2,
                connected: false,
            }),
            sessions: 2,
            feeds: 1,
            failed_logins: 0,
            disk_free: Some(5_000_000_000),
        });
        assert!(text.contains("ronda_camera_online{camera=\"gate-1\"} 1\n"));
        assert!(text.contains("ronda_camera_alerts_suppressed_total{camera=\"gate-1\"} 4\n"));
        assert!(text.contains("ronda_camera_face_errors_total{camera=\"gate-1\"} 1\n"));
        assert!(text.contains("ronda_camera_inference_errors_total{camera=\"gate-1\"} 5\n"));
        assert!(text.contains("ronda_camera_offline_total{camera=\"gate-1\"} 2\n"));
        assert!(text.contains("ronda_camera_too_dark{camera=\"gate-1\"} 1\n"));
        assert!(text.contains("ronda_camera_behind{camera=\"gate-1\"} 1\n"));
        assert!(text.contains("ronda_camera_noisy{camera=\"gate-1\"} 1\n"));
        assert!(text.contains("ronda_camera_region_searches_total{camera=\"gate-1\"} 11\n"));
        assert!(text.contains("ronda_camera_regions_searched_total{camera=\"gate-1\"} 15\n"));
        assert!(text.contains("ronda_camera_online{camera=\"a\\\"b\"} 0\n"));
        assert!(text.contains("ronda_camera_delivered_fps{camera=\"gate-1\"} 12.5\n"));
        assert!(text.contains("ronda_inference_ms{camera=\"gate-1\"} NaN\n"));
        assert!(text.contains("ronda_outbox_backlog 7\n"));
        assert!(text.contains("ronda_mqtt_connected 1\n"));
        assert!(text.contains("ronda_mqtt_outages_total 3\n"));
        assert!(text.contains("ronda_uplink_pending 7\n"));
        assert!(text.contains("ronda_uplink_outages_total 2\n"));
        assert!(text.contains("ronda_uplink_connected 0\n"));
        assert!(text.contains("# TYPE ronda_mqtt_quarantined_total counter\n"));
        assert!(text.contains("ronda_mqtt_quarantined_total 2\n"));
        assert!(text.contains("ronda_mqtt_refused_total{cause=\"braked\"} 1\n"));
        assert!(text.contains("# TYPE ronda_webhook_outages_total counter\n"));
        assert!(text.contains("ronda_webhook_outages_total 1\n"));
        assert!(text.contains(
            "ronda_notify_outages_total{destination=\"grup \\\"rt\\\"\",service=\"telegram\"} 2\n"
        ));
        assert_eq!(text.matches("ronda_camera_reconnects_total{").count(), 2);
        assert!(text.contains("ronda_decode_ms{camera=\"gate-1\"} 1.5\n"));
        assert!(text.contains("ronda_camera_pictures_skipped_total{camera=\"gate-1\"} 120\n"));
        assert!(text.contains("ronda_camera_keyframes_only{camera=\"gate-1\"} 1\n"));
        assert!(text.contains("ronda_queue_depth{queue=\"events\"} 3\n"));
        assert!(text.contains("ronda_queue_capacity{queue=\"events\"} 1024\n"));
        assert!(text.contains("# TYPE ronda_disk_free_bytes gauge\n"));
        assert!(text.contains("ronda_disk_free_bytes 5000000000\n"));
    }
}
