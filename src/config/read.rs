//! A reader over the parsed TOML tree that collects every problem with its place instead of
//! stopping at the first (serde's derive stops at the first error, which makes a volunteer fix
//! a file one mistake per run).

use std::fmt;

use toml::{Table, Value};

use crate::events::{EventKind, Severity};

/// One problem in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// Where: `cameras[2].lines[0].points` (camera ids are added where known).
    pub place: String,
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place, self.message)
    }
}

/// Collects issues while values are read.
#[derive(Default)]
pub struct Reader {
    pub issues: Vec<Issue>,
}

pub fn join(place: &str, key: &str) -> String {
    if place.is_empty() {
        key.to_string()
    } else {
        format!("{place}.{key}")
    }
}

pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "text",
        Value::Integer(_) => "a whole number",
        Value::Float(_) => "a number",
        Value::Boolean(_) => "true/false",
        Value::Datetime(_) => "a date",
        Value::Array(_) => "a list",
        Value::Table(_) => "a table",
    }
}

/// Levenshtein distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn suggest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (distance(&key.to_lowercase(), k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

impl Reader {
    pub fn issue(&mut self, place: impl Into<String>, message: impl Into<String>) {
        self.issues.push(Issue {
            place: place.into(),
            message: message.into(),
        });
    }

    /// Report keys of `t` that are not in `known`.
    pub fn known_keys(&mut self, t: &Table, place: &str, known: &[&str]) {
        for k in t.keys() {
            if !known.contains(&k.as_str()) {
                let hint = match suggest(k, known) {
                    Some(s) => format!("; did you mean `{s}`?"),
                    None => format!("; known keys here: {}", known.join(", ")),
                };
                self.issue(join(place, k), format!("unknown key `{k}`{hint}"));
            }
        }
    }

