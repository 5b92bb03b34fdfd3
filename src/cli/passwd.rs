//! `ronda passwd`.

use super::{CliError, CliResult};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> CliResult {
    Err(CliError::Runtime("`ronda passwd` is not built yet".into()))
}
