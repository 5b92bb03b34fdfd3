//! A gate's true crossings read from ground truth, and the counted crossings matched to them
//! (`ronda analyze --truth`). Pure; unit-tested.
//!
//! Counts alone hide errors that cancel (a false count and a miss make a right figure), so a
//! count is judged crossing by crossing: which counted crossings were real, which were not, and
//! who crossed uncounted. The team measures every change on annotated footage of its own; with
//! this, anyone with a MOTChallenge annotation of a gate camera gets the same figures from one
//! command.
//!
//! The true crossings follow `../shared/data/tools/compute_crossings.py` (margin 0), which made
//! the true counts of `../shared/data/README.md`: each annotated person's feet (the bottom centre
//! of their box), from the last point on one side of the line to the next on the other, where
//! that step meets the segment itself; `in` is A->B turned a quarter turn clockwise on screen, as
//! for the counter. A point exactly on the line has no side and is passed over.
//!
//! Matching: each counted crossing, in the order given, takes the nearest true crossing of the
//! same line and direction not yet taken, at most [`MATCH_SECONDS`] away.

use super::LineSpec;
use crate::detect::eval::GroundTruthPeople;
use crate::events::Direction;
use crate::geometry::{BBox, Point};

/// How far apart in time a counted crossing and a true one may be and still be the same: the
/// counter dates a crossing at the first picture past the band, the annotation at the picture
/// past the line; a tracker that lost someone for a moment counts them when found again.
pub const MATCH_SECONDS: f64 = 1.0;

/// One person crossing a line, by the ground truth.
#[derive(Clone, Debug, PartialEq)]
pub struct TrueCrossing {
    pub line: String,
    pub direction: Direction,
    /// Seconds into the video of the first annotated picture past the line.
    pub time: f64,
    /// The annotation's id of the person.
    pub person: u32,
    /// Their annotated box then, in the video's pixels: where to look for them.
    pub bbox: BBox,
}

/// The true crossings of `lines` in `gt`, whose frames are numbered from 1 at `fps` pictures a
/// second and whose boxes are in the video's pixels once multiplied by `scale` (a copy of the
/// footage at another size). Sorted by time.
pub fn true_crossings(
    gt: &GroundTruthPeople,
    lines: &[LineSpec],
    fps: f64,
    scale: f32,
) -> Vec<TrueCrossing> {
    // each person's boxes, in frame order (the annotation is by frame)
    let mut paths: std::collections::BTreeMap<u32, Vec<(u32, BBox)>> = Default::default();
    for (&frame, people) in gt {
        for (id, b) in people {
            let b = BBox::new(b.x1 * scale, b.y1 * scale, b.x2 * scale, b.y2 * scale);
            paths.entry(*id).or_default().push((frame, b));
        }
    }
    let mut out = Vec::new();
    for (&person, path) in &paths {
        for line in lines {
            let seg = line.segment;
            let mut last: Option<(bool, Point)> = None;
            for &(frame, b) in path {
                let p = b.bottom_center();
                let s = seg.side(p);
                if s == 0.0 {
                    continue;
                }
                let inside = s > 0.0;
                if let Some((was, from)) = last
                    && was != inside
                    && seg.meets(from, p)
                {
                    out.push(TrueCrossing {
                        line: line.name.clone(),
                        direction: if inside {
                            Direction::In
                        } else {
                            Direction::Out
                        },
                        time: f64::from(frame - 1) / fps,
                        person,
                        bbox: b,
                    });
                }
                last = Some((inside, p));
            }
        }
    }
    out.sort_by(|a, b| a.time.total_cmp(&b.time));
    out
}

/// Counted crossings against the true ones.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Matching {
    /// For each counted crossing, the index of the true one it is, or `None`: a false count.
    pub counted: Vec<Option<usize>>,
    /// Indices of the true crossings no count matched: people who crossed uncounted.
    pub missed: Vec<usize>,
}

impl Matching {
    pub fn true_count(&self) -> usize {
        self.counted.iter().flatten().count()
    }

    pub fn false_count(&self) -> usize {
        self.counted.len() - self.true_count()
    }
}

