//! `[[notify]]`: the guards' phones. Each table is one destination (a Telegram bot, a WhatsApp
//! gateway, an ntfy topic) with its own filter, quiet hours and rate limit; `sinks::notify`
//! delivers to it from the store's outbox with its own cursor.
//!
//! Secrets (bot tokens, gateway tokens, API keys) are accepted only as one `${VARIABLE}`
//! reference: the file travels (backups, the admin page's version history, a copy sent to
//! whoever helps), the environment of the box does not.

use std::collections::BTreeSet;
use std::time::Duration;

use toml::{Table, Value};

use super::read::{self, Reader, join};
use super::{Language, Window, read_window};
use crate::events::{EventKind, Severity};

/// Where Telegram's Bot API is, unless `api_base` says otherwise (a local Bot API server, or a
/// test's).
pub const TELEGRAM_API: &str = "https://api.telegram.org";
/// The Fonnte-style gateway's send address, unless `url` says otherwise.
pub const FONNTE_SEND: &str = "https://api.fonnte.com/send";
/// The public ntfy server, unless `url` says otherwise.
pub const NTFY_SH: &str = "https://ntfy.sh";

/// The longest destination name (it appears in log lines and the store's cursor row).
const MAX_NAME: usize = 40;

/// One `[[notify]]` destination, validated. Secrets are kept as written (`${VAR}`); the sink
/// expands them when it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Notify {
    /// Unique; names the destination in logs and its cursor in the store.
    pub name: String,
    /// `enabled = false` keeps the table in the file without sending (the demo's Telegram).
    pub enabled: bool,
    pub service: Service,
    /// Language of the messages (default: `[site] language`).
    pub language: Language,
    /// Events below this severity are not sent.
    pub min_severity: Severity,
    /// Only these event types (`None`: every type). Both filters apply.
    pub kinds: Option<Vec<EventKind>>,
    /// Local hours in which this destination gets nothing (what falls in them is not sent
    /// later either: the guard page and MQTT still have it).
    pub quiet_hours: Option<Window>,
    /// At most `rate_max` messages per `rate_window`; what comes beyond is collapsed into one
    /// "and N more in M minutes" message when the window has room again.
    pub rate_max: u32,
    pub rate_window: Duration,
    /// Attach the incident's snapshot (off: text only, e.g. a gateway plan without media).
    pub photo: bool,
    /// One request, from connecting to the end of the answer.
    pub timeout: Duration,
}

/// The service of a destination and where it is.
#[derive(Clone, Debug, PartialEq)]
pub enum Service {
    /// Telegram Bot API: `sendPhoto` / `sendMessage` to each chat; with `acknowledge`, an inline
    /// button and `getUpdates` long polling for the presses.
    Telegram {
        /// `${VAR}` holding the bot token from BotFather.
        token: String,
        /// Group ids (`-100...`), user ids, or `@channelname`.
        chat_ids: Vec<String>,
        api_base: String,
        acknowledge: bool,
    },
    /// WAHA (self-hosted WhatsApp HTTP API): `POST /api/sendImage` / `sendText` as JSON.
    Waha {
        /// The WAHA server, e.g. `http://10.0.0.5:3000`.
        url: String,
        session: String,
        /// `...@g.us` (group) or `...@c.us` (person).
        chat_ids: Vec<String>,
        /// `${VAR}` holding WAHA's `X-Api-Key`, when the server has one.
        api_key: Option<String>,
    },
    /// A form-posting gateway in Fonnte's style: `Authorization: TOKEN`, `target`, `message`,
    /// the picture uploaded as `file`.
    GatewayForm {
        url: String,
        /// `${VAR}` holding the device token.
        token: String,
        /// Numbers or group ids as the gateway takes them (comma separated).
        target: String,
    },
    /// An ntfy topic: `Title`, `Priority`, `Tags` headers, the picture as the body.
    Ntfy {
        url: String,
        /// May be a `${VAR}`: on a public server the topic is the only thing keeping it private.
        topic: String,
        /// `${VAR}` holding an access token (`Authorization: Bearer`), for a server with users.
        token: Option<String>,
    },
}

