//! The HTTP the destinations share: one exchange with a timeout read into a [`Reply`], a
//! `multipart/form-data` body (RFC 7578) for uploads, and what a status means for delivery.

use std::io::Read;
use std::time::Duration;

use base64::Engine;

use ureq::RequestBuilder;
use ureq::typestate::WithBody;

/// How much of an answer is read (Telegram's and the gateways' answers are small JSON; a
/// `getUpdates` page of 100 callback presses stays well under it).
const ANSWER_READ: u64 = 256 * 1024;
/// How much of an error answer a log line shows.
const ANSWER_SHOWN: usize = 200;

/// An answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    /// `Retry-After` in seconds, when the server sent one.
    pub retry_after: Option<Duration>,
}

impl Reply {
    /// `: <the start of the answer>` on one line; empty if there is none.
    pub fn detail(&self) -> String {
        let line = self.body.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.is_empty() {
            return String::new();
        }
        let mut shown: String = line.chars().take(ANSWER_SHOWN).collect();
        if shown.len() < line.len() {
            shown.push_str("...");
        }
        format!(": {shown}")
    }

    /// The answer as JSON, if it is.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }
}

/// What became of one request, for the sink.
#[derive(Debug, PartialEq)]
pub enum Answer {
    Sent,
    /// No answer, a 5xx, 408 or 429: the same message again later (after `after` when the
    /// service said how long).
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// The token or key is refused: nothing goes through until an admin fixes it.
    BadToken {
        reason: String,
    },
    /// This message is refused for good (another 4xx). With a photo, the sink tries once more
    /// without it (too large, a type or size the service does not take).
    Refused {
        reason: String,
    },
}

/// The usual meaning of an HTTP status for a service without its own error format.
pub fn by_status(r: &Reply) -> Answer {
    match r.status {
        200..=299 => Answer::Sent,
        401 | 403 => Answer::BadToken {
            reason: format!("HTTP {}{}", r.status, r.detail()),
        },
        408 | 429 | 500..=599 => Answer::Retry {
            reason: format!("HTTP {}{}", r.status, r.detail()),
            after: r.retry_after,
        },
        300..=399 => Answer::Refused {
            reason: format!(
                "HTTP {}: a redirect; check the address in the configuration",
                r.status
            ),
        },
        _ => Answer::Refused {
            reason: format!("HTTP {}{}", r.status, r.detail()),
        },
    }
}

