//! The motion gate: a cheap per-camera measure of change on small grey frames, so that quiet
//! cameras (most of a village's 40, most of the night) cost no inference.
//!
//! Each frame is reduced to a 64x36-ish grey thumbnail (box-averaged, so sensor noise mostly
//! cancels); a pixel "moved" when it differs from the previous thumbnail by more than
//! `pixel_delta` grey levels, and the frame has motion when more than `min_fraction` of the
//! pixels moved. A camera without motion is still checked every `recheck` while someone was in
//! view at the last look (someone who stands still is not forgotten), and only every
//! `recheck_empty` while nobody was: on a village box most cameras are empty most of the time,
//! and their re-checks would otherwise take a third of the detector.

use std::time::{Duration, Instant};

use image::RgbImage;

const THUMB_W: u32 = 64;

#[derive(Clone, Debug)]
pub struct MotionParams {
    pub pixel_delta: u8,
    pub min_fraction: f32,
    pub recheck: Duration,
    pub recheck_empty: Duration,
}

impl Default for MotionParams {
    fn default() -> Self {
        Self {
            pixel_delta: 18,
            min_fraction: 0.002,
            recheck: Duration::from_secs(3),
            recheck_empty: Duration::from_secs(10),
        }
    }
}

/// The gate of one camera. Buffers are reused: no allocation per frame once warm.
pub struct MotionGate {
    params: MotionParams,
    prev: Vec<u8>,
    cur: Vec<u8>,
    last_pass: Option<Instant>,
    /// Fraction of changed pixels in the last frame looked at.
    pub last_fraction: f32,
    /// Whether the last frame looked at moved (as opposed to passing for the periodic check).
    pub moved: bool,
    /// Whether the detector saw someone at its last look (set by the caller): re-check sooner.
    pub occupied: bool,
}

impl MotionGate {
    pub fn new(params: MotionParams) -> Self {
        Self {
            params,
            prev: Vec::new(),
            cur: Vec::new(),
            last_pass: None,
            last_fraction: 0.0,
            moved: false,
            occupied: true,
        }
    }

    /// Should this frame go to the detector?
    pub fn pass(&mut self, img: &RgbImage, now: Instant) -> bool {
        thumbnail(img, &mut self.cur);
        let moved = if self.prev.len() == self.cur.len() && !self.prev.is_empty() {
            let changed = self
                .prev
                .iter()
                .zip(&self.cur)
                .filter(|(a, b)| a.abs_diff(**b) > self.params.pixel_delta)
                .count();
            self.last_fraction = changed as f32 / self.cur.len() as f32;
            self.last_fraction > self.params.min_fraction
        } else {
            true // first frame or a size change
        };
        self.moved = moved;
        std::mem::swap(&mut self.prev, &mut self.cur);
        let due = self.last_pass.is_none_or(|t| {
            let every = if self.occupied {
                self.params.recheck
            } else {
                self.params.recheck_empty
            };
            now.duration_since(t) >= every
        });
        if moved || due {
            self.last_pass = Some(now);
            true
        } else {
            false
        }
    }
}

/// Box-average `img` into a grey thumbnail THUMB_W wide, written into `out`.
fn thumbnail(img: &RgbImage, out: &mut Vec<u8>) {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        out.clear();
        return;
    }
    let tw = THUMB_W.min(w);
    let th = ((h as u64 * tw as u64) / w as u64).max(1) as u32;
    out.clear();
    out.resize((tw * th) as usize, 0);
    let raw = img.as_raw();
    for ty in 0..th {
        let (y0, y1) = (ty * h / th, ((ty + 1) * h / th).max(ty * h / th + 1));
        for tx in 0..tw {
            let (x0, x1) = (tx * w / tw, ((tx + 1) * w / tw).max(tx * w / tw + 1));
            // sample a 4x4 grid of the cell: enough to average noise, cheap at 40 cameras
            let mut sum = 0u32;
            let mut n = 0u32;
            for sy in 0..4 {
                let y = y0 + (y1 - y0) * sy / 4;
                for sx in 0..4 {
                    let x = x0 + (x1 - x0) * sx / 4;
                    let i = ((y * w + x) * 3) as usize;
                    // integer luma (BT.601)
                    sum += (77 * raw[i] as u32 + 150 * raw[i + 1] as u32 + 29 * raw[i + 2] as u32)
                        >> 8;
                    n += 1;
                }
            }
            out[(ty * tw + tx) as usize] = (sum / n) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scene(person_x: Option<u32>) -> RgbImage {
        let mut img = RgbImage::from_pixel(640, 360, image::Rgb([90, 100, 80]));
        if let Some(px) = person_x {
            for y in 150..330 {
                for x in px..px + 40 {
                    img.put_pixel(x, y, image::Rgb([30, 30, 40]));
                }
            }
        }
        img
    }

    #[test]
    fn a_still_scene_is_skipped_but_rechecked() {
        let mut g = MotionGate::new(MotionParams::default());
        let t0 = Instant::now();
        assert!(g.pass(&scene(None), t0));
        for i in 1..20 {
            assert!(!g.pass(&scene(None), t0 + Duration::from_millis(100 * i)));
        }
        assert!(g.pass(&scene(None), t0 + Duration::from_secs(3)));
    }

    #[test]
    fn an_empty_still_scene_is_rechecked_less_often() {
        let mut g = MotionGate::new(MotionParams::default());
        let t0 = Instant::now();
        assert!(g.pass(&scene(None), t0));
        g.occupied = false;
        assert!(!g.pass(&scene(None), t0 + Duration::from_secs(3)));
        assert!(!g.pass(&scene(None), t0 + Duration::from_secs(9)));
        assert!(g.pass(&scene(None), t0 + Duration::from_secs(10)));
        // someone seen: back to the short interval
        g.occupied = true;
        assert!(g.pass(&scene(None), t0 + Duration::from_secs(13)));
    }

    #[test]
    fn a_passer_by_passes_at_once() {
        let mut g = MotionGate::new(MotionParams::default());
        let t0 = Instant::now();
        g.pass(&scene(None), t0);
        assert!(!g.pass(&scene(None), t0 + Duration::from_millis(100)));
        assert!(g.pass(&scene(Some(100)), t0 + Duration::from_millis(200)));
        assert!(g.pass(&scene(Some(120)), t0 + Duration::from_millis(300)));
    }
}
