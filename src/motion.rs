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
//!
//! Night brings changes of the whole picture that are not motion: the camera switching between
//! colour and infrared at dusk and dawn (on every camera at once), an exposure jump, a lamp
//! that flickers. So the previous thumbnail is first matched to the new one's light (a gain and
//! an offset, fitted over the whole picture by least squares) and only what differs after that
//! counts. The match is a tone curve, not just a gain: the grey levels of the old thumbnail are
//! mapped to the new one's at the same rank (histogram matching), which explains any change
//! that keeps dark things darker than bright ones (a lamp, an exposure step, the flatter grey
//! of infrared, black clipping), while a person walking moves grey levels to other places and
//! still shows. A tone curve far from the identity is counted as a light change
//! ([`MotionGate::light_changes`]). What no curve explains but covers most of the picture at once
//! is taken as light too, once: twice running, it is something big in front of the lens.
//! Zone alerts never come from motion alone: they need a person found by the detector.

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

/// More than this fraction of the picture changing at once (after matching the light) is a
/// change of light, not people: a crowd filling the view from one frame to the next does not
/// happen, an infrared switch does.
const GLOBAL_FRACTION: f32 = 0.5;

/// While the light changes, this much of the picture must still differ to be motion.
const RELIT_FRACTION: f32 = 0.05;

