//! Feishu / Lark (飞书, DESIGN.md §6): a self-built app's bot. Feishu posts each event to
//! our callback URL (`/callback/<name>`), and answers go out through the open API with a
//! cached `tenant_access_token`. Lark is the same platform under another domain, so the
//! two differ only in `base_url`. [`webhook`] is the send-only custom bot of a group.
//!
//! Feishu documents followed (open.feishu.cn/document/…, also at open.larksuite.com):
//! - 将事件发送至开发者服务器 and 步骤三：接收事件: the Encrypt Key, the Verification Token
//!   and `X-Lark-Signature` ([`crypto`]); the URL check is not signed ("不包括请求网址校验"),
//!   so only its token, inside the decrypted body, vouches for it.
//! - 事件订阅概述 / Event Subscription Optimization Guide: a push must get HTTP 200 within
//!   3 seconds or it is sent again (at 15 s, 5 min, 1 h and 6 h), so an event is stored and
//!   acknowledged at once and the answer goes through the outbox.
//! - auth-v3 自建应用获取 tenant_access_token (`POST /open-apis/auth/v3/tenant_access_token/
//!   internal`): valid `expire` seconds (at most 2 h); asked again with less than 30 min
//!   left, it hands out a new one. oapi-sdk-go `core/tokenmanager.go` caches it until 3 min
//!   before `expire` and `core/httptransport.go` sends again once on an invalid-token code.
//! - im-v1 发送消息 (`POST /open-apis/im/v1/messages?receive_id_type=…`) and 回复消息
//!   (`POST /open-apis/im/v1/messages/:message_id/reply`): `content` is a JSON string,
//!   `uuid` makes a repeated request within 1 h a no-op, text bodies up to 150 KB
//!   (oapi-sdk-go `service/im/v1/model.go`, `CreateMessageReqBody`/`ReplyMessageReqBody`).
//! - 频控策略 (server-docs/api-call-guide/frequency-control): a rate limit answers HTTP 429
//!   (older APIs 400) with code 99991400 and `x-ogw-ratelimit-reset` seconds to wait.
//! - 获取机器人信息 (`GET /open-apis/bot/v3/info`): the bot's own `open_id`, to know its
//!   @-mention.
//!
//! Where an answer goes: an action's conversation is a Feishu id, read by its prefix.
//! An event's conversation is its `chat_id` (`oc_…`), so a reply is sent into the chat it
//! came from; `om_…` (a message id, an event's `platform_message_id`) replies to that
//! message, quoting it; `ou_…`/`on_…` write to a user by open_id/union_id, and an address
//! with `@` by email. Nothing has to be remembered between the event and its answer, so
//! a restart loses nothing, and concurrent askers in one group are never mixed up.

pub mod crypto;
pub mod message;
pub mod webhook;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use reqwest::{Client, Url};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::call;
use super::check::{Secret, http_url, required, unexpanded};
use super::door::{self, Door, Reason};
use super::replay::{Replays, Seen};
use super::split;
use super::token::TokenCache;
use super::{Adapter, AdapterContext, AdapterError, Delivered, Outgoing, SendError};
use crate::format::TextFormat;
use crate::http::backoff_delay;
use crypto::EventCrypto;
use message::{Callback, MESSAGE_RECEIVE};

/// Answers go out as `msg_type: text`, which shows markdown as it is.
pub const TEXT_FORMAT: TextFormat = TextFormat::Plain;
pub const PLATFORM: &str = "feishu";

const FEISHU_BASE_URL: &str = "https://open.feishu.cn";
const LARK_BASE_URL: &str = "https://open.larksuite.com";
const TIMEOUT: Duration = Duration::from_secs(10);

/// A text message's body may hold 150 KB (发送消息). The text is JSON-encoded twice
/// (`content` is a JSON string inside the JSON body), which turns a quote or a line break
/// into up to four bytes: 30 KB of text stays under the limit.
pub const MAX_TEXT_BYTES: usize = 30 * 1024;

