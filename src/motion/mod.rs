//! The motion gate: a cheap per-camera measure of change on small grey frames, so that quiet
//! cameras (most of a village's 40, most of the night) cost no inference.
//!
//! Uses (of the crate, besides its own folder): detect, geometry.
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
//!
//! Light also changes in one part of the picture: a car's headlights sweep a wall, a torch
//! passes. Its pool moves, so no tone curve explains it; but light falls off smoothly, while a
//! person has edges. So of what differs (after the tone curve, or with none, whichever leaves
//! less) only the pixels on a sharp change count ([`sharp_changes`]): the change bends hard
//! within a pixel or two of the thumbnail, both as a difference of grey levels (light added
//! onto a dark wall is smooth that way) and as a ratio (light bringing out a brick wall's
//! texture is smooth that way).
//!
//! Insects and spider webs in front of the infrared lamp make small bright blobs that jump
//! across the view from one picture to the next. A small change wakes the camera only where it
//! holds: a change of the same sign within two thumbnail pixels in the picture before
//! ([`held_changes`]), as someone walking, even far away, makes (found on the second picture
//! they move in); something big (a fortieth of the view, someone stepping in close) wakes it at
//! once. An insect landing by chance where another was a picture before can wake it for a
//! picture or two.
//!
//! In the dark the changes are small: a street at night may use a tenth of the grey levels,
//! and someone walking in it changes the picture by a tenth of what they would by day. So in a
//! dim scene the threshold follows the levels the picture spans (0.5th to 99.5th percentile of
//! the thumbnail): `pixel_delta` times the span over 255, by at most the detector's lift's
//! factor (8, `detect::light`), never under [`DARK_DELTA_FLOOR`]. Dim: even the bright end is
//! under the lift's `dark_top`, and the brightest level of the picture held still for
//! [`DIM_STEADY_PICTURES`] in a row ([`dim_gain`]); a headlight's pool, insects or rain lit by
//! the infrared lamp are bright things that come and go, and the gate judges their pictures at
//! the daylight threshold, as the rules above were made for. Daylight pictures keep
//! `pixel_delta`. Measured on copies of vtest (people walking in all of its 398 pictures; each
//! through the gate at 5 a second): motion seen in 25 of the dark copy's pictures and 1 of the
//! dim one's before, 378 and 391 after; by day 394 both; a dark or dim test card with nobody in
//! it 1 of 75 both; the headlight's sweep unchanged.
//!
//! A street at night has lamps, and one in view keeps the picture's bright end bright: as a
//! whole it is not dim, and the daylight threshold would hold everywhere (vtest dim with a lamp
//! near a corner, `scripts/night-footage ... lamp`: motion seen in 4 of 398 pictures). So a
//! night picture (mean under the lift's `dark_mean`) that is not dim as a whole is judged region
//! by region: each block of the thumbnail ([`NOISY_BLOCK`] pixels square) by the levels of the
//! block and the eight around it ([`region_levels`]), with the same rule as a whole dim picture
//! ([`dim_gain`], [`DIM_STEADY_PICTURES`]). The lamp's region, and any region something bright
//! comes into or goes out of (a headlight's pool, insects round the lamp), keep the daylight
//! threshold. Same measure: the lamp copy 4 -> 391 of 398 (TUD-Stadtmitte 2 -> 35 of 36,
//! TUD-Campus 1 -> 13 of 15); the test card with the lamp and nobody 1 of 75; every other
//! figure above unchanged.
//!
//! Rain, snow or a swarm of insects lit by the infrared lamp (or a shaking camera) change the
//! whole view, picture after picture; people change part of it. A view with changes all over
//! ([`NOISY_COVER`]), two pictures running, is noisy ([`MotionGate::noisy`]): it wakes nobody,
//! and the camera is looked at every [`NOISY_RECHECK`] instead. A picture that repeats the one
//! before (a camera or relay repeating frames to keep its rate) tells nothing: what the last
//! changing picture changed is kept across it ([`REPEAT_HOLD`]).
//!
//! Zone alerts never come from motion alone: they need a person found by the detector (the
//! rules take the detector's people only; `rules::camera` tests it).

use std::time::{Duration, Instant};

mod field;

use field::{
    IDENTITY, NOISY_BLOCK, coverage, held_changes, region_levels, sharp_changes, thumbnail,
    tone_curve,
};

use crate::detect::light::{self, Brightness, LightParams};
use crate::geometry::BBox;
use image::RgbImage;

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

/// A change this big (a fraction of the picture) is looked at at once: someone stepping into
/// view close by. Smaller ones must stay put from one picture to the next (see
/// [`held_changes`]): an insect in front of the lens jumps about.
const BIG_FRACTION: f32 = 0.025;

