//! The city's command room (`ronda hub`, README "City command room"): subscribes to the city
//! broker the village boxes publish to with their `[uplink]`, keeps every village's events
//! (each once, by id), camera status, line counts and availability in its own store, and shows
//! them to the city's and the districts' officers on its web pages, with the villages'
//! incident clips fetched through the account each village gave the hub.
//!
//! Uses (of the crate, besides its own folder): api, backoff, config, sinks, topic.
//!
//! Parts: [`message`] (what a topic and payload mean, pure), [`store`] (SQLite in portable
//! SQL), [`subscriber`] (the MQTT session, acknowledging only what is stored), [`web`] (login,
//! pages, JSON API) with [`state`] (what its requests share, who sees which village) and
//! [`proxy`] (the clips), and [`metrics`] (Prometheus). The subscriber runs on
//! its own thread and writes; the web server runs on the caller's runtime and reads.

mod message;
mod metrics;
mod proxy;
mod state;
pub mod store;
mod subscriber;
mod web;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::{HubSettings, redact_url};
use crate::sinks::MqttOptions;
use crate::sinks::mqtt::{Tls, parse_url, read_ca};
use store::{HubStore, HubStoreError};
use subscriber::{LinkState, Subscriber};

/// Why the hub cannot start or stopped. Each message names the setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(
        "{key}: uses ${{{var}}} but that environment variable is not set (or empty): export \
         {var}=... in the environment of `ronda hub` (e.g. Environment={var}=... in its systemd \
         unit)"
    )]
    Secret { key: String, var: String },
    #[error("[broker] {0}")]
    Broker(String),
    #[error(transparent)]
    Store(#[from] HubStoreError),
    #[error("[hub] listen = \"{addr}\": {reason}")]
    Listen { addr: String, reason: String },
    #[error("hub: {0}")]
    Runtime(String),
}

/// The hub's broker connection from `[broker]`, the password read from its variable now (a
/// variable that is not set stops the hub at start, naming it).
fn broker_options(
    s: &HubSettings,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<MqttOptions, HubError> {
    let b = &s.broker;
    let url = parse_url(&b.url)
        .map_err(|reason| HubError::Broker(format!("url `{}`: {reason}", redact_url(&b.url))))?;
    let mut o = MqttOptions::new(url.host, url.port, "hub");
    o.client_id = b.client_id.clone();
    o.username = b.username.clone();
    if let Some(var) = b.password_var() {
        o.password = Some(secret(env, "broker.password", var)?);
    }
    if url.tls {
        o.tls = Some(match &b.ca_file {
            Some(f) => read_ca(f).map_err(|e| {
                HubError::Broker(format!(
                    "ca_file: {e}; point it at the PEM certificate of the CA that signed the \
                     city broker's certificate"
                ))
            })?,
            None => Tls::SystemRoots,
        });
    }
    // the city's link may be slow or down for hours: ping seldom, back off to half a minute
    o.keep_alive = Duration::from_secs(30);
    o.backoff_min = Duration::from_secs(1);
    o.backoff_max = Duration::from_secs(30);
    o.connect_timeout = Duration::from_secs(10);
    Ok(o)
}

fn secret(env: &impl Fn(&str) -> Option<String>, key: &str, var: &str) -> Result<String, HubError> {
    env(var).filter(|p| !p.is_empty()).ok_or(HubError::Secret {
        key: key.into(),
        var: var.into(),
    })
}

/// The passwords of the accounts the villages gave the hub, by site.
fn village_passwords(
    s: &HubSettings,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<HashMap<String, String>, HubError> {
    let mut out = HashMap::new();
    for (i, v) in s.villages.iter().enumerate() {
        if let Some(var) = v.password_var() {
            let pw = secret(env, &format!("villages[{i}].password"), var)?;
            out.insert(v.site.clone(), pw);
        }
    }
    Ok(out)
}

/// Run the hub until `shutdown` resolves: the subscriber on a thread of its own, the web
/// server on the current tokio runtime. `env` reads the password variables.
pub async fn serve(
    settings: HubSettings,
    env: impl Fn(&str) -> Option<String>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), HubError> {
    let opts = broker_options(&settings, &env)?;
    let passwords = village_passwords(&settings, &env)?;
    let store = Arc::new(HubStore::open(&settings.store)?);
    let listener = tokio::net::TcpListener::bind(&settings.listen)
        .await
        .map_err(|e| HubError::Listen {
            addr: settings.listen.clone(),
            reason: e.to_string(),
        })?;
    let addr = listener.local_addr().map_err(|e| HubError::Listen {
        addr: settings.listen.clone(),
        reason: e.to_string(),
    })?;
    let link = Arc::new(LinkState::default());
    let stop = CancellationToken::new();
    let (client, eventloop) = subscriber::client(&opts)?;
    let sub = Subscriber {
        store: store.clone(),
        state: link.clone(),
        known: settings
            .villages
            .iter()
            .map(|v| v.site.clone())
            .collect::<HashSet<_>>(),
        stop: stop.clone(),
        opts,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| HubError::Runtime(e.to_string()))?;
    let thread = std::thread::Builder::new()
        .name("hub-subscriber".into())
        .spawn(move || runtime.block_on(sub.run(client, eventloop)))
        .map_err(|e| HubError::Runtime(e.to_string()))?;
    tracing::info!(
        villages = settings.villages.len(),
        users = settings.users.len(),
        "hub: web pages on http://{addr}/"
    );
    let state = state::WebState::new(settings, passwords, store, link);
    let app = web::router(state);
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    stop.cancel();
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    served.map_err(|e| HubError::Runtime(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> HubSettings {
        HubSettings::parse(
            include_str!("../../config/hub.example.toml"),
            std::path::Path::new("hub.example.toml"),
        )
        .unwrap()
    }

    #[test]
    fn a_missing_password_variable_is_named_with_its_key() {
        let s = settings();
        let err = broker_options(&s, &|_| None).unwrap_err().to_string();
        assert!(
            err.starts_with("broker.password: uses ${HUB_MQTT_PASSWORD}"),
            "{err}"
        );
        let env = |v: &str| (v != "HUB_RW2_PASSWORD").then(|| "hunter2".to_string());
        let err = village_passwords(&s, &env).unwrap_err().to_string();
        assert!(
            err.starts_with("villages[1].password: uses ${HUB_RW2_PASSWORD}"),
            "{err}"
        );
        let o = broker_options(&s, &env).unwrap();
        assert_eq!(o.client_id, "ronda-hub");
        assert!(!format!("{o:?}").contains("hunter2"));
    }
}
