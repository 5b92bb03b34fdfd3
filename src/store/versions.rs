//! The versions of the configuration file: every file the admin editor wrote, and the file as
//! found when it differs from the newest version (edited by hand, or the first start), whole,
//! with who and when, so an admin can see what changed and go back.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, from_ms, to_ms};

/// Who "saved" a version that was found in the file rather than written by the editor.
pub const FILE_AUTHOR: &str = "file";
/// The summary of such a version.
pub const FILE_SUMMARY: &str = "edited by hand or first start";

/// One version, without its text (for the history list).
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigVersion {
    pub version: i64,
    pub saved_by: String,
    pub saved_at: DateTime<Utc>,
    pub summary: String,
    /// The version this one restored, when it is a revert.
    pub reverted_from: Option<i64>,
}

/// One version with the whole file.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredConfig {
    pub version: ConfigVersion,
    pub text: String,
}

const COLUMNS: &str = "version, saved_by, saved_ms, summary, reverted_from, text";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredConfig> {
    Ok(StoredConfig {
        version: ConfigVersion {
            version: r.get(0)?,
            saved_by: r.get(1)?,
            saved_at: from_ms(r.get(2)?),
            summary: r.get(3)?,
            reverted_from: r.get(4)?,
        },
        text: r.get(5)?,
    })
}

impl Store {
    /// Store a version of the configuration file; its number.
    pub fn save_config_version(
        &self,
        saved_by: &str,
        summary: &str,
        text: &str,
        reverted_from: Option<i64>,
    ) -> Result<i64, StoreError> {
        let conn = self.conn();
        conn.prepare_cached(
            "INSERT INTO config_versions (saved_by, saved_ms, summary, text, reverted_from) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut st| {
            st.execute(params![
                saved_by,
                to_ms(Utc::now()),
                summary,
                text,
                reverted_from
            ])
        })
        .map_err(self.err("storing a configuration version"))?;
        Ok(conn.last_insert_rowid())
    }

    /// The newest versions first, at most `limit`, without their text.
    pub fn config_versions(&self, limit: usize) -> Result<Vec<ConfigVersion>, StoreError> {
        let what = "listing the configuration versions";
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM config_versions ORDER BY version DESC LIMIT ?1"
            ))
            .map_err(self.err(what))?;
        st.query_map([limit as i64], row)
            .and_then(|rows| rows.map(|r| r.map(|c| c.version)).collect())
            .map_err(self.err(what))
    }

    /// Version `version` with its text.
    pub fn config_version(&self, version: i64) -> Result<Option<StoredConfig>, StoreError> {
        self.one_version(
            &format!("SELECT {COLUMNS} FROM config_versions WHERE version = ?1"),
            [version],
        )
    }

    /// The version before `version` (the one a diff compares it with).
    pub fn config_version_before(&self, version: i64) -> Result<Option<StoredConfig>, StoreError> {
        self.one_version(
            &format!(
                "SELECT {COLUMNS} FROM config_versions WHERE version < ?1 \
                 ORDER BY version DESC LIMIT 1"
            ),
            [version],
        )
    }

    /// The newest version.
    pub fn latest_config_version(&self) -> Result<Option<StoredConfig>, StoreError> {
        self.one_version(
            &format!("SELECT {COLUMNS} FROM config_versions ORDER BY version DESC LIMIT 1"),
            [],
        )
    }

    fn one_version(
        &self,
        sql: &str,
        args: impl rusqlite::Params,
    ) -> Result<Option<StoredConfig>, StoreError> {
        let what = "reading a configuration version";
        let conn = self.conn();
        conn.prepare_cached(sql)
            .and_then(|mut st| st.query_row(args, row).optional())
            .map_err(self.err(what))
    }

    /// Make sure the newest version is the file's `text`: when it differs (the file was edited
    /// by hand, or this is the first start), store it as a version by [`FILE_AUTHOR`], so the
    /// history is complete. The number of the version that holds `text`, and whether it was
    /// stored now. One transaction: two callers at once cannot both store it.
    pub fn record_config_file(&self, text: &str) -> Result<(i64, bool), StoreError> {
        let what = "recording the configuration file as a version";
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(self.err(what))?;
        let newest: Option<(i64, String)> = tx
            .query_row(
                "SELECT version, text FROM config_versions ORDER BY version DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.err(what))?;
        if let Some((version, newest_text)) = newest
            && newest_text == text
        {
            return Ok((version, false));
        }
        tx.execute(
            "INSERT INTO config_versions (saved_by, saved_ms, summary, text) \
             VALUES (?1, ?2, ?3, ?4)",
            params![FILE_AUTHOR, to_ms(Utc::now()), FILE_SUMMARY, text],
        )
        .map_err(self.err(what))?;
        let version = tx.last_insert_rowid();
        tx.commit().map_err(self.err(what))?;
        Ok((version, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_numbered_listed_newest_first_and_the_file_is_recorded_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("r.db")).unwrap();
        assert_eq!(store.latest_config_version().unwrap(), None);
        assert_eq!(store.record_config_file("a = 1\n").unwrap(), (1, true));
        assert_eq!(store.record_config_file("a = 1\n").unwrap(), (1, false));
        let v2 = store
            .save_config_version("pak-rw", "gate-1: line `x` added", "a = 2\n", None)
            .unwrap();
        assert_eq!(v2, 2);
        let v3 = store
            .save_config_version("pak-rw", "reverted to version 1", "a = 1\n", Some(1))
            .unwrap();
        let list = store.config_versions(10).unwrap();
        assert_eq!(
            list.iter().map(|v| v.version).collect::<Vec<_>>(),
            [3, 2, 1]
        );
        assert_eq!(list[0].reverted_from, Some(1));
        assert_eq!(list[2].saved_by, FILE_AUTHOR);
        assert_eq!(list[2].summary, FILE_SUMMARY);
        assert_eq!(store.config_versions(1).unwrap().len(), 1);
        let two = store.config_version(2).unwrap().unwrap();
        assert_eq!(two.text, "a = 2\n");
        assert_eq!(two.version.saved_by, "pak-rw");
        assert_eq!(store.config_version(9).unwrap(), None);
        assert_eq!(
            store
                .config_version_before(v3)
                .unwrap()
                .unwrap()
                .version
                .version,
            2
        );
        assert_eq!(store.config_version_before(1).unwrap(), None);
        assert_eq!(
            store.latest_config_version().unwrap().unwrap().text,
            "a = 1\n"
        );
        // the file edited by hand afterwards becomes a version of its own
        assert_eq!(store.record_config_file("a = 3\n").unwrap(), (4, true));
    }
}
