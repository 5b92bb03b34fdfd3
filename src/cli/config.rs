//! `ronda check-config FILE` (a village box's file, or a hub's: one with `[hub]`) and
//! `ronda print-default-config`.

use std::path::Path;

use super::{CliError, CliResult};
use crate::config::{ConfigError, DEFAULT_CONFIG, HubSettings, Settings};

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The configuration file to check.
    pub file: std::path::PathBuf,
}

/// Exit 0 with a summary when the file is usable; exit 2 with every problem otherwise.
pub fn check(args: CheckArgs) -> CliResult {
    if is_hub_file(&args.file) {
        return check_hub(&args.file);
    }
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

/// A file with a `[hub]` table is `ronda hub`'s (a village's file never has one). A file that
/// cannot be read or parsed is left to the village check, which says why.
fn is_hub_file(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .is_some_and(|t| t.contains_key("hub"))
}

/// The hub's file: a summary, and a note for each password variable not set here.
fn check_hub(path: &Path) -> CliResult {
    let s = HubSettings::load(path).map_err(|e| CliError::Usage(e.to_string()))?;
    let districts: std::collections::BTreeSet<&str> =
        s.villages.iter().map(|v| v.district.as_str()).collect();
    println!(
        "{}: OK: hub `{}` on {}, {} village(s) in {} district(s), {} user(s), city broker {}",
        path.display(),
        s.name,
        s.listen,
        s.villages.len(),
        districts.len(),
        s.users.len(),
        crate::config::redact_url(&s.broker.url)
    );
    let unset = |var: &str| !std::env::var(var).is_ok_and(|v| !v.is_empty());
    if let Some(var) = s.broker.password_var().filter(|v| unset(v)) {
        println!(
            "  note: broker.password uses ${{{var}}}, not set here (set it before `ronda hub`)"
        );
    }
    for v in &s.villages {
        match (&v.url, v.password_var()) {
            (None, _) => println!(
                "  note: village `{}` has no url: its clips cannot be opened through the hub",
                v.site
            ),
            (Some(_), Some(var)) if unset(var) => println!(
                "  note: village `{}`: password uses ${{{var}}}, not set here (set it before `ronda hub`)",
                v.site
            ),
            _ => {}
        }
    }
    Ok(())
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
