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
    // 3: incidents for reviewers: what happened, its clip and snapshot files, its review.
    r#"
    -- One row per incident, named after the alert event that opened it. Alerts that a running
    -- clip took in (the recorder joins overlapping alerts of a camera into one clip) belong to
    -- the same incident: they are rows of incident_events, not incidents of their own.
    CREATE TABLE incidents (
        id          TEXT    NOT NULL PRIMARY KEY,
        camera      TEXT    NOT NULL,
        -- The opening event's type; every event's own type is in incident_events.
        type        TEXT    NOT NULL,
        -- The highest severity of its events.
        severity    TEXT    NOT NULL,
        -- The opening event's time as written (local, with offset) and in Unix ms (UTC).
        time        TEXT    NOT NULL,
        time_ms     INTEGER NOT NULL,
        -- Relative to [store] clips_dir; NULL when there is no file (none, failed, expired).
        clip_path   TEXT,
        clip_state  TEXT    NOT NULL DEFAULT 'none'
                    CHECK (clip_state IN ('none', 'pending', 'ready', 'failed', 'expired')),
        clip_ms     INTEGER,
        clip_bytes  INTEGER,
        -- Why the clip failed, or when and why it expired.
        clip_note   TEXT,
        reviewed_by TEXT,
        reviewed_at INTEGER,
        note        TEXT
    );
    -- The list is newest first by (time_ms, id), which is also the page cursor: for all
    -- incidents, one camera's, or the ones still to review, an index walked in that order.
    CREATE INDEX incidents_time ON incidents(time_ms, id);
    CREATE INDEX incidents_camera_time ON incidents(camera, time_ms, id);
    CREATE INDEX incidents_unreviewed ON incidents(time_ms, id) WHERE reviewed_at IS NULL;
    -- A clip still recording takes in the next alerts by its path; startup settles the ones an
    -- interrupted run left pending.
    CREATE INDEX incidents_clip ON incidents(clip_path) WHERE clip_path IS NOT NULL;
    CREATE INDEX incidents_pending ON incidents(clip_state) WHERE clip_state = 'pending';

    -- Every event of an incident, the opening one included (event_id = incident_id), with its
    -- own snapshot: each alert's JSON links /api/incidents/<its own id>/..., so any event id
    -- finds its incident here. No foreign key to events: retention keeps the events an
    -- incident references, and an incident may be indexed before its event is stored.
    CREATE TABLE incident_events (
        event_id      TEXT    NOT NULL PRIMARY KEY,
        incident_id   TEXT    NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
        type          TEXT    NOT NULL,
        time_ms       INTEGER NOT NULL,
        -- Relative to [store] clips_dir; NULL when none was written or retention removed it.
        snapshot_path TEXT
    ) WITHOUT ROWID;
    CREATE INDEX incident_events_incident ON incident_events(incident_id);

    -- The types of an incident's events, once each, keyed in list order: the type filter walks
    -- this key for each type asked and stops after a page, however common or rare the type.
    -- time_ms is the incident's (not the event's), so the order is the list's.
    CREATE TABLE incident_types (
        type        TEXT    NOT NULL,
        time_ms     INTEGER NOT NULL,
        incident_id TEXT    NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
        PRIMARY KEY (type, time_ms, incident_id)
    ) WITHOUT ROWID;
    "#,
    // 4: guards' acknowledgements (published on MQTT like events) and the versions of the
    // configuration admins saved from the web UI.
    r#"
    -- One acknowledgement per event: the first guard's. Published on <prefix>/acks in seq order
    -- and marked sent on the broker's PUBACK, like the outbox.
    CREATE TABLE acks (
        seq       INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id  TEXT    NOT NULL UNIQUE,
        user      TEXT    NOT NULL,
        at_ms     INTEGER NOT NULL,
        -- Local time of the site with its offset, as published.
        time      TEXT    NOT NULL,
        sent_at   INTEGER
    );
    CREATE INDEX acks_unsent ON acks(seq) WHERE sent_at IS NULL;

    -- Every configuration file the web UI wrote (and the file as found at a start when it
    -- differs from the newest version: edited by hand), whole, with who and when.
    CREATE TABLE config_versions (
        version       INTEGER PRIMARY KEY AUTOINCREMENT,
        saved_by      TEXT    NOT NULL,
        saved_ms      INTEGER NOT NULL,
        -- What changed, in words, for the history list.
        summary       TEXT    NOT NULL,
        text          TEXT    NOT NULL,
        -- Set when this version restores an earlier one.
        reverted_from INTEGER
    );
    "#,
    // 5: messages set aside (quarantined) because the broker or the MQTT client would refuse
    // them: a topic over 65,535 bytes, a wildcard in a topic, a message over the packet limit,
    // an event that no longer reads. Sent as they are, they cost the connection and, being
    // first in line again after every reconnect, blocked everything behind them.
    r#"
    -- Set when the event (the acknowledgement) was quarantined: it is not sent (and not
    -- counted as waiting), and retention keeps it like any event the broker never acknowledged.
    ALTER TABLE events ADD COLUMN quarantined_ms INTEGER;
    ALTER TABLE acks ADD COLUMN quarantined_ms INTEGER;

    -- What was set aside, why and when. An event keeps its JSON in `events`; a retained
    -- message leaves `retained` (so it is not sent again at every connect) and keeps its
    -- payload here.
    CREATE TABLE quarantine (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        kind     TEXT    NOT NULL CHECK (kind IN ('event', 'ack', 'retained')),
        -- The event's id (also of an acknowledgement), or the retained topic after the prefix.
        ref      TEXT    NOT NULL,
        topic    TEXT    NOT NULL,
        payload  TEXT,
        reason   TEXT    NOT NULL,
        at_ms    INTEGER NOT NULL,
        UNIQUE (kind, ref)
    );
    "#,
    // 6: the gate book (issue 15): every crossing of a gate line with the person's picture, the
    // guards' records of guests and newcomers with their audit trail, the daily reports, and
    // the starting occupancy admins set. Personal data: guards and admins only, deleted after
    // [gatebook] retention_days (src/gate).
    r#"
    -- One row per counted crossing of a gate camera's line, keyed by its line_crossing event.
    CREATE TABLE gate_entries (
        id         TEXT    NOT NULL PRIMARY KEY,
        camera     TEXT    NOT NULL,
        line       TEXT    NOT NULL,
        direction  TEXT    NOT NULL CHECK (direction IN ('in', 'out')),
        track_id   INTEGER,
        -- The event's time as written (site time with offset) and in Unix ms (UTC).
        time       TEXT    NOT NULL,
        time_ms    INTEGER NOT NULL,
        -- The mask verdict when the person's face was checked on the way to the line.
        mask       TEXT    CHECK (mask IN ('mask', 'no_mask')),
        mask_score REAL,
        -- The person cut from the picture that counted, relative to [store] clips_dir.
        crop_path  TEXT,
        -- An entry (in) inside the line's night window: it must be recorded in time.
        night      INTEGER NOT NULL DEFAULT 0,
        -- The unrecorded_entry event raised for it, if one was.
        alert_id   TEXT
    ) WITHOUT ROWID;
    CREATE INDEX gate_entries_time ON gate_entries(time_ms, id);
    CREATE INDEX gate_entries_night ON gate_entries(time_ms) WHERE night = 1 AND alert_id IS NULL;
    CREATE INDEX gate_entries_alert ON gate_entries(alert_id) WHERE alert_id IS NOT NULL;

    -- Who came in: a resident, a guest or a newcomer (warga pendatang), linked to their entry
    -- and, once they left, to their exit.
    CREATE TABLE gate_records (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        kind        TEXT    NOT NULL CHECK (kind IN ('resident', 'guest', 'newcomer')),
        name        TEXT    NOT NULL,
        origin      TEXT    NOT NULL DEFAULT '',
        visiting    TEXT    NOT NULL DEFAULT '',
        purpose     TEXT    NOT NULL DEFAULT '',
        phone       TEXT    NOT NULL DEFAULT '',
        stay        TEXT    NOT NULL DEFAULT '',
        rt          TEXT    NOT NULL DEFAULT '',
        entry_id    TEXT    UNIQUE REFERENCES gate_entries(id) ON DELETE SET NULL,
        exit_id     TEXT    UNIQUE REFERENCES gate_entries(id) ON DELETE SET NULL,
        entered_ms  INTEGER NOT NULL,
        left_ms     INTEGER,
        created_by  TEXT    NOT NULL,
        created_ms  INTEGER NOT NULL,
        updated_by  TEXT    NOT NULL,
        updated_ms  INTEGER NOT NULL
    );
    CREATE INDEX gate_records_entered ON gate_records(entered_ms);
    CREATE INDEX gate_records_inside ON gate_records(kind) WHERE left_ms IS NULL;
    CREATE INDEX gate_records_updated ON gate_records(updated_ms);

    -- The audit trail of a record: who did what to it, when, and which fields changed how.
    CREATE TABLE gate_record_changes (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        record_id INTEGER NOT NULL REFERENCES gate_records(id) ON DELETE CASCADE,
        user      TEXT    NOT NULL,
        at_ms     INTEGER NOT NULL,
        action    TEXT    NOT NULL,
        -- JSON: [{"field": "name", "from": "...", "to": "..."}]
        changes   TEXT    NOT NULL
    );
    CREATE INDEX gate_record_changes_record ON gate_record_changes(record_id, id);

    -- One daily report per day (the 24 hours before [gatebook] report_at), made once: the row
    -- is the marker that keeps a restart from sending it twice.
    CREATE TABLE gate_reports (
        day       TEXT    NOT NULL PRIMARY KEY,
        from_ms   INTEGER NOT NULL,
        to_ms     INTEGER NOT NULL,
        made_ms   INTEGER NOT NULL,
        json      TEXT    NOT NULL,
        text      TEXT    NOT NULL,
        -- When the webhook took its message (NULL: not yet, or no webhook).
        sent_ms   INTEGER,
        send_note TEXT
    ) WITHOUT ROWID;

    -- How many people were inside at the start of a counting day, as an admin set it.
    CREATE TABLE gate_start_occupancy (
        day     TEXT    NOT NULL PRIMARY KEY,
        start   INTEGER NOT NULL CHECK (start >= 0),
        set_by  TEXT    NOT NULL,
        set_ms  INTEGER NOT NULL
    ) WITHOUT ROWID;

    -- Small facts of the gate book: when it first ran on this store (no report is made for a
    -- day that ended before).
    CREATE TABLE gate_meta (
        key   TEXT    NOT NULL PRIMARY KEY,
        value INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 7: whether the embedded broker's last run ended with a clean stop (runs.rs).
    r#"
    -- One row while a run of the embedded broker is in progress: made at its start, deleted at
    -- its clean stop. Found at a start, the run before it ended in a crash or a power cut.
    CREATE TABLE broker_run (
        id         INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
        started_ms INTEGER NOT NULL
    );
    "#,
    // 8: the guard apps' persistent sessions on the embedded broker (sessions.rs).
    r#"
    -- One row per app connected with a fixed client id and clean session off: made again at the
    -- next start, and sent what came after its last event.
    CREATE TABLE mqtt_sessions (
        client_id  TEXT    NOT NULL PRIMARY KEY,
        user       TEXT,
        -- JSON: [["ronda/rw9/#", 1], ...], each filter with the QoS the broker granted.
        filters    TEXT    NOT NULL,
        -- The id of the last event, and the event id of the last acknowledgement, the app took.
        last_event TEXT,
        last_ack   TEXT,
        since_ms   INTEGER NOT NULL,
        heard_ms   INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
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
