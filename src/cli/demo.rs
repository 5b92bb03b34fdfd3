//! `ronda demo`: a whole village on this box. The built-in simulator serves 40 cameras from the
//! sample footage (camera 1 the gate, 9 busy streets, 30 quiet corners), the embedded MQTT broker
//! takes the alerts, and the live pipeline runs on `config/demo.toml`. Alerts are printed as
//! short lines; every event goes to MQTT (`mosquitto_sub -h 127.0.0.1 -t 'ronda/#' -v`).
//! Ctrl-C stops it in order: cameras, inference, events (outbox flushed), broker, simulator.

use std::io::Write;

use super::{CliError, CliResult};
use crate::config::Settings;
use crate::ingest::sim::{SimOptions, Simulator};
use crate::paths::{project_root, samples_dir};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Port of the simulated cameras (the demo configuration expects 8554).
    #[arg(long, default_value_t = 8554)]
    pub sim_port: u16,
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
    let vtest = samples_dir().join("vtest.avi");
    if !vtest.is_file() {
        return Err(CliError::Runtime(format!(
            "{}: sample footage missing; run `make setup`",
            vtest.display()
        )));
    }
    let cfg = project_root().join("config").join("demo.toml");
    let settings = Settings::load(&cfg).map_err(|e| CliError::Usage(e.to_string()))?;
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
    let prefix = &settings.mqtt.topic_prefix;
    println!(
        "ronda demo running: {n} cameras ({first} .. {last}), site `{site}`.\n\
         Watch every event (crossings, alerts, camera status, gate counts) with:\n    \
         mosquitto_sub -h 127.0.0.1 -p {port} -t '{prefix}/#' -v\n\
         Warnings and alerts are also shown below. Ctrl-C stops the demo.\n",
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
    drop(sim);
    Ok(())
}
