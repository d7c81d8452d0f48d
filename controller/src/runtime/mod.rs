//! The running controller: accept → store → queue → handle → store actions → outbox.
//! Adapters (phones and platforms) hand events in through [`Runtime`] as an
//! [`Inbox`]; the [`queue`](crate::queue) feeds them back one conversation at a time;
//! the router picks handlers; their actions are stored, then carried out by the
//! [`outbox`]. [`deadline`] acknowledges slow work and cancels what runs too long. A
//! restart picks up what was stored and not finished.

pub mod deadline;
pub mod outbox;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::activity::Activity;
use crate::adapter::{Adapter, AdapterContext, AdapterError, Answering, Inbox};
use crate::event::Event;
use crate::handler::{HandlerError, Handlers, Outcome};
use crate::queue::{Queue, QueueConfig, Worker};
use crate::router::Router;
use crate::store::{ActionStatus, SharedStore, StoreError, StoredAction};
use crate::subscription::Subscriptions;
use crate::telemetry;
use outbox::Outbox;

/// What [`Runtime::replay`] did with a dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replayed {
    /// The handler took it: the letter is closed and these actions are in the outbox.
    Delivered { actions: Vec<String> },
    /// The handler failed again; the letter waits.
    FailedAgain { error: String },
}

pub struct Runtime {
    store: SharedStore,
    router: Router,
    handlers: Arc<Handlers>,
    queue: Arc<dyn Queue>,
    outbox: Arc<Outbox>,
    activity: broadcast::Sender<Activity>,
    handled: AtomicU64,
    /// Outbound subscriptions, once a signing key makes them possible.
    subscriptions: std::sync::OnceLock<Arc<Subscriptions>>,
}

impl Runtime {
    /// Creates the runtime and starts its outbox sweep. Must run inside tokio.
    pub fn start(
        store: SharedStore,
        router: Router,
        handlers: Arc<Handlers>,
        queue: &QueueConfig,
    ) -> Arc<Runtime> {
        Runtime::start_with(store, router, handlers, |worker| {
            crate::queue::build(queue, worker)
        })
    }

