//! Gate counts per line since the last daily reset, and when that reset is due.

use chrono::{DateTime, Duration, LocalResult, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use rusqlite::{OptionalExtension, Transaction, params};

use super::{Store, StoreError, from_ms, to_ms};
use crate::rules::Counts;

/// Whether a daily reset at local time `reset_at` (in `tz`) happened in `(since, now]`: counts
/// that started at `since` must start again from zero. True also when several resets were
/// missed (ronda was off over the reset time); false if the clock went back (`now <= since`).
pub fn reset_due(since: DateTime<Utc>, now: DateTime<Utc>, reset_at: NaiveTime, tz: Tz) -> bool {
    latest_reset(now, reset_at, tz).is_some_and(|r| r > since)
}

/// The last instant at or before `now` at which the local clock read `reset_at`.
fn latest_reset(now: DateTime<Utc>, reset_at: NaiveTime, tz: Tz) -> Option<DateTime<Utc>> {
    let today = now.with_timezone(&tz).date_naive();
    // Today's reset may still be ahead; yesterday's is then the last one. A third day back
    // covers a reset time that a DST jump skipped on one of them.
    (0..3).find_map(|back| {
        let local = (today - Duration::days(back)).and_time(reset_at);
        let t = match tz.from_local_datetime(&local) {
            LocalResult::Single(t) => t,
            // A clock set back passes the time twice: the first one resets.
            LocalResult::Ambiguous(first, _) => first,
            // A clock set forward skips it: reset an hour later by the clock, the instant the
            // old offset would have called `reset_at`.
            LocalResult::None => tz
                .from_local_datetime(&(local + Duration::hours(1)))
                .earliest()?,
        };
        let t = t.with_timezone(&Utc);
        (t <= now).then_some(t)
    })
}

impl Store {
    /// The stored counts of a line and since when they run, if any were stored.
    pub fn counts(
        &self,
        camera: &str,
        line: &str,
    ) -> Result<Option<(Counts, DateTime<Utc>)>, StoreError> {
        let row: Option<(i64, i64, i64)> = self
            .conn()
            .prepare_cached(
                "SELECT in_count, out_count, since_ms FROM line_counts \
                 WHERE camera = ?1 AND line = ?2",
            )
            .and_then(|mut st| {
                st.query_row([camera, line], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()
            })
            .map_err(self.err("reading line counts"))?;
        Ok(row.map(|(i, o, since)| {
            (
                Counts {
                    in_: i.max(0) as u64,
                    out: o.max(0) as u64,
                },
                from_ms(since),
            )
        }))
    }

    /// Store a line's counts (without an event: use [`Store::append_crossing`] for a crossing).
    pub fn set_counts(
        &self,
        camera: &str,
        line: &str,
        counts: Counts,
        since: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let what = "storing line counts";
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.err(what))?;
        upsert(&tx, camera, line, counts, since).map_err(self.err(what))?;
        tx.commit().map_err(self.err(what))
    }

    /// Start a line's counts again from zero at `now`.
    pub fn reset_counts(
        &self,
        camera: &str,
        line: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.set_counts(camera, line, Counts::default(), now)
    }

    /// The counts a line starts with at `now`: the stored ones, or zero since `now` if none were
    /// stored or a daily reset fell since they started (the reset is then stored).
    pub fn current_counts(
        &self,
        camera: &str,
        line: &str,
        now: DateTime<Utc>,
        reset_at: NaiveTime,
        tz: Tz,
    ) -> Result<(Counts, DateTime<Utc>), StoreError> {
        match self.counts(camera, line)? {
            Some((c, since)) if !reset_due(since, now, reset_at, tz) => Ok((c, since)),
            _ => {
                self.reset_counts(camera, line, now)?;
                Ok((Counts::default(), now))
            }
        }
    }
}

pub(super) fn upsert(
    tx: &Transaction<'_>,
    camera: &str,
    line: &str,
    c: Counts,
    since: DateTime<Utc>,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO line_counts (camera, line, in_count, out_count, since_ms, updated_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT(camera, line) DO UPDATE SET in_count = ?3, out_count = ?4, since_ms = ?5, \
         updated_ms = ?6",
    )?
    .execute(params![
        camera,
        line,
        c.in_.min(i64::MAX as u64) as i64,
        c.out.min(i64::MAX as u64) as i64,
        to_ms(since),
        to_ms(Utc::now())
    ])?;
    Ok(())
}
