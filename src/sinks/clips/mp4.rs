//! One clip file: a camera's encoded access units muxed into MP4 as they are, no re-encode
//! (`appsrc ! h264parse ! mp4mux faststart=true ! filesink`).
//!
//! Timestamps. mp4mux needs every buffer to carry a PTS and a DTS, DTS never going backwards,
//! and durations; otherwise it stalls or fails (FACTS.md). The ring keeps the buffers as they
//! left h264parse on the camera's pipeline: PTS from the RTP timestamps (the camera's own 90 kHz
//! clock, mapped to that pipeline's running time), no DTS. So the clip's time line is built from
//! the **PTS differences** between units, re-based to 0, and not from their arrival times
//! (`at`): arrival carries the network's jitter (TCP bursts, a large keyframe arriving late)
//! and would make playback stutter, while the RTP clock is the cadence the camera encoded at.
//! Arrival times are used only where PTS cannot be trusted: a unit without one, or a step no
//! camera makes between two pictures (back by more than B-frame reordering could explain, or
//! forward by more than 10 s): a clip collected across a reconnect sees the new connection's
//! clock restart near 0. A network stall, by contrast, delays arrival but not PTS, so a burst of
//! late units keeps its true cadence instead of freezing and then racing.
//! DTS is derived from the PTS in decode order (the sorted PTS, shifted back by the largest
//! reordering), which is PTS itself for streams without B-frames (what cameras send) and still
//! valid for those with them.
//!
//! `faststart` puts the index (moov) before the data so a browser can start playing and seeking
//! before it has the whole file; mp4mux then stages the data in a side file, kept next to the
//! clip (same disk, and named `*.part` so an interrupted run's leftover is cleaned up too).
//! Writing thus needs about twice the clip's size free for a moment. A full disk shows up as a
//! plain write error from mp4mux or filesink; it is reported as [`ClipError::DiskFull`].

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::files::{commit, discard, io_hint, is_disk_full, part_path};
use crate::ingest::ring::{AccessUnit, RingCut};

/// What was written.
#[derive(Clone, Debug, PartialEq)]
pub struct ClipInfo {
    /// Play time of the file.
    pub duration: Duration,
    /// File size.
    pub bytes: u64,
    /// Arrival (wall clock) of the first and last picture in the file.
    pub first: SystemTime,
    pub last: SystemTime,
    /// Pictures in the file.
    pub frames: usize,
}

/// Why a clip could not be written. Each names the file and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    #[error("{}: no video to write: {reason}", path.display())]
    NoVideo { path: PathBuf, reason: String },

    #[error("{}: the disk is full; free space, or lower [store] max_gb / retention_days", path.display())]
    DiskFull { path: PathBuf },

    #[error("{}: cannot {action}: {source}; {}", path.display(), io_hint(source))]
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },

    #[error("{}: the MP4 muxer failed: {reason}", path.display())]
    Mux { path: PathBuf, reason: String },

    #[error(
        "{}: writing did not finish within {} s (machine overloaded or disk stalled?)",
        path.display(), after.as_secs()
    )]
    Timeout { path: PathBuf, after: Duration },

    #[error("GStreamer could not start: {0} (run `make setup` to install the GStreamer packages)")]
    Init(String),
}

impl ClipError {
    pub(crate) fn io(path: &Path, action: &'static str, source: std::io::Error) -> ClipError {
        if is_disk_full(&source) {
            ClipError::DiskFull {
                path: path.to_path_buf(),
            }
        } else {
            ClipError::Io {
                path: path.to_path_buf(),
                action,
                source,
            }
        }
    }
}

/// Longest a clip may take to write: a 60 s clip takes tens of milliseconds, so this only
/// catches a wedged muxer or disk.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Frame duration assumed when nothing better is known (15 fps, the usual substream rate).
const DEFAULT_FRAME_NS: u64 = 66_666_667;

/// How far PTS may go back from one unit to the next (B-frame reordering: a few frames).
const MAX_REORDER_NS: i64 = 1_000_000_000;
/// How far PTS may go forward between two pictures (a camera at 1 fps, or one that lowers its
/// rate when the scene is still, stays well under this).
const MAX_STEP_NS: i64 = 10_000_000_000;

/// A unit's place on the clip's time line, nanoseconds from its start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub pts: u64,
    pub dts: u64,
    pub duration: u64,
}

