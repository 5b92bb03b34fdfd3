//! Retention of incident files (DESIGN.md "Storage"): clips and snapshots older than `[store]
//! retention_days` go, then the oldest others until they fit in `[store] max_gb` and leave
//! `[store] keep_free_gb` free on their disk. The incident rows stay (the clip marked `expired`,
//! the snapshot path cleared); old outbox rows that every sink is done with go too.
//!
//! Why the free space: a box's disk is often smaller than `max_gb` (a 16 GB card under the
//! default 20), or shared with other files. Full, it stops the event store, and with it every
//! alert to the guard post (events wait in memory until the store writes again). So the task
//! looks at the disk every [`CHECK`] and, when less than `keep_free_gb` is free, removes the
//! oldest incident files at once, as an NVR overwrites its oldest recording: the watch goes on,
//! and what goes is what retention would take next anyway.
//!
//! What is never removed:
//! - a file of an incident one of whose events is still to be delivered (unsent over MQTT, or
//!   after the cursor of the webhook or of a notification destination): the guard's phone is
//!   about to get its snapshot;
//! - a clip still recording (`pending`): it is not on disk yet;
//! - anything outside `clips_dir`: every path is resolved (symlinks included) and must land
//!   inside the canonical clips directory, and a symlink is never followed or removed.
//!
//! A file already gone is fine: its row is marked when the file is due anyway (by age), never
//! just because it is missing, so an unmounted disk does not wipe the index of recent clips.
//! Files the index does not know (none in normal operation) are neither counted nor removed.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::SinkError;
use crate::store::{FileKind, Store, StoreError, StoredFile};

/// How often [`RetentionTask`] runs.
pub const EVERY: Duration = Duration::from_secs(10 * 60);

/// How often [`RetentionTask`] looks at the free space of the clips' disk between runs (one
/// `statvfs`; a pass only when short). At the demo's bitrates a camera's clip is 1-2 MB for
/// 10-15 s, so the default 1 GB kept free is far more than fills in one check.
pub const CHECK: Duration = Duration::from_secs(10);

/// The free space on the disk of the clips, and how much must stay free.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Room {
    /// Bytes free for ronda (not counting the part reserved for root).
    pub free: u64,
    /// `[store] keep_free_gb` in bytes.
    pub keep_free: u64,
}

impl Room {
    /// The free space of the disk holding `dir`, or `None` where it cannot be read (the
    /// directory does not exist yet: nothing recorded) or nothing is to be kept free.
    pub fn of(dir: &Path, keep_free: u64) -> Option<Room> {
        if keep_free == 0 {
            return None;
        }
        crate::store::free_bytes(dir)
            .ok()
            .map(|free| Room { free, keep_free })
    }

    /// Bytes to free to keep `keep_free` free.
    pub fn short(&self) -> u64 {
        self.keep_free.saturating_sub(self.free)
    }
}

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Files deleted.
    pub removed_files: usize,
    /// Their bytes.
    pub freed_bytes: u64,
    /// Bytes of the indexed files still on disk after the run.
    pub kept_bytes: u64,
    /// Clips marked `expired` (deleted now, or due and found already gone).
    pub expired_clips: usize,
    /// Snapshot paths cleared (likewise).
    pub removed_snapshots: usize,
    /// Due files that were already gone.
    pub missing_files: usize,
    /// Due files kept because an event of their incident is still to be delivered.
    pub protected_files: usize,
    /// Files whose path leaves the clips directory or is not a plain file: never touched.
    pub refused_files: usize,
    /// Files that could not be deleted (I/O error; logged).
    pub failed_files: usize,
    /// Still above the budget after the run (protected, refused or undeletable files).
    pub over_budget: bool,
    /// Bytes still to free on the disk to keep `keep_free_gb` free after the run (0: enough
    /// room, or the disk was not looked at).
    pub short_bytes: u64,
    /// Outbox rows deleted.
    pub deleted_events: usize,
}

/// Why a run could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "[store] clips_dir {}: {source}; check that it exists, is mounted and readable by the \
         user running ronda",
        dir.display()
    )]
    ClipsDir { dir: PathBuf, source: io::Error },
}

/// One file on disk and the index rows pointing at it (normally one).
struct Group {
    rows: Vec<StoredFile>,
    /// The newest of its rows: a shared file is as young as its youngest owner.
    at: DateTime<Utc>,
    protected: bool,
    place: Place,
    /// Counted as protected already (in the age pass).
    counted: bool,
    /// Could not be deleted (counted, logged): not tried again in this run.
    failed: bool,
}

