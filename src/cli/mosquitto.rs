//! A real Mosquitto started by ronda itself, as the city's broker for `ronda bench hub` and the
//! many-village demo. The Debian package (`scripts/setup`) installs it; nothing here is a stand-in.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::CliError;

/// Where Debian puts it; `mosquitto` on the PATH otherwise.
const DEBIAN: &str = "/usr/sbin/mosquitto";

/// A running Mosquitto on 127.0.0.1:`port`, killed when dropped.
pub struct Mosquitto {
    pub port: u16,
    conf: PathBuf,
    child: Option<Child>,
}

impl Mosquitto {
    /// Start one on `port` with its configuration (anonymous, no persistence: the hub's own
    /// persistent session is what the figures depend on) and log in `dir`.
    pub fn start(dir: &Path, port: u16) -> Result<Mosquitto, CliError> {
        Mosquitto::start_with(dir, port, false, "max_queued_messages 100000\n")
    }

    /// Start one on `port`, its files in `dir`: see [`Mosquitto::configure`].
    pub fn start_with(
        dir: &Path,
        port: u16,
        persistent: bool,
        extra: &str,
    ) -> Result<Mosquitto, CliError> {
        let mut m = Mosquitto::configure(dir, port, persistent, extra)?;
        m.resume()?;
        Ok(m)
    }

    /// One on `port` with its files in `dir`, not started yet ([`Mosquitto::resume`] starts
    /// it): anonymous, on loopback; with `persistent`, its sessions and queues are saved in `dir`
    /// (on a clean stop, and every `autosave_interval`); `extra` adds lines (more listeners,
    /// a bridge, queue limits).
    pub fn configure(
        dir: &Path,
        port: u16,
        persistent: bool,
        extra: &str,
    ) -> Result<Mosquitto, CliError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::Runtime(format!("cannot make {}: {e}", dir.display())))?;
        let conf = dir.join("mosquitto.conf");
        let persistence = if persistent {
            format!(
                "persistence true\npersistence_location {}/\n",
                dir.display()
            )
        } else {
            "persistence false\n".to_string()
        };
        // `user root`: started as root, Mosquitto would switch to the `mosquitto` user, who
        // cannot write to this directory (nor read key files in it)
        let text = format!(
            "allow_anonymous true\n{persistence}user root\nlog_dest file {}\n\
             listener {port} 127.0.0.1\n{extra}\n",
            dir.join("mosquitto.log").display()
        );
        std::fs::write(&conf, text)
            .map_err(|e| CliError::Runtime(format!("cannot write {}: {e}", conf.display())))?;
        Ok(Mosquitto {
            port,
            conf,
            child: None,
        })
    }

    /// Start it (again, after [`Mosquitto::stop`]) on the same port; back when it listens.
    pub fn resume(&mut self) -> Result<(), CliError> {
        let bin = if Path::new(DEBIAN).is_file() {
            DEBIAN
        } else {
            "mosquitto"
        };
        let child = Command::new(bin)
            .arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                CliError::Runtime(format!(
                    "cannot start {bin} ({e}): run `make setup`, which installs the mosquitto package"
                ))
            })?;
        self.child = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                return Err(CliError::Runtime(format!(
                    "mosquitto stopped at once ({status}); see {}",
                    self.conf.with_file_name("mosquitto.log").display()
                )));
            }
            if start.elapsed() > Duration::from_secs(30) {
                return Err(CliError::Runtime(format!(
                    "mosquitto does not listen on 127.0.0.1:{} after 30 s",
                    self.port
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Stop it with SIGTERM, as an orderly shutdown does: a persistent one saves its file first.
    pub fn stop_gracefully(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid, which `wait` below has not reaped yet
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let _ = c.wait();
        }
    }

    /// Kill it (a city broker that goes down, a power cut), keeping its configuration for
    /// [`Mosquitto::resume`].
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
    }
}
