//! What the actor shows of each screen it reads, for a live view (the controller's
//! dashboard): the screen's kind, what was read on it (rows, messages), each recognised
//! element boxed in screen pixels, and, only while someone watches, a screenshot.
//!
//! The [`Observer`] says whether anyone watches; while nobody does a read costs one
//! comparison more than before and no screenshot is taken. A screenshot is taken when the
//! reading changed (or a new watcher asked for one), so a chat read on every poll of the
//! hot window does not make the phone render a PNG each time. A reader that reads
//! screenshots (vision) hands over the one it read ([`ScreenReader::take_frame`]), so
//! watching it costs no second capture.
//!
//! [`ScreenReader::take_frame`]: crate::reader::ScreenReader::take_frame

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::PhoneAgent;
use crate::dump::Rect;
use crate::reader::Frame;
use crate::screen::{ItemKind, ScreenKind, ScreenReading, Side};

/// Who looks at a phone's screens.
pub trait Observer: Send + Sync {
    /// Whether anyone watches now: screenshots are taken only then.
    fn watching(&self) -> bool;
    /// Whether a reading is wanted now though the phone looks idle (a watcher arrived
    /// and has nothing to see yet). Asked once per round of the actor.
    fn wants_refresh(&self) -> bool {
        false
    }
    /// A screen was read.
    fn observe(&self, observation: Observation);
    /// A screen was read and showed what the last observation showed.
    fn unchanged(&self) {}
}

/// One screen as read, with what makes it drawable.
#[derive(Debug, Clone, Serialize)]
pub struct Observation {
    pub device: String,
    /// When it was read, Unix milliseconds.
    pub at_ms: u64,
    pub kind: ScreenKind,
    /// What read it (`ScreenReader::name`: the UI map's name, or `vision:…`).
    pub reader: String,
    /// The chat's or the list's title.
    pub title: Option<String>,
    /// The conversation list's rows, top to bottom.
    pub rows: Vec<RowSeen>,
    /// The open chat's messages, top to bottom.
    pub messages: Vec<MessageSeen>,
    /// Every element the reader recognised, in screen pixels.
    pub boxes: Vec<RoleBox>,
    /// The screenshot's width and height, when one was taken.
    pub size: Option<(u32, u32)>,
    /// This screen as captured (the vision reader's own frame, or `screencap -p`), taken
    /// only while watched.
    #[serde(skip)]
    pub screenshot: Option<Arc<Frame>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RowSeen {
    pub title: Option<String>,
    pub preview: Option<String>,
    pub unread: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct MessageSeen {
    pub sender: Option<String>,
    pub text: Option<String>,
    /// `left` (someone else), `right` (the phone's owner), `centre` (times, notices).
    pub side: Side,
    pub kind: ItemKind,
}

/// One recognised element: its role (the UI map's vocabulary where one applies), a
/// label, and its bounds `[left, top, right, bottom]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleBox {
    pub role: &'static str,
    pub label: Option<String>,
    pub bounds: [i32; 4],
}

fn bounds(rect: Rect) -> [i32; 4] {
    [rect.left, rect.top, rect.right, rect.bottom]
}

/// The boxes of a reading: rows, messages, the input, the buttons, a dialog.
pub fn boxes(reading: &ScreenReading) -> Vec<RoleBox> {
    let mut boxes = Vec::new();
    let mut add = |role: &'static str, label: Option<&str>, rect: Rect| {
        boxes.push(RoleBox {
            role,
            label: label.map(str::to_string),
            bounds: bounds(rect),
        });
    };
    if let Some(list) = &reading.list {
        for row in &list.rows {
            add("conversation_row", row.title.as_deref(), row.bounds);
        }
    }
    if let Some(chat) = &reading.chat {
        if let Some(rect) = chat.message_list {
            add("message_list", None, rect);
        }
        for item in &chat.messages {
            let role = match item.kind {
                ItemKind::TimeDivider => "time_divider",
                ItemKind::System => "system_message",
                _ => "message",
            };
            add(role, item.text.as_deref(), item.bounds);
        }
        if let Some(input) = &chat.input {
            add("input", Some(&input.text), input.bounds);
        }
        if let Some(rect) = chat.send_button {
            add("send_button", None, rect);
        }
        if let Some(rect) = chat.back_button {
            add("back_button", None, rect);
        }
    }
    if let Some(dialog) = &reading.dialog {
        add(
            "dialog",
            dialog.texts.first().map(String::as_str),
            dialog.bounds,
        );
        for button in &dialog.buttons {
            add("dialog_button", Some(&button.text), button.bounds);
        }
    }
    boxes
}

/// Even when the reading is the same, a screenshot this old is taken again: what the
/// reader does not read (an image, a video) may have changed.
const SCREENSHOT_MAX_AGE: Duration = Duration::from_secs(5);

/// What the actor keeps for its observer between reads.
#[derive(Default)]
pub(super) struct Observing {
    pub observer: Option<Arc<dyn Observer>>,
    last: Option<ScreenReading>,
    last_shot: Option<Instant>,
    /// Whether someone watched when the current read began: the read's screenshot is
    /// taken only then, so a reader that keeps its frame has kept this one.
    watched: bool,
}

