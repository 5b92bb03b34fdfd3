//! What a guard reads on the phone: short text in Bahasa Indonesia (or English), built from an
//! event without any I/O so it is tested as it is.
//!
//! An alert reads (Indonesian, the default):
//!
//! ```text
//! 🚨 AWAS: Penyusup di area terlarang
//! Tempat: Halaman Belakang, zona "gudang"
//! Waktu: Kamis 22 Nov 2026, 21:04 WIB
//! Diterima: Budi Santoso (Telegram), 21:06
//! Lihat: https://ronda.kepatihan.id/review#17954321788830000a1b2
//! ```
//!
//! The last two lines only when the event was acknowledged before the message went out and
//! when `[http] public_url` is set. Repeats beyond a destination's rate limit become one
//! summary ([`summary`]); any other plain text (the gate book's daily report, once it exists)
//! is a [`Text`] too and goes through the same destinations.

use chrono::{DateTime, Datelike, FixedOffset, Utc};

use crate::config::Language;
use crate::events::{Event, EventKind, Severity};
use crate::rules::Direction;

/// A message's words: a title (the first line without its sign, for services that show one
/// apart: ntfy) and the whole text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Text {
    pub title: String,
    pub body: String,
}

impl Text {
    /// A plain message (a summary, a report): the body's first line is the title.
    pub fn plain(title: &str, body: &str) -> Text {
        Text {
            title: title.to_string(),
            body: body.to_string(),
        }
    }
}

/// Who acknowledged an event and when, as a message shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckedBy {
    pub user: String,
    pub at: DateTime<Utc>,
}

/// An event's message. `camera` is the camera's name (its id if it has none); `link` the
/// incident's address in the web UI, only when a public URL is configured.
pub fn alert(
    e: &Event,
    camera: &str,
    ack: Option<&AckedBy>,
    link: Option<&str>,
    lang: Language,
    tz: chrono_tz::Tz,
) -> Text {
    let what = lang.kind_words(e.kind);
    let level = match (e.severity, lang) {
        (Severity::Alert, Language::Id) => "🚨 AWAS",
        (Severity::Alert, Language::En) => "🚨 ALERT",
        (Severity::Warning, Language::Id) => "⚠️ PERHATIAN",
        (Severity::Warning, Language::En) => "⚠️ WARNING",
        (Severity::Info, _) => "ℹ️ INFO",
    };
    let mut body = format!("{level}: {what}\n");
    let (l_where, l_when) = match lang {
        Language::Id => ("Tempat", "Waktu"),
        Language::En => ("Where", "When"),
    };
    body.push_str(&format!("{l_where}: {}\n", place(e, camera, lang)));
    let when = DateTime::parse_from_rfc3339(&e.time)
        .map(|t| long_time(t, lang, tz))
        .unwrap_or_else(|_| e.time.clone());
    body.push_str(&format!("{l_when}: {when}"));
    if let Some(a) = ack {
        body.push('\n');
        body.push_str(&acked_line(a, lang, tz));
    }
    if let Some(l) = link {
        body.push_str(&match lang {
            Language::Id => format!("\nLihat: {l}"),
            Language::En => format!("\nOpen: {l}"),
        });
    }
    Text {
        title: what.to_string(),
        body,
    }
}

/// "Diterima: Budi, 21:06" / "Acknowledged: Budi, 21:06".
pub fn acked_line(a: &AckedBy, lang: Language, tz: chrono_tz::Tz) -> String {
    let at = a.at.with_timezone(&tz).format("%H:%M");
    match lang {
        Language::Id => format!("✅ Diterima: {}, {at}", a.user),
        Language::En => format!("✅ Acknowledged: {}, {at}", a.user),
    }
}

/// Events a rate limit held back, collapsed into one message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Held {
    /// How many, and how many of each type (in the order they first came).
    pub count: u32,
    pub by_kind: Vec<(EventKind, u32)>,
    /// The first and last held event's own time.
    pub first: Option<DateTime<FixedOffset>>,
    pub last: Option<DateTime<FixedOffset>>,
}

