//! Runs of the embedded broker, and what a crash may have taken with it.
//!
//! An event is marked sent when the broker acknowledged it (PUBACK). An external broker keeps
//! what it acknowledged whatever happens to ronda; the embedded one lives in ronda's process, so
//! a crash or a power cut takes with it whatever it had acknowledged and not yet handed to every
//! guard post: the bytes on their way through the broker's front and the kernel, and everything
//! it queued for an app that was reconnecting at that moment. Those events are marked sent and
//! would never go out again.
//!
//! So a run of the embedded broker is recorded at its start and forgotten at its clean stop.
//! Found at the next start, the run ended in a crash: what that run's broker acknowledged in
//! the last `window` before its last acknowledgement is marked unsent again and goes out once
//! more (held until the guard posts are back, like any backlog after a start). The last
//! acknowledgement stands in for the moment of the crash, which nobody wrote down: it is at or
//! before it, so every event acknowledged within `window` of the crash is among those sent
//! again; the rest (acknowledged earlier, when the crash came long after) are duplicates, which
//! consumers drop by id. The guards' acknowledgements (`acks`) are treated alike.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, from_ms, to_ms};

/// What a start found of the run before it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Crashed {
    /// When the run that did not stop cleanly had started; `None`: it stopped cleanly (or
    /// there was none).
    pub run_started: Option<DateTime<Utc>>,
    /// Events marked unsent again.
    pub events: u64,
    /// Guards' acknowledgements marked unsent again.
    pub acks: u64,
}

impl Store {
    /// A run of the embedded broker starts at `now`. If the one before did not stop cleanly,
    /// what its broker acknowledged in the last `window` before its last acknowledgement is
    /// marked unsent again (module doc). One transaction: a crash in here changes nothing.
    pub fn begin_broker_run(
        &self,
        now: DateTime<Utc>,
        window: std::time::Duration,
    ) -> Result<Crashed, StoreError> {
        let what = "recording the embedded broker's start";
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.err(what))?;
        let mut found = Crashed::default();
        let before: Option<i64> = tx
            .query_row("SELECT started_ms FROM broker_run WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.err(what))?;
        if let Some(started) = before {
            found.run_started = Some(from_ms(started));
            let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
            for (table, n) in [("events", &mut found.events), ("acks", &mut found.acks)] {
                // the last acknowledgement of that run, and everything within `window` of it
                let sql = format!(
                    "UPDATE {table} SET sent_at = NULL WHERE sent_at >= ?1 AND sent_at >= \
                     (SELECT max(sent_at) FROM {table} WHERE sent_at >= ?1) - ?2"
                );
                *n = tx
                    .execute(&sql, params![started, window_ms])
                    .map_err(self.err(what))? as u64;
            }
        }
        tx.execute(
            "INSERT INTO broker_run (id, started_ms) VALUES (1, ?1) \
             ON CONFLICT(id) DO UPDATE SET started_ms = ?1",
            [to_ms(now)],
        )
        .map_err(self.err(what))?;
        tx.commit().map_err(self.err(what))?;
        Ok(found)
    }

    /// The embedded broker's run stopped cleanly: the sink had delivered what it could and said
    /// `offline`; nothing it acknowledged is in doubt.
    pub fn end_broker_run(&self) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM broker_run", [])
            .map_err(self.err("recording the embedded broker's clean stop"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::{DateTime, TimeDelta, Utc};

    use super::super::to_ms;
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn store() -> (tempfile::TempDir, Store) {
        super::super::testing::temp_store()
    }

    /// An event stored and acknowledged by the broker at `sent` (None: still unsent).
    fn event_sent(store: &Store, sent: Option<DateTime<Utc>>) -> i64 {
        super::super::testing::stored_event(store, sent).0
    }

    fn unsent(store: &Store) -> Vec<i64> {
        store
            .unsent(0, 100)
            .unwrap()
            .into_iter()
            .map(|(s, _)| s)
            .collect()
    }

    fn at(t0: DateTime<Utc>, s: i64) -> DateTime<Utc> {
        t0 + TimeDelta::seconds(s)
    }

    #[test]
    fn after_a_crash_the_last_minute_acknowledged_goes_out_again() {
        let (_d, store) = store();
        let t0 = Utc::now() - TimeDelta::hours(2);
        // a run before, stopped cleanly: nothing of it is in doubt
        assert_eq!(
            store.begin_broker_run(at(t0, -600), MINUTE).unwrap(),
            Crashed::default()
        );
        let old = event_sent(&store, Some(at(t0, -300)));
        store.end_broker_run().unwrap();
        // the run that crashes: acknowledged 100 s, 50 s and 1 s before its last one, one
        // still unsent (it goes out anyway, as ever)
        assert_eq!(
            store.begin_broker_run(t0, MINUTE).unwrap(),
            Crashed::default()
        );
        let early = event_sent(&store, Some(at(t0, 0)));
        let within = event_sent(&store, Some(at(t0, 50)));
        let near = event_sent(&store, Some(at(t0, 99)));
        let last = event_sent(&store, Some(at(t0, 100)));
        let waiting = event_sent(&store, None);
        // a guard's acknowledgement of the last event, acknowledged by the broker with it
        let id: String = store
            .conn()
            .query_row("SELECT id FROM events WHERE seq = ?1", [last], |r| r.get(0))
            .unwrap();
        store.acknowledge(&id, "pos1", at(t0, 90), "").unwrap();
        store
            .conn()
            .execute("UPDATE acks SET sent_at = ?1", [to_ms(at(t0, 100))])
            .unwrap();
        assert_eq!(store.ack_backlog().unwrap(), 0);
        // the next start finds that run unfinished
        let found = store.begin_broker_run(at(t0, 3600), MINUTE).unwrap();
        assert_eq!(found.run_started.map(to_ms), Some(to_ms(t0)));
        assert_eq!((found.events, found.acks), (3, 1));
        assert_eq!(unsent(&store), vec![within, near, last, waiting]);
        assert_eq!(store.ack_backlog().unwrap(), 1);
        for seq in [old, early] {
            assert!(!unsent(&store).contains(&seq), "{seq} is not in doubt");
        }
        // this run stops cleanly: the next start sends nothing again
        store.mark_sent(within).unwrap();
        store.end_broker_run().unwrap();
        let found = store.begin_broker_run(at(t0, 7200), MINUTE).unwrap();
        assert_eq!(found, Crashed::default());
        assert_eq!(unsent(&store), vec![near, last, waiting]);
    }

    #[test]
    fn a_crash_before_anything_was_acknowledged_sends_nothing_again() {
        let (_d, store) = store();
        let t0 = Utc::now() - TimeDelta::hours(1);
        store.begin_broker_run(at(t0, -100), MINUTE).unwrap();
        event_sent(&store, Some(at(t0, -10)));
        // crashed; the next run crashes too before the broker acknowledged anything
        let found = store.begin_broker_run(t0, MINUTE).unwrap();
        assert_eq!(found.events, 1);
        store
            .conn()
            .execute(
                "UPDATE events SET sent_at = ?1",
                [to_ms(at(t0, -5))], // acknowledged by the first run's broker, not this one's
            )
            .unwrap();
        let found = store.begin_broker_run(at(t0, 60), MINUTE).unwrap();
        assert_eq!(found.run_started.map(to_ms), Some(to_ms(t0)));
        assert_eq!((found.events, found.acks), (0, 0));
        assert!(unsent(&store).is_empty());
    }
}
