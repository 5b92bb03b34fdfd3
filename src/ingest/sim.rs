//! The RTSP camera simulator (`ronda sim`): rtsp://ADDR:PORT/cam01..camNN, each looping a clip.
//!
//! Serving live-encoded video for 40 cameras would cost a core, so every clip is transcoded once
//! into a cached raw H.264 file (baseline-like: no B-frames, a keyframe every 2 s) and the server
//! only parses and packetises it (FACTS.md: 40 mounts cost the server 13-18 % of one core).
//! Raw H.264 through `h264parse` carries DTS but no PTS, which makes recorders downstream stall;
//! a probe after the parser sets PTS = DTS (valid without B-frames).

use std::path::{Path, PathBuf};

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;

use super::{IngestError, init_gstreamer};

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
        }
    }
}

/// The mount path of camera `n` (1-based): `/cam01`.
pub fn mount_path(n: usize) -> String {
    format!("/cam{n:02}")
}

/// Transcode `clip` once into `.cache/sim/` as raw H.264; later calls reuse the file.
pub fn prepare_clip(clip: &Path, height: u32, fps: u32, kbit: u32) -> Result<PathBuf, IngestError> {
    init_gstreamer()?;
    if !clip.is_file() {
        return Err(IngestError::Missing {
            path: clip.to_path_buf(),
        });
    }
    let meta = std::fs::metadata(clip).map_err(|e| IngestError::Unreadable {
        path: clip.to_path_buf(),
        reason: e.to_string(),
    })?;
    let stamp = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let stem = clip
        .file_stem()
        .map_or("clip".into(), |s| s.to_string_lossy().into_owned());
    let dir = crate::paths::cache_dir().join("sim");
    std::fs::create_dir_all(&dir).map_err(|e| IngestError::Pipeline {
        what: format!("simulator cache {}", dir.display()),
        reason: e.to_string(),
    })?;
    let out = dir.join(format!(
        "{stem}-{}-h{height}-{fps}fps-{kbit}k-{stamp}.h264",
        meta.len()
    ));
    if out.is_file()
        && std::fs::metadata(&out)
            .map(|m| m.len() > 0)
            .unwrap_or(false)
    {
        return Ok(out);
    }
    let tmp = out.with_extension("h264.part");
    let desc = format!(
        "filesrc name=src ! decodebin ! videoconvert ! videoscale ! videorate ! \
         video/x-raw,height={height},framerate={fps}/1,pixel-aspect-ratio=1/1 ! \
         x264enc bframes=0 key-int-max={gop} speed-preset=veryfast bitrate={kbit} ! \
         video/x-h264,profile=constrained-baseline ! h264parse ! video/x-h264,stream-format=byte-stream ! \
         filesink name=sink",
        gop = fps * 2
    );
    let unreadable = |reason: String| IngestError::Unreadable {
        path: clip.to_path_buf(),
        reason,
    };
    let pipeline = gst::parse::launch(&desc)
        .map_err(|e| unreadable(format!("transcoder: {e}")))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| unreadable("transcoder is not a pipeline".into()))?;
    if let Some(src) = pipeline.by_name("src") {
        src.set_property("location", clip.to_string_lossy().as_ref());
    }
    if let Some(sink) = pipeline.by_name("sink") {
        sink.set_property("location", tmp.to_string_lossy().as_ref());
    }
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| unreadable(format!("transcoder does not start: {e}")))?;
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let mut failure = None;
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Eos(..) => break,
            gst::MessageView::Error(e) => {
                failure = Some(e.error().to_string());
                break;
            }
            _ => {}
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    if let Some(reason) = failure {
        let _ = std::fs::remove_file(&tmp);
        return Err(unreadable(reason));
    }
    std::fs::rename(&tmp, &out).map_err(|e| IngestError::Pipeline {
        what: format!("simulator cache {}", out.display()),
        reason: e.to_string(),
    })?;
    Ok(out)
}

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
        let mut raw = Vec::new();
        for c in &opts.clips {
            raw.push(prepare_clip(c, opts.height, opts.fps, opts.bitrate_kbit)?);
        }
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
            let file = &raw[(n - 1) % raw.len()];
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
