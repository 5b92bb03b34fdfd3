//! Telegram Bot API (<https://core.telegram.org/bots/api>), as documented there:
//! - every call is `POST {api_base}/bot<token>/<method>` (the token is in the path: it is
//!   blanked out of everything shown); the answer is JSON `{"ok": true, "result": ...}` or
//!   `{"ok": false, "error_code": 429, "description": "...", "parameters": {"retry_after": 5}}`
//!   (`ResponseParameters`: `retry_after`, and `migrate_to_chat_id` when a group became a
//!   supergroup);
//! - `sendPhoto`: `multipart/form-data` with `chat_id`, `photo` (the JPEG as a file part),
//!   `caption` (0-1024 characters) and `reply_markup` (a JSON-serialised
//!   `InlineKeyboardMarkup`); `sendMessage`: `chat_id`, `text` (1-4096 characters),
//!   `reply_markup`, `link_preview_options`;
//! - `getMe` checks the token (401 `Unauthorized` when it is wrong; a token that is not even
//!   shaped like one gives 404 `Not Found`);
//! - acknowledging: an `InlineKeyboardButton` with `callback_data` (1-64 bytes: `ack:<event id>`)
//!   under the alert; `getUpdates` with `offset`, `timeout` (long polling, so the box needs no
//!   public address) and `allowed_updates: ["callback_query"]`; each `CallbackQuery` (`id`,
//!   `from` the user, `message` the alert with its `chat`, `data`) is answered with
//!   `answerCallbackQuery` (`callback_query_id`, `text`), and the alert is edited
//!   (`editMessageCaption` / `editMessageText` without `reply_markup`, which removes the
//!   button) to say who acknowledged it. `getUpdates` answers 409 `Conflict` while a webhook is
//!   set on the bot or another program polls it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tracing::{debug, info, warn};

use super::http::{self, Answer, Multipart, Reply};
use super::message::{self, AckedBy, cut};
use super::{AckDesk, Deliver, Message};
use crate::api::AckError;
use crate::backoff::Backoff;
use crate::config::Language;

/// Telegram's limits on a caption and a message, in characters.
const CAPTION_MAX: usize = 1024;
const TEXT_MAX: usize = 4096;
/// How long one `getUpdates` waits on Telegram's side for a button press.
const LONG_POLL_S: u64 = 20;
/// The most a user's name takes in the acknowledgement (the store keeps short names).
const USER_MAX: usize = 48;

/// A Telegram bot sending to its chats.
pub struct Telegram {
    /// `{api_base}/bot<token>`: a secret.
    base: String,
    token: String,
    chats: Vec<String>,
    ack_button: bool,
    lang: Language,
    agent: ureq::Agent,
    /// A chat that became a supergroup was already reported.
    moved_reported: bool,
}

impl Telegram {
    pub fn new(
        api_base: &str,
        token: &str,
        chats: &[String],
        ack_button: bool,
        lang: Language,
    ) -> Telegram {
        Telegram {
            base: format!("{}/bot{token}", api_base.trim_end_matches('/')),
            token: token.to_string(),
            chats: chats.to_vec(),
            ack_button,
            lang,
            agent: http::agent(),
            moved_reported: false,
        }
    }

    /// The poller that takes this bot's button presses for destination `name`.
    pub fn poll_spec(&self, name: &str, tz: chrono_tz::Tz) -> PollSpec {
        PollSpec {
            names: vec![name.to_string()],
            base: self.base.clone(),
            secret: self.token.clone(),
            chats: self.chats.clone(),
            lang: self.lang,
            tz,
        }
    }

    fn url(&self, method: &str) -> String {
        format!("{}/{method}", self.base)
    }

    fn markup(&self, m: &Message) -> Option<Value> {
        let id = m.event_id.as_ref().filter(|_| self.ack_button)?;
        let label = match self.lang {
            Language::Id => "✅ Tandai diterima",
            Language::En => "✅ Acknowledge",
        };
        Some(json!({"inline_keyboard": [[{"text": label, "callback_data": format!("ack:{id}")}]]}))
    }

