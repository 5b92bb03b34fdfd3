//! Incident clips and snapshots against the real thing: H.264 from the in-process RTSP simulator
//! over loopback, a camera supervisor keeping its encoded ring, the clip recorder muxing MP4
//! with GStreamer, and GStreamer (not a hand-written parser) reading the result back.

use crate::support as common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant, SystemTime};

use common::{free_port, sample};
use image::{Rgb, RgbImage};
use ronda::geometry::BBox;
use ronda::ingest::camera::{Camera, CameraSpec, Doorbell};
use ronda::ingest::file::VideoFile;
use ronda::ingest::sim::{SimOptions, Simulator};
use ronda::sinks::clips::{ClipOptions, ClipOutcome, ClipRecorder, startup_cleanup};
use ronda::sinks::snapshot::{label_colour, write_snapshot};

const PRE: Duration = Duration::from_secs(3);

/// Wait until the camera's ring holds `span` of pictures (the pre-roll must be there before an
/// alert asks for it); a slow box only waits longer.
fn ring_holds(ring: &ronda::ingest::ring::EncodedRing, span: Duration) {
    assert!(
        common::broker::wait_for(Duration::from_secs(120), || ring.figures().2 >= span),
        "the ring never held {span:?}: {:?}",
        ring.figures()
    );
}
const POST: Duration = Duration::from_secs(4);
/// The simulator's stream: 15 fps, a keyframe every 2 s. A clip starts on the keyframe at or
/// before `at - pre`, so it may hold up to one GOP more pre-roll than asked.
const FPS: f64 = 15.0;
const GOP_S: f64 = 2.0;

/// The simulator with one camera and a supervisor keeping a `ring` of it.
fn live_camera(ring: Duration) -> (Simulator, Camera) {
    let sim = Simulator::start(&SimOptions {
        port: free_port(),
        cameras: 1,
        clips: vec![sample("vtest.avi")],
        ..SimOptions::default()
    })
    .expect("sim starts");
    let (tx, _rx) = std::sync::mpsc::sync_channel(16);
    let mut spec = CameraSpec::new("cam01", &sim.urls[0], &sim.urls[0], 5.0);
    spec.ring = Some(ring);
    let cam = Camera::start(spec, Arc::new(Doorbell::default()), tx).unwrap();
    (sim, cam)
}

