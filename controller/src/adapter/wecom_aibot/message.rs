//! The decrypted JSON of an AI bot's callbacks, and what each becomes.
//!
//! WeCom documents followed (developer.work.weixin.qq.com/document/path/…):
//! - 100719 接收消息: messages carry `msgid` ("本次回调的唯一性标志，开发者需据此进行事件
//!   排重"), `aibotid`, `chatid` (group chats only), `chattype` (`single` | `group`),
//!   `from.userid`, `response_url` and `msgtype`: `text`, `image` (`url`, downloaded
//!   encrypted with the callback's AES key, valid five minutes), `mixed` (`msg_item` of
//!   text and images), `voice` (`content`, already speech-to-text), `file` (`url`); and
//!   `stream` (`stream.id`): WeCom asking for a stream's content so far.
//! - 101027 接收事件: `msgtype` = `event`, `event.eventtype` = `enter_chat` (a member opens
//!   the bot's chat for the first time that day) or `template_card_event`
//!   (`event_key`, `task_id`; with a `response_url`), among others; `create_time`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::event::{
    Conversation, ConversationKind, Event, Segment, Sender, event_id, now_rfc3339,
    rfc3339_since_epoch, types,
};

use super::PLATFORM;

/// A member opened the bot's chat, the first time that day (101027 进入会话事件).
pub const CHAT_ENTERED: &str = "wecom.chat_entered";
/// A member pressed a template card's button; the text is its `event_key` (101027
/// 模板卡片事件).
pub const CARD_CLICKED: &str = "wecom.card_clicked";

/// What a callback asks of us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Callback {
    /// A member's message: routed, and answered with a stream.
    Message(Incoming),
    /// WeCom asks for a stream's content so far (100719 流式消息刷新).
    Refresh { stream: String },
    /// `enter_chat`: routed, and answered with the welcome text if there is one.
    Entered(Incoming),
    /// `template_card_event`: routed; answers go through its `response_url`.
    CardClicked(Incoming),
    /// Anything else (a feedback event, an event type not known here): acknowledged
    /// and not routed, for the reason given.
    Other(String),
}

/// A callback that becomes an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub msgid: String,
    pub event: Event,
    /// Where one answer may be posted within an hour (101138). Kept out of the event:
    /// it is a capability, and events go to webhooks and the store.
    pub response_url: Option<String>,
}

impl Incoming {
    pub fn conversation(&self) -> &str {
        self.event
            .conversation
            .as_ref()
            .map_or("", |c| c.id.as_str())
    }
}

#[derive(Deserialize)]
struct Wire {
    #[serde(default)]
    msgid: String,
    #[serde(default)]
    chatid: String,
    #[serde(default)]
    chattype: String,
    #[serde(default)]
    from: From,
    #[serde(default)]
    response_url: String,
    #[serde(default)]
    msgtype: String,
    #[serde(default)]
    create_time: Option<Value>,
    #[serde(default)]
    text: Option<Content>,
    #[serde(default)]
    voice: Option<Content>,
    #[serde(default)]
    image: Option<Link>,
    #[serde(default)]
    mixed: Option<Value>,
    #[serde(default)]
    stream: Option<StreamRef>,
    #[serde(default)]
    event: Option<WireEvent>,
}

#[derive(Default, Deserialize)]
struct From {
    #[serde(default)]
    userid: String,
}

#[derive(Deserialize)]
struct Content {
    #[serde(default)]
    content: String,
}

#[derive(Deserialize)]
struct Link {
    #[serde(default)]
    url: String,
}

#[derive(Deserialize)]
struct Mixed {
    #[serde(default)]
    msg_item: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    #[serde(default)]
    msgtype: String,
    #[serde(default)]
    text: Option<Content>,
    #[serde(default)]
    image: Option<Link>,
}

#[derive(Deserialize)]
struct StreamRef {
    #[serde(default)]
    id: String,
}

