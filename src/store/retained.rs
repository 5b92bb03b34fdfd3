//! The last payload of each retained MQTT topic, so the sink can publish it again after a
//! reconnect (a broker restarted without persistence forgets it) or a restart of ronda.

use chrono::Utc;
use rusqlite::params;

use super::{Store, StoreError, to_ms};

impl Store {
    /// Remember the payload of a retained topic, by its suffix after the topic prefix
    /// (`cameras/gate-1/status`).
    pub fn set_retained(&self, topic_suffix: &str, payload: &str) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "INSERT INTO retained (topic, payload, updated_ms) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(topic) DO UPDATE SET payload = ?2, updated_ms = ?3",
            )
            .and_then(|mut st| st.execute(params![topic_suffix, payload, to_ms(Utc::now())]))
            .map_err(self.err("storing retained MQTT state"))?;
        Ok(())
    }

    /// Every remembered retained topic suffix and payload, by topic.
    pub fn retained(&self) -> Result<Vec<(String, String)>, StoreError> {
        let what = "reading retained MQTT state";
        let conn = self.conn();
        let mut st = conn
            .prepare_cached("SELECT topic, payload FROM retained ORDER BY topic")
            .map_err(self.err(what))?;
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(self.err(what))
    }
}

impl Store {
    /// The topic went away (its line was removed or renamed, its camera left the file): keep
    /// an empty payload for it until the broker acknowledged the empty retained message that
    /// clears it there ([`Store::forget_cleared`]), so subscribers see no ghost, even if ronda
    /// restarts meanwhile. Returns whether the topic was known.
    pub fn clear_retained(&self, topic_suffix: &str) -> Result<bool, StoreError> {
        let n = self
            .conn()
            .prepare_cached("UPDATE retained SET payload = '', updated_ms = ?2 WHERE topic = ?1")
            .and_then(|mut st| st.execute(params![topic_suffix, to_ms(Utc::now())]))
            .map_err(self.err("clearing retained MQTT state"))?;
        Ok(n > 0)
    }

    /// The broker cleared the topic: forget it, unless it was given a payload again meanwhile.
    pub fn forget_cleared(&self, topic_suffix: &str) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached("DELETE FROM retained WHERE topic = ?1 AND payload = ''")
            .and_then(|mut st| st.execute([topic_suffix]))
            .map_err(self.err("forgetting cleared retained MQTT state"))?;
        Ok(())
    }
}
