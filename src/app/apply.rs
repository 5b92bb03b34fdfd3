//! New rules for the running worker (the admin saved lines or zones in the web UI): applied
//! between two frames, on the worker's own thread, so no frame sees half of an edit.
//!
//! What changes live: each running camera's lines, zones (and their thresholds and windows),
//! curfews and mask checks. A line that keeps its name keeps its counts (moved or not); a line
//! that is unchanged keeps its whole state, so a person crossing it right now is counted once.
//! A new line starts from its stored counts (it may have existed before) or zero. Anything
//! else (a camera's address or rate, a new camera, the detector, the broker) needs a restart,
//! and the answer says so.

use std::sync::mpsc::SyncSender;

use super::camera::{CamState, camera_chain};
use crate::config::{self, Settings};
use crate::rules::{CameraChain, Cooldown, Counts, MaskParams, MaskWatch, ZoneWatch};
use crate::sinks::SinkHandle;
use crate::store::Store;
use crate::track::Tracker;

/// A request to the worker: apply `settings`, answer what changed.
pub(crate) struct RulesChange {
    pub settings: Settings,
    pub reply: SyncSender<Vec<String>>,
}

/// What the worker needs to build new rules.
pub(crate) struct RulesContext {
    pub store: std::sync::Arc<Store>,
    pub sink: Option<SinkHandle>,
    pub settings: Settings,
    /// The face model is loaded (a mask check can only be switched on live if it is).
    pub faces: bool,
}

impl RulesContext {
    /// Apply `new` to the cameras; returns what changed, in words.
    pub fn apply(&mut self, cams: &mut [CamState], new: Settings) -> Vec<String> {
        let mut changes = Vec::new();
        for cam in cams.iter_mut() {
            let Some(conf) = new.camera(&cam.id) else {
                changes.push(format!(
                    "camera `{}` is no longer in the file: it keeps running until ronda restarts",
                    cam.id
                ));
                continue;
            };
            if *conf == cam.conf {
                continue;
            }
            changes.extend(self.apply_camera(cam, conf, &new));
        }
        for c in &new.cameras {
            if !cams.iter().any(|s| s.id == c.id) {
                changes.push(format!(
                    "camera `{}` is new: restart ronda to start it",
                    c.id
                ));
            }
        }
        changes.extend(restart_needed(&self.settings, &new));
        self.settings = new;
        changes
    }

