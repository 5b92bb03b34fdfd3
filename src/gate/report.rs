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

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::config::{Language, Settings};
use crate::rules::Direction;
use crate::sinks::WebhookOptions;
use crate::store::{EntryFilter, PersonKind, RecordFilter, Store, StoreError, StoredReport};

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

// ----------------------------------------------------------------------------------- times

/// The instant the site's clock reads `at` on `date` (a time a clock change skips is taken an
/// hour later; one it passes twice, the first time).
pub fn instant(date: NaiveDate, at: NaiveTime, tz: Tz) -> DateTime<Utc> {
    let local = date.and_time(at);
    let t = match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t),
        LocalResult::Ambiguous(first, _) => Some(first),
        LocalResult::None => tz
            .from_local_datetime(&(local + Duration::hours(1)))
            .earliest(),
    };
    t.map_or_else(|| local.and_utc(), |t| t.with_timezone(&Utc))
}

/// The report period that ended last at `now`: `[from, to)` with `to` the latest report time
/// at or before `now` and `from` the one the day before.
pub fn period_ending(now: DateTime<Utc>, at: NaiveTime, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    let today = now.with_timezone(&tz).date_naive();
    let date = (0..3)
        .map(|back| today - Duration::days(back))
        .find(|d| instant(*d, at, tz) <= now)
        .unwrap_or(today - Duration::days(1));
    (
        instant(date - Duration::days(1), at, tz),
        instant(date, at, tz),
    )
}

/// The first report time after `now`.
pub fn next_after(now: DateTime<Utc>, at: NaiveTime, tz: Tz) -> DateTime<Utc> {
    let today = now.with_timezone(&tz).date_naive();
    (0..3)
        .map(|k| instant(today + Duration::days(k), at, tz))
        .find(|t| *t > now)
        .unwrap_or_else(|| now + Duration::days(1))
}

/// The report period of `day` (`YYYY-MM-DD`: the site date it starts on).
pub fn period_of(day: NaiveDate, at: NaiveTime, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    (
        instant(day, at, tz),
        instant(day + Duration::days(1), at, tz),
    )
}

fn local(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz)
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

// ---------------------------------------------------------------------------------- report

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

// ---------------------------------------------------------------------------------- forms

const DAYS_ID: [&str; 7] = ["Sen", "Sel", "Rab", "Kam", "Jum", "Sab", "Min"];
const MONTHS_ID: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des",
];

/// "Sab 22 Nov 06:00" / "Sat 22 Nov 06:00" of a report time (`%Y-%m-%dT%H:%M:%S%:z`).
fn short_time(s: &str, lang: Language) -> String {
    let Ok(t) = DateTime::parse_from_rfc3339(s) else {
        return s.to_string();
    };
    match lang {
        Language::En => t.format("%a %-d %b %H:%M").to_string(),
        Language::Id => format!(
            "{} {} {} {}",
            DAYS_ID[t.weekday().num_days_from_monday() as usize],
            t.day(),
            MONTHS_ID[t.month0() as usize],
            t.format("%H:%M")
        ),
    }
}

