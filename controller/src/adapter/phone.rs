//! A phone: WeChat on an Android phone, driven over ADB by its own actor thread
//! (`tapwire_device_agent::agent`). What the actor reads becomes events; replies go to
//! it, and it types them, presses send and reads the chat back. The phone records how a
//! reply ended itself, in the same step as the read that shows it (so a crash between
//! the two cannot type it twice): its deliveries are [`Delivered::Handed`].

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tapwire_device_agent::UiMaps;
use tapwire_device_agent::agent::{
    self, AgentConfig, AgentError, AgentStats, Batch, DeviceStatus, Orphan, Outbound, PhoneAgent,
    PhoneMessage, SendOutcome, Sink,
};
use tapwire_device_agent::ocr;
use tapwire_device_agent::pacing::PacingConfig;
use tapwire_device_agent::prepare::{self, PrepareReport, Prepared};
use tapwire_device_agent::reader::vision::Capture;
use tapwire_device_agent::reader::{self, AutoReader, ScreenReader, UiTreeReader, VisionReader};
use tapwire_device_agent::screen::ItemKind;
use tapwire_device_agent::transport::{
    self, AdbServerTransport, DirectTcpTransport, Transport, TransportError,
};

use super::{Adapter, AdapterContext, AdapterError, Delivered, Outgoing, ReplyTiming, SendError};
use crate::activity::Activity;
use crate::event::{
    Conversation, ConversationKind, Event, Segment, Sender, event_id, now_rfc3339, types,
};
use crate::format::TextFormat;
use crate::store::{ActionStatus, ReadBatch};
use crate::telemetry;

/// The platform of every phone's events.
pub const PLATFORM: &str = "wechat";

/// Pause between idle checks when neither the phone's section nor `--poll-ms` says.
pub const DEFAULT_POLL: Duration = Duration::from_millis(250);

/// One `[[phones]]` of `tapwire.toml` (or a `--device` of `tapwire run`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneConfig {
    /// The serial `adb devices` shows (for a phone over Wi-Fi, `HOST:PORT`).
    pub serial: String,
    /// The adb server; adb's own default (ANDROID_ADB_SERVER_PORT or 5037) when left out.
    pub adb_server: Option<SocketAddrV4>,
    /// Talk to the phone's adbd over TCP directly, without an adb server.
    #[serde(default)]
    pub direct: bool,
    pub poll_ms: Option<u64>,
    /// After a message, how long the screen is read on every poll (not only when the
    /// change signal moves): the next message of a conversation is noticed sooner, at the
    /// cost of a screen read per poll for that long. 0 turns it off; 20 by default.
    pub hot_secs: Option<u64>,
    pub ack_after_ms: Option<u64>,
    pub give_up_after_ms: Option<u64>,
    pub ack_text: Option<String>,
    pub timeout_text: Option<String>,
    /// Bring WeChat's hidden tree back (a trusted accessibility service, animations off)
    /// before reading; `tapwire phone restore` undoes what it changed.
    #[serde(default = "prepare_by_default")]
    pub prepare: bool,
    /// When replies go out: at a person's pace unless `enabled = false`.
    #[serde(default)]
    pub pacing: PacingConfig,
    /// How the screen is read: `auto` (the tree while WeChat shows it, screenshots while
    /// it hides it), `tree` or `vision`.
    #[serde(default)]
    pub mode: ReadMode,
    /// In `auto` mode, while screenshots are read, how often one dump looks whether the
    /// tree is back (seconds; 30 by default).
    pub probe_secs: Option<u64>,
    /// The OCR engine that reads screenshots: `tesseract` or `ppocr` (PP-OCR through ONNX
    /// Runtime: faster, and surer on rare glyphs); `TAPWIRE_OCR`, else ppocr where it is
    /// installed, else tesseract, when left out.
    pub ocr: Option<ocr::EngineKind>,
}

fn prepare_by_default() -> bool {
    true
}

