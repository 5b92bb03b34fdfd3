//! `ronda bench uplink`: what survives a city outage, and a village box restarted during it,
//! for each way a village can send its events up: ronda's own outbox (`[uplink]`, the chosen
//! way) or Mosquitto's bridge (the village runs Mosquitto as its local broker, bridged to the
//! city's with a persistent session).
//!
//! Real parts only. The city broker is a Mosquitto with persistence; a consumer (as the hub is:
//! a persistent session, QoS 1) records every event that reaches it. The village box is this
//! binary in a second process (`--village`, hidden): the outlet of `ronda run` (store, outbox,
//! guard-post sink, up-link) raising `--rate` alerts per second, so its store is the record of
//! what the village raised. In the bridge way the box's local broker is a second Mosquitto
//! (persistence on, `autosave_interval` = `--autosave`) bridged to the city with `topic ronda/#
//! out 1`, `cleansession false`.
//!
//! The run: the link works (a first event reaches the city), the city broker stops (SIGTERM, so
//! its own sessions survive), halfway through the outage the whole box restarts (`--restart
//! kill`: a power cut, SIGKILL to every process of the box; `term`: an orderly reboot), the city
//! comes back after `--outage` seconds, the village goes on raising alerts for ten seconds,
//! then stops raising and the run waits until the city has every stored event or nothing new
//! arrived for `--drain` seconds.
//!
//! Printed per way: events the village stored, reached the city, lost, arrived twice (before
//! de-duplication by id), arrived out of the village's order, how long after the city was back
//! the last event of the backlog arrived, and the guard post's delay (event time to arrival on the local broker)
//! during the outage.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{Client, Event as MqttEvent, MqttOptions, Packet, QoS};

use super::{CliError, CliResult, percentile};
use crate::cli::mosquitto::Mosquitto;
use crate::config::Settings;
use crate::events::{Event, EventKind, Severity};
use crate::sinks::Outlet;

