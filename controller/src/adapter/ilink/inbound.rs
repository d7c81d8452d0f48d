//! A `getupdates` message as an event.
//!
//! What a message holds is types.ts `WeixinMessage` / `MessageItem` (README "Message
//! Structure"); which of it is the text follows inbound.ts `bodyFromItemList`: a text
//! item's text, prefixed with what it quotes (`ref_msg`), or a voice item's transcript.
//! Media items are CDN references that are not fetched here; they are named as segments.
//! iLink chats are direct chats with one user (inbound.ts `ChatType: "direct"`), so the
//! conversation is the sender.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::api::{
    ITEM_FILE, ITEM_IMAGE, ITEM_TEXT, ITEM_VIDEO, ITEM_VOICE, MESSAGE_TYPE_BOT, MessageItem,
    WeixinMessage,
};
use crate::event::{
    Conversation, ConversationKind, Event, Segment, Sender, now_rfc3339, rfc3339_since_epoch,
    short_hash, types,
};

/// A message of a batch, read.
#[derive(Debug, Clone, PartialEq)]
pub enum Read {
    /// From a user: the event, and what answering them needs.
    Message {
        event: Box<Event>,
        user: String,
        context_token: String,
        message_id: Option<String>,
        at_ms: u64,
    },
    /// Not for the pipeline (the bot's own message, a group's), with why.
    Skipped(String),
}

/// Reads one message of `source`'s batch; an error says what is wrong with it.
pub fn read(
    source: &str,
    platform: &str,
    raw: &serde_json::Value,
    now: SystemTime,
) -> Result<Read, String> {
    let message: WeixinMessage =
        serde_json::from_value(raw.clone()).map_err(|e| format!("not a WeixinMessage: {e}"))?;
    if message.message_type == Some(MESSAGE_TYPE_BOT) {
        return Ok(Read::Skipped("the bot's own message".into()));
    }
    if message
        .group_id
        .as_deref()
        .is_some_and(|g| !g.trim().is_empty())
    {
        return Ok(Read::Skipped(
            "a group's message (iLink bots are for direct chats)".into(),
        ));
    }
    let user = message
        .from_user_id
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .ok_or("no from_user_id")?
        .to_string();
    let context_token = message
        .context_token
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or("no context_token (it could not be answered)")?
        .to_string();
    // The event's key: the message id where there is one (types.ts "Unique message
    // ID"), else what identifies the message within its session.
    let identity = match (&message.message_id, &message.seq) {
        (Some(id), _) => format!("id:{id}"),
        (None, Some(seq)) => format!("seq:{}:{seq}", message.session_id.as_deref().unwrap_or("")),
        (None, None) => format!(
            "hash:{}",
            short_hash(&serde_json::to_string(raw).unwrap_or_default())
        ),
    };
    let idempotency_key = format!("ilink:{source}:{identity}");
    let at_ms = message.create_time_ms.unwrap_or_else(|| millis(now));
    let mut shown = raw.clone();
    // The token is the conversation's credential: it stays with the adapter and is
    // not handed on to webhooks and plugins with the event.
    if let Some(object) = shown.as_object_mut() {
        object.remove("context_token");
    }
    let event = Event {
        id: crate::event::event_id(&idempotency_key),
        event_type: types::MESSAGE_RECEIVED.into(),
        source: source.into(),
        platform: platform.into(),
        idempotency_key,
        conversation: Some(Conversation {
            id: user.clone(),
            title: None,
            kind: ConversationKind::Private,
        }),
        sender: Some(Sender {
            id: user.clone(),
            display_name: None,
            is_self: false,
        }),
        content: segments(&message.item_list),
        platform_message_id: message.message_id.clone(),
        timestamp: rfc3339_since_epoch(Duration::from_millis(at_ms)).unwrap_or_else(now_rfc3339),
        raw: shown,
    };
    Ok(Read::Message {
        event: Box::new(event),
        user,
        context_token,
        message_id: message.message_id,
        at_ms,
    })
}

pub fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The text of an item, as inbound.ts `bodyFromItemList` makes it.
fn text_of(item: &MessageItem) -> Option<String> {
    match item.item_type {
        Some(ITEM_TEXT) => {
            let text = item.text_item.as_ref()?.text.clone()?;
            let Some(quoted) = &item.ref_msg else {
                return Some(text);
            };
            let mut parts = Vec::new();
            if let Some(title) = quoted.title.as_deref().filter(|t| !t.is_empty()) {
                parts.push(title.to_string());
            }
            if let Some(inner) = quoted.message_item.as_deref().and_then(text_of) {
                parts.push(inner);
            }
            if parts.is_empty() {
                Some(text)
            } else {
                Some(format!("[引用: {}]\n{text}", parts.join(" | ")))
            }
        }
        Some(ITEM_VOICE) => item
            .voice_item
            .as_ref()?
            .text
            .clone()
            .filter(|t| !t.is_empty()),
        _ => None,
    }
}

