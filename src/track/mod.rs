//! Multi-object tracking of people, one tracker per camera: ByteTrack-style.
//!
//! Uses (of the crate, besides its own folder): detect, geometry.
//!
//! Each frame: predict every track with its Kalman filter; match high-score detections to the
//! confirmed tracks by IoU; match low-score detections to the confirmed tracks still unmatched (a
//! person half hidden behind another scores low but is still there), in both stages the tracks
//! seen steadily (`min_hits` pictures in a row) choosing first, then those seen in the previous
//! frame after a break, then those coasting unseen; match the remaining high-score detections to
//! tentative tracks; start tentative tracks from what is left. A walker is not given a box that
//! would have them step back against the way they have been walking faster than anyone turns
//! round, while a weaker box does not or someone else may take it ([`heading`]). A track is
//! confirmed after `min_hits` hits in a row and dropped after `max_misses` frames without one;
//! a tentative track dies at its first miss, so a one-frame false detection never gets an id.
//!
//! In each step people and boxes are paired by IoU as ByteTrack pairs them: the pairing with the
//! largest summed IoU over the whole picture ([`assign`]), not the best pair first, which in a
//! crowd gives the box two people overlap to the one who overlaps it a little more and leaves
//! the other with nothing. Written here rather than taken from a crate: the ByteTrack crates on
//! crates.io either pull in ndarray/nalgebra stacks or do not expose the low-score second stage.

mod assign;
pub(crate) use assign::Pairing;
pub mod eval;
mod heading;
mod kalman;
mod pace;

use crate::detect::{Detection, PERSON};
use crate::geometry::{BBox, Point};
pub use kalman::BoxFilter;
pub use pace::Pace;

/// Speed kept per frame while a track coasts unseen.
const COAST_DAMPING: f32 = 0.8;
/// Longest a hidden person is kept (seconds of the stream). Frames alone would keep one 6 s at
/// 5 fps and 1.2 s at 25 fps; a box coasting that long stands nearly still and takes over whoever
/// walks through it.
pub const MAX_COAST_SECONDS: f64 = 1.5;

/// A detection whose height differs from the predicted box by more than this factor is not the
/// same person: half a person (legs hidden behind a cart) must not drag a track's box away.
const MAX_HEIGHT_RATIO: f32 = 1.5;

/// How far (in heights of its box) a track must have gone from its first sighting to count as
/// someone who moved ([`Track::moved`]). A person walking covers half their height in a few
/// steps; a box on a still thing jitters by a few hundredths of it.
pub const MOVED_HEIGHTS: f32 = 0.5;

/// Tracker settings. Defaults suit pedestrians at 5-25 fps. They were chosen once on the TUD
/// sequences of ../shared/data with the int8 NanoDet (NanoDet scores people lower than the YOLOX
/// detector ByteTrack was tuned on, so both score gates sit lower than ByteTrack's 0.6/0.1) and
/// are not tuned per clip; tests/ronda/analyze.rs holds them to the true counts.
#[derive(Clone, Debug, PartialEq)]
pub struct TrackerParams {
    /// Detections at or above this score are "high": they can match any track and start tracks.
    pub high_score: f32,
    /// Detections between `low_score` and `high_score` only keep existing confirmed tracks alive.
    pub low_score: f32,
    /// Minimum IoU of a high-score detection with a track's predicted box.
    pub match_iou: f32,
    /// Minimum IoU in the low-score stage (stricter: low scores are often not people).
    pub low_match_iou: f32,
    /// Hits in a row before a track is confirmed (gets reported).
    pub min_hits: u32,
    /// Frames a confirmed track survives without a detection (occlusion) before it is dropped.
    pub max_misses: u32,
}

impl Default for TrackerParams {
    fn default() -> Self {
        Self {
            high_score: 0.3,
            low_score: 0.1,
            match_iou: 0.25,
            low_match_iou: 0.4,
            min_hits: 3,
            max_misses: 30,
        }
    }
}

