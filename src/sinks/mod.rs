//! Where events go once they are stored: MQTT to the guard post ([`mqtt`]), through an external
//! broker or the one ronda embeds ([`broker`]); alerts to a web address ([`webhook`]) and to the
//! guards' phones ([`notify`]: Telegram, WhatsApp gateways, ntfy); the city's broker
//! ([`uplink`]); the
//! incident's video clip ([`clips`]) and its snapshot with the boxes drawn ([`snapshot`]); old
//! clips, snapshots and delivered events go by age and disk budget ([`retention`]).
//!
//! Uses (of the crate, besides its own folder): api, backoff, config, events, geometry, ingest, rules, store, telemetry, topic.

pub mod broker;
pub mod clips;
pub mod mqtt;
pub mod notify;
pub mod outlet;
pub mod retention;
pub(crate) mod signal;
pub mod snapshot;
pub mod uplink;
pub mod webhook;

use std::path::PathBuf;

pub use broker::{Broker, BrokerOptions, BrokerTls, BrokerUser};
pub use clips::{
    ClipError, ClipInfo, ClipOptions, ClipOutcome, ClipRecorder, ClipRefused, Planned,
    startup_cleanup, write_mp4,
};
pub use mqtt::{MqttOptions, MqttSink, SinkHandle};
pub use notify::{AckDesk, NotifySink, NotifySinks};
pub use outlet::{Outlet, OutletError};
pub use retention::{Retention, RetentionOptions, RetentionReport, RetentionTask};
pub use snapshot::{SnapshotError, write_snapshot};
pub use uplink::{UplinkOptions, UplinkSink, UplinkStatus};
pub use webhook::{WebhookOptions, WebhookSink};

use crate::store::StoreError;

/// Why a sink cannot start. Each message names the setting or address at fault and what to do.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error(
        "[mqtt] password_env names the environment variable {var}, but it is not set (or empty): \
         export {var}=<the broker password> before starting ronda"
    )]
    PasswordEnv { var: String },

    #[error(
        "[[mqtt.users]] `{name}`: password_env names the environment variable {var}, but it is \
         not set (or empty): export {var}=<the password of {name}> before starting ronda"
    )]
    UserPasswordEnv { name: String, var: String },

    #[error("[mqtt] url `{url}`: {reason}")]
    Url { url: String, reason: String },

    #[error("[mqtt] listen `{listen}`: {reason}")]
    Listen { listen: String, reason: String },

    #[error(
        "[mqtt] ca_file {}: {reason}; point it at the PEM certificate of the CA that signed the \
         broker's certificate",
        file.display()
    )]
    CaFile { file: PathBuf, reason: String },

    #[error(
        "mqtts to {broker}: {reason}; set [mqtt] ca_file to the PEM certificate of the broker's CA"
    )]
    Tls { broker: String, reason: String },

    #[error(
        "cannot start the embedded MQTT broker: {addr} is already in use (another MQTT broker \
         such as Mosquitto, or a second ronda?); stop it, or set [mqtt] listen to a free address"
    )]
    PortInUse { addr: String },

    #[error(
        "cannot start the embedded MQTT broker on {addr}: {reason}; set [mqtt] listen to an \
         address of this machine (ports below 1024 need root)"
    )]
    Bind { addr: String, reason: String },

    #[error("the embedded MQTT broker on {addr} did not start: {reason}")]
    BrokerStart { addr: String, reason: String },

    #[error(
        "[mqtt] {key} = {file}: {reason}; give the PEM file of the broker's certificate (tls_cert) \
         and of its private key (tls_key), e.g. from the village's own CA or Let's Encrypt"
    )]
    BrokerTls {
        key: &'static str,
        file: std::path::PathBuf,
        reason: String,
    },

    #[error(
        "[webhook] url uses ${{{var}}} but that environment variable is not set: export \
         {var}=<the token> before starting ronda"
    )]
    WebhookEnv { var: String },

    #[error(
        "[[notify]] `{name}`: {key} uses ${{{var}}} but that environment variable is not set: \
         export {var}=<the value> before starting ronda, or set enabled = false for `{name}`"
    )]
    NotifyEnv {
        name: String,
        key: String,
        var: String,
    },

    /// `[uplink]` cannot be used as written: the key and what to do.
    #[error("[uplink] {key}: {reason}")]
    Uplink { key: &'static str, reason: String },

    #[error("cannot start the {what} thread: {reason}")]
    Thread { what: &'static str, reason: String },

    #[error(transparent)]
    Store(#[from] StoreError),
}
