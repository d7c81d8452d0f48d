//! WeCom AI bot (企业微信智能机器人, DESIGN.md §6) in API mode: WeCom posts each message
//! sent to the bot (in a single chat, or mentioning it in a group) to our callback URL as
//! encrypted JSON, and the answer is the callback's own reply: a stream WeCom refreshes
//! by calling back again, or later, once, through the message's `response_url`.
//!
//! WeCom documents followed (developer.work.weixin.qq.com/document/path/…):
//! - 101039 概述 and 101033 回调和回复的加解密方案: the URL is verified with a GET whose
//!   `echostr` is answered decrypted ("不能加引号，不能带bom头，不能带换行符"), query values
//!   URL-decoded; callbacks are `{"encrypt": …}` signed in `msg_signature`, with the
//!   receive id "" ([`super::wecom_crypto`]); replies are `{"encrypt", "msgsignature",
//!   "timestamp", "nonce"}`, the nonce being the callback's ("需要用回调url中的nonce"), or
//!   an empty body ("可以选择直接回复空包").
//! - 100719 接收消息 and 101027 接收事件: the callbacks, in [`message`].
//! - 101031 被动回复消息: a message is answered with `msgtype: stream`; `enter_chat` only
//!   with `msgtype: text` ("目前仅支持进入会话回调事件时，支持被动回复文本消息").
//! - 101138 主动回复消息: `POST response_url` with `{"msgtype": "markdown", "markdown":
//!   {"content": …}}`, once, within an hour.
//!
//! How answers find their message: the runtime tells the adapter which actions answer
//! which of its events ([`Adapter::answering`]), and a handler's text so far; the table
//! in [`stream`] turns that into what each refresh shows, and into the late answer that
//! goes through the `response_url`. See that module for the rules.

pub mod message;
pub mod stream;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use reqwest::{Client, Url};
use serde::Deserialize;
use serde_json::Value;

use super::call;
use super::check::{Secret, unexpanded};
use super::door::{self, Door, Reason};
use super::replay::Replays;
use super::split::truncated;
use super::wecom::{self, Admitted};
use super::wecom_crypto::{CryptoError, ENCODING_AES_KEY_LEN, WeComCrypto, extract_json_encrypt};
use super::{
    Adapter, AdapterContext, AdapterError, Answering, Delivered, Outgoing, ReplyTiming, SendError,
};
use crate::event::{Event, short_hash};
use crate::format::TextFormat;
use crate::http::shown_url;
use message::{Callback, Incoming};
use stream::{Delivery, Exchanges, MAX_CONTENT_BYTES, Shown};

/// Streams and `response_url` take markdown (101031: "content字段支持常见的markdown格式";
/// 101138 posts `msgtype: markdown`).
pub const TEXT_FORMAT: TextFormat = TextFormat::Markdown;
pub const PLATFORM: &str = "wecom";

/// 100719: WeCom refreshes a stream "从用户发消息开始最多等待6min"; ours closes a little
/// earlier, so its last content is still fetched.
const STREAM_SECS_MAX: u64 = 350;
const TIMEOUT: Duration = Duration::from_secs(10);

/// One `type = "wecom_aibot"` adapter of `tapwire.toml`. The secrets belong in the
/// environment: `encoding_aes_key = "${WECOM_AIBOT_AES_KEY}"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WecomAibotConfig {
    /// The bot's API settings: Token.
    pub token: Secret,
    /// The bot's API settings: EncodingAESKey, 43 characters.
    pub encoding_aes_key: Secret,
    /// The bot's id (`aibotid`); when set, callbacks naming another bot are ignored.
    #[serde(default)]
    pub aibot_id: Option<String>,
    /// Answer to a member opening the bot's chat for the first time that day.
    #[serde(default)]
    pub welcome: Option<String>,
    /// Seconds after a message during which its answer shows in its stream; a later
    /// answer goes out once through the message's `response_url` instead.
    #[serde(default = "default_stream_secs")]
    pub stream_secs: u64,
}

fn default_stream_secs() -> u64 {
    STREAM_SECS_MAX
}

