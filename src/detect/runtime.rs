//! ONNX Runtime: finding and loading the shared library once per process, and building sessions
//! with the configured execution provider and thread count.
//!
//! The library is loaded with `ort::init_from(path)` (never through ort's implicit loader, which
//! panics when the library is missing), so a missing or wrong file is an error that names it.

use super::error::{DetectError, one_line};
use ort::environment::Environment;
use ort::ep::ExecutionProvider;
use ort::logging::LogLevel;
use ort::session::Session;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

/// Environment variable naming the ONNX Runtime library (ronda's own name).
pub const ORT_LIB_ENV: &str = "RONDA_ORT_LIB";
/// ort's own variable, honoured too so that an existing setup keeps working.
pub const ORT_DYLIB_ENV: &str = "ORT_DYLIB_PATH";

/// Where inference runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Provider {
    #[default]
    Cpu,
    /// NVIDIA GPU through ONNX Runtime's CUDA provider. Needs the GPU build of the library
    /// (onnxruntime-gpu, CUDA 13 + cuDNN 9). If it is not usable, loading FAILS with the reason:
    /// a box configured for a GPU that silently ran 40 cameras on the CPU would fall behind
    /// without anyone knowing why.
    Cuda,
}

impl Provider {
    pub fn as_str(&self) -> &'static str {
        match self {
            Provider::Cpu => "cpu",
            Provider::Cuda => "cuda",
        }
    }
}

impl FromStr for Provider {
    type Err = DetectError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cpu" => Ok(Provider::Cpu),
            "cuda" | "gpu" => Ok(Provider::Cuda),
            other => Err(DetectError::Setting {
                setting: "execution_provider".into(),
                reason: format!("`{other}` is not known; use \"cpu\" or \"cuda\""),
            }),
        }
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to run ONNX Runtime: which library, which provider, how many threads per session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeOptions {
    /// Explicit library path (config `[detector] ort_library`); `None` = environment, then the
    /// setup cache (see [`resolve_library`]).
    pub library: Option<PathBuf>,
    pub provider: Provider,
    /// Intra-op threads of each session (at least 1). On the 2-core box the live pipeline uses 1
    /// or 2: decode needs the rest.
    pub threads: usize,
    /// Int8 models computed exactly on every CPU (`[detector] int8_arithmetic = "exact"`, the
    /// default): on x86 without VNNI ONNX Runtime then multiplies by weights moved to u8 (its
    /// `session.x64quantprecision`, U8U8 kernels) instead of adding two u8 x s8 products into 16
    /// bits, which saturates. `false` (`"fast"`): the quicker saturating kernels there, and a
    /// crowd's counts that differ from other machines' by one to three. Nothing changes on a
    /// CPU with VNNI or on ARM, which compute exactly either way.
    pub int8_exact: bool,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            library: None,
            provider: Provider::Cpu,
            threads: 1,
            int8_exact: true,
        }
    }
}

/// The library to load: the explicit setting, else `RONDA_ORT_LIB`, else `ORT_DYLIB_PATH`, else
/// the copy `scripts/setup` put in `.cache/onnxruntime/`. Relative paths are taken from the
/// current directory (ort itself would try the executable's directory first).
fn resolve_library(explicit: Option<&Path>) -> PathBuf {
    let from_env = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let path = explicit
        .map(Path::to_path_buf)
        .or_else(|| from_env(ORT_LIB_ENV))
        .or_else(|| from_env(ORT_DYLIB_ENV))
        .unwrap_or_else(crate::paths::default_ort_library);
    if path.is_relative()
        && let Ok(cwd) = std::env::current_dir()
    {
        return cwd.join(path);
    }
    path
}

/// The process-wide ONNX Runtime: the library can be loaded only once, so the first successful
/// load decides it; a failed attempt leaves nothing behind and may be retried.
struct Loaded {
    path: PathBuf,
    env: Environment,
}

static LOADED: Mutex<Option<Loaded>> = Mutex::new(None);

/// Load ONNX Runtime (once per process) and return its environment.
pub fn environment(library: Option<&Path>) -> Result<Environment, DetectError> {
    let path = resolve_library(library);
    // A poisoned lock only means another thread panicked mid-load; the Option is still coherent.
    let mut loaded = LOADED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(l) = loaded.as_ref() {
        if same_file(&l.path, &path) {
            return Ok(l.env.clone());
        }
        return Err(DetectError::OrtAlreadyLoaded {
            loaded: l.path.clone(),
            requested: path,
        });
    }
    if !path.is_file() {
        return Err(DetectError::OrtLibraryMissing { path });
    }
    let builder = ort::init_from(&path).map_err(|e| DetectError::OrtLibrary {
        path: path.clone(),
        reason: one_line(e),
    })?;
    let env = builder
        .with_name("ronda")
        .with_telemetry(false)
        .with_logger(Arc::new(ort_log))
        .build()
        .map_err(|e| DetectError::OrtEnvironment {
            path: path.clone(),
            reason: one_line(e),
        })?;
    // Warnings from tf2onnx graphs (unused initialisers) are noise for a guard; real failures come
    // back as errors that we report once, naming the model.
    env.set_log_level(LogLevel::Warning);
    tracing::debug!(library = %path.display(), "ONNX Runtime loaded");
    *loaded = Some(Loaded {
        path,
        env: env.clone(),
    });
    Ok(env)
}

