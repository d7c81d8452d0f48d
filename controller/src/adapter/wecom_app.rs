//! WeCom self-built app (企业微信自建应用, DESIGN.md §6): members write to the app, WeCom
//! posts each message to our callback URL, and an answer ready within WeCom's 5 seconds
//! goes back in the callback's response (被动回复, [`super::passive`]); a later one, and
//! whatever a response cannot hold, goes through the app's message API ("active send").
//!
//! WeCom documents followed (developer.work.weixin.qq.com/document/path/…):
//! - 90930 接收消息与事件 · 概述 (also published as api/doc/10514): the callback URL is
//!   verified with a GET whose `echostr` is answered decrypted, in plain text, and query
//!   values must be URL-decoded ("企业在获取请求时需要做Urldecode处理"); messages come as
//!   POSTs of an encrypted XML envelope. A callback not answered within 5 seconds is sent
//!   again (the same rule as WeChat official accounts: "五秒内收不到响应…重新发起请求，
//!   总共重试三次", where an empty answer means "no passive reply"), so a POST is stored
//!   first and answered within [`PASSIVE_BUDGET_DEFAULT`]: with the reply if one is ready,
//!   else with an empty body, and the reply goes through the outbox.
//! - 90241 被动回复消息格式: a text reply is `<xml>` with `ToUserName` (the member),
//!   `FromUserName` (the corp id), `CreateTime`, `MsgType` text and `Content`, encrypted as
//!   any reply (91144) with the callback's nonce. There is no markdown passive reply.
//! - 91144 加解密方案说明: signature and AES, in [`super::wecom_crypto`].
//! - 90239 消息格式 and 90240 事件格式: the decrypted XML's fields. A retry repeats the
//!   same `MsgId`, so it keys the event for dedup.
//! - 91039 获取access_token: `GET /cgi-bin/gettoken?corpid&corpsecret`, valid `expires_in`
//!   seconds (7200), to be cached rather than fetched per call (it is rate limited).
//! - 90236 发送应用消息: `POST /cgi-bin/message/send?access_token=…`, text up to 2048 bytes,
//!   markdown (`{"content"}`, up to 2048 bytes, rendered by the WeCom client only);
//!   `image` and `file` messages name a `media_id`, `news` carries 1 to 8 articles.
//! - 90253 上传临时素材: `POST /cgi-bin/media/upload?access_token=…&type=image|file`,
//!   multipart/form-data with the file as "media" and its filename the name shown; images
//!   JPG/PNG up to 10 MB, files up to 20 MB, all over 5 bytes; the media_id lasts 3 days.
//! - 90254 获取临时素材: `GET /cgi-bin/media/get?access_token=…&media_id=…` answers the
//!   bytes with `Content-disposition: attachment; filename="…"`, or an error as JSON.
//! - 90239 消息格式 (also 96467): members' messages are text, image (`PicUrl`, `MediaId`),
//!   voice, video, location and link; there is no file message to receive. An image is
//!   downloaded into `media_dir` before its event is stored, so handlers get a local path.
//! - 90313 全局错误码: 40014/42001 (token invalid/expired) and 40001 (credential invalid)
//!   mean fetch a new token; 45009 is the rate limit; -1 is "system busy".

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use reqwest::{Client, Url};
use serde::Deserialize;

use super::call;
use super::check::{Secret, http_url, number_or_string, required, unexpanded};
use super::door::{self, Door, Reason};
use super::media::{self, MAX_MEDIA_BYTES, Media};
use super::passive::Passive;
use super::replay::Replays;
use super::split;
use super::token::TokenCache;
use super::wecom::{self, Admitted, Answer, MAX_TEXT_BYTES, Signed, TextMsgType, check_articles};
use super::wecom_crypto::{CryptoError, ENCODING_AES_KEY_LEN, WeComCrypto, extract_xml_encrypt};
use super::{Adapter, AdapterContext, Answering, Delivered, Outgoing, ReplyTiming, SendError};
use crate::event::{
    Attachment, AttachmentKind, Conversation, ConversationKind, Event, Segment, Sender, event_id,
    now_rfc3339, rfc3339_since_epoch, types,
};
use crate::format::TextFormat;

/// Answers go out as `msgtype: text` by default, which WeCom shows as it is (90236);
/// `msgtype = "markdown"` sends markdown instead.
pub const TEXT_FORMAT: TextFormat = TextFormat::Plain;
pub const PLATFORM: &str = "wecom";
/// A member opened the app (90240 进入应用, `Event` = `enter_agent`).
pub const APP_ENTERED: &str = "wecom.app_entered";
/// A member tapped a menu item (90240 点击菜单拉取消息, `Event` = `click`, `EventKey`).
pub const MENU_CLICKED: &str = "wecom.menu_clicked";

const DEFAULT_BASE_URL: &str = "https://qyapi.weixin.qq.com";
const TIMEOUT: Duration = Duration::from_secs(10);
/// A token is fetched again this long before WeCom says it expires, so one taken from
/// the cache does not lapse on its way (91039 asks to cache it and mind `expires_in`).
const TOKEN_MARGIN: Duration = Duration::from_secs(300);
/// The longest a token is kept, whatever `expires_in` says.
const TOKEN_LIFE_MAX: Duration = Duration::from_secs(86_400);
/// 90313: the access token is invalid (40014), expired (42001), or the credential is
/// invalid (40001). A fresh token settles the first two and any stale-token case of the
/// third; a wrong secret shows up again at gettoken and is refused there.
const TOKEN_ERRORS: [i64; 3] = [40014, 42001, 40001];
/// 90253: an image of at most 10 MB, JPG or PNG ("图片（image）：10MB，支持JPG,PNG格式").
const MAX_IMAGE_BYTES: u64 = 10 * 1024 * 1024;
/// 90253: "所有文件size必须大于5个字节".
const MIN_MEDIA_BYTES: usize = 5;
/// How long a callback may spend downloading its image: WeCom waits 5 seconds for the
/// answer (90930), and the rest is decrypting and storing.
const MEDIA_BUDGET: Duration = Duration::from_secs(3);
/// How long a callback waits for its answer to carry it back, by default. WeCom waits 5
/// seconds (90930); the rest is the way back through a tunnel.
pub const PASSIVE_BUDGET_DEFAULT: Duration = Duration::from_millis(4_000);
const PASSIVE_BUDGET_MAX: Duration = Duration::from_millis(4_500);
/// A slow answer is acknowledged after this long, so the acknowledgement still fits in
/// the callback's response.
const ACK_AFTER: Duration = Duration::from_millis(3_000);
/// Members answered at once (see [`WecomApp::parallel_sends`]).
const PARALLEL_SENDS: usize = 16;
/// Where images members send are saved when the config says nowhere (`tapwire run` puts
/// them beside its database instead).
const DEFAULT_MEDIA_DIR: &str = "media";

/// One `type = "wecom_app"` adapter of `tapwire.toml`. Secrets belong in the environment:
/// `secret = "${WECOM_APP_SECRET}"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WecomAppConfig {
    /// 企业ID (My Company → Company Info).
    pub corp_id: String,
    /// The app's AgentId; a number, written with or without quotes.
    #[serde(deserialize_with = "number_or_string")]
    pub agent_id: String,
    /// The app's Secret, for access tokens.
    pub secret: Secret,
    /// The callback's Token (API 接收消息 settings).
    pub token: Secret,
    /// The callback's EncodingAESKey, 43 characters.
    pub encoding_aes_key: Secret,
    /// Where WeCom's API is; tests point it at a stand-in.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Where images members send are saved; by default `media/` beside the database.
    #[serde(default)]
    pub media_dir: Option<PathBuf>,
    /// `text` (default) or `markdown`: what answers are sent as. Markdown has no passive
    /// reply, so every markdown answer goes through the message API.
    #[serde(default)]
    pub msgtype: TextMsgType,
    /// How long a callback waits for its answer to go back in its response; 0 sends every
    /// answer through the message API.
    #[serde(default)]
    pub passive_reply_ms: Option<u64>,
}

fn default_base_url() -> String {
    DEFAULT_BASE_URL.into()
}

impl WecomAppConfig {
    /// What is wrong with the section, if anything; messages never show a secret.
    pub fn check(&self) -> Result<(), String> {
        required(&[
            ("corp_id", &self.corp_id),
            ("agent_id", &self.agent_id),
            ("secret", &self.secret),
            ("token", &self.token),
        ])?;
        if !unexpanded(&self.agent_id) {
            self.parsed_agent_id()?;
        }
        if !unexpanded(&self.encoding_aes_key) {
            let chars = self.encoding_aes_key.chars().count();
            if chars != ENCODING_AES_KEY_LEN {
                return Err(format!(
                    "encoding_aes_key must be {ENCODING_AES_KEY_LEN} characters, got {chars}: copy it from the app's API receive settings"
                ));
            }
            if !unexpanded(&self.token) && !unexpanded(&self.corp_id) {
                self.crypto().map_err(|e| e.to_string())?;
            }
        }
        if !unexpanded(&self.base_url) {
            self.parsed_base_url()?;
        }
        if let Some(ms) = self.passive_reply_ms
            && Duration::from_millis(ms) > PASSIVE_BUDGET_MAX
        {
            return Err(format!(
                "passive_reply_ms = {ms} is past WeCom's 5 s: it would answer after WeCom had sent the callback again; at most {}",
                PASSIVE_BUDGET_MAX.as_millis()
            ));
        }
        Ok(())
    }

