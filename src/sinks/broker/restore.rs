//! At a start of the embedded broker, before any client can connect: the guard apps'
//! persistent sessions written down in the store (`crate::store::MqttSession`, kept by
//! [`super::sessions`]) are made again, and each app is sent what the broker had acknowledged
//! after its last event: what it missed while it was out of reach, which the broker before the
//! restart had queued in memory and took down with it.
//!
//! How, with nothing but MQTT: rumqttd queues for a disconnected persistent session whatever
//! is published after it subscribed. So the sessions are made one by one, ronda's own login
//! connecting with each app's client id and a clean session off, subscribing its filters and
//! disconnecting, in the order of where each stands in the outbox (the one that missed most
//! first); after each, the events between it and the next are published again. Each event so
//! reaches exactly the apps that had not taken it (an event is acknowledged by the broker
//! before the next session subscribes, and a subscription starts with what is published after
//! it). The guards' acknowledgements (`<prefix>/acks`) go after all sessions are made, from the
//! earliest any app missed: an app may take one twice (it marks the same event twice).
//!
//! Bounds: sessions heard within [`KEEP_SESSIONS`], of users the configuration still has; at
//! most [`MAX_REPLAY`] events (the newest) and as many acknowledgements. The web UI's alert
//! feed and incidents keep the rest. Events the outbox has not sent yet go out through the
//! sink as ever, to every session made here.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::BrokerUser;
use super::packet::{self, Connect, PacketError};
use crate::store::{MqttSession, Store, StoreError};
use crate::topic::{self, shown};

/// Sessions not heard from for longer are forgotten at a start (the phone was replaced, the
/// app reinstalled with another id).
pub const KEEP_SESSIONS: Duration = Duration::from_secs(7 * 24 * 3600);
/// The most events (and acknowledgements) sent again at a start: about what the broker keeps
/// in memory for one subscription (4 MiB).
pub const MAX_REPLAY: usize = 2000;
/// How long rumqttd, on loopback, may take to answer one packet.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// One step of making the sessions again, in order.
#[derive(Debug, PartialEq)]
enum Step {
    /// Make this session (index into [`Restoration::sessions`]).
    Session(usize),
    Publish {
        topic: String,
        payload: Vec<u8>,
    },
}

/// What a start makes again, read from the store.
pub struct Restoration {
    /// The sessions kept (the others are forgotten).
    pub sessions: Vec<MqttSession>,
    /// How many events each kept session is sent again (same order).
    pub missed: Vec<usize>,
    steps: Vec<Step>,
}

/// Read the sessions and what each missed from `store`: those heard since `now` -
/// [`KEEP_SESSIONS`], of `users` (any, when the broker has none).
pub fn prepare(
    store: &Store,
    prefix: &str,
    users: &[BrokerUser],
    now: DateTime<Utc>,
) -> Result<Restoration, StoreError> {
    let events = topic::full(prefix, topic::EVENTS);
    let acks = topic::full(prefix, topic::ACKS);
    let oldest = now - chrono::Duration::from_std(KEEP_SESSIONS).unwrap_or_default();
    let sessions: Vec<MqttSession> = store
        .mqtt_sessions()?
        .into_iter()
        .filter(|s| s.heard >= oldest && !s.filters.is_empty())
        .filter(|s| {
            users.is_empty()
                || s.user
                    .as_deref()
                    .is_some_and(|u| users.iter().any(|b| b.name == u))
        })
        .collect();
    let reads = |s: &MqttSession, t: &str| s.filters.iter().any(|(f, _)| topic::matches(f, t));
    let mut event_places = Vec::with_capacity(sessions.len());
    let mut ack_floor: Option<i64> = None;
    for s in &sessions {
        event_places.push(match reads(s, &events) {
            true => Some(store.event_place(s.last_event.as_deref(), s.since)?),
            false => None,
        });
        if reads(s, &acks) {
            let at = store.ack_place(s.last_ack.as_deref(), s.since)?;
            ack_floor = Some(ack_floor.map_or(at, |f| f.min(at)));
        }
    }
    let sent = match event_places.iter().flatten().min() {
        Some(&floor) => store.sent_events_after(floor, MAX_REPLAY)?,
        None => Vec::new(),
    };
    let seqs: Vec<i64> = sent.iter().map(|(seq, _)| *seq).collect();
    let missed = event_places
        .iter()
        .map(|p| p.map_or(0, |at| seqs.iter().filter(|s| **s > at).count()))
        .collect();
    let mut payloads: Vec<Option<Vec<u8>>> = sent
        .iter()
        .map(|(_, e)| serde_json::to_vec(e).ok())
        .collect();
    let mut steps = Vec::new();
    for p in plan(&event_places, &seqs) {
        match p {
            Planned::Session(i) => steps.push(Step::Session(i)),
            Planned::Event(i) => {
                if let Some(payload) = payloads[i].take() {
                    steps.push(Step::Publish {
                        topic: events.clone(),
                        payload,
                    });
                }
            }
        }
    }
    if let Some(floor) = ack_floor {
        for a in store.sent_acks_after(floor, MAX_REPLAY)? {
            steps.push(Step::Publish {
                topic: acks.clone(),
                payload: crate::sinks::mqtt::ack_payload(&a),
            });
        }
    }
    Ok(Restoration {
        sessions,
        missed,
        steps,
    })
}

