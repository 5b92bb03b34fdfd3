//! A stream's pace: the typical time between its pictures, and how near a time threshold counts
//! as reached. The tracker and every line counter keep one, so both judge time alike.

/// A gap this long or longer (seconds) is a camera's stall or a still camera skipped, not the
/// pace of the stream.
const MAX_STEP_SECONDS: f64 = 2.0;

/// The running mean of the time between a stream's pictures.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pace {
    /// Stream time of the last picture seen.
    last: Option<f64>,
    /// Seconds between pictures (0 until two timed pictures were seen).
    interval: f64,
}

impl Pace {
    /// A picture at stream time `t` (seconds). The first has nothing before it; a repeated time
    /// (an untimed stream) or a gap of seconds leaves the pace as it was.
    pub fn observe(&mut self, t: f64) {
        if let Some(prev) = self.last {
            let dt = t - prev;
            if dt > 0.0 && dt < MAX_STEP_SECONDS {
                self.interval = if self.interval == 0.0 {
                    dt
                } else {
                    0.9 * self.interval + 0.1 * dt
                };
            }
        }
        self.last = Some(t);
    }

    /// Seconds between pictures (0 until known).
    pub fn interval(&self) -> f64 {
        self.interval
    }

    /// How near a time threshold counts as reached: a third of the interval. A live camera's
    /// timestamps jitter by milliseconds; without this a dwell of exactly five pictures at
    /// 5 fps would be 0.999 s live and 1.000 s in the recording, and the two would judge the
    /// same person differently.
    pub fn slack(&self) -> f64 {
        self.interval / 3.0 + 1e-6
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pace_follows_the_pictures_and_ignores_stalls() {
        let mut p = Pace::default();
        p.observe(10.0);
        assert_eq!(p.interval(), 0.0, "one picture has no pace");
        p.observe(10.2);
        assert!((p.interval() - 0.2).abs() < 1e-9);
        p.observe(15.0); // a stall of seconds
        p.observe(15.0); // the same time again (an untimed stream)
        assert!((p.interval() - 0.2).abs() < 1e-9);
        for k in 1..=100 {
            p.observe(15.0 + 0.04 * k as f64);
        }
        assert!((p.interval() - 0.04).abs() < 1e-3, "{}", p.interval());
        assert!((p.slack() - 0.04 / 3.0).abs() < 1e-3);
    }
}
