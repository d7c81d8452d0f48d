//! QQ official bot (QQ机器人, DESIGN.md §6) in webhook mode: QQ posts each event to
//! `/callback/<name>`, signed with a key derived from the bot secret; the adapter checks
//! the signature before reading anything else, acknowledges with op 12, and answers
//! through QQ's message API as passive replies (the message's `msg_id` and an increasing
//! `msg_seq`).
//!
//! Group @-messages, private (C2C) messages, guild channel messages and guild DMs are
//! routed; a conversation id names its kind (`group:`, `c2c:`, `channel:`, `dm:`) so an
//! answer finds its endpoint. Signatures are in [`sign`], reading events in [`inbound`],
//! tokens, replies and QQ's refusals in [`outbound`]; each cites its documents (bot-docs,
//! `tencent-connect/bot-docs`, and the official SDKs botgo and botpy).
//!
//! The webhook's rules (bot-docs `dev-prepare/interface-framework/event-emit.md`,
//! `sign.md`): every callback carries `X-Signature-Ed25519` over the
//! `X-Signature-Timestamp` followed by the body; op 13 asks for the callback URL's
//! validation and is answered with `{"plain_token", "signature"}`; an op 0 dispatch is
//! answered with op 12 (botgo `interaction/webhook/webhook.go`: `{"op":12,"d":0}`, `d` 1
//! when it failed so that QQ sends it again).

pub mod inbound;
pub mod outbound;
pub mod sign;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;

use super::check::{Secret, http_url, number_or_string, required, unexpanded};
use super::door::{self, Door, Reason};
use super::replay::{Replays, Seen};
use super::{Adapter, AdapterContext, Delivered, Outgoing, SendError};
use crate::format::TextFormat;
use inbound::{
    OP_CALLBACK_ACK, OP_DISPATCH, OP_HEARTBEAT, OP_HEARTBEAT_ACK, OP_VALIDATION, Payload, Target,
    Validation,
};
use outbound::{Answer, Api, Plan, Replies};
use sign::{BotKey, SIGNATURE_HEADER, SignError, TIMESTAMP_HEADER};

pub const PLATFORM: &str = "qq";
/// What an adapter without `markdown = true` shows: QQ prints markdown literally.
pub const TEXT_FORMAT: TextFormat = TextFormat::Plain;

const DEFAULT_API_BASE: &str = "https://api.sgroup.qq.com";
/// botpy `botpy/http.py` `Route.SANDBOX_DOMAIN`.
const SANDBOX_API_BASE: &str = "https://sandbox.api.sgroup.qq.com";
const DEFAULT_TOKEN_URL: &str = "https://bots.qq.com/app/getAppAccessToken";
/// send.md advises at least 5 s, lest a message that went out look failed.
const TIMEOUT: Duration = Duration::from_secs(10);
/// How far `X-Signature-Timestamp` may be from our clock. QQ documents no window; an
/// hour is the longest time a message can still be answered (a private chat's reply
/// window, send.md), so a request signed longer ago carries nothing worth taking, and a
/// captured one cannot be played back later than that.
const SIGNATURE_WINDOW: Duration = Duration::from_secs(60 * 60);
/// The longest `plain_token` or `event_ts` an unsigned op 13 may carry.
const VALIDATION_MAX: usize = 256;
/// A callback's body, at most: one event (event-emit.md), a message's text with its
/// author, ids and attachment links in JSON, kilobytes; 256 KB leaves room and keeps a
/// flood from filling memory.
const MAX_CALLBACK_BYTES: usize = 256 * 1024;
/// The header naming the bot a callback is for (QQ sends it beside the signature; the
/// unsigned op 13 of event-emit.md carries it too).
const APP_ID_HEADER: &str = "X-Bot-Appid";

/// One `type = "qq"` adapter of `tapwire.toml`. The secret belongs in the environment:
/// `app_secret = "${QQ_BOT_SECRET}"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QqConfig {
    /// The bot's AppID (开发设置); a number, written with or without quotes.
    #[serde(deserialize_with = "number_or_string")]
    pub app_id: String,
    /// The bot's AppSecret: it signs the callbacks and fetches access tokens.
    pub app_secret: Secret,
    /// Send through QQ's sandbox API (for a bot in its sandbox guild or group).
    #[serde(default)]
    pub sandbox: bool,
    /// Where QQ's API is; tests point it at a stand-in. Default: the sandbox's or the
    /// production API, after `sandbox`.
    #[serde(default)]
    pub api_base: Option<String>,
    /// Where access tokens come from.
    #[serde(default = "default_token_url")]
    pub token_url: String,
    /// Answers go as markdown (`msg_type` 2), which QQ takes only from bots it has
    /// enabled for it (markdown.md: "目前需要内邀开通"); otherwise plain text.
    #[serde(default)]
    pub markdown: bool,
}