/// Build valid, monotonic timestamps for `units` (in decode order), starting at 0.
pub(crate) fn timeline(units: &[AccessUnit]) -> Vec<Stamp> {
    let n = units.len();
    if n == 0 {
        return Vec::new();
    }
    let raw = |u: &AccessUnit| {
        u.buffer
            .pts()
            .or(u.buffer.dts())
            .map(|t| t.nseconds() as i64)
    };
    // 1. a continuous presentation time line (may go backwards with B-frames)
    let mut t = Vec::with_capacity(n);
    t.push(0i64);
    for i in 1..n {
        let by_arrival = signed_ns(units[i - 1].at, units[i].at);
        let by_pts = match (raw(&units[i - 1]), raw(&units[i])) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        let step = match by_pts {
            Some(d) if (-MAX_REORDER_NS..=MAX_STEP_NS).contains(&d) => d,
            // no PTS, or the camera's clock restarted: trust arrival, kept sane (the wall clock
            // itself may have been stepped)
            _ => by_arrival.clamp(1_000_000, 5_000_000_000),
        };
        t.push(t[i - 1] + step);
    }
    // 2. decode times: the presentation times in order, moved back by the largest reordering so
    //    that no picture is presented before it is decoded
    let mut sorted = t.clone();
    sorted.sort_unstable();
    let delay = sorted
        .iter()
        .zip(&t)
        .map(|(s, p)| s - p)
        .max()
        .unwrap_or(0)
        .max(0);
    let base = sorted[0];
    let mut stamps: Vec<Stamp> = Vec::with_capacity(n);
    for i in 0..n {
        let mut dts = (sorted[i] - base) as u64;
        if let Some(prev) = stamps.last()
            && dts <= prev.dts
        {
            // two units with one timestamp: keep decode order strictly increasing
            dts = prev.dts + 1_000_000;
        }
        let pts = ((t[i] - base + delay) as u64).max(dts);
        stamps.push(Stamp {
            pts,
            dts,
            duration: 0,
        });
    }
    // 3. durations: to the next unit; the last one as the stream declares, or like the others
    for i in 0..n - 1 {
        stamps[i].duration = stamps[i + 1].dts - stamps[i].dts;
    }
    let declared = units[n - 1]
        .buffer
        .duration()
        .map(|d| d.nseconds())
        .filter(|d| *d > 0 && *d < 1_000_000_000);
    stamps[n - 1].duration = declared.unwrap_or_else(|| {
        let mut d: Vec<u64> = stamps[..n - 1].iter().map(|s| s.duration).collect();
        d.sort_unstable();
        d.get(d.len() / 2).copied().unwrap_or(DEFAULT_FRAME_NS)
    });
    stamps
}

/// `b - a` in nanoseconds, negative when the wall clock went backwards.
fn signed_ns(a: SystemTime, b: SystemTime) -> i64 {
    match b.duration_since(a) {
        Ok(d) => d.as_nanos().min(i64::MAX as u128) as i64,
        Err(e) => -(e.duration().as_nanos().min(i64::MAX as u128) as i64),
    }
}

/// Write `cut` to `path` as MP4, atomically (`<path>.part`, fsync, rename). On any failure
/// nothing is left behind. The parent directory is created if needed.
pub fn write_mp4(cut: &RingCut, path: &Path) -> Result<ClipInfo, ClipError> {
    let no_video = |reason: &str| ClipError::NoVideo {
        path: path.to_path_buf(),
        reason: reason.into(),
    };
    let Some(caps) = cut.caps.as_ref() else {
        return Err(no_video(
            "the camera's stream format is not known yet (no picture received)",
        ));
    };
    // the ring always starts on a keyframe; a hand-made cut might not, and a clip that does
    // not start on one shows grey until the next, so start at the first keyframe
    let Some(start) = cut.units.iter().position(|u| u.keyframe) else {
        return Err(no_video(
            "the camera sent no keyframe in that time (camera offline?)",
        ));
    };
    let units = &cut.units[start..];
    gst::init().map_err(|e| ClipError::Init(e.to_string()))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| ClipError::io(path, "create its directory", e))?;
    }

    let part = part_path(path);
    let staging = {
        let mut s = part.as_os_str().to_owned();
        s.push(".staging.part");
        PathBuf::from(s)
    };
    let stamps = timeline(units);
    let result = mux(caps, units, &stamps, path, &part, &staging);
    discard(&staging);
    match result {
        Ok(()) => {}
        Err(e) => {
            discard(&part);
            return Err(e);
        }
    }
    let bytes = match std::fs::metadata(&part) {
        Ok(m) if m.len() > 0 => m.len(),
        Ok(_) => {
            discard(&part);
            return Err(ClipError::Mux {
                path: path.to_path_buf(),
                reason: "the muxer wrote an empty file".into(),
            });
        }
        Err(e) => {
            discard(&part);
            return Err(ClipError::io(path, "read back the written file", e));
        }
    };
    if let Err(e) = commit(&part, path) {
        discard(&part);
        return Err(ClipError::io(path, "finish (fsync and rename)", e));
    }
    let end = stamps.last().map(|s| s.dts + s.duration).unwrap_or(0);
    Ok(ClipInfo {
        duration: Duration::from_nanos(end),
        bytes,
        first: units[0].at,
        last: units[units.len() - 1].at,
        frames: units.len(),
    })
}