/// oapi-sdk-go `core/tokenmanager.go` (`expiryDelta`): stop using a token this long
/// before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(180);
/// 2 h is the documented maximum; a larger `expire` from the network is capped.
const TOKEN_LIFE_MAX: Duration = Duration::from_secs(7200);
/// Codes that mean the token is missing or invalid: fetch a new one and send once more.
/// 99991663 (tenant token invalid) and 99991671 (access token invalid) are oapi-sdk-go
/// `core/constants.go`'s; 99991661 is the general error list's "missing access token".
const TOKEN_ERRORS: [i64; 3] = [99991661, 99991663, 99991671];
/// Rate limits: 99991400 (频控策略), 11232 (a tenant's message service, 自定义机器人使用
/// 指南) and 230020 (one chat's, im-v1 发送消息's error list).
const RATE_LIMITS: [i64; 3] = [99991400, 11232, 230020];
/// The wait when a rate limit names none: the send limits are counted per second.
const RATE_LIMIT_WAIT: Duration = Duration::from_secs(2);
/// The longest wait a rate limit's header is trusted with.
const RATE_LIMIT_WAIT_MAX: Duration = Duration::from_secs(600);

/// How old a push's `X-Lark-Request-Timestamp` may be. Feishu sends a push it got no 200
/// for again, the last retry some 7 h after the first, and neither its documents nor its
/// SDKs say whether a retry is signed anew (the SDKs check no timestamp at all). A tight
/// window could refuse exactly the late retries that exist for when we were down, and a
/// replay inside the window gains nothing: a message is keyed by its `message_id`, which
/// the store remembers for ever. So the window covers the retries (8 h) and stops only a
/// request captured and replayed later than any retry could come.
const MAX_AGE: Duration = Duration::from_secs(8 * 3600);
/// How far ahead of our clock a timestamp may be: a desktop's clock may be behind.
const MAX_AHEAD: Duration = Duration::from_secs(15 * 60);
/// A callback's body, at most. A message's content may hold 150 KB (发送消息: text and
/// post bodies), which the event carries JSON-escaped inside the event JSON, and an
/// Encrypt Key wraps all of it in base64 (a third more): a megabyte takes the largest
/// message Feishu delivers and keeps a flood from filling memory.
const MAX_CALLBACK_BYTES: usize = 1024 * 1024;

/// Feishu's domestic service or its international one (Lark).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Brand {
    #[default]
    Feishu,
    Lark,
}

/// One `type = "feishu"` adapter of `tapwire.toml`. Secrets belong in the environment:
/// `app_secret = "${FEISHU_APP_SECRET}"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeishuConfig {
    /// The app's App ID (`cli_…`, 凭证与基础信息).
    pub app_id: String,
    /// The app's App Secret.
    pub app_secret: Secret,
    /// 事件与回调 › 加密策略: the Verification Token every callback carries.
    pub verification_token: Secret,
    /// 事件与回调 › 加密策略: the Encrypt Key. Set, callbacks are encrypted and each event
    /// push is signed (`X-Lark-Signature`), and unsigned events are refused; unset, only
    /// the Verification Token vouches for a callback.
    #[serde(default)]
    pub encrypt_key: Option<Secret>,
    /// `feishu` (open.feishu.cn) or `lark` (open.larksuite.com): the default `base_url`.
    #[serde(default)]
    pub brand: Brand,
    /// Where the open API is; tests point it at a stand-in. Wins over `brand`.
    #[serde(default)]
    pub base_url: Option<String>,
}

impl FeishuConfig {
    /// What is wrong with the section, if anything; messages never show a secret.
    pub fn check(&self) -> Result<(), String> {
        required(&[
            ("app_id", &self.app_id),
            ("app_secret", &self.app_secret),
            ("verification_token", &self.verification_token),
        ])?;
        if let Some(key) = &self.encrypt_key
            && key.trim().is_empty()
        {
            // An empty variable must not quietly turn signature checks off.
            return Err(
                "encrypt_key must not be empty: leave it out if the app has no Encrypt Key".into(),
            );
        }
        if !self.base_url.as_deref().is_some_and(unexpanded) {
            self.parsed_base_url()?;
        }
        Ok(())
    }