/// The least change (grey levels) a dark picture's threshold comes down to: the encoder's noise,
/// averaged over a thumbnail pixel, stays under it.
const DARK_DELTA_FLOOR: u8 = 2;

/// A view with changes in this share of its blocks ([`NOISY_BLOCK`] thumbnail pixels square),
/// two pictures running, is noisy ([`MotionGate::noisy`]): rain, snow or a swarm of insects lit
/// by the infrared lamp, or a shaking camera. People change part of the view: in the test
/// clips at most 0.62 of the blocks (TUD-Campus, people near the camera; vtest 0.38), heavy
/// rain 0.94 or more.
const NOISY_COVER: f32 = 0.85;

/// How long pictures that repeat the one before (see [`MotionGate::pass`]) keep what the last
/// changing picture changed: a camera or relay repeating frames to keep its rate repeats one
/// or two; longer, the scene is still.
const REPEAT_HOLD: Duration = Duration::from_millis(500);

/// How often a noisy camera is looked at: someone crossing a zone takes several seconds.
const NOISY_RECHECK: Duration = Duration::from_secs(1);

/// Pictures in a row, dim and steady to their brightest level, before the threshold comes down
/// (insects lit by the infrared lamp come and go: their brightest level seldom holds that long).
const DIM_STEADY_PICTURES: u32 = 3;

/// The detector's lift's settings, whose idea of dark the gate shares.
const LIGHT: LightParams = LightParams::DEFAULT;

/// Thumbnail levels this close to the picture's darkest or brightest are taken as clipped
/// (their detail gone; the encoder's noise keeps black from being exactly 0).
const CLIPPED: u8 = 8;

