//! DingTalk's Stream mode: the connection the app opens itself, so a desktop without a
//! public URL receives its robot's messages.
//!
//! From the official SDKs (open-dingtalk/dingtalk-stream-sdk-go `client/client.go`,
//! `payload/connection.go`, `payload/data_frame.go`, `payload/utils.go`; and
//! dingtalk-stream-sdk-python `dingtalk_stream/stream.py`, `frames.py`, `handlers.py`):
//! - `POST {api}/v1.0/gateway/connections/open` with `{"clientId", "clientSecret",
//!   "subscriptions": [{"type", "topic"}], "ua"}` answers `{"endpoint", "ticket"}`, both
//!   required; the WebSocket is `endpoint?ticket=<ticket>` (the Python SDK escapes it with
//!   `quote_plus`). A ticket opens one connection: every reconnect asks for a new one.
//! - Frames are JSON text: `{"specVersion", "type": "SYSTEM" | "EVENT" | "CALLBACK",
//!   "headers": {"topic", "messageId", "contentType", "time", …}, "data": "<a JSON
//!   string>"}`. Each is answered with `{"code": 200, "headers": {"contentType":
//!   "application/json", "messageId": <the frame's>}, "message", "data": "<a JSON
//!   string>"}`; a topic nobody handles is answered 404 (go `processDataFrame`).
//! - SYSTEM `ping` is answered with its own `data` (go `OnPing`); SYSTEM `disconnect`
//!   announces that the server will close: it is acknowledged first, then the socket is
//!   closed and a new connection opened (go: "Acknowledge the server command on the
//!   source connection before closing it").
//! - The robot's messages are CALLBACK frames of topic `/v1.0/im/bot/messages/get`; the
//!   Python SDK's chatbot handler answers them `{"response": "OK"}`. DingTalk sends a
//!   frame again until it is acknowledged, so an acknowledgement follows storing.
//! - Both SDKs reconnect with exponential backoff (Python: 1 s doubling to 60 s, reset
//!   once a frame arrives) and ping the socket when it has been quiet (Python every 60 s,
//!   Go after 120 s idle, closing it when no pong comes within 5 s).
//!
//! What arrives here is not signed: the socket itself is the credential (TLS to DingTalk,
//! opened with a ticket only the app's secret obtains), so frames are trusted as the
//! HTTP callback's signed bodies are.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::{Client, Url};
use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::Inbound;
use super::outbound::url_under;
use crate::http::{USER_AGENT, backoff_delay, error_chain, shown_url};

pub const OPEN_PATH: &str = "/v1.0/gateway/connections/open";
/// go `payload/utils.go` `BotMessageCallbackTopic`.
pub const ROBOT_TOPIC: &str = "/v1.0/im/bot/messages/get";
const RECONNECT_BASE: Duration = Duration::from_secs(1);
const RECONNECT_MAX: Duration = Duration::from_secs(60);
/// Quiet this long, the socket is pinged (stream.py's keepalive interval).
const KEEPALIVE: Duration = Duration::from_secs(60);
/// No frame and no pong this long after the ping: the connection is dead (go waits 5 s;
/// a slow desktop link gets a little more).
const PONG_WAIT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// One frame DingTalk pushes.
#[derive(Debug, Clone, Deserialize)]
pub struct Frame {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub headers: HashMap<String, serde_json::Value>,
    /// A JSON document in a string (go `DataFrame.Data`).
    #[serde(default)]
    pub data: Option<String>,
}

impl Frame {
    fn header(&self, name: &str) -> Option<String> {
        match self.headers.get(name)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    pub fn topic(&self) -> String {
        self.header("topic").unwrap_or_default()
    }

    pub fn message_id(&self) -> Option<String> {
        self.header("messageId").filter(|id| !id.is_empty())
    }
}

/// The answer to a frame, as text for the socket.
pub fn ack(code: u16, message_id: &str, message: &str, data: &str) -> String {
    serde_json::json!({
        "code": code,
        "headers": {"contentType": "application/json", "messageId": message_id},
        "message": message,
        "data": data,
    })
    .to_string()
}

/// What a frame asks of the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reaction {
    /// Answer it (this text, or nothing when the frame names no message id).
    Answer(Option<String>),
    /// Answer it, then close: the server is about to.
    AnswerAndReconnect(Option<String>),
    /// A robot message: take `data`, then answer with [`robot_ack`].
    Robot { message_id: String, data: String },
}

