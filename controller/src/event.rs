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
    /// A phone's screen is read another way (tree or screenshots) from now on, and why.
    pub const DEVICE_READER_CHANGED: &str = "device.reader_changed";
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
    /// `url` where the platform shows it; `path` once the adapter has downloaded it
    /// (a local file a handler can read, or hand on as an [`Attachment`]).
    Image {
        url: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
    },
    File {
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
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
            id: event_id(&idempotency_key),
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

    /// The images and files of the message that an adapter downloaded: what a forward
    /// can hand on. Media without a local copy (a phone's image bubble) cannot be.
    pub fn local_attachments(&self) -> Vec<Attachment> {
        self.content
            .iter()
            .filter_map(|segment| match segment {
                Segment::Image {
                    path: Some(path), ..
                } => Some(Attachment::Image {
                    source: path.clone(),
                }),
                Segment::File {
                    name,
                    path: Some(path),
                } => Some(Attachment::File {
                    source: path.clone(),
                    name: name.clone(),
                }),
                _ => None,
            })
            .collect()
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

/// Something sent beside an action's text, each as a message of its own after it. Its
/// JSON form names the kind: `{"kind": "image", "source": "/srv/chart.png"}`,
/// `{"kind": "file", "source": "https://…/report.pdf", "name": "周报.pdf"}`,
/// `{"kind": "news", "articles": [{"title": …, "url": …}]}`.
///
/// A `source` is an absolute local path or an http(s) URL; the adapter reads or fetches it
/// when it needs the bytes (size-limited, see `media`), and nothing else. `path` and `url`
/// are accepted for `source`, as a handler would naturally write them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Attachment {
    Image {
        #[serde(alias = "path", alias = "url")]
        source: String,
    },
    File {
        #[serde(alias = "path", alias = "url")]
        source: String,
        /// The name the recipient sees; by default the source's last part.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// Link cards (WeCom's 图文 news): each a title linking somewhere.
    News { articles: Vec<Article> },
}

/// One card of a [`Attachment::News`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Article {
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where a tap leads.
    pub url: String,
    /// The card's picture, by URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picurl: Option<String>,
}

/// What an attachment is, for an adapter to say whether it can send it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttachmentKind {
    Image,
    File,
    News,
}

impl AttachmentKind {
    /// The kind in a sentence: "sending images through … is not supported yet".
    pub fn plural(self) -> &'static str {
        match self {
            AttachmentKind::Image => "images",
            AttachmentKind::File => "files",
            AttachmentKind::News => "news",
        }
    }
}

impl Attachment {
    pub fn kind(&self) -> AttachmentKind {
        match self {
            Attachment::Image { .. } => AttachmentKind::Image,
            Attachment::File { .. } => AttachmentKind::File,
            Attachment::News { .. } => AttachmentKind::News,
        }
    }
}

/// What a handler asks to be done. Stored before it is executed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Send text, then any attachments, to a conversation of a source (a phone or an
    /// adapter). Actions stored before attachments existed read as having none.
    Send {
        target: String,
        conversation: String,
        text: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<Attachment>,
    },
}

impl Action {
    /// Text alone to a conversation: what most handlers answer.
    pub fn send(
        target: impl Into<String>,
        conversation: impl Into<String>,
        text: impl Into<String>,
    ) -> Action {
        Action::Send {
            target: target.into(),
            conversation: conversation.into(),
            text: text.into(),
            attachments: Vec::new(),
        }
    }

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
/// `{"action": "reply", "text": "..."}`, or with attachments (text may then be left out):
/// `{"action": "reply", "attachments": [{"kind": "image", "path": "/tmp/x.png"}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "action",
    rename_all = "snake_case",
    try_from = "WireHandlerAction"
)]
pub enum HandlerAction {
    Reply {
        text: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<Attachment>,
    },
    Send {
        target: String,
        conversation: String,
        text: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<Attachment>,
    },
    /// Sends the event's text, and its images and files that were downloaded, to another
    /// conversation, on any source.
    Forward {
        target: String,
        conversation: String,
    },
}

/// [`HandlerAction`] as it comes over the wire: text may be missing when attachments are
/// there, never both (an answer that says nothing is a mistake worth reporting).
#[derive(Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
enum WireHandlerAction {
    Reply {
        #[serde(default)]
        text: Option<String>,
        #[serde(default)]
        attachments: Vec<Attachment>,
    },
    Send {
        target: String,
        conversation: String,
        #[serde(default)]
        text: Option<String>,
        #[serde(default)]
        attachments: Vec<Attachment>,
    },
    Forward {
        target: String,
        conversation: String,
    },
}

