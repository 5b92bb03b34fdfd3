//! Footage for the simulated cameras, prepared once and cached under `.cache/sim/`.
//!
//! - [`prepare_clip`]: a clip transcoded to raw H.264 (no B-frames, a keyframe every 2 s), so
//!   that serving it costs only parsing and packetising;
//! - [`prepare_quiet`]: a *quiet* camera: the clip's empty background (per-pixel median of frames
//!   spread over the clip, which removes people who walk through) held still, then a few seconds
//!   of the real footage: an occasional passer-by, like most village cameras most of the day;
//! - [`rotate`]: the same file started at another keyframe, so that cameras serving one clip are
//!   not in lock-step (a real village's cameras never are, and lock-step load is burstier).
//!
//! Raw H.264 from x264 here starts every GOP with AUD, SPS, PPS, IDR: a rotation cuts at those
//! AUDs, so every rotated file starts with its parameter sets and a keyframe.

use std::path::{Path, PathBuf};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::super::file::VideoFile;
use super::super::{IngestError, init_gstreamer};

/// How the simulator's streams are encoded.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Encoding {
    /// Picture height (width keeps the clip's aspect).
    pub height: u32,
    pub fps: u32,
    /// Average bitrate; with `constant_quality` only a ceiling.
    pub kbit: u32,
    /// Spend bits where the picture changes (what cameras' VBR mode does): a still scene then
    /// costs almost nothing to send and decode, as on a real quiet camera.
    pub constant_quality: bool,
}

impl Encoding {
    fn tag(&self) -> String {
        let q = if self.constant_quality { "qg" } else { "" };
        format!("h{}-{}fps-{}k{q}", self.height, self.fps, self.kbit)
    }

    fn encoder(&self) -> String {
        // (a quiet camera's GOP is fixed, as on most cameras: no key frame where a passer-by
        // comes in, so they come in anywhere in a GOP)
        let rate = if self.constant_quality {
            format!(
                "pass=qual quantizer=23 vbv-buf-capacity=2000 bitrate={} option-string=scenecut=0",
                self.kbit
            )
        } else {
            format!("bitrate={}", self.kbit)
        };
        format!(
            "videoconvert ! videoscale ! \
             video/x-raw,height={h},pixel-aspect-ratio=1/1 ! \
             x264enc bframes=0 key-int-max={gop} speed-preset=veryfast {rate} ! \
             video/x-h264,profile=constrained-baseline ! h264parse ! \
             video/x-h264,stream-format=byte-stream ! filesink name=sink",
            h = self.height,
            gop = self.fps * 2,
        )
    }
}

fn cache_dir() -> Result<PathBuf, IngestError> {
    let dir = crate::paths::cache_dir().join("sim");
    std::fs::create_dir_all(&dir).map_err(|e| IngestError::Pipeline {
        what: format!("simulator cache {}", dir.display()),
        reason: e.to_string(),
    })?;
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(|| sweep_leftovers(&dir));
    Ok(dir)
}

/// Remove the temporary files of preparations that never finished (a simulator killed half
/// way through a clip leaves its `.h264.part-PID-N`, a few MB each, for good otherwise). Done
/// once per process when the cache is first used. A file whose process still runs is another
/// simulator preparing the same clip right now and is left alone; a file of the older naming
/// (`.h264.part`, no process) is always a leftover.
fn sweep_leftovers(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some((_, rest)) = name.to_str().and_then(|n| n.split_once(".h264.part")) else {
            continue;
        };
        let owner = rest
            .strip_prefix('-')
            .and_then(|r| r.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        // (Linux: the box runs Debian; a pid reused since only keeps a leftover a while longer)
        let running = owner.is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if !running && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(
            "simulator cache {}: removed {removed} unfinished file(s) left by an interrupted preparation",
            dir.display()
        );
    }
}

/// A cache file name that changes when the source clip changes (size and modification time).
fn cached_name(clip: &Path, what: &str, enc: &Encoding) -> Result<PathBuf, IngestError> {
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
    Ok(cache_dir()?.join(format!(
        "{stem}{what}-{}-{}-{stamp}.h264",
        enc.tag(),
        meta.len()
    )))
}

