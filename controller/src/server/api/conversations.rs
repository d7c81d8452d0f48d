//! `GET /api/v1/conversations` (each source's conversations, the most recently active
//! first) and `GET /api/v1/conversations/{source}/{id}/messages` (a conversation's recent
//! messages in and answers out), read from the store.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, ApiQuery, ErrorBody};
use crate::event::Action;
use crate::runtime::Runtime;
use crate::store::views::{Exchanged, Views};

/// The most a page may ask for at once.
const MAX_LIMIT: usize = 500;

/// One conversation of one source.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationView {
    /// The phone or adapter it belongs to.
    pub source: String,
    /// Its id on that source (a chat's name on a phone).
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// When a message last came in or went out (RFC 3339).
    pub last_activity: String,
    /// Events stored for it.
    pub events: u64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this source's conversations.
    pub source: Option<String>,
    /// At most this many (100 by default, 500 at most).
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MessagesQuery {
    /// The last this many messages (50 by default, 500 at most).
    pub limit: Option<usize>,
}

/// A message of a conversation.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    /// `in` (an event: received, or read off the phone) or `out` (an action sent or to
    /// be sent).
    pub direction: String,
    /// The event's or the action's id.
    pub id: String,
    /// For `in`: the event type (`message.received`, or `message.sent` for what the
    /// phone's owner wrote).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    pub text: String,
    /// For `in`: `pending`, `handled` or `dead`; for `out`: `pending`, `dispatched`,
    /// `done` or `failed`.
    pub status: String,
    /// When it was stored (RFC 3339).
    pub at: String,
}

fn views(runtime: &Runtime) -> Result<&dyn Views, ApiError> {
    runtime.store().views().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "unsupported",
            "this storage backend cannot list conversations",
        )
    })
}

fn limit(given: Option<usize>, default: usize) -> Result<usize, ApiError> {
    match given {
        None => Ok(default),
        Some(0) => Err(ApiError::invalid("limit", "limit must be at least 1")),
        Some(n) if n > MAX_LIMIT => Err(ApiError::invalid(
            "limit",
            format!("limit must be at most {MAX_LIMIT}"),
        )),
        Some(n) => Ok(n),
    }
}

/// The conversations, the most recently active first.
#[utoipa::path(
    get,
    path = "/conversations",
    operation_id = "list_conversations",
    tag = "conversations",
    params(ListQuery),
    responses(
        (status = 200, description = "Conversations, the most recently active first", body = Vec<ConversationView>),
        (status = 400, description = "A bad parameter, named", body = ErrorBody),
        (status = 401, description = "No or a wrong bearer token", body = ErrorBody),
    )
)]
pub async fn list(
    State(runtime): State<Arc<Runtime>>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Vec<ConversationView>>, ApiError> {
    let limit = limit(query.limit, 100)?;
    let listed = views(&runtime)?
        .conversations(query.source.as_deref(), limit)
        .await?;
    Ok(Json(
        listed
            .into_iter()
            .map(|c| ConversationView {
                source: c.source,
                id: c.conversation,
                title: c.title,
                last_activity: c.last_activity,
                events: c.events,
            })
            .collect(),
    ))
}

/// A conversation's recent messages in and answers out, oldest first.
#[utoipa::path(
    get,
    path = "/conversations/{source}/{id}/messages",
    operation_id = "list_conversation_messages",
    tag = "conversations",
    params(
        ("source" = String, Path, description = "The phone or adapter"),
        ("id" = String, Path, description = "The conversation's id on it (URL-encoded)"),
        MessagesQuery,
    ),
    responses(
        (status = 200, description = "The last messages, oldest first", body = Vec<MessageView>),
        (status = 400, description = "A bad parameter, named", body = ErrorBody),
        (status = 401, description = "No or a wrong bearer token", body = ErrorBody),
    )
)]
pub async fn messages(
    State(runtime): State<Arc<Runtime>>,
    Path((source, id)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<MessagesQuery>,
) -> Result<Json<Vec<MessageView>>, ApiError> {
    let limit = limit(query.limit, 50)?;
    let found = views(&runtime)?
        .conversation_messages(&source, &id, limit)
        .await?;
    Ok(Json(found.into_iter().map(view).collect()))
}

fn view(exchanged: Exchanged) -> MessageView {
    match exchanged {
        Exchanged::In { event, status, at } => MessageView {
            direction: "in".into(),
            text: event.text().unwrap_or_default(),
            sender: event
                .sender
                .as_ref()
                .map(|s| s.display_name.clone().unwrap_or_else(|| s.id.clone())),
            event_type: Some(event.event_type),
            id: event.id,
            status,
            at,
        },
        Exchanged::Out {
            id,
            action,
            status,
            at,
        } => {
            let Action::Send { text, .. } = action;
            MessageView {
                direction: "out".into(),
                id,
                event_type: None,
                sender: None,
                text,
                status: status.as_str().into(),
                at,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_bounded_and_named() {
        assert_eq!(limit(None, 50).expect("default"), 50);
        assert_eq!(limit(Some(7), 50).expect("given"), 7);
        for bad in [0, MAX_LIMIT + 1] {
            let error = limit(Some(bad), 50).expect_err("refused");
            assert_eq!(error.status(), StatusCode::BAD_REQUEST);
        }
    }
}
