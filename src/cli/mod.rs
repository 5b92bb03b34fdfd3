//! One file per command; `main.rs` only parses and maps [`CliError`] to the exit status.
//!
//! Uses (of the crate, besides its own folder): analyze, api, app, config, detect, events, geometry, hub, ingest, motion, paths, report, rules, sinks, track.
//!
//! Exit status (DESIGN.md): 0 success, 2 bad arguments or config, 1 runtime failure.

pub mod analyze;
pub mod bench;
pub mod config;
pub mod demo;
pub mod detect;
pub mod eval_detector;
pub mod hub;
pub mod mosquitto;
pub mod passwd;
pub mod run;
pub mod sim;

/// Why a command failed; decides the exit status. The message names the file, camera or field.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments or configuration: exit 2.
    #[error("{0}")]
    Usage(String),
    /// Something failed while running: exit 1.
    #[error("{0}")]
    Runtime(String),
    /// Failures were already reported one by one (e.g. some images of several): exit 1.
    #[error("some inputs failed (see above)")]
    Reported,
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Runtime(_) | CliError::Reported => 1,
        }
    }
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> Self {
        CliError::Runtime(format!("{e:#}"))
    }
}

pub type CliResult = Result<(), CliError>;

/// Block until Ctrl-C or SIGTERM.
pub fn wait_for_stop() -> CliResult {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    rt.block_on(stop_signal());
    Ok(())
}

/// Ctrl-C or SIGTERM (systemd's stop), whichever comes first.
pub async fn stop_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}

/// A port on 127.0.0.1 free now (for the simulator, brokers and web servers a command starts).
pub(crate) fn free_port() -> Result<u16, CliError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| CliError::Runtime(format!("no free port on 127.0.0.1: {e}")))
}
