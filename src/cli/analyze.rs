//! `ronda analyze`.

use super::{CliError, CliResult};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> CliResult {
    Err(CliError::Runtime("`ronda analyze` is not built yet".into()))
}
