//! Passwords (argon2id PHC strings), who may do what (the role matrix), and the brake on wrong
//! passwords.
//!
//! # Role matrix
//!
//! | area | routes | guard | reviewer | admin |
//! |---|---|---|---|---|
//! | public | `GET /login`, `POST /api/login`, `/metrics` (unless `metrics_public = false`) | yes | yes | yes |
//! | any | `GET /`, `GET /api/me`, `POST /api/logout`, `GET /api/incidents/{id}/snapshot.jpg` (the guard feed's thumbnails) | yes | yes | yes |
//! | guard | `/guard`, `/api/cameras`, `/api/counts`, `/api/events`, `/api/events/stream`, `POST /api/events/{id}/ack`; the gate book: `/gatebook`, `/api/gate/...` (but the occupancy) | yes | no | yes |
//! | review | `/review`, `GET /api/incidents`, `GET /api/incidents/{id}`, `GET /api/incidents/{id}/clip.mp4`, `POST /api/incidents/{id}/review`, `GET /api/review/cameras` | no | yes | yes |
//! | admin | `/admin`, `/api/admin/...`, `PUT /api/gate/occupancy` | no | no | yes |
//!
//! The clip (`GET /api/incidents/{id}/clip.mp4`) also takes HTTP Basic credentials of a
//! reviewer or admin (the city hub's proxy), checked like a login.
//!
//! An admin may do everything; roles do not otherwise include each other.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};

use crate::backoff::doubled;
use crate::config::Role;

/// Shortest password `ronda passwd` accepts.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Longest password (bytes) the login accepts; anything longer is refused before hashing.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// An argon2id PHC string (default parameters: 19 MiB, 2 passes) for `password`, random salt.
pub fn hash_password(password: &str) -> Result<String, String> {
    let hash: PasswordHash = Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| format!("cannot hash the password: {e}"))?;
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `phc` (its own parameters are used). Slow on
/// purpose (tens of milliseconds): call it off the async runtime.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// Why a configured hash can never match, if it cannot (checked once at start).
pub fn check_hash(phc: &str) -> Result<(), String> {
    PasswordHash::new(phc)
        .map(|_| ())
        .map_err(|e| format!("not a valid argon2 PHC string ({e})"))
}

/// A hash of a random password: verified against when the name is unknown, so that a wrong name
/// takes as long as a wrong password and does not tell which names exist.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let pw: String = (0..24)
            .map(|_| char::from(b'a' + rand::random_range(0..26u8)))
            .collect();
        hash_password(&pw).unwrap_or_default()
    })
}

/// Which group of routes a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Area {
    /// Any logged-in user.
    Any,
    /// The guard post: live feed, counts, camera health, acknowledge.
    Guard,
    /// Incident review.
    Review,
    /// Configuration.
    Admin,
}

impl Area {
    /// The role matrix (module docs).
    pub fn allows(self, role: Role) -> bool {
        matches!(
            (self, role),
            (_, Role::Admin)
                | (Area::Any, _)
                | (Area::Guard, Role::Guard)
                | (Area::Review, Role::Reviewer)
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Area::Any => "any",
            Area::Guard => "guard",
            Area::Review => "review",
            Area::Admin => "admin",
        }
    }
}

/// The page a role starts on after login.
pub fn home_of(role: Role) -> &'static str {
    match role {
        Role::Guard | Role::Admin => "/guard",
        Role::Reviewer => "/review",
    }
}

/// How wrong passwords are slowed down.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lockout {
    /// Wrong passwords in a row that cost nothing.
    pub free_failures: u32,
    /// Lockout after the last free failure; doubles with each further failure...
    pub first: Duration,
    /// ... up to this.
    pub max: Duration,
    /// A name or address with no failed login for this long starts again from zero.
    pub forget_after: Duration,
}

