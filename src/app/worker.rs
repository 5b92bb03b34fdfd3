//! The inference worker: runs the motion gate on every gated camera's newest frame, takes the
//! frames to look at (gate cameras first), runs the person detector and each camera's chain, and
//! hands what they find to the writer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::camera::*;
use super::daily::DailyReset;
use super::keep_up;
use super::turns::{Turns, Waiting};
use super::{EventSite, Events, Raised, apply};
use crate::config::Window;
use crate::detect::{Detector, MaskVerdict};
use crate::events::{Event, Severity};
use crate::frame::Frame;
use crate::gate::GateMark;
use crate::ingest::camera::Doorbell;
use crate::rules::{CameraChain, Direction, Finding, LineCounter, Moment, Recent};
use crate::telemetry;
use crate::track::Track;

/// How long a camera must have been still before movement counts as a wake-up.
pub(super) const STILL_BEFORE_WAKE: Duration = Duration::from_secs(2);

/// Still pictures in a row, after anything stirred, before a camera decodes key frames only.
pub(super) const QUIET_AFTER_STILL_PICTURES: u32 = 10;

/// A wake-up with no person found within this long was not a passer-by (light, leaves).
pub(super) const WAKE_GIVE_UP: Duration = Duration::from_secs(5);

/// The worker's clock: seconds since the start (a camera's stream time falls back on it), the
/// wall clock in the site's time zone for event times and daily windows.
pub(super) struct Clock {
    pub(super) start: Instant,
    pub(super) site: EventSite,
}

impl Clock {
    /// The moment of frame `frame` whose chain time is `t`.
    pub(super) fn moment(&self, frame: u64, t: f64) -> Moment {
        let utc = chrono::Utc::now();
        Moment {
            frame,
            t,
            utc,
            local: utc.with_timezone(&self.site.timezone).time(),
        }
    }
}

/// Hands the events of one frame to the writer.
pub(super) struct Emit<'a> {
    pub(super) tx: &'a Events,
    /// The frame's picture, handed along with alerts for their snapshot and with the crossings
    /// of gate lines for the gate log (shared, not copied).
    pub(super) picture: Option<&'a Arc<image::RgbImage>>,
    pub(super) figures: &'a mut CameraFigures,
    pub(super) arrived: Instant,
    /// The picture's width and height: boxes are clamped to it (a tracker's prediction for a
    /// person leaving the picture can run past its edge).
    pub(super) size: (f32, f32),
}

impl Emit<'_> {
    /// Hand `e` over; `gate` marks a crossing of a gate camera's line (the frame that counted
    /// goes with it, for the gate log's picture). `false` when the writer is gone (shutting
    /// down).
    pub(super) fn send_marked(&mut self, mut e: Event, gate: Option<GateMark>) -> bool {
        if let Some(b) = &mut e.bbox {
            let (w, h) = self.size;
            for (i, v) in b.iter_mut().enumerate() {
                *v = v.clamp(0.0, if i % 2 == 0 { w } else { h });
            }
        }
        self.figures
            .event_latency_ms
            .push(self.arrived.elapsed().as_secs_f32() * 1000.0);
        let picture = (e.severity == Severity::Alert || gate.is_some())
            .then(|| self.picture.cloned())
            .flatten();
        // events are never dropped: wait for the writer
        self.tx.send(Raised {
            event: e,
            picture,
            gate,
        })
    }
}

/// The inference worker's inputs and state; [`Worker::run`] is its thread.
pub(super) struct Worker {
    pub detector: Detector,
    pub cams: Vec<CamState>,
    pub bell: Arc<Doorbell>,
    pub stop: Arc<AtomicBool>,
    pub events: Events,
    pub figures: Arc<Mutex<HashMap<String, CameraFigures>>>,
    pub clock: Clock,
    pub resets: DailyReset,
    /// Lines and zones the editor saved, and what applying them needs.
    pub changes: Receiver<apply::RulesChange>,
    pub rules: apply::RulesContext,
    /// `[gatebook] night`: the night of gate lines without a curfew of their own (an entry then
    /// must be recorded in the gate book in time).
    pub gate_night: Option<Window>,
}

