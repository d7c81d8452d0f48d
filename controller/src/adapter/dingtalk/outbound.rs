//! Answers to DingTalk: through the conversation's `sessionWebhook` while DingTalk takes
//! it, then through the robot API with the app's access token.
//!
//! Sources:
//! - The session webhook: 机器人接收消息 (receive-message) hands it with every message,
//!   with `sessionWebhookExpiredTime` (ms); it takes the robot message bodies
//!   `{"msgtype": "text", "text": {"content"}}` and `{"msgtype": "markdown", "markdown":
//!   {"title", "text"}}` (dingtalk-stream-sdk-go `chatbot/chatbot_replier.go`
//!   `SimpleReplyText`/`SimpleReplyMarkdown`, dingtalk-stream-sdk-python `chatbot.py`
//!   `reply_text`/`reply_markdown`) and answers HTTP 200 `{"errcode", "errmsg"}`, like the
//!   custom robot it resembles.
//! - The token: `POST /v1.0/oauth2/accessToken` with `{"appKey", "appSecret"}` answers
//!   `{"accessToken", "expireIn"}` (dingtalk-stream-sdk-python `stream.py`
//!   `get_access_token`, which keeps it until 5 minutes before it expires and drops it on
//!   HTTP 401); it is sent as the `x-acs-dingtalk-access-token` header.
//! - Sends: `POST /v1.0/robot/oToMessages/batchSend` (`robotCode`, `userIds` — at most 20
//!   —, `msgKey`, `msgParam`) answers `processQueryKey`, `invalidStaffIdList` and
//!   `flowControlledStaffIdList` (推送频繁，被限流); `POST /v1.0/robot/groupMessages/send`
//!   (`robotCode`, `openConversationId`, `msgKey`, `msgParam` of at most 15,000 bytes)
//!   answers `processQueryKey` (机器人批量发送人与机器人会话消息 / 机器人发送群聊消息, and
//!   aliyun/dingtalk-sdk `robot_1_0` `BatchSendOTORequest`/`OrgGroupSendRequest`). The
//!   templates are `sampleText` with `{"content"}` and `sampleMarkdown` with `{"title",
//!   "text"}` (企业机器人发送消息的消息类型). Refusals come as HTTP 4xx/5xx with
//!   `{"code", "message", "requestid"}`; a token DingTalk does not know is
//!   `InvalidAuthentication` ("不合法的access_token"), its rate limits carry codes
//!   `Forbidden.AccessDenied.QpsLimit…`.

use std::collections::HashMap;
use std::sync::Mutex as SyncMutex;
use std::time::{Duration, SystemTime};

use reqwest::{Client, StatusCode, Url};
use serde::Deserialize;

use super::message::{SessionWebhook, Target};
use crate::adapter::token::TokenCache;
use crate::adapter::{SendError, call};
use crate::http::shown_url;

/// stream.py keeps a token until 5 minutes before DingTalk says it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(5 * 60);
/// DingTalk's tokens live 7200 s; a larger value from the network is not trusted.
const TOKEN_LIFE_MAX: Duration = Duration::from_secs(7200);
/// A webhook this close to its expiry is not used: the post could arrive after it.
const SESSION_MARGIN: Duration = Duration::from_secs(30);
/// How long to wait on a rate limit that names no wait: the API's limits are per second,
/// a user's flow control (`flowControlledStaffIdList`) gives no window.
const QPS_WAIT: Duration = Duration::from_secs(1);
const FLOW_CONTROL_WAIT: Duration = Duration::from_secs(30);
/// Webhook errcodes: -1 system busy (DingTalk's global codes: 稍后重试), 130101 sending too
/// fast (the custom robot's 20 a minute; named by the issue and by open implementations
/// such as QwenLM/qwen-code's DingTalk channel, which also retries 410100).
pub(super) const ERR_BUSY: i64 = -1;
pub(super) const ERR_TOO_FAST: i64 = 130101;
pub(super) const ERR_TOO_FAST_2: i64 = 410100;
/// The custom robot's window is a minute (自定义机器人: 每个机器人每分钟最多发送20条).
pub(super) const WEBHOOK_RATE_WAIT: Duration = Duration::from_secs(60);

