//! DingTalk (钉钉, DESIGN.md §6): an internal app's robot (企业内部应用机器人), receiving in
//! Stream mode — a WebSocket the adapter opens itself, so a desktop without a public URL
//! works — or through an HTTP callback at `/callback/<name>`, and answering through each
//! conversation's `sessionWebhook` while it lasts, then through the robot API. The custom
//! robot (自定义机器人, send-only) is [`webhook`].
//!
//! The connection and its frames are in [`stream`], the callback's signature in [`sign`],
//! reading a robot message in [`message`], the session webhooks, the token and the robot
//! API in [`outbound`]; each cites its sources (DingTalk's documents and the official
//! Stream SDKs, open-dingtalk/dingtalk-stream-sdk-go and -python).
//!
//! Conversations are `group:<openConversationId>`, `user:<staffId>` and, for a single
//! chat with someone outside the organisation, `single:<conversationId>`.

pub mod message;
pub mod outbound;
pub mod sign;
pub mod stream;
pub mod webhook;

use std::sync::{Arc, Mutex as SyncMutex, OnceLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use reqwest::{Client, Url};
use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::check::{Secret, http_url, required, unexpanded};
use super::door::{self, Door, Reason};
use super::replay::{Replays, Seen};
use super::split;
use super::{Adapter, AdapterContext, AdapterError, Delivered, Outgoing, SendError};
use crate::format::TextFormat;
use crate::http::shown_url;
use message::Target;
use outbound::{Api, Body, HookAnswer, Sessions, post_hook};
use sha2::{Digest, Sha256};
use sign::{SIGN_HEADER, SignError, TIMESTAMP_HEADER};

pub const PLATFORM: &str = "dingtalk";
/// What an adapter without `markdown = true` shows.
pub const TEXT_FORMAT: TextFormat = TextFormat::Plain;
/// A message's text at most: `groupMessages/send` takes a `msgParam` of 15,000 bytes, and
/// a quote or a line break takes two bytes of JSON.
pub const MAX_TEXT_BYTES: usize = 6 * 1024;
/// An HTTP callback's body, at most: one robot message (机器人接收消息), a text or rich
/// text a person typed in JSON with its ids and session webhook, tens of kilobytes at
/// the very most; 256 KB leaves room and keeps a flood from filling memory.
const MAX_CALLBACK_BYTES: usize = 256 * 1024;

const DEFAULT_API_BASE: &str = "https://api.dingtalk.com";
const DEFAULT_OAPI_BASE: &str = "https://oapi.dingtalk.com";
const TIMEOUT: Duration = Duration::from_secs(10);
/// How long `stop` waits for the connection to close before it stops waiting.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// How the robot receives (开发者后台 › 机器人 › 消息接收模式).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Stream 模式: the adapter opens the connection; no public URL needed.
    #[default]
    Stream,
    /// HTTP 模式: DingTalk posts to `/callback/<name>`, which must be reachable.
    Http,
}

/// One `type = "dingtalk"` adapter of `tapwire.toml`. The secret belongs in the
/// environment: `client_secret = "${DINGTALK_SECRET}"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DingtalkConfig {
    /// The app's Client ID (AppKey).
    pub client_id: String,
    /// The app's Client Secret (AppSecret): opens the stream, signs the callbacks,
    /// fetches access tokens.
    pub client_secret: Secret,
    #[serde(default)]
    pub mode: Mode,
    /// The robot's code for the robot API; DingTalk gives an app's robot its Client ID.
    #[serde(default)]
    pub robot_code: Option<String>,
    /// Where the open API is (connections, tokens, robot sends); tests point it at a
    /// stand-in.
    #[serde(default = "default_api_base")]
    pub api_base: String,
    /// Where session webhooks live: one on another origin is not posted to.
    #[serde(default = "default_oapi_base")]
    pub oapi_base: String,
    /// Answers go as markdown (`msgtype` markdown, `sampleMarkdown`); otherwise text.
    #[serde(default)]
    pub markdown: bool,
}

fn default_api_base() -> String {
    DEFAULT_API_BASE.into()
}

fn default_oapi_base() -> String {
    DEFAULT_OAPI_BASE.into()
}

