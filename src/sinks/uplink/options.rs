//! Where and how the up-link connects, from `[uplink]`: the city broker's address, login and
//! TLS, and what is sent. The password is read from its variable here, once, at start-up.

use std::time::Duration;

use crate::config::{Settings, Uplink, UplinkTopics, redact_url};
use crate::sinks::SinkError;
use crate::sinks::mqtt::{MqttOptions, Tls, parse_url, read_ca};

/// Everything the up-link needs. The connection part is the local sink's [`MqttOptions`]
/// (whose `Debug` hides the password); the timings are tuned for a link that is down for hours.
#[derive(Clone, Debug)]
pub struct UplinkOptions {
    pub link: MqttOptions,
    pub topics: UplinkTopics,
}

impl UplinkOptions {
    /// Plain MQTT to `host:port` for site `site`, everything sent (tests).
    pub fn new(host: impl Into<String>, port: u16, site: &str) -> UplinkOptions {
        let mut link = MqttOptions::new(host, port, site);
        tune(&mut link);
        UplinkOptions {
            link,
            topics: UplinkTopics::default(),
        }
    }

    /// From the validated settings; `None` without `[uplink]`. A password variable that is not
    /// set stops ronda at start-up (naming it) instead of failing every reconnect.
    pub fn from_settings(s: &Settings) -> Result<Option<UplinkOptions>, SinkError> {
        s.uplink
            .as_ref()
            .map(|u| from_parts(u, &s.site.id, |var| std::env::var(var).ok()))
            .transpose()
    }

    /// `mqtt[s]://host:port` of the city broker, for messages (never with credentials).
    pub fn broker(&self) -> String {
        self.link.broker()
    }
}

/// A city link is slower and less reliable than the village's LAN: a longer keep-alive (fewer
/// pings on a metered line) and reconnects backing off to a minute.
fn tune(o: &mut MqttOptions) {
    o.keep_alive = Duration::from_secs(30);
    o.window = 32;
    o.backoff_min = Duration::from_secs(1);
    o.backoff_max = Duration::from_secs(60);
    o.connect_timeout = Duration::from_secs(10);
}

/// [`UplinkOptions::from_settings`] with the environment passed in (tests must not set
/// variables of the whole process).
pub(crate) fn from_parts(
    u: &Uplink,
    site: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<UplinkOptions, SinkError> {
    let url = parse_url(&u.url).map_err(|reason| SinkError::Uplink {
        key: "url",
        reason: format!("`{}`: {reason}", redact_url(&u.url)),
    })?;
    let mut o = UplinkOptions::new(url.host, url.port, site);
    o.topics = u.topics;
    o.link.client_id = u.client_id.clone();
    o.link.topic_prefix = u.topic_prefix.clone();
    o.link.username = u.username.clone().or(url.user);
    if let Some(var) = u.password_var() {
        let password = env(var)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| SinkError::Uplink {
                key: "password",
                reason: format!(
                    "uses ${{{var}}} but that environment variable is not set (or empty): export \
                 {var}=<the city broker's password> in ronda's environment (e.g. \
                 Environment={var}=... in its systemd unit), or remove [uplink]"
                ),
            })?;
        o.link.password = Some(password);
    }
    if url.tls {
        o.link.tls = Some(match &u.ca_file {
            Some(file) => read_ca(file).map_err(|e| match e {
                SinkError::CaFile { file, reason } => SinkError::Uplink {
                    key: "ca_file",
                    reason: format!(
                        "{}: {reason}; point it at the PEM certificate of the CA that signed \
                         the city broker's certificate (ask the city's administrator)",
                        file.display()
                    ),
                },
                other => other,
            })?,
            None => Tls::SystemRoots,
        });
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uplink(url: &str) -> Uplink {
        Uplink {
            url: url.into(),
            username: Some("rw9".into()),
            password: Some("${CITY_TEST_PASS}".into()),
            ca_file: None,
            client_id: "ronda-rw9".into(),
            topic_prefix: "ronda/rw9".into(),
            topics: UplinkTopics::default(),
        }
    }

    #[test]
    fn the_password_comes_from_its_variable_and_is_never_shown() {
        let u = uplink("mqtts://city.example");
        let err = from_parts(&u, "rw9", |_| None).unwrap_err().to_string();
        assert!(
            err.starts_with("[uplink] password: uses ${CITY_TEST_PASS}") && err.contains("export"),
            "{err}"
        );
        let o = from_parts(&u, "rw9", |v| {
            (v == "CITY_TEST_PASS").then(|| "hunter2".to_string())
        })
        .unwrap();
        assert_eq!(o.link.password.as_deref(), Some("hunter2"));
        assert_eq!(o.link.port, 8883);
        assert!(matches!(o.link.tls, Some(Tls::SystemRoots)));
        assert_eq!(o.link.client_id, "ronda-rw9");
        let shown = format!("{o:?} {}", o.broker());
        assert!(
            !shown.contains("hunter2") && shown.contains("mqtts://city.example:8883"),
            "{shown}"
        );
    }

    #[test]
    fn a_bad_ca_file_names_the_uplink_setting() {
        let mut u = uplink("mqtts://city.example:8883");
        u.ca_file = Some("/nonexistent/city-ca.pem".into());
        let err = from_parts(&u, "rw9", |_| Some("pw".into()))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("[uplink] ca_file: /nonexistent/city-ca.pem"),
            "{err}"
        );
    }
}
