//! One supervisor per camera: a GStreamer pipeline from the camera's RTSP URL to decoded frames
//! at the camera's analysis rate, watched and rebuilt when it fails.
//!
//! RTSP failures seen here (FACTS.md): a server that drops the connection shows up as EOS, not
//! ERROR; a hung server (process stopped, TCP open) sends nothing at all; rtspsrc never
//! reconnects by itself. So the supervisor tears the pipeline down on EOS, on ERROR and when no
//! frame came for `watchdog` seconds, backs off (1, 2, 4 ... 60 s) and rebuilds it. All of this
//! runs on the camera's own thread: GStreamer state changes never block the async runtime.
//!
//! Frames go to a [`FrameSlot`] that keeps only the latest one (a newer frame replaces an
//! unconsumed older one and the drop is counted): for a live camera an old frame is worth less
//! than the current one, and memory stays bounded whatever the detector's speed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::init_gstreamer;
use super::rate::RateGate;
use super::ring::{AccessUnit, EncodedRing};
use super::stir::SizeWatch;
use crate::backoff::Backoff;
use crate::frame::Frame;
use crate::telemetry;

/// How one camera is watched.
#[derive(Clone, Debug)]
pub struct CameraSpec {
    pub id: String,
    /// The URL with secrets filled in: used only to connect, never logged.
    pub url: String,
    /// The URL for logs (password replaced by `***`).
    pub display_url: String,
    pub analysis_fps: f64,
    /// No frame for this long: the camera is considered hung and the pipeline is rebuilt.
    pub watchdog: Duration,
    /// Down for longer than this before `offline` is reported (a short blip is not an outage).
    pub offline_after: Duration,
    pub max_backoff: Duration,
    /// Keep this much of the encoded stream in memory for clips (`None`: no clips).
    pub ring: Option<Duration>,
}

/// Hard limit on a camera's encoded ring (a 360p substream at 1 Mbit/s holds 20 s in 2.5 MB;
/// this leaves room for 4 Mbit/s main streams but stops a runaway camera).
pub const RING_MAX_BYTES: usize = 16 * 1024 * 1024;

impl CameraSpec {
    pub fn new(id: &str, url: &str, display_url: &str, analysis_fps: f64) -> Self {
        Self {
            id: id.into(),
            url: url.into(),
            display_url: display_url.into(),
            analysis_fps,
            watchdog: Duration::from_secs(5),
            offline_after: Duration::from_secs(3),
            max_backoff: Duration::from_secs(60),
            ring: None,
        }
    }
}

/// A camera's health as guards see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    Connecting,
    Online,
    Offline,
}

impl Health {
    pub fn as_str(&self) -> &'static str {
        match self {
            Health::Connecting => "connecting",
            Health::Online => "online",
            Health::Offline => "offline",
        }
    }
}

/// A change of health, with the reason (names the camera, never the password).
#[derive(Clone, Debug)]
pub struct HealthChange {
    pub camera: String,
    pub health: Health,
    pub reason: String,
    pub at: std::time::SystemTime,
}

/// Counters of one camera, read by metrics and the periodic log line.
#[derive(Debug, Default)]
pub struct CameraStats {
    pub frames_delivered: AtomicU64,
    pub frames_dropped: AtomicU64,
    pub reconnects: AtomicU64,
    /// Times the camera went offline (no frames for its offline time).
    pub offline: AtomicU64,
    /// Pictures the decoder produced (before the analysis rate drops any) and the time it
    /// spent on them, in nanoseconds: decode time per picture for /metrics.
    pub pictures_decoded: AtomicU64,
    pub decode_ns: AtomicU64,
    /// Pictures of the stream not decoded at all: the camera was quiet and only its key frames
    /// were decoded (see [`FrameSlot::set_keyframes_only`]).
    pub pictures_skipped: AtomicU64,
    /// Of those, pictures decoded after all when a later one's size showed a stir, and the
    /// stirs (`ingest::stir`).
    pub pictures_caught_up: AtomicU64,
    pub stirs: AtomicU64,
}

impl CameraStats {
    /// Mean decode time per picture, if any was decoded.
    pub fn decode_ms(&self) -> Option<f64> {
        let n = self.pictures_decoded.load(Ordering::Relaxed);
        (n > 0).then(|| self.decode_ns.load(Ordering::Relaxed) as f64 / n as f64 / 1e6)
    }
}

