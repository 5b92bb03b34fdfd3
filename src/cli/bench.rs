//! `ronda bench`: `live`, the whole live pipeline under a village's load, `hub` (in `bench/hub.rs`),
//! the city's command room under many villages, and `uplink` (in `bench/uplink.rs`), what a city
//! outage costs each way of sending events up; each prints its figures.
//!
//! `live`: the RTSP simulator runs as a separate `ronda sim` process (so its CPU is not counted as the
//! pipeline's): camera 1 is the gate, the next ones busy pedestrian footage, the last `--quiet`
//! cameras a still scene with an occasional passer-by. After a warm-up the command measures for
//! `--seconds` and prints: process CPU in cores, RSS (start, end, peak, and once a minute for long
//! runs), per-camera delivered and analysed fps (min / median), frames dropped, inference per
//! second, frame-to-event latency and how fast a quiet camera reacts to its passer-by.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{CliError, CliResult};
use crate::config::Settings;

mod hub;
mod uplink;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(Debug, clap::Subcommand)]
pub enum What {
    /// Live pipeline against `ronda sim` in its own process.
    Live(LiveArgs),
    /// The city's hub (`ronda hub`, own process) fed by simulated villages over a real Mosquitto.
    Hub(hub::HubArgs),
    /// What survives a city outage with the box restarted in it: ronda's outbox vs Mosquitto's bridge.
    Uplink(uplink::UplinkArgs),
}

#[derive(Debug, clap::Args)]
pub struct LiveArgs {
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u16).range(1..=200))]
    pub cameras: u16,
    /// Pedestrian footage (a bare name such as vtest.avi is looked up among the samples).
    #[arg(long = "clip", default_value = "vtest.avi", value_name = "FILE")]
    pub clips: Vec<PathBuf>,
    /// How many of the cameras (the last ones) are quiet: still scene, passer-by now and then.
    #[arg(long, default_value_t = 30)]
    pub quiet: u16,
    /// Seconds measured, after the warm-up.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Seconds to let cameras connect and queues settle before measuring.
    #[arg(long, default_value_t = 15)]
    pub warmup: u64,
    #[arg(long, default_value_t = 12.0)]
    pub gate_fps: f64,
    #[arg(long, default_value_t = 5.0)]
    pub camera_fps: f64,
    /// Port of the simulator (default: a free one).
    #[arg(long)]
    pub port: Option<u16>,
    /// Inference threads (default: the configuration's, 1).
    #[arg(long)]
    pub threads: Option<usize>,
    /// The area cameras' person model (`[detector] area_person_model`, e.g. person_small).
    #[arg(long)]
    pub area_person_model: Option<String>,
    /// Area cameras search regions around motion and tracked people (`[detector] area_regions`):
    /// `on` or `off` (default: the configuration's default).
    #[arg(long, value_parser = ["on", "off"])]
    pub area_regions: Option<String>,
    /// How the int8 model computes on an x86 CPU without VNNI (`[detector] int8_arithmetic`):
    /// `exact` (the default) or `fast`; run both to see what exact costs on such a CPU.
    #[arg(long, value_parser = ["exact", "fast"])]
    pub int8_arithmetic: Option<String>,
}

pub fn run(args: Args) -> CliResult {
    match args.what {
        What::Live(a) => live(a),
        What::Hub(a) => hub::run(a),
        What::Uplink(a) => uplink::run(a),
    }
}

struct Sim(Child);
impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The settings of the benched village: sim picture 480x360 (vtest at 360p).
fn village(a: &LiveArgs, port: u16, dir: &std::path::Path) -> Result<Settings, CliError> {
    let n = a.cameras as usize;
    let quiet = (a.quiet as usize).min(n.saturating_sub(1));
    let mut t = format!(
        "[site]\nid = \"bench\"\nname = \"bench\"\n\n[mqtt]\nlisten = \"127.0.0.1:{}\"\n\n\
         [store]\npath = \"{dir}/ronda.db\"\nclips_dir = \"{dir}/clips\"\n\n",
        super::free_port()?,
        dir = dir.display()
    );
    t.push_str("[detector]\n");
    if let Some(th) = a.threads {
        t.push_str(&format!("threads = {th}\n"));
    }
    if let Some(m) = &a.area_person_model {
        t.push_str(&format!("area_person_model = \"{m}\"\n"));
    }
    if let Some(r) = &a.area_regions {
        t.push_str(&format!("area_regions = {}\n", r == "on"));
    }
    if let Some(m) = &a.int8_arithmetic {
        t.push_str(&format!("int8_arithmetic = \"{m}\"\n"));
    }
    t.push('\n');
    for i in 1..=n {
        let (role, fps) = if i == 1 {
            ("gate", a.gate_fps)
        } else {
            ("area", a.camera_fps)
        };
        t.push_str(&format!(
            "[[cameras]]\nid = \"cam{i:02}\"\nurl = \"rtsp://127.0.0.1:{port}/cam{i:02}\"\nrole = \"{role}\"\nanalysis_fps = {fps}\n\
             [[cameras.lines]]\nname = \"mid\"\npoints = [[240, 94], [240, 360]]\n\n"
        ));
    }
    let _ = quiet;
    Settings::parse(&t, std::path::Path::new("<bench live>"))
        .map_err(|e| CliError::Usage(e.to_string()))
}

