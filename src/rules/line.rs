//! Counting people across a line, exactly as DESIGN.md "Lines, directions and counting" says.
//!
//! Per track the counter remembers the last side the reference point was *decisively* on (more
//! than the dead band away from the line) and the point where that was seen. When a later point is
//! decisively on the other side, the move between those two points is tested against the segment
//! itself: a path that passes beside the segment's ends crosses the infinite line but not the
//! gate, and does not count. Points inside the dead band never change the side, so jitter on the
//! line adds nothing. Only points the tracker actually observed are used (a coasting prediction
//! can wander across a line nobody crossed); the move across a gap joins the last observed point
//! to the next one.
//!
//! Guards against miscounts, each with a unit test below:
//! - jitter: the dead band;
//! - short-lived false tracks: a crossing counts only once the track has `min_track_hits` hits
//!   (a crossing seen earlier waits, and counts when the track grows old enough, still across);
//! - one crossing counted once: consecutive counts of one track alternate direction, so a track
//!   can never count `in` twice without an `out` between (a person who crosses and comes back
//!   counts once each way, which keeps occupancy right);
//! - an id switch near the line: a new track born near where a recently lost track was last seen
//!   takes over that track's side and last count, and the old id is retired.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::geometry::{BBox, Point, Segment};
use crate::track::Track;

/// Which way a person crossed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
}

impl Direction {
    pub fn as_str(&self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// The point of a person's box that is followed across the line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Anchor {
    /// The feet: right for a camera that sees the ground (the default).
    #[default]
    BottomCenter,
    Center,
    /// The head: for a camera whose view of the ground is often blocked.
    TopCenter,
}

impl Anchor {
    pub fn point(&self, b: &BBox) -> Point {
        match self {
            Anchor::BottomCenter => b.bottom_center(),
            Anchor::Center => b.center(),
            Anchor::TopCenter => Point::new((b.x1 + b.x2) * 0.5, b.y1),
        }
    }
}

/// A named counting line.
#[derive(Clone, Debug, PartialEq)]
pub struct LineSpec {
    pub name: String,
    pub segment: Segment,
    pub anchor: Anchor,
}

impl LineSpec {
    pub fn new(name: impl Into<String>, a: Point, b: Point) -> Self {
        Self {
            name: name.into(),
            segment: Segment::new(a, b),
            anchor: Anchor::default(),
        }
    }
}

/// Counting settings. The defaults hold for all the footage in the tests (no per-clip tuning).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CountingParams {
    /// Half-width in pixels of the band around the line where a point has no side.
    pub dead_band_px: f32,
    /// Hits a track needs before its crossing counts.
    pub min_track_hits: u32,
    /// How long (frames) a lost track's side can be handed to a new track born near it.
    pub handover_frames: u32,
    /// How near (in heights of the new person's box) the new track must be born.
    pub handover_heights: f32,
}

impl Default for CountingParams {
    fn default() -> Self {
        Self {
            dead_band_px: 5.0,
            min_track_hits: 5,
            handover_frames: 15,
            handover_heights: 0.5,
        }
    }
}

/// Counts since the last reset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    #[serde(rename = "in")]
    pub in_: u64,
    pub out: u64,
}

impl Counts {
    pub fn occupancy(&self) -> i64 {
        self.in_ as i64 - self.out as i64
    }
    fn add(&mut self, d: Direction) {
        match d {
            Direction::In => self.in_ += 1,
            Direction::Out => self.out += 1,
        }
    }
}

/// One counted crossing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Crossing {
    pub direction: Direction,
    pub track_id: u64,
    /// The frame at which the person was first seen decisively across.
    pub frame: u64,
    /// The tracked box at the moment the crossing counted.
    pub bbox: BBox,
    pub score: f32,
}