fn default_token_url() -> String {
    DEFAULT_TOKEN_URL.into()
}

impl QqConfig {
    /// What is wrong with the section, if anything; messages never show the secret.
    pub fn check(&self) -> Result<(), String> {
        required(&[("app_id", &self.app_id), ("app_secret", &self.app_secret)])?;
        if !unexpanded(&self.app_id) && !self.app_id.trim().chars().all(|c| c.is_ascii_digit()) {
            return Err(format!(
                "app_id must be the bot's numeric AppID, not {:?}",
                self.app_id
            ));
        }
        if !unexpanded(&self.api_base()) {
            http_url("api_base", &self.api_base())?;
        }
        if !unexpanded(&self.token_url) {
            http_url("token_url", &self.token_url)?;
        }
        Ok(())
    }

    /// Markdown where the section allows it, else plain text.
    pub fn text_format(&self) -> TextFormat {
        if self.markdown {
            TextFormat::Markdown
        } else {
            TEXT_FORMAT
        }
    }

    fn api_base(&self) -> String {
        match &self.api_base {
            Some(base) => base.clone(),
            None if self.sandbox => SANDBOX_API_BASE.into(),
            None => DEFAULT_API_BASE.into(),
        }
    }
}

/// What the callback route shares with the adapter.
struct Inbound {
    name: String,
    app_id: String,
    key: BotKey,
    replies: Arc<Replies>,
    /// Set by `start`; callbacks that come earlier are told to come again.
    ctx: OnceLock<AdapterContext>,
    door: Door,
    replays: Replays<()>,
}

pub struct QqBot {
    name: String,
    markdown: bool,
    format: TextFormat,
    api: Api,
    replies: Arc<Replies>,
    inbound: Arc<Inbound>,
}

impl std::fmt::Debug for QqBot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Neither the secret nor a token is shown.
        f.debug_struct("QqBot")
            .field("name", &self.name)
            .field("markdown", &self.markdown)
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

impl QqBot {
    pub fn new(name: &str, config: &QqConfig) -> Result<QqBot, String> {
        config.check()?;
        let secret = config.app_secret.trim();
        let key = BotKey::from_secret(secret).map_err(|e| e.to_string())?;
        let client = crate::http::client(TIMEOUT)?;
        let replies = Arc::new(Replies::default());
        Ok(QqBot {
            name: name.to_string(),
            markdown: config.markdown,
            format: config.text_format(),
            api: Api::new(
                config.app_id.trim().to_string(),
                secret.to_string(),
                http_url("api_base", &config.api_base())?,
                http_url("token_url", &config.token_url)?,
                client,
            ),
            replies: replies.clone(),
            inbound: Arc::new(Inbound {
                name: name.to_string(),
                app_id: config.app_id.trim().to_string(),
                key,
                replies,
                ctx: OnceLock::new(),
                door: Door::new(name),
                replays: Replays::new(),
            }),
        })
    }
}

#[async_trait]
impl Adapter for QqBot {
    fn name(&self) -> &str {
        &self.name
    }

