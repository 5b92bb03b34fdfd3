//! The model contract, `models/manifest.toml`: which file each role uses, its sha256, and the
//! names, shapes and types of its inputs and outputs. It is checked when a model is loaded, so a
//! damaged or swapped file fails at start with a message naming it, not with nonsense boxes.

use super::error::{DetectError, one_line};
use ort::session::Session;
use ort::value::{TensorElementType, ValueType};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// File name of the manifest inside the models directory.
pub const MANIFEST_FILE: &str = "manifest.toml";

/// Manifest keys of the four models.
pub const PERSON: &str = "person";
pub const PERSON_INT8: &str = "person_int8";
pub const FACE: &str = "face";
pub const MASK: &str = "mask";

#[derive(Clone, Debug)]
pub struct Manifest {
    /// The directory holding the manifest and the model files.
    pub dir: PathBuf,
    /// Path of manifest.toml (for messages).
    pub path: PathBuf,
    pub models: BTreeMap<String, ModelEntry>,
}

#[derive(Clone, Debug, Deserialize)]
struct RawManifest {
    #[serde(default)]
    models: BTreeMap<String, ModelEntry>,
}

/// One `[models.<key>]` table.
#[derive(Clone, Debug, Deserialize)]
pub struct ModelEntry {
    /// File name relative to the models directory.
    pub file: String,
    pub sha256: String,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub licence: Option<String>,
    #[serde(default)]
    pub preprocess: Option<String>,
    /// Person models: the network family, which decides pre- and post-processing
    /// (`nanodet` when absent; see `person::Architecture`).
    #[serde(default)]
    pub architecture: Option<String>,
    /// Person models: a short name for tables and logs ("NanoDet-m").
    #[serde(default)]
    pub name: Option<String>,
    /// Person models: "fp32" or "int8".
    #[serde(default)]
    pub precision: Option<String>,
    /// Person models: the score at which this model's boxes are taken as persons when nothing
    /// else is configured (scores are not comparable between models).
    #[serde(default)]
    pub score_threshold: Option<f32>,
    /// Person models with a dynamic input: the size fed to them, `[width, height]`.
    #[serde(default)]
    pub input_size: Option<[u32; 2]>,
    /// Class names in output order (person detector: COCO-80).
    #[serde(default)]
    pub classes: Vec<String>,
    #[serde(default)]
    pub inputs: Vec<TensorSpec>,
    #[serde(default)]
    pub outputs: Vec<TensorSpec>,
}

/// One input or output: `-1` in `shape` is a dynamic dimension.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct TensorSpec {
    pub name: String,
    pub shape: Vec<i64>,
    pub dtype: String,
    /// What the code reads from an output (`scores_stride8`, `detections`, `probabilities`).
    #[serde(default)]
    pub meaning: Option<String>,
}

impl Manifest {
    /// Read `<dir>/manifest.toml`.
    pub fn load(dir: &Path) -> Result<Manifest, DetectError> {
        let path = dir.join(MANIFEST_FILE);
        if !path.is_file() {
            return Err(DetectError::ManifestMissing { path });
        }
        let text = std::fs::read_to_string(&path).map_err(|e| DetectError::ManifestRead {
            path: path.clone(),
            reason: one_line(e),
        })?;
        Self::parse(&text, dir, &path)
    }

    /// Parse manifest text; `dir` is where its files live, `path` names it in messages.
    pub fn parse(text: &str, dir: &Path, path: &Path) -> Result<Manifest, DetectError> {
        let invalid = |reason: String| DetectError::ManifestInvalid {
            path: path.to_path_buf(),
            reason,
        };
        let raw: RawManifest = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            match line {
                Some(l) => invalid(format!("line {l}: {}", one_line(e.message()))),
                None => invalid(one_line(e.message())),
            }
        })?;
        for (key, m) in &raw.models {
            if m.file.is_empty() || m.file.contains("..") || Path::new(&m.file).is_absolute() {
                return Err(invalid(format!(
                    "[models.{key}] file = {:?} must be a file name inside the models directory",
                    m.file
                )));
            }
            if m.sha256.len() != 64 || !m.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid(format!(
                    "[models.{key}] sha256 must be 64 hex digits"
                )));
            }
            if m.inputs.is_empty() || m.outputs.is_empty() {
                return Err(invalid(format!(
                    "[models.{key}] needs at least one [[inputs]] and one [[outputs]]"
                )));
            }
            for t in m.inputs.iter().chain(&m.outputs) {
                if t.shape.iter().any(|&d| d < -1 || d == 0) {
                    return Err(invalid(format!(
                        "[models.{key}] tensor `{}` has shape {:?}: dimensions are positive or -1 (dynamic)",
                        t.name, t.shape
                    )));
                }
            }
        }
        Ok(Manifest {
            dir: dir.to_path_buf(),
            path: path.to_path_buf(),
            models: raw.models,
        })
    }

    pub fn entry(&self, key: &str) -> Result<&ModelEntry, DetectError> {
        self.models
            .get(key)
            .ok_or_else(|| DetectError::ManifestEntryMissing {
                path: self.path.clone(),
                key: key.into(),
            })
    }

    fn file_path(&self, entry: &ModelEntry) -> PathBuf {
        self.dir.join(&entry.file)
    }

    /// The file of `key` exists and its sha256 is the recorded one. Returns its path.
    fn check_file(&self, key: &str) -> Result<PathBuf, DetectError> {
        let entry = self.entry(key)?;
        let path = self.file_path(entry);
        if !path.is_file() {
            return Err(DetectError::ModelMissing {
                path,
                key: key.into(),
            });
        }
        let actual = sha256_file(&path)?;
        if !actual.eq_ignore_ascii_case(&entry.sha256) {
            return Err(DetectError::ModelChecksum {
                path,
                expected: entry.sha256.to_ascii_lowercase(),
                actual,
            });
        }
        Ok(path)
    }
}

