//! Where ronda finds its own files (models, the ONNX Runtime library, sample media) without any
//! environment variable: the project root is found from the executable's location, falling back to
//! the source tree it was built from. `RONDA_HOME` overrides it (an installed box may keep the
//! binary apart from its data).

use std::path::{Path, PathBuf};

/// ONNX Runtime version that `scripts/setup` installs and the `api-31` feature of `ort` expects.
pub const ORT_VERSION: &str = "1.31.1";

/// The project root: the directory holding `models/manifest.toml`.
pub fn project_root() -> PathBuf {
    if let Some(home) = std::env::var_os("RONDA_HOME") {
        return PathBuf::from(home);
    }
    if let Ok(exe) = std::env::current_exe() {
        // target/{debug,release}/ronda, target/debug/deps/test-binary, or an installed copy
        for dir in exe.ancestors().skip(1) {
            if is_root(dir) {
                return dir.to_path_buf();
            }
        }
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn is_root(dir: &Path) -> bool {
    dir.join("models").join("manifest.toml").is_file()
}

/// `models/`: the committed ONNX files and their manifest.
pub fn models_dir() -> PathBuf {
    project_root().join("models")
}

/// `.cache/`: what `scripts/setup` downloads (git-ignored).
pub fn cache_dir() -> PathBuf {
    project_root().join(".cache")
}

/// The ONNX Runtime shared library that `scripts/setup` takes from the PyPI wheel.
pub fn default_ort_library() -> PathBuf {
    cache_dir()
        .join("onnxruntime")
        .join(format!("libonnxruntime.so.{ORT_VERSION}"))
}

/// Sample media installed by `scripts/setup`: bus.jpg, zidane.jpg, vtest.avi, vtest.mp4.
pub fn samples_dir() -> PathBuf {
    cache_dir().join("samples")
}

/// `../shared/data` beside the project root, when this checkout has it (tests and benches).
pub fn shared_data_dir() -> Option<PathBuf> {
    let d = project_root().join("..").join("shared").join("data");
    d.is_dir().then_some(d)
}
