//! WhatsApp through a gateway the village runs or rents. Two kinds, each in its documented form:
//!
//! - **WAHA** (self-hosted WhatsApp HTTP API, <https://waha.devlike.pro/docs/how-to/send-messages/>):
//!   `POST {url}/api/sendText` with JSON `{"session", "chatId", "text"}`; `POST
//!   {url}/api/sendImage` with JSON `{"session", "chatId", "file": {"mimetype", "filename",
//!   "data": <base64>}, "caption"}`; the key (when the server has `WAHA_API_KEY`) in the
//!   `X-Api-Key` header. A `chatId` is `<number>@c.us` for a person, `<id>@g.us` for a group.
//!   Some WAHA engines or editions do not send images: the sink then sends the text alone.
//! - **gateway-form** (the Indonesian gateways' style, Fonnte's `POST
//!   https://api.fonnte.com/send`, <https://docs.fonnte.com/api-send-message/>): a form
//!   (`multipart/form-data`, as PHP's curl sends an array) with `target` (numbers or group ids,
//!   comma separated), `message`, and the picture as the `file` upload; the device token in the
//!   `Authorization` header, as it is (no `Bearer`). Fonnte answers HTTP 200 with JSON
//!   `{"status": true, ...}` or `{"status": false, "reason": "..."}` (`"invalid token"`,
//!   `"unknown user"`...), so the body decides, not the status.

use std::time::Duration;

use base64::Engine;

use serde_json::json;

use super::http::{self, Answer, Multipart, Reply};
use super::{Deliver, Message};

/// A WAHA server and the chats it sends to.
pub struct Waha {
    url: String,
    session: String,
    chats: Vec<String>,
    /// `X-Api-Key`: a secret.
    api_key: Option<String>,
    agent: ureq::Agent,
}

impl Waha {
    pub fn new(url: &str, session: &str, chats: &[String], api_key: Option<String>) -> Waha {
        Waha {
            url: url.trim_end_matches('/').to_string(),
            session: session.to_string(),
            chats: chats.to_vec(),
            api_key,
            agent: http::agent(),
        }
    }
}

impl Deliver for Waha {
    fn recipients(&self) -> usize {
        self.chats.len()
    }

    fn send(&mut self, m: &Message, to: usize, timeout: Duration) -> Answer {
        let chat = &self.chats[to];
        let (path, body) = match &m.photo {
            Some(p) => (
                "/api/sendImage",
                json!({
                    "session": self.session,
                    "chatId": chat,
                    "file": {
                        "mimetype": "image/jpeg",
                        "filename": p.filename,
                        "data": base64::engine::general_purpose::STANDARD.encode(&p.jpeg),
                    },
                    "caption": m.text.body,
                }),
            ),
            None => (
                "/api/sendText",
                json!({"session": self.session, "chatId": chat, "text": m.text.body}),
            ),
        };
        let mut req = self
            .agent
            .post(&format!("{}{path}", self.url))
            .header("Content-Type", "application/json");
        if let Some(k) = &self.api_key {
            req = req.header("X-Api-Key", k);
        }
        match http::exchange(req, body.to_string().as_bytes(), timeout) {
            Err(reason) => Answer::Retry {
                reason,
                after: None,
            },
            // "not implemented" in this engine or edition (images): not worth retrying
            Ok(r) if r.status == 501 => Answer::Refused {
                reason: format!("HTTP 501{}", r.detail()),
            },
            Ok(r) => http::by_status(&r),
        }
    }
}

/// A form-posting gateway (Fonnte style).
pub struct FormGateway {
    url: String,
    /// `Authorization` value: a secret.
    token: String,
    target: String,
    agent: ureq::Agent,
}

impl FormGateway {
    pub fn new(url: &str, token: &str, target: &str) -> FormGateway {
        FormGateway {
            url: url.to_string(),
            token: token.to_string(),
            target: target.to_string(),
            agent: http::agent(),
        }
    }
}

impl Deliver for FormGateway {
    fn recipients(&self) -> usize {
        1
    }

    fn send(&mut self, m: &Message, _to: usize, timeout: Duration) -> Answer {
        let mut form = Multipart::new()
            .text("target", &self.target)
            .text("message", &m.text.body);
        if let Some(p) = &m.photo {
            form = form.file("file", &p.filename, "image/jpeg", &p.jpeg);
        }
        let (ct, body) = form.finish();
        let req = self
            .agent
            .post(&self.url)
            .header("Content-Type", &ct)
            .header("Authorization", &self.token);
        match http::exchange(req, &body, timeout) {
            Err(reason) => Answer::Retry {
                reason,
                after: None,
            },
            Ok(r) => form_answer(&r),
        }
    }
}

/// A Fonnte-style answer: the JSON `status` decides when there is one.
fn form_answer(r: &Reply) -> Answer {
    if !(200..300).contains(&r.status) {
        return http::by_status(r);
    }
    let Some(j) = r.json() else {
        return Answer::Sent; // a gateway that answers 2xx without JSON took it
    };
    if j["status"] != false {
        return Answer::Sent;
    }
    let reason = j["reason"]
        .as_str()
        .or(j["detail"].as_str())
        .unwrap_or("status false")
        .to_string();
    let lower = reason.to_ascii_lowercase();
    let shown = format!("the gateway says: {reason}");
    if lower.contains("token") || lower.contains("unknown user") || lower.contains("invalid device")
    {
        Answer::BadToken { reason: shown }
    } else if lower.contains("disconnect") || lower.contains("quota") || lower.contains("limit") {
        // the phone behind the gateway is offline, or the plan's quota is used up: it may
        // come back; the alerts wait
        Answer::Retry {
            reason: shown,
            after: Some(Duration::from_secs(60)),
        }
    } else {
        Answer::Refused { reason: shown }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.into(),
            retry_after: None,
        }
    }

    #[test]
    fn fonnte_answers() {
        assert_eq!(
            form_answer(&reply(
                200,
                r#"{"detail":"success! message in queue","id":["80367170"],"process":"pending","status":true,"target":["6282227097005"]}"#
            )),
            Answer::Sent
        );
        assert!(matches!(
            form_answer(&reply(200, r#"{"reason":"invalid token","status":false}"#)),
            Answer::BadToken { .. }
        ));
        assert!(matches!(
            form_answer(&reply(
                200,
                r#"{"reason":"device disconnected","status":false}"#
            )),
            Answer::Retry { .. }
        ));
        assert!(matches!(
            form_answer(&reply(200, r#"{"reason":"target invalid","status":false}"#)),
            Answer::Refused { .. }
        ));
        assert!(matches!(
            form_answer(&reply(500, "oops")),
            Answer::Retry { .. }
        ));
    }
}
