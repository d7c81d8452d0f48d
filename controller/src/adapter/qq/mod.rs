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
//! `sign.md`): every callback carries `X-Signature-Ed25519` over `X-Signature-Timestamp`
//! + body; op 13 asks for the callback URL's validation and is answered with
//! `{"plain_token", "signature"}`; an op 0 dispatch is answered with op 12 (botgo
//! `interaction/webhook/webhook.go`: `{"op":12,"d":0}`, `d` 1 when it failed so that QQ
//! sends it again) within 3 seconds.

pub mod inbound;
pub mod outbound;
pub mod sign;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use reqwest::{Client, Url};
use serde::Deserialize;

use super::{Adapter, AdapterContext, Delivered, Outgoing, SendError};
use crate::format::TextFormat;
use crate::http::{USER_AGENT, error_chain};
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

/// One `type = "qq"` adapter of `tapwire.toml`. The secret belongs in the environment:
/// `app_secret = "${QQ_BOT_SECRET}"`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QqConfig {
    /// The bot's AppID (开发设置); a number, written with or without quotes.
    #[serde(deserialize_with = "number_or_string")]
    pub app_id: String,
    /// The bot's AppSecret: it signs the callbacks and fetches access tokens.
    pub app_secret: String,
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

impl std::fmt::Debug for QqConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QqConfig")
            .field("app_id", &self.app_id)
            .field("sandbox", &self.sandbox)
            .field("api_base", &self.api_base)
            .field("token_url", &self.token_url)
            .field("markdown", &self.markdown)
            .finish_non_exhaustive()
    }
}

fn default_token_url() -> String {
    DEFAULT_TOKEN_URL.into()
}

fn number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Number(u64),
        Text(String),
    }
    Ok(match Either::deserialize(d)? {
        Either::Number(n) => n.to_string(),
        Either::Text(s) => s,
    })
}

/// A value still holding `${…}`: its missing variable is reported on its own line.
fn unexpanded(value: &str) -> bool {
    value.contains("${")
}

fn http_url(field: &str, value: &str) -> Result<Url, String> {
    let url = Url::parse(value.trim()).map_err(|e| format!("{field} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "{field} must be http or https, not {}",
            url.scheme()
        ));
    }
    Ok(url)
}

impl QqConfig {
    /// What is wrong with the section, if anything; messages never show the secret.
    pub fn check(&self) -> Result<(), String> {
        for (field, value) in [("app_id", &self.app_id), ("app_secret", &self.app_secret)] {
            if value.trim().is_empty() {
                return Err(format!("{field} must not be empty"));
            }
        }
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
    key: BotKey,
    replies: Arc<Replies>,
    /// Set by `start`; callbacks that come earlier are told to come again.
    ctx: OnceLock<AdapterContext>,
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
        let client = Client::builder()
            .timeout(TIMEOUT)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {}", error_chain(e)))?;
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
                key,
                replies,
                ctx: OnceLock::new(),
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
        Some(
            axum::Router::new()
                .route("/", post(callback))
                .with_state(self.inbound.clone()),
        )
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

fn refused(adapter: &str, status: StatusCode, reason: &str) -> Response {
    tracing::warn!(adapter, %status, reason, "callback refused");
    (status, reason.to_string()).into_response()
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `X-Signature-Timestamp` is Unix seconds (sign.md's example: 1725442341).
fn within_window(timestamp: &str, now: SystemTime) -> Result<(), String> {
    let seconds: u64 = timestamp
        .trim()
        .parse()
        .map_err(|_| format!("{TIMESTAMP_HEADER} {timestamp:?} is not Unix seconds"))?;
    let signed = SystemTime::UNIX_EPOCH + Duration::from_secs(seconds);
    let off = now
        .duration_since(signed)
        .or_else(|e| Ok::<_, String>(e.duration()))?;
    if off > SIGNATURE_WINDOW {
        return Err(format!(
            "{TIMESTAMP_HEADER} {seconds} is {} s away from now (more than {} s)",
            off.as_secs(),
            SIGNATURE_WINDOW.as_secs()
        ));
    }
    Ok(())
}

/// The callback URL: QQ's signature is checked first, on the raw body, and only a signed
/// body is read (an unsigned op 13 is the one exception, see [`unsigned`]).
async fn callback(
    State(inbound): State<Arc<Inbound>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let name = inbound.name.as_str();
    let signature = header(&headers, SIGNATURE_HEADER);
    let timestamp = header(&headers, TIMESTAMP_HEADER);
    if signature.is_none() && timestamp.is_none() {
        return unsigned(&inbound, &body);
    }
    if let Err(error) = inbound.key.verify(timestamp, &body, signature) {
        return refused(name, StatusCode::UNAUTHORIZED, &error.to_string());
    }
    if let Err(reason) = within_window(timestamp.unwrap_or_default(), SystemTime::now()) {
        return refused(name, StatusCode::UNAUTHORIZED, &reason);
    }
    let payload: Payload = match serde_json::from_slice(&body) {
        Ok(payload) => payload,
        Err(e) => {
            return refused(
                name,
                StatusCode::BAD_REQUEST,
                &format!("the body is not QQ's payload: {e}"),
            );
        }
    };
    match payload.op {
        OP_VALIDATION => validate(&inbound, &payload),
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
    }
}

/// An unsigned request may only be op 13, the validation: event-emit.md's example of
/// it carries no signature headers. Since the key that signs QQ's callbacks signs this
/// answer too, signing any text would let whoever asks forge a callback
/// (`event_ts` + `plain_token` read as `X-Signature-Timestamp` + body). So a token with a
/// `{` or `[` is refused: without one, no part of the signed text can be a JSON object or
/// array, which is what every callback body is.
fn unsigned(inbound: &Inbound, body: &[u8]) -> Response {
    let name = inbound.name.as_str();
    let payload = serde_json::from_slice::<Payload>(body).ok();
    let Some(payload) = payload.filter(|p| p.op == OP_VALIDATION) else {
        return refused(
            name,
            StatusCode::UNAUTHORIZED,
            &SignError::NoSignature.to_string(),
        );
    };
    let Ok(validation) = Validation::deserialize(&payload.d) else {
        return refused(
            name,
            StatusCode::BAD_REQUEST,
            "op 13 without plain_token and event_ts",
        );
    };
    let safe = |text: &str| {
        !text.is_empty() && text.len() <= VALIDATION_MAX && !text.contains(['{', '['])
    };
    if !safe(&validation.plain_token) || !safe(&validation.event_ts) {
        return refused(
            name,
            StatusCode::BAD_REQUEST,
            "unsigned op 13 whose plain_token or event_ts could make a callback body",
        );
    }
    validate(inbound, &payload)
}

/// event-emit.md 回调地址验证: `{"plain_token", "signature"}`.
fn validate(inbound: &Inbound, payload: &Payload) -> Response {
    let name = inbound.name.as_str();
    let Ok(validation) = Validation::deserialize(&payload.d) else {
        return refused(
            name,
            StatusCode::BAD_REQUEST,
            "op 13 without plain_token and event_ts",
        );
    };
    tracing::info!(adapter = name, "callback URL validation answered");
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
        Err(reason) => return refused(name, StatusCode::BAD_REQUEST, &reason),
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
