//! The daily reset of line counts (`[site] counts_reset`, site time).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::camera::*;
use crate::rules::Counts;
use crate::store::Store;

/// The daily reset of line counts (`[site] counts_reset`, site time), checked by the worker.
pub(super) struct DailyReset {
    pub(super) at: chrono::NaiveTime,
    pub(super) store: Arc<Store>,
    pub(super) sink: Option<crate::sinks::SinkHandle>,
    pub(super) last_check: Instant,
}

impl DailyReset {
    /// Reset the lines whose reset time has come; checked every 20 s, not per frame.
    pub(super) fn check(&mut self, cams: &mut [CamState], tz: chrono_tz::Tz) {
        if self.last_check.elapsed() < Duration::from_secs(20) {
            return;
        }
        self.last_check = Instant::now();
        let now = chrono::Utc::now();
        for cam in cams.iter_mut() {
            let rules = &mut cam.rules;
            for (line, since) in rules.lines.iter_mut().zip(rules.since.iter_mut()) {
                if !crate::store::reset_due(*since, now, self.at, tz) {
                    continue;
                }
                let name = line.spec().name.clone();
                tracing::info!(camera = %cam.id, line = %name, counts = ?line.counts(), "daily reset of the line counts");
                line.reset_counts();
                *since = now;
                if let Err(e) = self.store.reset_counts(&cam.id, &name, now) {
                    tracing::error!(camera = %cam.id, line = %name, "daily reset not stored: {e}");
                }
                if let Some(s) = &self.sink {
                    let json = crate::sinks::outlet::counts_json(Counts::default(), now, tz);
                    let _ = s.publish_counts(&cam.id, &name, &json);
                }
            }
        }
    }
}