/// The short message for the village's chat group: counts only.
pub fn text(r: &DailyReport, tz: Tz, lang: Language, link: Option<&str>) -> String {
    let zone = DateTime::parse_from_rfc3339(&r.to)
        .map(|t| t.with_timezone(&tz).format("%Z").to_string())
        .unwrap_or_default();
    let en = lang == Language::En;
    let mut lines = Vec::new();
    let place = if r.site_name.is_empty() {
        &r.site
    } else {
        &r.site_name
    };
    lines.push(if en {
        format!("📋 Daily gate report · {place}")
    } else {
        format!("📋 Laporan harian gerbang · {place}")
    });
    lines.push(format!(
        "{} – {} {zone}",
        short_time(&r.from, lang),
        short_time(&r.to, lang)
    ));
    let busiest = r
        .hours
        .iter()
        .max_by_key(|h| (h.in_ + h.out, std::cmp::Reverse(h.hour.clone())))
        .filter(|h| h.in_ + h.out > 0);
    let mut gate = if en {
        format!("In {}, out {}", r.total_in, r.total_out)
    } else {
        format!("Masuk {}, keluar {}", r.total_in, r.total_out)
    };
    if let Some(h) = busiest {
        gate.push_str(&if en {
            format!("; busiest from {} ({} people)", h.hour, h.in_ + h.out)
        } else {
            format!("; tersibuk mulai {} ({} orang)", h.hour, h.in_ + h.out)
        });
    }
    lines.push(gate);
    let c = &r.recorded;
    lines.push(if en {
        format!(
            "Recorded: {} guest(s), {} newcomer(s), {} resident(s)",
            c.guests, c.newcomers, c.residents
        )
    } else {
        format!(
            "Tercatat: {} tamu, {} pendatang, {} warga",
            c.guests, c.newcomers, c.residents
        )
    });
    lines.push(if en {
        format!("Night entries not recorded: {}", r.unrecorded_night.len())
    } else {
        format!("Masuk malam tidak tercatat: {}", r.unrecorded_night.len())
    });
    let alerts: Vec<String> = r
        .alerts
        .iter()
        .map(|a| {
            let words = crate::rules::alert::parse_kind(&a.kind)
                .map(|k| crate::sinks::notify::message::kind_words(k, lang))
                .unwrap_or(a.kind.as_str());
            format!("{}× {words}", a.count)
        })
        .collect();
    lines.push(match (alerts.is_empty(), en) {
        (true, true) => "Alerts: none".to_string(),
        (true, false) => "Peringatan: tidak ada".to_string(),
        (false, true) => format!("Alerts: {}", alerts.join(", ")),
        (false, false) => format!("Peringatan: {}", alerts.join(", ")),
    });
    let cams: Vec<String> = r
        .cameras_offline
        .iter()
        .map(|o| {
            let still = match (o.offline_at_end, en) {
                (true, true) => ", still offline",
                (true, false) => ", masih mati",
                _ => "",
            };
            if en {
                format!("{} ({}×, {} min{still})", o.name, o.times, o.minutes)
            } else {
                format!("{} ({}×, {} menit{still})", o.name, o.times, o.minutes)
            }
        })
        .collect();
    lines.push(match (cams.is_empty(), en) {
        (true, true) => "Cameras: none offline".to_string(),
        (true, false) => "Kamera: tidak ada yang mati".to_string(),
        (false, true) => format!("Cameras offline: {}", cams.join(", ")),
        (false, false) => format!("Kamera mati: {}", cams.join(", ")),
    });
    if let Some(l) = link {
        lines.push(if en {
            format!("Open: {l}")
        } else {
            format!("Lihat: {l}")
        });
    }
    lines.join("\n")
}

/// One CSV field: quoted when it must be, and text that a spreadsheet would take for a formula
/// (`=`, `+`, `-`, `@` first) is kept as text with a leading `'`.
pub fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// One CSV row.
pub fn csv_row(fields: &[&str]) -> String {
    let mut row = fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",");
    row.push_str("\r\n");
    row
}

