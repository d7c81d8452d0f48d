//! The webhook handler (DESIGN.md §3): POST the event as JSON, read back the actions the
//! response may carry, retry what can succeed later, and say plainly what cannot.
//!
//! The request carries `X-Tapwire-Event` (the event type), `X-Tapwire-Delivery` (the
//! event id, the same on every attempt so the receiver can drop duplicates) and
//! `X-Tapwire-Attempt` (1, 2, ...). A 2xx response answers with no actions when its body
//! is empty or not JSON, and with `{"actions": [...]}` (each a [`HandlerAction`]) when it
//! has some. Connection failures, timeouts, 408, 429 and 5xx are retried with exponential
//! backoff and jitter, honouring `Retry-After` on 429 and 503; anything else fails at once.
//! Error messages show the URL without its query string, where secrets tend to live.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, StatusCode, Url};
use serde::Deserialize;

use crate::event::{Event, HandlerAction};
use crate::handler::ConfigProblem;
use crate::http::{
    USER_AGENT, backoff_delay, error_chain, parse_retry_after, redact_raw_url, shown_url,
};

/// More response than this is not read: an excerpt is enough for an error, and an answer
/// this large is not a list of chat actions.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// How much of a response body an error message quotes.
const EXCERPT_CHARS: usize = 200;

/// One `type = "webhook"` handler of `tapwire.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// Sent with every request, e.g. `Authorization = "Bearer ${CRM_TOKEN}"`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Per attempt, from connecting to the last byte of the response.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Tries in all: the first plus the retries.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// The wait before the first retry; it doubles for each next one, with jitter.
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: u64,
    /// The longest wait between attempts, `Retry-After` included.
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: u64,
}

fn default_timeout_ms() -> u64 {
    5_000
}
fn default_attempts() -> u32 {
    4
}
fn default_backoff_ms() -> u64 {
    500
}
fn default_backoff_max_ms() -> u64 {
    30_000
}

impl WebhookConfig {
    /// A config for `url` with every default.
    pub fn new(url: impl Into<String>) -> Self {
        WebhookConfig {
            url: url.into(),
            headers: BTreeMap::new(),
            timeout_ms: default_timeout_ms(),
            attempts: default_attempts(),
            backoff_ms: default_backoff_ms(),
            backoff_max_ms: default_backoff_max_ms(),
        }
    }

