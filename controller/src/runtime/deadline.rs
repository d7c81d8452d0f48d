//! Reply deadlines: an answer ready within the source's `ack_after` goes out as it is;
//! slower work is acknowledged at once and its result pushed when ready; work still
//! running at `give_up_after` is cancelled and the sender told.

use std::future::Future;
use std::time::Duration;

use super::Runtime;
use crate::adapter::{Answering, ReplyTiming};
use crate::event::{Action, Event, types};
use crate::handler::{HandlerError, Outcome};
use crate::store::StoreError;

impl Runtime {
    /// Runs the handlers under `timing`. Cancelling drops the future, and with it its
    /// HTTP request or plugin call. `None` means it was cancelled.
    pub(super) async fn within_deadlines(
        &self,
        event: &Event,
        timing: &ReplyTiming,
        work: impl Future<Output = Result<Outcome, HandlerError>>,
    ) -> Result<Option<Result<Outcome, HandlerError>>, StoreError> {
        tokio::pin!(work);
        let ack_after = Duration::from_millis(timing.ack_after_ms);
        let give_up = Duration::from_millis(timing.give_up_after_ms.max(timing.ack_after_ms));
        if let Ok(result) = tokio::time::timeout(ack_after, &mut work).await {
            return Ok(Some(result));
        }
        let waiting = waiting_sender(event);
        if let Some(conversation) = &waiting {
            tracing::info!(event = %event.id, after_ms = timing.ack_after_ms, "slow answer: acknowledged, result follows");
            self.interim(event, "ack", conversation, &timing.ack_text)
                .await?;
        }
        match tokio::time::timeout(give_up - ack_after, &mut work).await {
            Ok(result) => Ok(Some(result)),
            Err(_) => {
                tracing::warn!(event = %event.id, after_ms = timing.give_up_after_ms, "work cancelled at the hard limit");
                if let Some(conversation) = &waiting {
                    self.interim(event, "timeout", conversation, &timing.timeout_text)
                        .await?;
                }
                Ok(None)
            }
        }
    }

    async fn interim(
        &self,
        event: &Event,
        tag: &str,
        conversation: &str,
        text: &str,
    ) -> Result<(), StoreError> {
        let action = Action::send(event.source.clone(), conversation, text);
        if let Some(stored) = self.store.add_interim_action(event, tag, &action).await? {
            if let Some(adapter) = self.outbox.adapter(&event.source) {
                let action = stored.id.as_str();
                adapter.answering(
                    event,
                    match tag {
                        "ack" => Answering::Acknowledged { action },
                        _ => Answering::Answer { action, last: true },
                    },
                );
            }
            self.outbox.dispatch(stored).await?;
        }
        Ok(())
    }
}

/// The conversation of someone waiting for an answer, if the event has one.
fn waiting_sender(event: &Event) -> Option<String> {
    let waiting = event.event_type == types::MESSAGE_RECEIVED
        && event.sender.as_ref().is_some_and(|s| !s.is_self);
    waiting
        .then(|| event.conversation.as_ref().map(|c| c.id.clone()))
        .flatten()
}
