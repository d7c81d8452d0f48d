//! Answering: typing each queued reply into its chat, pressing send, and reading the chat
//! back to see it there before it counts as sent.

use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use crate::dump::Rect;
use crate::input::{InputMethod, delete_command};
use crate::screen::{ChatView, ScreenKind};
use crate::tail::{self, TailItem, TailKind};
use crate::telemetry::{self, Check};

use super::chat::{is_group, whole_messages};
use super::navigate::OpenOutcome;
use super::{AgentError, Outbound, PhoneAgent, SendOutcome};

/// After an answer went out, how long to wait for the next one before leaving the chat.
const REPLY_GRACE: Duration = Duration::from_millis(150);

/// Replies sent back to back before one read checks them: all of them must still be on
/// the screen that read shows, so a few, and short.
const TOGETHER_MAX: usize = 3;
const TOGETHER_MAX_CHARS: usize = 120;

impl PhoneAgent {
    /// Stays in the chat briefly so that quick answers to what was just read go out without
    /// navigating back to it.
    pub(super) fn wait_for_replies(&mut self, conversation: &str) -> Result<(), AgentError> {
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
            let mut here = here.into_iter().peekable();
            let mut sent_any = false;
            let mut not_yet = None;
            while let Some(out) = here.next() {
                let wait = self.pace_wait(&out);
                if !wait.is_zero() {
                    // Later replies to this chat wait behind it: order is kept.
                    not_yet = Some((wait, out));
                    break;
                }
                // Answers ready together go out back to back, checked by one read, once
                // the way of sending is proven; paced replies go one by one.
                let mut chars = out.text.chars().count();
                let mut batch = vec![out];
                let proven = self.proven_send.filter(|_| !self.pacer.enabled());
                while let Some(next) = here.next_if(|o| {
                    let fits = batch.len() < TOGETHER_MAX
                        && chars + o.text.chars().count() <= TOGETHER_MAX_CHARS;
                    fits && proven.is_some_and(|p| p.method.supports(&o.text))
                }) {
                    chars += next.text.chars().count();
                    batch.push(next);
                }
                let result = match proven {
                    Some(proven) if batch.len() > 1 => self.send_together(&batch, proven),
                    _ => self.send_here(batch[0].clone()),
                };
                if let Err(error) = result {
                    // Kept, not dropped with the error: the phone coming back (a
                    // cable, a restarted adb) must find them still to do, in order.
                    for out in &batch {
                        self.sink
                            .sent(&out.action_id, SendOutcome::Interrupted)
                            .map_err(AgentError::Sink)?;
                    }
                    let mut kept = batch;
                    kept.extend(here);
                    kept.append(&mut self.pending);
                    self.pending = kept;
                    return Err(error);
                }
                for out in &batch {
                    self.paced_send(out);
                }
                sent_any = true;
            }
            let now = Instant::now();
            if sent_any {
                // Several answers to one burst come close together; after one, wait
                // only briefly for the next.
                deadline = now + REPLY_GRACE;
            }
            if let Some((wait, out)) = not_yet {
                // A reply still being "typed" is waited for here, as a person stays in
                // the chat; one held by a cap or quiet hours is left for later.
                if wait <= self.pacer.stay_limit() {
                    deadline = deadline.max(now + wait);
                }
                let mut kept = vec![out];
                kept.extend(here);
                kept.append(&mut self.pending);
                self.pending = kept;
            }
            if now >= deadline {
                return Ok(());
            }
            match self.outbound.recv_timeout(deadline - now) {
                Ok(out) => self.queue(out),
                // Whatever became due is sent on the next turn, or the chat is left.
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
        }
    }

