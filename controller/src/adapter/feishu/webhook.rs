//! A Feishu/Lark custom bot (自定义机器人, DESIGN.md §6): send-only. It belongs to the one
//! group it was added to, so an action's conversation is ignored.
//!
//! From 自定义机器人使用指南 (open.feishu.cn/document/ukTMukTMukTM/ucTM5YjL3ETO24yNxkjN):
//! `POST https://open.feishu.cn/open-apis/bot/v2/hook/<token>` with `{"msg_type": "text",
//! "content": {"text": …}}` (here `content` is an object, unlike the open API's string);
//! with signing on, the body also carries `timestamp` (seconds, within an hour of
//! Feishu's clock) and `sign` ([`super::crypto::webhook_sign`]). The answer is `{"code": 0,
//! "msg": "success"}` (older bots: `StatusCode`/`StatusMessage`), under HTTP 200 even for
//! failures: 19021 bad sign or timestamp, 19022 IP not allowed, 19024 no keyword, 9499
//! bad request, 11232 rate limited. A bot may post 100 messages a minute and 5 a second,
//! with a body of at most 20 KB.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use reqwest::{Client, StatusCode, Url};
use serde::Deserialize;

use super::super::call;
use super::super::check::{Secret, http_url, unexpanded};
use super::super::pace::{Limit, Pace};
use super::super::split;
use super::super::{Adapter, Delivered, Outgoing, SendError};
use super::crypto::webhook_sign;
use super::{PLATFORM, TEXT_FORMAT};
use crate::format::TextFormat;
use crate::http::shown_url;

/// A body holds at most 20 KB; a quote or line break in the text takes two bytes of JSON.
pub const MAX_TEXT_BYTES: usize = 9 * 1024;
const PER_MINUTE: usize = 100;
const PER_SECOND: usize = 5;
const TIMEOUT: Duration = Duration::from_secs(10);
const ERR_RATE_LIMITED: i64 = 11232;
const ERR_SIGN: i64 = 19021;

/// One `type = "feishu_webhook"` adapter of `tapwire.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeishuWebhookConfig {
    /// The bot's webhook address; its last segment is a credential, so put it in the
    /// environment: `url = "https://open.feishu.cn/open-apis/bot/v2/hook/${OPS_HOOK}"`.
    pub url: Secret,
    /// The signing secret, when the bot's 签名校验 is on.
    #[serde(default)]
    pub secret: Option<Secret>,
}

impl FeishuWebhookConfig {
    /// What is wrong with the section, if anything; messages never show the token.
    pub fn check(&self) -> Result<(), String> {
        if let Some(secret) = &self.secret
            && secret.trim().is_empty()
        {
            return Err("secret must not be empty: leave it out if the bot does not sign".into());
        }
        if unexpanded(&self.url) {
            return Ok(());
        }
        self.parsed_url().map(drop)
    }

    fn parsed_url(&self) -> Result<Url, String> {
        let url = http_url("url", &self.url)?;
        let hook = url
            .path()
            .split_once("/bot/v2/hook/")
            .map(|(_, token)| token);
        if !hook.is_some_and(|token| !token.is_empty() && !token.contains('/')) {
            return Err(format!(
                "url {} is not a custom bot's webhook (…/open-apis/bot/v2/hook/<token>): copy the bot's whole address",
                shown_url(&url)
            ));
        }
        Ok(url)
    }
}

pub struct FeishuWebhook {
    name: String,
    url: Url,
    secret: Option<String>,
    client: Client,
    pace: Pace,
}

impl std::fmt::Debug for FeishuWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The hook's token and the secret are credentials.
        f.debug_struct("FeishuWebhook")
            .field("name", &self.name)
            .field("signed", &self.secret.is_some())
            .finish_non_exhaustive()
    }
}

/// The bot's answer: `code`, or `StatusCode` from bots made before it.
#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default, rename = "StatusCode")]
    status_code: Option<i64>,
    #[serde(default)]
    msg: Option<String>,
    #[serde(default, rename = "StatusMessage")]
    status_message: Option<String>,
}

