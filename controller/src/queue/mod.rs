//! The event queue between the store and the handlers: one conversation's events are
//! handled in order, different conversations side by side, at most a set number at once.
//! An event is stored before it is queued, so a queue may forget on a crash: the restart
//! finds it pending in the store.
//!
//! Backends: [`local`] (in process, one lane per conversation). A backend is one file
//! implementing [`Queue`] plus one line in [`build`].

pub mod local;

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use serde::Deserialize;

use crate::event::Event;

pub use local::LocalQueue;

/// What the queue hands events to: the runtime, which routes and handles them.
#[async_trait]
pub trait Worker: Send + Sync + 'static {
    async fn work(&self, event: Event);
}

pub trait Queue: Send + Sync {
    /// Queues a stored event behind the others of its conversation. Callable from any
    /// thread (phones push from their own).
    fn push(&self, event: Event);
}

/// The lane an event belongs to: its source's conversation, or the source itself for
/// events without one (a device's status).
pub fn lane_of(event: &Event) -> String {
    match &event.conversation {
        Some(c) => format!("{}\u{1f}{}", event.source, c.id),
        None => event.source.clone(),
    }
}

/// `[queue]` of `tapwire.toml`: `type` picks the backend.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum QueueConfig {
    Local(local::LocalConfig),
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig::Local(local::LocalConfig::default())
    }
}

/// Builds the configured queue feeding `worker`. The queue holds the worker weakly: the
/// worker owns the queue, and when the worker goes, so does the queue's work.
pub fn build(config: &QueueConfig, worker: Weak<dyn Worker>) -> Arc<dyn Queue> {
    match config {
        QueueConfig::Local(local) => Arc::new(LocalQueue::new(local.concurrency, worker)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::event::test_message;

    /// Records what it worked on; `Slow` conversations take a while.
    #[derive(Default)]
    pub struct Recorder {
        pub done: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Worker for Recorder {
        async fn work(&self, event: Event) {
            let text = event.text().unwrap_or_default();
            if text.starts_with("slow") {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            self.done.lock().expect("lock").push(text);
        }
    }

    pub fn message(chat: &str, text: &str) -> Event {
        test_message("phone", chat, text, false)
    }

    /// The contract every backend keeps: a conversation in order, others not held up.
    pub async fn keeps_order_per_conversation(queue: Arc<dyn Queue>, recorder: Arc<Recorder>) {
        queue.push(message("Alice", "slow first"));
        queue.push(message("Alice", "second"));
        queue.push(message("Bob", "meanwhile"));
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while recorder.done.lock().expect("lock").len() < 3 {
            assert!(std::time::Instant::now() < deadline, "queue stalled");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let done = recorder.done.lock().expect("lock").clone();
        assert_eq!(done, ["meanwhile", "slow first", "second"]);
    }

    /// A second backend, as small as can be: a task per event, chained behind the
    /// previous one of its conversation (no bound on concurrency).
    struct ChainQueue {
        worker: Weak<dyn Worker>,
        tails: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
    }

    impl Queue for ChainQueue {
        fn push(&self, event: Event) {
            let lane = lane_of(&event);
            let mut tails = self.tails.lock().expect("lock");
            let before = tails.remove(&lane);
            let worker = self.worker.clone();
            let task = tokio::spawn(async move {
                if let Some(before) = before {
                    let _ = before.await;
                }
                if let Some(worker) = worker.upgrade() {
                    worker.work(event).await;
                }
            });
            tails.insert(lane, task);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_local_queue_keeps_the_contract() {
        let recorder = Arc::new(Recorder::default());
        let worker: Arc<dyn Worker> = recorder.clone();
        let queue = build(&QueueConfig::default(), Arc::downgrade(&worker));
        keeps_order_per_conversation(queue, recorder).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn another_backend_plugs_in_through_the_trait() {
        let recorder = Arc::new(Recorder::default());
        let worker: Arc<dyn Worker> = recorder.clone();
        let queue = Arc::new(ChainQueue {
            worker: Arc::downgrade(&worker),
            tails: Mutex::new(HashMap::new()),
        });
        keeps_order_per_conversation(queue, recorder).await;
    }
}