fn is_ready(p: &Path) -> bool {
    std::fs::metadata(p).map(|m| m.len() > 0).unwrap_or(false)
}

/// Run a pipeline to EOS; the first error is returned as text.
fn run_to_end(pipeline: &gst::Pipeline) -> Result<(), String> {
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| format!("does not start: {e}"))?;
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
    failure.map_or(Ok(()), Err)
}

fn launch(desc: &str, what: &Path) -> Result<gst::Pipeline, IngestError> {
    gst::parse::launch(desc)
        .map_err(|e| IngestError::Unreadable {
            path: what.to_path_buf(),
            reason: format!("encoder: {e}"),
        })?
        .downcast::<gst::Pipeline>()
        .map_err(|_| IngestError::Unreadable {
            path: what.to_path_buf(),
            reason: "encoder is not a pipeline".into(),
        })
}

/// The temporary file `out` is written to before it is renamed: one per preparation, because two
/// simulators started at once on a fresh machine (two tests) prepare the same clip together,
/// and with one name between them each wrote into the other's file and the second rename found
/// nothing to rename (the simulator exited; its test waited 300 s for it). Each now writes its
/// own, and whichever renames last leaves the same finished file.
fn part_file(out: &Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    out.with_extension(format!("h264.part-{}-{n}", std::process::id()))
}

/// Write to `out` through a temporary file renamed at the end: an interrupted preparation
/// never leaves a half file that later runs would take for a finished one.
fn finish(
    tmp: &Path,
    out: &Path,
    result: Result<(), String>,
    clip: &Path,
) -> Result<(), IngestError> {
    if let Err(reason) = result {
        let _ = std::fs::remove_file(tmp);
        return Err(IngestError::Unreadable {
            path: clip.to_path_buf(),
            reason,
        });
    }
    std::fs::rename(tmp, out).map_err(|e| IngestError::Pipeline {
        what: format!("simulator cache {}", out.display()),
        reason: e.to_string(),
    })
}

/// Transcode `clip` once into the cache as raw H.264; later calls reuse the file.
pub fn prepare_clip(clip: &Path, enc: &Encoding) -> Result<PathBuf, IngestError> {
    init_gstreamer()?;
    let out = cached_name(clip, "", enc)?;
    if is_ready(&out) {
        return Ok(out);
    }
    let tmp = part_file(&out);
    let desc = format!(
        "filesrc name=src ! decodebin ! videorate ! video/x-raw,framerate={}/1 ! {}",
        enc.fps,
        enc.encoder()
    );
    let pipeline = launch(&desc, clip)?;
    if let Some(src) = pipeline.by_name("src") {
        src.set_property("location", clip.to_string_lossy().as_ref());
    }
    if let Some(sink) = pipeline.by_name("sink") {
        sink.set_property("location", tmp.to_string_lossy().as_ref());
    }
    finish(&tmp, &out, run_to_end(&pipeline), clip)?;
    Ok(out)
}

