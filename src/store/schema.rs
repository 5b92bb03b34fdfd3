//! The database schema, versioned with `PRAGMA user_version`: migration N takes a file from
//! version N-1 to N. A migration runs in one transaction together with the version bump, so a
//! crash half-way leaves the file at the old version, and opening a file twice changes nothing.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// Migration `i` (0-based) brings the file to version `i + 1`. Append only; never edit a
/// migration that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: events (the outbox), gate counts, retained MQTT state.
    r#"
    CREATE TABLE events (
        -- Outbox order. AUTOINCREMENT: a seq is never reused, even after retention deletes rows,
        -- so a cursor "everything after seq N" stays right.
        seq       INTEGER PRIMARY KEY AUTOINCREMENT,
        id        TEXT    NOT NULL UNIQUE,
        camera    TEXT    NOT NULL,
        type      TEXT    NOT NULL,
        -- As in the event: local time of the site with its offset.
        time      TEXT    NOT NULL,
        -- The same instant in Unix milliseconds, for searches by time across offsets.
        time_ms   INTEGER,
        severity  TEXT    NOT NULL,
        json      TEXT    NOT NULL,
        -- Unix ms at which the broker acknowledged it (QoS 1 PUBACK); NULL = still to send.
        sent_at   INTEGER
    );
    -- The outbox query reads only unsent rows, in seq order.
    CREATE INDEX events_unsent ON events(seq) WHERE sent_at IS NULL;
    CREATE INDEX events_time ON events(time_ms);
    CREATE INDEX events_camera_time ON events(camera, time_ms);
    CREATE INDEX events_type_time ON events(type, time_ms);
    CREATE INDEX events_severity_time ON events(severity, time_ms);

    -- Gate counts per line since the last daily reset; they survive a restart.
    CREATE TABLE line_counts (
        camera     TEXT    NOT NULL,
        line       TEXT    NOT NULL,
        in_count   INTEGER NOT NULL,
        out_count  INTEGER NOT NULL,
        since_ms   INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (camera, line)
    ) WITHOUT ROWID;

    -- The last payload of every retained MQTT topic (camera status, line counts), by topic
    -- suffix after the prefix, so it is published again after a reconnect or a restart.
    CREATE TABLE retained (
        topic      TEXT    NOT NULL PRIMARY KEY,
        payload    TEXT    NOT NULL,
        updated_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 2: delivery cursors of sinks that keep their own place in the outbox (the webhook).
    r#"
    -- A sink that delivers the outbox strictly in seq order and never skips ahead needs no row
    -- per event: everything with a seq up to `seq` is done for it (delivered, refused for good,
    -- or filtered out), everything after is still to do. One row per sink, one small update per
    -- delivery, nothing to clean up, and the `sent_at` of MQTT stays untouched. The row is made
    -- when the sink first starts on a store, at the end of the outbox then (see cursors.rs).
    CREATE TABLE sink_cursors (
        sink       TEXT    NOT NULL PRIMARY KEY,
        seq        INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 3: incidents (review state, clip and snapshot files) go here, referencing events(id).
];

/// The schema version this build writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// Bring the file up to [`VERSION`].
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| StoreError::open(path, &e))?;
    if found > VERSION {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            known: VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = i as i64 + 1;
        // IMMEDIATE: take the write lock first, so two processes opening a new file at once
        // cannot both run migration 1.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| StoreError::open(path, &e))?;
        let now: i64 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| StoreError::open(path, &e))?;
        if now >= version {
            continue; // another process did it meanwhile
        }
        tx.execute_batch(sql)
            .and_then(|_| tx.pragma_update(None, "user_version", version))
            .and_then(|_| tx.commit())
            .map_err(|e| StoreError::open(path, &e))?;
        tracing::debug!(path = %path.display(), version, "database migrated");
    }
    Ok(())
}
