//! Detection on the box: ONNX Runtime loading, the model contract (models/manifest.toml),
//! the person detector (NanoDet and other families, chosen by the manifest), its evaluation
//! against ground truth, the face detector (RetinaFace) and the mask classifier.
//!
//! Uses (of the crate, besides its own folder): events, geometry, paths.

use crate::geometry::{BBox, Point};

/// COCO class index of a person in the NanoDet output.
pub const PERSON: u16 = 0;

/// One object found by the person detector, in source-image pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detection {
    pub bbox: BBox,
    pub score: f32,
    /// COCO-80 class index (0 = person).
    pub class: u16,
}

// The verdict is part of an event (and of a gate book record): it lives with the event kinds,
// so that events and the store do not depend on the detector.
pub use crate::events::MaskVerdict;

/// A face with its five landmarks (eyes, nose, mouth corners) and, once classified, a mask verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct Face {
    pub bbox: BBox,
    pub score: f32,
    pub landmarks: [Point; 5],
    /// Verdict and its probability, when the mask classifier ran.
    pub mask: Option<(MaskVerdict, f32)>,
}

pub mod dark;
mod decode;
mod detector;
mod error;
pub mod eval;
pub mod face;
pub mod light;
pub mod manifest;
pub mod mask;
pub mod person;
pub mod region;
pub(crate) mod resample;
pub mod runtime;

pub use decode::SourceSize;
pub use detector::{
    Detector, DetectorInfo, DetectorOptions, HEAD_FRACTION, ImageResult, MODELS_DIR_ENV,
    default_models_dir, head_region,
};
pub use error::{DetectError, one_line as one_line_error};
pub use face::{FaceDetector, FaceParams};
pub use mask::{FaceCrop, MaskClassifier};
pub use person::{Architecture, PersonDetector, Variant};
pub use runtime::{Provider, RuntimeOptions};
