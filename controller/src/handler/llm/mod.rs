//! The LLM agent handler: asks a chat model for the answer, streaming, and shows it
//! growing where the place it goes can (a WeCom AI bot's stream, through
//! [`HandlerContext::progress`]); everywhere else (WeChat) the whole answer is sent once
//! complete. `api` picks the protocol: [`openai`] (chat completions, which DeepSeek, Qwen,
//! GLM, Ollama and OpenAI all speak) or [`dify`] (a Dify chat app).
//!
//! Memory: the last `memory_turns` exchanges of each conversation are kept in the store
//! (surviving restarts) and sent before the question; Dify keeps its own, so for it only
//! the conversation id is kept. Failures are retried as the webhook handler retries them
//! (connection failures, 408/429/5xx, a stream that breaks, errors or stalls for
//! `timeout_ms`), then the event is dead-lettered. The runtime's `ack_after_ms` and
//! `give_up_after_ms` bound the whole answer, as for any slow handler.
//!
//! Tools (`tools = true`, openai only): the model may call `send` and `forward`, which
//! become Tapwire actions if the asker may use them: an admin, or a grant of scene `llm`
//! with command `send` / `forward` (or `*`). One step: the calls are the answer, their
//! results are not fed back to the model.

pub mod dify;
pub mod openai;
pub mod sse;

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use reqwest::header::{self, HeaderValue};
use reqwest::{Client, StatusCode, Url};
use serde::Deserialize;

use super::{ConfigProblem, Handler, HandlerContext, HandlerError, Outcome, resolve};
use crate::event::{Event, HandlerAction};
use crate::http::{USER_AGENT, backoff_delay, error_chain, parse_retry_after, shown_url};
use crate::permission::user_key;
use crate::store::{DeadLetterInfo, Turn};

/// More remembered exchanges than this make every request long and slow.
const MAX_MEMORY_TURNS: usize = 100;

/// How much of an error response's body a message quotes.
const EXCERPT_BYTES: usize = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    #[default]
    OpenAi,
    Dify,
}

/// `[handlers.NAME]` with `type = "llm"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmConfig {
    #[serde(default)]
    pub api: Api,
    /// e.g. `https://api.deepseek.com/v1`, `http://localhost:11434/v1` (Ollama),
    /// `https://api.dify.ai/v1`.
    pub base_url: String,
    /// Sent as `Authorization: Bearer ...`; write it as `${ENV_VAR}`.
    pub api_key: Option<String>,
    /// Required for `api = "openai"`; a Dify app has its model configured in Dify.
    pub model: Option<String>,
    /// The system prompt (openai only: a Dify app has its own).
    pub system_prompt: Option<String>,
    /// Exchanges (question and answer) remembered per conversation; 0 forgets.
    #[serde(default = "default_memory_turns")]
    pub memory_turns: usize,
    /// The longest wait for the response to start, and between two pieces of the stream.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Tries in all: the first plus the retries.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: u64,
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: u64,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    /// Offer the model the `send` and `forward` tools (openai only).
    #[serde(default)]
    pub tools: bool,
}

/// The permission scene tool calls are checked against.
pub const TOOL_SCENE: &str = "llm";

fn default_memory_turns() -> usize {
    10
}
fn default_timeout_ms() -> u64 {
    30_000
}
fn default_attempts() -> u32 {
    3
}
fn default_backoff_ms() -> u64 {
    500
}
fn default_backoff_max_ms() -> u64 {
    10_000
}