    /// The URL and headers must make a client; a `${VAR}` left unset is reported on its
    /// own line by the config, so it is not reported again here.
    pub fn check(&self, name: &str) -> Vec<ConfigProblem> {
        let unset = |v: &str| v.contains("${");
        if unset(&self.url) || self.headers.values().any(|v| unset(v)) {
            return Vec::new();
        }
        match Webhook::new(name, self.clone()) {
            Ok(_) => Vec::new(),
            Err(error) => vec![ConfigProblem::section(error.to_string())],
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The config cannot work; fix it and restart.
    #[error("bad webhook config: {0}")]
    Config(String),
    /// Retrying would fail the same way: the receiver rejected the event or answered
    /// with something that is not valid actions.
    #[error("{message} (not retried; attempt {attempts})")]
    Permanent {
        status: Option<u16>,
        message: String,
        attempts: u32,
    },
    /// Every attempt failed with something that might have passed later.
    #[error("{last} (gave up after {attempts} attempts)")]
    Exhausted { attempts: u32, last: String },
}

impl WebhookError {
    /// Requests made before giving up (a config error makes none).
    pub fn attempts(&self) -> u32 {
        match self {
            WebhookError::Config(_) => 0,
            WebhookError::Permanent { attempts, .. } | WebhookError::Exhausted { attempts, .. } => {
                *attempts
            }
        }
    }
}

/// A successful delivery: the actions the receiver answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub actions: Vec<HandlerAction>,
    /// Attempts it took, the successful one included.
    pub attempts: u32,
}

pub struct Webhook {
    name: String,
    url: Url,
    /// The URL as errors and logs show it: no query, fragment or credentials.
    shown_url: String,
    headers: HeaderMap,
    client: Client,
    timeout: Duration,
    attempts: u32,
    backoff: Duration,
    backoff_max: Duration,
}

impl std::fmt::Debug for Webhook {
    // By hand, so the query string and header values (tokens) never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("url", &self.shown_url)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// What one attempt came to.
enum Attempt {
    Delivered(Vec<HandlerAction>),
    Permanent {
        status: Option<u16>,
        message: String,
    },
    Retry {
        message: String,
        retry_after: Option<Duration>,
    },
}

impl Webhook {
    pub fn new(name: impl Into<String>, config: WebhookConfig) -> Result<Webhook, WebhookError> {
        let name = name.into();
        let bad = |message: String| WebhookError::Config(format!("webhook \"{name}\": {message}"));
        let url = Url::parse(config.url.trim()).map_err(|error| {
            bad(format!(
                "url \"{}\" is not a URL: {error}",
                redact_raw_url(&config.url)
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(bad(format!(
                "url \"{}\" must be http:// or https:// with a host",
                redact_raw_url(&config.url)
            )));
        }
        if config.attempts == 0 {
            return Err(bad("attempts must be at least 1".to_string()));
        }
        if config.timeout_ms == 0 {
            return Err(bad("timeout_ms must be more than 0".to_string()));
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let header = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
                bad(format!(
                    "header name \"{name}\" is not a valid HTTP header name"
                ))
            })?;
            if is_reserved(&header) {
                return Err(bad(format!(
                    "header \"{name}\" is set by tapwire itself and cannot be configured"
                )));
            }
            // The value is not quoted: it is usually a secret.
            let mut value = HeaderValue::from_str(value).map_err(|_| {
                bad(format!(
                    "header \"{name}\" has a value with characters HTTP does not allow (a line break?)"
                ))
            })?;
            value.set_sensitive(true);
            headers.insert(header, value);
        }
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let timeout = Duration::from_millis(config.timeout_ms);
        let client = Client::builder()
            .user_agent(USER_AGENT)
            .timeout(timeout)
            // A redirected POST turns into a GET on 301/302: report it instead, so the
            // operator points the webhook at the final URL.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| bad(format!("cannot build the HTTP client: {error}")))?;
        Ok(Webhook {
            shown_url: shown_url(&url),
            name,
            url,
            headers,
            client,
            timeout,
            attempts: config.attempts,
            backoff: Duration::from_millis(config.backoff_ms),
            backoff_max: Duration::from_millis(config.backoff_max_ms),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL without query string, fragment or credentials.
    pub fn url(&self) -> &str {
        &self.shown_url
    }

    /// Delivers `event`, retrying as the module docs say, and returns the actions the
    /// receiver answered with.
    pub async fn deliver(&self, event: &Event) -> Result<Delivery, WebhookError> {
        let context = format!("webhook \"{}\" (POST {})", self.name, self.shown_url);
        let permanent = |message: String, attempts: u32| WebhookError::Permanent {
            status: None,
            message: format!("{context}: {message}"),
            attempts,
        };
        let body = serde_json::to_vec(event)
            .map_err(|error| permanent(format!("cannot encode event {}: {error}", event.id), 0))?;
        let mut headers = self.headers.clone();
        for (name, value, what) in [
            ("x-tapwire-event", &event.event_type, "event type"),
            ("x-tapwire-delivery", &event.id, "event id"),
        ] {
            let value = HeaderValue::from_str(value).map_err(|_| {
                permanent(format!("{what} {value:?} cannot be sent as a header"), 0)
            })?;
            headers.insert(HeaderName::from_static(name), value);
        }

        let mut attempt = 1;
        loop {
            headers.insert(
                HeaderName::from_static("x-tapwire-attempt"),
                HeaderValue::from(attempt),
            );
            let outcome = self.attempt(headers.clone(), body.clone()).await;
            let (message, retry_after) = match outcome {
                Attempt::Delivered(actions) => {
                    tracing::info!(
                        webhook = %self.name, event = %event.id, attempts = attempt,
                        actions = actions.len(), "webhook delivered"
                    );
                    return Ok(Delivery {
                        actions,
                        attempts: attempt,
                    });
                }
                Attempt::Permanent { status, message } => {
                    tracing::warn!(
                        webhook = %self.name, event = %event.id, attempt, status,
                        error = %message, "webhook failed permanently"
                    );
                    return Err(WebhookError::Permanent {
                        status,
                        message: format!("{context}: {message}"),
                        attempts: attempt,
                    });
                }
                Attempt::Retry {
                    message,
                    retry_after,
                } => (message, retry_after),
            };
            if attempt >= self.attempts {
                tracing::warn!(
                    webhook = %self.name, event = %event.id, attempts = attempt,
                    error = %message, "webhook attempts exhausted"
                );
                return Err(WebhookError::Exhausted {
                    attempts: attempt,
                    last: format!("{context}: {message}"),
                });
            }
            let delay = match retry_after {
                Some(wait) => wait.min(self.backoff_max),
                None => backoff_delay(self.backoff, self.backoff_max, attempt, fastrand::f64()),
            };
            tracing::warn!(
                webhook = %self.name, event = %event.id, attempt,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                error = %message, "webhook attempt failed; retrying"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn attempt(&self, headers: HeaderMap, body: Vec<u8>) -> Attempt {
        let sent = self
            .client
            .post(self.url.clone())
            .headers(headers)
            .body(body)
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(error) => return self.transport_failure(error),
        };
        let status = response.status();
        let retry_after = matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        )
        .then(|| response.headers().get(header::RETRY_AFTER))
        .flatten()
        .and_then(|value| value.to_str().ok())
        .and_then(|value| parse_retry_after(value, SystemTime::now()));
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .map(redact_raw_url);

        let mut body = Vec::new();
        let mut truncated = false;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_RESPONSE_BYTES - body.len();
                    if chunk.len() > room {
                        body.extend_from_slice(&chunk[..room]);
                        truncated = true;
                        break;
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(error) => return self.transport_failure(error),
            }
        }

        let described = format!("HTTP {}{}", describe_status(status), excerpt(&body));
        if status.is_success() {
            if truncated {
                return Attempt::Permanent {
                    status: Some(status.as_u16()),
                    message: format!(
                        "HTTP {}: response larger than {MAX_RESPONSE_BYTES} bytes",
                        describe_status(status)
                    ),
                };
            }
            return match parse_actions(&body) {
                Ok(actions) => Attempt::Delivered(actions),
                Err(problem) => Attempt::Permanent {
                    status: Some(status.as_u16()),
                    message: format!(
                        "HTTP {}: invalid actions in the response: {problem}",
                        describe_status(status)
                    ),
                },
            };
        }
        if status.is_server_error()
            || status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS
        {
            return Attempt::Retry {
                message: described,
                retry_after,
            };
        }
        let message = match (status.is_redirection(), location) {
            (true, Some(location)) => format!(
                "{described}; redirected to {location}: configure the final URL, redirects are not followed"
            ),
            _ => described,
        };
        Attempt::Permanent {
            status: Some(status.as_u16()),
            message,
        }
    }

    /// A request that got no (complete) response. Connecting, timing out and dropped
    /// connections can all pass on another try.
    fn transport_failure(&self, error: reqwest::Error) -> Attempt {
        let retry = !(error.is_builder() || error.is_redirect());
        let message = if error.is_timeout() {
            format!("timed out after {} ms", self.timeout.as_millis())
        } else if error.is_connect() {
            format!("could not connect: {}", error_chain(error))
        } else {
            format!("request failed: {}", error_chain(error))
        };
        if retry {
            Attempt::Retry {
                message,
                retry_after: None,
            }
        } else {
            Attempt::Permanent {
                status: None,
                message,
            }
        }
    }
}

#[async_trait::async_trait]
impl super::Handler for Webhook {
    /// Past its retries the event becomes a dead letter, from which `tapwire dlq
    /// replay` can deliver it again.
    async fn handle(
        &self,
        _ctx: &super::HandlerContext<'_>,
        event: &Event,
    ) -> Result<super::Outcome, super::HandlerError> {
        Ok(match self.deliver(event).await {
            Ok(delivery) => {
                tracing::debug!(handler = %self.name, event = %event.id, attempts = delivery.attempts, "webhook delivered");
                super::Outcome::actions(super::resolve(delivery.actions, event))
            }
            Err(error) => {
                tracing::error!(handler = %self.name, event = %event.id, %error, "webhook gave up; event dead-lettered");
                super::Outcome {
                    actions: Vec::new(),
                    dead: Some(crate::store::DeadLetterInfo {
                        handler: self.name.clone(),
                        delivered: event.clone(),
                        attempts: error.attempts(),
                        error: error.to_string(),
                    }),
                }
            }
        })
    }
}

/// Headers tapwire sets, or HTTP manages, itself.
fn is_reserved(name: &HeaderName) -> bool {
    name == header::CONTENT_TYPE
        || name == header::CONTENT_LENGTH
        || name == header::HOST
        || name == header::USER_AGENT
        || name == header::TRANSFER_ENCODING
        || name == header::CONNECTION
        || name.as_str().starts_with("x-tapwire-")
}

/// The actions of a 2xx response body. An empty or non-JSON body, or JSON without an
/// `actions` field, is a plain acknowledgement; an `actions` field that does not parse is
/// an error, naming which action and why.
fn parse_actions(body: &[u8]) -> Result<Vec<HandlerAction>, String> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Ok(Vec::new());
    };
    let actions = match value.get("actions") {
        None | Some(serde_json::Value::Null) => return Ok(Vec::new()),
        Some(serde_json::Value::Array(actions)) => actions,
        Some(other) => {
            return Err(format!(
                "\"actions\" must be an array, found {}",
                excerpt_text(&other.to_string())
            ));
        }
    };
    actions
        .iter()
        .enumerate()
        .map(|(index, action)| {
            HandlerAction::deserialize(action).map_err(|error| {
                format!(
                    "action {index} {}: {error}",
                    excerpt_text(&action.to_string())
                )
            })
        })
        .collect()
}

fn describe_status(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// `: <the start of the body>`, or nothing for an empty body.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = excerpt_text(&text);
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

/// The first [`EXCERPT_CHARS`] characters of `text` on one line.
fn excerpt_text(text: &str) -> String {
    let mut words = text.split_whitespace();
    let mut line = words.next().unwrap_or_default().to_string();
    for word in words {
        line.push(' ');
        line.push_str(word);
    }
    match line.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use axum::body::Bytes;
    use axum::extract::State;
    use axum::response::IntoResponse;

    use super::*;
    use crate::event::test_message;

    /// One scripted response of the test server.
    #[derive(Clone)]
    struct Reply {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
        delay: Duration,
    }

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    type Requests = Arc<Mutex<Vec<(axum::http::HeaderMap, Bytes)>>>;

    struct Server {
        url: String,
        requests: Requests,
    }

    impl Server {
        fn requests(&self) -> Vec<(axum::http::HeaderMap, Bytes)> {
            self.requests.lock().expect("lock").clone()
        }

        fn header(&self, index: usize, name: &str) -> String {
            let requests = self.requests();
            requests[index]
                .0
                .get(name)
                .unwrap_or_else(|| panic!("request {index} has no {name}"))
                .to_str()
                .expect("ascii header")
                .to_string()
        }
    }

    /// A real HTTP server on 127.0.0.1:0 answering with `script` in order, the last reply
    /// repeated, recording each request.
    async fn serve(script: Vec<Reply>) -> Server {
        let requests: Requests = Arc::default();
        let state = (Arc::new(script), requests.clone());
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(answer))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        Server {
            url: format!("http://{address}/hook"),
            requests,
        }
    }

    async fn answer(
        State((script, requests)): State<(Arc<Vec<Reply>>, Requests)>,
        headers: axum::http::HeaderMap,
        body: Bytes,
    ) -> impl IntoResponse {
        let index = {
            let mut requests = requests.lock().expect("lock");
            requests.push((headers, body));
            requests.len() - 1
        };
        let reply = script[index.min(script.len() - 1)].clone();
        tokio::time::sleep(reply.delay).await;
        let mut headers = axum::http::HeaderMap::new();
        for (name, value) in reply.headers {
            headers.insert(name, value.parse().expect("header value"));
        }
        (
            axum::http::StatusCode::from_u16(reply.status).expect("status"),
            headers,
            reply.body,
        )
    }

    fn fast(url: &str) -> WebhookConfig {
        WebhookConfig {
            backoff_ms: 10,
            backoff_max_ms: 100,
            timeout_ms: 2_000,
            ..WebhookConfig::new(url)
        }
    }

    fn webhook(config: WebhookConfig) -> Webhook {
        Webhook::new("crm", config).expect("valid config")
    }

    #[tokio::test]
    async fn server_errors_are_retried_until_actions_come_back() {
        let server = serve(vec![
            reply(500, "boom"),
            reply(500, "boom"),
            reply(200, r#"{"actions":[{"action":"reply","text":"收到"}]}"#),
        ])
        .await;
        let event = test_message("phone-1", "Alice", "hello", false);
        let delivery = webhook(fast(&server.url))
            .deliver(&event)
            .await
            .expect("delivered");
        assert_eq!(delivery.attempts, 3);
        assert_eq!(delivery.actions, vec![HandlerAction::reply("收到")]);
        assert_eq!(server.requests().len(), 3);
        for index in 0..3 {
            assert_eq!(server.header(index, "x-tapwire-delivery"), event.id);
            assert_eq!(
                server.header(index, "x-tapwire-attempt"),
                (index + 1).to_string()
            );
        }
    }

    #[tokio::test]
    async fn persistent_server_errors_exhaust_the_attempts() {
        let server = serve(vec![reply(500, "database down")]).await;
        let error = webhook(fast(&server.url))
            .deliver(&test_message("p", "A", "x", false))
            .await
            .expect_err("always 500");
        let WebhookError::Exhausted { attempts, last } = &error else {
            panic!("{error:?}");
        };
        assert_eq!(*attempts, 4, "default attempts: the first + 3 retries");
        assert!(
            last.contains("HTTP 500 Internal Server Error: database down"),
            "{last}"
        );
        assert!(last.contains(&server.url), "names the URL: {last}");
        assert_eq!(server.requests().len(), 4);
    }

    #[tokio::test]
    async fn client_errors_are_not_retried() {
        let server = serve(vec![reply(400, r#"{"error": "unknown field \"txt\""}"#)]).await;
        let url = format!("{}?token=s3cret", server.url);
        let error = webhook(fast(&url))
            .deliver(&test_message("p", "A", "x", false))
            .await
            .expect_err("400");
        let WebhookError::Permanent {
            status,
            message,
            attempts,
        } = &error
        else {
            panic!("{error:?}");
        };
        assert_eq!((*status, *attempts), (Some(400), 1));
        assert!(message.contains("HTTP 400 Bad Request"), "{message}");
        assert!(
            message.contains("unknown field"),
            "quotes the body: {message}"
        );
        assert!(!error.to_string().contains("s3cret"), "{error}");
        assert_eq!(server.requests().len(), 1);
    }

    #[tokio::test]
    async fn slow_servers_time_out_and_are_retried() {
        let server = serve(vec![Reply {
            delay: Duration::from_secs(2),
            ..reply(200, "")
        }])
        .await;
        let config = WebhookConfig {
            timeout_ms: 100,
            attempts: 2,
            ..fast(&server.url)
        };
        let started = Instant::now();
        let error = webhook(config)
            .deliver(&test_message("p", "A", "x", false))
            .await
            .expect_err("timeout");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        let WebhookError::Exhausted { attempts, last } = &error else {
            panic!("{error:?}");
        };
        assert_eq!(*attempts, 2);
        assert!(last.contains("timed out after 100 ms"), "{last}");
        assert_eq!(server.requests().len(), 2);
    }

    #[tokio::test]
    async fn unreachable_servers_are_retried_and_named_without_secrets() {
        // A port nothing listens on: bind, note it, close.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        drop(listener);
        let config = WebhookConfig {
            attempts: 2,
            ..fast(&format!("http://user:pw@{address}/hook?token=s3cret"))
        };
        let error = webhook(config)
            .deliver(&test_message("p", "A", "x", false))
            .await
            .expect_err("refused");
        let WebhookError::Exhausted { attempts, last } = &error else {
            panic!("{error:?}");
        };
        assert_eq!(*attempts, 2);
        assert!(last.contains("could not connect"), "{last}");
        assert!(last.contains(&format!("http://{address}/hook")), "{last}");
        let text = format!("{error} {error:?}");
        assert!(!text.contains("s3cret") && !text.contains("pw@"), "{text}");
    }

    #[tokio::test]
    async fn request_carries_the_event_and_headers() {
        let server = serve(vec![reply(204, "")]).await;
        let mut config = fast(&server.url);
        config
            .headers
            .insert("Authorization".into(), "Bearer t0k".into());
        config.headers.insert("X-Team".into(), "ops".into());
        let event = test_message("phone-1", "Alice", "hello", false);
        let delivery = webhook(config).deliver(&event).await.expect("delivered");
        assert_eq!(
            delivery,
            Delivery {
                actions: vec![],
                attempts: 1
            }
        );

        assert_eq!(server.header(0, "authorization"), "Bearer t0k");
        assert_eq!(server.header(0, "x-team"), "ops");
        assert_eq!(server.header(0, "content-type"), "application/json");
        assert_eq!(
            server.header(0, "user-agent"),
            format!("tapwire/{}", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(server.header(0, "x-tapwire-event"), "message.received");
        assert_eq!(server.header(0, "x-tapwire-delivery"), event.id);
        assert_eq!(server.header(0, "x-tapwire-attempt"), "1");
        let body: Event = serde_json::from_slice(&server.requests()[0].1).expect("event JSON");
        assert_eq!(body, event);
    }

    #[tokio::test]
    async fn acknowledgements_without_actions() {
        for body in [
            "ok",
            "",
            "  \n",
            r#"{"status":"ok"}"#,
            r#"{"actions":null}"#,
            "[1,2]",
        ] {
            let server = serve(vec![reply(200, body)]).await;
            let delivery = webhook(fast(&server.url))
                .deliver(&test_message("p", "A", "x", false))
                .await
                .unwrap_or_else(|error| panic!("{body:?}: {error}"));
            assert_eq!(
                delivery,
                Delivery {
                    actions: vec![],
                    attempts: 1
                },
                "{body:?}"
            );
        }
    }

    #[tokio::test]
    async fn invalid_actions_fail_permanently_and_say_why() {
        let cases = [
            (
                r#"{"actions":[{"action":"reply","text":"ok"},{"action":"replly","text":"x"}]}"#,
                "action 1",
                "unknown variant `replly`",
            ),
            (
                r#"{"actions":[{"action":"send","text":"x"}]}"#,
                "action 0",
                "missing field `target`",
            ),
            (r#"{"actions":{"action":"reply"}}"#, "must be an array", "{"),
        ];
        for (body, which, why) in cases {
            let server = serve(vec![reply(200, body)]).await;
            let error = webhook(fast(&server.url))
                .deliver(&test_message("p", "A", "x", false))
                .await
                .expect_err(body);
            let WebhookError::Permanent {
                status,
                message,
                attempts,
            } = &error
            else {
                panic!("{error:?}");
            };
            assert_eq!((*status, *attempts), (Some(200), 1), "{body}");
            assert!(message.contains("invalid actions"), "{message}");
            assert!(
                message.contains(which) && message.contains(why),
                "{message}"
            );
            assert_eq!(server.requests().len(), 1, "not retried: {body}");
        }
    }

    #[tokio::test]
    async fn retry_after_is_honoured_on_429() {
        let server = serve(vec![
            Reply {
                headers: vec![("retry-after", "1".into())],
                ..reply(429, "slow down")
            },
            reply(200, ""),
        ])
        .await;
        let config = WebhookConfig {
            backoff_max_ms: 5_000,
            ..fast(&server.url)
        };
        let started = Instant::now();
        let delivery = webhook(config)
            .deliver(&test_message("p", "A", "x", false))
            .await
            .expect("delivered");
        let waited = started.elapsed();
        assert_eq!(delivery.attempts, 2);
        assert!(
            waited >= Duration::from_millis(1_000) && waited < Duration::from_millis(1_900),
            "{waited:?}"
        );
    }

    #[tokio::test]
    async fn retry_after_is_capped_by_backoff_max() {
        let server = serve(vec![
            Reply {
                headers: vec![("retry-after", "60".into())],
                ..reply(503, "")
            },
            reply(200, ""),
        ])
        .await;
        let started = Instant::now();
        let delivery = webhook(fast(&server.url))
            .deliver(&test_message("p", "A", "x", false))
            .await
            .expect("delivered");
        assert_eq!(delivery.attempts, 2);
        assert!(
            started.elapsed() < Duration::from_millis(800),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn redirects_are_reported_not_followed() {
        let server = serve(vec![Reply {
            headers: vec![("location", "https://new.example.com/hook?key=s3cret".into())],
            ..reply(302, "")
        }])
        .await;
        let error = webhook(fast(&server.url))
            .deliver(&test_message("p", "A", "x", false))
            .await
            .expect_err("302");
        let message = error.to_string();
        assert!(matches!(
            error,
            WebhookError::Permanent {
                status: Some(302),
                ..
            }
        ));
        assert!(
            message.contains("redirected to https://new.example.com/hook"),
            "{message}"
        );
        assert!(!message.contains("s3cret"), "{message}");
    }

    #[test]
    fn config_defaults_and_validation() {
        let config: WebhookConfig =
            toml::from_str(r#"url = "https://hooks.example.com/tapwire""#).expect("minimal");
        assert_eq!(
            config,
            WebhookConfig::new("https://hooks.example.com/tapwire")
        );
        assert_eq!(
            (
                config.timeout_ms,
                config.attempts,
                config.backoff_ms,
                config.backoff_max_ms
            ),
            (5_000, 4, 500, 30_000)
        );
        assert!(toml::from_str::<WebhookConfig>("url = \"https://x.y\"\nretries = 3").is_err());

        let invalid = |config: WebhookConfig| match Webhook::new("crm", config) {
            Err(WebhookError::Config(message)) => message,
            other => panic!("{other:?}"),
        };
        let with_header = |name: &str, value: &str| {
            let mut config = WebhookConfig::new("https://x.y/hook");
            config.headers.insert(name.into(), value.into());
            config
        };
        let message = invalid(WebhookConfig::new("not a url?token=s3cret"));
        assert!(
            message.starts_with("webhook \"crm\": url \"not a url\""),
            "{message}"
        );
        assert!(invalid(WebhookConfig::new("ftp://x.y/hook")).contains("http:// or https://"));
        assert!(invalid(with_header("Bad Header", "v")).contains("\"Bad Header\""));
        let message = invalid(with_header("Authorization", "Bearer a\nb"));
        assert!(
            message.contains("\"Authorization\"") && !message.contains("Bearer"),
            "{message}"
        );
        assert!(invalid(with_header("X-Tapwire-Attempt", "9")).contains("set by tapwire"));
        assert!(invalid(with_header("content-type", "text/plain")).contains("set by tapwire"));
        let zero = WebhookConfig {
            attempts: 0,
            ..WebhookConfig::new("https://x.y")
        };
        assert!(invalid(zero).contains("attempts"));
        // Debug output never shows the query string or header values.
        let mut config = with_header("Authorization", "Bearer t0k");
        config.url = "https://x.y/hook?token=s3cret".into();
        let debug = format!("{:?}", Webhook::new("crm", config).expect("valid"));
        assert!(
            !debug.contains("s3cret") && !debug.contains("t0k"),
            "{debug}"
        );
    }

    #[test]
    fn excerpts_are_short_and_on_one_line() {
        assert_eq!(excerpt(b""), "");
        assert_eq!(excerpt(b"a\n  b"), ": a b");
        let long = "错".repeat(500);
        let cut = excerpt_text(&long);
        assert_eq!(cut.chars().count(), EXCERPT_CHARS + 1);
        assert!(cut.ends_with('…'));
    }
}