/// The latest decoded frame of a camera, waiting for the detector.
#[derive(Default)]
pub struct FrameSlot {
    frame: Mutex<Option<(Frame, Instant)>>,
    /// The newest frame even after the detector took it, for the admin's live snapshot. Frames
    /// share their picture (`Arc`), so this costs one picture per camera, not a copy per frame.
    last: Mutex<Option<(Frame, std::time::SystemTime)>>,
    pub stats: CameraStats,
    /// Set by the worker while the camera is quiet: decode only key frames.
    keyframes_only: AtomicBool,
    /// The decoder is skipping: it waits for a key frame before it decodes again.
    skipping: AtomicBool,
    /// A skipped picture's size showed a stir (`ingest::stir`): decode every picture until the
    /// next key frame, whatever the worker asks.
    stirred: AtomicBool,
    /// When the last picture not decoded arrived whose size showed no stir: nobody had come into
    /// view yet (as far as its size tells).
    last_calm: Mutex<Option<Instant>>,
}

impl FrameSlot {
    /// The newest frame the camera delivered and when, if any.
    pub fn last_frame(&self) -> Option<(Frame, std::time::SystemTime)> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Put a frame; an unconsumed older one is replaced and counted as dropped.
    pub fn put(&self, f: Frame) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((f.clone(), std::time::SystemTime::now()));
        let mut g = self.frame.lock().unwrap_or_else(|e| e.into_inner());
        if g.replace((f, Instant::now())).is_some() {
            self.stats.frames_dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.stats.frames_delivered.fetch_add(1, Ordering::Relaxed);
    }

