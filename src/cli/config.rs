//! `ronda check-config FILE` and `ronda print-default-config`.

use super::{CliError, CliResult};
use crate::config::{ConfigError, DEFAULT_CONFIG, Settings};

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The configuration file to check.
    pub file: std::path::PathBuf,
}

/// Exit 0 with a summary when the file is usable; exit 2 with every problem otherwise.
pub fn check(args: CheckArgs) -> CliResult {
    match Settings::load(&args.file) {
        Ok(s) => {
            let lines: usize = s.cameras.iter().map(|c| c.lines.len()).sum();
            let zones: usize = s.cameras.iter().map(|c| c.zones.len()).sum();
            println!(
                "{}: OK: site `{}`, {} camera(s), {} line(s), {} zone(s), {} user(s)",
                args.file.display(),
                s.site.id,
                s.cameras.len(),
                lines,
                zones,
                s.http.users.len()
            );
            for w in s.warnings() {
                println!("  warning: {w}");
            }
            for u in &s.mqtt.users {
                println!("  mqtt: user `{}` ({})", u.name, u.role.as_str());
                if std::env::var(&u.password_env).is_ok_and(|p| !p.is_empty()) {
                    continue;
                }
                let unset = crate::sinks::SinkError::UserPasswordEnv {
                    name: u.name.clone(),
                    var: u.password_env.clone(),
                };
                println!("  note: {unset}");
            }
            for c in &s.cameras {
                if let Err(e) = c.resolved_url() {
                    println!("  note: {e} (set it before `ronda run`)");
                }
            }
            for n in &s.notify {
                let state = if n.enabled {
                    "on"
                } else {
                    "off (enabled = false)"
                };
                println!("  phones: `{}` ({}) {state}", n.name, n.service.kind());
                if n.enabled
                    && let Err(e) = unset_variable(n)
                {
                    println!("  note: {e} (set it before `ronda run`)");
                }
            }
            if let Some(u) = &s.uplink {
                println!("  up-link: {} as `{}`", u.url, u.client_id);
                if let Err(e) = crate::sinks::UplinkOptions::from_settings(&s) {
                    println!("  note: {e} (set it before `ronda run`)");
                }
            }
            if s.cameras.len() > 40 {
                println!(
                    "  note: {} cameras; one 2-core box is sized for 40 (see README, Capacity)",
                    s.cameras.len()
                );
            }
            Ok(())
        }
        Err(e @ ConfigError::Read { .. }) => Err(CliError::Usage(e.to_string())),
        Err(e) => Err(CliError::Usage(e.to_string())),
    }
}

pub fn print_default() -> CliResult {
    print!("{DEFAULT_CONFIG}");
    Ok(())
}

/// The first `${VAR}` of a destination that is not set, in the words `ronda run` would stop
/// with.
fn unset_variable(n: &crate::config::Notify) -> Result<(), String> {
    crate::sinks::notify::Destination::new(n, chrono_tz::UTC)
        .map(|_| ())
        .map_err(|e| e.to_string())
}
