//! Alert rules on top of counting and zones: curfew entry and no-mask at the gate, the
//! cooldown that keeps one incident from paging the guards every frame, and the severity of
//! each event type.
//!
//! Pure logic like the rest of `rules`: the caller passes the site's local time of day for
//! windows and monotonic seconds for the cooldown.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use chrono::NaiveTime;

use crate::events::MaskVerdict;
use crate::events::{Direction, EventKind, Severity};

use super::line::Crossing;

/// A daily time window such as 22:00-05:00 (may wrap past midnight): a line's curfew, a zone's
/// active hours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl Window {
    pub fn contains(&self, t: NaiveTime) -> bool {
        if self.start <= self.end {
            t >= self.start && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }
}

/// The severity each event type is published with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Severities([Severity; EventKind::ALL.len()]);

impl Severities {
    /// The built-in severity of `kind`: counting and a camera coming back are information, a
    /// camera going dark and crowds or loiterers want a look, a person where nobody may be (or
    /// at a time nobody may enter, or without a mask at the gate) wants a guard.
    pub fn default_for(kind: EventKind) -> Severity {
        match kind {
            EventKind::LineCrossing | EventKind::CameraOnline => Severity::Info,
            EventKind::CameraOffline | EventKind::Crowding | EventKind::Loitering => {
                Severity::Warning
            }
            EventKind::Intrusion
            | EventKind::CurfewEntry
            | EventKind::NoMask
            | EventKind::UnrecordedEntry => Severity::Alert,
        }
    }

    pub fn get(&self, kind: EventKind) -> Severity {
        self.0[kind.index()]
    }

    pub fn set(&mut self, kind: EventKind, severity: Severity) {
        self.0[kind.index()] = severity;
    }
}

impl Default for Severities {
    fn default() -> Self {
        Self(EventKind::ALL.map(Severities::default_for))
    }
}

/// What a counting line asks for beyond counting (built from the config with
/// `config::Camera::line_rules`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineRules {
    /// Entering (`in`) while this window contains the local time is a `curfew_entry`.
    pub curfew: Option<Window>,
    /// Entering without a mask is a `no_mask` (a gate camera with `mask_check` and the line's
    /// `no_mask_alert`).
    pub no_mask: bool,
}

impl LineRules {
    /// Is this crossing an entry during the curfew? Windows across midnight (22:00-04:00)
    /// are handled by [`Window::contains`].
    pub fn curfew_entry(&self, c: &Crossing, local_time: NaiveTime) -> bool {
        c.direction == Direction::In && self.curfew.is_some_and(|w| w.contains(local_time))
    }

    /// Should the face and mask models look at this person? Only entries on a line that
    /// checks masks: the mask models are the costliest step and run only where a rule needs them.
    fn wants_mask(&self, c: &Crossing) -> bool {
        self.no_mask && c.direction == Direction::In
    }

    /// Is this crossing a `no_mask` alert, given the verdict on the person's face (`None`: no
    /// face seen, which is not evidence of anything)?
    pub fn no_mask(&self, c: &Crossing, verdict: Option<MaskVerdict>) -> bool {
        self.wants_mask(c) && verdict == Some(MaskVerdict::NoMask)
    }
}

/// What one alert is about, for de-duplication: the camera, the event type, and the line or
/// zone and/or the person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertKey {
    pub camera: String,
    pub kind: EventKind,
    /// The zone or line name, when the alert is about one.
    pub place: Option<String>,
    /// The track id, when the alert is about one person (ids are per camera).
    pub track_id: Option<u64>,
}

impl AlertKey {
    pub fn new(camera: &str, kind: EventKind) -> Self {
        Self {
            camera: camera.to_string(),
            kind,
            place: None,
            track_id: None,
        }
    }

    pub fn place(mut self, name: &str) -> Self {
        self.place = Some(name.to_string());
        self
    }

    pub fn track(mut self, id: u64) -> Self {
        self.track_id = Some(id);
        self
    }
}

impl Hash for AlertKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.camera.hash(state);
        self.kind.index().hash(state);
        self.place.hash(state);
        self.track_id.hash(state);
    }
}

/// De-duplication of alerts: one per key per window. The window runs from the last alert let
/// through, so something that goes on (a crowd that stays) is repeated once a window, not
/// silenced forever and not repeated every frame.
pub struct Cooldown {
    window: f64,
    /// When each key last let an alert through; keys older than the window are pruned.
    last: HashMap<AlertKey, f64>,
    next_prune: f64,
}

