//! The admin API: the configuration as admins may see it, and the line and zone editor.
//!
//! | route | answer |
//! |---|---|
//! | `GET /api/admin/config` | the redacted configuration of the file as it is now |
//! | `GET /api/admin/cameras` | `{version, cameras: [{id, name, role, url (redacted), size, state, mask_check, analysis_fps, lines, zones}]}` |
//! | `GET /api/admin/cameras/{id}/snapshot.jpg` | the camera's newest picture (`X-Picture-Width/Height`) |
//! | `PUT /api/admin/cameras/{id}` | `{base_version, lines, zones, mask_check}` -> `{version, summary, changed, applied}` |
//! | `POST /api/admin/cameras/{id}/preview` | `{lines, zones}` (a draft) -> what its lines would have counted over the last minutes ([`preview`]) |
//! | `GET /api/admin/apps` | the guard apps' persistent sessions on the embedded broker ([`apps`]) |
//! | `DELETE /api/admin/apps/{client_id}` | forget one that is away (a phone lost or replaced) |
//! | `GET /api/admin/versions` | `{current, versions: [{version, saved_by, saved_at, summary, reverted_from}]}` |
//! | `GET /api/admin/versions/{n}` | one version: its `text` and a line `diff` against the one before |
//! | `POST /api/admin/versions/{n}/revert` | write version n back as a new version; as a save |
//!
//! A save is checked with the validation of `ronda check-config`, written to the file (comments
//! and order kept, see [`crate::config::edit`]; a temporary file and a rename, see [`file`]),
//! stored as a new version with who saved it, then applied to the running pipeline. A refused
//! save changes nothing and answers 400 with each problem placed by line or zone and field.
//! The editor says which version it loaded: when the file changed since (another admin, or a
//! hand edit), the save is refused with 409 rather than undoing the other change.
//!
//! Saves, reverts and the check of the file against the newest version take turns (one lock),
//! so two saves never interleave and a save is never mistaken for a hand edit.
//!
//! Version texts are shown with the password hashes and URL passwords hidden
//! ([`edit::redacted_text`]); diffs compare those.

mod apps;
mod diff;
mod file;
mod preview;

pub(super) use apps::{apps, forget as forget_app};
pub(super) use preview::preview;

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Failure, Me, Shared};
use crate::api::{CameraStatus, Village, config_summary};
use crate::config::edit::{self, CameraEdit, EditError, FieldIssue};
use crate::config::{Camera, CameraRole, ConfigError, Settings};
use crate::store::{ConfigVersion, Store};

/// At most this many versions in the history list.
const HISTORY: usize = 200;

/// The editor's state, shared by its routes: one save (or revert, or check of the file) at a
/// time.
pub(crate) struct Editor {
    turn: Arc<tokio::sync::Mutex<()>>,
}

impl Editor {
    pub fn new() -> Arc<Editor> {
        Arc::new(Editor {
            turn: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// Wait for the turn. The guard goes into the blocking work and is released when that
    /// ends: a browser that goes away mid-save drops the request, not the work, and the next
    /// save must still wait for it.
    async fn turn(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.turn.clone().lock_owned().await
    }
}

type Ed = Extension<Arc<Editor>>;

/// A refused request: a plain error, or one with the problems placed for the page.
pub(super) enum Refused {
    Plain(Failure),
    Issues {
        status: StatusCode,
        message: String,
        issues: Vec<FieldIssue>,
    },
    /// The file changed since the editor loaded it.
    Stale {
        message: String,
        version: i64,
    },
}

impl From<Failure> for Refused {
    fn from(f: Failure) -> Refused {
        Refused::Plain(f)
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Plain(f) => f.into_response(),
            Refused::Issues {
                status,
                message,
                issues,
            } => (status, Json(json!({"error": message, "issues": issues}))).into_response(),
            Refused::Stale { message, version } => (
                StatusCode::CONFLICT,
                Json(json!({"error": message, "version": version})),
            )
                .into_response(),
        }
    }
}

fn internal(message: String) -> Failure {
    tracing::error!("admin editor: {message}");
    Failure::new(StatusCode::INTERNAL_SERVER_ERROR, message)
}

/// The file to edit and the store of its versions.
struct Files {
    path: PathBuf,
    store: Arc<Store>,
}

fn files(path: Option<PathBuf>, v: &dyn Village) -> Result<Files, Failure> {
    let Some(path) = path else {
        return Err(Failure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the editor is off: this server was started without a configuration file it may \
             write back; start ronda with --config FILE to edit lines and zones here",
        ));
    };
    let Some(store) = v.store() else {
        return Err(Failure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the editor is off: this server keeps no store for the configuration's versions; \
             edit the configuration file by hand and restart ronda",
        ));
    };
    Ok(Files { path, store })
}

