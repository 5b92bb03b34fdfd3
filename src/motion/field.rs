//! The picture's fields the motion gate works on, pure: the grey thumbnail, the tone curve
//! that matches one thumbnail's light to another's, the sharp changes between two, whether they
//! hold from one picture to the next, and how much of the view they cover. Why each is as it is:
//! the gate's notes (`motion`).

use image::RgbImage;

/// The thumbnail's width (pixels).
const THUMB_W: u32 = 64;

/// The blocks (thumbnail pixels square) [`coverage`] counts.
pub(super) const NOISY_BLOCK: usize = 8;

/// The tone curve that changes nothing.
pub(super) const IDENTITY: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = i as u8;
        i += 1;
    }
    t
};

/// Mark in `signs` (+1 brighter, -1 darker, 0 not) the thumbnail pixels of `cur` that differ
/// from `prev` seen through `map` by more than their threshold in `deltas` (where `keep`, given
/// the two levels and the threshold, says the difference is not explained otherwise) and that
/// lie on a sharp change; their number. `fields` is scratch.
///
/// Sharp: light falls off smoothly (a headlight's pool, a lamp's cone, the soft edge of an
/// out-of-focus insect), so the change it makes bends gently; a person has edges, and the
/// change they make bends hard within a pixel or two of the thumbnail. Light adds to what is
/// there (a pool on a dark wall) or multiplies it (the same pool bringing out the wall's
/// bricks): the first is smooth as a difference of grey levels, the second as a ratio. So a
/// change counts only where it bends hard both ways: as a difference and as a ratio (a
/// difference of logarithms). Bending hard: see [`bends`], somewhere in the pixel's 3x3
/// neighbourhood.
#[allow(clippy::too_many_arguments)]
pub(super) fn sharp_changes(
    prev: &[u8],
    cur: &[u8],
    w: usize,
    map: &[u8; 256],
    keep: impl Fn(u8, u8, u8) -> bool,
    deltas: &[u8],
    fields: &mut (Vec<i16>, Vec<i16>),
    signs: &mut Vec<i8>,
) -> usize {
    let (diff, ratio) = fields;
    diff.clear();
    diff.extend(
        prev.iter()
            .zip(cur)
            .map(|(&a, &b)| b as i16 - map[a as usize] as i16),
    );
    ratio.clear();
    ratio.extend(
        prev.iter()
            .zip(cur)
            .map(|(&a, &b)| LOG[b as usize] as i16 - LOG[map[a as usize] as usize] as i16),
    );
    signs.clear();
    signs.resize(cur.len(), 0);
    if w == 0 {
        return 0;
    }
    let h = cur.len() / w;
    let mut count = 0;
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let (d, delta) = (diff[i], deltas[i]);
            if d.unsigned_abs() <= delta as u16 || !keep(prev[i], cur[i], delta) {
                continue;
            }
            let near = |f: &[i16]| {
                (y.saturating_sub(1)..=(y + 1).min(h - 1)).any(|yy| {
                    (x.saturating_sub(1)..=(x + 1).min(w - 1))
                        .any(|xx| bends(f, w, h, xx, yy, delta))
                })
            };
            if near(diff) && near(ratio) {
                signs[i] = d.signum() as i8;
                count += 1;
            }
        }
    }
    count
}

/// Whether the change field `f` (`w` wide, `h` high) bends hard at (x, y), edges repeated: its
/// Laplacian above `floor`, at least half the largest change in the 3x3 neighbourhood (the
/// change does not just ride on a broad swell), and at least 3/8 of the Laplacian taken over
/// neighbours two pixels away (a smooth swell's grows fourfold with twice the reach, an edge's
/// stays as it is: this tells the soft rim of a pool of light, a few pixels wide, from the
/// edge of a person, one or two).
fn bends(f: &[i16], w: usize, h: usize, x: usize, y: usize, floor: u8) -> bool {
    let at = |x: usize, y: usize| f[y * w + x] as i32;
    let lap = |r: usize| {
        (at(x.saturating_sub(r), y)
            + at((x + r).min(w - 1), y)
            + at(x, y.saturating_sub(r))
            + at(x, (y + r).min(h - 1))
            - 4 * at(x, y))
        .abs()
    };
    let near = lap(1);
    if near <= floor as i32 || 8 * near < 3 * lap(2) {
        return false;
    }
    let mut most = 0i32;
    for yy in y.saturating_sub(1)..=(y + 1).min(h - 1) {
        for xx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
            most = most.max(at(xx, yy).abs());
        }
    }
    2 * near >= most
}