/// What goes out: text or markdown. DingTalk's markdown needs a title, shown where the
/// message is announced (notifications, the conversation list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Body {
    Text(String),
    Markdown { title: String, text: String },
}

impl Body {
    pub(super) fn new(text: &str, markdown: bool) -> Body {
        if !markdown {
            return Body::Text(text.to_string());
        }
        // The first line that says something, without its markdown marks.
        let title: String = text
            .lines()
            .map(|l| {
                l.trim()
                    .trim_start_matches(['#', '>', '-', ' '])
                    .replace(['*', '`'], "")
            })
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim().chars().take(32).collect())
            .unwrap_or_else(|| "消息".into());
        Body::Markdown {
            title,
            text: text.to_string(),
        }
    }

    /// A robot message body (session webhook, custom robot).
    pub(super) fn robot_message(&self) -> serde_json::Value {
        match self {
            Body::Text(content) => {
                serde_json::json!({"msgtype": "text", "text": {"content": content}})
            }
            Body::Markdown { title, text } => {
                serde_json::json!({"msgtype": "markdown", "markdown": {"title": title, "text": text}})
            }
        }
    }

    /// The robot API's template and its parameters, a JSON string.
    fn template(&self) -> (&'static str, String) {
        match self {
            Body::Text(content) => (
                "sampleText",
                serde_json::json!({"content": content}).to_string(),
            ),
            Body::Markdown { title, text } => (
                "sampleMarkdown",
                serde_json::json!({"title": title, "text": text}).to_string(),
            ),
        }
    }
}

/// Each conversation's latest session webhook, in memory.
///
/// DingTalk hands one with every message and takes answers through it until its expiry
/// (about 20 to 90 minutes in the examples seen). After a restart none is known: answers
/// go through the robot API, which needs the app's permission to send as a robot
/// (企业内机器人发送消息权限) and, for a group, the robot in it; a single chat with someone
/// outside the organisation (`single:`) has no robot API address and cannot be answered
/// until they write again.
#[derive(Debug, Default)]
pub(super) struct Sessions {
    webhooks: SyncMutex<HashMap<String, SessionWebhook>>,
}

impl Sessions {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, SessionWebhook>> {
        self.webhooks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A message of `conversation` brought `session`: it replaces the one kept unless
    /// that one lasts longer (a late redelivery must not shorten it). Expired ones go.
    pub(super) fn note(&self, conversation: &str, session: SessionWebhook, now: SystemTime) {
        let mut map = self.map();
        map.retain(|_, s| s.expires_at > now);
        if session.expires_at <= now {
            return;
        }
        if map
            .get(conversation)
            .is_some_and(|kept| kept.expires_at >= session.expires_at)
        {
            return;
        }
        map.insert(conversation.to_string(), session);
    }

    /// The webhook to answer `conversation` through now, if one still lasts.
    pub(super) fn valid(&self, conversation: &str, now: SystemTime) -> Option<String> {
        self.map()
            .get(conversation)
            .filter(|s| s.expires_at > now + SESSION_MARGIN)
            .map(|s| s.url.clone())
    }

    /// DingTalk refused `url`: the next answer takes the robot API.
    pub(super) fn forget(&self, conversation: &str, url: &str) {
        let mut map = self.map();
        if map.get(conversation).is_some_and(|s| s.url == url) {
            map.remove(conversation);
        }
    }
}

/// What a robot webhook's answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum HookAnswer {
    Sent,
    /// DingTalk would not take it through this webhook (expired, unknown, refused).
    Refused(String),
    Failed(SendError),
}

#[derive(Debug, Default, Deserialize)]
struct ErrBody {
    #[serde(default)]
    errcode: Option<i64>,
    #[serde(default)]
    errmsg: Option<String>,
}

