//! The gate book (*buku tamu*, issue 15): every crossing of a gate line is an entry of the gate
//! log, with the time, the direction, the person cut from the very picture that counted (a
//! small JPEG) and the mask verdict when their face was checked; guards record who came in
//! (resident, guest or newcomer) from an entry and link their exit; at night an entry nobody
//! recorded within `[gatebook] record_within_minutes` raises `unrecorded_entry`; once a day, at
//! `report_at`, the report of the 24 hours before is made (a page, a CSV and a short text
//! through the webhook).
//!
//! Who does what:
//! - [`GateBook::log`] runs on the event writer, after the crossing's event is stored: the
//!   crossing arrives with the picture it was counted on (shared, not copied) and the mask
//!   watch's look at the person;
//! - the [`Keeper`] thread looks every second (on a [`Clock`] a test can set) for night entries
//!   that are due and for the daily report ([`report`]);
//! - the API (`api::routes::gatebook`) reads and writes records through the store, guards and
//!   admins only.
//!
//! Privacy: records are personal data. Over MQTT goes only `unrecorded_entry` with the camera,
//! the line and the track id (the entry knows the alert's id, `GET
//! /api/gate/entries?alert=<id>`), never a name or a phone number; the report's text for the
//! chat group has counts only; lists show phone numbers masked ([`mask_phone`]); entries, their
//! pictures, records and reports go after `[gatebook] retention_days` ([`retention`], run by the
//! incident retention task).
//!
//! Uses (of the crate, besides its own folder): config, events, frame, geometry, rules, store.
//!
//! The API uses it, and the sinks use the API: so nothing here uses a sink. What leaves the
//! gate book, the entries' pictures (JPEG files) and the report's webhook message, goes
//! through what the app hands in ([`PictureWriter`], [`report::ReportHook`]).

pub mod report;

use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::{Gatebook, Settings};
use crate::events::{Event, EventKind, Severity};
use crate::geometry::BBox;
use crate::rules::{Direction, Look};
use crate::store::{GateRemoved, NewGateEntry, RecordFields, Store, StoreError};

pub use crate::store::PersonKind;

/// The directory under `[store] clips_dir` that holds the entries' pictures. A camera id can
/// never be this (ids have no dot), so it never meets an incident's directory.
pub const CROPS_DIR: &str = "gatebook.crops";
/// The environment variable that sets the gate book's clock (an RFC 3339 time it starts at,
/// running on from there): for tests and demonstrations of the night rule and the report.
pub const CLOCK_VAR: &str = "RONDA_GATEBOOK_NOW";
/// An entry's picture is at most this high (pixels): enough to know a face again.
const CROP_HEIGHT: u32 = 240;
/// Entries older than this are not alerted any more (ronda was off): the night is over.
const LATE_LIMIT: chrono::Duration = chrono::Duration::hours(12);

// ------------------------------------------------------------------------------------- clock

/// Where the gate book's "now" comes from: the night check and the report scheduler take it,
/// so tests move time instead of waiting for it.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The system's clock moved by a fixed amount: starts at a chosen time and runs on.
#[derive(Clone, Copy, Debug)]
pub struct OffsetClock {
    offset: chrono::Duration,
}

impl OffsetClock {
    /// A clock that reads `start` now.
    pub fn starting_at(start: DateTime<Utc>) -> OffsetClock {
        OffsetClock {
            offset: start - Utc::now(),
        }
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset
    }
}