impl Worker {
    /// Until `stop`: serve the cameras' frames as they come (gate cameras first).
    pub(super) fn run(self) {
        let Worker {
            mut detector,
            mut cams,
            bell,
            stop,
            events: tx,
            figures,
            clock,
            mut resets,
            changes,
            mut rules,
            gate_night,
        } = self;
        let mut turns = Turns::default();
        let mut waiting = Vec::with_capacity(cams.len());
        // the detections of the picture in hand, their room reused
        let mut dets = Vec::new();
        let mut last_log = Instant::now();
        let mut last_publish = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            bell.wait(Duration::from_millis(200));
            loop {
                // The motion gate looks at every gated camera's newest picture before the
                // detector takes one: it costs a fraction of a millisecond, so under overload
                // (the detector busy with the gate camera and the busy yards) a quiet camera is
                // still judged at about its full rate, and a small change can hold from one
                // picture to the next as a walker's does (judged a detector's turn apart, it
                // would not). What passes waits for the detector's turn, newest first.
                for cam in cams.iter_mut().filter(|c| c.motion_gate) {
                    if let Some((frame, arrived)) = cam.slot.take()
                        && let Some(moved) = judge_motion(cam, &frame, arrived)
                    {
                        let replaced = cam.pending.take();
                        if let Some(look) = &mut cam.look {
                            // where it moved since the last search: in the pictures replaced too
                            if replaced.is_none() {
                                look.motion.clear();
                            }
                            cam.motion.moved_boxes(&mut look.motion);
                        }
                        let moved = moved || replaced.is_some_and(|p| p.2);
                        cam.pending = Some((frame, arrived, moved));
                    }
                }
                // gate cameras first (up to `turns::GATE_RUN` looks in a row while another
                // camera waits, so that a gate the detector cannot keep up with does not blind
                // the others), then the first look of a still camera that just woke (someone
                // coming into a quiet corner: under overload it would otherwise wait a whole
                // round of the busy cameras; one look per wake-up, and a wake-up comes only after
                // `STILL_BEFORE_WAKE` of stillness, so busy cameras are not starved), then the
                // others in turn
                waiting.clear();
                waiting.extend(cams.iter().map(|c| Waiting {
                    gate: c.gate,
                    ready: c.pending.is_some() || (!c.motion_gate && c.slot.has_frame()),
                    first_look: c.first_look && c.pending.is_some(),
                }));
                let pick = turns.pick(&waiting);
                let Some(i) = pick else { break };
                let cam = &mut cams[i];
                let taken = if cam.motion_gate {
                    cam.pending.take()
                } else {
                    cam.slot.take().map(|(f, a)| (f, a, false))
                };
                let Some((frame, arrived, moved)) = taken else {
                    continue;
                };
                cam.first_look = false;
                let t0 = Instant::now();
                let searched = match &mut cam.look {
                    Some(look) => {
                        let people = cam.rules.tracks().iter().map(|t| t.bbox);
                        look.search(&mut detector, &frame.image, people, arrived, &mut dets)
                    }
                    None => detector
                        .persons_into(&frame.image, !cam.gate, &mut dets)
                        .map(|()| None),
                };
                match searched {
                    Ok(how) if cam.look.is_some() => cam.figures.searched(how, t0.elapsed()),
                    Ok(_) => {}
                    Err(e) => {
                        telemetry::inference_failed(&cam.id, &e, &mut cam.figures.inference_errors);
                        continue;
                    }
                }
                cam.figures.inference += t0.elapsed();
                cam.figures.analysed += 1;
                if let Some((b, dark)) = detector.last_light() {
                    let mean = b.mean as f64;
                    cam.figures.brightness = Some(
                        cam.figures
                            .brightness
                            .map_or(mean, |old| old + (mean - old) / BRIGHTNESS_FRAMES),
                    );
                    cam.figures.low_light = dark;
                }
                if cam.motion_gate {
                    // only a gated camera knows motion from a still picture re-checked
                    let person = dets.iter().any(|d| d.score >= cam.person_score);
                    cam.figures.too_dark =
                        cam.dark.look(arrived, moved, cam.figures.low_light, person);
                }
                if let Some((w, last_still)) = cam.woke_at {
                    if dets.iter().any(|d| d.score >= cam.person_score) {
                        cam.figures
                            .wake_latency_ms
                            .push(w.elapsed().as_secs_f32() * 1000.0);
                        cam.figures
                            .notice_latency_ms
                            .push(last_still.elapsed().as_secs_f32() * 1000.0);
                        cam.woke_at = None;
                    } else if w.elapsed() > WAKE_GIVE_UP {
                        cam.woke_at = None;
                    }
                }
                let arrived_s = arrived.saturating_duration_since(clock.start).as_secs_f64();
                let at = clock.moment(frame.index, cam.clock.time(frame.pts_ns, arrived_s));
                let tracks = cam.rules.track(&at, &dets);
                // anyone (even not yet confirmed) in view keeps the still camera's re-check short
                cam.motion.occupied = !tracks.is_empty();
                remember(&cam.recent, &at, tracks, &frame.image);
                look_for_faces(
                    &mut detector,
                    &mut cam.rules,
                    &frame.image,
                    &at,
                    &mut cam.figures,
                );
                let suppressed = cam.rules.suppressed;
                // copied out (usually empty: no allocation) so the camera's figures can be updated
                let findings = cam.rules.judge(&at).to_vec();
                let mut emit = Emit {
                    tx: &tx,
                    picture: Some(&frame.image),
                    figures: &mut cam.figures,
                    arrived,
                    size: (frame.width() as f32, frame.height() as f32),
                };
                for f in &findings {
                    let e = finding_event(f, &cam.id, &cam.rules.lines, &clock.site, at.utc);
                    let mark = match f {
                        Finding::Crossing {
                            line,
                            crossing,
                            look,
                            ..
                        } if cam.gate => {
                            let curfew = cam.rules.line_rules.get(*line).and_then(|r| r.curfew);
                            Some(GateMark {
                                look: *look,
                                night: crossing.direction == Direction::In
                                    && curfew.or(gate_night).is_some_and(|w| w.contains(at.local)),
                            })
                        }
                        _ => None,
                    };
                    if !emit.send_marked(e, mark) {
                        return;
                    }
                }
                telemetry::alerts_suppressed(
                    &cam.id,
                    cam.rules.suppressed - suppressed,
                    &mut cam.figures.alerts_suppressed,
                );
                // under saturation this loop never runs dry: figures, resets and new rules are
                // handled in it
                publish_figures(&mut cams, &figures, &mut last_publish, &mut last_log);
                resets.check(&mut cams, clock.site.timezone);
                take_new_rules(&changes, &mut rules, &mut cams);
                if stop.load(Ordering::Relaxed) {
                    break;
                }
            }
            publish_figures(&mut cams, &figures, &mut last_publish, &mut last_log);
            resets.check(&mut cams, clock.site.timezone);
            take_new_rules(&changes, &mut rules, &mut cams);
        }
    }
}

