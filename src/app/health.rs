//! Camera health changes to `camera_online` / `camera_offline` events and the health board.

use std::sync::Arc;
use std::sync::mpsc::Receiver;

use super::{EventSite, Events, Raised, village};
use crate::events::EventKind;
use crate::ingest::camera::{Health, HealthChange};

pub(super) fn health_events(
    rx: Receiver<HealthChange>,
    tx: Events,
    site: EventSite,
    board: Arc<village::HealthBoard>,
) {
    for h in rx {
        board.set(&h.camera, h.health, chrono::DateTime::from(h.at));
        let kind = match h.health {
            Health::Online => EventKind::CameraOnline,
            Health::Offline => EventKind::CameraOffline,
            Health::Connecting => continue,
        };
        let mut e = site.event(&h.camera, kind, chrono::DateTime::from(h.at));
        e.snapshot = None;
        e.clip = None;
        if !tx.send(Raised::bare(e)) {
            break;
        }
    }
}