fn recorder(dir: &Path) -> (ClipRecorder, Receiver<ClipOutcome>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let rec = ClipRecorder::start(
        ClipOptions::new(dir, PRE, POST, chrono_tz::Asia::Jakarta),
        move |o| {
            let _ = tx.send(o);
        },
    )
    .unwrap();
    (rec, rx)
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// What GStreamer makes of a clip: decoded frames, declared duration, and whether the first
/// picture is a real one (a clip not starting on a keyframe decodes to grey or nothing).
struct Played {
    frames: usize,
    duration_s: f64,
    first_spread: u8,
}

fn play(path: &Path) -> Played {
    let mut v = VideoFile::open(path).expect("GStreamer opens the clip");
    let duration_s = v.info().duration_s.expect("MP4 declares its duration");
    let first = v.next_frame().unwrap().expect("a first frame");
    let (lo, hi) = first
        .image
        .as_raw()
        .iter()
        .fold((255u8, 0u8), |(lo, hi), &b| (lo.min(b), hi.max(b)));
    let mut frames = 1;
    while v.next_frame().expect("every frame decodes").is_some() {
        frames += 1;
    }
    Played {
        frames,
        duration_s,
        first_spread: hi - lo,
    }
}

fn wait_outcome(rx: &Receiver<ClipOutcome>) -> ClipOutcome {
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the recorder reports the clip")
}

fn is_faststart(path: &Path) -> bool {
    let data = std::fs::read(path).unwrap();
    let find = |tag: &[u8]| data.windows(4).position(|w| w == tag);
    matches!((find(b"moov"), find(b"mdat")), (Some(m), Some(d)) if m < d)
}

#[test]
fn an_incident_clip_holds_pre_and_post_roll_and_plays() {
    let (sim, mut cam) = live_camera(Duration::from_secs(20));
    let ring = cam.ring.clone().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (rec, rx) = recorder(dir.path());
    ring_holds(&ring, PRE + Duration::from_secs(2));

    let at = SystemTime::now();
    let asked = Instant::now();
    let planned = rec.request("cam01", ring, "inc-1", at).unwrap();
    assert!(!planned.joined);
    let outcome = wait_outcome(&rx);
    let waited = asked.elapsed();
    let ClipOutcome::Done {
        incident_ids,
        path,
        info,
        ..
    } = outcome
    else {
        panic!("clip failed: {outcome:?}");
    };
    cam.stop();
    drop(sim);
    assert_eq!(incident_ids, ["inc-1"]);
    assert_eq!(path, planned.path);
    // <clips_dir>/<camera>/<YYYY-MM-DD>/<incident id>.mp4
    let rel = path.strip_prefix(dir.path()).unwrap();
    let parts: Vec<_> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    assert_eq!(parts[0], "cam01");
    assert!(chrono::NaiveDate::parse_from_str(&parts[1], "%Y-%m-%d").is_ok());
    assert_eq!(parts[2], "inc-1.mp4");
    assert_eq!(
        files_under(dir.path()),
        std::slice::from_ref(&path),
        "no .part left"
    );
    assert_eq!(std::fs::metadata(&path).unwrap().len(), info.bytes);
    assert!(
        is_faststart(&path),
        "moov before mdat (browsers play early)"
    );
    // it waited for the post-roll (a lower bound only: a slow box may take longer to write)
    assert!(waited >= POST, "{waited:?}");
    // the clip spans the asked time (arrival of the first and last picture)
    assert!(
        info.first <= at - PRE,
        "pre-roll starts on the keyframe before at - pre"
    );
    assert!(
        info.last + Duration::from_millis(300) >= at + POST,
        "post-roll up to at + post"
    );

    let played = play(&path);
    let want = (PRE + POST).as_secs_f64();
    let extra = (at - PRE).duration_since(info.first).unwrap().as_secs_f64();
    let write_ms = rec
        .stats()
        .write_ms
        .load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "clip: {} frames, {:.2} s (file says {:.2} s; pre+post {want} s + {extra:.2} s to the \
         keyframe), {} kB, written in {write_ms} ms, reported {:.2} s after the incident",
        played.frames,
        info.duration.as_secs_f64(),
        played.duration_s,
        info.bytes / 1000,
        waited.as_secs_f64()
    );
    assert!(extra <= GOP_S + 0.2, "{extra}");
    assert_eq!(played.frames, info.frames, "every picture written plays");
    assert!(
        (played.duration_s - (want + extra)).abs() < 1.0,
        "duration {} vs pre + post {want} + {extra:.2} to the keyframe",
        played.duration_s
    );
    assert!((played.duration_s - info.duration.as_secs_f64()).abs() < 0.2);
    let fps = played.frames as f64 / played.duration_s;
    assert!((fps - FPS).abs() < 1.0, "{fps} fps");
    assert!(
        played.first_spread > 60,
        "the first frame is a real picture (the clip starts on a keyframe)"
    );
    rec.shutdown();
}

