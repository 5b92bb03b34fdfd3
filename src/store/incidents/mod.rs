//! Incidents for reviewers: what happened, where its clip and snapshot are, who reviewed it.
//!
//! Uses (of the crate, besides its own folder): events.
//!
//! **One incident per clip.** The alert event that opens an incident gives it its id, camera,
//! type and time. The clip recorder joins the alerts that overlap on one camera into one clip
//! (named after the first); such a later alert joins that incident instead of opening its own
//! ([`Store::open_incident`] finds it by the clip path), so a reviewer sees, plays and marks
//! one thing. Every event of an incident, the opening one included, is a row of the link table
//! `incident_events` (not a JSON list): an event id finds its incident with one primary-key
//! lookup (each alert's JSON links `/api/incidents/<its own id>/...`, so the API must resolve
//! any of them), the type filter matches any of the incident's events through an index, and
//! each event keeps its own snapshot (each alert may be about a different person).
//!
//! **Paths** are stored relative to `[store] clips_dir` and must be plain relative paths (no
//! `..`, no root): the store only ever hands out what ronda itself wrote; nothing from a request
//! becomes a path. The clip's life: `none` (no clip asked or the recorder refused), `pending`
//! (recording), then `ready` or `failed`, and `ready` becomes `expired` when retention removes
//! the file. Only a `ready` clip has a path; a failed or expired one keeps its row, its
//! duration and size, and a note saying why.
//!
//! **Lists** are newest first by `(time_ms, id)`, which is also the page cursor (keyset
//! pagination, not offsets): a page costs an index range however deep the reader pages, and
//! incidents arriving meanwhile neither repeat nor skip rows.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

mod files;
mod query;

pub use files::{FileKind, Probe, Recovered, StoredFile};
pub use query::{IncidentFilter, Page};

use super::{Store, StoreError, from_ms, to_ms};
use crate::events::{Event, EventKind, Severity};

/// Most incidents on one page.
pub const MAX_PAGE: usize = 200;
/// Incidents on a page when the filter does not say.
pub const DEFAULT_PAGE: usize = 50;
/// Longest review note, in characters.
pub const MAX_NOTE_CHARS: usize = 2000;
/// Longest reviewer name, in characters.
pub const MAX_USER_CHARS: usize = 64;
/// Longest reason kept for a failed or expired clip, in characters.
const MAX_CLIP_NOTE_CHARS: usize = 500;

/// Where an incident's clip is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClipState {
    /// No clip was asked for (the camera keeps no ring) or the recorder refused.
    None,
    /// Recording, or being written.
    Pending,
    /// On disk at its path.
    Ready,
    /// Could not be written; `Clip::note` says why.
    Failed,
    /// Removed by retention; the row stays.
    Expired,
}

impl ClipState {
    pub fn as_str(self) -> &'static str {
        match self {
            ClipState::None => "none",
            ClipState::Pending => "pending",
            ClipState::Ready => "ready",
            ClipState::Failed => "failed",
            ClipState::Expired => "expired",
        }
    }

    fn parse(s: &str) -> ClipState {
        match s {
            "pending" => ClipState::Pending,
            "ready" => ClipState::Ready,
            "failed" => ClipState::Failed,
            "expired" => ClipState::Expired,
            _ => ClipState::None,
        }
    }
}

/// An incident's clip.
#[derive(Clone, Debug, PartialEq)]
pub struct Clip {
    pub state: ClipState,
    /// Relative to `[store] clips_dir`; set only while `Pending` or `Ready`.
    pub path: Option<PathBuf>,
    /// Play time and size, once written (kept after it expired).
    pub duration: Option<Duration>,
    pub bytes: Option<u64>,
    /// Why it failed, or when it expired.
    pub note: Option<String>,
}

/// One event of an incident.
#[derive(Clone, Debug, PartialEq)]
pub struct IncidentEvent {
    pub id: String,
    pub kind: EventKind,
    pub at: DateTime<Utc>,
    /// Its snapshot, relative to `[store] clips_dir`; `None` if none was written or retention
    /// removed it.
    pub snapshot: Option<PathBuf>,
}

/// Who reviewed an incident, when, and what they noted.
#[derive(Clone, Debug, PartialEq)]
pub struct Review {
    pub by: String,
    pub at: DateTime<Utc>,
    pub note: Option<String>,
}

/// An incident as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Incident {
    /// The id of the alert event that opened it.
    pub id: String,
    pub camera: String,
    /// The opening event's type (each event's own is in `events`).
    pub kind: EventKind,
    /// The highest severity of its events.
    pub severity: Severity,
    /// The opening event's time as it wrote it: site time with offset.
    pub time: String,
    pub at: DateTime<Utc>,
    pub clip: Clip,
    /// Its events in time order, the opening one first.
    pub events: Vec<IncidentEvent>,
    pub review: Option<Review>,
}

impl Incident {
    /// The snapshot of event `event_id` of this incident (the opening one: its own id), relative
    /// to `[store] clips_dir`.
    pub fn snapshot_of(&self, event_id: &str) -> Option<&Path> {
        self.events
            .iter()
            .find(|e| e.id == event_id)
            .and_then(|e| e.snapshot.as_deref())
    }

    /// The opening event's snapshot.
    pub fn snapshot(&self) -> Option<&Path> {
        self.snapshot_of(&self.id)
    }
}

/// What [`Store::open_incident`] did with an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened {
    /// The incident the event belongs to.
    pub id: String,
    /// The event belongs to an incident another event opened (it joined that one's clip).
    pub joined: bool,
}

/// Why an incident operation was refused. [`IncidentError::is_bad_request`] and
/// [`IncidentError::is_not_found`] tell the HTTP API what to answer.
#[derive(Debug, thiserror::Error)]
pub enum IncidentError {
    #[error(transparent)]
    Store(#[from] StoreError),

    #[error("no incident {id}")]
    NotFound { id: String },

    #[error("the note has {len} characters; at most {max} are kept: shorten it")]
    NoteTooLong { len: usize, max: usize },

    #[error("the reviewer's name must have 1 to {max} characters and no control characters")]
    BadUser { max: usize },

    #[error("limit {limit}: a page holds 1 to {max} incidents")]
    BadLimit { limit: usize, max: usize },

    #[error("cursor `{cursor}` is not one this server gave out; start again from the first page")]
    BadCursor { cursor: String },

    #[error("the time range starts ({from}) after it ends ({to})")]
    BadRange {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },

    /// A file path that is not plain and relative to the clips directory (a bug of the caller).
    #[error(
        "incident {id}: the file path `{}` must be relative to [store] clips_dir, without `..`",
        path.display()
    )]
    BadPath { id: String, path: PathBuf },
}

