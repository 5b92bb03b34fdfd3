//! The RTSP camera simulator (`ronda sim`): rtsp://ADDR:PORT/cam01..camNN, each looping a clip.
//!
//! Uses (of the crate, besides its own folder): paths.
//!
//! Serving live-encoded video for 40 cameras would cost a core, so every clip is transcoded once
//! into a cached raw H.264 file (baseline-like: no B-frames, a keyframe every 2 s) and the server
//! only parses and packetises it (FACTS.md: 40 mounts cost the server 13-18 % of one core).
//! Camera n starts its clip at another keyframe than camera n-1 ([`footage::rotate`]), and the
//! last `quiet` cameras show a still scene with an occasional passer-by ([`footage::prepare_quiet`]).
//! Raw H.264 through `h264parse` carries DTS but no PTS, which makes recorders downstream stall;
//! a probe after the parser sets PTS = DTS (valid without B-frames).

use std::path::PathBuf;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;

use super::{IngestError, init_gstreamer};

pub mod footage;
pub use footage::Encoding;

/// What the simulator serves.
#[derive(Clone, Debug)]
pub struct SimOptions {
    pub address: String,
    pub port: u16,
    pub cameras: usize,
    /// Clips, given to cameras in turn (cam01 gets the first, cam02 the second, ...).
    pub clips: Vec<PathBuf>,
    /// Picture height of the served streams (width follows the clip's aspect), e.g. 360.
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbit: u32,
    /// The last `quiet` cameras serve a quiet version of the first clip: its empty background
    /// for `quiet_still_s`, then `quiet_passer_s` of the footage.
    pub quiet: usize,
    pub quiet_still_s: u32,
    pub quiet_passer_s: u32,
    /// Seconds of the clip's empty background after each pass of a busy clip (0: none).
    pub gap_s: u32,
    /// Play busy clips slowed down (below 1) or sped up.
    pub speed: f64,
    /// Start each camera at another keyframe of its clip (not in lock-step).
    pub offsets: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            address: "127.0.0.1".into(),
            port: 8554,
            cameras: 4,
            clips: Vec::new(),
            height: 360,
            fps: 15,
            bitrate_kbit: 1000,
            quiet: 0,
            quiet_still_s: 40,
            quiet_passer_s: 4,
            gap_s: 0,
            speed: 1.0,
            offsets: true,
        }
    }
}

/// A mount serving Motion-JPEG (not H.264), for tests of a wrongly configured camera.
pub const MJPEG_PATH: &str = "/mjpeg";

/// The mount path of camera `n` (1-based): `/cam01`.
fn mount_path(n: usize) -> String {
    format!("/cam{n:02}")
}

/// Spread of start points: camera n starts at (n-1) x golden ratio (mod 1) of its clip, so any
/// number of cameras is spread evenly without two neighbours close together.
fn start_fraction(n: usize) -> f64 {
    ((n - 1) as f64 * 0.618_034).rem_euclid(1.0)
}

/// The raw H.264 file each camera serves, prepared (and cached) before the server starts.
fn footage_for(opts: &SimOptions) -> Result<Vec<PathBuf>, IngestError> {
    let enc = Encoding {
        height: opts.height,
        fps: opts.fps,
        kbit: opts.bitrate_kbit,
        constant_quality: false,
    };
    let mut busy = Vec::new();
    for c in &opts.clips {
        busy.push(if opts.gap_s > 0 || (opts.speed - 1.0).abs() > 1e-9 {
            footage::prepare_with_gap(c, &enc, opts.gap_s, opts.speed)?
        } else {
            footage::prepare_clip(c, &enc)?
        });
    }
    // quiet cameras in turn: their passers-by come in at one of QUIET_PHASES points of a GOP
    // (a real passer-by does not wait for a key frame)
    let gop = enc.fps * 2;
    let mut quiet = Vec::new();
    for k in 0..opts.quiet.min(QUIET_PHASES) {
        quiet.push(footage::prepare_quiet_at(
            &opts.clips[0],
            &enc,
            opts.quiet_still_s,
            opts.quiet_passer_s,
            k as u32 * gop / QUIET_PHASES as u32,
        )?);
    }
    let first_quiet = opts.cameras.saturating_sub(opts.quiet) + 1;
    (1..=opts.cameras)
        .map(|n| {
            let base = if n >= first_quiet && !quiet.is_empty() {
                &quiet[(n - first_quiet) % quiet.len()]
            } else {
                &busy[(n - 1) % busy.len()]
            };
            if opts.offsets {
                footage::rotate(base, start_fraction(n))
            } else {
                Ok(base.clone())
            }
        })
        .collect()
}