    fn apply_camera(
        &mut self,
        cam: &mut CamState,
        conf: &config::Camera,
        new: &Settings,
    ) -> Vec<String> {
        let old = &cam.conf;
        let mut changes = Vec::new();
        let tz = new.site.timezone;
        let now = chrono::Utc::now();
        // the counts each new line starts with: the running line of that name, else stored
        let mut starts = Vec::new();
        for l in &conf.lines {
            let running = old
                .lines
                .iter()
                .position(|o| o.name == l.name)
                .map(|i| (cam.rules.lines[i].counts(), cam.rules.since[i]));
            let start = match running {
                Some(s) => s,
                None => {
                    match self.store.current_counts(
                        &cam.id,
                        &l.name,
                        now,
                        new.site.counts_reset,
                        tz,
                    ) {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::error!(camera = %cam.id, line = %l.name, "stored counts not read, the line starts from zero: {e}");
                            (Counts::default(), now)
                        }
                    }
                }
            };
            starts.push(start);
        }
        let mut rules = camera_chain(conf, new, self.faces, starts.clone());
        let placeholder = CameraChain::new(
            &cam.id,
            Tracker::new(new.tracker.clone()),
            Cooldown::new(new.alerts.cooldown),
        );
        let mut old_rules = std::mem::replace(&mut cam.rules, placeholder);
        // unchanged lines and zones keep their state (who is on which side, who stays how long)
        let mut old_lines: Vec<_> = old_rules.lines.drain(..).map(Some).collect();
        for (i, l) in conf.lines.iter().enumerate() {
            match old.lines.iter().position(|o| o.name == l.name) {
                Some(j) if old.lines[j] == *l => {
                    if let Some(counter) = old_lines[j].take() {
                        rules.lines[i] = counter;
                    }
                }
                Some(j) if (old.lines[j].a, old.lines[j].b) != (l.a, l.b) => {
                    changes.push(format!("{}: line `{}` moved", cam.id, l.name))
                }
                Some(_) => changes.push(format!("{}: line `{}` changed", cam.id, l.name)),
                None => {
                    changes.push(format!("{}: line `{}` added", cam.id, l.name));
                    // its counts are retained on MQTT from now on, not only after a crossing
                    if let Some(sink) = &self.sink {
                        let (c, since) = starts[i];
                        let json = crate::sinks::outlet::counts_json(c, since, tz);
                        let _ = sink.publish_counts(&cam.id, &l.name, &json);
                    }
                }
            }
        }
        for o in &old.lines {
            if !conf.lines.iter().any(|l| l.name == o.name) {
                changes.push(format!("{}: line `{}` removed", cam.id, o.name));
                // a removed (or renamed) line's retained counts go too: no ghost line on MQTT
                if let Some(sink) = &self.sink
                    && let Err(e) = sink.clear_counts(&cam.id, &o.name)
                {
                    tracing::error!(camera = %cam.id, line = %o.name, "the line's retained counts are not cleared: {e}");
                }
            }
        }
        let mut old_zones: Vec<Option<ZoneWatch>> = old_rules.zones.drain(..).map(Some).collect();
        for (i, z) in conf.zones.iter().enumerate() {
            match old.zones.iter().position(|o| o.name == z.name) {
                Some(j) if old.zones[j] == *z => {
                    if let Some(w) = old_zones[j].take() {
                        rules.zones[i] = w;
                    }
                }
                Some(_) => changes.push(format!("{}: zone `{}` changed", cam.id, z.name)),
                None => changes.push(format!("{}: zone `{}` added", cam.id, z.name)),
            }
        }
        for o in &old.zones {
            if !conf.zones.iter().any(|z| z.name == o.name) {
                changes.push(format!("{}: zone `{}` removed", cam.id, o.name));
            }
        }
        // the face bookkeeping stays while the same lines check masks
        let mask_lines = |c: &config::Camera| -> Vec<_> {
            c.lines
                .iter()
                .filter(|l| c.line_rules(l).no_mask)
                .map(|l| l.spec())
                .collect()
        };
        let (was, now_mask) = (mask_lines(old), mask_lines(conf));
        if was == now_mask {
            rules.masks = old_rules.masks.take();
        } else if !now_mask.is_empty() && !self.faces {
            changes.push(format!(
                "{}: the mask check needs the face model, which loads at start: restart ronda",
                cam.id
            ));
        } else if rules.masks.is_none() && !now_mask.is_empty() {
            rules.masks = Some(MaskWatch::new(now_mask, MaskParams::default()));
        }
        if old.mask_check != conf.mask_check {
            changes.push(format!(
                "{}: mask check {}",
                cam.id,
                if conf.mask_check { "on" } else { "off" }
            ));
        }
        if (
            old.url.as_str(),
            old.analysis_fps,
            old.motion_gate,
            old.role,
        ) != (
            conf.url.as_str(),
            conf.analysis_fps,
            conf.motion_gate,
            conf.role,
        ) {
            changes.push(format!(
                "{}: address, role, analysis rate or motion gate changed: restart ronda for that",
                cam.id
            ));
        }
        // the people being followed and the alerts already raised go on
        rules.continue_from(old_rules);
        cam.rules = rules;
        let live = config::Camera {
            url: old.url.clone(),
            analysis_fps: old.analysis_fps,
            motion_gate: old.motion_gate,
            role: old.role,
            ..conf.clone()
        };
        cam.conf = live;
        tracing::info!(camera = %cam.id, changes = ?changes, "rules applied");
        changes
    }
}

