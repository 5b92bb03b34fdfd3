//! Incident clips: a few seconds before an incident (from the camera's in-memory ring of encoded
//! video) and a few after it (from the live stream), written as MP4 without re-encoding.
//!
//! Uses (of the crate, besides its own folder): ingest.
//!
//! [`ClipRecorder`] owns one worker thread. The event path calls [`ClipRecorder::request`], which
//! never blocks on I/O: it registers the incident and returns at once with the file the clip
//! will be written to. The worker then:
//!
//! - takes the pre-roll from the ring at once (at request time) and keeps collecting the
//!   post-roll from the ring every [`COLLECT_EVERY`] while it is recorded. A pending clip holds
//!   its own references to the buffers, so the ring only has to cover the pre-roll plus a few
//!   seconds, however long the clip grows;
//! - when `at + post` has passed, writes `<clips_dir>/<camera>/<YYYY-MM-DD>/<incident id>.mp4`
//!   ([`write_mp4`], atomic) and reports the outcome for every incident in it.
//!
//! Incidents that overlap on one camera share one clip: a request for a camera whose clip is
//! still recording its post-roll extends that clip to the new `at + post` (a person loitering for
//! a minute makes one clip, not twenty), up to `max_clip` in all; beyond that a new clip starts.
//! The clip is named after its first incident; the outcome lists all.
//!
//! Bounded: at most `max_pending` clips at once (each holds up to `max_clip` of video); beyond
//! that requests are refused, counted and logged, so a flood of incidents costs neither memory
//! nor the event path's time.

pub mod files;
pub mod mp4;
mod probe;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use gstreamer as gst;

pub use files::{incident_path, startup_cleanup};
pub use mp4::{ClipError, ClipInfo, write_mp4};
pub use probe::probe_mp4;

use super::SinkError;
use crate::ingest::ring::{AccessUnit, EncodedRing, RingCut};

/// How often a recording clip takes the new units from the ring.
/// Clips being recorded at once, by default (more alerts get no clip, logged).
pub const MAX_PENDING: usize = 64;
pub const COLLECT_EVERY: Duration = Duration::from_millis(500);

/// Wait this long after `at + post` before cutting, so the last units are surely in the ring.
const SETTLE: Duration = Duration::from_millis(250);

/// How clips are made.
#[derive(Clone, Debug)]
pub struct ClipOptions {
    /// `[store] clips_dir`.
    pub clips_dir: PathBuf,
    /// `[clips] pre_seconds` / `post_seconds`.
    pub pre: Duration,
    pub post: Duration,
    /// Longest clip: overlapping incidents extend a clip up to this, then a new one starts.
    pub max_clip: Duration,
    /// Most clips recording at once; more requests are refused.
    pub max_pending: usize,
    /// The site's time zone: the date directory is the local date of the incident.
    pub tz: chrono_tz::Tz,
}

impl ClipOptions {
    pub fn new(clips_dir: &Path, pre: Duration, post: Duration, tz: chrono_tz::Tz) -> Self {
        Self {
            clips_dir: clips_dir.to_path_buf(),
            pre,
            post,
            max_clip: Duration::from_secs(60),
            max_pending: MAX_PENDING,
            tz,
        }
    }
}

/// What became of a clip, for every incident in it (the lead indexes these).
#[derive(Clone, Debug)]
pub enum ClipOutcome {
    Done {
        camera: String,
        incident_ids: Vec<String>,
        path: PathBuf,
        info: ClipInfo,
    },
    Failed {
        camera: String,
        incident_ids: Vec<String>,
        path: PathBuf,
        reason: String,
    },
}

impl ClipOutcome {
    pub fn incident_ids(&self) -> &[String] {
        match self {
            ClipOutcome::Done { incident_ids, .. } | ClipOutcome::Failed { incident_ids, .. } => {
                incident_ids
            }
        }
    }
}

/// A request accepted: where its clip will be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    pub path: PathBuf,
    /// It joined a clip already recording for an earlier incident on the camera.
    pub joined: bool,
}

