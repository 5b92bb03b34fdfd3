//! A report's three forms: the short text for the village's chat group (counts only), the CSV,
//! and the webhook's message.

use chrono::{DateTime, Datelike};
use chrono_tz::Tz;

use super::DailyReport;
use super::times::local;
use crate::config::Language;
use crate::events::EventKind;
use crate::store::StoredReport;

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
            let words = a
                .kind
                .parse::<EventKind>()
                .map(|k| lang.kind_words(k))
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
