//! `ronda demo --villages N`: a small city on this box. N village boxes (each a `ronda run`
//! process with its own store, guard-post broker and web pages, two simulated cameras: the gate
//! with its line and a yard with a restricted zone), a real Mosquitto as the city broker that
//! every village's `[uplink]` publishes to, and `ronda hub` (its own process) showing them all.
//! Everything is written under `var/demo-city/` and made again at each start; the passwords are
//! new for each run. Ctrl-C stops the villages and the hub (SIGTERM: each flushes its outbox),
//! then the broker and the simulator.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{CliError, CliResult};
use crate::cli::mosquitto::Mosquitto;
use crate::ingest::sim::{SimOptions, Simulator};
use crate::paths::{project_root, samples_dir};

/// The variable through which the hub gets the password of the account each village gave it
/// (the hub's file holds only `${...}`).
const VILLAGE_PASSWORD_VAR: &str = "RONDA_DEMO_VILLAGE_PASSWORD";

/// A child process of the demo, stopped with SIGTERM (then killed) when dropped.
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        // SIGTERM first: ronda stops in order and its outbox is flushed
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One village of the demo city.
struct Village {
    site: String,
    name: &'static str,
    district: &'static str,
    http: u16,
    mqtt: u16,
    dir: PathBuf,
}

const NAMES: [&str; 10] = [
    "Kepatihan",
    "Sisir",
    "Temas",
    "Ngaglik",
    "Songgokerto",
    "Pesanggrahan",
    "Sidomulyo",
    "Oro-oro Ombo",
    "Tlekung",
    "Junrejo",
];

pub fn run(n: u8, sim_port: u16) -> CliResult {
    let vtest = samples_dir().join("vtest.avi");
    if !vtest.is_file() {
        return Err(CliError::Runtime(format!(
            "{}: sample footage missing; run `make setup`",
            vtest.display()
        )));
    }
    let root = project_root().join("var").join("demo-city");
    // each demo starts from the same city: no events, counts or sessions of an earlier run
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)
        .map_err(|e| CliError::Runtime(format!("cannot make {}: {e}", root.display())))?;
    let free = crate::cli::free_port;
    let city = Mosquitto::start(&root.join("city-broker"), free()?)?;
    let password = crate::cli::passwd::new_password();
    let village_password = crate::cli::passwd::new_password();
    let hash = crate::api::hash_password(&password).map_err(CliError::Runtime)?;
    let village_hash = crate::api::hash_password(&village_password).map_err(CliError::Runtime)?;
    let villages: Vec<Village> = (0..usize::from(n))
        .map(|k| {
            Ok(Village {
                site: format!("desa-{}", k + 1),
                name: NAMES[k % NAMES.len()],
                district: if k % 2 == 0 { "utara" } else { "selatan" },
                http: free()?,
                mqtt: free()?,
                dir: root.join(format!("desa-{}", k + 1)),
            })
        })
        .collect::<Result<_, CliError>>()?;
    println!(
        "ronda demo: preparing a city of {n} village(s), two simulated cameras each, from {} \
         (the first run encodes the footage once, about a minute)...",
        vtest.display()
    );
    let sim = Simulator::start(&SimOptions {
        port: sim_port,
        cameras: 2 * usize::from(n),
        quiet: 0,
        clips: vec![vtest],
        offsets: true,
        ..SimOptions::default()
    })
    .map_err(|e| CliError::Runtime(e.to_string()))?;

    let exe = std::env::current_exe().map_err(|e| CliError::Runtime(e.to_string()))?;
    let mut boxes = Vec::new();
    for (k, v) in villages.iter().enumerate() {
        let cfg = v.dir.join("ronda.toml");
        write_private(
            &cfg,
            &village_config(v, k, sim_port, city.port, &hash, &village_hash),
        )?;
        boxes.push(start(
            &exe,
            &["run", "--config"],
            &cfg,
            &v.dir.join("ronda.log"),
            &v.site,
            None,
        )?);
    }
    let hub_port = free()?;
    let hub_cfg = root.join("hub.toml");
    write_private(
        &hub_cfg,
        &hub_config(&villages, &root, hub_port, city.port, &hash),
    )?;
    let mut hub = start(
        &exe,
        &["hub", "--config"],
        &hub_cfg,
        &root.join("hub.log"),
        "hub",
        Some((VILLAGE_PASSWORD_VAR, village_password.as_str())),
    )?;
    println!(
        "ronda demo: starting {n} village box(es) and the hub (loading the models takes a moment)..."
    );
    for (p, port) in boxes
        .iter_mut()
        .zip(villages.iter().map(|v| v.http))
        .chain(std::iter::once((&mut hub, hub_port)))
    {
        wait_for_web(p, port)?;
    }
    println!(
        "ronda demo running: a city of {n} village(s); the simulator serves {cams} cameras.\n\
         City command room (ronda hub): http://127.0.0.1:{hub_port}/\n    \
         log in as `kota` (the whole city) or `camat` (district utara only)\n\
         Villages (their own pages, log in as `admin`):",
        cams = sim.urls.len(),
    );
    for v in &villages {
        println!(
            "    Desa {:<14} ({}, district {:<7}) http://127.0.0.1:{}/   guard-post broker 127.0.0.1:{}",
            v.name, v.site, v.district, v.http, v.mqtt
        );
    }
    println!(
        "Password for every login of this run: {password}\n\
         The city broker: mosquitto_sub -h 127.0.0.1 -p {city} -t 'ronda/+/events' -v\n\
         Logs: {root}/*/ronda.log and {root}/hub.log. Ctrl-C stops the demo.\n",
        city = city.port,
        root = root.display(),
    );
    super::super::wait_for_stop()?;
    println!("ronda demo: stopping the villages, the hub, the city broker and the simulator");
    drop(boxes);
    drop(hub);
    drop(city);
    drop(sim);
    Ok(())
}