/// A tracked person as the rules see it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Track {
    pub id: u64,
    /// The filtered box (smoother than the raw detection: less jitter on the line).
    pub bbox: BBox,
    /// Score of the last matched detection.
    pub score: f32,
    /// Detections matched in total.
    pub hits: u32,
    /// Frames since the track was born.
    pub age: u32,
    /// Frames since the last matched detection (0 = seen this frame).
    pub misses: u32,
    /// Seen `min_hits` times in a row: a person, not a flicker. Only confirmed tracks are shown
    /// or raise alerts; tentative ones are reported so that counting can follow a person from
    /// the first sighting (someone who appears just before the gate line).
    pub confirmed: bool,
    /// Has been seen [`MOVED_HEIGHTS`] of its box's height or more away from where it was first
    /// seen: someone who came, not a thing in the background that the detector half believes
    /// to be a person (a sack, a sign, a bollard; their box stays within a pixel or two). Zone
    /// alerts want it, or a detection sure of itself (`best_score`).
    pub moved: bool,
    /// The best score of the detections matched so far.
    pub best_score: f32,
}

#[derive(Clone, Debug)]
struct Slot {
    id: u64,
    filter: BoxFilter,
    score: f32,
    hits: u32,
    streak: u32,
    age: u32,
    misses: u32,
    confirmed: bool,
    matched: bool,
    /// Stream time of the last matched detection.
    seen_at: f64,
    /// Centre of the first detection.
    born: Point,
    moved: bool,
    best_score: f32,
    /// Recent sightings, for the heading ([`heading::Trail`]).
    trail: heading::Trail,
}

/// The tracker of one camera. Buffers are reused between frames: no allocation once warm.
pub struct Tracker {
    params: TrackerParams,
    /// Stream time of the last frame.
    now: f64,
    /// The stream's frame interval, for the slack of the heading's time windows.
    pace: Pace,
    slots: Vec<Slot>,
    next_id: u64,
    out: Vec<Track>,
    pairs: Vec<(f32, u32, u32)>,
    /// The best pairing ([`assign::Pairing`]) and its buffers.
    pairing: assign::Pairing,
    det_used: Vec<bool>,
    high: Vec<u32>,
    low: Vec<u32>,
    /// (track, detection) pairs put off because the detection would have a walker step back.
    deferred: Vec<(u32, u32)>,
}

/// What a person seen a picture ago takes of a detection offered to them ([`Tracker::steadier`]).
enum Choice {
    /// The detection itself.
    Keep,
    /// This weaker one instead (it does not have them step back).
    Weaker(usize),
    /// Nothing yet: the detection would have them step back; they get it only if nobody else
    /// takes it and they find nothing else in this picture.
    Defer,
}

impl Tracker {
    pub fn new(params: TrackerParams) -> Self {
        Self {
            params,
            now: 0.0,
            pace: Pace::default(),
            slots: Vec::with_capacity(64),
            next_id: 1,
            out: Vec::with_capacity(64),
            pairs: Vec::with_capacity(256),
            pairing: assign::Pairing::default(),
            det_used: Vec::with_capacity(64),
            high: Vec::with_capacity(64),
            low: Vec::with_capacity(64),
            deferred: Vec::with_capacity(16),
        }
    }

    pub fn params(&self) -> &TrackerParams {
        &self.params
    }

    /// Replace the settings (admin edit); tracks and ids continue.
    pub fn set_params(&mut self, params: TrackerParams) {
        self.params = params;
    }

    /// Feed one frame's detections; returns the tracks seen this frame (tentative ones too, see
    /// [`Track::confirmed`]) and the confirmed ones still coasting on their prediction
    /// (`misses > 0`).
    /// Frames without a time: only `max_misses` limits how long a hidden person is kept.
    pub fn update(&mut self, detections: &[Detection]) -> &[Track] {
        let t = self.now;
        self.update_at(t, detections)
    }

