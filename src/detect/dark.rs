//! A camera too dark to detect anyone: in low light, the motion gate keeps waking the detector
//! for hours and the detector never finds a person. Lifting the picture (`detect::light`) has
//! its limits (a black street, a lamp gone out, an infrared lamp that failed, a lens fogged
//! over); such a camera would stay silent while people pass, so the admin is told.
//!
//! Pure: each analysed picture's facts come in with its time (the caller's clock, so a test
//! drives hours without waiting), the flag goes out.

use std::time::{Duration, Instant};

/// Moving pictures a spell needs before it can flag the camera: a spell begun by one gust of
/// wind and ended by nothing is not "motion for hours".
const MIN_MOVING: u64 = 20;

/// The watch of one camera.
#[derive(Clone, Debug)]
pub struct DarkWatch {
    /// How long motion in low light with nobody found makes the camera too dark
    /// (`[detector] too_dark_after_hours`).
    after: Duration,
    /// The current spell: since when, and its moving pictures.
    since: Option<Instant>,
    moving: u64,
    too_dark: bool,
}

impl DarkWatch {
    pub fn new(after: Duration) -> Self {
        Self {
            after,
            since: None,
            moving: 0,
            too_dark: false,
        }
    }

    /// One analysed picture at `now`: whether the motion gate saw motion in it (not a change of
    /// light), whether it was dark (lifted before detection), whether a person was found. The
    /// camera's flag after it.
    pub fn look(&mut self, now: Instant, moved: bool, low_light: bool, person: bool) -> bool {
        if person || !low_light {
            // the detector works here (or it is day): a new spell starts with the next motion
            // in the dark
            self.since = None;
            self.moving = 0;
            self.too_dark = false;
        } else if moved {
            let since = *self.since.get_or_insert(now);
            self.moving += 1;
            self.too_dark = self.moving >= MIN_MOVING && now.duration_since(since) >= self.after;
        }
        self.too_dark
    }

    /// Whether the camera is flagged as too dark.
    pub fn too_dark(&self) -> bool {
        self.too_dark
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    /// `n` moving, dark pictures evenly spread over `span` from `from`, nobody found; the flag
    /// after each.
    fn dark_motion(w: &mut DarkWatch, from: Instant, span: Duration, n: u32) -> Vec<bool> {
        (0..n)
            .map(|k| w.look(from + span * k / n.max(1), true, true, false))
            .collect()
    }

    #[test]
    fn motion_in_the_dark_for_hours_with_nobody_found_flags_the_camera() {
        let mut w = DarkWatch::new(3 * HOUR);
        let t0 = Instant::now();
        // two and a half hours of it: not yet
        let flags = dark_motion(&mut w, t0, HOUR * 5 / 2, 150);
        assert!(flags.iter().all(|f| !f));
        // past three hours: flagged, and it stays so while nothing changes
        assert!(w.look(t0 + 3 * HOUR, true, true, false));
        assert!(w.look(t0 + 3 * HOUR + HOUR / 2, false, true, false));
        assert!(w.too_dark());
        // a person found: the camera sees after all
        assert!(!w.look(t0 + 4 * HOUR, true, true, true));
        // and the next spell starts from nothing
        assert!(!w.look(t0 + 4 * HOUR + HOUR / 60, true, true, false));
    }

    #[test]
    fn daylight_or_a_person_found_now_and_then_never_flags() {
        let t0 = Instant::now();
        // a dark camera that finds someone every two hours
        let mut w = DarkWatch::new(3 * HOUR);
        for hour in 0..12u32 {
            let from = t0 + HOUR * hour;
            assert!(dark_motion(&mut w, from, HOUR, 60).iter().all(|f| !f));
            if hour % 2 == 1 {
                w.look(from + HOUR * 59 / 60, true, true, true);
            }
        }
        // a daylight camera on an empty street with trees in the wind all day
        let mut w = DarkWatch::new(3 * HOUR);
        for k in 0..600u32 {
            assert!(!w.look(t0 + HOUR * k / 50, true, false, false));
        }
    }

    #[test]
    fn a_short_burst_of_motion_long_ago_is_not_hours_of_motion() {
        let mut w = DarkWatch::new(3 * HOUR);
        let t0 = Instant::now();
        // a few moving pictures at dusk, then the still camera re-checked now and then
        dark_motion(&mut w, t0, Duration::from_secs(10), 5);
        for k in 1..40u32 {
            assert!(!w.look(t0 + HOUR * k / 10, false, true, false));
        }
        // one more gust four hours later: still only six moving pictures
        assert!(!w.look(t0 + 4 * HOUR, true, true, false));
    }
}
