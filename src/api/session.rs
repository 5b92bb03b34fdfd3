//! Login sessions: a random 256-bit token in an `HttpOnly; SameSite=Strict` cookie, kept in memory
//! only (a restart logs everybody out), valid for a fixed time from the login.
//!
//! The map is keyed by the SHA-256 of the token, so neither a lookup's timing nor a memory dump
//! gives a usable token away.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::config::Role;

/// Name of the session cookie.
pub const COOKIE_NAME: &str = "ronda_session";

/// At most this many sessions of one user at once: a new login beyond it ends that user's own
/// oldest session, so logging in over and over (or a script doing so with a stolen password)
/// never logs anybody else out. Generous for a guard with a phone, a tablet and the post's PC.
pub const MAX_SESSIONS_PER_USER: usize = 32;

/// At most this many sessions at once (a memory bound; with the per-user cap it is reached only
/// with more than 300 users): the oldest of the user logging in, else the oldest of all, goes.
const MAX_SESSIONS: usize = 10_000;

/// Who a request comes from, once its session cookie was found valid. `R` is the role: the
/// village's [`Role`], or another server's own (the city hub's users have roles of their own).
#[derive(Clone, Debug)]
pub struct SessionUser<R = Role> {
    pub name: String,
    pub role: R,
    /// The session's key (hash of the token): to end it, or to re-check it on a long stream.
    pub key: [u8; 32],
    pub expires: Instant,
}

#[derive(Debug)]
struct Session<R> {
    name: String,
    role: R,
    /// Login order: numbered under the map's lock, so "oldest" is the first one made even
    /// when two logins of one user race (their clock readings may come in either order).
    seq: u64,
    expires: Instant,
}

#[derive(Debug)]
pub struct Sessions<R = Role> {
    ttl: Duration,
    map: Mutex<HashMap<[u8; 32], Session<R>>>,
    /// The next session's `seq` (taken only with `map` locked).
    next: AtomicU64,
}

