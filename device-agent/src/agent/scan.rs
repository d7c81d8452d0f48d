//! Finding news: the screen in front on each round, the conversation list's badges and
//! previews, and chats that opened by mistake (whose badge the open cleared).

use crate::screen::{
    ChatItem, ChatView, ConversationList, ConversationRow, ItemKind, ScreenKind, ScreenReading,
    Side, Unread,
};
use crate::tail::{self, TailItem, TailKind, Watermark};

use super::chat::{Shown, whole_messages};
use super::navigate::{Opened, WECHAT_LAUNCHER, chat_fits_row};
use super::{AgentError, DeviceStatus, PhoneAgent};

/// Unnamed chats that opened by mistake, remembered until their first read.
const MAX_ORPHANS: usize = 16;

impl PhoneAgent {
    /// Deals with whatever is in front, the round's one entry here: the list is searched
    /// for news, a chat left open is read and left, anything else is cleared away.
    pub(super) fn scan(&mut self) -> Result<(), AgentError> {
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
                        let mut hint = RowHint::of(row);
                        // A count only grows until the chat is read, and reading it
                        // forgets this hint. A smaller one means a mistaken open cleared
                        // the badge: what it counted is still news, before the new count.
                        let earlier = self.unread_seen.get(title).and_then(|h| h.unread);
                        if hint.uncounted
                            && let Some(old) = earlier
                        {
                            // Its number unread now, the count seen before still holds: it
                            // only grows until the chat is read.
                            hint.unread = Some(hint.unread.map_or(old, |n| n.max(old)));
                        } else if let Some(old) = earlier
                            && let Some(new) = hint.unread
                            && new < old
                        {
                            tracing::info!(device = %self.config.device, conversation = %title, old, new, "a badge went down without a read: its news adds up");
                            hint.unread = Some(old + new);
                        }
                        self.unread_seen.insert(title.clone(), hint);
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
                    // Without a list to compare, it cannot be named, but what it showed is
                    // still remembered: dropping it would lose the news its open cleared.
                    let after = self.back_to_list()?;
                    let after_list = after.as_ref().and_then(|a| a.list.as_ref());
                    self.adopt(orphan, before.as_ref(), after_list, &title)?;
                    let Some(after) = after else {
                        return Ok(());
                    };
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
        // A named orphan is news its open cleared from the list; it is kept durably, so
        // this holds across a restart too.
        if row.unread.is_unread()
            || self.unread_seen.contains_key(title)
            || self
                .orphans
                .iter()
                .any(|o| o.conversation.as_deref() == Some(title.as_str()))
        {
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
    pub(super) fn remember(&mut self, conversation: &str, watermark: &Watermark) {
        let known = self.known.entry(conversation.to_string()).or_default();
        known.last = watermark.tail.last().cloned();
    }

    /// Reads a chat that opened by mistake under the name of the one row it must be: a
    /// row whose badge is gone (opening cleared it) and whose preview the chat shows, or a
    /// row whose unread count dropped since the list was read (only reading lowers it).
    /// What is new comes from what the list said before the tap. A chat that cannot be
    /// told is remembered, so that its first read later still finds its news.
    pub(super) fn adopt(
        &mut self,
        orphan: ChatView,
        before: Option<&ConversationList>,
        after: Option<&ConversationList>,
        tapped: &str,
    ) -> Result<(), AgentError> {
        let earlier = |title: &str| {
            before.and_then(|l| l.rows.iter().find(|r| r.title.as_deref() == Some(title)))
        };
        let unread_count = |row: &ConversationRow| match row.unread {
            Unread::Count(n) => Some(n),
            Unread::Dot => Some(1),
            Unread::None => Some(0),
            Unread::Uncounted => None,
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
            // A chat whose title bar is read (screenshots, older builds) names itself:
            // that is the evidence, whatever the badges and previews did meanwhile.
            if let Some(shown) = &orphan.title {
                if tail::fold(shown).starts_with(&tail::fold(title.trim_end_matches('…'))) {
                    candidates.push(row);
                }
                continue;
            }
            let cleared = !row.unread.is_unread() && chat_fits_row(&orphan, row);
            let dropped = earlier(title).is_some_and(
                |e| matches!((unread_count(e), unread_count(row)), (Some(a), Some(b)) if a > b),
            );
            if cleared || dropped || partner == Some(title) {
                candidates.push(row);
            }
        }
        let [row] = candidates.as_slice() else {
            tracing::warn!(device = %self.config.device, candidates = candidates.len(), "cannot tell which chat opened by mistake; remembering what it showed");
            let newest = tail::tail_items(&orphan.messages).pop().map(|(_, t)| t);
            if let Some(newest) = newest.filter(|t| t.kind == TailKind::Other) {
                // It jumped into the list under the tap: what just came is news.
                self.keep_orphan(Orphan {
                    newest,
                    unread: trailing_burst(&orphan.messages),
                    open_ended: burst_start(&orphan.messages, orphan.messages.len()).is_none(),
                    people: people_in(&orphan),
                    after_preview: None,
                    conversation: None,
                })?;
            }
            self.fresh_chat = None;
            self.awaiting_replies = false;
            return Ok(());
        };
        let Some(title) = row.title.clone() else {
            return Ok(());
        };
        let mut from_burst = false;
        let hint = match (self.unread_seen.get(&title), earlier(&title)) {
            (Some(seen), _) => seen.clone(),
            (None, Some(r)) if r.unread.is_unread() => RowHint::of(r),
            // Its news arrived after the list was read: everything after what the row
            // previewed then is new.
            (None, Some(r)) => RowHint {
                unread: None,
                uncounted: false,
                preview: None,
                old_preview: r.preview.clone(),
            },
            // Not in the list at all then: a new chat, or one from below the fold that a
            // message just brought to the top. What just came is news; on a first read,
            // what stands before our last message or the last time divider is history.
            (None, None) => {
                from_burst = true;
                RowHint {
                    unread: Some(trailing_burst(&orphan.messages)),
                    uncounted: false,
                    preview: None,
                    old_preview: None,
                }
            }
        };
        // The screen it showed is gone (the list is in front), so nothing can be scrolled
        // there. A chat read before is found again by its watermark: when that screen did
        // not reach back to it, the chat is opened and read properly now, so that nothing
        // between the last read and that screen is skipped.
        let watermark = self
            .sink
            .watermark(&self.config.device, &title)
            .map_err(AgentError::Sink)?
            .unwrap_or_default();
        let visible: Vec<TailItem> = tail::tail_items(&whole_messages(&orphan))
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        // Never read before, its news is bounded by what the list said; when that reaches
        // above the screen, the open that cleared the badge must not cost those messages.
        // What the screen showed is carried durably (an orphan, named this time), and the
        // chat stays marked as having news, so that the scan opens it properly and scrolls
        // back as far as the news goes.
        if watermark.tail.is_empty()
            && let Some(carried) = news_above(&title, &orphan, &visible, &hint, from_burst)
        {
            tracing::info!(device = %self.config.device, conversation = %title, "the chat that opened by mistake has news above what its screen showed; it is read properly next");
            self.keep_orphan(carried)?;
            self.unread_seen.insert(title, hint);
            self.fresh_chat = None;
            self.awaiting_replies = false;
            return Ok(());
        }
        // A chat read before whose screen did not reach back to what was read is left for
        // the scan: its preview no longer matches the last message read there, so it is
        // opened and read properly, from its watermark.
        if !watermark.tail.is_empty()
            && !tail::new_items(&watermark.tail, &visible, None, None).complete
        {
            tracing::info!(device = %self.config.device, conversation = %title, "the chat that opened by mistake reaches past what its screen showed; it is read properly next");
            self.fresh_chat = None;
            self.awaiting_replies = false;
            return Ok(());
        }
        tracing::info!(device = %self.config.device, conversation = %title, "read the chat that opened by mistake");
        self.read_chat(&title, orphan, &hint, Shown::Gone)?;
        // Read from a screen that is gone: nothing may be typed on the strength of it.
        self.fresh_chat = None;
        self.awaiting_replies = false;
        Ok(())
    }

    /// Remembers, durably, a chat seen by mistake whose news its first read must find.
    fn keep_orphan(&mut self, orphan: Orphan) -> Result<(), AgentError> {
        self.orphans.push(orphan);
        // Bounded: one that never turns up must not be carried forever.
        if self.orphans.len() > MAX_ORPHANS {
            self.orphans.remove(0);
        }
        self.sink
            .keep_orphans(&self.config.device, &self.orphans)
            .map_err(AgentError::Sink)
    }

    /// Whether a chat read for the first time may be one that opened by mistake earlier,
    /// whose newest message then is above what the screen shows now: worth scrolling for.
    pub(super) fn may_hold_orphan(&self, conversation: &str, chat: &ChatView) -> bool {
        self.orphans.iter().any(|o| o.may_be(conversation, chat))
    }

    /// On a chat's first read: the chat that opened by mistake earlier, if its newest
    /// message then is among `visible`. It is used up (and forgotten durably once the read
    /// that used it is stored, `process_chat`).
    pub(super) fn take_orphan(
        &mut self,
        conversation: &str,
        visible: &[TailItem],
    ) -> Option<Orphan> {
        let index = self.orphans.iter().position(|orphan| {
            orphan
                .conversation
                .as_deref()
                .is_none_or(|c| c == conversation)
                && visible.contains(&orphan.newest)
        })?;
        self.orphans_changed = true;
        tracing::info!(device = %self.config.device, "a chat that opened by mistake earlier: its news is read now");
        Some(self.orphans.remove(index))
    }
}

/// On a first read from a screen that is gone: where its news starts when that lies above
/// what the screen showed (more unread than it held, a preview from before the news not
/// on it, a burst of news that fills it), as an orphan its proper read will find.
fn news_above(
    conversation: &str,
    chat: &ChatView,
    visible: &[TailItem],
    hint: &RowHint,
    from_burst: bool,
) -> Option<Orphan> {
    let newest = visible.last()?.clone();
    let carried = |unread: usize, open_ended: bool, after_preview: Option<String>| Orphan {
        newest: newest.clone(),
        unread: u32::try_from(unread).unwrap_or(u32::MAX),
        open_ended,
        people: people_in(chat),
        after_preview,
        conversation: Some(conversation.to_string()),
    };
    let others = |items: &[TailItem]| items.iter().filter(|i| i.kind == TailKind::Other).count();
    match (hint.unread, &hint.old_preview) {
        // A badge whose count was not read: the burst that ends the chat is the news, as
        // on a first read without a count; one that fills the screen may go on above it.
        _ if hint.uncounted => burst_start(&chat.messages, chat.messages.len())
            .is_none()
            .then(|| carried(others(visible), true, None)),
        (None, Some(old)) => (!visible.iter().any(|i| tail::preview_matches(old, i)))
            .then(|| carried(others(visible), false, Some(old.clone()))),
        (None, None) => None,
        (Some(_), _) if from_burst => burst_start(&chat.messages, chat.messages.len())
            .is_none()
            .then(|| carried(others(visible), true, None)),
        (Some(wanted), _) => {
            let wanted = wanted as usize;
            let anchor = hint
                .preview
                .as_deref()
                .and_then(|p| visible.iter().rposition(|i| tail::preview_matches(p, i)))
                .map_or(visible.len(), |i| i + 1);
            let (_, found) = tail::back_over_others(visible, anchor, wanted);
            (found < wanted).then(|| carried(wanted + others(&visible[anchor..]), false, None))
        }
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
pub(super) fn trailing_burst(items: &[ChatItem]) -> u32 {
    let mut burst = 0;
    for item in items.iter().rev() {
        match item.kind {
            ItemKind::TimeDivider => break,
            ItemKind::System => {}
            _ if item.side == Side::Right => break,
            _ => burst += 1,
        }
    }
    burst.max(1)
}

/// The index of the first item of the burst of others' messages that ends before `end`:
/// just after our last message or the last time divider. None when the burst reaches the
/// first item, so where it starts is not on screen.
pub(super) fn burst_start(items: &[ChatItem], end: usize) -> Option<usize> {
    items[..end.min(items.len())]
        .iter()
        .rposition(|item| {
            item.kind == ItemKind::TimeDivider
                || (item.kind != ItemKind::System && item.side == Side::Right)
        })
        .map(|stop| stop + 1)
}

/// What the conversation list said about a chat when it was opened.
#[derive(Debug, Clone, Default)]
pub(super) struct RowHint {
    pub(super) unread: Option<u32>,
    /// The badge's number could not be read (`Unread::Uncounted`): there is news, and on a
    /// first read it is the burst of others' messages that ends the chat, at least
    /// `unread` of them when a count is known otherwise (a muted row's `[N条]`, an
    /// earlier sighting). A chat read before is read from its watermark, which needs no
    /// count.
    pub(super) uncounted: bool,
    pub(super) preview: Option<String>,
    /// The preview of a chat without a badge: on a first read, what follows it is new.
    pub(super) old_preview: Option<String>,
}

impl RowHint {
    pub(super) fn of(row: &ConversationRow) -> RowHint {
        let unread = match row.unread {
            Unread::Count(n) => Some(n),
            Unread::Dot => row.preview_count().or(Some(1)),
            Unread::Uncounted => row.preview_count(),
            Unread::None => None,
        };
        RowHint {
            unread,
            uncounted: row.unread == Unread::Uncounted,
            preview: row.preview.clone(),
            old_preview: None,
        }
    }
}

/// A chat seen by mistake and not named: its newest message, and how many of its
/// messages from others, back from that one, were news.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Orphan {
    newest: TailItem,
    unread: u32,
    /// The burst filled the screen (no message of ours or time divider above it), so
    /// `unread` only counts what was on screen: its first read looks further up.
    #[serde(default)]
    open_ended: bool,
    /// Who wrote in it (sender lines and avatars): a chat where none of them speaks
    /// cannot be this one, so it is not searched for it.
    #[serde(default)]
    people: Vec<String>,
    /// What the list previewed before its news came (no badge then): everything after
    /// the item it shows is news, however many that is.
    #[serde(default)]
    after_preview: Option<String>,
    /// Whose chat it was, when that could be told: then only that chat's read uses it.
    #[serde(default)]
    pub(super) conversation: Option<String>,
}

impl Orphan {
    /// Where this orphan's news starts in `visible` (the tail of `items`), and whether
    /// that start is certain: an open-ended burst runs back to our last message or a time
    /// divider, which may lie above what has been read so far.
    pub(super) fn news_start(
        &self,
        items: &[ChatItem],
        visible: &[TailItem],
    ) -> Option<(usize, bool)> {
        let at = visible.iter().rposition(|item| *item == self.newest)?;
        if let Some(preview) = &self.after_preview {
            return Some(
                match visible[..at]
                    .iter()
                    .rposition(|item| tail::preview_matches(preview, item))
                {
                    Some(before) => (before + 1, true),
                    None => (0, false),
                },
            );
        }
        if !self.open_ended {
            // Fewer on screen than it counted: the rest are above, so it is not settled.
            let wanted = self.unread as usize;
            let (start, found) = tail::back_over_others(visible, at + 1, wanted);
            return Some((start, found >= wanted));
        }
        let pairs = tail::tail_items(items);
        let item_at = pairs.get(at).map_or(items.len(), |(i, _)| *i);
        Some(match burst_start(items, item_at + 1) {
            Some(first) => (
                pairs
                    .iter()
                    .position(|(i, _)| *i >= first)
                    .unwrap_or(visible.len()),
                true,
            ),
            None => (0, false),
        })
    }

    /// Whether `chat` may be this orphan's chat: its own, when it was named; else one
    /// where someone of it speaks.
    pub(super) fn may_be(&self, conversation: &str, chat: &ChatView) -> bool {
        if let Some(named) = &self.conversation {
            return named == conversation;
        }
        let here = people_in(chat);
        self.people.is_empty() || self.people.iter().any(|p| here.contains(p))
    }
}

/// The names of everyone but the owner who speaks in what `chat` shows.
fn people_in(chat: &ChatView) -> Vec<String> {
    let mut people = Vec::new();
    for item in chat
        .messages
        .iter()
        .filter(|m| m.is_message() && m.side == Side::Left)
    {
        for name in [&item.sender, &item.avatar].into_iter().flatten() {
            if !people.contains(name) {
                people.push(name.clone());
            }
        }
    }
    people
}

/// What the actor remembers of a conversation it has read, to spot news without a badge.
#[derive(Debug, Clone, Default)]
pub(super) struct KnownChat {
    last: Option<TailItem>,
    /// A preview already looked into that matched nothing new (formats differ: media).
    accepted_preview: Option<String>,
}

pub(super) fn empty_chat() -> ChatView {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dump::Rect;

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
        assert_eq!(trailing_burst(&private.messages), 2);
        let group = chat(vec![
            item(Text, Side::Left, Some("王芳"), Some("王芳")),
            item(Text, Side::Left, Some("陈静"), Some("陈静")),
        ]);
        assert_eq!(private_partner(&group), None);
        assert_eq!(trailing_burst(&group.messages), 2);
        let ours_last = chat(vec![
            item(Text, Side::Left, None, Some("李雷")),
            item(Text, Side::Right, None, Some("我")),
        ]);
        assert_eq!(trailing_burst(&ours_last.messages), 1, "at least one");
        assert_eq!(private_partner(&chat(Vec::new())), None);
    }

    #[test]
    fn a_first_read_from_a_screen_that_is_gone_carries_news_above_it() {
        use crate::screen::ItemKind::{Text, TimeDivider};
        let said = |text: &str| crate::screen::ChatItem {
            kind: Text,
            side: Side::Left,
            sender: None,
            avatar: Some("李雷".into()),
            text: Some(text.into()),
            bounds: Rect::default(),
        };
        let screen = |texts: &[&str]| ChatView {
            messages: texts.iter().map(|t| said(t)).collect(),
            ..empty_chat()
        };
        let visible = |chat: &ChatView| -> Vec<TailItem> {
            tail::tail_items(&chat.messages)
                .into_iter()
                .map(|(_, t)| t)
                .collect()
        };
        let chat = screen(&["三", "四", "五"]);
        let seen = visible(&chat);
        let hint = |unread: Option<u32>, preview: Option<&str>, old: Option<&str>| RowHint {
            unread,
            uncounted: false,
            preview: preview.map(Into::into),
            old_preview: old.map(Into::into),
        };
        // Two unread when the list was read, both on screen: nothing above.
        assert_eq!(
            news_above(
                "李雷",
                &chat,
                &seen,
                &hint(Some(2), Some("五"), None),
                false
            ),
            None
        );
        // Four unread up to "四", and "五" came since: five to find back from "五".
        let carried = news_above(
            "李雷",
            &chat,
            &seen,
            &hint(Some(4), Some("四"), None),
            false,
        )
        .expect("news above the screen");
        assert_eq!((carried.unread, carried.open_ended), (5, false));
        assert_eq!(carried.conversation.as_deref(), Some("李雷"));
        assert_eq!(carried.newest.text.as_deref(), Some("五"));
        assert_eq!(
            carried.news_start(&chat.messages, &seen),
            Some((0, false)),
            "three of the five on screen: look further up"
        );
        // Read later from a screen scrolled back: history, then the five.
        let later = screen(&["零", "一", "二", "三", "四", "五", "六"]);
        assert_eq!(
            carried.news_start(&later.messages, &visible(&later)),
            Some((1, true)),
            "five back from 五 is 一"
        );
        // The list previewed "二" before the news, and it is not on screen.
        let carried = news_above("李雷", &chat, &seen, &hint(None, None, Some("二")), false)
            .expect("news above the screen");
        assert_eq!(
            carried.news_start(&later.messages, &visible(&later)),
            Some((3, true)),
            "after 二"
        );
        assert_eq!(
            carried.news_start(&chat.messages, &seen),
            Some((0, false)),
            "not found yet: look further up"
        );
        // A burst of news filling the screen, no divider above it: open-ended.
        let carried = news_above("李雷", &chat, &seen, &hint(Some(3), None, None), true)
            .expect("a burst that fills the screen");
        assert!(carried.open_ended);
        let mut divided = screen(&["三", "四", "五"]);
        divided.messages.insert(
            0,
            crate::screen::ChatItem {
                kind: TimeDivider,
                side: Side::Centre,
                ..said("12:00")
            },
        );
        let seen = visible(&divided);
        assert_eq!(
            news_above("李雷", &divided, &seen, &hint(Some(3), None, None), true),
            None,
            "the burst starts on screen"
        );
    }
}
