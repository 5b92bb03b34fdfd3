//! The incident list: which incidents a filter selects and the keyset page that holds them.

use chrono::{DateTime, Utc};
use rusqlite::params_from_iter;
use rusqlite::types::Value;

use super::*;

/// Which incidents to list. `Default` is the newest [`DEFAULT_PAGE`] of all.
#[derive(Clone, Debug, PartialEq)]
pub struct IncidentFilter {
    /// From this instant (inclusive).
    pub from: Option<DateTime<Utc>>,
    /// Up to this instant (exclusive).
    pub to: Option<DateTime<Utc>>,
    pub camera: Option<String>,
    /// Any of these types (an incident matches if any of its events has one); empty: all.
    pub kinds: Vec<EventKind>,
    /// Only reviewed (`Some(true)`) or not yet reviewed (`Some(false)`) incidents.
    pub reviewed: Option<bool>,
    /// 1 to [`MAX_PAGE`].
    pub limit: usize,
    /// [`Page::next`] of the previous page; `None` for the first.
    pub cursor: Option<String>,
}

impl Default for IncidentFilter {
    fn default() -> Self {
        Self {
            from: None,
            to: None,
            camera: None,
            kinds: Vec::new(),
            reviewed: None,
            limit: DEFAULT_PAGE,
            cursor: None,
        }
    }
}

/// One page of incidents, newest first.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    pub items: Vec<Incident>,
    /// The cursor of the next page; `None` on the last.
    pub next: Option<String>,
}

impl Store {
    /// A page of incidents matching `f`, newest first.
    pub fn incidents(&self, f: &IncidentFilter) -> Result<Page, IncidentError> {
        let what = "listing incidents";
        let (sql, args) = list_query(f)?;
        let conn = self.conn();
        let mut items = {
            // not cached: the filters make many statements, which would push the pipeline's few
            // out of the cache; preparing one costs some microseconds
            let mut st = conn.prepare(&sql).map_err(self.err(what))?;
            st.query_map(params_from_iter(args), read_incident)
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(self.err(what))?
        };
        let next = if items.len() > f.limit {
            items.truncate(f.limit);
            items.last().map(|i| format!("{}_{}", to_ms(i.at), i.id))
        } else {
            None
        };
        for inc in &mut items {
            inc.events = events_of(&conn, &inc.id).map_err(self.err(what))?;
        }
        Ok(Page { items, next })
    }
}

/// The list statement and its arguments for `f`. Without a type filter it walks one index of
/// `incidents` in list order (by time, camera's, or unreviewed) and stops after a page; so it
/// does with a type filter and a camera, looking up the types of each of the camera's
/// incidents. With a type filter and no camera, it walks the `incident_types` key of each type
/// asked in list order, a page each, and merges those pages (the union of each type's first
/// page holds the first page of all of them).
pub(super) fn list_query(f: &IncidentFilter) -> Result<(String, Vec<Value>), IncidentError> {
    if f.limit == 0 || f.limit > MAX_PAGE {
        return Err(IncidentError::BadLimit {
            limit: f.limit,
            max: MAX_PAGE,
        });
    }
    if let (Some(from), Some(to)) = (f.from, f.to)
        && from > to
    {
        return Err(IncidentError::BadRange { from, to });
    }
    let mut args: Vec<Value> = Vec::new();
    let mut arg = |v: Value| {
        args.push(v);
        format!("?{}", args.len())
    };
    let cursor = match &f.cursor {
        Some(c) => {
            let bad = || IncidentError::BadCursor {
                cursor: c.chars().take(64).collect(),
            };
            let (ms, id) = c.split_once('_').ok_or_else(bad)?;
            let ms: i64 = ms.parse().map_err(|_| bad())?;
            if id.is_empty() {
                return Err(bad());
            }
            Some((arg(Value::Integer(ms)), arg(Value::Text(id.to_string()))))
        }
        None => None,
    };
    let from = f.from.map(|t| arg(Value::Integer(to_ms(t))));
    let to = f.to.map(|t| arg(Value::Integer(to_ms(t))));
    let camera = f.camera.clone().map(|c| arg(Value::Text(c)));
    let limit = arg(Value::Integer(f.limit as i64 + 1));
    let mut kinds: Vec<String> = f.kinds.iter().map(enum_text).collect();
    kinds.sort();
    kinds.dedup();
    let kinds: Vec<String> = kinds.into_iter().map(|k| arg(Value::Text(k))).collect();

    // the conditions, on the table whose key is walked: `ms` and `id` name its columns
    let conditions = |ms: &str, id: &str| {
        let mut c = String::new();
        if let Some(p) = &from {
            c += &format!(" AND {ms} >= {p}");
        }
        if let Some(p) = &to {
            c += &format!(" AND {ms} < {p}");
        }
        if let Some((pm, pi)) = &cursor {
            c += &format!(" AND ({ms}, {id}) < ({pm}, {pi})");
        }
        if let Some(p) = &camera {
            c += &format!(" AND i.camera = {p}");
        }
        match f.reviewed {
            Some(true) => c += " AND i.reviewed_at IS NOT NULL",
            Some(false) => c += " AND i.reviewed_at IS NULL",
            None => {}
        }
        c
    };
    let sql = if kinds.is_empty() || camera.is_some() {
        // one camera has a small share of all incidents: walk its index and look each one's
        // types up by their full key
        let types = if kinds.is_empty() {
            String::new()
        } else {
            format!(
                " AND EXISTS (SELECT 1 FROM incident_types t WHERE t.type IN ({}) \
                 AND t.time_ms = i.time_ms AND t.incident_id = i.id)",
                kinds.join(", ")
            )
        };
        format!(
            "SELECT {COLUMNS} FROM incidents i WHERE true{}{types} \
             ORDER BY i.time_ms DESC, i.id DESC LIMIT {limit}",
            conditions("i.time_ms", "i.id")
        )
    } else {
        let pages: Vec<String> = kinds
            .iter()
            .map(|k| {
                format!(
                    "SELECT * FROM (SELECT {COLUMNS} FROM incident_types t \
                     JOIN incidents i ON i.id = t.incident_id WHERE t.type = {k}{} \
                     ORDER BY t.time_ms DESC, t.incident_id DESC LIMIT {limit})",
                    conditions("t.time_ms", "t.incident_id")
                )
            })
            .collect();
        format!(
            "{} ORDER BY time_ms DESC, id DESC LIMIT {limit}",
            pages.join(" UNION ")
        )
    };
    Ok((sql, args))
}
