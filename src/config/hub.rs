//! The city hub's configuration (`ronda hub --config hub.toml`, `config/hub.example.toml`):
//! the city broker it subscribes to, its store and web address, its users, and the villages
//! with the account each village gave the hub on its own web API.
//!
//! Read like a village's file: every problem at once, each with its key and what to fix.
//! Passwords are only ever `${VARIABLE}` (as `[uplink]`'s): the hub reads the variables when it
//! starts (`crate::hub`), so this reading needs no secret and prints none.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use toml::Table;

use super::read::{Reader, join};
use super::secrets::{redact_url, single_var, url_has_literal_password};
use super::values::{check_addr, is_slug};
use super::{ConfigError, Language, syntax_reason};

/// What a hub user may see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HubRole {
    /// Every village, and the villages not in the configuration.
    CityAdmin,
    /// Only the villages of the user's `district`.
    DistrictOfficer,
}

impl HubRole {
    pub fn as_str(self) -> &'static str {
        match self {
            HubRole::CityAdmin => "city_admin",
            HubRole::DistrictOfficer => "district_officer",
        }
    }
}

/// `[[users]]`.
#[derive(Clone, PartialEq)]
pub struct HubUser {
    pub name: String,
    pub role: HubRole,
    /// The district a district officer sees (`None` for a city admin).
    pub district: Option<String>,
    /// argon2 PHC string (`ronda passwd`); never shown anywhere.
    pub password_hash: String,
}

impl std::fmt::Debug for HubUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubUser")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("district", &self.district)
            .finish_non_exhaustive()
    }
}

/// `[[villages]]`: a village box publishing to the city broker under `ronda/<site>/...`.
#[derive(Clone, PartialEq)]
pub struct HubVillage {
    /// The village's `[site] id`: the second level of its topics.
    pub site: String,
    /// Shown on the pages (default: the site id).
    pub name: String,
    pub district: String,
    /// The village box's web address (`http://10.8.0.9:8080`), for the clips; `None`: the hub
    /// shows the village's events but offers no clip.
    pub url: Option<String>,
    /// The account the village gave the hub on its web API; its role there decides what the
    /// hub may fetch (a `reviewer` may fetch incident clips).
    pub user: Option<String>,
    /// `${VARIABLE}` as written.
    pub password: Option<String>,
}

impl std::fmt::Debug for HubVillage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubVillage")
            .field("site", &self.site)
            .field("name", &self.name)
            .field("district", &self.district)
            .field("url", &self.url.as_deref().map(redact_url))
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

impl HubVillage {
    /// The variable the password comes from.
    pub fn password_var(&self) -> Option<&str> {
        self.password.as_deref().and_then(single_var)
    }
}

/// `[broker]`: the city broker the villages' `[uplink]` publishes to.
#[derive(Clone, PartialEq)]
pub struct HubBroker {
    pub url: String,
    pub username: Option<String>,
    /// `${VARIABLE}` as written.
    pub password: Option<String>,
    pub ca_file: Option<PathBuf>,
    /// Fixed, so the broker keeps the hub's session (and what arrived while it was away).
    pub client_id: String,
}

impl std::fmt::Debug for HubBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubBroker")
            .field("url", &redact_url(&self.url))
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("ca_file", &self.ca_file)
            .field("client_id", &self.client_id)
            .finish()
    }
}

impl HubBroker {
    pub fn password_var(&self) -> Option<&str> {
        self.password.as_deref().and_then(single_var)
    }
}

/// The whole hub file, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct HubSettings {
    /// `[hub] name`, shown on the pages (e.g. "Kota Batu").
    pub name: String,
    /// `[hub] timezone`: "today" of the pages and the times shown.
    pub timezone: chrono_tz::Tz,
    pub language: Language,
    /// `[hub] listen`: the web pages and API.
    pub listen: String,
    /// `[hub] store`: the SQLite file.
    pub store: PathBuf,
    /// `[hub] secure_cookie`: behind an HTTPS proxy.
    pub secure_cookie: bool,
    pub broker: HubBroker,
    pub users: Vec<HubUser>,
    pub villages: Vec<HubVillage>,
}

impl HubSettings {
    pub fn load(path: &Path) -> Result<HubSettings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        HubSettings::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<HubSettings, ConfigError> {
        let table: Table = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            reason: syntax_reason(text, e.message(), e.span()),
        })?;
        let mut r = Reader::default();
        let s = read_hub(&mut r, &table);
        if r.issues.is_empty() {
            Ok(s)
        } else {
            Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                issues: r.issues,
            })
        }
    }

    pub fn village(&self, site: &str) -> Option<&HubVillage> {
        self.villages.iter().find(|v| v.site == site)
    }
}

