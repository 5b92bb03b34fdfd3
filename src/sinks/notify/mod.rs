//! The guards' phones (`[[notify]]`): alerts as chat messages with the snapshot attached, through
//! a Telegram bot ([`telegram`]), a WhatsApp gateway ([`whatsapp`]: WAHA or a Fonnte-style form
//! gateway) or an ntfy topic ([`ntfy`]), in Bahasa Indonesia or English ([`message`]).
//!
//! Uses (of the crate, besides its own folder): api, backoff, config, events, rules, store, telemetry.
//!
//! Each destination is a sink of its own, beside MQTT and the webhook, with the webhook's
//! delivery rules (see `sinks::webhook`): its own cursor in the store's outbox (row
//! `notify:<name>`, made at the end of the outbox on its first start), events in order, the
//! same message again after 1, 2, 4 ... 60 s (or what the service asks: `Retry-After`,
//! Telegram's `parameters.retry_after`) while the service is down, one warning per outage (and
//! one more in `ronda_notify_outages_total`, by destination). A
//! destination that is down holds back only itself: MQTT, the webhook and the other
//! destinations read the outbox on their own. Nothing is lost (the cursor moves only past
//! what the service took, refused for good, or the filter does not want) and nothing is sent
//! twice except the at-least-once case of an answer lost on the way.
//!
//! A refused token (HTTP 401, Telegram's `Unauthorized`, a gateway's "invalid token") is
//! reported once, by the destination's name and the variable that holds the token, never its
//! value; the alerts wait in the store as in an outage and go out once it works (after the
//! variable is fixed and ronda restarted), the rate limit collapsing what piled up.
//!
//! Per destination ([`sink`]): minimum severity and event types, quiet hours (events whose own
//! time falls in them are not sent to it), a rate limit collapsing repeats into one "dan 5
//! lainnya dalam 10 menit" message ([`limit`]). Telegram messages carry an acknowledge button;
//! the presses come by long polling `getUpdates` (the box needs no public address) and are
//! stored and published through the same [`AckDesk`] as the guard page's.
//!
//! Secrets come only from `${VAR}`s, filled in here when the sink starts, and are blanked out of
//! every text a log line shows.
//!
//! A plain text message (a [`message::Text`], as the summaries are) goes through the same
//! [`Deliver`] implementations: the gate book's daily report, once it exists, is meant to be
//! stored in the outbox like an event and delivered by these sinks with the same guarantees.

pub mod http;
pub mod limit;
pub mod message;
pub mod ntfy;
mod sink;
pub mod telegram;
pub mod whatsapp;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use sink::NotifySink;

use self::http::Answer;
use self::message::Text;
use super::SinkError;
use crate::api::{AckError, AckRecord};
use crate::config::{Notify, NotifyService, Settings, expand_env};
use crate::events::Severity;
use crate::store::{Store, StoreError};

/// Where a phone's acknowledgement goes: stored and published exactly as one from the guard
/// page (the running pipeline implements it; see `app::village`).
pub trait AckDesk: Send + Sync + 'static {
    /// Store that `user` saw event `event_id` (the first acknowledgement stays), publish it on
    /// MQTT and the live feeds, and return the record.
    fn acknowledge(&self, event_id: &str, user: &str) -> Result<AckRecord, AckError>;
}

/// One message as a destination sends it.
#[derive(Clone, Debug)]
pub struct Message {
    pub text: Text,
    /// The incident's snapshot, attached (not linked: the box is not reachable from a phone).
    pub photo: Option<Photo>,
    pub severity: Severity,
    /// The event type's word (`intrusion`), for services that tag messages (ntfy).
    pub tag: Option<&'static str>,
    /// The event it is about: Telegram puts the acknowledge button under it.
    pub event_id: Option<String>,
    /// The incident in the web UI, when `[http] public_url` is set.
    pub link: Option<String>,
}

impl Message {
    /// The same message without its photo (for a service that refused the photo).
    pub fn without_photo(&self) -> Message {
        Message {
            photo: None,
            ..self.clone()
        }
    }
}

/// A JPEG to attach.
#[derive(Clone)]
pub struct Photo {
    pub jpeg: Vec<u8>,
    pub filename: String,
}

impl std::fmt::Debug for Photo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Photo({}, {} bytes)", self.filename, self.jpeg.len())
    }
}

