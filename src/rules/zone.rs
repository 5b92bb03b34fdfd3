//! Zones: areas of a camera picture where being inside is itself the fact (DESIGN.md "rules").
//!
//! A [`ZoneWatch`] follows the confirmed tracks of one camera against one polygon and raises:
//! - `intrusion` (restricted zone): once per stay of a person inside;
//! - `loitering` (loiter zone): once per stay that lasts `loiter_seconds`;
//! - `crowding` (crowd zone): once when more than `max_people` are inside together, again only
//!   after the count has stayed at or below `max_people` for `crowd_rearm_seconds`.
//!
//! `active`, when set, limits every kind of zone to a daily window. A stay that began before the
//! window opened is judged when it opens (someone still in the warehouse at 22:00 is an intruder
//! at 22:00), but never twice.
//!
//! A person is inside when the tracked reference point (the feet, by default) is inside the
//! polygon. Entering takes one sighting; leaving takes being seen outside for both
//! `leave_frames` sightings and `leave_seconds` in a row. That hysteresis is what keeps a person
//! standing on the border, whose box jitters across it, in one stay: no repeated alerts, and the
//! loiter timer keeps running. Only confirmed tracks count (a flicker is not a person), and only
//! observed positions move a person in or out: a coasting prediction can drift across a border
//! nobody crossed, so while a track coasts it keeps the state it had (an occluded loiterer is
//! still loitering, a hidden member of a crowd still counts).
//!
//! Per-track state is dropped as soon as the tracker stops reporting the track (the tracker
//! already keeps an occluded person alive for `max_misses` frames), so memory is bounded by the
//! number of people in view. Time is passed in: `now` in monotonic seconds for durations, the
//! site's local time of day for `active`.

use std::collections::HashMap;

use chrono::NaiveTime;

use crate::events::{EventKind, UnknownName};
use crate::geometry::{BBox, Polygon};
use crate::track::Track;

use super::alert::Window;
use super::line::Anchor;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneKind {
    /// Nobody may be inside (during `active`, or always): `intrusion`.
    Restricted,
    /// Staying longer than `loiter_seconds`: `loitering`.
    Loiter,
    /// More than `max_people` at once: `crowding`.
    Crowd,
}

impl ZoneKind {
    /// The names in the file (`kind = "..."`), the API and the pages.
    pub const NAMES: [&'static str; 3] = ["restricted", "loiter", "crowd"];

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl std::str::FromStr for ZoneKind {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        [ZoneKind::Restricted, ZoneKind::Loiter, ZoneKind::Crowd]
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownName(s.to_string()))
    }
}

/// A zone as the rules see it (built from the config with `config::Zone::spec`).
#[derive(Clone, Debug, PartialEq)]
pub struct ZoneSpec {
    pub name: String,
    pub polygon: Polygon,
    pub kind: ZoneKind,
    /// The daily window in which the zone raises alerts; `None`: always.
    pub active: Option<Window>,
    /// Loiter zones: how long a stay may last before it is loitering.
    pub loiter_seconds: f64,
    /// Crowd zones: the most people allowed inside at once.
    pub max_people: u32,
    /// The point of a person's box that must be inside (default: the feet).
    pub anchor: Anchor,
}

impl ZoneSpec {
    /// A zone active at all times, with the config defaults for the thresholds.
    pub fn new(name: impl Into<String>, polygon: Polygon, kind: ZoneKind) -> Self {
        Self {
            name: name.into(),
            polygon,
            kind,
            active: None,
            loiter_seconds: 60.0,
            max_people: 5,
            anchor: Anchor::default(),
        }
    }
}

/// Timing of the hysteresis. The defaults suit analysis rates from 1 to 30 fps.
#[derive(Clone, Debug, PartialEq)]
pub struct ZoneParams {
    /// A person leaves only after being seen outside for this long...
    pub leave_seconds: f64,
    /// ...and this many sightings in a row (so one bad box at 1 fps is not a departure).
    pub leave_frames: u32,
    /// A crowd alert re-arms once the count stayed at or below `max_people` this long.
    pub crowd_rearm_seconds: f64,
}

