//! The admin editor's change to one camera, written into the configuration file's text.
//!
//! The editor sends a camera's lines and zones whole ([`CameraEdit`]); [`apply_camera_edit`]
//! puts them into the file with `toml_edit`, so everything else stays as the admin (or the
//! installer) wrote it: comments, key order, blank lines, the other cameras and tables. A line or
//! zone that was already in the file keeps its own comments and formatting; only the values that
//! changed are rewritten. The result is validated with [`Settings::parse`], the very check of
//! `ronda check-config`, and a refused edit comes back as [`FieldIssue`]s that name the line or
//! zone and the field, so the page can show each message next to its input.
//!
//! Pure functions: no file system here (the HTTP layer reads and writes the file).

mod redact;
mod summary;

use std::path::Path;

use serde::{Deserialize, Serialize};
use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, Value};

use super::{Camera, ConfigError, Issue, Settings, Window};

pub use redact::redacted_text;
pub use summary::{summarize, summarize_camera};

/// What the editor sends for one camera. Lines and zones are sent whole, in the order they
/// should have in the file (a field left out means its default); camera keys left out stay as
/// they are in the file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CameraEdit {
    #[serde(default)]
    pub lines: Vec<LineEdit>,
    #[serde(default)]
    pub zones: Vec<ZoneEdit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask_check: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis_fps: Option<f64>,
}

/// One counting line as the editor has it. Points are in the camera picture's pixels; there may
/// be any number of them here, so that a wrong count is refused by the validation with its
/// place, like in a hand-written file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineEdit {
    pub name: String,
    /// The name the line had when the editor loaded it (`None`: drawn now). A renamed line
    /// keeps its place and comments in the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub was: Option<String>,
    pub points: Vec<[f64; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<String>,
    /// `"22:00-05:00"`; `None` or empty: no curfew.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curfew: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_mask_alert: Option<bool>,
}

/// One zone as the editor has it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneEdit {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub was: Option<String>,
    /// `restricted`, `loiter` or `crowd`.
    pub kind: String,
    pub polygon: Vec<[f64; 2]>,
    /// `"18:00-06:00"`; `None` or empty: always.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loiter_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_people: Option<i64>,
}

impl CameraEdit {
    /// The edit that leaves `camera` as it is (what the editor starts from).
    pub fn of(camera: &Camera) -> CameraEdit {
        let xy = |p: &crate::geometry::Point| [p.x as f64, p.y as f64];
        CameraEdit {
            lines: camera
                .lines
                .iter()
                .map(|l| LineEdit {
                    name: l.name.clone(),
                    was: Some(l.name.clone()),
                    points: vec![xy(&l.a), xy(&l.b)],
                    anchor: Some(l.anchor.as_str().into()),
                    curfew: l.curfew.map(window_text),
                    no_mask_alert: Some(l.no_mask_alert),
                })
                .collect(),
            zones: camera
                .zones
                .iter()
                .map(|z| ZoneEdit {
                    name: z.name.clone(),
                    was: Some(z.name.clone()),
                    kind: z.kind.as_str().into(),
                    polygon: z.polygon.points.iter().map(xy).collect(),
                    active: z.active.map(window_text),
                    loiter_seconds: Some(z.loiter_seconds),
                    max_people: Some(z.max_people.into()),
                })
                .collect(),
            mask_check: Some(camera.mask_check),
            analysis_fps: Some(camera.analysis_fps),
        }
    }
}

/// A validated edit.
#[derive(Clone, Debug)]
pub struct Edited {
    /// The whole new file.
    pub text: String,
    pub settings: Settings,
    /// What changed, in words: `gate-1: line `gate-2` added; zone `lapangan` moved`.
    pub summary: String,
    /// Whether the text differs from the file's (saving an unchanged camera writes nothing).
    pub changed: bool,
}

/// A problem of a refused edit, placed for the page.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldIssue {
    /// As `ronda check-config` says it: `cameras[0].lines[1].points`.
    pub place: String,
    /// The line (index in the edit) the problem is in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The zone (index in the edit) the problem is in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<usize>,
    /// The field: `points`, `polygon`, `name`, `curfew`, `mask_check` ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The point of `points` / `polygon`, when one point is at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub point: Option<usize>,
    pub message: String,
}