impl Cooldown {
    /// `window` zero lets everything through.
    pub fn new(window: Duration) -> Self {
        Self {
            window: window.as_secs_f64(),
            last: HashMap::new(),
            next_prune: f64::NEG_INFINITY,
        }
    }

    pub fn window(&self) -> Duration {
        Duration::from_secs_f64(self.window)
    }

    /// May an alert for `key` go out at `now` (monotonic seconds)? If so, the window for that
    /// key starts again.
    pub fn allow(&mut self, key: &AlertKey, now: f64) -> bool {
        // Prune at most once per window: memory stays within the keys of about two windows
        // whatever the rate of calls.
        if now >= self.next_prune {
            let w = self.window;
            self.last.retain(|_, t| now - *t < w);
            self.next_prune = now + w.max(1.0);
        }
        match self.last.get_mut(key) {
            Some(t) if now - *t < self.window => false,
            Some(t) => {
                *t = now;
                true
            }
            None => {
                self.last.insert(key.clone(), now);
                true
            }
        }
    }

    /// Keys held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.last.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::BBox;
    use proptest::prelude::*;

    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn crossing(direction: Direction) -> Crossing {
        Crossing {
            direction,
            track_id: 4,
            frame: 10,
            time: 1.0,
            bbox: BBox::new(0.0, 0.0, 30.0, 80.0),
            score: 0.9,
        }
    }

    #[test]
    fn curfew_entry_across_midnight() {
        let rules = LineRules {
            curfew: Some(Window {
                start: hm(22, 0),
                end: hm(4, 0),
            }),
            no_mask: false,
        };
        let entry = crossing(Direction::In);
        for t in [hm(22, 0), hm(23, 59), hm(0, 0), hm(3, 59)] {
            assert!(rules.curfew_entry(&entry, t), "{t}");
        }
        for t in [hm(4, 0), hm(12, 0), hm(21, 59)] {
            assert!(!rules.curfew_entry(&entry, t), "{t}");
        }
        // leaving during the curfew is not an entry
        assert!(!rules.curfew_entry(&crossing(Direction::Out), hm(23, 0)));
        // no curfew on the line: never
        assert!(!LineRules::default().curfew_entry(&entry, hm(23, 0)));
    }

    #[test]
    fn curfew_within_one_day() {
        let rules = LineRules {
            curfew: Some(Window {
                start: hm(1, 0),
                end: hm(5, 0),
            }),
            no_mask: false,
        };
        let entry = crossing(Direction::In);
        assert!(rules.curfew_entry(&entry, hm(2, 30)));
        assert!(!rules.curfew_entry(&entry, hm(23, 0)));
    }

    #[test]
    fn no_mask_only_for_entries_seen_without_a_mask_on_a_checking_line() {
        let on = LineRules {
            curfew: None,
            no_mask: true,
        };
        let entry = crossing(Direction::In);
        assert!(on.wants_mask(&entry));
        assert!(on.no_mask(&entry, Some(MaskVerdict::NoMask)));
        assert!(!on.no_mask(&entry, Some(MaskVerdict::Mask)));
        assert!(!on.no_mask(&entry, None), "no face seen is not an alert");
        let exit = crossing(Direction::Out);
        assert!(!on.wants_mask(&exit));
        assert!(!on.no_mask(&exit, Some(MaskVerdict::NoMask)));
        let off = LineRules::default();
        assert!(!off.wants_mask(&entry));
        assert!(!off.no_mask(&entry, Some(MaskVerdict::NoMask)));
    }

    #[test]
    fn default_severities_follow_the_design() {
        let s = Severities::default();
        use EventKind::*;
        use Severity::*;
        for (k, want) in [
            (LineCrossing, Info),
            (CameraOnline, Info),
            (CameraOffline, Warning),
            (Crowding, Warning),
            (Loitering, Warning),
            (Intrusion, Alert),
            (CurfewEntry, Alert),
            (NoMask, Alert),
            (UnrecordedEntry, Alert),
        ] {
            assert_eq!(s.get(k), want, "{k:?}");
        }
        let mut s = s;
        s.set(Loitering, Alert);
        assert_eq!(s.get(Loitering), Alert);
        assert_eq!(s.get(Crowding), Warning);
    }

