//! `ronda check-config` and `ronda print-default-config`.

use super::{CliError, CliResult};

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The configuration file to check.
    pub file: std::path::PathBuf,
}

pub fn check(_args: CheckArgs) -> CliResult {
    Err(CliError::Runtime(
        "`ronda check-config` is not built yet".into(),
    ))
}

pub fn print_default() -> CliResult {
    Err(CliError::Runtime(
        "`ronda print-default-config` is not built yet".into(),
    ))
}