/// Thumbnail levels this close to the picture's darkest or brightest are taken as clipped
/// (their detail gone; the encoder's noise keeps black from being exactly 0).
const CLIPPED: u8 = 8;

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
    /// Changes of the whole picture's light seen (infrared switch, exposure jump, flicker
    /// beyond what the gain explains).
    pub light_changes: u64,
    /// The last picture was taken as a light change.
    was_global: bool,
    /// The last picture's tone curve was far from the identity (one light change may span a
    /// few pictures: counted once).
    was_relit: bool,
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
            light_changes: 0,
            was_global: false,
            was_relit: false,
        }
    }

    /// Should this frame go to the detector?
    pub fn pass(&mut self, img: &RgbImage, now: Instant) -> bool {
        thumbnail(img, &mut self.cur);
        let moved = if self.prev.len() == self.cur.len() && !self.prev.is_empty() {
            let curve = tone_curve(&self.prev, &self.cur);
            // and back, where the old picture was clipped black or white: many new levels come
            // from that one old level, and only the way back explains them
            let back = tone_curve(&self.cur, &self.prev);
            let delta = self.params.pixel_delta;
            let (lo, hi) = (
                *self.prev.iter().min().unwrap_or(&0),
                *self.prev.iter().max().unwrap_or(&255),
            );
            // (a flat old picture has no ends to speak of: a person on a bare wall must show)
            let spread = hi.saturating_sub(lo) > 2 * delta;
            let clipped = |a: u8| {
                spread && (a <= lo.saturating_add(CLIPPED) || a >= hi.saturating_sub(CLIPPED))
            };
            let changed = self
                .prev
                .iter()
                .zip(&self.cur)
                .filter(|&(&a, &b)| {
                    curve[a as usize].abs_diff(b) > delta
                        && !(clipped(a) && back[b as usize].abs_diff(a) <= delta)
                })
                .count();
            // how far the light moved: the curve's mean distance from the identity
            let shift = self
                .prev
                .iter()
                .map(|&a| curve[a as usize].abs_diff(a) as u64)
                .sum::<u64>() as f32
                / self.prev.len() as f32;
            let relit = shift > self.params.pixel_delta as f32;
            if relit && !self.was_relit {
                self.light_changes += 1;
            }
            self.was_relit = relit;
            self.last_fraction = changed as f32 / self.cur.len() as f32;
            let global = self.last_fraction > GLOBAL_FRACTION;
            let again = std::mem::replace(&mut self.was_global, global);
            if global && !again {
                if !relit {
                    self.light_changes += 1;
                }
                false
            } else if global {
                // a light change is one picture; most of the view changing frame after frame
                // is something big moving close to the lens (or covering it): look
                true
            } else if relit {
                // the picture just changed its light (and the encoder's blocks with it): only
                // something big counts; the next picture is compared with the relit one
                self.last_fraction > RELIT_FRACTION
            } else {
                self.last_fraction > self.params.min_fraction
            }
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

/// The tone curve that best turns `prev` into `cur`: each grey level of `prev` goes to the level
/// of `cur` at the same rank (the middle of its share of the pixels), so any monotone change of
/// the light is undone and only what moved is left.
fn tone_curve(prev: &[u8], cur: &[u8]) -> [u8; 256] {
    let (mut hp, mut hc) = ([0u32; 256], [0u32; 256]);
    for (&a, &b) in prev.iter().zip(cur) {
        hp[a as usize] += 1;
        hc[b as usize] += 1;
    }
    // cumulative counts of `cur`, to find the level at a rank
    let mut cc = [0u32; 256];
    let mut run = 0;
    for (v, &n) in hc.iter().enumerate() {
        run += n;
        cc[v] = run;
    }
    let mut curve = [0u8; 256];
    let mut below = 0u32;
    let mut level = 0usize;
    for (v, &n) in hp.iter().enumerate() {
        // the middle rank of level v in `prev` (doubled, to stay in integers)
        let rank2 = 2 * below + n;
        while level < 255 && 2 * cc[level] < rank2.max(1) {
            level += 1;
        }
        curve[v] = level as u8;
        below += n;
    }
    curve
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

    /// The scene with its light changed: `gain` and `offset` on every channel.
    fn relit(img: &RgbImage, gain: f32, offset: f32) -> RgbImage {
        let mut out = img.clone();
        for v in out.iter_mut() {
            *v = (*v as f32 * gain + offset).clamp(0.0, 255.0) as u8;
        }
        out
    }

    #[test]
    fn a_flickering_lamp_or_an_exposure_jump_is_not_motion() {
        let mut g = MotionGate::new(MotionParams::default());
        let t0 = Instant::now();
        let lit = scene(Some(300));
        g.pass(&lit, t0);
        // the whole picture darker and brighter in turn, every frame, with a still person
        for i in 1..20u64 {
            let img = if i % 2 == 1 {
                relit(&lit, 0.6, -10.0)
            } else {
                lit.clone()
            };
            assert!(
                !g.pass(&img, t0 + Duration::from_millis(100 * i)),
                "frame {i}: {}",
                g.last_fraction
            );
        }
        // a passer-by in that light still passes
        assert!(g.pass(
            &relit(&scene(Some(100)), 0.6, -10.0),
            t0 + Duration::from_millis(2100)
        ));
    }

    #[test]
    fn an_infrared_switch_is_a_light_change_not_motion() {
        let mut g = MotionGate::new(MotionParams::default());
        let t0 = Instant::now();
        // colour, with some texture
        let mut colour = scene(None);
        for (x, y, p) in colour.enumerate_pixels_mut() {
            *p = image::Rgb([(x % 200) as u8, (y % 150) as u8 + 60, ((x + y) % 90) as u8]);
        }
        g.pass(&colour, t0);
        assert!(!g.pass(&colour, t0 + Duration::from_millis(100)));
        // infrared: grey, the channels weighed differently than luma does, inverted contrast in
        // places: no single gain explains it
        let mut ir = colour.clone();
        for p in ir.pixels_mut() {
            let v = (255 - p[2]).saturating_sub(p[0] / 3);
            *p = image::Rgb([v, v, v]);
        }
        assert!(!g.pass(&ir, t0 + Duration::from_millis(200)));
        assert_eq!(g.light_changes, 1);
        // the infrared picture is the new reference
        assert!(!g.pass(&ir, t0 + Duration::from_millis(300)));
    }

    #[test]
    fn most_of_the_view_changing_twice_running_is_looked_at() {
        // someone close to the lens (or covering it): not mistaken for light twice
        let mut g = MotionGate::new(MotionParams::default());
        let t0 = Instant::now();
        let mut a = scene(None);
        for (x, y, p) in a.enumerate_pixels_mut() {
            let v = ((x / 40 + y / 40) % 2 * 120 + 60) as u8;
            *p = image::Rgb([v, v, v]);
        }
        g.pass(&a, t0);
        let mut near = a.clone();
        let mut nearer = a.clone();
        for (x, _, p) in near.enumerate_pixels_mut() {
            let v = if x < 320 { 0 } else { 255 };
            *p = image::Rgb([v, v, v]);
        }
        for (_, y, p) in nearer.enumerate_pixels_mut() {
            let v = if y < 180 { 255 } else { 0 };
            *p = image::Rgb([v, v, v]);
        }
        let first = g.pass(&near, t0 + Duration::from_millis(100));
        let second = g.pass(&nearer, t0 + Duration::from_millis(200));
        assert!(second, "looked at neither (first: {first})");
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