enum Place {
    File { path: PathBuf, bytes: u64 },
    Missing,
    Refused(String),
    Gone,
}

/// Removes old incident files; see the module documentation.
pub struct Retention;

impl Retention {
    /// One pass at time `now`: by age (older than `retention_days`), then by budget (oldest
    /// first until the indexed files take at most `max_bytes`, and less by what `room` is
    /// short of), then the outbox rows. A `clips_dir` that does not exist yet (nothing
    /// recorded) skips the files.
    pub fn run_once(
        store: &Store,
        clips_dir: &Path,
        retention_days: u32,
        max_bytes: u64,
        room: Option<Room>,
        now: DateTime<Utc>,
    ) -> Result<RetentionReport, RetentionError> {
        let cutoff = now - chrono::Duration::days(i64::from(retention_days));
        let mut report = RetentionReport::default();
        let budget = Budget { max_bytes, room };
        match fs::canonicalize(clips_dir) {
            Ok(root) => files(store, &root, now, cutoff, budget, &mut report)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(RetentionError::ClipsDir {
                    dir: clips_dir.to_path_buf(),
                    source,
                });
            }
        }
        report.deleted_events = store.delete_old_events(cutoff)?;
        Ok(report)
    }
}

/// How much the indexed files may take: `max_bytes`, and less when the disk is short of room.
#[derive(Clone, Copy)]
struct Budget {
    max_bytes: u64,
    room: Option<Room>,
}

fn files(
    store: &Store,
    root: &Path,
    now: DateTime<Utc>,
    cutoff: DateTime<Utc>,
    budget: Budget,
    report: &mut RetentionReport,
) -> Result<(), RetentionError> {
    // group the rows by file (oldest first, as `stored_files` gives them)
    let mut groups: Vec<Group> = Vec::new();
    let mut by_path: HashMap<PathBuf, usize> = HashMap::new();
    for f in store.stored_files()? {
        match by_path.get(&f.path) {
            Some(&i) => {
                let g = &mut groups[i];
                g.at = g.at.max(f.at);
                g.protected |= f.protected;
                g.rows.push(f);
            }
            None => {
                by_path.insert(f.path.clone(), groups.len());
                groups.push(Group {
                    at: f.at,
                    protected: f.protected,
                    place: locate(root, &f.path),
                    counted: false,
                    failed: false,
                    rows: vec![f],
                });
            }
        }
    }
    groups.sort_by_key(|g| g.at);

    // by age
    let mut aged = Vec::new();
    let mut refused = None;
    for g in groups.iter_mut().filter(|g| g.at < cutoff) {
        if let Place::Refused(why) = &g.place {
            report.refused_files += 1;
            refused.get_or_insert_with(|| format!("{}: {why}", g.rows[0].path.display()));
            continue;
        }
        if g.protected {
            report.protected_files += 1;
            g.counted = true;
            continue;
        }
        if remove(root, g, report) {
            aged.append(&mut g.rows);
        }
    }
    if let Some(first) = refused {
        tracing::warn!(
            refused = report.refused_files,
            "retention leaves incident files alone that it must not touch; the first: {first}"
        );
    }
    let day = now.format("%Y-%m-%d");
    let note = format!("removed by retention on {day} (older than [store] retention_days)");
    mark(store, &aged, &note, report)?;
    // the age pass freed room already
    let short = budget
        .room
        .map_or(0, |r| r.short().saturating_sub(report.freed_bytes));

    // by budget, oldest first
    let mut removed = Vec::new();
    let mut total: u64 = groups
        .iter()
        .filter_map(|g| match g.place {
            Place::File { bytes, .. } => Some(bytes),
            _ => None,
        })
        .sum();
    let max_bytes = budget.max_bytes.min(total.saturating_sub(short));
    // (the note of what goes says which bound took it)
    let disk_bound = short > 0 && max_bytes < budget.max_bytes;
    let freed_by_age = report.freed_bytes;
    for g in groups.iter_mut() {
        if total <= max_bytes {
            break;
        }
        let Place::File { bytes, .. } = g.place else {
            continue;
        };
        if g.failed {
            continue;
        }
        if g.protected {
            if !g.counted {
                report.protected_files += 1;
                g.counted = true;
            }
            continue;
        }
        if remove(root, g, report) {
            total -= bytes;
            removed.append(&mut g.rows);
        }
    }
    let note = if disk_bound {
        format!("removed by retention on {day} (the disk was nearly full: [store] keep_free_gb)")
    } else {
        format!("removed by retention on {day} ([store] max_gb reached)")
    };
    mark(store, &removed, &note, report)?;
    report.kept_bytes = total;
    report.over_budget = total > max_bytes;
    report.short_bytes = short.saturating_sub(report.freed_bytes - freed_by_age);
    Ok(())
}