/// A shown URL never carries the hook's token.
fn shown(url: &Url) -> String {
    let mut shown = shown_url(url);
    if let Some(at) = shown.find("/bot/v2/hook/") {
        shown.truncate(at + "/bot/v2/hook/".len());
        shown.push('…');
    }
    shown
}

impl FeishuWebhook {
    pub fn new(name: &str, config: &FeishuWebhookConfig) -> Result<FeishuWebhook, String> {
        config.check()?;
        let client = crate::http::client(TIMEOUT)?;
        Ok(FeishuWebhook {
            name: name.to_string(),
            url: config.parsed_url()?,
            secret: config.secret.as_deref().map(|s| s.trim().to_string()),
            client,
            pace: Pace::new(&[Limit::per_second(PER_SECOND), Limit::per_minute(PER_MINUTE)]),
        })
    }

    /// Posts one text (at most [`MAX_TEXT_BYTES`]), after waiting for its turn.
    pub async fn post(&self, text: &str) -> Result<(), SendError> {
        self.pace.take_turn(&self.name).await;
        let mut body = serde_json::json!({"msg_type": "text", "content": {"text": text}});
        if let Some(secret) = &self.secret {
            let timestamp = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default();
            body["timestamp"] = timestamp.to_string().into();
            body["sign"] = webhook_sign(timestamp, secret).into();
        }
        let where_ = shown(&self.url);
        let answered = call::call(self.client.post(self.url.clone()).json(&body), &where_).await?;
        let status = answered.status;
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            // Feishu answers failures as JSON under 200, but these are no answer at all.
            call::check_status(status, &where_)?;
        }
        let bytes = answered.body;
        let answer: Answer = serde_json::from_slice(&bytes).map_err(|e| {
            SendError::Permanent(format!(
                "{where_} answered HTTP {status}, not the bot's JSON ({e})"
            ))
        })?;
        let Some(code) = answer.code.or(answer.status_code) else {
            return Err(SendError::Permanent(format!(
                "{where_} answered HTTP {status} without a code"
            )));
        };
        let message = answer.msg.or(answer.status_message).unwrap_or_default();
        match code {
            0 if status.is_success() => Ok(()),
            ERR_RATE_LIMITED => Err(SendError::Retry {
                reason: format!("Feishu rate limit (code {code}: {message})"),
                after: Some(Duration::from_secs(1)),
            }),
            ERR_SIGN => Err(SendError::Permanent(format!(
                "Feishu refused the sign (code {code}: {message}): check secret, and this machine's clock"
            ))),
            code => Err(SendError::Permanent(format!(
                "Feishu refused the message (HTTP {status}, code {code}: {message})"
            ))),
        }
    }
}

#[async_trait]
impl Adapter for FeishuWebhook {
    fn name(&self) -> &str {
        &self.name
    }