/// Per block of the thumbnail ([`NOISY_BLOCK`] pixels square, `w` wide), the darkest and the
/// brightest level of its region: the block and the eight around it (a square of 24 thumbnail
/// pixels, room for someone and what is around them). Into `out`, one pair a block, row by row.
/// `scratch` holds each block's own pair.
pub(super) fn region_levels(
    cur: &[u8],
    w: usize,
    scratch: &mut Vec<(u8, u8)>,
    out: &mut Vec<(u8, u8)>,
) {
    out.clear();
    if w == 0 || cur.is_empty() {
        return;
    }
    let h = cur.len() / w;
    let (bw, bh) = (w.div_ceil(NOISY_BLOCK), h.div_ceil(NOISY_BLOCK));
    scratch.clear();
    scratch.resize(bw * bh, (u8::MAX, 0));
    for (i, &v) in cur.iter().enumerate() {
        let b = &mut scratch[(i / w / NOISY_BLOCK) * bw + (i % w) / NOISY_BLOCK];
        *b = (b.0.min(v), b.1.max(v));
    }
    for by in 0..bh {
        for bx in 0..bw {
            let mut r = (u8::MAX, 0u8);
            for y in by.saturating_sub(1)..=(by + 1).min(bh - 1) {
                for x in bx.saturating_sub(1)..=(bx + 1).min(bw - 1) {
                    let (lo, hi) = scratch[y * bw + x];
                    r = (r.0.min(lo), r.1.max(hi));
                }
            }
            out.push(r);
        }
    }
}

/// Grey level to a logarithmic scale of like range (46 ln((v + 16) / 16): 0 to 130), for
/// changes as ratios; the 16 keeps the sensor's noise in the black from making huge ratios.
const LOG: [u8; 256] = {
    // no ln in a const: level v maps to the largest k with 16 (e^(k/46) - 1) <= v, the powers
    // of e^(1/46) made by repeated multiplication in fixed point (x 2^20)
    let mut t = [0u8; 256];
    let mut k = 0u32;
    let step: u64 = 1_071_621; // e^(1/46) * 2^20, rounded
    let mut e: u64 = 1 << 20; // e^(k/46) * 2^20
    let mut v = 0usize;
    while v < 256 {
        // advance k while the next threshold is still <= v
        while 16 * (((e * step) >> 20) - (1 << 20)) <= (v as u64) << 20 {
            e = (e * step) >> 20;
            k += 1;
        }
        t[v] = k as u8;
        v += 1;
    }
    t
};

/// How far (thumbnail pixels) a change may be from a like change in the picture before to be
/// the same thing moving: someone walking moves well under a thumbnail pixel per analysed
/// picture far away, one or two close by; an insect near the lens jumps across the view.
const HELD_REACH: usize = 2;

/// The changes in `signs` with a change of the same sign within [`HELD_REACH`] in `before`.
pub(super) fn held_changes(signs: &[i8], before: &[i8], w: usize) -> usize {
    if w == 0 || before.len() != signs.len() {
        return 0;
    }
    let h = signs.len() / w;
    let mut held = 0;
    for y in 0..h {
        for x in 0..w {
            let s = signs[y * w + x];
            if s == 0 {
                continue;
            }
            let ys = y.saturating_sub(HELD_REACH)..=(y + HELD_REACH).min(h - 1);
            if ys.into_iter().any(|yy| {
                (x.saturating_sub(HELD_REACH)..=(x + HELD_REACH).min(w - 1))
                    .any(|xx| before[yy * w + xx] == s)
            }) {
                held += 1;
            }
        }
    }
    held
}

/// The share of the view's blocks ([`NOISY_BLOCK`] thumbnail pixels square) with a change in
/// `signs` (`w` wide).
/// `hit` is scratch (one flag a block; its room reused).
pub(super) fn coverage(signs: &[i8], w: usize, hit: &mut Vec<bool>) -> f32 {
    if w == 0 || signs.is_empty() {
        return 0.0;
    }
    let h = signs.len() / w;
    let (bw, bh) = (w.div_ceil(NOISY_BLOCK), h.div_ceil(NOISY_BLOCK));
    hit.clear();
    hit.resize(bw * bh, false);
    for (i, _) in signs.iter().enumerate().filter(|&(_, &s)| s != 0) {
        hit[(i / w / NOISY_BLOCK) * bw + (i % w) / NOISY_BLOCK] = true;
    }
    hit.iter().filter(|&&b| b).count() as f32 / hit.len() as f32
}

/// The tone curve that best turns `prev` into `cur`: each grey level of `prev` goes to the level
/// of `cur` at the same rank (the middle of its share of the pixels), so any monotone change of
/// the light is undone and only what moved is left.
pub(super) fn tone_curve(prev: &[u8], cur: &[u8]) -> [u8; 256] {
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

/// Box-average `img` into a grey thumbnail THUMB_W wide, written into `out`; its width.
pub(super) fn thumbnail(img: &RgbImage, out: &mut Vec<u8>) -> usize {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        out.clear();
        return 0;
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
    tw as usize
}
