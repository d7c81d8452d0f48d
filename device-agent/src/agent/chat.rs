//! Reading an open chat: what is new after the conversation's watermark (scrolling back
//! when it is above the screen), and recording it as one batch with the new watermark.

use crate::input::InputMethod;
use crate::screen::{ChatItem, ChatView, ItemKind, ScreenKind, Side};
use crate::tail::{self, TailItem, TailKind, Watermark};

use super::navigate::Scroll;
use super::scan::{self, RowHint};
use super::{AgentError, Batch, Delivered, Outbound, PhoneAgent, PhoneMessage};

impl PhoneAgent {
    /// Finds what is new in an open chat, scrolling back when the last message seen is
    /// above the screen, and records it. Returns the new items.
    pub(super) fn process_chat(
        &mut self,
        conversation: &str,
        chat: ChatView,
        hint: &RowHint,
    ) -> Result<Vec<TailItem>, AgentError> {
        self.read_chat(conversation, chat, hint, Shown::InFront)
    }

    /// As [`Self::process_chat`], for a chat view that may no longer be in front: one
    /// that is gone is never scrolled (a swipe would move whatever replaced it).
    pub(super) fn read_chat(
        &mut self,
        conversation: &str,
        chat: ChatView,
        hint: &RowHint,
        shown: Shown,
    ) -> Result<Vec<TailItem>, AgentError> {
        self.unread_seen.remove(conversation);
        let mut unread = hint.unread;
        let mut preview = hint.preview.as_deref();
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
        // A badge whose number could not be read, on a chat never read: the burst that ends
        // it is news (at least as many as a count known otherwise), counted back from the
        // end; while that burst fills the screen, it may go on above it.
        let uncounted = hint.uncounted && watermark.tail.is_empty();
        let burst = |items: &[ChatItem]| {
            let n = scan::trailing_burst(items).max(hint.unread.unwrap_or(0));
            (Some(n), scan::burst_start(items, items.len()).is_none())
        };
        let mut open_burst = false;
        if uncounted {
            (unread, open_burst) = burst(&items);
            preview = None;
        }
        let mut found = tail::new_items(&watermark.tail, &visible, unread, preview);
        found.complete &= !open_burst;
        tracing::debug!(device = %device, conversation, unread = ?unread, preview = ?preview, old_preview = ?hint.old_preview, watermark = watermark.tail.len(), visible = visible.len(), start = found.start, complete = found.complete, "where the news starts");
        if let Some(old) = hint.old_preview.as_deref()
            && watermark.tail.is_empty()
            && let Some(at) = visible.iter().rposition(|i| tail::preview_matches(old, i))
        {
            found = tail::NewItems {
                start: at + 1,
                complete: true,
            };
        }
        // Each source of news bounds it from below, so the earliest start wins. A chat
        // opened by mistake before keeps that news even when its row, badge cleared by
        // that open, later looks read (its preview then is not where news starts). When
        // that chat's newest message then has scrolled up since, it is looked for above.
        let mut orphan_search =
            watermark.tail.is_empty() && self.may_hold_orphan(conversation, &chat);
        let mut orphan = None;
        if orphan_search {
            orphan = self.take_orphan(conversation, &visible);
        }
        let mut orphan_certain = true;
        if let Some((start, certain)) = orphan.as_ref().and_then(|o| o.news_start(&items, &visible))
        {
            orphan_search = !certain;
            orphan_certain = certain;
            if start < found.start {
                found = tail::NewItems {
                    start,
                    complete: true,
                };
            }
        }
        let mut pages = 0;
        let mut end_before = visible.len();
        while (!found.complete || orphan_search) && pages < self.config.max_scroll_pages {
            let Some(list) = chat.message_list.filter(|_| shown == Shown::InFront) else {
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
            let before = found.start;
            if uncounted {
                (unread, open_burst) = burst(&items);
            }
            found = tail::new_items(&watermark.tail, &visible, unread, preview);
            found.complete &= !open_burst;
            // What the first page decided (a preview, an orphan) stays decided: the
            // page added above only shifts where it starts.
            let added = visible.len().saturating_sub(end_before);
            if found.start > before + added {
                found.start = before + added;
            }
            end_before = visible.len();
            if orphan.is_none() && orphan_search {
                orphan = self.take_orphan(conversation, &visible);
            }
            if let Some((start, certain)) =
                orphan.as_ref().and_then(|o| o.news_start(&items, &visible))
            {
                orphan_search = !certain;
                orphan_certain = certain;
                if start < found.start {
                    found = tail::NewItems {
                        start,
                        complete: true,
                    };
                }
            }
        }
        if !orphan_certain {
            tracing::warn!(device = %device, conversation, pages, "a chat opened by mistake earlier had more news than could be scrolled back to; reading from the oldest page reached");
        }
        if pages > 0
            && let Some(list) = chat.message_list
        {
            for _ in 0..pages + 1 {
                self.scroll(list, Scroll::TowardsNewer)?;
            }
        }
        let is_group = is_group(&items);
        if pages == 0 && shown == Shown::InFront {
            self.fresh_chat = Some(chat);
        }
        let end = visible.len();
        let read = self.commit(
            conversation,
            watermark,
            visible,
            found.start..end,
            is_group,
            None,
        )?;
        // Once the chat has been read, an orphan named after it that was not found is
        // settled by that read: it must not keep the chat marked as having news.
        let named = self.orphans.len();
        self.orphans
            .retain(|o| o.conversation.as_deref() != Some(conversation));
        self.orphans_changed |= self.orphans.len() != named;
        if std::mem::take(&mut self.orphans_changed) {
            self.sink
                .keep_orphans(&device, &self.orphans)
                .map_err(AgentError::Sink)?;
        }
        Ok(read)
    }

    /// Records `visible[range]` as read: a message event for each item in it (never for
    /// `ours`, the replies just typed, in order, which are recorded as delivered instead)
    /// and a tail that ends with the range. Returns the range's items.
    pub(super) fn commit(
        &mut self,
        conversation: &str,
        old: Watermark,
        visible: Vec<TailItem>,
        range: std::ops::Range<usize>,
        is_group: bool,
        ours: Option<(&[Outbound], InputMethod)>,
    ) -> Result<Vec<TailItem>, AgentError> {
        let device = self.config.device.clone();
        let new: Vec<TailItem> = visible[range.clone()].to_vec();
        let mut next_seq = old.next_seq;
        let mut messages = Vec::new();
        // Our replies are the last own bubbles of the range, in the order they were sent.
        let mut ours_left = ours.map_or(&[][..], |(o, _)| o).iter().rev().peekable();
        let mut is_ours = vec![false; new.len()];
        for (i, item) in new.iter().enumerate().rev() {
            if item.kind == TailKind::Own {
                is_ours[i] = ours_left
                    .next_if(|o| item.text.as_deref() == Some(&o.text))
                    .is_some();
            }
        }
        for (item, ours) in new.iter().zip(is_ours) {
            let is_self = item.kind == TailKind::Own;
            if item.kind == TailKind::System || ours {
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
                    ItemKind::Text
                } else {
                    ItemKind::Unknown
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
        if received > 0 {
            self.last_news = Some(std::time::Instant::now());
        }
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
                delivered: ours
                    .map(|(outs, method)| {
                        outs.iter()
                            .map(|out| Delivered {
                                action_id: out.action_id.clone(),
                                method,
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .map_err(AgentError::Sink)?;
        if !settled.is_empty() {
            tracing::info!(device = %self.config.device, conversation, actions = ?settled, "replies found sent before a restart");
            self.pending.retain(|o| !settled.contains(&o.action_id));
            self.settled.extend(settled);
        }
        Ok(new)
    }
}

/// A group shows a sender line over others' messages; a private chat does not.
pub(super) fn is_group(items: &[ChatItem]) -> bool {
    items
        .iter()
        .any(|m| m.is_message() && m.side == Side::Left && m.sender.is_some())
}

/// Whether the chat view being read is still on the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shown {
    InFront,
    /// Read earlier; the list (or another chat) is in front now.
    Gone,
}

/// The chat's messages without one cut off at the top of the list. The accessibility
/// tree holds only what is visible, so a bubble scrolled half out of view may have lost
/// its text node, or in a group the sender line above it; read so, its text or its
/// sender would be wrong for good (and pages scrolled up would not join on it). Left
/// out, it is either old or found missing by the alignment, and scrolling up shows it
/// whole.
pub(super) fn whole_messages(chat: &ChatView) -> Vec<ChatItem> {
    let mut items = chat.messages.clone();
    let is_group = is_group(&items);
    if let (Some(list), Some(first)) = (chat.message_list, items.first())
        && first.bounds.top <= list.top
        && first.is_message()
    {
        let lost_text = first.text.is_none() && first.kind == ItemKind::Unknown;
        let lost_sender = is_group && first.side == Side::Left && first.sender.is_none();
        if lost_text || lost_sender {
            items.remove(0);
        }
    }
    // A page read after scrolling up ends in a bubble cut at the bottom edge, whose text
    // node lies below the screen: it is read whole on the page below.
    if let (Some(list), Some(last)) = (chat.message_list, items.last())
        && last.bounds.bottom >= list.bottom
        && last.is_message()
        && last.text.is_none()
        && last.kind == ItemKind::Unknown
    {
        items.pop();
    }
    items
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::agent::scan::empty_chat;
    use crate::dump::Rect;

    pub(in crate::agent) fn bubble(top: i32, text: Option<&str>) -> ChatItem {
        ChatItem {
            kind: if text.is_some() {
                ItemKind::Text
            } else {
                ItemKind::Unknown
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
    pub(in crate::agent) fn chat_in_list(messages: Vec<ChatItem>) -> ChatView {
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
        let member = |top, sender: Option<&str>, text: &str| ChatItem {
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
        // Cut at the bottom (a page above the newest one) with its text below the screen.
        let bottom = chat(vec![bubble(400, Some("二")), bubble(1350, None)]);
        assert_eq!(texts(&bottom), [Some("二".to_string())]);
        let whole_last = chat(vec![bubble(400, Some("二")), bubble(1200, None)]);
        assert_eq!(texts(&whole_last).len(), 2, "an image above the edge stays");
    }
}