    fn send_once(&self, m: &Message, chat: &str, timeout: Duration) -> Result<Reply, String> {
        let markup = self.markup(m);
        match &m.photo {
            Some(p) => {
                let mut form = Multipart::new()
                    .text("chat_id", chat)
                    .text("caption", &cut(&m.text.body, CAPTION_MAX));
                if let Some(mk) = &markup {
                    form = form.text("reply_markup", &mk.to_string());
                }
                let (ct, body) = form
                    .file("photo", &p.filename, "image/jpeg", &p.jpeg)
                    .finish();
                let req = self
                    .agent
                    .post(&self.url("sendPhoto"))
                    .header("Content-Type", &ct);
                http::exchange(req, &body, timeout)
            }
            None => {
                let mut body = json!({
                    "chat_id": chat,
                    "text": cut(&m.text.body, TEXT_MAX),
                    "link_preview_options": {"is_disabled": true},
                });
                if let Some(mk) = markup {
                    body["reply_markup"] = mk;
                }
                post_json(&self.agent, &self.url("sendMessage"), &body, timeout)
            }
        }
    }
}

impl Deliver for Telegram {
    fn recipients(&self) -> usize {
        self.chats.len()
    }

    fn send(&mut self, m: &Message, to: usize, timeout: Duration) -> Answer {
        // at most twice: once more to the new id of a group that became a supergroup
        for _ in 0..2 {
            let chat = self.chats[to].clone();
            let reply = match self.send_once(m, &chat, timeout) {
                Ok(r) => r,
                Err(reason) => {
                    return Answer::Retry {
                        reason,
                        after: None,
                    };
                }
            };
            match answer(&reply) {
                Reply2::Moved(new_id) => {
                    if !self.moved_reported {
                        warn!(
                            "notify: the Telegram group {chat} became a supergroup with id \
                             {new_id}; sending there, but put chat_ids = [\"{new_id}\", ...] in \
                             the configuration"
                        );
                        self.moved_reported = true;
                    }
                    self.chats[to] = new_id;
                }
                Reply2::Done(a) => return a,
            }
        }
        Answer::Refused {
            reason: "the group moved twice".into(),
        }
    }

    fn check(&mut self, timeout: Duration) -> Option<Answer> {
        let r = post_json(&self.agent, &self.url("getMe"), &json!({}), timeout);
        Some(match r {
            Ok(r) => match answer(&r) {
                Reply2::Done(a) => a,
                Reply2::Moved(_) => Answer::Sent,
            },
            Err(reason) => Answer::Retry {
                reason,
                after: None,
            },
        })
    }
}

/// What a Bot API answer means.
enum Reply2 {
    Done(Answer),
    /// `parameters.migrate_to_chat_id`: the group has a new id.
    Moved(String),
}

fn answer(r: &Reply) -> Reply2 {
    let j = r.json().unwrap_or(Value::Null);
    if (200..300).contains(&r.status) && j["ok"] == true {
        return Reply2::Done(Answer::Sent);
    }
    let code = j["error_code"].as_u64().unwrap_or(u64::from(r.status));
    let description = j["description"].as_str().unwrap_or("").to_string();
    let shown = if description.is_empty() {
        format!("HTTP {}{}", r.status, r.detail())
    } else {
        format!("Telegram: {description}")
    };
    if let Some(id) = j["parameters"]["migrate_to_chat_id"].as_i64() {
        return Reply2::Moved(id.to_string());
    }
    let retry_after = j["parameters"]["retry_after"]
        .as_u64()
        .map(Duration::from_secs)
        .or(r.retry_after);
    Reply2::Done(match code {
        429 => Answer::Retry {
            reason: shown,
            after: retry_after,
        },
        401 => Answer::BadToken { reason: shown },
        // a token not even shaped like one: the path is not a bot's
        404 if description == "Not Found" || description.is_empty() => {
            Answer::BadToken { reason: shown }
        }
        408 | 500..=599 => Answer::Retry {
            reason: shown,
            after: retry_after,
        },
        _ if (200..300).contains(&r.status) => Answer::Retry {
            reason: format!("an answer that is not the Bot API's{}", r.detail()),
            after: None,
        },
        _ => Answer::Refused { reason: shown },
    })
}

