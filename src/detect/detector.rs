//! The detector facade: one owner of all ONNX Runtime sessions (person, face, mask). The live
//! pipeline's inference worker holds one `Detector` and serves requests from all cameras; every
//! call takes `&mut self` because a session runs one request at a time.

use super::decode::nms;
use super::error::DetectError;
use super::face::{FaceDetector, FaceParams};
use super::light::{Brightness, LightParams};
use super::manifest::{self, Manifest};
use super::mask::{FaceCrop, MaskClassifier};
use super::person::{PersonDetector, Variant};
use super::runtime::RuntimeOptions;
use super::{Detection, Face};
use crate::geometry::BBox;
use image::RgbImage;
use std::path::PathBuf;

/// Environment variable overriding the models directory (tests, installed boxes).
pub const MODELS_DIR_ENV: &str = "RONDA_MODELS_DIR";

/// Everything needed to build the detectors. `Default` gives the documented defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct DetectorOptions {
    /// Directory with manifest.toml and the ONNX files (default: `RONDA_MODELS_DIR`, else the
    /// project's `models/`).
    pub models_dir: PathBuf,
    pub runtime: RuntimeOptions,
    /// Which person model: the manifest key of its fp32 file, `<key>_int8` being the int8 one.
    /// `person` (default) is NanoDet-m; the candidates of `ronda eval-detector` have their own
    /// keys (`ssdlite`, `centernet`, `movenet` in .cache/candidates/manifest.toml).
    pub person_model: String,
    /// The person model of area cameras (a manifest key like `person_model`); `None`: the same
    /// model for every camera. The gate camera always uses `person_model`.
    pub area_person_model: Option<String>,
    /// Area cameras search regions (`[detector] area_regions`): their model must take any input
    /// size, or a region would cost a whole picture's look.
    pub area_regions: bool,
    /// Person model precision: fp32 (default) or int8.
    pub variant: Variant,
    /// Minimum class score of the person detector (0.4: at 0.35 a traffic cone and a rock came
    /// out as persons).
    pub person_threshold: f32,
    /// IoU above which the weaker of two same-class boxes is dropped.
    pub nms_iou: f32,
    /// COCO class names to report (default `["person"]`; e.g. add "car", "motorcycle").
    pub classes: Vec<String>,
    /// Load the face detector and mask classifier (not needed where no rule uses masks).
    pub faces: bool,
    pub face: FaceParams,
    pub face_crop: FaceCrop,
    /// Dark pictures lifted before person detection (`[detector] low_light`).
    pub light: LightParams,
}

impl Default for DetectorOptions {
    fn default() -> Self {
        Self {
            models_dir: default_models_dir(),
            runtime: RuntimeOptions::default(),
            person_model: manifest::PERSON.into(),
            area_person_model: None,
            area_regions: false,
            variant: Variant::Fp32,
            person_threshold: 0.4,
            nms_iou: 0.45,
            classes: vec!["person".into()],
            faces: true,
            face: FaceParams::default(),
            light: LightParams::default(),
            face_crop: FaceCrop::default(),
        }
    }
}

/// `RONDA_MODELS_DIR` if set, else `models/` of the project.
pub fn default_models_dir() -> PathBuf {
    match std::env::var_os(MODELS_DIR_ENV).filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => crate::paths::models_dir(),
    }
}

/// What `detect_image` finds in one picture.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImageResult {
    pub width: u32,
    pub height: u32,
    /// Persons (and other configured classes), best first.
    pub persons: Vec<Detection>,
    /// Faces with their mask verdicts, best first (empty when faces are off).
    pub faces: Vec<Face>,
}

pub struct Detector {
    person: PersonDetector,
    /// Area cameras' person model (`area_person_model`), when it is another one.
    area: Option<PersonDetector>,
    face: Option<FaceDetector>,
    mask: Option<MaskClassifier>,
    light: LightParams,
    /// The brightness of the last picture given to [`Detector::persons`].
    last_light: Option<Brightness>,
    /// The last dark picture lifted (`detect::light`), its room reused from frame to frame.
    lifted: RgbImage,
    /// Int8 models asked to compute exactly ([`RuntimeOptions::int8_exact`]), for [`Self::info`].
    int8_exact: bool,
}