    /// [`Runtime::start`] with a queue of the caller's making.
    pub fn start_with(
        store: SharedStore,
        router: Router,
        handlers: Arc<Handlers>,
        queue: impl FnOnce(Weak<dyn Worker>) -> Arc<dyn Queue>,
    ) -> Arc<Runtime> {
        let (activity, _) = broadcast::channel(1024);
        let outbox = Arc::new(Outbox::new(store.clone(), activity.clone()));
        tokio::spawn(outbox::sweep(Arc::downgrade(&outbox)));
        Arc::new_cyclic(|me: &Weak<Runtime>| {
            let worker: Weak<dyn Worker> = me.clone();
            Runtime {
                store,
                router,
                handlers,
                queue: queue(worker),
                outbox,
                activity,
                handled: AtomicU64::new(0),
                subscriptions: std::sync::OnceLock::new(),
            }
        })
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Activity> {
        self.activity.subscribe()
    }

    /// Events no route matched since the start.
    pub fn unmatched_events(&self) -> u64 {
        self.router.unmatched()
    }

    /// Events handled to the end since the start.
    pub fn handled_events(&self) -> u64 {
        self.handled.load(Ordering::Relaxed)
    }

    /// From now on every handled event is also posted to the subscriptions it matches
    /// (their sender must be started as an adapter). Set once; a second call is ignored.
    pub fn set_subscriptions(&self, subscriptions: Arc<Subscriptions>) {
        let _ = self.subscriptions.set(subscriptions);
    }

    /// The subscriptions in force, when a signing key was configured.
    pub fn subscriptions(&self) -> Option<&Arc<Subscriptions>> {
        self.subscriptions.get()
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    /// What an adapter needs to feed this runtime.
    pub fn adapter_context(self: &Arc<Self>) -> AdapterContext {
        AdapterContext {
            store: self.store.clone(),
            inbox: self.clone(),
            activity: self.activity.clone(),
        }
    }

    /// Starts an adapter and connects it: actions naming it go to it, in order.
    pub async fn start_adapter(
        self: &Arc<Self>,
        adapter: Arc<dyn Adapter>,
    ) -> Result<(), AdapterError> {
        // Connected first: what the adapter reads as soon as it starts may be answered
        // at once.
        self.outbox.connect(adapter.clone());
        adapter.start(self.adapter_context()).await
    }

    /// The handlers, for what reaches them from outside (grants given through the API).
    pub fn handlers(&self) -> &Arc<Handlers> {
        &self.handlers
    }

    /// The phone or adapter connected as `name`.
    pub fn adapter(&self, name: &str) -> Option<Arc<dyn Adapter>> {
        self.outbox.adapter(name)
    }

    /// Stores an action asked for from outside (the REST API) under the idempotency
    /// `key` and hands it to the outbox, like any handler's. The same key again stores
    /// and sends nothing: the id comes back with `false`.
    pub async fn submit(
        &self,
        key: &str,
        action: crate::event::Action,
    ) -> Result<(String, bool), StoreError> {
        match self.store.submit_action(key, &action).await? {
            Some(stored) => {
                let id = stored.id.clone();
                self.outbox.dispatch(stored).await?;
                Ok((id, true))
            }
            None => Ok((crate::store::action_id(key), false)),
        }
    }

    /// Delivers a dead letter to its handler again, now: its answers join the outbox and
    /// go out; a handler that fails again leaves the letter waiting with the new error.
    pub async fn replay(
        &self,
        letter: &crate::store::DeadLetter,
    ) -> Result<Replayed, HandlerError> {
        let outcome = self.handlers.handle(&letter.handler, &letter.event).await?;
        if let Some(dead) = outcome.dead {
            self.store
                .retry_failed(letter, &dead.error, dead.attempts)
                .await?;
            return Ok(Replayed::FailedAgain { error: dead.error });
        }
        let stored = self
            .store
            .resolve_dead_letter(letter, &outcome.actions)
            .await?;
        let actions = stored.iter().map(|a| a.id.clone()).collect();
        for action in stored {
            self.outbox.dispatch(action).await?;
        }
        Ok(Replayed::Delivered { actions })
    }

    /// The adapters connected, phones and platforms.
    pub fn adapters(&self) -> Vec<Arc<dyn Adapter>> {
        self.outbox.adapters()
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
            self.outbox.dispatch(action).await?;
        }
        for event in events {
            self.queue.push(event);
        }
        Ok(())
    }

    async fn handle(&self, event: Event) -> Result<(), StoreError> {
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
        // The event's own adapter hears how its answer comes along (an answer shown as it
        // grows needs to know which delivery answers which message, and when it ends).
        let source = self.outbox.adapter(&event.source);
        let work = {
            let event = event.clone();
            let source = source.clone();
            async move {
                let partial = |text: &str| {
                    if let Some(adapter) = &source {
                        adapter.answering(&event, Answering::Partial(text));
                    }
                };
                let mut all = Outcome::default();
                for name in &routes {
                    let _timer = telemetry::HandlerTimer::start(name);
                    let outcome = handlers.handle_reporting(name, &event, &partial).await?;
                    all.actions.extend(outcome.actions);
                    if all.dead.is_none() {
                        all.dead = outcome.dead;
                    }
                }
                Ok::<Outcome, HandlerError>(all)
            }
        };
        let timing = self.outbox.reply_timing(&event.source);
        let finished = self.within_deadlines(&event, &timing, work).await?;
        let cancelled = finished.is_none();
        let outcome = finished.unwrap_or_else(|| Ok(Outcome::default()));
        let mut outcome = match outcome {
            Ok(outcome) => outcome,
            Err(HandlerError::Store(error)) => return Err(error),
            Err(error) => {
                // A config mistake, not a passing fault: handling it again would fail the
                // same way, so the event is finished and the error logged.
                tracing::error!(event = %event.id, %error, "handler failed");
                Outcome::default()
            }
        };
        // Stored in the same step as the answers: a handled event is posted to its
        // subscribers however the process ends afterwards.
        if let Some(subscriptions) = self.subscriptions.get() {
            outcome.actions.extend(subscriptions.deliveries(&event)?);
        }
        tracing::debug!(event = %event.id, r#type = %event.event_type, actions = outcome.actions.len(), dead = outcome.dead.is_some(), "handled");
        let dead_handler = outcome.dead.as_ref().map(|dead| dead.handler.clone());
        // Actions for a connected adapter are stored claimed: the outbox hands them over
        // at once, so a separate write to claim each would only add a commit to wait for.
        let claim: Vec<bool> = outcome
            .actions
            .iter()
            .map(|a| self.outbox.is_connected(a.target()))
            .collect();
        let stored = self
            .store
            .complete_and_claim(&event, &outcome.actions, outcome.dead.as_ref(), &claim)
            .await?;
        self.handled.fetch_add(1, Ordering::Relaxed);
        if let Some(handler) = dead_handler {
            telemetry::dead_lettered(&handler);
        }
        if let Some(adapter) = &source {
            // A cancelled answer's last word, the timeout notice, was announced already.
            announce(adapter.as_ref(), &event, &stored, cancelled);
        }
        for action in stored {
            if action.status == ActionStatus::Dispatched {
                self.outbox.hand_claimed(action);
            } else {
                self.outbox.dispatch(action).await?;
            }
        }
        Ok(())
    }
}

/// Tells the event's own adapter which of the just stored actions answer it (sent back to
/// it, in the event's conversation) and which is the last, before they are dispatched;
/// or that nothing answers it, unless the answer was cancelled.
fn announce(adapter: &dyn Adapter, event: &Event, stored: &[StoredAction], cancelled: bool) {
    let Some(conversation) = &event.conversation else {
        return;
    };
    let answers: Vec<&str> = stored
        .iter()
        .filter(|a| a.action.target() == event.source && a.action.conversation() == conversation.id)
        .map(|a| a.id.as_str())
        .collect();
    if answers.is_empty() {
        if !cancelled {
            adapter.answering(event, Answering::Unanswered);
        }
        return;
    }
    for (index, action) in answers.iter().enumerate() {
        let last = index + 1 == answers.len();
        adapter.answering(event, Answering::Answer { action, last });
    }
}

#[async_trait]
impl Inbox for Runtime {
    async fn accept(&self, event: Event) -> Result<bool, StoreError> {
        let fresh = self.store.insert_event(&event).await?;
        if fresh {
            telemetry::event_accepted(&event.source, &event.event_type);
            self.queue.push(event);
        }
        Ok(fresh)
    }

    /// Counted here as [`Inbox::accept`] counts: the adapter stored it fresh.
    fn submit(&self, event: Event) {
        telemetry::event_accepted(&event.source, &event.event_type);
        self.queue.push(event);
    }
}

#[async_trait]
impl Worker for Runtime {
    async fn work(&self, event: Event) {
        let id = event.id.clone();
        if let Err(error) = self.handle(event).await {
            // The event stays pending in the store and is handled again on restart.
            tracing::error!(event = %id, %error, "handling failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;
    use crate::event::{Action, test_message};
    use crate::handler::pipeline::{PipelineConfig, PrefixConfig};
    use crate::handler::{Pipeline, Webhook, WebhookConfig, builtins};
    use crate::plugin::PluginHost;
    use crate::router::{Pattern, Route};
    use crate::store::{MemoryStore, SqliteStore, Store};

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
    async fn wait_for_actions(store: &dyn Store, count: usize) -> Vec<(String, Instant)> {
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

    /// An adapter that keeps what the runtime tells it about its events' answers.
    #[derive(Default)]
    struct Listening {
        heard: std::sync::Mutex<Vec<(String, String)>>,
        delivered: std::sync::Mutex<Vec<(String, String)>>,
    }

    impl Listening {
        fn heard(&self, chat: &str) -> Vec<String> {
            let heard = self.heard.lock().expect("lock");
            heard
                .iter()
                .filter(|(c, _)| c == chat)
                .map(|(_, h)| h.clone())
                .collect()
        }
    }

    #[async_trait]
    impl Adapter for Listening {
        fn name(&self) -> &str {
            "bot"
        }
        fn platform(&self) -> &'static str {
            "test"
        }
        fn text_format(&self) -> crate::format::TextFormat {
            crate::format::TextFormat::Plain
        }
        fn reply_timing(&self) -> crate::adapter::ReplyTiming {
            crate::adapter::ReplyTiming {
                ack_after_ms: 300,
                ..Default::default()
            }
        }
        fn answering(&self, event: &Event, progress: Answering<'_>) {
            let chat = event
                .conversation
                .as_ref()
                .map(|c| c.id.clone())
                .unwrap_or_default();
            let delivered = self.delivered.lock().expect("lock");
            // Which delivery an announced action is tells whether it came before it.
            let heard = match progress {
                Answering::Partial(text) => format!("partial {text}"),
                Answering::Acknowledged { action } => {
                    assert!(!delivered.iter().any(|(id, _)| id == action));
                    "ack".to_string()
                }
                Answering::Answer { action, last } => {
                    assert!(!delivered.iter().any(|(id, _)| id == action));
                    format!("answer last={last}")
                }
                Answering::Unanswered => "unanswered".to_string(),
            };
            self.heard.lock().expect("lock").push((chat, heard));
        }
        async fn deliver(
            &self,
            outgoing: &crate::adapter::Outgoing,
        ) -> Result<crate::adapter::Delivered, crate::adapter::SendError> {
            self.delivered
                .lock()
                .expect("lock")
                .push((outgoing.action_id.clone(), outgoing.text.clone()));
            Ok(crate::adapter::Delivered::Sent)
        }
    }

    /// The event's own adapter hears the answer's text so far, which actions answer it
    /// (the acknowledgement apart, the last marked) before they are delivered, and that
    /// nothing answers an event; another adapter's events are not its business.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_events_adapter_hears_how_its_answer_comes_along() {
        let store: SharedStore = Arc::new(MemoryStore::default());
        let (faults, _) = tokio::sync::mpsc::unbounded_channel();
        let plugins = PluginHost::start(Vec::new(), faults).await;
        let mut handlers = builtins();
        let pieces = |interval_ms| {
            Box::new(crate::handler::Pieces::new(&crate::handler::PiecesConfig {
                pieces: vec!["一".into(), "二".into()],
                interval_ms,
            })) as Box<dyn crate::handler::Handler>
        };
        handlers.insert("typing".into(), pieces(10));
        handlers.insert("slow".into(), pieces(400));
        let handlers = Arc::new(Handlers::new(
            handlers,
            store.clone(),
            plugins,
            Default::default(),
            HashMap::new(),
        ));
        let route = |conversation: &str, handler: &str, continue_| Route {
            id: conversation.into(),
            pattern: Pattern::parse("message.*").expect("pattern"),
            source: None,
            conversation: Some(conversation.into()),
            priority: 0,
            enabled: true,
            continue_,
            handler: handler.into(),
        };
        let router = Router::new(vec![
            route("typing", "typing", true),
            route("typing", "echo", false),
            route("slow", "slow", false),
            route("quiet", "help", false),
        ]);
        let runtime = Runtime::start(store.clone(), router, handlers, &QueueConfig::default());
        let bot = Arc::new(Listening::default());
        runtime.start_adapter(bot.clone()).await.expect("start");
        for (chat, key) in [("typing", "t1"), ("slow", "s1"), ("quiet", "q1")] {
            let mut event = message(chat, "hi", key);
            event.source = "bot".into();
            assert!(runtime.accept(event).await.expect("stored"));
        }
        let mut other = message("typing", "hi", "p1");
        other.source = "phone".into();
        assert!(runtime.accept(other).await.expect("stored"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while bot.delivered.lock().expect("lock").len() < 4 {
            assert!(Instant::now() < deadline, "{:?}", bot.heard.lock());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            bot.heard("typing"),
            [
                "partial 一",
                "partial 一二",
                "answer last=false",
                "answer last=true"
            ]
        );
        assert_eq!(
            bot.heard("slow"),
            ["ack", "partial 一", "partial 一二", "answer last=true"]
        );
        assert_eq!(bot.heard("quiet"), ["unanswered"]);
        let delivered: Vec<String> = bot
            .delivered
            .lock()
            .expect("lock")
            .iter()
            .map(|(_, text)| text.clone())
            .collect();
        assert_eq!(delivered.len(), 4, "{delivered:?}");
    }

    /// Alice's slow answer holds up only Alice, on either backend: the runtime does not
    /// know which store it has.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_conversation_in_order_while_others_go_ahead() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sqlite = SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("store");
        in_order_on(Arc::new(sqlite)).await;
        in_order_on(Arc::new(MemoryStore::default())).await;
    }

    async fn in_order_on(store: SharedStore) {
        let url = slow_hook(600).await;
        let (faults, _) = tokio::sync::mpsc::unbounded_channel();
        let plugins = PluginHost::start(Vec::new(), faults).await;
        let mut handlers = builtins();
        handlers.insert(
            "slow".into(),
            Box::new(Webhook::new("slow", WebhookConfig::new(url)).expect("webhook")),
        );
        handlers.insert(
            "bot".into(),
            Box::new(Pipeline::new(
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
        let runtime = Runtime::start(store.clone(), router, handlers, &QueueConfig::default());
        for event in [
            message("Alice", "~first", "a1"),
            message("Alice", "second", "a2"),
            message("Bob", "meanwhile", "b1"),
        ] {
            assert!(runtime.accept(event).await.expect("stored"));
        }
        let done = wait_for_actions(store.as_ref(), 3).await;
        let texts: Vec<&str> = done.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            texts,
            ["meanwhile", "slow first", "second"],
            "Bob is not held up by Alice's slow answer; Alice's second waits for her first"
        );
        assert_eq!(runtime.handled_events(), 3);
    }
}