fn read_hub(r: &mut Reader, root: &Table) -> HubSettings {
    r.known_keys(root, "", &["hub", "broker", "users", "villages"]);
    let empty = Table::new();
    let t = r.table(root, "", "hub").unwrap_or(&empty);
    r.known_keys(
        t,
        "hub",
        &[
            "name",
            "timezone",
            "language",
            "listen",
            "store",
            "secure_cookie",
        ],
    );
    let name = r.string_or(t, "hub", "name", "");
    let tz_name = r.string_or(t, "hub", "timezone", "Asia/Jakarta");
    let timezone = tz_name.parse::<chrono_tz::Tz>().unwrap_or_else(|_| {
        r.issue(
            "hub.timezone",
            format!("`{tz_name}` is not a time zone; use e.g. \"Asia/Jakarta\" (WIB)"),
        );
        chrono_tz::Asia::Jakarta
    });
    let language = match r.choice(t, "hub", "language", "id", &["id", "en"]) {
        "en" => Language::En,
        _ => Language::Id,
    };
    let listen = r.string_or(t, "hub", "listen", "127.0.0.1:8090");
    check_addr(r, "hub.listen", &listen);
    let store = r.string_or(t, "hub", "store", "var/hub.db");
    if store.trim().is_empty() {
        r.issue(
            "hub.store",
            "must not be empty; e.g. store = \"var/hub.db\"",
        );
    }
    let secure_cookie = r.boolean(t, "hub", "secure_cookie", false);
    let broker = match r.table(root, "", "broker") {
        Some(b) => read_broker(r, b),
        None => {
            r.issue(
                "broker",
                "is missing: the hub needs [broker] url = \"mqtts://city.example:8883\" (the \
                 city broker the villages' [uplink] publishes to)",
            );
            HubBroker {
                url: String::new(),
                username: None,
                password: None,
                ca_file: None,
                client_id: DEFAULT_CLIENT_ID.into(),
            }
        }
    };
    let villages = read_villages(r, root);
    let districts: BTreeSet<&str> = villages.iter().map(|v| v.district.as_str()).collect();
    let users = read_users(r, root, &districts);
    HubSettings {
        name,
        timezone,
        language,
        listen,
        store: PathBuf::from(store),
        secure_cookie,
        broker,
        users,
        villages,
    }
}

const DEFAULT_CLIENT_ID: &str = "ronda-hub";

fn read_broker(r: &mut Reader, t: &Table) -> HubBroker {
    const P: &str = "broker";
    r.known_keys(
        t,
        P,
        &["url", "username", "password", "ca_file", "client_id"],
    );
    let url = r.required(t, P, "url");
    let lower = url.to_ascii_lowercase();
    let mqtt = lower.starts_with("mqtt://") || lower.starts_with("mqtts://");
    if !(url.is_empty() || mqtt) {
        r.issue(
            join(P, "url"),
            format!(
                "`{}` should look like mqtts://city.example:8883 or mqtt://host:1883 (the city's \
                 MQTT broker)",
                redact_url(&url)
            ),
        );
    }
    if url_has_literal_password(&url) || url.contains("${") {
        r.issue(
            join(P, "url"),
            "must not hold a password; write `username` and password = \"${VARIABLE}\" instead",
        );
    }
    let username = r.string(t, P, "username");
    let password = r.string(t, P, "password");
    read_password_pair(r, P, "username", &username, &password, "HUB_MQTT_PASSWORD");
    let ca_file = r.string(t, P, "ca_file").map(PathBuf::from);
    if ca_file.is_some() && !lower.starts_with("mqtts://") {
        r.issue(
            join(P, "ca_file"),
            "is used only with an mqtts:// url; change the url to mqtts://host:8883 or remove \
             ca_file",
        );
    }
    let client_id = r.string_or(t, P, "client_id", DEFAULT_CLIENT_ID);
    if client_id.is_empty()
        || client_id.len() > 128
        || client_id
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
    {
        r.issue(
            join(P, "client_id"),
            "should be 1 to 128 characters without spaces, e.g. \"ronda-hub\"; keep it fixed: \
             the broker keeps the hub's session under it",
        );
    }
    HubBroker {
        url,
        username,
        password,
        ca_file,
        client_id,
    }
}