    /// As [`Tracker::update`], for a frame at stream time `t` (seconds): a hidden person is kept
    /// at most `max_misses` frames and [`MAX_COAST_SECONDS`], whichever is shorter.
    pub fn update_at(&mut self, t: f64, detections: &[Detection]) -> &[Track] {
        self.pace.observe(t);
        self.now = t;
        let p = self.params.clone();
        for s in &mut self.slots {
            if s.misses > 0 {
                s.filter.damp(COAST_DAMPING);
            }
            s.filter.predict();
            s.matched = false;
        }
        self.det_used.clear();
        self.det_used.resize(detections.len(), false);
        self.high.clear();
        self.low.clear();
        for (i, d) in detections.iter().enumerate() {
            if d.class != PERSON {
                continue;
            }
            if d.score >= p.high_score {
                self.high.push(i as u32);
            } else if d.score >= p.low_score {
                self.low.push(i as u32);
            }
        }

        // Stage 1: high-score detections against confirmed tracks (seen or coasting).
        let high = std::mem::take(&mut self.high);
        let low = std::mem::take(&mut self.low);
        self.associate_confirmed(detections, &high, p.match_iou, &low);
        // Stage 2: low-score detections keep confirmed tracks that are still unmatched, by the
        // same cascade: a person half hidden in a group scores low, and the track that saw them
        // a picture ago must keep them rather than one coasting nearby that happens to overlap
        // a little more (traced on TUD-Stadtmitte: such a steal carried a person's side of the
        // line to another and lost their crossing).
        self.associate_confirmed(detections, &low, p.low_match_iou, &[]);
        // Stage 2b: a detection put off for someone because it would have them step back goes
        // to them after all when nobody else took it and they found nothing else (their own box
        // that jumped as a merged box parted).
        let deferred = std::mem::take(&mut self.deferred);
        for &(ti, di) in &deferred {
            let (ti, di) = (ti as usize, di as usize);
            if !self.slots[ti].matched && !self.det_used[di] {
                self.take(ti, di, detections);
            }
        }
        self.deferred = deferred;
        self.deferred.clear();
        // Stage 3: remaining high-score detections against tentative tracks.
        self.associate(detections, &high, p.match_iou, &[], |s| !s.confirmed);

        let (min_hits, max_misses) = (self.params.min_hits, self.params.max_misses);
        // Unmatched tracks: tentative ones die at once, confirmed ones coast until max_misses.
        self.slots.retain_mut(|s| {
            s.age += 1;
            if s.matched {
                return true;
            }
            s.misses += 1;
            s.streak = 0;
            s.confirmed && s.misses <= max_misses && t - s.seen_at <= MAX_COAST_SECONDS
        });
        // Births from unmatched high-score detections. Ids are given at birth (a tentative track
        // that dies leaves a gap in the numbering, which nobody relies on).
        for &i in &high {
            if self.det_used[i as usize] {
                continue;
            }
            let d = &detections[i as usize];
            self.next_id += 1;
            let mut trail = heading::Trail::default();
            trail.push(t, d.bbox.center());
            self.slots.push(Slot {
                id: self.next_id - 1,
                filter: BoxFilter::new(&d.bbox),
                score: d.score,
                hits: 1,
                streak: 1,
                age: 0,
                misses: 0,
                confirmed: false,
                matched: true,
                seen_at: t,
                born: d.bbox.center(),
                moved: false,
                best_score: d.score,
                trail,
            });
        }
        self.high = high;
        self.low = low;

        self.out.clear();
        for s in &mut self.slots {
            if !s.confirmed && s.streak >= min_hits {
                s.confirmed = true;
            }
            self.out.push(Track {
                id: s.id,
                bbox: s.filter.bbox(),
                score: s.score,
                hits: s.hits,
                age: s.age,
                misses: s.misses,
                confirmed: s.confirmed,
                moved: s.moved,
                best_score: s.best_score,
            });
        }
        &self.out
    }

