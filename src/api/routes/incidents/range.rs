//! The HTTP `Range` header of a clip request (RFC 9110 section 14), so that a browser can seek in
//! a clip without downloading it first.
//!
//! Only one byte range is served (`bytes=a-b`, `bytes=a-`, `bytes=-n`): that is what media
//! players send. A header this server does not understand (another unit, several ranges,
//! `b < a`, garbage) is ignored and the whole file is sent, as RFC 9110 allows: the player
//! still gets a valid answer. A well-formed range that starts at or past the end of the file is
//! unsatisfiable (416).

/// What to send of a file of `len` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Wanted {
    /// The whole file (200).
    Whole,
    /// Bytes `start..=end` (206); `end < len`.
    Part { start: u64, end: u64 },
    /// Nothing of it can be sent (416 with `Content-Range: bytes */len`).
    Unsatisfiable,
}

/// Longest header looked at; a real player's is a few dozen bytes.
const MAX_HEADER: usize = 200;

/// What a `Range` header value (`None`: no header) asks of a file of `len` bytes.
pub(super) fn wanted(header: Option<&str>, len: u64) -> Wanted {
    let Some(h) = header else {
        return Wanted::Whole;
    };
    if h.len() > MAX_HEADER {
        return Wanted::Whole;
    }
    let Some(spec) = strip_unit(h.trim()) else {
        return Wanted::Whole;
    };
    if spec.contains(',') {
        return Wanted::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Wanted::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    match (first.is_empty(), last.is_empty()) {
        // `-n`: the last n bytes
        (true, false) => match digits(last) {
            Some(0) => Wanted::Unsatisfiable,
            Some(_) if len == 0 => Wanted::Unsatisfiable,
            Some(n) => Wanted::Part {
                start: len.saturating_sub(n),
                end: len - 1,
            },
            None => Wanted::Whole,
        },
        // `a-` or `a-b`
        (false, _) => {
            let Some(start) = digits(first) else {
                return Wanted::Whole;
            };
            let end = if last.is_empty() {
                None
            } else {
                match digits(last) {
                    Some(b) if b >= start => Some(b),
                    _ => return Wanted::Whole,
                }
            };
            if start >= len {
                return Wanted::Unsatisfiable;
            }
            Wanted::Part {
                start,
                end: end.map_or(len - 1, |b| b.min(len - 1)),
            }
        }
        (true, true) => Wanted::Whole,
    }
}

/// `bytes=...` without the unit (case-insensitive, as RFC 9110 says units are).
fn strip_unit(h: &str) -> Option<&str> {
    let (unit, spec) = h.split_once('=')?;
    unit.trim().eq_ignore_ascii_case("bytes").then_some(spec)
}

/// A plain decimal number (no sign, no spaces), if it fits.
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::Wanted::{Part, Unsatisfiable, Whole};
    use super::wanted;

    #[test]
    fn single_ranges_of_every_form() {
        let len = 1000;
        assert_eq!(wanted(None, len), Whole);
        assert_eq!(wanted(Some("bytes=0-99"), len), Part { start: 0, end: 99 });
        assert_eq!(
            wanted(Some("bytes=500-"), len),
            Part {
                start: 500,
                end: 999
            }
        );
        assert_eq!(
            wanted(Some("bytes=-100"), len),
            Part {
                start: 900,
                end: 999
            }
        );
        // past the end is cut at the end; a suffix longer than the file is the whole file
        assert_eq!(
            wanted(Some("bytes=990-5000"), len),
            Part {
                start: 990,
                end: 999
            }
        );
        assert_eq!(
            wanted(Some("bytes=-5000"), len),
            Part { start: 0, end: 999 }
        );
        assert_eq!(wanted(Some("Bytes = 7-7"), len), Part { start: 7, end: 7 });
    }

    #[test]
    fn ranges_outside_the_file_are_unsatisfiable() {
        assert_eq!(wanted(Some("bytes=1000-"), 1000), Unsatisfiable);
        assert_eq!(wanted(Some("bytes=1000-1010"), 1000), Unsatisfiable);
        assert_eq!(wanted(Some("bytes=-0"), 1000), Unsatisfiable);
        assert_eq!(wanted(Some("bytes=0-"), 0), Unsatisfiable);
        assert_eq!(wanted(Some("bytes=-5"), 0), Unsatisfiable);
    }

    #[test]
    fn what_is_not_understood_gets_the_whole_file() {
        for h in [
            "items=0-5",
            "bytes=5-1",
            "bytes=0-1,5-9",
            "bytes=",
            "bytes=-",
            "bytes=a-b",
            "bytes=+1-2",
            "bytes 0-5",
            "bytes=99999999999999999999999-",
        ] {
            assert_eq!(wanted(Some(h), 1000), Whole, "{h}");
        }
        assert_eq!(
            wanted(Some(&format!("bytes=0-{}", "1".repeat(300))), 10),
            Whole
        );
    }
}