impl Held {
    pub fn add(&mut self, e: &Event) {
        self.count += 1;
        match self.by_kind.iter_mut().find(|(k, _)| *k == e.kind) {
            Some((_, n)) => *n += 1,
            None => self.by_kind.push((e.kind, 1)),
        }
        if let Ok(t) = DateTime::parse_from_rfc3339(&e.time) {
            self.first = Some(self.first.map_or(t, |f| f.min(t)));
            self.last = Some(self.last.map_or(t, |l| l.max(t)));
        }
    }

    /// Minutes from the first to the last held event, at least 1.
    pub fn minutes(&self) -> i64 {
        match (self.first, self.last) {
            (Some(f), Some(l)) => ((l - f).num_seconds() + 59).div_euclid(60).max(1),
            _ => 1,
        }
    }
}

/// "➕ Dan 5 lainnya dalam 10 menit: 3× Penyusup..., 2× Kerumunan (21:04–21:13 WIB)".
pub fn summary(h: &Held, lang: Language, tz: chrono_tz::Tz) -> Text {
    let minutes = h.minutes();
    let title = match lang {
        Language::Id => format!("Dan {} lainnya dalam {minutes} menit", h.count),
        Language::En => format!(
            "And {} more in {minutes} minute{}",
            h.count,
            if minutes == 1 { "" } else { "s" }
        ),
    };
    let kinds: Vec<String> = h
        .by_kind
        .iter()
        .map(|(k, n)| format!("{n}× {}", lang.kind_words(*k)))
        .collect();
    let span = match (h.first, h.last) {
        (Some(f), Some(l)) => {
            let (f, l) = (f.with_timezone(&tz), l.with_timezone(&tz));
            format!(" ({}–{})", f.format("%H:%M"), l.format("%H:%M %Z"))
        }
        _ => String::new(),
    };
    let tail = match lang {
        Language::Id => "Tidak dikirim satu per satu; semuanya tercatat di pos jaga.",
        Language::En => "Not sent one by one; all of them are at the guard post.",
    };
    Text {
        body: format!("➕ {title}: {}{span}\n{tail}", kinds.join(", ")),
        title,
    }
}

/// Where it happened: the camera, then the zone or line.
fn place(e: &Event, camera: &str, lang: Language) -> String {
    let mut s = camera.to_string();
    if let Some(z) = &e.zone {
        s.push_str(&match lang {
            Language::Id => format!(", zona \"{z}\""),
            Language::En => format!(", zone \"{z}\""),
        });
    }
    if let Some(l) = &e.line {
        let dir = match (e.direction, lang) {
            (Some(Direction::In), Language::Id) => ", masuk",
            (Some(Direction::Out), Language::Id) => ", keluar",
            (Some(Direction::In), Language::En) => ", in",
            (Some(Direction::Out), Language::En) => ", out",
            (None, _) => "",
        };
        s.push_str(&match lang {
            Language::Id => format!(", garis \"{l}\"{dir}"),
            Language::En => format!(", line \"{l}\"{dir}"),
        });
    }
    s
}

/// "Kamis 22 Nov 2026, 21:04 WIB" / "Thu 22 Nov 2026, 21:04 WIB", in the site's zone.
fn long_time(t: DateTime<FixedOffset>, lang: Language, tz: chrono_tz::Tz) -> String {
    let t = t.with_timezone(&tz);
    match lang {
        Language::En => t.format("%a %-d %b %Y, %H:%M %Z").to_string(),
        Language::Id => {
            const DAYS: [&str; 7] = [
                "Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu",
            ];
            const MONTHS: [&str; 12] = [
                "Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des",
            ];
            format!(
                "{} {} {} {}, {}",
                DAYS[t.weekday().num_days_from_monday() as usize],
                t.day(),
                MONTHS[t.month0() as usize],
                t.year(),
                t.format("%H:%M %Z")
            )
        }
    }
}

