//! `ronda bench hub`: the city's command room under many villages, with figures.
//!
//! Real parts: a Mosquitto started here as the city broker and a `ronda hub` in its own process
//! (its CPU and memory are its own). The villages are simulated in this process (one MQTT client
//! each): they publish what a village's `[uplink]` publishes (availability and camera status
//! retained, events with QoS 1, line counts retained after each crossing) at `--rate` events per
//! second each, at evenly spread moments. A reader polls the hub's JSON API the way its page does
//! and times each event from the moment its village published it to the moment the hub shows it.
//!
//! Printed: events offered and shown per second, delay p50 / p95 / max, events lost and shown
//! twice, the hub's CPU (cores) and memory (RSS now and peak), the store's size.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, MqttOptions, QoS};

use super::{CliError, CliResult, percentile};
use crate::cli::mosquitto::Mosquitto;
use crate::events::{CountsView, Direction, Event, EventKind, Severity};

#[derive(Debug, clap::Args)]
pub struct HubArgs {
    /// Village boxes publishing to the city broker.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=5000))]
    pub villages: u32,
    /// Events per second from each village (0.2: a busy gate, a crossing every 5 s).
    #[arg(long, default_value_t = 0.2)]
    pub rate: f64,
    /// Seconds of publishing measured.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Cameras per village (each a retained status).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub cameras: u32,
    /// Seconds to wait, after the villages stop, for the hub to show what is still on its way.
    #[arg(long, default_value_t = 60)]
    pub drain: u64,
}