#[test]
fn overlapping_incidents_on_a_camera_make_one_clip_for_both() {
    // a ring of only pre + 3 s, shorter than the clip: the recorder collects the post-roll as
    // it comes, so the clip's start need not stay in the ring
    let (sim, mut cam) = live_camera(PRE + Duration::from_secs(3));
    let ring = cam.ring.clone().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (rec, rx) = recorder(dir.path());
    ring_holds(&ring, PRE + Duration::from_secs(2));

    let at1 = SystemTime::now();
    let first = rec.request("cam01", ring.clone(), "inc-a", at1).unwrap();
    // Time must pass, not work get done: the second incident comes 2 s of the camera's real
    // clock after the first, within the first one's post-roll, so the clip must stretch to the
    // second one's post-roll (asked times are wall-clock times, as the pipeline's are).
    std::thread::sleep(Duration::from_secs(2));
    let at2 = SystemTime::now();
    let second = rec.request("cam01", ring.clone(), "inc-b", at2).unwrap();
    assert!(second.joined);
    assert_eq!(second.path, first.path);
    let outcome = wait_outcome(&rx);
    let ring_span = ring.figures().2;
    cam.stop();
    drop(sim);
    let ClipOutcome::Done {
        incident_ids,
        path,
        info,
        ..
    } = outcome
    else {
        panic!("clip failed: {outcome:?}");
    };
    assert_eq!(incident_ids, ["inc-a", "inc-b"]);
    assert!(
        ring_span < info.duration,
        "the clip ({:?}) is longer than the ring ({ring_span:?})",
        info.duration
    );
    assert!(path.ends_with("inc-a.mp4"));
    // exactly one clip: stopped (its thread joined), the recorder has reported all it will
    rec.shutdown();
    assert!(rx.try_recv().is_err());
    assert_eq!(files_under(dir.path()), std::slice::from_ref(&path));
    assert!(info.first <= at1 - PRE);
    assert!(info.last + Duration::from_millis(300) >= at2 + POST);

    let played = play(&path);
    let span = at2.duration_since(at1).unwrap().as_secs_f64();
    let want = (PRE + POST).as_secs_f64() + span;
    let extra = (at1 - PRE)
        .duration_since(info.first)
        .unwrap()
        .as_secs_f64();
    eprintln!(
        "joined clip: {} frames, {:.2} s (pre + {span:.2} + post = {want:.2} s + {extra:.2} s to \
         the keyframe), {} kB",
        played.frames,
        played.duration_s,
        info.bytes / 1000
    );
    assert_eq!(played.frames, info.frames);
    assert!(
        (played.duration_s - (want + extra)).abs() < 1.0,
        "duration {} vs {want} + {extra:.2}",
        played.duration_s
    );
    assert!(played.first_spread > 60);
}

#[test]
fn leftovers_of_an_interrupted_run_are_removed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let day = dir.path().join("cam01").join("2026-11-22");
    std::fs::create_dir_all(&day).unwrap();
    std::fs::write(day.join("inc-9.mp4.part"), b"half a clip").unwrap();
    std::fs::write(day.join("inc-9.mp4.part.staging.part"), b"muxer staging").unwrap();
    std::fs::write(day.join("inc-8.mp4"), b"a finished clip").unwrap();
    std::fs::write(day.join("inc-8.jpg"), b"a finished snapshot").unwrap();
    assert_eq!(startup_cleanup(dir.path()).unwrap(), 2);
    let mut left = files_under(dir.path());
    left.sort();
    assert_eq!(left, [day.join("inc-8.jpg"), day.join("inc-8.mp4")]);
}

#[test]
fn a_snapshot_shows_the_box_and_reads_back() {
    // a real picture: the first frame of the sample footage
    let frame = VideoFile::open(&sample("vtest.avi"))
        .unwrap()
        .next_frame()
        .unwrap()
        .unwrap();
    let img: &RgbImage = &frame.image;
    let (w, h) = img.dimensions();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cam01/2026-11-22/inc-1.jpg");
    let b = BBox::new(100.0, 120.0, 180.0, 300.0);
    let started = Instant::now();
    let bytes = write_snapshot(img, &[(b, "person")], &path).unwrap();
    let took = started.elapsed();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), bytes);
    assert_eq!(
        files_under(dir.path()),
        std::slice::from_ref(&path),
        "no .part left"
    );
    let back = image::open(&path).unwrap().to_rgb8();
    assert_eq!(back.dimensions(), (w, h));
    eprintln!(
        "snapshot {w}x{h}: {} kB in {:.1} ms",
        bytes / 1000,
        took.as_secs_f64() * 1000.0
    );
    // JPEG is lossy: the box's colour is there within a small tolerance, on all four edges
    let Rgb(want) = label_colour("person");
    let near = |p: &Rgb<u8>| p.0.iter().zip(want).all(|(a, b)| a.abs_diff(b) <= 40);
    for (x, y) in [(100, 200), (179, 200), (140, 120), (140, 299)] {
        assert!(
            near(back.get_pixel(x, y)),
            "({x},{y}) {:?}",
            back.get_pixel(x, y)
        );
    }
    // and the picture is otherwise the frame (inside the box, away from the edges)
    let (a, z) = (img.get_pixel(140, 200), back.get_pixel(140, 200));
    assert!(
        a.0.iter().zip(z.0).all(|(a, b)| a.abs_diff(b) <= 30),
        "{a:?} {z:?}"
    );
}