    #[test]
    fn names_match_the_event_json() {
        for (i, k) in EventKind::ALL.into_iter().enumerate() {
            assert_eq!(k.index(), i);
            let json = serde_json::to_value(k).unwrap();
            assert_eq!(json, k.as_str(), "{k:?}");
            assert_eq!(k.as_str().parse::<EventKind>(), Ok(k));
        }
        for name in Severity::NAMES {
            let s: Severity = name.parse().unwrap();
            assert_eq!(serde_json::to_value(s).unwrap(), name);
            assert_eq!(s.as_str(), name);
        }
        assert!("nope".parse::<EventKind>().is_err());
        assert!(Severity::Info < Severity::Warning && Severity::Warning < Severity::Alert);
    }

    #[test]
    fn cooldown_is_per_key() {
        let mut c = Cooldown::new(Duration::from_secs(60));
        let a = AlertKey::new("gate-1", EventKind::NoMask).track(4);
        let b = AlertKey::new("gate-1", EventKind::NoMask).track(5);
        let other_kind = AlertKey::new("gate-1", EventKind::CurfewEntry).track(4);
        let other_cam = AlertKey::new("gate-2", EventKind::NoMask).track(4);
        assert!(c.allow(&a, 0.0));
        assert!(!c.allow(&a, 1.0));
        assert!(c.allow(&b, 1.0));
        assert!(c.allow(&other_kind, 1.0));
        assert!(c.allow(&other_cam, 1.0));
        assert!(!c.allow(&a, 59.9));
        assert!(c.allow(&a, 60.0), "the window has passed");
        assert!(
            !c.allow(&a, 100.0),
            "the window starts again at the last alert"
        );
        assert!(c.allow(&a, 120.0));
        // zone and track keys are distinct
        let z1 = AlertKey::new("cam-3", EventKind::Intrusion)
            .place("gudang")
            .track(1);
        let z2 = AlertKey::new("cam-3", EventKind::Intrusion)
            .place("kebun")
            .track(1);
        assert!(c.allow(&z1, 0.0) && c.allow(&z2, 0.0));
        let crowd = AlertKey::new("cam-3", EventKind::Crowding).place("musholla");
        assert!(c.allow(&crowd, 0.0) && !c.allow(&crowd, 30.0));
    }

    #[test]
    fn a_zero_window_lets_everything_through() {
        let mut c = Cooldown::new(Duration::ZERO);
        let k = AlertKey::new("c", EventKind::Intrusion).track(1);
        assert!(c.allow(&k, 0.0) && c.allow(&k, 0.0) && c.allow(&k, 0.1));
    }

    #[test]
    fn expired_keys_are_pruned() {
        let mut c = Cooldown::new(Duration::from_secs(10));
        for id in 0..1000 {
            c.allow(&AlertKey::new("c", EventKind::Loitering).track(id), 0.0);
        }
        assert_eq!(c.len(), 1000);
        c.allow(&AlertKey::new("c", EventKind::Loitering).track(1), 30.0);
        assert_eq!(c.len(), 1);
    }

    proptest! {
        #[test]
        fn cooldown_memory_stays_bounded(
            calls in proptest::collection::vec((0u64..10_000, 0.0f64..2.0), 1..500),
        ) {
            // ids never repeat much; time moves on: at most the keys of about two windows remain
            let window = 5.0;
            let mut c = Cooldown::new(Duration::from_secs_f64(window));
            let mut now = 0.0;
            let mut times: Vec<f64> = Vec::new();
            for (id, dt) in calls {
                now += dt;
                times.push(now);
                c.allow(&AlertKey::new("c", EventKind::Intrusion).track(id), now);
                let recent = times.iter().filter(|t| now - **t < 2.0 * window.max(1.0)).count();
                prop_assert!(c.len() <= recent, "{} keys, {} calls in two windows", c.len(), recent);
            }
        }

        #[test]
        fn at_most_one_alert_per_key_per_window(
            times in proptest::collection::vec(0.0f64..600.0, 1..200),
        ) {
            let mut times = times;
            times.sort_by(f64::total_cmp);
            let mut c = Cooldown::new(Duration::from_secs(60));
            let k = AlertKey::new("gate-1", EventKind::CurfewEntry).track(9);
            let allowed: Vec<f64> = times.into_iter().filter(|&t| c.allow(&k, t)).collect();
            for w in allowed.windows(2) {
                prop_assert!(w[1] - w[0] >= 60.0);
            }
        }
    }
}