    fn platform(&self) -> &'static str {
        PLATFORM
    }

    fn text_format(&self) -> TextFormat {
        TEXT_FORMAT
    }

    fn split<'t>(&self, text: &'t str) -> Vec<&'t str> {
        split::bytes(text, MAX_TEXT_BYTES)
    }

    /// A custom bot posts into its one group: the conversation is not needed.
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
    use axum::extract::State;
    use axum::routing::post;

    use super::*;

    #[test]
    fn config_wants_a_hook_address_and_a_nonempty_secret() {
        let config = |url: &str, secret: Option<&str>| FeishuWebhookConfig {
            url: url.into(),
            secret: secret.map(Secret::from),
        };
        let hook = "https://open.feishu.cn/open-apis/bot/v2/hook/abc-123";
        assert_eq!(config(hook, None).check(), Ok(()));
        assert_eq!(config(hook, Some("s")).check(), Ok(()));
        assert!(
            config(hook, Some(" "))
                .check()
                .unwrap_err()
                .contains("secret")
        );
        let wrong = config("https://open.feishu.cn/open-apis/bot/v2/hook/", None)
            .check()
            .unwrap_err();
        assert!(wrong.contains("custom bot"), "{wrong}");
        assert!(config("ftp://x/bot/v2/hook/a", None).check().is_err());
        assert_eq!(
            config("https://open.feishu.cn/open-apis/bot/v2/hook/${HOOK}", None).check(),
            Ok(())
        );
        let bot = FeishuWebhook::new("ops", &config(hook, Some("s3cret"))).expect("bot");
        let shown = format!("{bot:?}{}", shown(&bot.url));
        assert!(
            !shown.contains("abc-123") && !shown.contains("s3cret"),
            "{shown}"
        );
    }

    /// A stand-in for the hook: checks the sign like Feishu, answers codes from a queue.
    #[derive(Clone, Default)]
    struct Hook {
        bodies: Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
        answers: Arc<std::sync::Mutex<VecDeque<serde_json::Value>>>,
    }

    async fn hook(
        State(hook): State<Hook>,
        Json(body): Json<serde_json::Value>,
    ) -> Json<serde_json::Value> {
        let timestamp = body["timestamp"].as_str().and_then(|t| t.parse().ok());
        let signed = timestamp.is_some_and(|ts| body["sign"] == webhook_sign(ts, "s3cret"));
        hook.bodies.lock().expect("lock").push(body);
        if !signed {
            return Json(
                serde_json::json!({"code": 19021, "data": {}, "msg": "sign match fail or timestamp is not within one hour from current time"}),
            );
        }
        let queued = hook.answers.lock().expect("lock").pop_front();
        Json(queued.unwrap_or_else(|| serde_json::json!({"code": 0, "data": {}, "msg": "success", "StatusCode": 0, "StatusMessage": "success"})))
    }

    async fn serve(hook_state: Hook) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = axum::Router::new()
            .route("/open-apis/bot/v2/hook/{token}", post(hook))
            .with_state(hook_state);
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/open-apis/bot/v2/hook/tok")
    }

    #[tokio::test]
    async fn posts_signed_text_and_reads_the_bots_codes() {
        let state = Hook::default();
        let url = serve(state.clone()).await;
        let bot = FeishuWebhook::new(
            "ops",
            &FeishuWebhookConfig {
                url: url.clone().into(),
                secret: Some("s3cret".into()),
            },
        )
        .expect("bot");
        bot.post("值班提醒").await.expect("sent");
        state.answers.lock().expect("lock").extend([
            serde_json::json!({"code": 11232, "msg": "frequency limited"}),
            serde_json::json!({"code": 19024, "msg": "Key Words Not Found"}),
            serde_json::json!({"StatusCode": 0, "StatusMessage": "success"}),
        ]);
        assert!(matches!(
            bot.post("x").await,
            Err(SendError::Retry { after: Some(_), .. })
        ));
        let refused = bot.post("x").await;
        assert!(
            matches!(&refused, Err(SendError::Permanent(m)) if m.contains("19024")),
            "{refused:?}"
        );
        bot.post("old-style answer").await.expect("sent");
        let bodies = state.bodies.lock().expect("lock").clone();
        assert_eq!(bodies[0]["msg_type"], "text");
        assert_eq!(
            bodies[0]["content"],
            serde_json::json!({"text": "值班提醒"})
        );
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("now")
            .as_secs();
        let sent_at: u64 = bodies[0]["timestamp"]
            .as_str()
            .expect("ts")
            .parse()
            .expect("secs");
        assert!(now.abs_diff(sent_at) < 60);

        // Without the secret the stand-in refuses the sign, and that is no retry.
        let unsigned = FeishuWebhook::new(
            "ops",
            &FeishuWebhookConfig {
                url: url.into(),
                secret: None,
            },
        )
        .expect("bot");
        let refused = unsigned.post("x").await;
        assert!(
            matches!(&refused, Err(SendError::Permanent(m)) if m.contains("19021") && m.contains("secret")),
            "{refused:?}"
        );
        let last = state
            .bodies
            .lock()
            .expect("lock")
            .last()
            .cloned()
            .expect("body");
        assert!(last.get("sign").is_none() && last.get("timestamp").is_none());
    }
}