/// Match `counted` (line, direction, seconds into the video) to `truth` one to one (see the
/// module's documentation).
pub fn match_crossings(counted: &[(&str, Direction, f64)], truth: &[TrueCrossing]) -> Matching {
    let mut taken = vec![false; truth.len()];
    let counted = counted
        .iter()
        .map(|&(line, dir, t)| {
            let best = truth
                .iter()
                .enumerate()
                .filter(|(k, c)| {
                    !taken[*k]
                        && c.line == line
                        && c.direction == dir
                        && (c.time - t).abs() <= MATCH_SECONDS
                })
                .min_by(|a, b| (a.1.time - t).abs().total_cmp(&(b.1.time - t).abs()))
                .map(|(k, _)| k);
            if let Some(k) = best {
                taken[k] = true;
            }
            best
        })
        .collect();
    let missed = (0..truth.len()).filter(|k| !taken[*k]).collect();
    Matching { counted, missed }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::eval::parse_gt_people;

    fn gate() -> Vec<LineSpec> {
        // vertical line x = 100 from y 0 to 200: `in` is leftwards (A->B turned clockwise)
        vec![LineSpec::new(
            "gate",
            Point::new(100.0, 0.0),
            Point::new(100.0, 200.0),
        )]
    }

    /// `frame,id,x,y,w,h,1`: a 20x50 box whose feet are at (x + 10, y + 50).
    fn row(frame: u32, id: u32, feet_x: f32, feet_y: f32) -> String {
        format!("{frame},{id},{},{},20,50,1\n", feet_x - 10.0, feet_y - 50.0)
    }

    #[test]
    fn a_walk_through_the_gate_is_one_crossing_and_one_beside_it_none() {
        let mut text = String::new();
        // person 1 walks left through the gate: frames 1..=5 at x 120, 110, 100, 90, 80
        for (k, x) in [120.0, 110.0, 100.0, 90.0, 80.0].iter().enumerate() {
            text += &row(k as u32 + 1, 1, *x, 150.0);
        }
        // person 2 walks right below the segment's end (y 250): crosses the line, not the gate
        for (k, x) in [80.0, 120.0].iter().enumerate() {
            text += &row(k as u32 + 1, 2, *x, 250.0);
        }
        // person 3 goes right and comes back: out at frame 2, in at frame 3
        for (k, x) in [90.0, 110.0, 95.0].iter().enumerate() {
            text += &row(k as u32 + 1, 3, *x, 100.0);
        }
        let gt = parse_gt_people(&text).unwrap();
        let t = true_crossings(&gt, &gate(), 25.0, 1.0);
        let got: Vec<(u32, Direction, f64)> =
            t.iter().map(|c| (c.person, c.direction, c.time)).collect();
        assert_eq!(
            got,
            vec![
                (3, Direction::Out, 0.04),
                (3, Direction::In, 0.08),
                // frame 4 is the first past the line (frame 3 is on it and has no side)
                (1, Direction::In, 0.12),
            ]
        );
        // the same annotation on a copy at half the size, lines halved with it
        let half = vec![LineSpec::new(
            "gate",
            Point::new(50.0, 0.0),
            Point::new(50.0, 100.0),
        )];
        let h = true_crossings(&gt, &half, 25.0, 0.5);
        let strip = |v: &[TrueCrossing]| -> Vec<(u32, Direction, f64)> {
            v.iter().map(|c| (c.person, c.direction, c.time)).collect()
        };
        assert_eq!(strip(&h), got);
        // the boxes come in the copy's pixels: person 1's first box past the line, feet at
        // (90, 150) in the annotation, is (40, 50)-(50, 75) in the copy
        assert_eq!(h[2].bbox, BBox::new(40.0, 50.0, 50.0, 75.0));
        assert_eq!(t[2].bbox, BBox::new(80.0, 100.0, 100.0, 150.0));
    }

    #[test]
    fn counts_are_matched_one_to_one_by_line_direction_and_time() {
        let truth = |line: &str, direction, time| TrueCrossing {
            line: line.into(),
            direction,
            time,
            person: 1,
            bbox: BBox::new(0.0, 0.0, 1.0, 1.0),
        };
        let truth = vec![
            truth("a", Direction::In, 1.0),
            truth("a", Direction::In, 1.4),
            truth("a", Direction::Out, 5.0),
            truth("b", Direction::In, 9.0),
        ];
        let m = match_crossings(
            &[
                ("a", Direction::In, 1.3),  // nearest: 1.4
                ("a", Direction::In, 1.2),  // the one left: 1.0
                ("a", Direction::In, 1.5),  // none left: false
                ("a", Direction::In, 5.0),  // wrong direction: false
                ("b", Direction::In, 10.5), // too late: false
            ],
            &truth,
        );
        assert_eq!(m.counted, vec![Some(1), Some(0), None, None, None]);
        assert_eq!(m.missed, vec![2, 3]);
        assert_eq!((m.true_count(), m.false_count()), (2, 3));
    }
}
