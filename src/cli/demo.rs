//! `ronda demo`.
//!
//! Until the live pipeline (simulated cameras, broker, web UI) is built, the demo shows what is
//! real today on the sample media that `make setup` installed: detection on still pictures and
//! gate counting over a recorded video. It says so when it starts.

use super::{CliError, CliResult};
use crate::paths::samples_dir;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> CliResult {
    let samples = samples_dir();
    let need = ["bus.jpg", "zidane.jpg", "vtest.avi"];
    for n in need {
        if !samples.join(n).is_file() {
            return Err(CliError::Runtime(format!(
                "{}: sample media missing; run `make setup`",
                samples.join(n).display()
            )));
        }
    }
    println!(
        "ronda demo: the live demo (simulated cameras, MQTT alerts, web UI) is not built yet.\n\
         Showing what runs today on the sample media in {}:\n",
        samples.display()
    );
    println!("== ronda detect bus.jpg zidane.jpg: persons, faces and masks ==");
    super::detect::run(super::detect::Args {
        images: vec![samples.join("bus.jpg"), samples.join("zidane.jpg")],
        json: false,
        model: super::detect::ModelArg::Fp32,
        int8: false,
        threads: None,
        provider: super::detect::ProviderArg::Cpu,
        threshold: 0.4,
        classes: Vec::new(),
        no_faces: false,
        models: None,
        ort_lib: None,
    })?;
    println!("\n== ronda analyze vtest.avi --line gate=384,150,384,576: people in and out ==");
    super::analyze::run(super::analyze::Args {
        video: samples.join("vtest.avi"),
        lines: vec!["gate=384,150,384,576".into()],
        config: None,
        camera: None,
        json: false,
        mask: false,
        model: super::analyze::ModelArg::Int8,
        threads: None,
        bench: false,
        bench_frames: 300,
    })
}
