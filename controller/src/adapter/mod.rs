//! Adapters: the phones and platforms events come from and actions go to (DESIGN.md §1).
//! Every one implements [`Adapter`]: its name (what actions name as their target), its
//! platform, the text format it shows, how it delivers an action, and optionally inbound
//! HTTP routes (mounted at `/callback/<name>`) and work of its own that runs while the
//! controller does (a phone's actor, a long poll).
//!
//! Built: [`phone`] (WeChat on an Android phone, over ADB), [`wecom_robot`] (a WeCom
//! group robot, send-only), [`wecom_app`] (a WeCom self-built app: callbacks in,
//! active sends out), [`wecom_aibot`] (a WeCom AI bot: callbacks answered with
//! streams), [`feishu`] (a Feishu/Lark app's bot, and the send-only custom bot in
//! [`feishu::webhook`]), [`qq`] (a QQ official bot: signed webhooks in, passive
//! replies out), [`dingtalk`] (a DingTalk robot over Stream mode or signed
//! callbacks; the custom robot in [`dingtalk::webhook`]) and [`ilink`] (Weixin
//! iLink: QR login, a long poll in, replies within iLink's limits out). A new
//! platform is one file implementing [`Adapter`], a variant in [`AdapterConfig`]
//! and its line in [`build`].

pub mod dingtalk;
pub mod feishu;
pub mod ilink;
pub mod phone;
pub mod qq;
pub mod wecom_aibot;
pub mod wecom_app;
pub mod wecom_crypto;
pub mod wecom_robot;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tokio::sync::broadcast;

use crate::activity::Activity;
use crate::event::Event;
use crate::format::TextFormat;
use crate::http::backoff_delay;
use crate::store::{SharedStore, StoreError};
use dingtalk::webhook::{DingtalkWebhook, DingtalkWebhookConfig};
use dingtalk::{Dingtalk, DingtalkConfig};
use feishu::webhook::{FeishuWebhook, FeishuWebhookConfig};
use feishu::{Feishu, FeishuConfig};
use ilink::{Ilink, IlinkConfig};
use qq::{QqBot, QqConfig};
use wecom_aibot::{WecomAibot, WecomAibotConfig};
use wecom_app::{WecomApp, WecomAppConfig};
use wecom_robot::{WecomRobot, WecomRobotConfig};

/// Tries per message piece before the action is failed.
const ATTEMPTS: u32 = 6;
const BACKOFF: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// One action for an adapter to carry out: text for one of its conversations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub action_id: String,
    pub conversation: String,
    pub text: String,
    /// An earlier run handed it out and never saw it finish: it may have gone out.
    pub resumed: bool,
}

/// How the answer to one of an adapter's own events is coming along, as the runtime
/// learns it. A platform that takes finished messages to a conversation has no use for
/// it; one whose answers belong to the message they answer and can grow while they are
/// written (a WeCom AI bot's stream, its per-message `response_url`) follows it to know
/// which delivery answers which message, and when an answer is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answering<'a> {
    /// The answer's text so far, while a handler is still writing it (an LLM's tokens):
    /// for display only, never stored; the finished text comes as an action.
    Partial(&'a str),
    /// This action, about to be delivered, only acknowledges a slow answer
    /// ([`ReplyTiming::ack_text`]): it stands in until the answer comes.
    Acknowledged { action: &'a str },
    /// This action, about to be delivered, is part of the answer (to this adapter, in the
    /// event's conversation); `last` when nothing more of it follows. The timeout notice
    /// of a cancelled answer is its last part too.
    Answer { action: &'a str, last: bool },
    /// Handling ended without any answer in the event's conversation.
    Unanswered,
}

/// How a delivery went, when it went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// The platform took it.
    Sent,
    /// Handed to the adapter's own worker (a phone types it, then reads the chat back),
    /// which records how it ends.
    Handed,
}

/// Why a send did not go through, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("{reason}")]
    Retry {
        reason: String,
        /// The platform said when (a rate limit); otherwise backoff decides.
        after: Option<Duration>,
    },
    #[error("{0}")]
    Permanent(String),
}

#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error("{0}")]
    Start(String),
    #[error("{0}")]
    Stopped(String),
}