#[derive(Clone, Copy, Debug)]
struct TrackSide {
    /// -1 / +1: last side where the point was outside the dead band (0: none yet).
    side: i8,
    /// The last point seen decisively on `side`.
    side_point: Point,
    /// The last counted direction of this person (for alternation).
    last_counted: Option<Direction>,
    /// A crossing seen before the track was old enough: (direction, frame, target side).
    pending: Option<(Direction, u64, i8)>,
    last_point: Point,
    last_seen: u64,
    /// Frame of the last observed (not coasting) point.
    last_observed: u64,
    /// Set when another track took this one over: it never counts again.
    retired: bool,
    /// Whether the tracker still reports this id (possibly coasting).
    alive: bool,
}

/// Counts crossings of one line by the tracks of one camera.
pub struct LineCounter {
    spec: LineSpec,
    params: CountingParams,
    counts: Counts,
    tracks: HashMap<u64, TrackSide>,
}

impl LineCounter {
    pub fn new(spec: LineSpec, params: CountingParams) -> Self {
        Self::with_counts(spec, params, Counts::default())
    }

    /// Start from persisted counts (after a restart).
    pub fn with_counts(spec: LineSpec, params: CountingParams, counts: Counts) -> Self {
        Self {
            spec,
            params,
            counts,
            tracks: HashMap::with_capacity(64),
        }
    }

    pub fn spec(&self) -> &LineSpec {
        &self.spec
    }