/// Frames pushed into an encoder at a fixed rate.
struct Encoder {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    fps: u32,
    pushed: u64,
    bus_thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl Encoder {
    fn start(
        width: u32,
        height: u32,
        enc: &Encoding,
        tmp: &Path,
        clip: &Path,
    ) -> Result<Encoder, IngestError> {
        let desc = format!(
            "appsrc name=src format=time block=true max-bytes=20000000 \
             caps=video/x-raw,format=RGB,width={width},height={height},framerate={fps}/1 ! {}",
            enc.encoder(),
            fps = enc.fps
        );
        let pipeline = launch(&desc, clip)?;
        if let Some(sink) = pipeline.by_name("sink") {
            sink.set_property("location", tmp.to_string_lossy().as_ref());
        }
        let src = pipeline
            .by_name("src")
            .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            .ok_or_else(|| IngestError::Unreadable {
                path: clip.to_path_buf(),
                reason: "encoder without appsrc".into(),
            })?;
        let p = pipeline.clone();
        let bus_thread = std::thread::spawn(move || run_to_end(&p));
        Ok(Encoder {
            pipeline,
            src,
            fps: enc.fps,
            pushed: 0,
            bus_thread: Some(bus_thread),
        })
    }

    fn push(&mut self, img: &image::RgbImage) -> Result<(), String> {
        let mut buf = gst::Buffer::from_mut_slice(img.as_raw().clone());
        {
            let b = buf.get_mut().expect("a new buffer is writable");
            let step = 1_000_000_000 / self.fps as u64;
            b.set_pts(gst::ClockTime::from_nseconds(self.pushed * step));
            b.set_duration(gst::ClockTime::from_nseconds(step));
        }
        self.pushed += 1;
        self.src
            .push_buffer(buf)
            .map(|_| ())
            .map_err(|e| format!("encoder refused a frame: {e:?}"))
    }

    fn end(mut self) -> Result<(), String> {
        let _ = self.src.end_of_stream();
        let r = self
            .bus_thread
            .take()
            .map(|t| {
                t.join()
                    .unwrap_or_else(|_| Err("encoder thread panicked".into()))
            })
            .unwrap_or(Ok(()));
        let _ = self.pipeline.set_state(gst::State::Null);
        r
    }
}

/// Per-pixel median of `frames` (all the same size): the scene without the people walking by.
fn median_background(frames: &[image::RgbImage]) -> Option<image::RgbImage> {
    let first = frames.first()?;
    let (w, h) = first.dimensions();
    let n = frames.len();
    let mut out = image::RgbImage::new(w, h);
    let mut vals = vec![0u8; n];
    let planes: Vec<&[u8]> = frames.iter().map(|f| f.as_raw().as_slice()).collect();
    for (i, px) in out.iter_mut().enumerate() {
        for (k, p) in planes.iter().enumerate() {
            vals[k] = p[i];
        }
        vals.sort_unstable();
        *px = vals[n / 2];
    }
    Some(out)
}

/// One part of a prepared clip.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Part {
    /// The clip's empty background (median of frames spread over it), held still.
    Background { seconds: u32 },
    /// The same for a number of pictures.
    Pause { frames: u32 },
    /// The clip itself from `from` (0..1 of its length) for `seconds` (`None`: to its end).
    /// `speed` below 1 plays it slowed down (0.4: a 25 fps clip shown frame by frame at 10 fps).
    Footage {
        from: f64,
        seconds: Option<u32>,
        speed: f64,
    },
}

/// A quiet camera from `clip`: `still_s` seconds of the clip's empty background, then
/// `passer_s` seconds of the clip itself from its middle (the passer-by).
pub fn prepare_quiet(
    clip: &Path,
    enc: &Encoding,
    still_s: u32,
    passer_s: u32,
) -> Result<PathBuf, IngestError> {
    prepare_quiet_at(clip, enc, still_s, passer_s, 0)
}

/// [`prepare_quiet`] with `pause` more pictures of the background before the passer-by: they
/// come in that many pictures after a key frame (the GOP is fixed), not on one.
pub fn prepare_quiet_at(
    clip: &Path,
    enc: &Encoding,
    still_s: u32,
    passer_s: u32,
    pause: u32,
) -> Result<PathBuf, IngestError> {
    let enc = Encoding {
        constant_quality: true,
        ..*enc
    };
    prepare_parts(
        clip,
        &enc,
        &[
            Part::Background { seconds: still_s },
            Part::Pause { frames: pause },
            Part::Footage {
                from: 0.5,
                seconds: Some(passer_s),
                speed: 1.0,
            },
        ],
    )
}

/// `clip` at `speed`, then `gap_s` seconds of its empty background: one pass of the clip can be
/// told from the next (tests that compare one live pass with `ronda analyze`).
pub fn prepare_with_gap(
    clip: &Path,
    enc: &Encoding,
    gap_s: u32,
    speed: f64,
) -> Result<PathBuf, IngestError> {
    let mut parts = vec![Part::Footage {
        from: 0.0,
        seconds: None,
        speed,
    }];
    if gap_s > 0 {
        parts.push(Part::Background { seconds: gap_s });
    }
    prepare_parts(clip, enc, &parts)
}