/// Wait until `p` answers on its web port; if it stopped, say why from its log.
fn wait_for_web(p: &mut Proc, port: u16) -> CliResult {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = p.child.try_wait() {
            let log = std::fs::read_to_string(&p.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(8).collect();
            return Err(CliError::Runtime(format!(
                "{} stopped ({status}); the end of {}:\n{}",
                p.name,
                p.log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )));
        }
        if start.elapsed() > Duration::from_secs(180) {
            return Err(CliError::Runtime(format!(
                "{} does not answer on 127.0.0.1:{port} after 3 minutes; see {}",
                p.name,
                p.log.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

fn start(
    exe: &Path,
    args: &[&str],
    cfg: &Path,
    log: &Path,
    name: &str,
    env: Option<(&str, &str)>,
) -> Result<Proc, CliError> {
    let out = std::fs::File::create(log)
        .map_err(|e| CliError::Runtime(format!("cannot write {}: {e}", log.display())))?;
    let err = out
        .try_clone()
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    let mut c = Command::new(exe);
    c.args(args)
        .arg(cfg)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // logs go to a file: no colour codes in it
        .env("NO_COLOR", "1");
    if let Some((k, v)) = env {
        c.env(k, v);
    }
    let child = c
        .spawn()
        .map_err(|e| CliError::Runtime(format!("cannot start {name}: {e}")))?;
    Ok(Proc {
        name: name.to_string(),
        child,
        log: log.to_path_buf(),
    })
}

/// Write `text` readable by this user only: it holds password hashes.
fn write_private(path: &Path, text: &str) -> Result<(), CliError> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let fail =
        |e: std::io::Error| CliError::Runtime(format!("cannot write {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(fail)?;
    f.write_all(text.as_bytes()).map_err(fail)
}

/// A village box: the gate (line, counts) and a yard with a restricted zone (alerts with a clip),
/// its own guard-post broker and pages, and the up-link to the city. `admin` is the village's
/// admin; `kota` the account the village gives the hub: a reviewer, so the hub may open clips.
fn village_config(
    v: &Village,
    k: usize,
    sim: u16,
    city: u16,
    hash: &str,
    hub_hash: &str,
) -> String {
    let d = v.dir.display();
    format!(
        "[site]\nid = \"{site}\"\nname = \"Desa {name}\"\ntimezone = \"Asia/Jakarta\"\nlanguage = \"id\"\n\n\
         [mqtt]\nembedded = true\nlisten = \"127.0.0.1:{mqtt}\"\n\n\
         [detector]\nmodel = \"int8\"\nthreads = 1\n\n\
         [alerts]\ncooldown_seconds = 30\n\n\
         [clips]\npre_seconds = 3\npost_seconds = 5\n\n\
         [store]\npath = \"{d}/ronda.db\"\nclips_dir = \"{d}/clips\"\nretention_days = 1\nmax_gb = 0.5\n\n\
         [http]\nlisten = \"127.0.0.1:{http}\"\n\n\
         [[http.users]]\nname = \"admin\"\nrole = \"admin\"\npassword_hash = \"{hash}\"\n\n\
         [[http.users]]\nname = \"kota\"\nrole = \"reviewer\"\npassword_hash = \"{hub_hash}\"\n\n\
         [uplink]\nurl = \"mqtt://127.0.0.1:{city}\"\n\n\
         [[cameras]]\nid = \"gate-1\"\nname = \"Gapura\"\nurl = \"rtsp://127.0.0.1:{sim}/cam{gate:02}\"\n\
         role = \"gate\"\nmask_check = false\nanalysis_fps = 5\nsize = [480, 360]\n\
         \x20 [[cameras.lines]]\n  name = \"gapura\"\n  points = [[240, 94], [240, 360]]\n\n\
         [[cameras]]\nid = \"cam-02\"\nname = \"Gudang\"\nurl = \"rtsp://127.0.0.1:{sim}/cam{yard:02}\"\n\
         role = \"area\"\nanalysis_fps = 2\nsize = [480, 360]\n\
         \x20 [[cameras.zones]]\n  name = \"gudang\"\n  kind = \"restricted\"\n  \
         polygon = [[310, 160], [475, 160], [475, 355], [310, 355]]\n",
        site = v.site,
        name = v.name,
        mqtt = v.mqtt,
        http = v.http,
        gate = 2 * k + 1,
        yard = 2 * k + 2,
    )
}

/// The hub: `kota` sees the whole city, `camat` only the district `utara`.
fn hub_config(villages: &[Village], root: &Path, port: u16, city: u16, hash: &str) -> String {
    let mut text = format!(
        "[hub]\nname = \"Kota (demo)\"\ntimezone = \"Asia/Jakarta\"\nlanguage = \"id\"\n\
         listen = \"127.0.0.1:{port}\"\nstore = \"{store}\"\n\n\
         [broker]\nurl = \"mqtt://127.0.0.1:{city}\"\nclient_id = \"ronda-hub-demo\"\n\n\
         [[users]]\nname = \"kota\"\nrole = \"city_admin\"\npassword_hash = \"{hash}\"\n\n\
         [[users]]\nname = \"camat\"\nrole = \"district_officer\"\ndistrict = \"utara\"\npassword_hash = \"{hash}\"\n",
        store = root.join("hub.db").display()
    );
    for v in villages {
        text.push_str(&format!(
            "\n[[villages]]\nsite = \"{}\"\nname = \"Desa {}\"\ndistrict = \"{}\"\n\
             url = \"http://127.0.0.1:{}\"\nuser = \"kota\"\npassword = \"${{{VILLAGE_PASSWORD_VAR}}}\"\n",
            v.site, v.name, v.district, v.http
        ));
    }
    text
}
