//! Which faces the gate's no-mask rule looks at, and what it remembers of them.
//!
//! Faces and mask verdicts cost far more than persons, so the live worker never looks at every
//! face: a [`MaskWatch`] (one per gate camera whose lines check masks) picks, per analysed frame,
//! the few people worth a look and keeps the best verdict seen for each of them, so that an
//! entry (`in` crossing) can be judged by [`super::LineRules::no_mask`] at once:
//!
//! - only confirmed tracks seen in this frame (a coasting prediction has no face to look at);
//! - only people about to cross a line that checks masks: feet within `reach_heights` box
//!   heights of the segment, on its `out` side or just across it (someone well inside has
//!   already entered; the rule is about entries);
//! - each person at most once every `every_frames` analysed frames and `every_seconds` (at a
//!   high analysis rate successive frames show the same face: 25 fps with every second frame
//!   would be 12 looks a second per person), at most `per_frame` people per frame and
//!   `per_second` looks a second on average (a busy gate analysed at 25 fps would otherwise
//!   spend more on faces than on persons): people without a recent verdict first, then whoever
//!   waited longest;
//! - per person, the most confident face (face score) of the last `recent_seconds` counts;
//!   an older verdict gives way to any newer one;
//! - a person the tracker no longer reports is forgotten, so memory is bounded by the people
//!   in view.
//!
//! Pure logic like the rest of `rules`: the caller runs the face detector on the boxes picked
//! and passes the faces back, with time as monotonic seconds.

use std::collections::HashMap;

use crate::detect::Face;
use crate::events::MaskVerdict;
use crate::geometry::{BBox, Point, Segment};
use crate::track::Track;

use super::line::LineSpec;

/// How much face work the gate may do.
#[derive(Clone, Debug, PartialEq)]
pub struct MaskParams {
    /// A person is looked at no more often than once per this many analysed frames...
    pub every_frames: u64,
    /// ...and once per this many seconds.
    pub every_seconds: f64,
    /// At most this many people are looked at in one frame.
    pub per_frame: usize,
    /// At most this many looks a second on average (unused looks of quiet frames are not saved
    /// up beyond `per_frame`).
    pub per_second: f64,
    /// How near a line (in heights of the person's box, measured to the segment) a person must
    /// be to be looked at.
    pub reach_heights: f32,
    /// How long a verdict counts for an entry, seconds.
    pub recent_seconds: f64,
}

impl Default for MaskParams {
    fn default() -> Self {
        Self {
            every_frames: 2,
            every_seconds: 0.25,
            per_frame: 3,
            per_second: 15.0,
            reach_heights: 2.0,
            recent_seconds: 3.0,
        }
    }
}

/// One verdict on one person's face.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Look {
    /// When (monotonic seconds).
    pub at: f64,
    /// The face detector's score: how clearly the face was seen.
    pub face_score: f32,
    pub verdict: MaskVerdict,
    /// The mask classifier's probability of `verdict`.
    pub verdict_score: f32,
}

#[derive(Clone, Copy, Debug)]
struct Watched {
    /// The watch's frame number and the time of the last look (`None`: never looked at).
    last_looked: Option<u64>,
    last_looked_at: f64,
    best: Option<Look>,
    /// Reported by the tracker in the last update.
    seen: bool,
}

/// A person who may be looked at in this frame.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    has_verdict: bool,
    last_looked: Option<u64>,
    id: u64,
    bbox: BBox,
}

/// Face bookkeeping of one gate camera.
pub struct MaskWatch {
    /// The lines that check masks.
    lines: Vec<LineSpec>,
    params: MaskParams,
    /// Analysed frames so far.
    frame: u64,
    /// Looks that may be spent now (refilled at `per_second`, at most `per_frame`), and when
    /// they were last refilled.
    allowance: f64,
    refilled_at: Option<f64>,
    tracks: HashMap<u64, Watched>,
    /// Reused every frame (no allocation in the steady state).
    candidates: Vec<Candidate>,
}

impl MaskWatch {
    /// `lines`: the camera's lines whose rules check masks.
    pub fn new(lines: Vec<LineSpec>, params: MaskParams) -> Self {
        Self {
            lines,
            params,
            frame: 0,
            allowance: 0.0,
            refilled_at: None,
            tracks: HashMap::with_capacity(16),
            candidates: Vec::with_capacity(16),
        }
    }

