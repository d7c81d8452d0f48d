//! A DingTalk custom robot (自定义机器人, DESIGN.md §6): send-only. It belongs to the one
//! group it was added to, so an action's conversation is ignored.
//!
//! From 自定义机器人接入 and its 安全设置: `POST https://oapi.dingtalk.com/robot/send?
//! access_token=…` with a robot message body (`{"msgtype": "text", "text": {"content"}}`,
//! `{"msgtype": "markdown", "markdown": {"title", "text"}}`); with 加签 on, the URL also
//! carries `timestamp` (ms, within an hour of DingTalk's clock) and `sign`
//! ([`super::sign::sign`] with the `SEC…` secret, URL-encoded). The answer is HTTP 200
//! `{"errcode", "errmsg"}`, `errcode` 0 when taken; a robot posts at most 20 messages a
//! minute (每个机器人每分钟最多发送20条), past which DingTalk answers errcode 130101.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use reqwest::{Client, Url};
use serde::Deserialize;

use super::super::check::{Secret, http_url, unexpanded};
use super::super::pace::{Limit, Pace};
use super::super::split;
use super::super::{Adapter, Delivered, Outgoing, SendError};
use super::outbound::{Body, HookAnswer, post_hook};
use super::sign::{millis, sign};
use super::{MAX_TEXT_BYTES, PLATFORM};
use crate::format::TextFormat;
use crate::http::shown_url;

const PER_MINUTE: usize = 20;
const TIMEOUT: Duration = Duration::from_secs(10);

/// One `type = "dingtalk_webhook"` adapter of `tapwire.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DingtalkWebhookConfig {
    /// The robot's webhook; its `access_token` is a credential, so put it in the
    /// environment: `url = "https://oapi.dingtalk.com/robot/send?access_token=${OPS_ROBOT}"`.
    pub url: Secret,
    /// The 加签 secret (`SEC…`), when the robot's security settings use it.
    #[serde(default)]
    pub secret: Option<Secret>,
    /// Post markdown (`msgtype` markdown) instead of text.
    #[serde(default)]
    pub markdown: bool,
}

impl DingtalkWebhookConfig {
    /// What is wrong with the section, if anything; messages never show the token.
    pub fn check(&self) -> Result<(), String> {
        if let Some(secret) = &self.secret
            && secret.trim().is_empty()
        {
            return Err("secret must not be empty: leave it out if the robot does not sign".into());
        }
        if unexpanded(&self.url) {
            return Ok(());
        }
        self.parsed_url().map(drop)
    }

    pub fn text_format(&self) -> TextFormat {
        if self.markdown {
            TextFormat::Markdown
        } else {
            super::TEXT_FORMAT
        }
    }

    fn parsed_url(&self) -> Result<Url, String> {
        let url = http_url("url", &self.url)?;
        if !url
            .query_pairs()
            .any(|(key, value)| key == "access_token" && !value.is_empty())
        {
            return Err(format!(
                "url {} has no access_token: copy the robot's whole webhook (…/robot/send?access_token=…)",
                shown_url(&url)
            ));
        }
        if url
            .query_pairs()
            .any(|(key, _)| key == "timestamp" || key == "sign")
        {
            return Err(
                "url must not carry timestamp or sign: give the robot's secret instead, each post is signed anew"
                    .into(),
            );
        }
        Ok(url)
    }
}

pub struct DingtalkWebhook {
    name: String,
    url: Url,
    secret: Option<String>,
    markdown: bool,
    client: Client,
    pace: Pace,
}

impl std::fmt::Debug for DingtalkWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The access token and the secret are credentials.
        f.debug_struct("DingtalkWebhook")
            .field("name", &self.name)
            .field("signed", &self.secret.is_some())
            .finish_non_exhaustive()
    }
}