/// Why an edit was not made.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EditError {
    #[error("there is no camera `{0}` in the configuration file: reload the editor")]
    UnknownCamera(String),
    #[error(
        "the configuration file cannot be edited here: {0}; fix it by hand (check it with \
         `ronda check-config`) and reload the editor"
    )]
    Unreadable(String),
    #[error("the change was not saved: {}", issues.iter().map(|i| i.message.as_str()).collect::<Vec<_>>().join("; "))]
    Invalid { issues: Vec<FieldIssue> },
}

/// `22:00-05:00`, as written in the file.
pub fn window_text(w: Window) -> String {
    format!("{}-{}", w.start.format("%H:%M"), w.end.format("%H:%M"))
}

/// Put `edit` into camera `camera` of the configuration `text` and validate the result.
/// `path` only names the file in messages.
pub fn apply_camera_edit(
    text: &str,
    path: &Path,
    camera: &str,
    edit: &CameraEdit,
) -> Result<Edited, EditError> {
    let old = Settings::parse(text, path).ok();
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        EditError::Unreadable(super::syntax_reason(text, e.message(), e.span()))
    })?;
    let cameras = match doc.get_mut("cameras") {
        Some(Item::ArrayOfTables(a)) => a,
        Some(_) => {
            return Err(EditError::Unreadable(
                "its cameras are not written as [[cameras]] blocks".into(),
            ));
        }
        None => return Err(EditError::UnknownCamera(camera.to_string())),
    };
    let index = cameras
        .iter()
        .position(|t| t.get("id").and_then(Item::as_str) == Some(camera))
        .ok_or_else(|| EditError::UnknownCamera(camera.to_string()))?;
    let style = Style::of(cameras);
    let table = cameras
        .get_mut(index)
        .ok_or_else(|| EditError::UnknownCamera(camera.to_string()))?;

    let gate = table
        .get("role")
        .and_then(Item::as_str)
        .is_some_and(|r| r.trim().eq_ignore_ascii_case("gate"));
    if let Some(on) = edit.mask_check {
        put(
            table,
            "mask_check",
            Some(Value::from(on)),
            Some(&Value::from(gate)),
            &style,
        );
    }
    if let Some(fps) = edit.analysis_fps {
        put(
            table,
            "analysis_fps",
            Some(number(fps)),
            Some(&number(super::camera::default_analysis_fps(gate))),
            &style,
        );
    }
    // what a line without `no_mask_alert` gets once this edit is in
    let mask_check = match table.get("mask_check").and_then(Item::as_bool) {
        Some(b) => b,
        None => gate,
    };
    write_items(table, "lines", &edit.lines, &style, |t, l| {
        write_line(t, l, mask_check, &style)
    });
    write_items(table, "zones", &edit.zones, &style, |t, z| {
        write_zone(t, z, &style)
    });

    let new_text = doc.to_string();
    match Settings::parse(&new_text, path) {
        Ok(settings) => {
            let renames: Vec<(String, String)> = edit
                .lines
                .iter()
                .filter_map(|l| Some((l.was.clone()?, l.name.clone())))
                .chain(
                    edit.zones
                        .iter()
                        .filter_map(|z| Some((z.was.clone()?, z.name.clone()))),
                )
                .filter(|(a, b)| a != b)
                .collect();
            let old_cam = old.as_ref().and_then(|s| s.camera(camera));
            let summary = match settings.camera(camera) {
                Some(new_cam) => summarize_camera(old_cam, new_cam, &renames),
                None => format!("{camera}: changed"),
            };
            Ok(Edited {
                changed: new_text != text,
                text: new_text,
                settings,
                summary,
            })
        }
        Err(ConfigError::Invalid { issues, .. }) => Err(EditError::Invalid {
            issues: field_issues(&issues, Some(index)),
        }),
        Err(e) => Err(EditError::Unreadable(one_line(&e.to_string()))),
    }
}

/// Validation issues placed for the page: those of camera number `camera` (its index in the
/// file) get their line or zone and field; others keep only their place.
pub fn field_issues(issues: &[Issue], camera: Option<usize>) -> Vec<FieldIssue> {
    issues
        .iter()
        .map(|i| {
            let mut f = FieldIssue {
                place: i.place.clone(),
                line: None,
                zone: None,
                field: None,
                point: None,
                message: i.message.clone(),
            };
            let rest = camera.and_then(|c| i.place.strip_prefix(&format!("cameras[{c}]")));
            let Some(rest) = rest.and_then(|r| r.strip_prefix('.')) else {
                return f;
            };
            let (head, tail) = split_step(rest);
            let (key, idx) = indexed(head);
            match (key, idx) {
                ("lines" | "zones", Some(j)) if !tail.is_empty() => {
                    let (field, point) = indexed(split_step(tail).0);
                    f.field = Some(field.to_string());
                    f.point = point;
                    if key == "lines" {
                        f.line = Some(j);
                    } else {
                        f.zone = Some(j);
                    }
                }
                ("lines", Some(j)) => f.line = Some(j),
                ("zones", Some(j)) => f.zone = Some(j),
                _ => f.field = Some(key.to_string()),
            }
            f
        })
        .collect()
}

