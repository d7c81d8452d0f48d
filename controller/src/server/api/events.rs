//! `GET /api/v1/events/{id}`: where an event is (stored, handled, dead-lettered) and the
//! actions it led to.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiError, ErrorBody};
use crate::runtime::Runtime;

/// An event and how far it got.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub id: String,
    /// `pending` (stored, not handled yet), `handled`, or `dead` (in the dead-letter
    /// queue).
    pub status: String,
    /// When it was stored (RFC 3339).
    pub stored_at: String,
    /// The actions its handlers answered with, with their status.
    pub actions: Vec<EventAction>,
    #[schema(value_type = Object)]
    pub event: crate::event::Event,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventAction {
    pub id: String,
    pub status: String,
}

/// An event's status.
#[utoipa::path(
    get,
    path = "/events/{id}",
    operation_id = "get_event",
    tag = "events",
    params(("id" = String, Path, description = "The event's id")),
    responses(
        (status = 200, description = "The event", body = EventView),
        (status = 401, description = "No or a wrong bearer token", body = ErrorBody),
        (status = 404, description = "No event with that id", body = ErrorBody),
    )
)]
pub async fn get(
    State(runtime): State<Arc<Runtime>>,
    Path(id): Path<String>,
) -> Result<Json<EventView>, ApiError> {
    let views = runtime.store().views().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "unsupported",
            "this storage backend cannot show events",
        )
    })?;
    let Some(record) = views.event(&id).await? else {
        return Err(ApiError::not_found(format!("no event {id:?}")));
    };
    Ok(Json(EventView {
        id: record.event.id.clone(),
        status: record.status,
        stored_at: record.stored_at,
        actions: record
            .actions
            .into_iter()
            .map(|(id, status)| EventAction {
                id,
                status: status.as_str().into(),
            })
            .collect(),
        event: record.event,
    }))
}
