//! MQTT topic names, in one place: which names may become a topic level, how a name becomes
//! one ([`level`]), the topics ronda publishes on, and which messages a client or broker would
//! refuse for their size or shape ([`refusal`]).
//!
//! Why this matters: a topic over 65,535 bytes, or one with a wildcard in it, is not a message
//! the broker takes. rumqttc writes such a topic's length into 16 bits anyway and the broker
//! drops the connection; the outbox then sends the same message first again after every
//! reconnect, and nothing behind it is ever delivered. So names that become topic levels (site
//! id, camera id, line and zone names, the topic prefix) are bounded and checked when the
//! configuration is read (`check-config`, `ronda run`, the admin editor), every topic level is
//! made by [`level`], and the MQTT sink checks each message with [`refusal`] before it sends
//! it, setting aside (quarantining) what would be refused instead of retrying it forever.
//!
//! Pure functions, no I/O.

use sha2::{Digest, Sha256};

/// The most characters a name that becomes a topic level (or a file name) may have: enough
/// for "gerbang utara sisi timur", short enough to read on a phone and to keep every topic far
/// below MQTT's limit.
pub const MAX_NAME_CHARS: usize = 64;
/// The most characters of `[mqtt] topic_prefix`.
pub const MAX_PREFIX_CHARS: usize = 128;
/// MQTT writes a topic's length in 16 bits.
pub const MAX_TOPIC_BYTES: usize = 65_535;

/// `<prefix>/events`: every event, QoS 1, not retained.
pub const EVENTS: &str = "events";
/// `<prefix>/acks`: guards' acknowledgements.
pub const ACKS: &str = "acks";
/// `<prefix>/availability`: `online`, and `offline` as the last will.
pub const AVAILABILITY: &str = "availability";

/// Why a name cannot be used where it becomes a topic level.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameProblem {
    #[error("must not be empty")]
    Empty,
    #[error(
        "is {chars} characters long; use at most {MAX_NAME_CHARS} (it becomes part of MQTT \
         topic names)"
    )]
    TooLong { chars: usize },
    #[error(
        "contains `{0}`, which has a meaning in MQTT topic names; use letters, digits, spaces, \
         - or _ instead"
    )]
    Reserved(char),
    #[error("contains an invisible or control character ({0}); type the name again on one line")]
    Invisible(String),
}

/// Whether `name` may be a line or zone name (a topic level of its own): not empty, at most
/// [`MAX_NAME_CHARS`] characters, no `/ + #`, no control or invisible characters. Letters of
/// any script, digits, spaces and punctuation are fine.
pub fn check_name(name: &str) -> Result<(), NameProblem> {
    if name.trim().is_empty() {
        return Err(NameProblem::Empty);
    }
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(NameProblem::TooLong { chars });
    }
    if let Some(c) = name.chars().find(|c| matches!(c, '/' | '+' | '#')) {
        return Err(NameProblem::Reserved(c));
    }
    if let Some(c) = name.chars().find(|c| invisible(*c)) {
        return Err(NameProblem::Invisible(format!("U+{:04X}", c as u32)));
    }
    Ok(())
}

/// Why `[mqtt] topic_prefix` cannot be used, in words for the admin; `None` when it can.
pub fn prefix_problem(prefix: &str) -> Option<String> {
    let chars = prefix.chars().count();
    if prefix.is_empty() {
        Some("must not be empty".into())
    } else if chars > MAX_PREFIX_CHARS {
        Some(format!(
            "is {chars} characters long; use at most {MAX_PREFIX_CHARS}, e.g. \"ronda/rw9\""
        ))
    } else if prefix.starts_with('$') {
        Some("must not start with $ (brokers keep those topics for themselves)".into())
    } else if prefix.starts_with('/') || prefix.ends_with('/') || prefix.contains("//") {
        Some(
            "must not start or end with /, nor have an empty level (//), e.g. \"ronda/rw9\"".into(),
        )
    } else if prefix.contains(['#', '+']) {
        Some("must not contain # or + (MQTT wildcards)".into())
    } else {
        prefix.chars().find(|c| invisible(*c)).map(|c| {
            format!(
                "contains an invisible or control character (U+{:04X}); type it again on one line",
                c as u32
            )
        })
    }
}

