//! The person detector: one of several network families, chosen by the model's manifest entry
//! (`architecture`), each with its own pre- and post-processing:
//!
//! - `nanodet` (the default when absent): NanoDet-m (COCO-80) on a 416x416 stretch of the frame.
//!   Found by trying (FACTS.md section 3): BGR, per-channel mean/std, NCHW; GFL boxes as an
//!   11-bin distribution per side; sigmoid scores already in the graph.
//! - `ssd`: a TF object-detection-API SSD cut after its box decoding: boxes already decoded from
//!   the anchors (ymin, xmin, ymax, xmax, normalised), sigmoid scores with a background column.
//! - `centernet`: CenterNet whose graph ends in its top-100 peaks: x1, y1, x2, y2 in input
//!   pixels, score, class.
//! - `movenet_multipose`: MoveNet MultiPose, 6 persons each with a box (normalised) and a score.
//!
//! The output tensors are found through their `meaning` in the manifest, not by name, so a
//! re-conversion that renames them only needs a new manifest. Whatever the family, class 0 must
//! be "person" (the tracker counts [`super::PERSON`]) and NMS is done here, per class.

use super::error::{DetectError, one_line};
use super::manifest::{self, CheckedModel, Manifest};
use super::resample;
use super::{Detection, DetectorOptions};
use crate::geometry::BBox;
use image::RgbImage;
use ort::value::TensorRef;
use std::path::PathBuf;

/// NanoDet's normalisation, in **BGR** order (as trained with OpenCV images).
const MEAN_BGR: [f32; 3] = [103.53, 116.28, 123.675];
const STD_BGR: [f32; 3] = [57.375, 57.12, 58.395];
/// Output strides of the three heads, fine to coarse.
const STRIDES: [u32; 3] = [8, 16, 32];

/// The network family of a person model: decides pre- and post-processing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Architecture {
    #[default]
    NanoDet,
    Ssd,
    CenterNet,
    MoveNetMultiPose,
}

impl Architecture {
    pub fn as_str(&self) -> &'static str {
        match self {
            Architecture::NanoDet => "nanodet",
            Architecture::Ssd => "ssd",
            Architecture::CenterNet => "centernet",
            Architecture::MoveNetMultiPose => "movenet_multipose",
        }
    }
}

impl std::str::FromStr for Architecture {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "nanodet" => Ok(Architecture::NanoDet),
            "ssd" => Ok(Architecture::Ssd),
            "centernet" => Ok(Architecture::CenterNet),
            "movenet_multipose" => Ok(Architecture::MoveNetMultiPose),
            other => Err(format!(
                "architecture `{other}` is not known (nanodet, ssd, centernet, movenet_multipose)"
            )),
        }
    }
}

/// Which person model file: full precision, or the int8 quantised copy (about 2.5x faster here).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Variant {
    #[default]
    Fp32,
    Int8,
}

impl Variant {
    /// The manifest key of the default person model in this precision.
    pub fn manifest_key(&self) -> &'static str {
        match self {
            Variant::Fp32 => manifest::PERSON,
            Variant::Int8 => manifest::PERSON_INT8,
        }
    }
    /// The manifest key of person model `model` (its fp32 key) in this precision.
    pub fn key_of(&self, model: &str) -> String {
        match self {
            Variant::Fp32 => model.to_string(),
            Variant::Int8 => format!("{model}_int8"),
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Variant::Fp32 => "fp32",
            Variant::Int8 => "int8",
        }
    }
}

impl std::str::FromStr for Variant {
    type Err = DetectError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fp32" | "float32" => Ok(Variant::Fp32),
            "int8" => Ok(Variant::Int8),
            other => Err(DetectError::Setting {
                setting: "model".into(),
                reason: format!("`{other}` is not known; use \"fp32\" or \"int8\""),
            }),
        }
    }
}

/// The frame a preprocessed input came from: what postprocessing needs to map boxes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceSize {
    pub width: u32,
    pub height: u32,
}

/// One output level (stride) of the network, as read from the outputs.
#[derive(Clone, Copy, Debug)]
pub struct Level<'a> {
    pub stride: u32,
    pub grid_w: usize,
    pub grid_h: usize,
    /// `grid_w * grid_h` rows of `num_classes` probabilities.
    pub scores: &'a [f32],
    /// `grid_w * grid_h` rows of `4 * bins` logits: left, top, right, bottom distributions.
    pub boxes: &'a [f32],
}

