//! The guard apps' persistent sessions on the embedded broker, kept across ronda's restarts.
//!
//! An app that connects with a fixed client id and a clean session off asks the broker to keep
//! its subscriptions and to queue what it misses while it is out of reach. The embedded broker
//! keeps that queue in ronda's memory, so a restart or a crash of the box would empty it: the
//! phone on the round would never get the alerts of the hours it was away. So the broker's front
//! writes down each such session (its filters, and the last event and acknowledgement the app
//! itself acknowledged), and the next start makes the sessions again and sends each app what
//! came after its last one (`crate::sinks::broker::restore`).
//!
//! The rows are written as a whole, a few seconds after a change (a crash loses at most those
//! seconds: the app is then sent a few events twice, never none).

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::acks::{ACK_COLUMNS, read_ack};
use super::{Ack, Store, StoreError, from_ms, to_ms};
use crate::events::Event;

/// One app's persistent session.
#[derive(Clone, Debug, PartialEq)]
pub struct MqttSession {
    pub client_id: String,
    /// Its login (`[[mqtt.users]]`), if the broker has users.
    pub user: Option<String>,
    /// Its subscriptions, each with the QoS the broker granted.
    pub filters: Vec<(String, u8)>,
    /// The id of the last event the app acknowledged (or took, at QoS 0); `None`: none yet.
    pub last_event: Option<String>,
    /// The event id of the last guards' acknowledgement (`<prefix>/acks`) it took.
    pub last_ack: Option<String>,
    /// When the session was made: what was sent before it was never its to miss.
    pub since: DateTime<Utc>,
    /// When the app was last connected or took something.
    pub heard: DateTime<Utc>,
}

