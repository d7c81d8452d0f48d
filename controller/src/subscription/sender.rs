//! Posts subscription deliveries: the outbox hands each one here as it hands a reply to
//! a platform's adapter, so order, claims, retries and the record of how it ended are
//! the outbox's. What is particular is the request: the event's JSON as the body, signed.
//!
//! Headers, beside `Content-Type: application/json`:
//! - `X-Tapwire-Event`: the event's type;
//! - `X-Tapwire-Delivery`: the delivery's (action's) id, the same on every retry and
//!   after a restart, so a receiver drops a repeat by it;
//! - `X-Tapwire-Subscription`: the subscription's id;
//! - `X-Tapwire-Signature-256`: `sha256=` + hex HMAC-SHA256 over the body.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Client;

use super::{SIGNATURE_HEADER, Subscriptions, TARGET, signature};
use crate::adapter::call::{call, check_status};
use crate::adapter::{Adapter, Delivered, Outgoing, SendError};
use crate::format::TextFormat;

/// How long one POST may take: a receiver that hangs must not hold its lane for long.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Subscriptions served at once; each keeps its own order.
const PARALLEL: usize = 8;

pub struct SubscriptionSender {
    subscriptions: Arc<Subscriptions>,
    client: Client,
}

impl SubscriptionSender {
    pub fn new(subscriptions: Arc<Subscriptions>) -> Result<SubscriptionSender, String> {
        Ok(SubscriptionSender {
            subscriptions,
            client: crate::http::client(TIMEOUT)?,
        })
    }
}

#[derive(serde::Deserialize)]
struct EventType {
    #[serde(rename = "type")]
    event_type: String,
}

#[async_trait]
impl Adapter for SubscriptionSender {
    fn name(&self) -> &str {
        TARGET
    }

    fn platform(&self) -> &'static str {
        "subscription"
    }

    fn text_format(&self) -> TextFormat {
        TextFormat::Plain
    }

    fn parallel_sends(&self) -> usize {
        PARALLEL
    }

    async fn deliver(&self, outgoing: &Outgoing) -> Result<Delivered, SendError> {
        let id = &outgoing.conversation;
        let Some(subscription) = self.subscriptions.get(id) else {
            return Err(SendError::Permanent(format!(
                "subscription {id} was deleted before this delivery went out"
            )));
        };
        let body = outgoing.text.as_bytes();
        let event_type = serde_json::from_slice::<EventType>(body)
            .map(|e| e.event_type)
            .map_err(|e| {
                SendError::Permanent(format!(
                    "delivery {} holds no event: {e}",
                    outgoing.action_id
                ))
            })?;
        let request = self
            .client
            .post(&subscription.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Tapwire-Event", event_type)
            .header("X-Tapwire-Delivery", &outgoing.action_id)
            .header("X-Tapwire-Subscription", id)
            .header(
                SIGNATURE_HEADER,
                signature(&self.subscriptions.secret_for(id), body),
            )
            .body(outgoing.text.clone());
        let what = format!("subscription {id}");
        let answered = call(request, &what).await?;
        check_status(answered.status, &what).map_err(|error| match error {
            SendError::Retry { reason, .. } => SendError::Retry {
                reason,
                after: answered.retry_after(),
            },
            refused => refused,
        })?;
        Ok(Delivered::Sent)
    }
}
