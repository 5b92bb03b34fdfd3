//! The per-camera chain: one frame's person detections and the moment they were seen go in;
//! tracks and findings (crossings, curfew entries, no-mask entries, zone alerts) come out.
//!
//! This is the one place where tracking, lines, zones, the mask watch and the alert rules run
//! together. `ronda run` (live, `app`) and `ronda analyze` (a file) both drive it, so what the
//! analysis of a recording says is what the live pipeline would have said of the same pictures
//! at the same times. Pure: no I/O, no clock (time comes in with each frame, from the stream's
//! timestamps), no detector (faces the mask watch wants are asked for, looked up by the caller
//! and handed back).
//!
//! A frame is three calls: [`CameraChain::track`], then, if a line checks masks,
//! [`CameraChain::faces_wanted`] / [`CameraChain::record_faces`], then [`CameraChain::judge`].

use chrono::{DateTime, NaiveTime, Utc};

use crate::detect::{Detection, Face};
use crate::events::EventKind;
use crate::geometry::BBox;
use crate::rules::{
    AlertKey, Cooldown, Counts, Crossing, LineCounter, LineRules, Look, MaskWatch, Tick, ZoneAlert,
    ZoneWatch,
};
use crate::track::{Track, Tracker};

/// When a frame was seen.
#[derive(Clone, Copy, Debug)]
pub struct Moment {
    /// The frame's index in the stream (files: from 0; cameras: a running counter).
    pub frame: u64,
    /// Seconds on the stream's own clock (monotonic within a chain): durations, cooldown,
    /// hysteresis.
    pub t: f64,
    /// Wall-clock time of the frame: event times.
    pub utc: DateTime<Utc>,
    /// The site's local time of day: curfew and active windows.
    pub local: NaiveTime,
}

impl Moment {
    fn tick(&self) -> Tick {
        Tick::new(self.frame, self.t)
    }
}

/// What a frame's tracks amount to. Each finding becomes one event.
#[derive(Clone, Debug, PartialEq)]
pub enum Finding {
    /// A counted crossing of line `line` (index into [`CameraChain::lines`]), with the line's
    /// counts after it and the mask verdict on that person when the mask watch has one.
    Crossing {
        line: usize,
        crossing: Crossing,
        counts: Counts,
        look: Option<Look>,
    },
    /// An entry across `line` during its curfew window (passed the cooldown).
    CurfewEntry {
        line: usize,
        crossing: Crossing,
        counts: Counts,
    },
    /// An entry across `line` by a person whose face was seen without a mask (passed the
    /// cooldown).
    NoMask {
        line: usize,
        crossing: Crossing,
        counts: Counts,
        look: Look,
    },
    /// An intrusion, loitering or crowding alert (passed the cooldown).
    Zone(ZoneAlert),
}

impl Finding {
    pub fn kind(&self) -> EventKind {
        match self {
            Finding::Crossing { .. } => EventKind::LineCrossing,
            Finding::CurfewEntry { .. } => EventKind::CurfewEntry,
            Finding::NoMask { .. } => EventKind::NoMask,
            Finding::Zone(z) => z.kind.event_kind(),
        }
    }
}

/// The rules and the tracker of one camera.
pub struct CameraChain {
    camera: String,
    pub tracker: Tracker,
    /// The counting lines, in the configured order.
    pub lines: Vec<LineCounter>,
    /// Since when each line's counts run (the last daily reset); same order as `lines`.
    pub since: Vec<DateTime<Utc>>,
    /// The alert rules of each line (same order as `lines`).
    pub line_rules: Vec<LineRules>,
    pub zones: Vec<ZoneWatch>,
    /// Face bookkeeping, when a line of this camera checks masks (and faces are loaded).
    pub masks: Option<MaskWatch>,
    cooldown: Cooldown,
    /// Alerts held back by the cooldown (the same incident again), for the camera's figures.
    pub suppressed: u64,
    tracks: Vec<Track>,
    looks: Vec<(u64, BBox)>,
    crossings: Vec<Crossing>,
    zone_alerts: Vec<ZoneAlert>,
    findings: Vec<Finding>,
}