fn post_json(
    agent: &ureq::Agent,
    url: &str,
    body: &Value,
    timeout: Duration,
) -> Result<Reply, String> {
    let req = agent.post(url).header("Content-Type", "application/json");
    http::exchange(req, body.to_string().as_bytes(), timeout)
}

/// What a poller needs: the bot, the chats whose presses count, how to answer.
pub struct PollSpec {
    /// The destinations using this bot (for log lines).
    names: Vec<String>,
    base: String,
    secret: String,
    chats: Vec<String>,
    lang: Language,
    tz: chrono_tz::Tz,
}

impl PollSpec {
    pub fn same_bot(&self, other: &PollSpec) -> bool {
        self.base == other.base
    }

    /// Another destination on the same bot: its chats count too.
    pub fn merge(&mut self, other: PollSpec) {
        self.names.extend(other.names);
        for c in other.chats {
            if !self.chats.contains(&c) {
                self.chats.push(c);
            }
        }
    }
}

/// A running `getUpdates` loop.
pub struct Poller {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    finished: mpsc::Receiver<()>,
}

impl Poller {
    pub fn start(spec: PollSpec, desk: Arc<dyn AckDesk>) -> Result<Poller, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let (done, finished) = mpsc::channel();
        let names = spec.names.join(", ");
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("telegram-acks".into())
            .spawn(move || {
                PollLoop {
                    spec,
                    desk,
                    stop: s,
                    agent: http::agent(),
                    offset: None,
                    outage: false,
                    conflict: false,
                }
                .run();
                let _ = done.send(());
            })
            .map_err(|e| format!("notify `{names}`: cannot start the Telegram poller: {e}"))?;
        info!(destinations = %names, "notify: taking acknowledgements from Telegram's buttons");
        Ok(Poller {
            stop,
            thread: Some(thread),
            finished,
        })
    }

    /// Ask it to stop after the poll in flight.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Wait up to `grace` for it to end; a long poll in flight is left to end on its own
    /// (nothing waits for its answer).
    pub fn join(mut self, grace: Duration) {
        self.stop();
        if self.finished.recv_timeout(grace).is_ok()
            && let Some(t) = self.thread.take()
        {
            let _ = t.join();
        }
    }
}

struct PollLoop {
    spec: PollSpec,
    desk: Arc<dyn AckDesk>,
    stop: Arc<AtomicBool>,
    agent: ureq::Agent,
    /// The next update wanted (the last one's id + 1): confirms the earlier ones to Telegram.
    offset: Option<i64>,
    outage: bool,
    conflict: bool,
}

