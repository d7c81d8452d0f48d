//! A phone's live view: `GET /api/v1/phones/{name}/live` streams each screen its actor
//! reads and each message it read or sent, as server-sent events; `GET
//! /api/v1/phones/{name}/screen.png` is the last screenshot. Opening the stream is what
//! makes the phone take screenshots at all ([`crate::live`]): closing the last one stops
//! them.
//!
//! Server-sent events rather than a WebSocket: the flow is one way, `EventSource`
//! reconnects by itself, and it is plain HTTP through any proxy. `EventSource` cannot set
//! an `Authorization` header, which is why the API also takes the dashboard's cookie.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use tapwire_device_agent::agent::Observation;
use tokio::sync::broadcast;

use super::{ApiError, ErrorBody, PREFIX};
use crate::activity::Activity;
use crate::live::{self, Watch};
use crate::runtime::Runtime;

/// An observation as the stream sends it: what was read, the boxes, and where its
/// screenshot is (the URL changes with each one, so a browser never shows a cached one).
fn screen_json(observation: &Observation) -> serde_json::Value {
    let mut json = serde_json::to_value(observation).unwrap_or_default();
    if observation.screenshot.is_some()
        && let Some(fields) = json.as_object_mut()
    {
        fields.insert(
            "screenshot".into(),
            format!(
                "{PREFIX}/phones/{}/screen.png?at={}",
                urlencode(&observation.device),
                observation.at_ms
            )
            .into(),
        );
    }
    json
}

/// Percent-encodes a path segment (a serial such as `127.0.0.1:5555` is safe as is; a
/// name with a slash or a space is not).
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b':' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn about_phone(activity: &Activity, phone: &str) -> bool {
    match activity {
        Activity::Received { device, .. }
        | Activity::Replied { device, .. }
        | Activity::ReplyFailed { device, .. }
        | Activity::Device { device, .. } => device == phone,
        Activity::Prepared { .. } => false,
    }
}

struct Streaming {
    /// Held for as long as the stream is open: the phone takes screenshots meanwhile.
    _watch: Watch,
    first: Option<Arc<Observation>>,
    screens: broadcast::Receiver<Arc<Observation>>,
    activity: broadcast::Receiver<Activity>,
    phone: String,
}

enum Next {
    Screen(Arc<Observation>),
    Activity(Activity),
    Skip,
    End,
}

fn sse(name: &str, data: &impl serde::Serialize) -> SseEvent {
    SseEvent::default()
        .event(name)
        .json_data(data)
        // Our own types always serialise; an empty event is what a failure would leave.
        .unwrap_or_default()
}

/// The last screen first (if the phone was read before), then each new screen and each
/// message the phone read or sent, until the client goes or the phone's view does.
fn live_stream(state: Streaming) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    futures_util::stream::unfold(state, |mut state| async move {
        if let Some(first) = state.first.take() {
            return Some((Ok(sse("screen", &screen_json(&first))), state));
        }
        loop {
            let next = tokio::select! {
                screen = state.screens.recv() => match screen {
                    Ok(screen) => Next::Screen(screen),
                    Err(broadcast::error::RecvError::Lagged(_)) => Next::Skip,
                    Err(broadcast::error::RecvError::Closed) => Next::End,
                },
                activity = state.activity.recv() => match activity {
                    Ok(activity) if about_phone(&activity, &state.phone) => Next::Activity(activity),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => Next::Skip,
                    Err(broadcast::error::RecvError::Closed) => Next::End,
                },
            };
            let event = match next {
                Next::Screen(screen) => sse("screen", &screen_json(&screen)),
                Next::Activity(activity) => sse("activity", &activity),
                Next::Skip => continue,
                Next::End => return None,
            };
            return Some((Ok(event), state));
        }
    })
}

fn unknown_phone(name: &str) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "unknown_phone",
        format!("no phone {name:?} runs here"),
    )
}

/// A phone's screens and messages, live (`text/event-stream`).
///
/// Events: `screen` (JSON: `kind`, `title`, `rows`, `messages`, `boxes` with `bounds`
/// `[left, top, right, bottom]` in screen pixels, `size` `[width, height]`, `screenshot`
/// the URL of its PNG) each time the phone's screen is read and shows something new;
/// `activity` (JSON, `activity`: `received`, `replied`, `reply_failed`, `device`) each time
/// it reads a new message, sends one or changes state.
#[utoipa::path(
    get,
    path = "/phones/{name}/live",
    operation_id = "phone_live",
    tag = "phones",
    params(("name" = String, Path, description = "The phone's name (its serial)")),
    responses(
        (status = 200, description = "Server-sent events: `screen` and `activity`", content_type = "text/event-stream", body = String),
        (status = 401, description = "No or a wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such phone", body = ErrorBody),
    )
)]
pub async fn live(
    State(runtime): State<Arc<Runtime>>,
    Path(name): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let phone = live::find(&name)
        .filter(|_| runtime.adapter(&name).is_some())
        .ok_or_else(|| unknown_phone(&name))?;
    let activity = runtime.subscribe();
    let (watch, screens) = phone.watch();
    tracing::debug!(phone = %name, watchers = phone.watchers(), "live view opened");
    let state = Streaming {
        _watch: watch,
        first: phone.last_screenshot().or_else(|| phone.last()),
        screens,
        activity,
        phone: name,
    };
    Ok(Sse::new(live_stream(state)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The phone's last screenshot (taken only while a live view is open).
#[utoipa::path(
    get,
    path = "/phones/{name}/screen.png",
    operation_id = "phone_screenshot",
    tag = "phones",
    params(
        ("name" = String, Path, description = "The phone's name (its serial)"),
        ("at" = Option<u64>, Query, description = "Ignored: the live stream adds it so each screenshot has a URL of its own"),
    ),
    responses(
        (status = 200, description = "The last screenshot", content_type = "image/png", body = Vec<u8>),
        (status = 401, description = "No or a wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such phone, or no screenshot yet", body = ErrorBody),
    )
)]
pub async fn screenshot(Path(name): Path<String>) -> Result<Response, ApiError> {
    let phone = live::find(&name).ok_or_else(|| unknown_phone(&name))?;
    let Some(png) = phone.last_png().await else {
        return Err(ApiError::not_found(format!(
            "no screenshot of {name:?} yet: one is taken while a live view is open"
        )));
    };
    let (_, png) = png.map_err(|error| {
        tracing::warn!(phone = %name, %error, "the phone's frame could not be encoded as PNG");
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the screenshot could not be encoded; see the controller's log",
        )
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        png.as_ref().clone(),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_encoded_for_the_screenshot_url() {
        assert_eq!(urlencode("127.0.0.1:5555"), "127.0.0.1:5555");
        assert_eq!(urlencode("my phone/1"), "my%20phone%2F1");
    }
}