impl Detector {
    /// Load ONNX Runtime (once per process) and every model, each checked against the manifest.
    pub fn new(opts: &DetectorOptions) -> Result<Self, DetectError> {
        let manifest = Manifest::load(&opts.models_dir)?;
        let person = PersonDetector::from_manifest(&manifest, opts, opts.variant)?;
        let area = match &opts.area_person_model {
            Some(m) if *m != opts.person_model => {
                let key = opts.variant.key_of(m);
                if !manifest.models.contains_key(&key) {
                    let int8 = Variant::Int8.key_of(m);
                    let reason = if manifest.models.contains_key(&int8) {
                        format!(
                            "the models have `{m}` in int8 only ([models.{int8}]): set [detector] \
                             model = \"int8\", or leave area_person_model out"
                        )
                    } else {
                        format!(
                            "the models' manifest has no person model `{m}` ([models.{key}]): \
                             use \"person_small\" (NanoDet-m at 320, int8), or leave it out"
                        )
                    };
                    return Err(DetectError::Setting {
                        setting: "area_person_model".into(),
                        reason,
                    });
                }
                Some(PersonDetector::from_key(&manifest, &key, opts)?)
            }
            _ => None,
        };
        let searcher = area.as_ref().unwrap_or(&person);
        if opts.area_regions && !searcher.any_size() {
            return Err(DetectError::Setting {
                setting: "area_regions".into(),
                reason: format!(
                    "the area cameras' model `{}` takes only {}x{} pictures, so a region would cost \
                     as much as the whole picture: set area_person_model = \"person_small\" \
                     (takes any size), or area_regions = false",
                    searcher.name(),
                    searcher.input_size().0,
                    searcher.input_size().1
                ),
            });
        }
        let (face, mask) = if opts.faces {
            (
                Some(FaceDetector::from_manifest(&manifest, opts)?),
                Some(MaskClassifier::from_manifest(&manifest, opts)?),
            )
        } else {
            (None, None)
        };
        Ok(Self {
            person,
            area,
            face,
            mask,
            light: opts.light,
            last_light: None,
            lifted: RgbImage::new(0, 0),
            int8_exact: opts.runtime.int8_exact,
        })
    }

    /// Persons, faces and mask verdicts in a still picture (faces searched in the whole picture).
    pub fn detect_image(&mut self, img: &RgbImage) -> Result<ImageResult, DetectError> {
        let persons = self.persons(img)?;
        let faces = match (&mut self.face, &mut self.mask) {
            (Some(fd), Some(mc)) => {
                let mut faces = fd.detect(img)?;
                mc.classify_faces(img, &mut faces)?;
                faces
            }
            _ => Vec::new(),
        };
        Ok(ImageResult {
            width: img.width(),
            height: img.height(),
            persons,
            faces,
        })
    }

    /// Persons (and configured classes) only: the per-frame call of the live pipeline.
    /// A dark picture is lifted first (`detect::light`).
    pub fn persons(&mut self, img: &RgbImage) -> Result<Vec<Detection>, DetectError> {
        self.persons_for(img, false)
    }

    /// [`Detector::persons`] for a camera of the gate (`area` false) or an area camera, which
    /// uses `area_person_model` when one is configured.
    pub fn persons_for(
        &mut self,
        img: &RgbImage,
        area: bool,
    ) -> Result<Vec<Detection>, DetectError> {
        let mut out = Vec::new();
        self.persons_into(img, area, &mut out)?;
        Ok(out)
    }

    /// [`Detector::persons_for`] into `out` (cleared first; its room reused).
    pub fn persons_into(
        &mut self,
        img: &RgbImage,
        area: bool,
        out: &mut Vec<Detection>,
    ) -> Result<(), DetectError> {
        let (lifted, brightness) = self.light.correct_into(img, &mut self.lifted);
        self.last_light = brightness;
        let seen = if lifted { &self.lifted } else { img };
        match (&mut self.area, area) {
            (Some(a), true) => a.detect_into(seen, out),
            _ => self.person.detect_into(seen, out),
        }
    }