/// The report as CSV, one row per figure: `section,item,in,out,count,detail`.
pub fn csv(r: &DailyReport) -> String {
    let mut out = csv_row(&["section", "item", "in", "out", "count", "detail"]);
    out += &csv_row(&[
        "period",
        &r.day,
        "",
        "",
        "",
        &format!("{} - {}", r.from, r.to),
    ]);
    for h in &r.hours {
        out += &csv_row(&[
            "hour",
            &h.hour,
            &h.in_.to_string(),
            &h.out.to_string(),
            "",
            "",
        ]);
    }
    out += &csv_row(&[
        "total",
        "",
        &r.total_in.to_string(),
        &r.total_out.to_string(),
        "",
        "",
    ]);
    for a in &r.alerts {
        out += &csv_row(&["alerts", &a.kind, "", "", &a.count.to_string(), ""]);
    }
    let c = &r.recorded;
    for (kind, n) in [
        ("guest", c.guests),
        ("newcomer", c.newcomers),
        ("resident", c.residents),
    ] {
        out += &csv_row(&["recorded", kind, "", "", &n.to_string(), ""]);
    }
    for p in &c.people {
        let detail = format!(
            "{}; {}; {}; {}; {} - {}",
            p.origin,
            p.visiting,
            p.purpose,
            p.rt,
            p.entered,
            p.left.as_deref().unwrap_or("")
        );
        out += &csv_row(&[
            "person",
            p.kind.as_str(),
            "",
            "",
            "",
            &format!("{}: {detail}", p.name),
        ]);
    }
    out += &csv_row(&[
        "unrecorded_night",
        "",
        "",
        "",
        &r.unrecorded_night.len().to_string(),
        "",
    ]);
    for e in &r.unrecorded_night {
        out += &csv_row(&[
            "unrecorded_entry",
            &e.time,
            "",
            "",
            "",
            &format!("{} {} ({})", e.camera, e.line, e.id),
        ]);
    }
    for o in &r.cameras_offline {
        out += &csv_row(&[
            "camera_offline",
            &o.camera,
            "",
            "",
            &o.times.to_string(),
            &format!(
                "{} min{}",
                o.minutes,
                if o.offline_at_end {
                    ", still offline"
                } else {
                    ""
                }
            ),
        ]);
    }
    out
}

/// The webhook's message for a stored report.
pub fn webhook_body(site: &str, r: &StoredReport, tz: Tz, link: Option<&str>) -> String {
    serde_json::json!({
        "schema": 1,
        "type": "daily_report",
        "site": site,
        "day": r.day,
        "from": local(r.from, tz),
        "to": local(r.to, tz),
        "text": r.text,
        "link": link,
    })
    .to_string()
}

// ------------------------------------------------------------------------------ scheduler

/// How long after a failed send the webhook is tried again.
const RETRY: Duration = Duration::minutes(1);
/// How long a report's message is tried: a day's report is stale the day after.
const SEND_FOR: Duration = Duration::hours(24);

/// Makes each day's report once, at its time, and hands its text to the webhook.
pub struct Scheduler {
    store: Arc<Store>,
    site: ReportSite,
    webhook: Option<WebhookOptions>,
    /// No report for a day that ended before this.
    first_start: DateTime<Utc>,
    last_day: Option<String>,
    next_send: Option<DateTime<Utc>>,
}

impl Scheduler {
    /// `now` on the gate book's clock: stored as its first start on a new store.
    pub fn new(
        store: Arc<Store>,
        site: ReportSite,
        webhook: Option<WebhookOptions>,
        now: DateTime<Utc>,
    ) -> Scheduler {
        let first_start = store.gate_first_start(now).unwrap_or_else(|e| {
            tracing::error!("gate book: {e}");
            now
        });
        Scheduler {
            store,
            site,
            webhook,
            first_start,
            last_day: None,
            next_send: None,
        }
    }

    /// The link to a day's report page, with `[http] public_url`.
    fn link(&self, day: &str) -> Option<String> {
        self.site
            .public_url
            .as_ref()
            .map(|u| format!("{u}/gatebook#report={day}"))
    }

    /// Make the report that is due at `now` (if not made yet) and send what waits.
    pub fn check(&mut self, now: DateTime<Utc>) {
        let (from, to) = period_ending(now, self.site.report_at, self.site.tz);
        let day = from
            .with_timezone(&self.site.tz)
            .format("%Y-%m-%d")
            .to_string();
        if to > self.first_start && self.last_day.as_deref() != Some(day.as_str()) {
            match self.make(&day, from, to, now) {
                Ok(()) => {
                    self.last_day = Some(day);
                    self.next_send = None;
                }
                Err(e) => tracing::error!(day, "gate book: the daily report is not made: {e}"),
            }
        }
        self.send(now);
    }