impl TryFrom<WireHandlerAction> for HandlerAction {
    type Error = String;

    fn try_from(wire: WireHandlerAction) -> Result<Self, String> {
        let text = |text: Option<String>, attachments: &[Attachment]| match text {
            Some(text) => Ok(text),
            None if !attachments.is_empty() => Ok(String::new()),
            None => Err("missing field `text` (or `attachments`)".to_string()),
        };
        Ok(match wire {
            WireHandlerAction::Reply {
                text: t,
                attachments,
            } => HandlerAction::Reply {
                text: text(t, &attachments)?,
                attachments,
            },
            WireHandlerAction::Send {
                target,
                conversation,
                text: t,
                attachments,
            } => HandlerAction::Send {
                target,
                conversation,
                text: text(t, &attachments)?,
                attachments,
            },
            WireHandlerAction::Forward {
                target,
                conversation,
            } => HandlerAction::Forward {
                target,
                conversation,
            },
        })
    }
}

impl HandlerAction {
    /// A text reply, the most common answer.
    pub fn reply(text: impl Into<String>) -> HandlerAction {
        HandlerAction::Reply {
            text: text.into(),
            attachments: Vec::new(),
        }
    }

    /// The concrete action, or `None` when the event gives it nothing to act on (a reply
    /// to an event without a conversation, a forward of an event with neither text nor
    /// downloaded media).
    pub fn resolve(self, event: &Event) -> Option<Action> {
        match self {
            HandlerAction::Reply { text, attachments } => Some(Action::Send {
                target: event.reply_target().to_string(),
                conversation: event.conversation.as_ref()?.id.clone(),
                text,
                attachments,
            }),
            HandlerAction::Send {
                target,
                conversation,
                text,
                attachments,
            } => Some(Action::Send {
                target,
                conversation,
                text,
                attachments,
            }),
            HandlerAction::Forward {
                target,
                conversation,
            } => {
                let attachments = event.local_attachments();
                let text = match event.text() {
                    Some(text) => text,
                    None if !attachments.is_empty() => String::new(),
                    None => return None,
                };
                Some(Action::Send {
                    target,
                    conversation,
                    text,
                    attachments,
                })
            }
        }
    }
}

/// An event's id, derived from its idempotency key: the same key, the same id.
pub fn event_id(idempotency_key: &str) -> String {
    format!("ev_{}", short_hash(idempotency_key))
}

/// A short, stable id derived from an idempotency key: the same key, the same id, so
/// storing a thing twice finds the row already there.
pub fn short_hash(key: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(key.as_bytes())[..12])
}

/// A time a platform gave as a count since the Unix epoch, as RFC 3339 UTC with
/// milliseconds; None past the last time RFC 3339 writes (the end of the year 9999),
/// so a wild value from the network is no time rather than a panic.
pub fn rfc3339_since_epoch(since: std::time::Duration) -> Option<String> {
    const LAST: std::time::Duration = std::time::Duration::from_millis(253_402_300_799_999);
    (since <= LAST)
        .then(|| humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + since).to_string())
}

