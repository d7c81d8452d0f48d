//! The running controller: phones feed events into the store, the router hands stored
//! events to the pipeline, and the actions it returns are stored, then dispatched to the
//! phone or platform adapter that must carry them out. A restart picks up what was stored
//! and not finished.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tapwire_device_agent::UiMaps;
use tapwire_device_agent::agent::{
    self, AgentConfig, AgentError, AgentStats, Batch, DeviceStatus, Outbound, PhoneAgent,
    PhoneMessage, SendOutcome, Sink,
};
use tapwire_device_agent::screen::ItemKind;
use tapwire_device_agent::tail::Watermark;
use tapwire_device_agent::transport::Transport;
use tokio::sync::{Semaphore, broadcast, mpsc};

use crate::adapter::Adapter;
use crate::config::ReplyTiming;
use crate::event::{
    Action, Conversation, ConversationKind, Event, Segment, Sender, now_rfc3339, types,
};
use crate::handler::{HandlerError, Handlers, Outcome};
use crate::router::Router;
use crate::store::{ActionStatus, Store, StoreError, StoredAction, short_hash};

/// What happened, for live display (`tapwire demo`) and tests.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "activity", rename_all = "snake_case")]
pub enum Activity {
    Received {
        device: String,
        conversation: String,
        sender: Option<String>,
        text: Option<String>,
        is_self: bool,
    },
    Replied {
        device: String,
        conversation: String,
        text: String,
    },
    ReplyFailed {
        device: String,
        conversation: String,
        reason: String,
    },
    Device {
        device: String,
        status: DeviceStatus,
    },
}

/// How long lanes with nothing to do stay alive before they are let go.
const LANE_IDLE: Duration = Duration::from_secs(30);
/// How often the outbox is checked for actions nobody is carrying out (a dead letter
/// replayed by `tapwire dlq replay`, a reply kept while its phone was away).
const OUTBOX_SWEEP: Duration = Duration::from_secs(1);

pub struct Runtime {
    store: Store,
    router: Router,
    handlers: Arc<Handlers>,
    /// Reply deadlines per source; sources not listed use the defaults.
    timing: HashMap<String, ReplyTiming>,
    phones: Mutex<HashMap<String, std::sync::mpsc::Sender<Outbound>>>,
    /// Each adapter's queue: its actions go out in order, at its platform's pace.
    adapters: Mutex<HashMap<String, mpsc::UnboundedSender<AdapterJob>>>,
    /// Sent actions' texts by id, for activity reports.
    in_flight: Mutex<HashMap<String, Action>>,
    /// Replies an earlier run handed to a phone and never saw finish: each may have gone
    /// out before the crash, which the phone's next read of its chat shows.
    unconfirmed: Mutex<std::collections::HashSet<String>>,
    /// One queue per conversation: its events are handled in order, while different
    /// conversations run side by side, at most `permits` at a time.
    lanes: Mutex<HashMap<String, mpsc::UnboundedSender<Event>>>,
    permits: Arc<Semaphore>,
    activity: broadcast::Sender<Activity>,
    handled: AtomicU64,
    /// Lanes are started from phone threads too, which are outside the async runtime.
    tokio: tokio::runtime::Handle,
}

