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

#[cfg(test)]
mod tests {
    use super::*;

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
