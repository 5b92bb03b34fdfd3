//! ntfy (<https://docs.ntfy.sh/publish/>), self-hostable push to the ntfy phone app:
//! - text: `POST {url}/{topic}` with the message as the body and the `Title`, `Priority`
//!   (1-5) and `Tags` headers (a tag that names an emoji shows as one: `rotating_light`);
//! - with the snapshot: `PUT {url}/{topic}` with the JPEG as the body and a `Filename` header
//!   (ntfy's "attach local file"); the text then goes in the `message` query parameter, which
//!   ntfy reads like the `Message` header and which carries UTF-8 and line breaks as they are;
//! - `Click`: the incident's address, when `[http] public_url` is set;
//! - `Authorization: Bearer <token>` for a server with users. 401/403 is a refused token,
//!   429 its rate limit, 413 an attachment too large (sent again without it).
//!
//! Header values outside printable ASCII go as RFC 2047 encoded words, which ntfy decodes.

use std::time::Duration;

use super::http::{self, Answer, header_text, query_escape};
use super::{Deliver, Message};
use crate::events::Severity;

pub struct Ntfy {
    /// `{url}/{topic}`: the topic may be a secret.
    topic_url: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Ntfy {
    pub fn new(url: &str, topic: &str, token: Option<String>) -> Ntfy {
        Ntfy {
            topic_url: format!("{}/{topic}", url.trim_end_matches('/')),
            token,
            agent: http::agent(),
        }
    }
}

impl Deliver for Ntfy {
    fn recipients(&self) -> usize {
        1
    }

    fn send(&mut self, m: &Message, _to: usize, timeout: Duration) -> Answer {
        let (priority, sign) = match m.severity {
            Severity::Alert => ("5", "rotating_light"),
            Severity::Warning => ("4", "warning"),
            Severity::Info => ("3", "information_source"),
        };
        let tags = match m.tag {
            Some(t) => format!("{sign},{t}"),
            None => sign.to_string(),
        };
        let (mut req, body): (_, &[u8]) = match &m.photo {
            Some(p) => (
                self.agent
                    .put(&format!(
                        "{}?message={}",
                        self.topic_url,
                        query_escape(&m.text.body)
                    ))
                    .header("Filename", &header_text(&p.filename)),
                &p.jpeg,
            ),
            None => (
                self.agent
                    .post(&self.topic_url)
                    .header("Content-Type", "text/plain; charset=utf-8"),
                m.text.body.as_bytes(),
            ),
        };
        req = req
            .header("Title", &header_text(&m.text.title))
            .header("Priority", priority)
            .header("Tags", &tags);
        if let Some(l) = &m.link {
            req = req.header("Click", &header_text(l));
        }
        if let Some(t) = &self.token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        match http::exchange(req, body, timeout) {
            Err(reason) => Answer::Retry {
                reason,
                after: None,
            },
            // attachments over the server's limit, or its attachment cache is full
            Ok(r) if r.status == 413 || r.status == 507 => Answer::Refused {
                reason: format!("HTTP {}{}", r.status, r.detail()),
            },
            Ok(r) => http::by_status(&r),
        }
    }
}