/// Run camera `cam`'s motion gate on `frame` (arrived at `arrived`) and keep its still spell,
/// wake-up and key-frames-only state: `Some(moved)` when the picture should go to the detector.
fn judge_motion(cam: &mut CamState, frame: &Frame, arrived: Instant) -> Option<bool> {
    // a camera decoding key frames only sees one picture per GOP: a small change on it cannot
    // be seen to hold (the gate's test against insects), and waiting for full decoding to judge
    // it costs another GOP; so what stirs on a key frame goes to the detector at once (at most
    // one look per GOP, and only while something stirs), and the pictures after it are judged
    // at the full rate
    let on_key_frames = cam.slot.decoding_keyframes_only();
    let pass = cam.motion.pass(&frame.image, Instant::now());
    let stirred_key = on_key_frames && cam.motion.stirred && !cam.motion.moved;
    cam.figures.light_changes = cam.motion.light_changes;
    if cam.motion.noisy {
        cam.figures.last_noisy = Some(arrived);
    }
    if cam.motion.moved || stirred_key {
        if cam
            .still_since
            .take()
            .is_some_and(|t| arrived.duration_since(t) >= STILL_BEFORE_WAKE)
        {
            // the passer-by came after the last picture judged still: by the motion gate, or
            // (a picture not decoded) by its size
            let still = cam
                .last_still
                .max(cam.slot.last_calm().filter(|&t| t <= arrived));
            cam.woke_at = Some((arrived, still.unwrap_or(arrived)));
            cam.first_look = true;
        }
    } else {
        cam.still_since.get_or_insert(arrived);
        if !cam.motion.stirred {
            cam.last_still = Some(arrived);
        }
    }
    cam.still_run = if cam.motion.stirred {
        0
    } else {
        cam.still_run.saturating_add(1)
    };
    // still for a while: decode only key frames until something stirs
    // (`FrameSlot::set_keyframes_only` says why); after a stir, a run of still pictures at the
    // full rate first, so that a walker the gate could not judge on key frames alone is judged
    // on every picture. Whoever is in view does not keep every picture decoded: someone who
    // stands still is re-checked all the same (every `recheck`, on the key frames), and when
    // they move it is a stir like any passer-by's. (It used to be "nobody tracked": a weak
    // detection of something in the background, a poster or a pile of sacks, kept by the
    // tracker's low-score stage, then kept a camera decoding every picture for good.)
    let quiet = cam.still_run >= QUIET_AFTER_STILL_PICTURES
        && cam
            .still_since
            .is_some_and(|t| arrived.duration_since(t) >= STILL_BEFORE_WAKE);
    cam.slot.set_keyframes_only(quiet);
    if pass || stirred_key {
        Some(cam.motion.moved)
    } else {
        cam.figures.skipped_still += 1;
        None
    }
}