/// Where the file at `rel` (relative to the canonical clips directory `root`) is.
fn locate(root: &Path, rel: &Path) -> Place {
    if rel.components().next().is_none()
        || !rel.components().all(|c| matches!(c, Component::Normal(_)))
    {
        return Place::Refused("its path is not plain and relative to [store] clips_dir".into());
    }
    let joined = root.join(rel);
    let meta = match fs::symlink_metadata(&joined) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Place::Missing,
        Err(e) => return Place::Refused(format!("cannot read it: {e}")),
    };
    if !meta.file_type().is_file() {
        return Place::Refused("it is not a plain file (a symlink or directory)".into());
    }
    // a directory on the way may be a symlink out of the clips directory
    match fs::canonicalize(&joined) {
        Ok(path) if path.starts_with(root) => Place::File {
            path,
            bytes: meta.len(),
        },
        Ok(path) => Place::Refused(format!(
            "it resolves to {}, outside [store] clips_dir",
            path.display()
        )),
        Err(e) => Place::Refused(format!("cannot resolve it: {e}")),
    }
}

/// Delete the group's file (a missing one is fine). Whether its rows are to be marked.
fn remove(root: &Path, g: &mut Group, report: &mut RetentionReport) -> bool {
    match std::mem::replace(&mut g.place, Place::Gone) {
        Place::File { path, bytes } => match fs::remove_file(&path) {
            Ok(()) => {
                report.removed_files += 1;
                report.freed_bytes += bytes;
                prune_dirs(root, &path);
                true
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                report.missing_files += 1;
                true
            }
            Err(e) => {
                report.failed_files += 1;
                tracing::warn!("retention cannot remove {}: {e}", path.display());
                g.place = Place::File { path, bytes };
                g.failed = true;
                false
            }
        },
        Place::Missing => {
            report.missing_files += 1;
            true
        }
        p @ (Place::Refused(_) | Place::Gone) => {
            g.place = p;
            false
        }
    }
}

/// Remove the day directory `file` leaves empty (never `root`; camera directories stay, as the
/// recorder may be making a new day in one right now).
fn prune_dirs(root: &Path, file: &Path) {
    if let Some(day) = file.parent().filter(|d| d.starts_with(root) && *d != root)
        && day.parent() != Some(root)
    {
        // fails, harmlessly, while it still holds something
        let _ = fs::remove_dir(day);
    }
}

fn mark(
    store: &Store,
    rows: &[StoredFile],
    note: &str,
    report: &mut RetentionReport,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    store.files_removed(rows, note)?;
    for r in rows {
        match r.kind {
            FileKind::Clip => report.expired_clips += 1,
            FileKind::Snapshot => report.removed_snapshots += 1,
        }
    }
    Ok(())
}

/// What [`RetentionTask`] keeps to.
#[derive(Clone, Debug, PartialEq)]
pub struct RetentionOptions {
    pub clips_dir: PathBuf,
    pub retention_days: u32,
    pub max_bytes: u64,
    /// Free space kept on the clips' disk (0: the disk is not looked at).
    pub keep_free_bytes: u64,
    /// Time between runs ([`EVERY`]).
    pub every: Duration,
    /// Time between looks at the disk's free space ([`CHECK`]).
    pub check: Duration,
}

impl RetentionOptions {
    /// From `[store]`: `max_gb` in gigabytes of 10^9 bytes.
    pub fn from_settings(s: &crate::config::Store) -> Self {
        Self {
            clips_dir: s.clips_dir.clone(),
            retention_days: s.retention_days,
            max_bytes: (s.max_gb * 1e9) as u64,
            keep_free_bytes: (s.keep_free_gb * 1e9) as u64,
            every: EVERY,
            check: CHECK,
        }
    }
}

/// Runs [`Retention::run_once`] at start and then every `every` on its own thread, until
/// stopped (or dropped). Logs one info line per run that removed something.
pub struct RetentionTask {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl RetentionTask {
    pub fn start(store: Arc<Store>, opts: RetentionOptions) -> Result<RetentionTask, SinkError> {
        Self::start_also(store, opts, |_| {})
    }