/// Decoding parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodeParams {
    pub num_classes: usize,
    /// Bins per side of the GFL distribution (11 for NanoDet-m: distances 0..10 strides).
    pub bins: usize,
    /// Minimum class probability.
    pub threshold: f32,
    /// COCO indices to keep (sorted); `[0]` = persons only.
    pub classes: Vec<u16>,
    /// Model input size and source size: boxes are scaled from the first to the second.
    pub input_w: u32,
    pub input_h: u32,
    pub source: SourceSize,
}

/// Candidates of one level above the threshold, boxes in source pixels (pure; unit-tested).
pub fn decode_level(level: &Level<'_>, p: &DecodeParams, out: &mut Vec<Detection>) {
    let cells = level.grid_w * level.grid_h;
    let per_box = 4 * p.bins;
    if level.scores.len() < cells * p.num_classes || level.boxes.len() < cells * per_box {
        return;
    }
    let sx = p.source.width as f32 / p.input_w as f32;
    let sy = p.source.height as f32 / p.input_h as f32;
    let stride = level.stride as f32;
    for cell in 0..cells {
        let row_scores = &level.scores[cell * p.num_classes..(cell + 1) * p.num_classes];
        // Usually nothing passes: test the scores before decoding the box.
        let mut any = false;
        for &c in &p.classes {
            if row_scores
                .get(c as usize)
                .is_some_and(|&s| s >= p.threshold)
            {
                any = true;
                break;
            }
        }
        if !any {
            continue;
        }
        let dist = &level.boxes[cell * per_box..(cell + 1) * per_box];
        let side = |k: usize| expected_bin(&dist[k * p.bins..(k + 1) * p.bins]) * stride;
        let (l, t, r, b) = (side(0), side(1), side(2), side(3));
        let cx = ((cell % level.grid_w) as f32 + 0.5) * stride;
        let cy = ((cell / level.grid_w) as f32 + 0.5) * stride;
        let bbox = BBox::new((cx - l) * sx, (cy - t) * sy, (cx + r) * sx, (cy + b) * sy)
            .clamp(p.source.width as f32, p.source.height as f32);
        for &c in &p.classes {
            let Some(&score) = row_scores.get(c as usize) else {
                continue;
            };
            if score >= p.threshold && bbox.area() > 0.0 {
                out.push(Detection {
                    bbox,
                    score,
                    class: c,
                });
            }
        }
    }
}

/// Expected value of a softmax over `logits`: sum(i * p_i).
pub fn expected_bin(logits: &[f32]) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    let mut weighted = 0.0;
    for (i, &v) in logits.iter().enumerate() {
        let e = (v - max).exp();
        sum += e;
        weighted += e * i as f32;
    }
    if sum > 0.0 { weighted / sum } else { 0.0 }
}

/// Greedy non-maximum suppression per class; the result is sorted by score, highest first.
pub fn nms(dets: &mut Vec<Detection>, iou: f32) {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut keep: Vec<Detection> = Vec::with_capacity(dets.len());
    for d in dets.drain(..) {
        if keep
            .iter()
            .all(|k| k.class != d.class || k.bbox.iou(&d.bbox) <= iou)
        {
            keep.push(d);
        }
    }
    *dets = keep;
}

/// Candidates of an SSD whose boxes are already decoded (pure; unit-tested).
///
/// `boxes`: rows of (ymin, xmin, ymax, xmax) normalised to the input; `scores`: rows of
/// `columns` probabilities whose column 0 is the background, so class `c` is column `c + 1`.
pub fn decode_ssd(
    boxes: &[f32],
    scores: &[f32],
    columns: usize,
    p: &DecodeParams,
    out: &mut Vec<Detection>,
) {
    if columns < 2 {
        return;
    }
    let (w, h) = (p.source.width as f32, p.source.height as f32);
    let rows = (boxes.len() / 4).min(scores.len() / columns);
    for i in 0..rows {
        let row = &scores[i * columns..(i + 1) * columns];
        for &c in &p.classes {
            let Some(&score) = row.get(c as usize + 1) else {
                continue;
            };
            if score < p.threshold {
                continue;
            }
            let b = &boxes[i * 4..i * 4 + 4];
            let bbox = BBox::new(b[1] * w, b[0] * h, b[3] * w, b[2] * h).clamp(w, h);
            if bbox.area() > 0.0 {
                out.push(Detection {
                    bbox,
                    score,
                    class: c,
                });
            }
        }
    }
}

