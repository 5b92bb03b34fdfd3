//! The `ronda` command: parse arguments, set up logging, call the library, map the exit status.

use clap::{Parser, Subcommand};
use ronda::cli;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "ronda",
    version,
    about = "Village CCTV neighbourhood watch (see README.md)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Live pipeline: cameras, detection, counting, alerts.
    Run(cli::run::Args),
    /// Everything on this box: embedded broker, simulated cameras, pipeline, web UI.
    Demo(cli::demo::Args),
    /// RTSP camera simulator: rtsp://127.0.0.1:PORT/cam01..camNN loop clips.
    Sim(cli::sim::Args),
    /// Offline analysis of a video file, every frame, as fast as possible.
    Analyze(cli::analyze::Args),
    /// Persons, faces and mask verdicts on still images.
    Detect(cli::detect::Args),
    /// Person models against annotated footage (AP, recall, crowded, night) and their speed.
    EvalDetector(cli::eval_detector::Args),
    /// Check a configuration file: every error at once, each with its place.
    CheckConfig(cli::config::CheckArgs),
    /// Print the built-in default configuration.
    PrintDefaultConfig,
    /// Print an argon2 hash of a password for the [http] users.
    Passwd(cli::passwd::Args),
    /// Load measurements (e.g. `ronda bench live --cameras 40`).
    Bench(cli::bench::Args),
    /// The city's command room: every village's events, cameras and counts from the city broker.
    Hub(cli::hub::Args),
}

fn main() -> ExitCode {
    let args = Cli::parse();
    ronda::telemetry::init();
    let result = match args.command {
        Command::Run(a) => cli::run::run(a),
        Command::Demo(a) => cli::demo::run(a),
        Command::Sim(a) => cli::sim::run(a),
        Command::Analyze(a) => cli::analyze::run(a),
        Command::Detect(a) => cli::detect::run(a),
        Command::EvalDetector(a) => cli::eval_detector::run(a),
        Command::CheckConfig(a) => cli::config::check(a),
        Command::PrintDefaultConfig => cli::config::print_default(),
        Command::Passwd(a) => cli::passwd::run(a),
        Command::Bench(a) => cli::bench::run(a),
        Command::Hub(a) => cli::hub::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if !matches!(e, cli::CliError::Reported) {
                eprintln!("ronda: {e}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}
