//! The running controller: phones feed events into the store, the router hands stored
//! events to the pipeline, and the actions it returns are stored, then dispatched to the
//! phone that must carry them out. A restart picks up what was stored and not finished.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tapwire_device_agent::UiMaps;
use tapwire_device_agent::agent::{
    self, AgentConfig, AgentError, AgentStats, Batch, DeviceStatus, Outbound, PhoneAgent,
    PhoneMessage, SendOutcome, Sink,
};
use tapwire_device_agent::screen::ItemKind;
use tapwire_device_agent::tail::Watermark;
use tapwire_device_agent::transport::Transport;
use tokio::sync::{broadcast, mpsc};

use crate::event::{
    Action, Conversation, ConversationKind, Event, Segment, Sender, now_rfc3339, types,
};
use crate::pipeline::Pipeline;
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

pub struct Runtime {
    store: Store,
    router: Router,
    phones: Mutex<HashMap<String, std::sync::mpsc::Sender<Outbound>>>,
    /// Sent actions' texts by id, for activity reports.
    in_flight: Mutex<HashMap<String, Action>>,
    events: mpsc::UnboundedSender<Event>,
    activity: broadcast::Sender<Activity>,
}

impl Runtime {
    /// Creates the runtime and starts its router task.
    pub fn start(store: Store, router: Router) -> Arc<Runtime> {
        let (events, rx) = mpsc::unbounded_channel();
        let (activity, _) = broadcast::channel(1024);
        let runtime = Arc::new(Runtime {
            store,
            router,
            phones: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
            events,
            activity,
        });
        tokio::spawn(route_loop(runtime.clone(), rx));
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

    /// Registers a phone's outbound queue; returns its receiving end for the agent.
    pub fn register_phone(&self, device: &str) -> std::sync::mpsc::Receiver<Outbound> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.lock_phones().insert(device.to_string(), tx);
        rx
    }

    fn lock_phones(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, std::sync::mpsc::Sender<Outbound>>> {
        // A panic elsewhere while holding the lock leaves the map itself intact.
        self.phones.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_in_flight(&self) -> std::sync::MutexGuard<'_, HashMap<String, Action>> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Closes every phone's queue so the agents stop.
    pub fn close_phones(&self) {
        self.lock_phones().clear();
    }

    /// Finishes what a previous run left: actions first (they were decided already), then
    /// events that were stored but not handled.
    pub async fn recover(&self) -> Result<(), StoreError> {
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
            let maybe_sent = action.status == "dispatched";
            self.dispatch(action, maybe_sent).await?;
        }
        for event in events {
            let _ = self.events.send(event);
        }
        Ok(())
    }

    async fn route(&self, event: Event) -> Result<(), StoreError> {
        let actions: Vec<Action> = self
            .router
            .route(&event)
            .into_iter()
            .flat_map(|route| {
                tracing::debug!(event = %event.id, route = %route.id, handler = ?route.handler, "route matched");
                Pipeline::new(route.handler).handle(&event)
            })
            .collect();
        tracing::debug!(event = %event.id, r#type = %event.event_type, actions = actions.len(), "routed");
        let stored = self.store.complete_event(&event, &actions).await?;
        for action in stored {
            self.dispatch(action, false).await?;
        }
        Ok(())
    }

    async fn dispatch(&self, stored: StoredAction, maybe_sent: bool) -> Result<(), StoreError> {
        let Action::Send {
            target,
            conversation,
            text,
        } = &stored.action;
        let sender = self.lock_phones().get(target).cloned();
        match sender {
            Some(sender) => {
                self.store
                    .set_action_status(&stored.id, ActionStatus::Dispatched, None)
                    .await?;
                self.lock_in_flight()
                    .insert(stored.id.clone(), stored.action.clone());
                let outbound = Outbound {
                    action_id: stored.id.clone(),
                    conversation: conversation.clone(),
                    text: text.clone(),
                    maybe_sent,
                };
                if sender.send(outbound).is_err() {
                    tracing::warn!(action = %stored.id, %target, "phone stopped; the reply stays queued for the next run");
                }
            }
            None => {
                // Not connected now: kept open, so the next run delivers it.
                tracing::warn!(action = %stored.id, %target, "no such phone connected; reply kept for later");
            }
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

async fn route_loop(runtime: Arc<Runtime>, mut rx: mpsc::UnboundedReceiver<Event>) {
    while let Some(event) = rx.recv().await {
        if let Err(error) = runtime.route(event.clone()).await {
            // The event stays pending in the store and is routed again on restart.
            tracing::error!(event = %event.id, %error, "routing failed");
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

/// The agent's side of the store: called on the phone's thread, so it blocks on the async
/// store through the runtime's handle.
struct PhoneSink {
    runtime: Arc<Runtime>,
    handle: tokio::runtime::Handle,
}

impl Sink for PhoneSink {
    fn watermark(&mut self, device: &str, conversation: &str) -> Result<Option<Watermark>, String> {
        self.handle
            .block_on(self.runtime.store.watermark(device, conversation))
            .map_err(|e| e.to_string())
    }

    fn record(&mut self, batch: Batch) -> Result<(), String> {
        let events: Vec<Event> = batch
            .messages
            .iter()
            .map(|m| phone_event(&batch.device, m))
            .collect();
        let fresh = self
            .handle
            .block_on(self.runtime.store.record(
                &batch.device,
                &batch.conversation,
                &batch.watermark,
                &events,
            ))
            .map_err(|e| e.to_string())?;
        for event in fresh {
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
            let _ = self.runtime.events.send(event);
        }
        Ok(())
    }

    fn sent(&mut self, action_id: &str, outcome: SendOutcome) -> Result<(), String> {
        let (status, error) = match &outcome {
            SendOutcome::Sent { .. } | SendOutcome::AlreadySent => (ActionStatus::Done, None),
            SendOutcome::Failed { reason } => (ActionStatus::Failed, Some(reason.as_str())),
        };
        self.handle
            .block_on(
                self.runtime
                    .store
                    .set_action_status(action_id, status, error),
            )
            .map_err(|e| e.to_string())?;
        let action = self.runtime.lock_in_flight().remove(action_id);
        if let Some(Action::Send {
            target,
            conversation,
            text,
        }) = action
        {
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
        let timestamp = now_rfc3339();
        let key = format!("{device}:{event_type}:{timestamp}");
        let event = Event {
            id: format!("ev_{}", short_hash(&key)),
            event_type: event_type.into(),
            source: device.to_string(),
            platform: "wechat".into(),
            idempotency_key: key,
            conversation: None,
            sender: None,
            content: Vec::new(),
            platform_message_id: None,
            timestamp,
            raw: serde_json::to_value(&status).unwrap_or_default(),
        };
        match self
            .handle
            .block_on(self.runtime.store.insert_event(&event))
        {
            Ok(true) => {
                let _ = self.runtime.events.send(event);
            }
            Ok(false) => {}
            Err(error) => tracing::error!(device, %error, "cannot store a device event"),
        }
        self.runtime.report(Activity::Device {
            device: device.to_string(),
            status,
        });
    }
}
