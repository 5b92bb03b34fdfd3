//! Who may do what on the embedded broker (README "Security"): only ronda publishes under its
//! topic prefix (ronda's own client reaches the broker behind the front, never through it);
//! through the front, a guard post's `guard` user may publish acknowledgements on
//! `<prefix>/acks` (not retained), and everybody who is let in may read `<prefix>/...` and
//! nothing beyond it. Pure functions, no I/O.

use crate::config::MqttRole;
use crate::topic;

/// The rights of one site's prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rights {
    prefix: String,
    acks: String,
}

/// Why a publish (or a last will, which is one) is refused, in words for the log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("a {0} may only read")]
    ReadOnly(&'static str),
    #[error("a guard may publish only on {acks}")]
    NotAcks { acks: String },
    #[error("acknowledgements are not retained")]
    Retained,
}

impl Rights {
    /// The rights under `prefix` (`[mqtt] topic_prefix`, checked when the file was read).
    pub fn new(prefix: &str) -> Rights {
        Rights {
            prefix: prefix.to_string(),
            acks: topic::full(prefix, topic::ACKS),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// May a client of `role` publish on `topic` (retained or not)?
    pub fn may_publish(&self, role: MqttRole, topic: &str, retain: bool) -> Result<(), Denied> {
        match role {
            MqttRole::Reader => Err(Denied::ReadOnly("reader")),
            MqttRole::Guard if topic != self.acks => Err(Denied::NotAcks {
                acks: self.acks.clone(),
            }),
            MqttRole::Guard if retain => Err(Denied::Retained),
            MqttRole::Guard => Ok(()),
        }
    }

    /// May a client subscribe to `filter`? Only to filters that cannot match anything outside
    /// the prefix: the prefix's levels written out (no wildcard among them), then anything.
    /// `#`, `ronda/#` or `ronda/+/events` reach other sites (or the broker's `$` topics) and
    /// are refused, as are shared subscriptions (`$share/...`) and malformed filters.
    pub fn may_subscribe(&self, filter: &str) -> bool {
        if !well_formed(filter) {
            return false;
        }
        match filter.strip_prefix(self.prefix.as_str()) {
            Some("") => true,
            Some(rest) => rest.starts_with('/'),
            None => false,
        }
    }
}

/// A filter as MQTT 3.1.1 allows it: not empty, `#` only as the whole last level, `+` only as a
/// whole level, no NUL.
fn well_formed(filter: &str) -> bool {
    if filter.is_empty() || filter.contains('\0') {
        return false;
    }
    let levels: Vec<&str> = filter.split('/').collect();
    levels.iter().enumerate().all(|(i, l)| {
        if l.contains('#') {
            *l == "#" && i == levels.len() - 1
        } else {
            !l.contains('+') || *l == "+"
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn guards_acknowledge_and_nobody_else_publishes() {
        let r = Rights::new("ronda/rw9");
        assert_eq!(
            r.may_publish(MqttRole::Guard, "ronda/rw9/acks", false),
            Ok(())
        );
        assert_eq!(
            r.may_publish(MqttRole::Guard, "ronda/rw9/acks", true),
            Err(Denied::Retained)
        );
        for t in [
            "ronda/rw9/events",
            "ronda/rw9/availability",
            "ronda/rw9/acks/x",
            "ronda/rw8/acks",
            "other",
        ] {
            assert!(r.may_publish(MqttRole::Guard, t, false).is_err(), "{t}");
            assert!(r.may_publish(MqttRole::Reader, t, false).is_err(), "{t}");
        }
        assert!(
            r.may_publish(MqttRole::Reader, "ronda/rw9/acks", false)
                .is_err()
        );
    }

    #[test]
    fn subscriptions_stay_inside_the_prefix() {
        let r = Rights::new("ronda/rw9");
        for ok in [
            "ronda/rw9/#",
            "ronda/rw9",
            "ronda/rw9/events",
            "ronda/rw9/+/gate-1/+/counts",
            "ronda/rw9/cameras/+/status",
        ] {
            assert!(r.may_subscribe(ok), "{ok}");
        }
        for no in [
            "#",
            "+",
            "ronda/#",
            "ronda/+",
            "ronda/+/events",
            "+/rw9/events",
            "ronda/rw9#",
            "ronda/rw90/events",
            "ronda/rw9/a#",
            "ronda/rw9/#/x",
            "ronda/rw9/e+",
            "$share/g/ronda/rw9/#",
            "$SYS/#",
            "",
            "ronda/rw9/\0",
        ] {
            assert!(!r.may_subscribe(no), "{no:?}");
        }
    }

    proptest! {
        /// Whatever the filter, one that is let through matches no topic outside the prefix:
        /// it starts with the prefix's levels written out.
        #[test]
        fn no_allowed_filter_reaches_beyond_the_prefix(
            head in prop_oneof![Just(""), Just("ronda/"), Just("ronda/rw9"), Just("ronda/rw9/")],
            tail in "[a-z0-9/+#$]{0,12}",
        ) {
            let filter = format!("{head}{tail}");
            let r = Rights::new("ronda/rw9");
            if r.may_subscribe(&filter) {
                prop_assert!(filter == "ronda/rw9" || filter.starts_with("ronda/rw9/"));
            }
        }
    }
}
