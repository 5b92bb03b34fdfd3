//! The hub's store: every village's events (each once, by id, in arrival order), the latest
//! camera status, line counts and availability of each village.
//!
//! SQLite (bundled rusqlite) today, written in plain portable SQL so that PostgreSQL is not
//! ruled out for a large city: TEXT and BIGINT columns only, composite primary keys, `INSERT
//! ... ON CONFLICT ... DO NOTHING / DO UPDATE SET ... = excluded....` (both speak it), no
//! AUTOINCREMENT or rowid (the arrival number `seq` is given here, by the one writer), no
//! SQLite-only types, pragmas only as connection settings outside the schema.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use serde::Serialize;

/// Why the store failed; names the file.
#[derive(Debug, thiserror::Error)]
pub enum HubStoreError {
    #[error("hub store {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("hub store: {0}")]
    Sql(#[from] rusqlite::Error),
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS hub_events (
    seq BIGINT NOT NULL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    site TEXT NOT NULL,
    camera TEXT NOT NULL,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL,
    time TEXT NOT NULL,
    clip TEXT,
    snapshot TEXT,
    received_ms BIGINT NOT NULL,
    json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS hub_events_by_site ON hub_events (site, seq);
CREATE TABLE IF NOT EXISTS hub_villages (
    site TEXT NOT NULL PRIMARY KEY,
    availability TEXT,
    availability_ms BIGINT,
    last_seen_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS hub_cameras (
    site TEXT NOT NULL,
    camera TEXT NOT NULL,
    state TEXT NOT NULL,
    json TEXT NOT NULL,
    received_ms BIGINT NOT NULL,
    PRIMARY KEY (site, camera)
);
CREATE TABLE IF NOT EXISTS hub_counts (
    site TEXT NOT NULL,
    camera TEXT NOT NULL,
    line TEXT NOT NULL,
    count_in BIGINT NOT NULL,
    count_out BIGINT NOT NULL,
    occupancy BIGINT NOT NULL,
    since TEXT,
    received_ms BIGINT NOT NULL,
    PRIMARY KEY (site, camera, line)
);
";

/// One event as stored (the village's JSON kept whole, the columns the pages filter on).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredEvent {
    /// Arrival order at the hub (over all villages).
    pub seq: i64,
    pub id: String,
    pub site: String,
    pub camera: String,
    pub kind: String,
    pub severity: String,
    pub time: String,
    pub clip: Option<String>,
    pub snapshot: Option<String>,
    pub received_ms: i64,
    pub json: String,
}

/// An event to store, as read from `ronda/<site>/events`.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    pub id: String,
    pub site: String,
    pub camera: String,
    pub kind: String,
    pub severity: String,
    pub time: String,
    pub clip: Option<String>,
    pub snapshot: Option<String>,
    pub json: String,
}

/// A camera's retained status.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CameraRow {
    pub camera: String,
    pub state: String,
    pub json: String,
    pub received_ms: i64,
}

/// A line's retained counts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CountsRow {
    pub camera: String,
    pub line: String,
    pub count_in: i64,
    pub count_out: i64,
    pub occupancy: i64,
    pub since: Option<String>,
}

/// What the list of villages shows of one village.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct VillageState {
    pub site: String,
    /// `online` / `offline` as the village last said (retained); `None`: never heard.
    pub availability: Option<String>,
    pub availability_ms: Option<i64>,
    pub last_seen_ms: Option<i64>,
    pub alerts: i64,
    pub cameras: i64,
    pub cameras_down: i64,
    pub count_in: i64,
    pub count_out: i64,
}

/// What a message did to the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    /// A new event (its `seq`) or a new state.
    New(i64),
    /// An event already stored (a resend after a broken link): nothing changed.
    Duplicate,
    Updated,
}

struct Inner {
    conn: Connection,
    /// The next event's `seq`.
    next_seq: i64,
}

/// The hub's database. One connection behind a mutex: the subscriber writes one message at a
/// time and the pages read small answers, so a second connection would buy nothing.
pub struct HubStore {
    inner: Mutex<Inner>,
}

