//! A configuration file's text as the admin page may show it (version history, diffs): password
//! hashes hidden, camera and broker URLs without their password, webhook URLs without their
//! token.
//!
//! Line by line rather than through a TOML parser, because a version edited by hand may not be
//! valid TOML and must still be shown without its secrets. Line numbers stay as in the file.

use crate::config::{redact_url, redact_webhook_url};

/// What a hidden value is shown as.
const HIDDEN: &str = "\"<hidden>\"";

/// `text` with its secrets replaced (see the module documentation).
pub fn redacted_text(text: &str) -> String {
    let mut section = String::new();
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let ending = &line[body.len()..];
        let trimmed = body.trim_start();
        if trimmed.starts_with('[') {
            section = trimmed
                .trim_matches(|c| c == '[' || c == ']' || c == ' ')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
        }
        let key = trimmed
            .split_once('=')
            .map(|(k, _)| k.trim().trim_matches('"'))
            .unwrap_or("");
        if key == "password_hash" {
            let eq = body.find('=').unwrap_or(body.len());
            out.push_str(&body[..eq]);
            out.push_str("= ");
            out.push_str(HIDDEN);
        } else {
            out.push_str(&redact_strings(body, section == "webhook"));
        }
        out.push_str(ending);
    }
    out
}

/// Every quoted string of `line` that holds a secret, replaced. Quotes are paired naively
/// (configuration values here have no escaped quotes); an unpaired one leaves the rest as is.
fn redact_strings(line: &str, webhook: bool) -> String {
    let parts: Vec<&str> = line.split('"').collect();
    if parts.len() < 3 {
        return line.to_string();
    }
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            // odd parts are inside quotes, if a closing quote follows
            if i % 2 == 0 || i == parts.len() - 1 {
                return part.to_string();
            }
            if part.starts_with("$argon2") {
                "<hidden>".to_string()
            } else if part.contains("://") {
                if webhook {
                    redact_webhook_url(part)
                } else {
                    redact_url(part)
                }
            } else {
                part.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\"")
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
}
