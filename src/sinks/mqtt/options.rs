//! Where and how the MQTT sink connects, from `[mqtt]` and the site id.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::config::{Mqtt, Settings, expand_env, redact_url};
use crate::sinks::SinkError;

/// How the connection is encrypted.
#[derive(Clone, PartialEq, Eq)]
pub enum Tls {
    /// Trust the system's CA certificates (`mqtts://` without `ca_file`).
    SystemRoots,
    /// Trust the CA certificate(s) of this PEM file (`ca_file`), read at start-up.
    Ca { file: PathBuf, pem: Vec<u8> },
}

/// Everything the sink needs to connect. Build it with [`MqttOptions::from_settings`] (or
/// [`MqttOptions::new`] in tests); the timing fields have working defaults.
#[derive(Clone)]
pub struct MqttOptions {
    pub host: String,
    pub port: u16,
    pub tls: Option<Tls>,
    pub username: Option<String>,
    /// Read from the environment variable named by `[mqtt] password_env`; never printed.
    pub password: Option<String>,
    /// `ronda-<site>`: one session per site and box.
    pub client_id: String,
    /// `ronda/<site>` unless `[mqtt] topic_prefix` says otherwise.
    pub topic_prefix: String,
    /// Ping interval; the broker declares the sink gone (and publishes the last will) after 1.5
    /// times this without a packet.
    pub keep_alive: Duration,
    /// Events published but not yet acknowledged, at most.
    pub window: usize,
    /// Reconnect delays: from `backoff_min`, doubling up to `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// How long a connection attempt (TCP, TLS and CONNACK) may take.
    pub connect_timeout: Duration,
    /// Events wait for a reader (the embedded broker just started; `super::readers`).
    pub hold: Option<super::Hold>,
}