impl PollLoop {
    fn run(mut self) {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        while !self.stop.load(Ordering::Relaxed) {
            let mut body = json!({"timeout": LONG_POLL_S, "allowed_updates": ["callback_query"]});
            if let Some(o) = self.offset {
                body["offset"] = json!(o);
            }
            let url = format!("{}/getUpdates", self.spec.base);
            let timeout = Duration::from_secs(LONG_POLL_S + 10);
            let pause = match post_json(&self.agent, &url, &body, timeout) {
                Ok(r) if r.status == 200 => {
                    self.back();
                    backoff.reset();
                    let updates = r.json().map(|j| j["result"].clone()).unwrap_or(Value::Null);
                    for u in updates.as_array().into_iter().flatten() {
                        if let Some(id) = u["update_id"].as_i64() {
                            self.offset = Some(self.offset.map_or(id + 1, |o| o.max(id + 1)));
                        }
                        if u["callback_query"].is_object() {
                            self.press(&u["callback_query"]);
                        }
                    }
                    Duration::ZERO
                }
                Ok(r) if r.status == 409 => {
                    if !self.conflict {
                        warn!(
                            destinations = %self.spec.names.join(", "),
                            "notify: Telegram gives this bot's button presses to another program \
                             (a webhook is set on the bot, or a second ronda uses the same token): \
                             acknowledging from Telegram does not work until that stops; delete \
                             the bot's webhook (Bot API deleteWebhook) or give each ronda its own \
                             bot"
                        );
                        self.conflict = true;
                    }
                    Duration::from_secs(60)
                }
                // a refused token is reported by the destination itself, once
                Ok(r) if r.status == 401 || r.status == 404 => Duration::from_secs(60),
                Ok(r) => {
                    let after = r
                        .json()
                        .and_then(|j| j["parameters"]["retry_after"].as_u64());
                    self.trouble(&format!("HTTP {}{}", r.status, r.detail()));
                    after.map_or(backoff.peek(), Duration::from_secs)
                }
                Err(reason) => {
                    self.trouble(&reason);
                    backoff.peek()
                }
            };
            if !pause.is_zero() {
                // any pause (a conflict, a refused token, an outage) doubles the next one
                backoff.next_delay();
                let until = Instant::now() + pause;
                while Instant::now() < until && !self.stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(200).min(until - Instant::now()));
                }
            }
        }
    }

    fn trouble(&mut self, reason: &str) {
        let reason = super::scrub(std::slice::from_ref(&self.spec.secret), reason);
        if !self.outage {
            warn!(
                destinations = %self.spec.names.join(", "),
                "notify: cannot read Telegram's button presses: {reason}; trying again (alerts \
                 are still sent; presses wait at Telegram)"
            );
            self.outage = true;
        } else {
            debug!("notify: Telegram getUpdates still failing: {reason}");
        }
    }

    fn back(&mut self) {
        if self.outage {
            self.outage = false;
            info!(destinations = %self.spec.names.join(", "), "notify: reading Telegram's button presses again");
        }
        self.conflict = false;
    }

    /// One button press: acknowledge, answer it, mark the alert.
    fn press(&self, q: &Value) {
        let Some(id) = q["id"].as_str() else { return };
        let data = q["data"].as_str().unwrap_or("");
        let chat = &q["message"]["chat"];
        let chat_id = chat["id"]
            .as_i64()
            .map(|i| i.to_string())
            .unwrap_or_default();
        let chat_name = chat["username"].as_str().map(|u| format!("@{u}"));
        let ours = self
            .spec
            .chats
            .iter()
            .any(|c| *c == chat_id || chat_name.as_deref() == Some(c.as_str()));
        let Some(event_id) = data.strip_prefix("ack:").filter(|_| ours) else {
            // a press from a chat that is not configured (the bot was added elsewhere), or not
            // ours: answered so the phone stops waiting, nothing stored
            debug!(chat = %chat_id, "notify: a Telegram button press not for ronda; ignored");
            self.answer_press(id, None);
            return;
        };
        let user = user_name(&q["from"]);
        let (lang, tz) = (self.spec.lang, self.spec.tz);
        match self.desk.acknowledge(event_id, &user) {
            Ok(rec) => {
                info!(event = %rec.event_id, user = %rec.user, via = "telegram", "event acknowledged");
                let text = if rec.user == user {
                    match lang {
                        Language::Id => "Tercatat: diterima. Terima kasih!".to_string(),
                        Language::En => "Recorded: acknowledged. Thank you!".to_string(),
                    }
                } else {
                    match lang {
                        Language::Id => format!("Sudah diterima oleh {}", rec.user),
                        Language::En => format!("Already acknowledged by {}", rec.user),
                    }
                };
                self.answer_press(id, Some(&text));
                let line = message::acked_line(
                    &AckedBy {
                        user: rec.user,
                        at: rec.at,
                    },
                    lang,
                    tz,
                );
                self.mark_alert(&q["message"], &line);
            }
            Err(AckError::UnknownEvent) => {
                let text = match lang {
                    Language::Id => "Kejadian ini tidak ada lagi di ronda.",
                    Language::En => "ronda no longer has this event.",
                };
                self.answer_press(id, Some(text));
            }
            Err(AckError::Failed(e)) => {
                warn!(event = %event_id, "notify: an acknowledgement from Telegram could not be stored: {e}");
                let text = match lang {
                    Language::Id => "Gagal menyimpan; coba lagi sebentar.",
                    Language::En => "Could not store it; try again in a moment.",
                };
                self.answer_press(id, Some(text));
            }
        }
    }

    fn answer_press(&self, id: &str, text: Option<&str>) {
        let mut body = json!({"callback_query_id": id});
        if let Some(t) = text {
            body["text"] = json!(t);
        }
        let url = format!("{}/answerCallbackQuery", self.spec.base);
        if let Err(e) = post_json(&self.agent, &url, &body, Duration::from_secs(10)) {
            debug!("notify: answerCallbackQuery failed: {e}");
        }
    }

    /// Add who acknowledged to the alert and take its button away.
    fn mark_alert(&self, msg: &Value, line: &str) {
        let (Some(chat), Some(message_id)) =
            (msg["chat"]["id"].as_i64(), msg["message_id"].as_i64())
        else {
            return;
        };
        let (method, key, old, max) = match msg["caption"].as_str() {
            Some(c) => ("editMessageCaption", "caption", c, CAPTION_MAX),
            None => (
                "editMessageText",
                "text",
                msg["text"].as_str().unwrap_or(""),
                TEXT_MAX,
            ),
        };
        let mut body = json!({"chat_id": chat, "message_id": message_id});
        body[key] = json!(cut(&format!("{old}\n{line}"), max));
        let url = format!("{}/{method}", self.spec.base);
        match post_json(&self.agent, &url, &body, Duration::from_secs(10)) {
            Ok(r) if r.status == 200 => {}
            Ok(r) => debug!("notify: {method} answered HTTP {}", r.status),
            Err(e) => debug!("notify: {method} failed: {e}"),
        }
    }
}

