//! Events held back until a guard post reads them, after the embedded broker (re)starts.
//!
//! Why: the embedded broker lives in ronda's process, so a crash or a restart of the box takes
//! every reader's session with it. When ronda comes back, the events that waited in the outbox
//! (stored, not yet acknowledged by the broker when the box went down) and the first alerts of
//! the new run would go out at once, to a broker nobody has reconnected to yet: acknowledged by
//! the broker, marked sent, and lost to the guard post's app, which comes back a few seconds
//! later. So the sink holds events (and acknowledgements) until a client has subscribed to the
//! events topic through the broker's front (its SUBACK passed back to the client), or
//! [`READER_GRACE`] has passed since the broker started: nobody reading by then is nobody to
//! lose them to. The retained camera status, counts and `online` go out at once.
//!
//! Who is waited for: every guard post, when the broker has `[[mqtt.users]]` with the `guard`
//! role (each post logs in by its name, so the front knows who subscribed); otherwise (no guard
//! users: anonymous readers, or `reader` accounts only) the first reader. A guard post that does
//! not come back within the grace costs the others those seconds, never an event. An app that
//! is not waited for misses what went out before it subscribed, as with any broker that keeps
//! no session for it (an external broker with persistent sessions keeps them; README "Alerts
//! and MQTT"). An app with a persistent session that the start made again
//! (`crate::sinks::broker`'s `restore`) is in from the start: the broker queues for it.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// How long after the embedded broker's start events wait for a reader at most. Phone apps
/// reconnect with a back-off that grows to about half a minute.
pub const READER_GRACE: Duration = Duration::from_secs(30);

/// After a crash of the box, the events the embedded broker acknowledged this long before its
/// last acknowledgement are sent again (`Store::begin_broker_run`): what it may not yet have
/// handed to every guard post, bytes on their way or queued for an app that was reconnecting
/// (whose back-off grows to about half a minute, as above).
pub const RESEND_AFTER_CRASH: Duration = Duration::from_secs(60);

/// Whether a reader of the events topic has come (shared by the broker's front and the sink).
#[derive(Debug)]
pub struct Readers {
    topic: String,
    /// The guard posts' user names still to come (empty: the first reader will do).
    awaited: Mutex<HashSet<String>>,
    present: AtomicBool,
    arrived: Notify,
}

impl Readers {
    /// Waiting for a subscriber of `events_topic` (`<prefix>/events`): each of `guards` (the
    /// broker's users with the guard role), or anyone when there are none.
    pub fn new(events_topic: String, guards: impl IntoIterator<Item = String>) -> Arc<Readers> {
        Arc::new(Readers {
            topic: events_topic,
            awaited: Mutex::new(guards.into_iter().collect()),
            present: AtomicBool::new(false),
            arrived: Notify::new(),
        })
    }

    /// Does a subscription to `filter` receive the events?
    pub fn wants(&self, filter: &str) -> bool {
        crate::topic::matches(filter, &self.topic)
    }

    /// A subscription to the events by `user` (its login, if any) is in place.
    pub fn arrived(&self, user: Option<&str>) {
        let all_in = {
            let mut awaited = self.awaited.lock().unwrap_or_else(PoisonError::into_inner);
            if awaited.is_empty() {
                true
            } else {
                user.is_some_and(|u| awaited.remove(u)) && awaited.is_empty()
            }
        };
        if all_in {
            self.present.store(true, Ordering::Release);
            self.arrived.notify_waiters();
        }
    }

    pub fn present(&self) -> bool {
        self.present.load(Ordering::Acquire)
    }
}

/// The sink's side: hold events while nobody reads and the grace has not run out.
#[derive(Clone, Debug)]
pub struct Hold {
    pub readers: Arc<Readers>,
    pub until: Instant,
}

impl Hold {
    pub fn holding(&self, now: Instant) -> bool {
        now < self.until && !self.readers.present()
    }

    /// Resolves when a reader comes or the grace runs out (or a moment later: the driver's
    /// one-second tick looks again in any case).
    pub async fn released(&self) {
        let arrived = self.readers.arrived.notified();
        if !self.holding(Instant::now()) {
            return;
        }
        tokio::select! {
            _ = arrived => {}
            _ = tokio::time::sleep_until(self.until.into()) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_that_receive_the_events_and_filters_that_do_not() {
        let r = Readers::new("ronda/rw9/events".into(), []);
        for f in [
            "ronda/rw9/events",
            "ronda/rw9/#",
            "ronda/+/events",
            "ronda/#",
            "#",
            "+/rw9/+",
            "ronda/rw9/events/#",
        ] {
            assert!(r.wants(f), "{f}");
        }
        for f in [
            "ronda/rw9/acks",
            "ronda/rw9/cameras/#",
            "ronda/rw9",
            "ronda/rw9/events/x",
            "ronda/+",
            "ronda/rw1/#",
        ] {
            assert!(!r.wants(f), "{f}");
        }
    }

    #[test]
    fn events_are_held_until_a_reader_comes_or_the_grace_runs_out() {
        let t0 = Instant::now();
        let hold = Hold {
            readers: Readers::new("p/events".into(), []),
            until: t0 + READER_GRACE,
        };
        assert!(hold.holding(t0));
        assert!(!hold.holding(t0 + READER_GRACE), "the grace ran out");
        hold.readers.arrived(None);
        assert!(!hold.holding(t0), "a reader came");
    }

    #[test]
    fn with_guard_posts_each_of_them_is_waited_for() {
        let r = Readers::new("p/events".into(), ["pos1".to_string(), "pos2".to_string()]);
        r.arrived(None);
        r.arrived(Some("hass"));
        r.arrived(Some("pos1"));
        r.arrived(Some("pos1"));
        assert!(!r.present(), "pos2 is not back");
        r.arrived(Some("pos2"));
        assert!(r.present());
    }

    #[tokio::test]
    async fn released_wakes_when_the_reader_comes() {
        let hold = Hold {
            readers: Readers::new("p/events".into(), []),
            until: Instant::now() + READER_GRACE,
        };
        let h = hold.clone();
        let waiter = tokio::spawn(async move { h.released().await });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        hold.readers.arrived(None);
        waiter.await.unwrap();
    }
}
