//! One camera supervisor against the in-process RTSP simulator: decoded frames arrive at the
//! analysis rate while the encoded ring keeps the last seconds of the stream, starting on a
//! keyframe (what an incident clip's pre-roll is cut from). Also the simulator's own footage:
//! quiet cameras and rotated start points.

use crate::support as common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use common::{free_port, sample};
use ronda::ingest::camera::{Camera, CameraSpec, Doorbell};
use ronda::ingest::sim::{SimOptions, Simulator};

#[test]
fn frames_and_the_encoded_ring_flow_together() {
    let port = free_port();
    let sim = Simulator::start(&SimOptions {
        port,
        cameras: 2,
        clips: vec![sample("vtest.avi")],
        ..SimOptions::default()
    })
    .expect("sim starts");
    let (tx, _rx) = std::sync::mpsc::sync_channel(16);
    let mut spec = CameraSpec::new("cam02", &sim.urls[1], &sim.urls[1], 5.0);
    spec.ring = Some(Duration::from_secs(6));
    let mut cam = Camera::start(spec, Arc::new(Doorbell::default()), tx).unwrap();
    let ring = cam.ring.clone().expect("a ring was asked for");

    let t0 = Instant::now();
    // until the stream has run well past the ring's 6 s (45 analysed frames at 5 fps are 9 s of
    // stream time), so the ring has had to let old pictures go; a slow box only waits longer
    assert!(
        common::broker::wait_for(Duration::from_secs(300), || {
            ring.figures().2 >= Duration::from_secs(6)
                && cam.slot.stats.frames_delivered.load(Ordering::Relaxed) >= 45
        }),
        "the ring never filled: {:?}",
        ring.figures()
    );
    let frames = cam.slot.stats.frames_delivered.load(Ordering::Relaxed);
    let secs = t0.elapsed().as_secs_f64();
    let (units, bytes, span) = ring.figures();
    eprintln!(
        "camera: {frames} frames in {secs:.1} s ({:.1} fps); ring: {units} units, {bytes} bytes, {:.2} s",
        frames as f64 / secs,
        span.as_secs_f64()
    );
    // the rate is printed, not asserted (a loaded box decodes slower); what must hold is that
    // the decode branch goes on delivering while the ring records every picture
    assert!(
        frames >= 45,
        "the decode branch delivers with the tee: {frames} frames"
    );
    assert!(
        span >= Duration::from_secs(6) && span <= Duration::from_millis(8_500),
        "the ring holds keep (6 s) plus at most one GOP (2 s): {span:?}"
    );
    // 15 fps stream: every picture is in the ring, not only the analysed ones
    assert!(
        units as f64 >= span.as_secs_f64() * 13.0,
        "{units} units for {span:?}"
    );
    let now = SystemTime::now();
    let cut = ring.cut(now - Duration::from_secs(5), now);
    assert!(
        cut.units.first().is_some_and(|u| u.keyframe),
        "cut starts on a keyframe"
    );
    assert!(cut.units[0].at <= now - Duration::from_secs(5));
    let caps = cut.caps.expect("the ring knows its format").to_string();
    assert!(
        caps.contains("video/x-h264") && caps.contains("stream-format=(string)avc"),
        "{caps}"
    );
    assert_eq!(ring.overflow_bytes.load(Ordering::Relaxed), 0);
    cam.stop();
    drop(sim);
}

#[test]
fn a_quiet_camera_is_still_then_shows_a_passer_by() {
    use ronda::ingest::file::VideoFile;
    use ronda::ingest::sim::footage::{Encoding, gop_starts, prepare_quiet, rotate};
    let enc = Encoding {
        height: 240,
        fps: 10,
        kbit: 600,
        constant_quality: false,
    };
    let q = prepare_quiet(&sample("vtest.avi"), &enc, 4, 2).expect("quiet clip");
    // the file starts with parameter sets and a keyframe, and plays 6 s at 10 fps
    let data = std::fs::read(&q).unwrap();
    assert_eq!(gop_starts(&data)[0], 0);
    let frames: Vec<_> = VideoFile::open(&q).unwrap().map(|f| f.unwrap()).collect();
    assert!(
        (58..=62).contains(&frames.len()),
        "{} frames, want 60",
        frames.len()
    );
    // share of samples that changed clearly (encoding noise stays well under 30 levels)
    let diff = |a: &image::RgbImage, b: &image::RgbImage| -> f64 {
        let changed = a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .filter(|(x, y)| x.abs_diff(**y) > 30)
            .count();
        changed as f64 / a.as_raw().len() as f64 * 100.0
    };
    // still part: neighbouring frames (almost) identical; passer-by part: they differ
    let still = diff(&frames[10].image, &frames[30].image);
    let moving = diff(&frames[45].image, &frames[55].image);
    eprintln!("changed samples: still {still:.3} %, passer-by {moving:.3} %");
    assert!(still < 0.05, "still part moves: {still} %");
    assert!(moving > 0.5, "passer-by part is still: {moving} %");

    // a rotated copy starts on a keyframe too and has the same length
    let r = rotate(&q, 0.5).unwrap();
    let rd = std::fs::read(&r).unwrap();
    assert_eq!(rd.len(), data.len());
    assert_eq!(gop_starts(&rd)[0], 0);
    assert_ne!(rd[..2000], data[..2000]);
}

