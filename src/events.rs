//! The one Event type every part of ronda speaks (DESIGN.md "MQTT", schema version 1).

use std::sync::atomic::{AtomicU32, Ordering};

use serde::{Deserialize, Serialize};

pub const SCHEMA: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    LineCrossing,
    NoMask,
    CurfewEntry,
    Intrusion,
    Loitering,
    Crowding,
    CameraOffline,
    CameraOnline,
    /// A night entry at the gate nobody recorded in the gate book in time (`gate`).
    UnrecordedEntry,
}

/// Whether a face wears a mask: the mask classifier's verdict, carried by `no_mask` events and
/// the gate book's records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskVerdict {
    Mask,
    NoMask,
}

impl MaskVerdict {
    pub fn as_str(&self) -> &'static str {
        match self {
            MaskVerdict::Mask => "mask",
            MaskVerdict::NoMask => "no_mask",
        }
    }
}

/// A name that is not one of an enum's spellings (the caller knows the place and says what to fix).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown name {0:?}")]
pub struct UnknownName(pub String);

impl EventKind {
    /// Every event type, in the order of DESIGN.md "MQTT".
    pub const ALL: [EventKind; 9] = [
        EventKind::LineCrossing,
        EventKind::NoMask,
        EventKind::CurfewEntry,
        EventKind::Intrusion,
        EventKind::Loitering,
        EventKind::Crowding,
        EventKind::CameraOffline,
        EventKind::CameraOnline,
        EventKind::UnrecordedEntry,
    ];

    /// The name in the event's `type` field, `[alerts.severity]` and the API (serde's spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::LineCrossing => "line_crossing",
            EventKind::NoMask => "no_mask",
            EventKind::CurfewEntry => "curfew_entry",
            EventKind::Intrusion => "intrusion",
            EventKind::Loitering => "loitering",
            EventKind::Crowding => "crowding",
            EventKind::CameraOffline => "camera_offline",
            EventKind::CameraOnline => "camera_online",
            EventKind::UnrecordedEntry => "unrecorded_entry",
        }
    }

    /// Position in [`EventKind::ALL`], for tables indexed by type.
    pub fn index(self) -> usize {
        Self::ALL
            .iter()
            .position(|k| *k == self)
            .expect("every kind is in ALL")
    }

    /// Every name, for "expected one of" messages.
    pub fn names() -> [&'static str; 9] {
        Self::ALL.map(Self::as_str)
    }
}

impl std::str::FromStr for EventKind {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownName(s.to_string()))
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How urgent an event is; ordered, so "at least warning" is `s >= Severity::Warning`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Alert,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Alert];
    /// The names, as in the config (`min_severity`) and the event's `severity` field.
    pub const NAMES: [&'static str; 3] = ["info", "warning", "alert"];

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl std::str::FromStr for Severity {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownName(s.to_string()))
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which way a person crossed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
}

impl Direction {
    pub fn as_str(&self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// Counts since the last reset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    #[serde(rename = "in")]
    pub in_: u64,
    pub out: u64,
}

impl Counts {
    pub fn occupancy(&self) -> i64 {
        self.in_ as i64 - self.out as i64
    }
    pub fn add(&mut self, d: Direction) {
        match d {
            Direction::In => self.in_ += 1,
            Direction::Out => self.out += 1,
        }
    }
}

/// Counts with occupancy, as carried by events and the counts topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountsView {
    #[serde(rename = "in")]
    pub in_: u64,
    pub out: u64,
    pub occupancy: i64,
}

impl From<Counts> for CountsView {
    fn from(c: Counts) -> Self {
        Self {
            in_: c.in_,
            out: c.out,
            occupancy: c.occupancy(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub schema: u32,
    /// Unique and sortable by time: 13 digits of Unix milliseconds, then a sequence number and a
    /// random part (so two boxes never collide).
    pub id: String,
    pub site: String,
    pub camera: String,
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// Local time of the site with its offset, milliseconds: 2026-11-22T21:04:05.120+07:00.
    pub time: String,
    pub severity: Severity,
    pub line: Option<String>,
    pub direction: Option<Direction>,
    pub zone: Option<String>,
    pub track_id: Option<u64>,
    #[serde(rename = "box")]
    pub bbox: Option<[f32; 4]>,
    pub score: Option<f32>,
    pub mask: Option<MaskVerdict>,
    pub counts: Option<CountsView>,
    pub snapshot: Option<String>,
    pub clip: Option<String>,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A new event id for `now`.
pub fn new_id(now: chrono::DateTime<chrono::Utc>) -> String {
    let seq = SEQ.fetch_add(1, Ordering::Relaxed) % 10_000;
    let r: u32 = rand::random::<u32>() & 0xffff;
    format!("{:013}{:04}{:04x}", now.timestamp_millis().max(0), seq, r)
}

impl Event {
    /// A blank event of `kind` for `camera` at `now`, in the site's time zone; an alert links
    /// its incident's snapshot and clip.
    pub fn new(
        site: &str,
        tz: chrono_tz::Tz,
        camera: &str,
        kind: EventKind,
        severity: Severity,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Event {
        let id = new_id(now);
        Event {
            schema: SCHEMA,
            id: id.clone(),
            site: site.into(),
            camera: camera.into(),
            kind,
            time: now
                .with_timezone(&tz)
                .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
                .to_string(),
            severity,
            line: None,
            direction: None,
            zone: None,
            track_id: None,
            bbox: None,
            score: None,
            mask: None,
            counts: None,
            // only alerts open an incident: other events carry no links that would lead nowhere
            snapshot: (severity == Severity::Alert)
                .then(|| format!("/api/incidents/{id}/snapshot.jpg")),
            clip: (severity == Severity::Alert).then(|| format!("/api/incidents/{id}/clip.mp4")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_json_has_the_design_shape() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-22T14:04:05.120Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let mut e = Event::new(
            "kepatihan-rw9",
            chrono_tz::Asia::Jakarta,
            "gate-1",
            EventKind::LineCrossing,
            Severity::Info,
            now,
        );
        e.direction = Some(Direction::In);
        e.counts = Some(CountsView {
            in_: 3,
            out: 1,
            occupancy: 2,
        });
        let v: serde_json::Value = serde_json::to_value(&e).unwrap();
        assert_eq!(v["schema"], 1);
        assert_eq!(v["type"], "line_crossing");
        assert_eq!(v["time"], "2026-11-22T21:04:05.120+07:00");
        assert_eq!(v["direction"], "in");
        assert_eq!(v["counts"]["in"], 3);
        assert!(v["zone"].is_null());
        assert!(v.get("box").is_some());
        let back: Event = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn ids_sort_by_time() {
        let a = new_id(chrono::DateTime::from_timestamp_millis(1_000).unwrap());
        let b = new_id(chrono::DateTime::from_timestamp_millis(2_000).unwrap());
        assert!(a < b && a.len() == b.len());
    }
}
