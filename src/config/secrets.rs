//! Secrets in configuration text: the one `${VAR}` scanner, URL redaction (camera, MQTT and
//! webhook URLs), and the checks that keep literal secrets out of the file.

use super::values::is_env_name;

/// What is wrong with a `[webhook] url`, without printing any secret in it.
pub(super) fn webhook_url_problems(url: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let shown = redact_webhook_url(url);
    let lower = url.to_ascii_lowercase();
    let Some((scheme, rest)) = lower.split_once("://") else {
        return vec![format!(
            "`{shown}` is not a web address; write http://host:port/path or https://..."
        )];
    };
    if scheme != "http" && scheme != "https" {
        problems.push(format!(
            "`{shown}` should start with http:// or https:// (the address of the gateway that \
             receives the alerts)"
        ));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.is_empty() || host.starts_with(':') {
        problems.push(format!("`{shown}` has no host name"));
    } else {
        let port = match host.rsplit_once(']') {
            Some((_, after)) => after.strip_prefix(':'), // [::1]:8080
            None => host.rsplit_once(':').map(|(_, p)| p),
        };
        if let Some(p) = port
            && !p.contains("${")
            && !p.parse::<u16>().is_ok_and(|p| p > 0)
        {
            problems.push(format!(
                "`{shown}`: `{p}` is not a port; use a number from 1 to 65535"
            ));
        }
    }
    if url.chars().any(char::is_whitespace) {
        problems.push("contains a space; encode it as %20".into());
    }
    if url_has_literal_password(url) {
        problems.push(
            "contains a password; write it as ${VARIABLE} and set that environment variable on the box"
                .into(),
        );
    }
    // A token written out in the query is a secret in the file and in every copy of it, like a
    // camera password: it comes from the environment too.
    if let Some(key) = literal_query_secret(url) {
        problems.push(format!(
            "`?{key}=` holds a secret written out; write it as ${{VARIABLE}} (e.g. \
             ?{key}=${{RONDA_WEBHOOK_TOKEN}}) and set that environment variable on the box"
        ));
    }
    if pieces(url).any(|p| match p {
        Piece::Var(name) => !is_env_name(name),
        Piece::Text(t) => t.contains("${"),
    }) {
        problems.push(
            "has a `${` that is not a variable reference; write ${NAME} with letters, digits \
             and _"
                .into(),
        );
    }
    // The rest of the syntax (port, characters), with the references filled by a stand-in.
    if problems.is_empty() {
        let filled = fill_env_refs(url, "x");
        if let Err(e) = filled.parse::<ureq::http::Uri>() {
            problems.push(format!("`{shown}` is not a valid web address ({e})"));
        }
    }
    problems
}

/// `url` with every `${NAME}` replaced by `with`.
pub(super) fn fill_env_refs(url: &str, with: &str) -> String {
    pieces(url)
        .map(|p| match p {
            Piece::Text(t) => t,
            Piece::Var(_) => with,
        })
        .collect()
}

/// The host of `user:pw@host:port/...` (what follows `scheme://`).
pub(super) fn url_host(rest: &str) -> &str {
    let auth = rest.split(['/', '?']).next().unwrap_or("");
    let hostport = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
    if let Some(v6) = hostport.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    hostport.split(':').next().unwrap_or(hostport)
}

/// Whether `host` is on this box or the local network: loopback, private and link-local
/// addresses, and names without a domain or under a local-only one (`.local`, `.lan`,
/// `.home.arpa`, `.internal`). Anything else may be across the internet.
pub(super) fn on_local_network(host: &str) -> bool {
    use std::net::IpAddr;
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback() || ip.is_private() || ip.is_link_local(),
        Ok(IpAddr::V6(ip)) => {
            let first = ip.segments()[0];
            ip.is_loopback() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
        Err(_) => {
            let h = host.trim_end_matches('.').to_ascii_lowercase();
            h == "localhost"
                || !h.contains('.')
                || [".local", ".lan", ".home.arpa", ".internal"]
                    .iter()
                    .any(|d| h.ends_with(d))
        }
    }
}

/// `scheme://user:password@host...`: is the password written out (not a `${VAR}`)?
pub(super) fn url_has_literal_password(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let auth = rest.split('/').next().unwrap_or("");
    let Some((userinfo, _)) = auth.rsplit_once('@') else {
        return false;
    };
    match userinfo.split_once(':') {
        Some((_, pw)) => !(pw.is_empty() || pw.starts_with("${") && pw.ends_with('}')),
        None => false,
    }
}

/// Replace the password part of a URL with `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match auth.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{path}")
            } else {
                format!("{scheme}://{user}@{host}{path}")
            }
        }
        None => url.to_string(),
    }
}