/// Control characters, and the invisible ones that make two different names look the same
/// (zero-width spaces, direction overrides, the byte-order mark).
fn invisible(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// The topic level for `name`: THE one function through which a name becomes part of a topic.
/// A name that passes [`check_name`] (or a camera id) is its own level. Anything else (a store
/// written by an older ronda, a caller that skipped the check) is made safe rather than
/// refused: `/ + #` and invisible characters become `_`, an empty name `_`, and a name over
/// [`MAX_NAME_CHARS`] is cut and given a hash of the whole, so two long names stay apart.
pub fn level(name: &str) -> String {
    if check_name(name).is_ok() {
        return name.to_string();
    }
    let clean: String = name
        .chars()
        .map(|c| {
            if matches!(c, '/' | '+' | '#') || invisible(c) {
                '_'
            } else {
                c
            }
        })
        .collect();
    if clean.chars().count() > MAX_NAME_CHARS {
        let hash = Sha256::digest(name.as_bytes());
        let tag: String = hash[..4].iter().map(|b| format!("{b:02x}")).collect();
        let head: String = clean.chars().take(MAX_NAME_CHARS - 1 - tag.len()).collect();
        return format!("{head}~{tag}");
    }
    if clean.trim().is_empty() {
        return "_".repeat(clean.chars().count().max(1));
    }
    clean
}

/// `cameras/<camera>/status` (after the prefix): a camera's retained status.
pub fn camera_status(camera: &str) -> String {
    format!("cameras/{}/status", level(camera))
}

/// `lines/<camera>/<line>/counts` (after the prefix): a line's retained counts.
pub fn line_counts(camera: &str, line: &str) -> String {
    format!("lines/{}/{}/counts", level(camera), level(line))
}

/// Does MQTT filter `filter` receive `topic` (`+` one level, `#` this level and everything
/// below)?
pub fn matches(filter: &str, topic: &str) -> bool {
    let mut t = topic.split('/');
    for f in filter.split('/') {
        match (f, t.next()) {
            ("#", _) => return true,
            ("+", Some(_)) => {}
            (f, Some(level)) if f == level => {}
            _ => return false,
        }
    }
    t.next().is_none()
}

/// The whole topic: `<prefix>/<suffix>`.
pub fn full(prefix: &str, suffix: &str) -> String {
    format!("{prefix}/{suffix}")
}

/// Why a QoS 1 publish would be refused by the client or the broker.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the topic is empty")]
    EmptyTopic,
    #[error("the topic is {0} bytes long; MQTT allows at most 65,535")]
    TopicTooLong(usize),
    #[error("the topic contains `{0}` (an MQTT wildcard, or a NUL)")]
    BadTopic(char),
    #[error("the message is {size} bytes; the MQTT client and broker take at most {max}")]
    TooLarge { size: usize, max: usize },
}

/// Would a QoS 1 publish of `payload_len` bytes on `topic` be refused (by the client, whose
/// packets are at most `max_packet` bytes, or by the broker)? Such a message must not be sent:
/// it would cost the connection and block everything queued behind it.
pub fn refusal(topic: &str, payload_len: usize, max_packet: usize) -> Option<Refusal> {
    if topic.is_empty() {
        return Some(Refusal::EmptyTopic);
    }
    if topic.len() > MAX_TOPIC_BYTES {
        return Some(Refusal::TopicTooLong(topic.len()));
    }
    if let Some(c) = topic.chars().find(|c| matches!(c, '+' | '#' | '\0')) {
        return Some(Refusal::BadTopic(c));
    }
    let size = publish_size(topic.len(), payload_len);
    if size > max_packet {
        return Some(Refusal::TooLarge {
            size,
            max: max_packet,
        });
    }
    None
}

/// The bytes of a QoS 1 PUBLISH: fixed header (1 + remaining length's 1-4 bytes), topic length
/// (2), topic, packet id (2), payload.
fn publish_size(topic_len: usize, payload_len: usize) -> usize {
    let remaining = 2 + topic_len + 2 + payload_len;
    let len_len = match remaining {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    };
    1 + len_len + remaining
}

