//! `ronda hub --config hub.toml`: the city's command room (README "City command room").

use std::path::PathBuf;

use super::{CliError, CliResult};
use crate::config::HubSettings;
use crate::hub::HubError;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The hub's configuration (see config/hub.example.toml).
    #[arg(long, default_value = "config/hub.toml")]
    pub config: PathBuf,
}

pub fn run(args: Args) -> CliResult {
    let settings = HubSettings::load(&args.config).map_err(|e| CliError::Usage(e.to_string()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    let stop = async {
        super::stop_signal().await;
        tracing::info!("hub: stopping");
    };
    rt.block_on(crate::hub::serve(
        settings,
        |var| std::env::var(var).ok(),
        stop,
    ))
    .map_err(|e| match e {
        // the configuration's (or the environment's) fault: exit 2
        HubError::Secret { .. } | HubError::Broker(_) | HubError::Listen { .. } => {
            CliError::Usage(format!("{}: {e}", args.config.display()))
        }
        other => CliError::Runtime(other.to_string()),
    })
}