/// Hex sha256 of a file, read in blocks.
pub fn sha256_file(path: &Path) -> Result<String, DetectError> {
    let read_err = |e: std::io::Error| DetectError::ModelRead {
        path: path.to_path_buf(),
        reason: one_line(e),
    };
    let mut f = std::fs::File::open(path).map_err(read_err)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(read_err)?;
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The dtype names the manifest uses (numpy's).
fn dtype_name(t: TensorElementType) -> String {
    match t {
        TensorElementType::Float32 => "float32".into(),
        TensorElementType::Float16 => "float16".into(),
        TensorElementType::Float64 => "float64".into(),
        TensorElementType::Int8 => "int8".into(),
        TensorElementType::Uint8 => "uint8".into(),
        TensorElementType::Int16 => "int16".into(),
        TensorElementType::Uint16 => "uint16".into(),
        TensorElementType::Int32 => "int32".into(),
        TensorElementType::Uint32 => "uint32".into(),
        TensorElementType::Int64 => "int64".into(),
        TensorElementType::Uint64 => "uint64".into(),
        TensorElementType::Bool => "bool".into(),
        other => other.to_string(),
    }
}

/// What one session input or output looks like, as read from ONNX Runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    pub name: String,
    pub shape: Vec<i64>,
    pub dtype: String,
}

/// The ports of a loaded session.
fn session_ports(session: &Session) -> (Vec<Port>, Vec<Port>) {
    let conv = |o: &ort::value::Outlet| {
        let (shape, dtype) = match o.dtype() {
            ValueType::Tensor { ty, shape, .. } => {
                (shape.iter().copied().collect(), dtype_name(*ty))
            }
            other => (Vec::new(), format!("{other:?}")),
        };
        Port {
            name: o.name().to_string(),
            shape,
            dtype,
        }
    };
    (
        session.inputs().iter().map(conv).collect(),
        session.outputs().iter().map(conv).collect(),
    )
}

/// Compare the ports of a model with the manifest entry. Every difference is listed (`; `
/// separated) so one run shows all of them.
fn compare_ports(entry: &ModelEntry, inputs: &[Port], outputs: &[Port]) -> Result<(), String> {
    let mut diffs = Vec::new();
    compare_side("input", &entry.inputs, inputs, &mut diffs);
    compare_side("output", &entry.outputs, outputs, &mut diffs);
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(diffs.join("; "))
    }
}

fn compare_side(side: &str, want: &[TensorSpec], have: &[Port], diffs: &mut Vec<String>) {
    for w in want {
        match have.iter().find(|p| p.name == w.name) {
            None => {
                let names: Vec<&str> = have.iter().map(|p| p.name.as_str()).collect();
                diffs.push(format!(
                    "{side} `{}` is missing (the model has {side}s {names:?})",
                    w.name
                ));
            }
            Some(p) => {
                if p.shape != w.shape {
                    diffs.push(format!(
                        "{side} `{}` has shape {:?}, the manifest says {:?} (-1 = dynamic)",
                        w.name, p.shape, w.shape
                    ));
                }
                if p.dtype != w.dtype {
                    diffs.push(format!(
                        "{side} `{}` has type {}, the manifest says {}",
                        w.name, p.dtype, w.dtype
                    ));
                }
            }
        }
    }
    for p in have {
        if !want.iter().any(|w| w.name == p.name) {
            diffs.push(format!("{side} `{}` is not in the manifest", p.name));
        }
    }
}

/// A session whose file and ports were checked against the manifest.
pub struct CheckedModel {
    pub session: Session,
    pub path: PathBuf,
    pub key: String,
    pub entry: ModelEntry,
}

/// Check the file (exists, sha256), load it, check its ports. The one way models are loaded.
pub fn load_checked(
    manifest: &Manifest,
    key: &str,
    runtime: &super::runtime::RuntimeOptions,
) -> Result<CheckedModel, DetectError> {
    let path = manifest.check_file(key)?;
    let entry = manifest.entry(key)?.clone();
    let session = super::runtime::session(runtime, &path)?;
    let (inputs, outputs) = session_ports(&session);
    compare_ports(&entry, &inputs, &outputs).map_err(|what| DetectError::ModelContract {
        path: path.clone(),
        what,
    })?;
    tracing::debug!(model = key, file = %path.display(), "model loaded and checked");
    Ok(CheckedModel {
        session,
        path,
        key: key.into(),
        entry,
    })
}

