//! `[uplink]`: the village's events (and, if wanted, camera status and line counts) also go to
//! an upstream broker, the city's, under the site's topics (`ronda/<site id>/...`).
//!
//! ```toml
//! [uplink]
//! url = "mqtts://city.example:8883"       # or mqtt://host:1883
//! username = "rw9"
//! password = "${CITY_MQTT_PASSWORD}"      # only as ${VARIABLE}: set it in ronda's environment
//! # ca_file = "/etc/ronda/city-ca.pem"    # mqtts:// with the city's own CA
//! # topics = ["events", "status", "counts"]  # what to send (default: all three)
//! # client_id = "ronda-rw9"               # default: ronda-<site id>
//! ```
//!
//! Checked here without I/O: the sink reads the password variable and the CA file when it
//! starts (`sinks::uplink`), so `check-config` on another machine does not need the secret.

use std::path::PathBuf;

use toml::{Table, Value};

use super::read::{Reader, join, type_name};
use super::secrets::{redact_url, single_var, url_has_literal_password};
use crate::topic;

const PLACE: &str = "uplink";

/// What the up-link sends (`topics`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UplinkTopics {
    /// `<prefix>/events`, every event, in order, from the outbox.
    pub events: bool,
    /// `<prefix>/cameras/<camera>/status` and `<prefix>/availability` (retained).
    pub status: bool,
    /// `<prefix>/lines/<camera>/<line>/counts` (retained).
    pub counts: bool,
}

impl Default for UplinkTopics {
    fn default() -> UplinkTopics {
        UplinkTopics {
            events: true,
            status: true,
            counts: true,
        }
    }
}

/// `[uplink]` as read and checked. Absent section: no up-link.
#[derive(Clone, PartialEq)]
pub struct Uplink {
    /// `mqtt://host[:port]` or `mqtts://host[:port]`, as written (never with a password).
    pub url: String,
    pub username: Option<String>,
    /// `${VARIABLE}` as written; the sink reads the variable when it starts.
    pub password: Option<String>,
    /// The PEM file of the CA that signed the city broker's certificate (`mqtts://`).
    pub ca_file: Option<PathBuf>,
    /// The MQTT client id, one per box: the city broker keeps this box's session under it.
    pub client_id: String,
    /// `ronda/<site id>` unless set: the hub subscribes to `ronda/+/...`.
    pub topic_prefix: String,
    pub topics: UplinkTopics,
}

impl std::fmt::Debug for Uplink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // the password is only a variable's name, but a Debug print must never be the place
        // where a mistyped secret shows up
        f.debug_struct("Uplink")
            .field("url", &redact_url(&self.url))
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("ca_file", &self.ca_file)
            .field("client_id", &self.client_id)
            .field("topic_prefix", &self.topic_prefix)
            .field("topics", &self.topics)
            .finish()
    }
}

impl Uplink {
    /// The variable the password comes from (`CITY_MQTT_PASSWORD` of `${CITY_MQTT_PASSWORD}`).
    pub fn password_var(&self) -> Option<&str> {
        self.password.as_deref().and_then(single_var)
    }
}

