//! The daily report of the gate (*laporan harian*) for the RT/RW book: the 24 hours before
//! `[gatebook] report_at` (site time), made once at that time by the [`Scheduler`] on the
//! gate book's clock: people in and out per hour, alerts by type, guests and newcomers
//! recorded, night entries nobody recorded, cameras that were offline.
//!
//! Made once: the report's row in the store is the marker (a restart, or a second ronda on the
//! same store, finds it and makes nothing); the webhook's message is marked sent when the
//! webhook answered 2xx, and tried again every minute until then (for a day at most). A day
//! that ended before the gate book first ran on the store gets no report.
//!
//! Three forms: the JSON the web page prints ([`DailyReport`]), a CSV ([`csv`]) and a short
//! text for the village's chat group ([`text`]: counts only, no names, no phone numbers). The
//! webhook gets `{"schema": 1, "type": "daily_report", "site", "day", "from", "to", "text",
//! "link"}` (not an event: receivers tell it by its `type`).
//!
//! Uses (of the crate, besides its own folder): config, events, rules, store.
//!
//! Here what a report holds and how it is made from the store ([`build`]); `times.rs` the
//! periods in site time, `forms.rs` the text, the CSV and the webhook's message, `scheduler.rs`
//! the daily run.

mod forms;
mod scheduler;
mod times;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, NaiveTime, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::config::{Language, Settings};
use crate::rules::Direction;
use crate::store::{EntryFilter, PersonKind, RecordFilter, Store, StoreError};

pub use forms::{csv, csv_field, csv_row, text, webhook_body};
pub use scheduler::{ReportHook, Scheduler};
use times::local;
pub use times::{instant, next_after, period_ending, period_of};

/// What a report needs to know of the site.
#[derive(Clone, Debug)]
pub struct ReportSite {
    pub id: String,
    pub name: String,
    pub tz: Tz,
    pub language: Language,
    pub report_at: NaiveTime,
    /// Camera ids and names, in config order.
    pub cameras: Vec<(String, String)>,
    /// `[http] public_url`: the message links the report's page only when it is set.
    pub public_url: Option<String>,
}

impl ReportSite {
    pub fn from_settings(s: &Settings) -> ReportSite {
        ReportSite {
            id: s.site.id.clone(),
            name: s.site.name.clone(),
            tz: s.site.timezone,
            language: s.site.language,
            report_at: s.gatebook.report_at,
            cameras: s
                .cameras
                .iter()
                .map(|c| (c.id.clone(), c.name.clone()))
                .collect(),
            public_url: s.http.public_url.clone(),
        }
    }

    fn camera_name(&self, id: &str) -> String {
        self.cameras
            .iter()
            .find(|(c, _)| c == id)
            .map(|(_, n)| if n.is_empty() { id } else { n.as_str() })
            .unwrap_or(id)
            .to_string()
    }
}

/// People in and out in one hour.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourCount {
    /// Site time the hour starts, `HH:MM`.
    pub hour: String,
    #[serde(rename = "in")]
    pub in_: u64,
    pub out: u64,
}

/// Events of one type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindCount {
    #[serde(rename = "type")]
    pub kind: String,
    pub count: u64,
}

/// A person recorded during the day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportPerson {
    pub id: i64,
    pub kind: PersonKind,
    pub name: String,
    pub origin: String,
    pub visiting: String,
    pub purpose: String,
    pub rt: String,
    pub entered: String,
    pub left: Option<String>,
}

/// Who was recorded, by kind, and the list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    pub residents: u64,
    pub guests: u64,
    pub newcomers: u64,
    pub people: Vec<ReportPerson>,
}

/// A night entry nobody recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportEntry {
    pub id: String,
    pub time: String,
    pub camera: String,
    pub line: String,
    /// `unrecorded_entry` was raised for it.
    pub alerted: bool,
}

/// A camera's outages during the day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outage {
    pub camera: String,
    pub name: String,
    /// How often it went offline during the day.
    pub times: u64,
    /// Minutes offline within the day (an outage from before the day counts from its start).
    pub minutes: u64,
    /// Still offline when the day ended.
    pub offline_at_end: bool,
}

/// The report of one day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyReport {
    pub site: String,
    pub site_name: String,
    /// The site date the day starts on.
    pub day: String,
    pub from: String,
    pub to: String,
    pub made_at: String,
    pub hours: Vec<HourCount>,
    pub total_in: u64,
    pub total_out: u64,
    /// Warnings and alerts by type, most first.
    pub alerts: Vec<KindCount>,
    pub recorded: Recorded,
    pub unrecorded_night: Vec<ReportEntry>,
    pub cameras_offline: Vec<Outage>,
}