impl Service {
    /// The word of `kind = "..."`.
    pub fn kind(&self) -> &'static str {
        match self {
            Service::Telegram { .. } => "telegram",
            Service::Waha { .. } => "waha",
            Service::GatewayForm { .. } => "gateway-form",
            Service::Ntfy { .. } => "ntfy",
        }
    }
}

/// Is `s` exactly one `${NAME}` reference (and nothing written out)?
pub fn is_env_ref(s: &str) -> bool {
    let mut p = super::secrets::pieces(s);
    matches!(
        (p.next(), p.next()),
        (Some(super::secrets::Piece::Var(name)), None)
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    )
}

/// At most `max` letters, digits, `-` and `_`.
fn plain_name(s: &str, max: usize) -> bool {
    s.chars().count() <= max
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Every `[[notify]]` table.
pub(super) fn read_notify(r: &mut Reader, root: &Table, site_language: Language) -> Vec<Notify> {
    let mut out = Vec::new();
    let mut names = BTreeSet::new();
    for (i, t) in r.tables(root, "", "notify").into_iter().enumerate() {
        let place = format!("notify[{i}]");
        if let Some(n) = read_one(r, t, &place, site_language) {
            if !n.name.is_empty() && !names.insert(n.name.clone()) {
                r.issue(
                    join(&place, "name"),
                    format!(
                        "`{}` is used twice; every destination needs its own name",
                        n.name
                    ),
                );
            }
            out.push(n);
        }
    }
    out
}

const COMMON: [&str; 10] = [
    "name",
    "kind",
    "enabled",
    "language",
    "min_severity",
    "kinds",
    "quiet_hours",
    "rate_limit",
    "rate_window_minutes",
    "timeout_seconds",
];

fn read_one(r: &mut Reader, t: &Table, place: &str, site_language: Language) -> Option<Notify> {
    let kind = r.choice(
        t,
        place,
        "kind",
        "",
        &["telegram", "waha", "gateway-form", "ntfy"],
    );
    if kind.is_empty() && !t.contains_key("kind") {
        r.issue(
            join(place, "kind"),
            "is missing; use one of \"telegram\", \"waha\", \"gateway-form\", \"ntfy\"",
        );
    }
    let own: &[&str] = match kind {
        "telegram" => &["token", "chat_ids", "api_base", "acknowledge", "photo"],
        "waha" => &["url", "session", "chat_ids", "api_key", "photo"],
        "gateway-form" => &["url", "token", "target", "photo"],
        "ntfy" => &["url", "topic", "token", "photo"],
        _ => &[],
    };
    if !kind.is_empty() {
        let known: Vec<&str> = COMMON.iter().chain(own).copied().collect();
        r.known_keys(t, place, &known);
    }
    let name = r.required(t, place, "name");
    if !name.is_empty() && !plain_name(&name, MAX_NAME) {
        r.issue(
            join(place, "name"),
            format!(
                "`{}` may only use letters, digits, - and _, at most {MAX_NAME} of them (it \
                 names the destination in the log)",
                crate::topic::shown(&name)
            ),
        );
    }
    let enabled = r.boolean(t, place, "enabled", true);
    let language = match t.get("language") {
        None => site_language,
        Some(_) => match r.choice(t, place, "language", "id", &["id", "en"]) {
            "en" => Language::En,
            _ => Language::Id,
        },
    };
    let min_severity = read::severity(r, t, place, "min_severity", Severity::Warning);
    let kinds = read::event_kinds(r, t, place);
    let quiet_hours = read_window(r, t, place, "quiet_hours");
    if let Some(w) = quiet_hours
        && w.start == w.end
    {
        r.issue(
            join(place, "quiet_hours"),
            "starts and ends at the same time; leave it out to send at all hours",
        );
    }
    let rate_max = r.integer(t, place, "rate_limit", 10, 1..=1000) as u32;
    let window = r.number(t, place, "rate_window_minutes", 10.0, 1.0..=1440.0);
    let timeout = r.number(t, place, "timeout_seconds", 15.0, 1.0..=120.0);
    let photo = r.boolean(t, place, "photo", true);
    let service = match kind {
        "telegram" => read_telegram(r, t, place),
        "waha" => read_waha(r, t, place),
        "gateway-form" => read_gateway(r, t, place),
        "ntfy" => read_ntfy(r, t, place),
        _ => return None,
    };
    Some(Notify {
        name,
        enabled,
        service,
        language,
        min_severity,
        kinds,
        quiet_hours,
        rate_max,
        rate_window: Duration::from_secs_f64(window * 60.0),
        photo,
        timeout: Duration::from_secs_f64(timeout),
    })
}

fn read_telegram(r: &mut Reader, t: &Table, place: &str) -> Service {
    let token = secret(r, t, place, "token", true, "RONDA_TELEGRAM_TOKEN").unwrap_or_default();
    let chat_ids = id_list(r, t, place, "chat_ids", "-1001234567890");
    for (i, id) in chat_ids.iter().enumerate() {
        let numeric = id
            .strip_prefix('-')
            .unwrap_or(id)
            .chars()
            .all(|c| c.is_ascii_digit());
        let channel = id.starts_with('@') && id.len() > 1;
        let number = numeric && !id.is_empty() && id != "-";
        if !number && !channel {
            r.issue(
                format!("{place}.chat_ids[{i}]"),
                format!(
                    "`{}` is not a Telegram chat id: a group's id is a number like \
                     -1001234567890 (see the README: \"find the group id\"), a channel is \
                     @name",
                    crate::topic::shown(id)
                ),
            );
        }
    }
    let api_base = web_address(r, t, place, "api_base", TELEGRAM_API);
    let acknowledge = r.boolean(t, place, "acknowledge", true);
    Service::Telegram {
        token,
        chat_ids,
        api_base,
        acknowledge,
    }
}

fn read_waha(r: &mut Reader, t: &Table, place: &str) -> Service {
    if !t.contains_key("url") {
        r.issue(
            join(place, "url"),
            "is missing: the address of the WAHA server, e.g. \"http://10.0.0.5:3000\"",
        );
    }
    let url = web_address(r, t, place, "url", "");
    let session = r.string_or(t, place, "session", "default");
    if session.trim().is_empty() {
        r.issue(
            join(place, "session"),
            "must not be empty (WAHA's is \"default\")",
        );
    }
    let chat_ids = id_list(r, t, place, "chat_ids", "120363012345678901@g.us");
    for (i, id) in chat_ids.iter().enumerate() {
        if !id.contains('@') {
            r.issue(
                format!("{place}.chat_ids[{i}]"),
                format!(
                    "`{}` is not a WhatsApp chat id: a group is <digits>@g.us, a person is the \
                     number with country code and @c.us, e.g. 6281234567890@c.us",
                    crate::topic::shown(id)
                ),
            );
        }
    }
    let api_key = secret(r, t, place, "api_key", false, "RONDA_WAHA_KEY");
    Service::Waha {
        url,
        session,
        chat_ids,
        api_key,
    }
}

fn read_gateway(r: &mut Reader, t: &Table, place: &str) -> Service {
    let url = web_address(r, t, place, "url", FONNTE_SEND);
    let token = secret(r, t, place, "token", true, "RONDA_FONNTE_TOKEN").unwrap_or_default();
    let target = r.required(t, place, "target");
    Service::GatewayForm { url, token, target }
}

fn read_ntfy(r: &mut Reader, t: &Table, place: &str) -> Service {
    let url = web_address(r, t, place, "url", NTFY_SH);
    let topic = r.required(t, place, "topic");
    if !topic.is_empty() && !is_env_ref(&topic) && !plain_name(&topic, 64) {
        r.issue(
            join(place, "topic"),
            "may only use letters, digits, - and _, at most 64 (ntfy's rule), or be a \
             ${VARIABLE}",
        );
    }
    let token = secret(r, t, place, "token", false, "RONDA_NTFY_TOKEN");
    Service::Ntfy { url, topic, token }
}

/// A secret: exactly one `${VAR}` reference. Written out, it is refused with what to write.
fn secret(
    r: &mut Reader,
    t: &Table,
    place: &str,
    key: &str,
    required: bool,
    example: &str,
) -> Option<String> {
    let v = if required {
        Some(r.required(t, place, key)).filter(|s| !s.is_empty())
    } else {
        r.string(t, place, key).filter(|s| !s.trim().is_empty())
    };
    let v = v?;
    if is_env_ref(v.trim()) {
        return Some(v.trim().to_string());
    }
    r.issue(
        join(place, key),
        format!(
            "write it as a ${{VARIABLE}}, e.g. {key} = \"${{{example}}}\", and set that \
             environment variable on the box: a {key} written in the file ends up in backups \
             and the admin page's version history (the value written here is not shown)"
        ),
    );
    None
}

/// A list of ids (text or whole numbers), at least one.
fn id_list(r: &mut Reader, t: &Table, place: &str, key: &str, example: &str) -> Vec<String> {
    let p = join(place, key);
    match t.get(key) {
        None => {
            r.issue(p, format!("is missing: a list like [\"{example}\"]"));
            Vec::new()
        }
        Some(Value::Array(items)) => {
            if items.is_empty() {
                r.issue(p.clone(), "is empty: nobody would get the alerts");
            }
            let mut out = Vec::new();
            for (i, v) in items.iter().enumerate() {
                match v {
                    Value::String(s) if !s.trim().is_empty() => out.push(s.trim().to_string()),
                    Value::Integer(n) => out.push(n.to_string()),
                    other => r.issue(
                        format!("{p}[{i}]"),
                        format!("should be an id in quotes, got {}", read::type_name(other)),
                    ),
                }
            }
            out
        }
        Some(v) => {
            r.issue(
                p,
                format!(
                    "should be a list like [\"{example}\"], got {}",
                    read::type_name(v)
                ),
            );
            Vec::new()
        }
    }
}

/// An `http://` or `https://` address without a trailing `/`; `default` when absent.
fn web_address(r: &mut Reader, t: &Table, place: &str, key: &str, default: &str) -> String {
    let Some(v) = r.string(t, place, key) else {
        return default.to_string();
    };
    let v = v.trim().trim_end_matches('/').to_string();
    let lower = v.to_ascii_lowercase();
    let host = lower
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""))
        .unwrap_or("");
    if !(lower.starts_with("http://") || lower.starts_with("https://")) || host.is_empty() {
        r.issue(
            join(place, key),
            format!(
                "`{}` should be a web address starting with http:// or https://",
                super::redact_webhook_url(&v)
            ),
        );
    } else if host.contains('@') || v.contains('?') {
        r.issue(
            join(place, key),
            "should be the server's address only (no user, password or ?query); secrets go in \
             their own ${VARIABLE} keys",
        );
    }
    v
}

