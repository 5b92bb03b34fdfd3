//! Getting pictures in: video files for offline analysis (`file`), and later the live camera
//! supervisors and the RTSP simulator.
//!
//! Uses (of the crate, besides its own folder): backoff, config, frame, paths, telemetry.

pub mod camera;
pub mod file;
pub mod rate;
pub mod ring;
pub mod sim;
pub mod stir;

use std::path::PathBuf;

/// What can go wrong while reading video. Every variant names its source.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("GStreamer could not start: {0} (run `make setup` to install the GStreamer packages)")]
    Init(String),
    #[error("{path}: no such video file")]
    Missing { path: PathBuf },
    #[error("{path}: cannot be read as video: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("{path}: decoding failed at frame {frame}: {reason}")]
    Decode {
        path: PathBuf,
        frame: u64,
        reason: String,
    },
    #[error("GStreamer pipeline for {what}: {reason}")]
    Pipeline { what: String, reason: String },
}

/// Initialise GStreamer once per process; safe to call from anywhere.
pub fn init_gstreamer() -> Result<(), IngestError> {
    gstreamer::init().map_err(|e| IngestError::Init(e.to_string()))
}