/// Encode `parts` of `clip` one after the other, in one encoder pass (one set of parameter
/// sets for the whole file, so the served stream never changes format mid-way).
fn prepare_parts(clip: &Path, enc: &Encoding, parts: &[Part]) -> Result<PathBuf, IngestError> {
    init_gstreamer()?;
    let tag: String = parts
        .iter()
        .map(|p| match p {
            Part::Background { seconds } => format!("-bg{seconds}"),
            Part::Pause { frames } if *frames == 0 => String::new(),
            Part::Pause { frames } => format!("-p{frames}"),
            Part::Footage {
                from,
                seconds,
                speed,
            } => {
                let x = if (*speed - 1.0).abs() > 1e-9 {
                    format!("x{}", (speed * 100.0).round() as u32)
                } else {
                    String::new()
                };
                format!(
                    "-at{}+{}{x}",
                    (from * 100.0) as u32,
                    seconds.map_or("end".into(), |s| s.to_string())
                )
            }
        })
        .collect();
    let out = cached_name(clip, &tag, enc)?;
    if is_ready(&out) {
        return Ok(out);
    }
    // pass 1: frames spread over the clip for the background (only when a part needs it)
    let file = VideoFile::open(clip)?;
    let info = file.info().clone();
    let src_fps = if info.fps > 0.0 {
        info.fps
    } else {
        enc.fps as f64
    };
    let total = info
        .duration_s
        .map(|d| (d * src_fps).round() as u64)
        .unwrap_or(400)
        .max(1);
    let background = if parts
        .iter()
        .any(|p| matches!(p, Part::Background { .. } | Part::Pause { .. }))
    {
        let every = (total / 31).max(1);
        let mut samples = Vec::new();
        for f in file {
            let f = f?;
            if f.index % every == 0 {
                samples.push((*f.image).clone());
            }
        }
        Some(
            median_background(&samples).ok_or_else(|| IngestError::Unreadable {
                path: clip.to_path_buf(),
                reason: "it holds no video frames".into(),
            })?,
        )
    } else {
        drop(file);
        None
    };

    let tmp = part_file(&out);
    let mut encoder = Encoder::start(info.width, info.height, enc, &tmp, clip)?;
    let result = (|| -> Result<(), String> {
        for part in parts {
            match *part {
                Part::Background { .. } | Part::Pause { .. } => {
                    let n = match *part {
                        Part::Pause { frames } => frames,
                        Part::Background { seconds } => seconds * enc.fps,
                        Part::Footage { .. } => 0,
                    };
                    let bg = background.as_ref().ok_or("no background")?;
                    for _ in 0..n {
                        encoder.push(bg)?;
                    }
                }
                Part::Footage {
                    from,
                    seconds,
                    speed,
                } => {
                    push_footage(&mut encoder, clip, src_fps, total, from, seconds, speed)?;
                }
            }
        }
        Ok(())
    })();
    let ended = encoder.end();
    finish(&tmp, &out, result.and(ended), clip)?;
    Ok(out)
}

/// Push the clip from `from` (0..1) for `seconds`, resampled from `src_fps` to the encoder's
/// rate: output frame k shows the newest source frame at or before k / fps (in stretched time).
fn push_footage(
    encoder: &mut Encoder,
    clip: &Path,
    src_fps: f64,
    total: u64,
    from: f64,
    seconds: Option<u32>,
    speed: f64,
) -> Result<(), String> {
    let speed = if speed > 0.0 { speed } else { 1.0 };
    let fps = encoder.fps as f64;
    let start = (total as f64 * from.clamp(0.0, 1.0)).floor() / src_fps;
    let wanted = seconds.map(|s| s as u64 * encoder.fps as u64);
    let mut pushed = 0u64;
    let mut last: Option<std::sync::Arc<image::RgbImage>> = None;
    let mut last_t = 0.0;
    let file = VideoFile::open(clip).map_err(|e| e.to_string())?;
    for f in file {
        let f = f.map_err(|e| e.to_string())?;
        // time in the output: the clip's own time stretched by 1 / speed
        let t = (f.index as f64 / src_fps - start) / speed;
        if t < 0.0 {
            continue;
        }
        if let Some(l) = &last {
            while wanted.is_none_or(|w| pushed < w) && (pushed as f64) / fps < t {
                encoder.push(l)?;
                pushed += 1;
            }
        }
        if wanted.is_some_and(|w| pushed >= w) {
            return Ok(());
        }
        last = Some(f.image.clone());
        last_t = t;
    }
    // the last source frame lasts one source frame interval
    if let Some(l) = &last {
        let until = wanted.unwrap_or(((last_t + 1.0 / src_fps / speed) * fps).round() as u64);
        while pushed < until {
            encoder.push(l)?;
            pushed += 1;
        }
    }
    Ok(())
}

