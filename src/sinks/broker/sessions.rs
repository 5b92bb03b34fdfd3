//! The guard apps' persistent sessions as the front sees them, written down so that the next
//! start can make them again (`crate::store::MqttSession`, [`super::restore`]).
//!
//! The front tells the [`Book`] when an app with a clean session off connects, what the broker
//! granted its SUBSCRIBE, what it gives up, and which events and acknowledgements it took: the
//! broker's PUBLISH going down, matched to the app's PUBACK coming up ([`Deliveries`]). A
//! [`Keeper`] thread writes the book to the store a few seconds after it changed and once more
//! when the broker stops. Apps with a clean session are not written down: they ask to be
//! forgotten. Nothing here is per frame: a few packets per event and app.

use std::collections::HashMap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use tracing::warn;

use super::packet;
use crate::api::GuardApp;
use crate::store::{MqttSession, Store};

/// How soon a change reaches the store. A crash loses at most this much of the apps' progress:
/// they are then sent a few events twice, which they drop by id.
const SAVE_EVERY: Duration = Duration::from_secs(2);
/// The most sessions written down: an app that makes a new client id at every connection would
/// otherwise grow the list without end. The least recently heard go first.
pub const MAX_SESSIONS: usize = 200;
/// A client id longer than this is not written down (MQTT asks brokers to take 23 characters;
/// an app's id is seldom longer than a phone's name), so the store's table stays small.
const MAX_ID_BYTES: usize = 256;
/// The most filters written down per session: an app reads a handful of topics.
const MAX_FILTERS: usize = 32;

/// Which kind of message an app took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Event,
    Ack,
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<String, MqttSession>,
    /// Open connections by client id (in memory only): an app is online while one is open.
    online: HashMap<String, u32>,
    dirty: bool,
}

/// Every persistent session, as the front last saw it.
pub struct Book {
    events: String,
    acks: String,
    inner: Mutex<Inner>,
}