    pub fn params(&self) -> &MaskParams {
        &self.params
    }

    /// How many people the watch holds state for (bounded by the tracks in view).
    pub fn tracked(&self) -> usize {
        self.tracks.len()
    }

    /// Feed the tracks of one analysed frame (as returned by the tracker) at `now`; the people
    /// to look for a face at in this frame are put in `out` (cleared first) as (track id, box).
    pub fn update(&mut self, now: f64, tracks: &[Track], out: &mut Vec<(u64, BBox)>) {
        out.clear();
        self.frame += 1;
        for w in self.tracks.values_mut() {
            w.seen = false;
        }
        self.candidates.clear();
        for tr in tracks {
            if let Some(w) = self.tracks.get_mut(&tr.id) {
                w.seen = true;
            }
            if !tr.confirmed || tr.misses > 0 || !self.about_to_cross(&tr.bbox) {
                continue;
            }
            let w = self.tracks.entry(tr.id).or_insert(Watched {
                last_looked: None,
                last_looked_at: f64::NEG_INFINITY,
                best: None,
                seen: true,
            });
            if w.last_looked
                .is_some_and(|f| self.frame - f < self.params.every_frames.max(1))
                || now - w.last_looked_at < self.params.every_seconds
            {
                continue;
            }
            self.candidates.push(Candidate {
                has_verdict: w
                    .best
                    .is_some_and(|b| now - b.at <= self.params.recent_seconds),
                last_looked: w.last_looked,
                id: tr.id,
                bbox: tr.bbox,
            });
        }
        // a track the tracker no longer reports is gone for good: its id is never reused
        self.tracks.retain(|_, w| w.seen);
        // no verdict yet first, then whoever waited longest (never looked at: longest of all);
        // ties in the tracker's order (a stable sort of a handful of items)
        self.candidates
            .sort_by_key(|c| (c.has_verdict, c.last_looked.map_or(0, |f| f + 1)));
        let most = self.params.per_frame as f64;
        self.allowance = match self.refilled_at {
            None => most,
            Some(t) => (self.allowance + (now - t).max(0.0) * self.params.per_second).min(most),
        };
        self.refilled_at = Some(now);
        let n = (self.allowance.floor() as usize).min(self.candidates.len());
        self.allowance -= n as f64;
        for c in &self.candidates[..n] {
            if let Some(w) = self.tracks.get_mut(&c.id) {
                w.last_looked = Some(self.frame);
                w.last_looked_at = now;
            }
            out.push((c.id, c.bbox));
        }
    }

    /// The faces found in the head region of person `id` at `now`: the most confident one with a
    /// mask verdict is kept if it beats the person's best recent verdict.
    pub fn record_faces(&mut self, id: u64, now: f64, faces: &[Face]) {
        let best = faces
            .iter()
            .filter_map(|f| f.mask.map(|(v, s)| (f.score, v, s)))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((face_score, verdict, verdict_score)) = best {
            self.record(
                id,
                Look {
                    at: now,
                    face_score,
                    verdict,
                    verdict_score,
                },
            );
        }
    }

    /// Keep `look` for person `id` if it beats the best recent one (or that one is too old).
    /// A person the watch does not follow (not near a line) is ignored.
    pub fn record(&mut self, id: u64, look: Look) {
        let recent = self.params.recent_seconds;
        if let Some(w) = self.tracks.get_mut(&id) {
            let keep_old = w
                .best
                .is_some_and(|b| look.at - b.at <= recent && b.face_score >= look.face_score);
            if !keep_old {
                w.best = Some(look);
            }
        }
    }

    /// The best verdict on person `id` within the last `recent_seconds` before `now`
    /// (`None`: no face seen lately, which is not evidence of anything).
    pub fn verdict(&self, id: u64, now: f64) -> Option<Look> {
        self.tracks
            .get(&id)?
            .best
            .filter(|b| now - b.at <= self.params.recent_seconds)
    }

    /// Feet within reach of a line that checks masks, not yet well across it.
    fn about_to_cross(&self, b: &BBox) -> bool {
        let h = b.height().max(1.0);
        self.lines.iter().any(|l| {
            let p = l.anchor.point(b);
            let d = l.segment.signed_distance(p);
            d < 0.5 * h && distance_to_segment(&l.segment, p) < self.params.reach_heights * h
        })
    }
}

