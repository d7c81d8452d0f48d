//! What QQ posts, read into events: the envelope every callback shares, the op 13
//! validation request, and the four kinds of message a bot is sent.
//!
//! Sources (bot-docs `docs/develop/api-v2/`): `dev-prepare/interface-framework/event-emit.md`
//! (the payload `{id, op, d, s, t}`; op 0 Dispatch, 12 HTTP Callback ACK, 13 回调地址验证 with
//! `d = {plain_token, event_ts}`), `server-inter/message/send-receive/event.md` (the events
//! `C2C_MESSAGE_CREATE` with `author.user_openid`, `GROUP_AT_MESSAGE_CREATE` with
//! `group_openid` and `author.member_openid`, `AT_MESSAGE_CREATE`/`MESSAGE_CREATE` and
//! `DIRECT_MESSAGE_CREATE` carrying a Message with `channel_id`, `guild_id`, `author.id`;
//! `d.id` is the message id a passive reply names, and "相同的 msg_id 的消息会有概率重复推送",
//! so it keys the event) and `server-inter/message/message_format.md` (guild text comes with
//! `<@!id>` mention tags and `&`, `<`, `>` escaped).

use std::time::{Duration, SystemTime};

use serde::Deserialize;

use crate::event::{
    Conversation, ConversationKind, Event, Segment, Sender, event_id, now_rfc3339, types,
};

use super::PLATFORM;

pub const OP_DISPATCH: u64 = 0;
/// botgo `interaction/webhook/webhook.go` answers a heartbeat on the webhook too.
pub const OP_HEARTBEAT: u64 = 1;
pub const OP_HEARTBEAT_ACK: u64 = 11;
pub const OP_CALLBACK_ACK: u64 = 12;
pub const OP_VALIDATION: u64 = 13;

/// The envelope of every callback (event-emit.md, 通用数据结构 Payload).
#[derive(Debug, Clone, Deserialize)]
pub struct Payload {
    #[serde(default)]
    pub id: Option<String>,
    pub op: u64,
    #[serde(default)]
    pub d: serde_json::Value,
    #[serde(default)]
    pub s: Option<u64>,
    #[serde(default)]
    pub t: Option<String>,
}

/// op 13's `d` (event-emit.md, 回调地址验证).
#[derive(Debug, Clone, Deserialize)]
pub struct Validation {
    pub plain_token: String,
    pub event_ts: String,
}

/// Where a message came from, which decides where its answer goes and how long QQ takes
/// a reply to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A QQ group where the bot was @-mentioned.
    Group,
    /// A private chat with the bot.
    C2c,
    /// A guild's text channel (文字子频道).
    Channel,
    /// A guild direct message (频道私信), answered through its own `guild_id`.
    Dm,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Group => "group",
            Kind::C2c => "c2c",
            Kind::Channel => "channel",
            Kind::Dm => "dm",
        }
    }

    /// send-receive/send.md: a passive reply is taken within 60 minutes in a private
    /// chat, 5 minutes in a group, a channel or a guild DM.
    pub fn reply_window(self) -> Duration {
        match self {
            Kind::C2c => Duration::from_secs(60 * 60),
            Kind::Group | Kind::Channel | Kind::Dm => Duration::from_secs(5 * 60),
        }
    }

    /// send.md: at most 5 replies to one message, in private chats and groups; the guild
    /// pages name no such limit.
    pub fn max_replies(self) -> Option<u32> {
        match self {
            Kind::Group | Kind::C2c => Some(5),
            Kind::Channel | Kind::Dm => None,
        }
    }
}

/// A conversation id as the adapter writes it: the kind, then the id QQ's send API
/// takes (`group:<group_openid>`, `c2c:<user_openid>`, `channel:<channel_id>`,
/// `dm:<guild_id>`), so an answer knows its endpoint from the conversation alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub kind: Kind,
    pub id: String,
}

