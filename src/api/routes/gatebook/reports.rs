//! The daily reports: the list, a day's report (made now as a draft when none is stored) and
//! its CSV.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderValue;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Value, json};

use super::{camera_names, parse_day, path_text, store_failure, with_store};
use crate::api::routes::{Failure, Shared};
use crate::gate::report::{self, DailyReport, ReportSite};

/// `GET /api/gate/reports`.
pub(in crate::api::routes) async fn reports(State(st): State<Shared>) -> Result<Response, Failure> {
    let list = with_store(&st, |s| s.gate_reports(60))
        .await?
        .map_err(|e| store_failure("listing the daily reports", e))?;
    let status = st.ask(|v| v.gate_status()).await?.unwrap_or_default();
    let items: Vec<Value> = list
        .iter()
        .map(|r| {
            json!({
                "day": r.day,
                "from": st.local(r.from),
                "to": st.local(r.to),
                "made_at": st.local(r.made_at),
                "sent_at": r.sent_at.map(|t| st.local(t)),
                "send_note": r.send_note,
            })
        })
        .collect();
    Ok(Json(json!({
        "reports": items,
        "report_at": st.config.gatebook.report_at.format("%H:%M:%S").to_string(),
        "now": status.now.map(|t| st.local(t)),
        "next": status.next_report.map(|t| st.local(t)),
        "last": status.last_report,
    }))
    .into_response())
}

/// The report of `day`: the stored one, or one made now from what the store has.
async fn day_report(st: &Shared, day: String) -> Result<(DailyReport, bool, String), Failure> {
    let date = parse_day(&day)?;
    let names = camera_names(st).await?;
    let site = ReportSite {
        id: st.config.site.id.clone(),
        name: st.config.site.name.clone(),
        tz: st.config.site.timezone,
        language: st.config.site.language,
        report_at: st.config.gatebook.report_at,
        cameras: names,
        public_url: None,
    };
    let (from, to) = report::period_of(date, site.report_at, site.tz);
    let key = date.format("%Y-%m-%d").to_string();
    let (stored, built) = with_store(st, move |s| {
        let stored = s.gate_report(&key)?;
        let built = match &stored {
            Some(_) => None,
            None => Some(report::build(s, &site, from, to, Utc::now())?),
        };
        Ok::<_, crate::store::StoreError>((stored, built))
    })
    .await?
    .map_err(|e| store_failure("making the daily report", e))?;
    match (stored, built) {
        (Some(s), _) => {
            let r: DailyReport = serde_json::from_str(&s.json)
                .map_err(|e| store_failure("reading the stored report", e))?;
            Ok((r, false, s.text))
        }
        (None, Some(r)) => {
            let text = report::text(&r, st.config.site.timezone, st.config.site.language, None);
            Ok((r, true, text))
        }
        (None, None) => Err(Failure::not_found("no report")),
    }
}

/// `GET /api/gate/reports/{day}`: `{report, draft, text}`.
pub(in crate::api::routes) async fn report(
    State(st): State<Shared>,
    day: Result<Path<String>, PathRejection>,
) -> Result<Response, Failure> {
    let (r, draft, text) = day_report(&st, path_text(day)?).await?;
    Ok(Json(json!({"report": r, "draft": draft, "text": text})).into_response())
}

pub(super) fn csv_answer(name: &str, body: String) -> Response {
    let disposition = format!("attachment; filename=\"{name}\"");
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition)
                    .unwrap_or(HeaderValue::from_static("attachment")),
            ),
        ],
        // a byte order mark: spreadsheet programs then read the names' letters right
        format!("\u{feff}{body}"),
    )
        .into_response()
}

/// `GET /api/gate/reports/{day}/report.csv`.
pub(in crate::api::routes) async fn report_csv(
    State(st): State<Shared>,
    day: Result<Path<String>, PathRejection>,
) -> Result<Response, Failure> {
    let (r, _, _) = day_report(&st, path_text(day)?).await?;
    Ok(csv_answer(
        &format!("laporan-gerbang-{}.csv", r.day),
        report::csv(&r),
    ))
}
