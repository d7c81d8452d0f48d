//! Events in, actions out: the one vocabulary every source and handler speaks
//! (DESIGN.md §3). The JSON form of these types is what webhooks and external plugins see.

use serde::{Deserialize, Serialize};

/// Namespaced event types.
pub mod types {
    pub const MESSAGE_RECEIVED: &str = "message.received";
    pub const MESSAGE_SENT: &str = "message.sent";
    pub const DEVICE_CONNECTED: &str = "device.connected";
    pub const DEVICE_DISCONNECTED: &str = "device.disconnected";
    pub const DEVICE_SCREEN_UNRECOGNIZED: &str = "device.screen_unrecognized";
    pub const SCHEDULE_FIRED: &str = "schedule.fired";
    /// An external plugin crashed, hung or wrote garbage.
    pub const PLUGIN_FAULT: &str = "plugin.fault";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationKind {
    Private,
    Group,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: String,
    pub title: Option<String>,
    pub kind: ConversationKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    pub id: String,
    pub display_name: Option<String>,
    pub is_self: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Segment {
    Text {
        text: String,
    },
    Mention {
        user: String,
    },
    Image {
        url: Option<String>,
    },
    File {
        name: Option<String>,
    },
    Link {
        url: String,
        title: Option<String>,
    },
    /// Content the source could not read (an image bubble in a phone dump).
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// Which phone or adapter produced it.
    pub source: String,
    pub platform: String,
    pub idempotency_key: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub conversation: Option<Conversation>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sender: Option<Sender>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub content: Vec<Segment>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub platform_message_id: Option<String>,
    /// RFC 3339, UTC.
    pub timestamp: String,
    #[serde(skip_serializing_if = "serde_json::Value::is_null", default)]
    pub raw: serde_json::Value,
}

impl Event {
    /// An event about the system rather than a message (a device's status, a plugin's
    /// fault): no conversation, no sender, `raw` says what happened. Its id derives from
    /// its key.
    pub fn notice(
        event_type: &str,
        source: &str,
        platform: &str,
        idempotency_key: String,
        raw: serde_json::Value,
    ) -> Event {
        Event {
            id: format!("ev_{}", short_hash(&idempotency_key)),
            event_type: event_type.into(),
            source: source.into(),
            platform: platform.into(),
            idempotency_key,
            conversation: None,
            sender: None,
            content: Vec::new(),
            platform_message_id: None,
            timestamp: now_rfc3339(),
            raw,
        }
    }

    /// Where a `reply` to this event goes: the source it came from, except for a
    /// schedule, which names the source (a phone) its reminders go out through.
    pub fn reply_target(&self) -> &str {
        if self.event_type == types::SCHEDULE_FIRED
            && let Some(target) = self.raw.get("target").and_then(|t| t.as_str())
        {
            return target;
        }
        &self.source
    }

    /// The plain text of the message: text segments joined.
    pub fn text(&self) -> Option<String> {
        let parts: Vec<&str> = self
            .content
            .iter()
            .filter_map(|s| match s {
                Segment::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        (!parts.is_empty()).then(|| parts.concat())
    }
}

/// A private-chat text message from `sender` to `source`: the event tests build most.
#[cfg(test)]
pub fn test_message(source: &str, sender: &str, text: &str, is_self: bool) -> Event {
    Event {
        id: "e1".into(),
        event_type: types::MESSAGE_RECEIVED.into(),
        source: source.into(),
        platform: "wechat".into(),
        idempotency_key: "k".into(),
        conversation: Some(Conversation {
            id: sender.into(),
            title: Some(sender.into()),
            kind: ConversationKind::Private,
        }),
        sender: Some(Sender {
            id: sender.into(),
            display_name: Some(sender.into()),
            is_self,
        }),
        content: vec![Segment::Text { text: text.into() }],
        platform_message_id: None,
        timestamp: "2026-11-24T00:00:00.000Z".into(),
        raw: serde_json::Value::Null,
    }
}

/// What a handler asks to be done. Stored before it is executed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Send text to a conversation of a source (a phone or an adapter).
    Send {
        target: String,
        conversation: String,
        text: String,
    },
}

impl Action {
    pub fn target(&self) -> &str {
        match self {
            Action::Send { target, .. } => target,
        }
    }
    pub fn conversation(&self) -> &str {
        match self {
            Action::Send { conversation, .. } => conversation,
        }
    }
}

/// The actions a webhook or an external plugin answers with, relative to the event that
/// reached it: `reply` answers in the event's own conversation, `send` and `forward` name
/// a target source and conversation. This is their JSON form:
/// `{"action": "reply", "text": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum HandlerAction {
    Reply {
        text: String,
    },
    Send {
        target: String,
        conversation: String,
        text: String,
    },
    /// Sends the event's text to another conversation, on any source.
    Forward {
        target: String,
        conversation: String,
    },
}

impl HandlerAction {
    /// The concrete action, or `None` when the event gives it nothing to act on (a reply
    /// to an event without a conversation, a forward of an event without text).
    pub fn resolve(self, event: &Event) -> Option<Action> {
        match self {
            HandlerAction::Reply { text } => Some(Action::Send {
                target: event.reply_target().to_string(),
                conversation: event.conversation.as_ref()?.id.clone(),
                text,
            }),
            HandlerAction::Send {
                target,
                conversation,
                text,
            } => Some(Action::Send {
                target,
                conversation,
                text,
            }),
            HandlerAction::Forward {
                target,
                conversation,
            } => Some(Action::Send {
                target,
                conversation,
                text: event.text()?,
            }),
        }
    }
}

/// A short, stable id derived from an idempotency key: the same key, the same id, so
/// storing a thing twice finds the row already there.
pub fn short_hash(key: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(key.as_bytes())[..12])
}

/// Current time as RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let now = now_rfc3339();
        assert!(humantime::parse_rfc3339(&now).is_ok(), "{now}");
        assert!(now.ends_with('Z'), "{now}");
    }

    #[test]
    fn event_json_form_is_stable() {
        let event = test_message("phone-1", "Alice", "你好", false);
        let json = serde_json::to_value(&event).expect("json");
        assert_eq!(json["type"], "message.received");
        assert_eq!(json["content"][0]["type"], "text");
        assert_eq!(json["conversation"]["kind"], "private");
        let back: Event = serde_json::from_value(json).expect("round trip");
        assert_eq!(back, event);
        assert_eq!(back.text().as_deref(), Some("你好"));
    }

    #[test]
    fn handler_actions_resolve_against_their_event() {
        let event = test_message("phone-1", "Alice", "hello", false);
        let reply: HandlerAction =
            serde_json::from_str(r#"{"action":"reply","text":"hi"}"#).expect("reply");
        assert_eq!(
            reply.resolve(&event),
            Some(Action::Send {
                target: "phone-1".into(),
                conversation: "Alice".into(),
                text: "hi".into()
            })
        );
        let forward: HandlerAction =
            serde_json::from_str(r#"{"action":"forward","target":"phone-2","conversation":"Ops"}"#)
                .expect("forward");
        assert!(
            matches!(forward.resolve(&event), Some(Action::Send { text, .. }) if text == "hello")
        );
        assert!(serde_json::from_str::<HandlerAction>(r#"{"action":"reply"}"#).is_err());
        assert!(
            serde_json::from_str::<HandlerAction>(r#"{"action":"reply","text":"x","bogus":1}"#)
                .is_err()
        );
        // A reply to a schedule goes out through the phone the schedule names.
        let mut fired = event.clone();
        fired.event_type = types::SCHEDULE_FIRED.into();
        fired.source = "scheduler".into();
        fired.raw = serde_json::json!({ "target": "phone-9" });
        let reply = HandlerAction::Reply { text: "早".into() };
        assert!(
            matches!(reply.resolve(&fired), Some(Action::Send { target, .. }) if target == "phone-9")
        );
    }
}
