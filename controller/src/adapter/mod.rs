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

pub mod call;
pub mod check;
pub mod dingtalk;
pub mod door;
pub mod feishu;
pub mod ilink;
pub mod media;
pub mod pace;
pub mod passive;
pub mod phone;
pub mod qq;
pub mod replay;
pub mod split;
#[cfg(test)]
pub mod testing;
pub mod token;
pub mod wecom;
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
use crate::event::{Attachment, AttachmentKind, Event};
use crate::format::TextFormat;
use crate::http::backoff_delay;
use crate::store::{SharedStore, StoreError};
use crate::telemetry;
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

/// One action for an adapter to carry out: text and attachments for one of its
/// conversations. [`deliver_all`] hands [`Adapter::deliver`] one message of it at a time:
/// a piece of the text, or one attachment (with no text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub action_id: String,
    pub conversation: String,
    pub text: String,
    /// Sent after the text, each as a message of its own.
    pub attachments: Vec<Attachment>,
    /// An earlier run handed it out and never saw it finish: it may have gone out.
    pub resumed: bool,
}

impl Outgoing {
    /// The attachment this message is, when it is one rather than text.
    pub fn attachment(&self) -> Option<&Attachment> {
        self.attachments.first()
    }

    /// Said before a message that an earlier run may have sent goes out again, where the
    /// platform takes no idempotency key: it cannot be asked whether it got the message,
    /// and sending again may repeat one where not sending may lose one, which is worse.
    pub fn warn_if_resumed(&self, adapter: &str) {
        if self.resumed {
            tracing::warn!(adapter = %adapter, action = %self.action_id, "this may have gone out before the restart; sending it again");
        }
    }
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

    /// Delivers one message: a piece of an action's text, or one of its attachments
    /// (only of a kind [`Adapter::can_send`] accepts).
    async fn deliver(&self, outgoing: &Outgoing) -> Result<Delivered, SendError>;

    /// Whether it can send attachments of `kind`, and if not, why, in words that name the
    /// platform and the kind. Asked for every attachment before any message of the action
    /// goes out, so an action that cannot go out whole does not go out in part.
    fn can_send(&self, kind: AttachmentKind) -> Result<(), SendError> {
        Err(SendError::Permanent(format!(
            "sending {} through {} (adapter {}) is not supported yet",
            kind.plural(),
            self.platform(),
            self.name()
        )))
    }

    /// How many conversations' actions it may carry out at once (each conversation's
    /// still in order). One by default: a platform paced per bot, or one that takes
    /// messages one by one, keeps it. More lets a busy bot answer many members at once; a
    /// crash may then repeat up to that many sends that were in flight.
    fn parallel_sends(&self) -> usize {
        1
    }

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

    /// Callbacks its routes turned away since the start, by reason (for `/metrics`).
    fn rejections(&self) -> Vec<(door::Reason, u64)> {
        Vec::new()
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

/// Sends `text` to `conversation`, cut into as many messages as the platform needs, then
/// each attachment as a message of its own, each retried with backoff on a passing
/// failure. A retry resumes at the message that failed, so the ones before it are not
/// posted twice. An attachment the adapter cannot send fails the action before anything
/// of it goes out.
pub async fn deliver_all(adapter: &dyn Adapter, outgoing: &Outgoing) -> Result<Delivered, String> {
    for attachment in &outgoing.attachments {
        if let Err(refused) = adapter.can_send(attachment.kind()) {
            return Err(refused.to_string());
        }
    }
    // Attachments alone need no empty text before them.
    let text = if outgoing.text.is_empty() && !outgoing.attachments.is_empty() {
        Vec::new()
    } else {
        adapter.split(&outgoing.text)
    };
    let pieces: Vec<Outgoing> = text
        .into_iter()
        .map(|piece| Outgoing {
            text: piece.to_string(),
            attachments: Vec::new(),
            ..outgoing.clone()
        })
        .chain(outgoing.attachments.iter().map(|attachment| Outgoing {
            text: String::new(),
            attachments: vec![attachment.clone()],
            ..outgoing.clone()
        }))
        .collect();
    let count = pieces.len();
    let mut delivered = Delivered::Sent;
    for (index, message) in pieces.into_iter().enumerate() {
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
                    telemetry::action_retried(adapter.name());
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }
    Ok(delivered)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Takes text and images, refuses files, and fails the first try of each image.
    #[derive(Default)]
    struct Picky {
        sent: Mutex<Vec<String>>,
        tries: Mutex<u32>,
    }

    #[async_trait]
    impl Adapter for Picky {
        fn name(&self) -> &str {
            "picky"
        }
        fn platform(&self) -> &'static str {
            "test"
        }
        fn text_format(&self) -> TextFormat {
            TextFormat::Plain
        }
        fn split<'t>(&self, text: &'t str) -> Vec<&'t str> {
            text.split('|').collect()
        }
        fn can_send(&self, kind: AttachmentKind) -> Result<(), SendError> {
            match kind {
                AttachmentKind::Image => Ok(()),
                _ => Err(SendError::Permanent(format!("no {}", kind.plural()))),
            }
        }
        async fn deliver(&self, outgoing: &Outgoing) -> Result<Delivered, SendError> {
            let what = match outgoing.attachment() {
                Some(Attachment::Image { source }) => {
                    let mut tries = self.tries.lock().expect("lock");
                    *tries += 1;
                    if *tries % 2 == 1 {
                        return Err(SendError::Retry {
                            reason: "busy".into(),
                            after: Some(Duration::ZERO),
                        });
                    }
                    format!("image {source}")
                }
                Some(other) => panic!("refused kinds never reach deliver: {other:?}"),
                None => outgoing.text.clone(),
            };
            self.sent.lock().expect("lock").push(what);
            Ok(Delivered::Sent)
        }
    }

    fn outgoing(text: &str, attachments: Vec<Attachment>) -> Outgoing {
        Outgoing {
            action_id: "act_1".into(),
            conversation: "c".into(),
            text: text.into(),
            attachments,
            resumed: false,
        }
    }

    fn image(source: &str) -> Attachment {
        Attachment::Image {
            source: source.into(),
        }
    }

    #[tokio::test]
    async fn text_goes_first_then_each_attachment_retried_on_its_own() {
        let picky = Picky::default();
        deliver_all(
            &picky,
            &outgoing("a|b", vec![image("/1.png"), image("/2.png")]),
        )
        .await
        .expect("sent");
        assert_eq!(
            *picky.sent.lock().expect("lock"),
            ["a", "b", "image /1.png", "image /2.png"]
        );
        // Attachments alone: no empty text before them.
        let alone = Picky::default();
        deliver_all(&alone, &outgoing("", vec![image("/3.png")]))
            .await
            .expect("sent");
        assert_eq!(*alone.sent.lock().expect("lock"), ["image /3.png"]);
    }

    #[tokio::test]
    async fn a_kind_the_adapter_cannot_send_fails_the_action_before_anything_goes() {
        let picky = Picky::default();
        let file = Attachment::File {
            source: "/r.pdf".into(),
            name: None,
        };
        let refused = deliver_all(&picky, &outgoing("hello", vec![image("/1.png"), file])).await;
        assert_eq!(refused, Err("no files".to_string()));
        assert!(picky.sent.lock().expect("lock").is_empty());
    }
}