/// How a phone's screen is read (`mode` of `[[phones]]`, `--mode` of `tapwire run`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ReadMode {
    /// The UI tree while WeChat shows it; screenshots (vision) while it hides it and
    /// `prepare` cannot bring it back; the tree again once it returns.
    #[default]
    Auto,
    /// The UI tree only: a phone whose WeChat hides it is refused with what to do.
    Tree,
    /// Screenshots only, read with OCR (`tesseract`, `chi_sim+eng`).
    Vision,
}

impl PhoneConfig {
    /// A phone known only by its serial (`tapwire run --device`).
    pub fn serial(serial: impl Into<String>) -> PhoneConfig {
        PhoneConfig {
            serial: serial.into(),
            adb_server: None,
            direct: false,
            poll_ms: None,
            hot_secs: None,
            ack_after_ms: None,
            give_up_after_ms: None,
            ack_text: None,
            timeout_text: None,
            prepare: true,
            pacing: PacingConfig::default(),
            mode: ReadMode::default(),
            probe_secs: None,
            ocr: None,
        }
    }

    pub fn timing(&self) -> ReplyTiming {
        let default = ReplyTiming::default();
        ReplyTiming {
            ack_after_ms: self.ack_after_ms.unwrap_or(default.ack_after_ms),
            give_up_after_ms: self.give_up_after_ms.unwrap_or(default.give_up_after_ms),
            ack_text: self.ack_text.clone().unwrap_or(default.ack_text),
            timeout_text: self.timeout_text.clone().unwrap_or(default.timeout_text),
        }
    }

    /// Opens the phone's ADB connection (blocking).
    pub fn connect(&self) -> Result<Box<dyn Transport>, TransportError> {
        if self.direct {
            let addr: SocketAddr = self.serial.parse().map_err(|_| TransportError::Adb {
                target: self.serial.clone(),
                message: "with --direct the serial must be HOST:PORT".into(),
            })?;
            Ok(Box::new(DirectTcpTransport::connect(addr)?))
        } else {
            let server = self
                .adb_server
                .unwrap_or_else(|| transport::adb_server_addr(None));
            Ok(Box::new(AdbServerTransport::connect(server, &self.serial)?))
        }
    }
}

/// What the actor's thread and the adapter share.
#[derive(Default)]
struct Shared {
    /// Replies an earlier run handed to this phone and never saw finish: each may have
    /// gone out before the crash, which the phone's next read of its chat shows.
    unconfirmed: Mutex<HashSet<String>>,
    /// Replies handed to the actor, by action id, for activity reports.
    in_flight: Mutex<HashMap<String, Outgoing>>,
}

pub struct PhoneAdapter {
    config: PhoneConfig,
    poll: Duration,
    maps: UiMaps,
    shared: Arc<Shared>,
    outbound: Mutex<Option<std::sync::mpsc::Sender<Outbound>>>,
    /// Taken by the actor when it starts.
    inbound_end: Mutex<Option<std::sync::mpsc::Receiver<Outbound>>>,
    stop: Arc<AtomicBool>,
    /// Set when the phone could not be made ready: it counts as stopped for health.
    refused: AtomicBool,
    actor: Mutex<Option<JoinHandle<Result<AgentStats, AgentError>>>>,
}

