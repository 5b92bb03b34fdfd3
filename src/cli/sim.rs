//! `ronda sim --cameras N --clip FILE [--clip FILE]... [--port 8554]`.

use std::path::PathBuf;

use super::{CliError, CliResult};
use crate::ingest::sim::{SimOptions, Simulator};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Number of simulated cameras (cam01..camNN).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=200))]
    pub cameras: u16,
    /// Clip(s) to loop; with several, cameras take them in turn. A bare name such as
    /// vtest.avi is looked up among the sample media of `make setup`.
    #[arg(long = "clip", required = true, value_name = "FILE")]
    pub clips: Vec<PathBuf>,
    #[arg(long, default_value_t = 8554)]
    pub port: u16,
    /// Address to listen on (127.0.0.1: only this box).
    #[arg(long, default_value = "127.0.0.1")]
    pub address: String,
    /// Picture height of the streams (width keeps the clip's aspect).
    #[arg(long, default_value_t = 360, value_parser = clap::value_parser!(u32).range(64..=2160))]
    pub height: u32,
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u32).range(1..=60))]
    pub fps: u32,
}

pub fn run(args: Args) -> CliResult {
    let opts = SimOptions {
        address: args.address.clone(),
        port: args.port,
        cameras: args.cameras as usize,
        clips: args
            .clips
            .iter()
            .map(|c| crate::analyze::resolve_video(c))
            .collect(),
        height: args.height,
        fps: args.fps,
        ..SimOptions::default()
    };
    let sim = Simulator::start(&opts).map_err(|e| CliError::Runtime(e.to_string()))?;
    eprintln!(
        "ronda sim: serving {} camera(s): {} .. {} (Ctrl-C to stop)",
        sim.urls.len(),
        sim.urls.first().map_or("", |s| s.as_str()),
        sim.urls.last().map_or("", |s| s.as_str())
    );
    sim.wait();
    Ok(())
}