#[derive(Deserialize)]
struct WireEvent {
    #[serde(default)]
    eventtype: String,
    #[serde(default)]
    template_card_event: Option<CardEvent>,
}

#[derive(Deserialize)]
struct CardEvent {
    #[serde(default)]
    event_key: String,
}

/// The `aibotid` a callback names, if any (to check it is ours before anything else).
pub fn aibot_id(json: &Value) -> Option<&str> {
    json.get("aibotid")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
}

/// Reads a decrypted callback. `source` is the adapter's name (events' source and keys).
pub fn parse(json: &Value, source: &str) -> Result<Callback, String> {
    let wire: Wire =
        serde_json::from_value(json.clone()).map_err(|e| format!("decrypted JSON: {e}"))?;
    match wire.msgtype.as_str() {
        "stream" => {
            let stream = wire.stream.map(|s| s.id).unwrap_or_default();
            if stream.is_empty() {
                return Err("a stream refresh without stream.id".into());
            }
            Ok(Callback::Refresh { stream })
        }
        "event" => {
            let Some(event) = &wire.event else {
                return Err("an event callback without event".into());
            };
            match event.eventtype.as_str() {
                "enter_chat" => Ok(Callback::Entered(incoming(
                    &wire,
                    json,
                    source,
                    CHAT_ENTERED,
                    Vec::new(),
                )?)),
                "template_card_event" => {
                    let key = event
                        .template_card_event
                        .as_ref()
                        .map(|c| c.event_key.clone())
                        .unwrap_or_default();
                    let content = if key.is_empty() {
                        Vec::new()
                    } else {
                        vec![Segment::Text { text: key }]
                    };
                    Ok(Callback::CardClicked(incoming(
                        &wire,
                        json,
                        source,
                        CARD_CLICKED,
                        content,
                    )?))
                }
                other => Ok(Callback::Other(format!("event {other:?}"))),
            }
        }
        "" => Err("no msgtype".into()),
        _ => {
            let content = message_content(&wire);
            Ok(Callback::Message(incoming(
                &wire,
                json,
                source,
                types::MESSAGE_RECEIVED,
                content,
            )?))
        }
    }
}

fn is_group(wire: &Wire) -> bool {
    wire.chattype == "group" && !wire.chatid.is_empty()
}

/// Segments of a message; a type not known here is still a message someone waits on.
fn message_content(wire: &Wire) -> Vec<Segment> {
    let group = is_group(wire);
    let image = |link: &Option<Link>| Segment::Image {
        url: link
            .as_ref()
            .map(|l| l.url.trim().to_string())
            .filter(|u| !u.is_empty()),
        path: None,
    };
    match wire.msgtype.as_str() {
        "text" => text_segments(text(&wire.text), group),
        // 100719: the voice's content is its speech turned into text.
        "voice" => text_segments(text(&wire.voice), false),
        "image" => vec![image(&wire.image)],
        "file" => vec![Segment::File {
            name: None,
            path: None,
        }],
        "mixed" => {
            let mut segments = Vec::new();
            let mut first_text = true;
            for item in mixed_items(wire.mixed.as_ref()) {
                match item.msgtype.as_str() {
                    "text" => {
                        segments.extend(text_segments(text(&item.text), group && first_text));
                        first_text = false;
                    }
                    "image" => segments.push(image(&item.image)),
                    _ => segments.push(Segment::Unknown),
                }
            }
            segments
        }
        _ => vec![Segment::Unknown],
    }
}

fn text(content: &Option<Content>) -> &str {
    content.as_ref().map_or("", |c| c.content.as_str())
}

/// `mixed` as documented (an object with `msg_item`); also taken when it comes as a
/// JSON string holding that object, which implementations report seeing.
fn mixed_items(mixed: Option<&Value>) -> Vec<Item> {
    let parsed = match mixed {
        Some(Value::String(text)) => serde_json::from_str::<Mixed>(text).ok(),
        Some(value) => serde_json::from_value::<Mixed>(value.clone()).ok(),
        None => None,
    };
    parsed.map(|m| m.msg_item).unwrap_or_default()
}