/// A clock that stands still until it is set (unit tests).
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> ManualClock {
        ManualClock(Mutex::new(at))
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = at;
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut t = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *t += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The clock of `ronda run`: the system's, unless [`CLOCK_VAR`] sets another start (said in
/// the log, loudly). A value that is not a time is an error naming the variable.
pub fn clock_from_env() -> Result<Arc<dyn Clock>, String> {
    match std::env::var(CLOCK_VAR) {
        Err(_) => Ok(Arc::new(SystemClock)),
        Ok(v) if v.trim().is_empty() => Ok(Arc::new(SystemClock)),
        Ok(v) => {
            let start = DateTime::parse_from_rfc3339(v.trim()).map_err(|e| {
                format!(
                    "{CLOCK_VAR}=`{v}` is not a time ({e}); write it like \
                     2026-11-23T05:59:00+07:00, or unset it to use the system clock"
                )
            })?;
            tracing::warn!(
                "{CLOCK_VAR} is set: the gate book's clock starts at {start} instead of the \
                 system clock (night rule and daily report); unset it for normal use"
            );
            Ok(Arc::new(OffsetClock::starting_at(
                start.with_timezone(&Utc),
            )))
        }
    }
}

// --------------------------------------------------------------------------------- the log

/// What the worker knows about a crossing of a gate camera's line besides its event: the mask
/// watch's look at the person (if their face was checked) and whether it is an entry at night.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GateMark {
    pub look: Option<Look>,
    pub night: bool,
}

/// Writes an entry's picture as a JPEG file, whole or not at all (the app hands in
/// `sinks::write_snapshot`); what went wrong otherwise.
pub type PictureWriter = Box<dyn Fn(&image::RgbImage, &Path) -> Result<(), String> + Send + Sync>;

/// The gate log's writer (and what the keeper and the API share of the gate book).
pub struct GateBook {
    store: Arc<Store>,
    clips_dir: PathBuf,
    tz: chrono_tz::Tz,
    write_picture: PictureWriter,
    pub conf: Gatebook,
}

impl GateBook {
    pub fn new(store: Arc<Store>, settings: &Settings, write_picture: PictureWriter) -> GateBook {
        GateBook {
            store,
            clips_dir: settings.store.clips_dir.clone(),
            tz: settings.site.timezone,
            write_picture,
            conf: settings.gatebook.clone(),
        }
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Log the crossing of event `e` (a `line_crossing` of a gate camera, already stored), with
    /// the person cut from `picture` (the frame that counted). A picture that cannot be written
    /// is logged and the entry kept without it; an entry that cannot be stored is logged.
    pub fn log(&self, e: &Event, picture: Option<&image::RgbImage>, mark: GateMark) {
        let (Some(line), Some(direction)) = (&e.line, e.direction) else {
            return;
        };
        let at = DateTime::parse_from_rfc3339(&e.time)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|_| Utc::now());
        let crop = match (picture, e.bbox) {
            (Some(p), Some(b)) => self.write_crop(e, at, p, BBox::new(b[0], b[1], b[2], b[3])),
            _ => None,
        };
        let entry = NewGateEntry {
            id: e.id.clone(),
            camera: e.camera.clone(),
            line: line.clone(),
            direction,
            track_id: e.track_id,
            time: e.time.clone(),
            at,
            mask: mark.look.map(|l| (l.verdict, l.verdict_score)),
            crop,
            night: mark.night && direction == Direction::In,
        };
        if let Err(err) = self.store.log_gate_entry(&entry) {
            tracing::error!(camera = %e.camera, event = %e.id, "gate entry not logged: {err}");
        }
    }

    /// The person's picture: `<clips_dir>/gatebook.crops/<YYYY-MM-DD>/<id>.jpg` (written whole
    /// or not at all); its path relative to `clips_dir`.
    fn write_crop(
        &self,
        e: &Event,
        at: DateTime<Utc>,
        picture: &image::RgbImage,
        bbox: BBox,
    ) -> Option<PathBuf> {
        if !plain_name(&e.id) {
            return None;
        }
        let crop = crate::frame::person_crop(picture, &bbox);
        let small = if crop.height() > CROP_HEIGHT {
            let w = (crop.width() * CROP_HEIGHT / crop.height()).max(1);
            image::imageops::resize(&crop, w, CROP_HEIGHT, image::imageops::FilterType::Triangle)
        } else {
            crop
        };
        let day = at.with_timezone(&self.tz).format("%Y-%m-%d").to_string();
        let rel = Path::new(CROPS_DIR).join(day).join(format!("{}.jpg", e.id));
        match (self.write_picture)(&small, &self.clips_dir.join(&rel)) {
            Ok(()) => Some(rel),
            Err(err) => {
                tracing::error!(camera = %e.camera, event = %e.id, "gate entry picture not written: {err}");
                None
            }
        }
    }

