//! The outbox: stored actions carried out by the adapter they name, one adapter's in
//! order (at its platform's pace), retried while a failure may pass, and recorded as done
//! or failed. An action is claimed in the store before it goes out, so the sweep, the
//! router and a restart can never all send it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};

use crate::activity::Activity;
use crate::adapter::{Adapter, Delivered, Outgoing, ReplyTiming, deliver_all};
use crate::event::Action;
use crate::store::{ActionStatus, SharedStore, StoreError, StoredAction};
use crate::telemetry;

/// How often the outbox is checked for actions nobody is carrying out (a dead letter
/// replayed by `tapwire dlq replay`, a reply kept while its phone was away).
const SWEEP: Duration = Duration::from_secs(1);

pub struct Outbox {
    store: SharedStore,
    activity: broadcast::Sender<Activity>,
    lanes: Mutex<HashMap<String, Lane>>,
}

struct Lane {
    adapter: Arc<dyn Adapter>,
    jobs: mpsc::UnboundedSender<Outgoing>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Outbox {
    pub fn new(store: SharedStore, activity: broadcast::Sender<Activity>) -> Outbox {
        Outbox {
            store,
            activity,
            lanes: Mutex::new(HashMap::new()),
        }
    }

    /// Actions naming `adapter` go to it from now on.
    pub fn connect(&self, adapter: Arc<dyn Adapter>) {
        let (jobs, queue) = mpsc::unbounded_channel();
        tokio::spawn(run_lane(
            adapter.clone(),
            queue,
            self.store.clone(),
            self.activity.clone(),
        ));
        lock(&self.lanes).insert(adapter.name().to_string(), Lane { adapter, jobs });
    }

    pub fn adapters(&self) -> Vec<Arc<dyn Adapter>> {
        lock(&self.lanes)
            .values()
            .map(|lane| lane.adapter.clone())
            .collect()
    }

    /// The adapter connected as `name`.
    pub fn adapter(&self, name: &str) -> Option<Arc<dyn Adapter>> {
        lock(&self.lanes).get(name).map(|lane| lane.adapter.clone())
    }

    /// How long a sender on `source` waits; a source that is no adapter (a schedule)
    /// waits the default.
    pub fn reply_timing(&self, source: &str) -> ReplyTiming {
        lock(&self.lanes)
            .get(source)
            .map(|lane| lane.adapter.reply_timing())
            .unwrap_or_default()
    }

    /// Hands a stored action to its adapter. A dispatched one (from a previous run) is
    /// ours already; a pending one must be claimed first, so that nothing else sends it.
    pub async fn dispatch(&self, stored: StoredAction) -> Result<(), StoreError> {
        let Action::Send {
            target,
            conversation,
            text,
            attachments,
        } = &stored.action;
        let jobs = lock(&self.lanes).get(target).map(|lane| lane.jobs.clone());
        let Some(jobs) = jobs else {
            // Not connected now: kept open, so the sweep or the next run delivers it.
            tracing::debug!(action = %stored.id, %target, "no such phone or adapter connected; action kept for later");
            return Ok(());
        };
        let resumed = stored.status == ActionStatus::Dispatched;
        if !resumed && !self.store.claim_action(&stored.id).await? {
            return Ok(());
        }
        let outgoing = Outgoing {
            action_id: stored.id.clone(),
            conversation: conversation.clone(),
            text: text.clone(),
            attachments: attachments.clone(),
            resumed,
        };
        if jobs.send(outgoing).is_err() {
            tracing::warn!(action = %stored.id, %target, "adapter stopped; the action stays for the next run");
        }
        Ok(())
    }
}

/// Carries out one adapter's actions in order and records how each ended (unless the
/// adapter records that itself: a phone).
async fn run_lane(
    adapter: Arc<dyn Adapter>,
    mut jobs: mpsc::UnboundedReceiver<Outgoing>,
    store: SharedStore,
    activity: broadcast::Sender<Activity>,
) {
    let name = adapter.name().to_string();
    while let Some(job) = jobs.recv().await {
        let result = deliver_all(adapter.as_ref(), &job).await;
        let (status, error) = match &result {
            // The phone counts its own when it knows how the send ended.
            Ok(Delivered::Handed) => continue,
            Ok(Delivered::Sent) => (ActionStatus::Done, None),
            Err(reason) => (ActionStatus::Failed, Some(reason.as_str())),
        };
        telemetry::action_finished(&name, status == ActionStatus::Done);
        if let Err(store_error) = store.set_action_status(&job.action_id, status, error).await {
            // Left dispatched: the next run sends it again.
            tracing::error!(adapter = %name, action = %job.action_id, error = %store_error, "cannot record how a send ended");
        }
        let _ = activity.send(match result {
            Ok(_) => {
                tracing::info!(adapter = %name, action = %job.action_id, "sent");
                Activity::Replied {
                    device: name.clone(),
                    conversation: job.conversation,
                    text: job.text,
                }
            }
            Err(reason) => {
                tracing::error!(adapter = %name, action = %job.action_id, %reason, "not sent");
                Activity::ReplyFailed {
                    device: name.clone(),
                    conversation: job.conversation,
                    reason,
                }
            }
        });
    }
}

/// Dispatches actions nobody is carrying out, until the outbox goes.
pub async fn sweep(outbox: Weak<Outbox>) {
    let mut tick = tokio::time::interval(SWEEP);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(outbox) = outbox.upgrade() else {
            return;
        };
        let pending = match outbox.store.pending_actions().await {
            Ok(pending) => pending,
            Err(error) => {
                tracing::warn!(%error, "outbox sweep failed");
                continue;
            }
        };
        for action in pending {
            if let Err(error) = outbox.dispatch(action).await {
                tracing::warn!(%error, "outbox sweep failed");
            }
        }
    }
}
