//! Constant-velocity Kalman filter on a box (centre x, centre y, aspect w/h, height), as in
//! SORT/ByteTrack.
//!
//! ByteTrack's 8-dimensional filter has diagonal process and measurement noise and a transition
//! that couples each coordinate only with its own velocity, so its covariance stays block-diagonal:
//! four independent (value, velocity) filters. Writing it that way needs no matrix library and no
//! allocation, and gives the same numbers.

use crate::geometry::BBox;

/// Noise scale relative to box height (ByteTrack's values).
const STD_POSITION: f32 = 1.0 / 20.0;
const STD_VELOCITY: f32 = 1.0 / 160.0;
/// The aspect ratio changes little and is not proportional to the height.
const STD_ASPECT: f32 = 1e-2;
const STD_ASPECT_VELOCITY: f32 = 1e-5;
const STD_ASPECT_MEASURE: f32 = 1e-1;

/// One coordinate and its velocity, with their 2x2 covariance [[pp, pv], [pv, vv]].
#[derive(Clone, Copy, Debug, Default)]
struct Axis {
    x: f32,
    v: f32,
    pp: f32,
    pv: f32,
    vv: f32,
}

impl Axis {
    fn new(x: f32, std_x: f32, std_v: f32) -> Self {
        Self {
            x,
            v: 0.0,
            pp: std_x * std_x,
            pv: 0.0,
            vv: std_v * std_v,
        }
    }

    fn predict(&mut self, q_x: f32, q_v: f32) {
        self.x += self.v;
        // P' = F P F^T + Q with F = [[1, 1], [0, 1]]
        self.pp += 2.0 * self.pv + self.vv + q_x * q_x;
        self.pv += self.vv;
        self.vv += q_v * q_v;
    }

    fn update(&mut self, z: f32, r: f32) {
        let s = self.pp + r * r;
        let (k_x, k_v) = (self.pp / s, self.pv / s);
        let innovation = z - self.x;
        self.x += k_x * innovation;
        self.v += k_v * innovation;
        let (pp, pv) = (self.pp, self.pv);
        self.pp -= k_x * pp;
        self.pv -= k_x * pv;
        self.vv -= k_v * pv;
    }
}

/// The filter of one track.
#[derive(Clone, Copy, Debug, Default)]
pub struct BoxFilter {
    cx: Axis,
    cy: Axis,
    aspect: Axis,
    h: Axis,
}

impl BoxFilter {
    pub fn new(b: &BBox) -> Self {
        let (cx, cy, a, h) = xyah(b);
        let (sp, sv) = (2.0 * STD_POSITION * h, 10.0 * STD_VELOCITY * h);
        Self {
            cx: Axis::new(cx, sp, sv),
            cy: Axis::new(cy, sp, sv),
            aspect: Axis::new(a, STD_ASPECT, STD_ASPECT_VELOCITY),
            h: Axis::new(h, sp, sv),
        }
    }

    pub fn predict(&mut self) {
        let h = self.h.x.max(1.0);
        let (qp, qv) = (STD_POSITION * h, STD_VELOCITY * h);
        self.cx.predict(qp, qv);
        self.cy.predict(qp, qv);
        self.aspect.predict(STD_ASPECT, STD_ASPECT_VELOCITY);
        self.h.predict(qp, qv);
        // A shrinking box must not invert.
        self.h.x = self.h.x.max(1.0);
    }

    pub fn update(&mut self, b: &BBox) {
        let (cx, cy, a, h) = xyah(b);
        let r = STD_POSITION * self.h.x.max(1.0);
        self.cx.update(cx, r);
        self.cy.update(cy, r);
        self.aspect.update(a, STD_ASPECT_MEASURE);
        self.h.update(h, r);
    }

    /// The filtered box.
    pub fn bbox(&self) -> BBox {
        let h = self.h.x.max(1.0);
        let w = (self.aspect.x * h).max(1.0);
        BBox::new(
            self.cx.x - w / 2.0,
            self.cy.x - h / 2.0,
            self.cx.x + w / 2.0,
            self.cy.x + h / 2.0,
        )
    }

    /// Velocity of the centre in pixels per frame.
    /// Called for a track that missed its detection: its speed is trusted less with every frame
    /// unseen (a velocity learnt from a jittery box would otherwise carry the prediction away
    /// from a person who merely stood still behind someone) and its size stops changing.
    pub fn damp(&mut self, factor: f32) {
        self.cx.v *= factor;
        self.cy.v *= factor;
        self.h.v = 0.0;
        self.aspect.v = 0.0;
    }

    pub fn velocity(&self) -> (f32, f32) {
        (self.cx.v, self.cy.v)
    }
}

fn xyah(b: &BBox) -> (f32, f32, f32, f32) {
    let h = b.height().max(1.0);
    let c = b.center();
    (c.x, c.y, b.width() / h, h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_constant_velocity() {
        let mut f = BoxFilter::new(&BBox::new(0.0, 0.0, 40.0, 100.0));
        for i in 1..30 {
            f.predict();
            let x = 5.0 * i as f32;
            f.update(&BBox::new(x, 0.0, x + 40.0, 100.0));
        }
        let (vx, vy) = f.velocity();
        assert!((vx - 5.0).abs() < 0.3, "vx {vx}");
        assert!(vy.abs() < 0.3, "vy {vy}");
        f.predict();
        let b = f.bbox();
        assert!((b.x1 - 150.0).abs() < 3.0, "predicted x1 {}", b.x1);
        assert!((b.height() - 100.0).abs() < 2.0);
    }

    #[test]
    fn a_measurement_pulls_the_state_towards_it() {
        let mut f = BoxFilter::new(&BBox::new(0.0, 0.0, 40.0, 100.0));
        f.predict();
        f.update(&BBox::new(10.0, 0.0, 50.0, 100.0));
        let b = f.bbox();
        assert!(b.x1 > 0.0 && b.x1 <= 10.0, "x1 {}", b.x1);
    }
}
