//! `[[mqtt.users]]`: who may log in to the embedded broker, and with which rights (README
//! "Security"). A guard post's app that acknowledges alerts over MQTT gets a `guard` user; a
//! screen that only shows them gets a `reader`.
//!
//! The password is never in the file: `password_env` names the environment variable that holds
//! it (the file travels: backups, the admin page's version history, a copy sent to whoever
//! helps). `ronda run` reads the variables at start and stops with the user's name and the
//! variable's when one is unset.

use std::collections::BTreeSet;

use toml::Table;

use super::read::{Reader, join};
use super::values::is_env_name;

/// The longest user name (it is shown in log lines).
pub const MAX_NAME_CHARS: usize = 64;

/// What a user of the embedded broker may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MqttRole {
    /// Read `<prefix>/...`; publish acknowledgements on `<prefix>/acks` (not retained).
    Guard,
    /// Read `<prefix>/...` only. `[mqtt] username`, and anonymous clients when the broker has
    /// no user at all, are readers.
    Reader,
}

impl MqttRole {
    pub fn as_str(&self) -> &'static str {
        match self {
            MqttRole::Guard => "guard",
            MqttRole::Reader => "reader",
        }
    }
}

/// One `[[mqtt.users]]` table, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MqttUser {
    pub name: String,
    pub role: MqttRole,
    /// Name of the environment variable holding the password (never the password itself).
    pub password_env: String,
}

