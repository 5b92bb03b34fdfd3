//! Bilinear resampling of an image region straight into a model's input layout, so no resized
//! intermediate image is allocated per frame. Pixel centres follow OpenCV's `resize` (half-pixel
//! offsets, edge clamping): the models were trained and checked with OpenCV-style preprocessing.

use crate::geometry::BBox;
use image::RgbImage;

/// Sample `region` (source pixels, may extend past the image: edges are clamped) of `src` onto a
/// `dst_w` x `dst_h` grid and hand each destination pixel to `put(x, y, [r, g, b])`.
pub fn sample_bilinear<F: FnMut(usize, usize, [f32; 3])>(
    src: &RgbImage,
    region: BBox,
    dst_w: usize,
    dst_h: usize,
    mut put: F,
) {
    let (sw, sh) = (src.width() as usize, src.height() as usize);
    if sw == 0 || sh == 0 || dst_w == 0 || dst_h == 0 {
        return;
    }
    let raw: &[u8] = src.as_raw();
    let sx = region.width().max(1e-3) / dst_w as f32;
    let sy = region.height().max(1e-3) / dst_h as f32;
    let max_x = (sw - 1) as f32;
    let max_y = (sh - 1) as f32;
    for dy in 0..dst_h {
        let fy = ((dy as f32 + 0.5) * sy - 0.5 + region.y1).clamp(0.0, max_y);
        let y0 = fy as usize;
        let y1 = (y0 + 1).min(sh - 1);
        let wy = fy - y0 as f32;
        let row0 = &raw[y0 * sw * 3..(y0 + 1) * sw * 3];
        let row1 = &raw[y1 * sw * 3..(y1 + 1) * sw * 3];
        for dx in 0..dst_w {
            let fx = ((dx as f32 + 0.5) * sx - 0.5 + region.x1).clamp(0.0, max_x);
            let x0 = fx as usize;
            let x1 = (x0 + 1).min(sw - 1);
            let wx = fx - x0 as f32;
            let mut px = [0.0f32; 3];
            for (c, out) in px.iter_mut().enumerate() {
                let a = row0[x0 * 3 + c] as f32;
                let b = row0[x1 * 3 + c] as f32;
                let d = row1[x0 * 3 + c] as f32;
                let e = row1[x1 * 3 + c] as f32;
                let top = a + (b - a) * wx;
                let bottom = d + (e - d) * wx;
                *out = top + (bottom - top) * wy;
            }
            put(dx, dy, px);
        }
    }
}

/// The whole image as a region.
pub fn full(src: &RgbImage) -> BBox {
    BBox::new(0.0, 0.0, src.width() as f32, src.height() as f32)
}

/// Per destination index along one axis: the first source index and the weights from there.
struct Taps {
    start: Vec<usize>,
    weights: Vec<Vec<f32>>,
}

/// Triangle (bilinear) filter whose support grows with the reduction, as Pillow's `resize`
/// does: each destination pixel averages every source pixel under it instead of sampling 2x2.
fn taps(src: usize, dst: usize) -> Taps {
    let scale = src as f64 / dst as f64;
    let support = scale.max(1.0);
    let mut t = Taps {
        start: Vec::with_capacity(dst),
        weights: Vec::with_capacity(dst),
    };
    for d in 0..dst {
        let centre = (d as f64 + 0.5) * scale;
        let lo = ((centre - support).floor().max(0.0)) as usize;
        let hi = ((centre + support).ceil() as usize).min(src);
        let mut w: Vec<f32> = (lo..hi)
            .map(|i| {
                let x = ((i as f64 + 0.5 - centre) / support).abs();
                (1.0 - x).max(0.0) as f32
            })
            .collect();
        let sum: f32 = w.iter().sum();
        if sum > 0.0 {
            w.iter_mut().for_each(|v| *v /= sum);
        }
        t.start.push(lo);
        t.weights.push(w);
    }
    t
}

