//! The outbox: stored actions carried out by the adapter they name, in order within a
//! conversation (at its platform's pace), retried while a failure may pass, and recorded
//! as done or failed. An action is claimed in the store before it goes out, so the sweep,
//! the router and a restart can never all send it.
//!
//! An adapter carries out one action at a time unless it says it takes more
//! ([`Adapter::parallel_sends`]): then as many conversations as that are served at once,
//! each still in order. Each action is recorded before the next of its conversation goes,
//! so a crash can repeat at most one send per conversation in flight.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{Semaphore, broadcast, mpsc};

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
        tokio::spawn(run_adapter(
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

    /// Whether actions naming `target` can go out now (its adapter is connected).
    pub fn is_connected(&self, target: &str) -> bool {
        lock(&self.lanes).contains_key(target)
    }

    /// Hands a stored action to its adapter. A dispatched one (from a previous run) is
    /// ours already; a pending one must be claimed first, so that nothing else sends it.
    pub async fn dispatch(&self, stored: StoredAction) -> Result<(), StoreError> {
        let target = stored.action.target();
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
        hand(&jobs, stored, resumed);
        Ok(())
    }

    /// Hands an action this process stored already claimed ([`Store::complete_and_claim`],
    /// for a target [`Outbox::is_connected`] named) to its adapter: no claim to write, and
    /// not resumed, since nothing can have sent it yet.
    ///
    /// [`Store::complete_and_claim`]: crate::store::Store::complete_and_claim
    pub fn hand_claimed(&self, stored: StoredAction) {
        let target = stored.action.target();
        match lock(&self.lanes).get(target) {
            Some(lane) => hand(&lane.jobs, stored, false),
            // Lanes are never taken away while running; should one be, the action stays
            // dispatched and the next run resumes it.
            None => {
                tracing::warn!(action = %stored.id, %target, "claimed for an adapter that is gone; left for the next run")
            }
        }
    }
}

fn hand(jobs: &mpsc::UnboundedSender<Outgoing>, stored: StoredAction, resumed: bool) {
    let Action::Send {
        target,
        conversation,
        text,
        attachments,
    } = stored.action;
    let outgoing = Outgoing {
        action_id: stored.id.clone(),
        conversation,
        text,
        attachments,
        resumed,
    };
    if jobs.send(outgoing).is_err() {
        tracing::warn!(action = %stored.id, %target, "adapter stopped; the action stays for the next run");
    }
}

/// Carries out one adapter's actions: one at a time, or in up to
/// [`Adapter::parallel_sends`] conversations at once, each conversation in order.
async fn run_adapter(
    adapter: Arc<dyn Adapter>,
    mut jobs: mpsc::UnboundedReceiver<Outgoing>,
    store: SharedStore,
    activity: broadcast::Sender<Activity>,
) {
    let parallel = adapter.parallel_sends().max(1);
    if parallel == 1 {
        while let Some(job) = jobs.recv().await {
            carry_out(adapter.as_ref(), &store, &activity, job).await;
        }
        return;
    }
    let permits = Arc::new(Semaphore::new(parallel));
    let mut conversations: HashMap<String, Conversation> = HashMap::new();
    while let Some(job) = jobs.recv().await {
        // A conversation with nothing queued or going out is let go: a lane started for
        // it later cannot overtake anything.
        conversations.retain(|_, lane| lane.unfinished.load(Ordering::Acquire) > 0);
        let lane = conversations
            .entry(job.conversation.clone())
            .or_insert_with(|| {
                let (jobs, queue) = mpsc::unbounded_channel();
                let unfinished = Arc::new(AtomicUsize::new(0));
                tokio::spawn(run_conversation(
                    adapter.clone(),
                    queue,
                    unfinished.clone(),
                    permits.clone(),
                    store.clone(),
                    activity.clone(),
                ));
                Conversation { jobs, unfinished }
            });
        lane.unfinished.fetch_add(1, Ordering::AcqRel);
        if lane.jobs.send(job).is_err() {
            // The lane's task ended (the runtime is going away): the action stays
            // dispatched for the next run.
            lane.unfinished.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// One conversation's actions on an adapter that serves several at once.
struct Conversation {
    jobs: mpsc::UnboundedSender<Outgoing>,
    /// Actions handed to the lane and not yet recorded.
    unfinished: Arc<AtomicUsize>,
}

async fn run_conversation(
    adapter: Arc<dyn Adapter>,
    mut jobs: mpsc::UnboundedReceiver<Outgoing>,
    unfinished: Arc<AtomicUsize>,
    permits: Arc<Semaphore>,
    store: SharedStore,
    activity: broadcast::Sender<Activity>,
) {
    while let Some(job) = jobs.recv().await {
        let Ok(_permit) = permits.acquire().await else {
            return;
        };
        carry_out(adapter.as_ref(), &store, &activity, job).await;
        unfinished.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Delivers one action and records how it ended (unless the adapter records that itself:
/// a phone).
async fn carry_out(
    adapter: &dyn Adapter,
    store: &SharedStore,
    activity: &broadcast::Sender<Activity>,
    job: Outgoing,
) {
    let name = adapter.name();
    let result = deliver_all(adapter, &job).await;
    let (status, error) = match &result {
        // The phone counts its own when it knows how the send ended.
        Ok(Delivered::Handed) => return,
        Ok(Delivered::Sent) => (ActionStatus::Done, None),
        Err(reason) => (ActionStatus::Failed, Some(reason.as_str())),
    };
    telemetry::action_finished(name, status == ActionStatus::Done);
    if let Err(store_error) = store.set_action_status(&job.action_id, status, error).await {
        // Left dispatched: the next run sends it again.
        tracing::error!(adapter = %name, action = %job.action_id, error = %store_error, "cannot record how a send ended");
    }
    let _ = activity.send(match result {
        Ok(_) => {
            tracing::info!(adapter = %name, action = %job.action_id, "sent");
            Activity::Replied {
                device: name.to_string(),
                conversation: job.conversation,
                text: job.text,
            }
        }
        Err(reason) => {
            tracing::error!(adapter = %name, action = %job.action_id, %reason, "not sent");
            Activity::ReplyFailed {
                device: name.to_string(),
                conversation: job.conversation,
                reason,
            }
        }
    });
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

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use async_trait::async_trait;

    use super::*;
    use crate::adapter::SendError;
    use crate::event::test_message;
    use crate::format::TextFormat;
    use crate::store::MemoryStore;

    /// An adapter whose sends to "slow" take a while; it notes when each send started and
    /// ended, and the most that were under way at once.
    struct Timed {
        parallel: usize,
        log: std::sync::Mutex<Vec<(String, Instant, Instant)>>,
        under_way: AtomicUsize,
        most: AtomicUsize,
    }

    #[async_trait]
    impl Adapter for Timed {
        fn name(&self) -> &str {
            "bot"
        }
        fn platform(&self) -> &'static str {
            "test"
        }
        fn text_format(&self) -> TextFormat {
            TextFormat::Plain
        }
        fn parallel_sends(&self) -> usize {
            self.parallel
        }
        async fn deliver(&self, outgoing: &Outgoing) -> Result<Delivered, SendError> {
            let started = Instant::now();
            let now = self.under_way.fetch_add(1, Ordering::AcqRel) + 1;
            self.most.fetch_max(now, Ordering::AcqRel);
            if outgoing.conversation == "slow" {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            self.under_way.fetch_sub(1, Ordering::AcqRel);
            self.log
                .lock()
                .expect("lock")
                .push((outgoing.text.clone(), started, Instant::now()));
            Ok(Delivered::Sent)
        }
    }

    /// Sends "slow 1", "slow 2" and "fast 1" through an adapter taking `parallel`; what
    /// it logged once all three went.
    async fn three_sends(parallel: usize) -> (Vec<(String, Instant, Instant)>, usize) {
        let store: SharedStore = Arc::new(MemoryStore::default());
        let outbox = Outbox::new(store.clone(), broadcast::channel(4).0);
        let adapter = Arc::new(Timed {
            parallel,
            log: Default::default(),
            under_way: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
        });
        outbox.connect(adapter.clone());
        let event = test_message("bot", "slow", "hi", false);
        store.insert_event(&event).await.expect("stored");
        let actions = [
            Action::send("bot", "slow", "slow 1"),
            Action::send("bot", "slow", "slow 2"),
            Action::send("bot", "fast", "fast 1"),
        ];
        for stored in store
            .complete_event(&event, &actions, None)
            .await
            .expect("actions")
        {
            outbox.dispatch(stored).await.expect("dispatched");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while adapter.log.lock().expect("lock").len() < 3 {
            assert!(Instant::now() < deadline, "not all sent");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let log = adapter.log.lock().expect("lock").clone();
        (log, adapter.most.load(Ordering::Acquire))
    }

    fn send<'l>(
        log: &'l [(String, Instant, Instant)],
        text: &str,
    ) -> &'l (String, Instant, Instant) {
        log.iter().find(|(t, ..)| t == text).expect("sent")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conversations_go_side_by_side_where_the_adapter_takes_it_each_in_order() {
        let (log, most) = three_sends(4).await;
        let (slow1, slow2, fast) = (
            send(&log, "slow 1"),
            send(&log, "slow 2"),
            send(&log, "fast 1"),
        );
        // The fast conversation did not wait for the slow one.
        assert!(fast.2 < slow2.1, "{log:?}");
        // The slow one stayed in order, one send at a time.
        assert!(slow2.1 >= slow1.2, "{log:?}");
        assert!(most <= 2, "{most}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_adapter_that_takes_one_at_a_time_gets_one_at_a_time() {
        let (log, most) = three_sends(1).await;
        let texts: Vec<&str> = log.iter().map(|(t, ..)| t.as_str()).collect();
        assert_eq!(texts, ["slow 1", "slow 2", "fast 1"]);
        assert_eq!(most, 1);
    }
}
