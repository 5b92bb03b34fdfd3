//! The report's periods in site time: the 24 hours before `[gatebook] report_at`, across clock
//! changes.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The instant the site's clock reads `at` on `date` (a time a clock change skips is taken an
/// hour later; one it passes twice, the first time).
pub fn instant(date: NaiveDate, at: NaiveTime, tz: Tz) -> DateTime<Utc> {
    let local = date.and_time(at);
    let t = match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t),
        LocalResult::Ambiguous(first, _) => Some(first),
        LocalResult::None => tz
            .from_local_datetime(&(local + Duration::hours(1)))
            .earliest(),
    };
    t.map_or_else(|| local.and_utc(), |t| t.with_timezone(&Utc))
}

/// The report period that ended last at `now`: `[from, to)` with `to` the latest report time
/// at or before `now` and `from` the one the day before.
pub fn period_ending(now: DateTime<Utc>, at: NaiveTime, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    let today = now.with_timezone(&tz).date_naive();
    let date = (0..3)
        .map(|back| today - Duration::days(back))
        .find(|d| instant(*d, at, tz) <= now)
        .unwrap_or(today - Duration::days(1));
    (
        instant(date - Duration::days(1), at, tz),
        instant(date, at, tz),
    )
}

/// The first report time after `now`.
pub fn next_after(now: DateTime<Utc>, at: NaiveTime, tz: Tz) -> DateTime<Utc> {
    let today = now.with_timezone(&tz).date_naive();
    (0..3)
        .map(|k| instant(today + Duration::days(k), at, tz))
        .find(|t| *t > now)
        .unwrap_or_else(|| now + Duration::days(1))
}

/// The report period of `day` (`YYYY-MM-DD`: the site date it starts on).
pub fn period_of(day: NaiveDate, at: NaiveTime, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    (
        instant(day, at, tz),
        instant(day + Duration::days(1), at, tz),
    )
}

pub(super) fn local(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz)
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}