impl PhoneAgent {
    /// Shows every screen read from now on to `observer`.
    pub fn observe_with(&mut self, observer: Arc<dyn Observer>) {
        self.observing.observer = Some(observer);
    }

    /// Before a read: a reader that takes screenshots keeps this one if someone watches.
    pub(super) fn before_read(&mut self) {
        let watching = self
            .observing
            .observer
            .as_ref()
            .is_some_and(|o| o.watching());
        self.observing.watched = watching;
        self.reader.keep_frames(watching);
    }

    /// The screen as the reader captured it for this read, else a `screencap -p`; None
    /// when neither gives an image (the read itself went well, so it is not an error).
    fn screenshot(&mut self) -> Option<Arc<Frame>> {
        if let Some(frame) = self.reader.take_frame().filter(|f| f.size().is_some()) {
            return Some(Arc::new(frame));
        }
        match self.shell("screencap -p") {
            Ok(out) => {
                crate::telemetry::screenshot_taken(&self.config.device);
                let stderr = out.stderr_text();
                let frame = Frame::Png(out.stdout);
                if frame.size().is_some() {
                    return Some(Arc::new(frame));
                }
                tracing::debug!(device = %self.config.device, stderr = %stderr.trim(), "screencap -p printed no PNG");
                None
            }
            Err(error) => {
                tracing::debug!(device = %self.config.device, %error, "no screenshot for the live view");
                None
            }
        }
    }

    /// Reads the screen if the observer asks for it (someone started watching).
    pub(super) fn refresh_if_wanted(&mut self) -> Result<(), super::AgentError> {
        let wanted = self
            .observing
            .observer
            .as_ref()
            .is_some_and(|o| o.wants_refresh());
        if wanted {
            self.observing.last = None;
            self.read()?;
        }
        Ok(())
    }

    /// Tells the observer about `reading`, with a screenshot if it is watched and the
    /// screen changed. A screenshot that fails is left out: the read itself went well.
    pub(super) fn publish(&mut self, reading: &ScreenReading) {
        let Some(observer) = self.observing.observer.clone() else {
            return;
        };
        let changed = self.observing.last.as_ref() != Some(reading);
        let watching = self.observing.watched;
        let stale = self
            .observing
            .last_shot
            .is_none_or(|at| at.elapsed() >= SCREENSHOT_MAX_AGE);
        let wanted = changed || (watching && stale);
        if !wanted {
            observer.unchanged();
            return;
        }
        // The read's time, before the screenshot: what a live view's delay counts from.
        let at_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let screenshot = if watching {
            self.observing.last_shot = Some(Instant::now());
            self.screenshot()
        } else {
            None
        };
        let title = reading
            .chat
            .as_ref()
            .and_then(|c| c.title.clone())
            .or_else(|| reading.list.as_ref().and_then(|l| l.title.clone()));
        let rows = reading.list.as_ref().map_or_else(Vec::new, |list| {
            list.rows
                .iter()
                .map(|row| RowSeen {
                    title: row.title.clone(),
                    preview: row.preview.clone(),
                    unread: row.unread.is_unread(),
                })
                .collect()
        });
        let messages = reading.chat.as_ref().map_or_else(Vec::new, |chat| {
            chat.messages
                .iter()
                .map(|m| MessageSeen {
                    sender: m.sender.clone(),
                    text: m.text.clone(),
                    side: m.side,
                    kind: m.kind,
                })
                .collect()
        });
        observer.observe(Observation {
            device: self.config.device.clone(),
            at_ms,
            kind: reading.kind,
            reader: self.reader.name().to_string(),
            title,
            rows,
            messages,
            boxes: boxes(reading),
            size: screenshot.as_deref().and_then(Frame::size),
            screenshot,
        });
        self.observing.last = Some(reading.clone());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::agent::{AgentConfig, Batch, DeviceStatus, SendOutcome, Sink};
    use crate::reader::{ReadError, ScreenReader};
    use crate::screen::{ConversationList, ConversationRow, Unread};
    use crate::tail::Watermark;
    use crate::transport::{ShellOutput, Transport, TransportError};

    /// A phone that answers the version question and a PNG for `screencap -p`, and keeps
    /// every command.
    struct Phone(Arc<Mutex<Vec<String>>>);

    impl Transport for Phone {
        fn shell(&mut self, command: &str) -> Result<ShellOutput, TransportError> {
            self.0.lock().expect("lock").push(command.to_string());
            let stdout = match command {
                "dumpsys package com.tencent.mm" => b"versionName=8.0.50\n".to_vec(),
                "screencap -p" => png(4, 8),
                _ => Vec::new(),
            };
            Ok(ShellOutput {
                stdout,
                stderr: Vec::new(),
                exit_code: Some(0),
            })
        }
        fn describe(&self) -> String {
            "test phone".into()
        }
    }

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut png = Vec::new();
        image::GrayImage::new(width, height)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .expect("encode");
        png
    }

