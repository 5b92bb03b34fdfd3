//! What the webhook sends where: the URL with its `${VAR}` secrets expanded, the filter, the
//! backoff; and how secrets are kept out of what is shown.

use std::time::Duration;

use base64::Engine;

use super::MIN_SECRET;
use crate::config::{Piece, Settings, Webhook, expand_env, pieces, redact_webhook_url};
use crate::events::{Event, EventKind, Severity};
use crate::sinks::SinkError;

/// Where and what the sink sends. Build it with [`WebhookOptions::from_settings`] (or
/// [`WebhookOptions::new`] in tests); the backoff fields have working defaults.
#[derive(Clone)]
pub struct WebhookOptions {
    /// With `${VAR}` filled in and without `user:password@`: a secret, never logged.
    pub(super) url: String,
    /// `Basic ...` from the URL's `user:password@` (HTTP clients do not send it by themselves).
    pub(super) authorization: Option<String>,
    /// The values of those variables, blanked out of error texts.
    pub(super) secrets: Vec<String>,
    /// The URL as shown in logs.
    pub redacted_url: String,
    pub min_severity: Severity,
    /// Only these types (`None`: all).
    pub kinds: Option<Vec<EventKind>>,
    /// One POST, from connecting to the end of the answer.
    pub timeout: Duration,
    /// Retry delays: from `backoff_min`, doubling up to `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl std::fmt::Debug for WebhookOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookOptions")
            .field("url", &self.redacted_url)
            .field("min_severity", &self.min_severity)
            .field("kinds", &self.kinds)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl WebhookOptions {
    /// From `[webhook]`; `None` when the section is absent (no webhook). `${VAR}` references
    /// are filled in now, so a missing variable stops ronda at start-up.
    pub fn from_settings(settings: &Settings) -> Result<Option<WebhookOptions>, SinkError> {
        settings
            .webhook
            .as_ref()
            .map(WebhookOptions::from_config)
            .transpose()
    }

    /// From a validated `[webhook]` section.
    fn from_config(w: &Webhook) -> Result<WebhookOptions, SinkError> {
        let mut o = WebhookOptions::new(&w.url)?;
        o.min_severity = w.min_severity;
        o.kinds = w.kinds.clone();
        o.timeout = w.timeout;
        Ok(o)
    }

    /// POST to `url` (as written in a config file: `${VAR}` references are filled in from the
    /// environment) every event of severity `warning` and above, with a 10 s timeout and
    /// retries after 1 s doubling up to 60 s. The URL is not checked here: the config reader
    /// does that.
    /// A `user:password@` in the URL is sent as HTTP basic authentication; its parts are
    /// expanded separately, so a password may hold any character.
    pub fn new(url: &str) -> Result<WebhookOptions, SinkError> {
        let expand = |s: &str| expand_env(s).map_err(|var| SinkError::WebhookEnv { var });
        let (without_userinfo, userinfo) = split_userinfo(url);
        let resolved = expand(&without_userinfo)?;
        let authorization = match userinfo {
            Some(u) => {
                let (user, password) = u.split_once(':').unwrap_or((u.as_str(), ""));
                let pair = format!("{}:{}", expand(user)?, expand(password)?);
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair.as_bytes())
                ))
            }
            None => None,
        };
        let mut secrets = env_values(url);
        if resolved != without_userinfo {
            secrets.push(resolved.clone());
        }
        // Longest first, so a value containing another is blanked out whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Ok(WebhookOptions {
            url: resolved,
            authorization,
            secrets,
            redacted_url: redact_webhook_url(url),
            min_severity: Severity::Warning,
            kinds: None,
            timeout: Duration::from_secs(10),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
        })
    }

    /// Whether an event goes to the webhook: its severity is at least `min_severity` and its
    /// type is in `kinds` (when given).
    pub fn wants(&self, e: &Event) -> bool {
        e.severity >= self.min_severity && self.kinds.as_ref().is_none_or(|k| k.contains(&e.kind))
    }

    /// `text` with every secret of the URL replaced by `***`.
    pub(super) fn scrub(&self, text: &str) -> String {
        let mut t = text.to_string();
        for s in &self.secrets {
            t = t.replace(s.as_str(), "***");
        }
        t
    }
}

/// `url` without its `user:password@`, and that part (without the `@`).
fn split_userinfo(url: &str) -> (String, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_string(), None);
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rsplit_once('@') {
        Some((userinfo, host)) => (
            format!("{scheme}://{host}{}", &rest[end..]),
            Some(userinfo.to_string()),
        ),
        None => (url.to_string(), None),
    }
}

/// The values of the `${VAR}` references of `url` that are set and long enough to be secrets.
fn env_values(url: &str) -> Vec<String> {
    pieces(url)
        .filter_map(|p| match p {
            Piece::Var(var) => std::env::var(var).ok(),
            Piece::Text(_) => None,
        })
        .filter(|v| v.len() >= MIN_SECRET)
        .collect()
}
