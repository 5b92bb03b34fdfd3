//! `GET /metrics` of the hub, in Prometheus' text format: the hub's own health (its session on
//! the city broker, events stored and resent, messages it could not read, a store that refuses
//! writes) and each village's state (online, last heard, alerts today, cameras down, counts).
//!
//! Who may read it: a logged-in user (session cookie) or HTTP Basic credentials of a hub user
//! (Prometheus' `basic_auth`), through the same password brake as the login page. Each sees
//! the villages they see on the pages; the hub-wide figures are for city admins only. Without
//! credentials: 401 with `WWW-Authenticate: Basic`.

use std::collections::HashMap;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use axum::extract::{ConnectInfo, State};
use axum::http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::state::{Failure, Shared};
use super::store::VillageState;
use super::subscriber::LinkState;
use crate::api::auth::basic_credentials;
use crate::config::HubRole;

pub(super) async fn metrics(
    State(st): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let user = match st
        .sessions
        .from_headers(&headers)
        .and_then(|s| st.users.get(&s.name).cloned())
    {
        Some(u) => u,
        None => {
            let basic = headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(basic_credentials);
            let Some((name, password)) = basic else {
                let mut res = Failure::new(
                    StatusCode::UNAUTHORIZED,
                    "log in, or give a hub user's name and password (HTTP Basic)",
                )
                .into_response();
                res.headers_mut().insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"ronda hub\""),
                );
                return res;
            };
            match super::state::check(&st, &name, password, peer.ip()).await {
                Ok(u) => u,
                Err(f) => return f.into_response(),
            }
        }
    };
    let since = st.today_ms();
    let states = match st.ask(move |s| s.villages(since)).await {
        Ok(s) => s,
        Err(f) => return f.into_response(),
    };
    let mut sites: Vec<String> = st
        .settings
        .villages
        .iter()
        .map(|v| v.site.clone())
        .collect();
    sites.extend(
        states
            .iter()
            .filter(|s| !st.villages.contains_key(&s.site))
            .map(|s| s.site.clone()),
    );
    sites.retain(|s| st.sees(&user, s));
    let by_site: HashMap<&str, &VillageState> =
        states.iter().map(|v| (v.site.as_str(), v)).collect();
    let now_ms = chrono::Utc::now().timestamp_millis();
    let villages: Vec<(&str, Option<&VillageState>)> = sites
        .iter()
        .map(|s| (s.as_str(), by_site.get(s.as_str()).copied()))
        .collect();
    let hub = (user.role == HubRole::CityAdmin).then_some(&*st.link);
    let mut res = render(hub, &villages, now_ms).into_response();
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}