    /// An area camera's persons searched in `regions` of `img` only (squares inside it, see
    /// `detect::region`), with the area cameras' model, into `out` (cleared first), suppressed
    /// across regions. The picture's light is judged (and lifted) as a whole.
    pub fn persons_in_regions(
        &mut self,
        img: &RgbImage,
        regions: &[BBox],
        out: &mut Vec<Detection>,
    ) -> Result<(), DetectError> {
        out.clear();
        let (lifted, brightness) = self.light.correct_into(img, &mut self.lifted);
        self.last_light = brightness;
        let seen = if lifted { &self.lifted } else { img };
        let model = self.area.as_mut().unwrap_or(&mut self.person);
        for r in regions {
            model.detect_region(seen, *r, out)?;
        }
        nms(out, model.nms_iou());
        Ok(())
    }

    /// The area cameras' model's whole-picture input size (width, height).
    pub fn area_input_size(&self) -> (usize, usize) {
        self.area.as_ref().unwrap_or(&self.person).input_size()
    }

    /// The brightness of the last picture searched for persons, and whether it was lifted as
    /// dark (`None` when lifting is off).
    pub fn last_light(&self) -> Option<(Brightness, bool)> {
        self.last_light.map(|b| (b, self.light.is_dark(&b)))
    }

    /// Faces with mask verdicts inside the head-and-shoulders part of a person box (the top
    /// [`HEAD_FRACTION`] of its height, widened a little): what the gate's no-mask rule needs.
    /// Empty when faces are off.
    pub fn faces_of_person(
        &mut self,
        img: &RgbImage,
        person: &BBox,
    ) -> Result<Vec<Face>, DetectError> {
        self.faces_in(img, head_region(person))
    }

    /// Faces with mask verdicts inside any region of the picture.
    fn faces_in(&mut self, img: &RgbImage, region: BBox) -> Result<Vec<Face>, DetectError> {
        let (Some(fd), Some(mc)) = (&mut self.face, &mut self.mask) else {
            return Ok(Vec::new());
        };
        let mut faces = fd.detect_region(img, region)?;
        mc.classify_faces(img, &mut faces)?;
        Ok(faces)
    }

    /// The person detector itself (split preprocess / run / postprocess for benches).
    pub fn person_detector(&mut self) -> &mut PersonDetector {
        &mut self.person
    }

    /// Which model and arithmetic find the persons (the gate's model), for reports and logs.
    pub fn info(&self) -> DetectorInfo {
        let int8 = self.person.variant() == Variant::Int8;
        DetectorInfo {
            model: self.person.name().to_string(),
            precision: self.person.variant().as_str(),
            int8_arithmetic: int8.then(|| super::runtime::int8_arithmetic(self.int8_exact)),
        }
    }
}

/// Which detector arithmetic produced a result: counts of two machines compare only when these
/// agree (README "Counts and the CPU").
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DetectorInfo {
    pub model: String,
    pub precision: &'static str,
    /// For an int8 model, how this CPU computes it ([`super::runtime::int8_arithmetic`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub int8_arithmetic: Option<&'static str>,
}

/// Share of a person box's height searched for the face.
pub const HEAD_FRACTION: f32 = 0.4;

/// The head-and-shoulders region of a person box: the top 40%, 10% wider on each side (arms
/// out, a head turned at the box's edge).
pub fn head_region(person: &BBox) -> BBox {
    let w = person.width();
    BBox::new(
        person.x1 - 0.1 * w,
        person.y1,
        person.x2 + 0.1 * w,
        person.y1 + HEAD_FRACTION * person.height(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_region_is_top_of_box_widened() {
        let r = head_region(&BBox::new(100.0, 50.0, 200.0, 350.0));
        assert_eq!(r, BBox::new(90.0, 50.0, 210.0, 170.0));
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let o = DetectorOptions::default();
        assert_eq!((o.person_threshold, o.nms_iou), (0.4, 0.45));
        assert_eq!(o.classes, vec!["person".to_string()]);
        assert_eq!(o.person_model, "person");
        assert_eq!(o.runtime.threads, 1);
        assert!(o.faces);
    }
}