impl Runtime {
    /// Creates the runtime and starts its outbox sweep.
    pub fn start(
        store: Store,
        router: Router,
        handlers: Arc<Handlers>,
        timing: HashMap<String, ReplyTiming>,
        concurrency: usize,
    ) -> Arc<Runtime> {
        let (activity, _) = broadcast::channel(1024);
        let runtime = Arc::new(Runtime {
            store,
            router,
            handlers,
            timing,
            phones: Mutex::new(HashMap::new()),
            adapters: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
            unconfirmed: Mutex::new(std::collections::HashSet::new()),
            lanes: Mutex::new(HashMap::new()),
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            activity,
            handled: AtomicU64::new(0),
            tokio: tokio::runtime::Handle::current(),
        });
        tokio::spawn(sweep_outbox(Arc::downgrade(&runtime)));
        runtime
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Activity> {
        self.activity.subscribe()
    }

    fn report(&self, activity: Activity) {
        // Nobody listening is fine.
        let _ = self.activity.send(activity);
    }

    /// Events no route matched since the start.
    pub fn unmatched_events(&self) -> u64 {
        self.router.unmatched()
    }

    /// Events handled to the end since the start.
    pub fn handled_events(&self) -> u64 {
        self.handled.load(Ordering::Relaxed)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Registers a phone's outbound queue; returns its receiving end for the agent.
    pub fn register_phone(&self, device: &str) -> std::sync::mpsc::Receiver<Outbound> {
        let (tx, rx) = std::sync::mpsc::channel();
        lock(&self.phones).insert(device.to_string(), tx);
        rx
    }

    /// Closes every phone's queue so the agents stop.
    pub fn close_phones(&self) {
        lock(&self.phones).clear();
    }

    /// Finishes what a previous run left: actions first (they were decided already), then
    /// events that were stored but not handled.
    pub async fn recover(self: &Arc<Self>) -> Result<(), StoreError> {
        let actions = self.store.open_actions().await?;
        let events = self.store.pending_events().await?;
        if !actions.is_empty() || !events.is_empty() {
            tracing::info!(
                actions = actions.len(),
                events = events.len(),
                "resuming unfinished work"
            );
        }
        for action in actions {
            // A dispatched reply may have gone out before the crash: the phone's next read
            // of that chat settles it if so (`Store::record`), before it is typed.
            let claimed = action.status == "dispatched";
            self.dispatch(action, claimed).await?;
        }
        for event in events {
            self.submit(event);
        }
        Ok(())
    }

    /// Stores an event from a source without watermarks (a schedule, a plugin fault) and
    /// routes it; an event stored before is not routed again.
    pub async fn accept(self: &Arc<Self>, event: Event) -> Result<bool, StoreError> {
        let fresh = self.store.insert_event(&event).await?;
        if fresh {
            self.submit(event);
        }
        Ok(fresh)
    }

    /// Queues a stored event on its conversation's lane.
    pub fn submit(self: &Arc<Self>, event: Event) {
        let key = match &event.conversation {
            Some(c) => format!("{}\u{1f}{}", event.source, c.id),
            None => event.source.clone(),
        };
        let mut lanes = lock(&self.lanes);
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
        self.tokio.spawn(run_lane(self.clone(), key, rx));
    }

    fn timing_for(&self, source: &str) -> ReplyTiming {
        self.timing.get(source).cloned().unwrap_or_default()
    }

    async fn handle(self: &Arc<Self>, event: Event) -> Result<(), StoreError> {
        let routes: Vec<String> = self
            .router
            .route(&event)
            .into_iter()
            .map(|route| {
                tracing::debug!(event = %event.id, route = %route.id, handler = %route.handler, "route matched");
                route.handler.clone()
            })
            .collect();
        let handlers = self.handlers.clone();
        let work = {
            let event = event.clone();
            async move {
                let mut all = Outcome::default();
                for name in &routes {
                    let outcome = handlers.handle(name, &event).await?;
                    all.actions.extend(outcome.actions);
                    if all.dead.is_none() {
                        all.dead = outcome.dead;
                    }
                }
                Ok::<Outcome, HandlerError>(all)
            }
        };
        let timing = self.timing_for(&event.source);
        let outcome = self
            .within_deadlines(&event, &timing, work)
            .await?
            .unwrap_or_else(|| Ok(Outcome::default()));
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(HandlerError::Store(error)) => return Err(error),
            Err(error) => {
                // A config mistake, not a passing fault: handling it again would fail the
                // same way, so the event is finished and the error logged.
                tracing::error!(event = %event.id, %error, "handler failed");
                Outcome::default()
            }
        };
        tracing::debug!(event = %event.id, r#type = %event.event_type, actions = outcome.actions.len(), dead = outcome.dead.is_some(), "handled");
        let stored = self
            .store
            .complete_event(&event, &outcome.actions, outcome.dead.as_ref())
            .await?;
        self.handled.fetch_add(1, Ordering::Relaxed);
        for action in stored {
            self.dispatch(action, false).await?;
        }
        Ok(())
    }

    /// Runs the handlers under the source's reply deadlines: past `ack_after` the sender
    /// gets an acknowledgement and the work goes on; past `give_up_after` it is
    /// cancelled (dropping the future drops its HTTP request or plugin call) and the
    /// sender told. `None` means it was cancelled.
    async fn within_deadlines(
        self: &Arc<Self>,
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
        let action = Action::Send {
            target: event.source.clone(),
            conversation: conversation.to_string(),
            text: text.to_string(),
        };
        if let Some(stored) = self.store.add_interim_action(event, tag, &action).await? {
            self.dispatch(stored, false).await?;
        }
        Ok(())
    }

    /// Connects a platform adapter: actions whose target is `name` go to it, one at a time.
    pub fn start_adapter(self: &Arc<Self>, name: &str, adapter: Adapter) {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.adapters).insert(name.to_string(), tx);
        self.tokio
            .spawn(run_adapter(self.clone(), name.to_string(), adapter, rx));
    }

    async fn dispatch(&self, stored: StoredAction, claimed: bool) -> Result<(), StoreError> {
        let Action::Send {
            target,
            conversation,
            text,
        } = &stored.action;
        let phone = lock(&self.phones).get(target).cloned();
        let adapter = match phone {
            Some(_) => None,
            None => lock(&self.adapters).get(target).cloned(),
        };
        if phone.is_none() && adapter.is_none() {
            // Not connected now: kept open, so the outbox sweep or the next run delivers it.
            tracing::debug!(action = %stored.id, %target, "no such phone or adapter connected; reply kept for later");
            return Ok(());
        }
        // A dispatched action from a previous run is already ours; a pending one must be
        // claimed, so that nothing else sends it as well.
        if !claimed && !self.store.claim_action(&stored.id).await? {
            return Ok(());
        }
        if let Some(adapter) = adapter {
            if claimed {
                // A platform cannot be asked whether it got a message: sending again may
                // repeat one, not sending may lose one, and losing is worse.
                tracing::warn!(action = %stored.id, %target, "this may have gone out before the restart; sending it again");
            }
            let job = AdapterJob {
                action_id: stored.id.clone(),
                conversation: conversation.clone(),
                text: text.clone(),
            };
            if adapter.send(job).is_err() {
                tracing::warn!(action = %stored.id, %target, "adapter stopped; the action stays for the next run");
            }
            return Ok(());
        }
        let Some(sender) = phone else {
            return Ok(());
        };
        if claimed {
            // The phone's next read of that chat settles it if it went out (`Store::record`).
            lock(&self.unconfirmed).insert(stored.id.clone());
        }
        lock(&self.in_flight).insert(stored.id.clone(), stored.action.clone());
        let outbound = Outbound {
            action_id: stored.id.clone(),
            conversation: conversation.clone(),
            text: text.clone(),
        };
        if sender.send(outbound).is_err() {
            tracing::warn!(action = %stored.id, %target, "phone stopped; the reply stays queued for the next run");
        }
        Ok(())
    }

    /// Connects an agent to this runtime and runs it on its own thread.
    pub fn start_phone(
        self: &Arc<Self>,
        config: AgentConfig,
        transport: Box<dyn Transport>,
        maps: &UiMaps,
        stop: Arc<AtomicBool>,
        outbound: std::sync::mpsc::Receiver<Outbound>,
    ) -> Result<std::thread::JoinHandle<Result<AgentStats, AgentError>>, AgentError> {
        let sink = PhoneSink {
            runtime: self.clone(),
            handle: tokio::runtime::Handle::current(),
        };
        let agent = PhoneAgent::new(config, transport, maps, Box::new(sink), outbound)?;
        agent::spawn(agent, stop)
            .map_err(|e| AgentError::Sink(format!("cannot start the phone's thread: {e}")))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere while holding a lock leaves these maps intact.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The conversation of someone waiting for an answer, if the event has one.
fn waiting_sender(event: &Event) -> Option<String> {
    let waiting = event.event_type == types::MESSAGE_RECEIVED
        && event.sender.as_ref().is_some_and(|s| !s.is_self);
    waiting
        .then(|| event.conversation.as_ref().map(|c| c.id.clone()))
        .flatten()
}

async fn run_lane(runtime: Arc<Runtime>, key: String, mut rx: mpsc::UnboundedReceiver<Event>) {
    loop {
        let event = match tokio::time::timeout(LANE_IDLE, rx.recv()).await {
            Ok(Some(event)) => event,
            Ok(None) => return,
            Err(_) => {
                let mut lanes = lock(&runtime.lanes);
                if rx.is_empty() {
                    lanes.remove(&key);
                    return;
                }
                continue;
            }
        };
        let Ok(_permit) = runtime.permits.clone().acquire_owned().await else {
            return;
        };
        let id = event.id.clone();
        if let Err(error) = runtime.handle(event).await {
            // The event stays pending in the store and is handled again on restart.
            tracing::error!(event = %id, %error, "handling failed");
        }
    }
}

async fn sweep_outbox(runtime: std::sync::Weak<Runtime>) {
    let mut tick = tokio::time::interval(OUTBOX_SWEEP);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(runtime) = runtime.upgrade() else {
            return;
        };
        let pending = match runtime.store.pending_actions().await {
            Ok(pending) => pending,
            Err(error) => {
                tracing::warn!(%error, "outbox sweep failed");
                continue;
            }
        };
        for action in pending {
            if let Err(error) = runtime.dispatch(action, false).await {
                tracing::warn!(%error, "outbox sweep failed");
            }
        }
    }
}

/// Turns a message read off the phone into an event.
pub fn phone_event(device: &str, message: &PhoneMessage) -> Event {
    let event_type = if message.is_self {
        types::MESSAGE_SENT
    } else {
        types::MESSAGE_RECEIVED
    };
    let content = match (&message.text, message.kind) {
        (Some(text), _) => vec![Segment::Text { text: text.clone() }],
        (None, ItemKind::Media) => vec![Segment::Image { url: None }],
        (None, _) => vec![Segment::Unknown],
    };
    Event {
        id: format!("ev_{}", short_hash(&message.key)),
        event_type: event_type.into(),
        source: device.to_string(),
        platform: "wechat".into(),
        idempotency_key: message.key.clone(),
        conversation: Some(Conversation {
            id: message.conversation.clone(),
            title: Some(message.conversation.clone()),
            kind: if message.is_group {
                ConversationKind::Group
            } else {
                ConversationKind::Private
            },
        }),
        sender: Some(Sender {
            id: message.sender.clone().unwrap_or_else(|| "self".into()),
            display_name: message.sender.clone(),
            is_self: message.is_self,
        }),
        content,
        platform_message_id: None,
        timestamp: now_rfc3339(),
        raw: serde_json::to_value(message).unwrap_or_default(),
    }
}

/// An action for an adapter to carry out.
struct AdapterJob {
    action_id: String,
    conversation: String,
    text: String,
}

/// Carries out one adapter's actions in order and records how each ended.
async fn run_adapter(
    runtime: Arc<Runtime>,
    name: String,
    adapter: Adapter,
    mut jobs: mpsc::UnboundedReceiver<AdapterJob>,
) {
    while let Some(job) = jobs.recv().await {
        let result = adapter.deliver(&job.conversation, &job.text).await;
        let (status, error) = match &result {
            Ok(()) => (ActionStatus::Done, None),
            Err(reason) => (ActionStatus::Failed, Some(reason.as_str())),
        };
        if let Err(store_error) = runtime
            .store
            .set_action_status(&job.action_id, status, error)
            .await
        {
            // Left dispatched: the next run sends it again.
            tracing::error!(adapter = %name, action = %job.action_id, error = %store_error, "cannot record how a send ended");
        }
        runtime.report(match result {
            Ok(()) => {
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

/// The agent's side of the store: called on the phone's thread, so it blocks on the async
/// store through the runtime's handle.
struct PhoneSink {
    runtime: Arc<Runtime>,
    handle: tokio::runtime::Handle,
}

impl PhoneSink {
    /// Reports a reply's end (stored already) to whoever watches the activity.
    fn finished(&self, action_id: &str, outcome: SendOutcome) {
        lock(&self.runtime.unconfirmed).remove(action_id);
        let Some(Action::Send {
            target,
            conversation,
            text,
        }) = lock(&self.runtime.in_flight).remove(action_id)
        else {
            return;
        };
        self.runtime.report(match outcome {
            SendOutcome::Failed { reason } => Activity::ReplyFailed {
                device: target,
                conversation,
                reason,
            },
            _ => Activity::Replied {
                device: target,
                conversation,
                text,
            },
        });
    }
}

impl Sink for PhoneSink {
    fn watermark(&mut self, device: &str, conversation: &str) -> Result<Option<Watermark>, String> {
        self.handle
            .block_on(self.runtime.store.watermark(device, conversation))
            .map_err(|e| e.to_string())
    }

    fn record(&mut self, batch: Batch) -> Result<Vec<String>, String> {
        let events: Vec<Event> = batch
            .messages
            .iter()
            .map(|m| phone_event(&batch.device, m))
            .collect();
        let unconfirmed: Vec<String> = lock(&self.runtime.unconfirmed).iter().cloned().collect();
        let recorded = self
            .handle
            .block_on(self.runtime.store.record(
                &batch.device,
                &batch.conversation,
                &batch.watermark,
                &events,
                batch.delivered.as_ref().map(|d| d.action_id.as_str()),
                &unconfirmed,
            ))
            .map_err(|e| e.to_string())?;
        if let Some(delivered) = &batch.delivered {
            self.finished(
                &delivered.action_id,
                SendOutcome::Sent {
                    method: delivered.method,
                },
            );
        }
        for id in &recorded.settled {
            self.finished(id, SendOutcome::AlreadySent);
        }
        for event in recorded.fresh {
            let Some(message) = batch
                .messages
                .iter()
                .find(|m| m.key == event.idempotency_key)
            else {
                continue;
            };
            self.runtime.report(Activity::Received {
                device: batch.device.clone(),
                conversation: batch.conversation.clone(),
                sender: message.sender.clone(),
                text: message.text.clone(),
                is_self: message.is_self,
            });
            self.runtime.submit(event);
        }
        Ok(recorded.settled)
    }

    fn sent(&mut self, action_id: &str, outcome: SendOutcome) -> Result<(), String> {
        let (status, error) = match &outcome {
            SendOutcome::Sent { .. } | SendOutcome::AlreadySent => (ActionStatus::Done, None),
            SendOutcome::Failed { reason } => (ActionStatus::Failed, Some(reason.as_str())),
            SendOutcome::Interrupted => {
                // Still dispatched and still the phone's; if the chat shows it sent when
                // the phone is back, that read settles it.
                lock(&self.runtime.unconfirmed).insert(action_id.to_string());
                return Ok(());
            }
        };
        self.handle
            .block_on(
                self.runtime
                    .store
                    .set_action_status(action_id, status, error),
            )
            .map_err(|e| e.to_string())?;
        self.finished(action_id, outcome);
        Ok(())
    }

    fn status(&mut self, device: &str, status: DeviceStatus) {
        tracing::info!(device, ?status, "device status");
        let event_type = match status {
            DeviceStatus::Connected { .. } => types::DEVICE_CONNECTED,
            DeviceStatus::Disconnected { .. } => types::DEVICE_DISCONNECTED,
            DeviceStatus::ScreenUnrecognized { .. } | DeviceStatus::DialogDismissed { .. } => {
                types::DEVICE_SCREEN_UNRECOGNIZED
            }
        };
        let key = format!("{device}:{event_type}:{}", now_rfc3339());
        let event = Event::notice(
            event_type,
            device,
            "wechat",
            key,
            serde_json::to_value(&status).unwrap_or_default(),
        );
        match self
            .handle
            .block_on(self.runtime.store.insert_event(&event))
        {
            Ok(true) => self.runtime.submit(event),
            Ok(false) => {}
            Err(error) => tracing::error!(device, %error, "cannot store a device event"),
        }
        self.runtime.report(Activity::Device {
            device: device.to_string(),
            status,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::event::test_message;
    use crate::handler::Handler;
    use crate::pipeline::{Pipeline, PipelineConfig, PrefixConfig};
    use crate::plugin::PluginHost;
    use crate::router::{Pattern, Route};
    use crate::webhook::{Webhook, WebhookConfig};

    /// A webhook that answers after `delay_ms`, echoing the text.
    async fn slow_hook(delay_ms: u64) -> String {
        async fn answer(
            axum::extract::State(delay): axum::extract::State<u64>,
            axum::Json(event): axum::Json<Event>,
        ) -> axum::Json<serde_json::Value> {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            let text = event.text().unwrap_or_default();
            axum::Json(
                serde_json::json!({"actions": [{"action": "reply", "text": format!("slow {text}")}]}),
            )
        }
        let app = axum::Router::new()
            .route("/", axum::routing::post(answer))
            .with_state(delay_ms);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    fn message(chat: &str, text: &str, key: &str) -> Event {
        let mut event = test_message("phone", chat, text, false);
        event.id = format!("ev_{key}");
        event.idempotency_key = key.into();
        event
    }

    /// The texts of the stored actions, oldest first, once `count` exist.
    async fn wait_for_actions(store: &Store, count: usize) -> Vec<(String, Instant)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen: Vec<(String, Instant)> = Vec::new();
        while seen.len() < count {
            assert!(Instant::now() < deadline, "only {seen:?}");
            for action in store.pending_actions().await.expect("actions") {
                let Action::Send { text, .. } = action.action;
                if !seen.iter().any(|(t, _)| *t == text) {
                    seen.push((text, Instant::now()));
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        seen
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_conversation_in_order_while_others_go_ahead() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("t.db")).await.expect("store");
        let url = slow_hook(600).await;
        let (faults, _) = tokio::sync::mpsc::unbounded_channel();
        let plugins = PluginHost::start(Vec::new(), faults).await;
        let mut handlers = Handler::builtins();
        handlers.insert(
            "slow".into(),
            Handler::Webhook(Webhook::new("slow", WebhookConfig::new(url)).expect("webhook")),
        );
        handlers.insert(
            "bot".into(),
            Handler::Pipeline(Pipeline::new(
                "bot",
                &PipelineConfig {
                    prefixes: vec![PrefixConfig {
                        prefix: "~".into(),
                        handler: "slow".into(),
                        help: String::new(),
                    }],
                    fallback: Some("echo".into()),
                    ..PipelineConfig::default()
                },
            )),
        );
        let handlers = Arc::new(Handlers::new(
            handlers,
            store.clone(),
            plugins,
            Default::default(),
            HashMap::new(),
        ));
        let router = Router::new(vec![Route {
            id: "all".into(),
            pattern: Pattern::parse("message.*").expect("pattern"),
            source: None,
            conversation: None,
            priority: 0,
            enabled: true,
            continue_: false,
            handler: "bot".into(),
        }]);
        let runtime = Runtime::start(store.clone(), router, handlers, HashMap::new(), 4);
        for event in [
            message("Alice", "~first", "a1"),
            message("Alice", "second", "a2"),
            message("Bob", "meanwhile", "b1"),
        ] {
            assert!(runtime.accept(event).await.expect("stored"));
        }
        let done = wait_for_actions(&store, 3).await;
        let texts: Vec<&str> = done.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            texts,
            ["meanwhile", "slow first", "second"],
            "Bob is not held up by Alice's slow answer; Alice's second waits for her first"
        );
        assert_eq!(runtime.handled_events(), 3);
    }
}