/// How many points of a GOP the quiet cameras' passers-by come in at (one file each).
const QUIET_PHASES: usize = 6;

/// A running simulator. The server lives on its own GLib main loop thread; dropping it stops it.
pub struct Simulator {
    main_loop: glib::MainLoop,
    thread: Option<std::thread::JoinHandle<()>>,
    pub urls: Vec<String>,
}

impl Simulator {
    pub fn start(opts: &SimOptions) -> Result<Simulator, IngestError> {
        init_gstreamer()?;
        if opts.clips.is_empty() {
            return Err(IngestError::Pipeline {
                what: "simulator".into(),
                reason: "no clip given (--clip FILE)".into(),
            });
        }
        let files = footage_for(opts)?;
        let context = glib::MainContext::new();
        let main_loop = glib::MainLoop::new(Some(&context), false);
        let server = rtsp::RTSPServer::new();
        server.set_address(&opts.address);
        server.set_service(&opts.port.to_string());
        let mounts = server.mount_points().ok_or_else(|| IngestError::Pipeline {
            what: "simulator".into(),
            reason: "RTSP server has no mount points".into(),
        })?;
        let mut urls = Vec::new();
        for n in 1..=opts.cameras {
            let file = &files[n - 1];
            let factory = rtsp::RTSPMediaFactory::new();
            let location = file.to_string_lossy().replace('"', "");
            factory.set_launch(&format!(
                "( multifilesrc location=\"{location}\" loop=true ! h264parse name=parse ! \
                 rtph264pay name=pay0 pt=96 config-interval=1 )"
            ));
            // one pipeline per mount shared by its viewers, like a real camera
            factory.set_shared(true);
            factory.connect_media_configure(|_, media| {
                let bin = media.element();
                let Some(parse) = bin
                    .downcast_ref::<gst::Bin>()
                    .and_then(|b| b.by_name_recurse_up("parse").or_else(|| b.by_name("parse")))
                else {
                    return;
                };
                if let Some(pad) = parse.static_pad("src") {
                    pad.add_probe(gst::PadProbeType::BUFFER, |_, info| {
                        if let Some(gst::PadProbeData::Buffer(buf)) = info.data.as_mut()
                            && buf.pts().is_none()
                        {
                            let dts = buf.dts();
                            buf.make_mut().set_pts(dts);
                        }
                        gst::PadProbeReturn::Ok
                    });
                }
            });
            let path = mount_path(n);
            mounts.add_factory(&path, factory);
            urls.push(format!("rtsp://{}:{}{}", opts.address, opts.port, path));
        }
        // A camera that sends Motion-JPEG instead of H.264 (some cheap cameras' default): lets
        // tests check that such a camera gets a clear health message. Built only when a client
        // asks for it, so it costs nothing otherwise.
        let mjpeg = rtsp::RTSPMediaFactory::new();
        mjpeg.set_launch(
            "( videotestsrc pattern=ball ! video/x-raw,format=I420,width=320,height=240,framerate=5/1 ! \
             jpegenc ! rtpjpegpay name=pay0 pt=26 )",
        );
        mjpeg.set_shared(true);
        mounts.add_factory(MJPEG_PATH, mjpeg);
        let attached = context
            .with_thread_default(|| server.attach(Some(&context)))
            .map_err(|e| IngestError::Pipeline {
                what: "simulator".into(),
                reason: e.to_string(),
            })?
            .map_err(|e| IngestError::Pipeline {
                what: format!("simulator on {}:{}", opts.address, opts.port),
                reason: format!("cannot listen ({e}); is the port in use?"),
            })?;
        let ml = main_loop.clone();
        let thread = std::thread::Builder::new()
            .name("rtsp-sim".into())
            .spawn(move || {
                let _server = server;
                let _source = attached;
                let _ = context.with_thread_default(|| ml.run());
            })
            .map_err(|e| IngestError::Pipeline {
                what: "simulator".into(),
                reason: e.to_string(),
            })?;
        Ok(Simulator {
            main_loop,
            thread: Some(thread),
            urls,
        })
    }

    /// Block until the main loop stops (the `ronda sim` command).
    pub fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.main_loop.quit();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