/// Current time as RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_since_the_epoch_are_written_up_to_the_year_9999() {
        let at = |ms: u64| rfc3339_since_epoch(std::time::Duration::from_millis(ms));
        assert_eq!(at(0).as_deref(), Some("1970-01-01T00:00:00.000Z"));
        assert_eq!(
            at(253_402_300_799_999).as_deref(),
            Some("9999-12-31T23:59:59.999Z")
        );
        assert_eq!(at(253_402_300_800_000), None);
        assert_eq!(rfc3339_since_epoch(std::time::Duration::MAX), None);
    }

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
            Some(Action::send("phone-1", "Alice", "hi"))
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
        let reply = HandlerAction::reply("早");
        assert!(
            matches!(reply.resolve(&fired), Some(Action::Send { target, .. }) if target == "phone-9")
        );
    }

    #[test]
    fn actions_stored_before_attachments_still_read_and_new_ones_round_trip() {
        // A row written before attachments existed.
        let old: Action = serde_json::from_str(
            r#"{"action":"send","target":"app","conversation":"lisi","text":"hi"}"#,
        )
        .expect("old row");
        assert_eq!(old, Action::send("app", "lisi", "hi"));
        // Without attachments the JSON is what it always was.
        assert_eq!(
            serde_json::to_value(&old).expect("json"),
            serde_json::json!({"action":"send","target":"app","conversation":"lisi","text":"hi"})
        );
        let new = Action::Send {
            target: "ops".into(),
            conversation: String::new(),
            text: String::new(),
            attachments: vec![
                Attachment::Image {
                    source: "/srv/chart.png".into(),
                },
                Attachment::File {
                    source: "https://example.com/r.pdf".into(),
                    name: Some("周报.pdf".into()),
                },
                Attachment::News {
                    articles: vec![Article {
                        title: "发布".into(),
                        description: None,
                        url: "https://example.com".into(),
                        picurl: None,
                    }],
                },
            ],
        };
        let json = serde_json::to_value(&new).expect("json");
        assert_eq!(
            json["attachments"],
            serde_json::json!([
                {"kind": "image", "source": "/srv/chart.png"},
                {"kind": "file", "source": "https://example.com/r.pdf", "name": "周报.pdf"},
                {"kind": "news", "articles": [{"title": "发布", "url": "https://example.com"}]},
            ])
        );
        assert_eq!(serde_json::from_value::<Action>(json).expect("back"), new);
    }

    #[test]
    fn handler_actions_take_attachments_and_refuse_saying_nothing() {
        let event = test_message("app", "lisi", "hello", false);
        let reply: HandlerAction = serde_json::from_str(
            r#"{"action":"reply","text":"图","attachments":[{"kind":"image","path":"/tmp/x.png"}]}"#,
        )
        .expect("reply");
        let Some(Action::Send {
            target,
            text,
            attachments,
            ..
        }) = reply.resolve(&event)
        else {
            panic!("no action");
        };
        assert_eq!((target.as_str(), text.as_str()), ("app", "图"));
        assert_eq!(
            attachments,
            [Attachment::Image {
                source: "/tmp/x.png".into()
            }]
        );
        // Attachments alone are an answer; nothing at all is not.
        let image_only: HandlerAction = serde_json::from_str(
            r#"{"action":"send","target":"ops","conversation":"","attachments":[{"kind":"file","url":"https://e.com/a.pdf"}]}"#,
        )
        .expect("image only");
        assert!(matches!(image_only, HandlerAction::Send { text, .. } if text.is_empty()));
        for bad in [
            r#"{"action":"reply","attachments":[]}"#,
            r#"{"action":"reply","attachments":[{"kind":"image"}]}"#,
            r#"{"action":"reply","attachments":[{"kind":"video","source":"/a"}]}"#,
            r#"{"action":"reply","attachments":[{"kind":"image","source":"/a","bogus":1}]}"#,
            r#"{"action":"forward","target":"a","conversation":"b","attachments":[]}"#,
        ] {
            assert!(serde_json::from_str::<HandlerAction>(bad).is_err(), "{bad}");
        }
        // What a handler is given back in JSON is what it sent.
        let json = serde_json::to_value(HandlerAction::reply("hi")).expect("json");
        assert_eq!(json, serde_json::json!({"action": "reply", "text": "hi"}));
    }

    #[test]
    fn a_forward_carries_downloaded_media_and_nothing_else() {
        let mut event = test_message("app", "lisi", "", false);
        event.content = vec![
            Segment::Image {
                url: Some("https://wework.qpic.cn/x".into()),
                path: Some("/data/media/1.jpg".into()),
            },
            // Not downloaded (a phone's image bubble): nothing to hand on.
            Segment::Image {
                url: None,
                path: None,
            },
            Segment::File {
                name: Some("a.pdf".into()),
                path: Some("/data/media/a.pdf".into()),
            },
        ];
        let forward = HandlerAction::Forward {
            target: "ops".into(),
            conversation: String::new(),
        };
        assert_eq!(
            forward.clone().resolve(&event),
            Some(Action::Send {
                target: "ops".into(),
                conversation: String::new(),
                text: String::new(),
                attachments: vec![
                    Attachment::Image {
                        source: "/data/media/1.jpg".into()
                    },
                    Attachment::File {
                        source: "/data/media/a.pdf".into(),
                        name: Some("a.pdf".into())
                    },
                ],
            })
        );
        event.content = vec![Segment::Image {
            url: None,
            path: None,
        }];
        assert_eq!(forward.resolve(&event), None);
    }
}