/// The agent every destination uses: statuses are answers (not errors), no redirects (a
/// redirected POST loses its body; the admin is told where it points instead).
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(format!("ronda/{}", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent()
}

/// Send `body` with `req` within `timeout` and read the answer; `Err` says in a user's words
/// why none came (no secret in it: the caller's URL is not part of the text).
pub fn exchange(
    req: RequestBuilder<WithBody>,
    body: &[u8],
    timeout: Duration,
) -> Result<Reply, String> {
    let sent = req
        .config()
        .timeout_global(Some(timeout))
        .build()
        .send(body);
    let mut resp = match sent {
        Ok(r) => r,
        Err(e) => return Err(describe(&e, timeout)),
    };
    let status = resp.status().as_u16();
    let retry_after = crate::sinks::signal::retry_after(resp.headers());
    let mut bytes = Vec::new();
    // read (some of) it: a connection is only reused once its answer was read
    let _ = resp
        .body_mut()
        .as_reader()
        .take(ANSWER_READ)
        .read_to_end(&mut bytes);
    Ok(Reply {
        status,
        body: String::from_utf8_lossy(&bytes).into_owned(),
        retry_after,
    })
}

/// What went wrong when no answer came. ureq's own texts may hold the URL (a Telegram token is
/// in the path): only the kinds of failure are named.
fn describe(e: &ureq::Error, timeout: Duration) -> String {
    match e {
        ureq::Error::Timeout(_) => format!("no answer within {} s", timeout.as_secs_f64()),
        ureq::Error::HostNotFound => "the host name is not found (DNS)".into(),
        ureq::Error::ConnectionFailed => "cannot connect".into(),
        ureq::Error::Io(io) => format!("connection failed ({})", io.kind()),
        ureq::Error::Tls(_) => {
            "TLS failed (is the address https:// with a valid certificate?)".into()
        }
        _ => "the request failed".into(),
    }
}

/// A `multipart/form-data` body (RFC 7578), as browsers and curl `-F` send it.
pub struct Multipart {
    boundary: String,
    buf: Vec<u8>,
}

impl Default for Multipart {
    fn default() -> Self {
        Multipart::new()
    }
}

impl Multipart {
    pub fn new() -> Multipart {
        // random, so that no text or JPEG can contain it by accident
        Multipart {
            boundary: format!(
                "ronda-{:016x}{:016x}",
                rand::random::<u64>(),
                rand::random::<u64>()
            ),
            buf: Vec::new(),
        }
    }

    /// A text field.
    pub fn text(mut self, name: &str, value: &str) -> Multipart {
        self.head(name, None, None);
        self.buf.extend_from_slice(value.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
        self
    }

    /// A file field.
    pub fn file(mut self, name: &str, filename: &str, mime: &str, bytes: &[u8]) -> Multipart {
        self.head(name, Some(filename), Some(mime));
        self.buf.extend_from_slice(bytes);
        self.buf.extend_from_slice(b"\r\n");
        self
    }

    fn head(&mut self, name: &str, filename: Option<&str>, mime: Option<&str>) {
        let quoted = |s: &str| s.replace(['"', '\r', '\n'], "_");
        self.buf
            .extend_from_slice(format!("--{}\r\n", self.boundary).as_bytes());
        let mut cd = format!("Content-Disposition: form-data; name=\"{}\"", quoted(name));
        if let Some(f) = filename {
            cd.push_str(&format!("; filename=\"{}\"", quoted(f)));
        }
        self.buf.extend_from_slice(cd.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
        if let Some(m) = mime {
            self.buf
                .extend_from_slice(format!("Content-Type: {m}\r\n").as_bytes());
        }
        self.buf.extend_from_slice(b"\r\n");
    }

    /// The `Content-Type` header value and the body.
    pub fn finish(mut self) -> (String, Vec<u8>) {
        self.buf
            .extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        (
            format!("multipart/form-data; boundary={}", self.boundary),
            self.buf,
        )
    }
}

/// A header value as ntfy reads it: plain when it is printable ASCII, otherwise an RFC 2047
/// encoded word (`=?UTF-8?B?...?=`), which ntfy decodes (its `maybeDecodeHeader`); a raw
/// non-ASCII byte in a header is not allowed by HTTP clients.
pub fn header_text(s: &str) -> String {
    let one_line = s.replace(['\r', '\n'], " ");
    if one_line.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        one_line
    } else {
        format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(one_line.as_bytes())
        )
    }
}

/// `value` percent-encoded for a URL query (RFC 3986 unreserved kept).
pub fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_fields_and_files() {
        let (ct, body) = Multipart::new()
            .text("chat_id", "-100123")
            .file("photo", "a.jpg", "image/jpeg", b"\xff\xd8jpeg")
            .finish();
        let boundary = ct.strip_prefix("multipart/form-data; boundary=").unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(text.starts_with(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"chat_id\"\r\n\r\n-100123\r\n"
        )));
        assert!(text.contains(
            "Content-Disposition: form-data; name=\"photo\"; filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
        ));
        assert!(text.ends_with(&format!("jpeg\r\n--{boundary}--\r\n")));
    }

    #[test]
    fn header_values_are_ascii_or_encoded_words() {
        assert_eq!(header_text("Penyusup"), "Penyusup");
        assert_eq!(header_text("a\nb"), "a b");
        assert_eq!(header_text("Kamera é"), "=?UTF-8?B?S2FtZXJhIMOp?=");
        assert_eq!(query_escape("a b/é"), "a%20b%2F%C3%A9");
    }

    #[test]
    fn statuses() {
        let r = |status, body: &str| Reply {
            status,
            body: body.into(),
            retry_after: None,
        };
        assert_eq!(by_status(&r(201, "")), Answer::Sent);
        assert!(matches!(by_status(&r(401, "")), Answer::BadToken { .. }));
        assert!(
            matches!(by_status(&r(503, "busy")), Answer::Retry { reason, .. } if reason == "HTTP 503: busy")
        );
        assert!(matches!(by_status(&r(429, "")), Answer::Retry { .. }));
        assert!(matches!(by_status(&r(400, "")), Answer::Refused { .. }));
    }
}
