//! The minimal in-process pipeline of the phone slice: built-in `help`, then one handler.
//! The full router (routes, stages, plugins, webhooks) replaces it in the router issue;
//! its interface, an event in and actions out, stays.

use crate::event::{Action, Event, types};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandlerKind {
    /// Answers every message with exactly its text, in the same chat.
    Echo,
    /// Answers only `help`.
    Help,
}

#[derive(Debug, Clone)]
pub struct Pipeline {
    handler: HandlerKind,
}

const HELP_TEXT: &str = "Tapwire commands:\nhelp: this list";

impl Pipeline {
    pub fn new(handler: HandlerKind) -> Self {
        Pipeline { handler }
    }

    pub fn handle(&self, event: &Event) -> Vec<Action> {
        if event.event_type != types::MESSAGE_RECEIVED {
            return Vec::new();
        }
        // Self-filter: the owner's own messages (and ours) are never answered.
        if event.sender.as_ref().is_none_or(|s| s.is_self) {
            return Vec::new();
        }
        let (Some(conversation), Some(text)) = (&event.conversation, event.text()) else {
            return Vec::new();
        };
        let reply = |text: String| Action::Send {
            target: event.source.clone(),
            conversation: conversation.id.clone(),
            text,
        };
        if self.handler == HandlerKind::Help || text.trim() == "help" {
            return if text.trim() == "help" {
                let mut help = HELP_TEXT.to_string();
                if self.handler == HandlerKind::Echo {
                    help.push_str("\nanything else: echoed back");
                }
                vec![reply(help)]
            } else {
                Vec::new()
            };
        }
        match self.handler {
            HandlerKind::Echo => vec![reply(text)],
            HandlerKind::Help => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(text: &str, is_self: bool) -> Event {
        crate::event::test_message("phone", "Alice", text, is_self)
    }

    #[test]
    fn echo_answers_with_the_exact_text_in_the_same_chat() {
        let actions = Pipeline::new(HandlerKind::Echo).handle(&message("你好 😀", false));
        assert_eq!(
            actions,
            vec![Action::Send {
                target: "phone".into(),
                conversation: "Alice".into(),
                text: "你好 😀".into()
            }]
        );
    }

    #[test]
    fn own_messages_are_never_answered() {
        assert!(
            Pipeline::new(HandlerKind::Echo)
                .handle(&message("hi", true))
                .is_empty()
        );
    }

    #[test]
    fn help_lists_commands() {
        let actions = Pipeline::new(HandlerKind::Help).handle(&message("help", false));
        assert!(matches!(&actions[..], [Action::Send { text, .. }] if text.contains("help")));
        assert!(
            Pipeline::new(HandlerKind::Help)
                .handle(&message("hello", false))
                .is_empty()
        );
    }
}
