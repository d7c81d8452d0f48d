//! A robot message (机器人接收消息), as DingTalk posts it to an HTTP callback or pushes it
//! as the `data` of a Stream-mode CALLBACK frame: read into an event, the conversation an
//! answer goes to, and the `sessionWebhook` that answers it for a while.
//!
//! Sources: 机器人接收消息 (open.dingtalk.com/document/orgapp/receive-message) lists the
//! fields: `msgtype`, `text.content`, `msgId` (加密的消息ID), `createAt` (ms),
//! `conversationType` ("1" 单聊, "2" 群聊), `conversationId`, `conversationTitle`,
//! `senderId`, `senderStaffId` (present for members of the organisation), `senderNick`,
//! `isInAtList`, `atUsers`, `chatbotUserId`, `robotCode`, `sessionWebhook` and
//! `sessionWebhookExpiredTime` (ms). The official Stream SDKs read the same object:
//! open-dingtalk/dingtalk-stream-sdk-python `dingtalk_stream/chatbot.py` (`ChatbotMessage`:
//! `text` for `msgtype` text, `content.richText` — a list of `{text}` / `{downloadCode}`
//! items — for richText, `content.downloadCode` for picture) and
//! dingtalk-stream-sdk-go `chatbot/model.go` (`BotCallbackDataModel`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::event::{
    Conversation, ConversationKind, Event, Segment, Sender, event_id, now_rfc3339,
    rfc3339_since_epoch, types,
};

use super::PLATFORM;

/// What ends a mention in a DingTalk text (U+2005 FOUR-PER-EM SPACE): not in DingTalk's
/// documents, reported by open implementations that strip the robot's mention.
const MENTION_END: char = '\u{2005}';

/// Where an answer goes, written into the conversation id so that an action needs nothing
/// else: `group:<openConversationId>` (群聊; the robot API's `groupMessages/send`),
/// `user:<staffId>` (单聊 with a member of the organisation; `oToMessages/batchSend`), or
/// `single:<conversationId>` (单聊 with someone without a staff id, answerable only while
/// its `sessionWebhook` lasts).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Group(String),
    User(String),
    Single(String),
}

impl Target {
    pub fn parse(conversation: &str) -> Result<Target, String> {
        let (kind, id) = conversation.split_once(':').ok_or_else(|| {
            format!(
                "DingTalk conversation {conversation:?} is not group:ID, user:STAFF_ID or single:ID"
            )
        })?;
        if id.trim().is_empty() {
            return Err(format!(
                "DingTalk conversation {conversation:?} names no id"
            ));
        }
        let id = id.to_string();
        match kind {
            "group" => Ok(Target::Group(id)),
            "user" => Ok(Target::User(id)),
            "single" => Ok(Target::Single(id)),
            other => Err(format!(
                "DingTalk conversation kind {other:?} is not group, user or single"
            )),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Group(id) => write!(f, "group:{id}"),
            Target::User(id) => write!(f, "user:{id}"),
            Target::Single(id) => write!(f, "single:{id}"),
        }
    }
}

/// The conversation's reply address and until when DingTalk takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionWebhook {
    pub url: String,
    pub expires_at: SystemTime,
}

/// A robot message read: the event to route, where its answers go.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub target: Target,
    pub session: Option<SessionWebhook>,
    pub event: Event,
}

#[derive(Debug, Default, Deserialize)]
struct Text {
    #[serde(default)]
    content: Option<String>,
}

/// `content` of a richText (`richText`) or a file (`fileName`); a picture's carries only
/// a `downloadCode`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Content {
    #[serde(default)]
    rich_text: Vec<RichItem>,
    #[serde(default)]
    file_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RichItem {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    download_code: Option<String>,
}

/// DingTalk writes some numbers as strings (the SDKs' `int(value)`), some as numbers.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Number {
    Int(u64),
    Text(String),
}

