//! `GET /api/events/stream`: the live feed as server-sent events.
//!
//! | SSE event | data |
//! |---|---|
//! | `ready` | `{"keep_alive_s": 15}`, once, when the subscription is in place (also sets `retry: 3000`) |
//! | `event` | an [`Event`](crate::events::Event), as stored (schema 1 JSON) |
//! | `ack` | `{"event_id", "user", "at"}`: someone acknowledged an event |
//! | `lagged` | `{"missed": n}`: this client fell behind and missed `n` messages; it should reload `/api/events` |
//!
//! A comment line (`: keep-alive`) goes out every 15 s so proxies and phones keep the connection;
//! at each one the session is checked again, and the stream ends when it expired or was logged
//! out (the browser reconnects, gets 401 and goes to the login). The stream also ends when the
//! server stops or the pipeline's event channel closes.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::sse::{Event as Sse, Sse as SseResponse};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Interval, MissedTickBehavior, interval_at};

use super::{Me, Shared};
use crate::api::{AckRecord, session::SessionUser};
use crate::events::Event;

/// How long a browser waits before reconnecting.
const RETRY: Duration = Duration::from_secs(3);

struct Feed {
    st: Shared,
    user: SessionUser,
    events: Receiver<Event>,
    acks: Receiver<AckRecord>,
    tick: Interval,
    started: bool,
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.st.feeds_open.fetch_sub(1, Ordering::Relaxed);
    }
}

fn lagged(n: u64) -> Sse {
    Sse::default()
        .event("lagged")
        .data(json!({ "missed": n }).to_string())
}

impl Feed {
    async fn next(&mut self) -> Option<Sse> {
        if !self.started {
            self.started = true;
            let ka = self.st.config.keep_alive.as_secs();
            return Some(
                Sse::default()
                    .event("ready")
                    .retry(RETRY)
                    .data(json!({ "keep_alive_s": ka }).to_string()),
            );
        }
        let st = self.st.clone();
        tokio::select! {
            biased;
            _ = st.stop.cancelled() => None,
            r = self.events.recv() => match r {
                Ok(e) => match serde_json::to_string(&e) {
                    Ok(text) => Some(Sse::default().event("event").id(e.id.clone()).data(text)),
                    Err(err) => {
                        tracing::error!(event = %e.id, "event not sent to the live feed: {err}");
                        Some(Sse::default().comment("an event could not be encoded"))
                    }
                },
                Err(RecvError::Lagged(n)) => Some(lagged(n)),
                Err(RecvError::Closed) => None,
            },
            r = self.acks.recv() => match r {
                Ok(a) => Some(
                    Sse::default()
                        .event("ack")
                        .data(super::ack_json(&st, &a).to_string()),
                ),
                Err(RecvError::Lagged(n)) => Some(lagged(n)),
                Err(RecvError::Closed) => None,
            },
            _ = self.tick.tick() => {
                st.sessions.lookup(&self.user.key)?;
                Some(Sse::default().comment("keep-alive"))
            }
        }
    }
}

/// The live feed (guard area).
pub(crate) async fn stream(State(st): State<Shared>, me: Me) -> Response {
    let ka = st.config.keep_alive.max(Duration::from_millis(100));
    let mut tick = interval_at(tokio::time::Instant::now() + ka, ka);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    st.feeds_open.fetch_add(1, Ordering::Relaxed);
    let feed = Feed {
        events: st.village.subscribe(),
        acks: st.acks.subscribe(),
        st,
        user: me.0,
        tick,
        started: false,
    };
    let stream = futures_util::stream::unfold(feed, |mut f| async move {
        let ev = f.next().await?;
        Some((Ok::<_, Infallible>(ev), f))
    });
    let mut res = SseResponse::new(stream).into_response();
    // nginx and similar proxies must not buffer the stream
    res.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    res.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store"),
    );
    res
}
