//! Where an area camera's picture is searched: square regions around what moved and around the
//! people tracked there, instead of the whole picture (issue 14). Pure geometry, no model.
//!
//! The rule, after Frigate's motion regions (its docs: a region is a square around a motion box
//! or a tracked object, at least the model's size, merged when they overlap) and changed where a
//! small box runs a model of any input size:
//!
//! - Each box (a cluster of motion, a tracked person's last box) becomes a square centred on it,
//!   [`RegionParams::context`] times its longer side (a person cut by the region's edge is found
//!   less well; motion often shows only part of a walker), at least [`RegionParams::min_side`].
//! - Squares that overlap are merged into the square that covers both, until none overlap.
//! - A square is moved inside the picture. One as large as the picture's shorter side, or regions
//!   that together would cost about as much as the whole picture
//!   ([`RegionParams::whole_share`] of its input pixels), make the search a whole-picture one:
//!   many small regions are not cheaper than one picture, and the whole one has all the context.
//!
//! A region is fed at its own resolution up to the model's size (`PersonDetector::detect_region`),
//! so a far walker is seen with more pixels than in the whole picture scaled down, and a small
//! region costs a fraction of a whole look (cost grows with the input's pixels).

use std::time::{Duration, Instant};

use image::RgbImage;

use super::person::region_input_side;
use super::{DetectError, Detection, Detector};
use crate::geometry::BBox;

/// How often an area camera's whole picture is searched at the least (someone who came in
/// without moving enough for the motion gate, or stands still after the tracker lost them).
pub const WHOLE_EVERY: Duration = Duration::from_secs(4);

/// One camera's search state (`[detector] area_regions`): around what moved and the people
/// tracked there, with the whole picture searched every [`WHOLE_EVERY`] and whenever there is
/// nothing to look around (a still camera's re-check), so a person standing still is not lost.
/// Its buffers are reused from picture to picture.
#[derive(Debug, Default)]
pub struct RegionSearch {
    /// Where the motion gate saw change in the pictures since the last search (the newest one
    /// passed, and those it replaced while waiting for the detector).
    pub motion: Vec<BBox>,
    boxes: Vec<BBox>,
    regions: Vec<BBox>,
    last_whole: Option<Instant>,
}

impl RegionSearch {
    /// Persons in `img` (into `out`, cleared first), searched around the motion seen since the
    /// last search and the boxes of the `people` tracked, or in the whole picture when that is
    /// due. Returns what was searched: the whole picture, or that many regions.
    pub fn search(
        &mut self,
        detector: &mut Detector,
        img: &RgbImage,
        people: impl Iterator<Item = BBox>,
        now: Instant,
        out: &mut Vec<Detection>,
    ) -> Result<Option<usize>, DetectError> {
        let due = self
            .last_whole
            .is_none_or(|t| now.saturating_duration_since(t) >= WHOLE_EVERY);
        self.boxes.clear();
        self.boxes.append(&mut self.motion);
        self.boxes.extend(people);
        let look = if due {
            Look::Whole
        } else {
            plan(
                &self.boxes,
                (img.width() as f32, img.height() as f32),
                detector.area_input_size(),
                &RegionParams::default(),
                &mut self.regions,
            )
        };
        match look {
            Look::Whole => {
                detector.persons_into(img, true, out)?;
                self.last_whole = Some(now);
                Ok(None)
            }
            Look::Regions => {
                detector.persons_in_regions(img, &self.regions, out)?;
                Ok(Some(self.regions.len()))
            }
        }
    }
}

/// How regions are drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RegionParams {
    /// Region side over the box's longer side.
    pub context: f32,
    /// Smallest region side, picture pixels.
    pub min_side: f32,
    /// Regions costing more than this share of a whole-picture look make it a whole-picture one.
    pub whole_share: f32,
}

impl Default for RegionParams {
    fn default() -> Self {
        Self {
            context: 1.6,
            min_side: 128.0,
            whole_share: 0.7,
        }
    }
}

/// What to search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Look {
    /// The whole picture.
    Whole,
    /// The regions written to the output.
    Regions,
}