/// Per block of the thumbnail, its region's darkest and brightest level ([`region_levels`]).
type RegionLevels = Vec<(u8, u8)>;

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
    /// Whether something changed in the last frame looked at, sharp enough and large enough
    /// to be someone, even if it did not hold like a walker (`moved` says that): not worth the
    /// detector, but worth looking at every picture. A camera that decodes only its key frames
    /// sees one picture per GOP, too far apart for a walker's change to hold; it goes back to
    /// every picture on this and lets `moved` judge there.
    pub stirred: bool,
    /// Whether the last picture was judged noisy: changes all over the view, this picture and
    /// the one before ([`NOISY_COVER`]). Who walks in rain cannot be told from the rain picture
    /// by picture: such a camera is not woken by motion but looked at every [`NOISY_RECHECK`].
    pub noisy: bool,
    was_everywhere: bool,
    /// When the last picture that was not a repeat of the one before came.
    last_change: Option<Instant>,
    /// Scratch for [`coverage`].
    blocks: Vec<bool>,
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
    /// Thumbnail width (pixels).
    width: usize,
    /// What changed in the last picture, per thumbnail pixel: +1 brighter, -1 darker, 0 not
    /// (sharp changes only); and in the picture before it.
    signs: Vec<i8>,
    was_signs: Vec<i8>,
    /// Scratch: the change fields (difference, ratio), and the signs of the explanation not
    /// taken.
    fields: (Vec<i16>, Vec<i16>),
    spare: Vec<i8>,
    /// The last picture's size (pixels), and scratch for [`MotionGate::moved_boxes`].
    picture: (u32, u32),
    cells: Vec<u16>,
    stack: Vec<usize>,
    /// The last picture's brightness and brightest level (its thumbnail's), for the threshold
    /// in the dark.
    light: Option<(Brightness, u8)>,
    /// Pictures in a row that were dim and steady to their brightest level ([`dim_gain`]).
    dim_run: u32,
    /// A night picture with a lamp in it, region by region (see the module's notes): each
    /// block's region's darkest and brightest level, this picture's and the last one's
    /// ([`region_levels`]; the third is scratch), how many pictures in a row the region was
    /// dim and steady, and the threshold that gives the block's pixels.
    regions: (RegionLevels, RegionLevels, RegionLevels),
    region_runs: Vec<u32>,
    region_deltas: Vec<u8>,
    /// Each thumbnail pixel's threshold for this picture.
    deltas: Vec<u8>,
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
            stirred: false,
            noisy: false,
            was_everywhere: false,
            last_change: None,
            blocks: Vec::new(),
            occupied: true,
            light_changes: 0,
            was_global: false,
            was_relit: false,
            width: 0,
            signs: Vec::new(),
            was_signs: Vec::new(),
            fields: (Vec::new(), Vec::new()),
            spare: Vec::new(),
            picture: (0, 0),
            cells: Vec::new(),
            stack: Vec::new(),
            light: None,
            dim_run: 0,
            regions: (Vec::new(), Vec::new(), Vec::new()),
            region_runs: Vec::new(),
            region_deltas: Vec::new(),
            deltas: Vec::new(),
        }
    }

    /// Should this frame go to the detector?
    pub fn pass(&mut self, img: &RgbImage, now: Instant) -> bool {
        let width = thumbnail(img, &mut self.cur);
        // in a dim scene the threshold comes down with the levels the picture spans (see the
        // module's notes)
        let light = (
            light::measure_levels(&self.cur),
            self.cur.iter().copied().max().unwrap_or(0),
        );
        let gain = match self.light.and_then(|was| dim_gain(was, light)) {
            Some(g) => {
                self.dim_run = self.dim_run.saturating_add(1);
                if self.dim_run >= DIM_STEADY_PICTURES {
                    g
                } else {
                    1.0
                }
            }
            None => {
                self.dim_run = 0;
                1.0
            }
        };
        self.light = Some(light);
        let delta = ((self.params.pixel_delta as f32 / gain).round() as u8).max(DARK_DELTA_FLOOR);
        let lamps = self.dim_run < DIM_STEADY_PICTURES && light.0.mean < LIGHT.dark_mean;
        self.region_thresholds(width, delta, lamps);
        let repeat = width == self.width
            && self.prev.len() == self.cur.len()
            && !self.prev.is_empty()
            && self
                .prev
                .iter()
                .zip(&self.cur)
                .all(|(a, b)| a.abs_diff(*b) <= DARK_DELTA_FLOOR);
        if repeat {
            // the same picture again, give or take the encoder (a camera or a relay repeating
            // frames to keep its rate; the simulator does, serving a 10 fps clip at 15), or a
            // scene with nothing moving: no change the gate could count at any threshold. What
            // the last changing picture changed is kept for the next one, or a walker's change
            // would never be seen to hold across a repeat, nor rain to go on; for a moment
            // only: repeats for longer are a still scene, and what changed before is forgotten
            self.was_relit = false;
            self.moved = false;
            self.stirred = false;
            if self
                .last_change
                .is_none_or(|t| now.saturating_duration_since(t) > REPEAT_HOLD)
            {
                self.noisy = false;
                self.was_everywhere = false;
                self.was_signs.iter_mut().for_each(|s| *s = 0);
            }
            return self.due(now, false);
        }
        self.last_change = Some(now);
        self.pixel_thresholds(width, delta);
        self.picture = img.dimensions();
        let same_size = width == self.width && self.was_signs.len() == self.cur.len();
        self.width = width;
        let moved = if same_size && self.prev.len() == self.cur.len() && !self.prev.is_empty() {
            let curve = tone_curve(&self.prev, &self.cur);
            // and back, where the old picture was clipped black or white: many new levels come
            // from that one old level, and only the way back explains them
            let back = tone_curve(&self.cur, &self.prev);
            let (lo, hi) = (
                *self.prev.iter().min().unwrap_or(&0),
                *self.prev.iter().max().unwrap_or(&255),
            );
            // (a flat old picture has no ends to speak of: a person on a bare wall must show)
            let spread = hi.saturating_sub(lo) > 2 * delta;
            // A change is explained by clipping when the old level was clipped (within CLIPPED
            // of the old picture's darkest or brightest), the new one came out of the clip
            // (brighter than the curve says from black, darker from white: detail the old
            // picture could not show) and the way back explains it. A walker darker than a dark
            // street is no detail out of the black: at night, beside a lamp, a whole street
            // lies near the picture's darkest level.
            let clipped = |a: u8, b: u8, d: u8| {
                let c = curve[a as usize];
                spread
                    && ((a <= lo.saturating_add(CLIPPED) && b > c)
                        || (a >= hi.saturating_sub(CLIPPED) && b < c))
                    && back[b as usize].abs_diff(a) <= d
            };
            let raw = self
                .prev
                .iter()
                .zip(&self.cur)
                .zip(&self.deltas)
                .filter(|&((&a, &b), &d)| curve[a as usize].abs_diff(b) > d && !clipped(a, b, d))
                .count();
            // how far the light moved: the curve's mean distance from the identity
            let shift = self
                .prev
                .iter()
                .map(|&a| curve[a as usize].abs_diff(a) as u64)
                .sum::<u64>() as f32
                / self.prev.len() as f32;
            let relit = shift > delta as f32;
            if relit && !self.was_relit {
                self.light_changes += 1;
            }
            self.was_relit = relit;
            // What is left once the light is explained, as sharp changes only (see
            // `sharp_changes`): explained by the tone curve (a change of the whole picture's
            // light) or by nothing (a local light, such as a headlight's pool, moving on a
            // picture whose other levels stay put); whichever leaves less.
            let w = self.width;
            let by_curve = sharp_changes(
                &self.prev,
                &self.cur,
                w,
                &curve,
                |a, b, d| !clipped(a, b, d),
                &self.deltas,
                &mut self.fields,
                &mut self.spare,
            );
            let by_nothing = sharp_changes(
                &self.prev,
                &self.cur,
                w,
                &IDENTITY,
                |_, _, _| true,
                &self.deltas,
                &mut self.fields,
                &mut self.signs,
            );
            let changed = if by_curve < by_nothing {
                std::mem::swap(&mut self.signs, &mut self.spare);
                by_curve
            } else {
                by_nothing
            };
            let held = held_changes(&self.signs, &self.was_signs, w);
            let n = self.cur.len() as f32;
            self.last_fraction = changed as f32 / n;
            let held_fraction = held as f32 / n;
            // changes all over the view, this picture and the last: the weather, not people
            let everywhere = coverage(&self.signs, w, &mut self.blocks) >= NOISY_COVER;
            let noisy = std::mem::replace(&mut self.was_everywhere, everywhere) && everywhere;
            let global = raw as f32 / n > GLOBAL_FRACTION;
            self.stirred = !global && !relit && 2.0 * self.last_fraction > self.params.min_fraction;
            let again = std::mem::replace(&mut self.was_global, global);
            // (a noisy picture still stirs: the camera keeps decoding every picture, so that its
            // looks come every NOISY_RECHECK and not only on key frames, seconds apart)
            self.noisy = noisy && !global && !relit;
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
            } else if self.noisy {
                // rain, snow or a swarm lit by the lamp: looked at every NOISY_RECHECK instead
                // (below)
                false
            } else {
                // something big at once (someone stepping in), or something that stays where
                // it was: a small change that jumps about from picture to picture is an insect
                // in front of the lens (or a raindrop), not someone far away, who moves little
                // (half the usual share suffices: a dim walker at night changes few pixels; and
                // a quarter of the change must hold: insects crossing each other's paths by
                // chance hold a few pixels of many)
                self.last_fraction > BIG_FRACTION
                    || (2.0 * held_fraction > self.params.min_fraction && 4 * held >= changed)
            }
        } else {
            self.signs.clear();
            self.signs.resize(self.cur.len(), 0);
            true // first frame or a size change
        };
        if self.was_global {
            // a light change leaves changes everywhere: none of them is a place that moved
            self.signs.iter_mut().for_each(|s| *s = 0);
        }
        std::mem::swap(&mut self.signs, &mut self.was_signs);
        self.moved = moved;
        self.stirred |= moved;
        std::mem::swap(&mut self.prev, &mut self.cur);
        self.due(now, moved)
    }

    /// The threshold of each block of the thumbnail (`width` wide, in `self.cur`): `delta`, the
    /// picture's, unless this is a night picture with something bright in it (`lamps`): then a
    /// block whose region is dim and steady to its brightest level, [`DIM_STEADY_PICTURES`] in a
    /// row, gets the threshold its region's levels give ([`dim_gain`] on the region's darkest
    /// and brightest level), as a dim picture does as a whole.
    fn region_thresholds(&mut self, width: usize, delta: u8, lamps: bool) {
        let (now, was, scratch) = &mut self.regions;
        self.region_deltas.clear();
        if !lamps {
            // (by day, or a picture dim as a whole: one threshold, and the regions start
            // afresh when a lamp's night comes)
            now.clear();
            return;
        }
        std::mem::swap(now, was);
        region_levels(&self.cur, width, scratch, now);
        let comparable = was.len() == now.len() && width == self.width;
        if !comparable {
            self.region_runs.clear();
        }
        self.region_runs.resize(now.len(), 0);
        let as_light = |(lo, hi): (u8, u8)| {
            let b = Brightness {
                mean: 0.0,
                low: lo as f32,
                high: hi as f32,
            };
            (b, hi)
        };
        for (b, &r) in now.iter().enumerate() {
            let gain = comparable
                .then(|| dim_gain(as_light(was[b]), as_light(r)))
                .flatten();
            let run = &mut self.region_runs[b];
            *run = if gain.is_some() {
                run.saturating_add(1)
            } else {
                0
            };
            self.region_deltas.push(match gain {
                Some(g) if *run >= DIM_STEADY_PICTURES => ((self.params.pixel_delta as f32 / g)
                    .round() as u8)
                    .clamp(DARK_DELTA_FLOOR, delta),
                _ => delta,
            });
        }
    }

    /// Each thumbnail pixel's threshold: its block's ([`MotionGate::region_thresholds`]), or
    /// `delta` everywhere when the picture was not judged by regions.
    fn pixel_thresholds(&mut self, width: usize, delta: u8) {
        self.deltas.clear();
        if width == 0 || self.region_deltas.is_empty() {
            self.deltas.resize(self.cur.len(), delta);
            return;
        }
        let bw = width.div_ceil(NOISY_BLOCK);
        let blocks = &self.region_deltas;
        self.deltas.extend(
            (0..self.cur.len())
                .map(|i| blocks[(i / width / NOISY_BLOCK) * bw + (i % width) / NOISY_BLOCK]),
        );
    }

    /// Whether a picture that `moved` (or not) goes to the detector now: when it moved, or when
    /// the camera's re-check is due.
    fn due(&mut self, now: Instant, moved: bool) -> bool {
        let due = self.last_pass.is_none_or(|t| {
            let every = if self.noisy {
                NOISY_RECHECK.min(self.params.recheck)
            } else if self.occupied {
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

    /// Where the last picture changed, as boxes in its pixels (added to `out`): clusters of the
    /// sharp changes the gate saw (none after a change of the whole picture's light). The
    /// thumbnail is cut into cells of 2x2 of its pixels, a cell with a change is *on*, and cells
    /// that touch or are one cell apart make one cluster (a walker of plain clothes changes at
    /// his two edges only); a cluster of a single changed pixel is noise.
    /// What regions the detector searches on an area camera (`detect::region`).
    pub fn moved_boxes(&mut self, out: &mut Vec<BBox>) {
        const CELL: usize = 2;
        let (tw, signs) = (self.width, &self.was_signs);
        if tw == 0 || signs.is_empty() || self.picture.0 == 0 {
            return;
        }
        let th = signs.len() / tw;
        let (cw, ch) = (tw.div_ceil(CELL), th.div_ceil(CELL));
        // per cell: changed pixels in it, then 0 once taken into a cluster
        self.cells.clear();
        self.cells.resize(cw * ch, 0);
        for (i, &v) in signs.iter().enumerate() {
            if v != 0 {
                self.cells[(i / tw / CELL) * cw + (i % tw) / CELL] += 1;
            }
        }
        let (sx, sy) = (
            self.picture.0 as f32 / tw as f32,
            self.picture.1 as f32 / th.max(1) as f32,
        );
        for start in 0..self.cells.len() {
            if self.cells[start] == 0 {
                continue;
            }
            let (mut x1, mut y1, mut x2, mut y2) = (cw, ch, 0, 0);
            let mut changed = 0u32;
            self.stack.clear();
            self.stack.push(start);
            changed += self.cells[start] as u32;
            self.cells[start] = 0;
            while let Some(c) = self.stack.pop() {
                let (x, y) = (c % cw, c / cw);
                (x1, y1, x2, y2) = (x1.min(x), y1.min(y), x2.max(x), y2.max(y));
                for ny in y.saturating_sub(2)..(y + 3).min(ch) {
                    for nx in x.saturating_sub(2)..(x + 3).min(cw) {
                        let n = ny * cw + nx;
                        if self.cells[n] != 0 {
                            changed += self.cells[n] as u32;
                            self.cells[n] = 0;
                            self.stack.push(n);
                        }
                    }
                }
            }
            if changed >= 2 {
                out.push(BBox::new(
                    (x1 * CELL) as f32 * sx,
                    (y1 * CELL) as f32 * sy,
                    (((x2 + 1) * CELL).min(tw)) as f32 * sx,
                    (((y2 + 1) * CELL).min(th)) as f32 * sy,
                ));
            }
        }
    }
}

/// How far the threshold could come down between two pictures of a dim scene (each picture's
/// brightness and brightest level): 255 over the levels they span (0.5th to 99.5th
/// percentile), at most the detector's lift's `max_gain`, when both are dim to their bright end
/// (under the lift's `dark_top`) and their brightest level held still (within a quarter of the
/// span, or [`DARK_DELTA_FLOOR`] levels). `None`: daylight, or something bright came, went or
/// changed (a headlight's pool, an insect or raindrops lit by the infrared lamp), whose changes
/// are far beyond what a walker in that scene makes. The gate uses it only after
/// [`DIM_STEADY_PICTURES`] such pictures in a row.
fn dim_gain((was, was_top): (Brightness, u8), (now, now_top): (Brightness, u8)) -> Option<f32> {
    let lift = LIGHT;
    let span = |b: &Brightness| (b.high - b.low).max(1.0);
    let reach = (span(&now).min(span(&was)) / 4.0).max(DARK_DELTA_FLOOR as f32);
    let steady = (now_top as f32 - was_top as f32).abs() <= reach;
    if was.high >= lift.dark_top || now.high >= lift.dark_top || !steady {
        return None;
    }
    Some((255.0 / span(&now).max(span(&was))).clamp(1.0, lift.max_gain))
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

    /// `img` with every level times `gain` (a camera short of light) and the sensor's noise:
    /// up to `noise` levels either way, drawn anew for each `picture`.
    fn dimmed(img: &RgbImage, gain: f32, noise: u32, picture: u32) -> RgbImage {
        let mut out = relit(img, gain, 0.0);
        for (i, v) in out.iter_mut().enumerate() {
            // a cheap hash of the pixel and the picture: noise that does not repeat
            let h = (i as u32 ^ picture.wrapping_mul(0x9e37_79b9)).wrapping_mul(0x85eb_ca6b);
            let n = (h >> 16) % (2 * noise + 1);
            *v = (*v as i32 + n as i32 - noise as i32).clamp(0, 255) as u8;
        }
        out
    }

    /// A walker in a street made by `picture(walker's x, picture number)`: nine pictures of the
    /// empty street (its noise must not wake the camera), then four with the walker stepping
    /// along (at least three must).
    fn the_walker_wakes_the_camera_and_the_noise_does_not(
        picture: impl Fn(Option<u32>, u32) -> RgbImage,
    ) {
        let t0 = Instant::now();
        let at = |i: u64| t0 + Duration::from_millis(200 * i);
        let mut g = MotionGate::new(MotionParams::default());
        g.pass(&picture(None, 0), at(0));
        g.occupied = false;
        for i in 1..10 {
            assert!(
                !g.pass(&picture(None, i as u32), at(i)),
                "noise woke the camera at picture {i}"
            );
        }
        let mut woke = Vec::new();
        for i in 10..14u32 {
            let x = 100 + 10 * (i - 10);
            woke.push(g.pass(&picture(Some(x), i), at(i as u64)));
        }
        assert!(woke.iter().filter(|&&w| w).count() >= 3, "{woke:?}");
    }

    #[test]
    fn a_walker_in_a_dim_street_wakes_the_camera_and_the_noise_does_not() {
        // the scene at a tenth of its light (mean luma 10): the walker changes it by 6 levels,
        // a third of the daylight threshold, and still counts; the sensor's noise (2 levels
        // either way, new in every picture) does not
        the_walker_wakes_the_camera_and_the_noise_does_not(|x, i| dimmed(&scene(x), 0.1, 2, i));
    }

    #[test]
    fn a_walker_in_the_dark_beside_a_lamp_wakes_the_camera_and_the_noise_does_not() {
        // the same dim street with a lamp in view (a bright disc in a corner, 1.5% of the view):
        // the picture's bright end is the lamp's, so it is not dim as a whole; the walker, in
        // the dark part, still counts by his region's threshold, and the noise still does not
        the_walker_wakes_the_camera_and_the_noise_does_not(|x, i| {
            with_lamp(dimmed(&scene(x), 0.1, 2, i))
        });
    }

    /// `img` with a lamp in view: a bright disc in the top right corner (1.5% of the view).
    fn with_lamp(mut img: RgbImage) -> RgbImage {
        for (px, py, p) in img.enumerate_pixels_mut() {
            let (dx, dy) = (px as f32 - 590.0, py as f32 - 40.0);
            if dx * dx + dy * dy < 34.0 * 34.0 {
                *p = image::Rgb([250, 245, 230]);
            }
        }
        img
    }

    #[test]
    fn a_walker_is_boxed_where_he_moved_and_nothing_else_is() {
        let mut g = MotionGate::new(MotionParams::default());
        let t0 = Instant::now();
        let mut boxes = Vec::new();
        g.pass(&scene(None), t0);
        g.pass(&scene(None), t0 + Duration::from_millis(100));
        g.moved_boxes(&mut boxes);
        assert!(boxes.is_empty(), "a still scene has no motion: {boxes:?}");
        g.pass(&scene(Some(400)), t0 + Duration::from_millis(200));
        g.pass(&scene(Some(420)), t0 + Duration::from_millis(300));
        g.moved_boxes(&mut boxes);
        assert_eq!(boxes.len(), 1, "{boxes:?}");
        let b = boxes[0];
        // the walker (400..460 over both pictures, rows 150..330), give or take a thumbnail cell
        assert!(b.x1 >= 380.0 && b.x2 <= 480.0, "{b:?}");
        assert!(b.y1 >= 130.0 && b.y1 <= 200.0 && b.y2 >= 300.0, "{b:?}");
    }

    /// A dark brick wall at night (bricks 14, mortar 6 of 255).
    fn wall() -> RgbImage {
        RgbImage::from_fn(640, 360, |x, y| {
            let row = y / 20;
            let shift = if row % 2 == 0 { 0 } else { 20 };
            let mortar = y % 20 < 2 || (x + shift) % 40 < 2;
            let v = if mortar { 6 } else { 14 };
            image::Rgb([v, v, v])
        })
    }

    /// `img` with a pool of light centred at (cx, cy): full within `r` pixels, falling off
    /// smoothly over the next 80; added (`gain` = None: `amount` grey levels) or multiplying
    /// what is there (`1 + gain`).
    fn pool(
        img: &RgbImage,
        (cx, cy): (f32, f32),
        r: f32,
        amount: f32,
        gain: Option<f32>,
    ) -> RgbImage {
        let mut out = img.clone();
        for (x, y, p) in out.enumerate_pixels_mut() {
            let dist = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
            let t = ((r + 80.0 - dist) / 80.0).clamp(0.0, 1.0);
            let w = t * t * (3.0 - 2.0 * t);
            for c in p.0.iter_mut() {
                let v = *c as f32;
                *c = match gain {
                    None => v + amount * w,
                    Some(g) => v * (1.0 + g * w),
                }
                .clamp(0.0, 255.0) as u8;
            }
        }
        out
    }

    #[test]
    fn a_headlight_sweeping_a_dark_wall_is_not_motion() {
        // a car's lights crossing the wall, 100 px per picture (a third of the view in a
        // second at 5 pictures a second), as added light and as light bringing out the bricks,
        // in pools of several sizes
        for (r, gain) in [
            (40.0, None),
            (90.0, None),
            (60.0, Some(12.0)),
            (120.0, Some(8.0)),
        ] {
            let mut g = MotionGate::new(MotionParams::default());
            let t0 = Instant::now();
            let dark = wall();
            g.pass(&dark, t0);
            g.occupied = false;
            for i in 1..20u64 {
                let x = -150.0 + 100.0 * i as f32;
                let img = pool(&dark, (x, 150.0 + 3.0 * i as f32), r, 170.0, gain);
                assert!(
                    !g.pass(&img, t0 + Duration::from_millis(100 * i)),
                    "pool {r} {gain:?}, picture {i}: {}",
                    g.last_fraction
                );
            }
        }
    }

    /// A dark street under infrared: grey, a lit pavement in the lower half.
    fn ir_street() -> RgbImage {
        RgbImage::from_fn(640, 360, |x, y| {
            let v = if y > 200 {
                70 + (x / 80 % 2) as u8 * 10
            } else {
                25
            };
            image::Rgb([v, v, v])
        })
    }

    /// `img` with a bright out-of-focus blob of radius `r` at (cx, cy) (an insect lit by the
    /// infrared lamp).
    fn insect(img: &mut RgbImage, (cx, cy): (f32, f32), r: f32) {
        for (x, y, p) in img.enumerate_pixels_mut() {
            let dist = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
            if dist < r * 1.5 {
                let w = (1.0 - dist / (r * 1.5)).clamp(0.0, 1.0);
                for c in p.0.iter_mut() {
                    *c = (*c as f32 + 200.0 * w.sqrt()).min(255.0) as u8;
                }
            }
        }
    }

    #[test]
    fn insects_near_the_lens_wake_no_camera() {
        insects_wake_no_camera(ir_street());
    }

    #[test]
    fn insects_in_a_dim_street_with_a_lamp_wake_no_camera() {
        // the dim street beside a lamp, judged region by region at a far lower threshold than
        // by day: insects still do not hold from one picture to the next as a walker does
        insects_wake_no_camera(with_lamp(dimmed(&scene(None), 0.1, 0, 0)));
    }

    /// One to three insects, from a few pixels to about 1% of the view (glow included),
    /// somewhere else in every picture of `street` (they cross the view in a picture or two):
    /// at most two looks in 39 pictures.
    fn insects_wake_no_camera(street: RgbImage) {
        let mut seed = 7u32;
        let mut next = move |n: u32| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (seed >> 16) % n
        };
        let mut g = MotionGate::new(MotionParams::default());
        let t0 = Instant::now();
        g.pass(&street, t0);
        g.occupied = false;
        let mut last = [(0.0f32, 0.0f32); 3];
        let mut woke = Vec::new();
        for i in 1..40u64 {
            let mut img = street.clone();
            let many = 1 + (i % 3) as usize;
            for (k, at) in last.iter_mut().enumerate().take(many) {
                // far from where it was (an insect close to the lens crosses the view fast)
                let mut p;
                loop {
                    p = (next(640) as f32, next(360) as f32);
                    if (p.0 - at.0).abs() + (p.1 - at.1).abs() > 150.0 {
                        break;
                    }
                }
                *at = p;
                insect(&mut img, p, [3.0, 8.0, 16.0][(k + i as usize) % 3]);
            }
            // all within the empty camera's re-check interval: only motion could pass these
            if g.pass(&img, t0 + Duration::from_millis(200 * i)) {
                woke.push(i);
            }
        }
        // an insect landing just where another was a picture before holds by chance (here
        // twice in 39): a look or two, not a camera kept awake
        assert!(
            woke.len() <= 2,
            "insects woke the camera at pictures {woke:?}"
        );
    }

    #[test]
    fn rain_lit_by_the_lamp_wakes_no_camera_but_it_is_looked_at_every_second() {
        // heavy rain in front of the infrared lamp: 300 thin bright streaks (2 x 18 px) all over
        // the view, new in every picture, 5 pictures a second
        let mut seed = 7u32;
        let mut next = |n: u32| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (seed >> 16) % n
        };
        let street = ir_street();
        let mut g = MotionGate::new(MotionParams::default());
        let t0 = Instant::now();
        g.pass(&street, t0);
        g.occupied = false;
        let (mut moved, mut looked) = (0, 0);
        for i in 1..=50u64 {
            let mut img = street.clone();
            for _ in 0..300 {
                let (x0, y0) = (next(638), next(342));
                for y in y0..y0 + 18 {
                    for x in x0..x0 + 2 {
                        let p = img.get_pixel_mut(x, y);
                        p.0 = p.0.map(|v| v.saturating_add(150));
                    }
                }
            }
            let pass = g.pass(&img, t0 + Duration::from_millis(200 * i));
            // the first two pictures of rain are judged as any others (it takes two running)
            if i > 2 {
                moved += g.moved as u32;
                looked += pass as u32;
                assert!(g.noisy, "picture {i}: rain not seen as such");
            }
        }
        assert_eq!(moved, 0, "rain woke the camera");
        // 48 pictures over 9.6 s: looked at about once a second, not five times
        assert!((8..=11).contains(&looked), "looked at {looked} times");
        // and when the rain stops, the gate judges motion again
        g.pass(&street, t0 + Duration::from_millis(10_400));
        g.pass(&street, t0 + Duration::from_millis(10_600));
        assert!(!g.noisy);
    }

    #[test]
    fn a_small_walker_far_away_wakes_the_camera() {
        // someone 40 px tall (far down the street), lit by the infrared lamp, walking 4 px per
        // picture: found from the second picture they move in (a small change must hold)
        let mut g = MotionGate::new(MotionParams::default());
        let t0 = Instant::now();
        let street = ir_street();
        g.pass(&street, t0);
        g.occupied = false;
        assert!(!g.pass(&street, t0 + Duration::from_millis(200)));
        let walker = |x0: u32| {
            let mut img = street.clone();
            for y in 180..220 {
                for x in x0..x0 + 14 {
                    // head lighter than the coat
                    let v = if y < 188 { 150 } else { 120 };
                    img.put_pixel(x, y, image::Rgb([v, v, v]));
                }
            }
            img
        };
        let mut woke = Vec::new();
        for i in 0..6u32 {
            woke.push(g.pass(
                &walker(300 + 4 * i),
                t0 + Duration::from_millis(400 + 200 * i as u64),
            ));
        }
        // from the second picture on (a picture now and then shows too little of a step this
        // small: once found, the detector's re-checks follow the walker anyway)
        assert!(
            woke[1] && woke.iter().filter(|&&w| w).count() >= 4,
            "the walker woke the camera at {woke:?}"
        );
        // the same walk with every picture sent twice (a camera or relay repeating frames):
        // the repeats tell nothing and the walker is found as before
        let mut g = MotionGate::new(MotionParams::default());
        g.pass(&street, t0);
        g.occupied = false;
        assert!(!g.pass(&street, t0 + Duration::from_millis(200)));
        let mut woke = Vec::new();
        for i in 0..6u32 {
            let at = t0 + Duration::from_millis(400 + 200 * i as u64);
            woke.push(g.pass(&walker(300 + 4 * i), at));
            assert!(!g.pass(&walker(300 + 4 * i), at + Duration::from_millis(100)));
        }
        assert!(
            woke[1] && woke.iter().filter(|&&w| w).count() >= 4,
            "with repeats, the walker woke the camera at {woke:?}"
        );
    }
}