    /// The night entries due for `unrecorded_entry` at `now` (made `record_within` ago or more,
    /// not recorded, not alerted yet), each marked with the event raised for it. A guard who
    /// records the entry in the same instant wins: it is then not raised.
    pub fn unrecorded_due(&self, now: DateTime<Utc>, site: &EventSite) -> Vec<Event> {
        let within = chrono::Duration::from_std(self.conf.record_within)
            .unwrap_or(chrono::Duration::minutes(10));
        let due = match self
            .store
            .gate_unrecorded_due(now - within, now - LATE_LIMIT)
        {
            Ok(d) => d,
            Err(err) => {
                tracing::error!("gate book: night entries not checked: {err}");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for entry in due {
            let mut ev = Event::new(
                &site.id,
                self.tz,
                &entry.camera,
                EventKind::UnrecordedEntry,
                site.severity,
                now,
            );
            // ids and status only: no picture, no clip, nothing of a person
            ev.line = Some(entry.line.clone());
            ev.direction = Some(Direction::In);
            ev.track_id = entry.track_id;
            ev.snapshot = None;
            ev.clip = None;
            match self.store.mark_gate_unrecorded(&entry.id, &ev.id) {
                Ok(true) => {
                    tracing::info!(camera = %entry.camera, entry = %entry.id, event = %ev.id, "night entry not recorded in time");
                    out.push(ev);
                }
                Ok(false) => {}
                Err(err) => tracing::error!(entry = %entry.id, "gate book: {err}"),
            }
        }
        out
    }
}

/// An event id fit to be a file name: letters, digits, `-`, `_` and `.`, not first (the
/// rule of the clips' names).
fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// What an `unrecorded_entry` event carries of the site.
#[derive(Clone, Debug)]
pub struct EventSite {
    pub id: String,
    /// `[alerts.severity] unrecorded_entry`.
    pub severity: Severity,
}

// ------------------------------------------------------------------------------ the keeper

/// What the keeper last saw, for the API (`GET /api/gate/reports`): its clock, and when the
/// next daily report is due.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeeperStatus {
    pub now: Option<DateTime<Utc>>,
    pub next_report: Option<DateTime<Utc>>,
    /// The day of the last report made or found already made.
    pub last_report: Option<String>,
}

/// Shared between the keeper and the web UI.
pub type SharedStatus = Arc<Mutex<KeeperStatus>>;

/// Sends an event the way the pipeline's events go (store, MQTT, webhook, feed); false when
/// the pipeline is stopping.
pub type Raise = Box<dyn FnMut(Event) -> bool + Send>;

/// The gate book's own thread: once a second, the night entries that are due and the daily
/// report.
pub struct Keeper {
    book: Arc<GateBook>,
    clock: Arc<dyn Clock>,
    site: EventSite,
    raise: Raise,
    reports: report::Scheduler,
    status: SharedStatus,
}

impl Keeper {
    pub fn new(
        book: Arc<GateBook>,
        clock: Arc<dyn Clock>,
        site: EventSite,
        raise: Raise,
        reports: report::Scheduler,
        status: SharedStatus,
    ) -> Keeper {
        Keeper {
            book,
            clock,
            site,
            raise,
            reports,
            status,
        }
    }

    /// One look; false when the pipeline is stopping.
    pub fn tick(&mut self) -> bool {
        let now = self.clock.now();
        for e in self.book.unrecorded_due(now, &self.site) {
            if !(self.raise)(e) {
                return false;
            }
        }
        self.reports.check(now);
        let mut s = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        s.now = Some(now);
        s.next_report = Some(self.reports.next_after(now));
        s.last_report = self.reports.last_day();
        true
    }