/// The file as it is now and the number of the version that holds it (stored now if the file
/// was changed by hand, or on the first use).
fn current(f: &Files) -> Result<(String, i64), Failure> {
    let text = file::read(&f.path).map_err(internal)?;
    let (version, recorded) = f
        .store
        .record_config_file(&text)
        .map_err(|e| internal(e.to_string()))?;
    if recorded {
        tracing::info!(
            version,
            path = %f.path.display(),
            "the configuration file differs from its newest version (edited by hand, or the \
             first start): kept as version {version}"
        );
    }
    Ok((text, version))
}

/// The file's settings; a file that does not pass the check cannot be edited here.
fn parse(text: &str, path: &FsPath) -> Result<Settings, Refused> {
    Settings::parse(text, path).map_err(|e| match e {
        ConfigError::Invalid { issues, .. } => Refused::Issues {
            status: StatusCode::CONFLICT,
            message: format!(
                "the configuration file {} has {} problem(s) (edited by hand?): fix them in the \
                 file (check it with `ronda check-config`) or revert to an earlier version",
                path.display(),
                issues.len()
            ),
            issues: edit::field_issues(&issues, None),
        },
        other => Refused::Plain(Failure::new(
            StatusCode::CONFLICT,
            format!("{other}: fix the file by hand or revert to an earlier version"),
        )),
    })
}

