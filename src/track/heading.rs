//! Which way a person has been walking: the sightings of the last second, kept per track, so that
//! a detection one picture later that would have them step back against that heading can be
//! recognised as most likely someone else's.
//!
//! Why: two walkers passing each other merge into one box for a few pictures; the Kalman filter's
//! velocity dies there (the merged box stands still), and when they part the first track takes
//! whichever box is strong, often the other walker's, carrying its side of the gate line across
//! to them (traced on TUD-Stadtmitte). The heading from before the merge still says which box is
//! theirs.

use crate::geometry::{BBox, Point};

/// Sightings kept per track (0.64 s at 25 pictures a second, the whole [`HEADING_SECONDS`] at
/// 20 or fewer).
const KEPT: usize = 16;
/// How far back the heading looks at most (seconds of the stream).
const HEADING_SECONDS: f64 = 0.8;
/// The shortest stretch a heading is taken over.
const MIN_SPAN_SECONDS: f64 = 0.3;
/// A person walking covers at least this many box heights a second (a walker does about 0.8;
/// someone standing jitters by hundredths).
const WALKING_HEIGHTS_PER_S: f32 = 0.3;
/// How fast (heights a second) a person can plausibly step back against their heading.
const TURN_HEIGHTS_PER_S: f32 = 0.5;
/// A step back shorter than this (heights) is box jitter, never a reason to look elsewhere.
const MIN_BACK_STEP_HEIGHTS: f32 = 0.08;

/// A track's recent sightings: stream time and box centre, oldest first (a small ring).
#[derive(Clone, Debug, Default)]
pub struct Trail {
    seen: [(f64, Point); KEPT],
    next: usize,
    len: usize,
}

impl Trail {
    pub fn push(&mut self, t: f64, at: Point) {
        self.seen[self.next] = (t, at);
        self.next = (self.next + 1) % KEPT;
        self.len = (self.len + 1).min(KEPT);
    }

    fn get(&self, k: usize) -> (f64, Point) {
        // k = 0 is the oldest kept
        self.seen[(self.next + KEPT - self.len + k) % KEPT]
    }

    /// The last sighting.
    pub fn last(&self) -> Option<(f64, Point)> {
        (self.len > 0).then(|| self.get(self.len - 1))
    }

    /// The walking direction (a unit vector) over the last [`HEADING_SECONDS`], if the person
    /// has been walking (not standing) for long enough to tell. `slack`: how near a time
    /// threshold counts as reached (a third of a frame interval, as the line counter's): a live
    /// camera's timestamps jitter by milliseconds, and at 5 pictures a second a sighting exactly
    /// 0.8 s back must be judged alike live and in the recording.
    pub fn heading(&self, height: f32, slack: f64) -> Option<Point> {
        let (t1, p1) = self.last()?;
        let (t0, p0) = (0..self.len)
            .map(|k| self.get(k))
            .find(|(t, _)| t1 - t <= HEADING_SECONDS + slack)?;
        let span = t1 - t0;
        if span < MIN_SPAN_SECONDS - slack {
            return None;
        }
        let (dx, dy) = (p1.x - p0.x, p1.y - p0.y);
        let dist = (dx * dx + dy * dy).sqrt();
        (dist >= WALKING_HEIGHTS_PER_S * height * span as f32)
            .then(|| Point::new(dx / dist, dy / dist))
    }

    /// How far (in box heights) `det` would have the person step along their heading since they
    /// were last seen (negative: back), or `None` when they have no heading.
    pub fn step_along(&self, det: &BBox, height: f32, slack: f64) -> Option<f32> {
        let dir = self.heading(height, slack)?;
        let (_, p1) = self.last()?;
        let c = det.center();
        Some(((c.x - p1.x) * dir.x + (c.y - p1.y) * dir.y) / height.max(1.0))
    }