/// A quiet camera decodes only its key frames (the worker asks, `FrameSlot::set_keyframes_only`)
/// and stays online with a 2 s GOP; asked again, it decodes every picture from the next key
/// frame. The clip ring keeps the whole stream either way. Judged on counts of pictures, never
/// on seconds: a slow box only takes longer.
#[test]
fn a_quiet_camera_decodes_key_frames_only_and_resumes_at_the_next_one() {
    let port = free_port();
    let sim = Simulator::start(&SimOptions {
        port,
        cameras: 1,
        clips: vec![sample("vtest.avi")],
        ..SimOptions::default()
    })
    .expect("sim starts");
    let (tx, _rx) = std::sync::mpsc::sync_channel(16);
    // the analysis rate at the stream's own (15 fps): every decoded picture is delivered
    let mut spec = CameraSpec::new("cam01", &sim.urls[0], &sim.urls[0], 30.0);
    spec.ring = Some(Duration::from_secs(6));
    let mut cam = Camera::start(spec, Arc::new(Doorbell::default()), tx).unwrap();
    let ring = cam.ring.clone().expect("a ring was asked for");
    let stats = &cam.slot.stats;
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let deadline = Duration::from_secs(300);
    // the slot is emptied as a worker would, so `delivered` counts every decoded picture
    let drain = || while cam.slot.take().is_some() {};
    assert!(
        common::broker::wait_for(deadline, || {
            drain();
            n(&stats.frames_delivered) >= 20
        }),
        "no pictures from the simulator"
    );

    cam.slot.set_keyframes_only(true);
    let (d0, s0) = (n(&stats.pictures_decoded), n(&stats.pictures_skipped));
    // four GOPs of 2 s at 15 fps: 29 pictures between key frames each
    assert!(
        common::broker::wait_for(deadline, || {
            drain();
            n(&stats.pictures_skipped) >= s0 + 4 * 29
        }),
        "nothing was skipped: {} skipped, {} decoded",
        n(&stats.pictures_skipped),
        n(&stats.pictures_decoded)
    );
    let (decoded, skipped) = (
        n(&stats.pictures_decoded) - d0,
        n(&stats.pictures_skipped) - s0,
    );
    eprintln!("key frames only: {decoded} pictures decoded, {skipped} skipped");
    // one key frame per GOP: skipping starts at once, mid-GOP
    assert!(
        decoded <= skipped / 29 + 2,
        "{decoded} decoded beside {skipped} skipped"
    );
    assert!(
        decoded >= skipped / 29 - 1,
        "key frames still decoded: {decoded}"
    );
    assert!(cam.slot.decoding_keyframes_only());
    assert_eq!(
        n(&stats.reconnects),
        0,
        "the watchdog held a quiet camera for hung"
    );
    // the ring kept every picture, not only the decoded ones
    let (units, _, span) = ring.figures();
    assert!(
        units as f64 >= span.as_secs_f64() * 13.0,
        "{units} units for {span:?}"
    );

    cam.slot.set_keyframes_only(false);
    let (d1, s1) = (n(&stats.pictures_decoded), n(&stats.pictures_skipped));
    assert!(
        common::broker::wait_for(deadline, || {
            drain();
            n(&stats.pictures_decoded) >= d1 + 60
        }),
        "decoding did not resume"
    );
    let skipped_after = n(&stats.pictures_skipped) - s1;
    eprintln!("resumed: {skipped_after} pictures skipped before the next key frame");
    assert!(
        skipped_after <= 29,
        "more than the rest of one GOP skipped after resuming: {skipped_after}"
    );
    assert!(!cam.slot.decoding_keyframes_only());
    cam.stop();
    drop(sim);
}

/// Two simulators started at once on a fresh machine (two tests) prepare the same clip together:
/// both get the finished file. With one temporary file between them, each wrote into the
/// other's and the second rename found nothing: that simulator exited and its test waited 300 s
/// for it (seen on a fresh clone's CI).
#[test]
fn two_preparations_of_one_clip_at_once_both_succeed() {
    let dir = tempfile::tempdir().unwrap();
    // a copy under a name of its own: a cache entry nobody has made yet
    let name = format!(
        "race-{}-{}.avi",
        std::process::id(),
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let clip = dir.path().join(name);
    std::fs::copy(sample("vtest.avi"), &clip).unwrap();
    // small and short-lived pictures: the race is in the file handling, not the encoding
    let enc = ronda::ingest::sim::Encoding {
        height: 120,
        fps: 5,
        kbit: 200,
        constant_quality: false,
    };
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let (clip, barrier) = (clip.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                ronda::ingest::sim::footage::prepare_clip(&clip, &enc)
            })
        })
        .collect();
    let outs: Vec<_> = runs
        .into_iter()
        .map(|r| r.join().unwrap().expect("both preparations succeed"))
        .collect();
    assert_eq!(outs[0], outs[1]);
    let made = std::fs::metadata(&outs[0]).unwrap().len();
    // nothing left behind in the cache but the finished file
    let stem = clip.file_stem().unwrap().to_string_lossy().into_owned();
    let cache = outs[0].parent().unwrap();
    let left: Vec<_> = std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&stem))
        .collect();
    std::fs::remove_file(&outs[0]).unwrap();
    assert!(made > 1000, "{made} bytes");
    assert_eq!(left.len(), 1, "{left:?}");
}