impl WecomAibotConfig {
    /// What is wrong with the section, if anything; messages never show a secret.
    pub fn check(&self) -> Result<(), String> {
        if self.token.trim().is_empty() {
            return Err("token must not be empty".into());
        }
        if !unexpanded(&self.encoding_aes_key) {
            let chars = self.encoding_aes_key.trim().chars().count();
            if chars != ENCODING_AES_KEY_LEN {
                return Err(format!(
                    "encoding_aes_key must be {ENCODING_AES_KEY_LEN} characters, got {chars}: copy it from the bot's API settings"
                ));
            }
            if !unexpanded(&self.token) {
                self.crypto().map_err(|e| e.to_string())?;
            }
        }
        if self
            .aibot_id
            .as_deref()
            .is_some_and(|id| id.trim().is_empty())
        {
            return Err("aibot_id must not be empty when given".into());
        }
        if !(1..=STREAM_SECS_MAX).contains(&self.stream_secs) {
            return Err(format!(
                "stream_secs must be 1 to {STREAM_SECS_MAX}: WeCom refreshes a stream for 6 minutes"
            ));
        }
        Ok(())
    }

    /// 101033: "企业自建智能机器人的使用场景里，receiveid直接传空字符串即可".
    fn crypto(&self) -> Result<WeComCrypto, CryptoError> {
        WeComCrypto::new(self.token.trim(), self.encoding_aes_key.trim(), "")
    }
}

/// What the callback routes share with the adapter.
struct Inbound {
    name: String,
    crypto: WeComCrypto,
    aibot_id: Option<String>,
    welcome: Option<String>,
    ack_text: String,
    exchanges: Mutex<Exchanges>,
    /// Set by `start`; callbacks that come earlier are told to retry.
    ctx: OnceLock<AdapterContext>,
    door: Door,
    replays: Replays<Again>,
}

impl Inbound {
    fn exchanges(&self) -> std::sync::MutexGuard<'_, Exchanges> {
        self.exchanges.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct WecomAibot {
    name: String,
    client: Client,
    inbound: Arc<Inbound>,
    /// One `response_url` post at a time, so two deliveries cannot both take one URL.
    posting: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for WecomAibot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token and key are not shown.
        f.debug_struct("WecomAibot")
            .field("name", &self.name)
            .field("aibot_id", &self.inbound.aibot_id)
            .finish_non_exhaustive()
    }
}

impl WecomAibot {
    pub fn new(name: &str, config: &WecomAibotConfig) -> Result<WecomAibot, String> {
        config.check()?;
        let crypto = config.crypto().map_err(|e| e.to_string())?;
        let client = crate::http::client(TIMEOUT)?;
        Ok(WecomAibot {
            name: name.to_string(),
            client,
            inbound: Arc::new(Inbound {
                name: name.to_string(),
                crypto,
                aibot_id: config.aibot_id.as_ref().map(|id| id.trim().to_string()),
                welcome: config.welcome.clone().filter(|w| !w.trim().is_empty()),
                ack_text: reply_timing().ack_text,
                exchanges: Mutex::new(Exchanges::new(Duration::from_secs(config.stream_secs))),
                ctx: OnceLock::new(),
                door: Door::new(name),
                replays: Replays::new(),
            }),
            posting: tokio::sync::Mutex::new(()),
        })
    }

    /// 101138: one markdown message to a `response_url`. Transport failures, 5xx and
    /// "busy" are worth retrying; a refusal is not. The URL's query (its one-use code) is
    /// never shown.
    async fn post(&self, url: &str, content: &str) -> Result<(), SendError> {
        let url = Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| {
                SendError::Permanent("the message's response_url is not an http(s) URL".into())
            })?;
        let shown = shown_url(&url);
        let body = serde_json::json!({
            "msgtype": "markdown",
            "markdown": {"content": truncated(content, MAX_CONTENT_BYTES)},
        });
        let what = format!("response_url {shown}");
        let answered = call::call(self.client.post(url).json(&body), &what).await?;
        call::check_status(answered.status, &what)?;
        let answer = wecom::answer(&answered.body, &what)?;
        match answer.errcode {
            // A refusal of a one-use URL says more than WeCom's words: it works once.
            0 | wecom::ERR_BUSY => wecom::settle(answer.errcode, &answer.errmsg, "response_url"),
            code => Err(SendError::Permanent(format!(
                "WeCom refused the answer through response_url: errcode {code}: {} (each works once, for an hour)",
                answer.errmsg
            ))),
        }
    }
}

