//! A configuration file's text as the admin page may show it (version history, diffs): password
//! hashes hidden, camera and broker URLs without their password, web (webhook) URLs without
//! their token, and the value of a secret key (`token`, `api_key` of a `[[notify]]`
//! destination) unless it is only a `${VARIABLE}` reference (ronda refuses such a file, but a
//! version edited by hand is still shown); a Telegram bot token is hidden wherever it is.
//!
//! Line by line rather than through a TOML parser, because a version edited by hand may not be
//! valid TOML and must still be shown without its secrets. Line numbers stay as in the file.
//! Every string is looked at, in double or single quotes, wherever it is (a key of its own, an
//! inline table, an array), and a URL is redacted by its scheme, not by the table it is in:
//! `http(s)://` like a webhook URL (path and query may hold the token), anything else like a
//! camera URL. A string left open hides the rest of its line.

use crate::config::{is_env_ref, redact_url, redact_webhook_url};

/// Keys whose value is a secret (`[[notify]]` tokens and keys).
const SECRET_KEYS: [&str; 5] = ["token", "api_key", "bot_token", "password", "secret"];

/// What a hidden value is shown as.
const HIDDEN: &str = "\"<hidden>\"";

/// `text` with its secrets replaced (see the module documentation).
pub fn redacted_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let ending = &line[body.len()..];
        let trimmed = body.trim_start();
        let key = trimmed
            .split_once('=')
            .map(|(k, _)| k.trim().trim_matches('"'))
            .unwrap_or("");
        let value = trimmed
            .split_once('=')
            .map(|(_, v)| {
                v.split('#')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .trim_matches(['"', '\''])
            })
            .unwrap_or("");
        if key == "password_hash" || (SECRET_KEYS.contains(&key) && !is_env_ref(value)) {
            let eq = body.find('=').unwrap_or(body.len());
            out.push_str(&body[..eq]);
            out.push_str("= ");
            out.push_str(HIDDEN);
        } else {
            out.push_str(&redact_strings(body));
        }
        out.push_str(ending);
    }
    out
}

/// Every quoted string of `line` (`"..."` with `\` escapes, or `'...'`) that holds a secret,
/// replaced; a `#` outside strings starts a comment, whose text is looked at the same way.
fn redact_strings(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find(['"', '\'']) {
        let quote = rest.as_bytes()[open] as char;
        out.push_str(&rest[..=open]);
        let inner = &rest[open + 1..];
        let close = if quote == '"' {
            let mut escaped = false;
            inner.char_indices().find_map(|(i, c)| match c {
                _ if escaped => {
                    escaped = false;
                    None
                }
                '\\' => {
                    escaped = true;
                    None
                }
                '"' => Some(i),
                _ => None,
            })
        } else {
            inner.find('\'')
        };
        match close {
            Some(end) => {
                out.push_str(&redact_value(&inner[..end]));
                out.push(quote);
                rest = &inner[end + 1..];
            }
            None => {
                out.push_str(&redact_value(inner));
                return out;
            }
        }
    }
    // no quotes left: a bare URL in a comment is still a URL
    out.push_str(&redact_bare(rest));
    out
}

/// A string's text as it may be shown.
fn redact_value(text: &str) -> String {
    if text.starts_with("$argon2") || has_bot_token(text) {
        "<hidden>".to_string()
    } else if text.contains("://") {
        let scheme = text.split("://").next().unwrap_or("").to_ascii_lowercase();
        if scheme.ends_with("http") || scheme.ends_with("https") {
            redact_webhook_url(text)
        } else {
            redact_url(text)
        }
    } else {
        text.to_string()
    }
}

/// Unquoted text (comments): each whitespace-separated word that is a URL, redacted.
fn redact_bare(text: &str) -> String {
    if !text.contains("://") && !text.contains("$argon2") && !has_bot_token(text) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    for c in text.chars() {
        if c.is_whitespace() {
            out.push_str(&redact_value(&word));
            word.clear();
            out.push(c);
        } else {
            word.push(c);
        }
    }
    out.push_str(&redact_value(&word));
    out
}