fn open_error(path: &Path, e: impl std::fmt::Display) -> HubStoreError {
    HubStoreError::Open {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

impl HubStore {
    /// Open (or create, readable by this user only) the store at `path`.
    pub fn open(path: &Path) -> Result<HubStore, HubStoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| open_error(path, e))?;
        }
        if !path.exists() {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)
                .map_err(|e| open_error(path, e))?;
        }
        let conn = Connection::open(path).map_err(|e| open_error(path, e))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| open_error(path, e))?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(|e| open_error(path, e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), mode, "the hub's store cannot use WAL here; it works, but slower");
        }
        // FULL, unlike the village box: the hub acknowledges a message to the broker once its
        // row is committed, and the broker then forgets it; a commit must survive a power cut.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| open_error(path, e))?;
        Self::with(conn)
    }

    /// An in-memory store (tests).
    pub fn memory() -> Result<HubStore, HubStoreError> {
        Self::with(Connection::open_in_memory()?)
    }

    fn with(conn: Connection) -> Result<HubStore, HubStoreError> {
        conn.execute_batch(SCHEMA)?;
        let last: Option<i64> =
            conn.query_row("SELECT MAX(seq) FROM hub_events", [], |r| r.get(0))?;
        Ok(HubStore {
            inner: Mutex::new(Inner {
                conn,
                next_seq: last.unwrap_or(0) + 1,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Store an event once: a second copy of an id (the village resends what the broker had not
    /// acknowledged when the link broke) changes nothing.
    pub fn add_event(&self, e: &NewEvent, now_ms: i64) -> Result<Stored, HubStoreError> {
        let mut inner = self.lock();
        let seq = inner.next_seq;
        let tx = inner.conn.transaction()?;
        let added = tx.execute(
            "INSERT INTO hub_events (seq, id, site, camera, kind, severity, time, clip, \
             snapshot, received_ms, json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
             ON CONFLICT (id) DO NOTHING",
            params![
                seq, e.id, e.site, e.camera, e.kind, e.severity, e.time, e.clip, e.snapshot,
                now_ms, e.json
            ],
        )?;
        seen(&tx, &e.site, now_ms)?;
        tx.commit()?;
        if added == 0 {
            return Ok(Stored::Duplicate);
        }
        inner.next_seq += 1;
        Ok(Stored::New(seq))
    }

    /// A camera's retained status; `None` (an empty retained message) removes the camera.
    pub fn set_camera(
        &self,
        site: &str,
        camera: &str,
        status: Option<(&str, &str)>,
        now_ms: i64,
    ) -> Result<Stored, HubStoreError> {
        let mut inner = self.lock();
        let tx = inner.conn.transaction()?;
        match status {
            Some((state, json)) => tx.execute(
                "INSERT INTO hub_cameras (site, camera, state, json, received_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (site, camera) DO UPDATE SET \
                 state = excluded.state, json = excluded.json, received_ms = excluded.received_ms",
                params![site, camera, state, json, now_ms],
            )?,
            None => tx.execute(
                "DELETE FROM hub_cameras WHERE site = ?1 AND camera = ?2",
                params![site, camera],
            )?,
        };
        seen(&tx, site, now_ms)?;
        tx.commit()?;
        Ok(Stored::Updated)
    }

    /// A line's retained counts; `None` (the line was removed in the village) removes it.
    pub fn set_counts(
        &self,
        site: &str,
        camera: &str,
        line: &str,
        counts: Option<(i64, i64, i64, Option<&str>)>,
        now_ms: i64,
    ) -> Result<Stored, HubStoreError> {
        let mut inner = self.lock();
        let tx = inner.conn.transaction()?;
        match counts {
            Some((cin, cout, occ, since)) => tx.execute(
                "INSERT INTO hub_counts (site, camera, line, count_in, count_out, occupancy, \
                 since, received_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                 ON CONFLICT (site, camera, line) DO UPDATE SET count_in = excluded.count_in, \
                 count_out = excluded.count_out, occupancy = excluded.occupancy, \
                 since = excluded.since, received_ms = excluded.received_ms",
                params![site, camera, line, cin, cout, occ, since, now_ms],
            )?,
            None => tx.execute(
                "DELETE FROM hub_counts WHERE site = ?1 AND camera = ?2 AND line = ?3",
                params![site, camera, line],
            )?,
        };
        seen(&tx, site, now_ms)?;
        tx.commit()?;
        Ok(Stored::Updated)
    }

    /// The village's `online` / `offline` (retained; `offline` is its last will).
    pub fn set_availability(
        &self,
        site: &str,
        availability: &str,
        now_ms: i64,
    ) -> Result<Stored, HubStoreError> {
        let inner = self.lock();
        inner.conn.execute(
            "INSERT INTO hub_villages (site, availability, availability_ms, last_seen_ms) \
             VALUES (?1, ?2, ?3, ?3) ON CONFLICT (site) DO UPDATE SET \
             availability = excluded.availability, availability_ms = excluded.availability_ms, \
             last_seen_ms = excluded.last_seen_ms",
            params![site, availability, now_ms],
        )?;
        Ok(Stored::Updated)
    }

    /// Every village heard of, with its state: alert events received since `alerts_since_ms`,
    /// cameras and how many are down, the sum of its line counts.
    pub fn villages(&self, alerts_since_ms: i64) -> Result<Vec<VillageState>, HubStoreError> {
        self.rows(
            "SELECT v.site, v.availability, v.availability_ms, v.last_seen_ms, \
             (SELECT COUNT(*) FROM hub_events e WHERE e.site = v.site AND e.severity = 'alert' \
               AND e.received_ms >= ?1), \
             (SELECT COUNT(*) FROM hub_cameras c WHERE c.site = v.site), \
             (SELECT COUNT(*) FROM hub_cameras c WHERE c.site = v.site AND c.state <> 'online'), \
             (SELECT COALESCE(SUM(n.count_in), 0) FROM hub_counts n WHERE n.site = v.site), \
             (SELECT COALESCE(SUM(n.count_out), 0) FROM hub_counts n WHERE n.site = v.site) \
             FROM hub_villages v ORDER BY v.site",
            [alerts_since_ms],
            |r| {
                Ok(VillageState {
                    site: r.get(0)?,
                    availability: r.get(1)?,
                    availability_ms: r.get(2)?,
                    last_seen_ms: r.get(3)?,
                    alerts: r.get(4)?,
                    cameras: r.get(5)?,
                    cameras_down: r.get(6)?,
                    count_in: r.get(7)?,
                    count_out: r.get(8)?,
                })
            },
        )
    }

    pub fn cameras(&self, site: &str) -> Result<Vec<CameraRow>, HubStoreError> {
        self.rows(
            "SELECT camera, state, json, received_ms FROM hub_cameras WHERE site = ?1 \
             ORDER BY camera",
            [site],
            |r| {
                Ok(CameraRow {
                    camera: r.get(0)?,
                    state: r.get(1)?,
                    json: r.get(2)?,
                    received_ms: r.get(3)?,
                })
            },
        )
    }

    pub fn counts(&self, site: &str) -> Result<Vec<CountsRow>, HubStoreError> {
        self.rows(
            "SELECT camera, line, count_in, count_out, occupancy, since FROM hub_counts \
             WHERE site = ?1 ORDER BY camera, line",
            [site],
            |r| {
                Ok(CountsRow {
                    camera: r.get(0)?,
                    line: r.get(1)?,
                    count_in: r.get(2)?,
                    count_out: r.get(3)?,
                    occupancy: r.get(4)?,
                    since: r.get(5)?,
                })
            },
        )
    }

    /// Events after `after` (a `seq`) in arrival order, at most `limit`, of the villages in
    /// `sites` (`None`: all villages) with one of `severities` (empty: any).
    pub fn events_after(
        &self,
        sites: Option<&[String]>,
        severities: &[&str],
        after: i64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, HubStoreError> {
        let (filter, args) = site_filter(sites, severities, after, limit);
        self.rows(
            &format!(
                "SELECT {COLUMNS} FROM hub_events WHERE seq > ?1{filter} ORDER BY seq LIMIT ?2"
            ),
            params_from_iter(args),
            event_row,
        )
    }

    /// The newest events (newest first) of the villages in `sites` with one of `severities`
    /// (empty: any), at most `limit`.
    pub fn recent(
        &self,
        sites: Option<&[String]>,
        severities: &[&str],
        limit: usize,
    ) -> Result<Vec<StoredEvent>, HubStoreError> {
        let (filter, args) = site_filter(sites, severities, 0, limit);
        self.rows(
            &format!(
                "SELECT {COLUMNS} FROM hub_events WHERE seq > ?1{filter} ORDER BY seq DESC LIMIT ?2"
            ),
            params_from_iter(args),
            event_row,
        )
    }

    /// One event of `site` by id.
    pub fn event(&self, site: &str, id: &str) -> Result<Option<StoredEvent>, HubStoreError> {
        let inner = self.lock();
        Ok(inner
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM hub_events WHERE site = ?1 AND id = ?2"),
                params![site, id],
                event_row,
            )
            .optional()?)
    }

    /// The highest `seq` stored (0: none).
    pub fn last_seq(&self) -> i64 {
        self.lock().next_seq - 1
    }

    /// Every row `sql` selects with `params`, each read by `row`.
    fn rows<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, HubStoreError> {
        let inner = self.lock();
        let mut st = inner.conn.prepare(sql)?;
        let rows = st.query_map(params, row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

const COLUMNS: &str =
    "seq, id, site, camera, kind, severity, time, clip, snapshot, received_ms, json";

fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvent> {
    Ok(StoredEvent {
        seq: r.get(0)?,
        id: r.get(1)?,
        site: r.get(2)?,
        camera: r.get(3)?,
        kind: r.get(4)?,
        severity: r.get(5)?,
        time: r.get(6)?,
        clip: r.get(7)?,
        snapshot: r.get(8)?,
        received_ms: r.get(9)?,
        json: r.get(10)?,
    })
}

/// `AND site IN (?3, ?4, ...) AND severity IN (...)` (each left out when not asked) and the
/// arguments `after, limit, sites..., severities...`. An empty list of sites matches nothing.
fn site_filter(
    sites: Option<&[String]>,
    severities: &[&str],
    after: i64,
    limit: usize,
) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value;
    let mut args = vec![Value::Integer(after), Value::Integer(limit as i64)];
    let mut filter = String::new();
    let marks = |args: &mut Vec<Value>, values: Vec<String>| {
        let first = args.len() + 1;
        let m: Vec<String> = (0..values.len())
            .map(|i| format!("?{}", first + i))
            .collect();
        args.extend(values.into_iter().map(Value::Text));
        m.join(", ")
    };
    match sites {
        None => {}
        Some([]) => filter.push_str(" AND 1 = 0"),
        Some(list) => {
            let m = marks(&mut args, list.to_vec());
            filter.push_str(&format!(" AND site IN ({m})"));
        }
    }
    if !severities.is_empty() {
        let m = marks(
            &mut args,
            severities.iter().map(|s| s.to_string()).collect(),
        );
        filter.push_str(&format!(" AND severity IN ({m})"));
    }
    (filter, args)
}

/// The village was heard from now (it need not be in the configuration).
fn seen(tx: &rusqlite::Transaction<'_>, site: &str, now_ms: i64) -> rusqlite::Result<usize> {
    tx.execute(
        "INSERT INTO hub_villages (site, last_seen_ms) VALUES (?1, ?2) \
         ON CONFLICT (site) DO UPDATE SET last_seen_ms = excluded.last_seen_ms",
        params![site, now_ms],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, site: &str, severity: &str) -> NewEvent {
        NewEvent {
            id: id.into(),
            site: site.into(),
            camera: "gate-1".into(),
            kind: "intrusion".into(),
            severity: severity.into(),
            time: "2026-11-22T21:04:05.120+07:00".into(),
            clip: Some(format!("/api/incidents/{id}/clip.mp4")),
            snapshot: None,
            json: format!("{{\"id\": \"{id}\"}}"),
        }
    }

    #[test]
    fn an_event_is_stored_once_by_id_in_arrival_order() {
        let s = HubStore::memory().unwrap();
        assert_eq!(
            s.add_event(&event("a", "rw9", "alert"), 1).unwrap(),
            Stored::New(1)
        );
        assert_eq!(
            s.add_event(&event("b", "rw2", "info"), 2).unwrap(),
            Stored::New(2)
        );
        assert_eq!(
            s.add_event(&event("a", "rw9", "alert"), 3).unwrap(),
            Stored::Duplicate
        );
        assert_eq!(
            s.add_event(&event("c", "rw9", "alert"), 4).unwrap(),
            Stored::New(3)
        );
        let all = s.events_after(None, &[], 0, 100).unwrap();
        let ids: Vec<&str> = all.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        let rw9 = s.events_after(Some(&["rw9".into()]), &[], 1, 100).unwrap();
        assert_eq!(rw9.len(), 1);
        assert_eq!(rw9[0].id, "c");
        assert!(s.events_after(Some(&[]), &[], 0, 100).unwrap().is_empty());
        assert_eq!(s.recent(None, &[], 1).unwrap()[0].id, "c");
        let alerts = s.events_after(None, &["warning", "alert"], 0, 100).unwrap();
        assert_eq!(alerts.len(), 2, "{alerts:?}");
        let rw9 = s.recent(Some(&["rw9".into()]), &["info"], 10).unwrap();
        assert!(rw9.is_empty(), "{rw9:?}");
        assert!(
            s.event("rw2", "a").unwrap().is_none(),
            "another village's event"
        );
        assert_eq!(s.event("rw9", "a").unwrap().unwrap().seq, 1);
    }

    #[test]
    fn the_state_of_a_village_is_upserted() {
        let s = HubStore::memory().unwrap();
        s.set_availability("rw9", "online", 1).unwrap();
        s.set_camera("rw9", "gate-1", Some(("online", "{}")), 2)
            .unwrap();
        s.set_camera("rw9", "yard", Some(("online", "{}")), 2)
            .unwrap();
        s.set_camera("rw9", "yard", Some(("offline", "{}")), 3)
            .unwrap();
        s.set_counts("rw9", "gate-1", "gate", Some((5, 2, 3, None)), 3)
            .unwrap();
        s.set_counts("rw9", "gate-1", "side", Some((1, 1, 0, None)), 3)
            .unwrap();
        s.set_counts("rw9", "gate-1", "side", None, 4).unwrap();
        s.add_event(&event("a", "rw9", "alert"), 10).unwrap();
        s.add_event(&event("b", "rw9", "alert"), 20).unwrap();
        let v = &s.villages(15).unwrap()[0];
        assert_eq!(v.availability.as_deref(), Some("online"));
        assert_eq!((v.cameras, v.cameras_down), (2, 1));
        assert_eq!((v.count_in, v.count_out), (5, 2));
        assert_eq!(v.alerts, 1);
        assert_eq!(s.counts("rw9").unwrap().len(), 1);
        // a village heard only through its events is listed too
        s.add_event(&event("c", "stranger", "info"), 30).unwrap();
        assert_eq!(s.villages(0).unwrap().len(), 2);
    }

    #[test]
    fn seq_goes_on_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.db");
        {
            let s = HubStore::open(&path).unwrap();
            s.add_event(&event("a", "rw9", "alert"), 1).unwrap();
        }
        let s = HubStore::open(&path).unwrap();
        assert_eq!(
            s.add_event(&event("a", "rw9", "alert"), 2).unwrap(),
            Stored::Duplicate
        );
        assert_eq!(
            s.add_event(&event("b", "rw9", "alert"), 2).unwrap(),
            Stored::New(2)
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