/// Rows of a CenterNet graph's final detections: x1, y1, x2, y2 in input pixels, score, class
/// (pure; unit-tested).
pub fn decode_centernet(rows: &[f32], p: &DecodeParams, out: &mut Vec<Detection>) {
    let sx = p.source.width as f32 / p.input_w as f32;
    let sy = p.source.height as f32 / p.input_h as f32;
    for r in rows.chunks_exact(6) {
        let (score, class) = (r[4], r[5]);
        // The class column is a float holding an index; anything else is not a class.
        if score < p.threshold || !(class >= 0.0 && class.fract() == 0.0) {
            continue;
        }
        let class = class as u16;
        if p.classes.binary_search(&class).is_err() {
            continue;
        }
        let bbox = BBox::new(r[0] * sx, r[1] * sy, r[2] * sx, r[3] * sy)
            .clamp(p.source.width as f32, p.source.height as f32);
        if bbox.area() > 0.0 {
            out.push(Detection { bbox, score, class });
        }
    }
}

/// Values per person in MoveNet MultiPose's output: 17 keypoints x (y, x, score), then the box
/// (ymin, xmin, ymax, xmax, normalised) and the person score.
pub const MOVENET_ROW: usize = 56;

/// Persons of MoveNet MultiPose's output rows (pure; unit-tested). Its only class is person (0).
pub fn decode_movenet(rows: &[f32], p: &DecodeParams, out: &mut Vec<Detection>) {
    if !p.classes.contains(&super::PERSON) {
        return;
    }
    let (w, h) = (p.source.width as f32, p.source.height as f32);
    for r in rows.chunks_exact(MOVENET_ROW) {
        let score = r[55];
        if score < p.threshold {
            continue;
        }
        let bbox = BBox::new(r[52] * w, r[51] * h, r[54] * w, r[53] * h).clamp(w, h);
        if bbox.area() > 0.0 {
            out.push(Detection {
                bbox,
                score,
                class: super::PERSON,
            });
        }
    }
}

/// Level layout resolved from the manifest at load time.
struct LevelSpec {
    stride: u32,
    grid_w: usize,
    grid_h: usize,
}

/// How the outputs are read, resolved from the manifest at load time. The output names to copy
/// after a run are in `PersonDetector::fetch`, in the order given here.
enum Head {
    /// NanoDet: per level, scores then boxes.
    Gfl { levels: Vec<LevelSpec> },
    /// SSD: boxes, then scores with `columns` columns (background first).
    Ssd { columns: usize },
    /// CenterNet: the detections rows.
    CenterNet,
    /// MoveNet MultiPose: the detections rows.
    MoveNet,
}

/// How a frame becomes the input tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
struct InputFormat {
    /// Channels first (NCHW) rather than last (NHWC).
    nchw: bool,
    /// Channel order B, G, R rather than R, G, B.
    bgr: bool,
    /// value = (pixel - mean) / std, per channel in the model's channel order.
    mean: [f32; 3],
    std: [f32; 3],
    /// The model takes int32 pixels (MoveNet), not float32.
    int32: bool,
    /// Average every source pixel under a destination pixel (see
    /// [`resample::resize_antialiased`]) rather than sample 2x2.
    antialias: bool,
}

impl InputFormat {
    fn of(arch: Architecture) -> Self {
        let raw = InputFormat {
            nchw: false,
            bgr: false,
            mean: [0.0; 3],
            std: [1.0; 3],
            int32: false,
            antialias: false,
        };
        match arch {
            Architecture::NanoDet => InputFormat {
                nchw: true,
                bgr: true,
                mean: MEAN_BGR,
                std: STD_BGR,
                int32: false,
                // NanoDet-m keeps the 2x2 sampling it was checked with (golden checks, int8
                // agreement, the counting figures); it gains less (416 px input: a smaller
                // reduction, night AP 0.655 -> 0.667 in a Pillow check).
                antialias: false,
            },
            // TF object detection API's MobileNet preprocessing: x * 2/255 - 1. Antialiased:
            // a 640-wide frame is reduced more than 2x to 300, and 2x2 sampling of a noisy night
            // picture cost this model a tenth of its AP (README "Person detector").
            Architecture::Ssd => InputFormat {
                mean: [127.5; 3],
                std: [127.5; 3],
                antialias: true,
                ..raw
            },
            Architecture::CenterNet => raw,
            Architecture::MoveNetMultiPose => InputFormat { int32: true, ..raw },
        }
    }
}

