//! Logging: tracing to stderr, level from `RONDA_LOG` (default `info`). Nothing per frame above debug.

use tracing_subscriber::EnvFilter;

/// Install the stderr subscriber once; later calls are no-ops (tests may call it repeatedly).
pub fn init() {
    let filter = EnvFilter::try_from_env("RONDA_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
