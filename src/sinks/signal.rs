//! What a delivery thread (the webhook, each phone destination) and its owner share: "new
//! events were stored", "stop by then", whether deliveries are failing and how many outages
//! there were. One mutex and one condition variable; nothing here blocks the owner.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

#[derive(Default)]
struct State {
    /// Events were stored since the thread last looked.
    wake: bool,
    /// Shutting down: deliver what can be until then, then stop.
    deadline: Option<Instant>,
}

#[derive(Default)]
pub(crate) struct Signal {
    state: Mutex<State>,
    changed: Condvar,
    /// In an outage (or with a refused token): messages wait.
    failing: AtomicBool,
    /// Outages since the start, counted by the thread (see `telemetry`), read by /metrics.
    outages: AtomicU64,
}

/// A delivery sink's outage count, for /metrics: the sink lives in the outlet, the figures are
/// read by the HTTP side, so it gets a handle on the count rather than the sink.
#[derive(Clone)]
pub(crate) struct Outages(Arc<Signal>);

impl Outages {
    pub fn new(signal: Arc<Signal>) -> Outages {
        Outages(signal)
    }

    /// Outages since the start.
    pub fn total(&self) -> u64 {
        self.0.outages.load(Ordering::Relaxed)
    }
}

impl Signal {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// New events were stored: look now. Never blocks for long.
    pub fn wake(&self) {
        self.lock().wake = true;
        self.changed.notify_all();
    }

    /// Deliver what can be until `timeout` from now, then stop.
    fn stop_within(&self, timeout: Duration) {
        self.lock().deadline = Some(Instant::now() + timeout);
        self.changed.notify_all();
    }

    /// When the thread must have stopped, once a shutdown began.
    pub fn deadline(&self) -> Option<Instant> {
        self.lock().deadline
    }

    /// The time one request may take: `normal`, cut to what is left before the shutdown
    /// deadline; `None` when that has passed.
    pub fn request_timeout(&self, normal: Duration) -> Option<Duration> {
        match self.deadline() {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                (!left.is_zero()).then(|| normal.min(left))
            }
            None => Some(normal),
        }
    }

    /// Until events are stored, `until`, or a shutdown begins.
    pub fn wait_for_events(&self, until: Instant) {
        let mut st = self.lock();
        let now = Instant::now();
        if !st.wake && st.deadline.is_none() && until > now {
            st = self
                .changed
                .wait_timeout(st, until - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        st.wake = false;
    }

    /// Sleep until `until` (the next retry); false when the shutdown deadline comes first.
    pub fn sleep_until(&self, until: Instant) -> bool {
        let mut st = self.lock();
        loop {
            let now = Instant::now();
            if st.deadline.is_some_and(|d| now >= d) {
                return false;
            }
            if now >= until {
                return true;
            }
            let end = st.deadline.map_or(until, |d| d.min(until));
            st = self
                .changed
                .wait_timeout(st, end - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Stop the delivery thread: deliver until `timeout`, then wait `grace` more for it to end
    /// (`finished` is sent to or dropped when it does). A request that started before the
    /// shutdown may take its full timeout: it is left to end on its own, and what it did not
    /// finish is sent after the next start. `what` names the sink in warnings.
    pub fn stop_thread(
        &self,
        thread: std::thread::JoinHandle<()>,
        finished: &std::sync::mpsc::Receiver<()>,
        timeout: Duration,
        grace: Duration,
        what: &str,
    ) {
        self.stop_within(timeout);
        match finished.recv_timeout(timeout + grace) {
            Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                if thread.join().is_err() {
                    tracing::warn!("the {what} thread panicked");
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                tracing::warn!("the {what} did not stop in time; leaving it to finish on its own");
            }
        }
    }

    pub fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    pub fn set_failing(&self, on: bool) {
        self.failing.store(on, Ordering::Relaxed);
    }

    /// The outage count the delivery thread adds to (through its `telemetry` event).
    pub fn outages(&self) -> &AtomicU64 {
        &self.outages
    }
}

/// A `Retry-After` in seconds (the form services use for 429 and 503), if the answer has one.
pub(crate) fn retry_after(headers: &ureq::http::HeaderMap) -> Option<Duration> {
    headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_wake_ends_the_wait_and_a_shutdown_ends_the_sleep() {
        let s = Arc::new(Signal::default());
        let s2 = s.clone();
        let t = std::thread::spawn(move || {
            s2.wait_for_events(Instant::now() + Duration::from_secs(600))
        });
        s.wake();
        t.join().unwrap();
        let s3 = s.clone();
        let t =
            std::thread::spawn(move || s3.sleep_until(Instant::now() + Duration::from_secs(600)));
        s.stop_within(Duration::ZERO);
        assert!(!t.join().unwrap(), "the sleep went on past the shutdown");
        assert_eq!(s.request_timeout(Duration::from_secs(5)), None);
    }

    #[test]
    fn a_request_gets_what_is_left_before_the_deadline() {
        let s = Signal::default();
        assert_eq!(
            s.request_timeout(Duration::from_secs(5)),
            Some(Duration::from_secs(5))
        );
        s.stop_within(Duration::from_secs(60));
        assert_eq!(
            s.request_timeout(Duration::from_secs(5)),
            Some(Duration::from_secs(5))
        );
        s.stop_within(Duration::from_millis(1500));
        let t = s.request_timeout(Duration::from_secs(5)).unwrap();
        assert!(t <= Duration::from_millis(1500), "{t:?}");
        assert!(
            s.sleep_until(Instant::now()),
            "a sleep already over returns true"
        );
    }
}