/// A webhook URL as it may be shown (logs, `check-config`, the API). Webhook URLs often carry
/// their secret in the path (Telegram `/bot<token>/`, Slack and Discord hook ids) or the query
/// (`?token=`), so more goes than in [`redact_url`]:
/// - a password in `user:password@` becomes `***`;
/// - every query value becomes `***` (the keys stay) and a `#fragment` is dropped;
/// - a path segment stays only if it holds a `${NAME}` reference (a name is no secret) and is
///   otherwise short plain words (letters, `-`, `_`, `.`, at most 16 of them), or if it is one of
///   the gateways' common path words (`api`, `send`, `sendMessage`, `hooks`, `services`, `v1`
///   ...); otherwise it becomes `***`. A plain word of its own may be the secret: an ntfy topic
///   (`https://ntfy.sh/ronda-kepatihan`) is its own password.
///
/// `https://api.telegram.org/bot${TG_TOKEN}/sendMessage?chat_id=-100123` is shown as
/// `https://api.telegram.org/bot${TG_TOKEN}/sendMessage?chat_id=***`.
pub fn redact_webhook_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".into();
    };
    let rest = rest.split('#').next().unwrap_or("");
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match before_query.find('/') {
        Some(i) => before_query.split_at(i),
        None => (before_query, ""),
    };
    let mut out = format!("{scheme}://");
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            let user = if plain_segment(user) { user } else { "***" };
            if userinfo.contains(':') {
                out.push_str(&format!("{user}:***@{host}"));
            } else {
                out.push_str(&format!("{user}@{host}"));
            }
        }
        None => out.push_str(authority),
    }
    for (i, seg) in path.split('/').enumerate() {
        if i == 0 {
            continue; // before the first `/`
        }
        out.push('/');
        let shown = if seg.contains("${") {
            plain_segment(seg)
        } else {
            seg.is_empty() || PATH_WORDS.iter().any(|w| seg.eq_ignore_ascii_case(w))
        };
        out.push_str(if shown { seg } else { "***" });
    }
    if let Some(q) = query {
        out.push('?');
        let pairs: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if plain_segment(k) => format!("{k}=***"),
                Some(_) => "***=***".into(),
                None if plain_segment(pair) => pair.to_string(),
                None => "***".into(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    out
}

/// Path words of the gateways ronda's webhook is used with, shown as they are in a redacted URL.
pub(super) const PATH_WORDS: [&str; 18] = [
    "api",
    "send",
    "sendMessage",
    "sendPhoto",
    "sendDocument",
    "message",
    "messages",
    "hook",
    "hooks",
    "webhook",
    "webhooks",
    "services",
    "notify",
    "alert",
    "alerts",
    "v1",
    "v2",
    "v3",
];

/// Short plain words once `${NAME}` references are taken out (see [`redact_webhook_url`]).
pub(super) fn plain_segment(seg: &str) -> bool {
    let words = fill_env_refs(seg, "");
    words.len() <= 16
        && words
            .chars()
            .all(|c| c.is_ascii_alphabetic() || matches!(c, '-' | '_' | '.'))
}

/// The first query key of `url` that names a secret (`token`, `key`, `api_key`, `secret`,
/// `password`, `sig` ...) and has a value written out rather than a `${VAR}` reference.
pub(super) fn literal_query_secret(url: &str) -> Option<String> {
    const SECRET: [&str; 11] = [
        "token",
        "key",
        "apikey",
        "secret",
        "password",
        "passwd",
        "pass",
        "pw",
        "sig",
        "signature",
        "auth",
    ];
    let query = url.split_once('?')?.1.split('#').next().unwrap_or("");
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        let key = k.to_ascii_lowercase();
        let secret = SECRET.iter().any(|w| {
            key == *w || key.ends_with(&format!("_{w}")) || key.ends_with(&format!("-{w}"))
        });
        (secret && !fill_env_refs(v, "").is_empty()).then(|| crate::topic::shown(k))
    })
}

/// A piece of configuration text: written text, or a `${NAME}` reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    /// The name between `${` and `}` (not checked: see [`is_env_name`]).
    Var(&'a str),
}

/// The one `${VAR}` scanner (config checks, expansion, the webhook's and the editor's
/// redaction all read references through it): `s` as text and references, in order. A `${`
/// without its `}` is text.
pub fn pieces(s: &str) -> impl Iterator<Item = Piece<'_>> {
    let mut rest = s;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (piece, next) = match rest.find("${") {
            Some(0) => match rest[2..].find('}') {
                Some(j) => (Piece::Var(&rest[2..2 + j]), &rest[3 + j..]),
                None => (Piece::Text(rest), ""),
            },
            Some(i) => (Piece::Text(&rest[..i]), &rest[i..]),
            None => (Piece::Text(rest), ""),
        };
        rest = next;
        Some(piece)
    })
}

/// `${NAME}` and nothing else: the variable's name (a password setting of `[uplink]` or of
/// the hub's configuration is only ever this).
pub fn single_var(s: &str) -> Option<&str> {
    let mut p = pieces(s);
    match (p.next(), p.next()) {
        (Some(Piece::Var(name)), None) if is_env_name(name) => Some(name),
        _ => None,
    }
}

/// Fill `${VAR}` from the environment; `Err(VAR)` names the first one missing.
pub fn expand_env(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    for p in pieces(s) {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Var(var) => match std::env::var(var) {
                Ok(v) => out.push_str(&v),
                Err(_) => return Err(var.to_string()),
            },
        }
    }
    Ok(out)
}