/// `password` only as `${VARIABLE}`, and only with the user name (`user_key`) that goes with it.
fn read_password_pair(
    r: &mut Reader,
    place: &str,
    user_key: &str,
    user: &Option<String>,
    password: &Option<String>,
    example_var: &str,
) {
    if let Some(u) = user
        && (u.is_empty() || u.chars().count() > 64 || u.chars().any(char::is_control))
    {
        r.issue(
            join(place, user_key),
            "should be 1 to 64 characters on one line",
        );
    }
    match password {
        Some(p) if single_var(p).is_none() => r.issue(
            join(place, "password"),
            format!(
                "write it as ${{VARIABLE}}, e.g. password = \"${{{example_var}}}\", and set that \
                 environment variable for `ronda hub`: a password written out in the file ends \
                 up in every copy of it"
            ),
        ),
        Some(_) if user.is_none() => r.issue(
            join(place, user_key),
            format!("is missing: `password` needs the {user_key} it goes with"),
        ),
        None if user.is_some() => r.issue(
            join(place, "password"),
            format!(
                "is missing: `{user_key}` needs its password = \"${{{example_var}}}\" (set that \
                 variable for `ronda hub`)"
            ),
        ),
        _ => {}
    }
}

fn read_users(r: &mut Reader, root: &Table, districts: &BTreeSet<&str>) -> Vec<HubUser> {
    let mut users = Vec::new();
    let mut names = BTreeSet::new();
    for (i, u) in r.tables(root, "", "users").into_iter().enumerate() {
        let place = format!("users[{i}]");
        r.known_keys(u, &place, &["name", "role", "district", "password_hash"]);
        let name = r.required(u, &place, "name");
        if !name.is_empty() && !names.insert(name.clone()) {
            r.issue(
                join(&place, "name"),
                format!("user `{name}` is listed twice"),
            );
        }
        if !u.contains_key("role") {
            r.issue(
                join(&place, "role"),
                "is missing; use \"city_admin\" (every village) or \"district_officer\" (the \
                 villages of one district)",
            );
        }
        let role = match r.choice(
            u,
            &place,
            "role",
            "district_officer",
            &["city_admin", "district_officer"],
        ) {
            "city_admin" => HubRole::CityAdmin,
            _ => HubRole::DistrictOfficer,
        };
        let district = r.string(u, &place, "district");
        match (role, &district) {
            (HubRole::DistrictOfficer, None) => r.issue(
                join(&place, "district"),
                "is missing: a district officer sees the villages of one district, e.g. \
                 district = \"batu\"",
            ),
            (HubRole::DistrictOfficer, Some(d)) if !districts.contains(d.as_str()) => r.issue(
                join(&place, "district"),
                format!(
                    "no village is in district `{d}`, so this officer would see nothing; use one \
                     of the villages' districts ({})",
                    districts.iter().copied().collect::<Vec<_>>().join(", ")
                ),
            ),
            (HubRole::CityAdmin, Some(_)) => r.issue(
                join(&place, "district"),
                "is only for a district officer: a city admin sees every village; remove it",
            ),
            _ => {}
        }
        let hash = r.required(u, &place, "password_hash");
        if !hash.is_empty() && !hash.starts_with("$argon2") {
            r.issue(
                join(&place, "password_hash"),
                "is not a password hash; make one with `ronda passwd` (never write the password \
                 itself)",
            );
        }
        users.push(HubUser {
            name,
            role,
            district,
            password_hash: hash,
        });
    }
    users
}