impl PhoneAdapter {
    pub fn new(config: PhoneConfig, poll: Duration, maps: UiMaps) -> PhoneAdapter {
        let (tx, rx) = std::sync::mpsc::channel();
        let poll = config.poll_ms.map_or(poll, Duration::from_millis);
        PhoneAdapter {
            config,
            poll,
            maps,
            shared: Arc::new(Shared::default()),
            outbound: Mutex::new(Some(tx)),
            inbound_end: Mutex::new(Some(rx)),
            stop: Arc::new(AtomicBool::new(false)),
            refused: AtomicBool::new(false),
            actor: Mutex::new(None),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere while holding a lock leaves these maps intact.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[async_trait]
impl Adapter for PhoneAdapter {
    fn name(&self) -> &str {
        &self.config.serial
    }

    fn platform(&self) -> &'static str {
        PLATFORM
    }

    /// WeChat shows markdown literally.
    fn text_format(&self) -> TextFormat {
        TextFormat::Plain
    }

    fn reply_timing(&self) -> ReplyTiming {
        self.config.timing()
    }

    /// The actor types text into a chat; it cannot pick media from the phone yet.
    fn can_send(&self, kind: crate::event::AttachmentKind) -> Result<(), SendError> {
        Err(SendError::Permanent(format!(
            "sending {} through the phone is not supported yet",
            kind.plural()
        )))
    }

    async fn deliver(&self, outgoing: &Outgoing) -> Result<Delivered, SendError> {
        if outgoing.resumed {
            // The phone's next read of that chat settles it if it went out.
            lock(&self.shared.unconfirmed).insert(outgoing.action_id.clone());
        }
        lock(&self.shared.in_flight).insert(outgoing.action_id.clone(), outgoing.clone());
        let sent = lock(&self.outbound).as_ref().map(|tx| {
            tx.send(Outbound {
                action_id: outgoing.action_id.clone(),
                conversation: outgoing.conversation.clone(),
                text: outgoing.text.clone(),
            })
        });
        if !matches!(sent, Some(Ok(()))) {
            // Still dispatched in the store: the next run takes it up.
            tracing::warn!(action = %outgoing.action_id, phone = %self.config.serial, "phone stopped; the reply stays queued for the next run");
        }
        Ok(Delivered::Handed)
    }

    async fn start(&self, ctx: AdapterContext) -> Result<(), AdapterError> {
        let serial = self.config.serial.clone();
        // Shown from the start: a phone that never comes up is a disconnected one.
        telemetry::phone_connected(&serial, false);
        let failed = |e: String| AdapterError::Start(format!("phone {serial}: {e}"));
        let outbound = lock(&self.inbound_end)
            .take()
            .ok_or_else(|| failed("started twice".into()))?;
        let (config, maps) = (self.config.clone(), self.maps.clone());
        let ready = tokio::task::spawn_blocking(move || connect_ready(&config, &maps))
            .await
            .map_err(|e| failed(e.to_string()))
            .and_then(|ready| ready);
        let (transport, prepared) =
            ready.inspect_err(|_| self.refused.store(true, Ordering::Relaxed))?;
        if let Some(report) = prepared {
            if !report.changes.is_empty() {
                tracing::warn!(phone = %serial, changes = ?report.changes, "{}", report.prepared.advice(&serial));
            }
            ctx.report(Activity::Prepared {
                device: serial.clone(),
                report,
            });
        }
        let sink = PhoneSink {
            device: serial.clone(),
            ctx,
            shared: self.shared.clone(),
            handle: tokio::runtime::Handle::current(),
            read_any: false,
        };
        let mut agent_config = AgentConfig::new(serial.clone());
        agent_config.poll_interval = self.poll;
        if let Some(secs) = self.config.hot_secs {
            agent_config.hot_window = Duration::from_secs(secs);
        }
        agent_config.pacing = self.config.pacing.clone();
        let (maps, stop) = (self.maps.clone(), self.stop.clone());
        let engine = self.config.ocr;
        let (mode, probe) = (
            self.config.mode,
            self.config
                .probe_secs
                .map_or(reader::auto::DEFAULT_PROBE_EVERY, Duration::from_secs),
        );
        // Building the agent asks the phone for its WeChat version and loads the OCR
        // engine: blocking work, done once per connection.
        let live = crate::live::phone(&serial);
        let actor = tokio::task::spawn_blocking(move || {
            let mut agent = build_agent(
                (mode, engine),
                probe,
                agent_config,
                transport,
                &maps,
                Box::new(sink),
                outbound,
            )?;
            agent.observe_with(live);
            agent::spawn(agent, stop)
                .map_err(|e| AgentError::Sink(format!("cannot start the phone's thread: {e}")))
        })
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(|e| failed(e.to_string()))?;
        *lock(&self.actor) = Some(actor);
        Ok(())
    }

    fn finished(&self) -> bool {
        self.refused.load(Ordering::Relaxed)
            || lock(&self.actor)
                .as_ref()
                .is_some_and(JoinHandle::is_finished)
    }

    async fn stop(&self) -> Result<(), AdapterError> {
        self.stop.store(true, Ordering::Relaxed);
        telemetry::phone_connected(&self.config.serial, false);
        crate::health::of(&self.config.serial).connected(false);
        lock(&self.outbound).take();
        let Some(actor) = lock(&self.actor).take() else {
            return Ok(());
        };
        let serial = self.config.serial.clone();
        let result = tokio::task::spawn_blocking(move || {
            actor
                .join()
                .unwrap_or_else(|_| Err(AgentError::Sink("the phone's thread panicked".into())))
        })
        .await
        .map_err(|e| AdapterError::Stopped(format!("phone {serial}: {e}")))?;
        match result {
            Ok(stats) => {
                tracing::info!(phone = %serial, ?stats, "phone stopped");
                Ok(())
            }
            Err(error) => Err(AdapterError::Stopped(format!("phone {serial}: {error}"))),
        }
    }
}

/// The phone's actor, reading the screen as `mode` says. In `vision` mode the OCR engine
/// is loaded here, when the phone connects, so that no screen waits for it; in `auto` mode
/// when WeChat first hides its tree.
fn build_agent(
    (mode, engine): (ReadMode, Option<ocr::EngineKind>),
    probe: Duration,
    config: AgentConfig,
    mut transport: Box<dyn Transport>,
    maps: &UiMaps,
    sink: Box<dyn Sink>,
    outbound: std::sync::mpsc::Receiver<Outbound>,
) -> Result<PhoneAgent, AgentError> {
    let vision = move |device: &str| {
        ocr::engine(engine).map(|engine| VisionReader::new(device, engine, Capture::Raw))
    };
    match mode {
        ReadMode::Tree => PhoneAgent::new(config, transport, maps, sink, outbound),
        ReadMode::Vision => {
            let reader = vision(&config.device).map_err(|e| AgentError::Vision(e.to_string()))?;
            tracing::info!(device = %config.device, reader = %reader.name(), "reading the screen from screenshots (mode = vision)");
            PhoneAgent::with_reader(config, transport, Box::new(reader), sink, outbound)
        }
        ReadMode::Auto => {
            let (version, map) = agent::detect_map(transport.as_mut(), maps, &config.device)?;
            let tree = UiTreeReader::new(config.device.clone(), map, version);
            let device = config.device.clone();
            // Loaded only if WeChat hides its tree: the engine's memory is kept for phones
            // that need it.
            let build = Box::new(move || vision(&device).map_err(|e| e.to_string()));
            let reader = AutoReader::lazy(config.device.clone(), tree, build).probe_every(probe);
            PhoneAgent::with_reader(config, transport, Box::new(reader), sink, outbound)
        }
    }
}

/// Connects to the phone and, unless the config says not to, prepares it (see
/// `tapwire_device_agent::prepare`). A phone that cannot be read at all, or must not be
/// tapped, is refused here with what the user can do about it. In `auto` mode a tree that
/// `prepare` cannot bring back is no refusal: screenshots are read instead; in `vision`
/// mode the tree is not touched.
fn connect_ready(
    config: &PhoneConfig,
    maps: &UiMaps,
) -> Result<(Box<dyn Transport>, Option<PrepareReport>), AdapterError> {
    let failed = |e: String| AdapterError::Start(format!("phone {}: {e}", config.serial));
    let mut transport = config.connect().map_err(|e| failed(e.to_string()))?;
    // A build without a map cannot be read through its tree however it is prepared: say
    // that first. Screenshots need no map.
    if config.mode != ReadMode::Vision {
        agent::detect_map(transport.as_mut(), maps, &config.serial)
            .map_err(|e| failed(e.to_string()))?;
    }
    if !config.prepare || config.mode == ReadMode::Vision {
        // Even unprepared, a phone whose taps only move TalkBack's focus is not driven.
        if prepare::talkback_on(transport.as_mut()).map_err(|e| failed(e.to_string()))? {
            return Err(AdapterError::Start(
                Prepared::TalkBackOn.advice(&config.serial),
            ));
        }
        return Ok((transport, None));
    }
    let report = prepare::prepare(transport.as_mut()).map_err(|e| failed(e.to_string()))?;
    let vision_can = matches!(
        report.prepared,
        Prepared::StillHidden { .. } | Prepared::NoTrustedService
    );
    let readable = report.prepared.ready() || (vision_can && config.mode == ReadMode::Auto);
    if !readable {
        return Err(AdapterError::Start(report.prepared.advice(&config.serial)));
    }
    if !report.prepared.ready() {
        tracing::warn!(phone = %config.serial, advice = %report.prepared.advice(&config.serial), "the tree stays hidden; mode = auto reads screenshots");
    }
    Ok((transport, Some(report)))
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
        (None, ItemKind::Media) => vec![Segment::Image {
            url: None,
            path: None,
        }],
        (None, _) => vec![Segment::Unknown],
    };
    Event {
        id: event_id(&message.key),
        event_type: event_type.into(),
        source: device.to_string(),
        platform: PLATFORM.into(),
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

/// The actor's side of the controller: called on the phone's thread, so it blocks on
/// the async store through the runtime's handle.
struct PhoneSink {
    device: String,
    ctx: AdapterContext,
    shared: Arc<Shared>,
    handle: tokio::runtime::Handle,
    /// Whether a new message was read in this run: until one is, the last-read time shown
    /// is the connection's, so that "nothing read for an hour" has a start.
    read_any: bool,
}

impl PhoneSink {
    /// Reports a reply's end (stored already) to whoever watches the activity.
    fn finished(&self, action_id: &str, outcome: SendOutcome) {
        telemetry::action_finished(&self.device, !matches!(outcome, SendOutcome::Failed { .. }));
        lock(&self.shared.unconfirmed).remove(action_id);
        let Some(outgoing) = lock(&self.shared.in_flight).remove(action_id) else {
            return;
        };
        let device = self.device.clone();
        self.ctx.report(match outcome {
            SendOutcome::Failed { reason } => Activity::ReplyFailed {
                device,
                conversation: outgoing.conversation,
                reason,
            },
            _ => Activity::Replied {
                device,
                conversation: outgoing.conversation,
                text: outgoing.text,
            },
        });
    }
}

/// Where a phone's unnamed chats (opened by mistake) are kept: beside its chats'
/// watermarks, under a name no WeChat chat can have (WeChat drops control characters
/// from names).
const ORPHANS_KEY: &str = "\u{1}orphans";

impl Sink for PhoneSink {
    fn orphans(&mut self, device: &str) -> Result<Vec<Orphan>, String> {
        let stored = self
            .handle
            .block_on(self.ctx.store.watermark(device, ORPHANS_KEY))
            .map_err(|e| e.to_string())?;
        match stored {
            None => Ok(Vec::new()),
            Some(json) => serde_json::from_str(&json)
                .map_err(|e| format!("stored unnamed chats of {device} are not valid JSON: {e}")),
        }
    }

    fn keep_orphans(&mut self, device: &str, orphans: &[Orphan]) -> Result<(), String> {
        let json = serde_json::to_string(orphans).map_err(|e| e.to_string())?;
        self.handle
            .block_on(self.ctx.store.record(ReadBatch {
                device,
                conversation: ORPHANS_KEY,
                watermark: &json,
                events: &[],
                delivered: &[],
                unconfirmed: &[],
            }))
            .map(drop)
            .map_err(|e| e.to_string())
    }

    fn watermark(
        &mut self,
        device: &str,
        conversation: &str,
    ) -> Result<Option<tapwire_device_agent::tail::Watermark>, String> {
        let stored = self
            .handle
            .block_on(self.ctx.store.watermark(device, conversation))
            .map_err(|e| e.to_string())?;
        stored
            .map(|state| {
                serde_json::from_str(&state).map_err(|e| {
                    format!("stored watermark of {device}/{conversation} is not valid JSON: {e}")
                })
            })
            .transpose()
    }

    fn record(&mut self, batch: Batch) -> Result<Vec<String>, String> {
        let events: Vec<Event> = batch
            .messages
            .iter()
            .map(|m| phone_event(&batch.device, m))
            .collect();
        let unconfirmed: Vec<String> = lock(&self.shared.unconfirmed).iter().cloned().collect();
        let delivered: Vec<String> = batch
            .delivered
            .iter()
            .map(|d| d.action_id.clone())
            .collect();
        let watermark = serde_json::to_string(&batch.watermark).map_err(|e| e.to_string())?;
        let recorded = self
            .handle
            .block_on(self.ctx.store.record(ReadBatch {
                device: &batch.device,
                conversation: &batch.conversation,
                watermark: &watermark,
                events: &events,
                delivered: &delivered,
                unconfirmed: &unconfirmed,
            }))
            .map_err(|e| e.to_string())?;
        for reply in &batch.delivered {
            self.finished(
                &reply.action_id,
                SendOutcome::Sent {
                    method: reply.method,
                },
            );
        }
        for id in &recorded.settled {
            self.finished(id, SendOutcome::AlreadySent);
        }
        if !recorded.fresh.is_empty() {
            self.read_any = true;
            crate::health::of(&self.device).message_read();
            telemetry::phone_read(&self.device, std::time::SystemTime::now());
        }
        for event in recorded.fresh {
            let Some(message) = batch
                .messages
                .iter()
                .find(|m| m.key == event.idempotency_key)
            else {
                continue;
            };
            self.ctx.report(Activity::Received {
                device: batch.device.clone(),
                conversation: batch.conversation.clone(),
                sender: message.sender.clone(),
                text: message.text.clone(),
                is_self: message.is_self,
            });
            self.ctx.inbox.submit(event);
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
                lock(&self.shared.unconfirmed).insert(action_id.to_string());
                return Ok(());
            }
        };
        self.handle
            .block_on(self.ctx.store.set_action_status(action_id, status, error))
            .map_err(|e| e.to_string())?;
        self.finished(action_id, outcome);
        Ok(())
    }

    fn status(&mut self, device: &str, status: DeviceStatus) {
        tracing::info!(device, ?status, "device status");
        let health = crate::health::of(device);
        match &status {
            DeviceStatus::Connected { map, .. } => {
                health.connected(true);
                health.reader(map);
            }
            DeviceStatus::Disconnected { .. } => health.connected(false),
            DeviceStatus::ReaderChanged { reader, .. } => health.reader(reader),
            DeviceStatus::ScreenUnrecognized { .. } | DeviceStatus::DialogDismissed { .. } => {}
        }
        match status {
            DeviceStatus::Connected { .. } => {
                telemetry::phone_connected(device, true);
                if !self.read_any {
                    telemetry::phone_read(device, std::time::SystemTime::now());
                }
            }
            DeviceStatus::Disconnected { .. } => telemetry::phone_connected(device, false),
            DeviceStatus::ScreenUnrecognized { .. }
            | DeviceStatus::DialogDismissed { .. }
            | DeviceStatus::ReaderChanged { .. } => {}
        }
        let event_type = match status {
            DeviceStatus::Connected { .. } => types::DEVICE_CONNECTED,
            DeviceStatus::Disconnected { .. } => types::DEVICE_DISCONNECTED,
            DeviceStatus::ScreenUnrecognized { .. } | DeviceStatus::DialogDismissed { .. } => {
                types::DEVICE_SCREEN_UNRECOGNIZED
            }
            DeviceStatus::ReaderChanged { .. } => types::DEVICE_READER_CHANGED,
        };
        let key = format!("{device}:{event_type}:{}", now_rfc3339());
        let event = Event::notice(
            event_type,
            device,
            PLATFORM,
            key,
            serde_json::to_value(&status).unwrap_or_default(),
        );
        if let Err(error) = self.handle.block_on(self.ctx.inbox.accept(event)) {
            tracing::error!(device, %error, "cannot store a device event");
        }
        self.ctx.report(Activity::Device {
            device: device.to_string(),
            status,
        });
    }
}
