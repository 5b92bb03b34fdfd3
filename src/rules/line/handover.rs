//! Who takes over whom at the line: the tracks new in a picture and the people lost near them,
//! paired for the whole picture at once (as many pairs as can be made, then the nearest in sum),
//! not each new track in turn taking the lost person nearest to it.
//!
//! In turn, the first new track (the lowest id, an accident of the tracker's order) took the
//! lost person nearest to it even when another lost person was near it too and the first was the
//! only one near the second new track: the second new track was then left with no side, and the
//! crossing it was making went uncounted. The same reasoning as the tracker's own pairing
//! (`track::assign`), with distance where the tracker has overlap.

use std::collections::HashMap;

use super::{Anchor, CountingParams, DRIFT_HEIGHTS_PER_S, HANDOVER_HEIGHT_RATIO, Tick, TrackSide};
use crate::track::{Pairing, Track};

/// The take-overs of one picture, with the buffers kept between pictures.
#[derive(Default)]
pub(super) struct Handovers {
    /// (new track, lost track) ids.
    plan: Vec<(u64, u64)>,
    /// (score, row: index into the picture's tracks, col: index into `lost`).
    pairs: Vec<(f32, u32, u32)>,
    lost: Vec<u64>,
    pairing: Pairing,
}

impl Handovers {
    /// Plans this picture's take-overs: `known` is the counter's people before the picture,
    /// `tracks` the tracker's of the picture, `window` how long a lost person can be taken over.
    pub(super) fn plan(
        &mut self,
        known: &HashMap<u64, TrackSide>,
        at: Tick,
        tracks: &[Track],
        anchor: Anchor,
        p: &CountingParams,
        window: f64,
    ) {
        self.plan.clear();
        self.pairs.clear();
        self.lost.clear();
        let born = |tr: &Track| tr.misses == 0 && !known.contains_key(&tr.id);
        if !tracks.iter().any(born) {
            return;
        }
        for (&id, t) in known {
            // lost (gone, or coasting unseen) and recently observed
            let seen = tracks.iter().any(|tr| tr.id == id && tr.misses == 0);
            if seen || t.retired || at.t - t.last_observed > window {
                continue;
            }
            // Nothing to hand over yet. And a flicker (too few detections to count a crossing
            // itself) has nothing to hand over: otherwise a false detection beside the line
            // lends its side to whoever appears there next, who "crosses" on their first
            // sighting.
            if (t.side == 0 && t.last_counted.is_none()) || t.hits < 2 {
                continue;
            }
            self.lost.push(id);
        }
        // the same plan whatever order the map keeps
        self.lost.sort_unstable();
        let mut farthest = 0.0f32;
        for (row, tr) in tracks.iter().enumerate().filter(|(_, tr)| born(tr)) {
            let pt = anchor.point(&tr.bbox);
            let height = tr.bbox.height().max(1.0);
            for (col, id) in self.lost.iter().enumerate() {
                if let Some(d) = distance(&known[id], at, pt, height, p) {
                    farthest = farthest.max(d);
                    self.pairs.push((-d, row as u32, col as u32));
                }
            }
        }
        if self.pairs.is_empty() {
            return;
        }
        // Nearest first. Each pair is worth `ceiling - distance` with `ceiling` above any
        // distance times the most pairs there can be: the pairing with the most pairs wins, then the one
        // with the least summed distance; one new track near several lost people takes the
        // nearest, as before.
        self.pairs
            .sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let ceiling = (farthest + 1.0) * (self.pairs.len() + 1) as f32;
        self.pairing.put_first(&mut self.pairs, -ceiling);
        for &(_, row, col) in &self.pairs {
            let (new, old) = (tracks[row as usize].id, self.lost[col as usize]);
            if self.plan.iter().all(|&(n, o)| n != new && o != old) {
                self.plan.push((new, old));
            }
        }
        tracing::trace!(frame = at.frame, plan = ?self.plan, candidates = ?self.pairs, lost = ?self.lost, "hand-over");
    }

    /// The lost person the new track `new` takes over in this picture, if any.
    pub(super) fn taken_by(&self, new: u64) -> Option<u64> {
        self.plan.iter().find(|p| p.0 == new).map(|p| p.1)
    }
}

/// How far (pixels) a new box of `height` with its point at `pt` is from where the lost person
/// `t` would be now at the pace they were walking, when it is near enough to be them.
fn distance(
    t: &TrackSide,
    at: Tick,
    pt: super::Point,
    height: f32,
    p: &CountingParams,
) -> Option<f32> {
    // Nobody shrinks or grows by half between two sightings a second apart: a box of a
    // different size is someone else (or something else) at another distance.
    let ratio = height.max(t.last_height) / height.min(t.last_height).max(1.0);
    if ratio > HANDOVER_HEIGHT_RATIO {
        return None;
    }
    let h = 0.5 * (height + t.last_height);
    let gap = (at.t - t.last_observed).max(0.0) as f32;
    let (ex, ey) = (
        t.last_point.x + t.velocity.0 * gap,
        t.last_point.y + t.velocity.1 * gap,
    );
    let reach = h * (p.handover_heights + DRIFT_HEIGHTS_PER_S * gap);
    let dist = ((ex - pt.x).powi(2) + (ey - pt.y).powi(2)).sqrt();
    (dist <= reach).then_some(dist)
}