/// The report of `[from, to)` as the store has it at `made`.
pub fn build(
    store: &Store,
    site: &ReportSite,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    made: DateTime<Utc>,
) -> Result<DailyReport, StoreError> {
    let tz = site.tz;
    // hours: from the hour `from` falls in, to `to`
    let start = from
        - Duration::seconds(i64::from(
            from.with_timezone(&tz).time().num_seconds_from_midnight() % 3600,
        ));
    let mut hours = Vec::new();
    let mut t = start;
    while t < to {
        hours.push(HourCount {
            hour: t.with_timezone(&tz).format("%H:%M").to_string(),
            in_: 0,
            out: 0,
        });
        t += Duration::hours(1);
    }
    let mut unrecorded = Vec::new();
    let (mut total_in, mut total_out) = (0, 0);
    let mut before: Option<(i64, String)> = None;
    loop {
        let page = store.gate_entries(&EntryFilter {
            from: Some(from),
            to: Some(to),
            before: before.clone(),
            limit: 1000,
            ..EntryFilter::default()
        })?;
        for e in &page {
            let i = ((e.at - start).num_seconds() / 3600).max(0) as usize;
            if let Some(h) = hours.get_mut(i) {
                match e.direction {
                    Direction::In => h.in_ += 1,
                    Direction::Out => h.out += 1,
                }
            }
            match e.direction {
                Direction::In => total_in += 1,
                Direction::Out => total_out += 1,
            }
            if e.night && e.direction == Direction::In && e.record.is_none() {
                unrecorded.push(ReportEntry {
                    id: e.id.clone(),
                    time: e.time.clone(),
                    camera: e.camera.clone(),
                    line: e.line.clone(),
                    alerted: e.alert_id.is_some(),
                });
            }
        }
        match page.last() {
            Some(last) if page.len() == 1000 => {
                before = Some((last.at.timestamp_millis(), last.id.clone()))
            }
            _ => break,
        }
    }
    unrecorded.reverse();

    // alerts by type, and camera outages (their state from two days before)
    let events = store.events_between(from - Duration::days(2), to, &["warning", "alert"])?;
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    let mut down: HashMap<String, DateTime<Utc>> = HashMap::new();
    let mut outages: BTreeMap<String, (u64, i64)> = BTreeMap::new();
    let overlap =
        |a: DateTime<Utc>, b: DateTime<Utc>| (b.min(to) - a.max(from)).num_seconds().max(0);
    for (kind, camera, at) in &events {
        if *at >= from && kind != "camera_online" {
            *kinds.entry(kind.clone()).or_default() += 1;
        }
        match kind.as_str() {
            "camera_offline" => {
                down.entry(camera.clone()).or_insert(*at);
                if *at >= from {
                    outages.entry(camera.clone()).or_default().0 += 1;
                }
            }
            "camera_online" => {
                if let Some(since) = down.remove(camera) {
                    let s = overlap(since, *at);
                    if s > 0 {
                        outages.entry(camera.clone()).or_default().1 += s;
                    }
                }
            }
            _ => {}
        }
    }
    for (camera, since) in &down {
        let o = outages.entry(camera.clone()).or_default();
        o.1 += overlap(*since, to);
    }
    let mut alerts: Vec<KindCount> = kinds
        .into_iter()
        .map(|(kind, count)| KindCount { kind, count })
        .collect();
    alerts.sort_by(|a, b| b.count.cmp(&a.count).then(a.kind.cmp(&b.kind)));
    let cameras_offline = outages
        .into_iter()
        .filter(|(_, (times, secs))| *times > 0 || *secs > 0)
        .map(|(camera, (times, secs))| Outage {
            name: site.camera_name(&camera),
            offline_at_end: down.contains_key(&camera),
            camera,
            times,
            minutes: (secs as u64).div_ceil(60),
        })
        .collect();

    let mut recorded = Recorded::default();
    let mut people = store.gate_records(&RecordFilter {
        from: Some(from),
        to: Some(to),
        limit: 5000,
        ..RecordFilter::default()
    })?;
    people.reverse();
    for r in people {
        match r.kind {
            PersonKind::Resident => recorded.residents += 1,
            PersonKind::Guest => recorded.guests += 1,
            PersonKind::Newcomer => recorded.newcomers += 1,
        }
        recorded.people.push(ReportPerson {
            id: r.id,
            kind: r.kind,
            name: r.fields.name,
            origin: r.fields.origin,
            visiting: r.fields.visiting,
            purpose: r.fields.purpose,
            rt: r.fields.rt,
            entered: local(r.entered_at, tz),
            left: r.left_at.map(|t| local(t, tz)),
        });
    }

    Ok(DailyReport {
        site: site.id.clone(),
        site_name: site.name.clone(),
        day: from.with_timezone(&tz).format("%Y-%m-%d").to_string(),
        from: local(from, tz),
        to: local(to, tz),
        made_at: local(made, tz),
        hours,
        total_in,
        total_out,
        alerts,
        recorded,
        unrecorded_night: unrecorded,
        cameras_offline,
    })
}

#[cfg(test)]
mod tests;