    /// [`RetentionTask::start`], running `also` (with the run's time) after each run: the gate
    /// book's entries, pictures and records go with the incidents (`gate::retention`).
    pub fn start_also(
        store: Arc<Store>,
        opts: RetentionOptions,
        also: impl Fn(DateTime<Utc>) + Send + 'static,
    ) -> Result<RetentionTask, SinkError> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("retention".into())
            .spawn(move || run(&store, &opts, &flag, &also))
            .map_err(|e| SinkError::Thread {
                what: "retention",
                reason: e.to_string(),
            })?;
        Ok(RetentionTask {
            stop,
            thread: Some(thread),
        })
    }

    /// Stop, waiting for a run in progress to finish.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        let (lock, wake) = &*self.stop;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RetentionTask {
    fn drop(&mut self) {
        self.halt();
    }
}

fn run(
    store: &Store,
    opts: &RetentionOptions,
    stop: &(Mutex<bool>, Condvar),
    also: &dyn Fn(DateTime<Utc>),
) {
    let (lock, wake) = stop;
    // said once while the disk stays short of room with nothing more of ronda's to remove
    let mut short_said = false;
    loop {
        let now = Utc::now();
        pass(store, opts, now, &mut short_said);
        also(now);
        let until = std::time::Instant::now() + opts.every;
        loop {
            let mut stopped = lock.lock().unwrap_or_else(PoisonError::into_inner);
            let left = until.saturating_duration_since(std::time::Instant::now());
            if !*stopped && !left.is_zero() {
                stopped = wake
                    .wait_timeout(stopped, left.min(opts.check))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            if *stopped {
                return;
            }
            drop(stopped);
            if std::time::Instant::now() >= until {
                break;
            }
            let short =
                Room::of(&opts.clips_dir, opts.keep_free_bytes).is_some_and(|r| r.short() > 0);
            if short {
                pass(store, opts, Utc::now(), &mut short_said);
            } else {
                short_said = false;
            }
        }
    }
}

/// One run of [`Retention::run_once`] with the disk's room as it is now, logged.
fn pass(store: &Store, opts: &RetentionOptions, now: DateTime<Utc>, short_said: &mut bool) {
    let started = std::time::Instant::now();
    let room = Room::of(&opts.clips_dir, opts.keep_free_bytes);
    match Retention::run_once(
        store,
        &opts.clips_dir,
        opts.retention_days,
        opts.max_bytes,
        room,
        now,
    ) {
        Ok(r) => {
            log_run(&r, opts, started.elapsed());
            if r.short_bytes > 0 && !*short_said {
                *short_said = true;
                tracing::error!(
                    dir = %opts.clips_dir.display(),
                    free_mb = room.map_or(0, |r| r.free) / 1_000_000,
                    keep_free_mb = opts.keep_free_bytes / 1_000_000,
                    protected = r.protected_files,
                    "the disk of [store] clips_dir is nearly full and no more incident files may \
                     go (the rest belong to alerts not yet delivered, or are not ronda's): free \
                     space on that disk; once it is full, alerts wait in memory and reach nobody"
                );
            } else if r.short_bytes == 0 {
                *short_said = false;
            }
        }
        Err(e) => tracing::error!("retention: {e}"),
    }
}

fn log_run(r: &RetentionReport, opts: &RetentionOptions, took: Duration) {
    if r.removed_files + r.expired_clips + r.removed_snapshots + r.deleted_events > 0 {
        tracing::info!(
            removed_files = r.removed_files,
            freed_mb = r.freed_bytes / 1_000_000,
            kept_mb = r.kept_bytes / 1_000_000,
            expired_clips = r.expired_clips,
            removed_snapshots = r.removed_snapshots,
            deleted_events = r.deleted_events,
            ms = took.as_millis() as u64,
            "retention removed old incident files and events"
        );
    } else {
        tracing::debug!(kept_mb = r.kept_bytes / 1_000_000, "retention: nothing due");
    }
    if r.over_budget && r.short_bytes == 0 {
        tracing::warn!(
            kept_mb = r.kept_bytes / 1_000_000,
            max_mb = opts.max_bytes / 1_000_000,
            protected = r.protected_files,
            refused = r.refused_files,
            "incident files stay above [store] max_gb: the rest belong to events not yet \
             delivered, or cannot be removed"
        );
    }
}
