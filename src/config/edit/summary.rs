//! What an edit changed, in words, for the version history:
//! `gate-1: line `gate-2` added; zone `lapangan` moved`.

use super::window_text;
use crate::config::{Camera, Line, Settings, Zone, ZoneKind};

/// The changes of one camera. `renames` are (old name, new name) of lines and zones the editor
/// renamed; `old` is `None` when the file before could not be read.
pub fn summarize_camera(
    old: Option<&Camera>,
    new: &Camera,
    renames: &[(String, String)],
) -> String {
    let Some(old) = old else {
        return format!("{}: lines and zones saved", new.id);
    };
    let changes = camera_changes(old, new, renames);
    if changes.is_empty() {
        format!("{}: no change", new.id)
    } else {
        format!("{}: {}", new.id, changes.join("; "))
    }
}

/// The changes between two whole configurations (a revert, a file edited by hand): cameras
/// added, removed or changed, and whether anything outside the cameras changed.
pub fn summarize(old: &Settings, new: &Settings) -> String {
    let mut parts = Vec::new();
    for c in &new.cameras {
        match old.camera(&c.id) {
            None => parts.push(format!("camera `{}` added", c.id)),
            Some(o) => {
                let changes = camera_changes(o, c, &[]);
                if !changes.is_empty() {
                    parts.push(format!("{}: {}", c.id, changes.join("; ")));
                }
            }
        }
    }
    for c in &old.cameras {
        if new.camera(&c.id).is_none() {
            parts.push(format!("camera `{}` removed", c.id));
        }
    }
    let without_cameras = |s: &Settings| Settings {
        cameras: Vec::new(),
        ..s.clone()
    };
    if without_cameras(old) != without_cameras(new) {
        parts.push("other settings changed".into());
    }
    if parts.is_empty() {
        "no change".into()
    } else {
        parts.join("; ")
    }
}

fn camera_changes(old: &Camera, new: &Camera, renames: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    if old.mask_check != new.mask_check {
        out.push(format!("mask check {}", on_off(new.mask_check)));
    }
    if old.analysis_fps != new.analysis_fps {
        out.push(format!("analysed at {} fps", new.analysis_fps));
    }
    let was = |name: &str| {
        renames
            .iter()
            .find(|(_, to)| to == name)
            .map_or(name.to_string(), |(from, _)| from.clone())
    };
    let mut seen_lines = Vec::new();
    for l in &new.lines {
        let before = was(&l.name);
        match old.lines.iter().find(|o| o.name == before) {
            None => out.push(format!("line `{}` added", l.name)),
            Some(o) => {
                seen_lines.push(o.name.clone());
                let mut what = line_changes(o, l);
                if o.name != l.name {
                    what.insert(0, format!("renamed to `{}`", l.name));
                }
                if !what.is_empty() {
                    out.push(format!("line `{}` {}", o.name, what.join(", ")));
                }
            }
        }
    }
    for o in &old.lines {
        if !seen_lines.contains(&o.name) {
            out.push(format!("line `{}` removed", o.name));
        }
    }
    let mut seen_zones = Vec::new();
    for z in &new.zones {
        let before = was(&z.name);
        match old.zones.iter().find(|o| o.name == before) {
            None => out.push(format!("zone `{}` added", z.name)),
            Some(o) => {
                seen_zones.push(o.name.clone());
                let mut what = zone_changes(o, z);
                if o.name != z.name {
                    what.insert(0, format!("renamed to `{}`", z.name));
                }
                if !what.is_empty() {
                    out.push(format!("zone `{}` {}", o.name, what.join(", ")));
                }
            }
        }
    }
    for o in &old.zones {
        if !seen_zones.contains(&o.name) {
            out.push(format!("zone `{}` removed", o.name));
        }
    }
    out
}

fn line_changes(o: &Line, n: &Line) -> Vec<String> {
    let mut what = Vec::new();
    if (o.a, o.b) == (n.b, n.a) {
        what.push("turned round (in and out swapped)".to_string());
    } else if (o.a, o.b) != (n.a, n.b) {
        what.push("moved".into());
    }
    if o.anchor != n.anchor {
        what.push(format!("anchor {}", n.anchor.as_str()));
    }
    if o.curfew != n.curfew {
        what.push(match n.curfew {
            Some(w) => format!("curfew {}", window_text(w)),
            None => "curfew removed".into(),
        });
    }
    if o.no_mask_alert != n.no_mask_alert {
        what.push(format!("mask alert {}", on_off(n.no_mask_alert)));
    }
    what
}

fn zone_changes(o: &Zone, n: &Zone) -> Vec<String> {
    let mut what = Vec::new();
    if o.polygon != n.polygon {
        what.push(if o.polygon.points.len() == n.polygon.points.len() {
            "moved".to_string()
        } else {
            format!("reshaped ({} points)", n.polygon.points.len())
        });
    }
    if o.kind != n.kind {
        what.push(format!("now {}", kind(n.kind)));
    }
    if o.active != n.active {
        what.push(match n.active {
            Some(w) => format!("active {}", window_text(w)),
            None => "active all day".into(),
        });
    }
    if o.loiter_seconds != n.loiter_seconds {
        what.push(format!("loitering after {} s", n.loiter_seconds));
    }
    if o.max_people != n.max_people {
        what.push(format!("crowd above {} people", n.max_people));
    }
    what
}

fn kind(k: ZoneKind) -> &'static str {
    match k {
        ZoneKind::Restricted => "restricted",
        ZoneKind::Loiter => "a loiter zone",
        ZoneKind::Crowd => "a crowd zone",
    }
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}