    /// How long a callback waits for a passive reply; zero when answers are markdown.
    fn passive_budget(&self) -> Duration {
        if self.msgtype == TextMsgType::Markdown {
            return Duration::ZERO;
        }
        self.passive_reply_ms
            .map_or(PASSIVE_BUDGET_DEFAULT, Duration::from_millis)
    }

    fn parsed_agent_id(&self) -> Result<i64, String> {
        self.agent_id
            .trim()
            .parse()
            .map_err(|_| format!("agent_id must be a number, not {:?}", self.agent_id))
    }

    fn parsed_base_url(&self) -> Result<Url, String> {
        http_url("base_url", &self.base_url)
    }

    /// The app's callbacks carry the corp id as their receive id (91144).
    fn crypto(&self) -> Result<WeComCrypto, CryptoError> {
        WeComCrypto::new(
            self.token.trim(),
            self.encoding_aes_key.trim(),
            self.corp_id.trim(),
        )
    }
}

/// WeCom's API as the app reaches it: the cached access token and the calls made with it.
/// Shared by the adapter (sends, uploads) and its callback routes (downloads).
struct Api {
    name: String,
    corp_id: String,
    agent_id: i64,
    secret: String,
    base_url: Url,
    client: Client,
    token: TokenCache,
}

/// What the callback routes share with the adapter.
struct Inbound {
    name: String,
    agent_id: i64,
    crypto: WeComCrypto,
    api: Arc<Api>,
    /// Where images members send are saved (absolute, so handlers and other adapters
    /// can read them wherever they run from).
    media_dir: PathBuf,
    /// Set by `start`; callbacks that come earlier are told to retry.
    ctx: OnceLock<AdapterContext>,
    door: Door,
    /// What a repeat of a handled callback is answered with: its passive reply, if any.
    replays: Replays<Option<String>>,
    passive: Passive,
    /// How long a callback waits for its passive reply, from its arrival; zero for none.
    passive_budget: Duration,
}

pub struct WecomApp {
    name: String,
    msgtype: TextMsgType,
    api: Arc<Api>,
    inbound: Arc<Inbound>,
}

impl std::fmt::Debug for WecomApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret, token and key are not shown.
        f.debug_struct("WecomApp")
            .field("name", &self.name)
            .field("corp_id", &self.api.corp_id)
            .field("agent_id", &self.api.agent_id)
            .field("base_url", &self.api.base_url.as_str())
            .finish_non_exhaustive()
    }
}

impl WecomApp {
    pub fn new(name: &str, config: &WecomAppConfig) -> Result<WecomApp, String> {
        config.check()?;
        let agent_id = config.parsed_agent_id()?;
        let crypto = config.crypto().map_err(|e| e.to_string())?;
        let client = crate::http::client(TIMEOUT)?;
        let media_dir = config
            .media_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_MEDIA_DIR));
        let media_dir = std::path::absolute(&media_dir)
            .map_err(|e| format!("media_dir {}: {e}", media_dir.display()))?;
        let api = Arc::new(Api {
            name: name.to_string(),
            corp_id: config.corp_id.trim().to_string(),
            agent_id,
            secret: config.secret.trim().to_string(),
            base_url: config.parsed_base_url()?,
            client,
            token: TokenCache::new(TOKEN_MARGIN, TOKEN_LIFE_MAX),
        });
        Ok(WecomApp {
            name: name.to_string(),
            msgtype: config.msgtype,
            api: api.clone(),
            inbound: Arc::new(Inbound {
                name: name.to_string(),
                agent_id,
                crypto,
                api,
                media_dir,
                ctx: OnceLock::new(),
                door: Door::new(name),
                replays: Replays::new(),
                passive: Passive::for_adapter(name, super::passive::MAX_WAITING),
                passive_budget: config.passive_budget(),
            }),
        })
    }

    /// Sends one text (at most [`MAX_TEXT_BYTES`]) to member `to`, as the configured
    /// `msgtype`.
    pub async fn send_text(&self, to: &str, content: &str) -> Result<(), SendError> {
        let msgtype = match self.msgtype {
            TextMsgType::Text => "text",
            TextMsgType::Markdown => "markdown",
        };
        self.api
            .send(to, msgtype, serde_json::json!({"content": content}))
            .await
    }

    /// An attachment as the message type 90236 has for it: an image or a file uploaded
    /// first for its media_id (90253), news as it is.
    async fn send_attachment(&self, to: &str, attachment: &Attachment) -> Result<(), SendError> {
        match attachment {
            Attachment::Image { source } => {
                let media = media::load(&self.api.client, source, MAX_IMAGE_BYTES).await?;
                if media::image_format(&media.bytes).is_none() {
                    return Err(SendError::Permanent(format!(
                        "a WeCom app takes JPG or PNG images, and {source} is neither"
                    )));
                }
                let media_id = self.api.upload("image", &media).await?;
                self.api
                    .send(to, "image", serde_json::json!({"media_id": media_id}))
                    .await
            }
            Attachment::File { source, name } => {
                let mut media = media::load(&self.api.client, source, MAX_MEDIA_BYTES).await?;
                if let Some(name) = name.as_deref().filter(|n| !n.trim().is_empty()) {
                    media.name = media::safe_file_name(name);
                    media.content_type = media::content_type_for(&media.name).to_string();
                }
                let media_id = self.api.upload("file", &media).await?;
                self.api
                    .send(to, "file", serde_json::json!({"media_id": media_id}))
                    .await
            }
            Attachment::News { articles } => {
                check_articles(articles)?;
                self.api
                    .send(to, "news", serde_json::json!({"articles": articles}))
                    .await
            }
        }
    }
}

