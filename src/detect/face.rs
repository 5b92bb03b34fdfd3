//! The face detector: RetinaFace (MobileNet backbone, 5 landmarks) with NMS inside the graph.
//!
//! Contract (FACTS.md section 3): input `[1, H, W, 3]` RGB 0..255, H and W multiples of 32 (the
//! picture is padded at the right and bottom with black); output `[K, 16]` rows of box (4) +
//! landmarks (10) normalised to the padded input, column 14 a landmark flag, column 15 the score.
//! It runs on a whole frame or on a region (e.g. the upper part of a person box at the gate,
//! far cheaper than a whole frame).

use super::error::{DetectError, one_line};
use super::manifest::{self, CheckedModel, Manifest};
use super::{DetectorOptions, Face, resample};
use crate::geometry::{BBox, Point};
use image::RgbImage;
use ort::value::TensorRef;

/// RetinaFace's feature maps need sizes divisible by its largest stride.
const ALIGN: usize = 32;
const ROW: usize = 16;

/// Face detector settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FaceParams {
    /// Minimum face score (0..1).
    pub threshold: f32,
    /// The picture (or region) is scaled down so its longer side is at most this many pixels:
    /// the cost grows with the area (about 45-50 ms at 640 wide here).
    pub max_side: u32,
    /// Small regions are scaled up so their longer side is at least this: RetinaFace misses
    /// faces below about 16 pixels, as in a person box seen from afar.
    pub min_side: u32,
}

impl Default for FaceParams {
    fn default() -> Self {
        Self {
            threshold: 0.8,
            max_side: 640,
            min_side: 192,
        }
    }
}

/// How a region is mapped onto the network input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Placement {
    /// The region of the source picture (clamped to it).
    pub region: BBox,
    /// Size of the scaled region inside the input.
    pub scaled_w: usize,
    pub scaled_h: usize,
    /// Padded input size (multiples of 32).
    pub input_w: usize,
    pub input_h: usize,
}

/// Where `region` of a `w` x `h` picture goes in the input (pure; unit-tested).
pub fn place(region: BBox, w: u32, h: u32, p: &FaceParams) -> Option<Placement> {
    let r = region.clamp(w as f32, h as f32);
    let (x1, y1) = (r.x1.floor(), r.y1.floor());
    let (x2, y2) = (r.x2.ceil().min(w as f32), r.y2.ceil().min(h as f32));
    let (rw, rh) = (x2 - x1, y2 - y1);
    if rw < 1.0 || rh < 1.0 {
        return None;
    }
    let longer = rw.max(rh);
    let scale = if longer > p.max_side as f32 {
        p.max_side as f32 / longer
    } else if longer < p.min_side as f32 {
        p.min_side as f32 / longer
    } else {
        1.0
    };
    let scaled_w = ((rw * scale).round() as usize).max(1);
    let scaled_h = ((rh * scale).round() as usize).max(1);
    Some(Placement {
        region: BBox::new(x1, y1, x2, y2),
        scaled_w,
        scaled_h,
        input_w: scaled_w.div_ceil(ALIGN) * ALIGN,
        input_h: scaled_h.div_ceil(ALIGN) * ALIGN,
    })
}

/// Faces from the output rows, in source pixels (pure; unit-tested).
pub fn decode(rows: &[f32], pl: &Placement, threshold: f32) -> Vec<Face> {
    let fx = pl.input_w as f32 * pl.region.width() / pl.scaled_w as f32;
    let fy = pl.input_h as f32 * pl.region.height() / pl.scaled_h as f32;
    let to_src = |x: f32, y: f32| Point::new(pl.region.x1 + x * fx, pl.region.y1 + y * fy);
    let mut faces = Vec::new();
    for row in rows.chunks_exact(ROW) {
        let score = row[15];
        // written so that a NaN score is skipped too
        if score.partial_cmp(&threshold).is_none_or(|o| o.is_lt()) {
            continue;
        }
        let a = to_src(row[0], row[1]);
        let b = to_src(row[2], row[3]);
        let bbox = BBox::new(a.x, a.y, b.x, b.y).clamp(pl.region.x2, pl.region.y2);
        if bbox.area() <= 0.0 {
            continue;
        }
        let mut landmarks = [Point::default(); 5];
        for (i, lm) in landmarks.iter_mut().enumerate() {
            *lm = to_src(row[4 + 2 * i], row[5 + 2 * i]);
        }
        faces.push(Face {
            bbox,
            score,
            landmarks,
            mask: None,
        });
    }
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    faces
}

pub struct FaceDetector {
    model: CheckedModel,
    input_name: String,
    output_name: String,
    params: FaceParams,
    /// NHWC input, grown to the largest size seen and reused.
    input: Vec<f32>,
}

impl FaceDetector {
    pub fn new(opts: &DetectorOptions) -> Result<Self, DetectError> {
        Self::from_manifest(&Manifest::load(&opts.models_dir)?, opts)
    }