/// How to react to `frame`, except the robot messages, which the caller stores first.
pub fn react(frame: &Frame) -> Reaction {
    let topic = frame.topic();
    let id = frame.message_id();
    let data = frame.data.clone().unwrap_or_default();
    match frame.kind.as_str() {
        "SYSTEM" => {
            // Every SYSTEM frame is answered with its own data (stream.py's SystemHandler;
            // for ping, go's OnPing).
            let answer = id.as_deref().map(|id| ack(200, id, "OK", &data));
            if topic == "disconnect" {
                Reaction::AnswerAndReconnect(answer)
            } else {
                Reaction::Answer(answer)
            }
        }
        // The legacy topic name is in dingtalk-stream-sdk-nodejs's recorded frame.
        "CALLBACK" if topic == ROBOT_TOPIC || topic == "bot_got_msg" => match id {
            Some(message_id) => Reaction::Robot { message_id, data },
            None => Reaction::Answer(None),
        },
        // Events are not subscribed; one that comes anyway is taken, so that it is not
        // sent again (dingtalk-stream-sdk-nodejs answers events `{"status": "SUCCESS"}`).
        "EVENT" => Reaction::Answer(
            id.as_deref()
                .map(|id| ack(200, id, "OK", r#"{"status":"SUCCESS"}"#)),
        ),
        _ => Reaction::Answer(
            id.as_deref()
                .map(|id| ack(404, id, "no handler for this topic", "")),
        ),
    }
}

/// The answer to a robot message once taken (200) or not (500: DingTalk sends it again).
pub fn robot_ack(message_id: &str, taken: Result<(), String>) -> String {
    match taken {
        Ok(()) => ack(200, message_id, "OK", r#"{"response":"OK"}"#),
        Err(reason) => ack(500, message_id, &reason, ""),
    }
}

#[derive(Debug, Deserialize)]
struct Opened {
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default)]
    ticket: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// What the connection task needs.
pub(super) struct Stream {
    pub client_id: String,
    pub secret: String,
    pub api_base: Url,
    pub client: Client,
    pub inbound: Arc<Inbound>,
}

/// How a connection ended.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    Stopped,
    /// Dropped, closed or told to reconnect; `heard` when a frame had arrived.
    Lost {
        heard: bool,
        why: String,
    },
}

impl Stream {
    /// The body of `connections/open`: the robot's messages and the two SYSTEM topics
    /// go's client registers by default.
    fn open_body(&self) -> serde_json::Value {
        serde_json::json!({
            "clientId": self.client_id,
            "clientSecret": self.secret,
            "subscriptions": [
                {"type": "SYSTEM", "topic": "ping"},
                {"type": "SYSTEM", "topic": "disconnect"},
                {"type": "CALLBACK", "topic": ROBOT_TOPIC},
            ],
            "ua": USER_AGENT,
        })
    }

    /// Asks for a ticket; the answer is the WebSocket URL to open with it.
    async fn open(&self) -> Result<Url, String> {
        let url = url_under(&self.api_base, OPEN_PATH)?;
        let response = self
            .client
            .post(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&self.open_body())
            .send()
            .await
            .map_err(|e| format!("{}: {}", shown_url(&url), error_chain(e)))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| format!("reading the connection's answer: {}", error_chain(e)))?;
        let opened: Option<Opened> = serde_json::from_slice(&bytes).ok();
        let filled = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        match opened {
            Some(Opened {
                endpoint: Some(endpoint),
                ticket: Some(ticket),
                ..
            }) if status.is_success() && !endpoint.is_empty() && !ticket.is_empty() => {
                socket_url(&endpoint, &ticket)
            }
            Some(Opened { code, message, .. }) => Err(format!(
                "DingTalk opened no connection (HTTP {status}, {}: {}); check client_id and client_secret, and that the robot receives in Stream mode",
                filled(code).unwrap_or_default(),
                filled(message).unwrap_or_default()
            )),
            None => Err(format!(
                "DingTalk opened no connection (HTTP {status}, not JSON)"
            )),
        }
    }

    /// Keeps a connection open until `stop` says so: each loss reopens (a new ticket)
    /// after a backoff that starts again once a connection has carried a frame.
    pub(super) async fn run(self, mut stop: watch::Receiver<bool>) {
        let name = self.inbound.name.clone();
        let mut attempt: u32 = 0;
        loop {
            if *stop.borrow() {
                return;
            }
            let ended = match self.open().await {
                Ok(url) => self.connection(url, &mut stop).await,
                Err(why) => Ended::Lost { heard: false, why },
            };
            match ended {
                Ended::Stopped => return,
                Ended::Lost { heard, why } => {
                    attempt = if heard { 1 } else { attempt.saturating_add(1) };
                    let wait =
                        backoff_delay(RECONNECT_BASE, RECONNECT_MAX, attempt, fastrand::f64());
                    if heard {
                        tracing::info!(adapter = %name, %why, reconnect_in = ?wait, "DingTalk stream connection ended; reconnecting");
                    } else {
                        tracing::warn!(adapter = %name, %why, attempt, reconnect_in = ?wait, "DingTalk stream connection failed; retrying");
                    }
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => return,
                    }
                }
            }
        }
    }

    /// One connection, from the handshake to its end.
    async fn connection(&self, url: Url, stop: &mut watch::Receiver<bool>) -> Ended {
        let name = self.inbound.name.as_str();
        let lost = |heard: bool, why: String| Ended::Lost { heard, why };
        let connected = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio_tungstenite::connect_async(url.as_str()),
        )
        .await;
        let mut socket = match connected {
            Ok(Ok((socket, _))) => socket,
            Ok(Err(e)) => return lost(false, format!("WebSocket {}: {e}", shown_url(&url))),
            Err(_) => {
                return lost(
                    false,
                    format!("WebSocket {}: no handshake", shown_url(&url)),
                );
            }
        };
        tracing::info!(adapter = %name, endpoint = %shown_url(&url), "DingTalk stream connected");
        let mut heard = false;
        let mut last_heard = Instant::now();
        let mut pinged: Option<Instant> = None;
        loop {
            let deadline = match pinged {
                Some(at) => at + PONG_WAIT,
                None => last_heard + KEEPALIVE,
            };
            let frame = tokio::select! {
                _ = stop.changed() => {
                    let _ = socket.close(None).await;
                    return Ended::Stopped;
                }
                () = tokio::time::sleep_until(deadline) => {
                    if pinged.is_some() {
                        return lost(heard, format!("no answer to a ping within {} s", PONG_WAIT.as_secs()));
                    }
                    if let Err(e) = socket.send(Message::Ping(Vec::new().into())).await {
                        return lost(heard, format!("pinging: {e}"));
                    }
                    pinged = Some(Instant::now());
                    continue;
                }
                frame = socket.next() => frame,
            };
            let text = match frame {
                None => return lost(heard, "the server closed the socket".into()),
                Some(Err(e)) => return lost(heard, format!("reading: {e}")),
                Some(Ok(Message::Close(close))) => {
                    let why = close.map(|c| format!("closed: {} {}", c.code, c.reason));
                    return lost(heard, why.unwrap_or_else(|| "closed".into()));
                }
                Some(Ok(Message::Text(text))) => text,
                // Pongs, pings (tungstenite answers those) and binary frames only show
                // that the link is alive.
                Some(Ok(_)) => {
                    last_heard = Instant::now();
                    pinged = None;
                    continue;
                }
            };
            last_heard = Instant::now();
            pinged = None;
            heard = true;
            let frame: Frame = match serde_json::from_str(text.as_str()) {
                Ok(frame) => frame,
                Err(e) => {
                    tracing::warn!(adapter = %name, error = %e, "a DingTalk stream frame that is not JSON; ignored");
                    continue;
                }
            };
            let (answer, reconnect) = match react(&frame) {
                Reaction::Answer(answer) => (answer, false),
                Reaction::AnswerAndReconnect(answer) => (answer, true),
                Reaction::Robot { message_id, data } => {
                    let taken = self.inbound.take(data.as_bytes()).await;
                    (Some(robot_ack(&message_id, taken)), false)
                }
            };
            if let Some(answer) = answer
                && let Err(e) = socket.send(Message::text(answer)).await
            {
                return lost(heard, format!("answering a frame: {e}"));
            }
            if reconnect {
                let _ = socket.close(None).await;
                let reason = frame.data.unwrap_or_default();
                return lost(true, format!("DingTalk asked to reconnect ({reason})"));
            }
        }
    }
}