#[derive(Debug, PartialEq)]
enum Planned {
    Session(usize),
    Event(usize),
}

/// The order of making sessions and sending events: `places[i]` is where session i stands in
/// the outbox (`None`: it does not read the events), `seqs` the events that may go again, in
/// order. Each event goes out after every session that stands before it is made, and before
/// any that stands at or after it.
fn plan(places: &[Option<i64>], seqs: &[i64]) -> Vec<Planned> {
    let mut order: Vec<usize> = (0..places.len()).collect();
    // those that read no events first, then by place
    order.sort_by_key(|&i| (places[i].is_some(), places[i]));
    let mut out = Vec::with_capacity(places.len() + seqs.len());
    let mut next = 0;
    for (k, &i) in order.iter().enumerate() {
        out.push(Planned::Session(i));
        let Some(_) = places[i] else { continue };
        let upto = order[k + 1..]
            .iter()
            .find_map(|&j| places[j])
            .unwrap_or(i64::MAX);
        while next < seqs.len() && seqs[next] <= upto {
            if places[i].is_some_and(|at| seqs[next] > at) {
                out.push(Planned::Event(next));
            }
            next += 1;
        }
    }
    out
}

impl Restoration {
    /// Make the sessions and send what they missed, through rumqttd on `inner` with ronda's
    /// own login. A session the broker does not take is logged and passed over; a publish that
    /// fails stops it all (the sessions not made yet get only what comes).
    pub fn run(&self, inner: SocketAddr, own: &BrokerUser) -> std::io::Result<()> {
        let mut publisher: Option<Conn> = None;
        let mut pkid: u16 = 0;
        for step in &self.steps {
            match step {
                Step::Session(i) => {
                    let s = &self.sessions[*i];
                    let made = Conn::open(inner, own, &s.client_id, false, ANSWER_TIMEOUT);
                    let made = made.and_then(|mut c| {
                        c.subscribe(&s.filters)?;
                        c.close()
                    });
                    // one session the broker will not take does not keep the others back
                    if let Err(e) = made {
                        tracing::warn!(
                            "the session of guard app `{}` could not be made again ({e}); it \
                             gets what comes from now on",
                            shown(&s.client_id)
                        );
                    }
                }
                Step::Publish { topic, payload } => {
                    let p = match &mut publisher {
                        Some(p) => p,
                        None => {
                            let id = format!("ronda-restore-{:08x}", rand::random::<u32>());
                            publisher.insert(Conn::open(inner, own, &id, true, ANSWER_TIMEOUT)?)
                        }
                    };
                    pkid = pkid.checked_add(1).unwrap_or(1);
                    p.publish(topic, pkid, payload)?;
                }
            }
        }
        if let Some(p) = publisher {
            p.close()?;
        }
        Ok(())
    }