/// WeCom waits up to six minutes on a stream, so slow work is given five before it is
/// cancelled (its timeout notice then still shows in the stream); the acknowledgement
/// stands in the stream until the answer replaces it.
fn reply_timing() -> ReplyTiming {
    ReplyTiming {
        give_up_after_ms: 300_000,
        ..ReplyTiming::default()
    }
}

#[async_trait]
impl Adapter for WecomAibot {
    fn name(&self) -> &str {
        &self.name
    }

    fn platform(&self) -> &'static str {
        PLATFORM
    }

    fn text_format(&self) -> TextFormat {
        TEXT_FORMAT
    }

    fn reply_timing(&self) -> ReplyTiming {
        reply_timing()
    }

    fn answering(&self, event: &Event, progress: Answering<'_>) {
        self.inbound
            .exchanges()
            .answering(&event.id, progress, Instant::now());
    }

    /// Into the message's stream while it is open, else once through a `response_url`
    /// (see [`stream`]). Nothing is kept across a restart, so an action resumed after one
    /// has nowhere to go.
    async fn deliver(&self, outgoing: &Outgoing) -> Result<Delivered, SendError> {
        let _turn = self.posting.lock().await;
        let action = outgoing.action_id.as_str();
        let decided = self.inbound.exchanges().deliver(
            action,
            &outgoing.conversation,
            &outgoing.text,
            Instant::now(),
        );
        let (event, url, content) = match decided {
            Delivery::Streamed => {
                tracing::debug!(adapter = %self.name, action, "answer in the stream");
                return Ok(Delivered::Sent);
            }
            Delivery::Held => {
                tracing::debug!(adapter = %self.name, action, "late answer's part kept for its last");
                return Ok(Delivered::Sent);
            }
            Delivery::Dropped(why) => {
                tracing::debug!(adapter = %self.name, action, why, "not delivered");
                return Ok(Delivered::Sent);
            }
            Delivery::Refused(reason) => return Err(SendError::Permanent(reason)),
            Delivery::Post {
                event,
                url,
                content,
            } => (event, url, content),
        };
        let result = self.post(&url, &content).await;
        let spent = !matches!(result, Err(SendError::Retry { .. }));
        self.inbound.exchanges().posted(&event, action, spent);
        if result.is_ok() {
            tracing::info!(adapter = %self.name, action, "answered through the message's response_url");
        }
        result.map(|()| Delivered::Sent)
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

    async fn start(&self, ctx: AdapterContext) -> Result<(), AdapterError> {
        // A second start keeps the first context: there is one runtime.
        let _ = self.inbound.ctx.set(ctx);
        Ok(())
    }
}

/// 101033 验证URL有效性: the decrypted `echostr`, as it is.
async fn verify_url(State(inbound): State<Arc<Inbound>>, RawQuery(raw): RawQuery) -> Response {
    wecom::verify_url(
        &inbound.door,
        &inbound.crypto,
        raw.as_deref(),
        SystemTime::now(),
    )
}

/// What a callback taken before is answered with when it comes again (WeCom's retry of
/// one we answered late), without decrypting it again: a message's or a refresh's stream
/// as it shows now, the welcome again, or nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Again {
    Stream(String),
    Welcome,
    Empty,
}

/// 101033 接收回调解密 → 101031 被动回复: through the door (signature, clock, replays,
/// then AES), then answered.
async fn receive(
    State(inbound): State<Arc<Inbound>>,
    RawQuery(raw): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Response {
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
        extract_json_encrypt,
        SystemTime::now(),
    );
    match admitted {
        Ok(Admitted::Fresh {
            plain,
            signed,
            claim,
        }) => {
            let (response, again) = answer(&inbound, &plain, &signed.nonce).await;
            // Only what was answered is taken: a refusal or a failure lets WeCom's retry
            // in as new.
            if let Some(again) = again {
                claim.done(again);
            }
            response
        }
        Ok(Admitted::Again { answer, signed }) => {
            let reply = |plain: &str| seal(&inbound, plain, &signed.nonce);
            match answer {
                Again::Stream(stream) => reply(&stream_reply(&refreshed(&inbound, stream))),
                Again::Welcome => match &inbound.welcome {
                    Some(welcome) => reply(&welcome_reply(welcome)),
                    None => empty(),
                },
                Again::Empty => empty(),
            }
        }
        Err(refused) => refused,
    }
}