/// Reads a robot webhook's answer: HTTP 200 with `errcode` 0 is taken; HTTP 200 with
/// another `errcode` is not (an answer without `errcode` is not taken for success).
pub(super) fn classify_hook(status: u16, body: &[u8]) -> HookAnswer {
    if status == 429 || status >= 500 {
        return HookAnswer::Failed(SendError::Retry {
            reason: format!("the webhook answered HTTP {status}"),
            after: (status == 429).then_some(WEBHOOK_RATE_WAIT),
        });
    }
    if !(200..300).contains(&status) {
        return HookAnswer::Refused(format!("HTTP {status}"));
    }
    let answer: ErrBody = serde_json::from_slice(body).unwrap_or_default();
    let message = answer.errmsg.unwrap_or_default();
    match answer.errcode {
        Some(0) => HookAnswer::Sent,
        Some(code @ (ERR_TOO_FAST | ERR_TOO_FAST_2)) => HookAnswer::Failed(SendError::Retry {
            reason: format!("DingTalk rate limit (errcode {code}: {message})"),
            after: Some(WEBHOOK_RATE_WAIT),
        }),
        Some(ERR_BUSY) => HookAnswer::Failed(SendError::Retry {
            reason: format!("DingTalk is busy (errcode -1: {message})"),
            after: None,
        }),
        Some(code) => HookAnswer::Refused(format!("errcode {code}: {message}")),
        None => HookAnswer::Refused(format!("HTTP {status} without an errcode")),
    }
}

/// What the robot API's answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ApiAnswer {
    Sent,
    /// The token was refused: fetch another and try once more.
    TokenRefused(String),
    Failed(SendError),
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiBody {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    process_query_key: Option<String>,
    #[serde(default)]
    invalid_staff_id_list: Vec<String>,
    #[serde(default)]
    flow_controlled_staff_id_list: Vec<String>,
}