    /// For the log: each session made again and how many events it is sent again.
    pub fn summary(&self) -> String {
        self.sessions
            .iter()
            .zip(&self.missed)
            .map(|(s, n)| {
                let who = s
                    .user
                    .as_deref()
                    .map(|u| format!(" (user `{}`)", shown(u)))
                    .unwrap_or_default();
                format!("`{}`{who}: {n} event(s)", shown(&s.client_id))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Make rumqttd forget `client_id`'s session: connect with its client id and a clean session,
/// and leave (MQTT 3.1.1: a clean session discards the one before). Waits for the broker to
/// close, so the session is gone when this returns.
pub fn forget(inner: SocketAddr, own: &BrokerUser, client_id: &str) -> std::io::Result<()> {
    Conn::open(inner, own, client_id, true, ANSWER_TIMEOUT)?.close()
}

/// A connection to rumqttd: a few packets, each answered before the next (also the broker's
/// readiness probe, `super::probe`).
pub(super) struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Connected and logged in with `own`, each step within `timeout`.
    pub(super) fn open(
        inner: SocketAddr,
        own: &BrokerUser,
        client_id: &str,
        clean: bool,
        timeout: Duration,
    ) -> std::io::Result<Conn> {
        let mut s = TcpStream::connect_timeout(&inner, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.set_nodelay(true)?;
        s.write_all(&packet::encode_connect(&Connect {
            clean_session: clean,
            keep_alive: 30,
            client_id: client_id.to_string(),
            will: None,
            username: Some(own.name.clone()),
            password: Some(own.password.as_bytes().to_vec()),
        }))?;
        let mut c = Conn { s, buf: Vec::new() };
        let connack = c.next(|p| packet::kind(p[0]) == 2)?;
        if connack.get(3) != Some(&0) {
            return Err(std::io::Error::other(format!(
                "the broker refused the session of `{}`: {connack:02x?}",
                shown(client_id)
            )));
        }
        Ok(c)
    }

    /// The next packet `wanted` takes; others (nothing is expected) are passed over.
    fn next(&mut self, wanted: impl Fn(&[u8]) -> bool) -> std::io::Result<Vec<u8>> {
        loop {
            match packet::frame_len(&self.buf, super::front::MAX_FROM_BROKER) {
                Ok(Some(n)) => {
                    let p: Vec<u8> = self.buf.drain(..n).collect();
                    if wanted(&p) {
                        return Ok(p);
                    }
                    continue;
                }
                Ok(None) => {}
                Err(e) => return Err(bad(e)),
            }
            let mut chunk = [0u8; 4096];
            let n = self.s.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::Error::other("the broker closed the connection"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn subscribe(&mut self, filters: &[(String, u8)]) -> std::io::Result<()> {
        self.s
            .write_all(&packet::encode_subscribe(&packet::Subscribe {
                pkid: 1,
                filters: filters.to_vec(),
            }))?;
        self.next(|p| packet::kind(p[0]) == packet::SUBACK)?;
        Ok(())
    }

    fn publish(&mut self, topic: &str, pkid: u16, payload: &[u8]) -> std::io::Result<()> {
        self.s
            .write_all(&packet::encode_publish(topic, pkid, payload))?;
        self.next(|p| packet::kind(p[0]) == packet::PUBACK && packet::parse_puback(p) == Ok(pkid))?;
        Ok(())
    }

    /// DISCONNECT, without waiting for anything.
    pub(super) fn leave(mut self) -> std::io::Result<TcpStream> {
        self.s.write_all(&[0xe0, 0])?;
        Ok(self.s)
    }

    /// DISCONNECT, and wait for the broker to close: it has then put the session away, before
    /// anything published after this.
    fn close(self) -> std::io::Result<()> {
        let mut s = self.leave()?;
        let mut sink = [0u8; 1024];
        while s.read(&mut sink)? > 0 {}
        Ok(())
    }
}

fn bad(e: PacketError) -> std::io::Error {
    std::io::Error::other(format!("the broker sent what is not MQTT: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Planned::{Event as E, Session as S};

    #[test]
    fn each_event_goes_to_the_sessions_that_had_not_taken_it() {
        // session 0 stands at 5, 1 reads no events, 2 at 2, 3 at 5 too, 4 at 9
        let places = [Some(5), None, Some(2), Some(5), Some(9)];
        let seqs = [3, 4, 5, 6, 8, 9, 10];
        assert_eq!(
            plan(&places, &seqs),
            [
                S(1),
                S(2),
                E(0), // 3
                E(1), // 4
                E(2), // 5
                S(0),
                S(3),
                E(3), // 6
                E(4), // 8
                E(5), // 9
                S(4),
                E(6), // 10
            ]
        );
    }

    #[test]
    fn only_recent_sessions_of_todays_users_are_made_again_with_what_they_missed() {
        use crate::config::MqttRole;
        use crate::events::Event;
        let (_dir, store) = crate::store::testing::temp_store();
        let now = Utc::now();
        let ids: Vec<String> = (0..4)
            .map(|_| crate::store::testing::stored_event(&store, Some(now)).1)
            .collect();
        let session = |id: &str, user: &str, heard_days: i64, last: usize| MqttSession {
            client_id: id.into(),
            user: Some(user.into()),
            filters: vec![("ronda/rw9/#".into(), 1)],
            last_event: Some(ids[last].clone()),
            last_ack: None,
            since: now - chrono::TimeDelta::days(30),
            heard: now - chrono::TimeDelta::days(heard_days),
        };
        store
            .save_mqtt_sessions(&[
                session("pos1-phone", "pos1", 1, 1),
                session("pos2-phone", "pos2", 0, 3),
                session("old-phone", "pos1", 8, 0),
                session("gone-phone", "bekas", 0, 0),
            ])
            .unwrap();
        let user = |name: &str| BrokerUser {
            name: name.into(),
            password: "x".into(),
            role: MqttRole::Guard,
        };
        let r = prepare(&store, "ronda/rw9", &[user("pos1"), user("pos2")], now).unwrap();
        let kept: Vec<&str> = r.sessions.iter().map(|s| s.client_id.as_str()).collect();
        assert_eq!(kept, ["pos1-phone", "pos2-phone"]);
        assert_eq!(r.missed, [2, 0]);
        let published: Vec<String> = r
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Publish { payload, .. } => {
                    Some(serde_json::from_slice::<Event>(payload).unwrap().id)
                }
                Step::Session(_) => None,
            })
            .collect();
        assert_eq!(published, ids[2..]);
        assert!(matches!(r.steps[0], Step::Session(0)));
        assert!(matches!(r.steps.last(), Some(Step::Session(1))));
        assert!(
            r.summary()
                .contains("`pos1-phone` (user `pos1`): 2 event(s)")
        );
    }

    #[test]
    fn a_session_that_took_everything_gets_nothing_again() {
        assert_eq!(plan(&[Some(10)], &[]), [S(0)]);
        assert_eq!(
            plan(&[Some(10), Some(4)], &[5, 10]),
            [S(1), E(0), E(1), S(0)]
        );
        assert_eq!(plan(&[], &[1, 2]), []);
    }
}
