//! `POST /api/v1/messages`: a send through any phone or adapter, stored as an action
//! and carried out by the outbox like a handler's answer. The caller's
//! `Idempotency-Key` makes the action's key, so a retried request finds the stored
//! action and sends nothing new.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiError, ApiJson, ErrorBody, PREFIX};
use crate::event::{Action, Attachment};
use crate::runtime::Runtime;

/// The longest idempotency key taken (a UUID is 36 characters).
const MAX_KEY: usize = 255;

/// A message to send.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// The phone or adapter to send through, by its name in `tapwire.toml`.
    pub target: String,
    /// The conversation on that source (a WeChat chat's name, a platform's chat id).
    pub conversation: String,
    /// The text; may be empty when there are attachments.
    #[serde(default)]
    pub text: String,
    /// Images or files sent after the text, as a handler's actions carry them.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub attachments: Vec<Attachment>,
}

/// The action a send became.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// The action's id.
    pub id: String,
    /// Where its status is read: `GET` it.
    pub status_url: String,
    /// True when the idempotency key was seen before: nothing new was sent.
    pub replayed: bool,
}

/// Sends a message through a phone or an adapter, through the outbox.
#[utoipa::path(
    post,
    path = "/messages",
    operation_id = "send_message",
    tag = "messages",
    request_body = SendRequest,
    params(
        ("Idempotency-Key" = Option<String>, Header,
         description = "Up to 255 characters; the same key again returns the same action and sends nothing")
    ),
    responses(
        (status = 202, description = "Stored in the outbox (or found stored, with `replayed`)", body = Accepted),
        (status = 400, description = "A bad request, naming the field", body = ErrorBody),
        (status = 401, description = "No or a wrong bearer token", body = ErrorBody),
        (status = 404, description = "No phone or adapter by that name", body = ErrorBody),
        (status = 409, description = "The key was used for a different message", body = ErrorBody),
    )
)]
pub async fn send(
    State(runtime): State<Arc<Runtime>>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<SendRequest>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let key = idempotency_key(&headers)?;
    if request.target.is_empty() {
        return Err(ApiError::invalid(
            "target",
            "target must name a phone or adapter",
        ));
    }
    if request.conversation.is_empty() {
        return Err(ApiError::invalid(
            "conversation",
            "conversation must not be empty",
        ));
    }
    if request.text.is_empty() && request.attachments.is_empty() {
        return Err(ApiError::invalid(
            "text",
            "nothing to send: give text or attachments",
        ));
    }
    if runtime.adapter(&request.target).is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_target",
            format!("no phone or adapter named {:?}", request.target),
        ));
    }
    let action = Action::Send {
        target: request.target,
        conversation: request.conversation,
        text: request.text,
        attachments: request.attachments,
    };
    // Namespaced so that no caller's key can meet a handler's event-derived key.
    let (id, fresh) = runtime
        .submit(&format!("api:{key}"), action.clone())
        .await?;
    if !fresh {
        let stored = runtime.store().action(&id).await?;
        if stored.is_some_and(|record| record.action.action != action) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_conflict",
                "this Idempotency-Key was used for a different message",
            ));
        }
    }
    tracing::info!(action = %id, replayed = !fresh, "API send stored");
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            status_url: format!("{PREFIX}/actions/{id}"),
            id,
            replayed: !fresh,
        }),
    ))
}

/// The caller's key, or a fresh random one (a request without a key is never a retry).
fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    const FIELD: &str = "Idempotency-Key";
    match headers.get(FIELD) {
        Some(value) => {
            let key = value
                .to_str()
                .map_err(|_| ApiError::invalid(FIELD, "must be visible ASCII"))?
                .trim();
            if key.is_empty() || key.len() > MAX_KEY {
                return Err(ApiError::invalid(
                    FIELD,
                    format!("must be 1 to {MAX_KEY} characters"),
                ));
            }
            Ok(key.to_string())
        }
        None => {
            let mut bytes = [0u8; 16];
            getrandom::fill(&mut bytes).map_err(|e| {
                tracing::error!(error = %e, "no randomness for an idempotency key");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "cannot make an idempotency key; send one",
                )
            })?;
            Ok(format!("random:{}", hex::encode(bytes)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_taken_as_given_or_made_up_when_missing() {
        let mut headers = HeaderMap::new();
        let a = idempotency_key(&headers).expect("made up");
        let b = idempotency_key(&headers).expect("made up");
        assert_ne!(a, b, "two requests without a key are two sends");
        headers.insert("Idempotency-Key", "order-17".parse().expect("header"));
        assert_eq!(idempotency_key(&headers).expect("given"), "order-17");
        headers.insert("Idempotency-Key", "x".repeat(256).parse().expect("header"));
        let error = idempotency_key(&headers).expect_err("too long");
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
    }
}