    fn parsed_base_url(&self) -> Result<Url, String> {
        let text = match (&self.base_url, self.brand) {
            (Some(url), _) => url.trim(),
            (None, Brand::Feishu) => FEISHU_BASE_URL,
            (None, Brand::Lark) => LARK_BASE_URL,
        };
        http_url("base_url", text)
    }
}

/// The open API's JSON answers: `code` 0 is success, and a non-zero code is a failure
/// whatever the HTTP status said.
#[derive(Debug, Deserialize)]
struct Answer {
    /// Required: JSON without it is not Feishu's answer and must not pass for success.
    code: i64,
    #[serde(default)]
    msg: String,
    #[serde(default)]
    tenant_access_token: Option<String>,
    #[serde(default)]
    expire: Option<u64>,
    #[serde(default)]
    bot: Option<BotInfo>,
    #[serde(skip)]
    status: u16,
    /// What the rate-limit headers asked to wait.
    #[serde(skip)]
    wait: Option<Duration>,
}

#[derive(Debug, Deserialize)]
struct BotInfo {
    #[serde(default)]
    open_id: String,
}

/// The open API client: token cache, sends, the bot's identity.
struct Api {
    name: String,
    app_id: String,
    app_secret: String,
    base_url: Url,
    client: Client,
    token: TokenCache,
}

/// Where an action's conversation points.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target<'a> {
    /// `receive_id_type` and the id.
    Send(&'static str, &'a str),
    /// A message to answer, quoted.
    Reply(&'a str),
}

impl<'a> Target<'a> {
    fn parse(conversation: &'a str) -> Result<Target<'a>, SendError> {
        let id = conversation.trim();
        let prefixed = |prefix: &str| {
            id.strip_prefix(prefix).is_some_and(|rest| {
                !rest.is_empty()
                    && rest
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            })
        };
        if prefixed("oc_") {
            Ok(Target::Send("chat_id", id))
        } else if prefixed("om_") {
            Ok(Target::Reply(id))
        } else if prefixed("ou_") {
            Ok(Target::Send("open_id", id))
        } else if prefixed("on_") {
            Ok(Target::Send("union_id", id))
        } else if id.contains('@') && !id.contains(char::is_whitespace) {
            Ok(Target::Send("email", id))
        } else {
            Err(SendError::Permanent(format!(
                "conversation {id:?} is not a Feishu chat_id (oc_…), message id (om_…), open_id (ou_…), union_id (on_…) or email"
            )))
        }
    }
}

/// A send's `uuid`: Feishu runs a request with the same uuid at most once an hour, so a
/// retried piece (or one resumed after a restart) is not posted twice. One per action
/// and piece; at most 50 characters (发送消息).
fn request_uuid(action_id: &str, text: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{action_id}\n{text}").as_bytes());
    format!("tw-{}", &hex::encode(digest)[..32])
}

impl Api {
    /// `path` under `base_url`, keeping a path prefix it may have (a proxy's).
    fn endpoint(&self, path: &str) -> Result<Url, SendError> {
        let base = self.base_url.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}{path}"))
            .map_err(|e| SendError::Permanent(format!("base_url cannot take {path}: {e}")))
    }

    /// A cached token, or a new one.
    async fn access_token(&self) -> Result<String, SendError> {
        self.token.get(|| self.fetch_token()).await
    }

