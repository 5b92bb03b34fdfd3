//! ronda: a village's CCTV cameras as a neighbourhood watch, on one small box.
//!
//! Data flow (see README.md):
//!
//! ```text
//! cameras (RTSP, H.264)                       config/ronda.toml (lines, zones, thresholds reload live)
//!     |
//! ingest    one supervisor per camera: GStreamer pipeline, frame watchdog, reconnect with backoff,
//!     |     health; decoded frames at analysis fps | ring of encoded access units for clips
//! motion    cheap per-camera motion gate: idle cameras cost no inference
//!     |
//! detect    one worker owns the ONNX Runtime sessions: persons (NanoDet), faces (RetinaFace),
//!     |     mask verdicts (MobileNetV2), fair across cameras, gate cameras first
//! track     one ByteTrack-style tracker per camera
//!     |
//! rules     gate line crossing (in/out, occupancy), zones, no-mask, curfew, crowding, offline
//!     |
//! events    one versioned Event type; written to the store (SQLite outbox) before anything else
//!     |     gate: the crossings of gate lines logged with the person's picture (the gate book)
//!     |
//! sinks     MQTT (resend until acknowledged), clips + snapshots, webhook; HTTP API + web UI
//! ```
//!
//! Every arrow is a bounded channel with a stated policy: frames are dropped (keep the latest,
//! counted), events never are.

pub mod analyze;
pub mod api;
pub mod app;
pub mod backoff;
pub mod cli;
pub mod config;
pub mod detect;
pub mod events;
pub mod frame;
pub mod gate;
pub mod geometry;
pub mod hub;
pub mod ingest;
pub mod motion;
pub mod paths;
pub mod report;
pub mod rules;
pub mod sinks;
pub mod store;
pub mod telemetry;
pub mod topic;
pub mod track;
