//! What the front refuses, counted for `/metrics`, and wrong passwords braked per user name and
//! address with the web login's own [`Limiter`] (five failures of one name from one address lock
//! that pair for 1 s, doubling up to 30 s; an address or a name alone only after many more), so
//! guessing a guard post's MQTT password is slow while a stranger's failures never lock the
//! post's own client out.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::api::auth::{Limiter, Lockout};

/// Why a client was refused or cut off (for the log's rate limit and the counts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Cause {
    Full,
    Tls,
    Version,
    NotMqtt,
    Anonymous,
    BadLogin,
    /// Too many wrong passwords for this name from this address: refused unread.
    Braked,
    OwnId,
    Will,
    Publish,
    Subscribe,
    Upstream,
}

impl Cause {
    pub(super) const ALL: [Cause; 12] = [
        Cause::Full,
        Cause::Tls,
        Cause::Version,
        Cause::NotMqtt,
        Cause::Anonymous,
        Cause::BadLogin,
        Cause::Braked,
        Cause::OwnId,
        Cause::Will,
        Cause::Publish,
        Cause::Subscribe,
        Cause::Upstream,
    ];

    /// The label in `/metrics`.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Cause::Full => "full",
            Cause::Tls => "tls",
            Cause::Version => "version",
            Cause::NotMqtt => "not_mqtt",
            Cause::Anonymous => "anonymous",
            Cause::BadLogin => "bad_login",
            Cause::Braked => "braked",
            Cause::OwnId => "own_client_id",
            Cause::Will => "will",
            Cause::Publish => "publish",
            Cause::Subscribe => "subscribe",
            Cause::Upstream => "upstream",
        }
    }
}

/// Refusals since the broker started, by cause.
#[derive(Debug, Default)]
pub struct Refusals {
    counts: [AtomicU64; Cause::ALL.len()],
}

impl Refusals {
    pub(super) fn add(&self, cause: Cause) {
        let k = Cause::ALL.iter().position(|c| *c == cause).unwrap_or(0);
        self.counts[k].fetch_add(1, Ordering::Relaxed);
    }

    /// (cause, refusals) for every cause, in a fixed order.
    pub fn by_cause(&self) -> Vec<(&'static str, u64)> {
        Cause::ALL
            .iter()
            .zip(&self.counts)
            .map(|(c, n)| (c.as_str(), n.load(Ordering::Relaxed)))
            .collect()
    }
}

/// Wrong MQTT passwords, per user name and address.
#[derive(Debug)]
pub(super) struct Brake(Mutex<Limiter>);

impl Default for Brake {
    fn default() -> Self {
        Brake(Mutex::new(Limiter::new(Lockout::default())))
    }
}

impl Brake {
    /// How long `name` from `ip` must still wait, if it is locked.
    pub(super) fn locked(&self, name: &str, ip: IpAddr) -> Option<Duration> {
        let mut l = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        l.check(name, ip, Instant::now()).err()
    }

    pub(super) fn failed(&self, name: &str, ip: IpAddr) {
        let mut l = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        l.failure(name, ip, Instant::now());
    }

    pub(super) fn passed(&self, name: &str, ip: IpAddr) {
        let mut l = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        l.success(name, ip, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stranger_locks_only_itself_and_every_refusal_is_counted() {
        let b = Brake::default();
        let (post, stranger): (IpAddr, IpAddr) =
            ("10.0.0.2".parse().unwrap(), "10.0.0.66".parse().unwrap());
        b.passed("pos1", post);
        for _ in 0..5 {
            assert!(b.locked("pos1", stranger).is_none());
            b.failed("pos1", stranger);
        }
        assert!(b.locked("pos1", stranger).is_some(), "five wrong passwords");
        assert!(b.locked("pos1", post).is_none(), "the post was locked out");
        let r = Refusals::default();
        r.add(Cause::BadLogin);
        r.add(Cause::BadLogin);
        r.add(Cause::Braked);
        let got = r.by_cause();
        assert_eq!(got.len(), Cause::ALL.len());
        assert!(got.contains(&("bad_login", 2)) && got.contains(&("braked", 1)));
        assert_eq!(got.iter().map(|g| g.1).sum::<u64>(), 3);
    }
}