/// Warnings about destinations that work but are unsafe or likely mistaken.
pub(super) fn warnings(list: &[Notify], out: &mut Vec<String>) {
    for (i, n) in list.iter().enumerate() {
        if !n.enabled {
            continue;
        }
        let place = format!("notify[{i}]");
        match &n.service {
            Service::Ntfy { url, topic, token } => {
                if token.is_none() && !is_env_ref(topic) && url.eq_ignore_ascii_case(NTFY_SH) {
                    out.push(format!(
                        "{place}.topic: on the public ntfy.sh anyone who knows the topic reads \
                         the alerts and their photos; put a long random topic in an environment \
                         variable (topic = \"${{RONDA_NTFY_TOPIC}}\") or run your own ntfy with \
                         a token"
                    ));
                }
            }
            Service::Telegram { api_base, .. }
            | Service::Waha { url: api_base, .. }
            | Service::GatewayForm { url: api_base, .. } => {
                if api_base.to_ascii_lowercase().starts_with("http://")
                    && !super::on_local_network(super::url_host(
                        api_base.split_once("://").map_or("", |(_, r)| r),
                    ))
                {
                    out.push(format!(
                        "{place}: `{}` is reached without TLS and may be off the local network: \
                         the token and the photos cross it readable; use https://",
                        super::redact_webhook_url(api_base)
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use std::path::Path;

    fn parse(s: &str) -> Result<Settings, crate::config::ConfigError> {
        Settings::parse(s, Path::new("test.toml"))
    }

    #[test]
    fn every_kind_is_read_with_its_defaults() {
        let s = parse(
            r#"
[site]
id = "rw9"
language = "en"
[[notify]]
name = "grup-ronda"
kind = "telegram"
token = "${RONDA_TG}"
chat_ids = [-1001234567890, "@pos_ronda"]
[[notify]]
name = "wa"
kind = "waha"
url = "http://10.0.0.5:3000/"
chat_ids = ["120363012345678901@g.us"]
api_key = "${WAHA_KEY}"
language = "id"
[[notify]]
name = "fonnte"
kind = "gateway-form"
token = "${FONNTE}"
target = "081234567890,120363012345678901@g.us"
enabled = false
[[notify]]
name = "push"
kind = "ntfy"
topic = "${TOPIC}"
quiet_hours = "22:00-05:00"
rate_limit = 3
rate_window_minutes = 5
min_severity = "alert"
kinds = ["intrusion"]
"#,
        )
        .unwrap();
        let n = &s.notify;
        assert_eq!(n.len(), 4);
        assert_eq!(
            n[0].service,
            Service::Telegram {
                token: "${RONDA_TG}".into(),
                chat_ids: vec!["-1001234567890".into(), "@pos_ronda".into()],
                api_base: TELEGRAM_API.into(),
                acknowledge: true,
            }
        );
        assert_eq!(n[0].language, Language::En, "the site's language");
        assert_eq!(n[0].min_severity, Severity::Warning);
        assert_eq!((n[0].rate_max, n[0].rate_window.as_secs()), (10, 600));
        assert!(n[0].photo && n[0].enabled);
        let Service::Waha { url, session, .. } = &n[1].service else {
            panic!()
        };
        assert_eq!(
            (url.as_str(), session.as_str()),
            ("http://10.0.0.5:3000", "default")
        );
        assert_eq!(n[1].language, Language::Id);
        assert_eq!(
            n[2].service,
            Service::GatewayForm {
                url: FONNTE_SEND.into(),
                token: "${FONNTE}".into(),
                target: "081234567890,120363012345678901@g.us".into()
            }
        );
        assert!(!n[2].enabled);
        let Service::Ntfy { url, .. } = &n[3].service else {
            panic!()
        };
        assert_eq!(url, NTFY_SH);
        assert!(n[3].quiet_hours.is_some());
        assert_eq!((n[3].rate_max, n[3].rate_window.as_secs()), (3, 300));
        assert_eq!(n[3].kinds, Some(vec![EventKind::Intrusion]));
    }

    #[test]
    fn written_out_secrets_and_other_mistakes_are_reported_with_their_places() {
        let e = parse(
            r#"
[site]
id = "rw9"
[[notify]]
name = "grup ronda"
kind = "telegram"
token = "123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
chat_ids = ["grup"]
[[notify]]
name = "wa"
kind = "waha"
chat_ids = "6281234567890"
api_key = "hunter2"
[[notify]]
name = "wa"
kind = "whatsapp"
[[notify]]
name = "push"
kind = "ntfy"
topic = "a b"
tokne = "${X}"
quiet_hours = "22-05"
"#,
        )
        .unwrap_err();
        let issues: Vec<String> = e.issues().iter().map(|i| i.to_string()).collect();
        let has = |s: &str| issues.iter().any(|i| i.contains(s));
        assert!(
            has("notify[0].name: `grup ronda` may only use"),
            "{issues:#?}"
        );
        assert!(
            has("notify[0].token: write it as a ${VARIABLE}"),
            "{issues:#?}"
        );
        assert!(
            has("notify[0].chat_ids[0]: `grup` is not a Telegram chat id"),
            "{issues:#?}"
        );
        assert!(has("notify[1].url: is missing"), "{issues:#?}");
        assert!(has("notify[1].chat_ids: should be a list"), "{issues:#?}");
        assert!(
            has("notify[1].api_key: write it as a ${VARIABLE}"),
            "{issues:#?}"
        );
        assert!(
            has("notify[2].kind: `whatsapp` is not allowed"),
            "{issues:#?}"
        );
        assert!(has("notify[3].topic: may only use"), "{issues:#?}");
        assert!(
            has("notify[3].tokne: unknown key `tokne`; did you mean `token`?"),
            "{issues:#?}"
        );
        assert!(
            has("notify[3].quiet_hours: `22-05` is not a time window"),
            "{issues:#?}"
        );
        let all = issues.join("\n");
        for secret in ["AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", "hunter2"] {
            assert!(!all.contains(secret), "a secret is shown: {all}");
        }
    }

    #[test]
    fn names_are_unique_and_a_public_topic_is_warned_about() {
        let e = parse(
            "[site]\nid = \"rw9\"\n[[notify]]\nname = \"a\"\nkind = \"ntfy\"\ntopic = \"x\"\n\
             [[notify]]\nname = \"a\"\nkind = \"ntfy\"\ntopic = \"y\"\n",
        )
        .unwrap_err();
        assert_eq!(
            e.issues()[0].to_string(),
            "notify[1].name: `a` is used twice; every destination needs its own name"
        );
        let s = parse(
            "[site]\nid = \"rw9\"\n[[notify]]\nname = \"a\"\nkind = \"ntfy\"\n\
             topic = \"ronda-kepatihan\"\n",
        )
        .unwrap();
        let w = s.warnings();
        assert!(
            w.iter()
                .any(|w| w.starts_with("notify[0].topic: on the public ntfy.sh")),
            "{w:?}"
        );
    }

    #[test]
    fn env_refs() {
        assert!(is_env_ref("${RONDA_TG}"));
        for bad in ["", "${}", "x${A}", "${A}x", "${A B}", "123:abc", "${A}${B}"] {
            assert!(!is_env_ref(bad), "{bad}");
        }
    }

    #[test]
    fn the_default_files_examples_are_valid_once_uncommented_and_the_demos_is_off() {
        let text = crate::config::DEFAULT_CONFIG;
        let start = text.find("# [[notify]]").unwrap();
        let end = text[start..].find("\n\n").map_or(text.len(), |i| start + i);
        let uncommented: String = text[start..end]
            .lines()
            .map(|l| l.strip_prefix("# ").unwrap_or(l))
            .filter(|l| !l.starts_with('#') && !l.trim_start().starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        let s = parse(&format!("[site]\nid = \"rw9\"\n{uncommented}")).unwrap();
        let kinds: Vec<&str> = s.notify.iter().map(|n| n.service.kind()).collect();
        assert_eq!(kinds, ["telegram", "waha", "gateway-form", "ntfy"]);
        let demo = Settings::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo.toml"))
            .unwrap();
        assert_eq!(demo.notify.len(), 1);
        assert!(!demo.notify[0].enabled, "the demo needs no bot");
    }
}
