//! Seeing in the dark: a dark or flat picture is brought to a usable range before the person
//! detector sees it.
//!
//! A village camera at night shows a dim street under a few lamps (or a grey infrared picture):
//! the people are there to the eye, but the detector was trained on daylight pictures and finds
//! few of them (measured: gate counts fell to half or to nothing on darkened pedestrian clips). So
//! each picture's own brightness is measured (on a sparse grid of pixels: cheap for 40 cameras)
//! and, when it is dark, one curve is applied to every channel: levels stretched from the
//! darkest to the brightest pixels that matter (the 0.5th and 99.5th percentiles of luma, so a
//! lamp or a black sky does not set the range), then a gamma that brings the picture's mean to
//! a mid grey. A picture in daylight is left as it is (see [`LightParams`]: the check is the
//! picture's mean and its bright end), so daytime detection is unchanged.
//!
//! Pure: a picture in, a picture (or the same one) out. No state across frames: a camera's
//! switch to infrared or a headlight is judged on the picture it happens in.

use std::borrow::Cow;

use image::RgbImage;

/// When a picture counts as dark, and how far it may be lifted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LightParams {
    /// Lift dark pictures at all (`[detector] low_light = "auto"`); off: pictures as they come.
    pub enabled: bool,
    /// A picture whose mean luma (0-255) is below this is dark.
    pub dark_mean: f32,
    /// ... or whose bright end (99.5th percentile of luma) is below this (a dim picture with a
    /// few bright lamps has a mean near black but a usable bright end, and vice versa).
    pub dark_top: f32,
    /// The mean the curve aims for (0-255).
    pub target_mean: f32,
    /// The strongest gamma used (the smaller, the more the shadows are lifted; noise grows
    /// with it).
    pub min_gamma: f32,
    /// The most the levels stretch (the brightest part maps to 255 at most this many times its
    /// value): a black picture is not turned into amplified noise.
    pub max_gain: f32,
}

impl LightParams {
    /// The defaults, in a constant (the motion gate shares the lift's idea of dark).
    pub const DEFAULT: Self = Self {
        enabled: true,
        dark_mean: 60.0,
        dark_top: 140.0,
        target_mean: 100.0,
        min_gamma: 0.4,
        max_gain: 8.0,
    };
}

impl Default for LightParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The picture's brightness, measured on a sparse grid.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Brightness {
    /// Mean luma, 0-255.
    pub mean: f32,
    /// 0.5th and 99.5th percentiles of luma.
    pub low: f32,
    pub high: f32,
}

/// Every this many pixels, across and down, is measured (1 in 16).
const GRID: usize = 4;

/// Measure a picture's brightness (BT.601 luma).
pub fn measure(img: &RgbImage) -> Brightness {
    let mut hist = [0u32; 256];
    let (w, h) = (img.width() as usize, img.height() as usize);
    let raw = img.as_raw();
    for y in (0..h).step_by(GRID) {
        let row = &raw[y * w * 3..(y + 1) * w * 3];
        for px in row.chunks_exact(3).step_by(GRID) {
            let l = (299 * px[0] as u32 + 587 * px[1] as u32 + 114 * px[2] as u32) / 1000;
            hist[l as usize] += 1;
        }
    }
    of_histogram(&hist)
}

/// The brightness of grey levels already taken (the motion gate's thumbnail).
pub fn measure_levels(levels: &[u8]) -> Brightness {
    let mut hist = [0u32; 256];
    for &l in levels {
        hist[l as usize] += 1;
    }
    of_histogram(&hist)
}

fn of_histogram(hist: &[u32; 256]) -> Brightness {
    let n: u32 = hist.iter().sum();
    if n == 0 {
        return Brightness {
            mean: 0.0,
            low: 0.0,
            high: 0.0,
        };
    }
    let sum: u64 = hist
        .iter()
        .enumerate()
        .map(|(v, &c)| v as u64 * c as u64)
        .sum();
    let percentile = |p: f32| -> f32 {
        let want = (p * n as f32).ceil().max(1.0) as u32;
        let mut seen = 0;
        for (v, &c) in hist.iter().enumerate() {
            seen += c;
            if seen >= want {
                return v as f32;
            }
        }
        255.0
    };
    Brightness {
        mean: sum as f32 / n as f32,
        low: percentile(0.005),
        high: percentile(0.995),
    }
}

impl LightParams {
    /// Whether a picture of this brightness is lifted.
    pub fn is_dark(&self, b: &Brightness) -> bool {
        self.enabled && (b.mean < self.dark_mean || b.high < self.dark_top)
    }