impl Target {
    pub fn parse(conversation: &str) -> Result<Target, String> {
        let (prefix, id) = conversation.split_once(':').ok_or_else(|| {
            format!("QQ conversation {conversation:?} is not group:ID, c2c:ID, channel:ID or dm:ID")
        })?;
        let kind = match prefix {
            "group" => Kind::Group,
            "c2c" => Kind::C2c,
            "channel" => Kind::Channel,
            "dm" => Kind::Dm,
            other => {
                return Err(format!(
                    "QQ conversation kind {other:?} is not group, c2c, channel or dm"
                ));
            }
        };
        if id.trim().is_empty() {
            return Err(format!("QQ conversation {conversation:?} names no id"));
        }
        Ok(Target {
            kind,
            id: id.to_string(),
        })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind.prefix(), self.id)
    }
}

/// A message event, with what its reply needs.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub target: Target,
    /// `d.id`: the message a passive reply names as `msg_id`.
    pub msg_id: String,
    /// When the sender sent it (`d.timestamp`), if QQ said.
    pub sent_at: Option<SystemTime>,
    pub event: Event,
}

#[derive(Debug, Default, Deserialize)]
struct Author {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    user_openid: Option<String>,
    #[serde(default)]
    member_openid: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    bot: bool,
}

#[derive(Debug, Deserialize)]
struct Attachment {
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    filename: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

/// The fields of `d` a message event may carry (event.md; template/model.md Message).
#[derive(Debug, Deserialize)]
struct MessageData {
    id: String,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    timestamp: Option<serde_json::Value>,
    #[serde(default)]
    author: Author,
    #[serde(default)]
    group_openid: Option<String>,
    #[serde(default)]
    channel_id: Option<String>,
    #[serde(default)]
    guild_id: Option<String>,
    #[serde(default)]
    attachments: Vec<Attachment>,
    /// Who a guild message @-mentions, the bot included (template/model.md Message
    /// `mentions: User[]`; botpy `botpy/message.py` reads `mentions` the same way).
    #[serde(default)]
    mentions: Vec<Mentioned>,
}

#[derive(Debug, Deserialize)]
struct Mentioned {
    #[serde(default)]
    id: Option<String>,
}

/// The message event a dispatch carries, `None` for an event type not routed (a friend
/// added, a bot joining a group), an error for a message without what it must have.
pub fn message(source: &str, payload: &Payload) -> Result<Option<Incoming>, String> {
    let Some(event_type) = payload.t.as_deref() else {
        return Err("a dispatch (op 0) without t".into());
    };
    let kind = match event_type {
        "GROUP_AT_MESSAGE_CREATE" => Kind::Group,
        "C2C_MESSAGE_CREATE" => Kind::C2c,
        "AT_MESSAGE_CREATE" | "MESSAGE_CREATE" => Kind::Channel,
        "DIRECT_MESSAGE_CREATE" => Kind::Dm,
        _ => return Ok(None),
    };
    let data = MessageData::deserialize(&payload.d)
        .map_err(|e| format!("{event_type}: d is not a message: {e}"))?;
    if data.id.trim().is_empty() {
        return Err(format!("{event_type}: the message has no id"));
    }
    let need = |value: &Option<String>, what: &str| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .ok_or_else(|| format!("{event_type}: no {what}"))
    };
    let author = &data.author;
    // (conversation id, sender id): group members are known by an openid of that group
    // only, private users by theirs; guild users by their user id.
    let (conversation_id, sender_id) = match kind {
        Kind::Group => (
            need(&data.group_openid, "group_openid")?,
            need(&author.member_openid, "author.member_openid")?,
        ),
        Kind::C2c => {
            let user = need(&author.user_openid, "author.user_openid")?;
            (user.clone(), user)
        }
        Kind::Channel => (
            need(&data.channel_id, "channel_id")?,
            need(&author.id, "author.id")?,
        ),
        Kind::Dm => (
            need(&data.guild_id, "guild_id")?,
            need(&author.id, "author.id")?,
        ),
    };
    let target = Target {
        kind,
        id: conversation_id,
    };
    let raw_text = data.content.as_deref().unwrap_or_default();
    let mut text = strip_leading_mentions(raw_text).trim().to_string();
    if matches!(kind, Kind::Channel | Kind::Dm) {
        text = unescape_guild(&text);
    }
    let mut content = Vec::new();
    if !text.is_empty() {
        content.push(Segment::Text { text });
    }
    for attachment in &data.attachments {
        let is_image = attachment
            .content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("image/"));
        content.push(if is_image {
            Segment::Image {
                url: attachment.url.clone().filter(|u| !u.is_empty()),
                path: None,
            }
        } else {
            Segment::File {
                name: attachment.filename.clone().filter(|n| !n.is_empty()),
                path: None,
            }
        });
    }
    if content.is_empty() {
        content.push(Segment::Unknown);
    }
    // Mentions as every adapter gives them: segments after the content, though the
    // leading tags were cut from the text.
    content.extend(
        data.mentions
            .iter()
            .filter_map(|m| m.id.as_deref().map(str::trim))
            .filter(|id| !id.is_empty())
            .map(|id| Segment::Mention {
                user: id.to_string(),
            }),
    );
    let sent_at = data
        .timestamp
        .as_ref()
        .and_then(|t| t.as_str())
        .and_then(parse_rfc3339);
    let timestamp = sent_at
        .map(|t| humantime::format_rfc3339_millis(t).to_string())
        .unwrap_or_else(now_rfc3339);
    // The message id, not the envelope's event id: a redelivered message is the same
    // event, and one message that arrives both as AT_MESSAGE_CREATE and MESSAGE_CREATE
    // (a private bot subscribed to both) is answered once.
    let key = format!("qq:{source}:msg:{}", data.id);
    let event = Event {
        id: event_id(&key),
        event_type: types::MESSAGE_RECEIVED.into(),
        source: source.into(),
        platform: PLATFORM.into(),
        idempotency_key: key,
        conversation: Some(Conversation {
            id: target.to_string(),
            title: None,
            kind: match kind {
                Kind::Group | Kind::Channel => ConversationKind::Group,
                Kind::C2c | Kind::Dm => ConversationKind::Private,
            },
        }),
        sender: Some(Sender {
            id: sender_id,
            display_name: author.username.clone().filter(|n| !n.is_empty()),
            // A guild channel shows other bots' messages too (and, to a private bot
            // reading all of it, its own): answering a bot risks two bots talking forever.
            is_self: author.bot,
        }),
        content,
        platform_message_id: Some(data.id.clone()),
        timestamp,
        raw: serde_json::json!({
            "id": payload.id,
            "op": payload.op,
            "t": event_type,
            "d": payload.d,
        }),
    };
    Ok(Some(Incoming {
        target,
        msg_id: data.id,
        sent_at,
        event,
    }))
}

