//! The in-process queue: one lane (a task and a channel) per conversation, created on its
//! first event and let go after a while idle; a semaphore bounds how many lanes work at
//! once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::{Semaphore, mpsc};

use super::{Queue, Worker, lane_of};
use crate::event::Event;

/// How long lanes with nothing to do stay alive before they are let go.
const LANE_IDLE: Duration = Duration::from_secs(30);

/// `[queue] type = "local"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalConfig {
    /// Conversations handled at the same time (one conversation is always in order).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
}

impl Default for LocalConfig {
    fn default() -> Self {
        LocalConfig {
            concurrency: default_concurrency(),
        }
    }
}

/// Lanes are tasks, not threads, and a lane waiting on a slow handler (an LLM) holds its
/// permit: a few dozen keep a busy bot's other conversations moving.
fn default_concurrency() -> usize {
    64
}

pub struct LocalQueue {
    shared: Arc<Shared>,
    /// Events are pushed from phone threads too, which are outside the async runtime.
    tokio: tokio::runtime::Handle,
}

struct Shared {
    worker: Weak<dyn Worker>,
    lanes: Mutex<HashMap<String, mpsc::UnboundedSender<Event>>>,
    permits: Arc<Semaphore>,
}

impl LocalQueue {
    /// Must be called inside a tokio runtime: lanes run on it.
    pub fn new(concurrency: usize, worker: Weak<dyn Worker>) -> LocalQueue {
        LocalQueue {
            shared: Arc::new(Shared {
                worker,
                lanes: Mutex::new(HashMap::new()),
                permits: Arc::new(Semaphore::new(concurrency.max(1))),
            }),
            tokio: tokio::runtime::Handle::current(),
        }
    }
}

impl Queue for LocalQueue {
    fn push(&self, event: Event) {
        let key = lane_of(&event);
        let mut lanes = lock(&self.shared.lanes);
        // Sending under the lock: a lane only leaves the map under it, when empty, so an
        // event can never land in a lane that is going away.
        if let Some(lane) = lanes.get(&key)
            && lane.send(event.clone()).is_ok()
        {
            return;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(event);
        lanes.insert(key.clone(), tx);
        self.tokio.spawn(run_lane(self.shared.clone(), key, rx));
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves the map intact.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

async fn run_lane(shared: Arc<Shared>, key: String, mut rx: mpsc::UnboundedReceiver<Event>) {
    loop {
        let event = match tokio::time::timeout(LANE_IDLE, rx.recv()).await {
            Ok(Some(event)) => event,
            Ok(None) => return,
            Err(_) => {
                let mut lanes = lock(&shared.lanes);
                if rx.is_empty() {
                    lanes.remove(&key);
                    return;
                }
                continue;
            }
        };
        let Ok(_permit) = shared.permits.clone().acquire_owned().await else {
            return;
        };
        let Some(worker) = shared.worker.upgrade() else {
            return;
        };
        worker.work(event).await;
    }
}