fn read_villages(r: &mut Reader, root: &Table) -> Vec<HubVillage> {
    let mut out = Vec::new();
    let mut sites = BTreeSet::new();
    for (i, v) in r.tables(root, "", "villages").into_iter().enumerate() {
        let place = format!("villages[{i}]");
        r.known_keys(
            v,
            &place,
            &["site", "name", "district", "url", "user", "password"],
        );
        let site = r.required(v, &place, "site");
        if !site.is_empty() && !is_slug(&site) {
            r.issue(
                join(&place, "site"),
                format!(
                    "`{}` is not a site id: the village's [site] id is lowercase letters, \
                     digits, - and _",
                    crate::topic::shown(&site)
                ),
            );
        } else if !site.is_empty() && !sites.insert(site.clone()) {
            r.issue(
                join(&place, "site"),
                format!("village `{site}` is listed twice"),
            );
        }
        let name = r.string(v, &place, "name").unwrap_or_else(|| site.clone());
        let district = r.required(v, &place, "district");
        let url = r.string(v, &place, "url");
        if let Some(u) = &url {
            let lower = u.to_ascii_lowercase();
            let rest = lower
                .strip_prefix("http://")
                .or_else(|| lower.strip_prefix("https://"));
            match rest {
                None => r.issue(
                    join(&place, "url"),
                    format!(
                        "`{}` should be the village box's web address, e.g. \
                         \"http://10.8.0.9:8080\"",
                        redact_url(u)
                    ),
                ),
                Some(rest) if rest.contains('@') || u.contains("${") => r.issue(
                    join(&place, "url"),
                    "must not hold a login; write `user` and password = \"${VARIABLE}\" instead",
                ),
                Some(rest) if rest.trim_end_matches('/').contains(['/', '?', '#']) => r.issue(
                    join(&place, "url"),
                    format!(
                        "`{}` should be the box's address only (no path), e.g. \
                         \"http://10.8.0.9:8080\"",
                        crate::topic::shown(u)
                    ),
                ),
                Some(_) => {}
            }
        }
        let user = r.string(v, &place, "user");
        let password = r.string(v, &place, "password");
        read_password_pair(r, &place, "user", &user, &password, "HUB_RW9_PASSWORD");
        if user.is_some() && url.is_none() {
            r.issue(
                join(&place, "url"),
                "is missing: the account `user` is for the village box's web address, e.g. \
                 url = \"http://10.8.0.9:8080\"",
            );
        }
        out.push(HubVillage {
            site,
            name,
            district,
            url: url.map(|u| u.trim_end_matches('/').to_string()),
            user,
            password,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

    fn problems(text: &str) -> Vec<String> {
        HubSettings::parse(text, Path::new("hub.toml"))
            .unwrap_err()
            .issues()
            .iter()
            .map(|i| i.to_string())
            .collect()
    }

    #[test]
    fn the_example_is_valid() {
        let s = HubSettings::parse(
            include_str!("../../config/hub.example.toml"),
            Path::new("hub.example.toml"),
        )
        .unwrap();
        assert_eq!(s.villages.len(), 2);
        assert_eq!(s.broker.client_id, "ronda-hub");
        assert!(s.users.iter().any(|u| u.role == HubRole::DistrictOfficer));
        let shown = format!("{s:?}");
        assert!(!shown.contains("$argon2"), "{shown}");
        assert!(!shown.contains("HUB_"), "{shown}");
    }

    #[test]
    fn every_problem_names_its_key_and_the_fix() {
        let p = problems(&format!(
            "[hub]\nlisten = \"nowhere\"\nport = 1\n\
             [broker]\nurl = \"mqtt://hub:hunter2@city:1883\"\npassword = \"hunter2\"\n\
             [[users]]\nname = \"a\"\npassword_hash = \"hunter2\"\n\
             [[users]]\nname = \"b\"\nrole = \"district_officer\"\ndistrict = \"nowhere\"\npassword_hash = \"{HASH}\"\n\
             [[users]]\nname = \"c\"\nrole = \"city_admin\"\ndistrict = \"batu\"\npassword_hash = \"{HASH}\"\n\
             [[villages]]\nsite = \"RW 9\"\ndistrict = \"batu\"\nurl = \"http://kota:hunter2@10.0.0.9\"\n\
             [[villages]]\nsite = \"rw1\"\ndistrict = \"batu\"\nurl = \"http://10.0.0.1\"\nuser = \"kota\"\npassword = \"hunter2\"\n\
             [[villages]]\nsite = \"rw1\"\ndistrict = \"batu\"\nuser = \"kota\"\n",
        ));
        let has = |s: &str| p.iter().any(|x| x.starts_with(s));
        assert!(has("hub.listen: `nowhere` is not an address"), "{p:?}");
        assert!(has("hub.port: unknown key"), "{p:?}");
        assert!(has("broker.url: must not hold a password"), "{p:?}");
        assert!(has("broker.password: write it as ${VARIABLE}"), "{p:?}");
        assert!(has("users[0].role: is missing"), "{p:?}");
        assert!(
            has("users[0].password_hash: is not a password hash"),
            "{p:?}"
        );
        assert!(
            has("users[1].district: no village is in district `nowhere`"),
            "{p:?}"
        );
        assert!(
            has("users[2].district: is only for a district officer"),
            "{p:?}"
        );
        assert!(has("villages[0].site: `RW 9` is not a site id"), "{p:?}");
        assert!(has("villages[0].url: must not hold a login"), "{p:?}");
        assert!(
            has("villages[1].password: write it as ${VARIABLE}"),
            "{p:?}"
        );
        assert!(
            has("villages[2].site: village `rw1` is listed twice"),
            "{p:?}"
        );
        assert!(has("villages[2].password: is missing"), "{p:?}");
        assert!(has("villages[2].url: is missing"), "{p:?}");
        assert!(!p.iter().any(|x| x.contains("hunter2")), "{p:?}");
        assert_eq!(
            problems("[hub]\n"),
            [
                "broker: is missing: the hub needs [broker] url = \"mqtts://city.example:8883\" \
              (the city broker the villages' [uplink] publishes to)"
            ]
        );
    }
}