/// Every `[[mqtt.users]]` table of `[mqtt]` (table `t`). `embedded`: whether the embedded
/// broker runs (users are its own; an external broker has its users in its own files);
/// `username`: `[mqtt] username`, which a user here must not repeat.
pub(super) fn read_mqtt_users(
    r: &mut Reader,
    t: &Table,
    embedded: bool,
    username: Option<&str>,
) -> Vec<MqttUser> {
    let tables = r.tables(t, "mqtt", "users");
    if !embedded && !tables.is_empty() {
        r.issue(
            "mqtt.users",
            "[[mqtt.users]] are the embedded broker's users; an external broker (`url`) keeps \
             its users and rights in its own files (Mosquitto: password_file and acl_file): \
             remove them here, or set embedded = true",
        );
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut names = BTreeSet::new();
    for (i, u) in tables.into_iter().enumerate() {
        let place = format!("mqtt.users[{i}]");
        r.known_keys(u, &place, &["name", "role", "password_env"]);
        let name = r.required(u, &place, "name");
        if !name.is_empty() {
            if let Some(problem) = name_problem(&name) {
                r.issue(join(&place, "name"), problem);
            } else if !names.insert(name.clone()) {
                r.issue(
                    join(&place, "name"),
                    format!("user `{name}` is listed twice; give each guard post its own name"),
                );
            } else if username == Some(name.as_str()) {
                r.issue(
                    join(&place, "name"),
                    format!(
                        "`{name}` is already [mqtt] username (a reader); give this user another \
                         name, or remove username and password_env from [mqtt]"
                    ),
                );
            }
        }
        let role = match u.get("role") {
            None => {
                r.issue(
                    join(&place, "role"),
                    "is missing; use \"guard\" (reads, and may publish acknowledgements on \
                     <prefix>/acks) or \"reader\" (reads only)",
                );
                MqttRole::Reader
            }
            Some(_) => match r.choice(u, &place, "role", "reader", &["guard", "reader"]) {
                "guard" => MqttRole::Guard,
                _ => MqttRole::Reader,
            },
        };
        let password_env = r.required(u, &place, "password_env");
        if !password_env.is_empty() && !is_env_name(&password_env) {
            r.issue(
                join(&place, "password_env"),
                "should be the NAME of an environment variable (like RONDA_MQTT_POS1), not the \
                 password: export RONDA_MQTT_POS1=<the password> before starting ronda",
            );
        }
        out.push(MqttUser {
            name,
            role,
            password_env,
        });
    }
    out
}

/// Why `name` cannot be a broker user's name, if it cannot.
fn name_problem(name: &str) -> Option<String> {
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        Some(format!(
            "is {chars} characters long; use at most {MAX_NAME_CHARS}, e.g. \"pos1\""
        ))
    } else if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Some(format!(
            "`{}` has a space or an invisible character; use letters, digits, - and _, e.g. \
             \"pos1\"",
            crate::topic::shown(name)
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{MqttRole, Settings};
    use std::path::Path;

    fn parse(mqtt: &str) -> Result<Settings, crate::config::ConfigError> {
        Settings::parse(
            &format!("[site]\nid = \"rw9\"\n[mqtt]\n{mqtt}"),
            Path::new("t.toml"),
        )
    }

    #[test]
    fn users_are_read_with_their_rights() {
        let s = parse(
            "[[mqtt.users]]\nname = \"pos1\"\nrole = \"guard\"\npassword_env = \"RONDA_MQTT_POS1\"\n\
             [[mqtt.users]]\nname = \"layar\"\nrole = \"reader\"\npassword_env = \"RONDA_MQTT_TV\"\n",
        )
        .unwrap();
        let u = &s.mqtt.users;
        assert_eq!(u.len(), 2);
        assert_eq!(
            (u[0].name.as_str(), u[0].role, u[0].password_env.as_str()),
            ("pos1", MqttRole::Guard, "RONDA_MQTT_POS1")
        );
        assert_eq!(u[1].role, MqttRole::Reader);
        assert!(parse("").unwrap().mqtt.users.is_empty());
    }

    #[test]
    fn each_mistake_is_placed_and_says_what_to_do() {
        let e = parse(
            "username = \"ronda\"\npassword_env = \"RONDA_MQTT_PASS\"\n\
             [[mqtt.users]]\nname = \"pos1\"\nrole = \"guard\"\npassword_env = \"hunter2 pass\"\n\
             [[mqtt.users]]\nname = \"pos1\"\nrole = \"admin\"\npassword_env = \"RONDA_A\"\n\
             [[mqtt.users]]\nname = \"ronda\"\npassword_env = \"RONDA_B\"\npasword_env = \"x\"\n\
             [[mqtt.users]]\nname = \"pos 2\"\nrole = \"reader\"\n",
        )
        .unwrap_err();
        let places: Vec<&str> = e.issues().iter().map(|i| i.place.as_str()).collect();
        assert_eq!(
            places,
            [
                "mqtt.users[0].password_env",
                "mqtt.users[1].name",
                "mqtt.users[1].role",
                "mqtt.users[2].pasword_env",
                "mqtt.users[2].name",
                "mqtt.users[2].role",
                "mqtt.users[3].name",
                "mqtt.users[3].password_env",
            ],
            "{e}"
        );
        let text = e.to_string();
        for words in [
            "not the password",
            "listed twice",
            "use one of \"guard\", \"reader\"",
            "did you mean `password_env`",
            "already [mqtt] username",
            "is missing; use \"guard\"",
            "has a space",
        ] {
            assert!(text.contains(words), "`{words}` not in {text}");
        }
        // the value of a mistyped password_env is never echoed
        assert!(!text.contains("hunter2"), "{text}");
    }

    /// The commented `[[mqtt.users]]` of a shipped file, uncommented (the comment lines around
    /// them dropped).
    fn uncommented_users(file: &str) -> String {
        let start = file.find("[[mqtt.users]]\n").expect("a commented example");
        let start = file[..start].rfind('\n').map_or(0, |i| i + 1);
        file[start..]
            .lines()
            .take_while(|l| l.starts_with('#'))
            .map(|l| l.trim_start_matches('#').trim())
            .filter(|l| l.starts_with("[[") || l.contains(" = "))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    #[test]
    fn the_shipped_examples_are_valid_once_uncommented() {
        let example = include_str!("../../config/ronda.example.toml");
        for file in [crate::config::DEFAULT_CONFIG, example] {
            let users = uncommented_users(file);
            let s = parse(&users).unwrap_or_else(|e| panic!("{users}\n{e}"));
            let roles: Vec<MqttRole> = s.mqtt.users.iter().map(|u| u.role).collect();
            assert_eq!(roles, [MqttRole::Guard, MqttRole::Reader], "{users}");
        }
    }

    #[test]
    fn an_external_broker_has_no_users_here() {
        let e = parse(
            "embedded = false\nurl = \"mqtt://broker.lan\"\n\
             [[mqtt.users]]\nname = \"pos1\"\nrole = \"guard\"\npassword_env = \"RONDA_MQTT_POS1\"\n",
        )
        .unwrap_err();
        assert_eq!(e.issues()[0].place, "mqtt.users", "{e}");
        assert!(e.to_string().contains("acl_file"), "{e}");
    }
}
