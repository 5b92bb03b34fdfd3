//! The mask classifier: MobileNetV2, a face crop stretched to 224x224, RGB scaled to -1..1,
//! softmax over (mask, without_mask).
//!
//! The verdict depends on how the crop is cut around the face box (FACTS.md: about 10 points
//! of accuracy between a tight and a generous crop), so the crop convention is a named setting,
//! [`FaceCrop`], whose default was measured on data/masks (see tests/ronda/detect.rs).

use super::error::{DetectError, one_line};
use super::manifest::{self, CheckedModel, Manifest};
use super::{DetectorOptions, Face, MaskVerdict, resample};
use crate::geometry::BBox;
use image::RgbImage;
use ort::value::TensorRef;

/// How the classifier's crop is cut from a face box.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FaceCrop {
    /// Added on every side, as a fraction of the box's width (left/right) and height
    /// (top/bottom). 0 = the face box itself.
    pub margin: f32,
    /// Grow the shorter side to make the crop square before the stretch to 224x224 (keeps the
    /// face's proportions).
    pub square: bool,
}

impl Default for FaceCrop {
    /// Measured on data/masks scenes (RetinaFace boxes, labelled boxes matched by IoU): see the
    /// `mask_crop_convention` test. RetinaFace boxes are tight (chin to brows), so a small
    /// margin brings in the mask's outline.
    fn default() -> Self {
        Self {
            margin: 0.1,
            square: false,
        }
    }
}

/// The crop region for a face box in a `w` x `h` picture (pure; unit-tested).
fn crop_region(face: &BBox, w: u32, h: u32, crop: &FaceCrop) -> BBox {
    let (mut bw, mut bh) = (face.width(), face.height());
    let c = face.center();
    bw *= 1.0 + 2.0 * crop.margin;
    bh *= 1.0 + 2.0 * crop.margin;
    if crop.square {
        let s = bw.max(bh);
        bw = s;
        bh = s;
    }
    BBox::new(
        c.x - bw / 2.0,
        c.y - bh / 2.0,
        c.x + bw / 2.0,
        c.y + bh / 2.0,
    )
    .clamp(w as f32, h as f32)
}

/// Verdict from the two probabilities (mask, without_mask).
pub fn verdict(mask: f32, without: f32) -> (MaskVerdict, f32) {
    if mask > without {
        (MaskVerdict::Mask, mask)
    } else {
        (MaskVerdict::NoMask, without)
    }
}

pub struct MaskClassifier {
    model: CheckedModel,
    input_name: String,
    output_name: String,
    side: usize,
    /// Whether the batch dimension is dynamic (several faces in one run).
    batched: bool,
    crop: FaceCrop,
    /// NHWC input for up to the largest batch seen, reused.
    input: Vec<f32>,
}

impl MaskClassifier {
    pub fn new(opts: &DetectorOptions) -> Result<Self, DetectError> {
        Self::from_manifest(&Manifest::load(&opts.models_dir)?, opts)
    }

    pub fn from_manifest(manifest: &Manifest, opts: &DetectorOptions) -> Result<Self, DetectError> {
        let model = manifest::load_checked(manifest, manifest::MASK, &opts.runtime)?;
        let contract = |what: String| DetectError::ModelContract {
            path: model.path.clone(),
            what,
        };
        let input = &model.entry.inputs[0];
        let (batched, side) = match input.shape.as_slice() {
            [n, h, w, 3] if h == w && *h > 0 && (*n == -1 || *n == 1) => (*n == -1, *h as usize),
            s => {
                return Err(contract(format!(
                    "input `{}` shape {s:?} is not [N, S, S, 3]",
                    input.name
                )));
            }
        };
        let output = model
            .entry
            .output_by_meaning("probabilities")
            .ok_or_else(|| contract("no output has meaning = \"probabilities\"".into()))?;
        if output.shape.last() != Some(&2) {
            return Err(contract(format!(
                "output `{}` shape {:?} is not [N, 2]",
                output.name, output.shape
            )));
        }
        if !(0.0..=2.0).contains(&opts.face_crop.margin) {
            return Err(DetectError::Setting {
                setting: "face_crop.margin".into(),
                reason: format!("{} is outside 0..2", opts.face_crop.margin),
            });
        }
        Ok(Self {
            input_name: input.name.clone(),
            output_name: output.name.clone(),
            side,
            batched,
            crop: opts.face_crop,
            input: Vec::new(),
            model,
        })
    }

    /// Mask verdict for one face box of the picture (cut with the crop convention).
    pub fn classify(
        &mut self,
        img: &RgbImage,
        face: &BBox,
    ) -> Result<(MaskVerdict, f32), DetectError> {
        let region = crop_region(face, img.width(), img.height(), &self.crop);
        Ok(self.classify_regions(img, &[region])?[0])
    }