/// The person detector (and optionally other classes). One owner: `&mut self` on every call.
pub struct PersonDetector {
    model: CheckedModel,
    variant: Variant,
    architecture: Architecture,
    name: String,
    format: InputFormat,
    head: Head,
    input_name: String,
    input_w: usize,
    input_h: usize,
    class_names: Vec<String>,
    params: DecodeParams,
    nms_iou: f32,
    /// The input tensor, reused for every frame (`input_i32` for int32 models).
    input: Vec<f32>,
    input_i32: Vec<i32>,
    /// Outputs copied after each run, in the order the head reads them.
    fetch: Vec<String>,
    /// Copies of the last run's outputs, reused; they let `run` and `postprocess` be timed apart.
    raw: Vec<Vec<f32>>,
}

impl PersonDetector {
    pub fn new(opts: &DetectorOptions, variant: Variant) -> Result<Self, DetectError> {
        let manifest = Manifest::load(&opts.models_dir)?;
        Self::from_manifest(&manifest, opts, variant)
    }

    /// The configured person model (`opts.person_model`) in precision `variant`.
    pub fn from_manifest(
        manifest: &Manifest,
        opts: &DetectorOptions,
        variant: Variant,
    ) -> Result<Self, DetectError> {
        Self::from_key(manifest, &variant.key_of(&opts.person_model), opts)
    }