/// `endpoint?ticket=…`, the ticket escaped; only ws and wss are opened.
fn socket_url(endpoint: &str, ticket: &str) -> Result<Url, String> {
    let mut url = Url::parse(endpoint.trim())
        .map_err(|e| format!("DingTalk's endpoint is not a URL: {e}"))?;
    if !matches!(url.scheme(), "ws" | "wss") {
        return Err(format!(
            "DingTalk's endpoint is {}, not a WebSocket",
            shown_url(&url)
        ));
    }
    url.query_pairs_mut().append_pair("ticket", ticket);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(text: &str) -> Frame {
        serde_json::from_str(text).expect("frame")
    }

    fn json(text: &str) -> serde_json::Value {
        serde_json::from_str(text).expect("json")
    }

    /// dingtalk-stream-sdk-nodejs `src/client.ts` records this disconnect frame.
    const SDK_DISCONNECT: &str = r#"{"specVersion":"1.0","type":"SYSTEM","headers":{"contentType":"application/json","messageId":"c0a800e9168327945646012d43","time":"1683279456460","topic":"disconnect"},"data":"{\"reason\":\"persistent connection is timeout\"}"}"#;

    #[test]
    fn a_ping_is_answered_with_its_own_data() {
        let ping = frame(
            r#"{"specVersion":"1.0","type":"SYSTEM","headers":{"contentType":"application/json","messageId":"p-1","time":"1700000000000","topic":"ping"},"data":"{\"opaque\":\"0f8a\"}"}"#,
        );
        let Reaction::Answer(Some(answer)) = react(&ping) else {
            panic!("a ping is answered");
        };
        assert_eq!(
            json(&answer),
            serde_json::json!({
                "code": 200,
                "headers": {"contentType": "application/json", "messageId": "p-1"},
                "message": "OK",
                "data": "{\"opaque\":\"0f8a\"}",
            })
        );
    }

    #[test]
    fn a_disconnect_is_answered_then_the_connection_reopened() {
        let Reaction::AnswerAndReconnect(Some(answer)) = react(&frame(SDK_DISCONNECT)) else {
            panic!("a disconnect asks to reconnect");
        };
        let answer = json(&answer);
        assert_eq!(answer["code"], 200);
        assert_eq!(answer["headers"]["messageId"], "c0a800e9168327945646012d43");
        assert_eq!(
            answer["data"],
            "{\"reason\":\"persistent connection is timeout\"}"
        );
    }

    #[test]
    fn robot_messages_are_taken_then_acknowledged_and_others_answered() {
        let message = frame(
            r#"{"specVersion":"1.0","type":"CALLBACK","headers":{"appId":"a","connectionId":"c","contentType":"application/json","messageId":"213f1d00_853_187b7df781f_225d","time":"1683362492940","topic":"/v1.0/im/bot/messages/get"},"data":"{\"msgId\":\"m1\"}"}"#,
        );
        assert_eq!(
            react(&message),
            Reaction::Robot {
                message_id: "213f1d00_853_187b7df781f_225d".into(),
                data: "{\"msgId\":\"m1\"}".into()
            }
        );
        assert_eq!(
            json(&robot_ack("213f1d00_853_187b7df781f_225d", Ok(()))),
            serde_json::json!({
                "code": 200,
                "headers": {"contentType": "application/json", "messageId": "213f1d00_853_187b7df781f_225d"},
                "message": "OK",
                "data": "{\"response\":\"OK\"}",
            })
        );
        let refused = json(&robot_ack("x", Err("the store is down".into())));
        assert_eq!(refused["code"], 500);
        assert_eq!(refused["message"], "the store is down");
        // A callback of a topic not subscribed: 404, as go answers it.
        let card = frame(
            r#"{"type":"CALLBACK","headers":{"messageId":"k1","topic":"/v1.0/card/instances/callback"},"data":"{}"}"#,
        );
        let Reaction::Answer(Some(answer)) = react(&card) else {
            panic!("answered");
        };
        assert_eq!(json(&answer)["code"], 404);
        let event =
            frame(r#"{"type":"EVENT","headers":{"messageId":"e1","topic":"*"},"data":"{}"}"#);
        let Reaction::Answer(Some(answer)) = react(&event) else {
            panic!("answered");
        };
        assert_eq!(json(&answer)["data"], r#"{"status":"SUCCESS"}"#);
        // Nothing to answer without a message id.
        let anonymous = frame(r#"{"type":"SYSTEM","headers":{"topic":"KEEPALIVE"}}"#);
        assert_eq!(react(&anonymous), Reaction::Answer(None));
        // Numbers in headers are read too.
        let numbered = frame(r#"{"type":"SYSTEM","headers":{"topic":"ping","messageId":7}}"#);
        assert!(
            matches!(react(&numbered), Reaction::Answer(Some(a)) if json(&a)["headers"]["messageId"] == "7")
        );
    }

    #[test]
    fn the_socket_url_carries_the_ticket_escaped() {
        let url = socket_url(
            "wss://wss-open-connection.dingtalk.com:443/connect",
            "a+b/c=",
        )
        .expect("url");
        assert_eq!(
            url.as_str(),
            "wss://wss-open-connection.dingtalk.com/connect?ticket=a%2Bb%2Fc%3D"
        );
        assert!(socket_url("https://x/connect", "t").is_err());
        assert!(socket_url("not a url", "t").is_err());
    }

    /// A wss:// handshake builds its TLS configuration (webpki roots, the crypto
    /// provider reqwest brings) without panicking; the peer here is no TLS server, so it
    /// fails as a network error.
    #[tokio::test]
    async fn wss_reaches_the_tls_handshake() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            if let Ok((socket, _)) = listener.accept().await {
                drop(socket);
            }
        });
        let url = format!("wss://localhost:{}/connect?ticket=t", addr.port());
        let result = tokio_tungstenite::connect_async(url.as_str()).await;
        assert!(result.is_err());
    }

    /// No frame panics the stream's reader.
    mod props {
        use proptest::prelude::*;

        use super::*;
        use crate::adapter::testing::props::{config, json};

        const WORDS: &[&str] = &[
            "type",
            "headers",
            "data",
            "topic",
            "messageId",
            "contentType",
            "SYSTEM",
            "CALLBACK",
            "EVENT",
            "ping",
            "disconnect",
            "/v1.0/im/bot/messages/get",
            "application/json",
            "{}",
        ];

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn any_frame_is_answered_or_refused(text in any::<String>(), frame in json(WORDS)) {
                if let Ok(frame) = serde_json::from_str::<Frame>(&text) {
                    let _ = react(&frame);
                }
                if let Ok(frame) = serde_json::from_value::<Frame>(frame) {
                    let _ = frame.topic();
                    let _ = frame.message_id();
                    let _ = react(&frame);
                }
            }
        }
    }
}