fn key_of(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl<R: Copy> Sessions<R> {
    pub fn new(ttl: Duration) -> Sessions<R> {
        Sessions {
            ttl,
            map: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A new session for `name`; returns the token for the cookie (64 hex digits).
    pub fn create(&self, name: &str, role: R) -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        // read the clock and number the session under the lock: a login that waited for it
        // must not come out older than the ones made meanwhile (it would be the next one ended)
        let now = Instant::now();
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        map.retain(|_, s| s.expires > now);
        let (mine, my_oldest) = map.iter().filter(|(_, s)| s.name == name).fold(
            (0, None::<(&[u8; 32], u64)>),
            |(n, old), (k, s)| {
                let older = old.is_none_or(|(_, c)| s.seq < c);
                (n + 1, if older { Some((k, s.seq)) } else { old })
            },
        );
        let my_oldest = my_oldest.map(|(k, _)| *k);
        if mine >= MAX_SESSIONS_PER_USER || map.len() >= MAX_SESSIONS {
            let victim =
                my_oldest.or_else(|| map.iter().min_by_key(|(_, s)| s.seq).map(|(k, _)| *k));
            if let Some(k) = victim {
                map.remove(&k);
            }
        }
        map.insert(
            key_of(&token),
            Session {
                name: name.to_string(),
                role,
                seq,
                expires: now + self.ttl,
            },
        );
        token
    }

    /// The user of a request with a valid session cookie.
    pub fn from_headers(&self, headers: &HeaderMap) -> Option<SessionUser<R>> {
        let token = token_from_headers(headers)?;
        self.lookup(&key_of(token))
    }

    /// The session under `key`, if it is still valid.
    pub fn lookup(&self, key: &[u8; 32]) -> Option<SessionUser<R>> {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        match map.get(key) {
            Some(s) if s.expires > now => Some(SessionUser {
                name: s.name.clone(),
                role: s.role,
                key: *key,
                expires: s.expires,
            }),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    /// End a session (logout).
    pub fn remove(&self, key: &[u8; 32]) {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }

    /// End the session of this request's cookie, if any.
    pub fn remove_from_headers(&self, headers: &HeaderMap) {
        if let Some(token) = token_from_headers(headers) {
            self.remove(&key_of(token));
        }
    }

    /// Sessions currently valid.
    pub fn count(&self) -> usize {
        let now = Instant::now();
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|s| s.expires > now)
            .count()
    }
}

/// The session token of the `Cookie` headers, if it looks like one of ours.
fn token_from_headers(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE_NAME)
        .map(|(_, v)| v.trim())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The `Set-Cookie` value that starts a session. `Secure` only when asked (`[http]
/// secure_cookie`, behind a TLS proxy): ronda is usually reached over plain HTTP on the village
/// network, where a `Secure` cookie would never be sent back.
pub fn set_cookie(token: &str, ttl: Duration, secure: bool) -> String {
    format!(
        "{COOKIE_NAME}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        ttl.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that ends a session in the browser.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE_NAME}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn a_session_is_found_by_its_cookie_and_ends() {
        let s = Sessions::new(Duration::from_secs(60));
        let token = s.create("pos1", Role::Guard);
        assert_eq!(token.len(), 64);
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_str(&format!("other=1; {COOKIE_NAME}={token}")).unwrap(),
        );
        let u = s.from_headers(&h).unwrap();
        assert_eq!((u.name.as_str(), u.role), ("pos1", Role::Guard));
        s.remove_from_headers(&h);
        assert!(s.from_headers(&h).is_none());
        assert_eq!(s.count(), 0);
    }

    #[test]
    fn expired_and_foreign_tokens_are_refused() {
        let s = Sessions::new(Duration::ZERO);
        let token = s.create("pos1", Role::Guard);
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_str(&format!("{COOKIE_NAME}={token}")).unwrap(),
        );
        assert!(s.from_headers(&h).is_none());
        h.insert(
            COOKIE,
            HeaderValue::from_static("ronda_session=zz; x=ronda_session"),
        );
        assert!(s.from_headers(&h).is_none());
    }

    fn header(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_str(&format!("{COOKIE_NAME}={token}")).unwrap(),
        );
        h
    }

    #[test]
    fn many_logins_of_one_user_end_only_that_users_oldest_sessions() {
        let s = Sessions::new(Duration::from_secs(60));
        let guard = s.create("jaga", Role::Guard);
        let first = s.create("admin", Role::Admin);
        let mut last = String::new();
        // more logins than the global cap: with only that cap, the guard would go first
        for _ in 0..=MAX_SESSIONS {
            last = s.create("admin", Role::Admin);
        }
        assert!(
            s.from_headers(&header(&guard)).is_some(),
            "the guard was logged out"
        );
        assert!(s.from_headers(&header(&first)).is_none());
        assert!(s.from_headers(&header(&last)).is_some());
        assert_eq!(s.count(), MAX_SESSIONS_PER_USER + 1);
    }

    /// Issue 18's "a valid guard session got 401 right after two admin saves": nothing but
    /// the guard's own logout, its expiry or its own 33rd login ends its session, however
    /// many admins log in and out (and save) at the same time.
    #[test]
    fn a_guard_session_holds_while_admins_log_in_and_out_at_once() {
        let s = Sessions::new(Duration::from_secs(60));
        let guard = header(&s.create("jaga", Role::Guard));
        std::thread::scope(|scope| {
            for i in 0..4 {
                let s = &s;
                scope.spawn(move || {
                    // each admin alone makes its logins: the one just made is its newest, and
                    // never the one its next login ends
                    let name = format!("admin-{i}");
                    for _ in 0..500 {
                        let t = header(&s.create(&name, Role::Admin));
                        assert!(s.from_headers(&t).is_some(), "a fresh session was ended");
                        s.create(&name, Role::Admin);
                        s.remove_from_headers(&t);
                    }
                });
            }
            for _ in 0..5_000 {
                let u = s.from_headers(&guard).expect("the guard was logged out");
                assert_eq!(u.role, Role::Guard);
            }
        });
        assert_eq!(s.count(), 4 * (MAX_SESSIONS_PER_USER - 1) + 1);
    }

    #[test]
    fn cookie_flags() {
        let c = set_cookie("ab", Duration::from_secs(43_200), false);
        assert!(!c.contains("Secure"), "{c}");
        assert!(set_cookie("ab", Duration::from_secs(1), true).ends_with("; Secure"));
        assert!(clear_cookie(true).ends_with("; Secure"));
        for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
            assert!(c.contains(flag), "{c}");
        }
    }
}