/// A request refused (counted and logged; the incident simply has no clip).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClipRefused {
    #[error(
        "camera {camera}: no clip for incident {incident_id}: {max} clips are already recording \
         (incidents flooding in on many cameras); tighten the alert rules or their cooldown"
    )]
    Full {
        camera: String,
        incident_id: String,
        max: usize,
    },
    #[error(
        "camera {camera}: no clip for incident {incident_id}: the camera or incident id is not a \
         plain name (letters, digits, '-', '_', '.')"
    )]
    BadName { camera: String, incident_id: String },
    #[error("camera {camera}: no clip for incident {incident_id}: the clip recorder has stopped")]
    Stopped { camera: String, incident_id: String },
}

/// Counters for metrics.
#[derive(Debug, Default)]
pub struct ClipStats {
    pub requested: AtomicU64,
    /// Requests that joined a clip already recording.
    pub joined: AtomicU64,
    pub refused: AtomicU64,
    pub written: AtomicU64,
    pub failed: AtomicU64,
    pub bytes_written: AtomicU64,
    /// Milliseconds spent writing clips (mux + fsync), for the average write time.
    pub write_ms: AtomicU64,
}

/// A clip still recording its post-roll.
struct Pending {
    camera: String,
    ring: Arc<EncodedRing>,
    ids: Vec<String>,
    path: PathBuf,
    from: SystemTime,
    until: SystemTime,
    /// `until` on the monotonic clock (plus some grace): a wall clock stepped back by NTP must
    /// not hold a clip, and its memory, for as long as the step.
    deadline: Instant,
    caps: Option<gst::Caps>,
    units: Vec<AccessUnit>,
    /// The stream changed format (new connection): nothing more can go into this file.
    frozen: bool,
}

impl Pending {
    /// Take what the ring has gained since the last call, up to `until`.
    fn collect(&mut self, now: SystemTime) {
        if self.frozen {
            return;
        }
        let upto = now.min(self.until);
        let Some(last) = self.units.last().map(|u| u.at) else {
            // not before `from` has come (an incident stamped ahead of this clock): the
            // keyframe to start on may not exist yet
            if now >= self.from {
                // the keyframe nearest the pre-roll's start: the clip is then within half a
                // keyframe interval (1 s for a 2 s GOP) of pre + post
                let cut = self.ring.cut_nearest(self.from, upto);
                self.caps = cut.caps;
                self.units = cut.units;
            }
            return;
        };
        if upto <= last {
            return;
        }
        let cut = self.ring.cut(last, upto);
        let new: Vec<AccessUnit> = cut.units.into_iter().filter(|u| u.at > last).collect();
        // nothing new (camera down, or its ring just cleared for a reconnect): wait for more
        if new.is_empty() {
            return;
        }
        if cut.caps != self.caps {
            // a new connection with another format cannot continue this file
            tracing::debug!(camera = %self.camera, "stream format changed: clip ends here");
            self.frozen = true;
            return;
        }
        self.units.extend(new);
    }

    fn due(&self, now: SystemTime) -> bool {
        self.frozen || now >= self.until + SETTLE || Instant::now() >= self.deadline
    }

    /// Set the end of the clip.
    fn end_at(&mut self, until: SystemTime) {
        self.until = until;
        let left = until.duration_since(SystemTime::now()).unwrap_or_default();
        self.deadline = Instant::now() + left + SETTLE + Duration::from_secs(2);
    }
}

struct State {
    pending: Vec<Pending>,
    stopping: bool,
    refused_since_log: u64,
    last_refusal_log: Option<Instant>,
}