impl Api {
    /// `path` under `base_url`, keeping a path prefix it may have (a proxy's).
    fn endpoint(&self, path: &str) -> Result<Url, SendError> {
        let base = self.base_url.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}{path}"))
            .map_err(|e| SendError::Permanent(format!("base_url cannot take {path}: {e}")))
    }

    /// `path` under `base_url` with the token and `query` in its query string.
    fn endpoint_with(
        &self,
        path: &str,
        token: &str,
        query: &[(&str, &str)],
    ) -> Result<Url, SendError> {
        let mut url = self.endpoint(path)?;
        url.query_pairs_mut()
            .append_pair("access_token", token)
            .extend_pairs(query);
        Ok(url)
    }

    /// A cached token, or a new one from gettoken (91039).
    async fn access_token(&self) -> Result<String, SendError> {
        self.token.get(|| self.fetch_token()).await
    }

    async fn fetch_token(&self) -> Result<(String, Duration), SendError> {
        let mut url = self.endpoint("/cgi-bin/gettoken")?;
        url.query_pairs_mut()
            .append_pair("corpid", &self.corp_id)
            .append_pair("corpsecret", &self.secret);
        let answer = self.call(self.client.get(url), "gettoken").await?;
        wecom::settle(answer.errcode, &answer.errmsg, "gettoken").map_err(|e| match e {
            SendError::Permanent(_) => SendError::Permanent(format!(
                "WeCom gave no access token: errcode {}: {} (check corp_id and secret)",
                answer.errcode, answer.errmsg
            )),
            retry => retry,
        })?;
        let token = answer
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| SendError::Retry {
                reason: "gettoken answered errcode 0 without an access_token".into(),
                after: None,
            })?;
        // 91039 says 7200 s.
        Ok((
            token,
            Duration::from_secs(answer.expires_in.unwrap_or(7200)),
        ))
    }

    /// Forgets `token` unless another send has already replaced it.
    async fn forget_token(&self, token: &str) {
        self.token.forget(token).await;
    }

    /// One request to WeCom, its answer read as WeCom's JSON. The URL is never shown: it
    /// holds the secret or the token.
    async fn call(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<Answer, SendError> {
        let answered = call::call(request, what).await?;
        call::check_status(answered.status, what)?;
        wecom::answer(&answered.body, what)
    }

    /// A call made with the access token, `request` building it for a token. A token
    /// WeCom calls invalid is replaced once and the call made again (90313:
    /// 40014/42001/40001); errcode 0 is the answer, any other an error.
    async fn authorized<F>(&self, what: &str, request: F) -> Result<Answer, SendError>
    where
        F: Fn(&str) -> Result<reqwest::RequestBuilder, SendError>,
    {
        let mut token_in_use = self.access_token().await?;
        let mut answer = self.call(request(&token_in_use)?, what).await?;
        if TOKEN_ERRORS.contains(&answer.errcode) {
            tracing::info!(adapter = %self.name, errcode = answer.errcode, "access token refused; fetching a new one");
            self.forget_token(&token_in_use).await;
            token_in_use = self.access_token().await?;
            answer = self.call(request(&token_in_use)?, what).await?;
        }
        self.settle(answer, &token_in_use, what).await
    }

    /// An answer's errcode as a result: 0 is success; busy and rate limits pass; a token
    /// refused even fresh is forgotten and tried later; the rest is refused for good.
    async fn settle(&self, answer: Answer, token: &str, what: &str) -> Result<Answer, SendError> {
        if TOKEN_ERRORS.contains(&answer.errcode) {
            self.forget_token(token).await;
            return Err(SendError::Retry {
                reason: format!(
                    "{what}: a fresh access token was refused too: errcode {}: {}",
                    answer.errcode, answer.errmsg
                ),
                after: None,
            });
        }
        wecom::settle(answer.errcode, &answer.errmsg, what)?;
        Ok(answer)
    }

    /// 90236 发送应用消息: one message of `msgtype` (its content under the type's own
    /// key) to member `to`.
    async fn send(
        &self,
        to: &str,
        msgtype: &str,
        content: serde_json::Value,
    ) -> Result<(), SendError> {
        let mut body = serde_json::json!({
            "touser": to,
            "msgtype": msgtype,
            "agentid": self.agent_id,
        });
        body[msgtype] = content;
        let answer = self
            .authorized("the message", |token| {
                let url = self.endpoint_with("/cgi-bin/message/send", token, &[])?;
                Ok(self.client.post(url).json(&body))
            })
            .await?;
        match answer.invaliduser.as_deref().map(str::trim) {
            // 90236: errcode 0 with the recipient listed means it did not reach them
            // (usually: not in the app's visible range).
            Some(invalid) if invalid.split('|').any(|u| u == to) => {
                Err(SendError::Permanent(format!(
                    "WeCom did not deliver to {to}: invalid user (is the member in the app's visible range?)"
                )))
            }
            _ => Ok(()),
        }
    }

    /// 90253 上传临时素材: multipart/form-data with the file as "media", its filename the
    /// name WeCom shows; files must be over 5 bytes ("所有文件size必须大于5个字节").
    async fn upload(&self, kind: &str, media: &Media) -> Result<String, SendError> {
        if media.bytes.len() <= MIN_MEDIA_BYTES {
            return Err(SendError::Permanent(format!(
                "{} is {} bytes: WeCom takes media of more than {MIN_MEDIA_BYTES}",
                media.name,
                media.bytes.len()
            )));
        }
        let (content_type, body) = media::multipart("media", media);
        let answer = self
            .authorized("the upload", |token| {
                let url = self.endpoint_with("/cgi-bin/media/upload", token, &[("type", kind)])?;
                Ok(self
                    .client
                    .post(url)
                    .header(reqwest::header::CONTENT_TYPE, content_type.clone())
                    .body(body.clone()))
            })
            .await?;
        answer
            .media_id
            .filter(|id| !id.is_empty())
            .ok_or_else(|| SendError::Retry {
                reason: "media/upload answered errcode 0 without a media_id".into(),
                after: None,
            })
    }

    /// 90254 获取临时素材: the media's bytes and the name its Content-Disposition gives.
    /// WeCom answers an error as JSON instead of the bytes, so a JSON answer (by its
    /// Content-Type, or without a Content-Disposition) that reads as one is an error.
    async fn download(&self, media_id: &str) -> Result<(String, Vec<u8>), SendError> {
        let mut token_in_use = self.access_token().await?;
        let mut renewed = false;
        loop {
            let url = self.endpoint_with(
                "/cgi-bin/media/get",
                &token_in_use,
                &[("media_id", media_id)],
            )?;
            let response = call::send(self.client.get(url), "media/get").await?;
            call::check_status(response.status(), "media/get")?;
            let header = |name: reqwest::header::HeaderName| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let disposition = header(reqwest::header::CONTENT_DISPOSITION);
            let json = header(reqwest::header::CONTENT_TYPE)
                .is_some_and(|t| t.starts_with("application/json") || t.starts_with("text/plain"));
            let bytes = media::read_limited(response, MAX_MEDIA_BYTES, "media/get").await?;
            let answer = (json || disposition.is_none())
                .then(|| serde_json::from_slice::<wecom::Answer>(&bytes).ok())
                .flatten();
            let Some(answer) = answer else {
                let name = disposition
                    .as_deref()
                    .and_then(media::disposition_file_name)
                    .unwrap_or_else(|| media::safe_file_name(media_id));
                return Ok((name, bytes));
            };
            if TOKEN_ERRORS.contains(&answer.errcode) && !renewed {
                self.forget_token(&token_in_use).await;
                token_in_use = self.access_token().await?;
                renewed = true;
                continue;
            }
            self.settle(answer, &token_in_use, "media/get").await?;
            return Err(SendError::Permanent(
                "media/get answered errcode 0 instead of the media".into(),
            ));
        }
    }
}

impl Inbound {
    /// The event with its image saved into the media directory and the segment pointing
    /// at it (90239: an image message's `MediaId`, fetched through 90254). Bounded by
    /// [`MEDIA_BUDGET`] so the callback is still answered within WeCom's 5 seconds; a
    /// download that fails or takes longer leaves the event without the file (its
    /// `PicUrl` still there), said in the log, rather than lose the message.
    async fn with_media(&self, mut event: Event, message: &CallbackMessage) -> Event {
        let media_id = message.get("MediaId");
        let wanted = event
            .content
            .iter()
            .any(|s| matches!(s, Segment::Image { path: None, .. }));
        if media_id.is_empty() || !wanted {
            return event;
        }
        let name = self.name.as_str();
        let downloaded = match tokio::time::timeout(MEDIA_BUDGET, self.api.download(media_id)).await
        {
            Ok(Ok(downloaded)) => downloaded,
            Ok(Err(error)) => {
                tracing::warn!(adapter = name, %error, "image not downloaded; the event goes on without the file");
                return event;
            }
            Err(_) => {
                tracing::warn!(adapter = name, budget = ?MEDIA_BUDGET, "image download too slow for the callback; the event goes on without the file");
                return event;
            }
        };
        let (file_name, bytes) = downloaded;
        // The event's id keeps two members' `1.jpg` apart, and makes WeCom's retry of the
        // same message write the same file.
        let file_name = media::safe_file_name(&format!("{}-{file_name}", event.id));
        match media::save(&self.media_dir, &file_name, &bytes).await {
            Ok(path) => {
                for segment in &mut event.content {
                    if let Segment::Image {
                        path: slot @ None, ..
                    } = segment
                    {
                        *slot = Some(path.to_string_lossy().into_owned());
                        break;
                    }
                }
            }
            Err(error) => {
                tracing::warn!(adapter = name, dir = %self.media_dir.display(), %error, "cannot save a downloaded image; the event goes on without the file");
            }
        }
        event
    }
}

#[async_trait]
impl Adapter for WecomApp {
    fn name(&self) -> &str {
        &self.name
    }

    fn platform(&self) -> &'static str {
        PLATFORM
    }

    fn text_format(&self) -> TextFormat {
        match self.msgtype {
            TextMsgType::Text => TEXT_FORMAT,
            TextMsgType::Markdown => TextFormat::Markdown,
        }
    }

    /// 90236: a text or markdown message holds at most 2048 bytes.
    fn split<'t>(&self, text: &'t str) -> Vec<&'t str> {
        split::bytes(text, MAX_TEXT_BYTES)
    }

    /// 90236 has image, file and news messages.
    fn can_send(&self, _kind: AttachmentKind) -> Result<(), SendError> {
        Ok(())
    }

    /// The conversation is the member's userid (a single chat with the app).
    async fn deliver(&self, outgoing: &Outgoing) -> Result<Delivered, SendError> {
        outgoing.warn_if_resumed(&self.name);
        match outgoing.attachment() {
            Some(attachment) => {
                self.send_attachment(&outgoing.conversation, attachment)
                    .await?
            }
            None => {
                // Only an answer to a callback still waiting finds a taker here.
                let passed = self
                    .inbound
                    .passive
                    .hand(&outgoing.action_id, outgoing.text.clone());
                if passed.is_ok() {
                    tracing::debug!(adapter = %self.name, action = %outgoing.action_id, "answered in the callback's response");
                    return Ok(Delivered::Sent);
                }
                self.send_text(&outgoing.conversation, &outgoing.text)
                    .await?
            }
        }
        Ok(Delivered::Sent)
    }

    /// WeCom limits an app's sends per member (its message frequency limits: 30 a minute
    /// to one member) and per day, not to one at a time; and a passive reply must reach its waiting callback
    /// within its budget, not after every other member's send.
    fn parallel_sends(&self) -> usize {
        PARALLEL_SENDS
    }

    /// Acknowledges slow work soon enough for the acknowledgement to go back passively.
    fn reply_timing(&self) -> ReplyTiming {
        let mut timing = ReplyTiming::default();
        if !self.inbound.passive_budget.is_zero() {
            timing.ack_after_ms = u64::try_from(ACK_AFTER.as_millis()).unwrap_or(u64::MAX);
        }
        timing
    }

    fn answering(&self, event: &Event, progress: Answering<'_>) {
        self.inbound.passive.answering(&event.id, progress);
    }

    fn routes(&self) -> Option<axum::Router> {
        let router = axum::Router::new()
            .route("/", get(verify_url).post(receive))
            .with_state(self.inbound.clone());
        Some(door::limited(router, wecom::MAX_CALLBACK_BYTES))
    }

    fn rejections(&self) -> Vec<(Reason, u64)> {
        self.inbound.door.counts()
    }

    async fn start(&self, ctx: AdapterContext) -> Result<(), super::AdapterError> {
        // A second start keeps the first context: there is one runtime.
        let _ = self.inbound.ctx.set(ctx);
        Ok(())
    }
}