impl Book {
    /// A book for the topics `<prefix>/events` and `<prefix>/acks`, holding `restored` (the
    /// sessions made again at this start).
    pub fn new(prefix: &str, restored: Vec<MqttSession>) -> Arc<Book> {
        Arc::new(Book {
            events: crate::topic::full(prefix, crate::topic::EVENTS),
            acks: crate::topic::full(prefix, crate::topic::ACKS),
            inner: Mutex::new(Inner {
                sessions: restored
                    .into_iter()
                    .map(|s| (s.client_id.clone(), s))
                    .collect(),
                online: HashMap::new(),
                // written once at the start: the sessions not made again (too old, of a user
                // the configuration no longer has) leave the store
                dirty: true,
            }),
        })
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// An app logged in. With a clean session it is forgotten (the broker forgets it too).
    pub fn connected(&self, client_id: &str, user: Option<&str>, clean: bool, now: DateTime<Utc>) {
        self.with(|b| {
            if clean || client_id.len() > MAX_ID_BYTES {
                b.dirty |= b.sessions.remove(client_id).is_some();
                return;
            }
            let s = b
                .sessions
                .entry(client_id.to_string())
                .or_insert_with(|| MqttSession {
                    client_id: client_id.to_string(),
                    user: None,
                    filters: Vec::new(),
                    last_event: None,
                    last_ack: None,
                    since: now,
                    heard: now,
                });
            s.user = user.map(str::to_string);
            s.heard = now;
            if b.sessions.len() > MAX_SESSIONS
                && let Some(oldest) = b
                    .sessions
                    .values()
                    .min_by_key(|s| s.heard)
                    .map(|s| s.client_id.clone())
            {
                b.sessions.remove(&oldest);
            }
            b.dirty = true;
        });
    }

    /// The broker granted `granted` (filter, SUBACK code) of the app's SUBSCRIBE.
    pub fn subscribed(&self, client_id: &str, granted: &[(String, u8)]) {
        self.with(|b| {
            let Some(s) = b.sessions.get_mut(client_id) else {
                return;
            };
            for (filter, code) in granted {
                if *code == packet::SUBSCRIPTION_REFUSED {
                    continue;
                }
                s.filters.retain(|(f, _)| f != filter);
                if s.filters.len() < MAX_FILTERS {
                    s.filters.push((filter.clone(), *code));
                }
            }
            b.dirty = true;
        });
    }

    /// The app gave up `filters`.
    pub fn unsubscribed(&self, client_id: &str, filters: &[String]) {
        self.with(|b| {
            if let Some(s) = b.sessions.get_mut(client_id) {
                s.filters.retain(|(f, _)| !filters.contains(f));
                b.dirty = true;
            }
        });
    }

    /// Every session with whether the app is connected now, most recently heard first: the
    /// admin page's list of guard apps.
    pub fn apps(&self) -> Vec<GuardApp> {
        let mut all: Vec<GuardApp> = self.with(|b| {
            b.sessions
                .values()
                .map(|s| GuardApp {
                    online: b.online.contains_key(&s.client_id),
                    reads_events: s
                        .filters
                        .iter()
                        .any(|(f, _)| crate::topic::matches(f, &self.events)),
                    session: s.clone(),
                })
                .collect()
        });
        all.sort_by(|a, b| {
            (b.online, b.session.heard, &a.session.client_id).cmp(&(
                a.online,
                a.session.heard,
                &b.session.client_id,
            ))
        });
        all
    }

    /// Whether `client_id` has a session here (`None`: none), and whether it is connected now.
    pub fn online(&self, client_id: &str) -> Option<bool> {
        self.with(|b| {
            b.sessions
                .contains_key(client_id)
                .then(|| b.online.contains_key(client_id))
        })
    }

    /// Take `client_id`'s session out (an admin forgot it); written at the next round.
    pub fn forget(&self, client_id: &str) {
        self.with(|b| b.dirty |= b.sessions.remove(client_id).is_some());
    }

    fn took(&self, client_id: &str, kind: Kind, id: String, now: DateTime<Utc>) {
        self.with(|b| {
            if let Some(s) = b.sessions.get_mut(client_id) {
                match kind {
                    Kind::Event => s.last_event = Some(id),
                    Kind::Ack => s.last_ack = Some(id),
                }
                s.heard = now;
                b.dirty = true;
            }
        });
    }

    /// Every session, when something changed since the last call.
    fn changed(&self) -> Option<Vec<MqttSession>> {
        self.with(|b| {
            if !b.dirty {
                return None;
            }
            b.dirty = false;
            Some(b.sessions.values().cloned().collect())
        })
    }

    /// What a message the broker sends on `topic` is, by the id in its `payload`.
    fn what(&self, topic: &str, payload: &[u8]) -> Option<(Kind, String)> {
        #[derive(Deserialize)]
        struct Ids {
            id: Option<String>,
            event_id: Option<String>,
        }
        let kind = if topic == self.events {
            Kind::Event
        } else if topic == self.acks {
            Kind::Ack
        } else {
            return None;
        };
        let ids: Ids = serde_json::from_slice(payload).ok()?;
        match kind {
            Kind::Event => ids.id,
            Kind::Ack => ids.event_id,
        }
        .map(|id| (kind, id))
    }
}

/// One connection of an app with a persistent session: the events and acknowledgements on
/// their way to it, by packet id, until it acknowledges them; its SUBSCRIBEs until the broker
/// answers them.
pub struct Deliveries {
    book: Arc<Book>,
    client_id: String,
    on_the_way: Mutex<HashMap<u16, (Kind, String)>>,
    /// The filters of each SUBSCRIBE that went on to the broker, by packet id.
    asked: Mutex<HashMap<u16, Vec<String>>>,
}

impl Deliveries {
    /// The app's connection is open until this is dropped.
    pub fn new(book: Arc<Book>, client_id: &str) -> Deliveries {
        book.with(|b| *b.online.entry(client_id.to_string()).or_default() += 1);
        Deliveries {
            book,
            client_id: client_id.to_string(),
            on_the_way: Mutex::default(),
            asked: Mutex::default(),
        }
    }

