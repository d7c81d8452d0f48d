//! One actor per phone: it owns the phone's ADB transport, so every read and every tap is
//! serialised through it. It watches WeChat cheaply while idle, reads what is new, hands it
//! to a [`Sink`] (which stores it before anything answers), and types the replies it is
//! given, checking each one appears in the chat.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::dump::{Dump, DumpError, Rect};
use crate::input::{DEFAULT_METHODS, InputMethod, KEYCODE_BACK, delete_command};
use crate::screen::{ChatView, ConversationRow, ScreenKind, ScreenReading, Side, read_screen};
use crate::tail::{self, TailItem, TailKind, Watermark};
use crate::transport::{Transport, TransportError};
use crate::uimap::{UiMap, UiMapError, UiMaps, Version};

/// Unnamed chats that opened by mistake, remembered until their first read.
const MAX_ORPHANS: usize = 16;
/// After an answer went out, how long to wait for the next one before leaving the chat.
const REPLY_GRACE: Duration = Duration::from_millis(150);
const WECHAT_LAUNCHER: &str = "com.tencent.mm/.ui.LauncherUI";
const DUMP_COMMAND: &str = "uiautomator dump /dev/tty";
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
        "WeChat {version} hides its screen from uiautomator on this phone (the dump is one empty node). Turn on an accessibility service (e.g. TalkBack) so the tree is exposed, or use a WeChat build before 8.0.55; vision mode (screenshots + OCR) is not available yet"
    )]
    HiddenTree { version: String },
    #[error("the sink refused the batch: {0}")]
    Sink(String),
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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Batch {
    pub device: String,
    pub conversation: String,
    pub watermark: Watermark,
    pub messages: Vec<PhoneMessage>,
    /// The reply whose bubble this batch's watermark ends with: it is done exactly when
    /// the watermark that covers it is stored.
    pub delivered: Option<Delivered>,
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
    pub kind: crate::screen::ItemKind,
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
    Connected { wechat: String, map: String },
    Disconnected { reason: String },
    ScreenUnrecognized { kind: ScreenKind, hint: String },
    DialogDismissed { texts: Vec<String>, button: String },
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
    pub dumps: u64,
    pub shell_calls: u64,
    pub messages: u64,
    pub replies_sent: u64,
    pub replies_failed: u64,
}

pub struct PhoneAgent {
    config: AgentConfig,
    transport: Box<dyn Transport>,
    map: UiMap,
    wechat_version: String,
    sink: Box<dyn Sink>,
    outbound: Receiver<Outbound>,
    pending: Vec<Outbound>,
    last_signal: Option<IdleSignal>,
    use_fallback_signal: bool,
    /// The conversation the actor opened last, for chats whose title bar holds no text.
    current_chat: Option<String>,
    /// Messages were just read in the open chat and their answers may be on the way.
    awaiting_replies: bool,
    known: std::collections::HashMap<String, KnownChat>,
    /// Badges seen but not yet read, with what the list said then. Opening a chat clears
    /// its badge, so if the wrong chat opens (the list moved under the tap) this is all
    /// that is left of its news.
    unread_seen: std::collections::HashMap<String, RowHint>,
    /// The open chat as last read, while nothing has touched the screen since.
    fresh_chat: Option<ChatView>,
    /// Replies the store found already sent (by an earlier run, before a crash): dropped if
    /// they are queued, or when they arrive.
    settled: std::collections::HashSet<String>,
    /// Chats that opened by mistake and could not be named: opening cleared their badge,
    /// so their first read must learn from here what was news.
    orphans: Vec<Orphan>,
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
    let output = transport.shell("dumpsys package com.tencent.mm")?;
    let version =
        parse_version_name(&output.stdout_text()).ok_or_else(|| AgentError::NoWechat {
            device: device.to_string(),
        })?;
    let map = maps.for_version(&Version::parse(&version)?)?.clone();
    Ok((version, map))
}

