//! Where incident files live and how they get there without ever being seen half-written.
//!
//! Layout: `<clips_dir>/<camera>/<YYYY-MM-DD>/<incident id>.mp4` (and `.jpg` for snapshots),
//! the date being the site's local date of the incident, so an admin can find and delete a day
//! by hand and retention can work a directory at a time.
//!
//! Every file is first written to `<name>.part`, flushed to disk (fsync), then renamed onto its
//! name and the directory is synced: a reader (the HTTP API, a guard's browser) sees either no
//! file or the complete one. A crash leaves only `*.part` files, which [`startup_cleanup`]
//! removes on the next start: an interrupted clip is gone, never left corrupt.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The suffix of a file still being written.
pub const PART_SUFFIX: &str = ".part";

/// `<clips_dir>/<camera>/<YYYY-MM-DD>/<id>.<ext>`, dated in the site's time zone.
pub fn incident_path(
    clips_dir: &Path,
    camera: &str,
    at: SystemTime,
    tz: chrono_tz::Tz,
    id: &str,
    ext: &str,
) -> PathBuf {
    let day = chrono::DateTime::<chrono::Utc>::from(at)
        .with_timezone(&tz)
        .format("%Y-%m-%d")
        .to_string();
    clips_dir.join(camera).join(day).join(format!("{id}.{ext}"))
}

/// Is `s` safe as one path component (a camera or incident id)? Ids come from the config and
/// from ronda itself, but nothing that could climb out of the clips directory is accepted.
pub fn safe_component(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// `<path>.part`.
pub fn part_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(PART_SUFFIX);
    PathBuf::from(s)
}

/// Make the written `part` durable and give it its final name `path`.
pub fn commit(part: &Path, path: &Path) -> io::Result<()> {
    fs::File::open(part)?.sync_all()?;
    fs::rename(part, path)?;
    // the rename itself is only durable once the directory is synced
    if let Some(dir) = path.parent()
        && let Ok(d) = fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Remove a `.part` file after a failure; a missing file is fine.
pub fn discard(part: &Path) {
    match fs::remove_file(part) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!("cannot remove the unfinished {}: {e}", part.display()),
    }
}

/// Is this I/O error a full disk (or quota)?
pub fn is_disk_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) || e.raw_os_error() == Some(libc::ENOSPC)
        || e.raw_os_error() == Some(libc::EDQUOT)
}

/// What an admin can do about an I/O error on the clips directory.
pub fn io_hint(e: &io::Error) -> &'static str {
    if is_disk_full(e) {
        "the disk is full: free space, or lower [store] max_gb / retention_days"
    } else {
        match e.kind() {
            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                "make [store] clips_dir writable by the user ronda runs as"
            }
            io::ErrorKind::NotFound => "check that [store] clips_dir exists and is mounted",
            _ => "check [store] clips_dir and the disk",
        }
    }
}

/// Remove every `*.part` file under `clips_dir` (left by an interrupted run) and return how many.
/// Call once at start, before the recorder writes anything. A missing directory is not an error
/// (nothing was recorded yet); one that cannot be read is.
pub fn startup_cleanup(clips_dir: &Path) -> io::Result<usize> {
    if !clips_dir.exists() {
        return Ok(0);
    }
    let mut removed = 0;
    let mut stack = vec![clips_dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let p = entry.path();
            // never follow symlinks: a link out of the clips dir must not make us delete there
            if kind.is_dir() {
                stack.push(p);
            } else if kind.is_file() && p.to_string_lossy().ends_with(PART_SUFFIX) {
                match fs::remove_file(&p) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    if removed > 0 {
        tracing::info!(
            "removed {removed} unfinished clip/snapshot file(s) under {} left by an interrupted run",
            clips_dir.display()
        );
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn paths_are_dated_in_the_site_time_zone() {
        // 2026-11-22 18:30 UTC is 2026-11-23 01:30 in Jakarta (UTC+7)
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_372_200);
        let p = incident_path(
            Path::new("/c"),
            "gate-1",
            at,
            chrono_tz::Asia::Jakarta,
            "x1",
            "mp4",
        );
        assert_eq!(p, Path::new("/c/gate-1/2026-11-23/x1.mp4"));
        assert_eq!(part_path(&p), Path::new("/c/gate-1/2026-11-23/x1.mp4.part"));
    }

    #[test]
    fn only_plain_names_are_components() {
        assert!(safe_component("gate-1"));
        assert!(safe_component("17700000000000001abcd"));
        for bad in ["", "..", ".hidden", "a/b", "a\\b", "a b", "x\0"] {
            assert!(!safe_component(bad), "{bad:?}");
        }
    }

    #[test]
    fn cleanup_removes_only_part_files() {
        let d = tempfile::tempdir().unwrap();
        let day = d.path().join("cam01/2026-01-01");
        fs::create_dir_all(&day).unwrap();
        fs::write(day.join("a.mp4.part"), b"x").unwrap();
        fs::write(day.join("b.mp4"), b"x").unwrap();
        fs::write(d.path().join("c.jpg.part"), b"x").unwrap();
        assert_eq!(startup_cleanup(d.path()).unwrap(), 2);
        assert!(day.join("b.mp4").exists());
        assert_eq!(startup_cleanup(d.path()).unwrap(), 0);
        assert_eq!(startup_cleanup(&d.path().join("nope")).unwrap(), 0);
    }
}
