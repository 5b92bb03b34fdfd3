//! `POST /api/admin/cameras/{id}/preview`: "preview this line". The editor sends its draft of
//! the camera (the body of a save, without `base_version`); it is checked as a save would be
//! (problems placed by line and field, nothing written) and each of its lines is replayed over the
//! tracks the camera kept of its last minutes (`rules::preview`): what the line would have
//! counted there, with a small picture of each person at the crossing.
//!
//! Answer: `{camera, from, to, seconds, frames, lines: [{name, in, out, crossings: [{direction,
//! at, track_id, picture}]}]}`, times in the site's zone, `picture` a `data:image/jpeg;base64,...`
//! URL or null. At most [`MAX_CROSSINGS`] crossings per line are listed (the counts are whole).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::super::{Failure, Shared};
use super::{Refused, file, internal, refused_edit};
use crate::api::Village;
use crate::config::edit::{self, CameraEdit};
use crate::rules::Preview;

/// Crossings listed per line: a busy gate's five minutes fit, a page stays light.
pub(crate) const MAX_CROSSINGS: usize = 200;

pub(in crate::api) async fn preview(
    State(st): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, Refused> {
    let draft: CameraEdit = serde_json::from_slice(&body).map_err(|e| {
        Failure::bad_request(format!(
            "the lines to preview are not understood ({e}); send the editor's camera as JSON: \
             {{\"lines\": [{{\"name\": ..., \"points\": [[x, y], [x, y]]}}], \"zones\": [...]}}"
        ))
    })?;
    let path = st.config.config_path.clone();
    let answer = st
        .ask(move |v| preview_draft(v, path, &id, &draft))
        .await??;
    Ok(Json(answer).into_response())
}

fn preview_draft(
    v: &dyn Village,
    path: Option<std::path::PathBuf>,
    camera: &str,
    draft: &CameraEdit,
) -> Result<Value, Refused> {
    let Some(path) = path else {
        return Err(Failure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the editor is off: this server was started without a configuration file; start \
             ronda with --config FILE to draw and preview lines here",
        )
        .into());
    };
    let text = file::read(&path).map_err(internal)?;
    // checked exactly as a save would be, so a line that previews is a line that saves
    let edited = edit::apply_camera_edit(&text, &path, camera, draft).map_err(|e| {
        refused_edit(e, |n| {
            format!("the lines cannot be previewed: {n} problem(s), each shown at its place")
        })
    })?;
    let settings = &edited.settings;
    let Some(cam) = settings.cameras.iter().find(|c| c.id == camera) else {
        return Err(Failure::not_found(format!(
            "there is no camera `{camera}`: reload the editor"
        ))
        .into());
    };
    let specs: Vec<_> = cam.lines.iter().map(|l| l.spec()).collect();
    if specs.is_empty() {
        return Err(Failure::bad_request(
            "there is no line to preview: draw a line on the picture first",
        )
        .into());
    }
    let Some(p) = v.preview_lines(camera, &specs, &settings.counting) else {
        return Err(Failure::not_found(if settings.preview_minutes <= 0.0 {
            "line previews are off ([counting] preview_minutes = 0 in the configuration): set \
             it to the minutes to keep, e.g. 5, and restart ronda"
                .to_string()
        } else {
            format!(
                "camera `{camera}` is not running (it could not start: see its state on the \
                 admin page), so there are no recent passers-by to preview the line on"
            )
        })
        .into());
    };
    Ok(answer(camera, &p, settings.site.timezone))
}

fn answer(camera: &str, p: &Preview, tz: chrono_tz::Tz) -> Value {
    // times as the site's clock shows them, with the offset (as events carry them)
    let local = |t: chrono::DateTime<chrono::Utc>| t.with_timezone(&tz).to_rfc3339();
    let lines: Vec<Value> = p
        .lines
        .iter()
        .map(|l| {
            let crossings: Vec<Value> = l
                .crossings
                .iter()
                .rev()
                .take(MAX_CROSSINGS)
                .rev()
                .map(|c| {
                    json!({
                        "direction": c.crossing.direction.as_str(),
                        "at": local(c.utc),
                        "track_id": c.crossing.track_id,
                        "picture": c.picture.as_ref().map(|j| {
                            format!("data:image/jpeg;base64,{}", crate::api::auth::base64_encode(j))
                        }),
                    })
                })
                .collect();
            json!({
                "name": l.line,
                "in": l.counts.in_,
                "out": l.counts.out,
                "crossings": crossings,
            })
        })
        .collect();
    json!({
        "camera": camera,
        "from": p.from.map(local),
        "to": p.to.map(local),
        "seconds": p.seconds,
        "frames": p.frames,
        "lines": lines,
    })
}