    /// Mask verdict for a picture that is already a face crop (no further cutting).
    pub fn classify_crop(&mut self, crop: &RgbImage) -> Result<(MaskVerdict, f32), DetectError> {
        Ok(self.classify_regions(crop, &[resample::full(crop)])?[0])
    }

    /// Fill in `mask` of every face, in one run when the model takes batches.
    pub fn classify_faces(
        &mut self,
        img: &RgbImage,
        faces: &mut [Face],
    ) -> Result<(), DetectError> {
        if faces.is_empty() {
            return Ok(());
        }
        let regions: Vec<BBox> = faces
            .iter()
            .map(|f| crop_region(&f.bbox, img.width(), img.height(), &self.crop))
            .collect();
        let verdicts = self.classify_regions(img, &regions)?;
        for (f, v) in faces.iter_mut().zip(verdicts) {
            f.mask = Some(v);
        }
        Ok(())
    }

    /// Verdicts for explicit regions of the picture (no crop convention applied).
    pub fn classify_regions(
        &mut self,
        img: &RgbImage,
        regions: &[BBox],
    ) -> Result<Vec<(MaskVerdict, f32)>, DetectError> {
        let mut out = Vec::with_capacity(regions.len());
        let chunk = if self.batched {
            regions.len().max(1)
        } else {
            1
        };
        for group in regions.chunks(chunk) {
            self.run_batch(img, group, &mut out)?;
        }
        Ok(out)
    }

    fn run_batch(
        &mut self,
        img: &RgbImage,
        regions: &[BBox],
        out: &mut Vec<(MaskVerdict, f32)>,
    ) -> Result<(), DetectError> {
        let s = self.side;
        let per = s * s * 3;
        self.input.clear();
        self.input.resize(per * regions.len(), 0.0);
        for (k, r) in regions.iter().enumerate() {
            let dst = &mut self.input[k * per..(k + 1) * per];
            resample::sample_bilinear(img, *r, s, s, |x, y, rgb| {
                let i = (y * s + x) * 3;
                for c in 0..3 {
                    dst[i + c] = rgb[c] / 127.5 - 1.0;
                }
            });
        }
        let path = &self.model.path;
        let fail = |e: &dyn std::fmt::Display| DetectError::Inference {
            path: path.clone(),
            reason: one_line(e),
        };
        let tensor = TensorRef::from_array_view(([regions.len(), s, s, 3], &self.input[..]))
            .map_err(|e| fail(&e))?;
        let outputs = self
            .model
            .session
            .run(ort::inputs![self.input_name.as_str() => tensor])
            .map_err(|e| fail(&e))?;
        let value = outputs
            .get(self.output_name.as_str())
            .ok_or_else(|| fail(&format!("output `{}` missing", self.output_name)))?;
        let (_, probs) = value.try_extract_tensor::<f32>().map_err(|e| fail(&e))?;
        if probs.len() != 2 * regions.len() {
            return Err(fail(&format!(
                "{} probabilities for {} faces",
                probs.len(),
                regions.len()
            )));
        }
        out.extend(probs.chunks_exact(2).map(|p| verdict(p[0], p[1])));
        Ok(())
    }

    pub fn crop(&self) -> FaceCrop {
        self.crop
    }

    /// Change the crop convention (e.g. to compare conventions on labelled photos).
    pub fn set_crop(&mut self, crop: FaceCrop) {
        self.crop = crop;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_margin_and_square() {
        let f = BBox::new(100.0, 100.0, 140.0, 160.0); // 40 x 60, centre (120, 130)
        let tight = crop_region(
            &f,
            1000,
            1000,
            &FaceCrop {
                margin: 0.0,
                square: false,
            },
        );
        assert_eq!(tight, f);
        let wide = crop_region(
            &f,
            1000,
            1000,
            &FaceCrop {
                margin: 0.25,
                square: false,
            },
        );
        assert_eq!(wide, BBox::new(90.0, 85.0, 150.0, 175.0));
        let sq = crop_region(
            &f,
            1000,
            1000,
            &FaceCrop {
                margin: 0.0,
                square: true,
            },
        );
        assert_eq!(sq, BBox::new(90.0, 100.0, 150.0, 160.0));
        let edge = crop_region(
            &BBox::new(0.0, 0.0, 20.0, 20.0),
            15,
            15,
            &FaceCrop {
                margin: 0.5,
                square: true,
            },
        );
        assert_eq!(edge, BBox::new(0.0, 0.0, 15.0, 15.0));
    }

    #[test]
    fn verdict_takes_the_larger_probability() {
        assert_eq!(verdict(0.97, 0.03), (MaskVerdict::Mask, 0.97));
        assert_eq!(verdict(0.2, 0.8), (MaskVerdict::NoMask, 0.8));
        // a tie is not a mask: the alert errs on the side of asking
        assert_eq!(verdict(0.5, 0.5), (MaskVerdict::NoMask, 0.5));
    }
}