impl DingtalkConfig {
    /// What is wrong with the section, if anything; messages never show the secret.
    pub fn check(&self) -> Result<(), String> {
        required(&[
            ("client_id", &self.client_id),
            ("client_secret", &self.client_secret),
        ])?;
        if let Some(code) = &self.robot_code
            && code.trim().is_empty()
        {
            return Err("robot_code must not be empty: leave it out to use client_id".into());
        }
        for (field, value) in [("api_base", &self.api_base), ("oapi_base", &self.oapi_base)] {
            if !unexpanded(value) {
                http_url(field, value)?;
            }
        }
        Ok(())
    }

    pub fn text_format(&self) -> TextFormat {
        if self.markdown {
            TextFormat::Markdown
        } else {
            TEXT_FORMAT
        }
    }

    fn robot_code(&self) -> String {
        self.robot_code
            .as_deref()
            .unwrap_or(&self.client_id)
            .trim()
            .to_string()
    }
}

/// Why a robot message was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NotTaken {
    /// Before `start`: there is nowhere to put it yet.
    NotReady,
    /// Not a robot message this adapter can read.
    Unreadable(String),
    /// A robot message for another robot (its `robotCode`).
    OtherRobot(String),
    /// The store failed: DingTalk should send it again.
    Store(String),
}

/// What receiving shares with the adapter: the callback route and the stream task.
pub(crate) struct Inbound {
    name: String,
    secret: String,
    /// The `robotCode`s a message to this robot carries: an app robot's is its Client ID
    /// (机器人接收消息: "robotCode"), or the one configured.
    robot_codes: [String; 2],
    sessions: Arc<Sessions>,
    /// Session webhooks are posted to only on this origin (scheme, host, port).
    webhook_origin: Url,
    /// Set by `start`.
    ctx: OnceLock<AdapterContext>,
    door: Door,
    replays: Replays<()>,
}

impl Inbound {
    /// A robot message: its session webhook kept, its event stored and routed (once:
    /// a redelivered `msgId` is the same event).
    async fn receive(&self, data: &[u8]) -> Result<bool, NotTaken> {
        let ctx = self.ctx.get().ok_or(NotTaken::NotReady)?;
        let incoming = message::read(&self.name, data).map_err(NotTaken::Unreadable)?;
        if let Some(code) = incoming.event.raw["robotCode"].as_str()
            && !code.is_empty()
            && !self.robot_codes.iter().any(|ours| ours == code)
        {
            return Err(NotTaken::OtherRobot(code.to_string()));
        }
        let conversation = incoming.target.to_string();
        if let Some(session) = incoming.session {
            match Url::parse(&session.url) {
                Ok(url) if url.origin() == self.webhook_origin.origin() => {
                    self.sessions
                        .note(&conversation, session, SystemTime::now());
                }
                _ => {
                    tracing::warn!(adapter = %self.name, %conversation, webhook = %sign_free(&session.url), "a sessionWebhook outside oapi_base is not used; answers take the robot API");
                }
            }
        }
        let fresh = ctx
            .inbox
            .accept(incoming.event)
            .await
            .map_err(|e| NotTaken::Store(e.to_string()))?;
        if !fresh {
            tracing::info!(adapter = %self.name, %conversation, "a robot message seen before; not routed again");
        }
        Ok(fresh)
    }

    /// For the stream: `Err` asks DingTalk to send it again, and only then.
    async fn take(&self, data: &[u8]) -> Result<(), String> {
        match self.receive(data).await {
            Ok(_) => Ok(()),
            Err(NotTaken::Unreadable(reason)) => {
                // Sending it again would not make it readable.
                tracing::warn!(adapter = %self.name, %reason, "a robot message that cannot be read; acknowledged and dropped");
                Ok(())
            }
            Err(NotTaken::OtherRobot(code)) => {
                tracing::warn!(adapter = %self.name, robot_code = %code, "a robot message for another robot; acknowledged and dropped");
                Ok(())
            }
            Err(NotTaken::NotReady) => Err("not started".into()),
            Err(NotTaken::Store(reason)) => {
                tracing::error!(adapter = %self.name, %reason, "cannot store a robot message; DingTalk will send it again");
                Err(reason)
            }
        }
    }
}

/// A URL for logs: no query (a session webhook's `session=` is a credential).
fn sign_free(url: &str) -> String {
    crate::http::redact_raw_url(url)
}

pub struct Dingtalk {
    name: String,
    mode: Mode,
    markdown: bool,
    format: TextFormat,
    client: Client,
    api: Arc<Api>,
    sessions: Arc<Sessions>,
    api_base: Url,
    client_id: String,
    secret: String,
    inbound: Arc<Inbound>,
    task: SyncMutex<Option<(watch::Sender<bool>, JoinHandle<()>)>>,
}