/// What an adapter is given to feed the controller.
#[derive(Clone)]
pub struct AdapterContext {
    pub store: SharedStore,
    pub inbox: Arc<dyn Inbox>,
    pub activity: broadcast::Sender<Activity>,
}

impl AdapterContext {
    /// Tells whoever watches (`tapwire demo`, tests); nobody listening is fine.
    pub fn report(&self, activity: Activity) {
        let _ = self.activity.send(activity);
    }
}

/// Where adapters hand events in: the runtime.
#[async_trait]
pub trait Inbox: Send + Sync {
    /// Stores an event and routes it; an event stored before is not routed again.
    async fn accept(&self, event: Event) -> Result<bool, StoreError>;
    /// Routes an event the adapter has stored itself (a phone stores a chat's read with
    /// its watermark in one step).
    fn submit(&self, event: Event);
}

#[async_trait]
pub trait Adapter: Send + Sync {
    /// What actions name as their target: a phone's serial, an adapter's config name.
    fn name(&self) -> &str;

    /// The platform its events belong to (permissions' user ids: `wechat:李娜`).
    fn platform(&self) -> &'static str;

    /// What it shows of markdown.
    fn text_format(&self) -> TextFormat;

    /// `text` cut into the messages the platform takes (size limits); one by default.
    fn split<'t>(&self, text: &'t str) -> Vec<&'t str> {
        vec![text]
    }

    /// Delivers one message (a piece of an action's text).
    async fn deliver(&self, outgoing: &Outgoing) -> Result<Delivered, SendError>;

    /// How long a sender here waits for an answer before it is acknowledged.
    fn reply_timing(&self) -> ReplyTiming {
        ReplyTiming::default()
    }

    /// Hears how the answer to `event`, one of this adapter's own, is coming along; called
    /// before the actions it names are delivered. Ignored unless the platform ties answers
    /// to the messages they answer.
    fn answering(&self, _event: &Event, _progress: Answering<'_>) {}

    /// Inbound HTTP routes, mounted at `/callback/<name>`.
    fn routes(&self) -> Option<axum::Router> {
        None
    }

    /// Starts the adapter's own work (a phone's actor, a long poll); called once, before
    /// anything is delivered.
    async fn start(&self, _ctx: AdapterContext) -> Result<(), AdapterError> {
        Ok(())
    }

    /// True once its own work has ended by itself (a phone's actor gave up): `run` stops.
    fn finished(&self) -> bool {
        false
    }

    /// Stops its work and waits for it; an error says it had stopped on a fault.
    async fn stop(&self) -> Result<(), AdapterError> {
        Ok(())
    }
}

/// How long a sender waits: an answer ready within `ack_after_ms` goes out as it is;
/// slower work is acknowledged with `ack_text` and its result pushed when ready; work
/// still running after `give_up_after_ms` is cancelled and the sender told `timeout_text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyTiming {
    pub ack_after_ms: u64,
    pub give_up_after_ms: u64,
    pub ack_text: String,
    pub timeout_text: String,
}

impl Default for ReplyTiming {
    fn default() -> Self {
        ReplyTiming {
            ack_after_ms: 5_000,
            give_up_after_ms: 120_000,
            ack_text: "收到，正在处理…".into(),
            timeout_text: "抱歉，处理超时，已取消。".into(),
        }
    }
}

/// One `[adapters.NAME]` of `tapwire.toml`; `type` selects the platform.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AdapterConfig {
    WecomRobot(WecomRobotConfig),
    WecomApp(WecomAppConfig),
    Feishu(FeishuConfig),
    FeishuWebhook(FeishuWebhookConfig),
    Qq(QqConfig),
    WecomAibot(WecomAibotConfig),
    Dingtalk(DingtalkConfig),
    DingtalkWebhook(DingtalkWebhookConfig),
    Ilink(IlinkConfig),
}

