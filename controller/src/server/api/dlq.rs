//! The dead-letter queue: `GET /api/v1/dlq`, `POST /api/v1/dlq/{id}/replay`,
//! `DELETE /api/v1/dlq/{id}`: what `tapwire dlq list|replay|drop` does, on the running
//! controller (a replay's answers go straight to its outbox).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiError, ErrorBody};
use crate::handler::HandlerError;
use crate::runtime::{Replayed, Runtime};

/// An event a handler gave up on.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterView {
    pub id: String,
    /// The handler that failed, the one a replay delivers to.
    pub handler: String,
    pub error: String,
    pub attempts: i64,
    pub created_at: String,
    /// The event as the handler received it.
    #[schema(value_type = Object)]
    pub event: crate::event::Event,
}

/// What a replay did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayResult {
    pub id: String,
    /// True when the handler took the event: the letter is closed.
    pub delivered: bool,
    /// The actions its answer put in the outbox.
    pub actions: Vec<String>,
    /// Why it failed again (the letter still waits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The dead letters waiting, oldest first.
#[utoipa::path(
    get,
    path = "/dlq",
    operation_id = "list_dead_letters",
    tag = "dlq",
    responses(
        (status = 200, description = "Dead letters, oldest first", body = Vec<DeadLetterView>),
        (status = 401, description = "No or a wrong bearer token", body = ErrorBody),
    )
)]
pub async fn list(
    State(runtime): State<Arc<Runtime>>,
) -> Result<Json<Vec<DeadLetterView>>, ApiError> {
    let letters = runtime.store().dead_letters().await?;
    Ok(Json(
        letters
            .into_iter()
            .map(|l| DeadLetterView {
                id: l.id,
                handler: l.handler,
                error: l.error,
                attempts: l.attempts,
                created_at: l.created_at,
                event: l.event,
            })
            .collect(),
    ))
}

/// Delivers a dead letter to its handler again, now.
#[utoipa::path(
    post,
    path = "/dlq/{id}/replay",
    operation_id = "replay_dead_letter",
    tag = "dlq",
    params(("id" = String, Path, description = "The dead letter's id")),
    responses(
        (status = 200, description = "Replayed: delivered, or failed again", body = ReplayResult),
        (status = 401, description = "No or a wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such dead letter waiting", body = ErrorBody),
        (status = 409, description = "Its handler is no longer configured", body = ErrorBody),
    )
)]
pub async fn replay(
    State(runtime): State<Arc<Runtime>>,
    Path(id): Path<String>,
) -> Result<Json<ReplayResult>, ApiError> {
    let letters = runtime.store().dead_letters().await?;
    let Some(letter) = letters.into_iter().find(|l| l.id == id) else {
        return Err(ApiError::not_found(format!(
            "no dead letter {id:?} waiting"
        )));
    };
    let replayed = runtime.replay(&letter).await.map_err(|error| match error {
        HandlerError::Store(e) => ApiError::from(e),
        HandlerError::Unknown(name) => ApiError::new(
            StatusCode::CONFLICT,
            "unknown_handler",
            format!("handler {name:?} is not in the config any more"),
        ),
        other => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            other.to_string(),
        ),
    })?;
    tracing::info!(letter = %id, ?replayed, "dead letter replayed through the API");
    Ok(Json(match replayed {
        Replayed::Delivered { actions } => ReplayResult {
            id,
            delivered: true,
            actions,
            error: None,
        },
        Replayed::FailedAgain { error } => ReplayResult {
            id,
            delivered: false,
            actions: Vec::new(),
            error: Some(error),
        },
    }))
}

/// Forgets a dead letter for good.
#[utoipa::path(
    delete,
    path = "/dlq/{id}",
    operation_id = "drop_dead_letter",
    tag = "dlq",
    params(("id" = String, Path, description = "The dead letter's id")),
    responses(
        (status = 204, description = "Dropped"),
        (status = 401, description = "No or a wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such dead letter waiting", body = ErrorBody),
    )
)]
pub async fn drop(
    State(runtime): State<Arc<Runtime>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if runtime.store().drop_dead_letter(&id).await? {
        tracing::info!(letter = %id, "dead letter dropped through the API");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "no dead letter {id:?} waiting"
        )))
    }
}