/// A chat service: sends one message to one of its recipients.
pub trait Deliver: Send {
    /// How many recipients each message goes to (Telegram chats, WhatsApp chats; one for a
    /// gateway that takes a list, and for ntfy).
    fn recipients(&self) -> usize;

    /// Send `m` to recipient number `to`, within `timeout`.
    fn send(&mut self, m: &Message, to: usize, timeout: Duration) -> Answer;

    /// Check the credentials once at start (Telegram's `getMe`), so that a bad token is
    /// reported then rather than at the first alert; `None` when the service has no such call.
    fn check(&mut self, _timeout: Duration) -> Option<Answer> {
        None
    }
}

/// Why a destination cannot start.
fn env_error(name: &str, key: &str, var: &str) -> SinkError {
    SinkError::NotifyEnv {
        name: name.to_string(),
        key: key.to_string(),
        var: var.to_string(),
    }
}

/// What every destination of a site shares: how to name cameras, where snapshots are, the
/// public address of the web UI.
#[derive(Clone, Debug)]
pub struct Site {
    pub tz: chrono_tz::Tz,
    pub clips_dir: PathBuf,
    /// Camera id -> its name.
    pub cameras: HashMap<String, String>,
    pub public_url: Option<String>,
}

impl Site {
    pub fn from_settings(s: &Settings) -> Site {
        Site {
            tz: s.site.timezone,
            clips_dir: s.store.clips_dir.clone(),
            cameras: s
                .cameras
                .iter()
                .map(|c| (c.id.clone(), c.name.clone()))
                .collect(),
            public_url: s.http.public_url.clone(),
        }
    }
}

/// A destination ready to start: its settings with the secrets filled in.
pub struct Destination {
    pub conf: Notify,
    pub(crate) service: Box<dyn Deliver>,
    /// The values of its secrets, blanked out of every text shown.
    pub(crate) secrets: Vec<String>,
    /// `${VAR}` of its token or key, to name in messages about it.
    pub(crate) token_ref: Option<String>,
    /// The Telegram acknowledge poller, if this destination has one.
    pub(crate) ack_poll: Option<telegram::PollSpec>,
    /// Retry delays: from `backoff_min`, doubling up to `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl Destination {
    /// Build `n` (an enabled destination of `settings`): fills in its `${VAR}`s, so a missing
    /// variable stops the start with the destination's name.
    pub fn new(n: &Notify, tz: chrono_tz::Tz) -> Result<Destination, SinkError> {
        let expand = |key: &str, v: &str| -> Result<String, SinkError> {
            expand_env(v).map_err(|var| env_error(&n.name, key, &var))
        };
        let mut secrets = Vec::new();
        let mut token_ref = None;
        let mut ack_poll = None;
        let service: Box<dyn Deliver> = match &n.service {
            NotifyService::Telegram {
                token,
                chat_ids,
                api_base,
                acknowledge,
            } => {
                let value = expand("token", token)?;
                secrets.push(value.clone());
                token_ref = Some(token.clone());
                let t =
                    telegram::Telegram::new(api_base, &value, chat_ids, *acknowledge, n.language);
                if *acknowledge {
                    ack_poll = Some(t.poll_spec(&n.name, tz));
                }
                Box::new(t)
            }
            NotifyService::Waha {
                url,
                session,
                chat_ids,
                api_key,
            } => {
                let key = match api_key {
                    Some(k) => {
                        let v = expand("api_key", k)?;
                        secrets.push(v.clone());
                        token_ref = Some(k.clone());
                        Some(v)
                    }
                    None => None,
                };
                Box::new(whatsapp::Waha::new(url, session, chat_ids, key))
            }
            NotifyService::GatewayForm { url, token, target } => {
                let value = expand("token", token)?;
                secrets.push(value.clone());
                token_ref = Some(token.clone());
                Box::new(whatsapp::FormGateway::new(url, &value, target))
            }
            NotifyService::Ntfy { url, topic, token } => {
                let topic_value = expand("topic", topic)?;
                if topic_value != *topic {
                    secrets.push(topic_value.clone());
                }
                let token_value = match token {
                    Some(t) => {
                        let v = expand("token", t)?;
                        secrets.push(v.clone());
                        token_ref = Some(t.clone());
                        Some(v)
                    }
                    None => None,
                };
                Box::new(ntfy::Ntfy::new(url, &topic_value, token_value))
            }
        };
        // short values would blank out ordinary words; a token is longer
        secrets.retain(|s| s.len() >= 4);
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Ok(Destination {
            conf: n.clone(),
            service,
            secrets,
            token_ref,
            ack_poll,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
        })
    }