/// Apply a change the editor sent, if any, and answer it.
pub(super) fn take_new_rules(
    changes: &Receiver<apply::RulesChange>,
    rules: &mut apply::RulesContext,
    cams: &mut [CamState],
) {
    if let Ok(c) = changes.try_recv() {
        let done = rules.apply(cams, c.settings);
        // the editor may have given up waiting: the change holds all the same
        let _ = c.reply.send(done);
    }
}

/// Record the frame's tracks for "preview this line", with a small picture of each person
/// whose picture is due (see `rules::preview`). A picture that cannot be encoded is skipped: the
/// preview shows the crossing without it.
pub(super) fn remember(
    recent: &Mutex<Recent>,
    at: &Moment,
    tracks: &[Track],
    image: &image::RgbImage,
) {
    let mut r = recent.lock().unwrap_or_else(PoisonError::into_inner);
    r.record(at, tracks);
    let due: Vec<Track> = r.pictures_due(at, tracks).copied().collect();
    for k in due {
        let crop = crate::frame::person_crop(image, &k.bbox);
        let small = if crop.height() > PREVIEW_PICTURE_HEIGHT {
            let w = (crop.width() * PREVIEW_PICTURE_HEIGHT / crop.height()).max(1);
            image::imageops::thumbnail(&crop, w, PREVIEW_PICTURE_HEIGHT)
        } else {
            crop
        };
        match crate::sinks::snapshot::encode_jpeg(&small) {
            Ok(jpeg) => r.add_picture(k.id, at.t, jpeg),
            Err(e) => tracing::debug!("preview picture not encoded: {e}"),
        }
    }
}

/// Frames the camera's brightness figure is smoothed over (an exponential mean).
pub(super) const BRIGHTNESS_FRAMES: f64 = 10.0;

/// Height of a person's picture in a line preview (pixels): enough to tell people apart, small
/// enough to keep minutes of them for every camera.
pub(super) const PREVIEW_PICTURE_HEIGHT: u32 = 96;