    /// The given detections to the unmatched confirmed tracks: those seen steadily choose first,
    /// then those seen in the previous frame after a break, then those coasting, so a prediction
    /// that has drifted for a second does not steal the detection of a person in plain view
    /// (DeepSORT's matching cascade, in three steps; traced on TUD-Stadtmitte at 300 kbit/s: a
    /// track found again a picture before, on the spot where it had coasted, took a walker's box
    /// by a few hundredths of IoU from the track that had followed them across the street).
    /// `weaker`: detections a person seen in the previous frame may take instead of
    /// one that would have them step back against their heading ([`Tracker::steadier`]).
    fn associate_confirmed(
        &mut self,
        dets: &[Detection],
        which: &[u32],
        min_iou: f32,
        weaker: &[u32],
    ) {
        let steady = self.params.min_hits;
        self.associate(dets, which, min_iou, weaker, |s| {
            s.confirmed && s.misses == 0 && s.streak >= steady
        });
        self.associate(dets, which, min_iou, weaker, |s| {
            s.confirmed && s.misses == 0
        });
        self.associate(dets, which, min_iou, &[], |s| s.confirmed && s.misses > 0);
    }

    /// IoU matching of the given detections to the unmatched tracks passing `eligible`.
    fn associate(
        &mut self,
        dets: &[Detection],
        which: &[u32],
        min_iou: f32,
        weaker: &[u32],
        eligible: impl Fn(&Slot) -> bool,
    ) {
        self.pairs.clear();
        for (ti, s) in self.slots.iter().enumerate() {
            if s.matched || !eligible(s) {
                continue;
            }
            let predicted = s.filter.bbox();
            for &di in which {
                if self.det_used[di as usize] {
                    continue;
                }
                let det = &dets[di as usize].bbox;
                let ratio = det.height().max(1.0) / predicted.height().max(1.0);
                if !(1.0 / MAX_HEIGHT_RATIO..=MAX_HEIGHT_RATIO).contains(&ratio) {
                    continue;
                }
                let iou = predicted.iou(det);
                if iou >= min_iou {
                    self.pairs.push((iou, ti as u32, di));
                }
            }
        }
        self.pairs.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        // The pairs of the best pairing over the whole picture first; then the rest, best
        // first, for whoever the heading turned away from their pair.
        self.pairing.put_first(&mut self.pairs, min_iou);
        for k in 0..self.pairs.len() {
            let (_, ti, di) = self.pairs[k];
            let (ti, di) = (ti as usize, di as usize);
            if self.slots[ti].matched || self.det_used[di] {
                continue;
            }
            let di = match self.steadier(ti, di, dets, weaker) {
                Choice::Keep => di,
                Choice::Weaker(w) => w,
                Choice::Defer => {
                    self.deferred.push((ti as u32, di as u32));
                    continue;
                }
            };
            self.take(ti, di, dets);
        }
    }

    /// Track `ti` takes detection `di`.
    fn take(&mut self, ti: usize, di: usize, dets: &[Detection]) {
        let d = &dets[di];
        let s = &mut self.slots[ti];
        s.filter.update(&d.bbox);
        s.score = d.score;
        s.best_score = s.best_score.max(d.score);
        s.hits += 1;
        s.streak += 1;
        s.misses = 0;
        s.matched = true;
        s.seen_at = self.now;
        s.trail.push(self.now, d.bbox.center());
        if !s.moved {
            let b = s.filter.bbox();
            let c = b.center();
            let dist = ((c.x - s.born.x).powi(2) + (c.y - s.born.y).powi(2)).sqrt();
            s.moved = dist >= MOVED_HEIGHTS * b.height();
        }
        self.det_used[di] = true;
    }