/// `lines[1].points[0]` -> (`lines[1]`, `points[0]`).
fn split_step(s: &str) -> (&str, &str) {
    match s.split_once('.') {
        Some((a, b)) => (a, b),
        None => (s, ""),
    }
}

/// `points[3]` -> (`points`, Some(3)); `name` -> (`name`, None).
fn indexed(s: &str) -> (&str, Option<usize>) {
    match s.split_once('[') {
        Some((key, rest)) => (key, rest.split(']').next().and_then(|n| n.parse().ok())),
        None => (s, None),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// How the file indents its `[[cameras.lines]]` blocks and their keys, so that a new block looks
/// like its neighbours.
struct Style {
    /// Before a new block's header (a blank line, then the indentation).
    header: String,
    /// Before a key of a block.
    key: String,
}

impl Style {
    fn of(cameras: &ArrayOfTables) -> Style {
        let sample = cameras
            .iter()
            .flat_map(|c| {
                ["lines", "zones"]
                    .into_iter()
                    .filter_map(|k| c.get(k).and_then(Item::as_array_of_tables))
            })
            .flat_map(|a| a.iter())
            .next();
        match sample {
            Some(t) => Style {
                header: format!(
                    "\n{}",
                    indentation(t.decor().prefix().and_then(|p| p.as_str()))
                ),
                key: t
                    .iter()
                    .next()
                    .and_then(|(k, _)| t.key(k))
                    .map(|k| indentation(k.leaf_decor().prefix().and_then(|p| p.as_str())))
                    .unwrap_or_default(),
            },
            None => Style {
                header: "\n".into(),
                key: String::new(),
            },
        }
    }

    /// A new block for an array of tables.
    fn table(&self) -> Table {
        let mut t = Table::new();
        t.decor_mut().set_prefix(self.header.clone());
        t
    }
}

/// The spaces a decor prefix ends with (the indentation of what follows it).
fn indentation(prefix: Option<&str>) -> String {
    let last = prefix.unwrap_or("").rsplit('\n').next().unwrap_or("");
    if last.chars().all(|c| c == ' ' || c == '\t') {
        last.to_string()
    } else {
        String::new()
    }
}

/// Replace the array of tables `key` of `camera` by one table per edit, in the edit's order.
/// A table already in the file (matched by the name it had) is changed in place, keeping its
/// comments; the others are new; the ones left over go.
fn write_items<E: Named>(
    camera: &mut Table,
    key: &str,
    edits: &[E],
    style: &Style,
    mut write: impl FnMut(&mut Table, &E),
) {
    let mut old: Vec<Option<Table>> = match camera.get(key) {
        Some(Item::ArrayOfTables(a)) => a.iter().cloned().map(Some).collect(),
        _ => Vec::new(),
    };
    if edits.is_empty() {
        camera.remove(key);
        return;
    }
    // Items that say which block they were take theirs first, so a new line named like a
    // renamed one does not take the renamed one's block.
    let mut found: Vec<Option<Table>> = vec![None; edits.len()];
    for explicit in [true, false] {
        for (i, e) in edits.iter().enumerate() {
            if e.said_was() != explicit {
                continue;
            }
            let at = old.iter().position(|t| {
                t.as_ref()
                    .and_then(|t| t.get("name"))
                    .and_then(Item::as_str)
                    .is_some_and(|n| n == e.was())
            });
            found[i] = at.and_then(|at| old[at].take());
        }
    }
    let mut tables = ArrayOfTables::new();
    for (e, t) in edits.iter().zip(found) {
        let mut t = t.unwrap_or_else(|| style.table());
        write(&mut t, e);
        // Written in the order of the camera's tables: a table without a position is put
        // after the one before it, so the blocks follow the edit's order under their camera.
        t.set_position(None);
        tables.push(t);
    }
    match camera.get_mut(key) {
        Some(item) => *item = Item::ArrayOfTables(tables),
        None => {
            camera.insert(key, Item::ArrayOfTables(tables));
        }
    }
    // the other array's blocks must follow the same rule, or they would keep their old place
    for other in ["lines", "zones"] {
        if let Some(Item::ArrayOfTables(a)) = camera.get_mut(other) {
            for t in a.iter_mut() {
                t.set_position(None);
            }
        }
    }
}

trait Named {
    /// The name to find the item's block in the file by.
    fn was(&self) -> &str;
    /// Whether the editor said which block it was (rather than the name standing for it).
    fn said_was(&self) -> bool;
}

impl Named for LineEdit {
    fn was(&self) -> &str {
        self.was.as_deref().unwrap_or(&self.name)
    }
    fn said_was(&self) -> bool {
        self.was.is_some()
    }
}

impl Named for ZoneEdit {
    fn was(&self) -> &str {
        self.was.as_deref().unwrap_or(&self.name)
    }
    fn said_was(&self) -> bool {
        self.was.is_some()
    }
}

fn write_line(t: &mut Table, l: &LineEdit, mask_check: bool, style: &Style) {
    put(t, "name", Some(l.name.trim().into()), None, style);
    put(t, "points", Some(points(&l.points)), None, style);
    put(
        t,
        "anchor",
        text(&l.anchor),
        Some(&Value::from("bottom_center")),
        style,
    );
    put(t, "curfew", text(&l.curfew), None, style);
    put(
        t,
        "no_mask_alert",
        l.no_mask_alert.map(Value::from),
        Some(&Value::from(mask_check)),
        style,
    );
}

fn write_zone(t: &mut Table, z: &ZoneEdit, style: &Style) {
    put(t, "name", Some(z.name.trim().into()), None, style);
    put(t, "kind", Some(z.kind.trim().into()), None, style);
    put(t, "polygon", Some(points(&z.polygon)), None, style);
    put(t, "active", text(&z.active), None, style);
    put(
        t,
        "loiter_seconds",
        z.loiter_seconds.map(number),
        Some(&Value::from(60)),
        style,
    );
    put(
        t,
        "max_people",
        z.max_people.map(Value::from),
        Some(&Value::from(5)),
        style,
    );
}

/// Non-empty text, trimmed.
fn text(s: &Option<String>) -> Option<Value> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Value::from)
}