    fn platform(&self) -> &'static str {
        PLATFORM
    }

    fn text_format(&self) -> TextFormat {
        self.format
    }

    /// One message to a `group:`, `c2c:`, `channel:` or `dm:` conversation, replying to
    /// its last message while QQ still takes replies to it (see [`Replies`]).
    async fn deliver(&self, outgoing: &Outgoing) -> Result<Delivered, SendError> {
        let target = Target::parse(&outgoing.conversation).map_err(SendError::Permanent)?;
        let plan = self.replies.plan(
            &target,
            &outgoing.action_id,
            &outgoing.text,
            SystemTime::now(),
        );
        if let Plan::Active { why } = &plan {
            tracing::warn!(adapter = %self.name, conversation = %target, resumed = outgoing.resumed, %why, "no message to reply to; sending an active message, which QQ limits");
        }
        let url = self.api.endpoint(&target)?;
        let body = outbound::body(target.kind, &outgoing.text, self.markdown, &plan);
        let again = matches!(plan, Plan::Passive { again: true, .. });
        // `settle`: the piece's seq is spent. A passing failure keeps it, so that the retry
        // sends the same seq and QQ can tell it from a new reply.
        let (result, settle) = match self.api.post(&url, &body).await {
            Answer::Sent => (Ok(Delivered::Sent), true),
            // This piece went out on an earlier try whose answer was lost.
            Answer::Duplicate(reason) if again => {
                tracing::info!(adapter = %self.name, conversation = %target, %reason, "QQ already had this reply");
                (Ok(Delivered::Sent), true)
            }
            // A seq sent before by something else: the retry takes the next one.
            Answer::Duplicate(reason) => (
                Err(SendError::Retry {
                    reason: format!("QQ took the reply's msg_seq for a duplicate ({reason})"),
                    after: None,
                }),
                true,
            ),
            Answer::TokenRefused(reason) => (
                Err(SendError::Retry {
                    reason: format!("QQ refused the access token ({reason})"),
                    after: None,
                }),
                false,
            ),
            Answer::Failed(error @ SendError::Retry { .. }) => (Err(error), false),
            Answer::Failed(SendError::Permanent(reason)) => {
                let reason = match &plan {
                    Plan::Active { why } => {
                        format!("{reason}; it went as an active message: {why}")
                    }
                    Plan::Passive { .. } => reason,
                };
                (Err(SendError::Permanent(reason)), true)
            }
        };
        if settle {
            self.replies.settle(&target, &outgoing.action_id);
        }
        result
    }

    fn routes(&self) -> Option<axum::Router> {
        let router = axum::Router::new()
            .route("/", post(callback))
            .with_state(self.inbound.clone());
        Some(door::limited(router, MAX_CALLBACK_BYTES))
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

fn json(status: StatusCode, value: serde_json::Value) -> Response {
    (status, axum::Json(value)).into_response()
}

/// The op 12 answer: `d` 0 taken, 1 not taken (send it again).
fn ack(status: StatusCode, taken: bool) -> Response {
    json(
        status,
        serde_json::json!({"op": OP_CALLBACK_ACK, "d": u8::from(!taken)}),
    )
}

/// A refusal: its reason logged and counted, and said in the body.
fn refuse(inbound: &Inbound, reason: Reason, status: StatusCode, detail: &str) -> Response {
    inbound.door.refuse(reason, status, detail, detail)
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `X-Signature-Timestamp` is Unix seconds (sign.md's example: 1725442341): the signed
/// time, if it is within the window.
fn within_window(timestamp: &str, now: SystemTime) -> Result<SystemTime, String> {
    let seconds: u64 = timestamp
        .trim()
        .parse()
        .map_err(|_| format!("{TIMESTAMP_HEADER} {timestamp:?} is not Unix seconds"))?;
    let signed = SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_secs(seconds))
        .ok_or_else(|| format!("{TIMESTAMP_HEADER} {seconds} is no time"))?;
    // Either way off: a clock ahead of ours is no better than one behind.
    let off = match now.duration_since(signed) {
        Ok(behind) => behind,
        Err(ahead) => ahead.duration(),
    };
    if off > SIGNATURE_WINDOW {
        return Err(format!(
            "{TIMESTAMP_HEADER} {seconds} is {} s away from now (more than {} s)",
            off.as_secs(),
            SIGNATURE_WINDOW.as_secs()
        ));
    }
    Ok(signed)
}

/// The callback URL: the size, then QQ's signature on the raw body, the clock, the bot it
/// names and replays; only then is the body read (an unsigned op 13 is the one
/// exception, see [`unsigned`]).
async fn callback(
    State(inbound): State<Arc<Inbound>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let name = inbound.name.as_str();
    let body = match inbound.door.body(body) {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let signature = header(&headers, SIGNATURE_HEADER);
    let timestamp = header(&headers, TIMESTAMP_HEADER);
    if signature.is_none() && timestamp.is_none() {
        return unsigned(&inbound, &body);
    }
    if let Err(error) = inbound.key.verify(timestamp, &body, signature) {
        return refuse(
            &inbound,
            Reason::Signature,
            StatusCode::UNAUTHORIZED,
            &error.to_string(),
        );
    }
    let now = SystemTime::now();
    let signed_at = match within_window(timestamp.unwrap_or_default(), now) {
        Ok(at) => at,
        Err(reason) => return refuse(&inbound, Reason::Stale, StatusCode::UNAUTHORIZED, &reason),
    };
    if let Some(app_id) = header(&headers, APP_ID_HEADER)
        && app_id.trim() != inbound.app_id
    {
        return refuse(
            &inbound,
            Reason::WrongRecipient,
            StatusCode::UNAUTHORIZED,
            &format!("{APP_ID_HEADER} {app_id:?} is not this bot's AppID"),
        );
    }
    // QQ signs no nonce, but an Ed25519 signature over the timestamp and the body names
    // this very request (and the same request always has the same one).
    let key = signature.unwrap_or_default().trim().to_ascii_lowercase();
    let claim = match inbound
        .replays
        .check(&key, signed_at + SIGNATURE_WINDOW, now)
    {
        Seen::New(claim) => claim,
        Seen::Done(()) => {
            inbound.door.refused(
                Reason::Replay,
                StatusCode::OK,
                "a callback taken before; acknowledged as then",
            );
            return ack(StatusCode::OK, true);
        }
        Seen::InFlight => {
            inbound.door.refused(
                Reason::Replay,
                StatusCode::SERVICE_UNAVAILABLE,
                "the same callback is being handled; QQ is asked to send it again",
            );
            return ack(StatusCode::SERVICE_UNAVAILABLE, false);
        }
    };
    let payload: Payload = match serde_json::from_slice(&body) {
        Ok(payload) => payload,
        Err(e) => {
            return refuse(
                &inbound,
                Reason::Malformed,
                StatusCode::BAD_REQUEST,
                &format!("the body is not QQ's payload: {e}"),
            );
        }
    };
    let response = match payload.op {
        OP_VALIDATION => match validation(&inbound, &payload) {
            Ok(validation) => validate(&inbound, &validation),
            Err(refused) => refused,
        },
        OP_DISPATCH => dispatch(&inbound, &payload).await,
        // botgo webhook.go: a heartbeat is answered with op 11 and its own `d`.
        OP_HEARTBEAT => json(
            StatusCode::OK,
            serde_json::json!({"op": OP_HEARTBEAT_ACK, "d": payload.d}),
        ),
        op => {
            tracing::debug!(adapter = name, op, "callback of an op not handled; ignored");
            StatusCode::OK.into_response()
        }
    };
    // Only what was taken is remembered: a refusal or a failure lets QQ's retry in.
    if response.status() == StatusCode::OK {
        claim.done(());
    }
    response
}

/// An unsigned request may only be op 13, the validation: event-emit.md's example of
/// it carries no signature headers. Since the key that signs QQ's callbacks signs this
/// answer too, signing any text would let whoever asks forge a callback
/// (`event_ts` + `plain_token` read as `X-Signature-Timestamp` + body). So a token with a
/// `{` or `[` is refused: without one, no part of the signed text can be a JSON object or
/// array, which is what every callback body is.
fn unsigned(inbound: &Inbound, body: &[u8]) -> Response {
    let payload = serde_json::from_slice::<Payload>(body).ok();
    let Some(payload) = payload.filter(|p| p.op == OP_VALIDATION) else {
        return refuse(
            inbound,
            Reason::Signature,
            StatusCode::UNAUTHORIZED,
            &SignError::NoSignature.to_string(),
        );
    };
    let validation = match validation(inbound, &payload) {
        Ok(validation) => validation,
        Err(refused) => return refused,
    };
    let safe =
        |text: &str| !text.is_empty() && text.len() <= VALIDATION_MAX && !text.contains(['{', '[']);
    if !safe(&validation.plain_token) || !safe(&validation.event_ts) {
        return refuse(
            inbound,
            Reason::Malformed,
            StatusCode::BAD_REQUEST,
            "unsigned op 13 whose plain_token or event_ts could make a callback body",
        );
    }
    validate(inbound, &validation)
}

/// op 13's `d`, or the refusal of one without it.
#[allow(clippy::result_large_err)]
fn validation(inbound: &Inbound, payload: &Payload) -> Result<Validation, Response> {
    Validation::deserialize(&payload.d).map_err(|_| {
        refuse(
            inbound,
            Reason::Malformed,
            StatusCode::BAD_REQUEST,
            "op 13 without plain_token and event_ts",
        )
    })
}

/// event-emit.md 回调地址验证: `{"plain_token", "signature"}`.
fn validate(inbound: &Inbound, validation: &Validation) -> Response {
    tracing::info!(adapter = %inbound.name, "callback URL validation answered");
    json(
        StatusCode::OK,
        serde_json::json!({
            "plain_token": validation.plain_token,
            "signature": inbound.key.sign_validation(&validation.event_ts, &validation.plain_token),
        }),
    )
}

/// An op 0 event: a message is stored and routed, then acknowledged with op 12.
async fn dispatch(inbound: &Inbound, payload: &Payload) -> Response {
    let name = inbound.name.as_str();
    let incoming = match inbound::message(name, payload) {
        Ok(Some(incoming)) => incoming,
        Ok(None) => {
            tracing::debug!(adapter = name, t = ?payload.t, "event of a kind not routed; acknowledged");
            return ack(StatusCode::OK, true);
        }
        Err(reason) => return refuse(inbound, Reason::Malformed, StatusCode::BAD_REQUEST, &reason),
    };
    let Some(ctx) = inbound.ctx.get() else {
        tracing::warn!(
            adapter = name,
            "callback before the adapter started; QQ is asked to send it again"
        );
        return ack(StatusCode::SERVICE_UNAVAILABLE, false);
    };
    // Noted before the event is routed: an answer can be ready before `accept` returns.
    let conversation = incoming.target.to_string();
    inbound.replies.note(
        &conversation,
        &incoming.msg_id,
        incoming.sent_at,
        SystemTime::now(),
    );
    match ctx.inbox.accept(incoming.event).await {
        Ok(fresh) => {
            if !fresh {
                tracing::debug!(adapter = name, msg_id = %incoming.msg_id, "message seen before (QQ's redelivery); not routed again");
            }
            ack(StatusCode::OK, true)
        }
        Err(error) => {
            tracing::error!(adapter = name, %error, "could not store a callback's event");
            ack(StatusCode::INTERNAL_SERVER_ERROR, false)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use axum::Json;
    use axum::extract::Path;
    use axum::http::HeaderMap;

    use super::*;
    use crate::adapter::testing::{Kept, context, serve};

    /// event-emit.md's example bot.
    const APP_ID: &str = "11111111";
    const SECRET: &str = "DG5g3B4j9X2KOErG";

    fn config(api: &str) -> QqConfig {
        QqConfig {
            app_id: APP_ID.into(),
            app_secret: SECRET.into(),
            sandbox: false,
            api_base: Some(api.into()),
            token_url: format!("{api}/app/getAppAccessToken"),
            markdown: false,
        }
    }

    #[test]
    fn config_checks_ids_and_urls_and_never_shows_the_secret() {
        assert_eq!(config("https://api.sgroup.qq.com").check(), Ok(()));
        let parsed: QqConfig = toml::from_str(&format!(
            "app_id = {APP_ID}\napp_secret = \"${{QQ_SECRET}}\"\n"
        ))
        .expect("parsed");
        assert_eq!(parsed.app_id, APP_ID);
        assert_eq!(parsed.check(), Ok(()));
        assert_eq!(parsed.api_base(), DEFAULT_API_BASE);
        assert_eq!(parsed.token_url, DEFAULT_TOKEN_URL);
        assert_eq!(parsed.text_format(), TextFormat::Plain);
        let sandbox = QqConfig {
            sandbox: true,
            markdown: true,
            ..parsed.clone()
        };
        assert_eq!(sandbox.api_base(), SANDBOX_API_BASE);
        assert_eq!(sandbox.text_format(), TextFormat::Markdown);
        for (broken, field) in [
            (
                QqConfig {
                    app_secret: " ".into(),
                    ..parsed.clone()
                },
                "app_secret",
            ),
            (
                QqConfig {
                    app_id: "bot".into(),
                    ..parsed.clone()
                },
                "app_id",
            ),
            (
                QqConfig {
                    api_base: Some("ftp://x".into()),
                    ..parsed.clone()
                },
                "api_base",
            ),
            (
                QqConfig {
                    token_url: "nope".into(),
                    ..parsed.clone()
                },
                "token_url",
            ),
        ] {
            assert!(broken.check().expect_err(field).contains(field), "{field}");
        }
        assert!(
            toml::from_str::<QqConfig>("app_id = 1\napp_secret = \"s\"\ntoken = \"t\"\n").is_err()
        );
        let bot = QqBot::new("qq", &config("https://api.sgroup.qq.com")).expect("bot");
        assert!(!format!("{bot:?}").contains(SECRET));
        assert!(!format!("{:?}", config("https://x")).contains(SECRET));
    }

    #[test]
    fn a_signature_timestamp_is_unix_seconds_within_an_hour_either_way() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(within_window("1800000000", now), Ok(now));
        assert!(within_window("1799996400", now).is_ok());
        assert!(within_window("1800003600", now).is_ok());
        assert!(within_window("1799996399", now).is_err());
        assert!(
            within_window("1800003601", now)
                .expect_err("ahead")
                .contains("3601 s away")
        );
        assert!(
            within_window("2026-11-30T10:00:00Z", now)
                .expect_err("not seconds")
                .contains("Unix seconds")
        );
    }

    fn now_secs() -> u64 {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
    }

    fn group_message(id: &str, text: &str) -> String {
        serde_json::json!({
            "id": format!("GROUP_AT_MESSAGE_CREATE:{id}"),
            "op": 0,
            "t": "GROUP_AT_MESSAGE_CREATE",
            "d": {
                "id": id,
                "content": format!(" {text}"),
                "group_openid": "G1",
                "author": {"member_openid": "M1"},
                "timestamp": humantime::format_rfc3339(SystemTime::now()).to_string(),
            }
        })
        .to_string()
    }

    #[tokio::test]
    async fn callbacks_are_verified_acknowledged_and_kept_once() {
        let bot = QqBot::new("qq", &config("http://127.0.0.1:9")).expect("bot");
        let url = format!(
            "{}/callback/qq",
            serve(axum::Router::new().nest("/callback/qq", bot.routes().expect("routes"))).await
        );
        let client = reqwest::Client::new();
        let key = BotKey::from_secret(SECRET).expect("key");
        let signed = |body: String, ts: u64| {
            client
                .post(&url)
                .header(TIMESTAMP_HEADER, ts.to_string())
                .header(
                    SIGNATURE_HEADER,
                    key.sign_request(&ts.to_string(), body.as_bytes()),
                )
                .body(body)
                .send()
        };
        let message = group_message("m1", "值班");

        // Before `start` there is nowhere to put an event: QQ is asked to send it again.
        let early = signed(message.clone(), now_secs()).await.expect("post");
        assert_eq!(early.status(), 503);
        assert_eq!(
            early.json::<serde_json::Value>().await.expect("json"),
            serde_json::json!({"op": 12, "d": 1})
        );
        let kept = Arc::new(Kept::default());
        bot.start(context(&kept)).await.expect("start");

        // event-emit.md's validation, unsigned as its example shows, and signed.
        let validation =
            r#"{"d":{"plain_token":"Arq0D5A61EgUu4OxUvOp","event_ts":"1725442341"},"op":13}"#;
        let expected = serde_json::json!({
            "plain_token": "Arq0D5A61EgUu4OxUvOp",
            "signature": "87befc99c42c651b3aac0278e71ada338433ae26fcb24307bdc5ad38c1adc2d01bcfcadc0842edac85e85205028a1132afe09280305f13aa6909ffc2d652c706",
        });
        let unsigned = client
            .post(&url)
            .header("X-Bot-Appid", APP_ID)
            .body(validation)
            .send()
            .await
            .expect("post");
        assert_eq!(unsigned.status(), 200);
        assert_eq!(
            unsigned.json::<serde_json::Value>().await.expect("json"),
            expected
        );
        let answer = signed(validation.into(), now_secs()).await.expect("post");
        assert_eq!(
            answer.json::<serde_json::Value>().await.expect("json"),
            expected
        );
        // Signing a callback body on request would forge callbacks: refused.
        let forging = serde_json::json!({"op": 13, "d": {"event_ts": "1", "plain_token": message}})
            .to_string();
        let refused = client.post(&url).body(forging).send().await.expect("post");
        assert_eq!(refused.status(), 400);

        // A group message, then QQ's redelivery: both acknowledged, one event.
        for _ in 0..2 {
            let answer = signed(message.clone(), now_secs()).await.expect("post");
            assert_eq!(answer.status(), 200);
            assert_eq!(
                answer.json::<serde_json::Value>().await.expect("json"),
                serde_json::json!({"op": 12, "d": 0})
            );
        }
        let events = kept.0.lock().expect("lock").clone();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].text().as_deref(), Some("值班"));
        // The very same request again (one timestamp, one body, so one signature):
        // acknowledged as taken, without being read; too large: 413; signed for us but
        // naming another bot: 401.
        let again = group_message("m8", "再来");
        let at = now_secs();
        for _ in 0..2 {
            let answer = signed(again.clone(), at).await.expect("post");
            assert_eq!(
                answer.json::<serde_json::Value>().await.expect("json"),
                serde_json::json!({"op": 12, "d": 0})
            );
        }
        let replays_before = bot.inbound.door.count(Reason::Replay);
        assert!(replays_before >= 1);
        let huge = signed("x".repeat(MAX_CALLBACK_BYTES + 1), now_secs())
            .await
            .expect("post");
        assert_eq!(huge.status(), 413);
        let ts = now_secs().to_string();
        let elsewhere = group_message("m7", "别处");
        let other_bot = client
            .post(&url)
            .header(TIMESTAMP_HEADER, &ts)
            .header(
                SIGNATURE_HEADER,
                key.sign_request(&ts, elsewhere.as_bytes()),
            )
            .header(APP_ID_HEADER, "22222222")
            .body(elsewhere)
            .send()
            .await
            .expect("post");
        assert_eq!(other_bot.status(), 401);
        assert_eq!(kept.0.lock().expect("lock").len(), 2);

        // Unsigned, forged, tampered, stale, malformed: refused, nothing kept.
        let unsigned = client
            .post(&url)
            .body(message.clone())
            .send()
            .await
            .expect("post");
        assert_eq!(unsigned.status(), 401);
        let other = BotKey::from_secret("another-secret").expect("key");
        let ts = now_secs().to_string();
        let forged = client
            .post(&url)
            .header(TIMESTAMP_HEADER, &ts)
            .header(
                SIGNATURE_HEADER,
                other.sign_request(&ts, message.as_bytes()),
            )
            .body(group_message("m2", "伪造"))
            .send()
            .await
            .expect("post");
        assert_eq!(forged.status(), 401);
        let tampered = client
            .post(&url)
            .header(TIMESTAMP_HEADER, &ts)
            .header(SIGNATURE_HEADER, key.sign_request(&ts, message.as_bytes()))
            .body(message.replace("值班", "转账"))
            .send()
            .await
            .expect("post");
        assert_eq!(tampered.status(), 401);
        let stale = signed(group_message("m3", "旧"), now_secs() - 2 * 3600)
            .await
            .expect("post");
        assert_eq!(stale.status(), 401);
        assert!(stale.text().await.expect("text").contains("away from now"));
        let garbage = signed("{\"op\":".into(), now_secs()).await.expect("post");
        assert_eq!(garbage.status(), 400);
        let broken = signed(
            serde_json::json!({"op": 0, "t": "C2C_MESSAGE_CREATE", "d": {"id": "x"}}).to_string(),
            now_secs(),
        )
        .await
        .expect("post");
        assert_eq!(broken.status(), 400);
        assert_eq!(kept.0.lock().expect("lock").len(), 2);

        // Events that are not messages are acknowledged; a heartbeat is answered.
        let friend = signed(
            serde_json::json!({"op": 0, "t": "FRIEND_ADD", "d": {"openid": "U"}}).to_string(),
            now_secs(),
        )
        .await
        .expect("post");
        assert_eq!(
            friend.json::<serde_json::Value>().await.expect("json"),
            serde_json::json!({"op": 12, "d": 0})
        );
        let heartbeat = signed(r#"{"op":1,"d":7}"#.into(), now_secs())
            .await
            .expect("post");
        assert_eq!(
            heartbeat.json::<serde_json::Value>().await.expect("json"),
            serde_json::json!({"op": 11, "d": 7})
        );
        assert_eq!(kept.0.lock().expect("lock").len(), 2);
        let door = &bot.inbound.door;
        assert_eq!(
            (
                door.count(Reason::Signature),
                door.count(Reason::Stale),
                door.count(Reason::Malformed),
                door.count(Reason::TooLarge),
                door.count(Reason::WrongRecipient),
            ),
            (3, 1, 3, 1, 1)
        );
    }

    /// A stand-in for bots.qq.com and api.sgroup.qq.com: tokens t1, t2, …; sends kept
    /// with their token and answered with the queued (status, body).
    #[derive(Clone, Default)]
    struct QqApi {
        tokens: Arc<Mutex<u32>>,
        answers: Arc<Mutex<VecDeque<(u16, serde_json::Value)>>>,
        sends: Arc<Mutex<Vec<(String, String, serde_json::Value)>>>,
    }

    async fn token(
        State(api): State<QqApi>,
        Json(body): Json<serde_json::Value>,
    ) -> Json<serde_json::Value> {
        if body != serde_json::json!({"appId": APP_ID, "clientSecret": SECRET}) {
            return Json(serde_json::json!({"code": 100016, "message": "invalid appid or secret"}));
        }
        let mut count = api.tokens.lock().expect("lock");
        *count += 1;
        Json(serde_json::json!({"access_token": format!("t{count}"), "expires_in": "7200"}))
    }

    async fn send(
        State(api): State<QqApi>,
        Path((kind, id)): Path<(String, String)>,
        headers: HeaderMap,
        Json(body): Json<serde_json::Value>,
    ) -> Response {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert_eq!(
            headers.get("x-union-appid").and_then(|v| v.to_str().ok()),
            Some(APP_ID)
        );
        api.sends
            .lock()
            .expect("lock")
            .push((auth, format!("{kind}/{id}"), body));
        let (status, answer) = api
            .answers
            .lock()
            .expect("lock")
            .pop_front()
            .unwrap_or((200, serde_json::json!({"id": "sent", "timestamp": 1})));
        (StatusCode::from_u16(status).expect("status"), Json(answer)).into_response()
    }

    async fn qq_api(api: QqApi) -> String {
        serve(
            axum::Router::new()
                .route("/app/getAppAccessToken", post(token))
                .route("/v2/{kind}/{id}/messages", post(send))
                .route("/{kind}/{id}/messages", post(send))
                .with_state(api),
        )
        .await
    }

    fn outgoing(action: &str, conversation: &str, text: &str) -> Outgoing {
        Outgoing {
            action_id: action.into(),
            conversation: conversation.into(),
            text: text.into(),
            attachments: Vec::new(),
            resumed: false,
        }
    }

    #[tokio::test]
    async fn replies_carry_msg_id_and_seq_with_a_cached_token_renewed_once_when_refused() {
        let api = QqApi::default();
        let base = qq_api(api.clone()).await;
        let bot = QqBot::new("qq", &config(&base)).expect("bot");
        let now = SystemTime::now();
        bot.replies.note("group:G1", "m1", Some(now), now);
        bot.replies.note("channel:100010", "c1", Some(now), now);

        bot.deliver(&outgoing("a1", "group:G1", "收到"))
            .await
            .expect("sent");
        api.answers.lock().expect("lock").extend([
            (
                401,
                serde_json::json!({"code": 11244, "message": "token not exist or expire"}),
            ),
            (200, serde_json::json!({"id": "x"})),
            (500, serde_json::json!({"message": "busy"})),
            (
                400,
                serde_json::json!({"code": 40054005, "message": "消息被去重"}),
            ),
        ]);
        bot.deliver(&outgoing("a2", "group:G1", "结果"))
            .await
            .expect("sent after a new token");
        // Busy, then its retry is the same seq, which QQ already had: it went out.
        let busy = bot.deliver(&outgoing("a3", "group:G1", "再来")).await;
        assert!(matches!(busy, Err(SendError::Retry { .. })), "{busy:?}");
        bot.deliver(&outgoing("a3", "group:G1", "再来"))
            .await
            .expect("a duplicate of a retry is sent");
        bot.deliver(&outgoing("a4", "channel:100010", "频道"))
            .await
            .expect("sent");
        // Nothing to reply to: an active message, and QQ's refusal says so.
        api.answers.lock().expect("lock").push_back((
            400,
            serde_json::json!({"code": 304022, "message": "push message time limit"}),
        ));
        let active = bot.deliver(&outgoing("a5", "c2c:U9", "hi")).await;
        assert!(
            matches!(&active, Err(SendError::Permanent(m)) if m.contains("304022") && m.contains("active message")),
            "{active:?}"
        );
        let bad = bot.deliver(&outgoing("a6", "U9", "hi")).await;
        assert!(matches!(bad, Err(SendError::Permanent(_))), "{bad:?}");

        let sends = api.sends.lock().expect("lock").clone();
        let seen: Vec<(&str, &str, serde_json::Value)> = sends
            .iter()
            .map(|(auth, path, body)| (auth.as_str(), path.as_str(), body.clone()))
            .collect();
        let group = |text: &str, seq: u32| serde_json::json!({"content": text, "msg_type": 0, "msg_id": "m1", "msg_seq": seq});
        assert_eq!(
            seen,
            [
                ("QQBot t1", "groups/G1", group("收到", 1)),
                ("QQBot t1", "groups/G1", group("结果", 2)),
                ("QQBot t2", "groups/G1", group("结果", 2)),
                ("QQBot t2", "groups/G1", group("再来", 3)),
                ("QQBot t2", "groups/G1", group("再来", 3)),
                (
                    "QQBot t2",
                    "channels/100010",
                    serde_json::json!({"content": "频道", "msg_id": "c1"})
                ),
                (
                    "QQBot t2",
                    "users/U9",
                    serde_json::json!({"content": "hi", "msg_type": 0})
                ),
            ]
        );
        assert_eq!(*api.tokens.lock().expect("lock"), 2);

        // Markdown where allowed; a wrong secret is refused at the token, unshown.
        let markdown = QqBot::new(
            "qq",
            &QqConfig {
                markdown: true,
                ..config(&base)
            },
        )
        .expect("bot");
        markdown.replies.note("c2c:U1", "p1", Some(now), now);
        markdown
            .deliver(&outgoing("b1", "c2c:U1", "**粗**"))
            .await
            .expect("sent");
        assert_eq!(
            api.sends.lock().expect("lock").last().map(|s| s.2.clone()),
            Some(
                serde_json::json!({"markdown": {"content": "**粗**"}, "msg_type": 2, "msg_id": "p1", "msg_seq": 1})
            )
        );
        let wrong = QqBot::new(
            "qq",
            &QqConfig {
                app_secret: "wrong-secret".into(),
                ..config(&base)
            },
        )
        .expect("bot");
        let refused = wrong.deliver(&outgoing("c1", "c2c:U1", "x")).await;
        assert!(
            matches!(&refused, Err(SendError::Permanent(m)) if m.contains("100016") && !m.contains("wrong-secret")),
            "{refused:?}"
        );
        let down = QqBot::new("qq", &config("http://127.0.0.1:9"))
            .expect("bot")
            .deliver(&outgoing("d1", "c2c:U1", "x"))
            .await;
        assert!(matches!(down, Err(SendError::Retry { .. })), "{down:?}");
    }
}