    /// The store's cursor row of this destination.
    pub fn cursor_row(name: &str) -> String {
        format!("{}{name}", crate::store::NOTIFY_PREFIX)
    }

    /// `text` with every secret blanked out.
    pub(crate) fn scrub(&self, text: &str) -> String {
        scrub(&self.secrets, text)
    }
}

pub(crate) fn scrub(secrets: &[String], text: &str) -> String {
    let mut t = text.to_string();
    for s in secrets {
        t = t.replace(s.as_str(), "***");
    }
    t
}

/// Every enabled destination of a site, running; and the Telegram pollers once an [`AckDesk`]
/// is given.
pub struct NotifySinks {
    sinks: Vec<NotifySink>,
    polls: Vec<telegram::PollSpec>,
    pollers: Vec<telegram::Poller>,
}

impl NotifySinks {
    /// Start every enabled `[[notify]]` destination on `store`; forget the cursors of the
    /// others (removed or disabled ones: added again later, they start at the end of the
    /// outbox, not with what was stored meanwhile).
    pub fn start(settings: &Settings, store: Arc<Store>) -> Result<NotifySinks, SinkError> {
        let site = Arc::new(Site::from_settings(settings));
        let mut dests = Vec::new();
        for n in settings.notify.iter().filter(|n| n.enabled) {
            dests.push(Destination::new(n, settings.site.timezone)?);
        }
        let keep: Vec<String> = dests
            .iter()
            .map(|d| Destination::cursor_row(&d.conf.name))
            .collect();
        let forgotten = store.forget_notify_cursors_except(&keep)?;
        if forgotten > 0 {
            tracing::info!(
                forgotten,
                "notify: destinations no longer configured (or disabled) let go of the outbox"
            );
        }
        let mut sinks = Vec::new();
        let mut polls: Vec<telegram::PollSpec> = Vec::new();
        for mut d in dests {
            if let Some(p) = d.ack_poll.take() {
                // one poller per bot: two pollers on one token take each other's updates
                // (Telegram answers 409 Conflict)
                match polls.iter_mut().find(|q| q.same_bot(&p)) {
                    Some(q) => q.merge(p),
                    None => polls.push(p),
                }
            }
            sinks.push(NotifySink::start(d, store.clone(), site.clone())?);
        }
        Ok(NotifySinks {
            sinks,
            polls,
            pollers: Vec::new(),
        })
    }

    /// Take acknowledgements from the phones (Telegram's buttons) into `desk`.
    pub fn listen_for_acks(&mut self, desk: Arc<dyn AckDesk>) {
        for p in self.polls.drain(..) {
            match telegram::Poller::start(p, desk.clone()) {
                Ok(poller) => self.pollers.push(poller),
                Err(e) => tracing::error!("{e}"),
            }
        }
    }

    /// Events were stored: every destination looks now. Never blocks.
    pub fn wake(&self) {
        for s in &self.sinks {
            s.wake();
        }
    }

    pub fn sinks(&self) -> &[NotifySink] {
        &self.sinks
    }

    /// Events still to look at, over every destination.
    pub fn backlog(&self) -> Result<u64, StoreError> {
        let mut n = 0;
        for s in &self.sinks {
            n += s.backlog()?;
        }
        Ok(n)
    }

    /// Deliver what waits within `timeout` (all destinations at once), then stop. Returns,
    /// per destination with alerts still waiting, its name and how many.
    pub fn shutdown(self, timeout: Duration) -> Vec<(String, u64)> {
        for p in &self.pollers {
            p.stop();
        }
        let left = std::thread::scope(|s| {
            let handles: Vec<_> = self
                .sinks
                .into_iter()
                .map(|sink| {
                    s.spawn(move || {
                        let name = sink.name().to_string();
                        (name, sink.shutdown(timeout).unwrap_or(0))
                    })
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().ok())
                .filter(|(_, n)| *n > 0)
                .collect()
        });
        for p in self.pollers {
            p.join(Duration::from_secs(1));
        }
        left
    }
}