impl IncidentError {
    /// The request's parameters are wrong (HTTP 400).
    pub fn is_bad_request(&self) -> bool {
        matches!(
            self,
            IncidentError::NoteTooLong { .. }
                | IncidentError::BadUser { .. }
                | IncidentError::BadLimit { .. }
                | IncidentError::BadCursor { .. }
                | IncidentError::BadRange { .. }
        )
    }

    /// No such incident (HTTP 404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, IncidentError::NotFound { .. })
    }
}

/// The columns [`read_incident`] reads, of `incidents i`.
const COLUMNS: &str = "i.id, i.camera, i.type, i.severity, i.time, i.time_ms, i.clip_path, \
                       i.clip_state, i.clip_ms, i.clip_bytes, i.clip_note, i.reviewed_by, \
                       i.reviewed_at, i.note";

impl Store {
    /// Index alert `e` as an incident with its clip and snapshot files (relative to `[store]
    /// clips_dir`, as planned: the clip is `pending` until [`Store::clip_done`] or
    /// [`Store::clip_failed`]). If an incident of the same camera already has this clip (the
    /// recorder joined the alert to a clip still recording), the event joins that incident.
    /// Indexing an event twice changes nothing and returns its incident.
    pub fn open_incident(
        &self,
        e: &Event,
        clip: Option<&Path>,
        snapshot: Option<&Path>,
    ) -> Result<Opened, IncidentError> {
        let what = "indexing an incident";
        let clip = clip.map(|p| path_text(&e.id, p)).transpose()?;
        let snapshot = snapshot.map(|p| path_text(&e.id, p)).transpose()?;
        let time_ms = event_ms(e);
        let kind = enum_text(&e.kind);
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.err(what))?;
        let opened = open_in(&tx, e, &kind, time_ms, clip, snapshot).map_err(self.err(what))?;
        tx.commit().map_err(self.err(what))?;
        Ok(opened)
    }

    /// The clip of `incident_ids` (as the recorder reports them: every event id in the clip)
    /// is written at `path` (relative to `[store] clips_dir`). Returns how many of the ids
    /// found their incident (two events of one incident count twice); an expired incident is
    /// left as it is.
    pub fn clip_done(
        &self,
        incident_ids: &[String],
        path: &Path,
        duration: Duration,
        bytes: u64,
    ) -> Result<usize, IncidentError> {
        let what = "storing a finished clip";
        let first = incident_ids.first().map(String::as_str).unwrap_or_default();
        let path = path_text(first, path)?;
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.err(what))?;
        let mut n = 0;
        for id in incident_ids {
            n += tx
                .prepare_cached(
                    "UPDATE incidents SET clip_state = 'ready', clip_path = ?2, clip_ms = ?3, \
                     clip_bytes = ?4, clip_note = NULL \
                     WHERE id = (SELECT incident_id FROM incident_events WHERE event_id = ?1) \
                     AND clip_state != 'expired'",
                )
                .and_then(|mut st| {
                    st.execute(params![id, path, duration.as_millis() as i64, bytes as i64])
                })
                .map_err(self.err(what))?;
        }
        tx.commit().map_err(self.err(what))?;
        Ok(n)
    }

    /// The clip of `incident_ids` could not be written (a written clip stays written). Returns
    /// how many of the ids marked their incident.
    pub fn clip_failed(&self, incident_ids: &[String], reason: &str) -> Result<usize, StoreError> {
        let what = "storing a failed clip";
        let reason = truncate(reason, MAX_CLIP_NOTE_CHARS);
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.err(what))?;
        let mut n = 0;
        for id in incident_ids {
            n += tx
                .prepare_cached(
                    "UPDATE incidents SET clip_state = 'failed', clip_path = NULL, \
                     clip_note = ?2 \
                     WHERE id = (SELECT incident_id FROM incident_events WHERE event_id = ?1) \
                     AND clip_state IN ('none', 'pending')",
                )
                .and_then(|mut st| st.execute(params![id, reason]))
                .map_err(self.err(what))?;
        }
        tx.commit().map_err(self.err(what))?;
        Ok(n)
    }

    /// The incident `id`, or the one event `id` belongs to.
    pub fn incident(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        let what = "reading an incident";
        let conn = self.conn();
        let found = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM incidents i WHERE i.id = \
                 (SELECT incident_id FROM incident_events WHERE event_id = ?1)"
            ))
            .and_then(|mut st| st.query_row([id], read_incident).optional())
            .map_err(self.err(what))?;
        let Some(mut inc) = found else {
            return Ok(None);
        };
        inc.events = events_of(&conn, &inc.id).map_err(self.err(what))?;
        Ok(Some(inc))
    }

    /// `user` reviewed incident `id` (or the one event `id` belongs to), with an optional note
    /// (at most [`MAX_NOTE_CHARS`]; blank is none). Reviewing again replaces the review.
    pub fn mark_reviewed(
        &self,
        id: &str,
        user: &str,
        note: Option<&str>,
    ) -> Result<Incident, IncidentError> {
        let user = user.trim();
        let n = user.chars().count();
        if n == 0 || n > MAX_USER_CHARS || user.chars().any(char::is_control) {
            return Err(IncidentError::BadUser {
                max: MAX_USER_CHARS,
            });
        }
        let note = note.map(str::trim).filter(|n| !n.is_empty());
        if let Some(len) = note.map(|n| n.chars().count())
            && len > MAX_NOTE_CHARS
        {
            return Err(IncidentError::NoteTooLong {
                len,
                max: MAX_NOTE_CHARS,
            });
        }
        let changed = self
            .conn()
            .prepare_cached(
                "UPDATE incidents SET reviewed_by = ?2, reviewed_at = ?3, note = ?4 \
                 WHERE id = (SELECT incident_id FROM incident_events WHERE event_id = ?1)",
            )
            .and_then(|mut st| st.execute(params![id, user, to_ms(Utc::now()), note]))
            .map_err(self.err("storing a review"))?;
        if changed == 0 {
            return Err(IncidentError::NotFound { id: id.into() });
        }
        self.incident(id)?
            .ok_or_else(|| IncidentError::NotFound { id: id.into() })
    }
}