impl AdapterConfig {
    /// What is wrong with it, if anything, in words for `tapwire config check`. Values
    /// still holding `${…}` are left alone: the missing variable is reported on its line.
    pub fn check(&self) -> Result<(), String> {
        match self {
            AdapterConfig::WecomRobot(robot) => robot.check(),
            AdapterConfig::WecomApp(app) => app.check(),
            AdapterConfig::Feishu(app) => app.check(),
            AdapterConfig::FeishuWebhook(bot) => bot.check(),
            AdapterConfig::Qq(qq) => qq.check(),
            AdapterConfig::WecomAibot(bot) => bot.check(),
            AdapterConfig::Dingtalk(app) => app.check(),
            AdapterConfig::DingtalkWebhook(bot) => bot.check(),
            AdapterConfig::Ilink(ilink) => ilink.check(),
        }
    }

    /// The text format its adapter will show, known before it is built.
    pub fn text_format(&self) -> TextFormat {
        match self {
            AdapterConfig::WecomRobot(robot) => robot.text_format(),
            AdapterConfig::WecomApp(_) => wecom_app::TEXT_FORMAT,
            AdapterConfig::Feishu(_) | AdapterConfig::FeishuWebhook(_) => feishu::TEXT_FORMAT,
            AdapterConfig::Qq(qq) => qq.text_format(),
            AdapterConfig::WecomAibot(_) => wecom_aibot::TEXT_FORMAT,
            AdapterConfig::Dingtalk(app) => app.text_format(),
            AdapterConfig::DingtalkWebhook(bot) => bot.text_format(),
            AdapterConfig::Ilink(_) => ilink::TEXT_FORMAT,
        }
    }
}

/// Builds the adapter a config section declares.
pub fn build(name: &str, config: &AdapterConfig) -> Result<Arc<dyn Adapter>, String> {
    Ok(match config {
        AdapterConfig::WecomRobot(robot) => Arc::new(WecomRobot::new(name, robot)?),
        AdapterConfig::WecomApp(app) => Arc::new(WecomApp::new(name, app)?),
        AdapterConfig::Feishu(app) => Arc::new(Feishu::new(name, app)?),
        AdapterConfig::FeishuWebhook(bot) => Arc::new(FeishuWebhook::new(name, bot)?),
        AdapterConfig::Qq(qq) => Arc::new(QqBot::new(name, qq)?),
        AdapterConfig::WecomAibot(bot) => Arc::new(WecomAibot::new(name, bot)?),
        AdapterConfig::Dingtalk(app) => Arc::new(Dingtalk::new(name, app)?),
        AdapterConfig::DingtalkWebhook(bot) => Arc::new(DingtalkWebhook::new(name, bot)?),
        AdapterConfig::Ilink(ilink) => Arc::new(Ilink::new(name, ilink)?),
    })
}

/// Sends `text` to `conversation`, cut into as many messages as the platform needs, each
/// retried with backoff on a passing failure. A retry resumes at the piece that failed,
/// so the pieces before it are not posted twice.
pub async fn deliver_all(adapter: &dyn Adapter, outgoing: &Outgoing) -> Result<Delivered, String> {
    let pieces = adapter.split(&outgoing.text);
    let count = pieces.len();
    let mut delivered = Delivered::Sent;
    for (index, piece) in pieces.into_iter().enumerate() {
        let message = Outgoing {
            text: piece.to_string(),
            ..outgoing.clone()
        };
        let mut attempt = 1;
        loop {
            let described = |reason: &str| {
                let part = if count > 1 {
                    format!(" (part {} of {count})", index + 1)
                } else {
                    String::new()
                };
                format!("{reason}{part} after {attempt} attempt(s)")
            };
            match adapter.deliver(&message).await {
                Ok(how) => {
                    delivered = how;
                    break;
                }
                Err(SendError::Permanent(reason)) => return Err(described(&reason)),
                Err(SendError::Retry { reason, .. }) if attempt >= ATTEMPTS => {
                    return Err(described(&reason));
                }
                Err(SendError::Retry { reason, after }) => {
                    let wait = after.unwrap_or_else(|| {
                        backoff_delay(BACKOFF, BACKOFF_MAX, attempt, fastrand::f64())
                    });
                    tracing::warn!(adapter = adapter.name(), conversation = %outgoing.conversation, %reason, attempt, retry_in = ?wait, "send failed; retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }
    Ok(delivered)
}
