//! How well the tracker keeps each person's identity, against ground truth with ids
//! (`ronda eval-detector --tracking`). Pure; unit-tested.
//!
//! A gate count goes wrong less from a person missed in one picture than from an id that jumps
//! from one person to another: the track carries the first person's side of the line to the
//! second. Crossing counts on a short clip are a handful of numbers where errors cancel; this
//! tally looks at every annotated person in every picture, so a tracker change can be judged
//! on thousands of sightings instead.
//!
//! Each picture, the tracks seen in it (not coasting) are matched to the annotated people,
//! greedily by IoU (best pair first, at least [`MATCH_IOU`], the CLEAR MOT criterion). Counted:
//! people-pictures, those followed by a track, **id switches** (a person followed by another
//! track than the last one that followed them; CLEAR MOT's IDSW) and, among them, **swaps**
//! (that track had followed someone else before: it was taken over from another person, the
//! kind that carries a side across the line).

use std::collections::HashMap;

use super::Track;
use crate::geometry::BBox;

/// IoU from which a track follows an annotated person.
pub const MATCH_IOU: f32 = 0.5;

/// Identity figures over any number of pictures: one tally per clip (who followed whom belongs
/// to the clip), summed with [`IdTally::merge`].
#[derive(Clone, Debug, Default)]
pub struct IdTally {
    /// Annotated people, summed over pictures.
    pub people: u64,
    /// Of those, followed by a track.
    pub followed: u64,
    /// A person followed by another track than before.
    pub switches: u64,
    /// ... by a track that had followed another person.
    pub swaps: u64,
    last_track: HashMap<u32, u64>,
    last_person: HashMap<u64, u32>,
    pairs: Vec<(f32, usize, usize)>,
}

impl IdTally {
    /// One picture: the tracker's output and the annotated people (id, box).
    pub fn add(&mut self, tracks: &[Track], people: &[(u32, BBox)]) {
        self.people += people.len() as u64;
        self.pairs.clear();
        for (ti, t) in tracks.iter().enumerate() {
            if t.misses > 0 {
                continue;
            }
            for (pi, (_, b)) in people.iter().enumerate() {
                let iou = t.bbox.iou(b);
                if iou >= MATCH_IOU {
                    self.pairs.push((iou, ti, pi));
                }
            }
        }
        self.pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (mut track_used, mut person_used) =
            (vec![false; tracks.len()], vec![false; people.len()]);
        for &(_, ti, pi) in &self.pairs {
            if track_used[ti] || person_used[pi] {
                continue;
            }
            track_used[ti] = true;
            person_used[pi] = true;
            self.followed += 1;
            let (person, track) = (people[pi].0, tracks[ti].id);
            if self.last_track.get(&person).is_some_and(|&t| t != track) {
                self.switches += 1;
                if self.last_person.get(&track).is_some_and(|&p| p != person) {
                    self.swaps += 1;
                }
            }
            self.last_track.insert(person, track);
            self.last_person.insert(track, person);
        }
    }

    /// Share of annotated people followed.
    pub fn followed_share(&self) -> f64 {
        if self.people == 0 {
            0.0
        } else {
            self.followed as f64 / self.people as f64
        }
    }

    /// Add another tally's figures (its clip state is not carried over).
    pub fn merge(&mut self, other: &IdTally) {
        self.people += other.people;
        self.followed += other.followed;
        self.switches += other.switches;
        self.swaps += other.swaps;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(id: u64, x: f32) -> Track {
        Track {
            id,
            bbox: BBox::new(x, 100.0, x + 40.0, 200.0),
            score: 0.8,
            hits: 5,
            age: 5,
            misses: 0,
            confirmed: true,
            moved: true,
            best_score: 0.8,
        }
    }

    fn person(id: u32, x: f32) -> (u32, BBox) {
        (id, BBox::new(x, 100.0, x + 40.0, 200.0))
    }

    #[test]
    fn a_person_followed_throughout_has_no_switch() {
        let mut t = IdTally::default();
        for k in 0..10 {
            let x = 10.0 * k as f32;
            t.add(&[track(1, x)], &[person(7, x + 2.0)]);
        }
        assert_eq!((t.people, t.followed, t.switches, t.swaps), (10, 10, 0, 0));
        assert_eq!(t.followed_share(), 1.0);
    }

    #[test]
    fn two_tracks_exchanging_people_are_two_swaps_and_a_new_track_is_a_switch_only() {
        let mut t = IdTally::default();
        t.add(
            &[track(1, 0.0), track(2, 200.0)],
            &[person(7, 0.0), person(8, 200.0)],
        );
        // the ids jump: track 1 now on person 8, track 2 on person 7
        t.add(
            &[track(1, 200.0), track(2, 0.0)],
            &[person(7, 0.0), person(8, 200.0)],
        );
        assert_eq!((t.switches, t.swaps), (2, 2));
        // person 7 lost and found again by a fresh track: a switch, not a swap
        t.add(&[track(9, 0.0)], &[person(7, 0.0), person(8, 200.0)]);
        assert_eq!((t.people, t.followed, t.switches, t.swaps), (6, 5, 3, 2));
    }

    #[test]
    fn coasting_tracks_and_far_boxes_follow_nobody() {
        let mut t = IdTally::default();
        let mut coasting = track(1, 0.0);
        coasting.misses = 2;
        t.add(&[coasting, track(2, 300.0)], &[person(7, 0.0)]);
        assert_eq!((t.people, t.followed), (1, 0));
    }
}