    async fn fetch_token(&self) -> Result<(String, Duration), SendError> {
        let url = self.endpoint("/open-apis/auth/v3/tenant_access_token/internal")?;
        let body = serde_json::json!({"app_id": self.app_id, "app_secret": self.app_secret});
        let answer = self
            .call(self.client.post(url).json(&body), "tenant_access_token")
            .await?;
        if answer.code != 0 {
            return Err(match failure(&answer, "tenant_access_token") {
                SendError::Permanent(reason) => {
                    SendError::Permanent(format!("{reason} (check app_id and app_secret)"))
                }
                retry => retry,
            });
        }
        let token = answer
            .tenant_access_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| SendError::Retry {
                reason: "tenant_access_token answered code 0 without a token".into(),
                after: None,
            })?;
        Ok((token, Duration::from_secs(answer.expire.unwrap_or(7200))))
    }

    /// Forgets `token` unless another send has already replaced it.
    async fn forget_token(&self, token: &str) {
        self.token.forget(token).await;
    }

    /// One request. Feishu answers failures with JSON under many HTTP statuses (400 for
    /// most, 429 for rate limits), so the body is read whatever the status; only a body
    /// that is not Feishu's JSON is judged by the status alone. The URL is never shown.
    async fn call(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<Answer, SendError> {
        let answered = call::call(request, what).await?;
        let status = answered.status;
        let wait = rate_limit_wait(&answered);
        match serde_json::from_slice::<Answer>(&answered.body) {
            Ok(mut answer) => {
                answer.status = status.as_u16();
                answer.wait = wait;
                Ok(answer)
            }
            Err(_) if status == reqwest::StatusCode::TOO_MANY_REQUESTS => Err(SendError::Retry {
                reason: format!("{what}: Feishu answered HTTP {status}"),
                after: Some(wait.unwrap_or(RATE_LIMIT_WAIT)),
            }),
            Err(_) if status.is_server_error() => Err(SendError::Retry {
                reason: format!("{what}: Feishu answered HTTP {status}"),
                after: None,
            }),
            Err(e) => Err(SendError::Permanent(format!(
                "{what}: the answer (HTTP {status}) is not Feishu's JSON ({e})"
            ))),
        }
    }

    /// A request made with a tenant token; a token Feishu calls invalid is replaced once
    /// and the request made again (oapi-sdk-go `doRequest`).
    async fn authorized<F>(&self, what: &str, build: F) -> Result<Answer, SendError>
    where
        F: Fn(&str) -> Result<reqwest::RequestBuilder, SendError>,
    {
        let token = self.access_token().await?;
        let answer = self.call(build(&token)?, what).await?;
        if !TOKEN_ERRORS.contains(&answer.code) {
            return Ok(answer);
        }
        tracing::info!(adapter = %self.name, code = answer.code, "tenant_access_token refused; fetching a new one");
        self.forget_token(&token).await;
        let token = self.access_token().await?;
        let answer = self.call(build(&token)?, what).await?;
        if TOKEN_ERRORS.contains(&answer.code) {
            self.forget_token(&token).await;
            return Err(SendError::Retry {
                reason: format!(
                    "{what}: a fresh tenant_access_token was refused too: code {}: {}",
                    answer.code, answer.msg
                ),
                after: None,
            });
        }
        Ok(answer)
    }

    /// Sends one text (at most [`MAX_TEXT_BYTES`]) to `target`.
    async fn send_text(
        &self,
        target: &Target<'_>,
        text: &str,
        uuid: &str,
    ) -> Result<(), SendError> {
        let content = serde_json::json!({"text": text}).to_string();
        let (url, body, what) = match target {
            Target::Send(id_type, id) => {
                let mut url = self.endpoint("/open-apis/im/v1/messages")?;
                url.query_pairs_mut()
                    .append_pair("receive_id_type", id_type);
                let body = serde_json::json!({
                    "receive_id": id,
                    "msg_type": "text",
                    "content": content,
                    "uuid": uuid,
                });
                (url, body, "im/v1/messages")
            }
            Target::Reply(message_id) => {
                let url =
                    self.endpoint(&format!("/open-apis/im/v1/messages/{message_id}/reply"))?;
                let body =
                    serde_json::json!({"msg_type": "text", "content": content, "uuid": uuid});
                (url, body, "im/v1/messages/reply")
            }
        };
        let answer = self
            .authorized(what, |token| {
                Ok(self.client.post(url.clone()).bearer_auth(token).json(&body))
            })
            .await?;
        if answer.code == 0 && (200..300).contains(&answer.status) {
            Ok(())
        } else {
            Err(failure(&answer, what))
        }
    }

    /// The bot's own open_id (获取机器人信息).
    async fn bot_open_id(&self) -> Result<String, SendError> {
        let url = self.endpoint("/open-apis/bot/v3/info")?;
        let answer = self
            .authorized("bot/v3/info", |token| {
                Ok(self.client.get(url.clone()).bearer_auth(token))
            })
            .await?;
        if answer.code != 0 {
            return Err(failure(&answer, "bot/v3/info"));
        }
        answer
            .bot
            .map(|bot| bot.open_id)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                SendError::Permanent(
                    "bot/v3/info answered no bot open_id (is the app's bot ability on?)".into(),
                )
            })
    }
}