    /// Whether `det` would have the person step back against their heading further than anyone
    /// turning round could in the time since they were last seen (`now`).
    pub fn steps_back(&self, det: &BBox, height: f32, now: f64, slack: f64) -> bool {
        let (Some(along), Some((t1, _))) = (self.step_along(det, height, slack), self.last())
        else {
            return false;
        };
        let plausible = MIN_BACK_STEP_HEIGHTS.max(TURN_HEIGHTS_PER_S * (now - t1) as f32);
        along < -plausible
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(trail: &mut Trail, from: f32, step: f32, n: usize, dt: f64) {
        for i in 0..n {
            trail.push(i as f64 * dt, Point::new(from + step * i as f32, 200.0));
        }
    }

    fn box_at(x: f32) -> BBox {
        BBox::new(x - 30.0, 100.0, x + 30.0, 300.0)
    }

    #[test]
    fn a_walker_has_a_heading_and_a_stander_has_none() {
        let mut walker = Trail::default();
        walk(&mut walker, 100.0, 6.0, 20, 0.04); // 150 px/s, 0.75 heights a second
        let h = walker.heading(200.0, 0.0).expect("walking");
        assert!((h.x - 1.0).abs() < 1e-3 && h.y.abs() < 1e-3);
        let mut stander = Trail::default();
        for i in 0..20 {
            let jitter = if i % 2 == 0 { 1.5 } else { -1.5 };
            stander.push(i as f64 * 0.04, Point::new(300.0 + jitter, 200.0));
        }
        assert!(stander.heading(200.0, 0.0).is_none());
        // too short a stretch to tell
        let mut new = Trail::default();
        walk(&mut new, 100.0, 6.0, 5, 0.04);
        assert!(new.heading(200.0, 0.0).is_none());
    }

    #[test]
    fn a_step_back_is_judged_against_the_time_since_last_seen() {
        let mut t = Trail::default();
        walk(&mut t, 100.0, 6.0, 20, 0.04); // last seen at x=214, t=0.76
        // the next picture: 20 px back (0.1 heights in 0.04 s) is not the same walker
        assert!(t.steps_back(&box_at(194.0), 200.0, 0.80, 0.0));
        // a few px back is jitter; forward is fine
        assert!(!t.steps_back(&box_at(210.0), 200.0, 0.80, 0.0));
        assert!(!t.steps_back(&box_at(225.0), 200.0, 0.80, 0.0));
        // a second later, 20 px back is someone who turned round
        assert!(!t.steps_back(&box_at(194.0), 200.0, 1.76, 0.0));
    }

    #[test]
    fn timestamps_that_jitter_give_the_same_heading() {
        // 5 pictures a second: up, then right; the sighting 0.8 s back (still going up) is in
        // the window or not depending on a millisecond, unless judged with a third of a frame
        let path = [
            (0.0, 0.0),
            (0.0, -40.0),
            (40.0, -40.0),
            (80.0, -40.0),
            (120.0, -40.0),
        ];
        let heading = |jitter: [f64; 5]| {
            let mut t = Trail::default();
            for (k, (x, y)) in path.iter().enumerate() {
                t.push(k as f64 * 0.2 + jitter[k], Point::new(*x, *y));
            }
            t.heading(200.0, 0.2 / 3.0).expect("walking")
        };
        let exact = heading([0.0; 5]);
        for jitter in [
            [0.002, 0.0, 0.0, 0.0, -0.002],
            [-0.002, 0.0, 0.0, 0.0, 0.002],
        ] {
            let h = heading(jitter);
            assert!(
                (h.x - exact.x).abs() < 1e-3 && (h.y - exact.y).abs() < 1e-3,
                "{h:?}"
            );
        }
    }

    #[test]
    fn the_ring_keeps_the_latest_sightings() {
        let mut t = Trail::default();
        walk(&mut t, 0.0, 1.0, 40, 0.1);
        assert_eq!(t.last().map(|s| s.1.x), Some(39.0));
        assert_eq!(t.get(0).1.x, 24.0);
    }
}