fn segments(items: &[MessageItem]) -> Vec<Segment> {
    items
        .iter()
        .map(|item| match (text_of(item), item.item_type) {
            (Some(text), _) => Segment::Text { text },
            (None, Some(ITEM_IMAGE)) => Segment::Image {
                url: None,
                path: None,
            },
            (None, Some(ITEM_FILE)) => Segment::File {
                name: item.file_item.as_ref().and_then(|f| f.file_name.clone()),
                path: None,
            },
            (None, Some(ITEM_VIDEO | ITEM_VOICE) | _) => Segment::Unknown,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_775_000_000_000)
    }

    fn message(extra: serde_json::Value) -> serde_json::Value {
        let mut base = serde_json::json!({
            "seq": 3,
            "message_id": 7001,
            "from_user_id": "o9cq8abc@im.wechat",
            "to_user_id": "bot@im.bot",
            "create_time_ms": 1_775_000_000_123u64,
            "message_type": 1,
            "message_state": 2,
            "item_list": [{"type": 1, "text_item": {"text": "你好"}}],
            "context_token": "ctx-1",
        });
        if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                base.insert(k.clone(), v.clone());
            }
        }
        base
    }

    #[test]
    fn a_users_text_is_a_private_message_keyed_by_its_id() {
        let raw = message(serde_json::json!({}));
        let Read::Message {
            event,
            user,
            context_token,
            message_id,
            at_ms,
        } = read("wx", "ilink", &raw, now()).expect("read")
        else {
            panic!("not a message");
        };
        assert_eq!(user, "o9cq8abc@im.wechat");
        assert_eq!(context_token, "ctx-1");
        assert_eq!(message_id.as_deref(), Some("7001"));
        assert_eq!(at_ms, 1_775_000_000_123);
        assert_eq!(event.idempotency_key, "ilink:wx:id:7001");
        assert_eq!(event.text().as_deref(), Some("你好"));
        assert_eq!(event.platform_message_id.as_deref(), Some("7001"));
        assert_eq!(event.timestamp, "2026-03-31T23:33:20.123Z");
        let conversation = event.conversation.as_ref().expect("conversation");
        assert_eq!(conversation.id, "o9cq8abc@im.wechat");
        assert_eq!(conversation.kind, ConversationKind::Private);
        assert!(
            event.raw.get("context_token").is_none(),
            "the token stays here"
        );
        assert_eq!(event.raw["message_id"], 7001);
        // The same message read again: the same key, so the store keeps it once.
        let Read::Message { event: again, .. } = read("wx", "ilink", &raw, now()).expect("read")
        else {
            panic!("not a message");
        };
        assert_eq!(again.id, event.id);
    }

    #[test]
    fn quotes_voice_and_media_read_as_inbound_ts_does() {
        let raw = message(serde_json::json!({"item_list": [
            {"type": 1, "text_item": {"text": "同意"},
             "ref_msg": {"title": "周报", "message_item": {"type": 1, "text_item": {"text": "下周一交"}}}},
            {"type": 3, "voice_item": {"text": "语音转的字", "playtime": 1200}},
            {"type": 2, "image_item": {"media": {"encrypt_query_param": "q", "aes_key": "k"}}},
            {"type": 4, "file_item": {"file_name": "a.pdf", "len": "12"}},
            {"type": 5, "video_item": {}}
        ]}));
        let Read::Message { event, .. } = read("wx", "ilink", &raw, now()).expect("read") else {
            panic!("not a message");
        };
        assert_eq!(
            event.content,
            vec![
                Segment::Text {
                    text: "[引用: 周报 | 下周一交]\n同意".into()
                },
                Segment::Text {
                    text: "语音转的字".into()
                },
                Segment::Image {
                    url: None,
                    path: None
                },
                Segment::File {
                    name: Some("a.pdf".into()),
                    path: None
                },
                Segment::Unknown,
            ]
        );
    }

    #[test]
    fn the_bots_own_groups_and_broken_messages_are_not_events() {
        assert!(matches!(
            read(
                "wx",
                "ilink",
                &message(serde_json::json!({"message_type": 2})),
                now()
            ),
            Ok(Read::Skipped(_))
        ));
        assert!(matches!(
            read(
                "wx",
                "ilink",
                &message(serde_json::json!({"group_id": "g1"})),
                now()
            ),
            Ok(Read::Skipped(_))
        ));
        let no_token = read(
            "wx",
            "ilink",
            &message(serde_json::json!({"context_token": ""})),
            now(),
        );
        assert!(no_token.is_err_and(|e| e.contains("context_token")));
        let no_sender = read(
            "wx",
            "ilink",
            &message(serde_json::json!({"from_user_id": null})),
            now(),
        );
        assert!(no_sender.is_err());
        assert!(read("wx", "ilink", &serde_json::json!("text"), now()).is_err());
        // Without an id, the seq in its session keys it; without a time, now dates it.
        let raw = message(
            serde_json::json!({"message_id": null, "create_time_ms": null, "session_id": "s"}),
        );
        let Read::Message { event, at_ms, .. } = read("wx", "ilink", &raw, now()).expect("read")
        else {
            panic!("not a message");
        };
        assert_eq!(event.idempotency_key, "ilink:wx:seq:s:3");
        assert_eq!(at_ms, 1_775_000_000_000);
    }

    /// No message of a long poll's batch panics the reader.
    mod props {
        use proptest::prelude::*;

        use super::*;
        use crate::adapter::testing::props::{config, json};

        const WORDS: &[&str] = &[
            "message_id",
            "from_user_id",
            "to_user_id",
            "create_time_ms",
            "message_type",
            "message_state",
            "context_token",
            "item_list",
            "type",
            "text_item",
            "text",
            "voice_item",
            "file_item",
            "file_name",
            "ref_msg",
            "title",
            "message_item",
            "session_id",
            "group_id",
        ];

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn any_message_is_read_skipped_or_refused(body in json(WORDS), now in any::<u32>()) {
                let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(u64::from(now));
                let _ = read("il", "weixin", &body, now);
            }
        }
    }
}