    /// Any person model of the manifest, by key (`ronda eval-detector` loads candidates so).
    pub fn from_key(
        manifest: &Manifest,
        key: &str,
        opts: &DetectorOptions,
    ) -> Result<Self, DetectError> {
        let model = manifest::load_checked(manifest, key, &opts.runtime)?;
        let contract = |what: String| DetectError::ModelContract {
            path: model.path.clone(),
            what,
        };
        let entry = &model.entry;
        let architecture: Architecture = match &entry.architecture {
            Some(a) => a.parse().map_err(contract)?,
            None => Architecture::NanoDet,
        };
        let format = InputFormat::of(architecture);
        let input = &entry.inputs[0];
        let want_dtype = if format.int32 { "int32" } else { "float32" };
        if input.dtype != want_dtype {
            return Err(contract(format!(
                "input `{}` is {}, a {} model takes {want_dtype}",
                input.name,
                input.dtype,
                architecture.as_str()
            )));
        }
        let (h, w) = match (format.nchw, input.shape.as_slice()) {
            (true, [1, 3, h, w]) | (false, [1, h, w, 3]) => (*h, *w),
            (_, s) => {
                let layout = if format.nchw {
                    "[1, 3, H, W]"
                } else {
                    "[1, H, W, 3]"
                };
                return Err(contract(format!(
                    "input `{}` shape {s:?} is not {layout}",
                    input.name
                )));
            }
        };
        // A dynamic input (-1) takes the size the manifest gives.
        let (input_w, input_h) = match (w, h, entry.input_size) {
            (w, h, _) if w > 0 && h > 0 => (w as usize, h as usize),
            (_, _, Some([iw, ih])) if iw >= 32 && ih >= 32 && iw % 32 == 0 && ih % 32 == 0 => {
                (iw as usize, ih as usize)
            }
            _ => {
                return Err(contract(format!(
                    "input `{}` is dynamic: the manifest needs input_size = [width, height], multiples of 32",
                    input.name
                )));
            }
        };
        let find = |m: &str| {
            entry
                .output_by_meaning(m)
                .cloned()
                .ok_or_else(|| contract(format!("no output has meaning = \"{m}\"")))
        };
        let mut fetch = Vec::new();
        let num_classes;
        let mut bins = 0usize;
        let head = match architecture {
            Architecture::NanoDet => {
                let mut levels = Vec::new();
                let mut classes = 0usize;
                for stride in STRIDES {
                    let (scores, boxes) = (
                        find(&format!("scores_stride{stride}"))?,
                        find(&format!("boxes_stride{stride}"))?,
                    );
                    let grid_w = input_w.div_ceil(stride as usize);
                    let grid_h = input_h.div_ceil(stride as usize);
                    let cells = (grid_w * grid_h) as i64;
                    match (scores.shape.as_slice(), boxes.shape.as_slice()) {
                        ([1, n, c], [1, m, b])
                            if *n == cells && *m == cells && *c > 0 && *b > 0 && b % 4 == 0 =>
                        {
                            classes = *c as usize;
                            bins = (*b / 4) as usize;
                        }
                        _ => {
                            return Err(contract(format!(
                                "outputs for stride {stride} have shapes {:?} and {:?}, expected [1, {cells}, classes] and [1, {cells}, 4*bins]",
                                scores.shape, boxes.shape
                            )));
                        }
                    }
                    fetch.push(scores.name);
                    fetch.push(boxes.name);
                    levels.push(LevelSpec {
                        stride,
                        grid_w,
                        grid_h,
                    });
                }
                num_classes = classes;
                Head::Gfl { levels }
            }
            Architecture::Ssd => {
                let (boxes, scores) = (find("boxes")?, find("scores")?);
                let columns = match (boxes.shape.as_slice(), scores.shape.as_slice()) {
                    ([1, n, 4], [1, m, c]) if n == m && *c >= 2 => *c as usize,
                    _ => {
                        return Err(contract(format!(
                            "SSD outputs have shapes {:?} and {:?}, expected [1, N, 4] and [1, N, 1 + classes]",
                            boxes.shape, scores.shape
                        )));
                    }
                };
                fetch.push(boxes.name);
                fetch.push(scores.name);
                num_classes = columns - 1;
                Head::Ssd { columns }
            }
            Architecture::CenterNet | Architecture::MoveNetMultiPose => {
                let d = find("detections")?;
                let row = if architecture == Architecture::CenterNet {
                    6
                } else {
                    MOVENET_ROW as i64
                };
                if !matches!(d.shape.as_slice(), [1, _, r] if *r == row) {
                    return Err(contract(format!(
                        "output `{}` has shape {:?}, expected [1, N, {row}]",
                        d.name, d.shape
                    )));
                }
                fetch.push(d.name);
                num_classes = entry.classes.len().max(1);
                if architecture == Architecture::CenterNet {
                    Head::CenterNet
                } else {
                    Head::MoveNet
                }
            }
        };
        let class_names = if entry.classes.is_empty() {
            (0..num_classes).map(|i| i.to_string()).collect()
        } else {
            entry.classes.clone()
        };
        if class_names.len() != num_classes {
            return Err(contract(format!(
                "the manifest lists {} classes but the model outputs {num_classes}",
                class_names.len()
            )));
        }
        if class_names.first().map(String::as_str) != Some("person") {
            return Err(contract(
                "class 0 must be \"person\" (the tracker counts class 0)".into(),
            ));
        }
        let mut classes = Vec::new();
        for name in &opts.classes {
            match class_names.iter().position(|c| c == name) {
                Some(i) => classes.push(i as u16),
                None => {
                    return Err(DetectError::Setting {
                        setting: "classes".into(),
                        reason: format!(
                            "`{name}` is not a class of {} (known: {})",
                            model.path.display(),
                            class_names.join(", ")
                        ),
                    });
                }
            }
        }
        classes.sort_unstable();
        classes.dedup();
        if !(0.0..=1.0).contains(&opts.person_threshold) || !(0.0..=1.0).contains(&opts.nms_iou) {
            return Err(DetectError::Setting {
                setting: "score_threshold".into(),
                reason: "thresholds are between 0 and 1".into(),
            });
        }
        let params = DecodeParams {
            num_classes,
            bins,
            threshold: opts.person_threshold,
            classes,
            input_w: input_w as u32,
            input_h: input_h as u32,
            source: SourceSize {
                width: input_w as u32,
                height: input_h as u32,
            },
        };
        let int8 = entry.precision.as_deref() == Some("int8") || key.ends_with("_int8");
        let plane = 3 * input_w * input_h;
        Ok(Self {
            input_name: input.name.clone(),
            variant: if int8 { Variant::Int8 } else { Variant::Fp32 },
            architecture,
            name: entry.name.clone().unwrap_or_else(|| key.to_string()),
            format,
            head,
            input_w,
            input_h,
            raw: fetch.iter().map(|_| Vec::new()).collect(),
            fetch,
            class_names,
            params,
            nms_iou: opts.nms_iou,
            input: if format.int32 {
                Vec::new()
            } else {
                vec![0.0; plane]
            },
            input_i32: if format.int32 {
                vec![0; plane]
            } else {
                Vec::new()
            },
            model,
        })
    }

