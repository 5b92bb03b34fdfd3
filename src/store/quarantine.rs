//! Messages set aside because the broker or the MQTT client would refuse them (see
//! `crate::topic::refusal`): kept here with why and when, never sent again, counted in
//! `/metrics` as `ronda_mqtt_quarantined_total`. An admin can read them with
//! `sqlite3 var/ronda.db 'SELECT kind, ref, reason FROM quarantine'`.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, from_ms, to_ms};

/// One quarantined message.
#[derive(Clone, Debug, PartialEq)]
pub struct Quarantined {
    /// `event`, `ack` or `retained`.
    pub kind: String,
    /// The event's id (also of an acknowledgement), or the retained topic after the prefix.
    pub reference: String,
    pub topic: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// The outgoing tables a row can be set aside from.
#[derive(Clone, Copy)]
enum Outgoing {
    Event,
    Ack,
}

impl Store {
    /// Set event `seq` aside: it is not sent any more. Returns its id, or `None` when there is
    /// no such event still to send (acknowledged or quarantined meanwhile).
    pub fn quarantine_event(
        &self,
        seq: i64,
        topic: &str,
        reason: &str,
    ) -> Result<Option<String>, StoreError> {
        self.quarantine_row(Outgoing::Event, seq, topic, reason)
    }

    /// Set acknowledgement `seq` aside: it is not published any more. Returns the id of the
    /// event it acknowledges, or `None` when there is no such acknowledgement still to send.
    pub fn quarantine_ack(
        &self,
        seq: i64,
        topic: &str,
        reason: &str,
    ) -> Result<Option<String>, StoreError> {
        self.quarantine_row(Outgoing::Ack, seq, topic, reason)
    }

    /// Mark row `seq` of an outgoing table quarantined and note it in `quarantine`, in one
    /// transaction; the row's event id, or `None` when it is no longer waiting to be sent.
    fn quarantine_row(
        &self,
        table: Outgoing,
        seq: i64,
        topic: &str,
        reason: &str,
    ) -> Result<Option<String>, StoreError> {
        let (name, id_column, kind, what) = match table {
            Outgoing::Event => ("events", "id", "event", "setting an event aside"),
            Outgoing::Ack => (
                "acks",
                "event_id",
                "ack",
                "setting an acknowledgement aside",
            ),
        };
        let now = to_ms(Utc::now());
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.err(what))?;
        // table and column names are the constants above, never input
        let id: Option<String> = tx
            .query_row(
                &format!(
                    "UPDATE {name} SET quarantined_ms = ?2 \
                     WHERE seq = ?1 AND sent_at IS NULL AND quarantined_ms IS NULL RETURNING {id_column}"
                ),
                params![seq, now],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err(what))?;
        if let Some(id) = &id {
            tx.execute(
                "INSERT INTO quarantine (kind, ref, topic, payload, reason, at_ms) \
                 VALUES (?1, ?2, ?3, NULL, ?4, ?5) ON CONFLICT(kind, ref) DO NOTHING",
                params![kind, id, topic, reason, now],
            )
            .map_err(self.err(what))?;
        }
        tx.commit().map_err(self.err(what))?;
        Ok(id)
    }

    /// Set a retained message aside: it leaves the retained state (so it is not sent again at
    /// every connect) and is kept here. Returns `true` when this topic is quarantined for the
    /// first time (so the caller says so once, not at every attempt).
    pub fn quarantine_retained(
        &self,
        topic_suffix: &str,
        topic: &str,
        payload: &str,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let what = "setting a retained message aside";
        let now = to_ms(Utc::now());
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.err(what))?;
        tx.execute("DELETE FROM retained WHERE topic = ?1", [topic_suffix])
            .map_err(self.err(what))?;
        let known = tx
            .query_row(
                "SELECT 1 FROM quarantine WHERE kind = 'retained' AND ref = ?1",
                [topic_suffix],
                |_| Ok(()),
            )
            .optional()
            .map_err(self.err(what))?
            .is_some();
        tx.execute(
            "INSERT INTO quarantine (kind, ref, topic, payload, reason, at_ms) \
             VALUES ('retained', ?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT(kind, ref) DO UPDATE SET payload = ?3, reason = ?4, at_ms = ?5",
            params![topic_suffix, topic, payload, reason, now],
        )
        .map_err(self.err(what))?;
        tx.commit().map_err(self.err(what))?;
        Ok(!known)
    }

    /// Drop a retained topic without clearing it on the broker (which never took it).
    pub fn forget_retained(&self, topic_suffix: &str) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached("DELETE FROM retained WHERE topic = ?1")
            .and_then(|mut st| st.execute([topic_suffix]))
            .map_err(self.err("forgetting retained MQTT state"))?;
        Ok(())
    }

    /// How many messages are quarantined.
    pub fn quarantine_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn()
            .prepare_cached("SELECT count(*) FROM quarantine")
            .and_then(|mut st| st.query_row([], |r| r.get(0)))
            .map_err(self.err("counting quarantined messages"))?;
        Ok(n as u64)
    }

    /// Every quarantined message, oldest first.
    pub fn quarantined(&self) -> Result<Vec<Quarantined>, StoreError> {
        let what = "reading quarantined messages";
        let conn = self.conn();
        let mut st = conn
            .prepare_cached("SELECT kind, ref, topic, reason, at_ms FROM quarantine ORDER BY id")
            .map_err(self.err(what))?;
        st.query_map([], |r| {
            Ok(Quarantined {
                kind: r.get(0)?,
                reference: r.get(1)?,
                topic: r.get(2)?,
                reason: r.get(3)?,
                at: from_ms(r.get(4)?),
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(self.err(what))
    }
}