    /// A sub-table (absent: empty).
    pub fn table<'t>(&mut self, t: &'t Table, place: &str, key: &str) -> Option<&'t Table> {
        match t.get(key) {
            None => None,
            Some(Value::Table(x)) => Some(x),
            Some(v) => {
                self.issue(
                    join(place, key),
                    format!("should be a table ([{key}]), got {}", type_name(v)),
                );
                None
            }
        }
    }

    /// An array of tables (`[[key]]`); absent: empty.
    pub fn tables<'t>(&mut self, t: &'t Table, place: &str, key: &str) -> Vec<&'t Table> {
        match t.get(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, v) in items.iter().enumerate() {
                    match v {
                        Value::Table(x) => out.push(x),
                        other => self.issue(
                            format!("{}[{i}]", join(place, key)),
                            format!("should be a table, got {}", type_name(other)),
                        ),
                    }
                }
                out
            }
            Some(v) => {
                self.issue(
                    join(place, key),
                    format!(
                        "should be a list of tables ([[{key}]]), got {}",
                        type_name(v)
                    ),
                );
                Vec::new()
            }
        }
    }

    pub fn string(&mut self, t: &Table, place: &str, key: &str) -> Option<String> {
        match t.get(key)? {
            Value::String(s) => Some(s.clone()),
            v => {
                self.issue(
                    join(place, key),
                    format!("should be text in quotes, got {}", type_name(v)),
                );
                None
            }
        }
    }

    pub fn string_or(&mut self, t: &Table, place: &str, key: &str, default: &str) -> String {
        self.string(t, place, key)
            .unwrap_or_else(|| default.to_string())
    }

    /// A required non-empty string.
    pub fn required(&mut self, t: &Table, place: &str, key: &str) -> String {
        match self.string(t, place, key) {
            Some(s) if !s.trim().is_empty() => s,
            Some(_) => {
                self.issue(join(place, key), "must not be empty");
                String::new()
            }
            None => {
                if !t.contains_key(key) {
                    self.issue(join(place, key), "is missing");
                }
                String::new()
            }
        }
    }

    pub fn boolean(&mut self, t: &Table, place: &str, key: &str, default: bool) -> bool {
        match t.get(key) {
            None => default,
            Some(Value::Boolean(b)) => *b,
            Some(v) => {
                self.issue(
                    join(place, key),
                    format!("should be true or false, got {}", type_name(v)),
                );
                default
            }
        }
    }

    /// A number (integer or float) within `range`.
    pub fn number(
        &mut self,
        t: &Table,
        place: &str,
        key: &str,
        default: f64,
        range: std::ops::RangeInclusive<f64>,
    ) -> f64 {
        let v = match t.get(key) {
            None => return default,
            Some(Value::Integer(i)) => *i as f64,
            Some(Value::Float(f)) => *f,
            Some(v) => {
                self.issue(
                    join(place, key),
                    format!("should be a number, got {}", type_name(v)),
                );
                return default;
            }
        };
        if !range.contains(&v) {
            self.issue(
                join(place, key),
                format!(
                    "{v} is out of range: use a value from {} to {}",
                    range.start(),
                    range.end()
                ),
            );
            return default;
        }
        v
    }

    pub fn integer(
        &mut self,
        t: &Table,
        place: &str,
        key: &str,
        default: i64,
        range: std::ops::RangeInclusive<i64>,
    ) -> i64 {
        match t.get(key) {
            None => default,
            Some(Value::Integer(i)) if range.contains(i) => *i,
            Some(Value::Integer(i)) => {
                self.issue(
                    join(place, key),
                    format!(
                        "{i} is out of range: use a whole number from {} to {}",
                        range.start(),
                        range.end()
                    ),
                );
                default
            }
            Some(v) => {
                self.issue(
                    join(place, key),
                    format!("should be a whole number, got {}", type_name(v)),
                );
                default
            }
        }
    }

    /// One of a fixed set of words.
    pub fn choice<'c>(
        &mut self,
        t: &Table,
        place: &str,
        key: &str,
        default: &'c str,
        choices: &[&'c str],
    ) -> &'c str {
        match self.string(t, place, key) {
            None => default,
            Some(s) => match choices.iter().find(|c| c.eq_ignore_ascii_case(s.trim())) {
                Some(c) => c,
                None => {
                    let quoted: Vec<String> = choices.iter().map(|c| format!("\"{c}\"")).collect();
                    self.issue(
                        join(place, key),
                        format!("`{s}` is not allowed; use one of {}", quoted.join(", ")),
                    );
                    default
                }
            },
        }
    }

    /// A list of [x, y] points.
    pub fn points(&mut self, t: &Table, place: &str, key: &str) -> Option<Vec<[f64; 2]>> {
        let p = join(place, key);
        let items = match t.get(key) {
            None => {
                self.issue(p, "is missing (a list of [x, y] points)");
                return None;
            }
            Some(Value::Array(a)) => a,
            Some(v) => {
                self.issue(
                    p,
                    format!("should be a list of [x, y] points, got {}", type_name(v)),
                );
                return None;
            }
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let xy = match item {
                Value::Array(xy) if xy.len() == 2 => {
                    let num = |v: &Value| match v {
                        Value::Integer(i) => Some(*i as f64),
                        Value::Float(f) if f.is_finite() => Some(*f),
                        _ => None,
                    };
                    num(&xy[0]).zip(num(&xy[1]))
                }
                _ => None,
            };
            match xy {
                Some((x, y)) => out.push([x, y]),
                None => {
                    ok = false;
                    self.issue(
                        format!("{p}[{i}]"),
                        "a point is written [x, y] with two numbers",
                    );
                }
            }
        }
        ok.then_some(out)
    }
}

pub(super) fn event_kinds(r: &mut Reader, t: &Table, place: &str) -> Option<Vec<EventKind>> {
    let p = join(place, "kinds");
    match t.get("kinds") {
        None => None,
        Some(Value::Array(items)) => {
            if items.is_empty() {
                r.issue(
                    p.clone(),
                    "an empty list sends nothing; leave `kinds` out to send every type",
                );
            }
            let names = EventKind::names();
            let mut kinds = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let Some(name) = item.as_str() else {
                    r.issue(
                        format!("{p}[{i}]"),
                        format!("should be an event type in quotes, got {}", type_name(item)),
                    );
                    continue;
                };
                match name.trim().parse::<EventKind>().ok() {
                    Some(k) if !kinds.contains(&k) => kinds.push(k),
                    Some(_) => {}
                    None => {
                        let hint = match suggest(name, &names) {
                            Some(s) => format!("did you mean `{s}`?"),
                            None => format!("known types: {}", names.join(", ")),
                        };
                        r.issue(
                            format!("{p}[{i}]"),
                            format!("unknown event type `{name}`; {hint}"),
                        );
                    }
                }
            }
            Some(kinds)
        }
        Some(v) => {
            r.issue(
                p,
                format!(
                    "should be a list of event types, e.g. [\"intrusion\", \"no_mask\"], got {}",
                    type_name(v)
                ),
            );
            None
        }
    }
}

/// `key = "info" | "warning" | "alert"` of table `t` at `place`.
pub(super) fn severity(
    r: &mut Reader,
    t: &Table,
    place: &str,
    key: &str,
    default: Severity,
) -> Severity {
    r.choice(t, place, key, default.as_str(), &Severity::NAMES)
        .parse()
        .unwrap_or(default)
}