impl std::fmt::Debug for MqttOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttOptions")
            .field("broker", &self.broker())
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("client_id", &self.client_id)
            .field("topic_prefix", &self.topic_prefix)
            .field("keep_alive", &self.keep_alive)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl MqttOptions {
    /// Plain MQTT to `host:port` for site `site`, with the default topic prefix and timings.
    pub fn new(host: impl Into<String>, port: u16, site: &str) -> MqttOptions {
        MqttOptions {
            host: host.into(),
            port,
            tls: None,
            username: None,
            password: None,
            client_id: format!("ronda-{site}"),
            topic_prefix: format!("ronda/{site}"),
            keep_alive: Duration::from_secs(15),
            window: 100,
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            hold: None,
        }
    }

    /// From the validated settings: the external broker of `[mqtt] url`, or the embedded one on
    /// `[mqtt] listen`. The password is read from the environment now, so a missing variable
    /// stops ronda at start-up instead of failing every reconnect.
    pub fn from_settings(s: &Settings) -> Result<MqttOptions, SinkError> {
        from_parts(&s.mqtt, &s.site.id, |var| std::env::var(var).ok())
    }

    /// `mqtt://host:port` or `mqtts://host:port`, for messages (never with credentials).
    pub fn broker(&self) -> String {
        let scheme = if self.tls.is_some() { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// [`MqttOptions::from_settings`] with the environment passed in (tests must not set variables
/// of the whole process).
pub(crate) fn from_parts(
    m: &Mqtt,
    site: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<MqttOptions, SinkError> {
    let mut o = MqttOptions::new("", 0, site);
    o.topic_prefix = m.topic_prefix.clone();
    o.username = m.username.clone();
    match m.url.as_deref().filter(|_| !m.embedded) {
        Some(url) => {
            let u = parse_url(url).map_err(|reason| SinkError::Url {
                url: redact_url(url),
                reason,
            })?;
            (o.host, o.port) = (u.host, u.port);
            if o.username.is_none() {
                o.username = u.user;
            }
            if let Some(pw) = u.password {
                // Only `${VAR}` gets here: the config refuses a password written in the url.
                o.password = Some(expand_env(&pw).map_err(|var| SinkError::PasswordEnv { var })?);
            }
            if u.tls {
                o.tls = Some(match &m.ca_file {
                    Some(file) => read_ca(file)?,
                    None => Tls::SystemRoots,
                });
            }
        }
        None => {
            let addr: SocketAddr = m.listen.parse().map_err(|_| SinkError::Listen {
                listen: m.listen.clone(),
                reason: "not an address; write IP:PORT, e.g. \"127.0.0.1:1883\"".into(),
            })?;
            // A broker listening on every interface is reached on loopback.
            let ip = match addr.ip() {
                IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
                ip => ip,
            };
            (o.host, o.port) = (ip.to_string(), addr.port());
            // A client connecting with ronda's id would take its session over and throw ronda
            // off the broker (again at every reconnect). Nobody needs to know the id of the
            // embedded broker's one publisher, so it is new at every start; an external broker
            // keeps `ronda-<site>`, which its ACLs may name.
            o.client_id = format!("ronda-{site}-{:016x}", rand::random::<u64>());
        }
    }
    if let Some(var) = &m.password_env {
        o.password = Some(env(var).ok_or_else(|| SinkError::PasswordEnv { var: var.clone() })?);
    }
    Ok(o)
}

pub(crate) fn read_ca(file: &std::path::Path) -> Result<Tls, SinkError> {
    let pem = std::fs::read(file).map_err(|e| SinkError::CaFile {
        file: file.to_path_buf(),
        reason: e.to_string(),
    })?;
    if !pem
        .windows(b"-----BEGIN CERTIFICATE-----".len())
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        return Err(SinkError::CaFile {
            file: file.to_path_buf(),
            reason: "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        });
    }
    Ok(Tls::Ca {
        file: file.to_path_buf(),
        pem,
    })
}

#[derive(Debug, PartialEq)]
pub(crate) struct BrokerUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
}

/// `mqtt[s]://[user[:pass]@]host[:port][/...]`; IPv6 hosts in brackets.
pub(crate) fn parse_url(url: &str) -> Result<BrokerUrl, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or("no scheme; write mqtt://host:1883 or mqtts://host:8883")?;
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "mqtt" | "tcp" => false,
        "mqtts" | "ssl" => true,
        other => return Err(format!("unknown scheme `{other}`; use mqtt:// or mqtts://")),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        Some(u) => match u.split_once(':') {
            Some((u, p)) => (Some(u.to_string()), Some(p.to_string())),
            None => (Some(u.to_string()), None),
        },
        None => (None, None),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("unclosed [ in the host")?;
        (h, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or(format!("`{p}` is not a port number"))?,
        None if tls => 8883,
        None => 1883,
    };
    Ok(BrokerUrl {
        tls,
        host: host.to_string(),
        port,
        user: user.filter(|u| !u.is_empty()),
        password: password.filter(|p| !p.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mqtt(url: Option<&str>) -> Mqtt {
        Mqtt {
            embedded: url.is_none(),
            listen: "0.0.0.0:1884".into(),
            url: url.map(String::from),
            username: None,
            password_env: None,
            ca_file: None,
            tls_cert: None,
            tls_key: None,
            topic_prefix: "ronda/rw9".into(),
            users: Vec::new(),
        }
    }

    #[test]
    fn urls_parse() {
        let u = parse_url("mqtt://broker.lan").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port),
            (false, "broker.lan", 1883)
        );
        let u = parse_url("mqtts://ronda@10.0.0.5/").unwrap();
        assert_eq!(
            (u.tls, u.port, u.user.as_deref()),
            (true, 8883, Some("ronda"))
        );
        let u = parse_url("mqtt://[fd00::5]:1999").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("fd00::5", 1999));
        assert!(parse_url("http://x").unwrap_err().contains("mqtt://"));
        assert!(parse_url("mqtt://x:99999").unwrap_err().contains("99999"));
        assert!(parse_url("broker:1883").is_err());
    }

    #[test]
    fn embedded_broker_is_reached_on_loopback() {
        let o = from_parts(&mqtt(None), "rw9", |_| None).unwrap();
        assert_eq!((o.host.as_str(), o.port), ("127.0.0.1", 1884));
        assert!(
            o.client_id.starts_with("ronda-rw9-") && o.client_id.len() == "ronda-rw9-".len() + 16,
            "{}",
            o.client_id
        );
        let again = from_parts(&mqtt(None), "rw9", |_| None).unwrap();
        assert_ne!(o.client_id, again.client_id, "a guessable client id");
        assert_eq!(o.topic_prefix, "ronda/rw9");
        assert!(o.tls.is_none() && o.password.is_none());
    }

    #[test]
    fn password_comes_from_the_named_variable_and_is_never_shown() {
        let mut m = mqtt(Some("mqtt://broker.lan:1883"));
        m.username = Some("ronda".into());
        m.password_env = Some("RONDA_TEST_MQTT_PASS".into());
        let err = from_parts(&m, "rw9", |_| None).unwrap_err().to_string();
        assert!(err.contains("RONDA_TEST_MQTT_PASS"), "{err}");

        let o = from_parts(&m, "rw9", |v| {
            (v == "RONDA_TEST_MQTT_PASS").then(|| "hunter2".to_string())
        })
        .unwrap();
        assert_eq!(o.password.as_deref(), Some("hunter2"));
        let shown = format!("{o:?} {}", o.broker());
        assert!(
            !shown.contains("hunter2") && shown.contains("broker.lan"),
            "{shown}"
        );
    }

    #[test]
    fn a_ca_file_must_exist_and_hold_a_certificate() {
        let mut m = mqtt(Some("mqtts://broker.lan"));
        m.ca_file = Some("/nonexistent/ca.pem".into());
        let err = from_parts(&m, "rw9", |_| None).unwrap_err().to_string();
        assert!(
            err.contains("/nonexistent/ca.pem") && err.contains("ca_file"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ca.pem");
        std::fs::write(&f, "not a cert").unwrap();
        m.ca_file = Some(f);
        let err = from_parts(&m, "rw9", |_| None).unwrap_err().to_string();
        assert!(err.contains("no PEM certificate"), "{err}");
    }
}