    /// Persons (and the other configured classes) in `img`, boxes in its pixels, best first.
    pub fn detect(&mut self, img: &RgbImage) -> Result<Vec<Detection>, DetectError> {
        let src = self.preprocess(img);
        self.run()?;
        Ok(self.postprocess(src))
    }

    /// Fill the input tensor from `img`: stretch to the model size, then the family's channel
    /// order, normalisation and layout.
    pub fn preprocess(&mut self, img: &RgbImage) -> SourceSize {
        let (w, h) = (self.input_w, self.input_h);
        let plane = w * h;
        let f = self.format;
        let (input, input_i32) = (&mut self.input, &mut self.input_i32);
        let put = |x: usize, y: usize, rgb: [f32; 3]| {
            let px = if f.bgr { [rgb[2], rgb[1], rgb[0]] } else { rgb };
            let i = y * w + x;
            for (c, v) in px.into_iter().enumerate() {
                let at = if f.nchw { c * plane + i } else { i * 3 + c };
                if f.int32 {
                    input_i32[at] = v.round() as i32;
                } else {
                    input[at] = (v - f.mean[c]) / f.std[c];
                }
            }
        };
        if f.antialias {
            resample::resize_antialiased(img, w, h, put);
        } else {
            resample::sample_bilinear(img, resample::full(img), w, h, put);
        }
        SourceSize {
            width: img.width(),
            height: img.height(),
        }
    }

    /// Run the network on the current input tensor; keeps the outputs for [`Self::postprocess`].
    pub fn run(&mut self) -> Result<(), DetectError> {
        let path = &self.model.path;
        let fail = |e: &dyn std::fmt::Display| DetectError::Inference {
            path: path.clone(),
            reason: one_line(e),
        };
        let shape = if self.format.nchw {
            [1usize, 3, self.input_h, self.input_w]
        } else {
            [1usize, self.input_h, self.input_w, 3]
        };
        let outputs = if self.format.int32 {
            let tensor =
                TensorRef::from_array_view((shape, &self.input_i32[..])).map_err(|e| fail(&e))?;
            self.model
                .session
                .run(ort::inputs![self.input_name.as_str() => tensor])
        } else {
            let tensor =
                TensorRef::from_array_view((shape, &self.input[..])).map_err(|e| fail(&e))?;
            self.model
                .session
                .run(ort::inputs![self.input_name.as_str() => tensor])
        }
        .map_err(|e| fail(&e))?;
        for (name, buf) in self.fetch.iter().zip(self.raw.iter_mut()) {
            let value = outputs
                .get(name.as_str())
                .ok_or_else(|| fail(&format!("output `{name}` missing")))?;
            let (_, data) = value.try_extract_tensor::<f32>().map_err(|e| fail(&e))?;
            buf.clear();
            buf.extend_from_slice(data);
        }
        Ok(())
    }

    /// Decode and suppress the last run's outputs into detections in `src` pixels.
    pub fn postprocess(&self, src: SourceSize) -> Vec<Detection> {
        let params = DecodeParams {
            source: src,
            ..self.params.clone()
        };
        let mut dets = Vec::new();
        match &self.head {
            Head::Gfl { levels } => {
                for (k, spec) in levels.iter().enumerate() {
                    let level = Level {
                        stride: spec.stride,
                        grid_w: spec.grid_w,
                        grid_h: spec.grid_h,
                        scores: &self.raw[2 * k],
                        boxes: &self.raw[2 * k + 1],
                    };
                    decode_level(&level, &params, &mut dets);
                }
            }
            Head::Ssd { columns } => {
                decode_ssd(&self.raw[0], &self.raw[1], *columns, &params, &mut dets)
            }
            Head::CenterNet => decode_centernet(&self.raw[0], &params, &mut dets),
            Head::MoveNet => decode_movenet(&self.raw[0], &params, &mut dets),
        }
        nms(&mut dets, self.nms_iou);
        dets
    }

    /// Name of a class index (`person`, `car`, ...).
    pub fn class_name(&self, class: u16) -> &str {
        self.class_names
            .get(class as usize)
            .map_or("?", String::as_str)
    }

