//! `ronda detect IMAGE... [--json]`: persons, faces and mask verdicts on still pictures.
//!
//! A picture that cannot be read is reported by name on stderr and the others are still
//! processed; the exit status is then 1. A model or ONNX Runtime problem stops at once (exit 1).

use super::{CliError, CliResult};
use crate::detect::{
    Detection, Detector, DetectorOptions, Face, ImageResult, PERSON, Provider, RuntimeOptions,
    Variant,
};
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelArg {
    Fp32,
    Int8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProviderArg {
    Cpu,
    Cuda,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pictures to look at (JPEG or PNG).
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
    /// Print one JSON object per picture and line instead of text.
    #[arg(long)]
    pub json: bool,
    /// Person model precision.
    #[arg(long, value_enum, default_value = "fp32")]
    pub model: ModelArg,
    /// Person model, by its key in the models' manifest (`<key>_int8` for int8); `person` is the
    /// default (NanoDet-m).
    #[arg(long, value_name = "NAME", default_value = "person")]
    pub person_model: String,
    /// Same as `--model int8`.
    #[arg(long, conflicts_with = "model")]
    pub int8: bool,
    /// Inference threads per model (default: all cores, at most 4).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub threads: Option<u16>,
    /// Where inference runs. `cuda` needs the GPU build of ONNX Runtime; if it is not usable the
    /// command fails and says why (it does not fall back to the CPU).
    #[arg(long, value_enum, default_value = "cpu")]
    pub provider: ProviderArg,
    /// Minimum person score, 0..1.
    #[arg(long, value_name = "SCORE", default_value_t = 0.4)]
    pub threshold: f32,
    /// Also report this COCO class (e.g. car, motorcycle, bicycle); repeatable.
    #[arg(long = "class", value_name = "NAME")]
    pub classes: Vec<String>,
    /// Skip face and mask detection.
    #[arg(long)]
    pub no_faces: bool,
    /// Directory with manifest.toml and the ONNX files (default: RONDA_MODELS_DIR, else models/).
    #[arg(long, value_name = "DIR")]
    pub models: Option<PathBuf>,
    /// ONNX Runtime library (default: RONDA_ORT_LIB, else the copy `make setup` installed).
    #[arg(long, value_name = "FILE")]
    pub ort_lib: Option<PathBuf>,
    /// Dark pictures: `auto` lifts them before person detection, `off` leaves them.
    #[arg(long, value_enum, value_name = "MODE", default_value = "auto")]
    pub low_light: super::analyze::LowLight,
    /// How an int8 model computes on an x86 CPU without VNNI: `exact` (the same as on every
    /// other CPU) or `fast` (quicker, sums that saturate).
    #[arg(long, value_enum, value_name = "MODE", default_value = "exact")]
    pub int8_arithmetic: super::analyze::Int8Arithmetic,
}

impl Args {
    fn options(&self) -> Result<DetectorOptions, CliError> {
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(CliError::Usage(format!(
                "--threshold {} must be between 0 and 1",
                self.threshold
            )));
        }
        let threads = match self.threads {
            Some(n) => n as usize,
            None => std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(4),
        };
        let mut classes = vec!["person".to_string()];
        classes.extend(self.classes.iter().cloned());
        let mut o = DetectorOptions {
            runtime: RuntimeOptions {
                library: self.ort_lib.clone(),
                provider: match self.provider {
                    ProviderArg::Cpu => Provider::Cpu,
                    ProviderArg::Cuda => Provider::Cuda,
                },
                threads,
                int8_exact: self.int8_arithmetic == super::analyze::Int8Arithmetic::Exact,
            },
            variant: if self.int8 || self.model == ModelArg::Int8 {
                Variant::Int8
            } else {
                Variant::Fp32
            },
            person_model: self.person_model.clone(),
            person_threshold: self.threshold,
            classes,
            faces: !self.no_faces,
            ..DetectorOptions::default()
        };
        o.light.enabled = self.low_light == super::analyze::LowLight::Auto;
        if let Some(d) = &self.models {
            o.models_dir = d.clone();
        }
        Ok(o)
    }
}

/// The JSON shape of DESIGN.md, field order included.
#[derive(Serialize)]
struct ImageJson<'a> {
    image: &'a str,
    width: u32,
    height: u32,
    persons: Vec<PersonJson>,
    faces: Vec<FaceJson>,
    /// Other COCO classes, only when asked for with `--class`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    objects: Vec<ObjectJson>,
}

#[derive(Serialize)]
struct PersonJson {
    #[serde(rename = "box")]
    bbox: [f64; 4],
    score: f64,
}

#[derive(Serialize)]
struct FaceJson {
    #[serde(rename = "box")]
    bbox: [f64; 4],
    score: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    mask: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mask_score: Option<f64>,
}

#[derive(Serialize)]
struct ObjectJson {
    class: String,
    #[serde(rename = "box")]
    bbox: [f64; 4],
    score: f64,
}

/// Pixels to 0.1, scores to 0.001: more digits are noise.
fn px(b: &crate::geometry::BBox) -> [f64; 4] {
    b.to_array().map(|v| (v as f64 * 10.0).round() / 10.0)
}

fn score(s: f32) -> f64 {
    (s as f64 * 1000.0).round() / 1000.0
}