impl CameraChain {
    pub fn new(camera: impl Into<String>, tracker: Tracker, cooldown: Cooldown) -> Self {
        Self {
            camera: camera.into(),
            tracker,
            lines: Vec::new(),
            since: Vec::new(),
            line_rules: Vec::new(),
            zones: Vec::new(),
            masks: None,
            cooldown,
            suppressed: 0,
            tracks: Vec::with_capacity(64),
            looks: Vec::with_capacity(8),
            crossings: Vec::with_capacity(8),
            zone_alerts: Vec::with_capacity(8),
            findings: Vec::with_capacity(8),
        }
    }

    /// Add a counting line with its rules, counting from `counts` since `since`.
    pub fn add_line(&mut self, counter: LineCounter, rules: LineRules, since: DateTime<Utc>) {
        self.lines.push(counter);
        self.line_rules.push(rules);
        self.since.push(since);
    }

    /// Carry on from `old`, the chain this one replaces (new rules applied live): the tracker
    /// (who is being followed, under which id), the cooldown and the last tracks go on.
    pub fn continue_from(&mut self, old: CameraChain) {
        self.tracker = old.tracker;
        self.cooldown = old.cooldown;
        self.suppressed = old.suppressed;
        self.tracks = old.tracks;
    }

    pub fn camera(&self) -> &str {
        &self.camera
    }

    /// The tracks of the last frame.
    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    /// Follow this frame's detections; returns the tracks (tentative ones too).
    pub fn track(&mut self, at: &Moment, detections: &[Detection]) -> &[Track] {
        let tracks = self.tracker.update_at(at.t, detections);
        self.tracks.clear();
        self.tracks.extend_from_slice(tracks);
        &self.tracks
    }

    /// Take these tracks as the tracker's output for this frame (tests of the rules alone).
    #[cfg(test)]
    pub fn set_tracks(&mut self, tracks: &[Track]) {
        self.tracks.clear();
        self.tracks.extend_from_slice(tracks);
    }

    /// The people whose heads the mask watch wants looked at in this frame (id, person box);
    /// empty when no line checks masks.
    pub fn faces_wanted(&mut self, at: &Moment) -> &[(u64, BBox)] {
        self.looks.clear();
        if let Some(m) = &mut self.masks {
            m.update(at.t, &self.tracks, &mut self.looks);
        }
        &self.looks
    }

    /// The faces found in person `id`'s head region.
    pub fn record_faces(&mut self, id: u64, at: &Moment, faces: &[Face]) {
        if let Some(m) = &mut self.masks {
            m.record_faces(id, at.t, faces);
        }
    }

    /// Judge this frame's tracks: crossings, entries during the curfew or without a mask, zone
    /// alerts; alerts pass the cooldown.
    pub fn judge(&mut self, at: &Moment) -> &[Finding] {
        self.judge_lines(at, false);
        self.zone_alerts.clear();
        for z in &mut self.zones {
            z.update(at.t, at.local, &self.tracks, &mut self.zone_alerts);
        }
        for a in self.zone_alerts.drain(..) {
            let mut key = AlertKey::new(&self.camera, a.kind.event_kind()).place(&a.zone);
            if let Some(id) = a.track_id {
                key = key.track(id);
            }
            if allow(&mut self.cooldown, &mut self.suppressed, &key, at.t) {
                self.findings.push(Finding::Zone(a));
            }
        }
        &self.findings
    }

    /// The stream ended (end of a file): the people still followed are settled (a person last
    /// seen past a line counts, see `rules::line`); their crossings are judged as any other.
    pub fn finish(&mut self, at: &Moment) -> &[Finding] {
        self.judge_lines(at, true);
        &self.findings
    }