/// Reads an answer of `oToMessages/batchSend` or `groupMessages/send`; `user` is the one
/// recipient of a batchSend.
pub(super) fn classify_api(
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
    user: Option<&str>,
) -> ApiAnswer {
    let answer: ApiBody = serde_json::from_slice(body).unwrap_or_default();
    let code = answer.code.clone().unwrap_or_default();
    let described = match (&answer.code, &answer.message) {
        (Some(code), Some(message)) => format!("HTTP {status}, {code}: {message}"),
        (Some(code), None) => format!("HTTP {status}, {code}"),
        _ => format!("HTTP {status}"),
    };
    if (200..300).contains(&status) {
        if let Some(user) = user {
            if answer.invalid_staff_id_list.iter().any(|u| u == user) {
                return ApiAnswer::Failed(SendError::Permanent(format!(
                    "DingTalk does not know user {user} (invalidStaffIdList)"
                )));
            }
            if answer
                .flow_controlled_staff_id_list
                .iter()
                .any(|u| u == user)
            {
                return ApiAnswer::Failed(SendError::Retry {
                    reason: format!("DingTalk flow-controls messages to {user}"),
                    after: Some(retry_after.unwrap_or(FLOW_CONTROL_WAIT)),
                });
            }
        }
        if answer.process_query_key.is_some_and(|k| !k.is_empty()) {
            return ApiAnswer::Sent;
        }
        return ApiAnswer::Failed(SendError::Permanent(format!(
            "DingTalk answered {described} without a processQueryKey"
        )));
    }
    if status == 401 || code == "InvalidAuthentication" {
        return ApiAnswer::TokenRefused(described);
    }
    if status == 429 || code.contains("QpsLimit") || code.contains("Throttling") {
        return ApiAnswer::Failed(SendError::Retry {
            reason: format!("DingTalk rate limit ({described})"),
            after: Some(retry_after.unwrap_or(QPS_WAIT)),
        });
    }
    if status >= 500 {
        return ApiAnswer::Failed(SendError::Retry {
            reason: format!("DingTalk is busy ({described})"),
            after: retry_after,
        });
    }
    ApiAnswer::Failed(SendError::Permanent(format!(
        "DingTalk refused the message ({described})"
    )))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenAnswer {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expire_in: Option<u64>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// The robot API: token and sends.
pub(super) struct Api {
    client_id: String,
    secret: String,
    robot_code: String,
    api_base: Url,
    client: Client,
    token: TokenCache,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("client_id", &self.client_id)
            .field("robot_code", &self.robot_code)
            .field("api_base", &self.api_base.as_str())
            .finish_non_exhaustive()
    }
}

impl Api {
    pub(super) fn new(
        client_id: String,
        secret: String,
        robot_code: String,
        api_base: Url,
        client: Client,
    ) -> Api {
        Api {
            client_id,
            secret,
            robot_code,
            api_base,
            client,
            token: TokenCache::new(TOKEN_MARGIN, TOKEN_LIFE_MAX),
        }
    }

    /// `api_base` with `path` (absolute, under any path prefix of the base).
    pub(super) fn url(&self, path: &str) -> Result<Url, SendError> {
        url_under(&self.api_base, path).map_err(SendError::Permanent)
    }

    /// A cached token or a new one.
    async fn access_token(&self) -> Result<String, SendError> {
        self.token.get(|| self.fetch_token()).await
    }

    async fn fetch_token(&self) -> Result<(String, Duration), SendError> {
        let url = self.url("/v1.0/oauth2/accessToken")?;
        let body = serde_json::json!({"appKey": self.client_id, "appSecret": self.secret});
        let answered = call::call(
            self.client.post(url).json(&body),
            "fetching an access token",
        )
        .await?;
        let status = answered.status;
        let answer: Option<TokenAnswer> = serde_json::from_slice(&answered.body).ok();
        let token = answer
            .as_ref()
            .and_then(|a| a.access_token.clone())
            .filter(|t| !t.is_empty());
        let Some(token) = token.filter(|_| status.is_success()) else {
            let (code, message) = answer
                .map(|a| (a.code.unwrap_or_default(), a.message.unwrap_or_default()))
                .unwrap_or_default();
            let reason = format!(
                "DingTalk gave no access token (HTTP {status}, {code}: {message}); check client_id and client_secret"
            );
            return Err(
                if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                    SendError::Retry {
                        reason,
                        after: None,
                    }
                } else {
                    SendError::Permanent(reason)
                },
            );
        };
        let life = answer.and_then(|a| a.expire_in).map(Duration::from_secs);
        Ok((token, life.unwrap_or(TOKEN_LIFE_MAX)))
    }

    /// Drops `token` if it is still the cached one.
    async fn refused(&self, token: &str) {
        self.token.forget(token).await;
    }

    /// Sends `body` to a `group:` or `user:` conversation; a refused token is replaced
    /// once.
    pub(super) async fn send(&self, target: &Target, body: &Body) -> Result<(), SendError> {
        let (msg_key, msg_param) = body.template();
        let (path, request, user) = match target {
            Target::Group(id) => (
                "/v1.0/robot/groupMessages/send",
                serde_json::json!({
                    "robotCode": self.robot_code,
                    "openConversationId": id,
                    "msgKey": msg_key,
                    "msgParam": msg_param,
                }),
                None,
            ),
            Target::User(id) => (
                "/v1.0/robot/oToMessages/batchSend",
                serde_json::json!({
                    "robotCode": self.robot_code,
                    "userIds": [id],
                    "msgKey": msg_key,
                    "msgParam": msg_param,
                }),
                Some(id.as_str()),
            ),
            Target::Single(_) => {
                return Err(SendError::Permanent(format!(
                    "{target} has no robot API address (the sender has no staff id); it can be answered only through its sessionWebhook, which has expired or is unknown (since the start)"
                )));
            }
        };
        let url = self.url(path)?;
        let mut renewed = false;
        loop {
            let token = self.access_token().await?;
            let request = self
                .client
                .post(url.clone())
                .header("x-acs-dingtalk-access-token", &token)
                .json(&request);
            let answered = call::call(request, &shown_url(&url)).await?;
            let status = answered.status.as_u16();
            match classify_api(status, answered.retry_after(), &answered.body, user) {
                ApiAnswer::Sent => return Ok(()),
                ApiAnswer::Failed(error) => return Err(error),
                ApiAnswer::TokenRefused(reason) if renewed => {
                    return Err(SendError::Retry {
                        reason: format!("DingTalk refused a new access token too ({reason})"),
                        after: None,
                    });
                }
                ApiAnswer::TokenRefused(reason) => {
                    tracing::info!(%reason, "DingTalk refused the access token; fetching another");
                    self.refused(&token).await;
                    renewed = true;
                }
            }
        }
    }
}

