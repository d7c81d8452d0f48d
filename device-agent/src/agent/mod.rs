//! One actor per phone: it owns the phone's ADB transport, so every read and every tap is
//! serialised through it. It watches WeChat cheaply while idle, reads what is new, hands it
//! to a [`Sink`] (which stores it before anything answers), and types the replies it is
//! given, checking each one appears in the chat. What is on screen it learns from a
//! [`ScreenReader`] (the UI tree unless told otherwise), never by looking itself.
//!
//! The actor is one type, [`PhoneAgent`], whose work is spread over one file per concern,
//! each an `impl PhoneAgent` block: `scan` (what on the phone is news), `navigate` (getting
//! to a chat and back), `chat` (what in an open chat is new, and recording it), `send`
//! (typing replies and checking they went out). This file holds what the controller sees
//! (configuration, errors, the [`Sink`], stats, [`spawn`]) and the run loop.

mod chat;
mod navigate;
mod observe;
mod scan;
mod send;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::dump::{DumpError, Rect};
use crate::input::{DEFAULT_METHODS, InputMethod};
use crate::pacing::{Moment, Pacer, PacingConfig};
use crate::reader::{ReadError, ScreenReader, UiTreeReader};
use crate::screen::{ChatView, ItemKind, ScreenKind, ScreenReading};
use crate::tail::Watermark;
use crate::transport::{ShellOutput, Transport, TransportError};
use crate::uimap::{UiMap, UiMapError, UiMaps, Version};

pub use observe::{MessageSeen, Observation, Observer, RoleBox, RowSeen};
pub use scan::Orphan;
use scan::{KnownChat, RowHint};

/// One shell call for the idle check: WeChat's redraw counter and the focused window.
const IDLE_COMMAND: &str = "dumpsys gfxinfo com.tencent.mm | grep 'Total frames rendered'; dumpsys window | grep mCurrentFocus";
/// Fallback where gfxinfo has no frame counter: WeChat's notifications and the focus.
const IDLE_FALLBACK_COMMAND: &str = "dumpsys notification --noredact | grep -E 'pkg=com.tencent.mm|android.text='; dumpsys window | grep mCurrentFocus";

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    UiMap(#[from] UiMapError),
    #[error(
        "WeChat is not installed on {device} (`dumpsys package com.tencent.mm` names no version)"
    )]
    NoWechat { device: String },
    #[error("the screen could not be dumped after {attempts} attempts: {last}")]
    Dump { attempts: u32, last: DumpError },
    #[error(
        "WeChat {version} hides its screen from uiautomator on this phone (the dump is one empty node). `tapwire phone prepare` brings it back where Android Accessibility Suite (Select to Speak) or 点明 is installed; where neither can be, vision mode (screenshots) is the alternative"
    )]
    HiddenTree { version: String },
    /// The vision reader could not take or read a screenshot.
    #[error("the screen could not be read from a screenshot: {0}")]
    Vision(String),
    #[error("the sink refused the batch: {0}")]
    Sink(String),
}

/// Each way a read fails ends as the error the actor has always given for it, so that the
/// run loop and the controller treat it as before.
impl From<ReadError> for AgentError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::Transport(e) => AgentError::Transport(e),
            ReadError::Dump { attempts, last } => AgentError::Dump { attempts, last },
            ReadError::HiddenTree { version } => AgentError::HiddenTree { version },
            e @ (ReadError::Screenshot { .. } | ReadError::Ocr(_)) => {
                AgentError::Vision(e.to_string())
            }
        }
    }
}