    pub fn variant(&self) -> Variant {
        self.variant
    }

    pub fn architecture(&self) -> Architecture {
        self.architecture
    }

    /// The manifest's `name` of the model (its key when it has none).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn model_path(&self) -> &PathBuf {
        &self.model.path
    }

    /// Model input size (width, height).
    pub fn input_size(&self) -> (usize, usize) {
        (self.input_w, self.input_h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(classes: Vec<u16>) -> DecodeParams {
        DecodeParams {
            num_classes: 3,
            bins: 11,
            threshold: 0.4,
            classes,
            input_w: 32,
            input_h: 32,
            source: SourceSize {
                width: 64,
                height: 32,
            },
        }
    }

    /// A distribution whose softmax puts (almost) all mass on bin `k`.
    fn peaked(k: usize) -> [f32; 11] {
        let mut d = [-20.0; 11];
        d[k] = 20.0;
        d
    }

    #[test]
    fn expected_bin_is_softmax_mean() {
        assert!((expected_bin(&peaked(3)) - 3.0).abs() < 1e-4);
        // uniform over 0..=10 -> 5
        assert!((expected_bin(&[0.0; 11]) - 5.0).abs() < 1e-5);
        // two equal peaks at 2 and 4 -> 3
        let mut d = [-30.0; 11];
        d[2] = 5.0;
        d[4] = 5.0;
        assert!((expected_bin(&d) - 3.0).abs() < 1e-4);
    }

    #[test]
    fn decodes_centre_distances_and_scales_to_source() {
        // 4x4 grid at stride 8 on a 32x32 input; one confident person in cell (col 1, row 2).
        let cells = 16;
        let mut scores = vec![0.0f32; cells * 3];
        let mut boxes = vec![0.0f32; cells * 44];
        let cell = 2 * 4 + 1;
        scores[cell * 3] = 0.9;
        for (k, bin) in [1usize, 2, 1, 0].into_iter().enumerate() {
            boxes[cell * 44 + k * 11..cell * 44 + (k + 1) * 11].copy_from_slice(&peaked(bin));
        }
        let level = Level {
            stride: 8,
            grid_w: 4,
            grid_h: 4,
            scores: &scores,
            boxes: &boxes,
        };
        let mut out = Vec::new();
        decode_level(&level, &params(vec![0]), &mut out);
        assert_eq!(out.len(), 1);
        let d = out[0];
        // centre (12, 20) in input pixels; l=8, t=16, r=8, b=0; x doubled to source (64 wide)
        let want = BBox::new(8.0, 4.0, 40.0, 20.0);
        for (a, b) in d.bbox.to_array().iter().zip(want.to_array()) {
            assert!((a - b).abs() < 1e-3, "{:?} vs {want:?}", d.bbox);
        }
        assert_eq!((d.class, d.score), (0, 0.9));
    }

    #[test]
    fn threshold_and_class_filter() {
        let cells = 16;
        let mut scores = vec![0.0f32; cells * 3];
        let mut boxes = vec![0.0f32; cells * 44];
        for c in 0..cells {
            for k in 0..4 {
                boxes[c * 44 + k * 11..c * 44 + (k + 1) * 11].copy_from_slice(&peaked(1));
            }
        }
        scores[0] = 0.39; // person below threshold
        scores[3 + 2] = 0.8; // class 2 ("car") in cell 1
        scores[6] = 0.4; // person exactly at threshold in cell 2
        let level = Level {
            stride: 8,
            grid_w: 4,
            grid_h: 4,
            scores: &scores,
            boxes: &boxes,
        };
        let mut persons = Vec::new();
        decode_level(&level, &params(vec![0]), &mut persons);
        assert_eq!(persons.len(), 1);
        assert_eq!(persons[0].score, 0.4);
        let mut both = Vec::new();
        decode_level(&level, &params(vec![0, 2]), &mut both);
        assert_eq!(both.iter().map(|d| d.class).collect::<Vec<_>>(), vec![2, 0]);
    }

    #[test]
    fn short_outputs_decode_nothing() {
        let level = Level {
            stride: 8,
            grid_w: 4,
            grid_h: 4,
            scores: &[1.0; 10],
            boxes: &[0.0; 10],
        };
        let mut out = Vec::new();
        decode_level(&level, &params(vec![0]), &mut out);
        assert!(out.is_empty());
    }

    fn det(x: f32, score: f32, class: u16) -> Detection {
        Detection {
            bbox: BBox::new(x, 0.0, x + 10.0, 10.0),
            score,
            class,
        }
    }

    #[test]
    fn nms_keeps_best_of_overlaps_per_class() {
        let mut d = vec![
            det(0.0, 0.5, 0),
            det(1.0, 0.9, 0), // overlaps the first (IoU 9/11 = 0.82): first is dropped
            det(20.0, 0.6, 0), // apart
            det(1.0, 0.7, 2), // same place, other class: kept
            det(5.0, 0.8, 0), // IoU with 0.9 one: 6/14 = 0.43 <= 0.45: kept
        ];
        nms(&mut d, 0.45);
        let got: Vec<(f32, u16)> = d.iter().map(|d| (d.score, d.class)).collect();
        assert_eq!(got, vec![(0.9, 0), (0.8, 0), (0.7, 2), (0.6, 0)]);
    }

    #[test]
    fn ssd_boxes_are_yxyx_normalised_and_skip_the_background_column() {
        // two anchors, columns (background, person); the second anchor is a person at 0.9
        let boxes = [0.0, 0.0, 0.1, 0.1, 0.25, 0.5, 0.75, 1.0];
        let scores = [0.1, 0.2, 0.05, 0.9];
        let mut p = params(vec![0]);
        p.num_classes = 1;
        let mut out = Vec::new();
        decode_ssd(&boxes, &scores, 2, &p, &mut out);
        assert_eq!(out.len(), 1);
        // source 64x32: x = 0.5*64 .. 1.0*64, y = 0.25*32 .. 0.75*32
        assert_eq!(out[0].bbox, BBox::new(32.0, 8.0, 64.0, 24.0));
        assert_eq!((out[0].class, out[0].score), (0, 0.9));
        // a background-only row never becomes a detection, whatever its background score
        let mut none = Vec::new();
        decode_ssd(&[0.0, 0.0, 1.0, 1.0], &[0.99, 0.0], 2, &p, &mut none);
        assert!(none.is_empty());
    }

    #[test]
    fn centernet_rows_scale_from_input_pixels_and_filter_classes() {
        // input 32x32, source 64x32: x doubles
        let rows = [
            4.0, 2.0, 8.0, 30.0, 0.8, 0.0, // person
            0.0, 0.0, 4.0, 4.0, 0.9, 2.0, // class 2, not asked for
            1.0, 1.0, 2.0, 2.0, 0.3, 0.0, // below threshold
        ];
        let mut out = Vec::new();
        decode_centernet(&rows, &params(vec![0]), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].bbox, BBox::new(8.0, 2.0, 16.0, 30.0));
        let mut both = Vec::new();
        decode_centernet(&rows, &params(vec![0, 2]), &mut both);
        assert_eq!(both.iter().map(|d| d.class).collect::<Vec<_>>(), vec![0, 2]);
    }

    #[test]
    fn movenet_box_follows_the_keypoints() {
        let mut row = [0.0f32; MOVENET_ROW];
        row[51..56].copy_from_slice(&[0.25, 0.5, 0.75, 1.0, 0.6]);
        let mut two = row.to_vec();
        let mut weak = row;
        weak[55] = 0.1;
        two.extend_from_slice(&weak);
        let mut out = Vec::new();
        decode_movenet(&two, &params(vec![0]), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].bbox, BBox::new(32.0, 8.0, 64.0, 24.0));
        assert_eq!(out[0].class, 0);
    }

    #[test]
    fn architecture_names_round_trip() {
        for a in [
            Architecture::NanoDet,
            Architecture::Ssd,
            Architecture::CenterNet,
            Architecture::MoveNetMultiPose,
        ] {
            assert_eq!(a.as_str().parse::<Architecture>(), Ok(a));
        }
        assert!("yolo".parse::<Architecture>().unwrap_err().contains("yolo"));
    }

    #[test]
    fn variant_parses() {
        assert_eq!("INT8".parse::<Variant>().unwrap(), Variant::Int8);
        assert_eq!("fp32".parse::<Variant>().unwrap().manifest_key(), "person");
        assert_eq!(Variant::Int8.key_of("nanodet"), "nanodet_int8");
        assert_eq!(Variant::Fp32.key_of("nanodet"), "nanodet");
        assert!("fp16".parse::<Variant>().is_err());
    }
}
