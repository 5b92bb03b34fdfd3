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
    /// Picture height of the streams (width keeps the clip's aspect); `--size 720` works too.
    #[arg(long, alias = "size", default_value_t = 360, value_parser = clap::value_parser!(u32).range(64..=2160))]
    pub height: u32,
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u32).range(1..=60))]
    pub fps: u32,
    /// The last N cameras are quiet: the first clip's empty background, with a passer-by
    /// (a few seconds of the clip) every `--quiet-still` seconds.
    #[arg(long, default_value_t = 0)]
    pub quiet: u16,
    /// Seconds of still background between two passers-by on a quiet camera.
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub quiet_still: u32,
    /// Seconds of empty background after each pass of a busy clip (tells passes apart).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=600))]
    pub gap: u32,
    /// Play busy clips at this speed: 0.4 shows a 25 fps clip frame by frame at `--fps 10`
    /// (tests compare every frame with `ronda analyze` on a busy box).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Start every camera at the beginning of its clip (default: each at another point).
    #[arg(long)]
    pub lockstep: bool,
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
        quiet: (args.quiet as usize).min(args.cameras as usize),
        quiet_still_s: args.quiet_still,
        gap_s: args.gap,
        speed: if args.speed > 0.01 && args.speed <= 10.0 {
            args.speed
        } else {
            return Err(CliError::Usage(format!(
                "--speed {}: give a factor between 0.01 and 10",
                args.speed
            )));
        },
        offsets: !args.lockstep,
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