/// What a failed answer means: a rate limit waits, a server error retries, the rest is
/// a refusal that sending again cannot change.
fn failure(answer: &Answer, what: &str) -> SendError {
    if RATE_LIMITS.contains(&answer.code) || answer.status == 429 {
        return SendError::Retry {
            reason: format!(
                "{what}: Feishu rate limit (code {}: {})",
                answer.code, answer.msg
            ),
            after: Some(answer.wait.unwrap_or(RATE_LIMIT_WAIT)),
        };
    }
    if answer.status >= 500 {
        return SendError::Retry {
            reason: format!(
                "{what}: Feishu answered HTTP {} (code {}: {})",
                answer.status, answer.code, answer.msg
            ),
            after: None,
        };
    }
    SendError::Permanent(format!(
        "{what}: Feishu refused: code {}: {}",
        answer.code, answer.msg
    ))
}

/// `x-ogw-ratelimit-reset` (频控策略: seconds until the limit lifts), else `Retry-After`.
fn rate_limit_wait(answered: &call::Answered) -> Option<Duration> {
    answered
        .headers
        .get("x-ogw-ratelimit-reset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .or_else(|| answered.retry_after())
        .map(|wait| wait.min(RATE_LIMIT_WAIT_MAX))
}

/// What the callback route shares with the adapter.
struct Inbound {
    name: String,
    app_id: String,
    verification_token: String,
    crypto: Option<EventCrypto>,
    /// The bot's open_id, once `bot/v3/info` told it.
    bot_open_id: OnceLock<String>,
    /// Set by `start`; events that come earlier are told to retry.
    ctx: OnceLock<AdapterContext>,
    door: Door,
    replays: Replays<()>,
}

pub struct Feishu {
    name: String,
    api: Arc<Api>,
    inbound: Arc<Inbound>,
    identify: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for Feishu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret, the token and the keys are not shown.
        f.debug_struct("Feishu")
            .field("name", &self.name)
            .field("app_id", &self.api.app_id)
            .field("base_url", &self.api.base_url.as_str())
            .finish_non_exhaustive()
    }
}

impl Feishu {
    pub fn new(name: &str, config: &FeishuConfig) -> Result<Feishu, String> {
        config.check()?;
        let client = crate::http::client(TIMEOUT)?;
        Ok(Feishu {
            name: name.to_string(),
            api: Arc::new(Api {
                name: name.to_string(),
                app_id: config.app_id.trim().to_string(),
                app_secret: config.app_secret.trim().to_string(),
                base_url: config.parsed_base_url()?,
                client,
                token: TokenCache::new(TOKEN_MARGIN, TOKEN_LIFE_MAX),
            }),
            inbound: Arc::new(Inbound {
                name: name.to_string(),
                app_id: config.app_id.trim().to_string(),
                verification_token: config.verification_token.trim().to_string(),
                crypto: config
                    .encrypt_key
                    .as_deref()
                    .map(|key| EventCrypto::new(key.trim())),
                bot_open_id: OnceLock::new(),
                ctx: OnceLock::new(),
                door: Door::new(name),
                replays: Replays::new(),
            }),
            identify: std::sync::Mutex::new(None),
        })
    }

