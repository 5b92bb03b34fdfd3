//! Logging: tracing to stderr, level from `RONDA_LOG` (default `info`). Nothing per frame above debug.

use tracing_subscriber::EnvFilter;

/// Install the stderr subscriber once; later calls are no-ops (tests may call it repeatedly).
pub fn init() {
    // Whatever RONDA_LOG says, two libraries are set apart: rumqttd logs every normal client
    // disconnect as an ERROR ("no-connection id N is already gone"), which would teach guards to
    // ignore errors; ureq's debug and trace lines name request URLs, which may hold a webhook
    // token or a Telegram bot token (the sinks say what failed themselves, without secrets), and
    // so do those of ureq_proto, the HTTP protocol under it. A directive
    // sets a target's level rather than capping it: `ureq=debug` printed those lines at the
    // default `info`.
    let base = std::env::var("RONDA_LOG").unwrap_or_else(|_| "info".into());
    let filter = EnvFilter::try_new(format!("{base},rumqttd=off,ureq=warn,ureq_proto=warn"))
        .unwrap_or_else(|_| EnvFilter::new("info,rumqttd=off,ureq=warn,ureq_proto=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // colour codes only for a person at a terminal: a log file or a pipe (journald, a
        // test's captured stderr) gets plain text that grep and editors read
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