/// Run the muxing pipeline into `part`.
fn mux(
    caps: &gst::Caps,
    units: &[AccessUnit],
    stamps: &[Stamp],
    path: &Path,
    part: &Path,
    staging: &Path,
) -> Result<(), ClipError> {
    let fail = |reason: String| ClipError::Mux {
        path: path.to_path_buf(),
        reason,
    };
    let pipeline = gst::parse::launch(
        "appsrc name=src format=time is-live=false ! h264parse ! \
         mp4mux name=mux faststart=true ! filesink name=sink sync=false async=false",
    )
    .map_err(|e| fail(format!("cannot build the pipeline ({e}); run `make setup`")))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| fail("not a pipeline".into()))?;
    let src = pipeline
        .by_name("src")
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .ok_or_else(|| fail("pipeline without appsrc".into()))?;
    src.set_caps(Some(caps));
    // everything is already in memory (references to the ring's buffers): let it queue
    src.set_max_bytes(0);
    if let Some(mux) = pipeline.by_name("mux") {
        mux.set_property("faststart-file", staging.to_string_lossy().as_ref());
    }
    if let Some(sink) = pipeline.by_name("sink") {
        sink.set_property("location", part.to_string_lossy().as_ref());
    }
    let run = || -> Result<(), ClipError> {
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| ClipError::Mux {
                path: path.to_path_buf(),
                reason: bus_error(&pipeline)
                    .map(|(r, _)| r)
                    .unwrap_or_else(|| "the pipeline does not start".into()),
            })?;
        for (unit, stamp) in units.iter().zip(stamps) {
            // a shallow copy: new metadata, the same memory as the ring's buffer
            let mut buffer = unit.buffer.copy();
            {
                let b = buffer.make_mut();
                b.set_pts(gst::ClockTime::from_nseconds(stamp.pts));
                b.set_dts(gst::ClockTime::from_nseconds(stamp.dts));
                b.set_duration(gst::ClockTime::from_nseconds(stamp.duration));
            }
            if src.push_buffer(buffer).is_err() {
                // flushing or an error downstream: the bus says which
                break;
            }
        }
        let _ = src.end_of_stream();
        let bus = pipeline.bus().expect("a pipeline has a bus");
        let deadline = Instant::now() + WRITE_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClipError::Timeout {
                    path: path.to_path_buf(),
                    after: WRITE_TIMEOUT,
                });
            }
            let Some(msg) = bus.timed_pop_filtered(
                gst::ClockTime::from_mseconds(left.as_millis() as u64),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            ) else {
                continue;
            };
            match msg.view() {
                gst::MessageView::Eos(..) => return Ok(()),
                gst::MessageView::Error(e) => {
                    // mp4mux reports a full disk as a plain write error, with the system's
                    // reason only in the debug text
                    let debug = e.debug().map(|d| d.to_string()).unwrap_or_default();
                    if e.error().matches(gst::ResourceError::NoSpaceLeft)
                        || debug.contains("No space left")
                    {
                        return Err(ClipError::DiskFull {
                            path: path.to_path_buf(),
                        });
                    }
                    let mut reason = e.error().to_string();
                    if e.error().matches(gst::ResourceError::OpenWrite)
                        || e.error().matches(gst::ResourceError::Write)
                    {
                        reason.push_str("; make [store] clips_dir writable and check the disk");
                    }
                    return Err(ClipError::Mux {
                        path: path.to_path_buf(),
                        reason,
                    });
                }
                _ => {}
            }
        }
    };
    let result = run();
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// The first error on the bus, with its debug text.
fn bus_error(pipeline: &gst::Pipeline) -> Option<(String, Option<String>)> {
    let bus = pipeline.bus()?;
    while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
        if let gst::MessageView::Error(e) = msg.view() {
            return Some((e.error().to_string(), e.debug().map(|d| d.to_string())));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(pts_ms: Option<u64>, at_ms: u64, key: bool) -> AccessUnit {
        let _ = gst::init();
        let mut buffer = gst::Buffer::with_size(10).unwrap();
        {
            let b = buffer.get_mut().unwrap();
            b.set_pts(pts_ms.map(gst::ClockTime::from_mseconds));
            b.set_duration(gst::ClockTime::from_mseconds(100));
        }
        AccessUnit {
            buffer,
            keyframe: key,
            at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_000_000 + at_ms),
        }
    }

    fn ms(ns: u64) -> u64 {
        (ns + 500_000) / 1_000_000
    }

    #[test]
    fn pts_cadence_wins_over_jittery_arrival() {
        // 10 fps by PTS starting at an arbitrary running time; arrival bunched up
        let units: Vec<_> = [(5000, 0), (5100, 180), (5200, 190), (5300, 300)]
            .iter()
            .map(|&(p, a)| unit(Some(p), a, p == 5000))
            .collect();
        let s = timeline(&units);
        let pts: Vec<u64> = s.iter().map(|s| ms(s.pts)).collect();
        assert_eq!(pts, [0, 100, 200, 300]);
        assert!(s.iter().all(|s| s.pts == s.dts && ms(s.duration) == 100));
    }

    #[test]
    fn a_restarted_clock_or_a_missing_pts_falls_back_to_arrival() {
        let units = vec![
            unit(Some(90_000), 0, true),
            unit(Some(90_100), 100, false),
            unit(Some(20), 200, false), // reconnect: RTP clock restarted
            unit(None, 300, false),
            unit(Some(220), 400, false),
        ];
        let s = timeline(&units);
        let pts: Vec<u64> = s.iter().map(|s| ms(s.pts)).collect();
        assert_eq!(pts, [0, 100, 200, 300, 400]);
    }

    #[test]
    fn a_network_stall_does_not_stretch_the_clip() {
        // the camera kept its cadence; TCP held the units back 1.5 s, then delivered a burst
        let units: Vec<_> = [(0, 0), (100, 100), (200, 1600), (300, 1605), (400, 1610)]
            .iter()
            .map(|&(p, a)| unit(Some(7000 + p), a, p == 0))
            .collect();
        let pts: Vec<u64> = timeline(&units).iter().map(|s| ms(s.pts)).collect();
        assert_eq!(pts, [0, 100, 200, 300, 400]);
    }

    #[test]
    fn b_frames_get_decode_times_before_their_presentation() {
        // decode order I P B B P B B, presentation order I B B P B B P
        let order = [0, 300, 100, 200, 600, 400, 500];
        let units: Vec<_> = order
            .iter()
            .enumerate()
            .map(|(i, &p)| unit(Some(1000 + p), i as u64 * 100, i == 0))
            .collect();
        let s = timeline(&units);
        for w in s.windows(2) {
            assert!(w[1].dts > w[0].dts, "{s:?}");
        }
        assert!(s.iter().all(|s| s.pts >= s.dts), "{s:?}");
        // presentation spacing is kept
        let mut pts: Vec<u64> = s.iter().map(|s| ms(s.pts)).collect();
        pts.sort_unstable();
        assert!(pts.windows(2).all(|w| w[1] - w[0] == 100), "{pts:?}");
    }

    #[test]
    fn equal_timestamps_still_move_forward() {
        let units = vec![
            unit(Some(0), 0, true),
            unit(Some(0), 0, false),
            unit(Some(100), 100, false),
        ];
        let s = timeline(&units);
        assert!(s[1].dts > s[0].dts && s[2].dts > s[1].dts, "{s:?}");
        assert!(s.iter().all(|s| s.pts >= s.dts && s.duration > 0));
    }

    #[test]
    fn an_empty_or_formatless_cut_is_refused_by_name() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("x.mp4");
        let e = write_mp4(
            &RingCut {
                caps: None,
                units: vec![],
            },
            &path,
        )
        .unwrap_err();
        assert!(e.to_string().contains("x.mp4"), "{e}");
        let caps = gst::Caps::builder("video/x-h264").build();
        let e = write_mp4(
            &RingCut {
                caps: Some(caps),
                units: vec![unit(Some(0), 0, false)],
            },
            &path,
        )
        .unwrap_err();
        assert!(e.to_string().contains("keyframe"), "{e}");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }
}