    /// Sends one text (at most [`MAX_TEXT_BYTES`]) to a conversation (see the module
    /// notes for what it may name).
    pub async fn send_text(
        &self,
        conversation: &str,
        text: &str,
        uuid: &str,
    ) -> Result<(), SendError> {
        let target = Target::parse(conversation)?;
        self.api.send_text(&target, text, uuid).await
    }
}

#[async_trait]
impl Adapter for Feishu {
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

    async fn deliver(&self, outgoing: &Outgoing) -> Result<Delivered, SendError> {
        if outgoing.resumed {
            // The uuid makes a repeat within the hour a no-op; later than that, a repeat
            // is still better than a loss.
            tracing::info!(adapter = %self.name, action = %outgoing.action_id, "this may have gone out before the restart; sending it again under the same uuid");
        }
        let uuid = request_uuid(&outgoing.action_id, &outgoing.text);
        self.send_text(&outgoing.conversation, &outgoing.text, &uuid)
            .await
            .map(|()| Delivered::Sent)
    }

    fn routes(&self) -> Option<axum::Router> {
        let router = axum::Router::new()
            .route("/", post(receive))
            .with_state(self.inbound.clone());
        Some(door::limited(router, MAX_CALLBACK_BYTES))
    }

    fn rejections(&self) -> Vec<(Reason, u64)> {
        self.inbound.door.counts()
    }

    /// Takes the context, and learns the bot's open_id in the background (retried until
    /// Feishu answers): until then a group message's leading mention is taken for the
    /// bot's.
    async fn start(&self, ctx: AdapterContext) -> Result<(), AdapterError> {
        // A second start keeps the first context: there is one runtime.
        if self.inbound.ctx.set(ctx).is_err() {
            return Ok(());
        }
        let api = self.api.clone();
        let inbound = self.inbound.clone();
        let task = tokio::spawn(async move {
            let mut attempt = 1;
            loop {
                match api.bot_open_id().await {
                    Ok(id) => {
                        tracing::info!(adapter = %api.name, bot = %id, "bot identified");
                        let _ = inbound.bot_open_id.set(id);
                        return;
                    }
                    Err(SendError::Permanent(reason)) => {
                        tracing::warn!(adapter = %api.name, %reason, "cannot learn the bot's open_id; a group message's leading mention is taken for the bot's");
                        return;
                    }
                    Err(SendError::Retry { reason, after }) => {
                        let wait = after.unwrap_or_else(|| {
                            backoff_delay(
                                Duration::from_secs(2),
                                Duration::from_secs(300),
                                attempt,
                                fastrand::f64(),
                            )
                        });
                        tracing::warn!(adapter = %api.name, %reason, retry_in = ?wait, "cannot learn the bot's open_id yet");
                        tokio::time::sleep(wait).await;
                        attempt = attempt.saturating_add(1);
                    }
                }
            }
        });
        if let Ok(mut slot) = self.identify.lock() {
            *slot = Some(task);
        }
        Ok(())
    }

    async fn stop(&self) -> Result<(), AdapterError> {
        let task = self.identify.lock().ok().and_then(|mut slot| slot.take());
        if let Some(task) = task {
            task.abort();
        }
        Ok(())
    }
}

/// A refusal as Feishu gets it: a status and a word; the reason logged and counted.
fn refuse(door: &Door, reason: Reason, status: StatusCode, detail: &str) -> Response {
    let body = match status {
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::BAD_REQUEST => "bad request",
        StatusCode::PAYLOAD_TOO_LARGE => "too large",
        _ => "try again",
    };
    door.refuse(reason, status, body, detail)
}

fn success() -> Response {
    // The SDKs answer events with this body (oapi-sdk-go `WebhookResponseFormat`).
    axum::Json(serde_json::json!({"msg": "success"})).into_response()
}

fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// A signed push: what names it in the replay cache, and until when.
#[derive(Debug)]
struct Push {
    key: String,
    expires: SystemTime,
}