/// `GET /api/admin/config`: the redacted configuration ([`crate::api::config_summary`]) of the
/// file as it is now (the one read at the start when there is no file, or it cannot be read;
/// `file_problem` then says why).
pub(super) async fn config(State(st): State<Shared>) -> Result<Response, Failure> {
    let Some(path) = st.config.config_path.clone() else {
        return Ok(Json(st.config.config_summary.clone()).into_response());
    };
    let now = tokio::task::spawn_blocking(move || {
        let text = file::read(&path)?;
        Settings::parse(&text, &path)
            .map(|s| config_summary(&s))
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| internal(format!("reading the configuration failed: {e}")))?;
    Ok(match now {
        Ok(summary) => Json(summary).into_response(),
        Err(problem) => {
            let mut v = st.config.config_summary.clone();
            v["file_problem"] = problem.into();
            Json(v).into_response()
        }
    })
}

fn camera_json(c: &Camera, status: Option<&CameraStatus>) -> Value {
    let xy = |p: &crate::geometry::Point| json!([p.x, p.y]);
    json!({
        "id": c.id,
        "name": c.name,
        "role": if c.role == CameraRole::Gate { "gate" } else { "area" },
        "url": c.redacted_url(),
        "size": c.size.map(|(w, h)| [w, h]),
        "state": status.map(|s| s.health.as_str()),
        // how bright the camera's picture is, and whether it is lifted as dark (night)
        "brightness": status.and_then(|s| s.brightness).map(|b| (b * 10.0).round() / 10.0),
        "low_light": status.is_some_and(|s| s.low_light),
        "too_dark": status.is_some_and(|s| s.too_dark),
        "noisy": status.is_some_and(|s| s.noisy),
        "behind": status.is_some_and(|s| s.behind),
        "analysis_fps": c.analysis_fps,
        "mask_check": c.mask_check,
        "lines": c.lines.iter().map(|l| json!({
            "name": l.name,
            "points": [xy(&l.a), xy(&l.b)],
            "anchor": l.anchor.as_str(),
            "curfew": l.curfew.map(edit::window_text),
            "no_mask_alert": l.no_mask_alert,
        })).collect::<Vec<_>>(),
        "zones": c.zones.iter().map(|z| json!({
            "name": z.name,
            "kind": z.kind.as_str(),
            "polygon": z.polygon.points.iter().map(xy).collect::<Vec<_>>(),
            "active": z.active.map(edit::window_text),
            "loiter_seconds": z.loiter_seconds,
            "max_people": z.max_people,
        })).collect::<Vec<_>>(),
    })
}

/// `GET /api/admin/cameras`: the cameras of the file as it is now, and its version (to send
/// back as `base_version`).
pub(super) async fn cameras(
    State(st): State<Shared>,
    Extension(ed): Ed,
) -> Result<Response, Refused> {
    let turn = ed.turn().await;
    let path = st.config.config_path.clone();
    let answer = st
        .ask(move |v| -> Result<Value, Refused> {
            let _turn = turn;
            let f = files(path, v)?;
            let (text, version) = current(&f)?;
            let settings = parse(&text, &f.path)?;
            let running = v.cameras();
            let cams: Vec<Value> = settings
                .cameras
                .iter()
                .map(|c| camera_json(c, running.iter().find(|r| r.id == c.id)))
                .collect();
            Ok(json!({"version": version, "cameras": cams}))
        })
        .await??;
    Ok(Json(answer).into_response())
}

/// `GET /api/admin/cameras/{id}/snapshot.jpg`: the camera's newest picture, never cached; its
/// size in `X-Picture-Width` / `X-Picture-Height` (the frame lines and zones are drawn in).
pub(super) async fn snapshot(
    State(st): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, Failure> {
    let asked = id.clone();
    let (known, picture) = st
        .ask(move |v| {
            let known = v.cameras().iter().any(|c| c.id == asked);
            (known, v.snapshot(&asked))
        })
        .await?;
    let Some(p) = picture else {
        return Err(Failure::not_found(if known {
            format!(
                "camera `{id}` has no picture right now (offline or still connecting): check \
                 the camera and press refresh in a moment; lines can still be drawn without it"
            )
        } else {
            format!("there is no camera `{id}`: reload the editor")
        }));
    };
    let mut res = p.jpeg.into_response();
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        HeaderName::from_static("x-picture-width"),
        HeaderValue::from(p.width),
    );
    h.insert(
        HeaderName::from_static("x-picture-height"),
        HeaderValue::from(p.height),
    );
    Ok(res)
}

#[derive(Deserialize)]
struct SaveRequest {
    /// The version the editor loaded.
    base_version: Option<i64>,
    #[serde(flatten)]
    edit: CameraEdit,
}

/// `PUT /api/admin/cameras/{id}`: save the editor's lines and zones of one camera (module
/// documentation).
pub(super) async fn save_camera(
    State(st): State<Shared>,
    Extension(ed): Ed,
    Extension(me): Me,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, Refused> {
    let req: SaveRequest = serde_json::from_slice(&body).map_err(|e| {
        Failure::bad_request(format!(
            "the change is not understood ({e}); send {{\"base_version\": N, \"lines\": [...], \
             \"zones\": [...]}} as JSON"
        ))
    })?;
    let Some(base) = req.base_version else {
        return Err(Failure::bad_request(
            "base_version is missing: send the version the editor loaded (from GET \
             /api/admin/cameras)",
        )
        .into());
    };
    let turn = ed.turn().await;
    let path = st.config.config_path.clone();
    let user = me.name.clone();
    let st2 = st.clone();
    let answer = st
        .ask(move |v| {
            let _turn = turn;
            save(&st2, v, path, &user, &id, base, &req.edit)
        })
        .await??;
    Ok(Json(answer).into_response())
}

fn save(
    st: &Shared,
    v: &dyn Village,
    path: Option<PathBuf>,
    user: &str,
    camera: &str,
    base: i64,
    change: &CameraEdit,
) -> Result<Value, Refused> {
    let f = files(path, v)?;
    let (text, version) = current(&f)?;
    if version != base {
        return Err(stale(st, &f, version, base));
    }
    let edited = edit::apply_camera_edit(&text, &f.path, camera, change).map_err(|e| {
        refused_edit(e, |n| {
            format!(
                "the change was not saved: {n} problem(s), each shown at its place; nothing was \
                 changed"
            )
        })
    })?;
    if !edited.changed {
        return Ok(json!({
            "version": version,
            "summary": format!("{camera}: no change"),
            "changed": false,
            "applied": [],
        }));
    }
    let saved = write_version(&f, user, &edited.summary, &edited.text, None)?;
    Ok(applied(v, saved, &edited.summary, &edited.settings, None))
}

/// A camera edit the validation refused: an unknown camera (404), a file that cannot be read
/// (409), or problems placed by line and field (400, `message(count)` above them).
pub(super) fn refused_edit(e: EditError, message: impl FnOnce(usize) -> String) -> Refused {
    match e {
        e @ EditError::UnknownCamera(_) => Failure::not_found(e.to_string()).into(),
        e @ EditError::Unreadable(_) => Failure::new(StatusCode::CONFLICT, e.to_string()).into(),
        EditError::Invalid { issues } => Refused::Issues {
            status: StatusCode::BAD_REQUEST,
            message: message(issues.len()),
            issues,
        },
    }
}

/// Write the file, then store it as a version: the number.
fn write_version(
    f: &Files,
    user: &str,
    summary: &str,
    text: &str,
    reverted_from: Option<i64>,
) -> Result<i64, Failure> {
    file::write(&f.path, text).map_err(internal)?;
    let version = f
        .store
        .save_config_version(user, summary, text, reverted_from)
        .map_err(|e| {
            internal(format!(
                "the file was written, but its version could not be stored ({e}); it will be \
                 kept as a hand edit at the next look at the history"
            ))
        })?;
    tracing::info!(
        user,
        version,
        summary,
        "configuration saved from the web editor"
    );
    Ok(version)
}

/// Apply the saved settings to the running pipeline and say what happened.
fn applied(
    v: &dyn Village,
    version: i64,
    summary: &str,
    settings: &Settings,
    reverted_from: Option<i64>,
) -> Value {
    let mut answer = json!({
        "version": version,
        "summary": summary,
        "changed": true,
        "reverted_from": reverted_from,
    });
    match v.apply_settings(settings) {
        Ok(list) => answer["applied"] = json!(list),
        Err(e) => {
            tracing::warn!(version, "the saved configuration was not applied: {e}");
            answer["applied"] = json!([]);
            answer["apply_error"] = format!(
                "saved as version {version}, but the running cameras did not take it: {e}; it \
                 takes effect when ronda is restarted"
            )
            .into();
        }
    }
    answer
}

fn stale(st: &Shared, f: &Files, version: i64, base: i64) -> Refused {
    let by = f
        .store
        .config_version(version)
        .ok()
        .flatten()
        .map(|c| {
            format!(
                " (version {version}, by {} at {})",
                c.version.saved_by,
                st.local(c.version.saved_at)
            )
        })
        .unwrap_or_default();
    Refused::Stale {
        message: format!(
            "someone else saved meanwhile{by}; your change is not saved (it was made on version \
             {base}): reload the editor and make it again"
        ),
        version,
    }
}

fn version_number(n: &str) -> Result<i64, Failure> {
    n.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Failure::bad_request(format!("`{n}` is not a version number")))
}

fn version_json(st: &Shared, c: &ConfigVersion) -> Value {
    json!({
        "version": c.version,
        "saved_by": c.saved_by,
        "saved_at": st.local(c.saved_at),
        "summary": c.summary,
        "reverted_from": c.reverted_from,
    })
}

/// `GET /api/admin/versions`: the history, newest first, and the version the file is now.
pub(super) async fn versions(
    State(st): State<Shared>,
    Extension(ed): Ed,
) -> Result<Response, Refused> {
    let turn = ed.turn().await;
    let path = st.config.config_path.clone();
    let st2 = st.clone();
    let answer = st
        .ask(move |v| -> Result<Value, Failure> {
            let _turn = turn;
            let f = files(path, v)?;
            let (_, current) = current(&f)?;
            let list = f
                .store
                .config_versions(HISTORY)
                .map_err(|e| internal(e.to_string()))?;
            Ok(json!({
                "current": current,
                "versions": list.iter().map(|c| version_json(&st2, c)).collect::<Vec<_>>(),
            }))
        })
        .await??;
    Ok(Json(answer).into_response())
}

/// `GET /api/admin/versions/{n}`: version n with its text and its diff against the version
/// before (`previous`; for the first one, against nothing).
pub(super) async fn version(
    State(st): State<Shared>,
    Path(n): Path<String>,
) -> Result<Response, Refused> {
    let n = version_number(&n)?;
    let path = st.config.config_path.clone();
    let st2 = st.clone();
    let answer = st
        .ask(move |v| -> Result<Value, Failure> {
            let f = files(path, v)?;
            let failed = |e: crate::store::StoreError| internal(e.to_string());
            let this = f
                .store
                .config_version(n)
                .map_err(failed)?
                .ok_or_else(|| Failure::not_found(format!("there is no version {n}")))?;
            let before = f.store.config_version_before(n).map_err(failed)?;
            let text = edit::redacted_text(&this.text);
            let old = before
                .as_ref()
                .map(|b| edit::redacted_text(&b.text))
                .unwrap_or_default();
            let mut answer = version_json(&st2, &this.version);
            answer["previous"] = json!(before.map(|b| b.version.version));
            answer["diff"] = json!(diff::line_diff(&old, &text));
            answer["text"] = text.into();
            Ok(answer)
        })
        .await??;
    Ok(Json(answer).into_response())
}

/// `POST /api/admin/versions/{n}/revert`: write version n back (checked first) as a new
/// version that says so, and apply it. Answers like a save, with `reverted_from`.
pub(super) async fn revert(
    State(st): State<Shared>,
    Extension(ed): Ed,
    Extension(me): Me,
    Path(n): Path<String>,
) -> Result<Response, Refused> {
    let n = version_number(&n)?;
    let turn = ed.turn().await;
    let path = st.config.config_path.clone();
    let user = me.name.clone();
    let answer = st
        .ask(move |v| -> Result<Value, Refused> {
            let _turn = turn;
            let f = files(path, v)?;
            let (text, version) = current(&f)?;
            let old = f
                .store
                .config_version(n)
                .map_err(|e| internal(e.to_string()))?
                .ok_or_else(|| {
                    Failure::not_found(format!("there is no version {n}: reload the history"))
                })?;
            if old.text == text {
                return Ok(json!({
                    "version": version,
                    "summary": format!("version {n} is what the file holds now: nothing to revert"),
                    "changed": false,
                    "reverted_from": n,
                    "applied": [],
                }));
            }
            let settings = Settings::parse(&old.text, &f.path).map_err(|e| Refused::Issues {
                status: StatusCode::BAD_REQUEST,
                message: format!(
                    "version {n} cannot be used as it is ({} problem(s); it may have been edited \
                     by hand, or the checks changed since); nothing was changed",
                    e.issues().len().max(1)
                ),
                issues: match &e {
                    ConfigError::Invalid { issues, .. } => edit::field_issues(issues, None),
                    other => vec![FieldIssue {
                        place: String::new(),
                        line: None,
                        zone: None,
                        field: None,
                        point: None,
                        message: other.to_string(),
                    }],
                },
            })?;
            let what = match Settings::parse(&text, &f.path) {
                Ok(now) => edit::summarize(&now, &settings),
                Err(_) => "the file before had problems".into(),
            };
            let summary = format!("reverted to version {n}: {what}");
            let saved = write_version(&f, &user, &summary, &old.text, Some(n))?;
            Ok(applied(v, saved, &summary, &settings, Some(n)))
        })
        .await??;
    Ok(Json(answer).into_response())
}