/// `text` cut to at most `max` characters (Telegram's caption limit), ending in `…` if cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const TZ: chrono_tz::Tz = chrono_tz::Asia::Jakarta;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        TZ.with_ymd_and_hms(2026, 11, 26, h, m, s)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn intrusion() -> Event {
        let mut e = Event::new(
            "rw9",
            TZ,
            "yard",
            EventKind::Intrusion,
            Severity::Alert,
            at(21, 4, 5),
        );
        e.zone = Some("gudang".into());
        e
    }

    #[test]
    fn an_alert_in_indonesian_says_what_where_when() {
        let t = alert(
            &intrusion(),
            "Halaman Belakang",
            None,
            None,
            Language::Id,
            TZ,
        );
        assert_eq!(
            t.body,
            "🚨 AWAS: Penyusup di area terlarang\n\
             Tempat: Halaman Belakang, zona \"gudang\"\n\
             Waktu: Kamis 26 Nov 2026, 21:04 WIB"
        );
        assert_eq!(t.title, "Penyusup di area terlarang");
    }

    #[test]
    fn english_with_who_acknowledged_and_the_link() {
        let ack = AckedBy {
            user: "Budi Santoso (Telegram)".into(),
            at: at(21, 6, 40),
        };
        let t = alert(
            &intrusion(),
            "Back yard",
            Some(&ack),
            Some("https://ronda.example/review#1"),
            Language::En,
            TZ,
        );
        assert_eq!(
            t.body,
            "🚨 ALERT: Intruder in a restricted area\n\
             Where: Back yard, zone \"gudang\"\n\
             When: Thu 26 Nov 2026, 21:04 WIB\n\
             ✅ Acknowledged: Budi Santoso (Telegram), 21:06\n\
             Open: https://ronda.example/review#1"
        );
    }

    #[test]
    fn a_line_event_names_the_line_and_direction_and_a_warning_says_so() {
        let mut e = Event::new(
            "rw9",
            TZ,
            "gate-1",
            EventKind::CurfewEntry,
            Severity::Warning,
            at(23, 59, 0),
        );
        e.line = Some("gapura".into());
        e.direction = Some(Direction::In);
        let t = alert(&e, "Gerbang", None, None, Language::Id, TZ);
        assert!(
            t.body.starts_with(
                "⚠️ PERHATIAN: Masuk saat jam malam\nTempat: Gerbang, garis \"gapura\", masuk\n"
            ),
            "{}",
            t.body
        );
        // another zone shows the site's local time, not the event's offset
        let t = alert(
            &e,
            "Gerbang",
            None,
            None,
            Language::En,
            chrono_tz::Asia::Jayapura,
        );
        assert!(
            t.body.ends_with("When: Fri 27 Nov 2026, 01:59 WIT"),
            "{}",
            t.body
        );
    }

    #[test]
    fn held_repeats_collapse_into_one_summary() {
        let mut h = Held::default();
        for (i, k) in [
            EventKind::Intrusion,
            EventKind::Crowding,
            EventKind::Intrusion,
            EventKind::Intrusion,
            EventKind::Crowding,
        ]
        .into_iter()
        .enumerate()
        {
            let e = Event::new(
                "rw9",
                TZ,
                "yard",
                k,
                Severity::Alert,
                at(21, 4 + 2 * i as u32, 0),
            );
            h.add(&e);
        }
        assert_eq!(h.minutes(), 8);
        let t = summary(&h, Language::Id, TZ);
        assert_eq!(t.title, "Dan 5 lainnya dalam 8 menit");
        assert_eq!(
            t.body,
            "➕ Dan 5 lainnya dalam 8 menit: 3× Penyusup di area terlarang, 2× Kerumunan \
             (21:04–21:12 WIB)\nTidak dikirim satu per satu; semuanya tercatat di pos jaga."
        );
        let one = {
            let mut h = Held::default();
            h.add(&intrusion());
            h
        };
        assert_eq!(
            summary(&one, Language::En, TZ).title,
            "And 1 more in 1 minute"
        );
    }

    #[test]
    fn captions_are_cut_on_characters() {
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(cut("ééééé", 3), "éé…");
    }
}
