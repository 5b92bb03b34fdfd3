//! `[gatebook]`: the gate log and the guest book (*buku tamu*) at the village gate (`gate`).
//!
//! ```toml
//! [gatebook]
//! record_within_minutes = 10   # a night entry not recorded in the book within this raises
//!                              # `unrecorded_entry`
//! report_at = "06:00"          # the daily report of the 24 hours before it (site time)
//! retention_days = 30          # entries, their pictures, records and reports are deleted after
//! night = "22:00-05:00"        # the night for gate lines without a `curfew` of their own
//! ```
//!
//! The night is the gate line's own `curfew` window when it has one (the same hours the guards
//! already keep), else `night` here; a line with neither has no night, and its entries never
//! raise `unrecorded_entry`.

use std::time::Duration;

use chrono::NaiveTime;
use toml::Table;

use super::read::{Reader, join};
use super::settings::Gatebook;
use super::values::read_window;

pub(super) fn read_gatebook(r: &mut Reader, root: &Table) -> Gatebook {
    let d = Gatebook::default();
    let Some(t) = r.table(root, "", "gatebook") else {
        return d;
    };
    let place = "gatebook";
    r.known_keys(
        t,
        place,
        &[
            "record_within_minutes",
            "report_at",
            "retention_days",
            "night",
        ],
    );
    let minutes = r.number(t, place, "record_within_minutes", 10.0, 0.1..=1440.0);
    let report_at = match r.string(t, place, "report_at") {
        None => d.report_at,
        Some(s) => parse_time_of_day(&s).unwrap_or_else(|| {
            r.issue(
                join(place, "report_at"),
                format!(
                    "`{s}` is not a time of day; write HH:MM or HH:MM:SS in site time, e.g. \
                     \"06:00\" (the report of the 24 hours before it is made then)"
                ),
            );
            d.report_at
        }),
    };
    let retention_days = r.integer(t, place, "retention_days", 30, 1..=3650) as u32;
    let night = read_window(r, t, place, "night");
    Gatebook {
        record_within: Duration::from_secs_f64(minutes * 60.0),
        report_at,
        retention_days,
        night,
    }
}

/// `06:00` or `06:00:30`.
pub fn parse_time_of_day(s: &str) -> Option<NaiveTime> {
    let s = s.trim();
    NaiveTime::parse_from_str(s, "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Settings, Window};
    use std::path::Path;

    fn parse(extra: &str) -> Result<Settings, crate::config::ConfigError> {
        Settings::parse(
            &format!("[site]\nid = \"rw9\"\n{extra}"),
            Path::new("t.toml"),
        )
    }

    fn hms(h: u32, m: u32, s: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, s).unwrap()
    }

    #[test]
    fn defaults_without_the_table() {
        let g = parse("").unwrap().gatebook;
        assert_eq!(g, Gatebook::default());
        assert_eq!(g.record_within, Duration::from_secs(600));
        assert_eq!(g.report_at, hms(6, 0, 0));
        assert_eq!(g.retention_days, 30);
        assert_eq!(g.night, None);
    }

    #[test]
    fn keys_are_read() {
        let g = parse(
            "[gatebook]\nrecord_within_minutes = 0.5\nreport_at = \"05:30:15\"\n\
             retention_days = 7\nnight = \"21:00-04:30\"\n",
        )
        .unwrap()
        .gatebook;
        assert_eq!(g.record_within, Duration::from_secs(30));
        assert_eq!(g.report_at, hms(5, 30, 15));
        assert_eq!(g.retention_days, 7);
        let w = g.night.unwrap();
        assert_eq!((w.start, w.end), (hms(21, 0, 0), hms(4, 30, 0)));
        // a line's own curfew wins over the book's night
        let curfew = Window {
            start: hms(23, 0, 0),
            end: hms(3, 0, 0),
        };
        assert_eq!(g.night_of(Some(curfew)), Some(curfew));
        assert_eq!(g.night_of(None), Some(w));
    }

    #[test]
    fn every_problem_names_its_key_and_what_to_write() {
        let e = parse(
            "[gatebook]\nrecord_within_minutes = 0\nreport_at = \"6 pagi\"\n\
             retention_days = \"30\"\nnight = \"malam\"\nretention_day = 30\n",
        )
        .unwrap_err();
        let text: Vec<String> = e.issues().iter().map(|i| i.to_string()).collect();
        let has = |start: &str, words: &str| {
            assert!(
                text.iter()
                    .any(|t| t.starts_with(start) && t.contains(words)),
                "no `{start}` ... `{words}` in {text:#?}"
            )
        };
        has("gatebook.record_within_minutes", "from 0.1 to 1440");
        has("gatebook.report_at", "write HH:MM or HH:MM:SS");
        has("gatebook.retention_days", "whole number");
        has("gatebook.night", "HH:MM-HH:MM");
        has("gatebook.retention_day", "did you mean `retention_days`");
        assert_eq!(text.len(), 5, "{text:#?}");
    }

    #[test]
    fn times_of_day() {
        assert_eq!(parse_time_of_day("06:00"), Some(hms(6, 0, 0)));
        assert_eq!(parse_time_of_day(" 23:59:59 "), Some(hms(23, 59, 59)));
        for bad in ["6", "24:00", "06:60", "pagi", ""] {
            assert_eq!(parse_time_of_day(bad), None, "{bad}");
        }
    }
}
