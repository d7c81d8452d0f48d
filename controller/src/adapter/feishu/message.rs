//! What a Feishu callback says, once it is verified and decrypted: the envelope (the 1.0
//! `url_verification` challenge, a 2.0 event, or a 1.0 event we do not route), and an
//! `im.message.receive_v1` event turned into our [`Event`].
//!
//! Shapes from Feishu's documents and larksuite/oapi-sdk-go (read, not copied):
//! - `event/model.go` (`EventHeader`: event_id, event_type, app_id, tenant_key,
//!   create_time, token; `EventFuzzy`: the fields that tell the kinds apart) and
//!   `event/dispatcher/dispatcher.go` (`parse`: a 2.0 event's token is `header.token`, a
//!   1.0 body's is top-level `token`).
//! - 配置请求地址 (the URL check): `{"challenge", "token", "type": "url_verification"}`,
//!   answered with `{"challenge": …}` within 1 s.
//! - `service/im/v1/model.go` (`EventMessage`, `EventSender`, `MentionEvent`, `UserId`) and
//!   接收消息 (im.message.receive_v1): `message.content` is a JSON string whose shape
//!   depends on `message_type`; `@` mentions appear in it as placeholders (`@_user_1`)
//!   that `message.mentions[].key` resolves; `chat_type` is `p2p`, `group` or
//!   `topic_group`; `create_time` is in milliseconds.
//! - 接收消息内容 (message_content): `text` is `{"text"}`, `post` is `{"title",
//!   "content": [[element…]…]}` with elements tagged `text`, `a`, `at`, `img`, `media`,
//!   `emotion`, `code_block`, `hr`, `md`; `image` is `{"image_key"}`; `file` and `media`
//!   carry `file_name`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::event::{
    Conversation, ConversationKind, Event, Segment, Sender, event_id, now_rfc3339,
    rfc3339_since_epoch, types,
};

use super::PLATFORM;

/// The event type of a message sent to the bot (接收消息 v2.0).
pub const MESSAGE_RECEIVE: &str = "im.message.receive_v1";
const URL_VERIFICATION: &str = "url_verification";

/// The top level of a decrypted callback: the fields that tell its kind.
#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(default)]
    schema: Option<String>,
    #[serde(default)]
    header: Option<Header>,
    #[serde(default)]
    event: Option<Value>,
    /// 1.0 bodies (the URL check among them) carry the token at the top.
    #[serde(default)]
    token: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    challenge: Option<String>,
    #[serde(default)]
    encrypt: Option<String>,
}

/// A 2.0 event's `header`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Header {
    #[serde(default)]
    pub event_id: String,
    #[serde(default)]
    pub event_type: String,
    #[serde(default)]
    pub app_id: String,
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub create_time: String,
}

/// A callback by kind.
#[derive(Debug)]
pub enum Callback {
    /// The URL check: answer `challenge` if `token` is ours.
    Challenge { challenge: String, token: String },
    /// A 2.0 event: `event` is its body, `raw` the whole callback without its token.
    Event {
        header: Header,
        event: Value,
        raw: Value,
    },
    /// A 1.0 event: nothing of it is routed, but its token is still checked.
    V1 { kind: String, token: String },
}

