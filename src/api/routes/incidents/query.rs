//! The parameters of `GET /api/incidents`, from the query string to the store's
//! [`IncidentFilter`]. Each refusal names the parameter, what it got and what it takes.
//!
//! Times: `from` and `to` are RFC 3339 instants (`2026-11-22T21:04:05+07:00`), or the site's
//! own wall clock without an offset (`2026-11-22T21:04`, as a browser's date-time field sends
//! it), or a day (`2026-11-22`), both in the site's time zone, so a reviewer in the village
//! types what the clocks there showed. `from` includes its instant; `to` excludes its instant,
//! but a day as `to` includes that whole day (`from=2026-11-20&to=2026-11-22` is three days).

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use crate::events::EventKind;
use crate::store::{IncidentFilter, MAX_PAGE};

/// The query string as sent: every value a string, checked in [`ListQuery::filter`] so that
/// the messages say what to send instead of serde's wording.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    from: Option<String>,
    to: Option<String>,
    camera: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    reviewed: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// Longest camera id looked for (config ids are short).
const MAX_CAMERA_CHARS: usize = 64;

impl ListQuery {
    /// The store's filter, or what is wrong. An empty value is the same as leaving the
    /// parameter out (a form's "all" choice sends `camera=`).
    pub(super) fn filter(self, tz: Tz) -> Result<IncidentFilter, String> {
        let given = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        let mut f = IncidentFilter::default();
        if let Some(s) = given(self.from) {
            f.from = Some(instant("from", &s, tz, false)?);
        }
        if let Some(s) = given(self.to) {
            f.to = Some(instant("to", &s, tz, true)?);
        }
        if let Some(c) = given(self.camera) {
            let c = c.trim();
            if c.chars().count() > MAX_CAMERA_CHARS || c.chars().any(char::is_control) {
                return Err(format!(
                    "camera: give a camera id of at most {MAX_CAMERA_CHARS} characters, as in the \
                     configuration (e.g. camera=gate-1)"
                ));
            }
            f.camera = Some(c.to_string());
        }
        if let Some(list) = given(self.kind) {
            f.kinds = kinds(&list)?;
        }
        if let Some(r) = given(self.reviewed) {
            f.reviewed = Some(match r.trim() {
                "true" => true,
                "false" => false,
                other => {
                    return Err(format!(
                        "reviewed: `{}` is neither true nor false (reviewed=true lists the \
                         reviewed incidents, reviewed=false the ones still to review)",
                        shorten(other)
                    ));
                }
            });
        }
        if let Some(l) = given(self.limit) {
            f.limit = l.trim().parse().map_err(|_| {
                format!(
                    "limit: `{}` is not a whole number; a page holds 1 to {MAX_PAGE} incidents",
                    shorten(&l)
                )
            })?;
        }
        f.cursor = given(self.cursor);
        Ok(f)
    }
}

/// `no_mask,intrusion` as types, each known.
fn kinds(list: &str) -> Result<Vec<EventKind>, String> {
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Ok(k) = name.parse::<EventKind>() else {
            let known = EventKind::names();
            return Err(format!(
                "type: `{}` is not an event type; use one or more of {} separated by commas",
                shorten(name),
                known.join(", ")
            ));
        };
        if !out.contains(&k) {
            out.push(k);
        }
    }
    Ok(out)
}

/// `s` as an instant: RFC 3339, the site's wall clock, or a day (its start; with
/// `end_of_day`, the start of the next day).
fn instant(name: &str, s: &str, tz: Tz, end_of_day: bool) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Ok(site_time(t, tz));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let d = if end_of_day {
            d.succ_opt().unwrap_or(d)
        } else {
            d
        };
        return Ok(site_time(d.and_time(chrono::NaiveTime::MIN), tz));
    }
    Err(format!(
        "{name}: `{}` is not a time; give a day (2026-11-22) or a time (2026-11-22T21:04) in \
         the site's time zone ({}), or RFC 3339 with an offset (2026-11-22T21:04:05+07:00)",
        shorten(s),
        tz.name()
    ))
}

/// The instant the site's clocks showed `t`. A time skipped by a daylight-saving jump is taken
/// an hour later; a time shown twice, the first time.
fn site_time(t: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    tz.from_local_datetime(&t)
        .earliest()
        .or_else(|| tz.from_local_datetime(&(t + Duration::hours(1))).earliest())
        .map(|l| l.with_timezone(&Utc))
        .unwrap_or_else(|| t.and_utc())
}