/// 90930 验证URL有效性: answer the decrypted `echostr` as it is.
async fn verify_url(State(inbound): State<Arc<Inbound>>, RawQuery(raw): RawQuery) -> Response {
    wecom::verify_url(
        &inbound.door,
        &inbound.crypto,
        raw.as_deref(),
        SystemTime::now(),
    )
}

/// 90930 接收数据: through the door (signature, clock, replays, then AES), read, store
/// the event, and answer within the passive budget: with the answer if it came (90241),
/// else with an empty body (the answer then goes out through the message API).
async fn receive(
    State(inbound): State<Arc<Inbound>>,
    RawQuery(raw): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let arrived = Instant::now();
    let name = inbound.name.as_str();
    let door = &inbound.door;
    let body = match door.body(body) {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let admitted = wecom::admit(
        door,
        &inbound.crypto,
        &inbound.replays,
        raw.as_deref(),
        &body,
        extract_xml_encrypt,
        SystemTime::now(),
    );
    let (plain, signed, claim) = match admitted {
        Ok(Admitted::Fresh {
            plain,
            signed,
            claim,
        }) => (plain, signed, claim),
        // Taken before (WeCom's retry of a callback whose answer it did not get): the same
        // answer again.
        Ok(Admitted::Again { answer, .. }) => return passive_response(answer),
        Err(refused) => return refused,
    };
    let message = match CallbackMessage::parse(&plain) {
        Ok(message) => message,
        Err(reason) => {
            return wecom::refuse(door, Reason::Malformed, StatusCode::BAD_REQUEST, &reason);
        }
    };
    if let Some(agent) = message.agent_id()
        && agent != inbound.agent_id
    {
        // Signed with our token and key, yet for another app: the callback URL was
        // pasted into the wrong app's settings. Answered, so WeCom does not retry.
        door.refused(
            Reason::WrongRecipient,
            StatusCode::OK,
            &format!(
                "callback for another app's AgentID: {agent}, this one is {}; ignored",
                inbound.agent_id
            ),
        );
        claim.done(None);
        return StatusCode::OK.into_response();
    }
    let Some(event) = message.event(name) else {
        tracing::debug!(adapter = name, msg_type = %message.get("MsgType"), event = %message.get("Event"), "callback of a kind not routed; ignored");
        claim.done(None);
        return StatusCode::OK.into_response();
    };
    let event = inbound.with_media(event, &message).await;
    let Some(ctx) = inbound.ctx.get() else {
        tracing::warn!(
            adapter = name,
            "callback before the adapter started; WeCom is asked to send it again"
        );
        return (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response();
    };
    let wait = (!inbound.passive_budget.is_zero()).then(|| inbound.passive.wait(&event.id));
    match ctx.inbox.accept(event).await {
        Ok(fresh) => {
            let mut answer = None;
            if !fresh {
                tracing::debug!(
                    adapter = name,
                    "callback seen before (WeCom's retry); not routed again"
                );
            } else if let Some(wait) = wait {
                let budget = inbound.passive_budget.saturating_sub(arrived.elapsed());
                if let Some(text) = wait.answer(budget).await {
                    answer = inbound.sealed_reply(&message, &text, &signed);
                }
            }
            claim.done(answer.clone());
            passive_response(answer)
        }
        Err(error) => {
            // Not stored: a 5xx makes WeCom send it again (and the claim, dropped, lets
            // that retry in).
            tracing::error!(adapter = name, %error, "could not store a callback's event");
            (StatusCode::INTERNAL_SERVER_ERROR, "try again").into_response()
        }
    }
}

/// A callback's answer: its passive reply, or 200 with nothing.
fn passive_response(reply: Option<String>) -> Response {
    match reply {
        Some(xml) => (
            StatusCode::OK,
            [(axum::http::header::CONTENT_TYPE, "application/xml")],
            xml,
        )
            .into_response(),
        None => StatusCode::OK.into_response(),
    }
}

impl Inbound {
    /// 90241's text reply to the member who wrote `message`, sealed with the callback's
    /// own timestamp and nonce (as the SDKs' samples do). None if it cannot be sealed;
    /// the callback is then answered empty and the text is lost to the response only:
    /// nothing else sends it, so it is logged.
    fn sealed_reply(
        &self,
        message: &CallbackMessage,
        text: &str,
        signed: &Signed,
    ) -> Option<String> {
        let xml = passive_text_xml(
            message.get("FromUserName"),
            self.api.corp_id.as_str(),
            SystemTime::now(),
            text,
        );
        match self.crypto.encrypt(&xml, &signed.timestamp, &signed.nonce) {
            Ok(sealed) => Some(sealed.xml_envelope()),
            Err(error) => {
                tracing::error!(adapter = %self.name, %error, "could not seal a passive reply; the answer is lost");
                None
            }
        }
    }
}

/// 90241's text message: CDATA sections as the document shows them, the content's own
/// `]]>` split across two sections so it cannot end its section early.
fn passive_text_xml(to_user: &str, from_corp: &str, now: SystemTime, content: &str) -> String {
    let created = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let cdata = |value: &str| value.replace("]]>", "]]]]><![CDATA[>");
    format!(
        "<xml><ToUserName><![CDATA[{}]]></ToUserName><FromUserName><![CDATA[{}]]></FromUserName><CreateTime>{created}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{}]]></Content></xml>",
        cdata(to_user),
        cdata(from_corp),
        cdata(content)
    )
}

/// The decrypted XML's fields (90239/90240): the root's children, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackMessage {
    fields: HashMap<String, String>,
}

impl CallbackMessage {
    pub fn parse(xml: &str) -> Result<CallbackMessage, String> {
        use quick_xml::events::Event as Xml;
        let mut reader = quick_xml::Reader::from_str(xml);
        let mut depth = 0usize;
        let mut current: Option<(String, String)> = None;
        let mut fields = HashMap::new();
        let bad = |e: &dyn std::fmt::Display| format!("decrypted XML: {e}");
        loop {
            match reader.read_event().map_err(|e| bad(&e))? {
                Xml::Start(start) => {
                    depth += 1;
                    if depth == 2 {
                        let name =
                            String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                        current = Some((name, String::new()));
                    }
                }
                Xml::End(_) => {
                    if depth == 2
                        && let Some((name, value)) = current.take()
                    {
                        fields.insert(name, value.trim().to_string());
                    }
                    depth = depth.saturating_sub(1);
                }
                Xml::CData(cdata) if depth == 2 => {
                    let text = cdata.decode().map_err(|e| bad(&e))?;
                    if let Some((_, value)) = current.as_mut() {
                        value.push_str(&text);
                    }
                }
                Xml::Text(text) if depth == 2 => {
                    let text = text.decode().map_err(|e| bad(&e))?;
                    if let Some((_, value)) = current.as_mut() {
                        value.push_str(&text);
                    }
                }
                Xml::GeneralRef(reference) if depth == 2 => {
                    // `&amp;` and friends in a non-CDATA value.
                    let name = reference.decode().map_err(|e| bad(&e))?;
                    let resolved = match name.as_ref() {
                        "amp" => "&",
                        "lt" => "<",
                        "gt" => ">",
                        "quot" => "\"",
                        "apos" => "'",
                        other => return Err(format!("decrypted XML: unknown entity &{other};")),
                    };
                    if let Some((_, value)) = current.as_mut() {
                        value.push_str(resolved);
                    }
                }
                Xml::Eof => break,
                _ => {}
            }
        }
        if fields.is_empty() {
            return Err("decrypted XML has no fields".into());
        }
        Ok(CallbackMessage { fields })
    }

    /// A field's value, "" when absent.
    pub fn get(&self, field: &str) -> &str {
        self.fields.get(field).map_or("", String::as_str)
    }

    fn agent_id(&self) -> Option<i64> {
        self.get("AgentID").trim().parse().ok()
    }

    /// The event it becomes, if it is one we route: messages (90239) and the events
    /// `enter_agent` and `click` (90240). None for the rest.
    pub fn event(&self, source: &str) -> Option<Event> {
        let from = self.get("FromUserName");
        if from.is_empty() {
            return None;
        }
        let msg_type = self.get("MsgType");
        let (event_type, content, message_id) = if msg_type == "event" {
            let kind = match self.get("Event") {
                "enter_agent" => APP_ENTERED,
                "click" => MENU_CLICKED,
                _ => return None,
            };
            let content = match self.get("EventKey") {
                "" => Vec::new(),
                key => vec![Segment::Text { text: key.into() }],
            };
            (kind, content, None)
        } else {
            let content = match msg_type {
                "text" => vec![Segment::Text {
                    text: self.get("Content").into(),
                }],
                "image" => vec![Segment::Image {
                    url: Some(self.get("PicUrl").to_string()).filter(|u| !u.is_empty()),
                    path: None,
                }],
                "link" => vec![Segment::Link {
                    url: self.get("Url").into(),
                    title: Some(self.get("Title").to_string()).filter(|t| !t.is_empty()),
                }],
                _ => vec![Segment::Unknown],
            };
            let id = Some(self.get("MsgId").to_string()).filter(|id| !id.is_empty());
            (types::MESSAGE_RECEIVED, content, id)
        };
        // A retry repeats the message, MsgId included. Events carry no MsgId: WeChat's
        // official-account documents dedup them by FromUserName + CreateTime (WeCom's
        // say nothing; SDKs such as WxJava follow that rule for WeCom too), and the
        // event and key are added so two events of one second stay apart.
        let key = match &message_id {
            Some(id) => format!("wecom_app:{source}:msg:{id}"),
            None => format!(
                "wecom_app:{source}:event:{from}:{}:{}:{}",
                self.get("CreateTime"),
                self.get("Event"),
                self.get("EventKey")
            ),
        };
        let timestamp = self
            .get("CreateTime")
            .parse::<u64>()
            .ok()
            .and_then(|secs| rfc3339_since_epoch(Duration::from_secs(secs)))
            .unwrap_or_else(now_rfc3339);
        let raw = serde_json::to_value(
            self.fields
                .iter()
                .collect::<std::collections::BTreeMap<_, _>>(),
        )
        .unwrap_or_default();
        Some(Event {
            id: event_id(&key),
            event_type: event_type.into(),
            source: source.into(),
            platform: PLATFORM.into(),
            idempotency_key: key,
            conversation: Some(Conversation {
                id: from.into(),
                title: None,
                kind: ConversationKind::Private,
            }),
            sender: Some(Sender {
                id: from.into(),
                display_name: None,
                is_self: false,
            }),
            content,
            platform_message_id: message_id,
            timestamp,
            raw,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use axum::Json;
    use axum::extract::Query;
    use axum::routing::post;

    use super::*;
    use crate::adapter::testing::{Kept, callbacks, context};

    const TOKEN: &str = "QDG6eK";
    const KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
    const CORP_ID: &str = "wx5823bf96d3bd56c7";
    // 90968's example POST (the same vector wecom_crypto's tests check).
    const POST_PLAIN: &str = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n<FromUserName><![CDATA[mycreate]]></FromUserName>\n<CreateTime>1409659813</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[hello]]></Content>\n<MsgId>4561255354251345929</MsgId>\n<AgentID>218</AgentID>\n</xml>";

    const POST_BODY: &str = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA[RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>";
    const POST_SIGNATURE: &str = "477715d11cdb4164915debcba66cb864d751f3e6";
    const POST_QUERY: &str = "timestamp=1409659813&nonce=1372623149";
    // weworkapi_golang sample.go 使用示例一, with the echostr URL-encoded as sent.
    const VERIFY_QUERY: &str = "msg_signature=5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3&timestamp=1409659589&nonce=263014780&echostr=P9nAzCzyDtyTWESHep1vC5X9xho%2FqYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp%2B4RPcs8TgAE7OaBO%2BFZXvnaqQ%3D%3D";

    fn config(base_url: &str) -> WecomAppConfig {
        WecomAppConfig {
            corp_id: CORP_ID.into(),
            agent_id: "218".into(),
            secret: "s3cret".into(),
            token: TOKEN.into(),
            encoding_aes_key: KEY.into(),
            base_url: base_url.into(),
            media_dir: None,
            msgtype: TextMsgType::Text,
            // These tests' inboxes route nothing: nobody would answer a wait.
            passive_reply_ms: Some(0),
        }
    }

    #[test]
    fn config_checks_key_length_ids_and_leaves_unexpanded_values() {
        assert_eq!(config(DEFAULT_BASE_URL).check(), Ok(()));
        let short = WecomAppConfig {
            encoding_aes_key: "abc".into(),
            ..config(DEFAULT_BASE_URL)
        };
        assert!(short.check().unwrap_err().contains("43 characters"));
        let no_corp = WecomAppConfig {
            corp_id: " ".into(),
            ..config(DEFAULT_BASE_URL)
        };
        assert!(no_corp.check().unwrap_err().contains("corp_id"));
        let bad_agent = WecomAppConfig {
            agent_id: "x1".into(),
            ..config(DEFAULT_BASE_URL)
        };
        assert!(bad_agent.check().unwrap_err().contains("agent_id"));
        let bad_url = WecomAppConfig {
            base_url: "ftp://x".into(),
            ..config(DEFAULT_BASE_URL)
        };
        assert!(bad_url.check().unwrap_err().contains("http"));
        let env = WecomAppConfig {
            secret: "${APP_SECRET}".into(),
            encoding_aes_key: "${APP_KEY}".into(),
            ..config(DEFAULT_BASE_URL)
        };
        assert_eq!(env.check(), Ok(()));
        // agent_id may be written as a number.
        let parsed: WecomAppConfig = toml::from_str(&format!(
            "corp_id = {CORP_ID:?}\nagent_id = 1000002\nsecret = \"s\"\ntoken = {TOKEN:?}\nencoding_aes_key = {KEY:?}\n"
        ))
        .expect("parsed");
        assert_eq!(parsed.agent_id, "1000002");
        assert_eq!(parsed.base_url, DEFAULT_BASE_URL);
        let app = WecomApp::new("app", &config(DEFAULT_BASE_URL)).expect("app");
        assert!(!format!("{app:?}").contains("s3cret"));
    }

    #[test]
    fn the_documented_text_message_becomes_a_message_event_keyed_by_msgid() {
        let message = CallbackMessage::parse(POST_PLAIN).expect("parsed");
        assert_eq!(message.agent_id(), Some(218));
        let event = message.event("app").expect("event");
        assert_eq!(event.event_type, types::MESSAGE_RECEIVED);
        assert_eq!(event.source, "app");
        assert_eq!(event.platform, "wecom");
        assert_eq!(event.text().as_deref(), Some("hello"));
        assert_eq!(
            event.conversation.as_ref().map(|c| (c.id.as_str(), c.kind)),
            Some(("mycreate", ConversationKind::Private))
        );
        assert_eq!(
            event.sender.as_ref().map(|s| s.id.as_str()),
            Some("mycreate")
        );
        assert_eq!(
            event.platform_message_id.as_deref(),
            Some("4561255354251345929")
        );
        assert_eq!(event.timestamp, "2014-09-02T12:10:13.000Z");
        // The same MsgId (WeCom's retry) is the same event.
        assert_eq!(
            event.idempotency_key,
            "wecom_app:app:msg:4561255354251345929"
        );
        let again = CallbackMessage::parse(POST_PLAIN)
            .expect("parsed")
            .event("app")
            .expect("event");
        assert_eq!(again.id, event.id);
        assert_eq!(again.idempotency_key, event.idempotency_key);
    }

    #[test]
    fn menu_clicks_and_entering_the_app_are_events_others_are_ignored() {
        let xml = |event: &str, key: &str| {
            format!(
                "<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[lisi]]></FromUserName><CreateTime>1409659813</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event><EventKey><![CDATA[{key}]]></EventKey><AgentID>218</AgentID></xml>"
            )
        };
        let click = CallbackMessage::parse(&xml("click", "#duty"))
            .expect("parsed")
            .event("app")
            .expect("event");
        assert_eq!(click.event_type, MENU_CLICKED);
        assert_eq!(click.text().as_deref(), Some("#duty"));
        assert_eq!(click.platform_message_id, None);
        let enter = CallbackMessage::parse(&xml("enter_agent", ""))
            .expect("parsed")
            .event("app")
            .expect("event");
        assert_eq!(enter.event_type, APP_ENTERED);
        assert_ne!(enter.idempotency_key, click.idempotency_key);
        let subscribe = CallbackMessage::parse(&xml("subscribe", "")).expect("parsed");
        assert!(subscribe.event("app").is_none());
        // Entities outside CDATA are resolved; garbage is an error, not a panic.
        let text = CallbackMessage::parse(
            "<xml><FromUserName>a</FromUserName><MsgType>text</MsgType><Content>x &amp; y</Content></xml>",
        )
        .expect("parsed");
        assert_eq!(text.get("Content"), "x & y");
        assert!(CallbackMessage::parse("<xml><a>&nope;</a></xml>").is_err());
        assert!(CallbackMessage::parse("not xml").is_err());
    }

    #[test]
    fn a_token_is_used_until_shortly_before_it_expires() {
        let now = tokio::time::Instant::now();
        let secs = Duration::from_secs;
        let cache = TokenCache::new(TOKEN_MARGIN, TOKEN_LIFE_MAX);
        assert_eq!(cache.refresh_at(secs(7200), now), now + secs(6900));
        assert_eq!(
            cache.refresh_at(secs(u64::MAX), now),
            now + TOKEN_LIFE_MAX - TOKEN_MARGIN
        );
        assert_eq!(cache.refresh_at(secs(60), now), now + secs(30));
    }

    /// A stand-in for qyapi.weixin.qq.com: hands out tokens t1, t2, …, keeps what
    /// message/send got, and answers with the errcodes queued in `answers`.
    #[derive(Clone, Default)]
    struct Qyapi {
        tokens: Arc<std::sync::Mutex<u32>>,
        answers: Arc<std::sync::Mutex<VecDeque<serde_json::Value>>>,
        received: Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>>,
        uploads: Arc<std::sync::Mutex<Vec<Upload>>>,
    }

    /// What media/upload got: query, Content-Type, body.
    type Upload = (HashMap<String, String>, String, Vec<u8>);

    async fn upload(
        State(qyapi): State<Qyapi>,
        Query(query): Query<HashMap<String, String>>,
        headers: axum::http::HeaderMap,
        body: axum::body::Bytes,
    ) -> Json<serde_json::Value> {
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let mut uploads = qyapi.uploads.lock().expect("lock");
        uploads.push((query, content_type, body.to_vec()));
        Json(serde_json::json!({
            "errcode": 0, "errmsg": "", "type": "image",
            "media_id": format!("media-{}", uploads.len()), "created_at": "1380000000",
        }))
    }

    /// 90254 as documented: the bytes with a Content-disposition for `M1`, an error as
    /// JSON for any other media id, and for a token it did not hand out.
    async fn media_get(Query(query): Query<HashMap<String, String>>) -> Response {
        let handed_out = query
            .get("access_token")
            .and_then(|t| t.strip_prefix('t'))
            .is_some_and(|n| n.parse::<u32>().is_ok());
        if !handed_out {
            return Json(serde_json::json!({"errcode": 42001, "errmsg": "access_token expired"}))
                .into_response();
        }
        match query.get("media_id").map(String::as_str) {
            Some("M1") => (
                [
                    (axum::http::header::CONTENT_TYPE, "image/png"),
                    (
                        axum::http::header::CONTENT_DISPOSITION,
                        "attachment; filename=\"M1.png\"",
                    ),
                ],
                PNG.to_vec(),
            )
                .into_response(),
            _ => (
                [(axum::http::header::CONTENT_TYPE, "text/plain")],
                r#"{"errcode": 40007, "errmsg": "invalid media_id"}"#,
            )
                .into_response(),
        }
    }

    /// A PNG's signature and a few more bytes: enough to be taken for one.
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n-not-really-";

    async fn gettoken(
        State(qyapi): State<Qyapi>,
        Query(query): Query<HashMap<String, String>>,
    ) -> Json<serde_json::Value> {
        if query.get("corpsecret").map(String::as_str) != Some("s3cret") {
            return Json(serde_json::json!({"errcode": 40001, "errmsg": "invalid credential"}));
        }
        let mut count = qyapi.tokens.lock().expect("lock");
        *count += 1;
        Json(
            serde_json::json!({"errcode": 0, "errmsg": "ok", "access_token": format!("t{count}"), "expires_in": 7200}),
        )
    }

    async fn send(
        State(qyapi): State<Qyapi>,
        Query(query): Query<HashMap<String, String>>,
        Json(body): Json<serde_json::Value>,
    ) -> Json<serde_json::Value> {
        let token = query.get("access_token").cloned().unwrap_or_default();
        qyapi.received.lock().expect("lock").push((token, body));
        let answer = qyapi.answers.lock().expect("lock").pop_front();
        Json(answer.unwrap_or_else(|| serde_json::json!({"errcode": 0, "errmsg": "ok"})))
    }

    async fn serve(qyapi: Qyapi) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = axum::Router::new()
            .route("/cgi-bin/gettoken", get(gettoken))
            .route("/cgi-bin/message/send", post(send))
            .route("/cgi-bin/media/upload", post(upload))
            .route("/cgi-bin/media/get", get(media_get))
            .with_state(qyapi);
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn sends_with_a_cached_token_and_renews_it_once_when_refused() {
        let qyapi = Qyapi::default();
        let app = WecomApp::new("app", &config(&serve(qyapi.clone()).await)).expect("app");
        app.send_text("lisi", "你好").await.expect("sent");
        app.send_text("lisi", "again").await.expect("sent");
        qyapi.answers.lock().expect("lock").extend([
            serde_json::json!({"errcode": 42001, "errmsg": "access_token expired"}),
            serde_json::json!({"errcode": 0, "errmsg": "ok"}),
            serde_json::json!({"errcode": 45009, "errmsg": "api freq out of limit"}),
            serde_json::json!({"errcode": -1, "errmsg": "system busy"}),
            serde_json::json!({"errcode": 0, "errmsg": "ok", "invaliduser": "ghost"}),
            serde_json::json!({"errcode": 40014, "errmsg": "invalid access_token"}),
            serde_json::json!({"errcode": 40014, "errmsg": "invalid access_token"}),
            serde_json::json!({"errcode": 81013, "errmsg": "user & party & tag all invalid"}),
        ]);
        app.send_text("lisi", "renewed").await.expect("sent");
        assert!(matches!(
            app.send_text("lisi", "x").await,
            Err(SendError::Retry { after: Some(after), .. }) if after == wecom::RATE_LIMIT_WAIT
        ));
        assert!(matches!(
            app.send_text("lisi", "x").await,
            Err(SendError::Retry { after: None, .. })
        ));
        let ghost = app.send_text("ghost", "x").await;
        assert!(
            matches!(&ghost, Err(SendError::Permanent(m)) if m.contains("ghost")),
            "{ghost:?}"
        );
        // Refused, renewed, refused again: only once, then retry later.
        assert!(matches!(
            app.send_text("lisi", "x").await,
            Err(SendError::Retry { after: None, .. })
        ));
        let refused = app.send_text("lisi", "x").await;
        assert!(
            matches!(&refused, Err(SendError::Permanent(m)) if m.contains("81013")),
            "{refused:?}"
        );
        let received = qyapi.received.lock().expect("lock").clone();
        let tokens: Vec<&str> = received.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            tokens,
            ["t1", "t1", "t1", "t2", "t2", "t2", "t2", "t2", "t3", "t4"]
        );
        assert_eq!(
            received[0].1,
            serde_json::json!({"touser": "lisi", "msgtype": "text", "agentid": 218, "text": {"content": "你好"}})
        );
        assert_eq!(received[3].1["text"]["content"], "renewed");

        let wrong_secret = WecomApp::new(
            "app",
            &WecomAppConfig {
                secret: "nope".into(),
                ..config(&serve(Qyapi::default()).await)
            },
        )
        .expect("app");
        let refused = wrong_secret.send_text("lisi", "x").await;
        assert!(
            matches!(&refused, Err(SendError::Permanent(m)) if m.contains("40001") && !m.contains("nope")),
            "{refused:?}"
        );
        let down = WecomApp::new("app", &config("http://127.0.0.1:9"))
            .expect("app")
            .send_text("lisi", "x")
            .await;
        assert!(
            matches!(&down, Err(SendError::Retry { reason, .. }) if !reason.contains("s3cret")),
            "{down:?}"
        );
    }

    fn now_secs() -> u64 {
        SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
    }

    /// `plain` sealed for `app` as WeCom posts it, signed at `timestamp`: query and body.
    fn sealed(plain: &str, timestamp: u64, nonce: &str) -> (String, String) {
        let crypto = WeComCrypto::new(TOKEN, KEY, CORP_ID).expect("crypto");
        let sealed = crypto
            .encrypt(plain, &timestamp.to_string(), nonce)
            .expect("encrypt");
        (
            format!(
                "msg_signature={}&timestamp={}&nonce={}",
                sealed.signature, sealed.timestamp, sealed.nonce
            ),
            format!(
                "<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{}]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>",
                sealed.encrypt
            ),
        )
    }

    #[tokio::test]
    async fn wecoms_documented_callbacks_are_verified_and_accepted_forgeries_refused() {
        let app = WecomApp::new("app", &config(DEFAULT_BASE_URL)).expect("app");
        let url = callbacks(&app, "app").await;
        let client = Client::new();
        let post = |query: String, body: &str| {
            client
                .post(format!("{url}?{query}"))
                .body(body.to_string())
                .send()
        };
        // The documented message (90968), signed now.
        let (signed, body) = sealed(POST_PLAIN, now_secs(), "1372623149");

        // Before `start` there is nowhere to put an event: WeCom is asked to retry.
        let early = post(signed.clone(), &body).await.expect("post");
        assert_eq!(early.status(), 503);

        let kept = Arc::new(Kept::default());
        app.start(context(&kept)).await.expect("start");

        let crypto = WeComCrypto::new(TOKEN, KEY, CORP_ID).expect("crypto");
        let echo = crypto
            .encrypt("1616140317555161061", &now_secs().to_string(), "263014780")
            .expect("encrypt");
        let verify_query = format!(
            "msg_signature={}&timestamp={}&nonce={}&echostr={}",
            echo.signature,
            echo.timestamp,
            echo.nonce,
            echo.encrypt
                .replace('+', "%2B")
                .replace('/', "%2F")
                .replace('=', "%3D")
        );
        let verified = client
            .get(format!("{url}?{verify_query}"))
            .send()
            .await
            .expect("get");
        assert_eq!(verified.status(), 200);
        assert_eq!(verified.text().await.expect("text"), "1616140317555161061");

        // The message arrives twice (WeCom's retry, the same request): one event, both
        // answered 200, the second from the replay cache without being read.
        for _ in 0..2 {
            let answer = post(signed.clone(), &body).await.expect("post");
            assert_eq!(answer.status(), 200);
            assert_eq!(answer.text().await.expect("text"), "");
        }
        let events = kept.0.lock().expect("lock").clone();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].text().as_deref(), Some("hello"));
        assert_eq!(
            events[0].sender.as_ref().map(|s| s.id.as_str()),
            Some("mycreate")
        );
        assert_eq!(app.inbound.door.count(Reason::Replay), 1);

        // The documented requests themselves are from 2014: signed, but stale.
        let stale = post(
            format!("msg_signature={POST_SIGNATURE}&{POST_QUERY}"),
            POST_BODY,
        )
        .await
        .expect("post");
        assert_eq!(stale.status(), 403);
        assert_eq!(stale.text().await.expect("text"), "stale timestamp");
        let stale = client
            .get(format!("{url}?{VERIFY_QUERY}"))
            .send()
            .await
            .expect("get");
        assert_eq!(stale.status(), 403);
        assert_eq!(app.inbound.door.count(Reason::Stale), 2);

        // Forged, incomplete, malformed or too large: refused, counted, nothing kept.
        let (fresh, fresh_body) = sealed(POST_PLAIN, now_secs(), "n2");
        let forged = fresh.replacen("msg_signature=", "msg_signature=0", 1);
        let refused = post(forged, &fresh_body).await.expect("post");
        assert_eq!(refused.status(), 403);
        let wrong_echo = verify_query.replacen("msg_signature=", "msg_signature=0", 1);
        let refused = client
            .get(format!("{url}?{wrong_echo}"))
            .send()
            .await
            .expect("get");
        assert_eq!(refused.status(), 403);
        assert_eq!(app.inbound.door.count(Reason::Signature), 2);
        let unsigned = fresh.split("&timestamp").nth(1).expect("rest");
        assert_eq!(
            post(format!("timestamp{unsigned}"), &fresh_body)
                .await
                .expect("post")
                .status(),
            400
        );
        assert_eq!(
            post(fresh.clone(), "<xml>").await.expect("post").status(),
            400
        );
        assert_eq!(
            post(format!("{fresh}&x=%zz"), &fresh_body)
                .await
                .expect("post")
                .status(),
            400
        );
        let no_echo = client
            .get(format!("{url}?{POST_QUERY}&msg_signature=a"))
            .send()
            .await
            .expect("get");
        assert_eq!(no_echo.status(), 400);
        assert_eq!(app.inbound.door.count(Reason::Malformed), 4);
        let huge = "x".repeat(wecom::MAX_CALLBACK_BYTES + 1);
        assert_eq!(
            post(fresh.clone(), &huge).await.expect("post").status(),
            413
        );
        assert_eq!(app.inbound.door.count(Reason::TooLarge), 1);
        // Signed over a ciphertext that does not open, and one sealed for another corp.
        let garbage = crypto
            .encrypt("x", &now_secs().to_string(), "n3")
            .expect("encrypt");
        let cut = &garbage.encrypt[..garbage.encrypt.len() - 8];
        let cut_sig = crypto.signature(&garbage.timestamp, "n3", cut);
        let refused = post(
            format!(
                "msg_signature={cut_sig}&timestamp={}&nonce=n3",
                garbage.timestamp
            ),
            &format!("<xml><Encrypt><![CDATA[{cut}]]></Encrypt></xml>"),
        )
        .await
        .expect("post");
        assert_eq!(refused.status(), 400);
        assert_eq!(app.inbound.door.count(Reason::Undecryptable), 1);
        let elsewhere = WeComCrypto::new(TOKEN, KEY, "wwOTHERCORP").expect("crypto");
        let other = elsewhere
            .encrypt(POST_PLAIN, &now_secs().to_string(), "n4")
            .expect("encrypt");
        let refused = post(
            format!(
                "msg_signature={}&timestamp={}&nonce=n4",
                other.signature, other.timestamp
            ),
            &other.xml_envelope(),
        )
        .await
        .expect("post");
        assert_eq!(refused.status(), 400);
        assert_eq!(app.inbound.door.count(Reason::WrongRecipient), 1);
        assert_eq!(kept.0.lock().expect("lock").len(), 1);
        let counted: u64 = app.rejections().iter().map(|(_, n)| n).sum();
        assert_eq!(counted, 12);

        // Signed for us, but AgentID names another app (the documented one is 218):
        // answered, so WeCom does not retry, and counted.
        let other = WecomApp::new(
            "app",
            &WecomAppConfig {
                agent_id: "219".into(),
                ..config(DEFAULT_BASE_URL)
            },
        )
        .expect("app");
        let other_kept = Arc::new(Kept::default());
        other.start(context(&other_kept)).await.expect("start");
        let other_url = callbacks(&other, "app").await;
        let (signed, body) = sealed(POST_PLAIN, now_secs(), "n5");
        let answer = client
            .post(format!("{other_url}?{signed}"))
            .body(body)
            .send()
            .await
            .expect("post");
        assert_eq!(answer.status(), 200);
        assert!(other_kept.0.lock().expect("lock").is_empty());
        assert_eq!(other.inbound.door.count(Reason::WrongRecipient), 1);
    }

    #[tokio::test]
    async fn images_and_files_are_uploaded_then_sent_by_media_id_and_news_as_it_is() {
        let qyapi = Qyapi::default();
        let app = WecomApp::new("app", &config(&serve(qyapi.clone()).await)).expect("app");
        let dir = tempfile::tempdir().expect("tempdir");
        let image = dir.path().join("chart.png");
        std::fs::write(&image, PNG).expect("write");
        let report = dir.path().join("r.bin");
        std::fs::write(&report, "值班,张伟\n").expect("write");
        let outgoing = |attachment: Attachment| Outgoing {
            action_id: "act_1".into(),
            conversation: "lisi".into(),
            text: String::new(),
            attachments: vec![attachment],
            resumed: false,
        };
        for attachment in [
            Attachment::Image {
                source: image.to_string_lossy().into(),
            },
            Attachment::File {
                source: report.to_string_lossy().into(),
                name: Some("值班表.csv".into()),
            },
            Attachment::News {
                articles: vec![crate::event::Article {
                    title: "周报".into(),
                    description: Some("第 48 周".into()),
                    url: "https://example.com/w48".into(),
                    picurl: None,
                }],
            },
        ] {
            app.deliver(&outgoing(attachment)).await.expect("sent");
        }
        let uploads = qyapi.uploads.lock().expect("lock").clone();
        assert_eq!(uploads.len(), 2);
        let shape = |index: usize| {
            let (query, content_type, body) = &uploads[index];
            let boundary = content_type
                .strip_prefix("multipart/form-data; boundary=")
                .expect("multipart");
            let body = String::from_utf8_lossy(body).into_owned();
            assert!(body.starts_with(&format!("--{boundary}\r\n")), "{body}");
            assert!(body.ends_with(&format!("\r\n--{boundary}--\r\n")), "{body}");
            (
                query.get("type").cloned().unwrap_or_default(),
                query.get("access_token").cloned().unwrap_or_default(),
                body,
            )
        };
        let (kind, token, body) = shape(0);
        assert_eq!((kind.as_str(), token.as_str()), ("image", "t1"));
        assert!(
            body.contains("Content-Disposition: form-data; name=\"media\"; filename=\"chart.png\"; filelength=20\r\nContent-Type: image/png\r\n\r\n"),
            "{body}"
        );
        let (kind, _, body) = shape(1);
        assert_eq!(kind, "file");
        assert!(
            body.contains("filename=\"值班表.csv\"; filelength=14\r\nContent-Type: text/csv\r\n\r\n值班,张伟\n\r\n"),
            "{body}"
        );
        let sent: Vec<serde_json::Value> = qyapi
            .received
            .lock()
            .expect("lock")
            .iter()
            .map(|(_, body)| body.clone())
            .collect();
        assert_eq!(
            sent,
            [
                serde_json::json!({"touser": "lisi", "msgtype": "image", "agentid": 218, "image": {"media_id": "media-1"}}),
                serde_json::json!({"touser": "lisi", "msgtype": "file", "agentid": 218, "file": {"media_id": "media-2"}}),
                serde_json::json!({"touser": "lisi", "msgtype": "news", "agentid": 218, "news": {"articles": [
                    {"title": "周报", "description": "第 48 周", "url": "https://example.com/w48"}
                ]}}),
            ]
        );
        // Refused before anything is uploaded: not an image, too small, no articles.
        let not_image = app
            .deliver(&outgoing(Attachment::Image {
                source: report.to_string_lossy().into(),
            }))
            .await;
        assert!(
            matches!(&not_image, Err(SendError::Permanent(m)) if m.contains("JPG or PNG")),
            "{not_image:?}"
        );
        let tiny = dir.path().join("tiny.txt");
        std::fs::write(&tiny, "abc").expect("write");
        let too_small = app
            .deliver(&outgoing(Attachment::File {
                source: tiny.to_string_lossy().into(),
                name: None,
            }))
            .await;
        assert!(
            matches!(&too_small, Err(SendError::Permanent(m)) if m.contains("more than 5")),
            "{too_small:?}"
        );
        assert!(
            app.deliver(&outgoing(Attachment::News {
                articles: Vec::new()
            }))
            .await
            .is_err()
        );
        assert_eq!(qyapi.uploads.lock().expect("lock").len(), 2);
    }

    /// An image message from a member, as WeCom posts it (90239), encrypted for `app`.
    fn image_callback(media_id: &str, msg_id: u64) -> (String, String) {
        let crypto = WeComCrypto::new(TOKEN, KEY, CORP_ID).expect("crypto");
        let plain = format!(
            "<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[lisi]]></FromUserName><CreateTime>1409659813</CreateTime><MsgType><![CDATA[image]]></MsgType><PicUrl><![CDATA[https://wework.qpic.cn/x]]></PicUrl><MediaId><![CDATA[{media_id}]]></MediaId><MsgId>{msg_id}</MsgId><AgentID>218</AgentID></xml>"
        );
        let sealed = crypto
            .encrypt(&plain, &now_secs().to_string(), &format!("nonce{msg_id}"))
            .expect("encrypt");
        (
            format!(
                "msg_signature={}&timestamp={}&nonce={}",
                sealed.signature, sealed.timestamp, sealed.nonce
            ),
            format!(
                "<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{}]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>",
                sealed.encrypt
            ),
        )
    }

    /// The runtime's part, as the tests here play it: the event is handed in, its answer
    /// announced, then delivered through the outbox.
    async fn answer_when_kept(app: &WecomApp, kept: &Kept, action: &str, text: &str) -> Delivered {
        let event = loop {
            if let Some(event) = kept.0.lock().expect("lock").last().cloned() {
                break event;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        app.answering(&event, Answering::Answer { action, last: true });
        let outgoing = Outgoing {
            action_id: action.into(),
            conversation: event.conversation.expect("conversation").id,
            text: text.into(),
            attachments: Vec::new(),
            resumed: false,
        };
        app.deliver(&outgoing).await.expect("delivered")
    }

    /// The reply in a callback's response, opened as WeCom opens it: its signature checked
    /// with the callback's own timestamp and nonce, then decrypted.
    fn opened_reply(body: &str, timestamp: u64, nonce: &str) -> CallbackMessage {
        let crypto = WeComCrypto::new(TOKEN, KEY, CORP_ID).expect("crypto");
        let encrypt = extract_xml_encrypt(body).expect("an <Encrypt>");
        let field = |tag: &str| {
            let open = format!("<{tag}><![CDATA[");
            let start = body.find(&open).map(|i| i + open.len());
            start.and_then(|s| body[s..].find("]]>").map(|e| body[s..s + e].to_string()))
        };
        assert!(
            body.contains(&format!("<TimeStamp>{timestamp}</TimeStamp>")),
            "{body}"
        );
        assert_eq!(field("Nonce").as_deref(), Some(nonce));
        let signature = field("MsgSignature").expect("MsgSignature");
        let plain = crypto
            .decrypt(&signature, &timestamp.to_string(), nonce, &encrypt)
            .expect("a reply WeCom can open");
        CallbackMessage::parse(&plain).expect("reply XML")
    }

    #[tokio::test]
    async fn an_answer_ready_in_time_goes_back_in_the_callbacks_response_and_a_late_one_by_api() {
        let qyapi = Qyapi::default();
        let base = serve(qyapi.clone()).await;
        let app = WecomApp::new(
            "app",
            &WecomAppConfig {
                passive_reply_ms: Some(1_500),
                ..config(&base)
            },
        )
        .expect("app");
        assert_eq!(app.reply_timing().ack_after_ms, 3_000);
        let url = callbacks(&app, "app").await;
        let kept = Arc::new(Kept::default());
        app.start(context(&kept)).await.expect("start");
        let client = Client::new();
        let post = |query: String, body: String| {
            let request = client.post(format!("{url}?{query}")).body(body);
            async move {
                let response = request.send().await.expect("post");
                assert_eq!(response.status(), 200);
                response.text().await.expect("body")
            }
        };

        // Answered while the callback waits: the text (with CDATA's terminator in it)
        // goes back in the response, and message/send gets nothing.
        let timestamp = now_secs();
        let (query, body) = sealed(POST_PLAIN, timestamp, "1372623149");
        let text = "你好 ]]> <b>&";
        let (response, delivered) = tokio::join!(
            post(query.clone(), body.clone()),
            answer_when_kept(&app, &kept, "a1", text)
        );
        assert_eq!(delivered, Delivered::Sent);
        let reply = opened_reply(&response, timestamp, "1372623149");
        assert_eq!(reply.get("MsgType"), "text");
        assert_eq!(reply.get("Content"), text);
        assert_eq!(reply.get("ToUserName"), "mycreate");
        assert_eq!(reply.get("FromUserName"), CORP_ID);
        assert!(qyapi.received.lock().expect("lock").is_empty());
        // WeCom's retry of it (it did not get the response) is answered the same.
        assert_eq!(post(query, body).await, response);
        assert_eq!(kept.0.lock().expect("lock").len(), 1);

        // Nothing ready within the budget: an empty answer, and the answer that comes
        // after goes through message/send.
        let late = POST_PLAIN.replace("4561255354251345929", "4561255354251345930");
        let (query, body) = sealed(&late, now_secs(), "77");
        assert_eq!(post(query, body).await, "");
        assert_eq!(
            answer_when_kept(&app, &kept, "a2", "迟到的回答").await,
            Delivered::Sent
        );
        let received = qyapi.received.lock().expect("lock").clone();
        assert_eq!(received.len(), 1, "{received:?}");
        assert_eq!(received[0].1["text"]["content"], "迟到的回答");
    }

    #[tokio::test]
    async fn markdown_answers_go_through_the_api_as_markdown_and_callbacks_do_not_wait() {
        let qyapi = Qyapi::default();
        let base = serve(qyapi.clone()).await;
        let app = WecomApp::new(
            "app",
            &WecomAppConfig {
                msgtype: TextMsgType::Markdown,
                passive_reply_ms: None,
                ..config(&base)
            },
        )
        .expect("app");
        assert_eq!(app.text_format(), TextFormat::Markdown);
        assert_eq!(app.reply_timing(), ReplyTiming::default());
        let url = callbacks(&app, "app").await;
        let kept = Arc::new(Kept::default());
        app.start(context(&kept)).await.expect("start");
        let (query, body) = sealed(POST_PLAIN, now_secs(), "5");
        let response = Client::new()
            .post(format!("{url}?{query}"))
            .body(body)
            .send()
            .await
            .expect("post");
        assert_eq!(response.text().await.expect("body"), "");
        answer_when_kept(&app, &kept, "a1", "**值班**: 李雷").await;
        let received = qyapi.received.lock().expect("lock").clone();
        assert_eq!(received.len(), 1, "{received:?}");
        assert_eq!(received[0].1["msgtype"], "markdown");
        assert_eq!(received[0].1["markdown"]["content"], "**值班**: 李雷");
    }

    #[test]
    fn a_passive_budget_past_wecoms_five_seconds_is_refused() {
        let config = WecomAppConfig {
            passive_reply_ms: Some(5_000),
            ..config(DEFAULT_BASE_URL)
        };
        assert!(config.check().unwrap_err().contains("passive_reply_ms"));
    }

    #[tokio::test]
    async fn an_image_callback_is_downloaded_into_the_media_dir_and_an_error_body_is_not_a_file() {
        let qyapi = Qyapi::default();
        let dir = tempfile::tempdir().expect("tempdir");
        let media_dir = dir.path().join("media");
        let app = WecomApp::new(
            "app",
            &WecomAppConfig {
                media_dir: Some(media_dir.clone()),
                ..config(&serve(qyapi.clone()).await)
            },
        )
        .expect("app");
        let kept = Arc::new(Kept::default());
        app.start(context(&kept)).await.expect("start");
        let url = callbacks(&app, "app").await;
        let client = Client::new();
        for (media_id, msg_id) in [("M1", 1), ("gone", 2)] {
            let (query, body) = image_callback(media_id, msg_id);
            let answer = client
                .post(format!("{url}?{query}"))
                .body(body)
                .send()
                .await
                .expect("post");
            assert_eq!(answer.status(), 200);
        }
        let events = kept.0.lock().expect("lock").clone();
        assert_eq!(events.len(), 2, "both messages kept, downloaded or not");
        let Segment::Image {
            url: Some(pic_url),
            path: Some(path),
        } = &events[0].content[0]
        else {
            panic!("no downloaded image: {:?}", events[0].content);
        };
        assert_eq!(pic_url, "https://wework.qpic.cn/x");
        assert_eq!(
            std::path::Path::new(path),
            media_dir.join(format!("{}-M1.png", events[0].id))
        );
        assert_eq!(std::fs::read(path).expect("saved"), PNG);
        // 40007 came back as JSON instead of bytes: no file, the event still routed.
        assert_eq!(
            events[1].content,
            [Segment::Image {
                url: Some("https://wework.qpic.cn/x".into()),
                path: None
            }]
        );
        assert_eq!(std::fs::read_dir(&media_dir).expect("dir").count(), 1);
        let refused = app.api.download("gone").await;
        assert!(
            matches!(&refused, Err(SendError::Permanent(m)) if m.contains("40007")),
            "{refused:?}"
        );
        // A stale token is renewed once and the download made again.
        app.api.token.set("stale", Duration::from_secs(7200)).await;
        let (name, bytes) = app.api.download("M1").await.expect("renewed");
        assert_eq!((name.as_str(), bytes.as_slice()), ("M1.png", PNG));
    }

    /// No decrypted body or query panics the reader: any XML is a message, or an error.
    mod props {
        use proptest::prelude::*;

        use super::*;
        use crate::adapter::testing::props::{config, xml};

        const TAGS: &[&str] = &[
            "ToUserName",
            "FromUserName",
            "CreateTime",
            "MsgType",
            "Content",
            "MsgId",
            "AgentID",
            "Event",
            "EventKey",
            "PicUrl",
            "MediaId",
            "Url",
            "Title",
            "text",
            "image",
            "link",
            "event",
            "enter_agent",
            "click",
            "1409659813",
            "218",
        ];

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn any_decrypted_xml_is_a_message_or_an_error(body in xml(TAGS)) {
                if let Ok(message) = CallbackMessage::parse(&body) {
                    let _ = message.agent_id();
                    let _ = message.event("app");
                }
            }
        }
    }
}