    /// A weaker detection for track `ti` in place of `di`, when `di` would have the person step
    /// back against the way they have been walking, faster than anyone turns round, and one of
    /// `weaker` does not, fits the predicted box (`low_match_iou`) and is of their
    /// size. Two walkers passing each other part with the other one's box the stronger; `di`
    /// stays free for whoever it belongs to.
    fn steadier(&self, ti: usize, di: usize, dets: &[Detection], weaker: &[u32]) -> Choice {
        if weaker.is_empty() {
            return Choice::Keep;
        }
        let s = &self.slots[ti];
        let predicted = s.filter.bbox();
        let h = predicted.height();
        let slack = self.pace.slack();
        if !s.trail.steps_back(&dets[di].bbox, h, self.now, slack) {
            return Choice::Keep;
        }
        weaker
            .iter()
            .map(|&w| w as usize)
            .filter(|&w| !self.det_used[w])
            .map(|w| (w, &dets[w].bbox))
            .filter(|(_, b)| {
                let ratio = b.height().max(1.0) / h.max(1.0);
                (1.0 / MAX_HEIGHT_RATIO..=MAX_HEIGHT_RATIO).contains(&ratio)
                    && !s.trail.steps_back(b, h, self.now, slack)
                    && predicted.iou(b) >= self.params.low_match_iou
            })
            .max_by(|a, b| predicted.iou(a.1).total_cmp(&predicted.iou(b.1)))
            .map_or(Choice::Defer, |(w, _)| Choice::Weaker(w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn det(x: f32, y: f32, score: f32) -> Detection {
        Detection {
            bbox: BBox::new(x, y, x + 40.0, y + 100.0),
            score,
            class: PERSON,
        }
    }

    #[test]
    fn a_walking_person_keeps_one_id() {
        let mut t = Tracker::new(TrackerParams::default());
        let mut ids = std::collections::BTreeSet::new();
        for i in 0..100 {
            for tr in t.update(&[det(10.0 + 6.0 * i as f32, 100.0, 0.8)]) {
                assert!(tr.confirmed || i < 2);
                ids.insert(tr.id);
            }
        }
        assert_eq!(ids.len(), 1, "ids {ids:?}");
    }

    #[test]
    fn a_walker_has_moved_and_a_still_thing_has_not() {
        let mut tr = Tracker::new(TrackerParams::default());
        let mut walker_moved = Vec::new();
        for i in 0..40 {
            // a still box jittering by a pixel, and a walker 4 px a frame (boxes 100 px tall)
            let jitter = if i % 2 == 0 { 0.5 } else { -0.5 };
            let dets = [
                det(100.0 + jitter, 100.0 - jitter, 0.35),
                det(300.0 + 4.0 * i as f32, 100.0, 0.8),
            ];
            let out = tr.update(&dets);
            let still = out.iter().find(|t| t.bbox.center().x < 200.0).unwrap();
            assert!(!still.moved, "frame {i}: {still:?}");
            walker_moved.push(
                out.iter()
                    .find(|t| t.bbox.center().x > 200.0)
                    .unwrap()
                    .moved,
            );
        }
        // half of 100 px at 4 px a frame: moved from about frame 13 on, and for good
        let first = walker_moved
            .iter()
            .position(|&m| m)
            .expect("the walker moved");
        assert!((10..=16).contains(&first), "moved from frame {first}");
        assert!(walker_moved[first..].iter().all(|&m| m));
    }

    #[test]
    fn a_one_frame_false_detection_never_gets_an_id() {
        let mut t = Tracker::new(TrackerParams::default());
        assert!(
            t.update(&[det(100.0, 100.0, 0.9)])
                .iter()
                .all(|t| !t.confirmed)
        );
        for _ in 0..10 {
            assert!(t.update(&[]).is_empty());
        }
    }

    #[test]
    fn a_track_survives_missed_frames_and_keeps_its_id() {
        let mut t = Tracker::new(TrackerParams::default());
        let mut id = None;
        for i in 0..10 {
            if let Some(tr) = t.update(&[det(10.0 + 5.0 * i as f32, 100.0, 0.8)]).first() {
                assert_eq!(tr.confirmed, i >= 2);
                id = Some(tr.id);
            }
        }
        for _ in 0..5 {
            let coasting = t.update(&[]);
            assert_eq!(coasting.len(), 1);
            assert!(coasting[0].misses > 0);
        }
        // it reappears where its velocity predicts
        let back = t.update(&[det(10.0 + 5.0 * 15.0, 100.0, 0.8)]);
        assert_eq!(back.first().map(|t| t.id), id);
    }

    #[test]
    fn low_score_detections_keep_but_do_not_start_tracks() {
        let mut t = Tracker::new(TrackerParams::default());
        for _ in 0..5 {
            assert!(
                t.update(&[det(50.0, 50.0, 0.2)]).is_empty(),
                "low score started a track"
            );
        }
        for i in 0..5 {
            t.update(&[det(200.0 + i as f32, 50.0, 0.9)]);
        }
        for i in 5..15 {
            let out = t.update(&[det(200.0 + i as f32, 50.0, 0.15)]);
            assert_eq!(out.len(), 1);
            assert_eq!(
                out[0].misses, 0,
                "low-score detection should match the track"
            );
        }
    }

    #[test]
    fn a_weak_detection_stays_with_the_track_seen_a_picture_ago() {
        // A stands at x=100 and is hidden from the sixth picture; B stands at x=124, seen
        // throughout. A weak box at x=110 overlaps A's coasting box more (IoU 0.60) than B's
        // (0.48): it is B, seen a picture ago, who keeps it.
        let mut t = Tracker::new(TrackerParams::default());
        let mut ids = (0, 0);
        for i in 0..5 {
            let out = t.update_at(
                i as f64 * 0.1,
                &[det(100.0, 50.0, 0.9), det(124.0, 50.0, 0.9)],
            );
            let a = out.iter().find(|k| k.bbox.x1 < 112.0).unwrap();
            let b = out.iter().find(|k| k.bbox.x1 >= 112.0).unwrap();
            ids = (a.id, b.id);
        }
        t.update_at(0.5, &[det(124.0, 50.0, 0.9)]);
        let out = t.update_at(0.6, &[det(110.0, 50.0, 0.2)]);
        let a = out
            .iter()
            .find(|k| k.id == ids.0)
            .expect("A still coasting");
        let b = out.iter().find(|k| k.id == ids.1).expect("B kept");
        assert_eq!(b.misses, 0, "B should keep the weak box");
        assert_eq!(a.misses, 2, "the coasting A should not take it");
    }

    #[test]
    fn walkers_parting_from_one_box_keep_their_own_way() {
        // A walks right, B walks left along the same row (4 px a picture, 25 a second). For
        // seven pictures they are one box standing still between them (B hidden behind A);
        // when they part, B's box is the strong one and lies where A's still box was nearer,
        // A's own box is weak. A keeps going right, B left.
        let mut t = Tracker::new(TrackerParams::default());
        let (mut a_id, mut b_id) = (0, 0);
        for i in 0..45u32 {
            let (xa, xb) = (100.0 + 4.0 * i as f32, 300.0 - 4.0 * i as f32);
            let dets: Vec<Detection> = if (xa - xb).abs() < 30.0 {
                vec![det(200.0, 100.0, 0.7)]
            } else if xa < xb {
                vec![det(xa, 100.0, 0.7), det(xb, 100.0, 0.7)]
            } else if i == 29 {
                vec![det(xa, 100.0, 0.2), det(xb, 100.0, 0.6)]
            } else {
                vec![det(xa, 100.0, 0.7), det(xb, 100.0, 0.7)]
            };
            let out = t.update_at(i as f64 * 0.04, &dets).to_vec();
            if i == 10 {
                a_id = out.iter().find(|k| k.bbox.x1 < 200.0).unwrap().id;
                b_id = out.iter().find(|k| k.bbox.x1 > 200.0).unwrap().id;
            }
            if i >= 29 {
                let a = out.iter().find(|k| k.id == a_id).expect("A followed");
                let b = out.iter().find(|k| k.id == b_id).expect("B followed");
                assert!(a.bbox.x1 > b.bbox.x1, "picture {i}: A {a:?}, B {b:?}");
            }
        }
        assert!(a_id != b_id);
    }

    #[test]
    fn a_person_seen_steadily_chooses_before_one_just_found_again() {
        // S stands at x=100, seen every picture; R stands at x=130, hidden for five pictures
        // and found again for one. Then one box at x=118 overlaps R's box more (IoU 0.54) than
        // S's (0.38): S, followed without a break, keeps it.
        let mut t = Tracker::new(TrackerParams::default());
        let mut k = 0;
        let mut step = |t: &mut Tracker, dets: &[Detection]| {
            k += 1;
            t.update_at(k as f64 * 0.04, dets).to_vec()
        };
        for _ in 0..5 {
            step(&mut t, &[det(100.0, 50.0, 0.9), det(130.0, 50.0, 0.9)]);
        }
        let ids = step(&mut t, &[det(100.0, 50.0, 0.9), det(130.0, 50.0, 0.9)]);
        let (s_id, r_id) = (
            ids.iter().find(|k| k.bbox.x1 < 115.0).unwrap().id,
            ids.iter().find(|k| k.bbox.x1 >= 115.0).unwrap().id,
        );
        for _ in 0..5 {
            step(&mut t, &[det(100.0, 50.0, 0.9)]);
        }
        step(&mut t, &[det(100.0, 50.0, 0.9), det(130.0, 50.0, 0.9)]);
        let out = step(&mut t, &[det(118.0, 50.0, 0.9)]);
        let s = out.iter().find(|k| k.id == s_id).unwrap();
        let r = out.iter().find(|k| k.id == r_id).unwrap();
        assert_eq!(s.misses, 0, "S should keep the box: {out:?}");
        assert_eq!(
            r.misses, 1,
            "R just found again should not take it: {out:?}"
        );
    }

    #[test]
    fn two_people_crossing_paths_keep_their_ids() {
        let mut t = Tracker::new(TrackerParams::default());
        let (mut a_id, mut b_id) = (None, None);
        for i in 0..80 {
            let x = 4.0 * i as f32;
            // A walks right at y=100, B walks left at y=130: their boxes overlap mid-way.
            let out = t
                .update(&[det(x, 100.0, 0.8), det(320.0 - x, 130.0, 0.8)])
                .to_vec();
            for tr in out {
                let c = tr.bbox.center();
                let going_right = (c.y - 150.0).abs() < (c.y - 180.0).abs();
                let slot = if going_right { &mut a_id } else { &mut b_id };
                match slot {
                    None => *slot = Some(tr.id),
                    Some(id) => assert_eq!(*id, tr.id, "frame {i}: id switch"),
                }
            }
        }
        assert!(a_id.is_some() && b_id.is_some() && a_id != b_id);
    }

    #[test]
    fn a_hidden_person_is_kept_for_the_same_time_at_any_frame_rate() {
        for fps in [5.0f64, 25.0] {
            let mut t = Tracker::new(TrackerParams::default());
            let mut k = 0u64;
            let mut step = |t: &mut Tracker, dets: &[Detection]| {
                k += 1;
                t.update_at(k as f64 / fps, dets).len()
            };
            for i in 0..10 {
                step(&mut t, &[det(10.0 + i as f32, 100.0, 0.8)]);
            }
            // hidden: kept while within MAX_COAST_SECONDS (and max_misses frames), then gone
            let mut kept = 0;
            while step(&mut t, &[]) > 0 {
                kept += 1;
            }
            let seconds = kept as f64 / fps;
            let limit = MAX_COAST_SECONDS.min(TrackerParams::default().max_misses as f64 / fps);
            assert!(
                (seconds - limit).abs() <= 1.0 / fps + 1e-9,
                "{fps} fps: kept {seconds} s, limit {limit} s"
            );
        }
    }

    proptest! {
        #[test]
        fn steady_walkers_keep_their_ids(
            starts in proptest::collection::vec((0f32..600.0, 0f32..400.0), 1..5),
            vx in -8f32..8.0, vy in -4f32..4.0,
        ) {
            // people far enough apart (no overlaps) walking in parallel
            let starts: Vec<(f32, f32)> = starts.iter().enumerate().map(|(k, s)| (s.0 + 200.0 * k as f32, s.1)).collect();
            let mut t = Tracker::new(TrackerParams::default());
            let mut ids = std::collections::BTreeSet::new();
            for i in 0..60 {
                let dets: Vec<Detection> = starts.iter().map(|s| det(s.0 + vx * i as f32, s.1 + vy * i as f32, 0.8)).collect();
                for tr in t.update(&dets) { ids.insert(tr.id); }
            }
            prop_assert_eq!(ids.len(), starts.len());
        }
    }
}