/// A value quoted back in a message: short, so a huge parameter does not make a huge answer.
fn shorten(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(MAX).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JAKARTA: Tz = chrono_tz::Asia::Jakarta;

    fn q(pairs: &[(&str, &str)]) -> Result<IncidentFilter, String> {
        let text = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let q: ListQuery = serde_urlencoded_like(&text);
        q.filter(JAKARTA)
    }

    /// The query string as axum's `Query` reads it.
    fn serde_urlencoded_like(text: &str) -> ListQuery {
        let uri: axum::http::Uri = format!("/api/incidents?{text}").parse().unwrap();
        axum::extract::Query::try_from_uri(&uri).unwrap().0
    }

    #[test]
    fn days_are_site_days_and_to_includes_its_day() {
        let f = q(&[("from", "2026-11-20"), ("to", "2026-11-22")]).unwrap();
        // midnight in Jakarta is 17:00 UTC the day before
        assert_eq!(f.from.unwrap().to_rfc3339(), "2026-11-19T17:00:00+00:00");
        assert_eq!(f.to.unwrap().to_rfc3339(), "2026-11-22T17:00:00+00:00");
        let f = q(&[("from", "2026-11-22T21:04")]).unwrap();
        assert_eq!(f.from.unwrap().to_rfc3339(), "2026-11-22T14:04:00+00:00");
        let f = q(&[("to", "2026-11-22T21:04:05%2B07:00")]).unwrap();
        assert_eq!(f.to.unwrap().to_rfc3339(), "2026-11-22T14:04:05+00:00");
        let f = q(&[("to", "2026-11-22T14:04:05Z")]).unwrap();
        assert_eq!(f.to.unwrap().to_rfc3339(), "2026-11-22T14:04:05+00:00");
    }

    #[test]
    fn a_skipped_wall_clock_time_is_taken_an_hour_later() {
        // 2026-03-29 02:30 does not exist in Amsterdam (clocks jump from 02:00 to 03:00)
        let t = NaiveDate::from_ymd_opt(2026, 3, 29)
            .unwrap()
            .and_hms_opt(2, 30, 0)
            .unwrap();
        let u = site_time(t, chrono_tz::Europe::Amsterdam);
        assert_eq!(u.to_rfc3339(), "2026-03-29T01:30:00+00:00");
    }

    #[test]
    fn types_reviewed_limit_and_empty_values() {
        let f = q(&[
            ("type", "no_mask,intrusion,no_mask"),
            ("reviewed", "false"),
            ("limit", "7"),
            ("camera", "gate-1"),
            ("cursor", "123_abc"),
        ])
        .unwrap();
        assert_eq!(f.kinds, [EventKind::NoMask, EventKind::Intrusion]);
        assert_eq!(f.reviewed, Some(false));
        assert_eq!(f.limit, 7);
        assert_eq!(f.camera.as_deref(), Some("gate-1"));
        assert_eq!(f.cursor.as_deref(), Some("123_abc"));
        let f = q(&[("camera", ""), ("type", ""), ("reviewed", "")]).unwrap();
        assert_eq!(f, IncidentFilter::default());
    }

    #[test]
    fn each_refusal_names_its_parameter_and_what_it_takes() {
        for (pairs, names) in [
            (vec![("from", "yesterday")], ["from:", "2026-11-22"]),
            (vec![("to", "2026-13-01")], ["to:", "Asia/Jakarta"]),
            (vec![("type", "no_mask,ghost")], ["type:", "`ghost`"]),
            (vec![("type", "ghost")], ["camera_offline", "line_crossing"]),
            (vec![("reviewed", "yes")], ["reviewed:", "true"]),
            (vec![("limit", "many")], ["limit:", "200"]),
            (vec![("limit", "-1")], ["limit:", "1 to"]),
            (vec![("camera", &"x".repeat(65))], ["camera:", "64"]),
        ] {
            let e = q(&pairs).unwrap_err();
            for n in names {
                assert!(e.contains(n), "{pairs:?}: {e}");
            }
        }
        let long = "x".repeat(500);
        assert!(q(&[("from", &long)]).unwrap_err().len() < 300);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        /// Any values at all: no panic, and a refusal names its parameter.
        #[test]
        fn hostile_values_never_panic_and_refusals_are_placed(
            from in proptest::prelude::any::<String>(),
            to in "[0-9T:+Z -]{0,30}",
            camera in proptest::prelude::any::<String>(),
            kind in "[a-z_, ]{0,40}",
            reviewed in proptest::prelude::any::<String>(),
            limit in "-?[0-9]{0,25}",
        ) {
            let query = ListQuery {
                from: Some(from),
                to: Some(to),
                camera: Some(camera),
                kind: Some(kind),
                reviewed: Some(reviewed),
                limit: Some(limit),
                cursor: None,
            };
            if let Err(e) = query.filter(JAKARTA) {
                let placed = ["from", "to", "camera", "type", "reviewed", "limit"]
                    .iter()
                    .any(|p| e.starts_with(&format!("{p}:")));
                proptest::prop_assert!(placed, "{}", e);
                proptest::prop_assert!(e.chars().count() < 400, "{}", e);
            }
        }
    }
}