    /// Shows a list whose title is the number of reads so far divided by `every`: the
    /// screen changes every `every` reads. Keeps a raw frame when asked, if `frames`.
    struct Reader {
        reads: u32,
        every: u32,
        frames: bool,
        keep: bool,
        frame: Option<Frame>,
    }

    impl ScreenReader for Reader {
        fn read(&mut self, _phone: &mut dyn Transport) -> Result<ScreenReading, ReadError> {
            self.reads += 1;
            if self.frames && self.keep {
                let mut raw = Vec::new();
                for word in [2u32, 3, 1] {
                    raw.extend_from_slice(&word.to_le_bytes());
                }
                raw.extend_from_slice(&[0; 24]);
                self.frame = Some(Frame::Raw(raw));
            }
            Ok(ScreenReading {
                kind: ScreenKind::ConversationList,
                map: "test".into(),
                list: Some(ConversationList {
                    title: Some(format!("{}", self.reads / self.every)),
                    tab_unread: None,
                    rows: vec![ConversationRow {
                        title: Some("amy".into()),
                        preview: None,
                        time: None,
                        unread: Unread::None,
                        muted: None,
                        bounds: Rect {
                            left: 0,
                            top: 10,
                            right: 4,
                            bottom: 20,
                        },
                    }],
                }),
                chat: None,
                dialog: None,
            })
        }
        fn name(&self) -> &str {
            "test"
        }
        fn keep_frames(&mut self, keep: bool) {
            self.keep = keep;
        }
        fn take_frame(&mut self) -> Option<Frame> {
            self.frame.take()
        }
    }

    struct NoSink;

    impl Sink for NoSink {
        fn watermark(&mut self, _: &str, _: &str) -> Result<Option<Watermark>, String> {
            Ok(None)
        }
        fn record(&mut self, _: Batch) -> Result<Vec<String>, String> {
            Ok(Vec::new())
        }
        fn sent(&mut self, _: &str, _: SendOutcome) -> Result<(), String> {
            Ok(())
        }
        fn status(&mut self, _: &str, _: DeviceStatus) {}
    }

    #[derive(Default)]
    struct Watcher {
        watching: AtomicBool,
        seen: Mutex<Vec<Observation>>,
    }

    impl Observer for Watcher {
        fn watching(&self) -> bool {
            self.watching.load(Ordering::SeqCst)
        }
        fn observe(&self, observation: Observation) {
            self.seen.lock().expect("lock").push(observation);
        }
    }

    fn agent(frames: bool) -> (PhoneAgent, Arc<Mutex<Vec<String>>>, Arc<Watcher>) {
        let commands = Arc::new(Mutex::new(Vec::new()));
        let (_tx, rx) = std::sync::mpsc::channel();
        let reader = Reader {
            reads: 0,
            every: 2,
            frames,
            keep: false,
            frame: None,
        };
        let mut agent = PhoneAgent::with_reader(
            AgentConfig::new("p"),
            Box::new(Phone(commands.clone())),
            Box::new(reader),
            Box::new(NoSink),
            rx,
        )
        .expect("agent");
        let watcher = Arc::new(Watcher::default());
        agent.observe_with(watcher.clone());
        (agent, commands, watcher)
    }

    fn screencaps(commands: &Mutex<Vec<String>>) -> usize {
        commands
            .lock()
            .expect("lock")
            .iter()
            .filter(|c| c.starts_with("screencap"))
            .count()
    }

    #[test]
    fn screenshots_only_while_watched_and_only_of_a_changed_screen() {
        let (mut agent, commands, watcher) = agent(false);
        for _ in 0..4 {
            agent.read().expect("read");
        }
        assert_eq!(screencaps(&commands), 0, "nobody watches");
        let seen = watcher.seen.lock().expect("lock").len();
        assert_eq!(seen, 3, "each change is still observed (0, 1, 2)");

        watcher.watching.store(true, Ordering::SeqCst);
        for _ in 0..4 {
            agent.read().expect("read");
        }
        // Reads 5..8 show 2, 3, 3, 4: the first is shot (there is no picture yet though
        // the screen is as before), then each of the two changes; the repeat is not.
        assert_eq!(screencaps(&commands), 3);
        let seen = watcher.seen.lock().expect("lock");
        let last = seen.last().expect("observed");
        assert_eq!(last.size, Some((4, 8)));
        assert!(matches!(last.screenshot.as_deref(), Some(Frame::Png(_))));
        assert_eq!(last.boxes[0].role, "conversation_row");
        assert_eq!(last.boxes[0].bounds, [0, 10, 4, 20]);
    }

    #[test]
    fn a_reader_s_own_frame_is_shown_without_another_capture() {
        let (mut agent, commands, watcher) = agent(true);
        watcher.watching.store(true, Ordering::SeqCst);
        agent.read().expect("read");
        assert_eq!(screencaps(&commands), 0);
        let seen = watcher.seen.lock().expect("lock");
        let last = seen.last().expect("observed");
        assert_eq!(last.size, Some((2, 3)));
        let frame = last.screenshot.as_deref().expect("a frame");
        assert!(matches!(frame, Frame::Raw(_)));
        let png = frame.to_png().expect("encoded");
        assert_eq!(Frame::Png(png).size(), Some((2, 3)));
    }
}