    /// The curve for a picture of brightness `b`, as a table of 256 values; `None` when the
    /// picture is left as it is.
    pub fn curve(&self, b: &Brightness) -> Option<[u8; 256]> {
        if !self.is_dark(b) {
            return None;
        }
        let low = b.low;
        // the bright end is stretched to white, by at most max_gain
        let span = (b.high - low).max(255.0 / self.max_gain).max(1.0);
        let level = |v: f32| ((v - low) / span).clamp(0.0, 1.0);
        // the gamma that takes the stretched mean to the target
        let m = level(b.mean).clamp(1e-3, 0.999);
        let target = (self.target_mean / 255.0).clamp(0.05, 0.95);
        let gamma = if m < target {
            (target.ln() / m.ln()).clamp(self.min_gamma, 1.0)
        } else {
            1.0
        };
        let mut lut = [0u8; 256];
        for (v, out) in lut.iter_mut().enumerate() {
            *out = (255.0 * level(v as f32).powf(gamma)).round() as u8;
        }
        Some(lut)
    }

    /// The picture the detector should see: `img` itself in daylight, a lifted copy when dark;
    /// with the picture's brightness (`None` when lifting is off: nothing was measured).
    pub fn correct_into(&self, img: &RgbImage, buf: &mut RgbImage) -> (bool, Option<Brightness>) {
        if !self.enabled {
            return (false, None);
        }
        let b = measure(img);
        let Some(lut) = self.curve(&b) else {
            return (false, Some(b));
        };
        if buf.dimensions() != img.dimensions() {
            *buf = RgbImage::new(img.width(), img.height());
        }
        for (o, &v) in buf.iter_mut().zip(img.iter()) {
            *o = lut[v as usize];
        }
        (true, Some(b))
    }

    /// [`Self::correct_into`] as a new picture (offline tools; the live path reuses a buffer).
    pub fn correct<'a>(&self, img: &'a RgbImage) -> (Cow<'a, RgbImage>, Option<Brightness>) {
        let mut buf = RgbImage::new(0, 0);
        match self.correct_into(img, &mut buf) {
            (true, b) => (Cow::Owned(buf), b),
            (false, b) => (Cow::Borrowed(img), b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A picture of `bg` with a block of `fg` in the middle.
    fn picture(bg: u8, fg: u8) -> RgbImage {
        let mut img = RgbImage::from_pixel(160, 120, image::Rgb([bg, bg, bg]));
        for y in 40..80 {
            for x in 60..100 {
                img.put_pixel(x, y, image::Rgb([fg, fg, fg]));
            }
        }
        img
    }

    #[test]
    fn a_daylight_picture_is_left_as_it_is() {
        let img = picture(120, 200);
        let p = LightParams::default();
        assert!(!p.is_dark(&measure(&img)));
        assert!(matches!(p.correct(&img).0, Cow::Borrowed(_)));
    }

    #[test]
    fn a_dark_picture_is_lifted_and_keeps_its_order() {
        let img = picture(8, 30);
        let b = measure(&img);
        assert!((b.mean - 11.0).abs() < 3.0, "{b:?}");
        assert_eq!((b.low, b.high), (8.0, 30.0));
        let p = LightParams::default();
        let out = p.correct(&img).0;
        let (bg, fg) = (out.get_pixel(0, 0)[0], out.get_pixel(80, 60)[0]);
        // the figure stands out far more than before, darker stays darker
        assert!(fg as i32 - bg as i32 > 3 * (30 - 8), "{bg} {fg}");
        let lut = p.curve(&b).unwrap();
        assert!(
            lut.windows(2).all(|w| w[0] <= w[1]),
            "the curve is monotonic"
        );
    }

    #[test]
    fn a_black_picture_is_not_turned_into_noise() {
        // levels 1-4 (sensor noise on a covered lens): the stretch is capped at max_gain, so the
        // noise stays in the shadows rather than spanning black to white
        let img = picture(1, 4);
        let p = LightParams::default();
        let lut = p.curve(&measure(&img)).unwrap();
        assert_eq!(lut[1], 0);
        assert!(lut[4] < 128, "{}", lut[4]);
        // what reaches white is 255 / max_gain above the darkest level, not the noise's top
        assert_eq!(lut[1 + (255.0 / p.max_gain).ceil() as usize], 255);
    }

    #[test]
    fn off_means_off() {
        let img = picture(8, 30);
        let p = LightParams {
            enabled: false,
            ..LightParams::default()
        };
        assert!(matches!(p.correct(&img).0, Cow::Borrowed(_)));
    }
}
