//! Getting around WeChat: from the list into a chat (checking it is the chat meant) and
//! back, past dialogs, scrolling a list.

use std::time::Duration;

use crate::dump::Rect;
use crate::input::KEYCODE_BACK;
use crate::screen::{ChatView, ConversationList, ConversationRow, ScreenKind, ScreenReading};
use crate::tail::{self, TailKind};

use super::chat::whole_messages;
use super::scan::RowHint;
use super::{AgentError, DeviceStatus, PhoneAgent};

pub(super) const WECHAT_LAUNCHER: &str = "com.tencent.mm/.ui.LauncherUI";

impl PhoneAgent {
    /// Reads until the screen is of `kind` (screens take a moment to change after a tap).
    pub(super) fn read_until(
        &mut self,
        kind: ScreenKind,
    ) -> Result<Option<ScreenReading>, AgentError> {
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

    /// Closes a dialog in the way: with the button the map knows to be harmless, else with
    /// back; the sink hears of it either way.
    pub(super) fn handle_dialog(&mut self, reading: &ScreenReading) -> Result<(), AgentError> {
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

    /// Goes back to the conversation list and returns its reading (None if it could not
    /// get there in a few steps; the next round tries again).
    pub(super) fn back_to_list(&mut self) -> Result<Option<ScreenReading>, AgentError> {
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

    /// Taps a row and checks that the chat that opened is the row's: the list re-sorts
    /// whenever a message arrives, so a row read half a second ago may have moved.
    pub(super) fn open_checked(&mut self, row: &ConversationRow) -> Result<Opened, AgentError> {
        self.open_row(row)?;
        let Some(chat) = self.read_until(ScreenKind::Chat)?.and_then(|r| r.chat) else {
            return Ok(Opened::Nothing);
        };
        if chat_fits_row(&chat, row) {
            tracing::debug!(device = %self.config.device, row = ?row.title, preview = ?row.preview, "opened the row tapped");
            return Ok(Opened::Row(chat));
        }
        tracing::warn!(device = %self.config.device, row = ?row.title, preview = ?row.preview, opened = ?chat.title, "the chat that opened is not the row tapped (the list moved)");
        Ok(Opened::Other(chat))
    }

    fn open_row(&mut self, row: &ConversationRow) -> Result<(), AgentError> {
        // The row's top half is its title line; its centre may lie under the tab bar.
        let target = Rect {
            bottom: row.bounds.top + row.bounds.height() / 2,
            ..row.bounds
        };
        self.tap(target)
    }

    /// Opens a conversation from the list (scrolling it if needed), reading what is new in
    /// it on the way in.
    pub(super) fn open_conversation(
        &mut self,
        conversation: &str,
    ) -> Result<OpenOutcome, AgentError> {
        if self.current_chat.as_deref() == Some(conversation)
            && let Some(chat) = self.read_until(ScreenKind::Chat)?.and_then(|r| r.chat)
        {
            tracing::debug!(device = %self.config.device, conversation, "answering in the chat that is open");
            self.process_chat(conversation, chat, &RowHint::default())?;
            return Ok(OpenOutcome::Opened);
        }
        self.back_to_list()?;
        let mut scrolled = 0;
        let (row, before) = loop {
            let Some(reading) = self.read_until(ScreenKind::ConversationList)? else {
                return Ok(OpenOutcome::Moved);
            };
            let list = reading.list.unwrap_or_else(|| ConversationList {
                title: None,
                tab_unread: None,
                rows: Vec::new(),
            });
            if let Some(row) = list
                .rows
                .iter()
                .find(|r| r.title.as_deref() == Some(conversation))
            {
                break (row.clone(), list);
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
        let chat = match self.open_checked(&row)? {
            Opened::Row(chat) => chat,
            // Never type into a chat we are not sure of; the next round tries again. The
            // chat that did open had its badge cleared by the open: it is worked out and
            // read now, as the list scan does, or its news would be lost.
            Opened::Other(orphan) => {
                let after = self.back_to_list()?;
                let after_list = after.as_ref().and_then(|a| a.list.as_ref());
                self.adopt(orphan, Some(&before), after_list, conversation)?;
                return Ok(OpenOutcome::Moved);
            }
            Opened::Nothing => {
                self.back_to_list()?;
                return Ok(OpenOutcome::Moved);
            }
        };
        self.current_chat = Some(conversation.to_string());
        // A send that went out before a crash shows as a new own message here; recording
        // it settles that reply (see `commit`), so it is not typed again.
        self.process_chat(conversation, chat, &RowHint::of(&row))?;
        Ok(OpenOutcome::Opened)
    }

    /// Answers what is queued for the open chat and reads what arrived meanwhile (a
    /// message in an open chat raises no badge), then goes back to the list.
    pub(super) fn leave_chat(
        &mut self,
        conversation: &str,
    ) -> Result<Option<ScreenReading>, AgentError> {
        let mut back = None;
        for _ in 0..4 {
            self.wait_for_replies(conversation)?;
            let chat = match self.fresh_chat.take() {
                Some(chat) => chat,
                None => match self.read_until(ScreenKind::Chat)?.and_then(|r| r.chat) {
                    Some(chat) => chat,
                    None => break,
                },
            };
            back = chat.back_button;
            let new = self.process_chat(conversation, chat, &RowHint::default())?;
            if !new.iter().any(|i| i.kind == TailKind::Other) {
                break;
            }
            back = None;
        }
        // The chat was just read and nothing came since: its back button is where that
        // read saw it, so no read is needed before pressing it.
        if let Some(back) = back {
            self.tap(back)?;
        }
        self.back_to_list()
    }

    pub(super) fn scroll(&mut self, list: Rect, direction: Scroll) -> Result<(), AgentError> {
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
}

/// Whether an opened chat can be the conversation of `row`. The 8.0 title bar holds no
/// text, so the evidence is the content: the chat must show the message the row previewed
/// (it was the newest when the list was read). Avatar names are not used: with a remark
/// name set, the list and the avatar may name one person differently.
pub(super) fn chat_fits_row(chat: &ChatView, row: &ConversationRow) -> bool {
    if let (Some(title), Some(shown)) = (&row.title, &chat.title) {
        // Older builds (and some phones) do name the chat; a group's bar adds its size.
        return tail::fold(shown).starts_with(&tail::fold(title.trim_end_matches('…')));
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

pub(super) enum Opened {
    Row(ChatView),
    /// Some other chat: the list moved between reading it and tapping.
    Other(ChatView),
    Nothing,
}

#[derive(Debug, Clone, Copy)]
/// How opening a conversation to answer in it went.
pub(super) enum OpenOutcome {
    Opened,
    /// Not in the list, even scrolled: the replies cannot be delivered.
    NotFound,
    /// Another chat opened, or no list could be read: try again on the next round.
    Moved,
}

pub(super) enum Scroll {
    TowardsOlder,
    TowardsNewer,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::chat::tests::{bubble, chat_in_list};

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
}