impl Callback {
    /// The decrypted body, read for its kind.
    pub fn parse(plain: &str) -> Result<Callback, String> {
        let envelope: Envelope =
            serde_json::from_str(plain).map_err(|e| format!("callback is not JSON: {e}"))?;
        if envelope.encrypt.is_some() {
            // The SDKs' message too: Feishu encrypts only when the app has an Encrypt Key.
            return Err(
                "the callback is encrypted: set encrypt_key to the app's Encrypt Key".into(),
            );
        }
        if envelope.kind.as_deref() == Some(URL_VERIFICATION) {
            return Ok(Callback::Challenge {
                challenge: envelope.challenge.unwrap_or_default(),
                token: envelope.token.unwrap_or_default(),
            });
        }
        if envelope.schema.is_some() {
            let header = envelope
                .header
                .ok_or("a 2.0 event without a header".to_string())?;
            let mut raw: Value =
                serde_json::from_str(plain).map_err(|e| format!("callback is not JSON: {e}"))?;
            // The verification token is a secret: it is not stored or handed to handlers.
            if let Some(header) = raw.get_mut("header").and_then(Value::as_object_mut) {
                header.remove("token");
            }
            return Ok(Callback::Event {
                header,
                event: envelope.event.unwrap_or(Value::Null),
                raw,
            });
        }
        Ok(Callback::V1 {
            kind: envelope
                .event
                .as_ref()
                .and_then(|e| e.get("type"))
                .and_then(Value::as_str)
                .or(envelope.kind.as_deref())
                .unwrap_or_default()
                .to_string(),
            token: envelope.token.unwrap_or_default(),
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
struct UserIds {
    #[serde(default)]
    open_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct MessageSender {
    #[serde(default)]
    sender_id: Option<UserIds>,
}

#[derive(Debug, Clone, Deserialize)]
struct Mention {
    key: String,
    #[serde(default)]
    id: UserIds,
    #[serde(default)]
    name: String,
}

impl Mention {
    fn open_id(&self) -> Option<&str> {
        self.id.open_id.as_deref().filter(|id| !id.is_empty())
    }
}

#[derive(Debug, Clone, Deserialize)]
struct Message {
    message_id: String,
    #[serde(default)]
    create_time: Option<String>,
    chat_id: String,
    #[serde(default)]
    chat_type: String,
    #[serde(default)]
    message_type: String,
    #[serde(default)]
    content: String,
    /// Absent or null when nobody is mentioned.
    #[serde(default)]
    mentions: Option<Vec<Mention>>,
}

impl Message {
    fn mentions(&self) -> &[Mention] {
        self.mentions.as_deref().unwrap_or_default()
    }
}

#[derive(Debug, Clone, Deserialize)]
struct Receive {
    sender: MessageSender,
    message: Message,
}

/// The idempotency key of a received message. Feishu pushes an event again when it got
/// no 200 in time, at growing intervals up to 6 h after the first try (事件订阅概述), and
/// the retry repeats the message's `message_id`; the store remembers every key for ever,
/// so keying on it keeps a retry of any age from being answered twice.
pub fn message_key(source: &str, message_id: &str) -> String {
    format!("feishu:{source}:msg:{message_id}")
}

/// An `im.message.receive_v1` event's body as our [`Event`]. `bot_open_id` is the bot's
/// own open_id when it is known: its mention is taken out of the text (a group message
/// to the bot starts with `@Bot`, which would keep commands from being read).
pub fn message_event(
    source: &str,
    event: &Value,
    raw: Value,
    bot_open_id: Option<&str>,
) -> Result<Event, String> {
    let receive = Receive::deserialize(event).map_err(|e| format!("im.message.receive_v1: {e}"))?;
    let message = &receive.message;
    if message.message_id.is_empty() || message.chat_id.is_empty() {
        return Err("im.message.receive_v1 without message_id or chat_id".into());
    }
    let sender = receive
        .sender
        .sender_id
        .and_then(|ids| ids.open_id)
        .filter(|id| !id.is_empty())
        .ok_or("im.message.receive_v1 without sender.sender_id.open_id")?;
    let kind = match message.chat_type.as_str() {
        "p2p" => ConversationKind::Private,
        _ => ConversationKind::Group,
    };
    let content = segments(message, kind, bot_open_id)?;
    let key = message_key(source, &message.message_id);
    let timestamp = message
        .create_time
        .as_deref()
        .and_then(|ms| ms.parse::<u64>().ok())
        .and_then(|ms| rfc3339_since_epoch(Duration::from_millis(ms)))
        .unwrap_or_else(now_rfc3339);
    Ok(Event {
        id: event_id(&key),
        event_type: types::MESSAGE_RECEIVED.into(),
        source: source.into(),
        platform: PLATFORM.into(),
        idempotency_key: key,
        conversation: Some(Conversation {
            id: message.chat_id.clone(),
            title: None,
            kind,
        }),
        sender: Some(Sender {
            is_self: bot_open_id == Some(sender.as_str()),
            id: sender,
            display_name: None,
        }),
        content,
        platform_message_id: Some(message.message_id.clone()),
        timestamp,
        raw,
    })
}

/// The message's content: its text (mentions of others as `@Name`, the bot's own taken
/// out), then what else it holds (images, files, links, each mention).
fn segments(
    message: &Message,
    kind: ConversationKind,
    bot_open_id: Option<&str>,
) -> Result<Vec<Segment>, String> {
    let content: Value = if message.content.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&message.content)
            .map_err(|e| format!("message.content is not JSON: {e}"))?
    };
    let str_field = |field: &str| {
        content
            .get(field)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let mut extra = Vec::new();
    let text = match message.message_type.as_str() {
        "text" => str_field("text").unwrap_or_default(),
        "post" => flatten_post(&content, &mut extra),
        "image" => {
            extra.push(Segment::Image {
                url: None,
                path: None,
            });
            String::new()
        }
        "file" | "media" => {
            extra.push(Segment::File {
                name: str_field("file_name").filter(|n| !n.is_empty()),
                path: None,
            });
            String::new()
        }
        _ => {
            extra.push(Segment::Unknown);
            String::new()
        }
    };
    let bot_key = bot_mention(message.mentions(), &text, kind, bot_open_id);
    let text = resolve_mentions(&text, message.mentions(), bot_key);
    let mut out = Vec::new();
    if !text.is_empty() {
        out.push(Segment::Text { text });
    }
    out.extend(extra);
    out.extend(message.mentions().iter().map(|m| Segment::Mention {
        user: m.open_id().unwrap_or(&m.key).to_string(),
    }));
    Ok(out)
}

/// Which mention is the bot's. Known: the one with its open_id. Not yet known (its
/// `bot/v3/info` has not answered): in a group, a mention the message starts with, since
/// a group message reaches the bot only when it is @-mentioned and people put the @
/// first; never in a private chat, where nobody needs to mention the bot.
fn bot_mention<'m>(
    mentions: &'m [Mention],
    text: &str,
    kind: ConversationKind,
    bot_open_id: Option<&str>,
) -> Option<&'m str> {
    match bot_open_id {
        Some(bot) => mentions
            .iter()
            .find(|m| m.open_id() == Some(bot))
            .map(|m| m.key.as_str()),
        None if kind == ConversationKind::Group => {
            let start = text.trim_start();
            // The longest key that matches, so `@_user_1` does not claim `@_user_10`.
            mentions
                .iter()
                .filter(|m| !m.key.is_empty() && start.starts_with(m.key.as_str()))
                .max_by_key(|m| m.key.len())
                .map(|m| m.key.as_str())
        }
        None => None,
    }
}

/// Placeholders replaced: the bot's removed with the space after it, the others by
/// `@Name`. Longer keys first, so `@_user_10` is not read as `@_user_1` + `0`.
fn resolve_mentions(text: &str, mentions: &[Mention], bot_key: Option<&str>) -> String {
    let mut ordered: Vec<&Mention> = mentions.iter().filter(|m| !m.key.is_empty()).collect();
    ordered.sort_by_key(|m| std::cmp::Reverse(m.key.len()));
    let mut text = text.to_string();
    for mention in ordered {
        if Some(mention.key.as_str()) == bot_key {
            text = text
                .replace(&format!("{} ", mention.key), "")
                .replace(&mention.key, "");
        } else {
            let name = if mention.name.is_empty() {
                mention.open_id().unwrap_or("someone")
            } else {
                mention.name.as_str()
            };
            text = text.replace(&mention.key, &format!("@{name}"));
        }
    }
    text.trim().to_string()
}

/// A `post` (rich text) as plain text: the title on its own line, then each paragraph on
/// a line; images, media and links also become segments of their own. An `at` element
/// keeps its placeholder (resolved with the others) or, without one, `@user_name`.
fn flatten_post(content: &Value, extra: &mut Vec<Segment>) -> String {
    // Received posts are `{"title", "content"}`; the localised form a sender writes
    // (`{"zh_cn": {…}}`) is read too, its first language.
    let body = if content.get("content").is_some() {
        content
    } else {
        content
            .as_object()
            .and_then(|langs| langs.values().find(|v| v.get("content").is_some()))
            .unwrap_or(&Value::Null)
    };
    let mut lines = Vec::new();
    if let Some(title) = body.get("title").and_then(Value::as_str)
        && !title.trim().is_empty()
    {
        lines.push(title.to_string());
    }
    let paragraphs = body
        .get("content")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for paragraph in paragraphs {
        let mut line = String::new();
        for element in paragraph.as_array().map(Vec::as_slice).unwrap_or_default() {
            let field = |name: &str| element.get(name).and_then(Value::as_str).unwrap_or("");
            match field("tag") {
                "text" | "md" | "code_block" => line.push_str(field("text")),
                "a" => {
                    let text = field("text");
                    line.push_str(if text.is_empty() { field("href") } else { text });
                    if !field("href").is_empty() {
                        extra.push(Segment::Link {
                            url: field("href").to_string(),
                            title: Some(text.to_string()).filter(|t| !t.is_empty()),
                        });
                    }
                }
                "at" => {
                    let id = field("user_id");
                    if id.starts_with("@_") {
                        line.push_str(id);
                    } else if !field("user_name").is_empty() {
                        line.push('@');
                        line.push_str(field("user_name"));
                    }
                }
                "img" => extra.push(Segment::Image {
                    url: None,
                    path: None,
                }),
                "media" => extra.push(Segment::File {
                    name: Some(field("file_name").to_string()).filter(|n| !n.is_empty()),
                    path: None,
                }),
                "emotion" if !field("emoji_type").is_empty() => {
                    line.push_str(&format!("[{}]", field("emoji_type")));
                }
                _ => {}
            }
        }
        lines.push(line);
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOT: &str = "ou_bot";

    fn receive(chat_type: &str, message_type: &str, content: &str, mentions: Value) -> Value {
        serde_json::json!({
            "sender": {
                "sender_id": {"open_id": "ou_alice", "union_id": "on_alice", "user_id": "alice"},
                "sender_type": "user",
                "tenant_key": "tk"
            },
            "message": {
                "message_id": "om_1",
                "root_id": "",
                "parent_id": "",
                "create_time": "1764500000123",
                "chat_id": "oc_chat",
                "chat_type": chat_type,
                "message_type": message_type,
                "content": content,
                "mentions": mentions,
                "user_agent": "Mozilla/5.0"
            }
        })
    }

    fn bot_and_bob() -> Value {
        serde_json::json!([
            {"key": "@_user_1", "id": {"open_id": BOT}, "name": "Tapwire", "tenant_key": "tk"},
            {"key": "@_user_2", "id": {"open_id": "ou_bob", "user_id": "bob"}, "name": "Bob", "tenant_key": "tk"}
        ])
    }

    #[test]
    fn a_challenge_an_event_and_a_v1_body_are_told_apart() {
        let challenge = Callback::parse(
            r#"{"challenge":"ajls384kdjx98XX","token":"xxxxxx","type":"url_verification"}"#,
        )
        .expect("parsed");
        assert!(matches!(
            challenge,
            Callback::Challenge { challenge, token } if challenge == "ajls384kdjx98XX" && token == "xxxxxx"
        ));
        let event = Callback::parse(
            r#"{"schema":"2.0","header":{"event_id":"e1","event_type":"im.message.receive_v1","app_id":"cli_a","tenant_key":"tk","create_time":"1","token":"secret-token"},"event":{"x":1}}"#,
        )
        .expect("parsed");
        let Callback::Event { header, event, raw } = event else {
            panic!("not an event");
        };
        assert_eq!(header.event_type, MESSAGE_RECEIVE);
        assert_eq!(header.token, "secret-token");
        assert_eq!(header.app_id, "cli_a");
        assert_eq!(event["x"], 1);
        // The token is not kept in what is stored and handed on.
        assert!(!raw.to_string().contains("secret-token"));
        assert_eq!(raw["header"]["event_id"], "e1");
        let v1 = Callback::parse(
            r#"{"uuid":"u","token":"t","ts":"1","type":"event_callback","event":{"type":"app_ticket"}}"#,
        )
        .expect("parsed");
        assert!(matches!(v1, Callback::V1 { kind, token } if kind == "app_ticket" && token == "t"));
        assert!(
            Callback::parse(r#"{"encrypt":"abc"}"#)
                .unwrap_err()
                .contains("encrypt_key")
        );
        assert!(Callback::parse("nope").is_err());
        assert!(Callback::parse(r#"{"schema":"2.0"}"#).is_err());
    }

    #[test]
    fn a_private_text_message_becomes_an_event_keyed_by_message_id() {
        let body = receive("p2p", "text", r#"{"text":"今天谁值班？"}"#, Value::Null);
        let event =
            message_event("lark", &body, serde_json::json!({"k": 1}), Some(BOT)).expect("event");
        assert_eq!(event.event_type, types::MESSAGE_RECEIVED);
        assert_eq!(event.platform, "feishu");
        assert_eq!(event.source, "lark");
        assert_eq!(event.text().as_deref(), Some("今天谁值班？"));
        assert_eq!(event.idempotency_key, "feishu:lark:msg:om_1");
        assert_eq!(event.platform_message_id.as_deref(), Some("om_1"));
        assert_eq!(event.timestamp, "2025-11-30T10:53:20.123Z");
        let conversation = event.conversation.expect("conversation");
        assert_eq!(
            (conversation.id.as_str(), conversation.kind),
            ("oc_chat", ConversationKind::Private)
        );
        let sender = event.sender.expect("sender");
        assert_eq!(sender.id, "ou_alice");
        assert!(!sender.is_self);
        assert_eq!(event.raw, serde_json::json!({"k": 1}));
        // The same message again (a retry) is the same event.
        let again = message_event("lark", &body, Value::Null, Some(BOT)).expect("event");
        assert_eq!(again.id, event.id);
    }

    #[test]
    fn the_bots_mention_is_taken_out_and_others_named() {
        let body = receive(
            "group",
            "text",
            r#"{"text":"@_user_1 #duty ask @_user_2 please"}"#,
            bot_and_bob(),
        );
        let event = message_event("lark", &body, Value::Null, Some(BOT)).expect("event");
        assert_eq!(event.text().as_deref(), Some("#duty ask @Bob please"));
        assert_eq!(
            event.conversation.map(|c| c.kind),
            Some(ConversationKind::Group)
        );
        assert_eq!(
            &event.content[1..],
            [
                Segment::Mention { user: BOT.into() },
                Segment::Mention {
                    user: "ou_bob".into()
                }
            ]
        );
        // The bot's id not known yet: the leading mention is taken for the bot's.
        let unknown = message_event("lark", &body, Value::Null, None).expect("event");
        assert_eq!(unknown.text().as_deref(), Some("#duty ask @Bob please"));
        // …but only in a group, and only when the message starts with it.
        let private = receive("p2p", "text", r#"{"text":"@_user_2 hi"}"#, bot_and_bob());
        let event = message_event("lark", &private, Value::Null, None).expect("event");
        assert_eq!(event.text().as_deref(), Some("@Bob hi"));
        let later = receive("group", "text", r#"{"text":"hi @_user_1"}"#, bot_and_bob());
        let event = message_event("lark", &later, Value::Null, None).expect("event");
        assert_eq!(event.text().as_deref(), Some("hi @Tapwire"));
        let known = message_event("lark", &later, Value::Null, Some(BOT)).expect("event");
        assert_eq!(known.text().as_deref(), Some("hi"));
        // `@_user_1` does not eat the start of `@_user_10`.
        let many: Vec<Value> = (1..=10)
            .map(|i| serde_json::json!({"key": format!("@_user_{i}"), "id": {"open_id": format!("ou_{i}")}, "name": format!("U{i}")}))
            .collect();
        let body = receive(
            "group",
            "text",
            r#"{"text":"@_user_10 and @_user_1"}"#,
            Value::Array(many),
        );
        let event = message_event("lark", &body, Value::Null, Some("ou_1")).expect("event");
        assert_eq!(event.text().as_deref(), Some("@U10 and"));
    }

    #[test]
    fn a_post_is_flattened_to_text_with_its_links_images_and_mentions() {
        let post = serde_json::json!({
            "title": "周报",
            "content": [
                [
                    {"tag": "at", "user_id": "@_user_1", "user_name": "Tapwire"},
                    {"tag": "text", "text": " 本周 ", "style": ["bold"]},
                    {"tag": "a", "text": "看板", "href": "https://example.com/board"},
                    {"tag": "emotion", "emoji_type": "SMILE"}
                ],
                [
                    {"tag": "img", "image_key": "img_v2_1"},
                    {"tag": "at", "user_id": "@_user_2", "user_name": "Bob"},
                    {"tag": "text", "text": " 请看"}
                ],
                [{"tag": "code_block", "language": "rust", "text": "fn main() {}"}]
            ]
        })
        .to_string();
        let body = receive("group", "post", &post, bot_and_bob());
        let event = message_event("lark", &body, Value::Null, Some(BOT)).expect("event");
        assert_eq!(
            event.text().as_deref(),
            Some("周报\n本周 看板[SMILE]\n@Bob 请看\nfn main() {}")
        );
        assert!(event.content.contains(&Segment::Link {
            url: "https://example.com/board".into(),
            title: Some("看板".into())
        }));
        assert!(event.content.contains(&Segment::Image {
            url: None,
            path: None
        }));
        // A localised post reads the same.
        let localised = serde_json::json!({"zh_cn": {"title": "", "content": [[{"tag": "text", "text": "hi"}]]}}).to_string();
        let body = receive("p2p", "post", &localised, Value::Null);
        let event = message_event("lark", &body, Value::Null, Some(BOT)).expect("event");
        assert_eq!(event.text().as_deref(), Some("hi"));
    }

    #[test]
    fn images_files_and_unknown_kinds_are_segments_broken_content_an_error() {
        let image = receive("p2p", "image", r#"{"image_key":"img_1"}"#, Value::Null);
        let event = message_event("lark", &image, Value::Null, None).expect("event");
        assert_eq!(
            event.content,
            [Segment::Image {
                url: None,
                path: None
            }]
        );
        assert_eq!(event.text(), None);
        let file = receive(
            "p2p",
            "file",
            r#"{"file_key":"file_1","file_name":"值班表.xlsx"}"#,
            Value::Null,
        );
        let event = message_event("lark", &file, Value::Null, None).expect("event");
        assert_eq!(
            event.content,
            [Segment::File {
                name: Some("值班表.xlsx".into()),
                path: None
            }]
        );
        let sticker = receive("p2p", "sticker", r#"{"file_key":"s"}"#, Value::Null);
        let event = message_event("lark", &sticker, Value::Null, None).expect("event");
        assert_eq!(event.content, [Segment::Unknown]);
        let broken = receive("p2p", "text", "{not json", Value::Null);
        assert!(message_event("lark", &broken, Value::Null, None).is_err());
        let mut anonymous = receive("p2p", "text", r#"{"text":"x"}"#, Value::Null);
        anonymous["sender"]["sender_id"] = serde_json::json!({});
        assert!(message_event("lark", &anonymous, Value::Null, None).is_err());
        assert!(message_event("lark", &serde_json::json!({}), Value::Null, None).is_err());
        // The bot's own message (seen with the all-messages scope) is marked as its own.
        let mut own = receive("group", "text", r#"{"text":"x"}"#, Value::Null);
        own["sender"]["sender_id"]["open_id"] = BOT.into();
        let event = message_event("lark", &own, Value::Null, Some(BOT)).expect("event");
        assert!(event.sender.expect("sender").is_self);
    }

    /// No decrypted callback panics the reader, nor any message event inside one.
    mod props {
        use proptest::prelude::*;

        use super::*;
        use crate::adapter::testing::props::{config, json, mutated};

        const POINTERS: &[&str] = &[
            "/sender",
            "/sender/sender_id",
            "/sender/sender_id/open_id",
            "/message",
            "/message/message_id",
            "/message/create_time",
            "/message/chat_id",
            "/message/chat_type",
            "/message/message_type",
            "/message/content",
            "/message/mentions",
            "/message/mentions/0",
            "/message/mentions/0/key",
            "/message/mentions/1/id",
        ];

        const WORDS: &[&str] = &[
            "schema",
            "2.0",
            "header",
            "event_id",
            "event_type",
            "app_id",
            "token",
            "create_time",
            "event",
            "type",
            "url_verification",
            "challenge",
            "encrypt",
            "im.message.receive_v1",
            "sender",
            "sender_id",
            "open_id",
            "message",
            "message_id",
            "chat_id",
            "chat_type",
            "p2p",
            "group",
            "message_type",
            "text",
            "post",
            "image",
            "file",
            "media",
            "content",
            "mentions",
            "key",
            "id",
            "name",
            "title",
            "tag",
            "at",
            "a",
            "img",
            "href",
            "user_id",
            "@_user_1",
            "image_key",
            "file_name",
            "zh_cn",
        ];

        /// What the properties change is read whole before: the changes reach deep.
        #[test]
        fn the_genuine_messages_are_read() {
            let text = receive(
                "group",
                "text",
                r#"{"text":"@_user_1 #duty"}"#,
                bot_and_bob(),
            );
            assert!(message_event("lark", &text, Value::Null, Some(BOT)).is_ok());
        }

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn any_callback_is_read_or_refused(
                text in any::<String>(),
                body in json(WORDS),
                content in json(WORDS),
                bot in proptest::option::of(proptest::sample::select(WORDS)),
            ) {
                let _ = Callback::parse(&text);
                let _ = Callback::parse(&body.to_string());
                // A message's content is JSON in a string: put a shaped one where it goes.
                let mut event = body.clone();
                if let Some(message) = event.get_mut("message").and_then(|m| m.as_object_mut()) {
                    message.insert("content".into(), content.to_string().into());
                }
                let _ = message_event("lark", &event, body, bot);
            }

            #[test]
            fn a_genuine_message_with_any_field_changed_is_read_or_refused(
                text in mutated(receive("group", "text", r#"{"text":"@_user_1 #duty"}"#, bot_and_bob()), POINTERS, WORDS),
                post in mutated(receive("p2p", "post", r#"{"title":"t","content":[[{"tag":"at","user_id":"@_user_1"},{"tag":"text","text":"hi"}]]}"#, bot_and_bob()), POINTERS, WORDS),
            ) {
                for event in [text, post] {
                    let _ = message_event("lark", &event, Value::Null, Some(BOT));
                }
            }
        }
    }
}