    fn make(
        &self,
        day: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if self.store.gate_report(day)?.is_some() {
            tracing::debug!(day, "gate book: the daily report was made already");
            return Ok(());
        }
        let r = build(&self.store, &self.site, from, to, now)?;
        let link = self.link(day);
        let stored = StoredReport {
            day: day.to_string(),
            from,
            to,
            made_at: now,
            json: serde_json::to_string(&r).unwrap_or_else(|_| "{}".into()),
            text: text(&r, self.site.tz, self.site.language, link.as_deref()),
            sent_at: None,
            send_note: None,
        };
        if self.store.save_gate_report(&stored)? {
            tracing::info!(
                day,
                entries_in = r.total_in,
                entries_out = r.total_out,
                "gate book: daily report made"
            );
            if self.webhook.is_none() {
                self.store
                    .mark_gate_report(day, None, Some("no [webhook] configured"))?;
            }
        }
        Ok(())
    }

    /// Send the reports of the last day the webhook has not taken yet.
    fn send(&mut self, now: DateTime<Utc>) {
        let Some(hook) = &self.webhook else {
            return;
        };
        if self.next_send.is_some_and(|t| now < t) {
            return;
        }
        let unsent = match self.store.gate_reports_unsent() {
            Ok(u) => u,
            Err(e) => {
                tracing::error!("gate book: {e}");
                self.next_send = Some(now + RETRY);
                return;
            }
        };
        for r in unsent.into_iter().filter(|r| r.to + SEND_FOR > now) {
            let link = self.link(&r.day);
            let body = webhook_body(&self.site.id, &r, self.site.tz, link.as_deref());
            match crate::sinks::webhook::post_once(hook, &body) {
                Ok(status) => {
                    tracing::info!(day = %r.day, status, "gate book: daily report sent to the webhook");
                    if let Err(e) = self.store.mark_gate_report(&r.day, Some(now), None) {
                        tracing::error!("gate book: {e}");
                    }
                }
                Err(why) => {
                    tracing::warn!(
                        day = %r.day,
                        url = %hook.redacted_url,
                        "gate book: the daily report could not be sent: {why}; trying again in a \
                         minute"
                    );
                    let _ = self.store.mark_gate_report(&r.day, None, Some(&why));
                    self.next_send = Some(now + RETRY);
                    return;
                }
            }
        }
        self.next_send = None;
    }

    /// When the next report is due after `now`.
    pub fn next_after(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        next_after(now, self.site.report_at, self.site.tz)
    }

    /// The day of the last report made (or found made).
    pub fn last_day(&self) -> Option<String> {
        self.last_day.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Event, EventKind, Severity};
    use crate::store::{NewGateEntry, RecordFields};

    const JKT: Tz = chrono_tz::Asia::Jakarta;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn six() -> NaiveTime {
        NaiveTime::from_hms_opt(6, 0, 0).unwrap()
    }

    #[test]
    fn the_period_is_the_24_hours_before_the_last_report_time() {
        let (f, t) = period_ending(at("2026-11-23T06:00:00+07:00"), six(), JKT);
        assert_eq!(f, at("2026-11-22T06:00:00+07:00"));
        assert_eq!(t, at("2026-11-23T06:00:00+07:00"));
        let (f, t) = period_ending(at("2026-11-23T05:59:59+07:00"), six(), JKT);
        assert_eq!(
            (f, t),
            (
                at("2026-11-21T06:00:00+07:00"),
                at("2026-11-22T06:00:00+07:00")
            )
        );
        assert_eq!(
            next_after(at("2026-11-23T05:59:59+07:00"), six(), JKT),
            at("2026-11-23T06:00:00+07:00")
        );
        assert_eq!(
            next_after(at("2026-11-23T06:00:00+07:00"), six(), JKT),
            at("2026-11-24T06:00:00+07:00")
        );
        // a clock change: Berlin skips 02:30 on 2026-03-29
        let berlin = chrono_tz::Europe::Berlin;
        let t = instant(
            NaiveDate::from_ymd_opt(2026, 3, 29).unwrap(),
            NaiveTime::from_hms_opt(2, 30, 0).unwrap(),
            berlin,
        );
        assert_eq!(t, at("2026-03-29T03:30:00+02:00"));
    }

    fn crossing(store: &Store, id: &str, time: &str, d: Direction, night: bool) {
        store
            .log_gate_entry(&NewGateEntry {
                id: id.into(),
                camera: "gate-1".into(),
                line: "gapura".into(),
                direction: d,
                track_id: Some(1),
                time: time.into(),
                at: at(time),
                mask: None,
                crop: None,
                night,
            })
            .unwrap();
    }

