//! Answering: typing each queued reply into its chat, pressing send, and reading the chat
//! back to see it there before it counts as sent.

use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use crate::dump::Rect;
use crate::input::{InputMethod, delete_command};
use crate::screen::{ChatView, ScreenKind};
use crate::tail::{self, TailItem, TailKind};

use super::chat::{is_group, whole_messages};
use super::navigate::OpenOutcome;
use super::{AgentError, Outbound, PhoneAgent, SendOutcome};

/// After an answer went out, how long to wait for the next one before leaving the chat.
const REPLY_GRACE: Duration = Duration::from_millis(150);

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
            let mut here = here.into_iter();
            let mut sent_any = false;
            let mut not_yet = None;
            while let Some(out) = here.next() {
                let wait = self.pace_wait(&out);
                if !wait.is_zero() {
                    // Later replies to this chat wait behind it: order is kept.
                    not_yet = Some((wait, out));
                    break;
                }
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
                self.paced_send(&out);
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
            self.proven_send = Some(ProvenSend {
                method,
                button: send,
            });
            return self.settle_sent(&out, method, None);
        }
        self.fail(&out, last_problem)
    }

    /// After send was pressed: finds the reply in the chat (starting from `first`, a read
    /// already made after the press) and records how it ended.
    fn settle_sent(
        &mut self,
        out: &Outbound,
        method: InputMethod,
        first: Option<ChatView>,
    ) -> Result<(), AgentError> {
        let verified = self.verify_sent(out, method, first)?;
        if verified == Verified::Missing {
            // Pressed blind or not, nothing is left to press: the next reply checks again.
            self.proven_send = None;
        } else {
            self.stats.replies_sent += 1;
            tracing::info!(device = %self.config.device, conversation = %out.conversation, ?method, "reply sent");
        }
        match verified {
            Verified::Recorded => Ok(()),
            Verified::Seen => self
                .sink
                .sent(&out.action_id, SendOutcome::Sent { method })
                .map_err(AgentError::Sink),
            Verified::Missing => self.fail(
                out,
                "the reply did not appear in the chat after pressing send".into(),
            ),
        }
    }

    /// Reads the chat until our text shows up as an own message after what was read
    /// before, then records everything up to it as read, and the reply as done, in one
    /// batch: a crash cannot leave the bubble read but the reply open (it would be typed
    /// again). Messages that came in while we were typing sit before our reply and are
    /// recorded as news, never swallowed; anything after it (someone answering at once) is
    /// left for the next read.
    fn verify_sent(
        &mut self,
        out: &Outbound,
        method: InputMethod,
        mut first: Option<ChatView>,
    ) -> Result<Verified, AgentError> {
        let watermark = self
            .sink
            .watermark(&self.config.device, &out.conversation)
            .map_err(AgentError::Sink)?
            .unwrap_or_default();
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