/// A label value as Prometheus reads it: backslash, quote and newline escaped (a village's
/// site id comes from a topic, which the hub does not choose).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The text: the hub's figures when `hub` is given, then one series per village and figure.
fn render(
    hub: Option<&LinkState>,
    villages: &[(&str, Option<&VillageState>)],
    now_ms: i64,
) -> String {
    let mut out = String::new();
    let flag = |b: bool| u8::from(b);
    if let Some(l) = hub {
        let _ = write!(
            out,
            "# HELP ronda_hub_broker_connected 1 while the hub's session on the city broker is up.\n\
             # TYPE ronda_hub_broker_connected gauge\n\
             ronda_hub_broker_connected {}\n\
             # HELP ronda_hub_events_stored_total Events stored (each id once).\n\
             # TYPE ronda_hub_events_stored_total counter\n\
             ronda_hub_events_stored_total {}\n\
             # HELP ronda_hub_events_duplicate_total Events that arrived again (a village's resend) and were not stored twice.\n\
             # TYPE ronda_hub_events_duplicate_total counter\n\
             ronda_hub_events_duplicate_total {}\n\
             # HELP ronda_hub_messages_unreadable_total Messages the hub could not read (acknowledged, not stored).\n\
             # TYPE ronda_hub_messages_unreadable_total counter\n\
             ronda_hub_messages_unreadable_total {}\n\
             # HELP ronda_hub_store_failing 1 while the hub's store refuses writes (nothing is acknowledged meanwhile).\n\
             # TYPE ronda_hub_store_failing gauge\n\
             ronda_hub_store_failing {}\n",
            flag(l.connected.load(Ordering::Relaxed)),
            l.events.load(Ordering::Relaxed),
            l.duplicates.load(Ordering::Relaxed),
            l.unreadable.load(Ordering::Relaxed),
            flag(l.store_failing.load(Ordering::Relaxed)),
        );
    }
    type Figure = fn(&VillageState, i64) -> Option<f64>;
    let figures: [(&str, &str, &str, Figure); 7] = [
        (
            "ronda_hub_village_online",
            "gauge",
            "1 while the village box says it is online, 0 when it said offline or was never heard.",
            |v, _| {
                Some(f64::from(u8::from(
                    v.availability.as_deref() == Some("online"),
                )))
            },
        ),
        (
            "ronda_hub_village_last_seen_age_seconds",
            "gauge",
            "Seconds since the hub last heard from the village.",
            |v, now| v.last_seen_ms.map(|t| ((now - t).max(0) as f64) / 1000.0),
        ),
        (
            "ronda_hub_village_alerts_today",
            "gauge",
            "Alerts of the village today (the hub's timezone).",
            |v, _| Some(v.alerts as f64),
        ),
        (
            "ronda_hub_village_cameras",
            "gauge",
            "Cameras the village reported.",
            |v, _| Some(v.cameras as f64),
        ),
        (
            "ronda_hub_village_cameras_down",
            "gauge",
            "Cameras of the village that are offline.",
            |v, _| Some(v.cameras_down as f64),
        ),
        (
            "ronda_hub_village_count_in",
            "gauge",
            "People counted in at the village's gate lines today.",
            |v, _| Some(v.count_in as f64),
        ),
        (
            "ronda_hub_village_count_out",
            "gauge",
            "People counted out at the village's gate lines today.",
            |v, _| Some(v.count_out as f64),
        ),
    ];
    let never = VillageState::default();
    for (name, kind, help, value) in figures {
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
        for (site, state) in villages {
            if let Some(x) = value(state.unwrap_or(&never), now_ms) {
                let _ = writeln!(out, "{name}{{site=\"{}\"}} {x}", label(site));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_series_per_village_and_the_hub_figures_only_when_asked() {
        let link = LinkState::default();
        link.connected.store(true, Ordering::Relaxed);
        link.events.store(42, Ordering::Relaxed);
        let utara = VillageState {
            site: "desa-utara".into(),
            availability: Some("online".into()),
            last_seen_ms: Some(1_000),
            alerts: 3,
            cameras: 4,
            cameras_down: 1,
            count_in: 7,
            count_out: 5,
            ..VillageState::default()
        };
        let villages = [("desa-utara", Some(&utara)), ("desa-\"x\"", None)];
        let text = render(Some(&link), &villages, 11_000);
        for line in [
            "ronda_hub_broker_connected 1",
            "ronda_hub_events_stored_total 42",
            "ronda_hub_village_online{site=\"desa-utara\"} 1",
            "ronda_hub_village_online{site=\"desa-\\\"x\\\"\"} 0",
            "ronda_hub_village_last_seen_age_seconds{site=\"desa-utara\"} 10",
            "ronda_hub_village_alerts_today{site=\"desa-utara\"} 3",
            "ronda_hub_village_cameras_down{site=\"desa-utara\"} 1",
            "ronda_hub_village_count_in{site=\"desa-utara\"} 7",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
        // a village never heard has no age
        assert!(!text.contains("last_seen_age_seconds{site=\"desa-\\\"x\\\"\"}"));
        let officer = render(None, &villages[..1], 11_000);
        assert!(
            !officer.contains("ronda_hub_events_stored_total"),
            "{officer}"
        );
        assert!(officer.contains("ronda_hub_village_online{site=\"desa-utara\"} 1"));
    }
}