/// Search the head regions of the people the chain's mask watch picks in this frame and hand
/// back what was found. Failures are counted; only the first of a camera is logged above debug.
pub(super) fn look_for_faces(
    detector: &mut Detector,
    chain: &mut CameraChain,
    image: &image::RgbImage,
    at: &Moment,
    figures: &mut CameraFigures,
) {
    let looks = chain.faces_wanted(at).to_vec();
    if looks.is_empty() {
        return;
    }
    let t0 = Instant::now();
    for &(id, bbox) in &looks {
        match detector.faces_of_person(image, &bbox) {
            Ok(faces) => chain.record_faces(id, at, &faces),
            Err(e) => telemetry::face_search_failed(chain.camera(), &e, &mut figures.face_errors),
        }
    }
    figures.face_looks += looks.len() as u64;
    figures.face_time += t0.elapsed();
}

/// The event a finding of camera `camera` becomes.
pub(super) fn finding_event(
    f: &Finding,
    camera: &str,
    lines: &[LineCounter],
    site: &EventSite,
    utc: chrono::DateTime<chrono::Utc>,
) -> Event {
    let mut e = site.event(camera, f.kind(), utc);
    match f {
        Finding::Crossing {
            line,
            crossing,
            counts,
            ..
        }
        | Finding::CurfewEntry {
            line,
            crossing,
            counts,
        }
        | Finding::NoMask {
            line,
            crossing,
            counts,
            ..
        } => {
            e.line = Some(lines[*line].spec().name.clone());
            e.direction = Some(crossing.direction);
            e.track_id = Some(crossing.track_id);
            e.bbox = Some(crossing.bbox.to_array());
            e.score = Some(crossing.score);
            e.counts = Some((*counts).into());
            if let Finding::NoMask { .. } = f {
                e.mask = Some(MaskVerdict::NoMask);
            }
        }
        Finding::Zone(a) => {
            e.zone = Some(a.zone.clone());
            e.track_id = a.track_id;
            e.bbox = Some(a.bbox.to_array());
            e.score = Some(a.score);
        }
    }
    e
}

/// How often the worker copies its figures out for readers (bench, later /metrics).
pub(super) const PUBLISH_EVERY: Duration = Duration::from_secs(2);

/// Copy the figures out every few seconds and log them once a minute, never per frame.
pub(super) fn publish_figures(
    cams: &mut [CamState],
    figures: &Mutex<HashMap<String, CameraFigures>>,
    last_publish: &mut Instant,
    last_log: &mut Instant,
) {
    if last_publish.elapsed() >= PUBLISH_EVERY {
        let now = Instant::now();
        *last_publish = now;
        if let Ok(mut f) = figures.lock() {
            for c in cams.iter_mut() {
                let delivered = c.slot.stats.frames_delivered.load(Ordering::Relaxed);
                let fig = &mut c.figures;
                if let Some((then, d0, a0)) = fig.rate_mark {
                    let dt = now.duration_since(then).as_secs_f64().max(1e-3);
                    fig.delivered_fps = delivered.saturating_sub(d0) as f64 / dt;
                    fig.analysed_fps = fig.analysed.saturating_sub(a0) as f64 / dt;
                }
                fig.rate_mark = Some((now, delivered, fig.analysed));
                if c.gate {
                    if let Some(change) = c.keep_up.judge(now, delivered, fig.analysed) {
                        keep_up::log_change(&c.id, change);
                    }
                    fig.behind = c.keep_up.behind();
                }
                f.insert(c.id.clone(), fig.clone());
            }
        }
    }
    if last_log.elapsed() >= Duration::from_secs(60) {
        *last_log = Instant::now();
        log_figures(cams);
    }
}

