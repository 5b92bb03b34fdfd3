//! The admin API. For now only the configuration as admins may see it; the zone and line editor
//! comes next.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::Shared;

/// `GET /api/admin/config`: the redacted configuration ([`crate::api::config_summary`]).
pub(super) async fn config(State(st): State<Shared>) -> Response {
    Json(st.config.config_summary.clone()).into_response()
}
