//! ronda's integration tests, in one binary (one link of GStreamer, ONNX Runtime and SQLite
//! instead of one per file): a module per area, and `support` for what they share (the RTSP sim
//! and `ronda` processes, brokers, the web client, the headless browser, a fake village).
//!
//! Run one area with `cargo test --test ronda <area>::`, e.g. `cargo test --test ronda counting::`.
//! Tests that need `../shared/data` say so and fail when it is absent.

mod support;

mod admin;
mod alerts;
mod analyze;
mod api;
mod broker_rights;
mod browser;
mod camera;
mod clips;
mod config;
mod counting;
mod delivery;
mod detect;
mod disk;
mod eval_detector;
mod gatebook;
mod hub;
mod incidents;
mod live;
mod mqtt;
mod night;
mod notify;
mod notify_picture;
mod quiet;
mod review;
mod security;
mod shape;
mod uplink;
mod web_live;
mod webhook;