impl Default for ZoneParams {
    fn default() -> Self {
        Self {
            leave_seconds: 1.0,
            leave_frames: 2,
            crowd_rearm_seconds: 5.0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneAlertKind {
    Intrusion,
    Loitering,
    Crowding,
}

impl ZoneAlertKind {
    pub fn event_kind(&self) -> EventKind {
        match self {
            ZoneAlertKind::Intrusion => EventKind::Intrusion,
            ZoneAlertKind::Loitering => EventKind::Loitering,
            ZoneAlertKind::Crowding => EventKind::Crowding,
        }
    }
}

/// One zone alert.
#[derive(Clone, Debug, PartialEq)]
pub struct ZoneAlert {
    pub kind: ZoneAlertKind,
    pub zone: String,
    /// The person (intrusion, loitering); `None` for crowding, which is about the group.
    pub track_id: Option<u64>,
    /// The person's box; for crowding, the box around everyone inside (frames the snapshot).
    pub bbox: BBox,
    /// The person's detection score; for crowding, the mean over the people inside.
    pub score: f32,
    /// People inside the zone at that moment.
    pub people: usize,
}

/// What the watch knows about one confirmed track.
#[derive(Clone, Copy, Debug)]
struct Presence {
    /// In a stay (entered, not yet left by the hysteresis).
    inside: bool,
    /// When the current stay began (`now` of the first sighting inside).
    entered_at: f64,
    /// First sighting outside while still `inside`, and how many in a row.
    outside_since: Option<f64>,
    outside_frames: u32,
    /// Alerts already raised for the current stay.
    intrusion_sent: bool,
    loiter_sent: bool,
    /// Reported by the tracker in this update (the rest are forgotten).
    seen: bool,
}

impl Presence {
    fn new() -> Self {
        Self {
            inside: false,
            entered_at: 0.0,
            outside_since: None,
            outside_frames: 0,
            intrusion_sent: false,
            loiter_sent: false,
            seen: true,
        }
    }
}

/// Watches one zone of one camera.
pub struct ZoneWatch {
    spec: ZoneSpec,
    params: ZoneParams,
    /// Per confirmed track id reported in the last update.
    tracks: HashMap<u64, Presence>,
    /// Confirmed people in a stay, as of the last update.
    people: usize,
    /// A crowding alert may be raised (cleared by one, set again after a calm spell).
    crowd_armed: bool,
    /// Since when the count has been at or below `max_people` (crowd re-arm).
    calm_since: Option<f64>,
}

impl ZoneWatch {
    pub fn new(spec: ZoneSpec) -> Self {
        Self::with_params(spec, ZoneParams::default())
    }

    fn with_params(spec: ZoneSpec, params: ZoneParams) -> Self {
        Self {
            spec,
            params,
            tracks: HashMap::with_capacity(16),
            people: 0,
            crowd_armed: true,
            calm_since: None,
        }
    }

    pub fn spec(&self) -> &ZoneSpec {
        &self.spec
    }

    pub fn params(&self) -> &ZoneParams {
        &self.params
    }

    /// Confirmed people inside the zone as of the last update.
    pub fn people(&self) -> usize {
        self.people
    }

    /// How many tracks the watch holds state for (bounded by the tracks in view).
    pub fn tracked(&self) -> usize {
        self.tracks.len()
    }

    /// Replace the zone live (admin edit). Everything known about the people in view is kept:
    /// a moved polygon is applied through the same hysteresis as a walk (someone now outside
    /// leaves after `leave_seconds`, someone now inside enters and is judged by the new rule),
    /// nobody already alerted for this stay is alerted again, and a longer or shorter
    /// `loiter_seconds` applies to stays under way.
    pub fn set_spec(&mut self, spec: ZoneSpec) {
        self.spec = spec;
    }

    pub fn set_params(&mut self, params: ZoneParams) {
        self.params = params;
    }

    /// Feed the tracks of one analysed frame (as returned by the tracker) seen at `now`
    /// (monotonic seconds) and `local_time` (the site's time of day); alerts raised are appended
    /// to `out`, in the tracker's order.
    pub fn update(
        &mut self,
        now: f64,
        local_time: NaiveTime,
        tracks: &[Track],
        out: &mut Vec<ZoneAlert>,
    ) {
        for p in self.tracks.values_mut() {
            p.seen = false;
        }
        // a thing in the background that the detector half believes to be a person (a sack, a
        // sign) is tracked, but never walks in, loiters or makes a crowd: in a zone is someone
        // the detector was sure of once, or who moved (`Track::moved`)
        for tr in tracks.iter().filter(|t| t.confirmed && is_someone(t)) {
            let st = self.tracks.entry(tr.id).or_insert_with(Presence::new);
            st.seen = true;
            if tr.misses > 0 {
                continue; // coasting: a prediction, not a sighting
            }
            let here = self.spec.polygon.contains(self.spec.anchor.point(&tr.bbox));
            step(st, here, now, &self.params);
        }
        // a track the tracker no longer reports is gone for good: its id is never reused
        self.tracks.retain(|_, p| p.seen);

        self.people = self.tracks.values().filter(|p| p.inside).count();
        let active = self.spec.active.is_none_or(|w| w.contains(local_time));
        match self.spec.kind {
            ZoneKind::Restricted => self.judge_stays(now, active, tracks, out, |_, p| {
                (!p.intrusion_sent).then(|| {
                    p.intrusion_sent = true;
                    ZoneAlertKind::Intrusion
                })
            }),
            ZoneKind::Loiter => {
                let limit = self.spec.loiter_seconds;
                self.judge_stays(now, active, tracks, out, |now, p| {
                    (!p.loiter_sent && now - p.entered_at >= limit).then(|| {
                        p.loiter_sent = true;
                        ZoneAlertKind::Loitering
                    })
                })
            }
            ZoneKind::Crowd => self.judge_crowd(now, active, tracks, out),
        }
    }

    /// Per-person rules: `rule` decides (and records) an alert for a person in a stay.
    fn judge_stays(
        &mut self,
        now: f64,
        active: bool,
        tracks: &[Track],
        out: &mut Vec<ZoneAlert>,
        mut rule: impl FnMut(f64, &mut Presence) -> Option<ZoneAlertKind>,
    ) {
        if !active {
            return;
        }
        // the tracker's order, not the map's: alerts of one frame come out deterministically
        // only on a sighting: a coasting track's box is a guess (for someone who walked out of
        // the picture it may lie outside it); its timer runs on and the alert comes when the
        // person is seen again
        for tr in tracks.iter().filter(|t| t.confirmed && t.misses == 0) {
            let Some(p) = self.tracks.get_mut(&tr.id) else {
                continue;
            };
            if !p.inside {
                continue;
            }
            if let Some(kind) = rule(now, p) {
                out.push(ZoneAlert {
                    kind,
                    zone: self.spec.name.clone(),
                    track_id: Some(tr.id),
                    bbox: tr.bbox,
                    score: tr.score,
                    people: self.people,
                });
            }
        }
    }

    fn judge_crowd(&mut self, now: f64, active: bool, tracks: &[Track], out: &mut Vec<ZoneAlert>) {
        if self.people <= self.spec.max_people as usize {
            let since = *self.calm_since.get_or_insert(now);
            if !self.crowd_armed && now - since >= self.params.crowd_rearm_seconds {
                self.crowd_armed = true;
            }
            return;
        }
        self.calm_since = None;
        if !(self.crowd_armed && active) {
            return;
        }
        self.crowd_armed = false;
        let mut around: Option<BBox> = None;
        let mut score = 0.0f32;
        let mut n = 0usize;
        for tr in tracks.iter().filter(|t| t.confirmed) {
            if !self.tracks.get(&tr.id).is_some_and(|p| p.inside) {
                continue;
            }
            let b = tr.bbox;
            around = Some(around.map_or(b, |a| {
                BBox::new(
                    a.x1.min(b.x1),
                    a.y1.min(b.y1),
                    a.x2.max(b.x2),
                    a.y2.max(b.y2),
                )
            }));
            score += tr.score;
            n += 1;
        }
        out.push(ZoneAlert {
            kind: ZoneAlertKind::Crowding,
            zone: self.spec.name.clone(),
            track_id: None,
            bbox: around.unwrap_or_default(),
            score: if n == 0 { 0.0 } else { score / n as f32 },
            people: self.people,
        });
    }
}

/// A detection this sure is a person in a zone at once; a weaker one once its track moved.
/// Things in the background that the detector takes for people score 0.3-0.4 (measured in the
/// demo's footage); people in plain view 0.5-0.9.
pub const SURE_SCORE: f32 = 0.5;

/// A track a zone takes for a person: sure of once, or seen to move.
fn is_someone(t: &Track) -> bool {
    t.moved || t.best_score >= SURE_SCORE
}

/// One sighting of a person, `here` inside the polygon or not: the in/out hysteresis.
fn step(p: &mut Presence, here: bool, now: f64, params: &ZoneParams) {
    if here {
        p.outside_since = None;
        p.outside_frames = 0;
        if !p.inside {
            // a new stay: its own alerts and its own loiter timer
            p.inside = true;
            p.entered_at = now;
            p.intrusion_sent = false;
            p.loiter_sent = false;
        }
    } else if p.inside {
        p.outside_frames += 1;
        let since = *p.outside_since.get_or_insert(now);
        if p.outside_frames >= params.leave_frames.max(1) && now - since >= params.leave_seconds {
            p.inside = false;
            p.outside_since = None;
            p.outside_frames = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::Point;
    use proptest::prelude::*;

    /// The square 100..300 x 100..300.
    fn square() -> Polygon {
        Polygon::new(vec![
            Point::new(100.0, 100.0),
            Point::new(300.0, 100.0),
            Point::new(300.0, 300.0),
            Point::new(100.0, 300.0),
        ])
    }

    fn zone(kind: ZoneKind) -> ZoneWatch {
        ZoneWatch::new(ZoneSpec::new("yard", square(), kind))
    }

    /// A confirmed track whose feet are at (x, y).
    fn person(id: u64, x: f32, y: f32) -> Track {
        Track {
            id,
            bbox: BBox::new(x - 15.0, y - 80.0, x + 15.0, y),
            score: 0.8,
            hits: 10,
            age: 10,
            misses: 0,
            confirmed: true,
            moved: true,
            best_score: 0.8,
        }
    }

    fn noon() -> NaiveTime {
        NaiveTime::from_hms_opt(12, 0, 0).unwrap()
    }

    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    /// Feed frames at `fps` starting at `t0`; each frame is the list of feet positions per id.
    fn run(
        z: &mut ZoneWatch,
        t0: f64,
        fps: f64,
        at: NaiveTime,
        frames: &[Vec<(u64, f32, f32)>],
    ) -> Vec<ZoneAlert> {
        let mut out = Vec::new();
        for (k, f) in frames.iter().enumerate() {
            let tracks: Vec<Track> = f.iter().map(|&(id, x, y)| person(id, x, y)).collect();
            z.update(t0 + k as f64 / fps, at, &tracks, &mut out);
        }
        out
    }

    /// One person walking from (x0, 200) to (x1, 200) in `n` frames.
    fn walk(id: u64, x0: f32, x1: f32, n: usize) -> Vec<Vec<(u64, f32, f32)>> {
        (0..n)
            .map(|k| vec![(id, x0 + (x1 - x0) * k as f32 / (n - 1) as f32, 200.0)])
            .collect()
    }

    #[test]
    fn walking_into_a_restricted_zone_is_one_intrusion() {
        let mut z = zone(ZoneKind::Restricted);
        let out = run(&mut z, 0.0, 5.0, noon(), &walk(7, 0.0, 400.0, 40));
        assert_eq!(out.len(), 1, "{out:?}");
        let a = &out[0];
        assert_eq!(a.kind, ZoneAlertKind::Intrusion);
        assert_eq!(a.kind.event_kind(), EventKind::Intrusion);
        assert_eq!(
            (a.zone.as_str(), a.track_id, a.people),
            ("yard", Some(7), 1)
        );
        assert!(a.bbox.bottom_center().x >= 100.0);
    }

    #[test]
    fn border_flapping_does_not_re_alert() {
        // feet jitter 3 px either side of the left edge x=100 for a minute at 10 fps
        let mut z = zone(ZoneKind::Restricted);
        let frames: Vec<_> = (0..600)
            .map(|k| vec![(1, if k % 2 == 0 { 103.0 } else { 97.0 }, 200.0)])
            .collect();
        let out = run(&mut z, 0.0, 10.0, noon(), &frames);
        assert_eq!(out.len(), 1, "{out:?}");
        // slower flapping too: two frames out, two in, at 2 fps (each spell outside < 1 s)
        let mut z = zone(ZoneKind::Restricted);
        let frames: Vec<_> = (0..200)
            .map(|k| vec![(1, if k % 4 < 2 { 103.0 } else { 97.0 }, 200.0)])
            .collect();
        let out = run(&mut z, 0.0, 2.0, noon(), &frames);
        assert_eq!(out.len(), 1, "{out:?}");
    }

    #[test]
    fn leaving_for_real_and_coming_back_is_a_new_intrusion() {
        let mut z = zone(ZoneKind::Restricted);
        let mut frames = walk(1, 50.0, 200.0, 10); // in
        frames.extend(walk(1, 200.0, 20.0, 10)); // out, and stays out for > 1 s
        frames.extend(std::iter::repeat_n(vec![(1, 20.0, 200.0)], 10));
        frames.extend(walk(1, 20.0, 200.0, 10)); // in again
        let out = run(&mut z, 0.0, 5.0, noon(), &frames);
        assert_eq!(out.len(), 2, "{out:?}");
    }

    #[test]
    fn restricted_zone_is_quiet_outside_its_active_window() {
        let spec = ZoneSpec {
            active: Some(Window {
                start: hm(22, 0),
                end: hm(4, 0),
            }),
            ..ZoneSpec::new("gudang", square(), ZoneKind::Restricted)
        };
        let frames = walk(1, 0.0, 200.0, 20);
        let mut z = ZoneWatch::new(spec.clone());
        assert!(run(&mut z, 0.0, 5.0, noon(), &frames).is_empty());
        for at in [hm(23, 30), hm(2, 0)] {
            let mut z = ZoneWatch::new(spec.clone());
            assert_eq!(run(&mut z, 0.0, 5.0, at, &frames).len(), 1, "at {at}");
        }
        // someone still inside when the window opens is an intruder then, once
        let mut z = ZoneWatch::new(spec);
        let inside = vec![vec![(1, 200.0, 200.0)]; 10];
        assert!(run(&mut z, 0.0, 5.0, hm(21, 59), &inside).is_empty());
        assert_eq!(run(&mut z, 10.0, 5.0, hm(22, 0), &inside).len(), 1);
        assert!(run(&mut z, 20.0, 5.0, hm(22, 1), &inside).is_empty());
    }

    #[test]
    fn loitering_once_per_stay_after_loiter_seconds() {
        let spec = ZoneSpec {
            loiter_seconds: 30.0,
            ..ZoneSpec::new("balai", square(), ZoneKind::Loiter)
        };
        let mut z = ZoneWatch::new(spec);
        let mut out = Vec::new();
        // 2 fps, standing inside for 60 s: one alert, at 30 s
        for k in 0..120 {
            let now = k as f64 * 0.5;
            z.update(now, noon(), &[person(3, 200.0, 200.0)], &mut out);
            if now < 30.0 {
                assert!(out.is_empty(), "early at {now}");
            }
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].kind, ZoneAlertKind::Loitering);
        assert_eq!(out[0].track_id, Some(3));
    }

    #[test]
    fn loiter_timer_resets_when_the_person_leaves() {
        let spec = ZoneSpec {
            loiter_seconds: 30.0,
            ..ZoneSpec::new("balai", square(), ZoneKind::Loiter)
        };
        let mut z = ZoneWatch::new(spec);
        let mut out = Vec::new();
        let mut now = 0.0;
        let mut tick = |z: &mut ZoneWatch, x: f32, secs: f64, out: &mut Vec<ZoneAlert>| {
            for _ in 0..(secs * 2.0) as usize {
                z.update(now, noon(), &[person(3, x, 200.0)], out);
                now += 0.5;
            }
        };
        tick(&mut z, 200.0, 20.0, &mut out); // 20 s inside
        tick(&mut z, 50.0, 5.0, &mut out); // 5 s outside: the stay ends
        tick(&mut z, 200.0, 20.0, &mut out); // 20 s inside again: 40 s in total, no stay of 30
        assert!(out.is_empty(), "{out:?}");
        tick(&mut z, 200.0, 11.0, &mut out); // this stay reaches 31 s
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn a_short_step_outside_does_not_reset_the_loiter_timer() {
        let spec = ZoneSpec {
            loiter_seconds: 30.0,
            ..ZoneSpec::new("balai", square(), ZoneKind::Loiter)
        };
        let mut z = ZoneWatch::new(spec);
        let mut out = Vec::new();
        for k in 0..80 {
            // at 2 fps, one frame in ten is a bad box outside
            let x = if k % 10 == 5 { 60.0 } else { 200.0 };
            z.update(k as f64 * 0.5, noon(), &[person(3, x, 200.0)], &mut out);
        }
        assert_eq!(out.len(), 1);
    }

    /// `n` people standing inside at once, ids from `first`.
    fn group(first: u64, n: usize) -> Vec<(u64, f32, f32)> {
        (0..n)
            .map(|k| (first + k as u64, 120.0 + 20.0 * k as f32, 200.0))
            .collect()
    }

    #[test]
    fn crowding_alerts_once_and_re_arms_after_a_calm_spell() {
        let spec = ZoneSpec {
            max_people: 3,
            ..ZoneSpec::new("musholla", square(), ZoneKind::Crowd)
        };
        let mut z = ZoneWatch::new(spec);
        // 3 people: fine; 5 people for 10 s: one alert
        let mut out = run(&mut z, 0.0, 2.0, noon(), &vec![group(1, 3); 10]);
        assert!(out.is_empty());
        out = run(&mut z, 5.0, 2.0, noon(), &vec![group(1, 5); 20]);
        assert_eq!(out.len(), 1, "{out:?}");
        let a = &out[0];
        assert_eq!(
            (a.kind, a.track_id, a.people),
            (ZoneAlertKind::Crowding, None, 5)
        );
        assert!(a.bbox.x1 <= 105.0 && a.bbox.x2 >= 195.0, "{:?}", a.bbox);
        // a short dip to 3 and back to 5: still the same crowd
        let mut frames = vec![group(1, 3); 4]; // 2 s: the two who left are gone for good
        frames.extend(vec![group(10, 5); 10]);
        assert!(run(&mut z, 15.0, 2.0, noon(), &frames).is_empty());
        // calm for 6 s (> crowd_rearm_seconds), then a crowd again: a new alert
        let mut frames = vec![group(20, 2); 12];
        frames.extend(vec![group(30, 6); 4]);
        assert_eq!(run(&mut z, 30.0, 2.0, noon(), &frames).len(), 1);
    }

    #[test]
    fn only_confirmed_tracks_count_and_coasting_does_not_move_anyone() {
        let mut z = zone(ZoneKind::Restricted);
        let mut out = Vec::new();
        let mut t = person(1, 200.0, 200.0);
        t.confirmed = false;
        z.update(0.0, noon(), &[t], &mut out);
        assert!(out.is_empty() && z.tracked() == 0);
        // a confirmed track outside whose coasting prediction drifts into the zone
        z.update(1.0, noon(), &[person(2, 50.0, 200.0)], &mut out);
        let mut c = person(2, 150.0, 200.0);
        c.misses = 3;
        z.update(1.2, noon(), &[c], &mut out);
        assert!(out.is_empty());
        assert_eq!(z.people(), 0);
    }

    #[test]
    fn a_weak_thing_that_never_moved_neither_intrudes_nor_loiters_nor_crowds() {
        // a sign in the yard the detector takes for a person (0.35): tracked, confirmed, never
        // moved
        let still = |id| {
            let mut t = person(id, 200.0, 200.0);
            t.moved = false;
            t.score = 0.35;
            t.best_score = 0.35;
            t
        };
        let mut out = Vec::new();
        for kind in [ZoneKind::Restricted, ZoneKind::Loiter] {
            let mut z = zone(kind);
            for k in 0..100 {
                z.update(k as f64, noon(), &[still(1)], &mut out);
            }
            assert!(out.is_empty(), "{kind:?}: {out:?}");
            assert_eq!(z.people(), 0);
        }
        // the same place: someone who walked there, someone standing whom the detector is
        // sure of: an intrusion each at once
        let mut z = zone(ZoneKind::Restricted);
        let mut standing = person(3, 200.0, 200.0);
        standing.moved = false;
        z.update(
            0.0,
            noon(),
            &[still(1), person(2, 200.0, 200.0), standing],
            &mut out,
        );
        let ids: Vec<_> = out.iter().map(|a| a.track_id).collect();
        assert_eq!(ids, [Some(2), Some(3)]);
    }

    #[test]
    fn a_vanished_track_frees_its_state() {
        let mut z = zone(ZoneKind::Loiter);
        let everyone: Vec<_> = (0..50).map(|id| (id, 200.0, 200.0)).collect();
        run(&mut z, 0.0, 5.0, noon(), &[everyone]);
        assert_eq!(z.tracked(), 50);
        assert_eq!(z.people(), 50);
        run(&mut z, 1.0, 5.0, noon(), &[vec![(3, 200.0, 200.0)]]);
        assert_eq!(z.tracked(), 1);
        run(&mut z, 2.0, 5.0, noon(), &[vec![]]);
        assert_eq!((z.tracked(), z.people()), (0, 0));
    }

    #[test]
    fn a_zone_edited_live_keeps_stays_and_judges_by_the_new_rule() {
        let mut z = zone(ZoneKind::Restricted);
        let inside = vec![vec![(1, 200.0, 200.0)]; 10];
        assert_eq!(run(&mut z, 0.0, 5.0, noon(), &inside).len(), 1);
        // the polygon grows a little: the person is still in the same stay, no new alert
        let mut spec = z.spec().clone();
        spec.polygon.points[2] = Point::new(320.0, 320.0);
        z.set_spec(spec.clone());
        assert!(run(&mut z, 2.0, 5.0, noon(), &inside).is_empty());
        // it becomes a loiter zone of 3 s: the stay (4 s so far) is judged by it
        spec.kind = ZoneKind::Loiter;
        spec.loiter_seconds = 3.0;
        z.set_spec(spec);
        let out = run(&mut z, 4.0, 5.0, noon(), &inside);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].kind, ZoneAlertKind::Loitering);
    }

    fn outside_point() -> impl Strategy<Value = (f32, f32)> {
        (-200f32..600.0, -200f32..600.0).prop_filter("outside the square", |&(x, y)| {
            !square().contains(Point::new(x, y))
        })
    }

    proptest! {
        #[test]
        fn paths_entirely_outside_never_alert(
            paths in proptest::collection::vec(proptest::collection::vec(outside_point(), 1..40), 1..6),
            fps in 0.5f64..30.0,
            hour in 0u32..24,
        ) {
            for kind in [ZoneKind::Restricted, ZoneKind::Loiter, ZoneKind::Crowd] {
                let spec = ZoneSpec {
                    loiter_seconds: 1.0,
                    max_people: 1,
                    ..ZoneSpec::new("z", square(), kind)
                };
                let mut z = ZoneWatch::new(spec);
                let n = paths.iter().map(Vec::len).max().unwrap_or(0);
                let frames: Vec<Vec<(u64, f32, f32)>> = (0..n)
                    .map(|k| {
                        paths.iter().enumerate()
                            .filter_map(|(id, p)| p.get(k).map(|&(x, y)| (id as u64, x, y)))
                            .collect()
                    })
                    .collect();
                let out = run(&mut z, 0.0, fps, hm(hour, 0), &frames);
                prop_assert!(out.is_empty(), "{:?}: {:?}", kind, out);
            }
        }

        #[test]
        fn spells_outside_shorter_than_leave_seconds_never_split_a_stay(
            spells in proptest::collection::vec((1usize..20, 0usize..=10), 1..30),
        ) {
            // at 10 fps a spell of up to 10 frames outside lasts at most 0.9 s: one stay
            let mut z = zone(ZoneKind::Restricted);
            let mut frames = Vec::new();
            for (inside, outside) in spells {
                frames.extend(std::iter::repeat_n(vec![(1, 105.0, 200.0)], inside));
                frames.extend(std::iter::repeat_n(vec![(1, 95.0, 200.0)], outside));
            }
            prop_assert_eq!(run(&mut z, 0.0, 10.0, noon(), &frames).len(), 1);
        }

        #[test]
        fn state_never_outlives_the_tracks_in_view(
            frames in proptest::collection::vec(
                proptest::collection::vec((0u64..20, 0f32..400.0, 0f32..400.0), 0..8), 1..50),
        ) {
            let mut z = zone(ZoneKind::Crowd);
            let mut out = Vec::new();
            for (k, f) in frames.iter().enumerate() {
                let tracks: Vec<Track> = f.iter().map(|&(id, x, y)| person(id, x, y)).collect();
                z.update(k as f64 * 0.2, noon(), &tracks, &mut out);
                let ids: std::collections::BTreeSet<u64> = f.iter().map(|t| t.0).collect();
                prop_assert!(z.tracked() <= ids.len());
                prop_assert!(z.people() <= z.tracked());
            }
        }
    }
}
