//! What the actor shows of each screen it reads, for a live view (the controller's
//! dashboard): the screen's kind, what was read on it (rows, messages), each recognised
//! element boxed in screen pixels, and, only while someone watches, a screenshot.
//!
//! The [`Observer`] says whether anyone watches; while nobody does a read costs one
//! comparison more than before and no screenshot is taken. A screenshot is taken when the
//! reading changed (or a new watcher asked for one), so a chat read on every poll of the
//! hot window does not make the phone render a PNG each time.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::PhoneAgent;
use crate::dump::Rect;
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
    /// `screencap -p` of this screen (PNG), taken only while watched.
    #[serde(skip)]
    pub screenshot: Option<Arc<Vec<u8>>>,
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

/// Width and height from a PNG's IHDR chunk (PNG spec §11.2.2: the first chunk, right
/// after the 8-byte signature, width then height as big-endian u32).
pub fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if png.len() < 24 || !png.starts_with(SIGNATURE) || &png[12..16] != b"IHDR" {
        return None;
    }
    let word = |at: usize| {
        png.get(at..at + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_be_bytes)
    };
    Some((word(16)?, word(20)?))
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
}

impl PhoneAgent {
    /// Shows every screen read from now on to `observer`.
    pub fn observe_with(&mut self, observer: Arc<dyn Observer>) {
        self.observing.observer = Some(observer);
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
        let watching = observer.watching();
        let stale = self
            .observing
            .last_shot
            .is_none_or(|at| at.elapsed() >= SCREENSHOT_MAX_AGE);
        let wanted = changed || (watching && stale);
        if !wanted {
            observer.unchanged();
            return;
        }
        let screenshot = if watching {
            self.observing.last_shot = Some(Instant::now());
            match self.shell("screencap -p") {
                Ok(out) if png_size(&out.stdout).is_some() => {
                    crate::telemetry::screenshot_taken(&self.config.device);
                    Some(Arc::new(out.stdout))
                }
                Ok(out) => {
                    tracing::debug!(device = %self.config.device, stderr = %out.stderr_text().trim(), "screencap -p printed no PNG");
                    None
                }
                Err(error) => {
                    tracing::debug!(device = %self.config.device, %error, "no screenshot for the live view");
                    None
                }
            }
        } else {
            None
        };
        let at_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
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
            size: screenshot.as_deref().and_then(|png| png_size(png)),
            screenshot,
        });
        self.observing.last = Some(reading.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_size_reads_the_header_and_refuses_what_is_not_png() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(&1080u32.to_be_bytes());
        png.extend_from_slice(&2400u32.to_be_bytes());
        assert_eq!(png_size(&png), Some((1080, 2400)));
        assert_eq!(png_size(&png[..20]), None);
        assert_eq!(png_size(b"not a png at all, really not one"), None);
    }
}