/// The signature headers of a push, verified: `Ok(Some)` signed and valid, `Ok(None)`
/// not signed at all (only the URL check may be), `Err` a refusal.
fn verify_push(
    crypto: &EventCrypto,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Result<Option<Push>, (Reason, StatusCode, String)> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (timestamp, nonce, signature) = match (
        header("x-lark-request-timestamp"),
        header("x-lark-request-nonce"),
        header("x-lark-signature"),
    ) {
        (None, None, None) => return Ok(None),
        (Some(t), Some(n), Some(s)) => (t, n, s),
        _ => {
            return Err((
                Reason::Signature,
                StatusCode::UNAUTHORIZED,
                "incomplete X-Lark-Request-Timestamp/-Nonce/X-Lark-Signature headers".into(),
            ));
        }
    };
    if !crypto.verify(timestamp, nonce, body, signature) {
        return Err((
            Reason::Signature,
            StatusCode::UNAUTHORIZED,
            "X-Lark-Signature does not match: not from Feishu, or encrypt_key differs from the app's".into(),
        ));
    }
    let sent = timestamp
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|secs| UNIX_EPOCH.checked_add(Duration::from_secs(secs)))
        .ok_or_else(|| {
            (
                Reason::Malformed,
                StatusCode::BAD_REQUEST,
                format!("X-Lark-Request-Timestamp {timestamp:?} is not a number of seconds"),
            )
        })?;
    match now.duration_since(sent) {
        Ok(age) if age > MAX_AGE => Err((
            Reason::Stale,
            StatusCode::UNAUTHORIZED,
            format!(
                "stale X-Lark-Request-Timestamp: {} s old (a replay?)",
                age.as_secs()
            ),
        )),
        Err(ahead) if ahead.duration() > MAX_AHEAD => Err((
            Reason::Stale,
            StatusCode::UNAUTHORIZED,
            format!(
                "X-Lark-Request-Timestamp is {} s ahead of our clock (is this clock right?)",
                ahead.duration().as_secs()
            ),
        )),
        // The signature covers the body, so with the timestamp and nonce it names this
        // very request.
        _ => Ok(Some(Push {
            key: format!(
                "{}:{nonce}:{}",
                timestamp.trim(),
                signature.trim().to_ascii_lowercase()
            ),
            expires: sent + MAX_AGE,
        })),
    }
}

/// The `encrypt` field of an encrypted body, the only thing read of it before it is
/// decrypted.
fn encrypted_field(body: &[u8]) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Encrypted {
        encrypt: String,
    }
    serde_json::from_slice::<Encrypted>(body)
        .map(|e| e.encrypt)
        .map_err(|e| format!("expected an encrypted body {{\"encrypt\": …}}: {e}"))
}