/// The library this process loaded, if any.
fn loaded_library() -> Option<PathBuf> {
    LOADED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .map(|l| l.path.clone())
}

fn same_file(a: &Path, b: &Path) -> bool {
    a == b
        || match (a.canonicalize(), b.canonicalize()) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        }
}

/// How this CPU computes an int8 model's u8 x s8 products, for reports: `"exact"` with VNNI
/// (AVX-512 VNNI or AVX-VNNI), on ARM, or when `exact` was asked ([`RuntimeOptions::int8_exact`]);
/// `"saturating"` on x86 without VNNI (SSE4.1, AVX2 or AVX-512 alone) with the fast kernels,
/// which add two products into 16 bits (VPMADDUBSW) where some sums overflow. The same int8
/// model then scores a person a few hundredths apart from an exact machine, and a count in a
/// crowd can move by one to three (README "Counts and the CPU"); fp32 models compute alike
/// everywhere.
pub fn int8_arithmetic(exact: bool) -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if exact
            || std::arch::is_x86_feature_detected!("avx512vnni")
            || std::arch::is_x86_feature_detected!("avxvnni")
        {
            "exact"
        } else {
            "saturating"
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = exact;
        "exact"
    }
}

fn ort_log(level: LogLevel, category: &str, _id: &str, location: &str, message: &str) {
    match level {
        LogLevel::Verbose | LogLevel::Info => {
            tracing::trace!(target: "onnxruntime", "{category} {location}: {message}")
        }
        _ => tracing::debug!(target: "onnxruntime", "{category} {location}: {message}"),
    }
}

/// Build a session for one model file with the runtime options. The caller checks the file
/// against the manifest before (checksum) and after (inputs/outputs).
pub fn session(opts: &RuntimeOptions, model: &Path) -> Result<Session, DetectError> {
    let env = environment(opts.library.as_deref())?;
    if opts.threads == 0 {
        return Err(DetectError::Setting {
            setting: "threads".into(),
            reason: "must be at least 1".into(),
        });
    }
    let load_err = |e: &dyn std::fmt::Display| DetectError::ModelLoad {
        path: model.to_path_buf(),
        reason: one_line(e),
    };
    let mut builder = Session::builder(&env)
        .map_err(|e| load_err(&e))?
        .with_intra_threads(opts.threads)
        .map_err(|e| load_err(&e))?
        .with_inter_threads(1)
        .map_err(|e| load_err(&e))?
        // Spinning worker threads would steal the cores that decode the cameras between frames.
        .with_intra_op_spinning(false)
        .map_err(|e| load_err(&e))?;
    if opts.int8_exact {
        // ONNX Runtime applies it only where sums can saturate (x86 without VNNI); elsewhere the
        // session is the same with or without it.
        builder = builder.with_precise_qmm().map_err(|e| load_err(&e))?;
    }
    if opts.provider == Provider::Cuda {
        builder = with_cuda(builder)?;
    }
    builder.commit_from_file(model).map_err(|e| load_err(&e))
}

fn with_cuda(
    builder: ort::session::builder::SessionBuilder,
) -> Result<ort::session::builder::SessionBuilder, DetectError> {
    let library = loaded_library().unwrap_or_default();
    let unavailable = |reason: String| DetectError::ExecutionProvider {
        provider: "cuda".into(),
        reason,
    };
    let cuda = ort::ep::CUDA::default();
    match ort::ep::CUDA::is_available() {
        Ok(true) => {}
        Ok(false) => {
            return Err(unavailable(format!(
                "the ONNX Runtime library {} is the CPU-only build; install the GPU build \
                 (onnxruntime-gpu {}, CUDA 13 + cuDNN 9) or set execution_provider = \"cpu\"",
                library.display(),
                crate::paths::ORT_VERSION
            )));
        }
        Err(e) => return Err(unavailable(one_line(e))),
    }
    let mut builder = builder;
    cuda.register(&mut builder).map_err(|e| {
        unavailable(format!(
            "{} (is there an NVIDIA GPU with its driver, CUDA 13 and cuDNN 9?); or set \
             execution_provider = \"cpu\"",
            one_line(e)
        ))
    })?;
    Ok(builder)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The probe agrees with what the kernel says of the CPU (Linux x86-64: /proc/cpuinfo flags),
    /// and exact arithmetic asked for is exact everywhere.
    #[test]
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    fn int8_arithmetic_follows_the_cpus_vnni_flags() {
        let info = std::fs::read_to_string("/proc/cpuinfo").expect("/proc/cpuinfo readable");
        let flags = info
            .lines()
            .find(|l| l.starts_with("flags"))
            .expect("a flags line");
        let vnni = flags
            .split_whitespace()
            .any(|f| f == "avx512_vnni" || f == "avx_vnni");
        assert_eq!(
            int8_arithmetic(false),
            if vnni { "exact" } else { "saturating" }
        );
        assert_eq!(int8_arithmetic(true), "exact");
    }
}