impl Store {
    /// Every session written down, least recently heard first.
    pub fn mqtt_sessions(&self) -> Result<Vec<MqttSession>, StoreError> {
        let what = "reading the guard apps' sessions";
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(
                "SELECT client_id, user, filters, last_event, last_ack, since_ms, heard_ms \
                 FROM mqtt_sessions ORDER BY heard_ms, client_id",
            )
            .map_err(self.err(what))?;
        st.query_map([], |r| {
            let filters: String = r.get(2)?;
            Ok(MqttSession {
                client_id: r.get(0)?,
                user: r.get(1)?,
                // written by `save_mqtt_sessions` only; unreadable: no subscriptions
                filters: serde_json::from_str(&filters).unwrap_or_default(),
                last_event: r.get(3)?,
                last_ack: r.get(4)?,
                since: from_ms(r.get(5)?),
                heard: from_ms(r.get(6)?),
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(self.err(what))
    }

    /// Write `all` as the sessions there are (the others are forgotten). One transaction.
    pub fn save_mqtt_sessions(&self, all: &[MqttSession]) -> Result<(), StoreError> {
        let what = "writing down the guard apps' sessions";
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.err(what))?;
        tx.execute("DELETE FROM mqtt_sessions", [])
            .map_err(self.err(what))?;
        for s in all {
            let filters = serde_json::to_string(&s.filters).unwrap_or_else(|_| "[]".into());
            tx.execute(
                "INSERT INTO mqtt_sessions (client_id, user, filters, last_event, last_ack, \
                 since_ms, heard_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    s.client_id,
                    s.user,
                    filters,
                    s.last_event,
                    s.last_ack,
                    to_ms(s.since),
                    to_ms(s.heard)
                ],
            )
            .map_err(self.err(what))?;
        }
        tx.commit().map_err(self.err(what))
    }

    /// Where in the outbox an app stands: the seq of the last event it took, or, when it took
    /// none (or that event is gone with retention), of the last event sent before `since`.
    pub fn event_place(&self, last: Option<&str>, since: DateTime<Utc>) -> Result<i64, StoreError> {
        self.place("events", "id", last, since)
    }

    /// The same for the guards' acknowledgements (`last` is the event id an ack is of).
    pub fn ack_place(&self, last: Option<&str>, since: DateTime<Utc>) -> Result<i64, StoreError> {
        self.place("acks", "event_id", last, since)
    }

    fn place(
        &self,
        table: &str,
        key: &str,
        last: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let what = "finding where a guard app stands in the outbox";
        let conn = self.conn();
        if let Some(id) = last {
            let seq: Option<i64> = conn
                .prepare_cached(&format!("SELECT seq FROM {table} WHERE {key} = ?1"))
                .and_then(|mut st| st.query_row([id], |r| r.get(0)).optional())
                .map_err(self.err(what))?;
            if let Some(seq) = seq {
                return Ok(seq);
            }
        }
        conn.prepare_cached(&format!(
            "SELECT coalesce(max(seq), 0) FROM {table} WHERE sent_at IS NOT NULL AND sent_at < ?1"
        ))
        .and_then(|mut st| st.query_row([to_ms(since)], |r| r.get(0)))
        .map_err(self.err(what))
    }

    /// The newest `limit` events the broker acknowledged with a seq above `after`, in seq order
    /// (unsent ones go out through the outbox anyway; quarantined ones never do).
    pub fn sent_events_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Event)>, StoreError> {
        let what = "reading the events a guard app missed";
        let rows: Vec<(i64, String)> = {
            let conn = self.conn();
            let mut st = conn
                .prepare_cached(
                    "SELECT seq, json FROM (SELECT seq, json FROM events WHERE seq > ?1 AND \
                     sent_at IS NOT NULL AND quarantined_ms IS NULL ORDER BY seq DESC LIMIT ?2) \
                     ORDER BY seq",
                )
                .map_err(self.err(what))?;
            st.query_map(params![after, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
                .map_err(self.err(what))?
        };
        // an event that no longer reads was set aside by the sink too: left out here
        Ok(rows
            .into_iter()
            .filter_map(|(seq, json)| Some((seq, self.parse(seq, &json).ok()?)))
            .collect())
    }

    /// How many events the broker acknowledged with a seq above `after`: what an app standing
    /// there has still to take (the admin page's "missed").
    pub fn sent_events_count_after(&self, after: i64) -> Result<u64, StoreError> {
        self.conn()
            .prepare_cached(
                "SELECT count(*) FROM events WHERE seq > ?1 AND sent_at IS NOT NULL AND \
                 quarantined_ms IS NULL",
            )
            .and_then(|mut st| st.query_row([after], |r| r.get::<_, i64>(0)))
            .map(|n| n as u64)
            .map_err(self.err("counting the events a guard app missed"))
    }

    /// The newest `limit` guards' acknowledgements the broker took with a seq above `after`,
    /// in seq order.
    pub fn sent_acks_after(&self, after: i64, limit: usize) -> Result<Vec<Ack>, StoreError> {
        self.conn()
            .prepare_cached(&format!(
                "SELECT {ACK_COLUMNS} FROM (SELECT * FROM acks WHERE seq > ?1 AND sent_at IS NOT \
                 NULL AND quarantined_ms IS NULL ORDER BY seq DESC LIMIT ?2) ORDER BY seq"
            ))
            .and_then(|mut st| {
                st.query_map(params![after, limit as i64], read_ack)
                    .and_then(|rows| rows.collect())
            })
            .map_err(self.err("reading the acknowledgements a guard app missed"))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    use super::super::testing::{stored_event as event, temp_store as store};

    fn session(id: &str, heard: DateTime<Utc>) -> MqttSession {
        MqttSession {
            client_id: id.into(),
            user: Some("pos1".into()),
            filters: vec![("ronda/rw9/#".into(), 1)],
            last_event: None,
            last_ack: None,
            since: heard - TimeDelta::minutes(5),
            heard,
        }
    }

    #[test]
    fn sessions_are_written_as_a_whole_and_read_back() {
        let (_d, store) = store();
        let t = from_ms(to_ms(Utc::now()));
        let mut a = session("pos1-phone", t);
        a.last_event = Some("e1".into());
        let b = session("pos2-phone", t - TimeDelta::hours(1));
        store.save_mqtt_sessions(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(store.mqtt_sessions().unwrap(), [b, a.clone()]);
        store.save_mqtt_sessions(&[a.clone()]).unwrap();
        assert_eq!(store.mqtt_sessions().unwrap(), [a]);
    }

    #[test]
    fn an_app_stands_after_its_last_event_or_at_its_sessions_start() {
        let (_d, store) = store();
        let t0 = Utc::now() - TimeDelta::hours(1);
        let (s1, _) = event(&store, Some(t0));
        let (s2, id2) = event(&store, Some(t0 + TimeDelta::minutes(10)));
        let (s3, _) = event(&store, Some(t0 + TimeDelta::minutes(20)));
        let (_s4, _) = event(&store, None);
        assert_eq!(store.event_place(Some(&id2), t0).unwrap(), s2);
        // no event taken yet: everything sent since the session was made is missed
        let since = t0 + TimeDelta::minutes(5);
        assert_eq!(store.event_place(None, since).unwrap(), s1);
        // its last event deleted by retention: the same
        assert_eq!(store.event_place(Some("gone"), since).unwrap(), s1);
        assert_eq!(store.event_place(None, t0).unwrap(), 0);
        // what it missed: sent events only, newest `limit`, in order
        let missed: Vec<i64> = store
            .sent_events_after(s1, 10)
            .unwrap()
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(missed, [s2, s3]);
        assert_eq!(store.sent_events_count_after(s1).unwrap(), 2);
        assert_eq!(store.sent_events_count_after(s3).unwrap(), 0);
        let newest: Vec<i64> = store
            .sent_events_after(0, 1)
            .unwrap()
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(newest, [s3]);
    }

    #[test]
    fn missed_acknowledgements_are_the_sent_ones_after_the_apps_last() {
        let (_d, store) = store();
        let t0 = Utc::now() - TimeDelta::hours(1);
        let ids: Vec<String> = (0..3).map(|_| event(&store, Some(t0)).1).collect();
        for id in &ids {
            store.acknowledge(id, "pos1", Utc::now(), "now").unwrap();
        }
        let acks = store.sent_acks_after(0, 10).unwrap();
        assert!(acks.is_empty(), "none is sent yet: {acks:?}");
        let all = store.unsent_acks(0, 10).unwrap();
        assert_eq!(all.len(), 3);
        for a in &all {
            store.mark_ack_sent(a.seq).unwrap();
        }
        let first = store.ack_place(Some(&ids[0]), t0).unwrap();
        assert_eq!(first, all[0].seq);
        let missed: Vec<String> = store
            .sent_acks_after(first, 10)
            .unwrap()
            .into_iter()
            .map(|a| a.event_id)
            .collect();
        assert_eq!(missed, ids[1..]);
    }
}