fn open_in(
    tx: &Transaction<'_>,
    e: &Event,
    kind: &str,
    time_ms: i64,
    clip: Option<String>,
    snapshot: Option<String>,
) -> rusqlite::Result<Opened> {
    let known: Option<String> = tx
        .prepare_cached("SELECT incident_id FROM incident_events WHERE event_id = ?1")?
        .query_row([&e.id], |r| r.get(0))
        .optional()?;
    if let Some(id) = known {
        let joined = id != e.id;
        return Ok(Opened { id, joined });
    }
    let joins: Option<(String, String, i64)> = match &clip {
        Some(clip) => tx
            .prepare_cached(
                "SELECT id, severity, time_ms FROM incidents WHERE clip_path = ?1 AND camera = ?2 \
                 LIMIT 1",
            )?
            .query_row(params![clip, e.camera], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?,
        None => None,
    };
    let (id, incident_ms) = match joins {
        Some((id, severity, incident_ms)) => {
            if e.severity > parse_enum(&severity).unwrap_or(Severity::Info) {
                tx.prepare_cached("UPDATE incidents SET severity = ?2 WHERE id = ?1")?
                    .execute(params![id, enum_text(&e.severity)])?;
            }
            (id, incident_ms)
        }
        None => {
            let state = if clip.is_some() {
                ClipState::Pending
            } else {
                ClipState::None
            };
            tx.prepare_cached(
                "INSERT INTO incidents (id, camera, type, severity, time, time_ms, clip_path, \
                 clip_state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                e.id,
                e.camera,
                kind,
                enum_text(&e.severity),
                e.time,
                time_ms,
                clip,
                state.as_str()
            ])?;
            (e.id.clone(), time_ms)
        }
    };
    tx.prepare_cached(
        "INSERT INTO incident_events (event_id, incident_id, type, time_ms, snapshot_path) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![e.id, id, kind, time_ms, snapshot])?;
    tx.prepare_cached(
        "INSERT INTO incident_types (type, time_ms, incident_id) VALUES (?1, ?2, ?3) \
         ON CONFLICT DO NOTHING",
    )?
    .execute(params![kind, incident_ms, id])?;
    let joined = id != e.id;
    Ok(Opened { id, joined })
}

fn read_incident(r: &Row<'_>) -> rusqlite::Result<Incident> {
    let kind: String = r.get(2)?;
    let severity: String = r.get(3)?;
    let reviewed_by: Option<String> = r.get(11)?;
    let reviewed_at: Option<i64> = r.get(12)?;
    Ok(Incident {
        id: r.get(0)?,
        camera: r.get(1)?,
        kind: parse_enum(&kind).ok_or_else(|| bad_column(2, &kind))?,
        severity: parse_enum(&severity).ok_or_else(|| bad_column(3, &severity))?,
        time: r.get(4)?,
        at: from_ms(r.get(5)?),
        clip: Clip {
            path: r.get::<_, Option<String>>(6)?.map(PathBuf::from),
            state: ClipState::parse(&r.get::<_, String>(7)?),
            duration: r
                .get::<_, Option<i64>>(8)?
                .map(|ms| Duration::from_millis(ms.max(0) as u64)),
            bytes: r.get::<_, Option<i64>>(9)?.map(|b| b.max(0) as u64),
            note: r.get(10)?,
        },
        events: Vec::new(),
        review: match (reviewed_by, reviewed_at) {
            (Some(by), Some(at)) => Some(Review {
                by,
                at: from_ms(at),
                note: r.get(13)?,
            }),
            _ => None,
        },
    })
}

fn events_of(conn: &Connection, incident: &str) -> rusqlite::Result<Vec<IncidentEvent>> {
    let mut st = conn.prepare_cached(
        "SELECT event_id, type, time_ms, snapshot_path FROM incident_events \
         WHERE incident_id = ?1",
    )?;
    let mut v = st
        .query_map([incident], |r| {
            let kind: String = r.get(1)?;
            Ok(IncidentEvent {
                id: r.get(0)?,
                kind: parse_enum(&kind).ok_or_else(|| bad_column(1, &kind))?,
                at: from_ms(r.get(2)?),
                snapshot: r.get::<_, Option<String>>(3)?.map(PathBuf::from),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    // the opening event first, then the others as they came
    v.sort_by(|a, b| {
        (a.id != incident)
            .cmp(&(b.id != incident))
            .then(a.at.cmp(&b.at))
            .then_with(|| a.id.cmp(&b.id))
    });
    Ok(v)
}

fn bad_column(i: usize, text: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        i,
        rusqlite::types::Type::Text,
        format!("unknown value `{text}`").into(),
    )
}

/// The event's instant: its own time, else the milliseconds its id starts with, else now.
fn event_ms(e: &Event) -> i64 {
    DateTime::parse_from_rfc3339(&e.time)
        .map(|t| t.timestamp_millis())
        .ok()
        .or_else(|| e.id.get(..13).and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| to_ms(Utc::now()))
}

/// Is `p` a plain relative path (only normal components)?
fn plain_relative(p: &Path) -> bool {
    p.components().next().is_some() && p.components().all(|c| matches!(c, Component::Normal(_)))
}

fn path_text(id: &str, p: &Path) -> Result<String, IncidentError> {
    match p.to_str() {
        Some(s) if plain_relative(p) => Ok(s.to_string()),
        _ => Err(IncidentError::BadPath {
            id: id.into(),
            path: p.to_path_buf(),
        }),
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// `no_mask`, `alert`: the JSON spelling of a unit enum.
fn enum_text<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn parse_enum<T: serde::de::DeserializeOwned>(s: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use chrono::TimeZone;

    use super::query::list_query;
    use super::*;
    use rusqlite::params_from_iter;

    const JAKARTA: chrono_tz::Tz = chrono_tz::Asia::Jakarta;

    fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("ronda.db")).unwrap();
        (dir, store)
    }

    fn at(minute: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap() + chrono::Duration::minutes(minute)
    }

    fn alert(camera: &str, kind: EventKind, minute: i64) -> Event {
        Event::new("rw9", JAKARTA, camera, kind, Severity::Alert, at(minute))
    }

    fn clip_of(e: &Event) -> PathBuf {
        PathBuf::from(format!("{}/2026-11-22/{}.mp4", e.camera, e.id))
    }

    fn snap_of(e: &Event) -> PathBuf {
        PathBuf::from(format!("{}/2026-11-22/{}.jpg", e.camera, e.id))
    }

    fn ids(p: &Page) -> Vec<&str> {
        p.items.iter().map(|i| i.id.as_str()).collect()
    }

    /// The smallest MP4 `probe_mp4` accepts: ftyp, moov with an mvhd, some mdat.
    pub(crate) fn fake_mp4(duration_ms: u32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(16u32.to_be_bytes());
        v.extend(b"ftypisom");
        v.extend(0u32.to_be_bytes());
        let mut mvhd = vec![0u8; 4 + 4 + 4];
        mvhd.extend(1000u32.to_be_bytes());
        mvhd.extend(duration_ms.to_be_bytes());
        mvhd.extend([0u8; 80]);
        v.extend((8 + 8 + mvhd.len() as u32).to_be_bytes());
        v.extend(b"moov");
        v.extend((8 + mvhd.len() as u32).to_be_bytes());
        v.extend(b"mvhd");
        v.extend(mvhd);
        v.extend((8u32 + 1000).to_be_bytes());
        v.extend(b"mdat");
        v.extend([7u8; 1000]);
        v
    }

    #[test]
    fn an_alert_opens_an_incident_and_later_alerts_of_its_clip_join_it() {
        let (_d, s) = temp_store();
        let mut first = alert("gate-1", EventKind::NoMask, 0);
        first.severity = Severity::Warning;
        let second = alert("gate-1", EventKind::Intrusion, 1);
        let other_cam = alert("area-2", EventKind::Intrusion, 1);

        let a = s
            .open_incident(&first, Some(&clip_of(&first)), Some(&snap_of(&first)))
            .unwrap();
        assert_eq!(
            a,
            Opened {
                id: first.id.clone(),
                joined: false
            }
        );
        // the recorder joined the second alert to the first one's clip
        let b = s
            .open_incident(&second, Some(&clip_of(&first)), Some(&snap_of(&second)))
            .unwrap();
        assert_eq!(
            b,
            Opened {
                id: first.id.clone(),
                joined: true
            }
        );
        // indexing again changes nothing
        assert_eq!(
            s.open_incident(&second, Some(&clip_of(&first)), None)
                .unwrap(),
            b
        );
        let c = s.open_incident(&other_cam, None, None).unwrap();
        assert!(!c.joined);

        let inc = s.incident(&first.id).unwrap().unwrap();
        assert_eq!(s.incident(&second.id).unwrap().unwrap(), inc, "by event id");
        assert_eq!(inc.kind, EventKind::NoMask);
        assert_eq!(inc.severity, Severity::Alert, "the highest of its events");
        assert_eq!(inc.time, first.time);
        assert_eq!(inc.at, at(0));
        assert_eq!(inc.camera, "gate-1");
        assert_eq!(inc.clip.state, ClipState::Pending);
        assert_eq!(inc.clip.path.as_deref(), Some(clip_of(&first).as_path()));
        let evs: Vec<_> = inc.events.iter().map(|e| (&*e.id, e.kind)).collect();
        assert_eq!(
            evs,
            [
                (&*first.id, EventKind::NoMask),
                (&*second.id, EventKind::Intrusion)
            ]
        );
        assert_eq!(inc.snapshot(), Some(snap_of(&first).as_path()));
        assert_eq!(
            inc.snapshot_of(&second.id),
            Some(snap_of(&second).as_path())
        );
        assert!(inc.review.is_none());

        let none = s.incident(&other_cam.id).unwrap().unwrap();
        assert_eq!(none.clip.state, ClipState::None);
        assert_eq!(none.snapshot(), None);
        assert!(s.incident("nope").unwrap().is_none());
    }

    #[test]
    fn paths_must_stay_inside_the_clips_directory() {
        let (_d, s) = temp_store();
        let e = alert("gate-1", EventKind::NoMask, 0);
        for bad in [
            "/etc/passwd",
            "../x.mp4",
            "gate-1/../../x.mp4",
            "",
            "./x.mp4",
        ] {
            let err = s.open_incident(&e, Some(Path::new(bad)), None).unwrap_err();
            assert!(matches!(err, IncidentError::BadPath { .. }), "{bad}: {err}");
            assert!(err.to_string().contains("clips_dir"), "{err}");
            let err = s.open_incident(&e, None, Some(Path::new(bad))).unwrap_err();
            assert!(matches!(err, IncidentError::BadPath { .. }), "{bad}: {err}");
        }
        assert!(s.incident(&e.id).unwrap().is_none(), "nothing half stored");
        let err = s
            .clip_done(
                std::slice::from_ref(&e.id),
                Path::new("/tmp/x.mp4"),
                Duration::ZERO,
                0,
            )
            .unwrap_err();
        assert!(matches!(err, IncidentError::BadPath { .. }));
    }

    #[test]
    fn the_recorder_reports_finish_the_clip_of_every_incident_in_it() {
        let (_d, s) = temp_store();
        let a = alert("gate-1", EventKind::NoMask, 0);
        let b = alert("gate-1", EventKind::NoMask, 1);
        let c = alert("gate-2", EventKind::Intrusion, 2);
        let d = alert("gate-3", EventKind::Intrusion, 3);
        s.open_incident(&a, Some(&clip_of(&a)), None).unwrap();
        s.open_incident(&b, Some(&clip_of(&a)), None).unwrap();
        s.open_incident(&c, Some(&clip_of(&c)), None).unwrap();
        s.open_incident(&d, None, None).unwrap();

        let both = [a.id.clone(), b.id.clone()];
        let n = s
            .clip_done(&both, &clip_of(&a), Duration::from_millis(15_200), 123_456)
            .unwrap();
        assert_eq!(n, 2, "one update per reported id; both are one incident");
        let inc = s.incident(&a.id).unwrap().unwrap();
        assert_eq!(
            inc.clip,
            Clip {
                state: ClipState::Ready,
                path: Some(clip_of(&a)),
                duration: Some(Duration::from_millis(15_200)),
                bytes: Some(123_456),
                note: None,
            }
        );

        let long = "x".repeat(5000);
        assert_eq!(
            s.clip_failed(std::slice::from_ref(&c.id), &long).unwrap(),
            1
        );
        let inc = s.incident(&c.id).unwrap().unwrap();
        assert_eq!(inc.clip.state, ClipState::Failed);
        assert_eq!(inc.clip.path, None, "nothing points at a file not there");
        assert_eq!(inc.clip.note.unwrap().len(), MAX_CLIP_NOTE_CHARS);
        // a failure report does not undo a written clip
        assert_eq!(s.clip_failed(&both, "late").unwrap(), 0);
        assert_eq!(
            s.incident(&a.id).unwrap().unwrap().clip.state,
            ClipState::Ready
        );
        // unknown ids are no error
        assert_eq!(
            s.clip_done(&["zz".into()], &clip_of(&a), Duration::ZERO, 0)
                .unwrap(),
            0
        );
    }

    #[test]
    fn reviews_are_stored_with_their_limits() {
        let (_d, s) = temp_store();
        let a = alert("gate-1", EventKind::NoMask, 0);
        let b = alert("gate-1", EventKind::NoMask, 1);
        s.open_incident(&a, Some(&clip_of(&a)), None).unwrap();
        s.open_incident(&b, Some(&clip_of(&a)), None).unwrap();

        let before = Utc::now();
        let inc = s
            .mark_reviewed(&b.id, " pak-rt ", Some("  known visitor \n"))
            .unwrap();
        assert_eq!(inc.id, a.id, "an event id reviews its incident");
        let r = inc.review.unwrap();
        assert_eq!(
            (r.by.as_str(), r.note.as_deref()),
            ("pak-rt", Some("known visitor"))
        );
        assert!(r.at >= before - chrono::Duration::seconds(1));
        // again, without a note: replaced
        let r = s.mark_reviewed(&a.id, "bu-rw", Some("  ")).unwrap().review;
        assert_eq!(r.map(|r| (r.by, r.note)), Some(("bu-rw".into(), None)));

        let err = s
            .mark_reviewed(&a.id, "x", Some(&"é".repeat(MAX_NOTE_CHARS + 1)))
            .unwrap_err();
        assert!(err.is_bad_request(), "{err}");
        assert!(err.to_string().contains("2001 characters"), "{err}");
        assert!(
            s.mark_reviewed(&a.id, "x", Some(&"é".repeat(MAX_NOTE_CHARS)))
                .is_ok()
        );
        for user in ["", "   ", "a\u{7}b", &"u".repeat(MAX_USER_CHARS + 1)] {
            let err = s.mark_reviewed(&a.id, user, None).unwrap_err();
            assert!(matches!(err, IncidentError::BadUser { .. }), "{user:?}");
            assert!(err.is_bad_request());
        }
        let err = s.mark_reviewed("nope", "x", None).unwrap_err();
        assert!(err.is_not_found() && !err.is_bad_request(), "{err}");
        assert_eq!(err.to_string(), "no incident nope");
    }

    /// 30 incidents, one a minute: cameras gate-1, gate-2, area-3 in turn; types no_mask,
    /// intrusion, loitering in turns of 2; every 4th reviewed. Newest first in the result.
    fn thirty(s: &Store) -> Vec<Event> {
        let kinds = [
            EventKind::NoMask,
            EventKind::Intrusion,
            EventKind::Loitering,
        ];
        let cams = ["gate-1", "gate-2", "area-3"];
        let mut v = Vec::new();
        for i in 0..30 {
            let e = alert(cams[i % 3], kinds[(i / 2) % 3], i as i64);
            s.open_incident(&e, Some(&clip_of(&e)), None).unwrap();
            if i % 4 == 0 {
                s.mark_reviewed(&e.id, "pak-rt", None).unwrap();
            }
            v.push(e);
        }
        v.reverse();
        v
    }

    #[test]
    fn filters_select_by_time_camera_type_and_review() {
        let (_d, s) = temp_store();
        let all = thirty(&s);
        let want = |pick: &dyn Fn(usize, &Event) -> bool| -> Vec<&str> {
            all.iter()
                .enumerate()
                .filter(|(i, e)| pick(29 - i, e))
                .map(|(_, e)| e.id.as_str())
                .collect()
        };
        let q = |f: IncidentFilter| s.incidents(&IncidentFilter { limit: 200, ..f }).unwrap();

        let p = q(IncidentFilter::default());
        assert_eq!(ids(&p), want(&|_, _| true));
        assert_eq!(p.next, None);
        let p = q(IncidentFilter {
            from: Some(at(10)),
            to: Some(at(20)),
            ..Default::default()
        });
        assert_eq!(
            ids(&p),
            want(&|i, _| (10..20).contains(&i)),
            "from inclusive, to exclusive"
        );
        let p = q(IncidentFilter {
            camera: Some("gate-2".into()),
            ..Default::default()
        });
        assert_eq!(ids(&p), want(&|_, e| e.camera == "gate-2"));
        let p = q(IncidentFilter {
            kinds: vec![EventKind::Intrusion, EventKind::Loitering],
            ..Default::default()
        });
        assert_eq!(ids(&p), want(&|_, e| e.kind != EventKind::NoMask));
        let p = q(IncidentFilter {
            reviewed: Some(false),
            ..Default::default()
        });
        assert_eq!(ids(&p), want(&|i, _| i % 4 != 0));
        let p = q(IncidentFilter {
            reviewed: Some(true),
            camera: Some("gate-1".into()),
            kinds: vec![EventKind::NoMask],
            from: Some(at(5)),
            ..Default::default()
        });
        assert_eq!(
            ids(&p),
            want(&|i, e| i % 4 == 0
                && e.camera == "gate-1"
                && e.kind == EventKind::NoMask
                && i >= 5)
        );
        assert!(!p.items.is_empty());
        let p = q(IncidentFilter {
            camera: Some("nope".into()),
            ..Default::default()
        });
        assert!(p.items.is_empty());

        // a joined event's type finds its incident too
        let opener = alert("gate-9", EventKind::NoMask, 100);
        let joined = alert("gate-9", EventKind::CurfewEntry, 101);
        s.open_incident(&opener, Some(&clip_of(&opener)), None)
            .unwrap();
        s.open_incident(&joined, Some(&clip_of(&opener)), None)
            .unwrap();
        let p = q(IncidentFilter {
            kinds: vec![EventKind::CurfewEntry],
            ..Default::default()
        });
        assert_eq!(ids(&p), [opener.id.as_str()]);
    }

    #[test]
    fn pages_follow_each_other_without_gaps_or_repeats() {
        let (_d, s) = temp_store();
        let all = thirty(&s);
        // two incidents in the same millisecond: the id breaks the tie
        let mut twin = alert("gate-1", EventKind::NoMask, 15);
        twin.id = format!("{}x", all[14].id);
        s.open_incident(&twin, None, None).unwrap();

        let mut seen = Vec::new();
        let mut f = IncidentFilter {
            limit: 7,
            ..Default::default()
        };
        let mut pages = 0;
        loop {
            let p = s.incidents(&f).unwrap();
            pages += 1;
            assert!(p.items.len() <= 7);
            seen.extend(p.items.iter().map(|i| i.id.clone()));
            // an incident arriving meanwhile (newer than all) changes nothing further on
            let late = alert("gate-1", EventKind::NoMask, 1000 + pages);
            s.open_incident(&late, None, None).unwrap();
            match p.next {
                Some(c) => f.cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(pages, 5, "31 in pages of 7");
        let mut want: Vec<String> = all.iter().map(|e| e.id.clone()).collect();
        want.insert(15, twin.id.clone());
        assert_eq!(seen.len(), 31);
        let mut sorted = seen.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        sorted.dedup();
        assert_eq!(sorted.len(), 31, "no repeats");
        assert!(seen.contains(&twin.id));
        // pages of the merged walk of several types, and of one camera's types
        for camera in [None, Some("gate-2")] {
            let kinds = vec![EventKind::Loitering, EventKind::Intrusion];
            let want: Vec<&str> = all
                .iter()
                .filter(|e| kinds.contains(&e.kind))
                .filter(|e| camera.is_none_or(|c| e.camera == c))
                .map(|e| e.id.as_str())
                .collect();
            let mut f = IncidentFilter {
                limit: 3,
                kinds,
                camera: camera.map(String::from),
                ..Default::default()
            };
            let mut got = Vec::new();
            loop {
                let p = s.incidents(&f).unwrap();
                got.extend(p.items.iter().map(|i| i.id.clone()));
                match p.next {
                    Some(c) => f.cursor = Some(c),
                    None => break,
                }
            }
            assert_eq!(got, want, "{camera:?}");
        }
        // exactly the first page's worth when the count is a multiple of the limit
        let p = s
            .incidents(&IncidentFilter {
                limit: 2,
                camera: Some("nope".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!((p.items.len(), p.next), (0, None));
    }

    #[test]
    fn bad_list_parameters_are_named() {
        let (_d, s) = temp_store();
        for (f, says) in [
            (
                IncidentFilter {
                    limit: 0,
                    ..Default::default()
                },
                "limit 0",
            ),
            (
                IncidentFilter {
                    limit: 201,
                    ..Default::default()
                },
                "1 to 200",
            ),
            (
                IncidentFilter {
                    cursor: Some("garbage".into()),
                    ..Default::default()
                },
                "cursor `garbage`",
            ),
            (
                IncidentFilter {
                    cursor: Some("12x_abc".into()),
                    ..Default::default()
                },
                "first page",
            ),
            (
                IncidentFilter {
                    from: Some(at(2)),
                    to: Some(at(1)),
                    ..Default::default()
                },
                "starts",
            ),
        ] {
            let err = s.incidents(&f).unwrap_err();
            assert!(err.is_bad_request(), "{err}");
            assert!(err.to_string().contains(says), "{err}");
        }
    }

    #[test]
    fn pending_clips_of_an_interrupted_run_are_settled_at_start() {
        let (d, s) = temp_store();
        let clips = d.path().join("clips");
        let written = alert("gate-1", EventKind::NoMask, 0);
        let cut = alert("gate-1", EventKind::NoMask, 10);
        let junk = alert("gate-1", EventKind::NoMask, 20);
        let ready = alert("gate-1", EventKind::NoMask, 30);
        for e in [&written, &cut, &junk, &ready] {
            s.open_incident(e, Some(&clip_of(e)), None).unwrap();
        }
        s.clip_done(
            std::slice::from_ref(&ready.id),
            &clip_of(&ready),
            Duration::from_secs(15),
            10,
        )
        .unwrap();
        // written and renamed, then killed before the report; killed while recording (only a
        // .part, which startup_cleanup removes); a file that is not an MP4
        let dir = clips.join("gate-1/2026-11-22");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(clips.join(clip_of(&written)), fake_mp4(15_250)).unwrap();
        std::fs::write(clips.join(clip_of(&junk)), b"not a video at all").unwrap();

        let r = s
            .recover_clips(&clips, &crate::sinks::clips::probe_mp4)
            .unwrap();
        assert_eq!(
            r,
            Recovered {
                ready: 1,
                failed: 2
            }
        );
        let w = s.incident(&written.id).unwrap().unwrap().clip;
        assert_eq!(w.state, ClipState::Ready);
        assert_eq!(w.duration, Some(Duration::from_millis(15_250)));
        assert_eq!(w.bytes, Some(fake_mp4(0).len() as u64));
        for e in [&cut, &junk] {
            let c = s.incident(&e.id).unwrap().unwrap().clip;
            assert_eq!((c.state, c.path), (ClipState::Failed, None));
            assert!(c.note.unwrap().contains("stopped"));
        }
        assert_eq!(
            s.incident(&ready.id).unwrap().unwrap().clip.bytes,
            Some(10),
            "ready clips are left alone"
        );
        assert_eq!(
            s.recover_clips(&clips, &crate::sinks::clips::probe_mp4)
                .unwrap(),
            Recovered::default()
        );
    }

    #[test]
    fn old_delivered_events_go_unless_an_incident_or_a_sink_needs_them() {
        let (_d, s) = temp_store();
        let old = |m| {
            let mut e = alert("gate-1", EventKind::NoMask, m);
            e.severity = Severity::Info;
            e
        };
        let sent_old = old(0);
        let unsent_old = old(1);
        let incident_old = old(2);
        let joined_old = old(3);
        let webhook_old = old(4);
        let sent_new = old(60);
        for e in [
            &sent_old,
            &unsent_old,
            &incident_old,
            &joined_old,
            &sent_new,
        ] {
            let seq = s.append(e).unwrap();
            if e.id != unsent_old.id {
                s.mark_sent(seq).unwrap();
            }
        }
        s.open_incident(&incident_old, Some(&clip_of(&incident_old)), None)
            .unwrap();
        s.open_incident(&joined_old, Some(&clip_of(&incident_old)), None)
            .unwrap();
        // the webhook is behind on this one
        s.webhook_cursor().unwrap();
        let seq = s.append(&webhook_old).unwrap();
        s.mark_sent(seq).unwrap();

        assert_eq!(s.delete_old_events(at(30)).unwrap(), 1);
        assert!(s.event(&sent_old.id).unwrap().is_none());
        for e in [
            &unsent_old,
            &incident_old,
            &joined_old,
            &webhook_old,
            &sent_new,
        ] {
            assert!(s.event(&e.id).unwrap().is_some(), "{}", e.id);
        }
        s.mark_webhook_done(seq).unwrap();
        assert_eq!(s.delete_old_events(at(30)).unwrap(), 1);
        assert!(s.event(&webhook_old.id).unwrap().is_none());
    }

    #[test]
    fn files_of_undelivered_events_are_protected() {
        let (_d, s) = temp_store();
        let a = alert("gate-1", EventKind::NoMask, 0);
        let b = alert("gate-1", EventKind::NoMask, 1);
        let c = alert("gate-2", EventKind::NoMask, 2);
        let seq_a = s.append(&a).unwrap();
        s.append(&b).unwrap();
        s.append(&c).unwrap();
        s.mark_sent(seq_a).unwrap();
        s.open_incident(&a, Some(&clip_of(&a)), Some(&snap_of(&a)))
            .unwrap();
        s.open_incident(&b, Some(&clip_of(&a)), Some(&snap_of(&b)))
            .unwrap();
        s.open_incident(&c, Some(&clip_of(&c)), None).unwrap();
        s.clip_done(
            &[a.id.clone(), b.id.clone()],
            &clip_of(&a),
            Duration::ZERO,
            0,
        )
        .unwrap();
        // pending clips are not files yet
        let f = s.stored_files().unwrap();
        let got: Vec<_> = f.iter().map(|f| (f.kind, &*f.owner, f.protected)).collect();
        // b is unsent: the whole incident (its clip, both snapshots) stays
        assert_eq!(
            got,
            [
                (FileKind::Clip, &*a.id, true),
                (FileKind::Snapshot, &*a.id, true),
                (FileKind::Snapshot, &*b.id, true)
            ]
        );
        for seq in 2..=3 {
            s.mark_sent(seq).unwrap();
        }
        assert!(s.stored_files().unwrap().iter().all(|f| !f.protected));
        let n = s.files_removed(&f[..2], "gone").unwrap();
        assert_eq!(n, 2);
        let inc = s.incident(&a.id).unwrap().unwrap();
        assert_eq!(inc.clip.state, ClipState::Expired);
        assert_eq!(inc.clip.path, None);
        assert_eq!(inc.clip.note.as_deref(), Some("gone"));
        assert_eq!(inc.snapshot(), None);
        assert_eq!(inc.snapshot_of(&b.id), Some(snap_of(&b).as_path()));
        // an expired clip stays expired
        s.clip_done(std::slice::from_ref(&a.id), &clip_of(&a), Duration::ZERO, 0)
            .unwrap();
        assert_eq!(
            s.incident(&a.id).unwrap().unwrap().clip.state,
            ClipState::Expired
        );
    }

    #[test]
    fn a_version_2_file_is_migrated_and_keeps_its_outbox_and_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ronda.db");
        let s = Store::open(&path).unwrap();
        let e = alert("gate-1", EventKind::NoMask, 0);
        let seq = s.append(&e).unwrap();
        s.webhook_cursor().unwrap();
        drop(s);
        // what ronda before incidents left behind: schema 2
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TABLE gate_record_changes; DROP TABLE gate_records; DROP TABLE gate_entries; \
             DROP TABLE gate_reports; DROP TABLE gate_start_occupancy; DROP TABLE gate_meta; \
             DROP TABLE broker_run; DROP TABLE mqtt_sessions; \
             DROP TABLE acks; DROP TABLE config_versions; DROP TABLE incident_types; DROP TABLE incident_events; DROP TABLE incidents; \
             DROP TABLE quarantine; ALTER TABLE events DROP COLUMN quarantined_ms; \
             PRAGMA user_version = 2;",
        )
        .unwrap();
        drop(conn);
        let s = Store::open(&path).unwrap();
        assert_eq!(s.unsent(0, 10).unwrap()[0].0, seq);
        assert_eq!(s.webhook_cursor_if_any().unwrap(), Some(seq));
        s.open_incident(&e, Some(&clip_of(&e)), None).unwrap();
        assert_eq!(s.incident(&e.id).unwrap().unwrap().id, e.id);
        drop(s);
        let conn = Connection::open(&path).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, super::super::SCHEMA_VERSION);
    }

    /// The list queries walk an index in the list's order (no sort of the whole match, no
    /// table scan), and the figures are printed. SQLite plans without statistics (ronda runs no
    /// ANALYZE), so the plan on 5,000 rows is the plan on a million; the figures for a big
    /// village's years are opt-in: `RONDA_INCIDENT_ROWS=100000 cargo test --lib lists_walk`.
    #[test]
    fn lists_walk_an_index_in_their_order() {
        let rows: i64 = std::env::var("RONDA_INCIDENT_ROWS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5_000);
        let (_d, s) = temp_store();
        let kinds = [
            "no_mask",
            "intrusion",
            "loitering",
            "curfew_entry",
            "crowding",
        ];
        {
            let mut conn = s.conn();
            let tx = conn.transaction().unwrap();
            {
                let mut inc = tx
                    .prepare(
                        "INSERT INTO incidents (id, camera, type, severity, time, time_ms, \
                         clip_path, clip_state, reviewed_by, reviewed_at) \
                         VALUES (?1, ?2, ?3, 'alert', '', ?4, ?5, 'ready', ?6, ?7)",
                    )
                    .unwrap();
                let mut ev = tx
                    .prepare(
                        "INSERT INTO incident_events (event_id, incident_id, type, time_ms) \
                         VALUES (?1, ?1, ?2, ?3)",
                    )
                    .unwrap();
                let mut ty = tx
                    .prepare(
                        "INSERT INTO incident_types (type, time_ms, incident_id) \
                         VALUES (?2, ?3, ?1)",
                    )
                    .unwrap();
                for i in 0..rows {
                    let id = format!("{:013}{:08}", 1_790_000_000_000 + i * 60_000, i);
                    let t = 1_790_000_000_000 + i * 60_000;
                    // the last kind is rare: one in a thousand
                    let kind = if i % 1000 == 0 {
                        kinds[4]
                    } else {
                        kinds[(i % 4) as usize]
                    };
                    let reviewed = i % 10 != 0;
                    inc.execute(params![
                        id,
                        format!("cam-{:02}", (i / 3) % 40),
                        kind,
                        t,
                        format!("cam/{id}.mp4"),
                        reviewed.then_some("pak-rt"),
                        reviewed.then_some(t)
                    ])
                    .unwrap();
                    ev.execute(params![id, kind, t]).unwrap();
                    ty.execute(params![id, kind, t]).unwrap();
                }
            }
            tx.commit().unwrap();
        }
        // what retention reads every run: every file with its protection
        let t = Instant::now();
        let files = s.stored_files().unwrap();
        println!(
            "stored_files (retention's read)        {} files {:7.2} ms",
            files.len(),
            t.elapsed().as_secs_f64() * 1000.0
        );
        assert_eq!(files.len(), rows as usize);
        let mid = DateTime::from_timestamp_millis(1_790_000_000_000 + rows / 2 * 60_000).unwrap();
        let first = s
            .incidents(&IncidentFilter {
                limit: 50,
                ..Default::default()
            })
            .unwrap();
        let cases: Vec<(&str, IncidentFilter)> = vec![
            ("newest 50", IncidentFilter::default()),
            (
                "page 2",
                IncidentFilter {
                    cursor: first.next.clone(),
                    ..Default::default()
                },
            ),
            (
                "deep page (mid-history cursor)",
                IncidentFilter {
                    cursor: Some(format!("{}_z", to_ms(mid))),
                    ..Default::default()
                },
            ),
            (
                "one camera",
                IncidentFilter {
                    camera: Some("cam-07".into()),
                    ..Default::default()
                },
            ),
            (
                "time range",
                IncidentFilter {
                    from: Some(mid - chrono::Duration::days(3)),
                    to: Some(mid),
                    ..Default::default()
                },
            ),
            (
                "not reviewed",
                IncidentFilter {
                    reviewed: Some(false),
                    ..Default::default()
                },
            ),
            (
                "one common type",
                IncidentFilter {
                    kinds: vec![EventKind::Intrusion],
                    ..Default::default()
                },
            ),
            (
                "one rare type (1 in 1000)",
                IncidentFilter {
                    kinds: vec![EventKind::Crowding],
                    ..Default::default()
                },
            ),
            (
                "one camera, two types",
                IncidentFilter {
                    camera: Some("cam-05".into()),
                    kinds: vec![EventKind::Loitering, EventKind::Intrusion],
                    ..Default::default()
                },
            ),
            (
                "two types, not reviewed, 200",
                IncidentFilter {
                    kinds: vec![EventKind::Loitering, EventKind::NoMask],
                    reviewed: Some(false),
                    limit: 200,
                    ..Default::default()
                },
            ),
            (
                "camera + type + not reviewed, 200",
                IncidentFilter {
                    camera: Some("cam-03".into()),
                    kinds: vec![EventKind::Loitering, EventKind::NoMask],
                    reviewed: Some(false),
                    limit: 200,
                    ..Default::default()
                },
            ),
        ];
        for (name, f) in cases {
            let (sql, args) = list_query(&f).unwrap();
            let plan: Vec<String> = {
                let conn = s.conn();
                let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
                st.query_map(params_from_iter(args), |r| r.get::<_, String>(3))
                    .unwrap()
                    .collect::<rusqlite::Result<_>>()
                    .unwrap()
            };
            let plan = plan.join("; ");
            let t = Instant::now();
            let runs = 5;
            let mut n = 0;
            for _ in 0..runs {
                n = s.incidents(&f).unwrap().items.len();
            }
            let ms = t.elapsed().as_secs_f64() * 1000.0 / runs as f64;
            println!("{name:38} {n:3} items {ms:7.2} ms  [{plan}]");
            assert!(n > 0, "{name}");
            // each walk is of an index in list order: no table scan, no sort of all matches
            // (merging the pages of several types sorts those pages only)
            assert!(
                plan.contains("USING INDEX incidents_")
                    || plan.contains("USING PRIMARY KEY (type=?"),
                "{name}: {plan}"
            );
            let sorts = plan.matches("TEMP B-TREE").count();
            assert!(
                sorts == 0 || (!f.kinds.is_empty() && !plan.contains("SCAN t")),
                "{name}: sorts the whole match: {plan}"
            );
        }
    }
}