pub(super) fn read_uplink(r: &mut Reader, root: &Table, site_id: &str) -> Option<Uplink> {
    let t = r.table(root, "", PLACE)?;
    r.known_keys(
        t,
        PLACE,
        &[
            "url",
            "username",
            "password",
            "ca_file",
            "client_id",
            "topic_prefix",
            "topics",
        ],
    );
    let url = r.required(t, PLACE, "url");
    if !url.is_empty() {
        check_url(r, &url);
    }
    let username = r.string(t, PLACE, "username");
    if let Some(u) = &username
        && (u.is_empty() || u.chars().count() > 64 || u.chars().any(char::is_control))
    {
        r.issue(
            join(PLACE, "username"),
            "should be 1 to 64 characters on one line",
        );
    }
    let password = r.string(t, PLACE, "password");
    if let Some(p) = &password {
        if single_var(p).is_none() {
            r.issue(
                join(PLACE, "password"),
                "write it as ${VARIABLE}, e.g. password = \"${CITY_MQTT_PASSWORD}\", and set that \
                 environment variable on the box: a password written out in the file ends up in \
                 every copy of it",
            );
        } else if username.is_none() {
            r.issue(
                join(PLACE, "username"),
                "the city broker needs the user name that goes with `password`, e.g. \
                 username = \"rw9\"",
            );
        }
    }
    let ca_file = r.string(t, PLACE, "ca_file").map(PathBuf::from);
    if ca_file.is_some() && !url.to_ascii_lowercase().starts_with("mqtts://") {
        r.issue(
            join(PLACE, "ca_file"),
            "is used only with an mqtts:// url; change the url to mqtts://host:8883 or remove \
             ca_file",
        );
    }
    let client_id = r.string_or(t, PLACE, "client_id", &format!("ronda-{site_id}"));
    if client_id.is_empty()
        || client_id.len() > 128
        || client_id
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
    {
        r.issue(
            join(PLACE, "client_id"),
            "should be 1 to 128 characters without spaces, e.g. \"ronda-rw9\" (leave it out for \
             ronda-<site id>)",
        );
    }
    let topic_prefix = r.string_or(t, PLACE, "topic_prefix", &format!("ronda/{site_id}"));
    if let Some(problem) = topic::prefix_problem(&topic_prefix) {
        r.issue(join(PLACE, "topic_prefix"), problem);
    }
    let topics = read_topics(r, t);
    Some(Uplink {
        url,
        username,
        password,
        ca_file,
        client_id,
        topic_prefix,
        topics,
    })
}

fn check_url(r: &mut Reader, url: &str) {
    let place = join(PLACE, "url");
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("mqtt://") || lower.starts_with("mqtts://")) {
        r.issue(
            place.clone(),
            format!(
                "`{}` should look like mqtts://city.example:8883 or mqtt://host:1883 (the city's \
                 MQTT broker)",
                redact_url(url)
            ),
        );
    }
    if url_has_literal_password(url) || url.contains("${") {
        r.issue(
            place,
            "must not hold a password; write `username` and password = \"${VARIABLE}\" instead",
        );
    }
}

const TOPIC_NAMES: [&str; 3] = ["events", "status", "counts"];

fn read_topics(r: &mut Reader, t: &Table) -> UplinkTopics {
    let place = join(PLACE, "topics");
    let items = match t.get("topics") {
        None => return UplinkTopics::default(),
        Some(Value::Array(items)) => items,
        Some(v) => {
            r.issue(
                place,
                format!(
                    "should be a list such as [\"events\", \"status\", \"counts\"], got {}",
                    type_name(v)
                ),
            );
            return UplinkTopics::default();
        }
    };
    let mut topics = UplinkTopics {
        events: false,
        status: false,
        counts: false,
    };
    for (i, v) in items.iter().enumerate() {
        match v.as_str() {
            Some("events") => topics.events = true,
            Some("status") => topics.status = true,
            Some("counts") => topics.counts = true,
            Some(other) => r.issue(
                format!("{place}[{i}]"),
                format!(
                    "unknown `{other}`; use some of {}",
                    TOPIC_NAMES.map(|n| format!("\"{n}\"")).join(", ")
                ),
            ),
            None => r.issue(
                format!("{place}[{i}]"),
                format!("should be text in quotes, got {}", type_name(v)),
            ),
        }
    }
    if items.is_empty() {
        r.issue(
            place,
            "is empty, so nothing would be sent; remove the [uplink] section to switch the \
             up-link off",
        );
    }
    topics
}

#[cfg(test)]
mod tests {
    use crate::config::{ConfigError, Settings};
    use std::path::Path;

    fn parse(uplink: &str) -> Result<Settings, ConfigError> {
        Settings::parse(
            &format!("[site]\nid = \"rw9\"\n[uplink]\n{uplink}"),
            Path::new("t.toml"),
        )
    }

