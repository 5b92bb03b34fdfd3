//! An incident's files: the clip (streamed, with HTTP Range so a browser can seek) and the
//! snapshots. The path comes from the store only, is checked to be plain and relative, and is
//! joined to `[store] clips_dir`; files are opened and read with `tokio::fs` (the blocking pool,
//! never the async runtime) and a clip is sent in chunks, never read whole into memory.

use std::path::{Component, Path as FsPath, PathBuf};

use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header::{
    ACCEPT_RANGES, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, IF_RANGE,
    RANGE,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::range::{Wanted, wanted};
use super::{checked_id, find};
use crate::api::routes::{Failure, Shared};
use crate::store::ClipState;

/// Bytes read from the disk at a time while streaming a clip.
const CHUNK: usize = 64 * 1024;

/// Is `p` a plain relative path (only names: no root, no `..`, no `.`)?
fn plain_relative(p: &FsPath) -> bool {
    p.components().next().is_some() && p.components().all(|c| matches!(c, Component::Normal(_)))
}

/// `clips_dir/rel`, if `rel` (from the store) is a plain relative path.
fn under_clips_dir(st: &Shared, owner: &str, rel: &FsPath) -> Result<PathBuf, Failure> {
    if plain_relative(rel) {
        Ok(st.config.clips_dir.join(rel))
    } else {
        // the store refuses such paths when they are written: this is a damaged index
        tracing::error!(owner, path = %rel.display(), "stored file path leaves the clips directory; refused");
        Err(Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "the stored path of {owner}'s file is not inside the clips directory; it is not \
                 served (the incident index is damaged)"
            ),
        ))
    }
}

/// Open `path`; a file that is not there is a 404 saying what it was.
async fn open(path: &FsPath, what: &str) -> Result<(tokio::fs::File, u64), Failure> {
    let missing = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Failure::not_found(format!(
                "{what} is in the index but not on disk (removed by hand?)"
            ))
        } else {
            tracing::error!(path = %path.display(), "cannot read {what}: {e}");
            Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot read {what}: {e}"),
            )
        }
    };
    let file = tokio::fs::File::open(path).await.map_err(missing)?;
    let meta = file.metadata().await.map_err(missing)?;
    if !meta.is_file() {
        return Err(missing(std::io::Error::other("not a regular file")));
    }
    Ok((file, meta.len()))
}

/// `len` bytes of `file` from where it stands, as a body sent chunk by chunk.
fn stream(file: tokio::fs::File, len: u64) -> Body {
    let reader = file.take(len);
    let chunks = futures_util::stream::try_unfold(reader, |mut r| async move {
        let mut buf = vec![0u8; CHUNK];
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok::<_, std::io::Error>(None);
        }
        buf.truncate(n);
        Ok(Some((Bytes::from(buf), r)))
    });
    Body::from_stream(chunks)
}

fn header(v: String) -> HeaderValue {
    HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static(""))
}

/// Why an incident has no clip to play, in the reviewer's words.
fn no_clip(id: &str, state: ClipState, note: Option<&str>) -> Failure {
    let why = match state {
        ClipState::None => "no clip was recorded for it (its camera keeps no recording)",
        ClipState::Pending => "its clip is still being recorded; try again in a few seconds",
        ClipState::Failed => "its clip could not be written",
        ClipState::Expired => "its clip was removed by retention (too old, or the disk budget)",
        ClipState::Ready => "its clip has no file",
    };
    let note = note.map(|n| format!(" ({n})")).unwrap_or_default();
    Failure::not_found(format!(
        "incident {id} has no clip to play (state {}): {why}{note}",
        state.as_str()
    ))
}

/// `GET /api/incidents/{id}/clip.mp4` (and HEAD): the clip, whole (200) or the one byte range
/// asked (206); 416 with `Content-Range: bytes */<size>` for a range outside it; 404 when the
/// incident has no clip (pending, failed, expired, none), with its state.
pub(in crate::api::routes) async fn clip(
    State(st): State<Shared>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let id = checked_id(id)?;
    let inc = find(&st, &id).await?;
    let rel = match (&inc.clip.state, &inc.clip.path) {
        (ClipState::Ready, Some(p)) => p.clone(),
        (state, _) => return Err(no_clip(&inc.id, *state, inc.clip.note.as_deref())),
    };
    let path = under_clips_dir(&st, &inc.id, &rel)?;
    let (mut file, len) = open(&path, &format!("the clip of incident {}", inc.id)).await?;

    // a conditional range this server cannot check (it gives out no validators): whole file
    let range = if headers.contains_key(IF_RANGE) {
        None
    } else {
        headers.get(RANGE).and_then(|v| v.to_str().ok())
    };
    let (status, start, count) = match wanted(range, len) {
        Wanted::Whole => (StatusCode::OK, 0, len),
        Wanted::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        Wanted::Unsatisfiable => {
            let mut res = Failure::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!(
                    "the range `{}` is outside the clip, which has {len} bytes",
                    range.unwrap_or_default()
                ),
            )
            .into_response();
            res.headers_mut()
                .insert(CONTENT_RANGE, header(format!("bytes */{len}")));
            res.headers_mut()
                .insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            return Ok(res);
        }
    };
    if start > 0 {
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(|e| {
                Failure::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot read the clip of incident {}: {e}", inc.id),
                )
            })?;
    }
    let mut res = Response::new(stream(file, count));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(CONTENT_LENGTH, HeaderValue::from(count));
    h.insert(
        CONTENT_DISPOSITION,
        header(format!("inline; filename=\"{}.mp4\"", inc.id)),
    );
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(
            CONTENT_RANGE,
            header(format!("bytes {start}-{}/{len}", start + count - 1)),
        );
    }
    Ok(res)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::api::routes) struct SnapshotQuery {
    event: Option<String>,
}

/// `GET /api/incidents/{id}/snapshot.jpg[?event=<event id>]`: the JPEG of that event of the
/// incident; without `event`, of event `{id}` itself (the opening event when `{id}` is the
/// incident's own id).
pub(in crate::api::routes) async fn snapshot(
    State(st): State<Shared>,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<SnapshotQuery>, QueryRejection>,
) -> Result<Response, Failure> {
    let id = checked_id(id)?;
    let Query(q) = q.map_err(|e| {
        Failure::bad_request(format!(
            "{}; the only parameter is event=<event id>",
            e.body_text()
        ))
    })?;
    let inc = find(&st, &id).await?;
    let event = q.event.filter(|e| !e.is_empty()).unwrap_or(id);
    if !inc.events.iter().any(|e| e.id == event) {
        return Err(Failure::not_found(format!(
            "event {event} is not one of incident {}'s events",
            inc.id
        )));
    }
    let Some(rel) = inc.snapshot_of(&event) else {
        return Err(Failure::not_found(format!(
            "event {event} of incident {} has no snapshot (none was written, or retention \
             removed it)",
            inc.id
        )));
    };
    let path = under_clips_dir(&st, &event, rel)?;
    let what = format!("the snapshot of event {event}");
    let (file, len) = open(&path, &what).await?;
    let mut res = Response::new(stream(file, len));
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    h.insert(CONTENT_LENGTH, HeaderValue::from(len));
    Ok(res.into_response())
}

#[cfg(test)]
mod tests {
    use super::plain_relative;
    use std::path::Path;

    #[test]
    fn only_plain_relative_paths_are_served() {
        assert!(plain_relative(Path::new("gate-1/2026-11-22/1.mp4")));
        for bad in ["", "/etc/passwd", "../x.mp4", "a/../../b", "./a.mp4"] {
            assert!(!plain_relative(Path::new(bad)), "{bad}");
        }
    }
}