/// Resize the whole of `src` to `dst_w` x `dst_h` with an antialiasing (area-weighted) filter
/// and hand each destination pixel to `put(x, y, [r, g, b])`.
///
/// Why not [`sample_bilinear`] for every model: 2x2 sampling at a 2x reduction keeps a quarter
/// of the pixels and all of their noise; at night (a dark, noisy picture) that noise cost the
/// 300x300 SSD a tenth of its AP, and averaging the pixels under each destination pixel gave it
/// back (`ronda eval-detector`, README "Person detector"). Separable: rows, then columns.
pub fn resize_antialiased<F: FnMut(usize, usize, [f32; 3])>(
    src: &RgbImage,
    dst_w: usize,
    dst_h: usize,
    mut put: F,
) {
    let (sw, sh) = (src.width() as usize, src.height() as usize);
    if sw == 0 || sh == 0 || dst_w == 0 || dst_h == 0 {
        return;
    }
    let raw: &[u8] = src.as_raw();
    let tx = taps(sw, dst_w);
    let ty = taps(sh, dst_h);
    // horizontal pass: sh rows of dst_w pixels
    let mut rows = vec![0.0f32; sh * dst_w * 3];
    for y in 0..sh {
        let line = &raw[y * sw * 3..(y + 1) * sw * 3];
        for (x, (start, w)) in tx.start.iter().zip(&tx.weights).enumerate() {
            let mut acc = [0.0f32; 3];
            for (k, wk) in w.iter().enumerate() {
                let p = &line[(start + k) * 3..(start + k) * 3 + 3];
                for c in 0..3 {
                    acc[c] += wk * p[c] as f32;
                }
            }
            rows[(y * dst_w + x) * 3..(y * dst_w + x) * 3 + 3].copy_from_slice(&acc);
        }
    }
    // vertical pass
    for (y, (start, w)) in ty.start.iter().zip(&ty.weights).enumerate() {
        for x in 0..dst_w {
            let mut acc = [0.0f32; 3];
            for (k, wk) in w.iter().enumerate() {
                let at = ((start + k) * dst_w + x) * 3;
                for c in 0..3 {
                    acc[c] += wk * rows[at + c];
                }
            }
            put(x, y, acc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn antialiased_halving_averages_everything_under_a_pixel() {
        // 9x1 alternating 0/200 (the worst case for aliasing) reduced 3x: 2x2 sampling lands
        // on single pixels and gives 0 or 200; the antialiased resize gives about the mean.
        let img = RgbImage::from_fn(9, 1, |x, _| {
            image::Rgb([if x % 2 == 0 { 0 } else { 200 }; 3])
        });
        let mut out = vec![0.0f32; 3];
        resize_antialiased(&img, 3, 1, |x, _, p| out[x] = p[0]);
        for v in &out {
            assert!((v - 100.0).abs() < 25.0, "{out:?}");
        }
        let mut plain = vec![0.0f32; 3];
        sample_bilinear(&img, full(&img), 3, 1, |x, _, p| plain[x] = p[0]);
        assert!(plain.iter().any(|v| (v - 100.0).abs() > 90.0), "{plain:?}");
    }

    #[test]
    fn antialiased_keeps_flat_images_and_same_size_copies() {
        let flat = RgbImage::from_pixel(640, 480, image::Rgb([10, 20, 30]));
        let mut n = 0;
        resize_antialiased(&flat, 300, 300, |_, _, p| {
            n += 1;
            for (a, b) in p.iter().zip([10.0, 20.0, 30.0]) {
                assert!((a - b).abs() < 1e-3, "{p:?}");
            }
        });
        assert_eq!(n, 300 * 300);
        let img = RgbImage::from_fn(5, 4, |x, y| image::Rgb([x as u8 * 10, y as u8 * 20, 7]));
        resize_antialiased(&img, 5, 4, |x, y, p| {
            assert_eq!(p, [x as f32 * 10.0, y as f32 * 20.0, 7.0]);
        });
    }

    #[test]
    fn identity_size_copies_pixels() {
        let img = RgbImage::from_fn(5, 4, |x, y| image::Rgb([x as u8 * 10, y as u8 * 20, 7]));
        let mut out = vec![[0.0f32; 3]; 20];
        sample_bilinear(&img, full(&img), 5, 4, |x, y, p| out[y * 5 + x] = p);
        for y in 0..4 {
            for x in 0..5 {
                assert_eq!(out[y * 5 + x], [x as f32 * 10.0, y as f32 * 20.0, 7.0]);
            }
        }
    }

    #[test]
    fn halving_averages_neighbours() {
        // A 4x1 ramp 0, 10, 20, 30 halves to the means of pairs at half-pixel centres: 5 and 25.
        let img = RgbImage::from_fn(4, 1, |x, _| image::Rgb([x as u8 * 10; 3]));
        let mut out = vec![0.0f32; 2];
        sample_bilinear(&img, full(&img), 2, 1, |x, _, p| out[x] = p[0]);
        assert_eq!(out, vec![5.0, 25.0]);
    }

    #[test]
    fn region_outside_clamps_to_edge() {
        let img = RgbImage::from_fn(2, 2, |x, _| image::Rgb([if x == 0 { 0 } else { 200 }; 3]));
        let mut out = vec![0.0f32; 4];
        sample_bilinear(&img, BBox::new(-10.0, 0.0, -6.0, 2.0), 4, 1, |x, _, p| {
            out[x] = p[0]
        });
        assert_eq!(out, vec![0.0; 4]);
    }
}