/// What stream `id` shows now; one not known (from before a restart, or over an hour
/// old) is finished, so WeCom stops asking.
fn refreshed(inbound: &Inbound, id: String) -> Shown {
    let shown = inbound
        .exchanges()
        .refresh(&id, Instant::now(), &inbound.ack_text);
    shown.unwrap_or_else(|| {
        tracing::debug!(
            adapter = %inbound.name,
            stream = id,
            "refresh of a stream not known; finished"
        );
        Shown {
            id,
            content: String::new(),
            finish: true,
        }
    })
}

fn welcome_reply(welcome: &str) -> String {
    serde_json::json!({"msgtype": "text", "text": {"content": welcome}}).to_string()
}

/// A decrypted callback read and answered; with what to answer it again if WeCom sends
/// it again, when it was taken.
async fn answer(inbound: &Inbound, plain: &str, nonce: &str) -> (Response, Option<Again>) {
    let name = inbound.name.as_str();
    let door = &inbound.door;
    let malformed =
        |reason: &str| wecom::refuse(door, Reason::Malformed, StatusCode::BAD_REQUEST, reason);
    let json: Value = match serde_json::from_str(plain) {
        Ok(json) => json,
        Err(error) => {
            return (
                malformed(&format!("decrypted callback is not JSON: {error}")),
                None,
            );
        }
    };
    if let (Some(ours), Some(theirs)) = (&inbound.aibot_id, message::aibot_id(&json))
        && ours != theirs
    {
        // Signed with our token and key, yet for another bot: the URL was pasted into the
        // wrong bot's settings. Answered, so WeCom does not retry.
        door.refused(
            Reason::WrongRecipient,
            StatusCode::OK,
            &format!("callback for another bot: aibotid {theirs}, this one is {ours}; ignored"),
        );
        return (empty(), Some(Again::Empty));
    }
    let callback = match message::parse(&json, name) {
        Ok(callback) => callback,
        Err(reason) => return (malformed(&reason), None),
    };
    let Some(ctx) = inbound.ctx.get() else {
        tracing::warn!(
            adapter = name,
            "callback before the adapter started; WeCom is asked to send it again"
        );
        return (
            (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response(),
            None,
        );
    };
    let reply = |plain: &str| seal(inbound, plain, nonce);
    let now = Instant::now();
    match callback {
        Callback::Refresh { stream } => (
            reply(&stream_reply(&refreshed(inbound, stream.clone()))),
            Some(Again::Stream(stream)),
        ),
        Callback::Message(incoming) => {
            let known = inbound
                .exchanges()
                .known(&incoming.msgid, now, &inbound.ack_text);
            if let Some(shown) = known {
                tracing::debug!(adapter = name, msgid = %incoming.msgid, "message sent again (WeCom's retry); its stream answered again");
                return match shown {
                    Some(shown) => {
                        let again = Again::Stream(shown.id.clone());
                        (reply(&stream_reply(&shown)), Some(again))
                    }
                    None => (empty(), Some(Again::Empty)),
                };
            }
            let msgid = incoming.msgid.clone();
            let stream = format!("s{}", short_hash(&format!("{name}:{msgid}")));
            match accept(inbound, ctx, incoming, Some(stream.clone())).await {
                // The stream as it is now: a fast answer may be in it already.
                Accepted::Fresh => (
                    reply(&stream_reply(&refreshed(inbound, stream.clone()))),
                    Some(Again::Stream(stream)),
                ),
                // Stored by an earlier run: its answer is not this run's.
                Accepted::Before => (empty(), Some(Again::Empty)),
                Accepted::Failed(response) => (response, None),
            }
        }
        Callback::Entered(incoming) => match accept(inbound, ctx, incoming, None).await {
            Accepted::Failed(response) => (response, None),
            // A retry is welcomed again: the first answer may not have arrived.
            Accepted::Fresh | Accepted::Before => match &inbound.welcome {
                Some(welcome) => (reply(&welcome_reply(welcome)), Some(Again::Welcome)),
                None => (empty(), Some(Again::Empty)),
            },
        },
        Callback::CardClicked(incoming) => match accept(inbound, ctx, incoming, None).await {
            Accepted::Failed(response) => (response, None),
            Accepted::Fresh | Accepted::Before => (empty(), Some(Again::Empty)),
        },
        Callback::Other(what) => {
            tracing::debug!(
                adapter = name,
                what,
                "callback of a kind not routed; acknowledged"
            );
            (empty(), Some(Again::Empty))
        }
    }
}

enum Accepted {
    Fresh,
    /// Stored before (by an earlier run): not routed again, and nothing to answer here.
    Before,
    Failed(Response),
}

/// Remembers the message, then stores and routes its event. Remembered first: a fast
/// handler may answer before `accept` returns.
async fn accept(
    inbound: &Inbound,
    ctx: &AdapterContext,
    incoming: Incoming,
    stream: Option<String>,
) -> Accepted {
    let event_id = incoming.event.id.clone();
    let opened = inbound.exchanges().open(
        &event_id,
        &incoming.msgid,
        incoming.conversation(),
        incoming.response_url.clone(),
        stream,
        Instant::now(),
    );
    if !opened {
        tracing::debug!(adapter = %inbound.name, msgid = %incoming.msgid, "callback sent again (WeCom's retry); routed once");
        return Accepted::Before;
    }
    match ctx.inbox.accept(incoming.event).await {
        Ok(true) => Accepted::Fresh,
        Ok(false) => {
            tracing::debug!(adapter = %inbound.name, msgid = %incoming.msgid, "callback stored before; not routed again");
            inbound.exchanges().forget(&event_id);
            Accepted::Before
        }
        Err(error) => {
            inbound.exchanges().forget(&event_id);
            // Not stored: a 5xx makes WeCom send it again.
            tracing::error!(adapter = %inbound.name, %error, "could not store a callback's event");
            Accepted::Failed((StatusCode::INTERNAL_SERVER_ERROR, "try again").into_response())
        }
    }
}

/// 101031 流式消息回复.
fn stream_reply(shown: &Shown) -> String {
    serde_json::json!({
        "msgtype": "stream",
        "stream": {"id": shown.id, "finish": shown.finish, "content": shown.content},
    })
    .to_string()
}

/// 101033 加密与被动回复: the reply sealed, signed with our time and the callback's nonce.
fn seal(inbound: &Inbound, plain: &str, nonce: &str) -> Response {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match inbound.crypto.encrypt(plain, &now.to_string(), nonce) {
        Ok(sealed) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            sealed.json_envelope(),
        )
            .into_response(),
        Err(error) => {
            tracing::error!(adapter = %inbound.name, %error, "cannot seal a reply");
            (StatusCode::INTERNAL_SERVER_ERROR, "try again").into_response()
        }
    }
}

