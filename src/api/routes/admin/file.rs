//! Reading and writing the configuration file for the editor. A write never leaves a half
//! written file: the new text goes to a temporary file in the same directory, is flushed to
//! the disk, gets the old file's permissions and replaces it in one rename (a power cut leaves
//! either the old file or the new one).

use std::io::Write;
use std::path::{Path, PathBuf};

/// The file's text, or what to do about it.
pub fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read the configuration file {}: {e}; check that it exists and that the user \
             running ronda may read it",
            path.display()
        )
    })
}

/// Replace the file's text (see the module documentation). A symbolic link is followed: the
/// file it points to is replaced, the link stays.
pub fn write(path: &Path, text: &str) -> Result<(), String> {
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let failed = |e: std::io::Error| {
        format!(
            "cannot write the configuration file {}: {e}; the file is unchanged. Check that the \
             user running ronda may write to it and to its directory, and that the disk is not \
             full",
            path.display()
        )
    };
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = dir.join(format!(".{name}.{}-{nanos}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        if let Ok(meta) = std::fs::metadata(&target) {
            f.set_permissions(meta.permissions())?;
        }
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &target)?;
        // the rename itself is on the disk once the directory is
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(failed)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_write_replaces_the_text_keeps_the_mode_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ronda.toml");
        std::fs::write(&path, "old\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("current.toml");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        write(&link, "new\n").unwrap();
        assert_eq!(read(&path).unwrap(), "new\n");
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 2, "{names:?}");
        let e = write(&dir.path().join("no/such/dir.toml"), "x").unwrap_err();
        assert!(e.contains("the file is unchanged"), "{e}");
    }
}