/// A text, with the leading `@bot` of a group message (100719: group messages reach the
/// bot only when they mention it, "@RobotA hello robot") as a mention of its own, so
/// commands and answers see what was said to the bot.
fn text_segments(text: &str, group: bool) -> Vec<Segment> {
    let mut segments = Vec::new();
    let mut rest = text;
    if group && let Some(mentioned) = text.strip_prefix('@') {
        let end = mentioned
            .find(char::is_whitespace)
            .unwrap_or(mentioned.len());
        if end > 0 {
            segments.push(Segment::Mention {
                user: mentioned[..end].to_string(),
            });
            rest = mentioned[end..].trim_start();
        }
    }
    if !rest.is_empty() {
        segments.push(Segment::Text {
            text: rest.to_string(),
        });
    }
    segments
}

fn incoming(
    wire: &Wire,
    json: &Value,
    source: &str,
    event_type: &str,
    content: Vec<Segment>,
) -> Result<Incoming, String> {
    let msgid = wire.msgid.trim();
    if msgid.is_empty() {
        return Err("no msgid".into());
    }
    let user = wire.from.userid.trim();
    if user.is_empty() {
        return Err("no from.userid".into());
    }
    let (conversation, kind) = if is_group(wire) {
        (wire.chatid.clone(), ConversationKind::Group)
    } else {
        (user.to_string(), ConversationKind::Private)
    };
    // 100719: a retried callback repeats its msgid, so it keys the event.
    let key = format!("wecom_aibot:{source}:msg:{msgid}");
    let mut raw = json.clone();
    if let Some(fields) = raw.as_object_mut() {
        fields.remove("response_url");
    }
    let timestamp = wire
        .create_time
        .as_ref()
        .and_then(|t| t.as_u64().or_else(|| t.as_str()?.parse().ok()))
        .and_then(|secs| rfc3339_since_epoch(Duration::from_secs(secs)))
        .unwrap_or_else(now_rfc3339);
    let response_url = Some(wire.response_url.trim().to_string()).filter(|u| !u.is_empty());
    Ok(Incoming {
        msgid: msgid.to_string(),
        event: Event {
            id: event_id(&key),
            event_type: event_type.into(),
            source: source.into(),
            platform: PLATFORM.into(),
            idempotency_key: key,
            conversation: Some(Conversation {
                id: conversation,
                title: None,
                kind,
            }),
            sender: Some(Sender {
                id: user.to_string(),
                display_name: None,
                is_self: false,
            }),
            content,
            platform_message_id: (event_type == types::MESSAGE_RECEIVED).then(|| msgid.to_string()),
            timestamp,
            raw,
        },
        response_url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // 100719's examples, as published (with their `\/` escapes and trailing spaces).
    const TEXT: &str = r#"{
    "msgid": "CAIQ16HMjQYY\/NGagIOAgAMgq4KM0AI=",
    "aibotid": "AIBOTID",
    "chatid": "CHATID",
    "chattype": "group",
    "from": {
        "userid": "USERID"
    },
    "response_url": "RESPONSEURL",
    "msgtype": "text",
    "text": {
        "content": "@RobotA hello robot"
    },
    "quote": {
        "msgtype": "text",
        "text": {
            "content": "这是今日的测试情况"
        }
    }
}"#;
    const IMAGE: &str = r#"{
    "msgid": "CAIQz7/MjQYY/NGagIOAgAMgl8jK/gI=",
    "aibotid": "AIBOTID",
    "chattype": "single",
    "from": {
        "userid": "USERID"
    },
    "response_url": "RESPONSEURL",
    "msgtype": "image",
    "image": {
        "url": "https://ww-aibot-img-1258476243.cos.ap-guangzhou.myqcloud.com/BHoPdA3/7571665296904772241?sign=q-sign-algorithm%3Dsha1 "
    }
}"#;
    const MIXED: &str = r#"{
    "msgid": "CAIQrcjMjQYY/NGagIOAgAMg6PDc/w0=",
    "aibotid": "AIBOTID",
    "chatid": "CHATID",
    "chattype": "group",
    "from": {
        "userid": "USERID"
    },
    "response_url": "RESPONSEURL",
    "msgtype": "mixed",
    "mixed": {
        "msg_item": [
            {
                "msgtype": "text",
                "text": {
                    "content": "@机器人 这是今日的测试情况"
                }
            },
            {
                "msgtype": "image",
                "image": {
                    "url": "URL"
                }
            }
        ]
    }
}"#;
    const VOICE: &str = r#"{
    "msgid": "CAIQrcjMjQYY/NGagIOAgAMg6PDc/w0=",
    "aibotid": "AIBOTID",
    "chattype": "single",
    "from": {
        "userid": "USERID"
    },
    "response_url": "RESPONSEURL",
    "msgtype": "voice",
    "voice": {
        "content": "这是语音转成文本的内容"
    }
}"#;
    const REFRESH: &str = r#"{
    "msgid": "CAIQz7/MjQYY/NGagIOAgAMgl8jK/gI=",
    "aibotid": "AIBOTID",
    "chatid": "CHATID",
    "chattype": "group",
    "from": {
        "userid": "USERID"
    },
    "msgtype": "stream",
    "stream": {
        "id": "STREAMID"
    }
}"#;
    // 101027's examples.
    const ENTER: &str = r#"{
    "msgid": "CAIQ16HMjQYY\/NGagIOAgAMgq4KM0AI=",
	"create_time":1700000000,
    "aibotid": "AIBOTID",
    "from": {
		"corpid": "wpxxxx",
        "userid": "USERID"
    },
    "msgtype": "event",
    "event": {
        "eventtype": "enter_chat"
    }
}"#;
    const CARD: &str = r#"{
    "msgid": "CAIQ16HMjQYY\/NGagIOAgAMgq4KM0AI=",
    "create_time": 1700000000,
    "aibotid": "AIBOTID",
    "from": {
        "corpid": "CORPID",
        "userid": "USERID"
    },
    "chatid": "CHATID",
    "chattype": "group",
    "response_url": "RESPONSEURL",
    "msgtype": "event",
    "event": {
        "eventtype": "template_card_event",
        "template_card_event": {
            "card_type": "button_interaction",
            "event_key": "button_replace_text",
            "task_id": "fBmjTL7ErRCQSNA6GZKMlcFiWX1shOvg"
        }
    }
}"#;
    const FEEDBACK: &str = r#"{
    "msgid": "CAIQ16HMjQYY\/NGagIOAgAMgq4KM0AI=",
    "create_time": 1700000000,
    "aibotid": "AIBOTID",
    "chatid": "CHATID",
    "chattype": "group",
    "from": {
        "userid": "USERID"
    },
    "msgtype": "event",
    "event": {
        "eventtype": "feedback_event",
        "feedback_event": {
            "id": "FEEDBACKID",
            "type": 2
        }
    }
}"#;

    fn parsed(json: &str) -> Callback {
        let value: Value = serde_json::from_str(json).expect("json");
        parse(&value, "bot").expect("parsed")
    }

    fn message(json: &str) -> Incoming {
        match parsed(json) {
            Callback::Message(incoming) => incoming,
            other => panic!("not a message: {other:?}"),
        }
    }

    #[test]
    fn a_group_text_is_a_message_in_the_group_with_the_bot_mention_apart() {
        let incoming = message(TEXT);
        let event = &incoming.event;
        assert_eq!(incoming.msgid, "CAIQ16HMjQYY/NGagIOAgAMgq4KM0AI=");
        assert_eq!(incoming.response_url.as_deref(), Some("RESPONSEURL"));
        assert_eq!(incoming.conversation(), "CHATID");
        assert_eq!(event.event_type, types::MESSAGE_RECEIVED);
        assert_eq!(event.platform, "wecom");
        assert_eq!(event.source, "bot");
        assert_eq!(
            event.conversation.as_ref().map(|c| c.kind),
            Some(ConversationKind::Group)
        );
        assert_eq!(event.sender.as_ref().map(|s| s.id.as_str()), Some("USERID"));
        assert_eq!(
            event.content,
            [
                Segment::Mention {
                    user: "RobotA".into()
                },
                Segment::Text {
                    text: "hello robot".into()
                }
            ]
        );
        assert_eq!(event.text().as_deref(), Some("hello robot"));
        assert_eq!(
            event.idempotency_key,
            "wecom_aibot:bot:msg:CAIQ16HMjQYY/NGagIOAgAMgq4KM0AI="
        );
        assert_eq!(
            event.platform_message_id.as_deref(),
            Some(incoming.msgid.as_str())
        );
        // The capability stays out of what is stored and sent to webhooks; the rest,
        // the quote included, stays.
        assert!(event.raw.get("response_url").is_none());
        assert_eq!(event.raw["quote"]["text"]["content"], "这是今日的测试情况");
        // The same msgid (WeCom's retry) is the same event.
        assert_eq!(message(TEXT).event.id, event.id);
    }

    #[test]
    fn single_chat_images_voice_and_mixed_messages() {
        let image = message(IMAGE);
        assert_eq!(image.conversation(), "USERID");
        assert_eq!(
            image.event.conversation.as_ref().map(|c| c.kind),
            Some(ConversationKind::Private)
        );
        assert!(matches!(
            &image.event.content[..],
            [Segment::Image { url: Some(url), .. }] if url.starts_with("https://ww-aibot-img") && !url.ends_with(' ')
        ));
        let voice = message(VOICE);
        assert_eq!(
            voice.event.text().as_deref(),
            Some("这是语音转成文本的内容")
        );
        let mixed = message(MIXED);
        assert_eq!(
            mixed.event.content,
            [
                Segment::Mention {
                    user: "机器人".into()
                },
                Segment::Text {
                    text: "这是今日的测试情况".into()
                },
                Segment::Image {
                    url: Some("URL".into()),
                    path: None
                }
            ]
        );
        // `mixed` as a JSON string reads the same.
        let mut value: Value = serde_json::from_str(MIXED).expect("json");
        value["mixed"] = Value::String(value["mixed"].to_string());
        let Callback::Message(again) = parse(&value, "bot").expect("parsed") else {
            panic!("not a message");
        };
        assert_eq!(again.event.content, mixed.event.content);
        // A single chat's "@" is what was said, not a mention of the bot; a type not
        // known here is still a message someone waits on.
        let mut value: Value = serde_json::from_str(IMAGE).expect("json");
        value["msgtype"] = "text".into();
        value["text"] = serde_json::json!({"content": "@all 你好"});
        let Callback::Message(single) = parse(&value, "bot").expect("parsed") else {
            panic!("not a message");
        };
        assert_eq!(single.event.text().as_deref(), Some("@all 你好"));
        value["msgtype"] = "video".into();
        let Callback::Message(video) = parse(&value, "bot").expect("parsed") else {
            panic!("not a message");
        };
        assert_eq!(video.event.content, [Segment::Unknown]);
    }

    #[test]
    fn refreshes_entering_and_card_events() {
        assert_eq!(
            parsed(REFRESH),
            Callback::Refresh {
                stream: "STREAMID".into()
            }
        );
        let Callback::Entered(entered) = parsed(ENTER) else {
            panic!("not enter_chat");
        };
        assert_eq!(entered.event.event_type, CHAT_ENTERED);
        assert_eq!(entered.conversation(), "USERID");
        assert_eq!(entered.event.timestamp, "2023-11-14T22:13:20.000Z");
        assert_eq!(entered.response_url, None);
        assert_eq!(entered.event.platform_message_id, None);
        let Callback::CardClicked(card) = parsed(CARD) else {
            panic!("not a card event");
        };
        assert_eq!(card.event.event_type, CARD_CLICKED);
        assert_eq!(card.conversation(), "CHATID");
        assert_eq!(card.event.text().as_deref(), Some("button_replace_text"));
        assert_eq!(card.response_url.as_deref(), Some("RESPONSEURL"));
        assert!(matches!(parsed(FEEDBACK), Callback::Other(why) if why.contains("feedback_event")));
        let value: Value = serde_json::from_str(TEXT).expect("json");
        assert_eq!(aibot_id(&value), Some("AIBOTID"));
    }

    #[test]
    fn malformed_callbacks_are_errors() {
        for (json, why) in [
            (r#"{"msgtype":"stream","stream":{}}"#, "stream.id"),
            (r#"{"msgtype":"event"}"#, "without event"),
            (r#"{"msgid":"1"}"#, "no msgtype"),
            (
                r#"{"msgtype":"text","from":{"userid":"u"},"text":{"content":"x"}}"#,
                "no msgid",
            ),
            (
                r#"{"msgid":"1","msgtype":"text","text":{"content":"x"}}"#,
                "no from.userid",
            ),
            (r#"{"msgid":1,"msgtype":"text"}"#, "decrypted JSON"),
        ] {
            let value: Value = serde_json::from_str(json).expect("json");
            let error = parse(&value, "bot").expect_err(json);
            assert!(error.contains(why), "{json}: {error}");
        }
    }

    /// No decrypted callback panics the reader.
    mod props {
        use proptest::prelude::*;

        use super::*;
        use crate::adapter::testing::props::{config, json, mutated};

        const POINTERS: &[&str] = &[
            "/msgid",
            "/chattype",
            "/chatid",
            "/from",
            "/from/userid",
            "/msgtype",
            "/text",
            "/text/content",
            "/mixed",
            "/mixed/msg_item",
            "/mixed/msg_item/0",
            "/mixed/msg_item/0/msgtype",
            "/mixed/msg_item/1/image",
            "/response_url",
            "/event",
            "/event/eventtype",
            "/event/template_card_event",
            "/create_time",
        ];

        const WORDS: &[&str] = &[
            "msgid",
            "aibotid",
            "chatid",
            "chattype",
            "single",
            "group",
            "from",
            "userid",
            "response_url",
            "msgtype",
            "text",
            "content",
            "image",
            "url",
            "mixed",
            "msg_item",
            "voice",
            "file",
            "stream",
            "id",
            "event",
            "eventtype",
            "enter_chat",
            "template_card_event",
            "event_key",
            "create_time",
            "@bot hi",
        ];

        /// What the properties change is read whole before: the changes reach deep.
        #[test]
        fn the_genuine_callbacks_are_read() {
            for body in [TEXT, MIXED, CARD] {
                let json: Value = serde_json::from_str(body).unwrap();
                assert!(!matches!(
                    parse(&json, "bot"),
                    Err(_) | Ok(Callback::Other(_))
                ));
            }
        }

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn any_decrypted_json_is_a_callback_or_an_error(body in json(WORDS)) {
                let _ = aibot_id(&body);
                let _ = parse(&body, "bot");
            }

            #[test]
            fn a_genuine_callback_with_any_field_changed_is_read_or_refused(
                text in mutated(serde_json::from_str(TEXT).unwrap(), POINTERS, WORDS),
                mixed in mutated(serde_json::from_str(MIXED).unwrap(), POINTERS, WORDS),
                card in mutated(serde_json::from_str(CARD).unwrap(), POINTERS, WORDS),
            ) {
                for body in [text, mixed, card] {
                    let _ = parse(&body, "bot");
                }
            }
        }
    }
}