/// The text without the `<@!id>` / `<@id>` tags it starts with: the @ that addressed the
/// bot (message_format.md). Mentions later in the text are the sender's words and stay.
fn strip_leading_mentions(text: &str) -> &str {
    let mut rest = text.trim_start();
    loop {
        let Some(tag) = rest.strip_prefix("<@") else {
            return rest;
        };
        let tag = tag.strip_prefix('!').unwrap_or(tag);
        let Some(end) = tag.find('>') else {
            return rest;
        };
        if end == 0 || !tag[..end].chars().all(|c| c.is_ascii_alphanumeric()) {
            return rest;
        }
        rest = tag[end + 1..].trim_start();
    }
}

/// message_format.md 转义内容: guild text comes with `&`, `<` and `>` escaped.
fn unescape_guild(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// QQ writes times as RFC 3339 with an offset (`2023-11-06T13:37:18+08:00`).
fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let parsed = chrono::DateTime::parse_from_rfc3339(text.trim()).ok()?;
    let seconds = u64::try_from(parsed.timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::new(seconds, parsed.timestamp_subsec_nanos()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dispatch(t: &str, d: serde_json::Value) -> Payload {
        serde_json::from_value(
            serde_json::json!({"id": format!("{t}:e1"), "op": 0, "t": t, "d": d}),
        )
        .expect("payload")
    }

    #[test]
    fn a_group_at_message_is_a_group_conversation_keyed_by_its_message_id() {
        // event.md's example, as the webhook delivers it.
        let payload = dispatch(
            "GROUP_AT_MESSAGE_CREATE",
            serde_json::json!({
                "author": {"member_openid": "E4F4AEA33253A2797FB897C50B81D7ED"},
                "content": " 123",
                "group_openid": "C9F778FE6ADF9D1D1DBE395BF744A33A",
                "id": "ROBOT1.0_eBIyWnxpmSu6uLQ7u7fU0eGloKGYg4eEa737vRyKnMCgyZjKi7JLYkQ9B0VapbiY",
                "timestamp": "2023-11-06T13:37:18+08:00"
            }),
        );
        let incoming = message("qq", &payload).expect("ok").expect("a message");
        assert_eq!(incoming.target.kind, Kind::Group);
        assert_eq!(
            incoming.target.to_string(),
            "group:C9F778FE6ADF9D1D1DBE395BF744A33A"
        );
        let event = &incoming.event;
        assert_eq!(event.event_type, types::MESSAGE_RECEIVED);
        assert_eq!(event.platform, "qq");
        assert_eq!(event.text().as_deref(), Some("123"));
        let conversation = event.conversation.as_ref().expect("conversation");
        assert_eq!(conversation.id, "group:C9F778FE6ADF9D1D1DBE395BF744A33A");
        assert_eq!(conversation.kind, ConversationKind::Group);
        assert_eq!(
            event.sender.as_ref().map(|s| s.id.as_str()),
            Some("E4F4AEA33253A2797FB897C50B81D7ED")
        );
        assert_eq!(
            event.idempotency_key,
            "qq:qq:msg:ROBOT1.0_eBIyWnxpmSu6uLQ7u7fU0eGloKGYg4eEa737vRyKnMCgyZjKi7JLYkQ9B0VapbiY"
        );
        assert_eq!(
            event.platform_message_id.as_deref(),
            Some(incoming.msg_id.as_str())
        );
        assert_eq!(event.timestamp, "2023-11-06T05:37:18.000Z");
        assert_eq!(
            incoming.sent_at,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_699_249_038))
        );
        assert_eq!(event.raw["t"], "GROUP_AT_MESSAGE_CREATE");
        // Redelivered under another envelope id: the same event.
        let mut again = payload.clone();
        again.id = Some("GROUP_AT_MESSAGE_CREATE:e2".into());
        let again = message("qq", &again).expect("ok").expect("a message");
        assert_eq!(again.event.id, event.id);
    }

    #[test]
    fn a_c2c_message_is_a_private_conversation_with_its_user() {
        // botgo's signed C2C body (interaction_test.go) and event.md's example.
        let payload = dispatch(
            "C2C_MESSAGE_CREATE",
            serde_json::json!({
                "author": {"user_openid": "E4F4AEA33253A2797FB897C50B81D7ED"},
                "content": "123",
                "id": "ROBOT1.0_.b6nx.CVryAO0nR58RXuU6SC.m92gc19j02qKqdm8ek!",
                "timestamp": "2023-11-06T13:37:18+08:00",
                "attachments": [
                    {"content_type": "image/png", "filename": "a.png", "url": "https://multimedia.nt.qq.com/a.png"},
                    {"content_type": "file", "filename": "周报.docx", "url": "https://x/f"}
                ]
            }),
        );
        let incoming = message("bot", &payload).expect("ok").expect("a message");
        assert_eq!(
            incoming.target,
            Target {
                kind: Kind::C2c,
                id: "E4F4AEA33253A2797FB897C50B81D7ED".into()
            }
        );
        let event = incoming.event;
        let conversation = event.conversation.expect("conversation");
        assert_eq!(conversation.id, "c2c:E4F4AEA33253A2797FB897C50B81D7ED");
        assert_eq!(conversation.kind, ConversationKind::Private);
        assert_eq!(
            event.content,
            vec![
                Segment::Text { text: "123".into() },
                Segment::Image {
                    url: Some("https://multimedia.nt.qq.com/a.png".into()),
                    path: None
                },
                Segment::File {
                    name: Some("周报.docx".into()),
                    path: None
                },
            ]
        );
        assert!(!event.sender.expect("sender").is_self);
    }

    #[test]
    fn guild_messages_lose_the_leading_mention_and_their_escapes() {
        let d = serde_json::json!({
            "author": {"avatar": "http://thirdqq.qlogo.cn/0", "bot": false, "id": "1234", "username": "abc"},
            "channel_id": "100010",
            "content": "<@!8888> <@9999>  a &lt;b&gt; &amp;amp; <@!1234>",
            "guild_id": "18700000000001",
            "id": "0812345677890abcdef",
            "member": {"joined_at": "2021-04-12T16:34:42+08:00", "roles": ["1"]},
            "mentions": [
                {"id": "8888", "username": "Tapwire", "bot": true},
                {"id": "9999", "username": "李娜", "bot": false},
                {"id": "1234", "username": "abc", "bot": false}
            ],
            "timestamp": "2021-05-20T15:14:58+08:00",
            "seq": 101
        });
        for t in ["AT_MESSAGE_CREATE", "MESSAGE_CREATE"] {
            let incoming = message("qq", &dispatch(t, d.clone()))
                .expect("ok")
                .expect("a message");
            assert_eq!(incoming.target.to_string(), "channel:100010");
            let event = incoming.event;
            assert_eq!(event.text().as_deref(), Some("a <b> &amp; <@!1234>"), "{t}");
            // Every mention a segment, those cut from the text included.
            let mentioned: Vec<&Segment> = event
                .content
                .iter()
                .filter(|s| matches!(s, Segment::Mention { .. }))
                .collect();
            assert_eq!(
                mentioned,
                ["8888", "9999", "1234"]
                    .map(|user| Segment::Mention { user: user.into() })
                    .iter()
                    .collect::<Vec<_>>(),
                "{t}"
            );
            let sender = event.sender.expect("sender");
            assert_eq!(sender.id, "1234");
            assert_eq!(sender.display_name.as_deref(), Some("abc"));
            assert_eq!(
                event.conversation.expect("conversation").kind,
                ConversationKind::Group
            );
            // One message under both types is one event.
            assert_eq!(event.idempotency_key, "qq:qq:msg:0812345677890abcdef");
        }
        let dm = message("qq", &dispatch("DIRECT_MESSAGE_CREATE", d.clone()))
            .expect("ok")
            .expect("a message");
        assert_eq!(dm.target.to_string(), "dm:18700000000001");
        let mut from_bot = d;
        from_bot["author"]["bot"] = serde_json::json!(true);
        let bot = message("qq", &dispatch("AT_MESSAGE_CREATE", from_bot))
            .expect("ok")
            .expect("a message");
        assert!(bot.event.sender.expect("sender").is_self);
    }

    #[test]
    fn other_events_are_not_messages_and_broken_messages_are_errors() {
        let friend = dispatch(
            "FRIEND_ADD",
            serde_json::json!({"openid": "x", "timestamp": 1}),
        );
        assert!(message("qq", &friend).expect("ok").is_none());
        let no_group = dispatch(
            "GROUP_AT_MESSAGE_CREATE",
            serde_json::json!({"id": "m", "content": "x", "author": {"member_openid": "u"}}),
        );
        assert!(
            message("qq", &no_group)
                .expect_err("no group")
                .contains("group_openid")
        );
        let no_id = dispatch("C2C_MESSAGE_CREATE", serde_json::json!({"content": "x"}));
        assert!(message("qq", &no_id).is_err());
        let blank_id = dispatch(
            "C2C_MESSAGE_CREATE",
            serde_json::json!({"id": " ", "author": {"user_openid": "u"}}),
        );
        assert!(message("qq", &blank_id).is_err());
        let mut untyped = friend;
        untyped.t = None;
        assert!(message("qq", &untyped).is_err());
        // An empty message is still one, of unknown content; a bad time is now.
        let empty = dispatch(
            "C2C_MESSAGE_CREATE",
            serde_json::json!({"id": "m", "author": {"user_openid": "u"}, "timestamp": "yesterday"}),
        );
        let empty = message("qq", &empty).expect("ok").expect("a message");
        assert_eq!(empty.event.content, vec![Segment::Unknown]);
        assert_eq!(empty.sent_at, None);
    }

    #[test]
    fn conversation_ids_round_trip_and_others_are_refused() {
        for text in ["group:G1", "c2c:U1", "channel:100010", "dm:187"] {
            assert_eq!(Target::parse(text).expect(text).to_string(), text);
        }
        assert!(Target::parse("G1").is_err());
        assert!(Target::parse("guild:1").is_err());
        assert!(Target::parse("group: ").is_err());
        assert_eq!(strip_leading_mentions("<@!> x"), "<@!> x");
        assert_eq!(strip_leading_mentions("<@!12 x"), "<@!12 x");
        assert_eq!(strip_leading_mentions("<@a-b> x"), "<@a-b> x");
    }

    /// No signed body panics the reader of QQ's events.
    mod props {
        use proptest::prelude::*;

        use super::*;
        use crate::adapter::testing::props::{config, json, mutated};

        const POINTERS: &[&str] = &[
            "/id",
            "/t",
            "/d",
            "/d/id",
            "/d/content",
            "/d/group_openid",
            "/d/author",
            "/d/author/member_openid",
            "/d/author/user_openid",
            "/d/timestamp",
            "/d/channel_id",
            "/d/guild_id",
            "/d/attachments",
            "/d/attachments/0",
        ];

        const WORDS: &[&str] = &[
            "id",
            "op",
            "d",
            "s",
            "t",
            "GROUP_AT_MESSAGE_CREATE",
            "C2C_MESSAGE_CREATE",
            "AT_MESSAGE_CREATE",
            "MESSAGE_CREATE",
            "DIRECT_MESSAGE_CREATE",
            "content",
            "group_openid",
            "author",
            "member_openid",
            "user_openid",
            "timestamp",
            "channel_id",
            "guild_id",
            "attachments",
            "url",
            "plain_token",
            "event_ts",
            "2026-11-30T10:00:00+08:00",
            "<@!1234>",
        ];

        fn group_event() -> serde_json::Value {
            serde_json::json!({
                "id": "GROUP_AT_MESSAGE_CREATE:m1", "op": 0, "t": "GROUP_AT_MESSAGE_CREATE",
                "d": {"id": "m1", "content": " 值班", "group_openid": "G1",
                      "author": {"member_openid": "M1"},
                      "timestamp": "2026-11-30T10:00:00+08:00",
                      "attachments": [{"content_type": "image/png", "url": "https://x/y.png"}]},
            })
        }

        fn channel_event() -> serde_json::Value {
            serde_json::json!({
                "id": "AT_MESSAGE_CREATE:c1", "op": 0, "t": "AT_MESSAGE_CREATE",
                "d": {"id": "c1", "content": "<@!1234> 值班", "channel_id": "100",
                      "guild_id": "200", "author": {"id": "u1", "username": "u"},
                      "timestamp": "2026-11-30T10:00:00+08:00"},
            })
        }

        /// What the properties change is read whole before: the changes reach deep.
        #[test]
        fn the_genuine_events_are_read() {
            for body in [group_event(), channel_event()] {
                let payload: Payload = serde_json::from_value(body).unwrap();
                assert!(matches!(message("qq", &payload), Ok(Some(_))));
            }
        }

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn any_payload_is_an_event_or_an_error(
                body in json(WORDS),
                op in proptest::sample::select(&[0u64, 1, 12, 13, 99][..]),
                conversation in any::<String>(),
            ) {
                let mut body = body;
                if let Some(fields) = body.as_object_mut() {
                    fields.insert("op".into(), op.into());
                }
                if let Ok(payload) = serde_json::from_value::<Payload>(body) {
                    let _ = message("qq", &payload);
                    let _ = Validation::deserialize(&payload.d);
                }
                let _ = Target::parse(&conversation);
            }

            #[test]
            fn a_genuine_event_with_any_field_changed_is_read_or_refused(
                group in mutated(group_event(), POINTERS, WORDS),
                channel in mutated(channel_event(), POINTERS, WORDS),
            ) {
                for body in [group, channel] {
                    if let Ok(payload) = serde_json::from_value::<Payload>(body) {
                        let _ = message("qq", &payload);
                    }
                }
            }
        }
    }
}