/// The hub process, killed when dropped.
struct HubProcess {
    child: Child,
    log: PathBuf,
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The scratch directory of one run, removed at the end.
struct Scratch(PathBuf);
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// When each event was published, and when the hub first showed it.
#[derive(Default)]
struct Ledger {
    published: HashMap<String, Instant>,
    shown: HashMap<String, Instant>,
    shown_twice: u64,
}

fn runtime_error(e: impl std::fmt::Display) -> CliError {
    CliError::Runtime(e.to_string())
}

pub fn run(a: HubArgs) -> CliResult {
    if !(a.rate.is_finite() && a.rate > 0.0 && a.rate <= 100.0) {
        return Err(CliError::Usage(format!(
            "--rate {}: give events per second per village, above 0 and at most 100",
            a.rate
        )));
    }
    let dir = Scratch(std::env::temp_dir().join(format!("ronda-bench-hub-{}", std::process::id())));
    let result = measure(&a, &dir);
    if result.is_err() {
        // kept: the hub's log and the broker's are what tells why
        std::mem::forget(dir);
    }
    result
}

fn measure(a: &HubArgs, dir: &Scratch) -> CliResult {
    let broker = Mosquitto::start(&dir.0.join("broker"), crate::cli::free_port()?)?;
    let web_port = crate::cli::free_port()?;
    let password = crate::cli::passwd::new_password();
    let config = write_config(&dir.0, a, broker.port, web_port, &password)?;
    let exe = std::env::current_exe().map_err(runtime_error)?;
    let log = dir.0.join("hub.log");
    let out = std::fs::File::create(&log).map_err(runtime_error)?;
    let child = Command::new(exe)
        .arg("hub")
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(out.try_clone().map_err(runtime_error)?)
        .stderr(out)
        .spawn()
        .map_err(|e| CliError::Runtime(format!("cannot start `ronda hub`: {e}")))?;
    let mut hub = HubProcess { child, log };
    wait_for_web(&mut hub, web_port)?;
    let web = Web::login(web_port, &password)?;
    println!(
        "ronda bench hub: {} villages x {:.2} events/s ({:.1} events/s offered), {} cameras each, {} s",
        a.villages,
        a.rate,
        a.rate * f64::from(a.villages),
        a.cameras,
        a.seconds
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(runtime_error)?;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (ledger, stop) = (ledger.clone(), stop.clone());
        std::thread::spawn(move || web.read_until(&ledger, &stop))
    };
    // the hub may still be subscribing: publish a first event until it shows, so no event of
    // the measurement is published before the hub's session exists
    let villages = rt.block_on(connect_villages(a, broker.port))?;
    rt.block_on(first_event_shows(&villages[0], &ledger, &hub))?;
    {
        // the probe is not part of the measurement
        let mut l = ledger.lock().unwrap();
        l.published.clear();
        l.shown.clear();
    }

    let pid = hub.child.id();
    let cpu0 = super::cpu_seconds_of(&pid.to_string());
    let started = Instant::now();
    let published = Arc::new(AtomicU64::new(0));
    rt.block_on(publish(a, &villages, &ledger, &published));
    let offered_for = started.elapsed();
    let (n_pub, shown_by_stop) = {
        let l = ledger.lock().unwrap();
        (l.published.len(), l.shown.len())
    };
    // drain: until everything shows, or nothing more shows for a while, or --drain is over
    let drain_start = Instant::now();
    let mut last = (shown_by_stop, Instant::now());
    loop {
        let n = ledger.lock().unwrap().shown.len();
        if n >= n_pub || drain_start.elapsed() > Duration::from_secs(a.drain) {
            break;
        }
        if n != last.0 {
            last = (n, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(15) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let all_in = started.elapsed();
    let cpu = super::cpu_seconds_of(&pid.to_string()) - cpu0;
    stop.store(true, Ordering::Relaxed);
    let _ = reader.join();
    let (rss, peak) = memory_mb(pid);
    let store_mb = std::fs::metadata(dir.0.join("hub.db")).map_or(0.0, |m| m.len() as f64 / 1e6);

    let l = ledger.lock().unwrap();
    let mut delays: Vec<f32> = l
        .published
        .iter()
        .filter_map(|(id, p)| {
            l.shown
                .get(id)
                .map(|s| s.duration_since(*p).as_secs_f32() * 1e3)
        })
        .collect();
    let lost = l
        .published
        .keys()
        .filter(|id| !l.shown.contains_key(*id))
        .count();
    let p50 = percentile(&mut delays, 0.5);
    let p95 = percentile(&mut delays, 0.95);
    let max = delays.last().copied().unwrap_or(f32::NAN);
    println!(
        "events: {n_pub} published in {:.1} s ({:.1}/s offered), {} shown by then, all shown {:.1} s after the start ({:.1}/s sustained)",
        offered_for.as_secs_f64(),
        n_pub as f64 / offered_for.as_secs_f64(),
        shown_by_stop.min(n_pub),
        all_in.as_secs_f64(),
        (n_pub - lost) as f64 / all_in.as_secs_f64(),
    );
    println!(
        "delay publish -> hub API (polled every 100 ms): p50 {p50:.0} ms, p95 {p95:.0} ms, max {max:.0} ms"
    );
    println!("lost: {lost}, shown twice: {}", l.shown_twice);
    println!(
        "hub process: {:.2} cores, RSS {rss:.0} MB (peak {peak:.0} MB), store {store_mb:.1} MB; machine load {}",
        cpu / all_in.as_secs_f64(),
        load_average()
    );
    drop(l);
    drop(hub);
    drop(broker);
    if lost > 0 {
        return Err(CliError::Runtime(format!(
            "{lost} event(s) never reached the hub's API"
        )));
    }
    Ok(())
}

/// The hub's configuration: one city admin, the villages in ten districts, no clip links.
fn write_config(
    dir: &Path,
    a: &HubArgs,
    broker: u16,
    web: u16,
    password: &str,
) -> Result<PathBuf, CliError> {
    let hash = crate::api::hash_password(password).map_err(CliError::Runtime)?;
    let mut text = format!(
        "[hub]\nname = \"bench\"\ntimezone = \"Asia/Jakarta\"\nlanguage = \"en\"\n\
         listen = \"127.0.0.1:{web}\"\nstore = \"{store}\"\n\n\
         [broker]\nurl = \"mqtt://127.0.0.1:{broker}\"\nclient_id = \"ronda-hub-bench\"\n\n\
         [[users]]\nname = \"bench\"\nrole = \"city_admin\"\npassword_hash = \"{hash}\"\n",
        store = dir.join("hub.db").display()
    );
    for v in 0..a.villages {
        text.push_str(&format!(
            "\n[[villages]]\nsite = \"{}\"\nname = \"Desa {}\"\ndistrict = \"d{}\"\n",
            site(v),
            v + 1,
            v % 10
        ));
    }
    let path = dir.join("hub.toml");
    std::fs::write(&path, text)
        .map_err(|e| CliError::Runtime(format!("cannot write {}: {e}", path.display())))?;
    Ok(path)
}

fn site(v: u32) -> String {
    format!("desa-{:04}", v + 1)
}

fn wait_for_web(hub: &mut HubProcess, port: u16) -> CliResult {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = hub.child.try_wait() {
            let log = std::fs::read_to_string(&hub.log).unwrap_or_default();
            return Err(CliError::Runtime(format!(
                "`ronda hub` stopped ({status}):\n{}",
                log.lines()
                    .rev()
                    .take(10)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n")
            )));
        }
        if start.elapsed() > Duration::from_secs(60) {
            return Err(CliError::Runtime(format!(
                "`ronda hub` does not answer on 127.0.0.1:{port} after 60 s; see {}",
                hub.log.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// The hub's JSON API with a logged-in session.
struct Web {
    base: String,
    cookie: String,
    agent: ureq::Agent,
}

impl Web {
    fn login(port: u16, password: &str) -> Result<Web, CliError> {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .new_agent();
        let base = format!("http://127.0.0.1:{port}");
        let res = agent
            .post(format!("{base}/api/login"))
            .header("content-type", "application/json")
            .send(serde_json::json!({"name": "bench", "password": password}).to_string())
            .map_err(|e| CliError::Runtime(format!("hub login: {e}")))?;
        let cookie = res
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(String::from)
            .ok_or_else(|| {
                CliError::Runtime(format!(
                    "hub login answered {} without a session",
                    res.status()
                ))
            })?;
        Ok(Web {
            base,
            cookie,
            agent,
        })
    }

    /// Poll `/api/events?after=` every 100 ms, as the page's feed does, until `stop`.
    fn read_until(&self, ledger: &Mutex<Ledger>, stop: &AtomicBool) {
        let mut after = 0i64;
        while !stop.load(Ordering::Relaxed) {
            let got = self
                .agent
                .get(format!("{}/api/events?after={after}&limit=500", self.base))
                .header("cookie", &self.cookie)
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
            let now = Instant::now();
            let mut full = false;
            if let Some(v) = got {
                let items = v["items"].as_array().cloned().unwrap_or_default();
                full = items.len() == 500;
                let mut l = ledger.lock().unwrap();
                for e in items {
                    if let Some(id) = e["id"].as_str()
                        && l.shown.insert(id.to_string(), now).is_some()
                    {
                        l.shown_twice += 1;
                    }
                }
                after = v["last"].as_i64().unwrap_or(after);
            }
            if !full {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// One simulated village box: its MQTT client (the event loop runs in its own task).
struct Village {
    site: String,
    client: AsyncClient,
}

async fn connect_villages(a: &HubArgs, port: u16) -> Result<Vec<Village>, CliError> {
    let mut out = Vec::new();
    for v in 0..a.villages {
        let site = site(v);
        let mut o = MqttOptions::new(format!("bench-{site}"), "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(30));
        o.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut eventloop) = AsyncClient::new(o, 256);
        tokio::spawn(async move {
            // the broker is local and stays up: a failure here ends this village's loop, and
            // its events then count as lost in the figures
            while eventloop.poll().await.is_ok() {}
        });
        client
            .publish(
                format!("ronda/{site}/availability"),
                QoS::AtLeastOnce,
                true,
                "online",
            )
            .await
            .map_err(runtime_error)?;
        for c in 0..a.cameras {
            client
                .publish(
                    format!("ronda/{site}/cameras/{}/status", camera(c)),
                    QoS::AtLeastOnce,
                    true,
                    serde_json::json!({"camera": camera(c), "state": "online", "fps": 12.0})
                        .to_string(),
                )
                .await
                .map_err(runtime_error)?;
        }
        out.push(Village { site, client });
    }
    Ok(out)
}

fn camera(c: u32) -> String {
    if c == 0 {
        "gate-1".into()
    } else {
        format!("cam-{}", c + 1)
    }
}

/// Publish a probe event from `v` until the hub shows it.
async fn first_event_shows(v: &Village, ledger: &Mutex<Ledger>, hub: &HubProcess) -> CliResult {
    let start = Instant::now();
    loop {
        let e = event(
            &v.site,
            "gate-1",
            EventKind::CameraOnline,
            Severity::Info,
            None,
        );
        v.client
            .publish(
                format!("ronda/{}/events", v.site),
                QoS::AtLeastOnce,
                false,
                serde_json::to_vec(&e).unwrap_or_default(),
            )
            .await
            .map_err(runtime_error)?;
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if ledger.lock().unwrap().shown.contains_key(&e.id) {
                return Ok(());
            }
        }
        if start.elapsed() > Duration::from_secs(60) {
            return Err(CliError::Runtime(format!(
                "the hub shows no event 60 s after it started; see {}",
                hub.log.display()
            )));
        }
    }
}

fn event(
    site: &str,
    camera: &str,
    kind: EventKind,
    severity: Severity,
    counts: Option<CountsView>,
) -> Event {
    let mut e = Event::new(
        site,
        chrono_tz::Asia::Jakarta,
        camera,
        kind,
        severity,
        chrono::Utc::now(),
    );
    e.counts = counts;
    e
}

/// Every village publishes `rate` events per second for `seconds`, at evenly spread moments
/// (each village starts at its own offset): nine crossings at the gate for each alert.
async fn publish(
    a: &HubArgs,
    villages: &[Village],
    ledger: &Arc<Mutex<Ledger>>,
    n: &Arc<AtomicU64>,
) {
    let period = Duration::from_secs_f64(1.0 / a.rate);
    let end = tokio::time::Instant::now() + Duration::from_secs(a.seconds);
    let mut tasks = Vec::new();
    for (i, v) in villages.iter().enumerate() {
        let (site, client) = (v.site.clone(), v.client.clone());
        let (ledger, n, cameras) = (ledger.clone(), n.clone(), a.cameras);
        let offset = period.mul_f64(i as f64 / villages.len() as f64);
        tasks.push(tokio::spawn(async move {
            let mut at = tokio::time::Instant::now() + offset;
            let mut counts = crate::events::Counts::default();
            let mut k = 0u64;
            while at < end {
                tokio::time::sleep_until(at).await;
                at += period;
                k += 1;
                let e = if k.is_multiple_of(10) {
                    let cam = camera((k as u32 / 10) % cameras);
                    event(&site, &cam, EventKind::Intrusion, Severity::Alert, None)
                } else {
                    let d = if k.is_multiple_of(2) {
                        Direction::Out
                    } else {
                        Direction::In
                    };
                    counts.add(d);
                    let mut e = event(
                        &site,
                        "gate-1",
                        EventKind::LineCrossing,
                        Severity::Info,
                        Some(counts.into()),
                    );
                    e.line = Some("gapura".into());
                    e.direction = Some(d);
                    e
                };
                ledger
                    .lock()
                    .unwrap()
                    .published
                    .insert(e.id.clone(), Instant::now());
                let body = serde_json::to_vec(&e).unwrap_or_default();
                if client
                    .publish(
                        format!("ronda/{site}/events"),
                        QoS::AtLeastOnce,
                        false,
                        body,
                    )
                    .await
                    .is_err()
                {
                    break;
                }
                n.fetch_add(1, Ordering::Relaxed);
                if e.kind == EventKind::LineCrossing {
                    let view: CountsView = counts.into();
                    let _ = client
                        .publish(
                            format!("ronda/{site}/lines/gate-1/gapura/counts"),
                            QoS::AtLeastOnce,
                            true,
                            serde_json::to_vec(&view).unwrap_or_default(),
                        )
                        .await;
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// RSS now and its peak, MB, of process `pid`.
fn memory_mb(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(String::from))
        .unwrap_or_else(|| "?".into())
}
