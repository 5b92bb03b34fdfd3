//! Guards' acknowledgements of events: one per event (the first guard's), stored with who and
//! when, and published on `<prefix>/acks` by the MQTT sink like the outbox (unsent until the
//! broker's PUBACK). Also the guard page's "what did I miss" query: the newest events with their
//! acknowledgements.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, from_ms, to_ms};
use crate::events::{Event, Severity};

/// An acknowledgement as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Ack {
    pub seq: i64,
    pub event_id: String,
    pub user: String,
    pub at: DateTime<Utc>,
    /// Site time with offset, as published.
    pub time: String,
}

/// What [`Store::acknowledge`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum Acked {
    /// Stored now.
    New(Ack),
    /// The event already had one: the first stays.
    Earlier(Ack),
    /// No stored event has this id.
    UnknownEvent,
}

pub(super) const ACK_COLUMNS: &str = "seq, event_id, user, at_ms, time";

pub(super) fn read_ack(r: &rusqlite::Row<'_>) -> rusqlite::Result<Ack> {
    Ok(Ack {
        seq: r.get(0)?,
        event_id: r.get(1)?,
        user: r.get(2)?,
        at: from_ms(r.get(3)?),
        time: r.get(4)?,
    })
}

impl Store {
    /// Record that `user` saw event `event_id` at `at` (`time`: the same in site time). The
    /// first acknowledgement of an event stays; later ones change nothing.
    pub fn acknowledge(
        &self,
        event_id: &str,
        user: &str,
        at: DateTime<Utc>,
        time: &str,
    ) -> Result<Acked, StoreError> {
        let what = "storing an acknowledgement";
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.err(what))?;
        let known: bool = tx
            .query_row("SELECT 1 FROM events WHERE id = ?1", [event_id], |_| Ok(()))
            .optional()
            .map_err(self.err(what))?
            .is_some();
        if !known {
            return Ok(Acked::UnknownEvent);
        }
        let earlier = tx
            .query_row(
                &format!("SELECT {ACK_COLUMNS} FROM acks WHERE event_id = ?1"),
                [event_id],
                read_ack,
            )
            .optional()
            .map_err(self.err(what))?;
        if let Some(a) = earlier {
            return Ok(Acked::Earlier(a));
        }
        tx.execute(
            "INSERT INTO acks (event_id, user, at_ms, time) VALUES (?1, ?2, ?3, ?4)",
            params![event_id, user, to_ms(at), time],
        )
        .map_err(self.err(what))?;
        let seq = tx.last_insert_rowid();
        tx.commit().map_err(self.err(what))?;
        Ok(Acked::New(Ack {
            seq,
            event_id: event_id.to_string(),
            user: user.to_string(),
            at: from_ms(to_ms(at)),
            time: time.to_string(),
        }))
    }

    /// The acknowledgement of event `event_id`, if any.
    pub fn ack_of(&self, event_id: &str) -> Result<Option<Ack>, StoreError> {
        self.conn()
            .prepare_cached(&format!(
                "SELECT {ACK_COLUMNS} FROM acks WHERE event_id = ?1"
            ))
            .and_then(|mut st| st.query_row([event_id], read_ack).optional())
            .map_err(self.err("reading an acknowledgement"))
    }

    /// Up to `limit` acknowledgements not yet published with a seq above `after_seq`, in order.
    pub fn unsent_acks(&self, after_seq: i64, limit: usize) -> Result<Vec<Ack>, StoreError> {
        self.conn()
            .prepare_cached(&format!(
                "SELECT {ACK_COLUMNS} FROM acks WHERE sent_at IS NULL AND quarantined_ms IS NULL \
                 AND seq > ?1 ORDER BY seq LIMIT ?2"
            ))
            .and_then(|mut st| {
                st.query_map(params![after_seq, limit as i64], read_ack)
                    .and_then(|rows| rows.collect())
            })
            .map_err(self.err("reading the acknowledgements to publish"))
    }

    /// The broker acknowledged the publish of acknowledgement `seq`.
    pub fn mark_ack_sent(&self, seq: i64) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached("UPDATE acks SET sent_at = ?2 WHERE seq = ?1 AND sent_at IS NULL")
            .and_then(|mut st| st.execute(params![seq, to_ms(Utc::now())]))
            .map_err(self.err("marking an acknowledgement sent"))?;
        Ok(())
    }

    /// How many acknowledgements wait to be published.
    pub fn ack_backlog(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn()
            .prepare_cached(
                "SELECT count(*) FROM acks WHERE sent_at IS NULL AND quarantined_ms IS NULL",
            )
            .and_then(|mut st| st.query_row([], |r| r.get(0)))
            .map_err(self.err("counting the acknowledgements to publish"))?;
        Ok(n as u64)
    }

    /// The newest `limit` stored events at or above `min_severity`, newest first, each with its
    /// acknowledgement.
    pub fn recent_events(
        &self,
        limit: usize,
        min_severity: Severity,
    ) -> Result<Vec<(Event, Option<Ack>)>, StoreError> {
        let what = "reading the newest events";
        let severities: &[&str] = match min_severity {
            Severity::Info => &["info", "warning", "alert"],
            Severity::Warning => &["warning", "alert"],
            Severity::Alert => &["alert"],
        };
        let marks = vec!["?"; severities.len()].join(", ");
        let rows: Vec<(i64, String, Option<Ack>)> = {
            let conn = self.conn();
            // seq order is store order, which is time order for one box (the writer is one
            // thread); the severity index is not needed for a LIMIT walk from the newest
            let mut st = conn
                .prepare_cached(&format!(
                    "SELECT e.seq, e.json, a.seq, a.event_id, a.user, a.at_ms, a.time \
                     FROM events e LEFT JOIN acks a ON a.event_id = e.id \
                     WHERE e.severity IN ({marks}) ORDER BY e.seq DESC LIMIT {}",
                    limit.min(10_000)
                ))
                .map_err(self.err(what))?;
            st.query_map(rusqlite::params_from_iter(severities.iter()), |r| {
                let ack = match r.get::<_, Option<i64>>(2)? {
                    Some(seq) => Some(Ack {
                        seq,
                        event_id: r.get(3)?,
                        user: r.get(4)?,
                        at: from_ms(r.get(5)?),
                        time: r.get(6)?,
                    }),
                    None => None,
                };
                Ok((r.get(0)?, r.get(1)?, ack))
            })
            .and_then(|rows| rows.collect())
            .map_err(self.err(what))?
        };
        rows.into_iter()
            .map(|(seq, json, ack)| Ok((self.parse(seq, &json)?, ack)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventKind;

    fn event(kind: EventKind, severity: Severity) -> Event {
        Event::new(
            "test",
            chrono_tz::Asia::Jakarta,
            "gate-1",
            kind,
            severity,
            Utc::now(),
        )
    }

    #[test]
    fn the_first_acknowledgement_stays_and_goes_out_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("ronda.db")).unwrap();
        let e = event(EventKind::NoMask, Severity::Alert);
        s.append(&e).unwrap();
        assert_eq!(
            s.acknowledge("nope", "pos1", Utc::now(), "t").unwrap(),
            Acked::UnknownEvent
        );
        let Acked::New(first) = s.acknowledge(&e.id, "pos1", Utc::now(), "t1").unwrap() else {
            panic!("not stored")
        };
        let Acked::Earlier(again) = s.acknowledge(&e.id, "pos2", Utc::now(), "t2").unwrap() else {
            panic!("a second acknowledgement replaced the first")
        };
        assert_eq!(again, first);
        assert_eq!(s.ack_backlog().unwrap(), 1);
        let unsent = s.unsent_acks(0, 10).unwrap();
        assert_eq!(unsent, vec![first.clone()]);
        s.mark_ack_sent(first.seq).unwrap();
        assert_eq!(s.ack_backlog().unwrap(), 0);
        assert!(s.unsent_acks(0, 10).unwrap().is_empty());
        assert_eq!(s.ack_of(&e.id).unwrap(), Some(first));
    }

    #[test]
    fn recent_events_newest_first_by_severity_with_their_acks() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("ronda.db")).unwrap();
        let info = event(EventKind::LineCrossing, Severity::Info);
        let warn = event(EventKind::Loitering, Severity::Warning);
        let alert = event(EventKind::Intrusion, Severity::Alert);
        for e in [&info, &warn, &alert] {
            s.append(e).unwrap();
        }
        s.acknowledge(&warn.id, "pos1", Utc::now(), "t").unwrap();
        let all = s.recent_events(10, Severity::Info).unwrap();
        let ids: Vec<_> = all.iter().map(|(e, _)| e.id.as_str()).collect();
        assert_eq!(ids, [&alert.id, &warn.id, &info.id]);
        assert_eq!(all[1].1.as_ref().unwrap().user, "pos1");
        assert!(all[0].1.is_none());
        let warnings = s.recent_events(10, Severity::Warning).unwrap();
        assert_eq!(warnings.len(), 2);
        assert_eq!(s.recent_events(1, Severity::Info).unwrap().len(), 1);
    }
}