    /// Takes the queued replies to their chats, the oldest reply's chat first; replies to a
    /// chat that is not in the list fail.
    pub(super) fn deliver_pending(&mut self) -> Result<(), AgentError> {
        while let Some(conversation) = self.next_due_conversation() {
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

    /// The chat of the oldest reply that may go out now; each chat's replies go in order,
    /// so only the first reply of each chat is asked.
    fn next_due_conversation(&mut self) -> Option<String> {
        let mut seen = std::collections::HashSet::new();
        let heads: Vec<Outbound> = self
            .pending
            .iter()
            .filter(|o| seen.insert(o.conversation.clone()))
            .cloned()
            .collect();
        heads
            .into_iter()
            .find(|head| self.pace_wait(head).is_zero())
            .map(|head| head.conversation)
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
            // Once this method has put a text in the box and the send button was found,
            // both are known: press send without a dump in between, and let the read that
            // checks the reply also check the typing.
            let proven = self
                .proven_send
                .filter(|p| p.method == method)
                .map(|p| p.button);
            let mut checked = None;
            if let Some(button) = proven {
                self.tap(button)?;
                let after = self.read_until(ScreenKind::Chat)?.and_then(|r| r.chat);
                let unsent = after
                    .as_ref()
                    .and_then(|c| c.input.as_ref())
                    .is_some_and(|i| !i.text.is_empty());
                if unsent || after.is_none() {
                    // The press missed (the bar moved) or the text is not what was meant:
                    // the box still holds it, and the careful way below deals with it.
                    tracing::info!(device = %self.config.device, ?method, "send pressed blind did not go; checking the input first from now on");
                    self.proven_send = None;
                    checked = after;
                } else {
                    return self.settle_sent(&out, method, after);
                }
            }
            let typed = match checked {
                Some(chat) => Some(chat),
                None => self.read_until(ScreenKind::Chat)?.and_then(|r| r.chat),
            };
            let Some(typed) = typed else {
                continue;
            };
            let shown = typed.input.as_ref().map(|i| i.text.as_str()).unwrap_or("");
            let Some(send) = typed.send_button else {
                telemetry::verification_failed(&self.config.device, Check::Typed, 1);
                last_problem = format!(
                    "after {method:?} the send button did not appear (input shows {shown:?})"
                );
                continue;
            };
            // The input as read may differ from what was typed in what readers cannot
            // tell (a screenshot: spaces, widths, emoji), never in a letter.
            if !tail::same_text(shown, &out.text) {
                telemetry::verification_failed(&self.config.device, Check::Typed, 1);
                last_problem = format!("after {method:?} the input shows {shown:?}");
                self.shell(&delete_command(shown.chars().count()))?;
                continue;
            }
            self.tap(send)?;
            self.proven_send = Some(ProvenSend {
                method,
                button: send,
            });
            return self.settle_sent(&out, method, None);
        }
        self.fail(&out, last_problem)
    }

    /// Types and sends several replies into the chat that is open, pressing the proven
    /// send button after each, then checks them all with one read.
    fn send_together(&mut self, outs: &[Outbound], proven: ProvenSend) -> Result<(), AgentError> {
        let chat = match self.fresh_chat.take() {
            Some(chat) => Some(chat),
            None => self.read_until(ScreenKind::Chat)?.and_then(|r| r.chat),
        };
        let Some(input) = chat.and_then(|c| c.input) else {
            for out in outs {
                self.fail(out, "the chat shows no input box".into())?;
            }
            return Ok(());
        };
        if !input.text.is_empty() {
            self.tap(input.bounds)?;
            self.shell(&delete_command(input.text.chars().count()))?;
        }
        let mut pressed = 0;
        for out in outs {
            self.tap(input.bounds)?;
            if let Err(e) = proven.method.type_text(self.transport.as_mut(), &out.text) {
                tracing::debug!(device = %self.config.device, method = ?proven.method, error = %e, "input method failed");
                break;
            }
            self.tap(proven.button)?;
            pressed += 1;
        }
        self.settle_all_sent(&outs[..pressed], proven.method, None)?;
        // Not typed: the careful way, one by one.
        for out in &outs[pressed..] {
            self.send_here(out.clone())?;
        }
        Ok(())
    }

    /// After send was pressed: finds the reply in the chat (starting from `first`, a read
    /// already made after the press) and records how it ended.
    fn settle_sent(
        &mut self,
        out: &Outbound,
        method: InputMethod,
        first: Option<ChatView>,
    ) -> Result<(), AgentError> {
        self.settle_all_sent(std::slice::from_ref(out), method, first)
    }

    /// As [`Self::settle_sent`] for replies sent one after another into one chat and
    /// checked by one read: those that show up (a prefix, in order) are done together.
    fn settle_all_sent(
        &mut self,
        outs: &[Outbound],
        method: InputMethod,
        first: Option<ChatView>,
    ) -> Result<(), AgentError> {
        let (verified, shown) = self.verify_sent(outs, method, first)?;
        for out in &outs[..shown] {
            self.stats.replies_sent += 1;
            tracing::info!(device = %self.config.device, conversation = %out.conversation, ?method, "reply sent");
            if verified == Verified::Seen {
                self.sink
                    .sent(&out.action_id, SendOutcome::Sent { method })
                    .map_err(AgentError::Sink)?;
            }
        }
        if shown < outs.len() {
            telemetry::verification_failed(&self.config.device, Check::Sent, outs.len() - shown);
            // Pressed blind or not, nothing is left to press: the next reply checks again.
            self.proven_send = None;
        }
        for out in &outs[shown..] {
            self.fail(
                out,
                "the reply did not appear in the chat after pressing send".into(),
            )?;
        }
        Ok(())
    }

    /// Reads the chat until our replies show up as own messages, in order, after what
    /// was read before, then records everything up to the last of them as read, and the
    /// replies as done, in one batch: a crash cannot leave a bubble read but its reply open
    /// (it would be typed again). Messages that came in while we were typing sit before
    /// our replies and are recorded as news, never swallowed; anything after the last one
    /// (someone answering at once) is left for the next read. Returns how many of `outs`
    /// (a prefix) were found.
    fn verify_sent(
        &mut self,
        outs: &[Outbound],
        method: InputMethod,
        mut first: Option<ChatView>,
    ) -> Result<(Verified, usize), AgentError> {
        let Some(conversation) = outs.first().map(|o| o.conversation.clone()) else {
            return Ok((Verified::Recorded, 0));
        };
        let watermark = self
            .sink
            .watermark(&self.config.device, &conversation)
            .map_err(AgentError::Sink)?
            .unwrap_or_default();
        // The read that shows them all, or else the last one where only some had shown,
        // to record those if the rest never do.
        let mut partial = None;
        for _ in 0..5 {
            let chat = match first.take() {
                Some(chat) => chat,
                None => match self.read_until(ScreenKind::Chat)?.and_then(|r| r.chat) {
                    Some(chat) => chat,
                    None => continue,
                },
            };
            let visible: Vec<TailItem> = tail::tail_items(&whole_messages(&chat))
                .into_iter()
                .map(|(_, t)| t)
                .collect();
            let found = tail::new_items(&watermark.tail, &visible, None, None);
            if !found.complete {
                // The screen holds no trace of what was read before (a flood of
                // messages): the replies being the newest own bubbles is the best
                // evidence there is.
                let newest_own: Vec<Option<&str>> = chat
                    .messages
                    .iter()
                    .rev()
                    .filter(|m| m.is_own())
                    .take(outs.len())
                    .map(|m| m.text.as_deref())
                    .collect();
                let all_shown = newest_own.len() == outs.len()
                    && newest_own
                        .iter()
                        .zip(outs.iter().rev())
                        .all(|(shown, o)| shown.is_some_and(|t| tail::same_text(t, &o.text)));
                if all_shown {
                    self.fresh_chat = Some(chat);
                    return Ok((Verified::Seen, outs.len()));
                }
            } else {
                let (shown, last) = replies_in_order(&visible[found.start..], outs);
                if let Some(last) = last {
                    let shown_here = ReadBack {
                        range: found.start..found.start + last + 1,
                        chat,
                        visible,
                        shown,
                    };
                    if shown == outs.len() {
                        partial = Some(shown_here);
                        break;
                    }
                    partial = Some(shown_here);
                }
            }
            std::thread::sleep(Duration::from_millis(80));
        }
        let Some(read) = partial else {
            return Ok((Verified::Missing, 0));
        };
        let is_group = is_group(&read.chat.messages);
        self.commit(
            &conversation,
            watermark,
            read.visible,
            read.range,
            is_group,
            Some((&outs[..read.shown], method)),
        )?;
        self.fresh_chat = Some(read.chat);
        Ok((Verified::Recorded, read.shown))
    }
}

/// A read after pressing send that shows the first `shown` replies, the last of them at
/// the end of `range` (what it records as read).
struct ReadBack {
    chat: ChatView,
    visible: Vec<TailItem>,
    range: std::ops::Range<usize>,
    shown: usize,
}

/// How many of `outs` (a prefix, in order) stand in `items` as own messages, and where
/// the last of those is. The latest matching bubbles count: an equal text sent earlier
/// is not taken for one of these.
fn replies_in_order(items: &[TailItem], outs: &[Outbound]) -> (usize, Option<usize>) {
    for shown in (1..=outs.len()).rev() {
        let mut before = items.len();
        let mut last = None;
        let all = outs[..shown].iter().rev().all(|out| {
            let at = items[..before].iter().rposition(|item| {
                item.kind == TailKind::Own
                    && item
                        .text
                        .as_deref()
                        .is_some_and(|t| tail::same_text(t, &out.text))
            });
            if let Some(at) = at {
                last.get_or_insert(at);
                before = at;
            }
            at.is_some()
        });
        if all {
            return (shown, last);
        }
    }
    (0, None)
}

/// An input method that typed a reply which then went out, and where send was: the next
/// reply typed the same way is sent without a dump between typing and pressing send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ProvenSend {
    method: InputMethod,
    button: Rect,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_sent_together_are_found_in_order_latest_first() {
        let own = |t: &str| TailItem {
            kind: TailKind::Own,
            sender: None,
            text: Some(t.into()),
        };
        let other = |t: &str| TailItem {
            kind: TailKind::Other,
            sender: Some("李雷".into()),
            text: Some(t.into()),
        };
        let out = |t: &str| Outbound {
            action_id: t.into(),
            conversation: "李雷".into(),
            text: t.into(),
        };
        let outs = [out("好"), out("收到")];
        // An earlier "好" of ours, news typed over, then both replies.
        let items = [own("好"), other("一"), own("好"), other("二"), own("收到")];
        assert_eq!(replies_in_order(&items, &outs), (2, Some(4)));
        // Only the first went out: it is the later "好", not the earlier one.
        let items = [own("好"), other("一"), own("好")];
        assert_eq!(replies_in_order(&items, &outs), (1, Some(2)));
        // Out of order is not the order sent: only what fits counts.
        let items = [own("收到"), other("一")];
        assert_eq!(replies_in_order(&items, &outs), (0, None));
    }

    #[test]
    fn a_reply_read_from_a_screenshot_is_found_but_never_a_different_one() {
        let own = |t: &str| TailItem {
            kind: TailKind::Own,
            sender: None,
            text: Some(t.into()),
        };
        let out = |t: &str| Outbound {
            action_id: t.into(),
            conversation: "李雷".into(),
            text: t.into(),
        };
        // OCR: emoji blanked, a half-width comma, a space between CJK glyphs.
        let outs = [out("好的，收到👍 明天见")];
        let items = [own("好的,收到明天见")];
        assert_eq!(replies_in_order(&items, &outs), (1, Some(0)));
        for other in [
            "好的,收到明天兄",
            "好的,收到明天见!",
            "好的收到明天见",
            "好的,收到",
        ] {
            assert_eq!(
                replies_in_order(&[own(other)], &outs),
                (0, None),
                "{other} is another message"
            );
        }
    }
}
