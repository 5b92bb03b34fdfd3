//! The SQLite store (bundled SQLite, WAL): events and the MQTT outbox, gate counts, retained MQTT
//! state, the webhook's place in the outbox, the incidents reviewers search (incidents.rs), the
//! gate book (gatebook/), whether the embedded broker's last run stopped cleanly (runs.rs), the
//! guard apps' persistent sessions on it (sessions.rs).
//! Every event is written here before anything else sees it (DESIGN.md "Storage").
//!
//! Uses (of the crate, besides its own folder): events, rules.
//!
//! One [`Store`] per file and process, shared as `Arc<Store>` by the pipeline threads and the MQTT
//! sink: one connection behind a mutex. The statements are small (one row, one index), so the lock
//! is held for well under a millisecond and a pool would buy nothing on a 2-core box.
//!
//! Times are stored as Unix milliseconds (UTC); the event's own `time` text (local, with offset)
//! is kept as written.

mod acks;
mod counts;
mod cursors;
mod disk;
mod error;
mod gatebook;
mod incidents;
mod outbox;
mod quarantine;
mod retained;
mod runs;
mod schema;
mod sessions;
mod versions;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::Connection;

pub use acks::{Ack, Acked};
pub use counts::reset_due;
pub use cursors::{Cursor, NOTIFY_PREFIX, WEBHOOK};
pub use disk::free_bytes;
pub use error::StoreError;
pub use gatebook::{
    EntryFilter, EntryRecord, FieldChange, GateEntry, GateError, GateRecord, GateRemoved,
    NewGateEntry, PersonKind, RecordChange, RecordFields, RecordFilter, StartOccupancy,
    StoredReport,
};
pub use incidents::{
    Clip, ClipState, DEFAULT_PAGE, FileKind, Incident, IncidentError, IncidentEvent,
    IncidentFilter, MAX_NOTE_CHARS, MAX_PAGE, Opened, Page, Probe, Recovered, Review, StoredFile,
};
pub use outbox::StoredEvent;
pub use quarantine::Quarantined;
pub use runs::Crashed;
pub use schema::VERSION as SCHEMA_VERSION;
pub use sessions::MqttSession;
pub use versions::{ConfigVersion, FILE_AUTHOR, FILE_SUMMARY, StoredConfig};

/// How long a statement waits for a lock held by another connection to the same file (the HTTP
/// API or a second tool reading it) before it fails with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Store {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Open (or create) the database at `path`, making its directory if needed, and bring its
    /// schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::CreateDir {
                dir: dir.to_path_buf(),
                reason: e.to_string(),
            })?;
        }
        create_private(path);
        let mut conn = Connection::open(path).map_err(|e| StoreError::open(path, &e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| StoreError::open(path, &e))?;
        // WAL: the pipeline appends while the API reads, without blocking each other, and a
        // commit is one sequential append instead of a rewrite of pages plus a rollback journal.
        // This is also the first write to a new file, so an unwritable place fails here, in open.
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(|e| StoreError::open(path, &e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), mode, "the database cannot use WAL here (network file system?); it works, but slower");
        }
        // synchronous=NORMAL (not FULL): in WAL mode this still never corrupts the file and never
        // loses a commit when ronda crashes or is killed; only a power cut can lose the last
        // commits, those since the last checkpoint fsync. FULL would fsync on every event and
        // every PUBACK, which on the SD cards and eMMC of small boxes costs milliseconds each and
        // wears the card; the events' own delivery is at-least-once anyway.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| StoreError::open(path, &e))?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(|e| StoreError::open(path, &e))?;
        schema::migrate(&mut conn, path)?;
        Ok(Store {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection. A thread that panicked while holding it cannot have left a transaction
    /// open (a dropped `Transaction` rolls back), so a poisoned lock is still good to use.
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn err(&self, what: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
        move |e| StoreError::sql(&self.path, what, e)
    }
}

/// A new database file is made readable by ronda's user only (0600): it holds events with
/// guards' names and who reviewed what. SQLite gives its `-wal` and `-shm` files the same
/// permissions. An existing file keeps the permissions its admin gave it. A failure here is
/// left to `Connection::open`, which says it in SQLite's words with what to do.
fn create_private(path: &Path) {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
}

fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests;

/// For the tests of the store and of its users.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::events::{Event, EventKind, Severity};

    /// A store in a temporary directory (kept while the directory is).
    pub fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("ronda.db")).unwrap();
        (dir, store)
    }

    /// A `camera_offline` stored and, when `sent`, acknowledged by the broker at that time:
    /// its seq and id.
    pub fn stored_event(store: &Store, sent: Option<DateTime<Utc>>) -> (i64, String) {
        let e = Event::new(
            "rw9",
            chrono_tz::Asia::Jakarta,
            "gate-1",
            EventKind::CameraOffline,
            Severity::Warning,
            Utc::now(),
        );
        let seq = store.append(&e).unwrap();
        if let Some(t) = sent {
            store
                .conn()
                .execute(
                    "UPDATE events SET sent_at = ?2 WHERE seq = ?1",
                    rusqlite::params![seq, to_ms(t)],
                )
                .unwrap();
        }
        (seq, e.id)
    }
}