impl Default for Lockout {
    fn default() -> Self {
        Lockout {
            free_failures: 5,
            first: Duration::from_secs(1),
            max: Duration::from_secs(30),
            forget_after: Duration::from_secs(3600),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Strikes {
    failures: u32,
    locked_until: Option<Instant>,
    last: Instant,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    /// One name from one address: the brake on guessing a user's password.
    Pair(String, IpAddr),
    /// One address, whatever the names: the brake on trying many names.
    Ip(IpAddr),
    /// One name from anywhere: the backstop against guessing from many addresses. It never
    /// applies to an address that logged in as that name before (see [`Limiter::check`]).
    Name(String),
}

impl Key {
    /// Wrong passwords in a row under this key before it locks. Only the pair locks at
    /// [`Lockout::free_failures`]: a name alone must not lock that soon, or a stranger's
    /// failures would lock the guard at the post out (they come from another address).
    fn free_failures(&self, cfg: &Lockout) -> u32 {
        match self {
            Key::Pair(..) => cfg.free_failures,
            Key::Ip(_) => cfg.free_failures.saturating_mul(IP_FACTOR),
            Key::Name(_) => cfg.free_failures.saturating_mul(NAME_FACTOR),
        }
    }
}

/// An address is locked after this many times the pair's failures (over any names).
const IP_FACTOR: u32 = 4;
/// A name is locked for addresses it never logged in from after this many times the pair's
/// failures (from all addresses together): 100 by default, far more than a person mistypes,
/// and an attacker with that many addresses still only slows new devices of that user down.
const NAME_FACTOR: u32 = 20;
/// How long an address that logged in as a name stays exempt from that name's backstop.
const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);

/// At most this many names and addresses are remembered (the least recent are forgotten first).
const MAX_KEYS: usize = 10_000;

/// Failed logins in a row, per (user name, client address), per address and per user name.
/// After [`Lockout::free_failures`] failures of one name from one address that pair is locked
/// for 1 s, then 2, 4, ... up to 30 s after every further failure; an address is locked the same
/// way after 4 times as many failures over all names, and a name after 20 times as many from all
/// addresses together, except for addresses it logged in from before. A locked login is
/// answered 429 without looking at the password. A successful login clears the pair, the
/// address and the name, and remembers the address as known for that name.
///
/// So a stranger failing against the guard's name from another address locks only themselves:
/// the guard at the post logs in (issue #18). Behind a reverse proxy every client has the
/// proxy's address and this protection is lost: serve ronda directly on the village network.
#[derive(Debug)]
pub struct Limiter {
    cfg: Lockout,
    strikes: HashMap<Key, Strikes>,
    /// (name, address) pairs that logged in, with when they last did.
    known: HashMap<(String, IpAddr), Instant>,
}

fn name_norm(name: &str) -> String {
    name.trim().to_lowercase().chars().take(64).collect()
}

impl Limiter {
    pub fn new(cfg: Lockout) -> Limiter {
        Limiter {
            cfg,
            strikes: HashMap::new(),
            known: HashMap::new(),
        }
    }

    fn keys(name: &str, ip: IpAddr) -> [Key; 3] {
        let n = name_norm(name);
        [Key::Pair(n.clone(), ip), Key::Ip(ip), Key::Name(n)]
    }

    /// `Err(wait)` while the pair, the address or (for an address the name never logged in
    /// from) the name is locked.
    pub fn check(&mut self, name: &str, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let known = self
            .known
            .get(&(name_norm(name), ip))
            .is_some_and(|&at| now.saturating_duration_since(at) < KNOWN_FOR);
        let wait = Self::keys(name, ip)
            .iter()
            .filter(|k| !(known && matches!(k, Key::Name(_))))
            .filter_map(|k| self.strikes.get(k))
            .filter_map(|s| s.locked_until)
            .filter(|&until| until > now)
            .map(|until| until - now)
            .max();
        match wait {
            Some(w) => Err(w),
            None => Ok(()),
        }
    }

    /// Count a wrong password; returns the lockout of this name from this address it started,
    /// if any.
    pub fn failure(&mut self, name: &str, ip: IpAddr, now: Instant) -> Option<Duration> {
        self.forget(now);
        let cfg = self.cfg;
        let mut lock = None;
        for k in Self::keys(name, ip) {
            let free = k.free_failures(&cfg);
            let pair = matches!(k, Key::Pair(..));
            let s = self.strikes.entry(k).or_insert(Strikes {
                failures: 0,
                locked_until: None,
                last: now,
            });
            s.failures = s.failures.saturating_add(1);
            s.last = now;
            if s.failures >= free {
                let d = doubled(cfg.first, s.failures - free, cfg.max);
                s.locked_until = Some(now + d);
                if pair {
                    lock = lock.max(Some(d));
                }
            }
        }
        lock
    }

    /// A correct password: the pair, the address and the name start again from zero, and the
    /// address is known for that name from now on.
    pub fn success(&mut self, name: &str, ip: IpAddr, now: Instant) {
        for k in Self::keys(name, ip) {
            self.strikes.remove(&k);
        }
        if self.known.len() >= MAX_KEYS {
            self.known
                .retain(|_, at| now.saturating_duration_since(*at) < KNOWN_FOR);
        }
        if self.known.len() >= MAX_KEYS
            && let Some(oldest) = self
                .known
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(k, _)| k.clone())
        {
            self.known.remove(&oldest);
        }
        self.known.insert((name_norm(name), ip), now);
    }

    fn forget(&mut self, now: Instant) {
        let after = self.cfg.forget_after;
        self.strikes
            .retain(|_, s| now.duration_since(s.last) < after);
        while self.strikes.len() >= MAX_KEYS {
            let Some(oldest) = self
                .strikes
                .iter()
                .min_by_key(|(_, s)| s.last)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.strikes.remove(&oldest);
        }
    }
}

/// `name` and `password` of an `Authorization: Basic ...` header value.
pub fn basic_credentials(value: &str) -> Option<(String, String)> {
    let (scheme, b64) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let bytes = base64_decode(b64.trim())?;
    let text = String::from_utf8(bytes).ok()?;
    let (name, password) = text.split_once(':')?;
    Some((name.to_string(), password.to_string()))
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64, padding optional; `None` on anything else.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let v = B64.iter().position(|&b| b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Why [`check_password`] refused.
#[derive(Debug, PartialEq)]
pub enum Refused {
    /// Too many wrong passwords for this name or address: try again after this long.
    Locked(Duration),
    /// The server is stopping.
    Stopping,
    /// Wrong name or password; `Some`: that was one too many, locked for this long.
    Wrong(Option<Duration>),
}

/// The one password check of the village's login (and `/metrics`, and the clip route with Basic
/// credentials) and of the city hub's: through the brake on wrong passwords, at most a few
/// hashes at once (`hashing`), the brake looked at again after waiting for a turn so that a burst
/// of parallel guesses is not all let through. `hash` is the user's, `None` for a name that does
/// not exist: the same work is done then, so timing does not tell which names exist.
pub async fn check_password(
    limiter: &Mutex<Limiter>,
    hashing: &tokio::sync::Semaphore,
    name: &str,
    password: String,
    ip: IpAddr,
    hash: Option<String>,
) -> Result<(), Refused> {
    let brake = || limiter.lock().unwrap_or_else(PoisonError::into_inner);
    brake()
        .check(name, ip, Instant::now())
        .map_err(Refused::Locked)?;
    let _permit = hashing.acquire().await.map_err(|_| Refused::Stopping)?;
    brake()
        .check(name, ip, Instant::now())
        .map_err(Refused::Locked)?;
    let known = hash.is_some();
    let ok = tokio::task::spawn_blocking(move || match hash {
        Some(h) => verify_password(&password, &h),
        None => {
            verify_password(&password, dummy_hash());
            false
        }
    })
    .await
    .unwrap_or(false);
    if ok && known {
        brake().success(name, ip, Instant::now());
        Ok(())
    } else {
        Err(Refused::Wrong(brake().failure(name, ip, Instant::now())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_matrix() {
        use Area::*;
        for area in [Any, Guard, Review, Admin] {
            assert!(area.allows(Role::Admin));
        }
        assert!(Guard.allows(Role::Guard) && !Guard.allows(Role::Reviewer));
        assert!(Review.allows(Role::Reviewer) && !Review.allows(Role::Guard));
        assert!(!Admin.allows(Role::Guard) && !Admin.allows(Role::Reviewer));
        assert!(Any.allows(Role::Guard) && Any.allows(Role::Reviewer));
    }

    #[test]
    fn lockout_doubles_after_five_and_success_clears() {
        let mut l = Limiter::new(Lockout::default());
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..4 {
            assert_eq!(l.failure("pos1", ip, t0), None);
            assert!(l.check("pos1", ip, t0).is_ok());
        }
        assert_eq!(l.failure("POS1", ip, t0), Some(Duration::from_secs(1)));
        assert_eq!(l.check("pos1", ip, t0), Err(Duration::from_secs(1)));
        // the same name from another address is not locked (the guard at the post), nor is
        // another name from this address yet
        assert!(l.check("pos1", "192.0.2.8".parse().unwrap(), t0).is_ok());
        assert!(l.check("pos2", ip, t0).is_ok());
        let t1 = t0 + Duration::from_secs(1);
        assert!(l.check("pos1", ip, t1).is_ok());
        assert_eq!(l.failure("pos1", ip, t1), Some(Duration::from_secs(2)));
        let mut t = t1;
        for _ in 0..10 {
            t += Duration::from_secs(31);
            l.failure("pos1", ip, t);
        }
        assert_eq!(l.check("pos1", ip, t), Err(Duration::from_secs(30)));
        l.success("pos1", ip, t);
        assert!(l.check("pos1", ip, t).is_ok());
        assert_eq!(l.failure("pos1", ip, t), None);
    }

    #[test]
    fn a_stranger_cannot_lock_the_guard_out() {
        let mut l = Limiter::new(Lockout::default());
        let post: IpAddr = "192.0.2.10".parse().unwrap();
        let t0 = Instant::now();
        l.success("jaga", post, t0);
        // one stranger's address, then many addresses: 200 wrong passwords for `jaga`
        let mut t = t0;
        for i in 0..200u32 {
            let stranger = IpAddr::from([198, 51, (i / 250) as u8, (i % 250) as u8 + 1]);
            t += Duration::from_millis(100);
            if l.check("jaga", stranger, t).is_ok() {
                l.failure("jaga", stranger, t);
            }
            assert_eq!(l.check("jaga", post, t), Ok(()), "after {i} failures");
        }
        // the backstop holds for addresses that never logged in as `jaga`
        let new_device = IpAddr::from([198, 51, 200, 1]);
        assert!(l.check("jaga", new_device, t).is_err());
        // one address trying many names is braked after 20 failures
        let sprayer = IpAddr::from([203, 0, 113, 9]);
        for i in 0..20 {
            assert!(l.check(&format!("user{i}"), sprayer, t).is_ok(), "{i}");
            l.failure(&format!("user{i}"), sprayer, t);
        }
        assert!(l.check("someone-else", sprayer, t).is_err());
    }

    #[test]
    fn base64_round_trip_and_basic_auth() {
        for s in ["", "f", "fo", "foo", "foob", "fooba", "foobar"] {
            assert_eq!(
                base64_decode(&base64_encode(s.as_bytes())).unwrap(),
                s.as_bytes()
            );
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(
            basic_credentials("Basic cG9zMTpzM2NyZXQ6eA=="),
            Some(("pos1".into(), "s3cret:x".into()))
        );
        assert_eq!(basic_credentials("Bearer abc"), None);
        assert_eq!(basic_credentials("Basic !!!"), None);
    }

    #[test]
    fn hashes_verify() {
        let h = hash_password("kopi-tubruk").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("kopi-tubruk", &h));
        assert!(!verify_password("kopi-tubruK", &h));
        assert!(!verify_password("kopi-tubruk", "$argon2id$garbage"));
        assert!(check_hash(&h).is_ok() && check_hash("nope").is_err());
    }
}