    /// Count this frame's crossings (or, with `flush`, settle everyone) and judge them.
    fn judge_lines(&mut self, at: &Moment, flush: bool) {
        self.findings.clear();
        for (li, (line, rules)) in self.lines.iter_mut().zip(&self.line_rules).enumerate() {
            self.crossings.clear();
            if flush {
                line.flush(&mut self.crossings);
            } else {
                line.update(at.tick(), &self.tracks, &mut self.crossings);
            }
            let name = &line.spec().name;
            let counts = line.counts();
            for &c in &self.crossings {
                let look = self
                    .masks
                    .as_ref()
                    .and_then(|m| m.verdict(c.track_id, at.t));
                self.findings.push(Finding::Crossing {
                    line: li,
                    crossing: c,
                    counts,
                    look,
                });
                if rules.curfew_entry(&c, at.local) {
                    let key = AlertKey::new(&self.camera, EventKind::CurfewEntry)
                        .place(name)
                        .track(c.track_id);
                    if allow(&mut self.cooldown, &mut self.suppressed, &key, at.t) {
                        self.findings.push(Finding::CurfewEntry {
                            line: li,
                            crossing: c,
                            counts,
                        });
                    }
                }
                if let Some(look) = look
                    && rules.no_mask(&c, Some(look.verdict))
                {
                    let key = AlertKey::new(&self.camera, EventKind::NoMask)
                        .place(name)
                        .track(c.track_id);
                    if allow(&mut self.cooldown, &mut self.suppressed, &key, at.t) {
                        self.findings.push(Finding::NoMask {
                            line: li,
                            crossing: c,
                            counts,
                            look,
                        });
                    }
                }
            }
        }
    }
}

/// Is this alert new, or the same incident again within the cooldown (counted, not raised)?
fn allow(cooldown: &mut Cooldown, suppressed: &mut u64, key: &AlertKey, now: f64) -> bool {
    let ok = cooldown.allow(key, now);
    if !ok {
        *suppressed += 1;
        tracing::debug!(camera = %key.camera, kind = ?key.kind, place = ?key.place, track = ?key.track_id, "alert within the cooldown");
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{Point, Polygon};
    use crate::rules::{ZoneKind, ZoneSpec};
    use crate::track::TrackerParams;

    fn at(frame: u64) -> Moment {
        Moment {
            frame,
            t: frame as f64 * 0.2,
            utc: Utc::now(),
            local: NaiveTime::from_hms_opt(23, 30, 0).unwrap(),
        }
    }

    /// Zone alerts come from people the detector found, never from motion alone: the chain
    /// has no input for motion at all, and a camera whose motion gate woke the detector
    /// picture after picture (an insect, a headlight, rain) while it found nobody raises
    /// nothing; the first person found in the zone does.
    #[test]
    fn a_zone_alert_needs_a_person_detected_not_motion() {
        let mut chain = CameraChain::new(
            "halaman",
            Tracker::new(TrackerParams::default()),
            Cooldown::new(std::time::Duration::from_secs(60)),
        );
        let whole = Polygon::new(vec![
            Point::new(0.0, 0.0),
            Point::new(640.0, 0.0),
            Point::new(640.0, 360.0),
            Point::new(0.0, 360.0),
        ]);
        chain.zones.push(ZoneWatch::new(ZoneSpec::new(
            "halaman",
            whole,
            ZoneKind::Restricted,
        )));
        // a hundred pictures the motion gate passed (something moved), nobody in them
        for f in 0..100 {
            chain.track(&at(f), &[]);
            assert!(chain.judge(&at(f)).is_empty(), "picture {f}");
        }
        // then someone walks in (a zone wants someone who moved: half their height, 90 px,
        // here after 23 pictures)
        let mut alerts = 0;
        for f in 100..140 {
            let x = 200.0 + (f - 100) as f32 * 4.0;
            let person = Detection {
                bbox: BBox::new(x, 150.0, x + 40.0, 330.0),
                score: 0.8,
                class: crate::detect::PERSON,
            };
            chain.track(&at(f), &[person]);
            alerts += chain
                .judge(&at(f))
                .iter()
                .filter(|f| matches!(f, Finding::Zone(_)))
                .count();
        }
        assert_eq!(alerts, 1);
    }
}