    /// A packet from the app (`may`: may it subscribe to this filter; the front takes the
    /// others out before the SUBSCRIBE goes on).
    pub fn up(&self, p: &[u8], may: impl Fn(&str) -> bool) {
        match packet::kind(p[0]) {
            packet::PUBACK => {
                let Ok(pkid) = packet::parse_puback(p) else {
                    return;
                };
                let taken = lock(&self.on_the_way).remove(&pkid);
                if let Some((kind, id)) = taken {
                    self.book.took(&self.client_id, kind, id, Utc::now());
                }
            }
            packet::SUBSCRIBE => {
                if let Ok(sub) = packet::parse_subscribe(p) {
                    let filters = sub.filters.into_iter().map(|(f, _)| f).filter(|f| may(f));
                    let filters: Vec<String> = filters.collect();
                    // none allowed: the front answers it, the broker never sees it
                    if !filters.is_empty() {
                        lock(&self.asked).insert(sub.pkid, filters);
                    }
                }
            }
            packet::UNSUBSCRIBE => {
                if let Ok(filters) = packet::parse_unsubscribe(p) {
                    self.book.unsubscribed(&self.client_id, &filters);
                }
            }
            _ => {}
        }
    }

    /// A packet from the broker to the app.
    pub fn down(&self, p: &[u8]) {
        match packet::kind(p[0]) {
            packet::PUBLISH => {
                let Ok(publish) = packet::parse_publish(p) else {
                    return;
                };
                let Some((kind, id)) = self.book.what(publish.topic, publish.payload) else {
                    return;
                };
                match publish.pkid {
                    // QoS 0: nothing comes back; handed over is as taken as it gets
                    None => self.book.took(&self.client_id, kind, id, Utc::now()),
                    Some(pkid) => {
                        lock(&self.on_the_way).insert(pkid, (kind, id));
                    }
                }
            }
            packet::SUBACK => {
                let Ok((pkid, codes)) = packet::parse_suback(p) else {
                    return;
                };
                if let Some(filters) = lock(&self.asked).remove(&pkid) {
                    let granted: Vec<(String, u8)> = filters.into_iter().zip(codes).collect();
                    self.book.subscribed(&self.client_id, &granted);
                }
            }
            _ => {}
        }
    }
}

impl Drop for Deliveries {
    /// The connection closed: the app was last heard now (what the admin page shows).
    fn drop(&mut self) {
        let now = Utc::now();
        self.book.with(|b| {
            if let Some(n) = b.online.get_mut(&self.client_id) {
                *n -= 1;
                if *n == 0 {
                    b.online.remove(&self.client_id);
                }
            }
            if let Some(s) = b.sessions.get_mut(&self.client_id) {
                s.heard = now;
                b.dirty = true;
            }
        });
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Writes the book to the store: [`SAVE_EVERY`] after a change, and once more when dropped.
pub struct Keeper {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Keeper {
    pub fn start(book: Arc<Book>, store: Arc<Store>) -> Keeper {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("mqtt-sessions".into())
            .spawn(move || {
                let mut failing = false;
                loop {
                    let last = !matches!(
                        stopped.recv_timeout(SAVE_EVERY),
                        Err(RecvTimeoutError::Timeout)
                    );
                    if let Some(all) = book.changed() {
                        match store.save_mqtt_sessions(&all) {
                            Ok(()) => failing = false,
                            Err(e) => {
                                if !failing {
                                    warn!(
                                        "{e}; the guard apps' sessions are written down once it \
                                         works again (until then a restart sends them more twice)"
                                    );
                                }
                                failing = true;
                                // written again at the next round
                                book.with(|b| b.dirty = true);
                            }
                        }
                    }
                    if last {
                        break;
                    }
                }
            })
            .ok();
        Keeper {
            stop: Some(stop),
            thread,
        }
    }
}

impl Drop for Keeper {
    /// The last write, after the front closed: what the apps took up to the stop.
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(topic: &str, pkid: u16, payload: &str) -> Vec<u8> {
        packet::encode_publish(topic, pkid, payload.as_bytes())
    }

    #[test]
    fn an_app_is_written_down_with_what_it_took_and_forgotten_when_it_asks() {
        let book = Book::new("ronda/rw9", Vec::new());
        assert_eq!(
            book.changed(),
            Some(Vec::new()),
            "written once at the start"
        );
        let t = Utc::now();
        book.connected("pos1-phone", Some("pos1"), false, t);
        book.connected("screen", None, true, t);
        let d = Deliveries::new(book.clone(), "pos1-phone");
        let filters = vec![
            ("other/#".to_string(), 1),
            ("ronda/rw9/#".to_string(), 1),
            ("ronda/rw9/x".to_string(), 1),
        ];
        let may = |f: &str| f.starts_with("ronda/rw9/");
        d.up(
            &packet::encode_subscribe(&packet::Subscribe { pkid: 7, filters }),
            may,
        );
        // the broker granted the first filter that went on, refused the second
        d.down(&packet::encode_suback(7, &[1, 0x80]));
        d.down(&publish("ronda/rw9/events", 1, r#"{"schema":1,"id":"e1"}"#));
        d.down(&publish("ronda/rw9/events", 2, r#"{"schema":1,"id":"e2"}"#));
        d.down(&publish("ronda/rw9/acks", 3, r#"{"event_id":"e0"}"#));
        d.down(&publish(
            "ronda/rw9/cameras/g/status",
            4,
            r#"{"state":"online"}"#,
        ));
        for pkid in [1u16, 3, 4] {
            d.up(&[0x40, 2, 0, pkid as u8], may);
        }
        let all = book.changed().unwrap();
        assert_eq!(all.len(), 1, "only the persistent session: {all:?}");
        let s = &all[0];
        assert_eq!(s.user.as_deref(), Some("pos1"));
        assert_eq!(s.filters, [("ronda/rw9/#".to_string(), 1)]);
        // e2 is on its way, not taken: it is sent again after a restart
        assert_eq!(s.last_event.as_deref(), Some("e1"));
        assert_eq!(s.last_ack.as_deref(), Some("e0"));
        assert!(book.changed().is_none(), "nothing changed since");
        d.up(&[0x40, 2, 0, 2], may);
        assert_eq!(book.changed().unwrap()[0].last_event.as_deref(), Some("e2"));
        d.up(
            &[
                0xa2, 15, 0, 8, 0, 11, b'r', b'o', b'n', b'd', b'a', b'/', b'r', b'w', b'9', b'/',
                b'#',
            ],
            may,
        );
        assert!(book.changed().unwrap()[0].filters.is_empty());
        book.connected("pos1-phone", Some("pos1"), true, t);
        assert_eq!(book.changed().unwrap(), []);
        // an id too long to keep is not written down
        book.connected(&"x".repeat(MAX_ID_BYTES + 1), None, false, t);
        assert!(book.changed().is_none());
    }

    #[test]
    fn apps_are_online_while_a_connection_is_open_and_heard_when_it_closes() {
        let book = Book::new("ronda/rw9", Vec::new());
        let t0 = Utc::now() - chrono::TimeDelta::hours(1);
        book.connected("pos1-phone", Some("pos1"), false, t0);
        book.connected("pos2-phone", None, false, t0 - chrono::TimeDelta::hours(1));
        let d1 = Deliveries::new(book.clone(), "pos1-phone");
        let d2 = Deliveries::new(book.clone(), "pos2-phone");
        d2.up(
            &packet::encode_subscribe(&packet::Subscribe {
                pkid: 1,
                filters: vec![("ronda/rw9/+".to_string(), 1)],
            }),
            |_| true,
        );
        d2.down(&packet::encode_suback(1, &[1]));
        // the same app again (a takeover): online until both connections closed
        let again = Deliveries::new(book.clone(), "pos1-phone");
        drop(d1);
        let apps = book.apps();
        let ids: Vec<(&str, bool, bool)> = apps
            .iter()
            .map(|a| (a.session.client_id.as_str(), a.online, a.reads_events))
            .collect();
        assert_eq!(
            ids,
            [("pos1-phone", true, false), ("pos2-phone", true, true)],
            "online, then the most recently heard"
        );
        drop(again);
        let apps = book.apps();
        let ids: Vec<(&str, bool)> = apps
            .iter()
            .map(|a| (a.session.client_id.as_str(), a.online))
            .collect();
        assert_eq!(ids, [("pos2-phone", true), ("pos1-phone", false)]);
        assert!(apps[1].session.heard > t0, "heard when it left");
    }

    #[test]
    fn the_book_keeps_the_most_recently_heard_sessions() {
        let book = Book::new("ronda/rw9", Vec::new());
        let t0 = Utc::now();
        for i in 0..=MAX_SESSIONS {
            let t = t0 + chrono::TimeDelta::seconds(i as i64);
            book.connected(&format!("app-{i}"), None, false, t);
        }
        let all = book.changed().unwrap();
        assert_eq!(all.len(), MAX_SESSIONS);
        assert!(all.iter().all(|s| s.client_id != "app-0"));
    }
}