impl DingtalkWebhook {
    pub fn new(name: &str, config: &DingtalkWebhookConfig) -> Result<DingtalkWebhook, String> {
        config.check()?;
        let client = crate::http::client(TIMEOUT)?;
        Ok(DingtalkWebhook {
            name: name.to_string(),
            url: config.parsed_url()?,
            secret: config.secret.as_deref().map(|s| s.trim().to_string()),
            markdown: config.markdown,
            client,
            pace: Pace::new(&[Limit::per_minute(PER_MINUTE)]),
        })
    }

    /// The URL of one post: signed now when the robot has a secret.
    fn signed_url(&self, now: SystemTime) -> Url {
        let mut url = self.url.clone();
        if let Some(secret) = &self.secret {
            let timestamp = millis(now).to_string();
            // `append_pair` form-encodes, as the documents' `quote_plus` does.
            url.query_pairs_mut()
                .append_pair("timestamp", &timestamp)
                .append_pair("sign", &sign(&timestamp, secret));
        }
        url
    }

    /// Posts one message (at most [`MAX_TEXT_BYTES`]), after waiting for its turn.
    pub async fn post(&self, text: &str) -> Result<(), SendError> {
        self.pace.take_turn(&self.name).await;
        let body = Body::new(text, self.markdown);
        match post_hook(&self.client, &self.signed_url(SystemTime::now()), &body).await {
            HookAnswer::Sent => Ok(()),
            HookAnswer::Failed(error) => Err(error),
            HookAnswer::Refused(reason) => Err(SendError::Permanent(format!(
                "DingTalk refused the custom robot's message ({reason}): check the url's access_token, the robot's secret and security settings (keywords, IP list), and this machine's clock"
            ))),
        }
    }
}

#[async_trait]
impl Adapter for DingtalkWebhook {
    fn name(&self) -> &str {
        &self.name
    }

