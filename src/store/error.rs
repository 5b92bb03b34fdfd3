//! What can go wrong with the database. Every message names the file and says what to do, on one
//! line, because `ronda run` prints it as is when it cannot start.

use std::path::{Path, PathBuf};

use rusqlite::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory the database should live in cannot be made.
    #[error(
        "cannot create the directory {} for the database: {reason}; create it, make it writable \
         for the user running ronda, or set [store] path to another place",
        dir.display()
    )]
    CreateDir { dir: PathBuf, reason: String },

    /// SQLite could not open (or first write to) the file.
    #[error("cannot open the database {}: {reason}; {hint}", path.display())]
    Open {
        path: PathBuf,
        reason: String,
        hint: &'static str,
    },

    /// The file was migrated by a later ronda; this build must not touch it.
    #[error(
        "the database {} was written by a newer ronda (schema version {found}, this build knows \
         up to {known}); upgrade ronda, or set [store] path to another file",
        path.display()
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },

    /// A statement failed on an open database.
    #[error("database {}: {what} failed: {reason}{hint}", path.display())]
    Sql {
        path: PathBuf,
        what: &'static str,
        reason: String,
        hint: String,
    },

    /// A stored event no longer parses (damaged file, or edited by hand).
    #[error(
        "database {}: the stored event #{seq} cannot be read ({reason}); the file may be damaged",
        path.display()
    )]
    BadEvent {
        path: PathBuf,
        seq: i64,
        reason: String,
    },
}

impl StoreError {
    pub(crate) fn open(path: &Path, e: &rusqlite::Error) -> StoreError {
        StoreError::Open {
            path: path.to_path_buf(),
            reason: e.to_string(),
            hint: hint(e).unwrap_or(
                "check that the file and its directory are writable by the user running ronda, \
                 or set [store] path to another place",
            ),
        }
    }

    pub(crate) fn sql(path: &Path, what: &'static str, e: rusqlite::Error) -> StoreError {
        StoreError::Sql {
            path: path.to_path_buf(),
            what,
            reason: e.to_string(),
            hint: hint(&e).map(|h| format!("; {h}")).unwrap_or_default(),
        }
    }

    /// The disk is full (the caller may want to say so louder than other failures).
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::Open { hint, .. } => *hint == DISK_FULL,
            StoreError::Sql { hint, .. } => hint.contains(DISK_FULL),
            _ => false,
        }
    }
}

const DISK_FULL: &str = "the disk is full: free space (old clips under [store] clips_dir go first) \
                         and ronda carries on; unsent events are kept";

/// What to do about the SQLite failures a user can fix.
fn hint(e: &rusqlite::Error) -> Option<&'static str> {
    let code = e.sqlite_error_code()?;
    Some(match code {
        ErrorCode::DiskFull => DISK_FULL,
        ErrorCode::ReadOnly | ErrorCode::PermissionDenied | ErrorCode::CannotOpen => {
            "check that the file and its directory are writable by the user running ronda, or \
             set [store] path to another place"
        }
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
            "another process keeps the database locked: is a second ronda running with the same \
             [store] path?"
        }
        ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => {
            "the file is not a ronda database or is damaged: move it away (ronda then starts a \
             new one) or set [store] path to another file"
        }
        ErrorCode::SystemIoFailure => {
            "the disk reported an I/O error: check it (dmesg) and its free space"
        }
        _ => return None,
    })
}