/// Distance in pixels from `p` to the segment itself (not the infinite line).
fn distance_to_segment(s: &Segment, p: Point) -> f32 {
    let (dx, dy) = (s.b.x - s.a.x, s.b.y - s.a.y);
    let len2 = dx * dx + dy * dy;
    let t = if len2 == 0.0 {
        0.0
    } else {
        (((p.x - s.a.x) * dx + (p.y - s.a.y) * dy) / len2).clamp(0.0, 1.0)
    };
    let (qx, qy) = (s.a.x + t * dx, s.a.y + t * dy);
    ((p.x - qx).powi(2) + (p.y - qy).powi(2)).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The line from (300, 0) down to (300, 400): `in` is walking right to left (x decreasing).
    fn gate() -> LineSpec {
        LineSpec::new("gate", Point::new(300.0, 0.0), Point::new(300.0, 400.0))
    }

    fn watch() -> MaskWatch {
        MaskWatch::new(vec![gate()], MaskParams::default())
    }

    /// A confirmed, visible person 100 px tall with the feet at (x, y).
    fn person(id: u64, x: f32, y: f32) -> Track {
        Track {
            id,
            bbox: BBox::new(x - 20.0, y - 100.0, x + 20.0, y),
            score: 0.8,
            hits: 10,
            age: 10,
            misses: 0,
            confirmed: true,
            moved: true,
            best_score: 0.8,
        }
    }

    fn face(score: f32, verdict: MaskVerdict, p: f32) -> Face {
        Face {
            bbox: BBox::new(0.0, 0.0, 10.0, 10.0),
            score,
            landmarks: [Point::default(); 5],
            mask: Some((verdict, p)),
        }
    }

    fn ids(out: &[(u64, BBox)]) -> Vec<u64> {
        out.iter().map(|o| o.0).collect()
    }

    #[test]
    fn only_confirmed_visible_people_about_to_enter_are_looked_at() {
        let mut w = watch();
        let mut out = Vec::new();
        let mut tentative = person(2, 350.0, 200.0);
        tentative.confirmed = false;
        let mut coasting = person(3, 350.0, 200.0);
        coasting.misses = 2;
        let tracks = [
            person(1, 350.0, 200.0), // outside, 50 px from the line: yes
            tentative,
            coasting,
            person(4, 600.0, 200.0), // 3 heights away: no
            person(5, 200.0, 200.0), // a height inside: already entered, no
            person(6, 280.0, 200.0), // just across (0.2 heights): yes
            person(7, 350.0, 650.0), // beside the segment's end (250 px below it): no
        ];
        w.update(0.0, &tracks, &mut out);
        assert_eq!(ids(&out), vec![1, 6]);
        assert_eq!(out[0].1, tracks[0].bbox);
    }

    #[test]
    fn each_person_at_most_every_second_frame_and_three_per_frame() {
        let mut w = watch();
        let mut out = Vec::new();
        let crowd: Vec<Track> = (1..=5)
            .map(|id| person(id, 320.0 + 10.0 * id as f32, 200.0))
            .collect();
        let mut looks: HashMap<u64, Vec<u64>> = HashMap::new();
        for frame in 1..=20u64 {
            w.update(frame as f64 * 0.2, &crowd, &mut out);
            assert!(out.len() <= 3, "frame {frame}: {out:?}");
            for (id, _) in &out {
                looks.entry(*id).or_default().push(frame);
            }
        }
        // everyone gets looked at, fairly, never two frames in a row
        for id in 1..=5 {
            let f = &looks[&id];
            assert!(f.len() >= 9, "{id}: {f:?}");
            assert!(f.windows(2).all(|p| p[1] - p[0] >= 2), "{id}: {f:?}");
        }
        // two people: each every second frame, not more
        let mut w = watch();
        let pair = &crowd[..2];
        let mut n = 0;
        for frame in 1..=10 {
            w.update(frame as f64 * 0.2, pair, &mut out);
            n += out.len();
        }
        assert_eq!(n, 10);
    }

    #[test]
    fn at_a_high_frame_rate_looks_are_bounded_per_person_and_per_second() {
        let mut w = watch();
        let mut out = Vec::new();
        let pair = [person(1, 320.0, 200.0), person(2, 330.0, 200.0)];
        let mut n = 0;
        for frame in 0..50 {
            // 2 s at 25 fps
            w.update(frame as f64 * 0.04, &pair, &mut out);
            n += out.len();
        }
        assert_eq!(n, 2 * 8, "every 0.28 s (7 frames) each");
        // a crowd at the gate: 15 looks a second in all, not 3 every frame
        let mut w = watch();
        let crowd: Vec<Track> = (1..=10)
            .map(|id| person(id, 310.0 + 10.0 * id as f32, 200.0))
            .collect();
        let mut per_person: HashMap<u64, usize> = HashMap::new();
        let mut n = 0;
        for frame in 0..100 {
            // 4 s at 25 fps
            w.update(frame as f64 * 0.04, &crowd, &mut out);
            assert!(out.len() <= 3);
            n += out.len();
            for (id, _) in &out {
                *per_person.entry(*id).or_default() += 1;
            }
        }
        assert!((58..=63).contains(&n), "{n} looks in 4 s");
        // and fairly shared
        assert!(per_person.values().all(|&k| k >= 5), "{per_person:?}");
    }

    #[test]
    fn people_without_a_verdict_go_first_then_whoever_waited_longest() {
        let mut w = MaskWatch::new(
            vec![gate()],
            MaskParams {
                per_frame: 1,
                every_frames: 1,
                every_seconds: 0.0,
                ..MaskParams::default()
            },
        );
        let mut out = Vec::new();
        let two = [person(1, 320.0, 200.0), person(2, 330.0, 200.0)];
        w.update(0.0, &two, &mut out);
        assert_eq!(ids(&out), vec![1], "ties in the tracker's order");
        w.record_faces(1, 0.0, &[face(0.95, MaskVerdict::Mask, 0.9)]);
        w.update(0.2, &two, &mut out);
        assert_eq!(ids(&out), vec![2]);
        // 2 found no face: it still goes before 1, who has a verdict and waited longer
        w.update(0.4, &two, &mut out);
        assert_eq!(ids(&out), vec![2]);
        // a newcomer without a verdict, never looked at, goes before 2
        let three = [two[0], two[1], person(3, 340.0, 200.0)];
        w.update(0.6, &three, &mut out);
        assert_eq!(ids(&out), vec![3]);
        // among those without a verdict, whoever waited longest: 2 (frame 3) before 3 (frame 4)
        w.update(0.8, &three, &mut out);
        assert_eq!(ids(&out), vec![2]);
        // once 1's verdict is older than recent_seconds, 1 counts as without a verdict again and
        // has waited longest of all
        w.update(3.5, &three, &mut out);
        assert_eq!(ids(&out), vec![1]);
    }

    #[test]
    fn the_most_confident_recent_face_is_the_verdict() {
        let mut w = watch();
        let mut out = Vec::new();
        let me = [person(1, 330.0, 200.0)];
        w.update(0.0, &me, &mut out);
        assert_eq!(w.verdict(1, 0.0), None, "no face seen is no verdict");
        // no face found, or a face without a verdict: still nothing
        w.record_faces(1, 0.0, &[]);
        let mut unclassified = face(0.99, MaskVerdict::Mask, 0.9);
        unclassified.mask = None;
        w.record_faces(1, 0.0, &[unclassified]);
        assert_eq!(w.verdict(1, 0.0), None);
        // of two faces in one region, the clearer one counts
        w.record_faces(
            1,
            0.0,
            &[
                face(0.85, MaskVerdict::Mask, 0.7),
                face(0.97, MaskVerdict::NoMask, 0.9),
            ],
        );
        assert_eq!(w.verdict(1, 0.1).unwrap().verdict, MaskVerdict::NoMask);
        // a less clear face later does not replace it...
        w.record_faces(1, 1.0, &[face(0.9, MaskVerdict::Mask, 0.99)]);
        let v = w.verdict(1, 1.0).unwrap();
        assert_eq!(
            (v.verdict, v.face_score, v.at),
            (MaskVerdict::NoMask, 0.97, 0.0)
        );
        // ...a clearer one does
        w.record_faces(1, 2.0, &[face(0.99, MaskVerdict::Mask, 0.8)]);
        assert_eq!(w.verdict(1, 2.0).unwrap().verdict, MaskVerdict::Mask);
        // once the best is older than recent_seconds it no longer counts, and any newer face
        // replaces it
        assert_eq!(w.verdict(1, 5.1), None);
        w.record_faces(1, 5.5, &[face(0.81, MaskVerdict::NoMask, 0.6)]);
        let v = w.verdict(1, 5.5).unwrap();
        assert_eq!((v.verdict, v.at), (MaskVerdict::NoMask, 5.5));
    }

    #[test]
    fn a_person_who_is_gone_is_forgotten() {
        let mut w = watch();
        let mut out = Vec::new();
        let crowd: Vec<Track> = (1..=30)
            .map(|id| person(id, 310.0 + id as f32, 200.0))
            .collect();
        w.update(0.0, &crowd, &mut out);
        for (id, _) in out.clone() {
            w.record_faces(id, 0.0, &[face(0.9, MaskVerdict::NoMask, 0.9)]);
        }
        assert_eq!(w.tracked(), 30);
        // a person walking away from the line (still reported by the tracker) is kept...
        w.update(0.2, &[person(1, 100.0, 200.0)], &mut out);
        assert!(out.is_empty());
        assert_eq!(w.tracked(), 1);
        assert!(w.verdict(1, 0.2).is_some());
        // ...one the tracker dropped is not, and a record for it is ignored
        w.update(0.4, &[], &mut out);
        assert_eq!(w.tracked(), 0);
        w.record_faces(1, 0.4, &[face(0.9, MaskVerdict::NoMask, 0.9)]);
        assert_eq!(w.tracked(), 0);
        assert_eq!(w.verdict(1, 0.4), None);
    }

    #[test]
    fn an_entry_is_judged_by_the_verdict_seen_on_the_way_in() {
        use crate::rules::{CountingParams, Direction, LineCounter, LineRules, Tick};
        // a person walks right to left across the gate at 5 fps; the face is seen (without a
        // mask) on the way; the entry is a no_mask alert, an exit is not
        let mut w = watch();
        let mut counter = LineCounter::new(gate(), CountingParams::default());
        let rules = LineRules {
            curfew: None,
            no_mask: true,
        };
        let (mut out, mut crossings) = (Vec::new(), Vec::new());
        let mut alerts = 0;
        for k in 0..30u32 {
            let now = k as f64 * 0.2;
            let x = 500.0 - 10.0 * k as f32;
            let me = [person(9, x, 200.0)];
            w.update(now, &me, &mut out);
            for &(id, _) in &out {
                w.record_faces(id, now, &[face(0.9, MaskVerdict::NoMask, 0.95)]);
            }
            crossings.clear();
            counter.update(Tick::new(k as u64, now), &me, &mut crossings);
            for c in &crossings {
                assert_eq!(c.direction, Direction::In);
                let v = w.verdict(c.track_id, now).map(|l| l.verdict);
                if rules.no_mask(c, v) {
                    alerts += 1;
                }
            }
        }
        assert_eq!(alerts, 1);
    }

    proptest! {
        #[test]
        fn the_budget_holds_and_state_stays_bounded(
            frames in proptest::collection::vec(
                proptest::collection::vec((0u64..15, 0f32..600.0, 0f32..500.0), 0..10), 1..40),
            per_frame in 1usize..5,
            every_frames in 1u64..4,
        ) {
            let params = MaskParams { per_frame, every_frames, ..MaskParams::default() };
            let mut w = MaskWatch::new(vec![gate()], params);
            let mut out = Vec::new();
            let mut last: HashMap<u64, usize> = HashMap::new();
            for (k, f) in frames.iter().enumerate() {
                // unique ids per frame, as the tracker reports them
                let mut tracks: Vec<Track> = Vec::new();
                for &(id, x, y) in f {
                    if !tracks.iter().any(|t| t.id == id) {
                        tracks.push(person(id, x, y));
                    }
                }
                w.update(k as f64 * 0.2, &tracks, &mut out);
                prop_assert!(out.len() <= per_frame);
                prop_assert!(w.tracked() <= tracks.len());
                for (id, _) in &out {
                    prop_assert!(tracks.iter().any(|t| t.id == *id));
                    if let Some(prev) = last.insert(*id, k) {
                        prop_assert!((k - prev) as u64 >= every_frames);
                    }
                }
                // a person out of view is forgotten: looking again later is allowed
                last.retain(|id, _| tracks.iter().any(|t| t.id == *id));
            }
        }
    }
}