/// A callback: through the door (size; signature, timestamp and replays when the app has
/// an Encrypt Key), decrypted, its token checked; the URL check answered, a message stored
/// and acknowledged at once (no passive reply: the answer goes through the outbox).
async fn receive(
    State(inbound): State<Arc<Inbound>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let door = &inbound.door;
    let body = match door.body(body) {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let (plain, claim) = match &inbound.crypto {
        Some(crypto) => {
            let now = SystemTime::now();
            let push = match verify_push(crypto, &headers, &body, now) {
                Ok(push) => push,
                Err((reason, status, detail)) => return refuse(door, reason, status, &detail),
            };
            let claim = match push.map(|p| inbound.replays.check(&p.key, p.expires, now)) {
                None => None,
                Some(Seen::New(claim)) => Some(claim),
                Some(Seen::Done(())) => {
                    // Feishu's own retry of a push we answered late is this too.
                    door.refused(
                        Reason::Replay,
                        StatusCode::OK,
                        "a push taken before; answered as then",
                    );
                    return success();
                }
                Some(Seen::InFlight) => {
                    return refuse(
                        door,
                        Reason::Replay,
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the same push is being handled; Feishu is asked to send it again",
                    );
                }
            };
            let plain = match encrypted_field(&body) {
                Ok(encrypt) => crypto.decrypt(&encrypt),
                Err(reason) => {
                    return refuse(door, Reason::Malformed, StatusCode::BAD_REQUEST, &reason);
                }
            };
            match plain {
                Ok(plain) => (plain, claim),
                Err(error) => {
                    return refuse(
                        door,
                        Reason::Undecryptable,
                        StatusCode::BAD_REQUEST,
                        &error.to_string(),
                    );
                }
            }
        }
        None => match String::from_utf8(body.to_vec()) {
            Ok(plain) => (plain, None),
            Err(_) => {
                return refuse(
                    door,
                    Reason::Malformed,
                    StatusCode::BAD_REQUEST,
                    "body is not UTF-8",
                );
            }
        },
    };
    let signed = claim.is_some();
    let response = answer(&inbound, &plain, signed).await;
    // Only what was taken is remembered: a refusal or a failure lets Feishu's retry in.
    if let Some(claim) = claim
        && response.status() == StatusCode::OK
    {
        claim.done(());
    }
    response
}

/// A decrypted callback, read and answered.
async fn answer(inbound: &Inbound, plain: &str, signed: bool) -> Response {
    let name = inbound.name.as_str();
    let door = &inbound.door;
    let callback = match Callback::parse(plain) {
        Ok(callback) => callback,
        Err(reason) => return refuse(door, Reason::Malformed, StatusCode::BAD_REQUEST, &reason),
    };
    let bad_token = |token: &str| !same(token, &inbound.verification_token);
    let unauthorized =
        |detail: &str| refuse(door, Reason::Signature, StatusCode::UNAUTHORIZED, detail);
    match callback {
        Callback::Challenge { challenge, token } => {
            if bad_token(&token) {
                return unauthorized("url_verification with another Verification Token");
            }
            tracing::info!(adapter = name, "callback URL verified");
            axum::Json(serde_json::json!({"challenge": challenge})).into_response()
        }
        _ if inbound.crypto.is_some() && !signed => unauthorized(
            "an event without X-Lark-Signature (the app has an Encrypt Key, so Feishu signs every event)",
        ),
        Callback::V1 { kind, token } => {
            if bad_token(&token) {
                return unauthorized("a 1.0 event with another Verification Token");
            }
            tracing::debug!(adapter = name, kind, "1.0 event; not routed");
            success()
        }
        Callback::Event { header, event, raw } => {
            if bad_token(&header.token) {
                return unauthorized("an event with another Verification Token");
            }
            if !header.app_id.is_empty() && header.app_id != inbound.app_id {
                // Verified for us, yet for another app: the callback URL was pasted into
                // the wrong app's settings. Answered, so Feishu does not retry.
                door.refused(
                    Reason::WrongRecipient,
                    StatusCode::OK,
                    &format!(
                        "event for another app: {}, this one is {}; ignored",
                        header.app_id, inbound.app_id
                    ),
                );
                return success();
            }
            if header.event_type != MESSAGE_RECEIVE {
                tracing::debug!(adapter = name, event_type = %header.event_type, "event of a kind not routed; ignored");
                return success();
            }
            let bot = inbound.bot_open_id.get().map(String::as_str);
            let event = match message::message_event(name, &event, raw, bot) {
                Ok(event) => event,
                Err(reason) => {
                    return refuse(door, Reason::Malformed, StatusCode::BAD_REQUEST, &reason);
                }
            };
            let Some(ctx) = inbound.ctx.get() else {
                tracing::warn!(
                    adapter = name,
                    "event before the adapter started; Feishu is asked to send it again"
                );
                return (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response();
            };
            match ctx.inbox.accept(event).await {
                Ok(fresh) => {
                    if !fresh {
                        tracing::debug!(adapter = name, event_id = %header.event_id, "event seen before (Feishu's retry); not routed again");
                    }
                    success()
                }
                Err(error) => {
                    // Not stored: a 5xx makes Feishu push it again.
                    tracing::error!(adapter = name, %error, "could not store a callback's event");
                    (StatusCode::INTERNAL_SERVER_ERROR, "try again").into_response()
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
