//! Passive replies: an answer carried back in the HTTP response to the callback that
//! asked, where the platform allows one (a WeCom app's 被动回复, document 90241).
//!
//! Why bother when the message API can always send: an answer in the response needs no
//! access token, counts against no API quota, and reaches members even where the API is
//! closed to the caller (WeCom apps created since mid-2022 may only call it from their
//! configured trusted IPs, which a desktop behind a home line rarely has).
//!
//! How a reply finds its way: the callback handler stores the event and waits here for
//! at most its budget. The runtime tells the adapter which action answers the event
//! ([`super::Answering`]) before it is delivered; when the outbox delivers that action,
//! the adapter hands its text to the waiting handler instead of calling the API, and the
//! outbox records it sent as for any delivery. An answer that comes after the budget, or a
//! handler gone (the platform hung up), leaves the action to the API. Only the first
//! message of one action goes back this way: a response holds one message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::oneshot;

use super::Answering;

#[derive(Debug)]
struct Waiter {
    /// Which [`Wait`] this is, so an older one dropped late leaves a newer one be.
    serial: u64,
    answer: oneshot::Sender<String>,
    /// The action the runtime said answers the event, once it has.
    action: Option<String>,
}

#[derive(Debug, Default)]
struct Table {
    /// By event id.
    waiting: HashMap<String, Waiter>,
    /// Action id to event id, for the waiters that know their action.
    actions: HashMap<String, String>,
    serials: u64,
    /// Callbacks are answered without waiting, the table being full (logged once per spell).
    shedding: bool,
}

impl Table {
    /// Takes out the waiter of `event` if it is still the wait numbered `serial`.
    fn forget(&mut self, event: &str, serial: u64) -> bool {
        let ours = self
            .waiting
            .get(event)
            .is_some_and(|waiter| waiter.serial == serial);
        if ours {
            self.remove(event);
        }
        ours
    }

    fn remove(&mut self, event: &str) -> Option<Waiter> {
        let waiter = self.waiting.remove(event)?;
        if let Some(action) = &waiter.action {
            self.actions.remove(action);
        }
        Some(waiter)
    }
}

/// How many callbacks of one adapter may wait for their answer at once. Each holds its
/// connection open for up to the budget (4 s for WeCom); when answers lag behind the
/// callbacks (a burst past what the store and handlers keep up with), waiting ones pile up
/// by the thousand and their connections and requests by the hundred megabytes. Past this
/// many, a callback is answered as soon as its event is stored, and its answer goes
/// through the platform's API like any late one: nothing is lost, the memory stays
/// bounded, and a healthy server (answers within milliseconds) never comes near it.
/// 2 048 is about 0.4 s of callbacks at 5 000 a second, far inside WeCom's 5 s: at 512
/// (0.1 s) one stall of the store's checkpoint tipped a 5 000/s run into shedding, and a
/// shed callback costs more (an API call and its record) than a passive answer, so the
/// server fell further behind (docs/benchmarks.md, session 10). A waiting callback holds
/// some 20 KiB (session 7: 640 MiB with about 30 000 outstanding).
pub const MAX_WAITING: usize = 2048;

/// The callbacks of one adapter that are waiting for their answer.
#[derive(Debug, Clone)]
pub struct Passive {
    table: Arc<Mutex<Table>>,
    adapter: Arc<str>,
    max_waiting: usize,
}

impl Default for Passive {
    fn default() -> Self {
        Passive::new()
    }
}

impl Passive {
    pub fn new() -> Passive {
        Passive::for_adapter("", MAX_WAITING)
    }