struct Shared {
    opts: ClipOptions,
    state: Mutex<State>,
    wake: Condvar,
    stats: ClipStats,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Records incident clips on its own thread. Dropping it finishes the clips still recording
/// with what they have and stops the thread (shutdown order: after ingest, before the store).
pub struct ClipRecorder {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ClipRecorder {
    /// Start the worker. `report` is called on the worker thread once per clip, written or
    /// failed, with every incident id in it; it should hand the outcome on (a channel, the
    /// store) rather than do slow work, as the next clip waits for it.
    pub fn start(
        opts: ClipOptions,
        report: impl FnMut(ClipOutcome) + Send + 'static,
    ) -> Result<ClipRecorder, SinkError> {
        let shared = Arc::new(Shared {
            opts,
            state: Mutex::new(State {
                pending: Vec::new(),
                stopping: false,
                refused_since_log: 0,
                last_refusal_log: None,
            }),
            wake: Condvar::new(),
            stats: ClipStats::default(),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("clips".into())
            .spawn(move || work(&s, report))
            .map_err(|e| SinkError::Thread {
                what: "clip recorder",
                reason: e.to_string(),
            })?;
        Ok(ClipRecorder {
            shared,
            thread: Some(thread),
        })
    }

    pub fn stats(&self) -> &ClipStats {
        &self.shared.stats
    }

    /// Clips recording now.
    pub fn pending(&self) -> usize {
        self.shared.lock().pending.len()
    }

    /// A clip for incident `incident_id` on `camera` at `at` (wall clock, as the ring's units):
    /// `[at - pre, at + post]` of `ring`, or an extension of the camera's clip still recording.
    /// Returns at once, without I/O.
    pub fn request(
        &self,
        camera: &str,
        ring: Arc<EncodedRing>,
        incident_id: &str,
        at: SystemTime,
    ) -> Result<Planned, ClipRefused> {
        let stats = &self.shared.stats;
        stats.requested.fetch_add(1, Ordering::Relaxed);
        let refuse = |r: ClipRefused| {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            r
        };
        if !files::safe_component(camera) || !files::safe_component(incident_id) {
            return Err(refuse(ClipRefused::BadName {
                camera: camera.into(),
                incident_id: incident_id.into(),
            }));
        }
        let opts = &self.shared.opts;
        let until = at + opts.post;
        let mut st = self.shared.lock();
        if st.stopping {
            return Err(refuse(ClipRefused::Stopped {
                camera: camera.into(),
                incident_id: incident_id.into(),
            }));
        }
        // the camera's newest clip still recording, if this incident fits in it
        let open = st
            .pending
            .iter_mut()
            .rev()
            .find(|p| p.camera == camera && !p.frozen)
            .filter(|p| {
                until
                    .max(p.until)
                    .duration_since(p.from)
                    .is_ok_and(|len| len <= opts.max_clip)
            });
        if let Some(p) = open {
            let until = p.until.max(until);
            p.end_at(until);
            if !p.ids.iter().any(|i| i == incident_id) {
                p.ids.push(incident_id.to_string());
            }
            let path = p.path.clone();
            drop(st);
            stats.joined.fetch_add(1, Ordering::Relaxed);
            self.shared.wake.notify_one();
            return Ok(Planned { path, joined: true });
        }
        if st.pending.len() >= opts.max_pending {
            st.refused_since_log += 1;
            let log = st
                .last_refusal_log
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(10));
            let n = st.refused_since_log;
            if log {
                st.last_refusal_log = Some(Instant::now());
                st.refused_since_log = 0;
            }
            drop(st);
            let e = refuse(ClipRefused::Full {
                camera: camera.into(),
                incident_id: incident_id.into(),
                max: opts.max_pending,
            });
            if log {
                tracing::warn!("{e} ({n} refused since the last such message)");
            }
            return Err(e);
        }
        let path = incident_path(&opts.clips_dir, camera, at, opts.tz, incident_id, "mp4");
        let mut p = Pending {
            camera: camera.to_string(),
            ring,
            ids: vec![incident_id.to_string()],
            path: path.clone(),
            from: at.checked_sub(opts.pre).unwrap_or(at),
            until,
            deadline: Instant::now(),
            caps: None,
            units: Vec::new(),
            frozen: false,
        };
        p.end_at(until);
        // the pre-roll now, while the ring surely still has it (references only: cheap)
        p.collect(SystemTime::now());
        st.pending.push(p);
        drop(st);
        self.shared.wake.notify_one();
        Ok(Planned {
            path,
            joined: false,
        })
    }

    /// Finish the clips still recording with what they have, and stop.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.lock().stopping = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ClipRecorder {
    fn drop(&mut self) {
        self.stop();
    }
}

fn work(shared: &Shared, mut report: impl FnMut(ClipOutcome)) {
    loop {
        let mut st = shared.lock();
        let now = SystemTime::now();
        for p in st.pending.iter_mut() {
            p.collect(now);
        }
        let stopping = st.stopping;
        let mut due = Vec::new();
        let mut i = 0;
        while i < st.pending.len() {
            if stopping || st.pending[i].due(now) {
                due.push(st.pending.remove(i));
            } else {
                i += 1;
            }
        }
        if due.is_empty() {
            if stopping {
                return;
            }
            // sleep until the next collection or the earliest end, whichever is first
            let next_end = st
                .pending
                .iter()
                .map(|p| (p.until + SETTLE).duration_since(now).unwrap_or_default())
                .min();
            let wait = match next_end {
                Some(d) => d.min(COLLECT_EVERY),
                None => Duration::from_secs(3600),
            };
            let _ = shared
                .wake
                .wait_timeout(st, wait)
                .unwrap_or_else(|e| e.into_inner());
            continue;
        }
        drop(st);
        for p in due {
            let outcome = write_pending(shared, p);
            report(outcome);
        }
    }
}

fn write_pending(shared: &Shared, p: Pending) -> ClipOutcome {
    let stats = &shared.stats;
    let started = Instant::now();
    let written = write_mp4(
        &RingCut {
            caps: p.caps,
            units: p.units,
        },
        &p.path,
    );
    let ms = started.elapsed().as_millis() as u64;
    match written {
        Ok(info) => {
            stats.written.fetch_add(1, Ordering::Relaxed);
            stats.bytes_written.fetch_add(info.bytes, Ordering::Relaxed);
            stats.write_ms.fetch_add(ms, Ordering::Relaxed);
            tracing::info!(
                camera = %p.camera,
                "clip {}: {:.1} s, {} kB, written in {ms} ms, for incident(s) {}",
                p.path.display(),
                info.duration.as_secs_f64(),
                info.bytes / 1000,
                p.ids.join(", ")
            );
            ClipOutcome::Done {
                camera: p.camera,
                incident_ids: p.ids,
                path: p.path,
                info,
            }
        }
        Err(e) => {
            stats.failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(camera = %p.camera, "clip for incident(s) {}: {e}", p.ids.join(", "));
            ClipOutcome::Failed {
                camera: p.camera,
                incident_ids: p.ids,
                path: p.path,
                reason: e.to_string(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(dir: &Path) -> ClipOptions {
        let mut o = ClipOptions::new(
            dir,
            Duration::from_secs(1),
            Duration::from_secs(1),
            chrono_tz::UTC,
        );
        o.max_pending = 2;
        o.max_clip = Duration::from_secs(5);
        o
    }

    fn ring() -> Arc<EncodedRing> {
        Arc::new(EncodedRing::new(Duration::from_secs(10), usize::MAX))
    }

    fn t(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(1_000_000_000 + ms)
    }

    fn caps(width: i32) -> gst::Caps {
        let _ = gst::init();
        gst::Caps::builder("video/x-h264")
            .field("width", width)
            .build()
    }

    /// 10 fps, a keyframe every second, from `from_ms` for `n` units.
    fn feed(ring: &EncodedRing, caps: &gst::Caps, from_ms: u64, n: u64) {
        for i in 0..n {
            let ms = from_ms + i * 100;
            ring.push(
                AccessUnit {
                    buffer: gst::Buffer::with_size(10).unwrap(),
                    keyframe: i % 10 == 0,
                    at: t(ms),
                },
                Some(caps.as_ref()),
            );
        }
    }

    fn pending(ring: &Arc<EncodedRing>, from: u64, until: u64) -> Pending {
        Pending {
            camera: "cam01".into(),
            ring: ring.clone(),
            ids: vec!["a".into()],
            path: PathBuf::from("x.mp4"),
            from: t(from),
            until: t(until),
            deadline: Instant::now() + Duration::from_secs(3600),
            caps: None,
            units: Vec::new(),
            frozen: false,
        }
    }

    #[test]
    fn a_long_clip_outlives_a_short_ring() {
        // the ring keeps 3 s; the clip wants 2 s before and 10 s after the incident at 5 s
        let ring = Arc::new(EncodedRing::new(Duration::from_secs(3), usize::MAX));
        let c = caps(480);
        feed(&ring, &c, 0, 50);
        let mut p = pending(&ring, 3_000, 15_000);
        p.collect(t(4_950));
        for s in 5..16 {
            feed(&ring, &c, s * 1000, 10);
            p.collect(t(s * 1000 + 950));
        }
        assert_eq!(p.units.first().map(|u| u.at), Some(t(3_000)));
        assert_eq!(p.units.last().map(|u| u.at), Some(t(15_000)));
        assert_eq!(p.units.len(), 121, "every unit once, none missing");
        assert!(ring.figures().2 < Duration::from_secs(5));
    }

    #[test]
    fn a_reconnect_continues_the_clip_unless_the_format_changed() {
        let ring = Arc::new(EncodedRing::new(Duration::from_secs(10), usize::MAX));
        let c = caps(480);
        feed(&ring, &c, 0, 30);
        let mut p = pending(&ring, 1_000, 9_000);
        p.collect(t(2_950));
        // the camera drops; its ring is cleared; nothing new must not end the clip
        ring.clear();
        p.collect(t(4_000));
        assert!(!p.frozen);
        feed(&ring, &c, 4_000, 10);
        p.collect(t(4_950));
        assert!(!p.frozen);
        assert_eq!(p.units.len(), 20 + 10);
        // another format after the next reconnect: the file ends where it was
        ring.clear();
        feed(&ring, &caps(640), 6_000, 10);
        p.collect(t(6_950));
        assert!(p.frozen && p.due(t(6_950)));
        assert_eq!(p.units.len(), 30);
    }

    #[test]
    fn overlapping_incidents_share_a_clip_up_to_the_cap_and_the_rest_is_bounded() {
        let d = tempfile::tempdir().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let rec = ClipRecorder::start(opts(d.path()), move |o| {
            let _ = tx.send(o);
        })
        .unwrap();
        // far in the future: nothing becomes due during the test
        let t0 = SystemTime::now() + Duration::from_secs(3600);
        let s = |x: u64| t0 + Duration::from_secs(x);
        let a = rec.request("cam01", ring(), "a", s(0)).unwrap();
        assert!(!a.joined);
        let b = rec.request("cam01", ring(), "b", s(1)).unwrap();
        assert_eq!(
            b,
            Planned {
                path: a.path.clone(),
                joined: true
            }
        );
        // from s(-1) to s(5)+1 = 7 s > max 5 s: a new clip
        let c = rec.request("cam01", ring(), "c", s(5)).unwrap();
        assert!(!c.joined && c.path != a.path);
        // the limit of 2 clips recording is reached: a third camera is refused
        let e = rec.request("cam02", ring(), "d", s(0)).unwrap_err();
        assert!(matches!(e, ClipRefused::Full { max: 2, .. }), "{e}");
        assert!(e.to_string().contains("cam02"));
        // joining is still possible
        assert!(rec.request("cam01", ring(), "e", s(6)).unwrap().joined);
        assert!(rec.request("../x", ring(), "f", s(0)).is_err());
        assert_eq!(rec.pending(), 2);
        assert_eq!(rec.stats().refused.load(Ordering::Relaxed), 2);
        // shutdown finishes what is pending: empty rings, so both fail, naming all incidents
        rec.shutdown();
        let outs: Vec<ClipOutcome> = rx.try_iter().collect();
        assert_eq!(outs.len(), 2);
        assert_eq!(outs[0].incident_ids(), ["a", "b"]);
        assert_eq!(outs[1].incident_ids(), ["c", "e"]);
        for o in &outs {
            match o {
                ClipOutcome::Failed { reason, .. } => {
                    assert!(reason.contains("no video"), "{reason}")
                }
                other => panic!("{other:?}"),
            }
        }
        // nothing half-written was left behind
        let mut left = Vec::new();
        let mut stack = vec![d.path().to_path_buf()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    left.push(p);
                }
            }
        }
        assert!(left.is_empty(), "{left:?}");
    }
}