/// Byte offsets where a new GOP starts (the access unit delimiter before an SPS).
pub fn gop_starts(data: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut pending_aud: Option<usize> = None;
    let mut i = 0;
    while i + 3 < data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            // a 4-byte start code begins one byte earlier
            let at = if i > 0 && data[i - 1] == 0 { i - 1 } else { i };
            match data[i + 3] & 0x1f {
                9 => pending_aud = Some(at),
                7 => starts.push(pending_aud.take().unwrap_or(at)),
                _ => pending_aud = None,
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    starts
}

/// `raw` started at the keyframe nearest to `fraction` (0..1) of its length; cached.
pub fn rotate(raw: &Path, fraction: f64) -> Result<PathBuf, IngestError> {
    let data = std::fs::read(raw).map_err(|e| IngestError::Unreadable {
        path: raw.to_path_buf(),
        reason: e.to_string(),
    })?;
    let starts = gop_starts(&data);
    if starts.len() < 2 {
        return Ok(raw.to_path_buf());
    }
    let k = ((fraction.rem_euclid(1.0) * starts.len() as f64) as usize).min(starts.len() - 1);
    if k == 0 {
        return Ok(raw.to_path_buf());
    }
    let stem = raw
        .file_stem()
        .map_or("clip".into(), |s| s.to_string_lossy().into_owned());
    let out = raw.with_file_name(format!("{stem}-from{k}.h264"));
    if is_ready(&out) {
        return Ok(out);
    }
    let cut = starts[k];
    let mut rotated = Vec::with_capacity(data.len());
    rotated.extend_from_slice(&data[cut..]);
    // the part before the first GOP (if any) is dropped: it is not a decodable unit
    rotated.extend_from_slice(&data[starts[0]..cut]);
    let tmp = part_file(&out);
    std::fs::write(&tmp, &rotated)
        .and_then(|_| std::fs::rename(&tmp, &out))
        .map_err(|e| IngestError::Pipeline {
            what: format!("simulator cache {}", out.display()),
            reason: e.to_string(),
        })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gops_start_at_the_delimiter_before_the_sps() {
        // AUD SPS PPS IDR | AUD P | AUD SPS PPS IDR
        let mut d = Vec::new();
        for t in [9u8, 7, 8, 5, 9, 1, 9, 7, 8, 5] {
            d.extend_from_slice(&[0, 0, 0, 1, t, 0xaa, 0xbb]);
        }
        let s = gop_starts(&d);
        assert_eq!(s, vec![0, 6 * 7]);
    }

    #[test]
    fn leftovers_of_gone_preparations_are_swept_and_a_running_one_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        // a process that has ended (waited for, so it is gone from /proc)
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        let files = [
            (format!("a-h360.h264.part-{gone}-0"), false),
            ("b-h360.h264.part".to_string(), false),
            (format!("c-h360.h264.part-{}-3", std::process::id()), true),
            ("d-h360.h264".to_string(), true),
            ("e-h360.h264.part-notapid-1".to_string(), false),
        ];
        for (name, _) in &files {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        sweep_leftovers(dir.path());
        for (name, kept) in &files {
            assert_eq!(dir.path().join(name).exists(), *kept, "{name}");
        }
    }

    #[test]
    fn the_median_removes_a_passer_by() {
        let bg = image::Rgb([50, 60, 70]);
        let mut frames = Vec::new();
        for k in 0..5u32 {
            let mut f = image::RgbImage::from_pixel(5, 1, bg);
            f.put_pixel(k, 0, image::Rgb([255, 255, 255]));
            frames.push(f);
        }
        let m = median_background(&frames).unwrap();
        assert!(m.pixels().all(|p| *p == bg));
    }
}