    /// The table of `adapter` (for logs and metrics), holding at most `max_waiting`.
    pub fn for_adapter(adapter: &str, max_waiting: usize) -> Passive {
        Passive {
            table: Arc::default(),
            adapter: Arc::from(adapter),
            max_waiting,
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // The table stays consistent at every unlock, so a panic elsewhere leaves it usable.
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts waiting for the answer to `event`; call before the event is handed to the
    /// runtime, so the runtime cannot answer before anyone listens. A second callback for
    /// an event already waited for (the platform's retry) does not wait: the first one
    /// gets the answer.
    pub fn wait(&self, event: &str) -> Wait {
        let mut table = self.table();
        let stand_aside = || Wait {
            passive: self.clone(),
            event: event.to_string(),
            serial: 0,
            receiver: None,
        };
        if table.waiting.contains_key(event) {
            return stand_aside();
        }
        if table.waiting.len() >= self.max_waiting {
            crate::telemetry::passive_skipped(&self.adapter);
            if !table.shedding {
                table.shedding = true;
                tracing::warn!(adapter = %self.adapter, waiting = table.waiting.len(), "answers lag behind callbacks: until fewer wait, callbacks are answered as soon as they are stored and their replies go through the API");
            }
            return stand_aside();
        }
        if table.shedding && table.waiting.len() < self.max_waiting / 2 {
            table.shedding = false;
            tracing::info!(adapter = %self.adapter, "answers keep up again: callbacks wait for their passive reply");
        }
        let (answer, receiver) = oneshot::channel();
        table.serials += 1;
        let serial = table.serials;
        table.waiting.insert(
            event.to_string(),
            Waiter {
                serial,
                answer,
                action: None,
            },
        );
        Wait {
            passive: self.clone(),
            event: event.to_string(),
            serial,
            receiver: Some(receiver),
        }
    }

    /// What the runtime says of the answer to `event`: its first answering action (an
    /// acknowledgement counts: it is the first thing the member sees) is the one that may
    /// go back passively; nothing answering ends the wait at once.
    pub fn answering(&self, event: &str, progress: Answering<'_>) {
        let mut table = self.table();
        let action = match progress {
            Answering::Acknowledged { action } | Answering::Answer { action, .. } => action,
            Answering::Unanswered => {
                // Dropping the sender wakes the handler to answer empty.
                table.remove(event);
                return;
            }
            Answering::Partial(_) => return,
        };
        let Some(waiter) = table.waiting.get_mut(event) else {
            return;
        };
        if waiter.action.is_none() {
            waiter.action = Some(action.to_string());
            table.actions.insert(action.to_string(), event.to_string());
        }
    }

    /// Hands `text`, the first message of `action`, to the callback waiting for it; gives
    /// it back when none is (too late, or never asked) so the caller sends it otherwise.
    pub fn hand(&self, action: &str, text: String) -> Result<(), String> {
        let waiter = {
            let mut table = self.table();
            let Some(event) = table.actions.get(action).cloned() else {
                return Err(text);
            };
            table.remove(&event)
        };
        match waiter {
            Some(waiter) => waiter.answer.send(text),
            None => Err(text),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table().waiting.len()
    }
}

/// One callback's wait for its answer. Dropped unanswered (the request was cancelled),
/// it takes itself out of the table, so a later delivery goes through the API.
#[derive(Debug)]
pub struct Wait {
    passive: Passive,
    event: String,
    serial: u64,
    /// None for a wait that only stands aside ([`Passive::wait`]).
    receiver: Option<oneshot::Receiver<String>>,
}

impl Wait {
    /// The answer, if it comes within `budget`.
    pub async fn answer(mut self, budget: Duration) -> Option<String> {
        let mut receiver = self.receiver.take()?;
        if let Ok(answered) = tokio::time::timeout(budget, &mut receiver).await {
            return answered.ok();
        }
        let still_waiting = self.passive.table().forget(&self.event, self.serial);
        if still_waiting {
            return None;
        }
        // A delivery took the waiter just as the budget ran out: its send is immediate.
        receiver.await.ok()
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        if self.receiver.is_some() {
            self.passive.table().forget(&self.event, self.serial);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn past_its_limit_a_callback_does_not_wait_and_its_answer_goes_elsewhere() {
        let passive = Passive::for_adapter("app", 2);
        let _first = passive.wait("e1");
        let _second = passive.wait("e2");
        let third = passive.wait("e3");
        assert_eq!(passive.len(), 2, "the third is not in the table");
        passive.answering(
            "e3",
            Answering::Answer {
                action: "a3",
                last: true,
            },
        );
        assert_eq!(passive.hand("a3", "hi".into()), Err("hi".into()));
        let started = tokio::time::Instant::now();
        assert_eq!(third.answer(BUDGET).await, None);
        assert!(started.elapsed() < BUDGET, "it answered at once");
        drop(_first);
        drop(_second);
        // Room again: the next one waits and gets its answer.
        let fourth = passive.wait("e4");
        passive.answering(
            "e4",
            Answering::Answer {
                action: "a4",
                last: true,
            },
        );
        assert_eq!(passive.hand("a4", "ok".into()), Ok(()));
        assert_eq!(fourth.answer(BUDGET).await, Some("ok".into()));
    }

    const BUDGET: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn the_answering_actions_first_message_goes_back_to_the_waiting_callback() {
        let passive = Passive::new();
        let wait = passive.wait("ev1");
        passive.answering(
            "ev1",
            Answering::Answer {
                action: "a1",
                last: true,
            },
        );
        assert_eq!(passive.hand("a1", "你好".into()), Ok(()));
        assert_eq!(wait.answer(BUDGET).await.as_deref(), Some("你好"));
        // Its second message has nobody waiting: it goes through the API.
        assert_eq!(passive.hand("a1", "再见".into()), Err("再见".into()));
        assert_eq!(passive.len(), 0);
    }

    #[tokio::test]
    async fn an_acknowledgement_goes_back_and_the_late_answer_does_not() {
        let passive = Passive::new();
        let wait = passive.wait("ev1");
        passive.answering("ev1", Answering::Acknowledged { action: "ack" });
        passive.answering(
            "ev1",
            Answering::Answer {
                action: "late",
                last: true,
            },
        );
        assert_eq!(passive.hand("late", "结果".into()), Err("结果".into()));
        assert_eq!(passive.hand("ack", "收到".into()), Ok(()));
        assert_eq!(wait.answer(BUDGET).await.as_deref(), Some("收到"));
    }

    #[tokio::test]
    async fn nothing_answering_ends_the_wait_at_once() {
        let passive = Passive::new();
        let wait = passive.wait("ev1");
        passive.answering("ev1", Answering::Unanswered);
        let started = std::time::Instant::now();
        assert_eq!(wait.answer(BUDGET).await, None);
        assert!(started.elapsed() < BUDGET);
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_after_the_budget_is_given_back_for_the_api() {
        let passive = Passive::new();
        let wait = passive.wait("ev1");
        passive.answering(
            "ev1",
            Answering::Answer {
                action: "a1",
                last: true,
            },
        );
        assert_eq!(wait.answer(Duration::from_millis(100)).await, None);
        assert_eq!(passive.hand("a1", "迟到".into()), Err("迟到".into()));
        assert_eq!(passive.len(), 0);
    }

    #[tokio::test]
    async fn a_cancelled_callback_leaves_nothing_behind() {
        let passive = Passive::new();
        let wait = passive.wait("ev1");
        passive.answering(
            "ev1",
            Answering::Answer {
                action: "a1",
                last: true,
            },
        );
        drop(wait);
        assert_eq!(passive.len(), 0);
        assert_eq!(passive.hand("a1", "x".into()), Err("x".into()));
    }

    #[tokio::test]
    async fn a_retried_callback_stands_aside_for_the_first() {
        let passive = Passive::new();
        let first = passive.wait("ev1");
        let retry = passive.wait("ev1");
        assert_eq!(retry.answer(BUDGET).await, None);
        assert_eq!(passive.len(), 1);
        passive.answering(
            "ev1",
            Answering::Answer {
                action: "a1",
                last: true,
            },
        );
        assert_eq!(passive.hand("a1", "好".into()), Ok(()));
        assert_eq!(first.answer(BUDGET).await.as_deref(), Some("好"));
    }

    #[tokio::test]
    async fn a_wait_that_ran_out_does_not_remove_a_later_one() {
        let passive = Passive::new();
        let first = passive.wait("ev1");
        let table_serial = passive.table().waiting["ev1"].serial;
        drop(first);
        let second = passive.wait("ev1");
        assert_ne!(passive.table().waiting["ev1"].serial, table_serial);
        passive.answering(
            "ev1",
            Answering::Answer {
                action: "a1",
                last: true,
            },
        );
        assert_eq!(passive.hand("a1", "好".into()), Ok(()));
        assert_eq!(second.answer(BUDGET).await.as_deref(), Some("好"));
    }

    #[tokio::test]
    async fn an_action_for_no_waiting_event_is_given_back() {
        let passive = Passive::new();
        passive.answering(
            "ev9",
            Answering::Answer {
                action: "a9",
                last: true,
            },
        );
        assert_eq!(passive.hand("a9", "x".into()), Err("x".into()));
    }
}