const SITE: &str = "desa-bench";
/// How long to wait for the link to work at the start, and for a process to come up.
const START: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Way {
    /// ronda's outbox with the up-link's own cursor (`[uplink]`).
    Outbox,
    /// A local Mosquitto bridged to the city's.
    Bridge,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Restart {
    /// A power cut: every process of the box gets SIGKILL.
    Kill,
    /// An orderly reboot: SIGTERM, each process stops as it is told to.
    Term,
}

#[derive(Debug, clap::Args)]
pub struct UplinkArgs {
    /// Seconds the city broker is down.
    #[arg(long, default_value_t = 600)]
    pub outage: u64,
    /// Alerts per second the village raises.
    #[arg(long, default_value_t = 2.0)]
    pub rate: f64,
    #[arg(long, value_enum, default_value = "both")]
    pub way: Way,
    /// How the box restarts, halfway through the outage.
    #[arg(long, value_enum, default_value = "kill")]
    pub restart: Restart,
    /// Bridge way: the local Mosquitto's `autosave_interval`, seconds (its default is 1800).
    #[arg(long, default_value_t = 1800)]
    pub autosave: u64,
    /// Seconds without a new arrival at the city after which the rest counts as lost.
    #[arg(long, default_value_t = 120)]
    pub drain: u64,
    /// Run as the village box with this configuration (the bench starts it so).
    #[arg(long, hide = true)]
    pub village: Option<PathBuf>,
}

pub fn run(a: UplinkArgs) -> CliResult {
    if !(a.rate.is_finite() && a.rate > 0.0 && a.rate <= 50.0) {
        return Err(CliError::Usage(format!(
            "--rate {}: give alerts per second, above 0 and at most 50",
            a.rate
        )));
    }
    if let Some(config) = &a.village {
        return village(config, a.rate);
    }
    println!(
        "ronda bench uplink: city down {} s, box restarted ({:?}) halfway, {:.1} alerts/s",
        a.outage, a.restart, a.rate
    );
    let ways: &[Way] = match a.way {
        Way::Both => &[Way::Outbox, Way::Bridge],
        Way::Outbox => &[Way::Outbox],
        Way::Bridge => &[Way::Bridge],
    };
    for &way in ways {
        let dir =
            std::env::temp_dir().join(format!("ronda-bench-uplink-{}-{way:?}", std::process::id()));
        match measure(&a, way, &dir) {
            Ok(f) => {
                f.print(way, &a);
                let _ = std::fs::remove_dir_all(&dir);
            }
            Err(e) => {
                // kept: the brokers' logs and the box's say why
                return Err(CliError::Runtime(format!(
                    "{way:?}: {e} (logs in {})",
                    dir.display()
                )));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The village box (the child process)

/// The outlet of `ronda run` raising `rate` alerts a second until the file `stop` appears beside
/// the configuration (then idle, delivering) or SIGTERM (then an orderly shutdown).
fn village(config: &Path, rate: f64) -> CliResult {
    let settings = Settings::load(config).map_err(|e| CliError::Usage(e.to_string()))?;
    let mut outlet = Outlet::start(&settings, Box::new(std::io::sink()))
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    let stopping = Arc::new(AtomicBool::new(false));
    {
        let stopping = stopping.clone();
        std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(crate::cli::stop_signal());
            }
            stopping.store(true, Ordering::SeqCst);
        });
    }
    let stop_file = config.with_file_name("stop");
    let period = Duration::from_secs_f64(1.0 / rate);
    let mut next = Instant::now();
    while !stopping.load(Ordering::SeqCst) {
        if !stop_file.exists() {
            let e = Event::new(
                &settings.site.id,
                settings.site.timezone,
                "gerbang-1",
                EventKind::Intrusion,
                Severity::Alert,
                chrono::Utc::now(),
            );
            outlet.record(&e);
        }
        next += period;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    outlet.shutdown(Duration::from_secs(5));
    Ok(())
}

/// The box's processes: the village (this binary) and, in the bridge way, its Mosquitto.
struct VillageBox {
    config: PathBuf,
    rate: f64,
    child: Option<Child>,
    broker: Option<Mosquitto>,
}

impl VillageBox {
    fn start(&mut self) -> CliResult {
        if let Some(b) = &mut self.broker {
            b.resume()?;
        }
        let exe = std::env::current_exe().map_err(|e| CliError::Runtime(e.to_string()))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.config.with_file_name("village.log"))
            .map_err(|e| CliError::Runtime(e.to_string()))?;
        let child = Command::new(exe)
            .args([
                "bench",
                "uplink",
                "--rate",
                &self.rate.to_string(),
                "--village",
            ])
            .arg(&self.config)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| CliError::Runtime(format!("cannot start the village box: {e}")))?;
        self.child = Some(child);
        Ok(())
    }

    fn stop(&mut self, how: Restart) {
        if let Some(mut c) = self.child.take() {
            match how {
                Restart::Kill => {
                    let _ = c.kill();
                }
                // SAFETY: kill(2) on our own child's pid, which `wait` below has not reaped yet
                Restart::Term => unsafe {
                    libc::kill(c.id() as i32, libc::SIGTERM);
                },
            }
            let _ = c.wait();
        }
        if let Some(b) = &mut self.broker {
            match how {
                Restart::Kill => b.stop(),
                Restart::Term => b.stop_gracefully(),
            }
        }
    }
}

impl Drop for VillageBox {
    fn drop(&mut self) {
        self.stop(Restart::Kill);
    }
}

// ---------------------------------------------------------------------------------------------
// Watching: the city's consumer and the guard post

/// Every event a subscriber received: its id, when, and its delay from the event's time (the
/// guard post's figure; an event whose time cannot be read counts as not delayed).
#[derive(Default)]
struct Arrivals {
    ids: Vec<String>,
    /// When each of `ids` arrived.
    at: Vec<Instant>,
    /// The delay of each of `ids`.
    delays_ms: Vec<f64>,
}

/// A subscriber to `topic` on `port` in its own thread, with a persistent session
/// (QoS 1) named `id`, re-subscribing at every connection; it stops when `stop` is set.
fn watch(port: u16, id: &str, topic: &str, stop: Arc<AtomicBool>) -> Arc<Mutex<Arrivals>> {
    let arrivals = Arc::new(Mutex::new(Arrivals::default()));
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_clean_session(false);
    o.set_keep_alive(Duration::from_secs(5));
    let (client, mut conn) = Client::new(o, 64);
    let out = arrivals.clone();
    let topic = topic.to_string();
    std::thread::spawn(move || {
        for ev in conn.iter() {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            match ev {
                Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => {
                    let _ = client.try_subscribe(topic.as_str(), QoS::AtLeastOnce);
                }
                Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&p.payload) else {
                        continue;
                    };
                    let delay = v["time"]
                        .as_str()
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| (chrono::Utc::now() - t.to_utc()).num_milliseconds() as f64);
                    let mut a = out.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(id) = v["id"].as_str() {
                        a.ids.push(id.to_string());
                        a.at.push(Instant::now());
                        a.delays_ms.push(delay.unwrap_or(0.0));
                    }
                }
                Ok(_) => {}
                // the broker is down (the outage, a restart of the box): try again shortly
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    });
    arrivals
}