    /// Take the waiting frame and when it arrived.
    pub fn take(&self) -> Option<(Frame, Instant)> {
        self.frame.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    pub fn has_frame(&self) -> bool {
        self.frame.lock().map(|g| g.is_some()).unwrap_or(false)
    }

    /// Decode only the stream's key frames (`true`) or every picture again (`false`).
    ///
    /// Why: a quiet camera's pictures are only looked at by the motion gate, and decoding is
    /// the biggest cost of a quiet camera (FACTS.md: 40 streams decoded whole take a core;
    /// key frames only, a fifth of that). An H.264 picture between key frames cannot be decoded
    /// without the ones before it, so going back to full decoding starts at the next key frame
    /// (at most one GOP, 2 s on most cameras, later); the key frame that showed the movement
    /// goes to the detector at once. Clips are cut from the encoded stream, which is kept whole
    /// either way.
    pub fn set_keyframes_only(&self, on: bool) {
        self.keyframes_only.store(on, Ordering::Relaxed);
    }

    /// The decoder is skipping the pictures between key frames now.
    pub fn decoding_keyframes_only(&self) -> bool {
        self.skipping.load(Ordering::Relaxed)
    }

    /// When the last picture not decoded arrived whose size showed no stir (see
    /// the worker's notice time).
    pub fn last_calm(&self) -> Option<Instant> {
        *self.last_calm.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A skipped picture showed a stir: the pictures held since the last decoded one are being
    /// decoded, and every picture is until the next key frame (then the worker's wish holds
    /// again). `caught_up` of the skipped ones were decoded after all.
    fn stir(&self, caught_up: u64) {
        self.stirred.store(true, Ordering::Relaxed);
        self.skipping.store(false, Ordering::Relaxed);
        self.stats
            .pictures_caught_up
            .fetch_add(caught_up, Ordering::Relaxed);
        self.stats.stirs.fetch_add(1, Ordering::Relaxed);
    }

    /// Should the decoder take this access unit? Called for every unit before the decoder:
    /// a key frame is always decoded and starts a run of decoding or skipping, as the worker
    /// last asked; a picture between key frames is skipped from the moment the worker asks
    /// until the next key frame after it stops asking (it could not be decoded before that).
    fn decode_unit(&self, keyframe: bool) -> bool {
        let want_skip = self.keyframes_only.load(Ordering::Relaxed);
        let skipping = if keyframe {
            self.stirred.store(false, Ordering::Relaxed);
            want_skip
        } else if self.stirred.load(Ordering::Relaxed) {
            false
        } else {
            self.skipping.load(Ordering::Relaxed) || want_skip
        };
        self.skipping.store(skipping, Ordering::Relaxed);
        if keyframe || !skipping {
            return true;
        }
        self.stats.pictures_skipped.fetch_add(1, Ordering::Relaxed);
        false
    }
}

/// Wakes the inference worker when any camera has a new frame.
#[derive(Default)]
pub struct Doorbell {
    rung: Mutex<bool>,
    cv: Condvar,
}

impl Doorbell {
    pub fn ring(&self) {
        *self.rung.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_one();
    }
    /// Wait until rung or `timeout`; clears the bell.
    pub fn wait(&self, timeout: Duration) {
        let g = self.rung.lock().unwrap_or_else(|e| e.into_inner());
        let (mut g, _) = self
            .cv
            .wait_timeout_while(g, timeout, |r| !*r)
            .unwrap_or_else(|e| e.into_inner());
        *g = false;
    }
}

/// Skipped pictures held per camera for catching up on a stir: a GOP of 10 s at 30 fps.
const MAX_HELD: usize = 300;

/// Watch the decoder: its time per picture (for /metrics), and the analysis rate (a
/// [`RateGate`] on its pictures, before any is converted to RGB).
///
/// Time: with `max-threads=1` the decoder works inside its sink pad's chain call and pushes
/// each picture from there, so the time from a buffer entering its sink pad to a picture
/// leaving its source pad is that buffer's decode time (a buffer that yields no picture, e.g.
/// parameter sets, is not counted). Two pad probes per buffer: an `Instant`, an atomic add and
/// the gate's comparison, nothing per-frame above debug.
fn watch_decoder(
    pipeline: &gst::Pipeline,
    slot: &Arc<FrameSlot>,
    analysis_fps: f64,
    alive: &Arc<Mutex<Instant>>,
) {
    let Some(dec) = pipeline.by_name("dec") else {
        return;
    };
    let (Some(sink), Some(src)) = (dec.static_pad("sink"), dec.static_pad("src")) else {
        return;
    };
    // Pictures between key frames of a quiet camera are dropped on the pad that feeds the
    // decoder (the tee's or the parser's): GStreamer 1.22 warns (gst_mini_object_unref on NULL)
    // for every buffer a probe drops on a sink pad that a tee pushes to.
    if let Some(feed) = sink.peer() {
        let (slot, alive, dec_sink) = (slot.clone(), alive.clone(), sink.clone());
        // the pictures skipped since the last decoded one (references: the ring holds them
        // anyway), whether they still make a whole chain, and their usual size
        let held = Mutex::new((Vec::<gst::Buffer>::new(), true, SizeWatch::default()));
        feed.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let Some(buf) = info.buffer() else {
                return gst::PadProbeReturn::Ok;
            };
            let keyframe = !buf.flags().contains(gst::BufferFlags::DELTA_UNIT);
            let mut h = held.lock().unwrap_or_else(|e| e.into_inner());
            if slot.decode_unit(keyframe) {
                h.0.clear();
                h.1 = true;
                return gst::PadProbeReturn::Ok;
            }
            // a skipped picture still shows the camera is alive: a quiet camera with a long
            // GOP must not trip the watchdog between its key frames
            *alive.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
            let stir = h.2.skipped(buf.size());
            if !stir {
                *slot.last_calm.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
            }
            if stir && h.1 {
                // someone came into view: decode what was skipped (in order, before this one),
                // then this one and the rest of the GOP
                let backlog = std::mem::take(&mut h.0);
                drop(h);
                slot.stir(backlog.len() as u64 + 1);
                for b in backlog {
                    if dec_sink.chain(b).is_err() {
                        break;
                    }
                }
                return gst::PadProbeReturn::Ok;
            }
            if h.0.len() < MAX_HELD {
                h.0.push(buf.clone());
            } else {
                // a GOP longer than we hold: no catching up until the next key frame
                h.0.clear();
                h.1 = false;
            }
            gst::PadProbeReturn::Drop
        });
    }
    let entered = Arc::new(Mutex::new(None::<Instant>));
    {
        let entered = entered.clone();
        sink.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            *entered.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
            gst::PadProbeReturn::Ok
        });
    }
    let slot = slot.clone();
    let gate = Mutex::new(RateGate::new(analysis_fps));
    let start = Instant::now();
    src.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(t) = entered.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let stats = &slot.stats;
            stats
                .decode_ns
                .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
            stats.pictures_decoded.fetch_add(1, Ordering::Relaxed);
        }
        let t_ns = info
            .buffer()
            .and_then(|b| b.pts())
            .map(|p| p.nseconds())
            .unwrap_or_else(|| start.elapsed().as_nanos() as u64);
        if gate.lock().unwrap_or_else(|e| e.into_inner()).keep(t_ns) {
            gst::PadProbeReturn::Ok
        } else {
            gst::PadProbeReturn::Drop
        }
    });
}

