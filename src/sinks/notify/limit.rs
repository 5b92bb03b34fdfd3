//! A destination's pace: quiet hours and a rate limit (pure logic, the clock passed in).
//!
//! The rate limit is a sliding window: at most `max` messages in any `window`. A message that
//! would go beyond it is held (counted, not sent); when the oldest message of the window ages
//! out, the held ones go as one summary ("dan 5 lainnya dalam 10 menit"), which counts as a
//! message itself. A crowd at the gate then costs the village group `max` + 1 messages per
//! window, not one per person.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset};

use crate::config::Window;

/// The sliding-window rate limit of one destination.
#[derive(Debug)]
pub struct RateLimit {
    max: usize,
    window: Duration,
    /// When the messages still inside the window went out, oldest first.
    sent: VecDeque<Instant>,
}

impl RateLimit {
    pub fn new(max: u32, window: Duration) -> RateLimit {
        RateLimit {
            max: max.max(1) as usize,
            window,
            sent: VecDeque::new(),
        }
    }

    /// Whether a message may go out at `now`.
    pub fn room(&mut self, now: Instant) -> bool {
        while self
            .sent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.window)
        {
            self.sent.pop_front();
        }
        self.sent.len() < self.max
    }

    /// A message went out at `now`.
    pub fn record(&mut self, now: Instant) {
        self.sent.push_back(now);
    }

    /// When there is room again (now, if there is).
    pub fn next_room(&mut self, now: Instant) -> Instant {
        if self.room(now) {
            return now;
        }
        self.sent.front().map_or(now, |t| *t + self.window)
    }
}

/// Whether `t` (an event's own time, read in the site's zone) falls in the quiet hours.
pub fn in_quiet_hours(quiet: Option<Window>, t: DateTime<FixedOffset>, tz: chrono_tz::Tz) -> bool {
    quiet.is_some_and(|w| w.contains(t.with_timezone(&tz).time()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveTime;

    #[test]
    fn the_window_slides() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut r = RateLimit::new(2, s(600));
        assert!(r.room(t0));
        r.record(t0);
        assert!(r.room(t0 + s(1)));
        r.record(t0 + s(1));
        assert!(!r.room(t0 + s(2)));
        assert_eq!(r.next_room(t0 + s(2)), t0 + s(600));
        assert!(!r.room(t0 + s(599)));
        // the first one ages out: one message may go
        assert!(r.room(t0 + s(600)));
        r.record(t0 + s(600));
        assert!(!r.room(t0 + s(600)));
        assert_eq!(r.next_room(t0 + s(600)), t0 + s(601));
        assert!(r.room(t0 + s(2000)));
    }

    #[test]
    fn quiet_hours_wrap_midnight_and_use_the_sites_zone() {
        let hm = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
        let w = Some(Window {
            start: hm(22, 0),
            end: hm(5, 0),
        });
        let tz = chrono_tz::Asia::Jakarta;
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap();
        assert!(in_quiet_hours(w, t("2026-11-26T23:30:00+07:00"), tz));
        assert!(in_quiet_hours(w, t("2026-11-26T04:59:00+07:00"), tz));
        assert!(!in_quiet_hours(w, t("2026-11-26T05:00:00+07:00"), tz));
        assert!(!in_quiet_hours(w, t("2026-11-26T21:59:00+07:00"), tz));
        // 15:30 UTC is 22:30 in Jakarta
        assert!(in_quiet_hours(w, t("2026-11-26T15:30:00+00:00"), tz));
        assert!(!in_quiet_hours(None, t("2026-11-26T23:30:00+07:00"), tz));
    }
}