/// `text` for a log line or a message: whole when short, else its start and its length, so a
/// 65,600-character name never floods a log or an answer.
pub fn shown(text: &str) -> String {
    const KEEP: usize = 40;
    // escaped first: a control character shows as `\n` or `\u{202e}`, never acts in a terminal
    let escaped: String = text
        .chars()
        .take(KEEP + 21)
        .flat_map(char::escape_debug)
        .collect();
    if escaped.chars().count() <= KEEP + 20 {
        return escaped;
    }
    let head: String = escaped.chars().take(KEEP).collect();
    format!("{head}… ({} characters)", text.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn village_names_are_their_own_level() {
        for n in [
            "gate",
            "gerbang utara",
            "Pos 2 (timur)",
            "jalan_kampung-3",
            "Jalan Ä",
        ] {
            assert_eq!(check_name(n), Ok(()));
            assert_eq!(level(n), n);
        }
        assert_eq!(
            line_counts("gate-1", "gerbang"),
            "lines/gate-1/gerbang/counts"
        );
        assert_eq!(camera_status("gate-1"), "cameras/gate-1/status");
    }

    #[test]
    fn bad_names_are_refused_with_the_reason() {
        assert_eq!(check_name(""), Err(NameProblem::Empty));
        assert_eq!(check_name("  "), Err(NameProblem::Empty));
        assert_eq!(
            check_name(&"y".repeat(65_600)),
            Err(NameProblem::TooLong { chars: 65_600 })
        );
        assert_eq!(check_name(&"y".repeat(64)), Ok(()));
        assert_eq!(check_name("a/b"), Err(NameProblem::Reserved('/')));
        assert_eq!(check_name("a+"), Err(NameProblem::Reserved('+')));
        assert_eq!(check_name("#"), Err(NameProblem::Reserved('#')));
        assert!(matches!(check_name("a\nb"), Err(NameProblem::Invisible(_))));
        assert!(matches!(
            check_name("ga\u{200B}te"),
            Err(NameProblem::Invisible(_))
        ));
    }

    #[test]
    fn long_names_stay_apart_and_bounded() {
        let a = level(&format!("{}a", "y".repeat(100)));
        let b = level(&format!("{}b", "y".repeat(100)));
        assert_ne!(a, b);
        assert_eq!(a.chars().count(), MAX_NAME_CHARS);
        assert_eq!(level("a/b+c#"), "a_b_c_");
        assert_eq!(level(""), "_");
    }

    #[test]
    fn prefixes_are_checked() {
        assert_eq!(prefix_problem("ronda/rw9"), None);
        for bad in [
            "", "/ronda", "ronda/", "a//b", "$SYS/x", "a/#", "a/+/b", "a\tb",
        ] {
            assert!(prefix_problem(bad).is_some(), "{bad:?}");
        }
        assert!(prefix_problem(&"r".repeat(129)).is_some());
    }

    #[test]
    fn refusals_match_the_client_limits() {
        let max = 256 * 1024;
        assert_eq!(refusal("ronda/rw9/events", 600, max), None);
        assert_eq!(refusal("", 1, max), Some(Refusal::EmptyTopic));
        let long = format!("ronda/rw9/lines/cam-05/{}/counts", "y".repeat(65_600));
        assert_eq!(
            refusal(&long, 10, max),
            Some(Refusal::TopicTooLong(long.len()))
        );
        assert_eq!(refusal("a/+/b", 1, max), Some(Refusal::BadTopic('+')));
        assert_eq!(refusal("a\0b", 1, max), Some(Refusal::BadTopic('\0')));
        // the largest payload that fits, and one byte more
        let topic = "ronda/rw9/events";
        let fits = max - publish_size(topic.len(), 0) - 2;
        let fits = (fits..fits + 4)
            .take_while(|p| publish_size(topic.len(), *p) <= max)
            .last()
            .unwrap();
        assert_eq!(refusal(topic, fits, max), None);
        assert!(matches!(
            refusal(topic, fits + 1, max),
            Some(Refusal::TooLarge { .. })
        ));
    }

    #[test]
    fn shown_cuts_long_text() {
        assert_eq!(shown("gate"), "gate");
        let s = shown(&"y".repeat(65_600));
        assert!(s.len() < 80 && s.ends_with("(65600 characters)"), "{s}");
    }

    proptest! {
        #[test]
        fn any_name_gives_a_safe_bounded_level(name in any::<String>()) {
            let l = level(&name);
            prop_assert_eq!(check_name(&l), Ok(()));
            prop_assert!(l.chars().count() <= MAX_NAME_CHARS);
            if check_name(&name).is_ok() {
                prop_assert_eq!(&l, &name);
            }
            let topic = full("ronda/rw9", &line_counts(&l, &name));
            prop_assert_eq!(refusal(&topic, 100, 256 * 1024), None);
        }

        #[test]
        fn hostile_names_never_panic(
            name in prop::collection::vec(
                prop_oneof![
                    Just('/'), Just('+'), Just('#'), Just('\0'), Just('\n'), Just('\u{202E}'),
                    Just('y'), Just(' '), any::<char>()
                ],
                0..300
            )
        ) {
            let name: String = name.into_iter().collect();
            let _ = check_name(&name);
            let _ = prefix_problem(&name);
            let l = level(&name);
            prop_assert!(!l.contains(['/', '+', '#', '\0']));
            let _ = shown(&name);
        }
    }
}
