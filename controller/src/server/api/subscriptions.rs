//! Outbound subscriptions ([`crate::subscription`]): `GET|POST /api/v1/subscriptions`,
//! `GET|DELETE /api/v1/subscriptions/{id}`, and `GET …/{id}/failures`, the deliveries
//! that failed for good (each sent again by `POST /api/v1/actions/{id}/retry`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::actions::ActionView;
use super::{ApiError, ApiJson, ErrorBody};
use crate::event::now_rfc3339;
use crate::runtime::Runtime;
use crate::store::StoredSubscription;
use crate::subscription::{SIGNATURE_HEADER, SubscriptionError, Subscriptions, TARGET};

/// What a program asks to be told of.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    /// Where events are POSTed (http or https).
    pub url: String,
    /// Event types: exact (`message.received`), a namespace (`message.*`) or `*`.
    pub events: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionView {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: String,
}

impl From<StoredSubscription> for SubscriptionView {
    fn from(s: StoredSubscription) -> SubscriptionView {
        SubscriptionView {
            id: s.id,
            url: s.url,
            events: s.events,
            created_at: s.created_at,
        }
    }
}

/// A new subscription with the secret its receiver checks signatures with, shown this
/// once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedSubscription {
    #[serde(flatten)]
    pub subscription: SubscriptionView,
    /// HMAC-SHA256 key of the `X-Tapwire-Signature-256` header (`sha256=<hex>` over the
    /// body).
    pub secret: String,
    /// The header that carries the signature.
    pub signature_header: String,
}

fn in_force(runtime: &Runtime) -> Result<&Arc<Subscriptions>, ApiError> {
    runtime.subscriptions().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "subscriptions_off",
            "outbound subscriptions are off: put a signing key in the environment variable \
             [server.api] subscription_key_env names (TAPWIRE_SUBSCRIPTION_KEY by default) and restart",
        )
    })
}

/// The subscriptions, oldest first.
#[utoipa::path(
    get,
    path = "/subscriptions",
    operation_id = "list_subscriptions",
    tag = "subscriptions",
    responses(
        (status = 200, description = "The subscriptions", body = Vec<SubscriptionView>),
        (status = 401, description = "No or a wrong bearer token", body = ErrorBody),
        (status = 409, description = "No signing key configured", body = ErrorBody),
    )
)]
pub async fn list(
    State(runtime): State<Arc<Runtime>>,
) -> Result<Json<Vec<SubscriptionView>>, ApiError> {
    let subscriptions = in_force(&runtime)?;
    Ok(Json(
        subscriptions.list().into_iter().map(Into::into).collect(),
    ))
}

/// Subscribes a URL to event types. Every matching event handled from now on is POSTed
/// to it, signed, retried, in order.
#[utoipa::path(
    post,
    path = "/subscriptions",
    operation_id = "create_subscription",
    tag = "subscriptions",
    request_body = NewSubscription,
    responses(
        (status = 201, description = "Subscribed; the secret is shown this once", body = CreatedSubscription),
        (status = 400, description = "A bad URL or event pattern, named", body = ErrorBody),
        (status = 401, description = "No or a wrong bearer token", body = ErrorBody),
        (status = 409, description = "No signing key configured", body = ErrorBody),
    )
)]
pub async fn create(
    State(runtime): State<Arc<Runtime>>,
    ApiJson(request): ApiJson<NewSubscription>,
) -> Result<(StatusCode, Json<CreatedSubscription>), ApiError> {
    let subscriptions = in_force(&runtime)?;
    let id = format!("sub_{}", hex::encode(random_bytes()?));
    let stored = StoredSubscription {
        id: id.clone(),
        url: request.url,
        events: request.events,
        created_at: now_rfc3339(),
    };
    match subscriptions.add(stored.clone()).await {
        Ok(()) => {}
        Err(SubscriptionError::Invalid(message)) => {
            let field = message.split(':').next().unwrap_or("body").to_string();
            return Err(ApiError::invalid(field, message));
        }
        Err(SubscriptionError::Store(error)) => return Err(error.into()),
    }
    tracing::info!(subscription = %id, events = ?stored.events, "subscription made");
    let secret = subscriptions.secret_for(&id);
    Ok((
        StatusCode::CREATED,
        Json(CreatedSubscription {
            subscription: stored.into(),
            secret,
            signature_header: SIGNATURE_HEADER.to_string(),
        }),
    ))
}

fn random_bytes() -> Result<[u8; 12], ApiError> {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).map_err(|e| {
        tracing::error!(error = %e, "no randomness for a subscription id");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "no randomness available",
        )
    })?;
    Ok(bytes)
}

/// One subscription.
#[utoipa::path(
    get,
    path = "/subscriptions/{id}",
    operation_id = "get_subscription",
    tag = "subscriptions",
    params(("id" = String, Path, description = "The subscription's id")),
    responses(
        (status = 200, description = "The subscription", body = SubscriptionView),
        (status = 401, description = "No or a wrong bearer token", body = ErrorBody),
        (status = 404, description = "No subscription with that id", body = ErrorBody),
        (status = 409, description = "No signing key configured", body = ErrorBody),
    )
)]
pub async fn get(
    State(runtime): State<Arc<Runtime>>,
    Path(id): Path<String>,
) -> Result<Json<SubscriptionView>, ApiError> {
    in_force(&runtime)?
        .get(&id)
        .map(|s| Json(s.into()))
        .ok_or_else(|| ApiError::not_found(format!("no subscription {id:?}")))
}

/// Ends a subscription. Deliveries still queued for it fail, saying it was deleted.
#[utoipa::path(
    delete,
    path = "/subscriptions/{id}",
    operation_id = "delete_subscription",
    tag = "subscriptions",
    params(("id" = String, Path, description = "The subscription's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or a wrong bearer token", body = ErrorBody),
        (status = 404, description = "No subscription with that id", body = ErrorBody),
        (status = 409, description = "No signing key configured", body = ErrorBody),
    )
)]
pub async fn delete(
    State(runtime): State<Arc<Runtime>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if in_force(&runtime)?.remove(&id).await? {
        tracing::info!(subscription = %id, "subscription deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no subscription {id:?}")))
    }
}

/// Deliveries to this subscription that failed for good, newest first (at most 100).
#[utoipa::path(
    get,
    path = "/subscriptions/{id}/failures",
    operation_id = "list_subscription_failures",
    tag = "subscriptions",
    params(("id" = String, Path, description = "The subscription's id")),
    responses(
        (status = 200, description = "Failed deliveries; retry one with POST /actions/{id}/retry", body = Vec<ActionView>),
        (status = 401, description = "No or a wrong bearer token", body = ErrorBody),
        (status = 409, description = "No signing key configured", body = ErrorBody),
    )
)]
pub async fn failures(
    State(runtime): State<Arc<Runtime>>,
    Path(id): Path<String>,
) -> Result<Json<Vec<ActionView>>, ApiError> {
    in_force(&runtime)?;
    let failed = runtime
        .store()
        .failed_actions(Some(TARGET), Some(&id), 100)
        .await?;
    Ok(Json(failed.into_iter().map(ActionView::from).collect()))
}