    pub fn from_manifest(manifest: &Manifest, opts: &DetectorOptions) -> Result<Self, DetectError> {
        let model = manifest::load_checked(manifest, manifest::FACE, &opts.runtime)?;
        let contract = |what: String| DetectError::ModelContract {
            path: model.path.clone(),
            what,
        };
        let input = &model.entry.inputs[0];
        if !matches!(input.shape.as_slice(), [1 | -1, _, _, 3]) {
            return Err(contract(format!(
                "input `{}` shape {:?} is not [1, H, W, 3]",
                input.name, input.shape
            )));
        }
        if !matches!(input.shape.as_slice(), [_, -1, -1, _]) {
            return Err(contract(format!(
                "input `{}` must have dynamic height and width",
                input.name
            )));
        }
        let output = model
            .entry
            .output_by_meaning("detections")
            .ok_or_else(|| contract("no output has meaning = \"detections\"".into()))?;
        if output.shape.last() != Some(&(ROW as i64)) {
            return Err(contract(format!(
                "output `{}` shape {:?} is not [K, 16]",
                output.name, output.shape
            )));
        }
        let p = opts.face;
        if !(0.0..=1.0).contains(&p.threshold)
            || p.max_side < ALIGN as u32
            || p.min_side > p.max_side
        {
            return Err(DetectError::Setting {
                setting: "face".into(),
                reason: format!(
                    "threshold {} must be 0..1 and {} <= min_side ({}) <= max_side ({})",
                    p.threshold, ALIGN, p.min_side, p.max_side
                ),
            });
        }
        Ok(Self {
            input_name: input.name.clone(),
            output_name: output.name.clone(),
            params: p,
            input: Vec::new(),
            model,
        })
    }

    /// Faces in the whole picture.
    pub fn detect(&mut self, img: &RgbImage) -> Result<Vec<Face>, DetectError> {
        self.detect_region(img, resample::full(img))
    }

    /// Faces inside `region` of the picture, in picture pixels.
    pub fn detect_region(
        &mut self,
        img: &RgbImage,
        region: BBox,
    ) -> Result<Vec<Face>, DetectError> {
        let Some(pl) = place(region, img.width(), img.height(), &self.params) else {
            return Ok(Vec::new());
        };
        let (iw, ih) = (pl.input_w, pl.input_h);
        self.input.clear();
        self.input.resize(iw * ih * 3, 0.0);
        let input = &mut self.input;
        resample::sample_bilinear(img, pl.region, pl.scaled_w, pl.scaled_h, |x, y, rgb| {
            let i = (y * iw + x) * 3;
            input[i..i + 3].copy_from_slice(&rgb);
        });
        let path = &self.model.path;
        let fail = |e: &dyn std::fmt::Display| DetectError::Inference {
            path: path.clone(),
            reason: one_line(e),
        };
        let tensor = TensorRef::from_array_view(([1usize, ih, iw, 3], &self.input[..]))
            .map_err(|e| fail(&e))?;
        let outputs = self
            .model
            .session
            .run(ort::inputs![self.input_name.as_str() => tensor])
            .map_err(|e| fail(&e))?;
        let value = outputs
            .get(self.output_name.as_str())
            .ok_or_else(|| fail(&format!("output `{}` missing", self.output_name)))?;
        let (_, rows) = value.try_extract_tensor::<f32>().map_err(|e| fail(&e))?;
        Ok(decode(rows, &pl, self.params.threshold))
    }

    pub fn params(&self) -> FaceParams {
        self.params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn place_pads_to_32_and_scales_big_pictures_down() {
        let p = FaceParams {
            threshold: 0.8,
            max_side: 640,
            min_side: 192,
        };
        let pl = place(BBox::new(0.0, 0.0, 810.0, 1080.0), 810, 1080, &p).unwrap();
        assert_eq!((pl.scaled_w, pl.scaled_h), (480, 640));
        assert_eq!((pl.input_w, pl.input_h), (480, 640));
        let pl = place(BBox::new(0.0, 0.0, 500.0, 300.0), 500, 300, &p).unwrap();
        assert_eq!(
            (pl.scaled_w, pl.scaled_h, pl.input_w, pl.input_h),
            (500, 300, 512, 320)
        );
    }

    #[test]
    fn place_clamps_region_and_scales_small_ones_up() {
        let p = FaceParams {
            threshold: 0.8,
            max_side: 640,
            min_side: 192,
        };
        let pl = place(BBox::new(-10.5, 20.2, 47.5, 96.0), 100, 100, &p).unwrap();
        assert_eq!(pl.region, BBox::new(0.0, 20.0, 48.0, 96.0));
        // longer side 76 -> 192: x2.526
        assert_eq!((pl.scaled_w, pl.scaled_h), (121, 192));
        assert_eq!((pl.input_w, pl.input_h), (128, 192));
        assert!(place(BBox::new(200.0, 0.0, 300.0, 10.0), 100, 100, &p).is_none());
    }

    #[test]
    fn decode_maps_padded_normalised_rows_to_region_pixels() {
        let pl = Placement {
            region: BBox::new(100.0, 50.0, 300.0, 150.0), // 200 x 100
            scaled_w: 400,
            scaled_h: 200,
            input_w: 416,
            input_h: 224,
        };
        let mut row = [0.0f32; 16];
        // box from (52, 28) to (260, 140) input pixels
        row[..4].copy_from_slice(&[52.0 / 416.0, 28.0 / 224.0, 260.0 / 416.0, 140.0 / 224.0]);
        row[4] = 104.0 / 416.0; // left eye x = 104 input px
        row[5] = 56.0 / 224.0;
        row[15] = 0.97;
        let mut low = row;
        low[15] = 0.5;
        let faces = decode(&[row, low].concat(), &pl, 0.8);
        assert_eq!(faces.len(), 1);
        let f = &faces[0];
        // input px / 2 + region origin
        let want = [126.0, 64.0, 230.0, 120.0];
        for (a, b) in f.bbox.to_array().iter().zip(want) {
            assert!((a - b).abs() < 1e-3, "{:?}", f.bbox);
        }
        assert!((f.landmarks[0].x - 152.0).abs() < 1e-3 && (f.landmarks[0].y - 78.0).abs() < 1e-3);
        assert_eq!(f.score, 0.97);
        assert!(f.mask.is_none());
    }
}