    fn event(store: &Store, kind: EventKind, sev: Severity, camera: &str, time: &str) {
        let e = Event::new("rw9", JKT, camera, kind, sev, at(time));
        store.append(&e).unwrap();
    }

    fn site() -> ReportSite {
        ReportSite {
            id: "rw9".into(),
            name: "Kepatihan RW 9".into(),
            tz: JKT,
            language: Language::Id,
            report_at: six(),
            cameras: vec![
                ("gate-1".into(), "Gapura utama".into()),
                ("pos".into(), "Pos ronda".into()),
            ],
            public_url: None,
        }
    }

    #[test]
    fn a_day_in_figures_page_csv_and_text() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("r.db")).unwrap();
        crossing(
            &store,
            "a",
            "2026-11-22T07:10:00+07:00",
            Direction::In,
            false,
        );
        crossing(
            &store,
            "b",
            "2026-11-22T07:20:00+07:00",
            Direction::In,
            false,
        );
        crossing(
            &store,
            "c",
            "2026-11-22T17:05:00+07:00",
            Direction::Out,
            false,
        );
        crossing(
            &store,
            "n",
            "2026-11-22T23:30:00+07:00",
            Direction::In,
            true,
        );
        crossing(
            &store,
            "n2",
            "2026-11-23T01:30:00+07:00",
            Direction::In,
            true,
        );
        crossing(
            &store,
            "late",
            "2026-11-23T06:00:00+07:00",
            Direction::In,
            false,
        );
        crossing(
            &store,
            "early",
            "2026-11-22T05:59:59+07:00",
            Direction::In,
            false,
        );
        store.mark_gate_unrecorded("n", "ev-n").unwrap();
        store
            .create_gate_record(
                &RecordFields {
                    kind: Some(PersonKind::Guest),
                    name: "=Siti, \"Bu RT\"".into(),
                    origin: "Malang".into(),
                    ..Default::default()
                },
                Some("a"),
                "pos1",
                at("2026-11-22T07:12:00+07:00"),
            )
            .unwrap();
        store
            .create_gate_record(
                &RecordFields {
                    kind: Some(PersonKind::Resident),
                    name: "Pak Budi".into(),
                    ..Default::default()
                },
                Some("n2"),
                "pos1",
                at("2026-11-23T01:31:00+07:00"),
            )
            .unwrap();
        use EventKind::*;
        use Severity::*;
        event(&store, NoMask, Alert, "gate-1", "2026-11-22T07:10:00+07:00");
        event(&store, NoMask, Alert, "gate-1", "2026-11-22T08:10:00+07:00");
        event(&store, Intrusion, Alert, "pos", "2026-11-22T22:10:00+07:00");
        event(
            &store,
            LineCrossing,
            Info,
            "gate-1",
            "2026-11-22T08:10:00+07:00",
        );
        // pos: down from before the day until 06:30, then 10:00-10:15; gate-1 down at the end
        event(
            &store,
            CameraOffline,
            Warning,
            "pos",
            "2026-11-22T05:00:00+07:00",
        );
        event(
            &store,
            CameraOnline,
            Info,
            "pos",
            "2026-11-22T06:30:00+07:00",
        );
        event(
            &store,
            CameraOffline,
            Warning,
            "pos",
            "2026-11-22T10:00:00+07:00",
        );
        event(
            &store,
            CameraOnline,
            Info,
            "pos",
            "2026-11-22T10:15:00+07:00",
        );
        event(
            &store,
            CameraOffline,
            Warning,
            "gate-1",
            "2026-11-23T05:50:00+07:00",
        );
        let (from, to) = period_of(NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(), six(), JKT);
        let r = build(&store, &site(), from, to, to).unwrap();
        assert_eq!(r.day, "2026-11-22");
        assert_eq!(r.hours.len(), 24);
        assert_eq!(r.hours[0].hour, "06:00");
        assert_eq!(
            r.hours[1],
            HourCount {
                hour: "07:00".into(),
                in_: 2,
                out: 0
            }
        );
        assert_eq!((r.total_in, r.total_out), (4, 1));
        assert_eq!(
            r.alerts,
            [
                KindCount {
                    kind: "camera_offline".into(),
                    count: 2
                },
                KindCount {
                    kind: "no_mask".into(),
                    count: 2
                },
                KindCount {
                    kind: "intrusion".into(),
                    count: 1
                },
            ]
        );
        assert_eq!((r.recorded.guests, r.recorded.residents), (1, 1));
        assert_eq!(r.unrecorded_night.len(), 1);
        assert_eq!(r.unrecorded_night[0].id, "n");
        assert!(r.unrecorded_night[0].alerted);
        assert_eq!(
            r.cameras_offline,
            [
                Outage {
                    camera: "gate-1".into(),
                    name: "Gapura utama".into(),
                    times: 1,
                    minutes: 10,
                    offline_at_end: true
                },
                Outage {
                    camera: "pos".into(),
                    name: "Pos ronda".into(),
                    times: 1,
                    minutes: 45,
                    offline_at_end: false
                },
            ]
        );
        let msg = text(
            &r,
            JKT,
            Language::Id,
            Some("https://r.example/gatebook#report=2026-11-22"),
        );
        println!("{msg}");
        assert!(
            msg.contains("Masuk 4, keluar 1; tersibuk mulai 07:00 (2 orang)"),
            "{msg}"
        );
        assert!(
            msg.contains("Tercatat: 1 tamu, 0 pendatang, 1 warga"),
            "{msg}"
        );
        assert!(msg.contains("Masuk malam tidak tercatat: 1"), "{msg}");
        assert!(msg.contains("2× Tanpa masker di gerbang"), "{msg}");
        assert!(
            msg.contains("Gapura utama (1×, 10 menit, masih mati)"),
            "{msg}"
        );
        assert!(msg.contains("Sen 23 Nov 06:00 WIB"), "{msg}");
        assert!(!msg.contains("Siti"), "no names in the chat message: {msg}");
        let en = text(&r, JKT, Language::En, None);
        assert!(
            en.contains("In 4, out 1") && en.contains("Cameras offline: Gapura utama"),
            "{en}"
        );
        let c = csv(&r);
        assert!(c.starts_with("section,item,in,out,count,detail\r\n"), "{c}");
        assert!(c.contains("hour,07:00,2,0,,\r\n"), "{c}");
        assert!(c.contains("total,,4,1,,\r\n"), "{c}");
        assert!(
            c.contains("person,guest,,,,\"'=Siti, \"\"Bu RT\"\": Malang;"),
            "{c}"
        );
    }

    #[test]
    fn the_scheduler_makes_each_day_once_and_never_a_day_before_its_first_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("r.db")).unwrap());
        let start = at("2026-11-23T05:59:50+07:00");
        let mut s = Scheduler::new(store.clone(), site(), None, start);
        s.check(start);
        assert!(
            store.gate_reports(10).unwrap().is_empty(),
            "21-22 Nov ended before the start"
        );
        assert_eq!(s.next_after(start), at("2026-11-23T06:00:00+07:00"));
        s.check(at("2026-11-23T06:00:00+07:00"));
        let made = store.gate_reports(10).unwrap();
        assert_eq!(made.len(), 1);
        assert_eq!(made[0].day, "2026-11-22");
        assert_eq!(
            made[0].send_note.as_deref(),
            Some("no [webhook] configured")
        );
        // a second scheduler (a restart) on the same day makes nothing new
        let mut again =
            Scheduler::new(store.clone(), site(), None, at("2026-11-23T07:00:00+07:00"));
        again.check(at("2026-11-23T07:00:00+07:00"));
        assert_eq!(store.gate_reports(10).unwrap().len(), 1);
        assert_eq!(again.last_day().as_deref(), Some("2026-11-22"));
        again.check(at("2026-11-24T06:00:01+07:00"));
        assert_eq!(store.gate_reports(10).unwrap().len(), 2);
    }
}
