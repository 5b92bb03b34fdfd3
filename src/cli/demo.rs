//! `ronda demo`: a whole village on this box. The built-in simulator serves 40 cameras from the
//! sample footage (camera 1 the gate, 9 busy streets, 30 quiet corners), the embedded MQTT broker
//! takes the alerts, and the live pipeline runs on `config/demo.toml`. Alerts are printed as
//! short lines; every event goes to MQTT (`mosquitto_sub -h 127.0.0.1 -t 'ronda/demo/#' -v`).
//! Ctrl-C stops it in order: cameras, inference, events (outbox flushed), broker, simulator.

use std::io::Write;

use super::{CliError, CliResult};
use crate::config::Settings;

mod villages;
use crate::ingest::sim::{SimOptions, Simulator};
use crate::paths::{project_root, samples_dir};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Port of the simulated cameras (the demo configuration expects 8554).
    #[arg(long, default_value_t = 8554)]
    pub sim_port: u16,
    /// A small city instead of one village: this many village boxes (two cameras each), the
    /// city's broker (Mosquitto) and `ronda hub` showing them all.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=10))]
    pub villages: Option<u8>,
}

/// Prints a short line for each warning or alert; `line_crossing` and the like stay on MQTT.
struct AlertLines {
    partial: Vec<u8>,
}

impl Write for AlertLines {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.partial.extend_from_slice(b);
        while let Some(n) = self.partial.iter().position(|&c| c == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=n).collect();
            if let Ok(e) = serde_json::from_slice::<serde_json::Value>(&line)
                && e["severity"] != "info"
            {
                let time = e["time"].as_str().unwrap_or("").get(11..19).unwrap_or("");
                let mut what = format!(
                    "{time}  {:7}  {:14} {}",
                    e["severity"].as_str().unwrap_or("").to_uppercase(),
                    e["type"].as_str().unwrap_or(""),
                    e["camera"].as_str().unwrap_or("")
                );
                for k in ["zone", "line", "direction"] {
                    if let Some(v) = e[k].as_str() {
                        what.push_str(&format!(" {k}={v}"));
                    }
                }
                if let Some(t) = e["track_id"].as_u64() {
                    what.push_str(&format!(" person #{t}"));
                }
                println!("{what}");
            }
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush()
    }
}

pub fn run(args: Args) -> CliResult {
    if let Some(n) = args.villages {
        return villages::run(n, args.sim_port);
    }
    let vtest = samples_dir().join("vtest.avi");
    if !vtest.is_file() {
        return Err(CliError::Runtime(format!(
            "{}: sample footage missing; run `make setup`",
            vtest.display()
        )));
    }
    let shipped = project_root().join("config").join("demo.toml");
    // the admin editor writes its changes to a copy, never to the shipped file: each demo
    // starts from the same village
    let cfg = project_root().join("var").join("demo").join("demo.toml");
    let password = super::passwd::new_password();
    copy_config(&shipped, &cfg, &demo_users(&password)?)?;
    let settings = Settings::load(&cfg).map_err(|e| CliError::Usage(e.to_string()))?;
    let web_port = super::run::hold_web_address(&settings)?;
    println!(
        "ronda demo: preparing 40 simulated cameras from {} (the first run encodes the footage once, about a minute)...",
        vtest.display()
    );
    let sim = Simulator::start(&SimOptions {
        port: args.sim_port,
        cameras: 40,
        quiet: 30,
        clips: vec![vtest],
        ..SimOptions::default()
    })
    .map_err(|e| CliError::Runtime(e.to_string()))?;
    let live = crate::app::Live::start(
        &settings,
        Box::new(AlertLines {
            partial: Vec::new(),
        }),
    )
    .map_err(|e| CliError::Runtime(crate::detect::one_line_error(e)))?;
    let web = match super::run::start_web(&settings, Some(cfg.clone()), &live, web_port) {
        Ok(w) => w,
        Err(e) => {
            live.shutdown();
            return Err(e);
        }
    };
    let prefix = &settings.mqtt.topic_prefix;
    println!(
        "ronda demo running: {n} cameras ({first} .. {last}), site `{site}`.\n\
         Watch every event (crossings, alerts, camera status, gate counts) with:\n    \
         mosquitto_sub -h 127.0.0.1 -p {port} -t '{prefix}/#' -v\n\
         Web UI: http://{web}/  log in as `admin` (admin), `jaga` (guard) or `tinjau` (reviewer)\n\
         with the password made for this run: {password}\n\
         Warnings and alerts are also shown below. Ctrl-C stops the demo.\n",
        web = web.local_addr(),
        n = sim.urls.len(),
        first = sim.urls.first().map_or("", |s| s.as_str()),
        last = sim.urls.last().map_or("", |s| s.as_str()),
        site = settings.site.id,
        port = settings
            .mqtt
            .listen
            .rsplit_once(':')
            .map_or("1883", |(_, p)| p),
    );
    super::wait_for_stop()?;
    println!("ronda demo: stopping (cameras, inference, events, broker, simulator)");
    live.shutdown();
    web.shutdown();
    drop(sim);
    Ok(())
}

/// Copy the shipped demo configuration to `to`, with `users` appended.
fn copy_config(from: &std::path::Path, to: &std::path::Path, users: &str) -> Result<(), CliError> {
    let fail = |e: std::io::Error| {
        CliError::Runtime(format!(
            "cannot copy {} to {}: {e}",
            from.display(),
            to.display()
        ))
    };
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let text = std::fs::read_to_string(from).map_err(fail)?;
    // it holds the users' password hashes: readable by this user only
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(to)
        .map_err(fail)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(fail)?;
    f.write_all(format!("{text}\n# Made by `ronda demo` for this run\n{users}").as_bytes())
        .map_err(fail)?;
    Ok(())
}

/// The demo's three users, one of each role, all with `password`, as `[[http.users]]` tables.
fn demo_users(password: &str) -> Result<String, CliError> {
    let hash = crate::api::hash_password(password).map_err(CliError::Runtime)?;
    Ok([
        ("admin", "admin"),
        ("jaga", "guard"),
        ("tinjau", "reviewer"),
    ]
    .into_iter()
    .map(|(name, role)| {
        format!(
            "\n[[http.users]]\nname = \"{name}\"\nrole = \"{role}\"\npassword_hash = \"{hash}\"\n"
        )
    })
    .collect())
}