/// Plan the search of a `width` x `height` picture around `boxes` for a model whose whole
/// picture input is `base_w` x `base_h`: the regions go to `out` (cleared first).
pub fn plan(
    boxes: &[BBox],
    (width, height): (f32, f32),
    (base_w, base_h): (usize, usize),
    p: &RegionParams,
    out: &mut Vec<BBox>,
) -> Look {
    out.clear();
    if boxes.is_empty() {
        return Look::Whole;
    }
    let short = width.min(height);
    for b in boxes {
        let side = (b.width().max(b.height()) * p.context).max(p.min_side);
        let c = b.center();
        out.push(square(c.x, c.y, side));
    }
    // merge until no two overlap (a handful of boxes: quadratic is fine)
    'merge: loop {
        for i in 0..out.len() {
            for j in i + 1..out.len() {
                if overlap(&out[i], &out[j]) {
                    let (a, b) = (out[i], out[j]);
                    let u = BBox::new(
                        a.x1.min(b.x1),
                        a.y1.min(b.y1),
                        a.x2.max(b.x2),
                        a.y2.max(b.y2),
                    );
                    let c = u.center();
                    out[i] = square(c.x, c.y, u.width().max(u.height()));
                    out.swap_remove(j);
                    continue 'merge;
                }
            }
        }
        break;
    }
    let mut cost = 0.0f64;
    for r in out.iter_mut() {
        let side = r.width();
        if side >= short {
            return Look::Whole;
        }
        let x1 = r.x1.clamp(0.0, width - side);
        let y1 = r.y1.clamp(0.0, height - side);
        *r = BBox::new(x1, y1, x1 + side, y1 + side);
        let s = region_input_side(side, base_w.min(base_h)) as f64;
        cost += s * s;
    }
    if cost > p.whole_share as f64 * (base_w * base_h) as f64 {
        return Look::Whole;
    }
    Look::Regions
}

fn square(cx: f32, cy: f32, side: f32) -> BBox {
    let h = side / 2.0;
    BBox::new(cx - h, cy - h, cx + h, cy + h)
}

fn overlap(a: &BBox, b: &BBox) -> bool {
    a.x1 < b.x2 && b.x1 < a.x2 && a.y1 < b.y2 && b.y1 < a.y2
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIC: (f32, f32) = (480.0, 360.0);
    const BASE: (usize, usize) = (320, 320);

    #[test]
    fn nothing_to_look_around_is_a_whole_picture_look() {
        let mut out = vec![BBox::new(0.0, 0.0, 1.0, 1.0)];
        assert_eq!(
            plan(&[], PIC, BASE, &RegionParams::default(), &mut out),
            Look::Whole
        );
        assert!(out.is_empty());
    }

    #[test]
    fn a_far_walker_gets_a_small_square_inside_the_picture() {
        let mut out = Vec::new();
        // 20 x 50 px walker at the right edge
        let walker = BBox::new(455.0, 100.0, 475.0, 150.0);
        let look = plan(&[walker], PIC, BASE, &RegionParams::default(), &mut out);
        assert_eq!(look, Look::Regions);
        assert_eq!(out.len(), 1);
        let r = out[0];
        assert!((r.width() - 128.0).abs() < 1e-3 && (r.height() - 128.0).abs() < 1e-3);
        assert!(r.x2 <= 480.0 && r.x1 >= 0.0, "{r:?} moved inside");
        assert!(r.x1 <= walker.x1 && r.x2 >= walker.x2 && r.y1 <= walker.y1 && r.y2 >= walker.y2);
        assert_eq!(region_input_side(r.width(), 320), 128);
    }

    #[test]
    fn overlapping_squares_merge_and_apart_ones_do_not() {
        let mut out = Vec::new();
        let p = RegionParams::default();
        let a = BBox::new(100.0, 100.0, 120.0, 150.0);
        let b = BBox::new(130.0, 110.0, 150.0, 160.0);
        let far = BBox::new(400.0, 250.0, 420.0, 300.0);
        assert_eq!(plan(&[a, b, far], PIC, BASE, &p, &mut out), Look::Regions);
        assert_eq!(out.len(), 2, "{out:?}");
        for x in [a, b] {
            assert!(
                out.iter().any(|r| r.x1 <= x.x1 && r.x2 >= x.x2),
                "{x:?} in {out:?}"
            );
        }
        for (i, r) in out.iter().enumerate() {
            assert!((r.width() - r.height()).abs() < 1e-3, "square");
            for s in &out[i + 1..] {
                assert!(!overlap(r, s));
            }
        }
    }

    #[test]
    fn a_crowd_or_a_big_person_is_a_whole_picture_look() {
        let mut out = Vec::new();
        let p = RegionParams::default();
        // someone near the camera: 250 px tall, region side 400 > 360
        let near = BBox::new(200.0, 50.0, 300.0, 300.0);
        assert_eq!(plan(&[near], PIC, BASE, &p, &mut out), Look::Whole);
        // people spread all over: regions cost more than the whole picture
        let spread: Vec<BBox> = (0..4)
            .flat_map(|i| {
                (0..2).map(move |j| {
                    let (x, y) = (20.0 + 120.0 * i as f32, 40.0 + 180.0 * j as f32);
                    BBox::new(x, y, x + 30.0, y + 70.0)
                })
            })
            .collect();
        assert_eq!(plan(&spread, PIC, BASE, &p, &mut out), Look::Whole);
    }
}