impl std::fmt::Debug for Dingtalk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Neither the secret nor a token nor a session webhook is shown.
        f.debug_struct("Dingtalk")
            .field("name", &self.name)
            .field("mode", &self.mode)
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

impl Dingtalk {
    pub fn new(name: &str, config: &DingtalkConfig) -> Result<Dingtalk, String> {
        config.check()?;
        let client = crate::http::client(TIMEOUT)?;
        let api_base = http_url("api_base", &config.api_base)?;
        let webhook_origin = http_url("oapi_base", &config.oapi_base)?;
        let secret = config.client_secret.trim().to_string();
        let client_id = config.client_id.trim().to_string();
        let sessions = Arc::new(Sessions::default());
        Ok(Dingtalk {
            name: name.to_string(),
            mode: config.mode,
            markdown: config.markdown,
            format: config.text_format(),
            api: Arc::new(Api::new(
                client_id.clone(),
                secret.clone(),
                config.robot_code(),
                api_base.clone(),
                client.clone(),
            )),
            client,
            sessions: sessions.clone(),
            api_base,
            client_id,
            secret: secret.clone(),
            inbound: Arc::new(Inbound {
                name: name.to_string(),
                secret,
                robot_codes: [config.client_id.trim().to_string(), config.robot_code()],
                sessions,
                webhook_origin,
                ctx: OnceLock::new(),
                door: Door::new(name),
                replays: Replays::new(),
            }),
            task: SyncMutex::new(None),
        })
    }

    fn task(&self) -> std::sync::MutexGuard<'_, Option<(watch::Sender<bool>, JoinHandle<()>)>> {
        self.task.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Adapter for Dingtalk {
    fn name(&self) -> &str {
        &self.name
    }

    fn platform(&self) -> &'static str {
        PLATFORM
    }

    fn text_format(&self) -> TextFormat {
        self.format
    }

    fn split<'t>(&self, text: &'t str) -> Vec<&'t str> {
        split::bytes(text, MAX_TEXT_BYTES)
    }

    /// Through the conversation's session webhook while it lasts (and DingTalk takes
    /// it), else through the robot API.
    async fn deliver(&self, outgoing: &Outgoing) -> Result<Delivered, SendError> {
        let target = Target::parse(&outgoing.conversation).map_err(SendError::Permanent)?;
        let conversation = target.to_string();
        let body = Body::new(&outgoing.text, self.markdown);
        outgoing.warn_if_resumed(&self.name);
        let mut refused = None;
        if let Some(hook) = self.sessions.valid(&conversation, SystemTime::now()) {
            let url = Url::parse(&hook).map_err(|e| {
                SendError::Permanent(format!("a session webhook that is no URL: {e}"))
            })?;
            match post_hook(&self.client, &url, &body).await {
                HookAnswer::Sent => return Ok(Delivered::Sent),
                HookAnswer::Failed(error) => return Err(error),
                HookAnswer::Refused(reason) => {
                    tracing::warn!(adapter = %self.name, %conversation, %reason, "DingTalk refused the session webhook; answering through the robot API");
                    self.sessions.forget(&conversation, &hook);
                    refused = Some(reason);
                }
            }
        }
        match self.api.send(&target, &body).await {
            Ok(()) => Ok(Delivered::Sent),
            Err(SendError::Permanent(reason)) => Err(SendError::Permanent(match refused {
                Some(hook) => format!("{reason}; the session webhook had refused it too ({hook})"),
                None => reason,
            })),
            Err(retry) => Err(retry),
        }
    }

    fn routes(&self) -> Option<axum::Router> {
        (self.mode == Mode::Http).then(|| {
            let router = axum::Router::new()
                .route("/", post(callback))
                .with_state(self.inbound.clone());
            door::limited(router, MAX_CALLBACK_BYTES)
        })
    }

    fn rejections(&self) -> Vec<(Reason, u64)> {
        self.inbound.door.counts()
    }

    async fn start(&self, ctx: AdapterContext) -> Result<(), AdapterError> {
        // A second start keeps the first context and connection: there is one runtime.
        let _ = self.inbound.ctx.set(ctx);
        if self.mode != Mode::Stream {
            return Ok(());
        }
        let mut task = self.task();
        if task.is_some() {
            return Ok(());
        }
        let (stop, stopped) = watch::channel(false);
        let stream = stream::Stream {
            client_id: self.client_id.clone(),
            secret: self.secret.clone(),
            api_base: self.api_base.clone(),
            client: self.client.clone(),
            inbound: self.inbound.clone(),
        };
        tracing::info!(adapter = %self.name, api = %shown_url(&self.api_base), "DingTalk stream mode: opening the connection");
        *task = Some((stop, tokio::spawn(stream.run(stopped))));
        Ok(())
    }

    async fn stop(&self) -> Result<(), AdapterError> {
        let Some((stop, handle)) = self.task().take() else {
            return Ok(());
        };
        let _ = stop.send(true);
        let abort = handle.abort_handle();
        match tokio::time::timeout(STOP_WAIT, handle).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(AdapterError::Stopped(format!(
                "the DingTalk stream task ended badly: {e}"
            ))),
            Err(_) => {
                abort.abort();
                Ok(())
            }
        }
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The answer to a message taken: no synchronous reply.
fn taken() -> Response {
    (
        StatusCode::OK,
        axum::Json(serde_json::json!({"msgtype": "empty"})),
    )
        .into_response()
}

