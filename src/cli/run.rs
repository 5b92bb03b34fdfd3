//! `ronda run [--config FILE]`: the live pipeline and the web UI until Ctrl-C or SIGTERM. Events
//! are printed as JSON lines on stdout (and published on MQTT); the web UI listens on
//! `[http] listen`. The admin editor writes its changes back to FILE.

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
    let web_port = hold_web_address(&settings)?;
    let live = crate::app::Live::start(&settings, Box::new(std::io::stdout()))
        .map_err(|e| CliError::Runtime(crate::detect::one_line_error(e)))?;
    let web = start_web(&settings, Some(args.config.clone()), &live, web_port);
    let web = match web {
        Ok(w) => w,
        Err(e) => {
            live.shutdown();
            return Err(e);
        }
    };
    tracing::info!(
        site = %settings.site.id,
        cameras = settings.cameras.len(),
        web = %format!("http://{}/", web.local_addr()),
        "ronda running; Ctrl-C to stop"
    );
    super::wait_for_stop()?;
    tracing::info!("stopping: cameras, inference, events, then the web UI");
    live.shutdown();
    web.shutdown();
    Ok(())
}

/// Bind the web UI's address before any camera connects: a port in use fails at once, and the
/// port stays ronda's while the pipeline starts (its embedded broker takes a free loopback port
/// of its own, which must not be this one). The server takes the listener over.
pub fn hold_web_address(settings: &Settings) -> Result<std::net::TcpListener, CliError> {
    std::net::TcpListener::bind(&settings.http.listen).map_err(|e| {
        CliError::Usage(format!(
            "http.listen {}: cannot listen there: {e} (another ronda running? set [http] listen to a free address)",
            settings.http.listen
        ))
    })
}

/// The web UI and API on `listener` (bound by [`hold_web_address`]) in front of the running
/// pipeline; `config_path` is the file the admin editor writes back.
pub fn start_web(
    settings: &Settings,
    config_path: Option<PathBuf>,
    live: &crate::app::Live,
    listener: std::net::TcpListener,
) -> Result<crate::api::ApiServer, CliError> {
    let mut cfg = crate::api::ApiConfig::from_settings(settings);
    cfg.config_path = config_path;
    // The address is already ronda's (held by `hold_web_address`): what can fail here is the
    // machine (no threads, no descriptors), not the setting, so no advice to change it.
    crate::api::ApiServer::start_on(listener, cfg, live.village())
        .map_err(|e| CliError::Runtime(format!("web UI did not start: {e}")))
}