    pub fn params(&self) -> &CountingParams {
        &self.params
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Reset the counts (daily reset); per-track sides are kept so nobody is counted twice.
    pub fn reset_counts(&mut self) {
        self.counts = Counts::default();
    }

    /// Replace the line live (admin edit). Counts continue; if the geometry moved, every track's
    /// side is forgotten so that the move itself cannot look like a crossing.
    pub fn set_spec(&mut self, spec: LineSpec) {
        if spec.segment != self.spec.segment || spec.anchor != self.spec.anchor {
            for t in self.tracks.values_mut() {
                t.side = 0;
                t.pending = None;
            }
        }
        self.spec = spec;
    }

    pub fn set_params(&mut self, params: CountingParams) {
        self.params = params;
    }

    /// Feed the tracks of frame `frame` (as returned by the tracker); crossings counted in this
    /// frame are appended to `out`.
    pub fn update(&mut self, frame: u64, tracks: &[Track], out: &mut Vec<Crossing>) {
        let seg = self.spec.segment;
        let band = self.params.dead_band_px.max(0.0);
        for t in self.tracks.values_mut() {
            t.alive = false;
        }
        for tr in tracks {
            let p = self.spec.anchor.point(&tr.bbox);
            if !self.tracks.contains_key(&tr.id) {
                let mut fresh = TrackSide {
                    side: 0,
                    side_point: p,
                    last_counted: None,
                    pending: None,
                    last_point: p,
                    last_seen: frame,
                    last_observed: frame,
                    retired: false,
                    alive: true,
                };
                if let Some(prev) = self.handover_from(frame, p, tr.bbox.height()) {
                    fresh.side = prev.side;
                    fresh.side_point = prev.side_point;
                    fresh.last_counted = prev.last_counted;
                    fresh.pending = prev.pending;
                }
                self.tracks.insert(tr.id, fresh);
            }
            let st = self.tracks.get_mut(&tr.id).expect("inserted above");
            st.alive = true;
            st.last_seen = frame;
            if tr.misses > 0 || st.retired {
                continue; // coasting: a prediction, not a sighting
            }
            st.last_point = p;
            st.last_observed = frame;
            let d = seg.signed_distance(p);
            let cur: i8 = if d > band {
                1
            } else if d < -band {
                -1
            } else {
                0
            };
            if cur == 0 {
                continue;
            }
            if st.side != 0 && cur != st.side && seg.meets(st.side_point, p) {
                let dir = if cur > 0 {
                    Direction::In
                } else {
                    Direction::Out
                };
                if st.last_counted != Some(dir) {
                    st.pending = Some((dir, frame, cur));
                } else {
                    st.pending = None;
                }
            } else if st.side != 0 && cur != st.side {
                // crossed the infinite line beside the segment: a crossing pending the other
                // way is void
                st.pending = None;
            }
            // the last decisive point, so that a path around the end of the segment is judged
            // step by step, not by a chord across the gate
            st.side = cur;
            st.side_point = p;
            if let Some((dir, at, target)) = st.pending
                && tr.hits >= self.params.min_track_hits
            {
                st.pending = None;
                if target == cur && st.last_counted != Some(dir) {
                    st.last_counted = Some(dir);
                    self.counts.add(dir);
                    out.push(Crossing {
                        direction: dir,
                        track_id: tr.id,
                        frame: at,
                        bbox: tr.bbox,
                        score: tr.score,
                    });
                }
            }
        }
        // Forget tracks the tracker dropped, once they are too old to be handed over.
        let keep = self.params.handover_frames as u64;
        self.tracks
            .retain(|_, t| t.alive || frame.saturating_sub(t.last_observed) <= keep);
    }

    /// The best recently lost (or coasting) track whose last sighting is near `p`; it is retired.
    fn handover_from(&mut self, frame: u64, p: Point, height: f32) -> Option<TrackSide> {
        let reach = self.params.handover_heights * height;
        let window = self.params.handover_frames as u64;
        let mut best: Option<(f32, u64)> = None;
        for (&id, t) in &self.tracks {
            // candidates: not seen this frame yet (lost or coasting), recently observed
            if t.retired || t.last_observed == frame || frame - t.last_observed > window {
                continue;
            }
            if t.side == 0 && t.last_counted.is_none() {
                continue;
            }
            let dist = ((t.last_point.x - p.x).powi(2) + (t.last_point.y - p.y).powi(2)).sqrt();
            if dist <= reach && best.is_none_or(|(bd, _)| dist < bd) {
                best = Some((dist, id));
            }
        }
        let (_, id) = best?;
        let t = self.tracks.get_mut(&id)?;
        t.retired = true;
        Some(*t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A vertical gate line x=100 from y=0 to y=200: right-to-left is `in`.
    fn gate() -> LineCounter {
        LineCounter::new(
            LineSpec::new("gate", Point::new(100.0, 0.0), Point::new(100.0, 200.0)),
            CountingParams::default(),
        )
    }

    /// A track whose feet are at (x, y).
    fn track(id: u64, x: f32, y: f32, hits: u32) -> Track {
        Track {
            id,
            bbox: BBox::new(x - 15.0, y - 80.0, x + 15.0, y),
            score: 0.8,
            hits,
            age: hits,
            misses: 0,
            confirmed: hits >= 3,
        }
    }

    /// Run a path of feet positions for one track id; hits grow from `first_hits`.
    fn walk(c: &mut LineCounter, id: u64, pts: &[(f32, f32)], first_frame: u64) -> Vec<Crossing> {
        let mut out = Vec::new();
        for (k, &(x, y)) in pts.iter().enumerate() {
            c.update(
                first_frame + k as u64,
                &[track(id, x, y, 3 + k as u32)],
                &mut out,
            );
        }
        out
    }

    fn xs(from: f32, to: f32, step: f32, y: f32) -> Vec<(f32, f32)> {
        let n = ((to - from) / step).abs().round() as usize;
        (0..=n)
            .map(|k| (from + (to - from) * k as f32 / n as f32, y))
            .collect()
    }

    #[test]
    fn right_to_left_is_in_left_to_right_is_out() {
        let mut c = gate();
        let ev = walk(&mut c, 1, &xs(160.0, 40.0, 6.0, 100.0), 0);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].direction, Direction::In);
        let mut c = gate();
        walk(&mut c, 1, &xs(40.0, 160.0, 6.0, 100.0), 0);
        assert_eq!(c.counts(), Counts { in_: 0, out: 1 });
    }

    #[test]
    fn passing_beside_the_segment_does_not_count() {
        let mut c = gate();
        walk(&mut c, 1, &xs(160.0, 40.0, 6.0, 260.0), 0); // below the end at y=200
        assert_eq!(c.counts(), Counts::default());
    }

    #[test]
    fn jitter_on_the_line_adds_nothing() {
        let mut c = gate();
        let mut pts = xs(160.0, 103.0, 6.0, 100.0);
        for k in 0..60 {
            pts.push((100.0 + if k % 2 == 0 { 4.0 } else { -4.0 }, 100.0));
        }
        walk(&mut c, 1, &pts, 0);
        assert_eq!(c.counts(), Counts::default(), "jitter inside the dead band");
    }

    #[test]
    fn a_person_standing_on_the_line_then_walking_on_counts_once() {
        let mut c = gate();
        let mut pts = xs(160.0, 100.0, 6.0, 100.0);
        pts.extend(std::iter::repeat_n((101.0, 100.0), 100));
        pts.extend(xs(100.0, 30.0, 6.0, 100.0));
        walk(&mut c, 1, &pts, 0);
        assert_eq!(c.counts(), Counts { in_: 1, out: 0 });
    }

    #[test]
    fn a_person_who_crosses_and_comes_back_counts_once_each_way() {
        let mut c = gate();
        let mut pts = xs(160.0, 40.0, 6.0, 100.0);
        pts.extend(xs(40.0, 170.0, 6.0, 100.0));
        let ev = walk(&mut c, 1, &pts, 0);
        assert_eq!(c.counts(), Counts { in_: 1, out: 1 });
        assert_eq!(ev[0].direction, Direction::In);
        assert_eq!(ev[1].direction, Direction::Out);
        assert_eq!(c.counts().occupancy(), 0);
    }

    #[test]
    fn a_young_track_counts_only_once_old_enough() {
        let mut c = gate();
        let mut out = Vec::new();
        // crosses at hits 1..3 (too young), then stays across: counts when hits reach 5
        let path = [
            (110.0, 100.0),
            (90.0, 100.0),
            (85.0, 100.0),
            (80.0, 100.0),
            (75.0, 100.0),
        ];
        for (k, &(x, y)) in path.iter().enumerate() {
            c.update(k as u64, &[track(7, x, y, 1 + k as u32)], &mut out);
            if k < 4 {
                assert!(out.is_empty(), "counted at hits {}", k + 1);
            }
        }
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].frame, 1,
            "the crossing keeps the frame where it happened"
        );
    }

    #[test]
    fn a_short_false_track_never_counts() {
        let mut c = gate();
        let mut out = Vec::new();
        for (k, x) in [110.0, 90.0, 80.0].into_iter().enumerate() {
            c.update(k as u64, &[track(9, x, 100.0, 1 + k as u32)], &mut out);
        }
        for k in 3..40 {
            c.update(k, &[], &mut out);
        }
        assert!(out.is_empty());
    }

    #[test]
    fn an_id_switch_near_the_line_neither_adds_nor_loses_a_count() {
        let mut c = gate();
        let mut out = Vec::new();
        // id 1 approaches from the right, crosses, is lost just past the line
        for (k, &(x, y)) in xs(170.0, 92.0, 6.0, 100.0).iter().enumerate() {
            c.update(k as u64, &[track(1, x, y, 3 + k as u32)], &mut out);
        }
        assert_eq!(c.counts().in_, 1);
        // a new id 2 appears where 1 was, one step back on the right side (box jitter), and walks on
        let f0 = 16;
        let mut path = vec![(106.0, 100.0), (112.0, 100.0)];
        path.extend(xs(100.0, 20.0, 6.0, 100.0));
        for (k, &(x, y)) in path.iter().enumerate() {
            c.update(f0 + k as u64, &[track(2, x, y, 3 + k as u32)], &mut out);
        }
        assert_eq!(c.counts(), Counts { in_: 1, out: 0 }, "{out:?}");

        // and a switch right on the line before the crossing completes still counts it once
        let mut c = gate();
        let mut out = Vec::new();
        for (k, &(x, y)) in xs(170.0, 102.0, 6.0, 100.0).iter().enumerate() {
            c.update(k as u64, &[track(1, x, y, 3 + k as u32)], &mut out);
        }
        for (k, &(x, y)) in xs(98.0, 30.0, 6.0, 100.0).iter().enumerate() {
            c.update(20 + k as u64, &[track(2, x, y, 3 + k as u32)], &mut out);
        }
        assert_eq!(c.counts(), Counts { in_: 1, out: 0 });
    }

    #[test]
    fn coasting_predictions_do_not_count() {
        let mut c = gate();
        let mut out = Vec::new();
        for (k, x) in [170.0, 160.0, 150.0, 140.0, 130.0, 120.0]
            .into_iter()
            .enumerate()
        {
            c.update(k as u64, &[track(3, x, 100.0, 5 + k as u32)], &mut out);
        }
        for k in 6..20 {
            let mut t = track(3, 120.0 - 10.0 * (k - 5) as f32, 100.0, 10);
            t.misses = (k - 5) as u32;
            c.update(k, &[t], &mut out);
        }
        assert!(out.is_empty());
    }

    #[test]
    fn a_line_moved_live_keeps_counts_and_does_not_count_the_move() {
        let mut c = gate();
        walk(&mut c, 1, &xs(160.0, 40.0, 6.0, 100.0), 0);
        // a person standing at x=60 (left of the line); the admin moves the line to x=20
        let mut out = Vec::new();
        for k in 0..10 {
            c.update(100 + k, &[track(2, 60.0, 100.0, 10 + k as u32)], &mut out);
        }
        c.set_spec(LineSpec::new(
            "gate",
            Point::new(20.0, 0.0),
            Point::new(20.0, 200.0),
        ));
        for k in 10..20 {
            c.update(100 + k, &[track(2, 60.0, 100.0, 10 + k as u32)], &mut out);
        }
        assert!(out.is_empty());
        assert_eq!(c.counts(), Counts { in_: 1, out: 0 });
    }

    #[test]
    fn counts_start_from_persisted_values() {
        let mut c = LineCounter::with_counts(
            gate().spec().clone(),
            CountingParams::default(),
            Counts { in_: 10, out: 4 },
        );
        walk(&mut c, 1, &xs(160.0, 40.0, 6.0, 100.0), 0);
        assert_eq!(c.counts(), Counts { in_: 11, out: 4 });
        assert_eq!(c.counts().occupancy(), 7);
    }

    fn path_strategy() -> impl Strategy<Value = Vec<(f32, f32)>> {
        proptest::collection::vec((-300f32..300.0, -300f32..300.0), 2..40)
    }

    proptest! {
        #[test]
        fn a_path_that_never_meets_the_segment_never_counts(path in path_strategy()) {
            let mut c = gate();
            let seg = c.spec().segment;
            // keep only paths whose every step misses the segment (and its dead band corridor)
            let fat = |p: (f32, f32), q: (f32, f32)| {
                [-6.0f32, 0.0, 6.0].iter().any(|dx| [-6.0f32, 0.0, 6.0].iter().any(|dy| {
                    seg.meets(Point::new(p.0 + dx, p.1 + dy), Point::new(q.0 + dx, q.1 + dy))
                }))
            };
            // keep each point only if the step to it from the last kept point misses
            let mut kept: Vec<(f32, f32)> = Vec::new();
            for p in path {
                if seg.signed_distance(Point::new(p.0, p.1)).abs() < 6.0 {
                    continue;
                }
                if kept.last().is_none_or(|&q| !fat(q, p)) {
                    kept.push(p);
                }
            }
            let path = kept;
            walk(&mut c, 1, &path, 0);
            prop_assert_eq!(c.counts(), Counts::default());
        }

        #[test]
        fn reversing_the_line_swaps_in_and_out(path in path_strategy()) {
            let mut c = gate();
            let s = c.spec().segment;
            let mut r = LineCounter::new(
                LineSpec::new("gate", s.b, s.a),
                CountingParams::default(),
            );
            walk(&mut c, 1, &path, 0);
            walk(&mut r, 1, &path, 0);
            prop_assert_eq!(c.counts().in_, r.counts().out);
            prop_assert_eq!(c.counts().out, r.counts().in_);
        }

        #[test]
        fn counts_alternate_per_track(path in path_strategy()) {
            let mut c = gate();
            let ev = walk(&mut c, 1, &path, 0);
            for w in ev.windows(2) {
                prop_assert_ne!(w[0].direction, w[1].direction);
            }
        }
    }
}