/// CPU time of this process (user + system), seconds.
fn cpu_seconds() -> f64 {
    cpu_seconds_of("self")
}

/// CPU seconds (user + system) so far of process `pid` ("self": this one).
fn cpu_seconds_of(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // fields after the command name (which may hold spaces) start after the last ')'
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz.max(1.0)
}

/// Resident memory of this process, MB.
fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn percentile(v: &mut [f32], p: f64) -> f32 {
    if v.is_empty() {
        return f32::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn min_median_max(v: &mut [f64]) -> (f64, f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    v.sort_by(|a, b| a.total_cmp(b));
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

/// Event writer that only counts.
struct Count(Arc<AtomicU64>);
impl Write for Count {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.fetch_add(
            b.iter().filter(|&&c| c == b'\n').count() as u64,
            Ordering::Relaxed,
        );
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn live(a: LiveArgs) -> CliResult {
    let port = match a.port {
        Some(p) => p,
        None => super::free_port()?,
    };
    let n = a.cameras as usize;
    let quiet = (a.quiet as usize).min(n.saturating_sub(1));
    let busy = n - quiet;
    let exe = std::env::current_exe().map_err(|e| CliError::Runtime(e.to_string()))?;
    let mut cmd = Command::new(exe);
    cmd.args([
        "sim",
        "--cameras",
        &n.to_string(),
        "--port",
        &port.to_string(),
    ]);
    cmd.args(["--quiet", &quiet.to_string()]);
    for c in &a.clips {
        cmd.arg("--clip").arg(crate::analyze::resolve_video(c));
    }
    let sim = Sim(cmd
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| CliError::Runtime(format!("cannot start `ronda sim`: {e}")))?);
    eprintln!(
        "bench live: sim pid {} on port {port}: {n} cameras ({busy} busy incl. the gate, {quiet} quiet); preparing footage...",
        sim.0.id()
    );
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if t0.elapsed() > Duration::from_secs(600) {
            return Err(CliError::Runtime(
                "the simulator does not listen after 10 min".into(),
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    // the bench's own store and broker, thrown away afterwards
    let dir = std::env::temp_dir().join(format!("ronda-bench-{}", std::process::id()));
    let settings = village(&a, port, &dir)?;
    let events = Arc::new(AtomicU64::new(0));
    let live = crate::app::Live::start(&settings, Box::new(Count(events.clone())))
        .map_err(|e| CliError::Runtime(crate::detect::one_line_error(e)))?;
    eprintln!(
        "bench live: warming up {} s, then measuring {} s",
        a.warmup, a.seconds
    );
    std::thread::sleep(Duration::from_secs(a.warmup));

    let snap = |live: &crate::app::Live| {
        let figs = live.figures.lock().map(|f| f.clone()).unwrap_or_default();
        (live.camera_counters(), figs)
    };
    // figures are published every 2 s: wait for a fresh copy at both ends of the window
    std::thread::sleep(Duration::from_millis(2100));
    let (c0, f0) = snap(&live);
    let (cpu0, w0, rss0) = (cpu_seconds(), Instant::now(), rss_mb());
    let mut rss_peak = rss0;
    let mut minute_rss = Vec::new();
    while w0.elapsed() < Duration::from_secs(a.seconds) {
        std::thread::sleep(Duration::from_secs(1));
        let r = rss_mb();
        rss_peak = rss_peak.max(r);
        let m = w0.elapsed().as_secs() / 60;
        if m as usize > minute_rss.len() {
            minute_rss.push(r);
        }
    }
    std::thread::sleep(Duration::from_millis(2100));
    let (c1, f1) = snap(&live);
    let (cpu1, secs, rss1) = (cpu_seconds(), w0.elapsed().as_secs_f64(), rss_mb());
    let events_n = events.load(Ordering::Relaxed);
    live.shutdown();
    drop(sim);
    let _ = std::fs::remove_dir_all(&dir);

    // per camera figures over the window
    let mut delivered = Vec::new();
    let mut analysed_busy = Vec::new();
    let mut analysed_quiet = Vec::new();
    let mut gate_fps = f64::NAN;
    let (mut dropped, mut reconnects, mut inferences, mut inf_time) = (0u64, 0u64, 0u64, 0.0f64);
    let mut inf_class = [(0u64, 0.0f64); 2];
    let mut latency = Vec::new();
    let mut wake = Vec::new();
    let mut notice = Vec::new();
    let mut silent = Vec::new();
    // decode per camera class: [gate, busy, quiet] x (pictures decoded, ns, pictures skipped)
    let mut decode = [(0u64, 0u64, 0u64); 3];
    // quiet cameras: stirs seen in the sizes of pictures not decoded, pictures caught up on them
    let (mut stirs, mut caught_up) = (0u64, 0u64);
    // searches per camera class: [gate, busy, quiet]
    let mut search = [Search::default(); 3];
    for (i, c) in c1.iter().enumerate() {
        let id = &c.id;
        let was = c0.iter().find(|b| &b.id == id).cloned().unwrap_or_default();
        let dfps = (c.delivered - was.delivered) as f64 / secs;
        if c.delivered == was.delivered {
            silent.push(id.clone());
        }
        delivered.push(dfps);
        dropped += c.dropped - was.dropped;
        reconnects += c.reconnects - was.reconnects;
        let class = if i == 0 {
            0
        } else if i < busy {
            1
        } else {
            2
        };
        decode[class].0 += c.decoded - was.decoded;
        decode[class].1 += c.decode_ns - was.decode_ns;
        decode[class].2 += c.skipped - was.skipped;
        if class == 2 {
            stirs += c.stirs - was.stirs;
            caught_up += c.caught_up - was.caught_up;
        }
        let (a1, t1) = f1
            .get(id)
            .map_or((0, Duration::ZERO), |f| (f.analysed, f.inference));
        let (a0, t0) = f0
            .get(id)
            .map_or((0, Duration::ZERO), |f| (f.analysed, f.inference));
        let afps = (a1 - a0) as f64 / secs;
        inferences += a1 - a0;
        inf_time += (t1 - t0).as_secs_f64();
        // the gate's model and the area cameras' (`--area-person-model`) apart
        let k = usize::from(i != 0);
        inf_class[k].0 += a1 - a0;
        inf_class[k].1 += (t1 - t0).as_secs_f64();
        if i == 0 {
            gate_fps = afps;
        } else if i < busy {
            analysed_busy.push(afps);
        } else {
            analysed_quiet.push(afps);
        }
        if let (Some(f), was) = (f1.get(id), f0.get(id).cloned().unwrap_or_default()) {
            search[class].add(f, &was);
        }
        if let Some(f) = f1.get(id) {
            latency.extend_from_slice(f.event_latency_ms.values());
            wake.extend_from_slice(f.wake_latency_ms.values());
            notice.extend_from_slice(f.notice_latency_ms.values());
        }
    }
    let cores = (cpu1 - cpu0) / secs;
    let (dmin, dmed, dmax) = min_median_max(&mut delivered);
    let (bmin, bmed, bmax) = min_median_max(&mut analysed_busy);
    let (qmin, qmed, qmax) = min_median_max(&mut analysed_quiet);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "ronda bench live: {n} cameras ({} busy + gate, {quiet} quiet) at 360p15 from `ronda sim` (separate process), {secs:.0} s measured after {} s warm-up",
        busy.saturating_sub(1),
        a.warmup
    );
    println!(
        "  machine load average: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    // what the inference figures below were measured with (README "Counts and the CPU")
    println!(
        "  int8 arithmetic:       {}",
        crate::detect::runtime::int8_arithmetic(settings.detector.int8_exact)
    );
    println!("  pipeline CPU:          {cores:.2} cores");
    println!(
        "  RSS:                   start {rss0:.0} MB, end {rss1:.0} MB, peak {rss_peak:.0} MB"
    );
    if !minute_rss.is_empty() {
        let m: Vec<String> = minute_rss.iter().map(|r| format!("{r:.0}")).collect();
        println!("  RSS each minute (MB):  {}", m.join(", "));
    }
    println!("  delivered fps/camera:  min {dmin:.2}  median {dmed:.2}  max {dmax:.2}");
    println!(
        "  analysed fps, gate:    {gate_fps:.2} (asked {})",
        a.gate_fps
    );
    println!(
        "  analysed fps, busy:    min {bmin:.2}  median {bmed:.2}  max {bmax:.2} (asked {})",
        a.camera_fps
    );
    println!("  analysed fps, quiet:   min {qmin:.2}  median {qmed:.2}  max {qmax:.2}");
    println!(
        "  cameras without frames: {}",
        if silent.is_empty() {
            "none".into()
        } else {
            silent.join(", ")
        }
    );
    println!(
        "  frames dropped:        {dropped} ({:.1}/s), reconnects {reconnects}",
        dropped as f64 / secs
    );
    println!(
        "  inference:             {:.1}/s, {:.1} ms each (gate {:.1} ms, other cameras {:.1} ms{})",
        inferences as f64 / secs,
        inf_time * 1000.0 / inferences.max(1) as f64,
        inf_class[0].1 * 1000.0 / inf_class[0].0.max(1) as f64,
        inf_class[1].1 * 1000.0 / inf_class[1].0.max(1) as f64,
        a.area_person_model
            .as_deref()
            .map_or(String::new(), |m| format!(" on {m}")),
    );
    println!(
        "  frame-to-event ms:     p50 {:.0}  p95 {:.0}  ({} events in the run, {} latencies)",
        percentile(&mut latency, 0.5),
        percentile(&mut latency, 0.95),
        events_n,
        latency.len()
    );
    println!(
        "  quiet camera wake ms:  p50 {:.0}  p95 {:.0}  max {:.0}  ({} passers-by seen)",
        percentile(&mut wake, 0.5),
        percentile(&mut wake, 0.95),
        percentile(&mut wake, 1.0),
        wake.len()
    );
    println!(
        "  quiet camera notice ms (from the last still picture): p50 {:.0}  p95 {:.0}  max {:.0}",
        percentile(&mut notice, 0.5),
        percentile(&mut notice, 0.95),
        percentile(&mut notice, 1.0),
    );
    let cams = [1, busy.saturating_sub(1), quiet];
    for (k, name) in ["gate", "busy", "quiet"].iter().enumerate() {
        let (pics, ns, skipped) = decode[k];
        let per_cam = cams[k].max(1) as f64;
        println!(
            "  decode, {name:5}:  {:.1} pictures/s and {:.1} ms/s of CPU per camera ({:.2} ms each), {:.1} pictures/s not decoded",
            pics as f64 / secs / per_cam,
            ns as f64 / 1e6 / secs / per_cam,
            ns as f64 / 1e6 / pics.max(1) as f64,
            skipped as f64 / secs / per_cam,
        );
    }
    println!(
        "  quiet cameras' stirs:  {stirs} seen in the sizes of pictures not decoded, {caught_up} pictures decoded after all on them"
    );
    for (k, name) in ["busy", "quiet"].iter().enumerate() {
        let s = &search[k + 1];
        if s.region_looks + s.whole_looks == 0 {
            continue;
        }
        println!(
            "  search, {name:5}:  {} whole pictures ({:.1} ms each), {} searches of regions only ({:.2} regions each, {:.1} ms each, {:.1} ms a region)",
            s.whole_looks,
            s.whole_s * 1000.0 / s.whole_looks.max(1) as f64,
            s.region_looks,
            s.regions as f64 / s.region_looks.max(1) as f64,
            s.region_s * 1000.0 / s.region_looks.max(1) as f64,
            s.region_s * 1000.0 / s.regions.max(1) as f64,
        );
    }
    let _ = (bmax, qmax);
    Ok(())
}

/// Whole-picture and region searches of a camera class over the window.
#[derive(Clone, Copy, Debug, Default)]
struct Search {
    whole_looks: u64,
    whole_s: f64,
    region_looks: u64,
    regions: u64,
    region_s: f64,
}

impl Search {
    fn add(&mut self, now: &crate::app::CameraFigures, was: &crate::app::CameraFigures) {
        self.whole_looks += now.whole_looks - was.whole_looks;
        self.whole_s += (now.whole_time - was.whole_time).as_secs_f64();
        self.region_looks += now.region_looks - was.region_looks;
        self.regions += now.regions - was.regions;
        self.region_s += (now.region_time - was.region_time).as_secs_f64();
    }
}