fn to_json<'a>(
    name: &'a str,
    r: &ImageResult,
    class_name: &dyn Fn(u16) -> String,
) -> ImageJson<'a> {
    let (persons, others): (Vec<&Detection>, Vec<&Detection>) =
        r.persons.iter().partition(|d| d.class == PERSON);
    ImageJson {
        image: name,
        width: r.width,
        height: r.height,
        persons: persons
            .iter()
            .map(|d| PersonJson {
                bbox: px(&d.bbox),
                score: score(d.score),
            })
            .collect(),
        faces: r.faces.iter().map(face_json).collect(),
        objects: others
            .iter()
            .map(|d| ObjectJson {
                class: class_name(d.class),
                bbox: px(&d.bbox),
                score: score(d.score),
            })
            .collect(),
    }
}

fn face_json(f: &Face) -> FaceJson {
    FaceJson {
        bbox: px(&f.bbox),
        score: score(f.score),
        mask: f.mask.map(|(v, _)| v.as_str()),
        mask_score: f.mask.map(|(_, s)| score(s)),
    }
}

fn to_text(j: &ImageJson<'_>) -> String {
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut s = format!(
        "{} ({}x{}): {}, {}\n",
        j.image,
        j.width,
        j.height,
        plural(j.persons.len(), "person", "persons"),
        plural(j.faces.len(), "face", "faces")
    );
    let fmt_box = |b: &[f64; 4]| format!("[{:.0}, {:.0}, {:.0}, {:.0}]", b[0], b[1], b[2], b[3]);
    for p in &j.persons {
        s += &format!("  person      {:.2}  {}\n", p.score, fmt_box(&p.bbox));
    }
    for o in &j.objects {
        s += &format!("  {:<11} {:.2}  {}\n", o.class, o.score, fmt_box(&o.bbox));
    }
    for f in &j.faces {
        let verdict = match (f.mask, f.mask_score) {
            (Some(m), Some(ms)) => format!("  {m} {ms:.2}"),
            _ => String::new(),
        };
        s += &format!(
            "  face        {:.2}  {}{verdict}\n",
            f.score,
            fmt_box(&f.bbox)
        );
    }
    s
}

pub fn run(args: Args) -> CliResult {
    let opts = args.options()?;
    let mut detector = Detector::new(&opts).map_err(|e| CliError::Runtime(e.to_string()))?;
    let class_names: Vec<String> = (0..80u16)
        .map(|c| detector.person_detector().class_name(c).to_string())
        .collect();
    let class_name = |c: u16| {
        class_names
            .get(c as usize)
            .cloned()
            .unwrap_or_else(|| c.to_string())
    };
    let stdout = std::io::stdout();
    let mut failed = 0usize;
    for path in &args.images {
        let name = path.display().to_string();
        let img = match image::open(path) {
            Ok(i) => i.to_rgb8(),
            Err(e) => {
                eprintln!(
                    "ronda: cannot read image {name}: {}",
                    crate::detect::one_line_error(&e)
                );
                failed += 1;
                continue;
            }
        };
        let result = detector
            .detect_image(&img)
            .map_err(|e| CliError::Runtime(format!("{name}: {e}")))?;
        let j = to_json(&name, &result, &class_name);
        let text = if args.json {
            serde_json::to_string(&j).map_err(|e| CliError::Runtime(e.to_string()))? + "\n"
        } else {
            to_text(&j)
        };
        let mut out = stdout.lock();
        if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
            // The reader went away (`| head`): nothing more to say to it.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(CliError::Runtime(format!("cannot write the results: {e}")));
        }
    }
    if failed > 0 {
        Err(CliError::Reported)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::MaskVerdict;
    use crate::geometry::{BBox, Point};

    #[test]
    fn json_has_the_design_shape() {
        let r = ImageResult {
            width: 810,
            height: 1080,
            persons: vec![
                Detection {
                    bbox: BBox::new(1.04, 2.0, 3.0, 4.0),
                    score: 0.82345,
                    class: 0,
                },
                Detection {
                    bbox: BBox::new(5.0, 6.0, 7.0, 8.0),
                    score: 0.5,
                    class: 2,
                },
            ],
            faces: vec![Face {
                bbox: BBox::new(10.0, 11.0, 12.0, 13.0),
                score: 0.99,
                landmarks: [Point::default(); 5],
                mask: Some((MaskVerdict::NoMask, 0.97)),
            }],
        };
        let j = to_json("bus.jpg", &r, &|c| {
            if c == 2 { "car".into() } else { "?".into() }
        });
        let s = serde_json::to_string(&j).unwrap();
        assert_eq!(
            s,
            r#"{"image":"bus.jpg","width":810,"height":1080,"persons":[{"box":[1.0,2.0,3.0,4.0],"score":0.823}],"faces":[{"box":[10.0,11.0,12.0,13.0],"score":0.99,"mask":"no_mask","mask_score":0.97}],"objects":[{"class":"car","box":[5.0,6.0,7.0,8.0],"score":0.5}]}"#
        );
        let text = to_text(&j);
        assert!(
            text.starts_with("bus.jpg (810x1080): 1 person, 1 face\n"),
            "{text}"
        );
        assert!(text.contains("no_mask 0.97"), "{text}");
        assert!(text.contains("car"), "{text}");
    }
}