/// The parts of the configuration that only a restart applies, if they changed.
fn restart_needed(old: &Settings, new: &Settings) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |changed: bool, what: &str| {
        if changed {
            out.push(format!("{what} changed: restart ronda for that"));
        }
    };
    check(old.site != new.site, "[site]");
    check(old.mqtt != new.mqtt, "[mqtt]");
    check(old.detector != new.detector, "[detector]");
    check(
        old.tracker != new.tracker || old.counting != new.counting,
        "[tracking] or [counting]",
    );
    check(old.alerts != new.alerts, "[alerts]");
    check(old.clips != new.clips, "[clips]");
    check(old.store != new.store, "[store]");
    check(old.http != new.http, "[http]");
    check(old.webhook != new.webhook, "[webhook]");
    check(old.notify != new.notify, "[[notify]]");
    check(old.uplink != new.uplink, "[uplink]");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::camera::{CamState, CameraFigures};
    use crate::ingest::camera::FrameSlot;
    use crate::motion::{MotionGate, MotionParams};
    use std::path::Path;
    use std::sync::Arc;

    fn settings(lines: &str, site_name: &str) -> Settings {
        let text = format!(
            "[site]\nid = \"rw9\"\nname = \"{site_name}\"\ntimezone = \"UTC\"\n\
             [[cameras]]\nid = \"gate-1\"\nurl = \"rtsp://127.0.0.1:1/cam01\"\nrole = \"gate\"\n\
             mask_check = false\n{lines}"
        );
        Settings::parse(&text, Path::new("test.toml")).unwrap()
    }

    const A: &str = "[[cameras.lines]]\nname = \"a\"\npoints = [[100, 0], [100, 400]]\n";
    const B: &str = "[[cameras.lines]]\nname = \"b\"\npoints = [[300, 0], [300, 400]]\n";
    const B_MOVED: &str = "[[cameras.lines]]\nname = \"b\"\npoints = [[320, 0], [320, 400]]\n";
    const C: &str = "[[cameras.lines]]\nname = \"c\"\npoints = [[500, 0], [500, 400]]\n";

    fn camera(s: &Settings, counts: Vec<(Counts, chrono::DateTime<chrono::Utc>)>) -> CamState {
        let c = &s.cameras[0];
        CamState {
            id: c.id.clone(),
            conf: c.clone(),
            gate: true,
            motion_gate: false,
            slot: Arc::new(FrameSlot::default()),
            recent: Arc::new(std::sync::Mutex::new(crate::rules::Recent::new(
                Default::default(),
            ))),
            rules: camera_chain(c, s, false, counts),
            clock: Default::default(),
            motion: MotionGate::new(MotionParams::default()),
            dark: crate::detect::dark::DarkWatch::new(std::time::Duration::from_secs(3 * 3600)),
            keep_up: Default::default(),
            figures: CameraFigures::default(),
            still_since: None,
            last_still: None,
            still_run: 0,
            woke_at: None,
            first_look: false,
            pending: None,
            person_score: 0.5,
            look: None,
        }
    }

    fn names(cam: &CamState) -> Vec<(String, u64, u64)> {
        cam.rules
            .lines
            .iter()
            .map(|l| (l.spec().name.clone(), l.counts().in_, l.counts().out))
            .collect()
    }

    #[test]
    fn lines_keep_their_counts_by_name_and_new_ones_start_from_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("ronda.db")).unwrap());
        let now = chrono::Utc::now();
        let old = settings(&format!("{A}{B}"), "RW 9");
        let running = |i, o| (Counts { in_: i, out: o }, now);
        let mut cams = vec![camera(&old, vec![running(5, 2), running(7, 1)])];
        // line c existed before (counted by an earlier version of the file)
        store
            .set_counts("gate-1", "c", running(3, 3).0, now)
            .unwrap();
        let mut ctx = RulesContext {
            store,
            sink: None,
            settings: old.clone(),
            faces: false,
        };

        // a unchanged, b moved, c added; the site's name needs a restart
        let new = settings(&format!("{A}{B_MOVED}{C}"), "RW 9 Kepatihan");
        let changes = ctx.apply(&mut cams, new.clone());
        assert_eq!(
            names(&cams[0]),
            [("a".into(), 5, 2), ("b".into(), 7, 1), ("c".into(), 3, 3)]
        );
        assert!(
            changes.contains(&"gate-1: line `b` moved".to_string()),
            "{changes:?}"
        );
        assert!(
            changes.contains(&"gate-1: line `c` added".to_string()),
            "{changes:?}"
        );
        assert!(
            changes
                .iter()
                .any(|c| c.starts_with("[site] changed: restart")),
            "{changes:?}"
        );
        assert!(!changes.iter().any(|c| c.contains("`a`")), "{changes:?}");
        assert_eq!(cams[0].conf.lines, new.cameras[0].lines);
        assert_eq!(cams[0].rules.line_rules.len(), 3);
        assert_eq!(cams[0].rules.since.len(), 3);

        // a removed; the same file again changes nothing
        let fewer = settings(&format!("{B_MOVED}{C}"), "RW 9 Kepatihan");
        let changes = ctx.apply(&mut cams, fewer.clone());
        assert_eq!(changes, ["gate-1: line `a` removed"]);
        assert_eq!(names(&cams[0]), [("b".into(), 7, 1), ("c".into(), 3, 3)]);
        assert!(ctx.apply(&mut cams, fewer).is_empty());
    }

    #[test]
    fn a_new_camera_or_address_needs_a_restart_and_the_running_one_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("ronda.db")).unwrap());
        let old = settings(A, "RW 9");
        let mut cams = vec![camera(&old, vec![(Counts::default(), chrono::Utc::now())])];
        let mut ctx = RulesContext {
            store,
            sink: None,
            settings: old.clone(),
            faces: false,
        };
        let mut new = old.clone();
        new.cameras[0].url = "rtsp://10.0.0.9/other".into();
        let mut extra = new.cameras[0].clone();
        extra.id = "pos-2".into();
        new.cameras.push(extra);
        let changes = ctx.apply(&mut cams, new);
        assert!(
            changes.contains(&"camera `pos-2` is new: restart ronda to start it".to_string()),
            "{changes:?}"
        );
        assert!(
            changes.iter().any(|c| c.starts_with("gate-1: address")),
            "{changes:?}"
        );
        // the camera keeps running with the address it has
        assert_eq!(cams[0].conf.url, "rtsp://127.0.0.1:1/cam01");
    }
}