/// Whole pixels as integers (`[320, 100]`, as people write them), others with two decimals.
fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        Value::from(x as i64)
    } else {
        Value::from((x * 100.0).round() / 100.0)
    }
}

fn points(pts: &[[f64; 2]]) -> Value {
    let mut a = Array::new();
    for p in pts {
        let mut xy = Array::new();
        xy.push(number(p[0]));
        xy.push(number(p[1]));
        a.push(xy);
    }
    Value::Array(a)
}

/// Set `key` of `t` to `new`, keeping the key's comments and formatting when it is already
/// there (and the value itself when it is the same). `None` removes the key (its default
/// applies). A key not in the file is only added when `new` differs from `default`, the value
/// that not writing it means.
fn put(t: &mut Table, key: &str, new: Option<Value>, default: Option<&Value>, style: &Style) {
    let Some(new) = new else {
        t.remove(key);
        return;
    };
    match t.get_mut(key) {
        Some(Item::Value(old)) => {
            if !same(old, &new) {
                let decor = old.decor().clone();
                *old = new;
                *old.decor_mut() = decor;
            }
        }
        Some(item) => *item = Item::Value(new),
        None => {
            if default.is_some_and(|d| same(d, &new)) {
                return;
            }
            // indented like the table's first key, or like the blocks of the file
            let indent = match t.iter().next().and_then(|(k, _)| t.key(k)) {
                Some(first) => indentation(first.leaf_decor().prefix().and_then(|p| p.as_str())),
                None => style.key.clone(),
            };
            t.insert(key, Item::Value(new));
            if let Some(mut k) = t.key_mut(key) {
                k.leaf_decor_mut().set_prefix(indent);
            }
        }
    }
}

/// The same TOML value, whatever its formatting (`5` and `5.0` are the same number).
fn same(a: &Value, b: &Value) -> bool {
    let num = |v: &Value| match v {
        Value::Integer(i) => Some(*i.value() as f64),
        Value::Float(f) => Some(*f.value()),
        _ => None,
    };
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.value() == y.value(),
        (Value::Boolean(x), Value::Boolean(y)) => x.value() == y.value(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(a, b)| same(a, b))
        }
        _ => match (num(a), num(b)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests;
