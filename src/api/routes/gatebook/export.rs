//! The CSV exports: records (whole phone numbers for admins only) and a day's log.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;

use super::log::{EntriesQuery, entry_filter};
use super::records::{RecordsQuery, record_filter};
use super::reports::csv_answer;
use super::{MAX_PAGE, camera_names, name_of, store_failure, with_store};
use crate::api::routes::{Failure, Me, Shared};
use crate::config::Role;
use crate::gate::mask_phone;
use crate::gate::report;
use crate::rules::Direction;

/// `GET /api/gate/export/records.csv`: whole phone numbers for admins, masked for guards.
pub(in crate::api::routes) async fn records_csv(
    State(st): State<Shared>,
    me: Me,
    q: Result<Query<RecordsQuery>, QueryRejection>,
) -> Result<Response, Failure> {
    let Query(q) = q.map_err(|e| Failure::bad_request(e.body_text()))?;
    let mut q = q;
    q.limit = q.limit.or(Some(5000));
    let f = record_filter(&st, &q, 5000)?;
    let list = with_store(&st, move |s| s.gate_records(&f))
        .await?
        .map_err(|e| store_failure("exporting the gate book", e))?;
    let whole = me.role == Role::Admin;
    let mut out = report::csv_row(&[
        "id",
        "kind",
        "name",
        "origin",
        "visiting",
        "purpose",
        "phone",
        "stay",
        "rt",
        "entered",
        "left",
        "status",
        "created_by",
        "updated_by",
        "updated",
    ]);
    for r in &list {
        let f = &r.fields;
        let phone = if whole {
            f.phone.clone()
        } else {
            mask_phone(&f.phone)
        };
        let left = r.left_at.map(|t| st.local(t)).unwrap_or_default();
        out += &report::csv_row(&[
            &r.id.to_string(),
            r.kind.as_str(),
            &f.name,
            &f.origin,
            &f.visiting,
            &f.purpose,
            &phone,
            &f.stay,
            &f.rt,
            &st.local(r.entered_at),
            &left,
            if r.inside() { "inside" } else { "left" },
            &r.created_by,
            &r.updated_by,
            &st.local(r.updated_at),
        ]);
    }
    Ok(csv_answer("buku-tamu.csv", out))
}

/// `GET /api/gate/export/entries.csv?date`: the day's gate log.
pub(in crate::api::routes) async fn entries_csv(
    State(st): State<Shared>,
    q: Result<Query<EntriesQuery>, QueryRejection>,
) -> Result<Response, Failure> {
    let Query(mut q) = q.map_err(|e| Failure::bad_request(e.body_text()))?;
    q.limit = Some(MAX_PAGE);
    let mut f = entry_filter(&st, &q)?;
    let day = f
        .from
        .map(|t| {
            t.with_timezone(&st.config.site.timezone)
                .format("%Y-%m-%d")
                .to_string()
        })
        .unwrap_or_default();
    let names = camera_names(&st).await?;
    let mut all = Vec::new();
    loop {
        let page_filter = f.clone();
        let page = with_store(&st, move |s| s.gate_entries(&page_filter))
            .await?
            .map_err(|e| store_failure("exporting the gate log", e))?;
        let full = page.len() == MAX_PAGE;
        f.before = page.last().map(|e| (e.at.timestamp_millis(), e.id.clone()));
        all.extend(page);
        if !full || all.len() >= 50_000 {
            break;
        }
    }
    all.reverse();
    let mut out = report::csv_row(&[
        "id",
        "time",
        "camera",
        "line",
        "direction",
        "mask",
        "night",
        "record",
        "record_kind",
        "record_name",
    ]);
    for e in &all {
        let rec = e.record.as_ref();
        out += &report::csv_row(&[
            &e.id,
            &st.local(e.at),
            &name_of(&names, &e.camera),
            &e.line,
            match e.direction {
                Direction::In => "in",
                Direction::Out => "out",
            },
            e.mask.map_or("", |(v, _)| v.as_str()),
            if e.night { "yes" } else { "" },
            &rec.map(|r| r.id.to_string()).unwrap_or_default(),
            rec.map_or("", |r| r.kind.as_str()),
            &rec.map(|r| r.name.clone()).unwrap_or_default(),
        ]);
    }
    Ok(csv_answer(&format!("log-gerbang-{day}.csv"), out))
}
