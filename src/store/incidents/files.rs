//! The files of incidents on disk: settling the clips an interrupted run left pending, and what
//! retention may remove.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::*;

/// How a clip file is read back: its play time (if its index says) and its size, or why it is
/// not a complete MP4. The clip writer's module owns MP4 ([`crate::sinks::clips::probe_mp4`]);
/// the store takes it as a function so it does not depend on the sinks.
pub type Probe<'a> = &'a dyn Fn(&Path) -> Result<(Option<Duration>, u64), String>;

/// What [`Store::recover_clips`] found of the clips an interrupted run left pending.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The file was complete on disk (written, but the run ended before it was indexed).
    pub ready: usize,
    /// No complete file: marked failed.
    pub failed: usize,
}

/// Which kind of file of an incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    Clip,
    Snapshot,
}

/// A clip or snapshot on disk as the index knows it (for retention).
#[derive(Clone, Debug, PartialEq)]
pub struct StoredFile {
    pub kind: FileKind,
    /// Relative to `[store] clips_dir`.
    pub path: PathBuf,
    /// The incident (clip) or event (snapshot) the file belongs to.
    pub owner: String,
    /// The time of that incident or event.
    pub at: DateTime<Utc>,
    /// An event of its incident is still to be delivered (MQTT not acknowledged, or after the
    /// cursor of the webhook or a notification destination): it must stay.
    pub protected: bool,
}

impl Store {
    /// At start, before the clip recorder runs: the clips an interrupted run left `pending`
    /// become `ready` when their file is on disk and is an MP4 with its index (files appear
    /// only complete, by rename, so such a clip was written and only its report was lost), and
    /// `failed` otherwise (the run stopped while recording: [`crate::sinks::startup_cleanup`]
    /// removes its `.part`). Nothing is left pointing at a file that is not there.
    pub fn recover_clips(
        &self,
        clips_dir: &Path,
        probe_mp4: Probe<'_>,
    ) -> Result<Recovered, StoreError> {
        let what = "recovering clips of an interrupted run";
        let pending: Vec<(String, Option<String>)> = {
            let conn = self.conn();
            let mut st = conn
                .prepare_cached("SELECT id, clip_path FROM incidents WHERE clip_state = 'pending'")
                .map_err(self.err(what))?;
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
                .map_err(self.err(what))?
        };
        let mut done = Recovered::default();
        for (id, path) in pending {
            let probe = match &path {
                Some(p) if plain_relative(Path::new(p)) => probe_mp4(&clips_dir.join(p)),
                Some(_) => Err("its path leaves the clips directory".to_string()),
                None => Err("no path".to_string()),
            };
            let conn = self.conn();
            match probe {
                Ok((duration, bytes)) => {
                    conn.prepare_cached(
                        "UPDATE incidents SET clip_state = 'ready', clip_ms = ?2, \
                         clip_bytes = ?3 WHERE id = ?1 AND clip_state = 'pending'",
                    )
                    .and_then(|mut st| {
                        st.execute(params![
                            id,
                            duration.map(|d| d.as_millis() as i64),
                            bytes as i64
                        ])
                    })
                    .map_err(self.err(what))?;
                    done.ready += 1;
                }
                Err(why) => {
                    tracing::debug!(incident = %id, "clip of an interrupted run: {why}");
                    conn.prepare_cached(
                        "UPDATE incidents SET clip_state = 'failed', clip_path = NULL, \
                         clip_note = ?2 WHERE id = ?1 AND clip_state = 'pending'",
                    )
                    .and_then(|mut st| {
                        st.execute(params![id, "ronda stopped before the clip was written"])
                    })
                    .map_err(self.err(what))?;
                    done.failed += 1;
                }
            }
        }
        Ok(done)
    }

    /// Every `ready` clip and every snapshot the index points at, oldest first, each with
    /// whether an event of its incident is still to be delivered (for retention).
    pub fn stored_files(&self) -> Result<Vec<StoredFile>, StoreError> {
        let what = "listing the incident files";
        // read before the files: the cursor only moves forward, so an older value protects more
        let behind = self.lowest_sink_cursor()?.unwrap_or(i64::MAX);
        let protected = "EXISTS (SELECT 1 FROM incident_events pe JOIN events e \
                         ON e.id = pe.event_id WHERE pe.incident_id = i.id \
                         AND (e.sent_at IS NULL OR e.seq > ?1))";
        let conn = self.conn();
        let mut files = Vec::new();
        for (kind, sql) in [
            (
                FileKind::Clip,
                format!(
                    "SELECT i.clip_path, i.id, i.time_ms, {protected} FROM incidents i \
                     WHERE i.clip_state = 'ready' AND i.clip_path IS NOT NULL"
                ),
            ),
            (
                FileKind::Snapshot,
                format!(
                    "SELECT s.snapshot_path, s.event_id, s.time_ms, {protected} \
                     FROM incident_events s JOIN incidents i ON i.id = s.incident_id \
                     WHERE s.snapshot_path IS NOT NULL"
                ),
            ),
        ] {
            let mut st = conn.prepare_cached(&sql).map_err(self.err(what))?;
            let rows = st
                .query_map([behind], |r| {
                    Ok(StoredFile {
                        kind,
                        path: PathBuf::from(r.get::<_, String>(0)?),
                        owner: r.get(1)?,
                        at: from_ms(r.get(2)?),
                        protected: r.get(3)?,
                    })
                })
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(self.err(what))?;
            files.extend(rows);
        }
        files.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.owner.cmp(&b.owner)));
        Ok(files)
    }

    /// Retention removed (or found gone) these files: clips become `expired` with `note`, the
    /// snapshots' paths are cleared. Only rows still pointing at the same path change. Returns
    /// how many rows changed.
    pub fn files_removed(&self, files: &[StoredFile], note: &str) -> Result<usize, StoreError> {
        let what = "marking removed incident files";
        let note = truncate(note, MAX_CLIP_NOTE_CHARS);
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.err(what))?;
        let mut n = 0;
        for f in files {
            let path = f.path.to_string_lossy();
            n += match f.kind {
                FileKind::Clip => tx
                    .prepare_cached(
                        "UPDATE incidents SET clip_state = 'expired', clip_path = NULL, \
                         clip_note = ?3 WHERE id = ?1 AND clip_path = ?2",
                    )
                    .and_then(|mut st| st.execute(params![f.owner, path, note])),
                FileKind::Snapshot => tx
                    .prepare_cached(
                        "UPDATE incident_events SET snapshot_path = NULL \
                         WHERE event_id = ?1 AND snapshot_path = ?2",
                    )
                    .and_then(|mut st| st.execute(params![f.owner, path])),
            }
            .map_err(self.err(what))?;
        }
        tx.commit().map_err(self.err(what))?;
        Ok(n)
    }
}