/// "可以选择直接回复空包".
fn empty() -> Response {
    StatusCode::OK.into_response()
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use axum::Json;
    use axum::routing::post;
    use serde_json::json;

    use super::*;
    use crate::adapter::testing::{Kept, callbacks, context};
    use crate::event::test_message;

    const KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";

    fn config() -> WecomAibotConfig {
        WecomAibotConfig {
            token: "t".into(),
            encoding_aes_key: KEY.into(),
            aibot_id: None,
            welcome: None,
            stream_secs: 1,
        }
    }

    #[test]
    fn config_checks_the_key_the_window_and_leaves_unexpanded_values() {
        assert_eq!(config().check(), Ok(()));
        let parsed: WecomAibotConfig =
            toml::from_str(&format!("token = \"t\"\nencoding_aes_key = {KEY:?}\n")).expect("toml");
        assert_eq!(parsed.stream_secs, STREAM_SECS_MAX);
        for (bad, why) in [
            (
                WecomAibotConfig {
                    encoding_aes_key: "abc".into(),
                    ..config()
                },
                "43 characters",
            ),
            (
                WecomAibotConfig {
                    token: " ".into(),
                    ..config()
                },
                "token",
            ),
            (
                WecomAibotConfig {
                    stream_secs: 0,
                    ..config()
                },
                "stream_secs",
            ),
            (
                WecomAibotConfig {
                    aibot_id: Some(String::new()),
                    ..config()
                },
                "aibot_id",
            ),
        ] {
            assert!(bad.check().unwrap_err().contains(why), "{why}");
        }
        let env = WecomAibotConfig {
            encoding_aes_key: "${AIBOT_KEY}".into(),
            ..config()
        };
        assert_eq!(env.check(), Ok(()));
        let bot = WecomAibot::new("bot", &config()).expect("bot");
        assert!(!format!("{bot:?}").contains(KEY));
        assert_eq!(bot.reply_timing().give_up_after_ms, 300_000);
    }

    fn now_secs() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs()
    }

    /// A callback as WeCom posts it: `plain` sealed with the bot's key at `timestamp`.
    fn sealed(plain: &Value, timestamp: u64, nonce: &str) -> (String, String) {
        let crypto = WeComCrypto::new("t", KEY, "").expect("crypto");
        let sealed = crypto
            .encrypt(&plain.to_string(), &timestamp.to_string(), nonce)
            .expect("encrypt");
        (
            format!(
                "msg_signature={}&timestamp={}&nonce={}",
                sealed.signature, sealed.timestamp, sealed.nonce
            ),
            json!({"encrypt": sealed.encrypt}).to_string(),
        )
    }

    /// A passive reply opened as WeCom would.
    fn opened(reply: &str) -> Value {
        let crypto = WeComCrypto::new("t", KEY, "").expect("crypto");
        let envelope: Value = serde_json::from_str(reply).expect("json");
        let field = |name: &str| envelope[name].as_str().expect(name).to_string();
        let plain = crypto
            .decrypt(
                &field("msgsignature"),
                &field("timestamp"),
                &field("nonce"),
                &field("encrypt"),
            )
            .expect("decrypt");
        serde_json::from_str(&plain).expect("json")
    }

    #[tokio::test]
    async fn a_replayed_callback_is_answered_as_before_without_being_read_and_bad_ones_are_counted()
    {
        let bot = WecomAibot::new(
            "bot",
            &WecomAibotConfig {
                aibot_id: Some("aib-1".into()),
                ..config()
            },
        )
        .expect("bot");
        let kept = Arc::new(Kept::default());
        bot.start(context(&kept)).await.expect("start");
        let url = callbacks(&bot, "bot").await;
        let client = reqwest::Client::new();
        let post = |query: String, body: String| {
            let client = client.clone();
            let url = url.clone();
            async move {
                let answer = client
                    .post(format!("{url}?{query}"))
                    .body(body)
                    .send()
                    .await
                    .expect("post");
                (answer.status().as_u16(), answer.text().await.expect("text"))
            }
        };
        let message = json!({
            "msgid": "m1", "aibotid": "aib-1", "chattype": "single",
            "from": {"userid": "lisi"}, "msgtype": "text", "text": {"content": "你好"},
        });
        let (query, body) = sealed(&message, now_secs(), "n1");
        let (status, first) = post(query.clone(), body.clone()).await;
        assert_eq!(status, 200, "{first}");
        let first = opened(&first);
        assert_eq!(first["msgtype"], "stream");
        // The very same request: its stream again, from the replay cache.
        let (status, again) = post(query, body).await;
        assert_eq!(status, 200, "{again}");
        assert_eq!(opened(&again)["stream"]["id"], first["stream"]["id"]);
        assert_eq!(kept.0.lock().expect("lock").len(), 1);
        assert_eq!(bot.inbound.door.count(Reason::Replay), 1);

        // Stale, too large, for another bot, and a signed plaintext that is no JSON.
        let (query, body) = sealed(&message, now_secs() - 3600, "n2");
        assert_eq!(post(query, body).await.0, 403);
        let (query, _) = sealed(&message, now_secs(), "n3");
        let huge = "x".repeat(wecom::MAX_CALLBACK_BYTES + 1);
        assert_eq!(post(query, huge).await.0, 413);
        let mut other = message.clone();
        other["aibotid"] = "aib-2".into();
        other["msgid"] = "m2".into();
        let (query, body) = sealed(&other, now_secs(), "n4");
        assert_eq!(post(query, body).await, (200, String::new()));
        let crypto = WeComCrypto::new("t", KEY, "").expect("crypto");
        let garbage = crypto
            .encrypt("not json", &now_secs().to_string(), "n5")
            .expect("encrypt");
        let (status, _) = post(
            format!(
                "msg_signature={}&timestamp={}&nonce=n5",
                garbage.signature, garbage.timestamp
            ),
            json!({"encrypt": garbage.encrypt}).to_string(),
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(kept.0.lock().expect("lock").len(), 1);
        let door = &bot.inbound.door;
        assert_eq!(
            (
                door.count(Reason::Stale),
                door.count(Reason::TooLarge),
                door.count(Reason::WrongRecipient),
                door.count(Reason::Malformed),
            ),
            (1, 1, 1, 1)
        );
    }

    /// A stand-in for the `response_url`s: answers with the queued bodies (status, JSON)
    /// and keeps what it got.
    #[derive(Clone, Default)]
    struct Urls {
        answers: Arc<std::sync::Mutex<VecDeque<(u16, String)>>>,
        got: Arc<std::sync::Mutex<Vec<Value>>>,
    }

    async fn serve(urls: Urls) -> String {
        async fn respond(
            State(urls): State<Urls>,
            Json(body): Json<Value>,
        ) -> (StatusCode, String) {
            urls.got.lock().expect("lock").push(body);
            let (status, body) = urls
                .answers
                .lock()
                .expect("lock")
                .pop_front()
                .unwrap_or((200, r#"{"errcode":0,"errmsg":"ok"}"#.into()));
            (StatusCode::from_u16(status).expect("status"), body)
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = axum::Router::new()
            .route("/r", post(respond))
            .with_state(urls);
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/r?response_code=secret")
    }

    fn outgoing(action: &str, text: &str) -> Outgoing {
        Outgoing {
            action_id: action.into(),
            conversation: "lisi".into(),
            text: text.into(),
            attachments: Vec::new(),
            resumed: false,
        }
    }

    /// Late answers go to the response_url: a passing failure keeps it for the retry, a
    /// refusal or a success spends it, and the reasons say what happened.
    #[tokio::test]
    async fn late_answers_use_the_response_url_once_and_say_why_they_cannot() {
        let urls = Urls::default();
        let url = serve(urls.clone()).await;
        let bot = WecomAibot::new("bot", &config()).expect("bot");
        let event = test_message("bot", "lisi", "hi", false);
        let open = |event: &str, msgid: &str| {
            bot.inbound.exchanges().open(
                event,
                msgid,
                "lisi",
                Some(url.clone()),
                None,
                Instant::now(),
            );
        };
        open(&event.id, "m1");
        bot.answering(
            &event,
            Answering::Answer {
                action: "a1",
                last: true,
            },
        );
        urls.answers.lock().expect("lock").extend([
            (502, "bad gateway".to_string()),
            (200, r#"{"errcode":-1,"errmsg":"system busy"}"#.to_string()),
        ]);
        for _ in 0..2 {
            assert!(matches!(
                bot.deliver(&outgoing("a1", "**答案**")).await,
                Err(SendError::Retry { .. })
            ));
        }
        assert_eq!(
            bot.deliver(&outgoing("a1", "**答案**")).await,
            Ok(Delivered::Sent)
        );
        assert_eq!(
            urls.got.lock().expect("lock")[2],
            json!({"msgtype": "markdown", "markdown": {"content": "**答案**"}})
        );
        let spent = bot.deliver(&outgoing("a2", "again")).await;
        assert!(
            matches!(&spent, Err(SendError::Permanent(why)) if why.contains("only answer messages")),
            "{spent:?}"
        );

        // WeCom refuses, or answers what is not its JSON: no retry, and the URL is spent.
        for (answer, why) in [
            (
                r#"{"errcode":93000,"errmsg":"invalid response_code"}"#,
                "93000",
            ),
            ("<html>", "not WeCom's JSON"),
        ] {
            open("ev-x", "mx");
            urls.answers
                .lock()
                .expect("lock")
                .push_back((200, answer.to_string()));
            let refused = bot.deliver(&outgoing("x", "x")).await;
            assert!(
                matches!(&refused, Err(SendError::Permanent(m)) if m.contains(why) && !m.contains("secret")),
                "{refused:?}"
            );
            bot.inbound.exchanges().forget("ev-x");
        }
        assert_eq!(urls.got.lock().expect("lock").len(), 5);
    }
}
