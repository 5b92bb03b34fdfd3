//! What can go wrong while loading or running the detectors. Every message names the file at
//! fault and says what to do, on one line: `ronda detect` and `ronda run` print it as is.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// The ONNX Runtime shared library is not where we look for it.
    #[error(
        "the ONNX Runtime library {} does not exist: run `make setup` (it installs it), or point \
         RONDA_ORT_LIB / [detector] ort_library at libonnxruntime.so.{}",
        path.display(),
        crate::paths::ORT_VERSION
    )]
    OrtLibraryMissing { path: PathBuf },

    /// The file exists but is not a usable ONNX Runtime library (wrong file, wrong version).
    #[error(
        "could not load the ONNX Runtime library {}: {reason}; run `make setup` to reinstall \
         ONNX Runtime {}",
        path.display(),
        crate::paths::ORT_VERSION
    )]
    OrtLibrary { path: PathBuf, reason: String },

    /// ONNX Runtime was already loaded from another file in this process; it cannot be swapped.
    #[error(
        "ONNX Runtime is already loaded from {} in this process; cannot also load {}: restart \
         with one library setting",
        loaded.display(),
        requested.display()
    )]
    OrtAlreadyLoaded { loaded: PathBuf, requested: PathBuf },

    /// ONNX Runtime refused to set up its environment (rare: out of memory, broken library).
    #[error("ONNX Runtime ({}) failed to start: {reason}", path.display())]
    OrtEnvironment { path: PathBuf, reason: String },

    /// The requested execution provider cannot be used here.
    #[error("execution provider `{provider}` cannot be used: {reason}")]
    ExecutionProvider { provider: String, reason: String },

    /// An option has a value the detectors cannot work with.
    #[error("detector setting `{setting}`: {reason}")]
    Setting { setting: String, reason: String },

    #[error(
        "the model manifest {} does not exist: the models/ directory is incomplete (check out \
         the repository again, or set RONDA_MODELS_DIR to a directory holding manifest.toml)",
        path.display()
    )]
    ManifestMissing { path: PathBuf },

    #[error("cannot read the model manifest {}: {reason}", path.display())]
    ManifestRead { path: PathBuf, reason: String },

    #[error("the model manifest {} is invalid: {reason}", path.display())]
    ManifestInvalid { path: PathBuf, reason: String },

    #[error("the model manifest {} has no entry [models.{key}]", path.display())]
    ManifestEntryMissing { path: PathBuf, key: String },

    #[error("model file {} is missing (listed in manifest.toml as [models.{key}])", path.display())]
    ModelMissing { path: PathBuf, key: String },

    #[error("cannot read model file {}: {reason}", path.display())]
    ModelRead { path: PathBuf, reason: String },

    /// The file is not the one the manifest describes: damaged copy or an unrecorded change.
    #[error(
        "model file {} is damaged or not the expected file: sha256 is {actual}, the manifest \
         says {expected} (restore it from the repository)",
        path.display()
    )]
    ModelChecksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    /// ONNX Runtime could not build a session from the file.
    #[error("ONNX Runtime cannot load model file {}: {reason}", path.display())]
    ModelLoad { path: PathBuf, reason: String },

    /// The model's inputs/outputs differ from what the manifest (and so the code) expects.
    #[error("model file {} does not match models/manifest.toml: {what}", path.display())]
    ModelContract { path: PathBuf, what: String },

    /// Running the model failed (shape error, out of memory).
    #[error("inference with {} failed: {reason}", path.display())]
    Inference { path: PathBuf, reason: String },
}

/// ONNX Runtime messages sometimes span lines; ours are one line each.
pub fn one_line(msg: impl std::fmt::Display) -> String {
    let s = msg.to_string();
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