/// Where the actor's readings go. Implemented by the controller over its store: `record`
/// must make the events, the conversation's new watermark and the batch's `delivered`
/// reply durable together before it returns, so that a crash either loses all (the
/// messages are read again, the reply looked for again) or none.
pub trait Sink: Send {
    fn watermark(&mut self, device: &str, conversation: &str) -> Result<Option<Watermark>, String>;
    /// Returns the replies that the batch's own messages show went out already: sends of
    /// an earlier run that a crash kept from being marked done. They must not be typed.
    fn record(&mut self, batch: Batch) -> Result<Vec<String>, String>;
    fn sent(&mut self, action_id: &str, outcome: SendOutcome) -> Result<(), String>;
    fn status(&mut self, device: &str, status: DeviceStatus);
    /// Chats that opened by mistake and could not be named, as last kept: opening them
    /// cleared their badge, so what they showed is all that is left of their news, and
    /// it must outlive a restart. A sink that keeps nothing loses them on a crash.
    fn orphans(&mut self, _device: &str) -> Result<Vec<Orphan>, String> {
        Ok(Vec::new())
    }
    fn keep_orphans(&mut self, _device: &str, _orphans: &[Orphan]) -> Result<(), String> {
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Batch {
    pub device: String,
    pub conversation: String,
    pub watermark: Watermark,
    pub messages: Vec<PhoneMessage>,
    /// The replies whose bubbles this batch's watermark ends with: they are done exactly
    /// when the watermark that covers them is stored.
    pub delivered: Vec<Delivered>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivered {
    pub action_id: String,
    pub method: InputMethod,
}

/// A message read off the phone, before it becomes an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhoneMessage {
    pub key: String,
    pub seq: u64,
    pub conversation: String,
    pub is_group: bool,
    /// None for the phone's owner.
    pub sender: Option<String>,
    pub is_self: bool,
    pub text: Option<String>,
    pub kind: ItemKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SendOutcome {
    Sent {
        method: InputMethod,
    },
    /// Found in the chat already (a send that completed before a crash).
    AlreadySent,
    /// The phone went away in the middle of it: it may or may not have gone out. The
    /// actor tries again when the phone is back, and the chat's next read tells whether
    /// it went (the sink settles it, [`Sink::record`]).
    Interrupted,
    Failed {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum DeviceStatus {
    Connected {
        wechat: String,
        map: String,
    },
    Disconnected {
        reason: String,
    },
    ScreenUnrecognized {
        kind: ScreenKind,
        hint: String,
    },
    DialogDismissed {
        texts: Vec<String>,
        button: String,
    },
    /// The screen is read another way from now on (`mode = "auto"`: screenshots while
    /// WeChat hides its tree, the tree again once it shows it), and why.
    ReaderChanged {
        reader: String,
        reason: String,
    },
}

/// A reply to type into a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    pub action_id: String,
    pub conversation: String,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The phone's id in events (its serial).
    pub device: String,
    /// Pause between idle checks.
    pub poll_interval: Duration,
    /// How long to stay in a chat for replies to what was just read.
    pub reply_wait: Duration,
    /// How far to scroll back in a chat (in screens) looking for the last message seen.
    pub max_scroll_pages: usize,
    pub input_methods: Vec<InputMethod>,
    pub idle: IdleStrategy,
    /// After news, for this long the actor looks at the screen on every poll instead of
    /// waiting for the change signal: conversations come in bursts, and within one the
    /// next message is noticed as soon as a screen read can show it. Zero turns it off.
    pub hot_window: Duration,
    /// When replies may go out; off unless the caller asks (the controller's phones
    /// default to a person's pace).
    pub pacing: PacingConfig,
}

/// How the actor notices that something changed while it waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdleStrategy {
    /// One cheap call (WeChat's redraw counter and the focused window); dump only when it
    /// changed.
    #[default]
    ChangeSignal,
    /// Dump the screen on every poll: what most WeChat bots do; kept for comparison.
    FullDump,
}

impl AgentConfig {
    pub fn new(device: impl Into<String>) -> Self {
        AgentConfig {
            device: device.into(),
            poll_interval: Duration::from_millis(250),
            reply_wait: Duration::from_millis(1500),
            max_scroll_pages: 8,
            input_methods: DEFAULT_METHODS.to_vec(),
            idle: IdleStrategy::default(),
            hot_window: Duration::from_secs(20),
            pacing: PacingConfig::off(),
        }
    }
}

/// What the idle check last saw.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct IdleSignal(String);

/// Counters for status and benchmarks.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AgentStats {
    pub idle_checks: u64,
    /// Looks at the screen: the shell calls the screen reader made (a uiautomator dump
    /// each), retries included.
    pub dumps: u64,
    pub shell_calls: u64,
    pub messages: u64,
    pub replies_sent: u64,
    pub replies_failed: u64,
}

pub struct PhoneAgent {
    config: AgentConfig,
    transport: Box<dyn Transport>,
    reader: Box<dyn ScreenReader>,
    wechat_version: String,
    sink: Box<dyn Sink>,
    outbound: Receiver<Outbound>,
    pending: Vec<Outbound>,
    pacer: Pacer,
    /// When each queued reply has been "typed" for long enough, by action id.
    typed_by: HashMap<String, Instant>,
    /// The phone's offset from UTC in seconds, asked once when quiet hours need it.
    utc_offset: Option<i64>,
    last_signal: Option<IdleSignal>,
    /// When a message from someone was last read (for the hot window).
    last_news: Option<Instant>,
    use_fallback_signal: bool,
    /// The conversation the actor opened last, for chats whose title bar holds no text.
    current_chat: Option<String>,
    /// Messages were just read in the open chat and their answers may be on the way.
    awaiting_replies: bool,
    known: HashMap<String, KnownChat>,
    /// Badges seen but not yet read, with what the list said then. Opening a chat clears
    /// its badge, so if the wrong chat opens (the list moved under the tap) this is all
    /// that is left of its news.
    unread_seen: HashMap<String, RowHint>,
    /// The open chat as last read, while nothing has touched the screen since.
    fresh_chat: Option<ChatView>,
    /// Replies the store found already sent (by an earlier run, before a crash): dropped if
    /// they are queued, or when they arrive.
    settled: HashSet<String>,
    /// Chats that opened by mistake and could not be named: opening cleared their badge,
    /// so their first read must learn from here what was news.
    orphans: Vec<Orphan>,
    /// How the last reply went out, while nothing has shown it to be stale.
    proven_send: Option<send::ProvenSend>,
    /// An orphan was used up by a read not yet stored.
    orphans_changed: bool,
    /// Who is shown each screen read (a live view), and what was shown last.
    observing: observe::Observing,
    pub stats: AgentStats,
}

/// Reads `versionName=` from `dumpsys package com.tencent.mm` (the first block wins when a
/// system app prints two).
pub fn parse_version_name(dumpsys: &str) -> Option<String> {
    dumpsys.lines().find_map(|line| {
        let value = line.trim().strip_prefix("versionName=")?;
        let value = value.split_whitespace().next()?;
        (!value.is_empty()).then(|| value.to_string())
    })
}

/// Asks the phone for its WeChat version and picks the UI map for it.
pub fn detect_map(
    transport: &mut dyn Transport,
    maps: &UiMaps,
    device: &str,
) -> Result<(String, UiMap), AgentError> {
    let version = wechat_version(transport, device)?;
    let map = maps.for_version(&Version::parse(&version)?)?.clone();
    Ok((version, map))
}

/// Asks the phone which WeChat it runs.
fn wechat_version(transport: &mut dyn Transport, device: &str) -> Result<String, AgentError> {
    let output = transport.shell("dumpsys package com.tencent.mm")?;
    parse_version_name(&output.stdout_text()).ok_or_else(|| AgentError::NoWechat {
        device: device.to_string(),
    })
}

impl PhoneAgent {
    /// An actor that reads the screen from the UI tree, with the map for the phone's
    /// WeChat version.
    pub fn new(
        config: AgentConfig,
        mut transport: Box<dyn Transport>,
        maps: &UiMaps,
        sink: Box<dyn Sink>,
        outbound: Receiver<Outbound>,
    ) -> Result<Self, AgentError> {
        let (wechat_version, map) = detect_map(transport.as_mut(), maps, &config.device)?;
        let reader = UiTreeReader::new(config.device.clone(), map, wechat_version.clone());
        Ok(Self::assemble(
            config,
            transport,
            wechat_version,
            Box::new(reader),
            sink,
            outbound,
        ))
    }

    /// An actor that reads the screen with `reader`, which the caller built for this phone
    /// (screenshots where WeChat hides its tree, a script in tests). The phone is still
    /// asked for its WeChat version: status reports name it.
    pub fn with_reader(
        config: AgentConfig,
        mut transport: Box<dyn Transport>,
        reader: Box<dyn ScreenReader>,
        sink: Box<dyn Sink>,
        outbound: Receiver<Outbound>,
    ) -> Result<Self, AgentError> {
        let wechat_version = wechat_version(transport.as_mut(), &config.device)?;
        Ok(Self::assemble(
            config,
            transport,
            wechat_version,
            reader,
            sink,
            outbound,
        ))
    }

    fn assemble(
        config: AgentConfig,
        transport: Box<dyn Transport>,
        wechat_version: String,
        reader: Box<dyn ScreenReader>,
        sink: Box<dyn Sink>,
        outbound: Receiver<Outbound>,
    ) -> Self {
        tracing::info!(device = %config.device, wechat = %wechat_version, map = %reader.name(), via = %transport.describe(), "phone ready");
        let pacer = Pacer::new(config.pacing.clone());
        PhoneAgent {
            config,
            transport,
            reader,
            wechat_version,
            sink,
            outbound,
            pending: Vec::new(),
            pacer,
            typed_by: HashMap::new(),
            utc_offset: None,
            last_signal: None,
            last_news: None,
            use_fallback_signal: false,
            current_chat: None,
            awaiting_replies: false,
            known: HashMap::new(),
            unread_seen: HashMap::new(),
            fresh_chat: None,
            settled: HashSet::new(),
            orphans: Vec::new(),
            proven_send: None,
            orphans_changed: false,
            observing: observe::Observing::default(),
            stats: AgentStats::default(),
        }
    }

    pub fn wechat_version(&self) -> &str {
        &self.wechat_version
    }

    /// Runs until `stop` is set or the outbound channel closes. Transient phone trouble
    /// (an unplugged cable) is reported and retried with backoff; what needs the user
    /// (WeChat hiding its tree, no adb server) ends the run with an error that says what
    /// to do.
    pub fn run(&mut self, stop: &AtomicBool) -> Result<(), AgentError> {
        let device = self.config.device.clone();
        self.orphans = self.sink.orphans(&device).map_err(AgentError::Sink)?;
        let connected = DeviceStatus::Connected {
            wechat: self.wechat_version.clone(),
            map: self.reader.name().to_string(),
        };
        self.sink.status(&device, connected.clone());
        let mut backoff = Duration::from_millis(200);
        let mut reachable = true;
        while !stop.load(Ordering::Relaxed) {
            match self.cycle() {
                Ok(()) => {
                    backoff = Duration::from_millis(200);
                    if !reachable {
                        reachable = true;
                        tracing::info!(device = %device, "phone back");
                        self.sink.status(&device, connected.clone());
                    }
                }
                Err(AgentError::Transport(e)) if e.is_transient() => {
                    tracing::warn!(device = %device, error = %e, retry_in = ?backoff, "phone unreachable");
                    // Once per outage: the retries are not news.
                    if std::mem::replace(&mut reachable, false) {
                        self.sink.status(
                            &device,
                            DeviceStatus::Disconnected {
                                reason: e.to_string(),
                            },
                        );
                    }
                    self.last_signal = None;
                    // Whatever was on screen may have changed meanwhile.
                    self.fresh_chat = None;
                    self.current_chat = None;
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
                Err(e) => return Err(e),
            }
            match self.outbound.recv_timeout(self.config.poll_interval) {
                Ok(out) => self.queue(out),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        Ok(())
    }

    /// One round: deliver what is queued, then look for news if the phone changed.
    pub fn cycle(&mut self) -> Result<(), AgentError> {
        self.drain_outbound();
        if !self.pending.is_empty() {
            self.deliver_pending()?;
        }
        self.refresh_if_wanted()?;
        let hot = self
            .last_news
            .is_some_and(|at| at.elapsed() < self.config.hot_window);
        if self.config.idle == IdleStrategy::FullDump || hot {
            // The signal's baseline is stale after this: the first round past the window
            // looks once more, which is what a change would have made it do.
            self.last_signal = None;
            return self.scan();
        }
        let signal = self.idle_signal()?;
        if self.last_signal.as_ref() != Some(&signal) {
            // The baseline is taken before the scan: anything that changes during it,
            // a message arriving or our own taps, makes the next round look again.
            self.last_signal = Some(signal);
            self.scan()?;
        }
        Ok(())
    }

    fn drain_outbound(&mut self) {
        while let Ok(out) = self.outbound.try_recv() {
            self.queue(out);
        }
    }

    fn queue(&mut self, out: Outbound) {
        if self.settled.contains(&out.action_id) {
            tracing::info!(device = %self.config.device, action = %out.action_id, "reply went out before a restart; not typing it again");
            return;
        }
        let typing = self.pacer.typing_delay(&out.text);
        self.typed_by
            .insert(out.action_id.clone(), Instant::now() + typing);
        self.pending.push(out);
    }

    /// How long `out` must still wait before it is sent: its typing time, then the gaps,
    /// caps and quiet hours of [`Pacer`]. Zero means now.
    fn pace_wait(&mut self, out: &Outbound) -> Duration {
        if !self.pacer.enabled() {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let typing = self
            .typed_by
            .get(&out.action_id)
            .map_or(Duration::ZERO, |t| t.saturating_duration_since(now));
        let minute_of_day = self.local_minute_of_day();
        let moment = Moment {
            at: now,
            minute_of_day,
        };
        typing.max(self.pacer.wait(&out.conversation, moment))
    }

    /// The minute of the day on the phone's clock, for quiet hours.
    fn local_minute_of_day(&mut self) -> u16 {
        let offset = match self.utc_offset {
            Some(offset) => offset,
            None => {
                // `date +%z` prints the phone's zone as +HHMM; UTC when it says nothing usable.
                let printed = self
                    .shell("date +%z")
                    .map(|o| o.stdout_text())
                    .unwrap_or_default();
                let offset = parse_utc_offset(printed.trim()).unwrap_or(0);
                self.utc_offset = Some(offset);
                offset
            }
        };
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
        let minute = (unix + offset).rem_euclid(86_400) / 60;
        u16::try_from(minute).unwrap_or(0)
    }

    /// Notes that a reply went out (pacing counts it).
    fn paced_send(&mut self, out: &Outbound) {
        self.typed_by.remove(&out.action_id);
        self.pacer.sent(&out.conversation, Instant::now());
    }

    fn shell(&mut self, command: &str) -> Result<ShellOutput, AgentError> {
        self.stats.shell_calls += 1;
        tracing::trace!(device = %self.config.device, command, "adb shell");
        Ok(self.transport.shell(command)?)
    }

    fn idle_signal(&mut self) -> Result<IdleSignal, AgentError> {
        self.stats.idle_checks += 1;
        if !self.use_fallback_signal {
            let out = self.shell(IDLE_COMMAND)?.stdout_text();
            if out.contains("Total frames rendered") {
                return Ok(IdleSignal(out));
            }
            tracing::info!(device = %self.config.device, "no gfxinfo frame counter; watching notifications and focus instead");
            self.use_fallback_signal = true;
        }
        Ok(IdleSignal(self.shell(IDLE_FALLBACK_COMMAND)?.stdout_text()))
    }

    /// Asks the screen reader what is in front. It looks through the actor's own
    /// transport, so its shell calls are counted and logged with the actor's.
    pub fn read(&mut self) -> Result<ScreenReading, AgentError> {
        self.before_read();
        let mut phone = CountedShell {
            transport: self.transport.as_mut(),
            device: &self.config.device,
            calls: 0,
        };
        let reading = self.reader.read(&mut phone);
        self.stats.shell_calls += phone.calls;
        self.stats.dumps += phone.calls;
        if let Some(change) = self.reader.changed() {
            self.sink.status(
                &self.config.device,
                DeviceStatus::ReaderChanged {
                    reader: change.reader,
                    reason: change.reason,
                },
            );
        }
        let reading = reading?;
        self.publish(&reading);
        Ok(reading)
    }

    fn tap(&mut self, at: Rect) -> Result<(), AgentError> {
        self.fresh_chat = None;
        let (x, y) = at.center();
        self.shell(&format!("input tap {x} {y}"))?;
        Ok(())
    }

    fn key(&mut self, code: u32) -> Result<(), AgentError> {
        self.fresh_chat = None;
        self.shell(&format!("input keyevent {code}"))?;
        Ok(())
    }
}

/// The actor's transport lent to the screen reader for one read.
struct CountedShell<'a> {
    transport: &'a mut dyn Transport,
    device: &'a str,
    calls: u64,
}

impl Transport for CountedShell<'_> {
    fn shell(&mut self, command: &str) -> Result<ShellOutput, TransportError> {
        self.calls += 1;
        tracing::trace!(device = %self.device, command, "adb shell");
        self.transport.shell(command)
    }

    fn describe(&self) -> String {
        self.transport.describe()
    }
}

/// Runs an agent on its own thread until `stop` is set; the result says why it ended.
pub fn spawn(
    mut agent: PhoneAgent,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<Result<AgentStats, AgentError>>> {
    let name = format!("phone-{}", agent.config.device);
    std::thread::Builder::new()
        .name(name)
        .spawn(move || agent.run(&stop).map(|()| agent.stats.clone()))
}

/// `+0800` → 28800 seconds.
fn parse_utc_offset(text: &str) -> Option<i64> {
    let (sign, digits) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i64 = digits[..2].parse().ok()?;
    let minutes: i64 = digits[2..].parse().ok()?;
    Some(sign * (hours * 3600 + minutes * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_offsets_as_date_prints_them() {
        assert_eq!(parse_utc_offset("+0800"), Some(28_800));
        assert_eq!(parse_utc_offset("-0330"), Some(-12_600));
        assert_eq!(parse_utc_offset("CST"), None);
        assert_eq!(parse_utc_offset(""), None);
    }

    #[test]
    fn version_from_dumpsys_package() {
        let out = "Packages:\n  Package [com.tencent.mm] (abc):\n    versionCode=2780 minSdk=23\n    versionName=8.0.50\n    splits=[base]\n  Package [com.tencent.mm] (def):\n    versionName=8.0.49\n";
        assert_eq!(parse_version_name(out).as_deref(), Some("8.0.50"));
        assert_eq!(parse_version_name("Unable to find package"), None);
    }
}