/// Does `text` hold something shaped like a Telegram bot token (`123456789:` and 30 or more
/// letters, digits, `-` and `_`)?
fn has_bot_token(text: &str) -> bool {
    let b = text.as_bytes();
    b.iter()
        .enumerate()
        .filter(|(_, c)| **c == b':')
        .any(|(i, _)| {
            let digits = b[..i]
                .iter()
                .rev()
                .take_while(|c| c.is_ascii_digit())
                .count();
            let rest = b[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'-' || **c == b'_')
                .count();
            (6..=12).contains(&digits) && rest >= 30
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_passwords_and_tokens_are_hidden_and_lines_stay() {
        let text = "[[http.users]]\nname = \"pak-rw\"\npassword_hash = \"$argon2id$v=19$m=1$abc\" # set 2026\n\
                    users = [{ name = \"x\", password_hash = \"$argon2id$zzz\" }]\n\
                    [[cameras]]\nurl = \"rtsp://admin:hunter2@10.0.0.2/ch1\"\n\
                    url2 = \"rtsp://admin:${PASS}@10.0.0.3/ch1\"\n\
                    [webhook]\nurl = \"https://api.telegram.org/bot123456:AAHdq/sendMessage?chat_id=-100\"\r\n\
                    [site]\nname = \"Kepatihan\"\n";
        let r = redacted_text(text);
        assert!(!r.contains("argon2"), "{r}");
        assert!(!r.contains("hunter2"), "{r}");
        assert!(!r.contains("AAHdq") && !r.contains("-100"), "{r}");
        assert!(r.contains("password_hash = \"<hidden>\"\n"), "{r}");
        assert!(r.contains("rtsp://admin:***@10.0.0.2/ch1"), "{r}");
        assert!(r.contains("rtsp://admin:***@10.0.0.3/ch1"), "{r}");
        assert!(r.contains("name = \"Kepatihan\"\n"), "{r}");
        assert_eq!(r.lines().count(), text.lines().count());
        assert!(r.contains("\r\n"), "line endings are kept");
    }

    #[test]
    fn single_quotes_inline_tables_and_comments_hide_their_secrets_too() {
        let text = "[[cameras]]\nurl = 'rtsp://admin:hunter2@10.0.0.2/ch1'\n\
                    webhook = { url = \"https://api.telegram.org/bot123456:AAHdq/sendMessage?chat_id=-100\" }\n\
                    [[http.users]]\npassword_hash = '$argon2id$v=19$m=1$abc'\n\
                    x = \"say \\\"hi\\\" rtsp://u:pw9@h/\" # old: rtsp://admin:oldpass@10.0.0.9/ch1\n\
                    broken = \"rtsp://admin:halfopen@10.0.0.4/ch1\n";
        let r = redacted_text(text);
        for secret in ["hunter2", "AAHdq", "-100", "argon2", "oldpass", "halfopen"] {
            assert!(!r.contains(secret), "{secret} shown:\n{r}");
        }
        assert!(r.contains("url = 'rtsp://admin:***@10.0.0.2/ch1'"), "{r}");
        assert!(
            r.contains("https://api.telegram.org/***/sendMessage?chat_id=***"),
            "{r}"
        );
        assert_eq!(r.lines().count(), text.lines().count());
    }

    #[test]
    fn notify_secrets_are_hidden_unless_they_are_variable_names() {
        let text = "[[notify]]\nname = \"grup\"\nkind = \"telegram\"\n\
                    token = \"123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw\"\n\
                    chat_ids = [\"-100123\"]\n\
                    [[notify]]\nkind = \"gateway-form\"\ntoken = 'fonnte-s3cr3t-x' # old\n\
                    api_key = \"${RONDA_WAHA_KEY}\"\ntoken = \"${RONDA_TG}\"\n\
                    # test bot 987654321:ZZHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw\n\
                    x = { token = \"111222333:QQHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw\" }\n";
        let r = redacted_text(text);
        for secret in ["AAHdq", "fonnte-s3cr3t-x", "ZZHdq", "QQHdq"] {
            assert!(!r.contains(secret), "{secret} shown:\n{r}");
        }
        assert!(r.contains("token = \"<hidden>\"\n"), "{r}");
        assert!(r.contains("api_key = \"${RONDA_WAHA_KEY}\"\n"), "{r}");
        assert!(r.contains("token = \"${RONDA_TG}\"\n"), "{r}");
        assert!(r.contains("chat_ids = [\"-100123\"]\n"), "{r}");
        assert_eq!(r.lines().count(), text.lines().count());
    }
}
