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

use super::decode::{
    DecodeParams, Level, MOVENET_ROW, SourceSize, decode_centernet, decode_level, decode_movenet,
    decode_ssd, nms, suppress,
};
use super::error::{DetectError, one_line};
use super::manifest::{self, CheckedModel, Manifest};
use super::resample;
use super::{Detection, DetectorOptions};
use crate::geometry::BBox;
use image::RgbImage;
use ort::value::TensorRef;

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

/// The smallest input a region is fed at (a model that takes any size): below it the network's
/// coarsest level (stride 32) would have a cell or two.
pub const MIN_REGION_INPUT: usize = 96;

/// The input side a region `side` pixels across is fed at by a model of any size whose
/// whole-picture input is `base`: its own resolution rounded up to a multiple of 32, at least
/// [`MIN_REGION_INPUT`], at most `base` (a larger region is scaled down to it).
pub fn region_input_side(side: f32, base: usize) -> usize {
    ((side.ceil().max(1.0) as usize).div_ceil(32) * 32).clamp(MIN_REGION_INPUT.min(base), base)
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
    /// The manifest's input size: whole pictures are fed at it.
    base_w: usize,
    base_h: usize,
    /// The model takes any input size (multiples of 32): regions are fed at their own size.
    any_size: bool,
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
                        // -1: a model with a dynamic input size, whose cells follow it
                        ([1, n, c], [1, m, b])
                            if (*n == cells || *n == -1)
                                && (*m == cells || *m == -1)
                                && *c > 0
                                && *b > 0
                                && b % 4 == 0 =>
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
            base_w: input_w,
            base_h: input_h,
            any_size: w <= 0 && h <= 0 && matches!(architecture, Architecture::NanoDet),
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
        let mut out = Vec::new();
        self.detect_into(img, &mut out)?;
        Ok(out)
    }

    /// [`Self::detect`] into `out` (cleared first), whose room is reused from call to call.
    pub fn detect_into(
        &mut self,
        img: &RgbImage,
        out: &mut Vec<Detection>,
    ) -> Result<(), DetectError> {
        out.clear();
        self.set_input_size(self.base_w, self.base_h);
        let src = self.preprocess(img);
        self.run()?;
        self.decode_into(src, (0.0, 0.0), out);
        nms(out, self.nms_iou);
        Ok(())
    }

    /// Persons in `region` of `img` (a square in its pixels, inside it), added to `out` in
    /// picture pixels, not suppressed against what `out` holds already. A model that takes any
    /// size sees the region at [`region_input_side`]; any other model sees it at its fixed size.
    pub fn detect_region(
        &mut self,
        img: &RgbImage,
        region: BBox,
        out: &mut Vec<Detection>,
    ) -> Result<(), DetectError> {
        let (w, h) = if self.any_size {
            (
                region_input_side(region.width(), self.base_w),
                region_input_side(region.height(), self.base_h),
            )
        } else {
            (self.base_w, self.base_h)
        };
        self.set_input_size(w, h);
        self.fill_input(img, region);
        self.run()?;
        let from = out.len();
        let src = SourceSize {
            width: region.width().round().max(1.0) as u32,
            height: region.height().round().max(1.0) as u32,
        };
        self.decode_into(src, (region.x1, region.y1), out);
        // suppressed within the region here (in place); across regions by the caller
        let kept = suppress(&mut out[from..], self.nms_iou);
        out.truncate(from + kept);
        Ok(())
    }

    /// The model takes any input size (regions are fed at their own).
    pub fn any_size(&self) -> bool {
        self.any_size
    }

    /// The NMS overlap of this model's settings (for suppressing across regions).
    pub fn nms_iou(&self) -> f32 {
        self.nms_iou
    }

    /// Feed the network `w` x `h` from now on (a model that takes any size; no-op otherwise or
    /// when unchanged). The buffers keep their room, so sizes seen before cost no allocation.
    fn set_input_size(&mut self, w: usize, h: usize) {
        if !self.any_size || (w, h) == (self.input_w, self.input_h) {
            return;
        }
        self.input_w = w;
        self.input_h = h;
        self.params.input_w = w as u32;
        self.params.input_h = h as u32;
        if let Head::Gfl { levels } = &mut self.head {
            for l in levels.iter_mut() {
                l.grid_w = w.div_ceil(l.stride as usize);
                l.grid_h = h.div_ceil(l.stride as usize);
            }
        }
        self.input.resize(3 * w * h, 0.0);
    }

    /// Fill the input tensor from `img`: stretch to the model size, then the family's channel
    /// order, normalisation and layout.
    pub fn preprocess(&mut self, img: &RgbImage) -> SourceSize {
        self.fill_input(img, resample::full(img));
        SourceSize {
            width: img.width(),
            height: img.height(),
        }
    }

    /// Fill the input tensor from `region` of `img` (the whole picture: antialiased where the
    /// family wants it).
    fn fill_input(&mut self, img: &RgbImage, region: BBox) {
        let whole = region == resample::full(img);
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
        if f.antialias && whole {
            resample::resize_antialiased(img, w, h, put);
        } else {
            resample::sample_bilinear(img, region, w, h, put);
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
    pub fn postprocess(&mut self, src: SourceSize) -> Vec<Detection> {
        let mut dets = Vec::new();
        self.decode_into(src, (0.0, 0.0), &mut dets);
        nms(&mut dets, self.nms_iou);
        dets
    }

    /// Decode the last run's outputs (input from `src`, whose top-left corner is `offset` in
    /// the picture) and add them to `dets`, unsuppressed.
    fn decode_into(&mut self, src: SourceSize, offset: (f32, f32), dets: &mut Vec<Detection>) {
        let from = dets.len();
        self.params.source = src;
        let params = &self.params;
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
                    decode_level(&level, params, dets);
                }
            }
            Head::Ssd { columns } => decode_ssd(&self.raw[0], &self.raw[1], *columns, params, dets),
            Head::CenterNet => decode_centernet(&self.raw[0], params, dets),
            Head::MoveNet => decode_movenet(&self.raw[0], params, dets),
        }
        if offset != (0.0, 0.0) {
            for d in &mut dets[from..] {
                d.bbox = BBox::new(
                    d.bbox.x1 + offset.0,
                    d.bbox.y1 + offset.1,
                    d.bbox.x2 + offset.0,
                    d.bbox.y2 + offset.1,
                );
            }
        }
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

    /// Model input size (width, height).
    pub fn input_size(&self) -> (usize, usize) {
        (self.input_w, self.input_h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
