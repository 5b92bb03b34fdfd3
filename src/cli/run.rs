//! `ronda run [--config FILE]`: the live pipeline until Ctrl-C or SIGTERM. Events are printed as
//! JSON lines on stdout (the MQTT publisher comes with the alerts issue).

use std::path::PathBuf;

use super::{CliError, CliResult};
use crate::config::Settings;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, default_value = "config/ronda.toml", value_name = "FILE")]
    pub config: PathBuf,
}

pub fn run(args: Args) -> CliResult {
    let settings = Settings::load(&args.config).map_err(|e| CliError::Usage(e.to_string()))?;
    let live = crate::app::Live::start(&settings, Box::new(std::io::stdout()))
        .map_err(|e| CliError::Runtime(crate::detect::one_line_error(e)))?;
    tracing::info!(
        site = %settings.site.id,
        cameras = settings.cameras.len(),
        "ronda running; Ctrl-C to stop"
    );
    super::wait_for_stop()?;
    tracing::info!("stopping: cameras, inference, events");
    live.shutdown();
    Ok(())
}
