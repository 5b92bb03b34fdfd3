//! Reading one `[[cameras]]` table: its stream, picture, lines, zones and rules.

use std::collections::BTreeSet;

use toml::Table;

use super::MAX_ZONE_POINTS;
use super::read::{Reader, join};
use super::secrets::{redact_url, url_has_literal_password};
use super::settings::{Camera, CameraRole, Line, Zone};
use super::values::{is_slug, read_window};
use crate::geometry::{Point, Polygon};
use crate::rules::{Anchor, ZoneKind};
use crate::topic;

/// Pictures analysed a second when a camera does not say (`analysis_fps`). The gate's path in
/// view is short (people cross it in a second or two): at 5 a second a walker is seen only a
/// few times before the line is behind them, and counts measured on re-encoded footage lose
/// crossings (README "Where to put the gate camera"). Area cameras watch zones, where people
/// stay longer, and there are dozens of them.
pub fn default_analysis_fps(gate: bool) -> f64 {
    if gate { 10.0 } else { 5.0 }
}

pub(super) fn read_camera(r: &mut Reader, c: &Table, i: usize) -> Camera {
    let place = format!("cameras[{i}]");
    r.known_keys(
        c,
        &place,
        &[
            "id",
            "name",
            "url",
            "role",
            "analysis_fps",
            "mask_check",
            "motion_gate",
            "size",
            "lines",
            "zones",
        ],
    );
    let id = r.required(c, &place, "id");
    if !id.is_empty() && !is_slug(&id) {
        r.issue(
            join(&place, "id"),
            format!(
                "`{}` may only use lowercase letters, digits and -, at most {} of them (it is \
                 part of MQTT topics, file names and web addresses)",
                topic::shown(&id),
                topic::MAX_NAME_CHARS
            ),
        );
    }
    let url = r.required(c, &place, "url");
    if !url.is_empty() {
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("rtsp://") || lower.starts_with("rtsps://")) {
            r.issue(
                join(&place, "url"),
                format!(
                    "`{}` should start with rtsp:// (the camera's RTSP address)",
                    redact_url(&url)
                ),
            );
        }
        if url_has_literal_password(&url) {
            r.issue(
                join(&place, "url"),
                "contains a password; write it as ${VARIABLE} and set that environment variable on the box",
            );
        }
    }
    let role = match r.choice(c, &place, "role", "area", &["gate", "area"]) {
        "gate" => CameraRole::Gate,
        _ => CameraRole::Area,
    };
    let size = match c.get("size") {
        None => None,
        Some(toml::Value::Array(a))
            if a.len() == 2
                && a.iter()
                    .all(|v| matches!(v, toml::Value::Integer(n) if *n > 0 && *n <= 10_000)) =>
        {
            Some((
                a[0].as_integer().unwrap_or(0) as u32,
                a[1].as_integer().unwrap_or(0) as u32,
            ))
        }
        Some(_) => {
            r.issue(
                join(&place, "size"),
                "should be [width, height] in pixels, e.g. [640, 360]",
            );
            None
        }
    };
    let mut cam = Camera {
        name: r.string_or(c, &place, "name", &id),
        id,
        url,
        role,
        analysis_fps: r.number(
            c,
            &place,
            "analysis_fps",
            default_analysis_fps(role == CameraRole::Gate),
            0.5..=30.0,
        ),
        mask_check: r.boolean(c, &place, "mask_check", role == CameraRole::Gate),
        motion_gate: r.boolean(c, &place, "motion_gate", true),
        size,
        lines: Vec::new(),
        zones: Vec::new(),
    };
    let in_frame = |r: &mut Reader, p: &str, pts: &[[f64; 2]]| {
        for (k, pt) in pts.iter().enumerate() {
            let bad_neg = pt[0] < 0.0 || pt[1] < 0.0;
            let bad_size = size.is_some_and(|(w, h)| pt[0] > w as f64 || pt[1] > h as f64);
            if bad_neg || bad_size {
                let within = match size {
                    Some((w, h)) => format!("0..{w} x 0..{h}"),
                    None => "non-negative pixels".into(),
                };
                r.issue(
                    format!("{p}[{k}]"),
                    format!("[{}, {}] is outside the picture ({within})", pt[0], pt[1]),
                );
            }
        }
    };

    let mut names = BTreeSet::new();
    for (j, l) in r.tables(c, &place, "lines").into_iter().enumerate() {
        let lp = format!("{place}.lines[{j}]");
        r.known_keys(
            l,
            &lp,
            &["name", "points", "anchor", "curfew", "no_mask_alert"],
        );
        let name = r.required(l, &lp, "name");
        if !name.is_empty()
            && let Err(problem) = topic::check_name(&name)
        {
            r.issue(
                join(&lp, "name"),
                format!("`{}` {problem}", topic::shown(&name)),
            );
        } else if !name.is_empty() && !names.insert(name.clone()) {
            r.issue(
                join(&lp, "name"),
                format!("`{name}` is used twice on this camera"),
            );
        }
        let anchor = r
            .choice(l, &lp, "anchor", "bottom_center", &Anchor::NAMES)
            .parse()
            .unwrap_or_default();
        let curfew = read_window(r, l, &lp, "curfew");
        let no_mask_alert = r.boolean(l, &lp, "no_mask_alert", cam.mask_check);
        let Some(pts) = r.points(l, &lp, "points") else {
            continue;
        };
        let pp = join(&lp, "points");
        if pts.len() != 2 {
            r.issue(pp, format!("a line needs 2 points, got {}", pts.len()));
            continue;
        }
        in_frame(r, &pp, &pts);
        if pts[0] == pts[1] {
            r.issue(pp, "the two points are the same: a line needs length");
            continue;
        }
        cam.lines.push(Line {
            name,
            a: Point::new(pts[0][0] as f32, pts[0][1] as f32),
            b: Point::new(pts[1][0] as f32, pts[1][1] as f32),
            anchor,
            curfew,
            no_mask_alert,
        });
    }
    let mut znames = BTreeSet::new();
    for (j, z) in r.tables(c, &place, "zones").into_iter().enumerate() {
        let zp = format!("{place}.zones[{j}]");
        r.known_keys(
            z,
            &zp,
            &[
                "name",
                "polygon",
                "kind",
                "active",
                "loiter_seconds",
                "max_people",
            ],
        );
        let name = r.required(z, &zp, "name");
        if !name.is_empty()
            && let Err(problem) = topic::check_name(&name)
        {
            r.issue(
                join(&zp, "name"),
                format!("`{}` {problem}", topic::shown(&name)),
            );
        } else if !name.is_empty() && !znames.insert(name.clone()) {
            r.issue(
                join(&zp, "name"),
                format!("`{name}` is used twice on this camera"),
            );
        }
        let kind = r
            .choice(z, &zp, "kind", "restricted", &ZoneKind::NAMES)
            .parse()
            .unwrap_or(ZoneKind::Restricted);
        let active = read_window(r, z, &zp, "active");
        let loiter_seconds = r.number(z, &zp, "loiter_seconds", 60.0, 1.0..=86_400.0);
        let max_people = r.integer(z, &zp, "max_people", 5, 1..=1000) as u32;
        let Some(pts) = r.points(z, &zp, "polygon") else {
            continue;
        };
        let pp = join(&zp, "polygon");
        if pts.len() < 3 {
            r.issue(
                pp,
                format!("a zone needs at least 3 points, got {}", pts.len()),
            );
            continue;
        }
        // Far more than anyone draws; the self-crossing check below compares every edge with
        // every other, and a 94,000-point zone made each check take seconds.
        if pts.len() > MAX_ZONE_POINTS {
            r.issue(
                pp,
                format!(
                    "a zone may have at most {MAX_ZONE_POINTS} points, got {}: draw it with fewer \
                     corners",
                    pts.len()
                ),
            );
            continue;
        }
        in_frame(r, &pp, &pts);
        let polygon = Polygon::new(
            pts.iter()
                .map(|p| Point::new(p[0] as f32, p[1] as f32))
                .collect(),
        );
        // before the area: a bow tie's two halves cancel out to no area at all
        if let Some((a, b)) = polygon.self_crossing() {
            r.issue(
                pp,
                format!(
                    "the polygon crosses itself at edge {a} and {b} (edge N runs from point N \
                     to the next): move the points so the edges don't cross"
                ),
            );
            continue;
        }
        if polygon.doubled_area().abs() < 1.0 {
            r.issue(pp, "the points lie on one line: a zone needs an area");
            continue;
        }
        cam.zones.push(Zone {
            name,
            polygon,
            kind,
            active,
            loiter_seconds,
            max_people,
        });
    }
    cam
}
