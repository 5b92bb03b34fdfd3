//! Boxes, points, segments and polygons in camera pixels (x right, y down).

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

impl Point {
    pub const fn new(x: f32, y: f32) -> Self {
        Self { x, y }
    }
}

/// An axis-aligned box, corners (x1, y1) top-left and (x2, y2) bottom-right, in source pixels.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct BBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl BBox {
    pub const fn new(x1: f32, y1: f32, x2: f32, y2: f32) -> Self {
        Self { x1, y1, x2, y2 }
    }
    pub fn width(&self) -> f32 {
        (self.x2 - self.x1).max(0.0)
    }
    pub fn height(&self) -> f32 {
        (self.y2 - self.y1).max(0.0)
    }
    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }
    pub fn center(&self) -> Point {
        Point::new((self.x1 + self.x2) * 0.5, (self.y1 + self.y2) * 0.5)
    }
    /// The feet of a standing person: the default reference point for counting.
    pub fn bottom_center(&self) -> Point {
        Point::new((self.x1 + self.x2) * 0.5, self.y2)
    }
    pub fn iou(&self, other: &BBox) -> f32 {
        let ix = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let iy = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        let inter = ix * iy;
        let union = self.area() + other.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }
    /// Clamp to an image of `w` x `h` pixels.
    pub fn clamp(&self, w: f32, h: f32) -> BBox {
        BBox::new(
            self.x1.clamp(0.0, w),
            self.y1.clamp(0.0, h),
            self.x2.clamp(0.0, w),
            self.y2.clamp(0.0, h),
        )
    }
    pub fn to_array(&self) -> [f32; 4] {
        [self.x1, self.y1, self.x2, self.y2]
    }
}

/// A directed segment A -> B: a counting line. `in` is A->B turned a quarter turn clockwise on
/// screen (x right, y down), i.e. the side where [`Segment::side`] is positive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Segment {
    pub a: Point,
    pub b: Point,
}

impl Segment {
    pub const fn new(a: Point, b: Point) -> Self {
        Self { a, b }
    }

    pub fn length(&self) -> f32 {
        ((self.b.x - self.a.x).powi(2) + (self.b.y - self.a.y).powi(2)).sqrt()
    }

    /// s(P) = (x2-x1)(Py-y1) - (y2-y1)(Px-x1): positive on the `in` side, negative on the `out`
    /// side, zero on the line (DESIGN.md "Lines, directions and counting").
    pub fn side(&self, p: Point) -> f32 {
        (self.b.x - self.a.x) * (p.y - self.a.y) - (self.b.y - self.a.y) * (p.x - self.a.x)
    }

    /// Signed distance in pixels from the infinite line through A and B (sign as [`side`]).
    ///
    /// [`side`]: Segment::side
    pub fn signed_distance(&self, p: Point) -> f32 {
        let len = self.length();
        if len == 0.0 { 0.0 } else { self.side(p) / len }
    }

    /// Where the move `p -> q` meets the infinite line through A and B, as the parameter `t`
    /// along A->B (`0..=1` means on the segment itself). `None` when the move is parallel to it.
    fn crossing_param(&self, p: Point, q: Point) -> Option<f32> {
        let (rx, ry) = (q.x - p.x, q.y - p.y);
        let (sx, sy) = (self.b.x - self.a.x, self.b.y - self.a.y);
        let den = rx * sy - ry * sx;
        if den == 0.0 {
            return None;
        }
        let (pax, pay) = (p.x - self.a.x, p.y - self.a.y);
        Some((pax * ry - pay * rx) / -den)
    }

    /// Does the move `p -> q` meet the segment itself (not just the infinite line)?
    pub fn meets(&self, p: Point, q: Point) -> bool {
        let (sp, sq) = (self.side(p), self.side(q));
        if (sp > 0.0 && sq > 0.0) || (sp < 0.0 && sq < 0.0) {
            return false;
        }
        matches!(self.crossing_param(p, q), Some(t) if (0.0..=1.0).contains(&t))
    }

    /// The same segment drawn the other way round: `in` and `out` swap.
    pub fn reversed(&self) -> Segment {
        Segment::new(self.b, self.a)
    }
}

/// A closed polygon (zone) in camera pixels; the last point joins the first.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Polygon {
    pub points: Vec<Point>,
}

impl Polygon {
    pub fn new(points: Vec<Point>) -> Self {
        Self { points }
    }