pub(super) fn log_figures(cams: &[CamState]) {
    for c in cams {
        let s = &c.slot.stats;
        tracing::info!(
            camera = %c.id,
            delivered = s.frames_delivered.load(Ordering::Relaxed),
            dropped = s.frames_dropped.load(Ordering::Relaxed),
            reconnects = s.reconnects.load(Ordering::Relaxed),
            analysed = c.figures.analysed,
            skipped_still = c.figures.skipped_still,
            inference_ms = c.figures.inference.as_secs_f64() * 1000.0 / c.figures.analysed.max(1) as f64,
            face_looks = c.figures.face_looks,
            face_ms = c.figures.face_time.as_secs_f64() * 1000.0 / c.figures.face_looks.max(1) as f64,
            face_errors = c.figures.face_errors,
            inference_errors = c.figures.inference_errors,
            offline = s.offline.load(Ordering::Relaxed),
            alerts_suppressed = c.figures.alerts_suppressed,
            "camera figures"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::detect::Face;
    use crate::events::{EventKind, Severity};
    use crate::geometry::BBox;
    use crate::geometry::Point;
    use crate::rules::Direction;
    use crate::track::Track;
    use chrono::NaiveTime;
    use std::path::Path;
    use std::sync::mpsc::sync_channel;

    const CONFIG: &str = r#"
[site]
id = "test"
timezone = "UTC"
[alerts]
cooldown_seconds = 5
[alerts.severity]
loitering = "alert"
[[cameras]]
id = "gate-1"
url = "rtsp://127.0.0.1:1/cam01"
role = "gate"
  [[cameras.lines]]
  name = "gapura"
  points = [[300, 0], [300, 400]]
  curfew = "22:00-04:00"
[[cameras]]
id = "yard"
url = "rtsp://127.0.0.1:1/cam02"
  [[cameras.zones]]
  name = "gudang"
  polygon = [[100, 100], [300, 100], [300, 300], [100, 300]]
  [[cameras.zones]]
  name = "pos"
  kind = "loiter"
  loiter_seconds = 2
  polygon = [[400, 100], [500, 100], [500, 300], [400, 300]]
  [[cameras.zones]]
  name = "halaman"
  kind = "crowd"
  max_people = 1
  polygon = [[0, 0], [600, 0], [600, 400], [0, 400]]
"#;

    /// One camera's chain fed by hand, as the worker feeds it, events collected.
    struct Harness {
        camera: String,
        rules: CameraChain,
        site: EventSite,
        figures: CameraFigures,
        tx: Events,
        rx: Receiver<Raised>,
        frame: u64,
    }

    impl Harness {
        fn new(camera: &str) -> Self {
            let settings = Settings::parse(CONFIG, Path::new("test.toml")).unwrap();
            let c = settings.camera(camera).unwrap();
            let (tx, rx) = sync_channel(1024);
            let tx = Events {
                tx,
                waiting: Arc::default(),
            };
            Self {
                camera: camera.into(),
                rules: fresh_chain(c, &settings, true),
                site: EventSite {
                    id: settings.site.id.clone(),
                    timezone: settings.site.timezone,
                    severities: settings.alerts.severities,
                },
                figures: CameraFigures::default(),
                tx,
                rx,
                frame: 0,
            }
        }

        /// One analysed frame at `now` with these tracks (as the tracker gave them); every
        /// face looked at shows `face` (if any).
        fn step(
            &mut self,
            now: f64,
            local: NaiveTime,
            tracks: &[Track],
            face: Option<MaskVerdict>,
        ) -> Vec<Event> {
            self.frame += 1;
            let at = Moment {
                frame: self.frame,
                t: now,
                utc: chrono::Utc::now(),
                local,
            };
            self.rules.set_tracks(tracks);
            for (id, b) in self.rules.faces_wanted(&at).to_vec() {
                let faces: Vec<Face> = face
                    .map(|v| Face {
                        bbox: BBox::new(b.x1, b.y1, b.x1 + 10.0, b.y1 + 10.0),
                        score: 0.9,
                        landmarks: [Point::default(); 5],
                        mask: Some((v, 0.9)),
                    })
                    .into_iter()
                    .collect();
                self.rules.record_faces(id, &at, &faces);
            }
            let mut emit = Emit {
                tx: &self.tx,
                picture: None,
                figures: &mut self.figures,
                arrived: Instant::now(),
                size: (10_000.0, 10_000.0),
            };
            for f in self.rules.judge(&at).to_vec() {
                let e = finding_event(&f, &self.camera, &self.rules.lines, &self.site, at.utc);
                assert!(emit.send_marked(e, None));
            }
            self.rx.try_iter().map(|r| r.event).collect()
        }
    }

    fn person(id: u64, x: f32, y: f32) -> Track {
        Track {
            id,
            bbox: BBox::new(x - 20.0, y - 100.0, x + 20.0, y),
            score: 0.8,
            hits: 10,
            age: 10,
            misses: 0,
            confirmed: true,
            moved: true,
            best_score: 0.8,
        }
    }

    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    /// Person `id` walks across the gate line (x = 300) from x0 to x1 in 8 frames at 5 fps,
    /// starting at `t0`; the events of the walk.
    fn walk(
        h: &mut Harness,
        id: u64,
        t0: f64,
        (x0, x1): (f32, f32),
        local: NaiveTime,
        face: Option<MaskVerdict>,
    ) -> Vec<Event> {
        let mut out = Vec::new();
        for k in 0..8 {
            let x = x0 + (x1 - x0) * k as f32 / 7.0;
            out.extend(h.step(t0 + k as f64 * 0.2, local, &[person(id, x, 200.0)], face));
        }
        out
    }

    fn kinds(events: &[Event]) -> Vec<EventKind> {
        events.iter().map(|e| e.kind).collect()
    }

    #[test]
    fn an_entry_during_the_curfew_without_a_mask_raises_both_alerts_once_per_cooldown() {
        let mut h = Harness::new("gate-1");
        assert!(
            h.rules.masks.is_some(),
            "a gate camera checks masks by default"
        );
        let night = hm(23, 0);
        let no = Some(MaskVerdict::NoMask);
        // in (right to left), at 23:00, seen without a mask
        let ev = walk(&mut h, 7, 0.0, (440.0, 160.0), night, no);
        use EventKind::*;
        assert_eq!(kinds(&ev), vec![LineCrossing, CurfewEntry, NoMask]);
        for e in &ev {
            assert_eq!(e.camera, "gate-1");
            assert_eq!(e.line.as_deref(), Some("gapura"));
            assert_eq!(e.direction, Some(Direction::In));
            assert_eq!(e.track_id, Some(7));
            assert!(e.bbox.is_some() && e.score.is_some());
            assert_eq!(e.counts.map(|c| c.in_), Some(1));
        }
        assert_eq!(ev[0].severity, Severity::Info);
        assert_eq!(ev[1].severity, Severity::Alert);
        assert_eq!((ev[2].severity, ev[2].mask), (Severity::Alert, no));
        assert_eq!(ev[0].mask, None);
        // out again: counted, no alert; back in within the cooldown: counted, alerts held back
        assert_eq!(
            kinds(&walk(&mut h, 7, 1.6, (160.0, 440.0), night, no)),
            vec![LineCrossing]
        );
        assert_eq!(
            kinds(&walk(&mut h, 7, 3.2, (440.0, 160.0), night, no)),
            vec![LineCrossing]
        );
        assert_eq!(h.rules.suppressed, 2);
        // another person is another incident
        let ev = walk(&mut h, 8, 4.8, (440.0, 160.0), night, no);
        assert_eq!(kinds(&ev), vec![LineCrossing, CurfewEntry, NoMask]);
        // the first one again after the cooldown: alerts again
        walk(&mut h, 7, 6.4, (160.0, 440.0), night, no);
        let ev = walk(&mut h, 7, 8.0, (440.0, 160.0), night, no);
        assert_eq!(kinds(&ev), vec![LineCrossing, CurfewEntry, NoMask]);
    }

    #[test]
    fn no_alert_by_day_with_a_mask_or_without_a_face() {
        let mut h = Harness::new("gate-1");
        let day = hm(12, 0);
        // by day without a mask: no curfew entry, but no_mask
        let ev = walk(
            &mut h,
            1,
            0.0,
            (440.0, 160.0),
            day,
            Some(MaskVerdict::NoMask),
        );
        use EventKind::*;
        assert_eq!(kinds(&ev), vec![LineCrossing, NoMask]);
        // at night with a mask, or no face seen: only the curfew
        let ev = walk(
            &mut h,
            2,
            2.0,
            (440.0, 160.0),
            hm(1, 0),
            Some(MaskVerdict::Mask),
        );
        assert_eq!(kinds(&ev), vec![LineCrossing, CurfewEntry]);
        let ev = walk(&mut h, 3, 4.0, (440.0, 160.0), hm(1, 0), None);
        assert_eq!(kinds(&ev), vec![LineCrossing, CurfewEntry]);
        // leaving is never an alert
        let ev = walk(
            &mut h,
            4,
            6.0,
            (160.0, 440.0),
            hm(1, 0),
            Some(MaskVerdict::NoMask),
        );
        assert_eq!(kinds(&ev), vec![LineCrossing]);
        assert_eq!(ev[0].direction, Some(Direction::Out));
    }

    #[test]
    fn without_faces_loaded_there_is_no_mask_watch_and_no_no_mask() {
        let settings = Settings::parse(CONFIG, Path::new("test.toml")).unwrap();
        let rules = fresh_chain(settings.camera("gate-1").unwrap(), &settings, false);
        assert!(rules.masks.is_none());
        let yard = fresh_chain(settings.camera("yard").unwrap(), &settings, true);
        assert!(yard.masks.is_none(), "an area camera checks no masks");
        assert_eq!((yard.lines.len(), yard.zones.len()), (0, 3));
    }

    #[test]
    fn zone_alerts_carry_zone_track_box_and_the_configured_severity() {
        let mut h = Harness::new("yard");
        let noon = hm(12, 0);
        use EventKind::*;
        // one person walks into the restricted zone: an intrusion about them
        let mut ev = Vec::new();
        for k in 0..10 {
            let x = 20.0 + 20.0 * k as f32;
            ev.extend(h.step(k as f64 * 0.2, noon, &[person(1, x, 200.0)], None));
        }
        assert_eq!(kinds(&ev), vec![Intrusion]);
        let e = &ev[0];
        assert_eq!(e.zone.as_deref(), Some("gudang"));
        assert_eq!(
            (e.track_id, e.severity, e.line.as_deref()),
            (Some(1), Severity::Alert, None)
        );
        assert!(e.bbox.is_some_and(|b| b[3] == 200.0) && e.score == Some(0.8));
        // a second person in the yard: a crowd (about the group: no track)
        let ev = h.step(
            2.0,
            noon,
            &[person(1, 200.0, 200.0), person(2, 550.0, 350.0)],
            None,
        );
        assert_eq!(kinds(&ev), vec![Crowding]);
        assert_eq!(
            (ev[0].zone.as_deref(), ev[0].track_id, ev[0].severity),
            (Some("halaman"), None, Severity::Warning)
        );
        let b = ev[0].bbox.unwrap();
        assert!(b[0] <= 180.0 && b[2] >= 570.0, "{b:?}");
        // the second person stays at the post for 2 s: loitering, with the severity from
        // [alerts.severity] (alert instead of warning)
        let mut ev = Vec::new();
        for k in 0..15 {
            let now = 2.2 + k as f64 * 0.2;
            ev.extend(h.step(
                now,
                noon,
                &[person(1, 200.0, 200.0), person(2, 450.0, 200.0)],
                None,
            ));
        }
        assert_eq!(kinds(&ev), vec![Loitering]);
        assert_eq!(
            (ev[0].zone.as_deref(), ev[0].track_id, ev[0].severity),
            (Some("pos"), Some(2), Severity::Alert)
        );
    }
}