/// "Budi Santoso (Telegram)": the name a guard sees in the feed; `@username` or the user id
/// when the name is empty. Control characters go, the length is bounded.
fn user_name(from: &Value) -> String {
    let first = from["first_name"].as_str().unwrap_or("");
    let last = from["last_name"].as_str().unwrap_or("");
    let mut name = format!("{first} {last}").trim().to_string();
    if name.is_empty() {
        name = match (from["username"].as_str(), from["id"].as_i64()) {
            (Some(u), _) => format!("@{u}"),
            (None, Some(id)) => format!("id {id}"),
            _ => "?".into(),
        };
    }
    let clean: String = name
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("{} (Telegram)", cut(clean.trim(), USER_MAX))
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

    fn done(r: Reply2) -> Answer {
        match r {
            Reply2::Done(a) => a,
            Reply2::Moved(id) => panic!("moved to {id}"),
        }
    }

    #[test]
    fn bot_api_answers() {
        assert_eq!(
            done(answer(&reply(200, r#"{"ok":true,"result":{}}"#))),
            Answer::Sent
        );
        assert_eq!(
            done(answer(&reply(
                429,
                r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#
            ))),
            Answer::Retry {
                reason: "Telegram: Too Many Requests: retry after 7".into(),
                after: Some(Duration::from_secs(7))
            }
        );
        assert!(matches!(
            done(answer(&reply(
                401,
                r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#
            ))),
            Answer::BadToken { .. }
        ));
        assert!(matches!(
            done(answer(&reply(
                404,
                r#"{"ok":false,"error_code":404,"description":"Not Found"}"#
            ))),
            Answer::BadToken { .. }
        ));
        assert!(matches!(
            done(answer(&reply(400, r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#))),
            Answer::Refused { reason } if reason == "Telegram: Bad Request: chat not found"
        ));
        assert!(matches!(
            done(answer(&reply(502, "Bad Gateway"))),
            Answer::Retry { .. }
        ));
        assert!(matches!(
            answer(&reply(400, r#"{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001234}}"#)),
            Reply2::Moved(id) if id == "-1001234"
        ));
    }

    #[test]
    fn user_names() {
        let v = |s: &str| serde_json::from_str::<Value>(s).unwrap();
        assert_eq!(
            user_name(&v(r#"{"id":1,"first_name":"Budi","last_name":"Santoso"}"#)),
            "Budi Santoso (Telegram)"
        );
        assert_eq!(
            user_name(&v(r#"{"id":1,"first_name":"","username":"pos1"}"#)),
            "@pos1 (Telegram)"
        );
        assert_eq!(user_name(&v(r#"{"id":7}"#)), "id 7 (Telegram)");
        assert_eq!(
            user_name(&v(r#"{"id":1,"first_name":"A\nB"}"#)),
            "A B (Telegram)"
        );
    }
}