    /// Even-odd rule; points exactly on an edge may fall either way.
    pub fn contains(&self, p: Point) -> bool {
        let pts = &self.points;
        if pts.len() < 3 {
            return false;
        }
        let mut inside = false;
        let mut j = pts.len() - 1;
        for i in 0..pts.len() {
            let (pi, pj) = (pts[i], pts[j]);
            if (pi.y > p.y) != (pj.y > p.y) {
                let x = pj.x + (p.y - pj.y) * (pi.x - pj.x) / (pi.y - pj.y);
                if p.x < x {
                    inside = !inside;
                }
            }
            j = i;
        }
        inside
    }

    /// Two edges that cross or touch, not counting neighbours (which share a corner), as the
    /// indices of their first points: edge `i` joins point `i` to the next (the last one back to
    /// point 0). A zone drawn like a bow tie has no clear inside, so it is refused.
    pub fn self_crossing(&self) -> Option<(usize, usize)> {
        let pts = &self.points;
        let n = pts.len();
        for i in 0..n {
            let edge = Segment::new(pts[i], pts[(i + 1) % n]);
            for j in i + 2..n {
                if i == 0 && j == n - 1 {
                    continue; // the last edge and the first share point 0
                }
                if edge.meets(pts[j], pts[(j + 1) % n]) {
                    return Some((i, j));
                }
            }
        }
        None
    }

    /// Twice the signed area; zero for a degenerate polygon (all points on one line).
    pub fn doubled_area(&self) -> f32 {
        let pts = &self.points;
        let mut acc = 0.0;
        for i in 0..pts.len() {
            let (p, q) = (pts[i], pts[(i + 1) % pts.len()]);
            acc += p.x * q.y - q.x * p.y;
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn design_example_direction() {
        // DESIGN.md: a line from (100,0) down to (100,200); x=150 -> x=50 is `in`.
        let l = Segment::new(Point::new(100.0, 0.0), Point::new(100.0, 200.0));
        assert!(l.side(Point::new(150.0, 100.0)) < 0.0);
        assert!(l.side(Point::new(50.0, 100.0)) > 0.0);
        assert!(l.meets(Point::new(150.0, 100.0), Point::new(50.0, 100.0)));
        assert!(!l.meets(Point::new(150.0, 300.0), Point::new(50.0, 300.0)));
    }

    #[test]
    fn polygon_contains() {
        let sq = Polygon::new(vec![
            Point::new(0.0, 0.0),
            Point::new(10.0, 0.0),
            Point::new(10.0, 10.0),
            Point::new(0.0, 10.0),
        ]);
        assert!(sq.contains(Point::new(5.0, 5.0)));
        assert!(!sq.contains(Point::new(15.0, 5.0)));
        assert_eq!(sq.doubled_area().abs(), 200.0);
        assert_eq!(sq.self_crossing(), None);
        let bow_tie = Polygon::new(vec![
            Point::new(0.0, 0.0),
            Point::new(10.0, 10.0),
            Point::new(10.0, 0.0),
            Point::new(0.0, 10.0),
        ]);
        assert_eq!(bow_tie.self_crossing(), Some((0, 2)));
    }

    fn pt() -> impl Strategy<Value = Point> {
        (-500f32..500.0, -500f32..500.0).prop_map(|(x, y)| Point::new(x, y))
    }

    proptest! {
        // past failures are kept beside this file (src/geometry.proptest-regressions), not in
        // a folder of their own at the top of the project
        #![proptest_config(ProptestConfig {
            failure_persistence: Some(Box::new(
                proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
            )),
            ..ProptestConfig::default()
        })]
        #[test]
        fn reversing_a_line_flips_the_side(a in pt(), b in pt(), p in pt(), q in pt()) {
            let l = Segment::new(a, b);
            let (s, r) = (l.side(p), l.reversed().side(p));
            prop_assert!((s + r).abs() <= 1e-3 * (1.0 + s.abs()), "{} vs {}", s, r);
            // away from the ends and the line, the segment test does not depend on direction
            prop_assume!(l.side(p).abs() > 1.0 && l.side(q).abs() > 1.0);
            let t = l.crossing_param(p, q);
            prop_assume!(t.is_none_or(|t| (t - 0.0).abs() > 1e-3 && (t - 1.0).abs() > 1e-3));
            prop_assert_eq!(l.meets(p, q), l.reversed().meets(p, q));
        }

        #[test]
        fn a_move_on_one_side_never_meets(a in pt(), b in pt(), p in pt(), q in pt()) {
            let l = Segment::new(a, b);
            prop_assume!(l.side(p) * l.side(q) > 1.0);
            prop_assert!(!l.meets(p, q));
        }
    }
}