impl Number {
    fn get(&self) -> Option<u64> {
        match self {
            Number::Int(n) => Some(*n),
            Number::Text(s) => s.trim().parse().ok(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RobotMessage {
    #[serde(default)]
    msg_id: Option<String>,
    #[serde(default)]
    msgtype: Option<String>,
    #[serde(default)]
    text: Option<Text>,
    #[serde(default)]
    content: Option<serde_json::Value>,
    #[serde(default)]
    conversation_type: Option<String>,
    #[serde(default)]
    conversation_id: Option<String>,
    #[serde(default)]
    conversation_title: Option<String>,
    #[serde(default)]
    sender_id: Option<String>,
    #[serde(default)]
    sender_staff_id: Option<String>,
    #[serde(default)]
    sender_nick: Option<String>,
    #[serde(default)]
    chatbot_user_id: Option<String>,
    #[serde(default)]
    is_in_at_list: Option<bool>,
    #[serde(default)]
    at_users: Vec<AtUser>,
    #[serde(default)]
    create_at: Option<Number>,
    #[serde(default)]
    session_webhook: Option<String>,
    #[serde(default)]
    session_webhook_expired_time: Option<Number>,
}

/// One of `atUsers`: who the message @-mentions, the robot included. A member of the
/// organisation has a `staffId` beside the `dingtalkId` (dingtalk-stream-sdk-python
/// `dingtalk_stream/chatbot.py`, `AtUser`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AtUser {
    #[serde(default)]
    dingtalk_id: Option<String>,
    #[serde(default)]
    staff_id: Option<String>,
}

impl AtUser {
    /// As a sender is named: the staff id where there is one, so that a mention and a
    /// message of the same member name the same user.
    fn user(&self) -> Option<String> {
        filled(&self.staff_id).or_else(|| filled(&self.dingtalk_id))
    }
}

fn filled(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

fn from_millis(millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis)
}

/// Reads a robot message (`data`, already verified or received over the app's own
/// connection). `source` is the adapter's name.
pub fn read(source: &str, data: &[u8]) -> Result<Incoming, String> {
    let raw: serde_json::Value =
        serde_json::from_slice(data).map_err(|e| format!("not JSON: {e}"))?;
    let message =
        RobotMessage::deserialize(&raw).map_err(|e| format!("not a robot message: {e}"))?;
    let msg_id = filled(&message.msg_id).ok_or("a robot message without msgId")?;
    let conversation_id =
        filled(&message.conversation_id).ok_or("a robot message without conversationId")?;
    let group = match message.conversation_type.as_deref().map(str::trim) {
        Some("2") => true,
        Some("1") => false,
        other => {
            return Err(format!(
                "conversationType {other:?} is neither \"1\" (single) nor \"2\" (group)"
            ));
        }
    };
    let staff_id = filled(&message.sender_staff_id);
    let target = if group {
        Target::Group(conversation_id)
    } else if let Some(staff) = &staff_id {
        Target::User(staff.clone())
    } else {
        Target::Single(conversation_id)
    };
    let sender_id = staff_id
        .clone()
        .or_else(|| filled(&message.sender_id))
        .ok_or("a robot message without senderStaffId or senderId")?;

    let content = segments(&message, group);
    let sent_at = message
        .create_at
        .as_ref()
        .and_then(Number::get)
        .map(from_millis);
    let session = filled(&message.session_webhook).and_then(|url| {
        let expires_at = message
            .session_webhook_expired_time
            .as_ref()
            .and_then(Number::get)
            .map(from_millis)?;
        Some(SessionWebhook { url, expires_at })
    });
    // The robot is never sent its own messages, but a sender that is the robot must not
    // be answered: two robots could talk forever.
    let is_self = message
        .sender_id
        .as_deref()
        .zip(message.chatbot_user_id.as_deref())
        .is_some_and(|(sender, bot)| !bot.is_empty() && sender == bot);
    let key = format!("dingtalk:{source}:msg:{msg_id}");
    let event = Event {
        id: event_id(&key),
        event_type: types::MESSAGE_RECEIVED.into(),
        source: source.into(),
        platform: PLATFORM.into(),
        idempotency_key: key,
        conversation: Some(Conversation {
            id: target.to_string(),
            title: filled(&message.conversation_title),
            kind: if group {
                ConversationKind::Group
            } else {
                ConversationKind::Private
            },
        }),
        sender: Some(Sender {
            id: sender_id,
            display_name: filled(&message.sender_nick),
            is_self,
        }),
        content,
        platform_message_id: Some(msg_id),
        timestamp: sent_at
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .and_then(rfc3339_since_epoch)
            .unwrap_or_else(now_rfc3339),
        raw,
    };
    Ok(Incoming {
        target,
        session,
        event,
    })
}

/// The message's content: text, rich text (its text items joined, its pictures as
/// images), a picture, a file; anything else is of unknown content. A picture's
/// `downloadCode` needs the robot API to become a URL, so it is shown as an image
/// without one.
fn segments(message: &RobotMessage, group: bool) -> Vec<Segment> {
    let content: Content = message
        .content
        .as_ref()
        .and_then(|c| Content::deserialize(c).ok())
        .unwrap_or_default();
    let mut segments = Vec::new();
    let mut push_text = |text: &str| {
        let text = if group && message.is_in_at_list == Some(true) && segments.is_empty() {
            strip_leading_mention(text)
        } else {
            text
        };
        let text = text.trim();
        if !text.is_empty() {
            segments.push(Segment::Text {
                text: text.to_string(),
            });
        }
    };
    match message.msgtype.as_deref().unwrap_or("text") {
        "text" => {
            if let Some(text) = message.text.as_ref().and_then(|t| t.content.as_deref()) {
                push_text(text);
            }
        }
        "richText" => {
            let text: String = content
                .rich_text
                .iter()
                .filter_map(|item| item.text.as_deref())
                .collect();
            push_text(&text);
            let pictures = content
                .rich_text
                .iter()
                .filter(|item| item.download_code.is_some())
                .count();
            segments.extend((0..pictures).map(|_| Segment::Image {
                url: None,
                path: None,
            }));
        }
        "picture" => segments.push(Segment::Image {
            url: None,
            path: None,
        }),
        "file" => segments.push(Segment::File {
            name: content.file_name.filter(|n| !n.is_empty()),
            path: None,
        }),
        _ => {}
    }
    if segments.is_empty() {
        segments.push(Segment::Unknown);
    }
    // Mentions as every adapter gives them: segments after the content. The robot's own
    // is cut from the text above but kept here, as Feishu's is.
    segments.extend(
        message
            .at_users
            .iter()
            .filter_map(AtUser::user)
            .map(|user| Segment::Mention { user }),
    );
    segments
}

/// The text without the mention it starts with, when it starts with one: the @ that
/// addressed the robot in a group. receive-message's own example shows DingTalk removing
/// the robot's mention and leaving its space (`" 你好"`); other clients deliver it as
/// `@Name` + U+2005, and then it is cut here. A text that merely starts with `@` (no
/// U+2005 within the first word) is the sender's and stays.
fn strip_leading_mention(text: &str) -> &str {
    let rest = text.trim_start();
    let Some(after_at) = rest.strip_prefix('@') else {
        return text;
    };
    match after_at.find(MENTION_END) {
        Some(end) if !after_at[..end].contains(char::is_whitespace) => {
            &after_at[end + MENTION_END.len_utf8()..]
        }
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The robot message of dingtalk-stream-sdk-nodejs `src/client.ts`'s recorded CALLBACK
    /// frame (a group, `" ss"`), as its `data` carries it.
    const SDK_GROUP_MESSAGE: &str = r#"{"conversationId":"cidFbEwwavwcAsXDZbYqSBLnA==","atUsers":[{"dingtalkId":"$:LWCP_v1:$25jBd/IW606RTMrGnMs9AuLMeuAztDrv"}],"chatbotCorpId":"ding9f50b15bccd16741","chatbotUserId":"$:LWCP_v1:$25jBd/IW606RTMrGnMs9AuLMeuAztDrv","msgId":"msgqEufncv9gVqy7ia60LYs3w==","senderNick":"骏隆（主用钉）","isAdmin":true,"senderStaffId":"01426861-1254332033","sessionWebhookExpiredTime":1683363692884,"createAt":1683362491872,"senderCorpId":"ding9f50b15bccd16741","conversationType":"2","senderId":"$:LWCP_v1:$+PxJZVhRkpC139mPH6L7aw==","conversationTitle":"机器人长链接事件测试群","isInAtList":true,"sessionWebhook":"https://oapi.dingtalk.com/robot/sendBySession?session=2664f1467475bd90fcba36234c735997","text":{"content":" ss"},"robotCode":"dingphtembyvlbeq2y4d","msgtype":"text"}"#;

    #[test]
    fn a_group_message_is_keyed_by_msg_id_and_keeps_its_session_webhook() {
        let incoming = read("ding", SDK_GROUP_MESSAGE.as_bytes()).expect("read");
        assert_eq!(
            incoming.target,
            Target::Group("cidFbEwwavwcAsXDZbYqSBLnA==".into())
        );
        assert_eq!(
            incoming.session,
            Some(SessionWebhook {
                url: "https://oapi.dingtalk.com/robot/sendBySession?session=2664f1467475bd90fcba36234c735997".into(),
                expires_at: from_millis(1_683_363_692_884),
            })
        );
        let event = incoming.event;
        assert_eq!(event.event_type, types::MESSAGE_RECEIVED);
        assert_eq!(event.platform, "dingtalk");
        assert_eq!(event.text().as_deref(), Some("ss"));
        assert_eq!(
            event.idempotency_key,
            "dingtalk:ding:msg:msgqEufncv9gVqy7ia60LYs3w=="
        );
        let conversation = event.conversation.expect("conversation");
        assert_eq!(conversation.id, "group:cidFbEwwavwcAsXDZbYqSBLnA==");
        assert_eq!(conversation.kind, ConversationKind::Group);
        assert_eq!(
            conversation.title.as_deref(),
            Some("机器人长链接事件测试群")
        );
        let sender = event.sender.expect("sender");
        assert_eq!(sender.id, "01426861-1254332033");
        assert_eq!(sender.display_name.as_deref(), Some("骏隆（主用钉）"));
        assert!(!sender.is_self);
        assert_eq!(event.timestamp, "2023-05-06T08:41:31.872Z");
        assert_eq!(event.raw["robotCode"], "dingphtembyvlbeq2y4d");
    }

    #[test]
    fn a_single_chat_goes_to_the_staff_id_or_only_to_its_webhook() {
        let mut message: serde_json::Value = serde_json::from_str(SDK_GROUP_MESSAGE).expect("json");
        message["conversationType"] = "1".into();
        message["text"]["content"] = "@值班 今天".into();
        let incoming = read("ding", message.to_string().as_bytes()).expect("read");
        assert_eq!(incoming.target, Target::User("01426861-1254332033".into()));
        assert_eq!(
            incoming.event.conversation.as_ref().map(|c| c.kind),
            Some(ConversationKind::Private)
        );
        // No mention is cut outside groups.
        assert_eq!(incoming.event.text().as_deref(), Some("@值班 今天"));
        // Someone outside the organisation has no staff id: the webhook only.
        message
            .as_object_mut()
            .expect("object")
            .remove("senderStaffId");
        let incoming = read("ding", message.to_string().as_bytes()).expect("read");
        assert_eq!(
            incoming.target,
            Target::Single("cidFbEwwavwcAsXDZbYqSBLnA==".into())
        );
        assert_eq!(
            incoming.event.sender.map(|s| s.id).as_deref(),
            Some("$:LWCP_v1:$+PxJZVhRkpC139mPH6L7aw==")
        );
    }

    #[test]
    fn the_mention_that_addressed_the_robot_is_cut_in_groups() {
        let mut message: serde_json::Value = serde_json::from_str(SDK_GROUP_MESSAGE).expect("json");
        message["text"]["content"] = "@值班机器人\u{2005}今天谁值班？".into();
        let incoming = read("ding", message.to_string().as_bytes()).expect("read");
        assert_eq!(incoming.event.text().as_deref(), Some("今天谁值班？"));
        // Only the first; a later mention is the sender's words.
        message["text"]["content"] = "@机器人\u{2005}@李娜\u{2005}值班".into();
        let incoming = read("ding", message.to_string().as_bytes()).expect("read");
        assert_eq!(incoming.event.text().as_deref(), Some("@李娜\u{2005}值班"));
        // Text that starts with @ but is no mention stays.
        assert_eq!(strip_leading_mention("@all 开会"), "@all 开会");
        assert_eq!(strip_leading_mention(" 你好"), " 你好");
        // Each @ is a mention segment, named as senders are: the staff id if any.
        message["atUsers"] = serde_json::json!([
            {"dingtalkId": "$:LWCP_v1:$bot"},
            {"dingtalkId": "$:LWCP_v1:$lina", "staffId": "lina01"},
        ]);
        let incoming = read("ding", message.to_string().as_bytes()).expect("read");
        assert_eq!(
            incoming.event.content[1..],
            [
                Segment::Mention {
                    user: "$:LWCP_v1:$bot".into()
                },
                Segment::Mention {
                    user: "lina01".into()
                },
            ]
        );
        // Not mentioned (isInAtList false): nothing is cut.
        message["isInAtList"] = false.into();
        message["text"]["content"] = "@李娜\u{2005}值班".into();
        let incoming = read("ding", message.to_string().as_bytes()).expect("read");
        assert_eq!(incoming.event.text().as_deref(), Some("@李娜\u{2005}值班"));
    }

    #[test]
    fn rich_text_pictures_and_files_are_read() {
        let mut base: serde_json::Value = serde_json::from_str(SDK_GROUP_MESSAGE).expect("json");
        // The content alone; mentions have their own test.
        base.as_object_mut().expect("object").remove("atUsers");
        let with = |msgtype: &str, content: serde_json::Value| {
            let mut m = base.clone();
            m["msgtype"] = msgtype.into();
            m.as_object_mut().expect("object").remove("text");
            m["content"] = content;
            read("ding", m.to_string().as_bytes()).expect("read").event
        };
        let rich = with(
            "richText",
            serde_json::json!({"richText": [{"text": "看图"}, {"downloadCode": "dc1", "type": "picture"}, {"text": "\n谢谢"}]}),
        );
        assert_eq!(
            rich.content,
            vec![
                Segment::Text {
                    text: "看图\n谢谢".into()
                },
                Segment::Image {
                    url: None,
                    path: None
                }
            ]
        );
        let picture = with(
            "picture",
            serde_json::json!({"downloadCode": "dc2", "pictureDownloadCode": "p"}),
        );
        assert_eq!(
            picture.content,
            vec![Segment::Image {
                url: None,
                path: None
            }]
        );
        let file = with(
            "file",
            serde_json::json!({"downloadCode": "dc3", "fileName": "周报.docx"}),
        );
        assert_eq!(
            file.content,
            vec![Segment::File {
                name: Some("周报.docx".into()),
                path: None
            }]
        );
        let audio = with("audio", serde_json::json!({"recognition": "你好"}));
        assert_eq!(audio.content, vec![Segment::Unknown]);
    }

    #[test]
    fn broken_messages_are_errors_and_numbers_may_be_strings() {
        let base: serde_json::Value = serde_json::from_str(SDK_GROUP_MESSAGE).expect("json");
        for field in ["msgId", "conversationId", "conversationType"] {
            let mut m = base.clone();
            m.as_object_mut().expect("object").remove(field);
            assert!(read("ding", m.to_string().as_bytes()).is_err(), "{field}");
        }
        let mut m = base.clone();
        m["conversationType"] = "3".into();
        assert!(read("ding", m.to_string().as_bytes()).is_err());
        let mut m = base.clone();
        m.as_object_mut().expect("object").remove("senderStaffId");
        m.as_object_mut().expect("object").remove("senderId");
        assert!(read("ding", m.to_string().as_bytes()).is_err());
        assert!(read("ding", b"[1,2]").is_err());
        assert!(read("ding", b"{").is_err());
        // The Python SDK reads sessionWebhookExpiredTime with int(): strings happen.
        let mut m = base.clone();
        m["sessionWebhookExpiredTime"] = "1683363692884".into();
        m["createAt"] = "1683362491872".into();
        let incoming = read("ding", m.to_string().as_bytes()).expect("read");
        assert_eq!(
            incoming.session.map(|s| s.expires_at),
            Some(from_millis(1_683_363_692_884))
        );
        // A webhook without its expiry is not kept: when to stop using it is unknown.
        let mut m = base;
        m.as_object_mut()
            .expect("object")
            .remove("sessionWebhookExpiredTime");
        let incoming = read("ding", m.to_string().as_bytes()).expect("read");
        assert_eq!(incoming.session, None);
        // The robot itself as sender.
        let mut m: serde_json::Value = serde_json::from_str(SDK_GROUP_MESSAGE).expect("json");
        m["senderId"] = m["chatbotUserId"].clone();
        let incoming = read("ding", m.to_string().as_bytes()).expect("read");
        assert!(incoming.event.sender.expect("sender").is_self);
    }

    #[test]
    fn conversation_ids_round_trip_and_others_are_refused() {
        for text in ["group:cid1==", "user:0142", "single:cid2"] {
            assert_eq!(Target::parse(text).expect(text).to_string(), text);
        }
        assert!(Target::parse("cid1").is_err());
        assert!(Target::parse("chat:1").is_err());
        assert!(Target::parse("group: ").is_err());
    }

    /// No body panics the reader of robot messages.
    mod props {
        use proptest::prelude::*;

        use super::*;
        use crate::adapter::testing::props::{config, json, mutated};

        const POINTERS: &[&str] = &[
            "/conversationId",
            "/conversationType",
            "/conversationTitle",
            "/chatbotUserId",
            "/msgId",
            "/senderNick",
            "/senderStaffId",
            "/senderId",
            "/isInAtList",
            "/createAt",
            "/sessionWebhook",
            "/sessionWebhookExpiredTime",
            "/text",
            "/text/content",
            "/msgtype",
            "/robotCode",
            "/atUsers",
            "/atUsers/0",
        ];

        const WORDS: &[&str] = &[
            "conversationId",
            "conversationType",
            "1",
            "2",
            "conversationTitle",
            "chatbotUserId",
            "msgId",
            "senderNick",
            "senderStaffId",
            "senderId",
            "isInAtList",
            "createAt",
            "sessionWebhook",
            "sessionWebhookExpiredTime",
            "text",
            "content",
            "msgtype",
            "richText",
            "picture",
            "file",
            "downloadCode",
            "fileName",
            "robotCode",
            "atUsers",
            "dingtalkId",
            "https://oapi.dingtalk.com/robot/sendBySession",
        ];

        /// What the properties change is read whole before: the changes reach deep.
        #[test]
        fn the_genuine_message_is_read() {
            assert!(read("ding", SDK_GROUP_MESSAGE.as_bytes()).is_ok());
        }

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn any_body_is_a_robot_message_or_an_error(
                bytes in proptest::collection::vec(any::<u8>(), 0..300),
                body in json(WORDS),
                conversation in any::<String>(),
            ) {
                let _ = read("ding", &bytes);
                let _ = read("ding", body.to_string().as_bytes());
                let _ = Target::parse(&conversation);
            }

            #[test]
            fn a_genuine_message_with_any_field_changed_is_read_or_refused(
                body in mutated(serde_json::from_str(SDK_GROUP_MESSAGE).unwrap(), POINTERS, WORDS),
            ) {
                let _ = read("ding", body.to_string().as_bytes());
            }
        }
    }
}