impl PhoneAgent {
    pub fn new(
        config: AgentConfig,
        mut transport: Box<dyn Transport>,
        maps: &UiMaps,
        sink: Box<dyn Sink>,
        outbound: Receiver<Outbound>,
    ) -> Result<Self, AgentError> {
        let (wechat_version, map) = detect_map(transport.as_mut(), maps, &config.device)?;
        tracing::info!(device = %config.device, wechat = %wechat_version, map = %map.name, via = %transport.describe(), "phone ready");
        Ok(PhoneAgent {
            config,
            transport,
            map,
            wechat_version,
            sink,
            outbound,
            pending: Vec::new(),
            last_signal: None,
            use_fallback_signal: false,
            current_chat: None,
            awaiting_replies: false,
            known: std::collections::HashMap::new(),
            unread_seen: std::collections::HashMap::new(),
            fresh_chat: None,
            settled: std::collections::HashSet::new(),
            orphans: Vec::new(),
            stats: AgentStats::default(),
        })
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
        let connected = DeviceStatus::Connected {
            wechat: self.wechat_version.clone(),
            map: self.map.name.clone(),
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
        if self.config.idle == IdleStrategy::FullDump {
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
        self.pending.push(out);
    }

    fn shell(&mut self, command: &str) -> Result<crate::transport::ShellOutput, AgentError> {
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

    /// Dumps and reads the screen, retrying while uiautomator reports a transition.
    pub fn read(&mut self) -> Result<ScreenReading, AgentError> {
        const ATTEMPTS: u32 = 6;
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            self.stats.dumps += 1;
            let out = self.shell(DUMP_COMMAND)?;
            let raw = out.stdout_text();
            match Dump::parse(&raw) {
                Ok(dump) => {
                    let reading = read_screen(&dump, &self.map);
                    if reading.kind == ScreenKind::HiddenTree {
                        return Err(AgentError::HiddenTree {
                            version: self.wechat_version.clone(),
                        });
                    }
                    return Ok(reading);
                }
                Err(e) => {
                    let e = match e {
                        DumpError::NoHierarchy(_) if !out.stderr.is_empty() => {
                            DumpError::NoHierarchy(out.stderr_text())
                        }
                        other => other,
                    };
                    tracing::debug!(device = %self.config.device, attempt, error = %e, "dump failed");
                    last = Some(e);
                    std::thread::sleep(Duration::from_millis(50 * u64::from(attempt + 1)));
                }
            }
        }
        Err(AgentError::Dump {
            attempts: ATTEMPTS,
            last: last.unwrap_or(DumpError::NoHierarchy(String::new())),
        })
    }

    /// Reads until the screen is of `kind` (screens take a moment to change after a tap).
    fn read_until(&mut self, kind: ScreenKind) -> Result<Option<ScreenReading>, AgentError> {
        for _ in 0..8 {
            let reading = self.read()?;
            if reading.kind == kind {
                return Ok(Some(reading));
            }
            if reading.kind == ScreenKind::Dialog {
                self.handle_dialog(&reading)?;
                continue;
            }
            std::thread::sleep(Duration::from_millis(60));
        }
        Ok(None)
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

    fn scan(&mut self) -> Result<(), AgentError> {
        let reading = self.read()?;
        match reading.kind {
            ScreenKind::ConversationList => self.scan_list(reading),
            ScreenKind::Chat => {
                let chat = reading.chat.clone().unwrap_or_else(empty_chat);
                let name = chat.title.clone().or_else(|| self.current_chat.clone());
                tracing::debug!(device = %self.config.device, title = ?chat.title, current = ?self.current_chat, "a chat is open");
                match name {
                    Some(name) if chat.back_unread.unwrap_or(0) == 0 => {
                        self.process_chat(&name, chat, &RowHint::default())?;
                        self.leave_chat(&name).map(drop)
                    }
                    _ => self.back_to_list().map(drop),
                }
            }
            ScreenKind::Dialog => self.handle_dialog(&reading),
            ScreenKind::NotWechat => {
                tracing::info!(device = %self.config.device, "WeChat is not in front; starting it");
                self.shell(&format!("am start -n {WECHAT_LAUNCHER}"))?;
                Ok(())
            }
            ScreenKind::HiddenTree => Err(AgentError::HiddenTree {
                version: self.wechat_version.clone(),
            }),
            ScreenKind::Other => {
                self.sink.status(
                    &self.config.device,
                    DeviceStatus::ScreenUnrecognized {
                        kind: ScreenKind::Other,
                        hint: "neither the conversation list nor a chat; pressing back".into(),
                    },
                );
                self.back_to_list().map(drop)
            }
        }
    }

    /// Opens conversations with news one at a time, newest first: a badge, or a preview
    /// that differs from the last item read there (a message that came while the chat was
    /// open raises no badge). The list is read again after each one: counts change while a
    /// chat is open, and a stale count would make a first read take too few messages.
    fn scan_list(&mut self, mut reading: ScreenReading) -> Result<(), AgentError> {
        // Bounded so a chat that keeps its badge (a failing open) cannot trap the actor.
        for _ in 0..32 {
            if let Some(list) = &reading.list {
                // The newest badge wins: until the chat is read its count only grows, and
                // counting back that many from the newest preview covers every message an
                // older sighting covered (whose preview may have scrolled out of the chat).
                for row in list.rows.iter().filter(|r| r.unread.is_unread()) {
                    if let Some(title) = &row.title {
                        self.unread_seen.insert(title.clone(), RowHint::of(row));
                    }
                }
                for title in list.rows.iter().filter_map(|r| r.title.as_ref()) {
                    self.recall(title)?;
                }
            }
            let Some(row) = reading
                .list
                .as_ref()
                .and_then(|list| list.rows.iter().find(|r| self.has_news(r)).cloned())
            else {
                return Ok(());
            };
            let Some(title) = row.title.clone() else {
                return Ok(());
            };
            // A badge on screen is the freshest count; without one, what an earlier list
            // showed before a mistaken open cleared it.
            let hint = if row.unread.is_unread() {
                RowHint::of(&row)
            } else {
                self.unread_seen.get(&title).cloned().unwrap_or_default()
            };
            if !row.unread.is_unread() && !self.unread_seen.contains_key(&title) {
                tracing::debug!(device = %self.config.device, conversation = %title, preview = ?row.preview, "preview changed without a badge");
                if let (Some(known), Some(preview)) = (self.known.get_mut(&title), &row.preview) {
                    known.accepted_preview = Some(preview.clone());
                }
            }
            let before = reading.list.clone();
            let chat = match self.open_checked(&row)? {
                Opened::Row(chat) => chat,
                Opened::Other(orphan) => {
                    // The list moved under the tap. Opening that chat cleared its badge, so
                    // work out whose it was and read it now, then choose afresh.
                    let Some(after) = self.back_to_list()? else {
                        return Ok(());
                    };
                    self.adopt(orphan, before.as_ref(), after.list.as_ref(), &title)?;
                    reading = after;
                    continue;
                }
                Opened::Nothing => match self.back_to_list()? {
                    Some(list) => {
                        reading = list;
                        continue;
                    }
                    None => return Ok(()),
                },
            };
            self.current_chat = Some(title.clone());
            self.process_chat(&title, chat, &hint)?;
            match self.leave_chat(&title)? {
                Some(list) => reading = list,
                None => return Ok(()),
            }
        }
        Ok(())
    }

    /// A badge, or a preview that the last item read in that chat cannot explain.
    fn has_news(&self, row: &ConversationRow) -> bool {
        let Some(title) = &row.title else {
            return false;
        };
        if row.unread.is_unread() || self.unread_seen.contains_key(title) {
            return true;
        }
        let (Some(known), Some(preview)) = (self.known.get(title), &row.preview) else {
            return false;
        };
        let Some(last) = &known.last else {
            return false;
        };
        known.accepted_preview.as_deref() != Some(preview.as_str())
            && !tail::preview_matches(preview, last)
    }

    /// Loads what an earlier run read in a conversation, once: after a restart, a message
    /// that came while its chat was open (no badge) shows only as a preview the stored
    /// watermark cannot explain.
    fn recall(&mut self, conversation: &str) -> Result<(), AgentError> {
        if self.known.contains_key(conversation) {
            return Ok(());
        }
        let watermark = self
            .sink
            .watermark(&self.config.device, conversation)
            .map_err(AgentError::Sink)?;
        self.known.insert(
            conversation.to_string(),
            KnownChat {
                last: watermark.and_then(|w| w.tail.last().cloned()),
                accepted_preview: None,
            },
        );
        Ok(())
    }

    /// Remembers the newest item read in a conversation, for [`Self::has_news`].
    fn remember(&mut self, conversation: &str, watermark: &Watermark) {
        let known = self.known.entry(conversation.to_string()).or_default();
        known.last = watermark.tail.last().cloned();
    }

    /// Taps a row and checks that the chat that opened is the row's: the list re-sorts
    /// whenever a message arrives, so a row read half a second ago may have moved.
    fn open_checked(&mut self, row: &ConversationRow) -> Result<Opened, AgentError> {
        self.open_row(row)?;
        let Some(chat) = self.read_until(ScreenKind::Chat)?.and_then(|r| r.chat) else {
            return Ok(Opened::Nothing);
        };
        if chat_fits_row(&chat, row) {
            tracing::debug!(device = %self.config.device, row = ?row.title, preview = ?row.preview, "opened the row tapped");
            return Ok(Opened::Row(chat));
        }
        tracing::warn!(device = %self.config.device, row = ?row.title, preview = ?row.preview, "the chat that opened is not the row tapped (the list moved)");
        Ok(Opened::Other(chat))
    }

    /// Reads a chat that opened by mistake under the name of the one row it must be: a
    /// row whose badge is gone (opening cleared it) and whose preview the chat shows, or a
    /// row whose unread count dropped since the list was read (only reading lowers it).
    /// What is new comes from what the list said before the tap. A chat that cannot be
    /// told is remembered, so that its first read later still finds its news.
    fn adopt(
        &mut self,
        orphan: ChatView,
        before: Option<&crate::screen::ConversationList>,
        after: Option<&crate::screen::ConversationList>,
        tapped: &str,
    ) -> Result<(), AgentError> {
        let earlier = |title: &str| {
            before.and_then(|l| l.rows.iter().find(|r| r.title.as_deref() == Some(title)))
        };
        let unread_count = |row: &ConversationRow| match row.unread {
            crate::screen::Unread::Count(n) => n,
            crate::screen::Unread::Dot => 1,
            crate::screen::Unread::None => 0,
        };
        let partner = private_partner(&orphan);
        let mut candidates: Vec<&ConversationRow> = Vec::new();
        for row in after.map(|l| l.rows.iter()).into_iter().flatten() {
            let Some(title) = row.title.as_deref() else {
                continue;
            };
            if title == tapped || candidates.iter().any(|c| c.title == row.title) {
                continue;
            }
            let cleared = !row.unread.is_unread() && chat_fits_row(&orphan, row);
            let dropped = earlier(title).is_some_and(|e| unread_count(e) > unread_count(row));
            if cleared || dropped || partner == Some(title) {
                candidates.push(row);
            }
        }
        let [row] = candidates.as_slice() else {
            tracing::warn!(device = %self.config.device, candidates = candidates.len(), "cannot tell which chat opened by mistake; remembering what it showed");
            let newest = tail::tail_items(&orphan.messages).pop().map(|(_, t)| t);
            if let Some(newest) = newest.filter(|t| t.kind == TailKind::Other) {
                // It jumped into the list under the tap: what just came is news.
                self.orphans.push(Orphan {
                    newest,
                    unread: trailing_burst(&orphan),
                });
                // Bounded: one that never turns up must not be carried forever.
                if self.orphans.len() > MAX_ORPHANS {
                    self.orphans.remove(0);
                }
            }
            self.fresh_chat = None;
            self.awaiting_replies = false;
            return Ok(());
        };
        let Some(title) = row.title.clone() else {
            return Ok(());
        };
        let hint = match (self.unread_seen.get(&title), earlier(&title)) {
            (Some(seen), _) => seen.clone(),
            (None, Some(r)) if r.unread.is_unread() => RowHint::of(r),
            // Its news arrived after the list was read: everything after what the row
            // previewed then is new.
            (None, Some(r)) => RowHint {
                unread: None,
                preview: None,
                old_preview: r.preview.clone(),
            },
            // Not in the list at all then: a new chat, or one from below the fold that a
            // message just brought to the top. What just came is news; on a first read,
            // what stands before our last message or the last time divider is history.
            (None, None) => RowHint {
                unread: Some(trailing_burst(&orphan)),
                preview: None,
                old_preview: None,
            },
        };
        tracing::info!(device = %self.config.device, conversation = %title, "read the chat that opened by mistake");
        self.process_chat(&title, orphan, &hint)?;
        // Read from a screen that is gone: nothing may be typed on the strength of it.
        self.fresh_chat = None;
        self.awaiting_replies = false;
        Ok(())
    }

    /// On a chat's first read: if it is a chat that opened by mistake before (its newest
    /// message then is on screen), where its news starts. The orphan is used up.
    fn orphan_news(&mut self, visible: &[TailItem]) -> Option<usize> {
        let (index, at) = self.orphans.iter().enumerate().find_map(|(i, orphan)| {
            visible
                .iter()
                .rposition(|item| *item == orphan.newest)
                .map(|at| (i, at))
        })?;
        let orphan = self.orphans.remove(index);
        let (start, _) = tail::back_over_others(visible, at + 1, orphan.unread as usize);
        tracing::info!(device = %self.config.device, "a chat that opened by mistake earlier: its news is read now");
        Some(start)
    }

    fn open_row(&mut self, row: &ConversationRow) -> Result<(), AgentError> {
        // The row's top half is its title line; its centre may lie under the tab bar.
        let target = Rect {
            bottom: row.bounds.top + row.bounds.height() / 2,
            ..row.bounds
        };
        self.tap(target)
    }

    /// Goes back to the conversation list and returns its reading (None if it could not
    /// get there in a few steps; the next round tries again).
    fn back_to_list(&mut self) -> Result<Option<ScreenReading>, AgentError> {
        for _ in 0..4 {
            let reading = self.read()?;
            match reading.kind {
                ScreenKind::ConversationList => {
                    self.current_chat = None;
                    return Ok(Some(reading));
                }
                ScreenKind::Dialog => self.handle_dialog(&reading)?,
                ScreenKind::NotWechat => {
                    self.shell(&format!("am start -n {WECHAT_LAUNCHER}"))?;
                }
                _ => {
                    let back = reading.chat.as_ref().and_then(|c| c.back_button);
                    match back {
                        Some(b) => self.tap(b)?,
                        None => self.key(KEYCODE_BACK)?,
                    }
                }
            }
        }
        self.current_chat = None;
        Ok(None)
    }

    fn handle_dialog(&mut self, reading: &ScreenReading) -> Result<(), AgentError> {
        let Some(dialog) = &reading.dialog else {
            return Ok(());
        };
        match &dialog.dismiss {
            Some(button) => {
                tracing::warn!(device = %self.config.device, texts = ?dialog.texts, button = %button.text, "dismissing a dialog");
                self.tap(button.bounds)?;
                self.sink.status(
                    &self.config.device,
                    DeviceStatus::DialogDismissed {
                        texts: dialog.texts.clone(),
                        button: button.text.clone(),
                    },
                );
            }
            None => {
                // No button we know to be harmless: report it and press back, which closes
                // a dialog without choosing any of its buttons.
                tracing::warn!(device = %self.config.device, texts = ?dialog.texts, "unknown dialog; pressing back");
                self.sink.status(
                    &self.config.device,
                    DeviceStatus::ScreenUnrecognized {
                        kind: ScreenKind::Dialog,
                        hint: format!("dialog {:?} has no known dismiss button", dialog.texts),
                    },
                );
                self.key(KEYCODE_BACK)?;
            }
        }
        Ok(())
    }

    /// Finds what is new in an open chat, scrolling back when the last message seen is
    /// above the screen, and records it. Returns the new items.
    fn process_chat(
        &mut self,
        conversation: &str,
        chat: ChatView,
        hint: &RowHint,
    ) -> Result<Vec<TailItem>, AgentError> {
        self.unread_seen.remove(conversation);
        let unread = hint.unread;
        let preview = hint.preview.as_deref();
        let device = self.config.device.clone();
        let watermark = self
            .sink
            .watermark(&device, conversation)
            .map_err(AgentError::Sink)?
            .unwrap_or_default();
        let mut items = whole_messages(&chat);
        let mut visible: Vec<TailItem> = tail::tail_items(&items)
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        let mut found = tail::new_items(&watermark.tail, &visible, unread, preview);
        if watermark.tail.is_empty()
            && let Some(start) = self.orphan_news(&visible)
            && start < found.start
        {
            found = tail::NewItems {
                start,
                complete: true,
            };
        }
        if let Some(old) = hint.old_preview.as_deref()
            && watermark.tail.is_empty()
            && let Some(at) = visible.iter().rposition(|i| tail::preview_matches(old, i))
        {
            found = tail::NewItems {
                start: at + 1,
                complete: true,
            };
        }
        let mut pages = 0;
        while !found.complete && pages < self.config.max_scroll_pages {
            let Some(list) = chat.message_list else {
                break;
            };
            self.scroll(list, Scroll::TowardsOlder)?;
            pages += 1;
            let Some(earlier) = self.read_until(ScreenKind::Chat)?.and_then(|r| r.chat) else {
                break;
            };
            let joined = tail::prepend_page(&whole_messages(&earlier), &items);
            if joined.len() == items.len() {
                break; // the top of the chat
            }
            items = joined;
            visible = tail::tail_items(&items)
                .into_iter()
                .map(|(_, t)| t)
                .collect();
            found = tail::new_items(&watermark.tail, &visible, unread, preview);
        }
        if pages > 0
            && let Some(list) = chat.message_list
        {
            for _ in 0..pages + 1 {
                self.scroll(list, Scroll::TowardsNewer)?;
            }
        }
        let is_group = is_group(&items);
        if pages == 0 {
            self.fresh_chat = Some(chat);
        }
        let end = visible.len();
        self.commit(
            conversation,
            watermark,
            visible,
            found.start..end,
            is_group,
            None,
        )
    }

    /// Records `visible[range]` as read: a message event for each item in it (never for
    /// `ours`, the reply just typed, which is recorded as delivered instead) and a tail
    /// that ends with the range. Returns the range's items.
    fn commit(
        &mut self,
        conversation: &str,
        old: Watermark,
        visible: Vec<TailItem>,
        range: std::ops::Range<usize>,
        is_group: bool,
        ours: Option<(&Outbound, InputMethod)>,
    ) -> Result<Vec<TailItem>, AgentError> {
        let device = self.config.device.clone();
        let new: Vec<TailItem> = visible[range.clone()].to_vec();
        let mut next_seq = old.next_seq;
        let mut messages = Vec::new();
        for item in &new {
            let is_self = item.kind == TailKind::Own;
            if item.kind == TailKind::System
                || (is_self && ours.is_some_and(|(o, _)| item.text.as_deref() == Some(&o.text)))
            {
                continue;
            }
            let seq = next_seq;
            next_seq += 1;
            messages.push(PhoneMessage {
                key: tail::idempotency_key(&device, conversation, seq, item),
                seq,
                conversation: conversation.to_string(),
                is_group,
                sender: if is_self {
                    None
                } else {
                    item.sender
                        .clone()
                        .or_else(|| Some(conversation.to_string()))
                },
                is_self,
                text: item.text.clone(),
                kind: if item.text.is_some() {
                    crate::screen::ItemKind::Text
                } else {
                    crate::screen::ItemKind::Unknown
                },
            });
        }
        let mut watermark = Watermark {
            tail: Vec::new(),
            next_seq,
        };
        watermark.push(visible.into_iter().take(range.end));
        self.remember(conversation, &watermark);
        if messages.is_empty() && watermark == old && ours.is_none() {
            // Nothing new: the stored tail is still right.
            return Ok(new);
        }
        let received = messages.iter().filter(|m| !m.is_self).count();
        self.stats.messages += received as u64;
        self.awaiting_replies |= received > 0;
        for m in &messages {
            tracing::info!(device = %device, conversation, seq = m.seq, is_self = m.is_self, sender = ?m.sender, text = ?m.text, "message read");
        }
        let settled = self
            .sink
            .record(Batch {
                device,
                conversation: conversation.to_string(),
                watermark,
                messages,
                delivered: ours.map(|(out, method)| Delivered {
                    action_id: out.action_id.clone(),
                    method,
                }),
            })
            .map_err(AgentError::Sink)?;
        if !settled.is_empty() {
            tracing::info!(device = %self.config.device, conversation, actions = ?settled, "replies found sent before a restart");
            self.pending.retain(|o| !settled.contains(&o.action_id));
            self.settled.extend(settled);
        }
        Ok(new)
    }

    fn scroll(&mut self, list: Rect, direction: Scroll) -> Result<(), AgentError> {
        self.fresh_chat = None;
        let x = list.center().0;
        let (top, bottom) = (
            list.top + list.height() / 5,
            list.bottom - list.height() / 5,
        );
        let (from, to) = match direction {
            Scroll::TowardsOlder => (top, bottom),
            Scroll::TowardsNewer => (bottom, top),
        };
        self.shell(&format!("input swipe {x} {from} {x} {to} 200"))?;
        Ok(())
    }

    /// Stays in the chat briefly so that quick answers to what was just read go out without
    /// navigating back to it.
    fn wait_for_replies(&mut self, conversation: &str) -> Result<(), AgentError> {
        // Only just-read messages are worth waiting for; a slower answer is delivered
        // later by navigating back.
        let mut deadline = Instant::now()
            + if std::mem::take(&mut self.awaiting_replies) {
                self.config.reply_wait
            } else {
                Duration::ZERO
            };
        loop {
            self.drain_outbound();
            let (here, elsewhere): (Vec<Outbound>, Vec<Outbound>) =
                std::mem::take(&mut self.pending)
                    .into_iter()
                    .partition(|o| o.conversation == conversation);
            self.pending = elsewhere;
            if !here.is_empty() {
                let mut here = here.into_iter();
                while let Some(out) = here.next() {
                    if let Err(error) = self.send_here(out.clone()) {
                        // Kept, not dropped with the error: the phone coming back (a
                        // cable, a restarted adb) must find them still to do, in order.
                        self.sink
                            .sent(&out.action_id, SendOutcome::Interrupted)
                            .map_err(AgentError::Sink)?;
                        let mut kept = vec![out];
                        kept.extend(here);
                        kept.append(&mut self.pending);
                        self.pending = kept;
                        return Err(error);
                    }
                }
                // Several answers to one burst come close together; after one, wait
                // only briefly for the next.
                deadline = Instant::now() + REPLY_GRACE;
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(());
            }
            match self.outbound.recv_timeout(deadline - now) {
                Ok(out) => self.queue(out),
                Err(RecvTimeoutError::Timeout) => return Ok(()),
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
        }
    }

    fn deliver_pending(&mut self) -> Result<(), AgentError> {
        while let Some(first) = self.pending.first().cloned() {
            let conversation = first.conversation.clone();
            match self.open_conversation(&conversation)? {
                OpenOutcome::Opened => {}
                // The list re-sorted under the tap: nothing is lost by trying again on the
                // next round, while failing here would drop the replies for good.
                OpenOutcome::Moved => return Ok(()),
                OpenOutcome::NotFound => {
                    let (failed, rest): (Vec<Outbound>, Vec<Outbound>) =
                        std::mem::take(&mut self.pending)
                            .into_iter()
                            .partition(|o| o.conversation == conversation);
                    self.pending = rest;
                    for out in failed {
                        self.fail(
                            &out,
                            format!(
                                "conversation {conversation:?} is not in the conversation list"
                            ),
                        )?;
                    }
                    continue;
                }
            }
            self.leave_chat(&conversation)?;
        }
        Ok(())
    }

    /// Answers what is queued for the open chat and reads what arrived meanwhile (a
    /// message in an open chat raises no badge), then goes back to the list.
    fn leave_chat(&mut self, conversation: &str) -> Result<Option<ScreenReading>, AgentError> {
        for _ in 0..4 {
            self.wait_for_replies(conversation)?;
            let chat = match self.fresh_chat.take() {
                Some(chat) => chat,
                None => match self.read_until(ScreenKind::Chat)?.and_then(|r| r.chat) {
                    Some(chat) => chat,
                    None => break,
                },
            };
            let new = self.process_chat(conversation, chat, &RowHint::default())?;
            if !new.iter().any(|i| i.kind == TailKind::Other) {
                break;
            }
        }
        self.back_to_list()
    }

    /// Opens a conversation from the list (scrolling it if needed), reading what is new in
    /// it on the way in.
    fn open_conversation(&mut self, conversation: &str) -> Result<OpenOutcome, AgentError> {
        if self.current_chat.as_deref() == Some(conversation)
            && let Some(chat) = self.read_until(ScreenKind::Chat)?.and_then(|r| r.chat)
        {
            tracing::debug!(device = %self.config.device, conversation, "answering in the chat that is open");
            self.process_chat(conversation, chat, &RowHint::default())?;
            return Ok(OpenOutcome::Opened);
        }
        self.back_to_list()?;
        let mut scrolled = 0;
        let row = loop {
            let Some(reading) = self.read_until(ScreenKind::ConversationList)? else {
                return Ok(OpenOutcome::Moved);
            };
            let list = reading
                .list
                .unwrap_or_else(|| crate::screen::ConversationList {
                    title: None,
                    tab_unread: None,
                    rows: Vec::new(),
                });
            if let Some(row) = list
                .rows
                .iter()
                .find(|r| r.title.as_deref() == Some(conversation))
            {
                break row.clone();
            }
            if scrolled >= self.config.max_scroll_pages || list.rows.is_empty() {
                return Ok(OpenOutcome::NotFound);
            }
            let span = list.rows.iter().fold(list.rows[0].bounds, |acc, r| Rect {
                bottom: acc.bottom.max(r.bounds.bottom),
                ..acc
            });
            self.scroll(span, Scroll::TowardsNewer)?;
            scrolled += 1;
        };
        let Opened::Row(chat) = self.open_checked(&row)? else {
            // Never type into a chat we are not sure of; the next round tries again (and
            // the list scan works out which chat did open).
            self.back_to_list()?;
            return Ok(OpenOutcome::Moved);
        };
        self.current_chat = Some(conversation.to_string());
        // A send that went out before a crash shows as a new own message here; recording
        // it settles that reply (see `commit`), so it is not typed again.
        self.process_chat(conversation, chat, &RowHint::of(&row))?;
        Ok(OpenOutcome::Opened)
    }

    fn fail(&mut self, out: &Outbound, reason: String) -> Result<(), AgentError> {
        tracing::error!(device = %self.config.device, conversation = %out.conversation, action = %out.action_id, %reason, "reply not sent");
        self.stats.replies_failed += 1;
        self.sink
            .sent(&out.action_id, SendOutcome::Failed { reason })
            .map_err(AgentError::Sink)
    }

    /// Types and sends `out` in the chat that is open, then reads the chat back to check
    /// that it went out. Each input method is tried in turn if the text does not show up.
    fn send_here(&mut self, out: Outbound) -> Result<(), AgentError> {
        let mut last_problem = String::from("no input method could type this text");
        let methods = self.config.input_methods.clone();
        for method in methods.into_iter().filter(|m| m.supports(&out.text)) {
            let chat = match self.fresh_chat.take() {
                Some(chat) => chat,
                None => match self.read_until(ScreenKind::Chat)?.and_then(|r| r.chat) {
                    Some(chat) => chat,
                    None => {
                        last_problem = "the chat is no longer on screen".into();
                        break;
                    }
                },
            };
            let Some(input) = chat.input.clone() else {
                last_problem = "the chat shows no input box".into();
                break;
            };
            // Focus first: keys and text reach the input box only while it has focus.
            self.tap(input.bounds)?;
            if !input.text.is_empty() {
                // Leftovers (a draft, a failed attempt) would be sent with our text.
                self.shell(&delete_command(input.text.chars().count()))?;
            }
            if let Err(e) = method.type_text(self.transport.as_mut(), &out.text) {
                tracing::debug!(device = %self.config.device, ?method, error = %e, "input method failed");
                last_problem = e.to_string();
                continue;
            }
            let Some(typed) = self.read_until(ScreenKind::Chat)?.and_then(|r| r.chat) else {
                continue;
            };
            let shown = typed.input.as_ref().map(|i| i.text.as_str()).unwrap_or("");
            let Some(send) = typed.send_button else {
                last_problem = format!(
                    "after {method:?} the send button did not appear (input shows {shown:?})"
                );
                continue;
            };
            if shown != out.text {
                last_problem = format!("after {method:?} the input shows {shown:?}");
                self.shell(&delete_command(shown.chars().count()))?;
                continue;
            }
            self.tap(send)?;
            let verified = self.verify_sent(&out, method)?;
            if verified != Verified::Missing {
                self.stats.replies_sent += 1;
                tracing::info!(device = %self.config.device, conversation = %out.conversation, ?method, "reply sent");
            }
            return match verified {
                Verified::Recorded => Ok(()),
                Verified::Seen => self
                    .sink
                    .sent(&out.action_id, SendOutcome::Sent { method })
                    .map_err(AgentError::Sink),
                Verified::Missing => self.fail(
                    &out,
                    "the reply did not appear in the chat after pressing send".into(),
                ),
            };
        }
        self.fail(&out, last_problem)
    }

    /// Reads the chat until our text shows up as an own message after what was read
    /// before, then records everything up to it as read, and the reply as done, in one
    /// batch: a crash cannot leave the bubble read but the reply open (it would be typed
    /// again). Messages that came in while we were typing sit before our reply and are
    /// recorded as news, never swallowed; anything after it (someone answering at once) is
    /// left for the next read.
    fn verify_sent(&mut self, out: &Outbound, method: InputMethod) -> Result<Verified, AgentError> {
        let watermark = self
            .sink
            .watermark(&self.config.device, &out.conversation)
            .map_err(AgentError::Sink)?
            .unwrap_or_default();
        for _ in 0..5 {
            let Some(chat) = self.read_until(ScreenKind::Chat)?.and_then(|r| r.chat) else {
                continue;
            };
            let visible: Vec<TailItem> = tail::tail_items(&whole_messages(&chat))
                .into_iter()
                .map(|(_, t)| t)
                .collect();
            let found = tail::new_items(&watermark.tail, &visible, None, None);
            let reply_at = visible.iter().rposition(|t| {
                t.kind == TailKind::Own && t.text.as_deref() == Some(out.text.as_str())
            });
            match reply_at {
                Some(reply_at) if found.complete && reply_at >= found.start => {
                    let is_group = is_group(&chat.messages);
                    self.commit(
                        &out.conversation,
                        watermark,
                        visible,
                        found.start..reply_at + 1,
                        is_group,
                        Some((out, method)),
                    )?;
                    self.fresh_chat = Some(chat);
                    return Ok(Verified::Recorded);
                }
                // The screen holds no trace of what was read before (a flood of messages):
                // the reply being the newest own bubble is the best evidence there is.
                Some(_) if !found.complete => {
                    let newest_own = chat.messages.iter().rev().find(|m| m.is_own());
                    if newest_own.is_some_and(|m| m.text.as_deref() == Some(out.text.as_str())) {
                        self.fresh_chat = Some(chat);
                        return Ok(Verified::Seen);
                    }
                }
                _ => {}
            }
            std::thread::sleep(Duration::from_millis(80));
        }
        Ok(Verified::Missing)
    }
}

/// Whom a private chat is with, from its avatars (`<name>头像`): every message from
/// others carries the same name and no sender line (a group's have one each). None for a
/// group, or a chat with nothing from others on screen.
fn private_partner(chat: &ChatView) -> Option<&str> {
    let mut others = chat
        .messages
        .iter()
        .filter(|m| m.is_message() && m.side == Side::Left);
    let first = others.next()?;
    let name = first.avatar.as_deref().filter(|_| first.sender.is_none())?;
    others
        .all(|m| m.sender.is_none() && m.avatar.as_deref() == Some(name))
        .then_some(name)
}

/// How many messages from others end the chat, back to our last message or the last
/// time divider (WeChat puts one before a message that comes after a pause): on a chat
/// never read, the burst that just came. At least one.
fn trailing_burst(chat: &ChatView) -> u32 {
    let mut burst = 0;
    for item in chat.messages.iter().rev() {
        match item.kind {
            crate::screen::ItemKind::TimeDivider => break,
            crate::screen::ItemKind::System => {}
            _ if item.side == Side::Right => break,
            _ => burst += 1,
        }
    }
    burst.max(1)
}

/// A group shows a sender line over others' messages; a private chat does not.
fn is_group(items: &[crate::screen::ChatItem]) -> bool {
    items
        .iter()
        .any(|m| m.is_message() && m.side == Side::Left && m.sender.is_some())
}

/// The chat's messages without one cut off at the top of the list. The accessibility
/// tree holds only what is visible, so a bubble scrolled half out of view may have lost
/// its text node, or in a group the sender line above it; read so, its text or its
/// sender would be wrong for good (and pages scrolled up would not join on it). Left
/// out, it is either old or found missing by the alignment, and scrolling up shows it
/// whole.
fn whole_messages(chat: &ChatView) -> Vec<crate::screen::ChatItem> {
    let mut items = chat.messages.clone();
    let is_group = is_group(&items);
    if let (Some(list), Some(first)) = (chat.message_list, items.first())
        && first.bounds.top <= list.top
        && first.is_message()
    {
        let lost_text = first.text.is_none() && first.kind == crate::screen::ItemKind::Unknown;
        let lost_sender = is_group && first.side == Side::Left && first.sender.is_none();
        if lost_text || lost_sender {
            items.remove(0);
        }
    }
    items
}

/// Whether an opened chat can be the conversation of `row`. The 8.0 title bar holds no
/// text, so the evidence is the content: the chat must show the message the row previewed
/// (it was the newest when the list was read). Avatar names are not used: with a remark
/// name set, the list and the avatar may name one person differently.
fn chat_fits_row(chat: &ChatView, row: &ConversationRow) -> bool {
    if let (Some(title), Some(shown)) = (&row.title, &chat.title) {
        // Older builds (and some phones) do name the chat; a group's bar adds its size.
        return shown.starts_with(title.trim_end_matches('…'));
    }
    match row.preview.as_deref().map(str::trim) {
        // Nothing to compare, or a draft of ours rather than a message.
        None | Some("") => true,
        Some(p) if p.starts_with("[草稿]") => true,
        // Only items with text are evidence: one without (a bubble cut at the screen's
        // edge, media) would match any preview, and a wrong chat would pass for the row.
        Some(preview) => tail::tail_items(&whole_messages(chat))
            .iter()
            .any(|(_, item)| item.text.is_some() && tail::preview_matches(preview, item)),
    }
}

/// What reading the chat back after pressing send showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verified {
    /// The reply is on screen and recorded as delivered with the watermark.
    Recorded,
    /// The reply is on screen but nothing could be recorded with it (no trace of what
    /// was read before): the caller marks it sent.
    Seen,
    Missing,
}

enum Opened {
    Row(ChatView),
    /// Some other chat: the list moved between reading it and tapping.
    Other(ChatView),
    Nothing,
}

/// What the conversation list said about a chat when it was opened.
#[derive(Debug, Clone, Default)]
struct RowHint {
    unread: Option<u32>,
    preview: Option<String>,
    /// The preview of a chat without a badge: on a first read, what follows it is new.
    old_preview: Option<String>,
}

impl RowHint {
    fn of(row: &ConversationRow) -> RowHint {
        let unread = match row.unread {
            crate::screen::Unread::Count(n) => Some(n),
            crate::screen::Unread::Dot => row.preview_count().or(Some(1)),
            crate::screen::Unread::None => None,
        };
        RowHint {
            unread,
            preview: row.preview.clone(),
            old_preview: None,
        }
    }
}

/// A chat seen by mistake and not named: its newest message, and how many of its
/// messages from others, back from that one, were news.
#[derive(Debug, Clone)]
struct Orphan {
    newest: TailItem,
    unread: u32,
}

/// What the actor remembers of a conversation it has read, to spot news without a badge.
#[derive(Debug, Clone, Default)]
struct KnownChat {
    last: Option<TailItem>,
    /// A preview already looked into that matched nothing new (formats differ: media).
    accepted_preview: Option<String>,
}

#[derive(Debug, Clone, Copy)]
/// How opening a conversation to answer in it went.
enum OpenOutcome {
    Opened,
    /// Not in the list, even scrolled: the replies cannot be delivered.
    NotFound,
    /// Another chat opened, or no list could be read: try again on the next round.
    Moved,
}

enum Scroll {
    TowardsOlder,
    TowardsNewer,
}

fn empty_chat() -> ChatView {
    ChatView {
        title: None,
        back_unread: None,
        messages: Vec::new(),
        message_list: None,
        input: None,
        send_button: None,
        back_button: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_from_dumpsys_package() {
        let out = "Packages:\n  Package [com.tencent.mm] (abc):\n    versionCode=2780 minSdk=23\n    versionName=8.0.50\n    splits=[base]\n  Package [com.tencent.mm] (def):\n    versionName=8.0.49\n";
        assert_eq!(parse_version_name(out).as_deref(), Some("8.0.50"));
        assert_eq!(parse_version_name("Unable to find package"), None);
    }

    fn bubble(top: i32, text: Option<&str>) -> crate::screen::ChatItem {
        crate::screen::ChatItem {
            kind: if text.is_some() {
                crate::screen::ItemKind::Text
            } else {
                crate::screen::ItemKind::Unknown
            },
            side: Side::Left,
            sender: None,
            avatar: Some("李雷".into()),
            text: text.map(Into::into),
            bounds: Rect {
                left: 0,
                top,
                right: 720,
                bottom: top + 100,
            },
        }
    }

    /// A chat whose message list starts at y = 200.
    fn chat_in_list(messages: Vec<crate::screen::ChatItem>) -> ChatView {
        ChatView {
            message_list: Some(Rect {
                left: 0,
                top: 200,
                right: 720,
                bottom: 1400,
            }),
            messages,
            ..empty_chat()
        }
    }

    #[test]
    fn a_bubble_cut_at_the_top_without_its_text_is_not_read_as_a_message() {
        let chat = chat_in_list;
        let texts = |chat: &ChatView| -> Vec<Option<String>> {
            whole_messages(chat).into_iter().map(|m| m.text).collect()
        };
        // Cut at the top and its text node gone: left out, to be read whole after a scroll.
        let cut = chat(vec![bubble(200, None), bubble(400, Some("二"))]);
        assert_eq!(texts(&cut), [Some("二".to_string())]);
        // Cut, but its text is there (uiautomator gives a partly visible node's text).
        let partly = chat(vec![bubble(200, Some("一")), bubble(400, Some("二"))]);
        assert_eq!(texts(&partly).len(), 2);
        // Whole and without text (an image on an old build): a message like any other.
        let whole = chat(vec![bubble(260, None), bubble(400, Some("二"))]);
        assert_eq!(texts(&whole).len(), 2);
        // In a group, cut above its text: the sender line is gone, the text is not.
        let member = |top, sender: Option<&str>, text: &str| crate::screen::ChatItem {
            sender: sender.map(Into::into),
            ..bubble(top, Some(text))
        };
        let group = chat(vec![
            member(200, None, "一"),
            member(400, Some("王芳"), "二"),
        ]);
        assert_eq!(texts(&group), [Some("二".to_string())]);
        let whole_group = chat(vec![
            member(200, Some("陈静"), "一"),
            member(400, Some("王芳"), "二"),
        ]);
        assert_eq!(texts(&whole_group).len(), 2);
    }

    #[test]
    fn a_chat_fits_a_row_only_on_a_message_with_text() {
        let row = ConversationRow {
            title: Some("家庭群".into()),
            preview: Some("陈静: 家庭群 消息 91".into()),
            time: None,
            unread: crate::screen::Unread::None,
            muted: None,
            bounds: Rect::default(),
        };
        let chat = chat_in_list;
        // Another group: a bubble cut at the top without text, and other messages.
        let other = chat(vec![bubble(200, None), bubble(400, Some("项目群 消息 92"))]);
        assert!(!chat_fits_row(&other, &row));
        let media = chat(vec![bubble(260, None), bubble(400, Some("项目群 消息 92"))]);
        assert!(
            !chat_fits_row(&media, &row),
            "a bubble without text is no evidence"
        );
        let right = chat(vec![crate::screen::ChatItem {
            sender: Some("陈静".into()),
            ..bubble(400, Some("家庭群 消息 91"))
        }]);
        assert!(chat_fits_row(&right, &row));
    }

    #[test]
    fn who_a_private_chat_is_with_and_what_just_came() {
        let item =
            |kind, side, sender: Option<&str>, avatar: Option<&str>| crate::screen::ChatItem {
                kind,
                side,
                sender: sender.map(Into::into),
                avatar: avatar.map(Into::into),
                text: Some("x".into()),
                bounds: Rect::default(),
            };
        use crate::screen::ItemKind::{System, Text, TimeDivider};
        let chat = |messages| ChatView {
            messages,
            ..empty_chat()
        };
        let private = chat(vec![
            item(TimeDivider, Side::Centre, None, None),
            item(Text, Side::Left, None, Some("李雷")),
            item(Text, Side::Right, None, Some("我")),
            item(TimeDivider, Side::Centre, None, None),
            item(Text, Side::Left, None, Some("李雷")),
            item(System, Side::Centre, None, None),
            item(Text, Side::Left, None, Some("李雷")),
        ]);
        assert_eq!(private_partner(&private), Some("李雷"));
        assert_eq!(trailing_burst(&private), 2);
        let group = chat(vec![
            item(Text, Side::Left, Some("王芳"), Some("王芳")),
            item(Text, Side::Left, Some("陈静"), Some("陈静")),
        ]);
        assert_eq!(private_partner(&group), None);
        assert_eq!(trailing_burst(&group), 2);
        let ours_last = chat(vec![
            item(Text, Side::Left, None, Some("李雷")),
            item(Text, Side::Right, None, Some("我")),
        ]);
        assert_eq!(trailing_burst(&ours_last), 1, "at least one");
        assert_eq!(private_partner(&chat(Vec::new())), None);
    }
}