    fn problems(uplink: &str) -> Vec<String> {
        parse(uplink)
            .unwrap_err()
            .issues()
            .iter()
            .map(|i| i.to_string())
            .collect()
    }

    #[test]
    fn no_section_no_uplink() {
        let s = Settings::parse("[site]\nid = \"rw9\"\n", Path::new("t.toml")).unwrap();
        assert_eq!(s.uplink, None);
    }

    #[test]
    fn defaults_come_from_the_site_id() {
        let u = parse("url = \"mqtts://city.example:8883\"\nusername = \"rw9\"\npassword = \"${CITY_MQTT_PASSWORD}\"\n")
            .unwrap()
            .uplink
            .unwrap();
        assert_eq!(u.client_id, "ronda-rw9");
        assert_eq!(u.topic_prefix, "ronda/rw9");
        assert_eq!(u.password_var(), Some("CITY_MQTT_PASSWORD"));
        assert!(u.topics.events && u.topics.status && u.topics.counts);
        let shown = format!("{u:?}");
        assert!(!shown.contains("CITY_MQTT_PASSWORD"), "{shown}");
    }

    #[test]
    fn the_example_uplink_is_valid_once_uncommented() {
        let example = include_str!("../../config/ronda.example.toml");
        let block: String = example[example.find("# [uplink]").unwrap()..]
            .lines()
            .take_while(|l| l.starts_with('#'))
            .map(|l| format!("{}\n", l.trim_start_matches("# ")))
            .collect();
        let text = format!("[site]\nid = \"kepatihan-rw9\"\n{block}");
        let s = Settings::parse(&text, Path::new("example.toml")).unwrap();
        let u = s.uplink.unwrap();
        assert_eq!(u.url, "mqtts://city.example:8883");
        assert_eq!(u.password_var(), Some("CITY_MQTT_PASSWORD"));
        assert_eq!(u.topic_prefix, "ronda/kepatihan-rw9");
    }

    #[test]
    fn topics_choose_what_goes() {
        let u = parse("url = \"mqtt://city:1883\"\ntopics = [\"events\"]\n")
            .unwrap()
            .uplink
            .unwrap();
        assert!(u.topics.events && !u.topics.status && !u.topics.counts);
    }

    #[test]
    fn every_problem_names_its_setting_and_the_fix() {
        let p = problems(
            "url = \"http://city.example\"\npassword = \"hunter2\"\ntopics = [\"events\", \"faces\", 3]\n\
             ca_file = \"ca.pem\"\nclient_id = \"a b\"\nport = 1883\n",
        );
        let has = |s: &str| p.iter().any(|x| x.contains(s));
        assert!(
            has("uplink.url: `http://city.example` should look like mqtts://"),
            "{p:?}"
        );
        assert!(has("uplink.password: write it as ${VARIABLE}"), "{p:?}");
        assert!(!p.iter().any(|x| x.contains("hunter2")), "{p:?}");
        assert!(has("uplink.topics[1]: unknown `faces`"), "{p:?}");
        assert!(has("uplink.topics[2]: should be text"), "{p:?}");
        assert!(
            has("uplink.ca_file: is used only with an mqtts:// url"),
            "{p:?}"
        );
        assert!(has("uplink.client_id"), "{p:?}");
        assert!(has("uplink.port: unknown key"), "{p:?}");

        let p = problems("url = \"mqtt://rw9:hunter2@city:1883\"\n");
        assert!(
            p.iter()
                .any(|x| x.starts_with("uplink.url: must not hold a password")),
            "{p:?}"
        );
        assert!(!p.iter().any(|x| x.contains("hunter2")), "{p:?}");
        assert_eq!(problems("username = \"rw9\"\n"), ["uplink.url: is missing"]);
        let p = problems("url = \"mqtt://city\"\npassword = \"${P}\"\n");
        assert!(
            p[0].starts_with("uplink.username: the city broker needs"),
            "{p:?}"
        );
        let p = problems("url = \"mqtt://city\"\ntopics = []\n");
        assert!(p[0].starts_with("uplink.topics: is empty"), "{p:?}");
    }
}