impl ModelEntry {
    /// The output whose `meaning` is `m`.
    pub fn output_by_meaning(&self, m: &str) -> Option<&TensorSpec> {
        self.outputs
            .iter()
            .find(|o| o.meaning.as_deref() == Some(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[models.person]
file = "nanodet-m.onnx"
sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
classes = ["person", "bicycle"]
[[models.person.inputs]]
name = "input_1:0"
shape = [1, 3, 416, 416]
dtype = "float32"
[[models.person.outputs]]
name = "Identity:0"
shape = [1, 2704, 80]
dtype = "float32"
meaning = "scores_stride8"
"#;

    fn parse(text: &str) -> Result<Manifest, DetectError> {
        Manifest::parse(text, Path::new("/m"), Path::new("/m/manifest.toml"))
    }

    fn port(name: &str, shape: &[i64]) -> Port {
        Port {
            name: name.into(),
            shape: shape.to_vec(),
            dtype: "float32".into(),
        }
    }

    #[test]
    fn parses_entry_and_finds_output_by_meaning() {
        let m = parse(GOOD).unwrap();
        let e = m.entry("person").unwrap();
        assert_eq!(e.file, "nanodet-m.onnx");
        assert_eq!(e.inputs[0].shape, vec![1, 3, 416, 416]);
        assert_eq!(
            e.output_by_meaning("scores_stride8").unwrap().name,
            "Identity:0"
        );
        assert_eq!(m.file_path(e), PathBuf::from("/m/nanodet-m.onnx"));
        assert!(matches!(
            m.entry("face"),
            Err(DetectError::ManifestEntryMissing { .. })
        ));
    }

    #[test]
    fn rejects_bad_sha_and_escaping_file() {
        let bad_sha = GOOD.replace(
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "xyz",
        );
        let e = parse(&bad_sha).unwrap_err().to_string();
        assert!(
            e.contains("sha256") && e.contains("/m/manifest.toml"),
            "{e}"
        );
        let escape = GOOD.replace("nanodet-m.onnx", "../etc/passwd");
        assert!(
            parse(&escape)
                .unwrap_err()
                .to_string()
                .contains("inside the models directory")
        );
        let toml_err = parse("[models.person\nfile=1").unwrap_err().to_string();
        assert!(toml_err.contains("is invalid"), "{toml_err}");
    }

    #[test]
    fn compare_accepts_exact_ports() {
        let m = parse(GOOD).unwrap();
        let e = m.entry("person").unwrap();
        let r = compare_ports(
            e,
            &[port("input_1:0", &[1, 3, 416, 416])],
            &[port("Identity:0", &[1, 2704, 80])],
        );
        assert_eq!(r, Ok(()));
    }

    #[test]
    fn compare_lists_every_difference() {
        let m = parse(GOOD).unwrap();
        let e = m.entry("person").unwrap();
        let mut wrong_type = port("input_1:0", &[1, 3, -1, -1]);
        wrong_type.dtype = "uint8".into();
        let err = compare_ports(
            e,
            &[wrong_type],
            &[port("Identity:0", &[1, 2704, 81]), port("extra", &[1])],
        )
        .unwrap_err();
        assert!(
            err.contains(
                "input `input_1:0` has shape [1, 3, -1, -1], the manifest says [1, 3, 416, 416]"
            ),
            "{err}"
        );
        assert!(
            err.contains("has type uint8, the manifest says float32"),
            "{err}"
        );
        assert!(
            err.contains("output `Identity:0` has shape [1, 2704, 81]"),
            "{err}"
        );
        assert!(
            err.contains("output `extra` is not in the manifest"),
            "{err}"
        );
        let missing = compare_ports(e, &[], &[port("Identity:0", &[1, 2704, 80])]).unwrap_err();
        assert!(
            missing.contains("input `input_1:0` is missing"),
            "{missing}"
        );
    }

    #[test]
    fn checksum_mismatch_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("nanodet-m.onnx"), b"not a model").unwrap();
        std::fs::write(dir.path().join(MANIFEST_FILE), GOOD).unwrap();
        let m = Manifest::load(dir.path()).unwrap();
        let err = m.check_file("person").unwrap_err().to_string();
        assert!(
            err.contains("nanodet-m.onnx") && err.contains("damaged"),
            "{err}"
        );
        assert!(!err.contains('\n'));
        std::fs::remove_file(dir.path().join("nanodet-m.onnx")).unwrap();
        assert!(matches!(
            m.check_file("person"),
            Err(DetectError::ModelMissing { .. })
        ));
    }

    #[test]
    fn sha256_of_known_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(
            sha256_file(&p).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