/// Build the pipeline description for a camera (the URL is set as a property, not pasted in).
/// With a ring, a tee after the parser hands every access unit (AVC, one picture per buffer:
/// what MP4 wants) to a second appsink; no queue on either branch, so no extra thread per camera:
/// the ring's callback only takes a reference to the buffer.
fn describe(spec: &CameraSpec) -> String {
    // the analysis rate is kept by a pad probe on the decoder (`watch_decoder`)
    let decode = "avdec_h264 name=dec max-threads=1 ! videoconvert ! video/x-raw,format=RGB ! \
         appsink name=sink sync=false max-buffers=1 drop=true emit-signals=false";
    let head = "rtspsrc name=src protocols=tcp latency=200 ! rtph264depay ! h264parse";
    if spec.ring.is_some() {
        format!(
            "{head} ! video/x-h264,stream-format=avc,alignment=au ! tee name=t \
             t. ! {decode} \
             t. ! appsink name=ring sync=false async=false emit-signals=false"
        )
    } else {
        format!("{head} ! {decode}")
    }
}

/// A running camera supervisor. Dropping it stops the camera.
pub struct Camera {
    pub id: String,
    pub slot: Arc<FrameSlot>,
    /// The recent encoded stream, when the camera keeps one (clips).
    pub ring: Option<Arc<EncodedRing>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Camera {
    /// Start watching; health changes go to `health` (bounded: the supervisor waits rather
    /// than lose a state change, which happen at most a few times a minute).
    pub fn start(
        spec: CameraSpec,
        bell: Arc<Doorbell>,
        health: std::sync::mpsc::SyncSender<HealthChange>,
    ) -> Result<Camera, super::IngestError> {
        init_gstreamer()?;
        let slot = Arc::new(FrameSlot::default());
        let stop = Arc::new(AtomicBool::new(false));
        let ring = spec
            .ring
            .map(|keep| Arc::new(EncodedRing::new(keep, RING_MAX_BYTES)));
        let id = spec.id.clone();
        let (s, st, r) = (slot.clone(), stop.clone(), ring.clone());
        let thread = std::thread::Builder::new()
            .name(format!("cam-{}", spec.id))
            .spawn(move || supervise(spec, s, r, bell, st, health))
            .map_err(|e| super::IngestError::Pipeline {
                what: format!("camera {id}"),
                reason: e.to_string(),
            })?;
        Ok(Camera {
            id,
            slot,
            ring,
            stop,
            thread: Some(thread),
        })
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Why a pipeline run ended.
enum Ended {
    Stopped,
    Failed(String),
}

fn supervise(
    spec: CameraSpec,
    slot: Arc<FrameSlot>,
    ring: Option<Arc<EncodedRing>>,
    bell: Arc<Doorbell>,
    stop: Arc<AtomicBool>,
    health: std::sync::mpsc::SyncSender<HealthChange>,
) {
    let mut state = Health::Connecting;
    let mut down_since: Option<Instant> = Some(Instant::now());
    let mut backoff = Backoff::new(Duration::from_secs(1), spec.max_backoff);
    let mut last_reason = String::from("starting");
    let report = |h: Health, reason: &str| {
        let _ = health.send(HealthChange {
            camera: spec.id.clone(),
            health: h,
            reason: reason.to_string(),
            at: std::time::SystemTime::now(),
        });
    };
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let mut on_frame = |online_now: bool| {
            if online_now && state != Health::Online {
                state = Health::Online;
                down_since = None;
                telemetry::camera_online(&spec.id);
                report(Health::Online, "frames arriving");
            }
        };
        let ended = run_once(&spec, &slot, ring.as_ref(), &bell, &stop, &mut on_frame);
        let ran = started.elapsed();
        match ended {
            Ended::Stopped => break,
            Ended::Failed(reason) => {
                if down_since.is_none() {
                    down_since = Some(Instant::now());
                }
                telemetry::camera_failed(
                    &spec.id,
                    &spec.display_url,
                    &reason,
                    &mut last_reason,
                    &slot.stats.reconnects,
                );
                // a pipeline that ran well for a while starts the backoff again from 1 s
                if ran > Duration::from_secs(30) {
                    backoff.reset();
                }
                let wait_until = backoff.ready_at(Instant::now());
                while Instant::now() < wait_until && !stop.load(Ordering::Relaxed) {
                    if state != Health::Offline
                        && down_since.is_some_and(|d| d.elapsed() >= spec.offline_after)
                    {
                        state = Health::Offline;
                        telemetry::camera_offline(&spec.id, &reason, &slot.stats.offline);
                        report(Health::Offline, &reason);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
}

/// Build, run and tear down one pipeline. Returns when it fails or the camera is stopped.
/// `on_frame(fresh)` is called while frames arrive.
fn run_once(
    spec: &CameraSpec,
    slot: &Arc<FrameSlot>,
    ring: Option<&Arc<EncodedRing>>,
    bell: &Arc<Doorbell>,
    stop: &AtomicBool,
    on_frame: &mut dyn FnMut(bool),
) -> Ended {
    let pipeline = match gst::parse::launch(&describe(spec))
        .ok()
        .and_then(|p| p.downcast::<gst::Pipeline>().ok())
    {
        Some(p) => p,
        None => {
            return Ended::Failed("cannot build the GStreamer pipeline (run `make setup`)".into());
        }
    };
    if let Some(src) = pipeline.by_name("src") {
        src.set_property("location", spec.url.as_str());
    }
    let Some(sink) = pipeline
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
    else {
        return Ended::Failed("pipeline without appsink".into());
    };
    let last_frame = Arc::new(Mutex::new(Instant::now()));
    watch_decoder(&pipeline, slot, spec.analysis_fps, &last_frame);
    let counter = Arc::new(AtomicU64::new(0));
    {
        let (slot, bell, last, counter) = (
            slot.clone(),
            bell.clone(),
            last_frame.clone(),
            counter.clone(),
        );
        let pool = Mutex::new(super::file::FramePool::default());
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |s| {
                    let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let mut pool = pool.lock().unwrap_or_else(|e| e.into_inner());
                    if let Ok(frame) = super::file::frame_from_pool(&sample, n, &mut pool) {
                        slot.put(frame);
                        bell.ring();
                    }
                    *last.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }
    if let Some(ring) = ring {
        // a new connection restarts timestamps and may change the format
        ring.clear();
        let Some(rsink) = pipeline
            .by_name("ring")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        else {
            return Ended::Failed("pipeline without the clip branch".into());
        };
        let ring = ring.clone();
        rsink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |s| {
                    let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    if let Some(buffer) = sample.buffer_owned() {
                        let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
                        ring.push(
                            AccessUnit {
                                buffer,
                                keyframe,
                                at: std::time::SystemTime::now(),
                            },
                            sample.caps(),
                        );
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }
    if pipeline.set_state(gst::State::Playing).is_err() {
        let _ = pipeline.set_state(gst::State::Null);
        return Ended::Failed("the stream does not start".into());
    }
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let started = Instant::now();
    let result = loop {
        if stop.load(Ordering::Relaxed) {
            break Ended::Stopped;
        }
        if let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(200),
            &[gst::MessageType::Error, gst::MessageType::Eos],
        ) {
            match msg.view() {
                gst::MessageView::Eos(..) => {
                    break Ended::Failed("the stream ended (connection dropped)".into());
                }
                gst::MessageView::Error(e) => {
                    let text = crate::config::redact_url(&e.error().to_string());
                    break Ended::Failed(describe_error(&text, e.debug().map(|d| d.to_string())));
                }
                _ => {}
            }
        }
        let got = counter.load(Ordering::Relaxed);
        let since = last_frame.lock().map(|t| t.elapsed()).unwrap_or_default();
        if got > 0 {
            on_frame(since < spec.watchdog);
        }
        // before the first frame the session is still being set up (DESCRIBE, SETUP, PLAY,
        // the first keyframe): a slow camera or a busy box gets twice the watchdog for that
        let (waited, limit) = if got == 0 {
            (started.elapsed(), spec.watchdog * 2)
        } else {
            (since, spec.watchdog)
        };
        if waited >= limit {
            break Ended::Failed(format!(
                "no picture for {} s (camera hung or unreachable)",
                limit.as_secs()
            ));
        }
    };
    // state changes to NULL can take a moment on a dead TCP connection: this thread is the
    // camera's own, so only this camera waits.
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// Turn GStreamer's wording into what an admin can act on.
fn describe_error(text: &str, debug: Option<String>) -> String {
    let d = debug.unwrap_or_default();
    let all = format!("{text} {d}").to_lowercase();
    if all.contains("unauthorized") || all.contains("401") {
        "wrong user name or password (check the camera's ${...} variable)".into()
    } else if all.contains("not found") || all.contains("404") {
        "the camera has no stream at that path (check the URL's path)".into()
    } else if all.contains("could not connect")
        || all.contains("connection refused")
        || all.contains("could not open resource")
    {
        "cannot connect (camera off, wrong address or port)".into()
    } else if all.contains("not-negotiated")
        || all.contains("not-linked")
        || all.contains("caps")
        || all.contains("depay")
    {
        "the stream is not H.264 (set the camera's substream to H.264)".into()
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many of `n` pictures `every_ms` apart (plus `jitter(i)` ms) the gate keeps.
    #[test]
    fn the_slot_keeps_the_latest_and_counts_drops() {
        let slot = FrameSlot::default();
        let f = |i| Frame {
            image: Arc::new(image::RgbImage::new(2, 2)),
            index: i,
            pts_ns: None,
        };
        slot.put(f(1));
        slot.put(f(2));
        assert_eq!(slot.take().map(|x| x.0.index), Some(2));
        assert!(slot.take().is_none());
        assert_eq!(slot.stats.frames_dropped.load(Ordering::Relaxed), 1);
        assert_eq!(slot.stats.frames_delivered.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_quiet_camera_skips_between_key_frames_and_resumes_at_the_next_one() {
        let slot = FrameSlot::default();
        // (key frame?, decoded?) in stream order
        let feed = |units: &[bool]| {
            units
                .iter()
                .map(|&k| slot.decode_unit(k))
                .collect::<Vec<_>>()
        };
        assert_eq!(feed(&[true, false, false]), [true, true, true]);
        // asked to skip mid-GOP: the rest of the GOP is skipped, key frames still decoded
        slot.set_keyframes_only(true);
        assert_eq!(
            feed(&[false, true, false, false, true]),
            [false, true, false, false, true]
        );
        // asked to decode again mid-GOP: the pictures before the next key frame cannot be
        // decoded without the ones skipped, so they are skipped too
        slot.set_keyframes_only(false);
        assert_eq!(
            feed(&[false, false, true, false, false]),
            [false, false, true, true, true]
        );
        assert!(!slot.decoding_keyframes_only());
        assert_eq!(slot.stats.pictures_skipped.load(Ordering::Relaxed), 5);
        // quiet again; a stir mid-GOP decodes the rest of the GOP though the worker still asks
        // for key frames only, and the key frame after it follows the worker's wish again
        slot.set_keyframes_only(true);
        assert_eq!(feed(&[true, false, false]), [true, false, false]);
        slot.stir(2);
        assert!(!slot.decoding_keyframes_only());
        assert_eq!(
            feed(&[false, false, true, false]),
            [true, true, true, false]
        );
        assert_eq!(slot.stats.pictures_caught_up.load(Ordering::Relaxed), 2);
        assert_eq!(slot.stats.stirs.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn errors_say_what_to_fix() {
        assert!(describe_error("Unauthorized", None).contains("password"));
        assert!(describe_error("x", Some("404 Not Found".into())).contains("path"));
    }
}
