//! Whether the detector keeps up with a gate camera: the admin is told when it does not.
//!
//! Every picture a gate camera delivers goes to the detector (no motion gate), so the pictures it
//! delivered and the detector did not look at were replaced in its slot by newer ones while the
//! detector was busy: the box cannot keep up. The gate's tracks then see fewer pictures a second
//! and its counts are less sure (README "Lines, directions and counting": more crossings are
//! missed at 5 pictures a second than at 10), and the other cameras get only a look in four
//! (`turns`). Judged over [`WINDOW`] at a time, with two bars so that a box on the edge does not
//! flap between the two.

use std::time::{Duration, Instant};

/// The stretch of time each judgement covers: long enough that a start, a reconnect or one
/// burst of alerts (snapshots, clips) does not count, short enough that an admin tuning
/// `analysis_fps` sees the effect within a minute.
pub(super) const WINDOW: Duration = Duration::from_secs(30);

/// Behind when fewer than this share of the pictures delivered in a window were looked at.
pub(super) const BEHIND_BELOW: f64 = 0.8;

/// Caught up again when at least this share were.
pub(super) const CAUGHT_UP_FROM: f64 = 0.95;

/// A window with fewer pictures delivered is not judged (a camera that was offline in it).
const MIN_DELIVERED: u64 = 20;

/// The detector fell behind a gate camera or caught up again, to be logged once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum KeepUpChange {
    /// Pictures delivered and analysed a second over the window.
    FellBehind {
        delivered_fps: f64,
        analysed_fps: f64,
    },
    CaughtUp {
        delivered_fps: f64,
        analysed_fps: f64,
    },
}

/// Whether the detector keeps up with one gate camera.
#[derive(Debug, Default, Clone)]
pub(super) struct KeepUp {
    /// The window's start: when, pictures delivered and analysed then.
    mark: Option<(Instant, u64, u64)>,
    behind: bool,
}

impl KeepUp {
    /// Whether the last judged window found the camera behind.
    pub(super) fn behind(&self) -> bool {
        self.behind
    }

    /// The camera's counters at `now` (pictures delivered by the camera, looked at by the
    /// detector): a change when a window ends with the other verdict.
    pub(super) fn judge(
        &mut self,
        now: Instant,
        delivered: u64,
        analysed: u64,
    ) -> Option<KeepUpChange> {
        let Some((since, d0, a0)) = self.mark else {
            self.mark = Some((now, delivered, analysed));
            return None;
        };
        let dt = now.saturating_duration_since(since);
        if dt < WINDOW {
            return None;
        }
        self.mark = Some((now, delivered, analysed));
        let (d, a) = (delivered.saturating_sub(d0), analysed.saturating_sub(a0));
        if d < MIN_DELIVERED {
            return None;
        }
        let share = a as f64 / d as f64;
        let secs = dt.as_secs_f64();
        let (delivered_fps, analysed_fps) = (d as f64 / secs, a as f64 / secs);
        if !self.behind && share < BEHIND_BELOW {
            self.behind = true;
            Some(KeepUpChange::FellBehind {
                delivered_fps,
                analysed_fps,
            })
        } else if self.behind && share >= CAUGHT_UP_FROM {
            self.behind = false;
            Some(KeepUpChange::CaughtUp {
                delivered_fps,
                analysed_fps,
            })
        } else {
            None
        }
    }
}

/// Log the change for gate camera `camera`, saying what to do.
pub(super) fn log_change(camera: &str, change: KeepUpChange) {
    match change {
        KeepUpChange::FellBehind {
            delivered_fps,
            analysed_fps,
        } => tracing::warn!(
            camera,
            "the detector looked at only {analysed_fps:.1} of the {delivered_fps:.1} pictures a \
             second this gate camera delivers (last {} s): this box cannot keep up, so the gate's \
             counts are less sure and the other cameras are looked at less often; lower the \
             gate's or the busy area cameras' `analysis_fps`, set `[detector] area_person_model \
             = \"person_small\"`, or move cameras to another box",
            WINDOW.as_secs()
        ),
        KeepUpChange::CaughtUp {
            delivered_fps,
            analysed_fps,
        } => tracing::info!(
            camera,
            "the detector keeps up with this gate camera again ({analysed_fps:.1} of \
             {delivered_fps:.1} pictures a second looked at)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Windows of 10 pictures a second delivered and `looked` a second analysed, from `t0`.
    fn windows(keep: &mut KeepUp, t0: Instant, looked: &[u64]) -> Vec<Option<KeepUpChange>> {
        let secs = WINDOW.as_secs();
        let (mut d, mut a) = (0, 0);
        keep.judge(t0, d, a);
        looked
            .iter()
            .enumerate()
            .map(|(k, &l)| {
                d += 10 * secs;
                a += l * secs;
                keep.judge(t0 + WINDOW * (k as u32 + 1), d, a)
            })
            .collect()
    }

    #[test]
    fn a_gate_whose_pictures_are_mostly_looked_at_is_not_behind() {
        let mut keep = KeepUp::default();
        let got = windows(&mut keep, Instant::now(), &[10, 9, 8, 10]);
        assert!(got.iter().all(Option::is_none), "{got:?}");
        assert!(!keep.behind());
    }

    #[test]
    fn falling_behind_and_catching_up_are_each_said_once() {
        let mut keep = KeepUp::default();
        let got = windows(&mut keep, Instant::now(), &[10, 7, 6, 9, 10, 10]);
        assert_eq!(
            got[1],
            Some(KeepUpChange::FellBehind {
                delivered_fps: 10.0,
                analysed_fps: 7.0
            })
        );
        // 9 of 10 is not yet caught up (no flapping on the edge); 10 of 10 is
        assert_eq!(got[2..4], [None, None]);
        assert_eq!(
            got[4],
            Some(KeepUpChange::CaughtUp {
                delivered_fps: 10.0,
                analysed_fps: 10.0
            })
        );
        assert_eq!(got[5], None);
        assert!(!keep.behind());
    }

    #[test]
    fn a_window_with_few_pictures_is_not_judged() {
        let mut keep = KeepUp::default();
        let t0 = Instant::now();
        keep.judge(t0, 0, 0);
        // an offline camera: 5 pictures in the window, none looked at
        assert_eq!(keep.judge(t0 + WINDOW, 5, 0), None);
        assert!(!keep.behind());
        // a judgement waits for the window to end
        assert_eq!(keep.judge(t0 + WINDOW + WINDOW / 2, 300, 0), None);
        assert!(keep.judge(t0 + WINDOW * 2, 305, 0).is_some());
        assert!(keep.behind());
    }
}