impl LlmConfig {
    pub fn check(&self, name: &str) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        // A `${VAR}` left unset is reported by the config on its own line.
        if !self.base_url.contains("${")
            && let Err(message) = endpoint(self.api, &self.base_url)
        {
            problems.push(ConfigProblem::at("base_url", message));
        }
        if self.api == Api::OpenAi && self.model.as_deref().is_none_or(|m| m.trim().is_empty()) {
            problems.push(ConfigProblem::at(
                "model",
                format!("llm \"{name}\" needs a model (e.g. \"deepseek-chat\", \"qwen-plus\", \"llama3.2\")"),
            ));
        }
        if self.api == Api::Dify && self.system_prompt.is_some() {
            problems.push(ConfigProblem::at(
                "system_prompt",
                "a Dify app has its own prompt: set it in Dify",
            ));
        }
        if self.api == Api::Dify && self.tools {
            problems.push(ConfigProblem::at(
                "tools",
                "a Dify app has its own tools: configure them in Dify",
            ));
        }
        if self.memory_turns > MAX_MEMORY_TURNS {
            problems.push(ConfigProblem::at(
                "memory_turns",
                format!("memory_turns must be at most {MAX_MEMORY_TURNS}"),
            ));
        }
        if self.timeout_ms == 0 {
            problems.push(ConfigProblem::at(
                "timeout_ms",
                "timeout_ms must be more than 0",
            ));
        }
        if self.attempts == 0 {
            problems.push(ConfigProblem::at("attempts", "attempts must be at least 1"));
        }
        if self.temperature.is_some_and(|t| !(0.0..=2.0).contains(&t)) {
            problems.push(ConfigProblem::at(
                "temperature",
                "temperature must be between 0 and 2",
            ));
        }
        problems
    }
}

/// The URL requests go to.
fn endpoint(api: Api, base_url: &str) -> Result<Url, String> {
    let base =
        Url::parse(base_url.trim()).map_err(|error| format!("base_url is not a URL: {error}"))?;
    if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
        return Err("base_url must be http:// or https:// with a host".into());
    }
    let path = match api {
        Api::OpenAi => "chat/completions",
        Api::Dify => "chat-messages",
    };
    let joined = format!("{}/{path}", base.as_str().trim_end_matches('/'));
    Url::parse(&joined).map_err(|error| format!("base_url cannot take /{path}: {error}"))
}

/// One answer as the stream delivered it.
#[derive(Debug)]
struct Answer {
    text: String,
    conversation_id: Option<String>,
    tool_calls: Vec<openai::ToolCall>,
}

/// Why an attempt failed, and whether another may pass.
#[derive(Debug)]
enum Failure {
    Retry {
        message: String,
        retry_after: Option<Duration>,
    },
    Permanent(String),
}

fn retry(message: impl Into<String>) -> Failure {
    Failure::Retry {
        message: message.into(),
        retry_after: None,
    }
}

/// Reads one stream, whichever the API.
enum Reader {
    OpenAi(openai::Reader),
    Dify(dify::Reader),
}

/// Whether the stream goes on.
pub enum Flow {
    More,
    Done,
}

impl Reader {
    fn on_event(&mut self, event: &sse::SseEvent) -> Result<Flow, String> {
        match self {
            Reader::OpenAi(reader) => reader.on_event(event),
            Reader::Dify(reader) => reader.on_event(event),
        }
    }

    fn text(&self) -> &str {
        match self {
            Reader::OpenAi(reader) => &reader.text,
            Reader::Dify(reader) => &reader.text,
        }
    }

    fn at_end(&self) -> Result<(), String> {
        match self {
            Reader::OpenAi(reader) => reader.at_end(),
            Reader::Dify(reader) => reader.at_end(),
        }
    }

    fn into_answer(self) -> Answer {
        match self {
            Reader::OpenAi(reader) => Answer {
                text: reader.text,
                conversation_id: None,
                tool_calls: reader.tool_calls,
            },
            Reader::Dify(reader) => Answer {
                text: reader.text,
                conversation_id: reader.conversation_id,
                tool_calls: Vec::new(),
            },
        }
    }
}

pub struct Llm {
    name: String,
    api: Api,
    url: Url,
    /// The URL as errors show it: no query or credentials.
    shown_url: String,
    authorization: Option<HeaderValue>,
    client: Client,
    model: String,
    system_prompt: Option<String>,
    memory_turns: usize,
    timeout: Duration,
    attempts: u32,
    backoff: Duration,
    backoff_max: Duration,
    max_tokens: Option<u32>,
    temperature: Option<f64>,
    tools: bool,
}

