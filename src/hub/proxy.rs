//! `GET /villages/{site}/incidents/{id}/clip.mp4`: an incident's clip, fetched from the
//! village box's own API (`/api/incidents/{id}/clip.mp4`) with the account the village gave
//! the hub (HTTP Basic), and passed on as it comes. The village decides: an account whose role
//! may not see clips gets the user a 502 that says so.
//!
//! Only for an event the hub stored for that village, with a clip, for a user who sees the
//! village (404 otherwise, as for a village that does not exist). A `Range` header is passed
//! on, so the browser's player can seek.
//!
//! The clip is streamed, never held whole: a blocking thread reads the village's answer in
//! chunks into a bounded channel of [`CHUNKS`]; when the browser reads slower than the village
//! sends, the thread waits (the village's connection is slowed, nothing is dropped or buffered
//! beyond it); a browser that goes away ends the thread and the village's connection.

use std::io::Read;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header::{ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::{mpsc, oneshot};

use super::state::{Failure, Shared, Who, no_village};
use crate::api::auth::base64_encode;

/// Chunks in flight between the village's answer and the browser.
const CHUNKS: usize = 8;
const CHUNK_BYTES: usize = 64 * 1024;

/// The village's answer, before its body.
struct Head {
    status: StatusCode,
    headers: Vec<(axum::http::HeaderName, HeaderValue)>,
}

fn plain_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

pub(super) async fn clip(
    State(st): State<Shared>,
    axum::Extension(Who(u)): axum::Extension<Who>,
    Path((site, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    if !st.sees(&u, &site) {
        return Err(no_village(&site));
    }
    let Some(v) = st.villages.get(&site) else {
        return Err(Failure::not_found(
            "this village is not in the hub's configuration, so the hub has no account to \
             fetch its clips with",
        ));
    };
    if !plain_id(&id) {
        return Err(Failure::not_found("no such event"));
    }
    let (s, i) = (site.clone(), id.clone());
    let event = st.store_event(s, i).await?;
    match event {
        Some(e) if e.clip.is_some() => {}
        Some(_) => return Err(Failure::not_found(format!("event {id} has no clip"))),
        None => {
            return Err(Failure::not_found(format!(
                "no event {id} of this village here"
            )));
        }
    }
    let (Some(base), Some(user), Some(password)) = (&v.cfg.url, &v.cfg.user, &v.password) else {
        return Err(Failure::not_found(
            "the village gave the hub no account for its clips ([[villages]] url, user and \
             password)",
        ));
    };
    let url = format!("{base}/api/incidents/{id}/clip.mp4");
    let auth = format!(
        "Basic {}",
        base64_encode(format!("{user}:{password}").as_bytes())
    );
    let range = headers.get(RANGE).cloned();
    let agent = st.agent.clone();
    let base = base.clone();
    let (head_tx, head_rx) = oneshot::channel();
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(CHUNKS);
    tokio::task::spawn_blocking(move || fetch(agent, &base, &url, &auth, range, head_tx, tx));
    let head = head_rx
        .await
        .map_err(|_| Failure::new(StatusCode::BAD_GATEWAY, "the clip's download stopped"))??;
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut res = Response::new(Body::from_stream(stream));
    *res.status_mut() = head.status;
    for (k, v) in head.headers {
        res.headers_mut().insert(k, v);
    }
    Ok(res.into_response())
}

/// Fetch the clip (on the blocking pool): the head through `head`, then the body in chunks.
fn fetch(
    agent: ureq::Agent,
    base: &str,
    url: &str,
    auth: &str,
    range: Option<HeaderValue>,
    head: oneshot::Sender<Result<Head, Failure>>,
    body: mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let mut req = agent.get(url).header("Authorization", auth);
    if let Some(r) = range.as_ref().and_then(|r| r.to_str().ok()) {
        req = req.header("Range", r);
    }
    let mut res = match req.call() {
        Ok(r) => r,
        Err(e) => {
            let _ = head.send(Err(Failure::new(
                StatusCode::BAD_GATEWAY,
                format!("the village box at {base} did not answer ({e})"),
            )));
            return;
        }
    };
    let status = res.status().as_u16();
    let failure = match status {
        200 | 206 | 416 => None,
        401 | 403 => Some(Failure::new(
            StatusCode::BAD_GATEWAY,
            format!(
                "the village box refused the hub's account ({status}): the village decides what \
                 the hub may see; for clips it gives the hub's account the `reviewer` role"
            ),
        )),
        404 => Some(Failure::not_found(format!(
            "the village box has no such clip: {}",
            village_error(&mut res)
        ))),
        409 | 503 => Some(Failure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the village box: {}", village_error(&mut res)),
        )),
        _ => Some(Failure::new(
            StatusCode::BAD_GATEWAY,
            format!("the village box answered {status}"),
        )),
    };
    if let Some(f) = failure {
        let _ = head.send(Err(f));
        return;
    }
    let keep = [CONTENT_TYPE, CONTENT_LENGTH, CONTENT_RANGE, ACCEPT_RANGES];
    let headers = keep
        .iter()
        .filter_map(|k| {
            let v = res.headers().get(k.as_str())?.to_str().ok()?;
            Some((k.clone(), HeaderValue::from_str(v).ok()?))
        })
        .collect();
    let head_sent = head.send(Ok(Head {
        status: StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        headers,
    }));
    if head_sent.is_err() {
        return; // the browser went away
    }
    let mut reader = res.into_body().into_reader();
    loop {
        let mut buf = vec![0u8; CHUNK_BYTES];
        match reader.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                buf.truncate(n);
                if body.blocking_send(Ok(Bytes::from(buf))).is_err() {
                    return; // the browser went away: the village's connection ends with us
                }
            }
            Err(e) => {
                let _ = body.blocking_send(Err(e));
                return;
            }
        }
    }
}

/// The village's `{"error": "..."}`, short, or its status.
fn village_error(res: &mut ureq::http::Response<ureq::Body>) -> String {
    let status = res.status().as_u16();
    res.body_mut()
        .with_config()
        .limit(4096)
        .read_to_string()
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["error"].as_str().map(crate::topic::shown))
        .unwrap_or_else(|| format!("status {status}"))
}