    fn platform(&self) -> &'static str {
        PLATFORM
    }

    fn text_format(&self) -> TextFormat {
        if self.markdown {
            TextFormat::Markdown
        } else {
            super::TEXT_FORMAT
        }
    }

    fn split<'t>(&self, text: &'t str) -> Vec<&'t str> {
        split::bytes(text, MAX_TEXT_BYTES)
    }

    /// A custom robot posts into its one group: the conversation is not needed.
    async fn deliver(&self, outgoing: &Outgoing) -> Result<Delivered, SendError> {
        outgoing.warn_if_resumed(&self.name);
        self.post(&outgoing.text).await.map(|()| Delivered::Sent)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Arc;

    use axum::Json;
    use axum::extract::{Query, State};
    use axum::routing::post;

    use super::*;

    const HOOK: &str = "https://oapi.dingtalk.com/robot/send?access_token=abc123";

    fn config(url: &str, secret: Option<&str>) -> DingtalkWebhookConfig {
        DingtalkWebhookConfig {
            url: url.into(),
            secret: secret.map(Secret::from),
            markdown: false,
        }
    }

    #[test]
    fn config_wants_an_access_token_and_a_nonempty_secret() {
        assert_eq!(config(HOOK, None).check(), Ok(()));
        assert_eq!(config(HOOK, Some("SECx")).check(), Ok(()));
        assert!(
            config(HOOK, Some(" "))
                .check()
                .unwrap_err()
                .contains("secret")
        );
        let no_token = config("https://oapi.dingtalk.com/robot/send", None)
            .check()
            .unwrap_err();
        assert!(no_token.contains("access_token"), "{no_token}");
        assert!(
            config("ftp://x/robot/send?access_token=a", None)
                .check()
                .is_err()
        );
        let presigned = config(&format!("{HOOK}&timestamp=1&sign=x"), Some("SECx"))
            .check()
            .unwrap_err();
        assert!(presigned.contains("timestamp"), "{presigned}");
        assert_eq!(
            config(
                "https://oapi.dingtalk.com/robot/send?access_token=${HOOK}",
                None
            )
            .check(),
            Ok(())
        );
        let bot = DingtalkWebhook::new("ops", &config(HOOK, Some("SECs3cret"))).expect("bot");
        let shown = format!("{bot:?}{:?}", config(HOOK, Some("SECs3cret")));
        assert!(
            !shown.contains("abc123") && !shown.contains("SECs3cret"),
            "{shown}"
        );
    }

    #[test]
    fn a_signed_url_carries_the_documents_sign() {
        let bot = DingtalkWebhook::new("ops", &config(HOOK, Some("this is secret"))).expect("bot");
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_577_262_236_757);
        assert_eq!(
            bot.signed_url(at).as_str(),
            "https://oapi.dingtalk.com/robot/send?access_token=abc123&timestamp=1577262236757&sign=hmPWwU%2B7lVdm3ZZz0r9tSfx0L4Q26jWOZr9%2BGs6EZQM%3D"
        );
        let unsigned = DingtalkWebhook::new("ops", &config(HOOK, None)).expect("bot");
        assert_eq!(unsigned.signed_url(at).as_str(), HOOK);
    }

    /// A stand-in for the robot: checks the sign like DingTalk, answers codes from a
    /// queue.
    #[derive(Clone, Default)]
    struct Robot {
        bodies: Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
        answers: Arc<std::sync::Mutex<VecDeque<serde_json::Value>>>,
    }

    async fn robot(
        State(robot): State<Robot>,
        Query(query): Query<std::collections::HashMap<String, String>>,
        Json(body): Json<serde_json::Value>,
    ) -> Json<serde_json::Value> {
        let signed = match (query.get("timestamp"), query.get("sign")) {
            (Some(ts), Some(sign_)) => *sign_ == sign(ts, "SECs3cret"),
            _ => false,
        };
        robot.bodies.lock().expect("lock").push(body);
        if !signed {
            return Json(serde_json::json!({"errcode": 310000, "errmsg": "sign not match"}));
        }
        let queued = robot.answers.lock().expect("lock").pop_front();
        Json(queued.unwrap_or_else(|| serde_json::json!({"errcode": 0, "errmsg": "ok"})))
    }

    async fn serve(state: Robot) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = axum::Router::new()
            .route("/robot/send", post(robot))
            .with_state(state);
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/robot/send?access_token=tok")
    }

    #[tokio::test]
    async fn posts_signed_messages_and_reads_the_robots_codes() {
        let state = Robot::default();
        let url = serve(state.clone()).await;
        let bot = DingtalkWebhook::new("ops", &config(&url, Some("SECs3cret"))).expect("bot");
        bot.post("值班提醒").await.expect("sent");
        state.answers.lock().expect("lock").extend([
            serde_json::json!({"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}),
            serde_json::json!({"errcode": 310000, "errmsg": "keywords not in content"}),
        ]);
        assert!(matches!(
            bot.post("x").await,
            Err(SendError::Retry { after: Some(_), .. })
        ));
        let refused = bot.post("x").await;
        assert!(
            matches!(&refused, Err(SendError::Permanent(m)) if m.contains("310000") && m.contains("keywords")),
            "{refused:?}"
        );
        let bodies = state.bodies.lock().expect("lock").clone();
        assert_eq!(
            bodies[0],
            serde_json::json!({"msgtype": "text", "text": {"content": "值班提醒"}})
        );
        // Without the secret the stand-in refuses the sign: no retry.
        let unsigned = DingtalkWebhook::new("ops", &config(&url, None)).expect("bot");
        let refused = unsigned.post("x").await;
        assert!(
            matches!(&refused, Err(SendError::Permanent(m)) if m.contains("sign not match")),
            "{refused:?}"
        );
        let markdown = DingtalkWebhook::new(
            "ops",
            &DingtalkWebhookConfig {
                markdown: true,
                ..config(&url, Some("SECs3cret"))
            },
        )
        .expect("bot");
        markdown.post("**值班**").await.expect("sent");
        assert_eq!(
            state.bodies.lock().expect("lock").last().cloned(),
            Some(
                serde_json::json!({"msgtype": "markdown", "markdown": {"title": "值班", "text": "**值班**"}})
            )
        );
    }
}
