//! Small values shared by the section readers: times of day, windows, addresses, names.

use chrono::NaiveTime;
use toml::Table;

use super::read::{Reader, join};
use crate::rules::Window;

pub(super) fn read_time(
    r: &mut Reader,
    t: &Table,
    place: &str,
    key: &str,
    default: &str,
) -> NaiveTime {
    let s = r.string_or(t, place, key, default);
    parse_hhmm(&s).unwrap_or_else(|| {
        r.issue(
            join(place, key),
            format!("`{s}` is not a time; write HH:MM, e.g. \"05:00\""),
        );
        NaiveTime::MIN
    })
}

pub(super) fn read_window(r: &mut Reader, t: &Table, place: &str, key: &str) -> Option<Window> {
    let s = r.string(t, place, key)?;
    let parsed = s.split_once('-').and_then(|(a, b)| {
        Some(Window {
            start: parse_hhmm(a)?,
            end: parse_hhmm(b)?,
        })
    });
    if parsed.is_none() {
        r.issue(
            join(place, key),
            format!("`{s}` is not a time window; write \"HH:MM-HH:MM\", e.g. \"22:00-05:00\""),
        );
    }
    parsed
}

pub(super) fn parse_hhmm(s: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M").ok()
}

pub(super) fn check_addr(r: &mut Reader, place: &str, addr: &str) {
    if addr.parse::<std::net::SocketAddr>().is_err() {
        r.issue(
            place,
            format!("`{addr}` is not an address; write IP:PORT, e.g. \"0.0.0.0:8080\""),
        );
    }
}

pub(super) fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= crate::topic::MAX_NAME_CHARS
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

pub(super) fn is_env_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}
