//! `GET /api/v1/actions/{id}`: where an action is in its life (a send asked for through
//! the API, or any handler's answer).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiError, ErrorBody};
use crate::event::Action;
use crate::runtime::Runtime;
use crate::store::ActionRecord;

/// An action and how it has fared.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionView {
    pub id: String,
    /// `pending` (stored, not yet taken), `dispatched` (handed to its adapter),
    /// `done` or `failed`.
    pub status: String,
    pub target: String,
    pub conversation: String,
    pub text: String,
    pub attachments: usize,
    /// The last failure, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub attempts: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// An action's status.
#[utoipa::path(
    get,
    path = "/actions/{id}",
    operation_id = "get_action",
    tag = "actions",
    params(("id" = String, Path, description = "The action's id, as a send answered it")),
    responses(
        (status = 200, description = "The action", body = ActionView),
        (status = 401, description = "No or a wrong bearer token", body = ErrorBody),
        (status = 404, description = "No action with that id", body = ErrorBody),
    )
)]
pub async fn get(
    State(runtime): State<Arc<Runtime>>,
    Path(id): Path<String>,
) -> Result<Json<ActionView>, ApiError> {
    let Some(record) = runtime.store().action(&id).await? else {
        return Err(ApiError::not_found(format!("no action {id:?}")));
    };
    Ok(Json(ActionView::from(record)))
}

impl From<ActionRecord> for ActionView {
    fn from(record: ActionRecord) -> ActionView {
        let Action::Send {
            target,
            conversation,
            text,
            attachments,
        } = record.action.action;
        ActionView {
            id: record.action.id,
            status: record.action.status.as_str().to_string(),
            target,
            conversation,
            text,
            attachments: attachments.len(),
            error: record.error,
            attempts: record.attempts,
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

/// Sends a failed action again: it goes back to the outbox, which a running controller
/// sends from within a second. Any failed send: an answer a platform refused while it was
/// down, a subscription delivery whose receiver was away.
#[utoipa::path(
    post,
    path = "/actions/{id}/retry",
    operation_id = "retry_action",
    tag = "actions",
    params(("id" = String, Path, description = "The failed action's id")),
    responses(
        (status = 202, description = "Back in the outbox", body = ActionView),
        (status = 401, description = "No or a wrong bearer token", body = ErrorBody),
        (status = 404, description = "No failed action with that id", body = ErrorBody),
    )
)]
pub async fn retry(
    State(runtime): State<Arc<Runtime>>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<ActionView>), ApiError> {
    if !runtime.store().retry_action(&id).await? {
        return Err(ApiError::not_found(format!("no failed action {id:?}")));
    }
    let Some(record) = runtime.store().action(&id).await? else {
        return Err(ApiError::not_found(format!("no action {id:?}")));
    };
    Ok((StatusCode::ACCEPTED, Json(ActionView::from(record))))
}
