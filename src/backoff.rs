//! Retry delays: a first delay, doubling after each failure up to a cap, and the first again
//! after a success. Used by every retry in ronda (camera reconnects, the MQTT sink's reconnects,
//! the webhook and notify deliveries, Telegram's button polling) and by the login brakes.
//!
//! Pure logic: nothing here reads the clock or sleeps. Callers pass `now` in and do the waiting
//! themselves, so a test drives hours of an outage in microseconds instead of sleeping them.

use std::time::{Duration, Instant};

/// A doubling retry delay: `first`, `2 * first`, `4 * first`, ... up to `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            next: first,
        }
    }

    /// The delay before the next try, without taking it (a caller that decides later whether
    /// this failure counts).
    pub fn peek(&self) -> Duration {
        self.next
    }

    /// A failure: the delay before the next try; the one after it is twice as long, up to the
    /// cap. (The first delay is `first` even above the cap, as the retries always did.)
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        // saturating: a cap of "forever" must not overflow into a panic
        self.next = self.next.saturating_mul(2).min(self.max);
        d
    }

    /// A failure at `now`: when to try again.
    pub fn ready_at(&mut self, now: Instant) -> Instant {
        now + self.next_delay()
    }

    /// A success (or a run that went well for a while): the next failure waits `first` again.
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

/// The delay after `n` doublings of `first`, capped at `max` (`n = 0` is `first`): for a lockout
/// whose length follows a count of failures rather than a run of retries.
pub fn doubled(first: Duration, n: u32, max: Duration) -> Duration {
    // 2^16 times any lockout start is past any cap; the shift must stay inside u32
    first.saturating_mul(1 << n.min(16)).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn doubles_up_to_the_cap_and_starts_again_after_a_reset() {
        let mut b = Backoff::new(S, 60 * S);
        let got: Vec<u64> = (0..9).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        b.reset();
        assert_eq!(b.peek(), S);
        assert_eq!(b.next_delay(), S);
        assert_eq!(b.peek(), 2 * S);
    }

    #[test]
    fn a_three_hour_outage_is_tried_185_times() {
        // A camera down for three hours, retried from 1 s doubling to 60 s: 1+2+...+32 = 63 s
        // for the first six tries, then one a minute: 6 + ceil((10800 - 63) / 60) = 185. Driven
        // with a made-up clock: no sleeping, the whole outage in microseconds.
        let start = Instant::now();
        let end = start + Duration::from_secs(3 * 3600);
        let mut b = Backoff::new(S, 60 * S);
        let (mut now, mut tries) = (start, 0);
        while now < end {
            now = b.ready_at(now);
            tries += 1;
        }
        assert_eq!(tries, 185);
        assert_eq!(b.peek(), 60 * S, "still at the cap");
    }

    #[test]
    fn a_day_of_mqtt_outage_stays_at_ten_seconds() {
        // the MQTT sink's defaults: 0.5 s doubling to 10 s; a day is 8640 tries at the cap
        let mut b = Backoff::new(Duration::from_millis(500), 10 * S);
        let mut waited = Duration::ZERO;
        let mut longest = Duration::ZERO;
        for _ in 0..(5 + 8640) {
            let d = b.next_delay();
            longest = longest.max(d);
            waited += d;
        }
        assert_eq!(longest, 10 * S);
        // 0.5 + 1 + 2 + 4 + 8 = 15.5 s, then 8640 x 10 s
        assert_eq!(waited, Duration::from_millis(15_500) + 86_400 * S);
    }

    #[test]
    fn a_cap_of_forever_does_not_overflow() {
        let mut b = Backoff::new(S, Duration::MAX);
        for _ in 0..200 {
            b.next_delay();
        }
        assert_eq!(b.peek(), Duration::MAX);
    }

    #[test]
    fn a_first_delay_above_the_cap_is_waited_once() {
        let mut b = Backoff::new(10 * S, 5 * S);
        assert_eq!(b.next_delay(), 10 * S);
        assert_eq!(b.next_delay(), 5 * S);
    }

    #[test]
    fn doubled_follows_the_same_steps() {
        let mut b = Backoff::new(S, 30 * S);
        for n in 0..40 {
            assert_eq!(doubled(S, n, 30 * S), b.next_delay(), "after {n} doublings");
        }
        assert_eq!(doubled(S, u32::MAX, Duration::MAX), S * 65536);
    }
}