    /// Tick every `every` until `stop` is set (and its condvar notified).
    pub fn run(mut self, stop: Arc<(Mutex<bool>, Condvar)>, every: Duration) {
        let (lock, wake) = &*stop;
        loop {
            if !self.tick() {
                return;
            }
            let mut stopped = lock.lock().unwrap_or_else(PoisonError::into_inner);
            if !*stopped {
                stopped = wake
                    .wait_timeout(stopped, every)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            if *stopped {
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------- the records

/// Longest name, in characters.
pub const MAX_NAME: usize = 100;
/// Longest other field, in characters.
pub const MAX_FIELD: usize = 200;

/// Check and tidy what a guard wrote (trimmed, one line each): the problems by field, in
/// words that say what to write.
pub fn check_record(f: &RecordFields) -> Result<RecordFields, Vec<(&'static str, String)>> {
    let one_line = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let out = RecordFields {
        kind: f.kind,
        name: one_line(&f.name),
        origin: one_line(&f.origin),
        visiting: one_line(&f.visiting),
        purpose: one_line(&f.purpose),
        phone: one_line(&f.phone),
        stay: one_line(&f.stay),
        rt: one_line(&f.rt),
    };
    let mut problems = Vec::new();
    if out.kind.is_none() {
        problems.push((
            "kind",
            "say who it is: resident, guest or newcomer".to_string(),
        ));
    }
    if out.name.is_empty() {
        problems.push(("name", "write the person's name".to_string()));
    } else if out.name.chars().count() > MAX_NAME {
        problems.push(("name", format!("at most {MAX_NAME} characters")));
    }
    for (key, v) in [
        ("origin", &out.origin),
        ("visiting", &out.visiting),
        ("purpose", &out.purpose),
        ("stay", &out.stay),
        ("rt", &out.rt),
    ] {
        if v.chars().count() > MAX_FIELD {
            problems.push((key, format!("at most {MAX_FIELD} characters")));
        }
    }
    let digits = out.phone.chars().filter(char::is_ascii_digit).count();
    if !out.phone.is_empty()
        && (!out
            .phone
            .chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c))
            || !(6..=15).contains(&digits))
    {
        problems.push((
            "phone",
            "a phone number is 6 to 15 digits (+, spaces and - allowed), e.g. 0812 3456 7890"
                .to_string(),
        ));
    }
    if out.kind == Some(PersonKind::Newcomer) {
        if out.rt.is_empty() {
            problems.push(("rt", "a newcomer's RT is needed (e.g. 03)".to_string()));
        }
        if out.stay.is_empty() {
            problems.push((
                "stay",
                "how long a newcomer expects to stay is needed (e.g. 3 bulan)".to_string(),
            ));
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// A phone number for lists: the first four and the last three digits, the rest hidden
/// (`0812•••••890`); short numbers show their last two digits only.
pub fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    let n = digits.len();
    if n == 0 {
        return String::new();
    }
    let (head, tail) = if n >= 10 { (4, 3) } else { (0, 2.min(n)) };
    let mut s: String = digits[..head].iter().collect();
    s.extend(std::iter::repeat_n('•', n - head - tail));
    s.extend(&digits[n - tail..]);
    s
}

// ------------------------------------------------------------------------------- retention

/// Delete the gate book's rows older than `days` before `now` (entries, records untouched since
/// then, reports) and the entries' pictures. Run by the incident retention task. A picture
/// whose path is not plain and under [`CROPS_DIR`] is never touched.
pub fn retention(
    store: &Store,
    clips_dir: &Path,
    days: u32,
    now: DateTime<Utc>,
) -> Result<GateRemoved, StoreError> {
    let removed = store.delete_old_gate(now - chrono::Duration::days(i64::from(days)))?;
    for rel in &removed.crops {
        let plain = rel.components().all(|c| matches!(c, Component::Normal(_)))
            && rel.starts_with(CROPS_DIR);
        if !plain {
            tracing::warn!(path = %rel.display(), "gate book: a picture path outside {CROPS_DIR}; left alone");
            continue;
        }
        let path = clips_dir.join(rel);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                if let Some(day) = path.parent() {
                    // fails, harmlessly, while the day still has pictures
                    let _ = std::fs::remove_dir(day);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("gate book: cannot remove {}: {e}", path.display()),
        }
    }
    if removed.entries + removed.records + removed.reports > 0 {
        tracing::info!(
            entries = removed.entries,
            pictures = removed.crops.len(),
            records = removed.records,
            reports = removed.reports,
            "gate book: old entries, pictures, records and reports deleted ([gatebook] retention_days)"
        );
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::MaskVerdict;

    /// The pictures written as the app writes them.
    fn test_writer() -> PictureWriter {
        Box::new(|img, path| {
            crate::sinks::write_snapshot(img, &[], path)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }

    /// Settings with the store in `dir` (and `extra` tables), and the store.
    fn village(dir: &Path, extra: &str) -> (Settings, Arc<Store>) {
        let settings = Settings::parse(
            &format!(
                "[site]\nid = \"rw9\"\n[store]\npath = \"{0}/r.db\"\nclips_dir = \"{0}/clips\"\n{extra}",
                dir.display()
            ),
            Path::new("t.toml"),
        )
        .unwrap();
        let store = Arc::new(Store::open(&settings.store.path).unwrap());
        (settings, store)
    }

    #[test]
    fn phones_are_masked_in_lists() {
        assert_eq!(mask_phone("081234567890"), "0812•••••890");
        assert_eq!(mask_phone("+62 812-3456-7890"), "6281••••••890");
        assert_eq!(mask_phone("5551234"), "•••••34");
        assert_eq!(mask_phone(""), "");
        assert_eq!(mask_phone("12"), "12");
    }

    #[test]
    fn records_are_checked_field_by_field() {
        let ok = check_record(&RecordFields {
            kind: Some(PersonKind::Guest),
            name: "  Siti   Aminah ".into(),
            phone: "0812 3456 7890".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(ok.name, "Siti Aminah");
        let bad = check_record(&RecordFields {
            kind: Some(PersonKind::Newcomer),
            name: " ".into(),
            phone: "call me".into(),
            ..Default::default()
        })
        .unwrap_err();
        let keys: Vec<&str> = bad.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["name", "phone", "rt", "stay"]);
        let none = check_record(&RecordFields {
            name: "x".repeat(MAX_NAME + 1),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(none[0].0, "kind");
        assert!(none[1].1.contains("at most 100"));
    }

    #[test]
    fn the_log_keeps_the_counting_pictures_person_and_the_mask_verdict() {
        let dir = tempfile::tempdir().unwrap();
        let (settings, store) = village(dir.path(), "");
        let book = GateBook::new(store.clone(), &settings, test_writer());
        let mut pic = image::RgbImage::new(480, 360);
        for (x, y, p) in pic.enumerate_pixels_mut() {
            *p = image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]);
        }
        let mut e = Event::new(
            "rw9",
            chrono_tz::Asia::Jakarta,
            "gate-1",
            EventKind::LineCrossing,
            Severity::Info,
            Utc::now(),
        );
        e.line = Some("gapura".into());
        e.direction = Some(Direction::In);
        e.track_id = Some(4);
        e.bbox = Some([100.0, 50.0, 140.0, 330.0]);
        let look = Look {
            at: 1.0,
            face_score: 0.9,
            verdict: MaskVerdict::Mask,
            verdict_score: 0.8,
        };
        book.log(
            &e,
            Some(&pic),
            GateMark {
                look: Some(look),
                night: true,
            },
        );
        let got = store.gate_entry(&e.id).unwrap().unwrap();
        assert_eq!(got.mask, Some((MaskVerdict::Mask, 0.8)));
        assert!(got.night);
        let rel = got.crop.clone().unwrap();
        assert!(rel.starts_with(CROPS_DIR), "{}", rel.display());
        let jpeg = image::open(dir.path().join("clips").join(&rel)).unwrap();
        assert_eq!(jpeg.height(), CROP_HEIGHT, "scaled down to the crop height");
        // the crop is the person's box (with its margin), not the whole frame
        assert!(jpeg.width() < 120, "{}", jpeg.width());
        // an exit at night is not a night entry
        let mut out = e.clone();
        out.id = crate::events::new_id(Utc::now());
        out.direction = Some(Direction::Out);
        book.log(
            &out,
            None,
            GateMark {
                look: None,
                night: true,
            },
        );
        let got = store.gate_entry(&out.id).unwrap().unwrap();
        assert!(!got.night && got.crop.is_none() && got.mask.is_none());
        // retention takes the entry and its picture
        let gone = retention(
            &store,
            &dir.path().join("clips"),
            1,
            Utc::now() + chrono::Duration::days(2),
        )
        .unwrap();
        assert_eq!(gone.entries, 2);
        assert!(!dir.path().join("clips").join(&rel).exists());
    }

    #[test]
    fn night_entries_not_recorded_in_time_raise_one_alert_each() {
        let dir = tempfile::tempdir().unwrap();
        let (settings, store) = village(dir.path(), "[gatebook]\nrecord_within_minutes = 10\n");
        let book = Arc::new(GateBook::new(store.clone(), &settings, test_writer()));
        let t0 = DateTime::parse_from_rfc3339("2026-11-22T23:00:00+07:00")
            .unwrap()
            .with_timezone(&Utc);
        let clock = Arc::new(ManualClock::new(t0));
        let crossing = |night: bool, dir: Direction| {
            let mut e = Event::new(
                "rw9",
                chrono_tz::Asia::Jakarta,
                "gate-1",
                EventKind::LineCrossing,
                Severity::Info,
                clock.now(),
            );
            e.line = Some("gapura".into());
            e.direction = Some(dir);
            e.track_id = Some(9);
            book.log(&e, None, GateMark { look: None, night });
            e.id
        };
        let a = crossing(true, Direction::In);
        let b = crossing(true, Direction::In);
        let _day = crossing(false, Direction::In);
        let _out = crossing(true, Direction::Out);
        let raised = Arc::new(Mutex::new(Vec::<Event>::new()));
        let sink = raised.clone();
        let status = SharedStatus::default();
        let mut keeper = Keeper::new(
            book.clone(),
            clock.clone(),
            EventSite {
                id: "rw9".into(),
                severity: Severity::Alert,
            },
            Box::new(move |e| {
                sink.lock().unwrap().push(e);
                true
            }),
            report::Scheduler::new(
                store.clone(),
                report::ReportSite::from_settings(&settings),
                None,
                t0,
            ),
            status.clone(),
        );
        // 9 minutes on: nothing yet
        clock.advance(chrono::Duration::minutes(9));
        assert!(keeper.tick());
        assert!(raised.lock().unwrap().is_empty());
        // b is recorded in time
        store
            .create_gate_record(
                &RecordFields {
                    kind: Some(PersonKind::Guest),
                    name: "Budi".into(),
                    ..Default::default()
                },
                Some(&b),
                "pos1",
                clock.now(),
            )
            .unwrap();
        clock.advance(chrono::Duration::minutes(2));
        keeper.tick();
        keeper.tick();
        let got = raised.lock().unwrap().clone();
        assert_eq!(got.len(), 1, "{got:?}");
        let ev = &got[0];
        assert_eq!(ev.kind, EventKind::UnrecordedEntry);
        assert_eq!(ev.severity, Severity::Alert);
        assert_eq!(
            (ev.line.as_deref(), ev.direction, ev.track_id),
            (Some("gapura"), Some(Direction::In), Some(9))
        );
        assert!(ev.snapshot.is_none() && ev.clip.is_none() && ev.bbox.is_none());
        let json = serde_json::to_string(ev).unwrap();
        assert!(!json.contains("Budi"));
        assert_eq!(
            store.gate_entry(&a).unwrap().unwrap().alert_id.as_deref(),
            Some(ev.id.as_str())
        );
        assert_eq!(status.lock().unwrap().now, Some(clock.now()));
    }
}