impl std::fmt::Debug for Llm {
    // By hand, so the API key never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Llm")
            .field("name", &self.name)
            .field("api", &self.api)
            .field("url", &self.shown_url)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl Llm {
    pub fn new(name: &str, config: &LlmConfig) -> Result<Llm, String> {
        let bad = |message: String| format!("llm \"{name}\": {message}");
        if let Some(problem) = config.check(name).into_iter().next() {
            return Err(bad(problem.message));
        }
        let url = endpoint(config.api, &config.base_url).map_err(bad)?;
        let authorization = match config.api_key.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(key) => {
                // The value is not quoted: it is a secret.
                let mut value = HeaderValue::from_str(&format!("Bearer {key}"))
                    .map_err(|_| bad("api_key has characters HTTP does not allow".into()))?;
                value.set_sensitive(true);
                Some(value)
            }
        };
        let timeout = Duration::from_millis(config.timeout_ms);
        // No overall timeout: an answer may stream for minutes. Each wait is bounded by
        // `timeout` instead, and the whole by the runtime's give_up_after_ms.
        let client = Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| bad(format!("cannot build the HTTP client: {error}")))?;
        Ok(Llm {
            name: name.to_string(),
            api: config.api,
            shown_url: shown_url(&url),
            url,
            authorization,
            client,
            model: config.model.clone().unwrap_or_default(),
            system_prompt: config.system_prompt.clone(),
            memory_turns: config.memory_turns,
            timeout,
            attempts: config.attempts,
            backoff: Duration::from_millis(config.backoff_ms),
            backoff_max: Duration::from_millis(config.backoff_max_ms),
            max_tokens: config.max_tokens,
            temperature: config.temperature,
            tools: config.tools,
        })
    }

    /// Asks until an attempt succeeds, one fails for good, or the attempts run out.
    async fn ask(
        &self,
        ctx: &HandlerContext<'_>,
        event: &Event,
        body: &serde_json::Value,
    ) -> Result<Answer, (String, u32)> {
        let context = format!("llm \"{}\" (POST {})", self.name, self.shown_url);
        let mut attempt = 1;
        loop {
            let (message, retry_after) = match self.attempt(ctx, body).await {
                Ok(answer) => {
                    tracing::info!(handler = %self.name, event = %event.id, attempts = attempt, chars = answer.text.chars().count(), "llm answered");
                    return Ok(answer);
                }
                Err(Failure::Permanent(message)) => {
                    tracing::warn!(handler = %self.name, event = %event.id, attempt, error = %message, "llm failed permanently");
                    return Err((format!("{context}: {message} (not retried)"), attempt));
                }
                Err(Failure::Retry {
                    message,
                    retry_after,
                }) => (message, retry_after),
            };
            if attempt >= self.attempts {
                tracing::warn!(handler = %self.name, event = %event.id, attempts = attempt, error = %message, "llm attempts exhausted");
                return Err((
                    format!("{context}: {message} (gave up after {attempt} attempts)"),
                    attempt,
                ));
            }
            let delay = match retry_after {
                Some(wait) => wait.min(self.backoff_max),
                None => backoff_delay(self.backoff, self.backoff_max, attempt, fastrand::f64()),
            };
            tracing::warn!(
                handler = %self.name, event = %event.id, attempt,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                error = %message, "llm attempt failed; retrying"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn attempt(
        &self,
        ctx: &HandlerContext<'_>,
        body: &serde_json::Value,
    ) -> Result<Answer, Failure> {
        let mut request = self
            .client
            .post(self.url.clone())
            .header(header::ACCEPT, "text/event-stream")
            .json(body);
        if let Some(authorization) = &self.authorization {
            request = request.header(header::AUTHORIZATION, authorization.clone());
        }
        let waited = self.timeout.as_millis();
        let mut response = match tokio::time::timeout(self.timeout, request.send()).await {
            Err(_) => return Err(retry(format!("no response within {waited} ms"))),
            Ok(Err(error)) if error.is_builder() => {
                return Err(Failure::Permanent(error_chain(error)));
            }
            Ok(Err(error)) => {
                return Err(retry(format!("request failed: {}", error_chain(error))));
            }
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if !status.is_success() {
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| parse_retry_after(value, SystemTime::now()));
            let excerpt = match tokio::time::timeout(self.timeout, response.chunk()).await {
                Ok(Ok(Some(bytes))) => {
                    let cut = &bytes[..bytes.len().min(EXCERPT_BYTES)];
                    format!(": {}", String::from_utf8_lossy(cut).trim())
                }
                _ => String::new(),
            };
            let message = format!("HTTP {status}{excerpt}");
            return Err(
                if status.is_server_error()
                    || status == StatusCode::REQUEST_TIMEOUT
                    || status == StatusCode::TOO_MANY_REQUESTS
                {
                    Failure::Retry {
                        message,
                        retry_after,
                    }
                } else {
                    Failure::Permanent(message)
                },
            );
        }
        let mut reader = match self.api {
            Api::OpenAi => Reader::OpenAi(openai::Reader::default()),
            Api::Dify => Reader::Dify(dify::Reader::default()),
        };
        let mut decoder = sse::SseDecoder::default();
        loop {
            let chunk = match tokio::time::timeout(self.timeout, response.chunk()).await {
                Err(_) => {
                    return Err(retry(format!(
                        "the stream stalled: nothing for {waited} ms"
                    )));
                }
                Ok(Err(error)) => {
                    return Err(retry(format!("the stream broke: {}", error_chain(error))));
                }
                Ok(Ok(None)) => {
                    reader.at_end().map_err(retry)?;
                    return Ok(reader.into_answer());
                }
                Ok(Ok(Some(chunk))) => chunk,
            };
            for event in decoder.feed(&chunk) {
                let before = reader.text().len();
                let flow = reader.on_event(&event).map_err(retry)?;
                if reader.text().len() != before {
                    ctx.progress(reader.text());
                }
                if let Flow::Done = flow {
                    return Ok(reader.into_answer());
                }
            }
        }
    }
}

#[async_trait]
impl Handler for Llm {
    async fn handle(
        &self,
        ctx: &HandlerContext<'_>,
        event: &Event,
    ) -> Result<Outcome, HandlerError> {
        // Its own messages (a phone reading back what it sent) are never answered.
        let Some(conversation) = &event.conversation else {
            return Ok(Outcome::default());
        };
        if event.sender.as_ref().is_some_and(|s| s.is_self) {
            return Ok(Outcome::default());
        }
        let Some(text) = event.text().filter(|t| !t.trim().is_empty()) else {
            return Ok(Outcome::default());
        };
        // The handler's name is in the key: two models on one chat keep apart memories.
        let key = format!("{}:{}/{}", self.name, event.source, conversation.id);
        let window = self.memory_turns * 2;
        let body = match self.api {
            Api::OpenAi => {
                let history = if window == 0 {
                    Vec::new()
                } else {
                    ctx.llm_turns(&key, window).await?
                };
                openai::body(&openai::Request {
                    model: &self.model,
                    system_prompt: self.system_prompt.as_deref(),
                    history: &history,
                    text: &text,
                    max_tokens: self.max_tokens,
                    temperature: self.temperature,
                    tools: self.tools,
                })
            }
            Api::Dify => {
                let kept = if window == 0 {
                    Vec::new()
                } else {
                    ctx.llm_turns(&key, 1).await?
                };
                let user = user_key(event).unwrap_or_else(|| event.source.clone());
                dify::body(&text, &user, kept.last().map(|t| t.text.as_str()))
            }
        };
        let answer = match self.ask(ctx, event, &body).await {
            Ok(answer) => answer,
            Err((error, attempts)) => {
                tracing::error!(handler = %self.name, event = %event.id, %error, "llm gave up; event dead-lettered");
                return Ok(Outcome {
                    actions: Vec::new(),
                    dead: Some(DeadLetterInfo {
                        handler: self.name.clone(),
                        delivered: event.clone(),
                        attempts,
                        error,
                    }),
                });
            }
        };
        if window > 0 {
            match (self.api, &answer.conversation_id) {
                (Api::OpenAi, _) => {
                    // A turn of calls alone is remembered by their names, so the next
                    // question does not meet an empty answer.
                    let said = if answer.text.is_empty() && !answer.tool_calls.is_empty() {
                        let names: Vec<&str> =
                            answer.tool_calls.iter().map(|c| c.name.as_str()).collect();
                        format!("(called {})", names.join(", "))
                    } else {
                        answer.text.clone()
                    };
                    let turns = [
                        Turn::new("user", text.clone()),
                        Turn::new("assistant", said),
                    ];
                    ctx.push_llm_turns(&key, &turns, window).await?;
                }
                (Api::Dify, Some(id)) => {
                    ctx.push_llm_turns(&key, &[Turn::new("conversation", id.clone())], 1)
                        .await?;
                }
                (Api::Dify, None) => {}
            }
        }
        let mut actions = Vec::new();
        if !answer.text.trim().is_empty() {
            actions.push(HandlerAction::reply(answer.text));
        }
        for call in &answer.tool_calls {
            actions.push(match self.tool_action(ctx, event, call).await? {
                Ok(action) => action,
                Err(refusal) => HandlerAction::reply(refusal),
            });
        }
        if actions.is_empty() {
            tracing::warn!(handler = %self.name, event = %event.id, "llm answered with no text");
        }
        Ok(Outcome::actions(resolve(actions, event)))
    }
}

/// A tool call's arguments.
#[derive(Deserialize)]
struct Place {
    target: String,
    conversation: String,
    #[serde(default)]
    text: Option<String>,
}

impl Llm {
    /// The action a tool call asks for, or why it is not taken (told to the asker).
    async fn tool_action(
        &self,
        ctx: &HandlerContext<'_>,
        event: &Event,
        call: &openai::ToolCall,
    ) -> Result<Result<HandlerAction, String>, HandlerError> {
        let name = call.name.as_str();
        if !matches!(name, "send" | "forward") {
            tracing::warn!(handler = %self.name, event = %event.id, tool = %name, "llm called a tool it was not offered");
            return Ok(Err(format!(
                "(The model asked for an unknown tool \"{name}\".)"
            )));
        }
        let user = user_key(event).unwrap_or_default();
        let access = ctx.access(&user).await?;
        if !access.may(TOOL_SCENE, name, false) {
            tracing::info!(handler = %self.name, %user, tool = %name, "llm tool call refused: no grant");
            return Ok(Err(format!(
                "You may not have me {name} messages; ask an admin for a grant of {TOOL_SCENE} {name}."
            )));
        }
        let place: Place = match serde_json::from_str(&call.arguments) {
            Ok(place) => place,
            Err(error) => {
                tracing::warn!(handler = %self.name, event = %event.id, tool = %name, %error, "llm tool call with bad arguments");
                return Ok(Err(format!("(The model's {name} call was malformed.)")));
            }
        };
        tracing::info!(handler = %self.name, event = %event.id, %user, tool = %name, target = %place.target, conversation = %place.conversation, "llm tool call taken");
        Ok(Ok(match name {
            "send" => HandlerAction::Send {
                target: place.target,
                conversation: place.conversation,
                text: place.text.unwrap_or_default(),
                attachments: Vec::new(),
            },
            _ => HandlerAction::Forward {
                target: place.target,
                conversation: place.conversation,
            },
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::event::{Action, test_message};
    use crate::handler::{Handlers, builtins};
    use crate::plugin::PluginHost;
    use crate::store::MemoryStore;

    fn config(base_url: &str) -> LlmConfig {
        toml::from_str(&format!(
            "base_url = {base_url:?}\nmodel = \"m\"\nbackoff_ms = 10\nattempts = 2"
        ))
        .expect("config")
    }

    #[test]
    fn config_is_checked_per_api() {
        assert!(config("http://localhost:11434/v1").check("ai").is_empty());
        let mut bad = config("ftp://x");
        bad.model = None;
        bad.temperature = Some(3.0);
        bad.attempts = 0;
        let keys: Vec<_> = bad.check("ai").iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            [
                Some("base_url"),
                Some("model"),
                Some("attempts"),
                Some("temperature")
            ]
        );
        let dify: LlmConfig = toml::from_str(
            "api = \"dify\"\nbase_url = \"https://api.dify.ai/v1\"\nsystem_prompt = \"x\"",
        )
        .expect("dify");
        let problems = dify.check("d");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].key, Some("system_prompt"));
        assert_eq!(
            endpoint(Api::OpenAi, "https://api.deepseek.com/v1/")
                .expect("url")
                .as_str(),
            "https://api.deepseek.com/v1/chat/completions"
        );
        assert!(toml::from_str::<LlmConfig>("base_url = \"x\"\nbogus = 1").is_err());
    }

    /// The answer-so-far goes out as the chunks come (what a WeCom AI bot's stream
    /// shows); a 503 is retried; the reply is the whole answer.
    #[tokio::test]
    async fn reports_the_answer_growing_then_replies_with_all_of_it() {
        let calls = Arc::new(Mutex::new(0));
        let counter = calls.clone();
        let app = axum::Router::new().route(
            "/v1/chat/completions",
            axum::routing::post(move || {
                let counter = counter.clone();
                async move {
                    let mut calls = counter.lock().expect("lock");
                    *calls += 1;
                    if *calls == 1 {
                        return (
                            axum::http::StatusCode::SERVICE_UNAVAILABLE,
                            "busy".to_string(),
                        );
                    }
                    let mut sse = String::new();
                    for piece in ["你", "好", "！"] {
                        sse.push_str(&format!(
                            "data: {{\"choices\":[{{\"delta\":{{\"content\":\"{piece}\"}}}}]}}\n\n"
                        ));
                    }
                    sse.push_str("data: [DONE]\n\n");
                    (axum::http::StatusCode::OK, sse)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}/v1", listener.local_addr().expect("addr"));
        let server = tokio::spawn(async move { axum::serve(listener, app).await });

        let (faults, _) = tokio::sync::mpsc::unbounded_channel();
        let plugins = PluginHost::start(Vec::new(), faults).await;
        let mut map = builtins();
        map.insert(
            "ai".into(),
            Box::new(Llm::new("ai", &config(&base)).expect("llm")),
        );
        let handlers = Handlers::new(
            map,
            Arc::new(MemoryStore::default()),
            plugins,
            HashSet::new(),
            HashMap::new(),
        );
        let seen = Mutex::new(Vec::new());
        let report = |text: &str| seen.lock().expect("lock").push(text.to_string());
        let event = test_message("bot", "zhangsan", "hi", false);
        let outcome = handlers
            .handle_reporting("ai", &event, &report)
            .await
            .expect("handled");
        assert_eq!(outcome.actions, [Action::send("bot", "zhangsan", "你好！")]);
        assert_eq!(*seen.lock().expect("lock"), ["你", "你好", "你好！"]);
        assert_eq!(*calls.lock().expect("lock"), 2, "the 503 was retried");
        server.abort();
    }

    /// A `send` tool call becomes a Send action for an admin and for a user granted
    /// `llm send`; anyone else is told they may not, and nothing is sent.
    #[tokio::test]
    async fn tool_calls_become_actions_only_for_those_allowed() {
        let app = axum::Router::new().route(
            "/v1/chat/completions",
            axum::routing::post(|| async {
                let args = r#"{\"target\":\"ops\",\"conversation\":\"值班群\",\"text\":\"告警\"}"#;
                format!(
                    "data: {{\"choices\":[{{\"delta\":{{\"tool_calls\":[{{\"index\":0,\"function\":{{\"name\":\"send\",\"arguments\":\"{args}\"}}}}]}}}}]}}\n\n\
                     data: {{\"choices\":[{{\"delta\":{{}},\"finish_reason\":\"tool_calls\"}}]}}\n\ndata: [DONE]\n\n"
                )
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}/v1", listener.local_addr().expect("addr"));
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let (faults, _) = tokio::sync::mpsc::unbounded_channel();
        let plugins = PluginHost::start(Vec::new(), faults).await;
        let mut map = builtins();
        let mut with_tools = config(&base);
        with_tools.tools = true;
        map.insert(
            "ai".into(),
            Box::new(Llm::new("ai", &with_tools).expect("llm")),
        );
        let handlers = Handlers::new(
            map,
            Arc::new(MemoryStore::default()),
            plugins,
            HashSet::from(["wechat:boss".to_string()]),
            HashMap::new(),
        );
        let sent = [Action::send("ops", "值班群", "告警")];

        let boss = test_message("bot", "boss", "通知值班群", false);
        let outcome = handlers.handle("ai", &boss).await.expect("handled");
        assert_eq!(outcome.actions, sent);

        let stranger = test_message("bot", "stranger", "通知值班群", false);
        let outcome = handlers.handle("ai", &stranger).await.expect("handled");
        assert_eq!(outcome.actions.len(), 1);
        let Action::Send {
            target,
            conversation,
            text,
            ..
        } = &outcome.actions[0];
        assert_eq!(
            (target.as_str(), conversation.as_str()),
            ("bot", "stranger")
        );
        assert!(text.contains("may not"), "{text}");

        handlers
            .grant(&crate::permission::Grant {
                user: "wechat:stranger".into(),
                scene: TOOL_SCENE.into(),
                command: "send".into(),
                expires_at: None,
                granted_by: "wechat:boss".into(),
            })
            .await
            .expect("grant");
        let outcome = handlers.handle("ai", &stranger).await.expect("handled");
        assert_eq!(outcome.actions, sent);
        server.abort();
    }
}
