//! An analysis rate kept by the pictures' timestamps (pure logic).

/// Keeps the pictures of a camera at (at most) the analysis rate, by their timestamps: a picture
/// is kept when it is due, within a quarter interval, and the next one is due an interval later. A camera slower than the analysis rate keeps
/// every picture, a faster one about the rate, whatever the stream says its frame rate is.
/// (GStreamer's `videorate` with fixed caps refuses a stream slower than the caps, or one that
/// declares no frame rate, at negotiation: such a camera never came online.)
#[derive(Debug)]
pub struct RateGate {
    interval_ns: u64,
    next_ns: Option<u64>,
}

impl RateGate {
    pub fn new(fps: f64) -> Self {
        RateGate {
            interval_ns: (1e9 / fps.max(0.01)) as u64,
            next_ns: None,
        }
    }

    /// Keep the picture at `t_ns` (its timestamp, or its arrival where it has none)?
    pub fn keep(&mut self, t_ns: u64) -> bool {
        let tol = self.interval_ns / 4;
        if let Some(next) = self.next_ns {
            // far behind what is due: the stream restarted its clock (a new session)
            let restarted = next > t_ns + 2 * self.interval_ns;
            if restarted {
                self.next_ns = None;
            } else if t_ns + tol < next {
                return false;
            }
        }
        // on schedule: the next is due an interval after this one was; after a gap (a camera
        // slower than the rate, a stall), an interval after this picture
        let due = match self.next_ns {
            Some(next) if t_ns < next + self.interval_ns => next,
            _ => t_ns,
        };
        self.next_ns = Some(due + self.interval_ns);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(fps: f64, every_ms: f64, n: u64, jitter: impl Fn(u64) -> f64) -> usize {
        let mut g = RateGate::new(fps);
        (0..n)
            .filter(|&i| g.keep(((i as f64 * every_ms + jitter(i)) * 1e6) as u64))
            .count()
    }

    #[test]
    fn the_rate_gate_keeps_the_analysis_rate_or_every_picture_of_a_slower_camera() {
        // 25 fps camera, 10 s: 10 fps and 5 fps analysed
        let n = kept(10.0, 40.0, 250, |_| 0.0);
        assert!((99..=101).contains(&n), "{n}");
        let n = kept(5.0, 40.0, 250, |_| 0.0);
        assert!((49..=51).contains(&n), "{n}");
        // 15 fps camera at 12 fps (the demo's gate): about 12 a second
        let n = kept(12.0, 1000.0 / 15.0, 150, |_| 0.0);
        assert!((119..=121).contains(&n), "{n}");
        // a camera slower than the analysis rate, or exactly at it with jitter: every picture
        assert_eq!(kept(10.0, 200.0, 50, |_| 0.0), 50);
        assert_eq!(
            kept(10.0, 100.0, 100, |i| if i % 2 == 0 { 3.0 } else { -3.0 }),
            100
        );
        // half a frame per second
        let n = kept(0.5, 40.0, 250, |_| 0.0);
        assert!((5..=6).contains(&n), "{n}");
    }

    #[test]
    fn the_rate_gate_follows_a_stream_whose_clock_restarts() {
        let mut g = RateGate::new(10.0);
        let ms = |v: u64| v * 1_000_000;
        assert!(g.keep(ms(50_000)));
        assert!(!g.keep(ms(50_040)));
        // a new session starts its timestamps at zero
        assert!(g.keep(ms(0)));
        assert!(!g.keep(ms(40)));
        assert!(g.keep(ms(100)));
    }
}
