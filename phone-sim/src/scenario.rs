//! The chats a phone starts with: a built-in default, or a TOML file.
//!
//! ```toml
//! [[chat]]
//! name = "家人群"
//! group = true
//! muted = false
//! [[chat.message]]
//! sender = "妈妈"          # omit for own messages (own = true) or system lines (system = true)
//! text = "晚上回家吃饭吗"
//! minutes_ago = 90
//! ```

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::clock::Clock;
use crate::wechat::model::{MsgKind, WeChat};

#[derive(Debug, Error)]
pub enum ScenarioError {
    #[error("cannot read scenario file: {0}")]
    Io(#[from] std::io::Error),
    #[error("scenario is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Scenario {
    #[serde(default, rename = "chat")]
    pub chats: Vec<SeedChat>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedChat {
    pub name: String,
    #[serde(default)]
    pub group: bool,
    #[serde(default)]
    pub muted: bool,
    #[serde(default)]
    pub pinned: bool,
    #[serde(default)]
    pub unread: u32,
    #[serde(default, rename = "message")]
    pub messages: Vec<SeedMessage>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedMessage {
    #[serde(default)]
    pub sender: Option<String>,
    pub text: String,
    #[serde(default)]
    pub minutes_ago: i64,
    #[serde(default)]
    pub own: bool,
    #[serde(default)]
    pub system: bool,
    /// `image`, `sticker` or `red_packet` instead of text (a red packet's text is its
    /// greeting); `system = true` stays the way to write a system line.
    #[serde(default)]
    pub kind: Option<MsgKind>,
}

impl Scenario {
    pub fn from_toml(text: &str) -> Result<Self, ScenarioError> {
        Ok(toml::from_str(text)?)
    }

    pub fn load(path: &std::path::Path) -> Result<Self, ScenarioError> {
        Self::from_toml(&std::fs::read_to_string(path)?)
    }

    /// A few chats so a fresh phone looks lived in; all messages are at least a day old so
    /// anything a test injects is clearly newer.
    pub fn default_chats() -> Self {
        let m = |sender: Option<&str>, text: &str, minutes_ago: i64| SeedMessage {
            sender: sender.map(str::to_string),
            text: text.into(),
            minutes_ago,
            own: sender.is_none(),
            system: false,
            kind: None,
        };
        Scenario {
            chats: vec![
                SeedChat {
                    name: "文件传输助手".into(),
                    group: false,
                    muted: false,
                    pinned: false,
                    unread: 0,
                    messages: vec![m(None, "会议纪要.docx", 60 * 30)],
                },
                SeedChat {
                    name: "产品讨论群".into(),
                    group: true,
                    muted: true,
                    pinned: false,
                    unread: 0,
                    messages: vec![
                        SeedMessage {
                            sender: None,
                            text: "\"王芳\"邀请\"李雷\"加入了群聊".into(),
                            minutes_ago: 60 * 28,
                            own: false,
                            system: true,
                            kind: None,
                        },
                        m(Some("王芳"), "下周一上午十点评审，大家看一下文档", 60 * 27),
                        m(Some("李雷"), "收到", 60 * 27 - 2),
                    ],
                },
                SeedChat {
                    name: "张伟".into(),
                    group: false,
                    muted: false,
                    pinned: false,
                    unread: 0,
                    messages: vec![
                        m(Some("张伟"), "周末一起打球？", 60 * 26),
                        m(None, "好啊", 60 * 26 - 1),
                    ],
                },
            ],
        }
    }

    pub fn apply(&self, w: &mut WeChat, clock: &Clock) {
        let now = clock.now();
        for c in &self.chats {
            w.configure_chat(&c.name, c.group, c.muted, c.pinned);
            for msg in &c.messages {
                let ts = now - msg.minutes_ago * 60;
                let kind = match msg.kind {
                    Some(k) => k,
                    None if msg.system => MsgKind::System,
                    None => MsgKind::Text,
                };
                if msg.own {
                    w.outgoing_kind_by_owner(&c.name, &msg.text, kind, ts);
                } else {
                    w.incoming(&c.name, c.group, msg.sender.as_deref(), &msg.text, kind, ts);
                }
            }
            w.set_unread(&c.name, c.unread);
        }
        // Seeded history is old news: no notifications, no pending log lines.
        w.notifications.clear();
        w.take_effects();
    }
}