/// The HTTP callback: the size, then `timestamp` and `sign`, then replays, before the
/// body is read. A body in the HTTP answer would be a synchronous reply; the answer is
/// `{"msgtype": "empty"}` at once — what open implementations send to reply later
/// through the session webhook (DingTalk's document shows only replies) — and the
/// message is answered when ready.
async fn callback(
    State(inbound): State<Arc<Inbound>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let name = inbound.name.as_str();
    let door = &inbound.door;
    let body = match door.body(body) {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let now = SystemTime::now();
    let (timestamp, signature) = (
        header(&headers, TIMESTAMP_HEADER),
        header(&headers, SIGN_HEADER),
    );
    let signed_at = match sign::verify(timestamp, signature, &inbound.secret, now) {
        Ok(at) => at,
        Err(error) => {
            let reason = match error {
                SignError::Stale { .. } => Reason::Stale,
                SignError::BadTimestamp(_) => Reason::Malformed,
                _ => Reason::Signature,
            };
            let detail = error.to_string();
            return door.refuse(reason, StatusCode::UNAUTHORIZED, detail.clone(), &detail);
        }
    };
    // DingTalk's sign covers the timestamp only, never the body, so two messages of one
    // millisecond carry the same sign: the replay key adds the body, and names this very
    // request (a captured sign put on another body is not caught here; the msgId of the
    // message inside is still stored once).
    let key = format!(
        "{}:{}:{}",
        timestamp.unwrap_or_default().trim(),
        signature.unwrap_or_default().trim(),
        hex::encode(Sha256::digest(&body))
    );
    let claim = match inbound.replays.check(&key, signed_at + sign::WINDOW, now) {
        Seen::New(claim) => claim,
        Seen::Done(()) => {
            door.refused(
                Reason::Replay,
                StatusCode::OK,
                "a callback taken before; answered as then",
            );
            return taken();
        }
        Seen::InFlight => {
            let detail = "the same callback is being handled; send it again";
            return door.refuse(
                Reason::Replay,
                StatusCode::SERVICE_UNAVAILABLE,
                detail,
                detail,
            );
        }
    };
    match inbound.receive(&body).await {
        Ok(_) => {
            claim.done(());
            taken()
        }
        Err(NotTaken::OtherRobot(code)) => {
            // Signed with our secret, yet for another robot: answered, not routed.
            door.refused(
                Reason::WrongRecipient,
                StatusCode::OK,
                &format!("a robot message for robotCode {code}; ignored"),
            );
            claim.done(());
            taken()
        }
        Err(NotTaken::NotReady) => {
            tracing::warn!(
                adapter = name,
                "callback before the adapter started; DingTalk is asked to send it again"
            );
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not started yet; send it again",
            )
                .into_response()
        }
        Err(NotTaken::Unreadable(reason)) => {
            let detail = format!("the body is not a robot message: {reason}");
            door.refuse(
                Reason::Malformed,
                StatusCode::BAD_REQUEST,
                detail.clone(),
                &detail,
            )
        }
        Err(NotTaken::Store(reason)) => {
            tracing::error!(adapter = name, %reason, "cannot store a robot message");
            (StatusCode::SERVICE_UNAVAILABLE, "cannot store it now").into_response()
        }
    }
}

#[cfg(test)]
mod tests;