/// `base` with `path` appended to its own path (a base of `http://h/prefix` keeps
/// `/prefix`).
pub(super) fn url_under(base: &Url, path: &str) -> Result<Url, String> {
    let mut url = base.clone();
    {
        let mut segments = url
            .path_segments_mut()
            .map_err(|()| format!("{} cannot take a path", shown_url(base)))?;
        segments.pop_if_empty();
        segments.extend(path.trim_start_matches('/').split('/'));
    }
    Ok(url)
}

/// Posts a robot message body to a webhook (a session webhook or a custom robot).
pub(super) async fn post_hook(client: &Client, url: &Url, body: &Body) -> HookAnswer {
    let request = client.post(url.clone()).json(&body.robot_message());
    match call::call(request, &shown_url(url)).await {
        Ok(answered) => classify_hook(answered.status.as_u16(), &answered.body),
        Err(error) => HookAnswer::Failed(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn hook(url: &str, expires: u64) -> SessionWebhook {
        SessionWebhook {
            url: url.into(),
            expires_at: at(expires),
        }
    }

    #[test]
    fn a_webhook_is_used_until_shortly_before_it_expires() {
        let sessions = Sessions::default();
        sessions.note("group:c1", hook("https://h/a", 1_000), at(100));
        assert_eq!(
            sessions.valid("group:c1", at(500)).as_deref(),
            Some("https://h/a")
        );
        assert_eq!(
            sessions.valid("group:c1", at(969)).as_deref(),
            Some("https://h/a")
        );
        // Within the last 30 s, or after, the robot API answers instead.
        assert_eq!(sessions.valid("group:c1", at(970)), None);
        assert_eq!(sessions.valid("group:c1", at(2_000)), None);
        assert_eq!(sessions.valid("group:c2", at(500)), None);
        // A newer message's webhook lasts longer: it replaces the kept one; a redelivered
        // older one does not.
        sessions.note("group:c1", hook("https://h/b", 1_500), at(200));
        sessions.note("group:c1", hook("https://h/a", 1_000), at(300));
        assert_eq!(
            sessions.valid("group:c1", at(1_200)).as_deref(),
            Some("https://h/b")
        );
        // An expired one is never kept; a refused one is forgotten, but only that one.
        sessions.note("user:u1", hook("https://h/c", 100), at(100));
        assert_eq!(sessions.valid("user:u1", at(50)), None);
        sessions.forget("group:c1", "https://h/a");
        assert!(sessions.valid("group:c1", at(1_200)).is_some());
        sessions.forget("group:c1", "https://h/b");
        assert_eq!(sessions.valid("group:c1", at(1_200)), None);
        // Expired entries do not pile up.
        sessions.note("group:c3", hook("https://h/d", 5_000), at(1_600));
        assert_eq!(sessions.map().len(), 1);
    }

    #[test]
    fn bodies_for_webhooks_and_the_robot_api() {
        let text = Body::new("值班：李娜", false);
        assert_eq!(
            text.robot_message(),
            serde_json::json!({"msgtype": "text", "text": {"content": "值班：李娜"}})
        );
        assert_eq!(
            text.template(),
            ("sampleText", r#"{"content":"值班：李娜"}"#.to_string())
        );
        let markdown = Body::new("\n## **今日**值班\n- 李娜", true);
        assert_eq!(
            markdown.robot_message(),
            serde_json::json!({"msgtype": "markdown", "markdown": {"title": "今日值班", "text": "\n## **今日**值班\n- 李娜"}})
        );
        let (key, param) = markdown.template();
        assert_eq!(key, "sampleMarkdown");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&param).expect("json"),
            serde_json::json!({"title": "今日值班", "text": "\n## **今日**值班\n- 李娜"})
        );
        assert_eq!(
            Body::new("   ", true),
            Body::Markdown {
                title: "消息".into(),
                text: "   ".into()
            }
        );
    }

    #[test]
    fn webhook_answers_are_read_by_errcode() {
        assert_eq!(
            classify_hook(200, br#"{"errcode":0,"errmsg":"ok"}"#),
            HookAnswer::Sent
        );
        assert!(matches!(
            classify_hook(
                200,
                br#"{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}"#
            ),
            HookAnswer::Failed(SendError::Retry {
                after: Some(WEBHOOK_RATE_WAIT),
                ..
            })
        ));
        assert!(matches!(
            classify_hook(200, r#"{"errcode":-1,"errmsg":"系统繁忙"}"#.as_bytes()),
            HookAnswer::Failed(SendError::Retry { after: None, .. })
        ));
        assert!(matches!(
            classify_hook(502, b"bad gateway"),
            HookAnswer::Failed(SendError::Retry { .. })
        ));
        assert!(matches!(
            classify_hook(200, br#"{"errcode":300001,"errmsg":"session invalid"}"#),
            HookAnswer::Refused(m) if m.contains("300001")
        ));
        // HTTP 200 is not enough.
        assert!(matches!(
            classify_hook(200, b"<html>ok</html>"),
            HookAnswer::Refused(_)
        ));
        assert!(matches!(classify_hook(404, b""), HookAnswer::Refused(_)));
    }

    #[test]
    fn api_answers_are_read_by_status_code_and_lists() {
        assert_eq!(
            classify_api(200, None, br#"{"processQueryKey":"k1"}"#, None),
            ApiAnswer::Sent
        );
        assert_eq!(
            classify_api(
                200,
                None,
                br#"{"processQueryKey":"k1","invalidStaffIdList":[],"flowControlledStaffIdList":[]}"#,
                Some("u1")
            ),
            ApiAnswer::Sent
        );
        assert!(matches!(
            classify_api(200, None, br#"{"processQueryKey":"k","invalidStaffIdList":["u1"]}"#, Some("u1")),
            ApiAnswer::Failed(SendError::Permanent(m)) if m.contains("u1")
        ));
        assert!(matches!(
            classify_api(
                200,
                None,
                br#"{"processQueryKey":"k","flowControlledStaffIdList":["u1"]}"#,
                Some("u1")
            ),
            ApiAnswer::Failed(SendError::Retry {
                after: Some(FLOW_CONTROL_WAIT),
                ..
            })
        ));
        assert!(matches!(
            classify_api(200, None, b"{}", None),
            ApiAnswer::Failed(SendError::Permanent(_))
        ));
        assert!(matches!(
            classify_api(400, None, r#"{"code":"InvalidAuthentication","message":"不合法的access_token","requestid":"r"}"#.as_bytes(), None),
            ApiAnswer::TokenRefused(m) if m.contains("InvalidAuthentication")
        ));
        assert!(matches!(
            classify_api(401, None, b"", None),
            ApiAnswer::TokenRefused(_)
        ));
        assert!(matches!(
            classify_api(
                403,
                None,
                br#"{"code":"Forbidden.AccessDenied.QpsLimitForAppkeyAndApi","message":"qps"}"#,
                None
            ),
            ApiAnswer::Failed(SendError::Retry {
                after: Some(QPS_WAIT),
                ..
            })
        ));
        assert!(matches!(
            classify_api(429, Some(Duration::from_secs(7)), b"", None),
            ApiAnswer::Failed(SendError::Retry { after: Some(d), .. }) if d == Duration::from_secs(7)
        ));
        assert!(matches!(
            classify_api(503, None, b"", None),
            ApiAnswer::Failed(SendError::Retry { .. })
        ));
        assert!(matches!(
            classify_api(400, None, br#"{"code":"invalidParameter.robotCode.auth","message":"robotCode mismatch"}"#, None),
            ApiAnswer::Failed(SendError::Permanent(m)) if m.contains("robotCode")
        ));
    }

    #[test]
    fn paths_go_under_the_base() {
        let base = Url::parse("http://127.0.0.1:9/prefix").expect("url");
        assert_eq!(
            url_under(&base, "/v1.0/oauth2/accessToken")
                .expect("url")
                .as_str(),
            "http://127.0.0.1:9/prefix/v1.0/oauth2/accessToken"
        );
        let base = Url::parse("https://api.dingtalk.com").expect("url");
        assert_eq!(
            url_under(&base, "/v1.0/robot/groupMessages/send")
                .expect("url")
                .as_str(),
            "https://api.dingtalk.com/v1.0/robot/groupMessages/send"
        );
    }
}