/// The ids of the village's stored events, in its order.
fn stored_ids(db: &Path) -> Result<Vec<String>, CliError> {
    let err = |e: rusqlite::Error| CliError::Runtime(format!("{}: {e}", db.display()));
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(err)?;
    let mut st = conn
        .prepare("SELECT id FROM events ORDER BY seq")
        .map_err(err)?;
    st.query_map([], |r| r.get::<_, String>(0))
        .map_err(err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)
}

fn wait_until(timeout: Duration, what: &str, mut done: impl FnMut() -> bool) -> CliResult {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > timeout {
            return Err(CliError::Runtime(format!(
                "{what}: not after {} s",
                timeout.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// One way, measured

struct Figures {
    stored: usize,
    reached: usize,
    twice: usize,
    out_of_order: usize,
    /// From the city's return to the arrival of the last event stored before it.
    catch_up: Option<Duration>,
    guard_p95_ms: f64,
    guard_max_ms: f64,
    guard_seen: usize,
}

impl Figures {
    fn print(&self, way: Way, a: &UplinkArgs) {
        let how = match way {
            Way::Bridge => format!(
                "Mosquitto bridge (persistence on, autosave_interval {} s)",
                a.autosave
            ),
            _ => "ronda outbox ([uplink], own cursor)".to_string(),
        };
        println!("{how}:");
        println!(
            "  stored by the village {}, reached the city {}, lost {}, arrived twice {}, out of order {}",
            self.stored,
            self.reached,
            self.stored - self.reached,
            self.twice,
            self.out_of_order
        );
        match self.catch_up {
            Some(d) => println!(
                "  the backlog (events stored while the city was down) was there {:.1} s after it was back",
                d.as_secs_f64()
            ),
            None => println!("  nothing of the backlog reached the city after it was back"),
        }
        println!(
            "  guard post during the outage: {} events seen, delay p95 {:.0} ms, max {:.0} ms",
            self.guard_seen, self.guard_p95_ms, self.guard_max_ms
        );
    }
}

fn bridge_lines(city: u16, autosave: u64) -> String {
    format!(
        "autosave_interval {autosave}\nmax_queued_messages 0\n\
         connection city\naddress 127.0.0.1:{city}\ntopic ronda/# out 1\n\
         cleansession false\nremote_clientid ronda-{SITE}-bridge\nrestart_timeout 1\n\
         bridge_attempt_unsubscribe false\n"
    )
}

fn measure(a: &UplinkArgs, way: Way, dir: &Path) -> Result<Figures, CliError> {
    std::fs::create_dir_all(dir).map_err(|e| CliError::Runtime(e.to_string()))?;
    let free = crate::cli::free_port;
    let mut city =
        Mosquitto::start_with(&dir.join("city"), free()?, true, "max_queued_messages 0\n")?;
    let stop = Arc::new(AtomicBool::new(false));
    let at_city = watch(city.port, "bench-city", "ronda/+/events", stop.clone());
    let local = free()?;
    let db = dir.join("ronda.db");
    let (mqtt, broker) = match way {
        Way::Bridge => {
            // started with the box's other process (`VillageBox::start`)
            let b = Mosquitto::configure(
                &dir.join("village-broker"),
                local,
                true,
                &bridge_lines(city.port, a.autosave),
            )?;
            (
                format!("[mqtt]\nembedded = false\nurl = \"mqtt://127.0.0.1:{local}\"\n"),
                Some(b),
            )
        }
        _ => (
            format!(
                "[mqtt]\nlisten = \"127.0.0.1:{local}\"\n[uplink]\nurl = \"mqtt://127.0.0.1:{}\"\n",
                city.port
            ),
            None,
        ),
    };
    let config = dir.join("ronda.toml");
    let text = format!(
        "[site]\nid = \"{SITE}\"\ntimezone = \"Asia/Jakarta\"\n{mqtt}\
         [store]\npath = \"{}\"\nclips_dir = \"{}\"\n",
        db.display(),
        dir.join("clips").display()
    );
    std::fs::write(&config, text).map_err(|e| CliError::Runtime(e.to_string()))?;
    let mut vbox = VillageBox {
        config,
        rate: a.rate,
        child: None,
        broker,
    };
    vbox.start()?;
    let guard = watch(
        local,
        "bench-guard-post",
        &format!("ronda/{SITE}/events"),
        stop.clone(),
    );
    let count = |w: &Arc<Mutex<Arrivals>>| w.lock().map_or(0, |a| a.ids.len());
    wait_until(START, "the first event reaches the city", || {
        count(&at_city) > 0
    })?;

    // the outage, with the box restarted halfway
    city.stop_gracefully();
    let down = Instant::now();
    let guard_before = count(&guard);
    println!("  {way:?}: city broker down");
    std::thread::sleep(Duration::from_secs(a.outage / 2));
    vbox.stop(a.restart);
    vbox.start()?;
    println!(
        "  {way:?}: box restarted ({:?}) after {} s",
        a.restart,
        down.elapsed().as_secs()
    );
    std::thread::sleep(Duration::from_secs(a.outage).saturating_sub(down.elapsed()));
    let guard_during: Vec<f64> = guard
        .lock()
        .map(|g| g.delays_ms[guard_before..].to_vec())
        .unwrap_or_default();
    city.resume()?;
    let up = Instant::now();
    // what waited for the city: the events stored until it was back
    let backlog: HashSet<String> = stored_ids(&db)?.into_iter().collect();
    println!(
        "  {way:?}: city broker back after {} s",
        down.elapsed().as_secs()
    );
    std::thread::sleep(Duration::from_secs(10));
    std::fs::write(dir.join("stop"), b"").map_err(|e| CliError::Runtime(e.to_string()))?;
    // the last event may still be on its way into the store
    std::thread::sleep(Duration::from_secs(1));
    let stored = stored_ids(&db)?;
    let want: HashSet<&String> = stored.iter().collect();
    let drain = Duration::from_secs(a.drain);
    loop {
        let (have_all, idle) = {
            let c = at_city.lock().unwrap_or_else(|e| e.into_inner());
            let got: HashSet<&String> = c.ids.iter().collect();
            let idle =
                c.at.last()
                    .is_none_or(|t| t.elapsed() > drain && up.elapsed() > drain);
            (want.iter().all(|id| got.contains(id)), idle)
        };
        if have_all || idle {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::SeqCst);
    vbox.stop(Restart::Term);

    let c = at_city.lock().unwrap_or_else(|e| e.into_inner());
    let order: HashMap<&String, usize> = stored.iter().enumerate().map(|(i, id)| (id, i)).collect();
    let mut seen = HashSet::new();
    let (mut twice, mut out_of_order, mut highest) = (0, 0, None::<usize>);
    for id in &c.ids {
        if !seen.insert(id) {
            twice += 1;
            continue;
        }
        if let Some(&i) = order.get(id) {
            if highest.is_some_and(|h| i < h) {
                out_of_order += 1;
            }
            highest = highest.max(Some(i));
        }
    }
    let reached = stored.iter().filter(|id| seen.contains(id)).count();
    let mut delays: Vec<f32> = guard_during.iter().map(|&d| d as f32).collect();
    let guard_p95_ms = f64::from(percentile(&mut delays, 0.95));
    Ok(Figures {
        stored: stored.len(),
        reached,
        twice,
        out_of_order,
        catch_up: c
            .ids
            .iter()
            .zip(&c.at)
            .filter(|(id, t)| backlog.contains(*id) && **t > up)
            .map(|(_, t)| *t - up)
            .max(),
        guard_p95_ms,
        guard_max_ms: delays.last().copied().map_or(0.0, f64::from),
        guard_seen: delays.len(),
    })
}
