//! End to end for DingTalk: the real `tapwire run` with `dingtalk` adapters against a
//! loopback stand-in of api.dingtalk.com (connections/open, tokens, the robot API),
//! oapi.dingtalk.com (session webhooks, the custom robot) and the Stream gateway (a
//! WebSocket server). Frames are DingTalk's shapes (the official Stream SDKs'); signs are
//! computed here with their own HMAC, independently of the adapter's code.
//!
//! Stream mode: a ping is echoed, a robot message acknowledged and answered through its
//! session webhook, its redelivery acknowledged and not answered again; the socket drops
//! and the adapter opens a new connection with a new ticket; messages whose webhooks have
//! expired are answered through the robot API with one cached token; a `disconnect` is
//! acknowledged and followed by a third connection; SIGTERM closes the socket.
//! HTTP mode: a signed callback is answered; a bad sign or a timestamp more than an hour
//! off is refused with 401 and nothing is sent; a forward to a signed custom robot.

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use support::Tapwire;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{
    ErrorResponse, Request, Response as WsResponse,
};

const CLIENT_ID: &str = "dingtestclient0001";
const SECRET: &str = "dingtalk-app-secret-for-the-e2e-test";
const SECRET_VAR: &str = "TAPWIRE_TEST_DINGTALK_SECRET";
const ROBOT_SECRET: &str = "SECcustom-robot-secret-0123456789";
const ROBOT_SECRET_VAR: &str = "TAPWIRE_TEST_DINGTALK_ROBOT_SECRET";
const ROBOT_TOPIC: &str = "/v1.0/im/bot/messages/get";
const GROUP: &str = "cidGROUPe2e==";
const GROUP_2: &str = "cidGROUP2e2e==";
const STAFF: &str = "manager1234";

/// Base64(HmacSHA256(key = secret, message = timestamp + "\n" + secret)).
fn ding_sign(timestamp: &str, secret: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("hmac");
    mac.update(format!("{timestamp}\n{secret}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_millis(),
    )
    .expect("ms")
}

/// A query string's pairs, form-decoded.
fn query_pairs(query: &str) -> std::collections::HashMap<String, String> {
    reqwest::Url::parse(&format!("http://stand-in/?{query}"))
        .map(|url| url.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

/// What the stand-in saw.
#[derive(Clone, Default)]
struct StandIn {
    /// The WebSocket endpoint handed out by connections/open.
    ws: Arc<Mutex<String>>,
    /// Tickets handed out, in order; a ticket is good for one connection.
    tickets: Arc<Mutex<Vec<String>>>,
    used: Arc<Mutex<Vec<String>>>,
    opens: Arc<Mutex<Vec<serde_json::Value>>>,
    token_fetches: Arc<Mutex<u32>>,
    /// (path with the session or the robot's query, token header, body)
    sends: Arc<Mutex<Vec<(String, String, serde_json::Value)>>>,
    /// Custom robot posts whose sign did not verify.
    bad_signs: Arc<Mutex<u32>>,
}

impl StandIn {
    fn sends(&self) -> Vec<(String, String, serde_json::Value)> {
        self.sends.lock().expect("lock").clone()
    }

    fn sends_to(&self, prefix: &str) -> Vec<(String, String, serde_json::Value)> {
        self.sends()
            .into_iter()
            .filter(|s| s.0.starts_with(prefix))
            .collect()
    }
}

async fn open(State(d): State<StandIn>, Json(body): Json<serde_json::Value>) -> Response {
    if body["clientId"] != CLIENT_ID || body["clientSecret"] != SECRET {
        return (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"code": "InvalidAuthentication", "message": "bad client"})),
        )
            .into_response();
    }
    d.opens.lock().expect("lock").push(body);
    let mut tickets = d.tickets.lock().expect("lock");
    let ticket = format!("ticket-{}+/=", tickets.len() + 1);
    tickets.push(ticket.clone());
    let endpoint = d.ws.lock().expect("lock").clone();
    Json(serde_json::json!({"endpoint": endpoint, "ticket": ticket})).into_response()
}

async fn token(State(d): State<StandIn>, Json(body): Json<serde_json::Value>) -> Response {
    if body != serde_json::json!({"appKey": CLIENT_ID, "appSecret": SECRET}) {
        return (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"code": "InvalidAuthentication", "message": "bad app"})),
        )
            .into_response();
    }
    *d.token_fetches.lock().expect("lock") += 1;
    Json(serde_json::json!({"accessToken": "tok-1", "expireIn": 7200})).into_response()
}

fn record(d: &StandIn, uri: &Uri, headers: &HeaderMap, body: serde_json::Value) {
    let token = headers
        .get("x-acs-dingtalk-access-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let path = match uri.query() {
        Some(q) if uri.path() == "/robot/sendBySession" => format!("{}?{q}", uri.path()),
        _ => uri.path().to_string(),
    };
    d.sends.lock().expect("lock").push((path, token, body));
}

async fn robot_api(
    State(d): State<StandIn>,
    uri: Uri,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    record(&d, &uri, &headers, body);
    Json(
        serde_json::json!({"processQueryKey": "pqk-1", "invalidStaffIdList": [], "flowControlledStaffIdList": []}),
    )
}

async fn session_hook(
    State(d): State<StandIn>,
    uri: Uri,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    record(&d, &uri, &headers, body);
    Json(serde_json::json!({"errcode": 0, "errmsg": "ok"}))
}

/// The custom robot: `access_token` must be ours and the sign must verify, as DingTalk
/// checks it (310000 otherwise).
async fn custom_robot(
    State(d): State<StandIn>,
    uri: Uri,
    Json(body): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    let query = query_pairs(uri.query().unwrap_or_default());
    let fresh = query
        .get("timestamp")
        .and_then(|t| t.parse::<u64>().ok())
        .is_some_and(|t| now_ms().abs_diff(t) < 3_600_000);
    let signed = match (query.get("timestamp"), query.get("sign")) {
        (Some(ts), Some(sign)) => *sign == ding_sign(ts, ROBOT_SECRET),
        _ => false,
    };
    if query.get("access_token").map(String::as_str) != Some("robot-token") || !signed || !fresh {
        *d.bad_signs.lock().expect("lock") += 1;
        return Json(serde_json::json!({"errcode": 310000, "errmsg": "sign not match"}));
    }
    d.sends
        .lock()
        .expect("lock")
        .push(("/robot/send".into(), String::new(), body));
    Json(serde_json::json!({"errcode": 0, "errmsg": "ok"}))
}

async fn start_stand_in() -> (StandIn, String, tokio::task::JoinHandle<()>) {
    let d = StandIn::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let api = format!("http://{}", listener.local_addr().expect("addr"));
    let router = axum::Router::new()
        .route("/v1.0/gateway/connections/open", post(open))
        .route("/v1.0/oauth2/accessToken", post(token))
        .route("/v1.0/robot/groupMessages/send", post(robot_api))
        .route("/v1.0/robot/oToMessages/batchSend", post(robot_api))
        .route("/robot/sendBySession", post(session_hook))
        .route("/robot/send", post(custom_robot))
        .with_state(d.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (d, api, server)
}

/// The Stream gateway: each accepted connection whose ticket is one handed out and not
/// used yet is passed on with its ticket; others are refused in the handshake.
// The handshake callback's error type is tungstenite's, not ours to shrink.
#[allow(clippy::result_large_err)]
async fn start_gateway(
    d: StandIn,
) -> (
    String,
    tokio::sync::mpsc::Receiver<(String, WebSocketStream<TcpStream>)>,
    tokio::task::JoinHandle<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("ws://{}/connect", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let mut ticket = None;
            let handshake = tokio_tungstenite::accept_hdr_async(
                stream,
                |request: &Request, response: WsResponse| -> Result<WsResponse, ErrorResponse> {
                    let found =
                        query_pairs(request.uri().query().unwrap_or_default()).remove("ticket");
                    let good = found.as_ref().is_some_and(|t| {
                        d.tickets.lock().expect("lock").contains(t)
                            && !d.used.lock().expect("lock").contains(t)
                    });
                    if !good || request.uri().path() != "/connect" {
                        let mut refusal = ErrorResponse::new(Some("bad ticket".into()));
                        *refusal.status_mut() = StatusCode::UNAUTHORIZED;
                        return Err(refusal);
                    }
                    if let Some(t) = &found {
                        d.used.lock().expect("lock").push(t.clone());
                    }
                    ticket = found;
                    Ok(response)
                },
            )
            .await;
            if let (Ok(socket), Some(ticket)) = (handshake, ticket)
                && tx.send((ticket, socket)).await.is_err()
            {
                return;
            }
        }
    });
    (endpoint, rx, task)
}

/// The next text frame from the adapter, as JSON; pings and pongs are skipped.
async fn next_json(socket: &mut WebSocketStream<TcpStream>) -> serde_json::Value {
    let deadline = Duration::from_secs(10);
    loop {
        let frame = tokio::time::timeout(deadline, socket.next())
            .await
            .expect("a frame from the adapter in time")
            .expect("the socket is open")
            .expect("a frame");
        match frame {
            Message::Text(text) => return serde_json::from_str(text.as_str()).expect("json"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

async fn push(socket: &mut WebSocketStream<TcpStream>, frame: serde_json::Value) {
    socket
        .send(Message::text(frame.to_string()))
        .await
        .expect("send a frame");
}

fn system(topic: &str, message_id: &str, data: &str) -> serde_json::Value {
    serde_json::json!({
        "specVersion": "1.0",
        "type": "SYSTEM",
        "headers": {"contentType": "application/json", "messageId": message_id, "time": now_ms().to_string(), "topic": topic},
        "data": data,
    })
}

fn callback(message_id: &str, robot_message: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "specVersion": "1.0",
        "type": "CALLBACK",
        "headers": {
            "appId": "9256b875-17e5-46a8-890a-bf4246dc5349",
            "connectionId": "c3faec14-ebe9-11ed-8943-0ec429f1b9a1",
            "contentType": "application/json",
            "messageId": message_id,
            "time": now_ms().to_string(),
            "topic": ROBOT_TOPIC,
        },
        "data": robot_message.to_string(),
    })
}

struct Msg<'a> {
    id: &'a str,
    text: &'a str,
    group: Option<&'a str>,
    hook: String,
    expires_ms: u64,
}

/// A robot message as receive-message documents it.
fn robot_message(m: &Msg<'_>) -> serde_json::Value {
    let (kind, conversation) = match m.group {
        Some(group) => ("2", group.to_string()),
        None => ("1", "cidSINGLEe2e==".to_string()),
    };
    serde_json::json!({
        "conversationId": conversation,
        "atUsers": [{"dingtalkId": "$:LWCP_v1:$bot"}],
        "chatbotCorpId": "dinge8a565xxxx",
        "chatbotUserId": "$:LWCP_v1:$bot",
        "msgId": m.id,
        "senderNick": "李娜",
        "isAdmin": false,
        "senderStaffId": STAFF,
        "sessionWebhookExpiredTime": m.expires_ms,
        "createAt": now_ms(),
        "senderCorpId": "dinge8a565xxxx",
        "conversationType": kind,
        "senderId": "$:LWCP_v1:$sender",
        "conversationTitle": "值班群",
        "isInAtList": true,
        "sessionWebhook": m.hook,
        "text": {"content": format!(" {}", m.text)},
        "robotCode": CLIENT_ID,
        "msgtype": "text",
    })
}

/// `tapwire run` on `config`, the secrets in its environment only.
fn run(config: &Path) -> Tapwire {
    support::tapwire_config(
        config,
        &[(SECRET_VAR, SECRET), (ROBOT_SECRET_VAR, ROBOT_SECRET)],
    )
}

fn write_config(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("tapwire.toml");
    let text = format!(
        "[storage]\npath = {:?}\n{body}",
        dir.join("t.db").to_string_lossy()
    );
    std::fs::write(&path, text).expect("write config");
    path
}

async fn wait_until(
    what: &str,
    timeout: Duration,
    check: impl Fn() -> bool,
    log: impl Fn() -> String,
) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen; log: {}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn next_connection(
    rx: &mut tokio::sync::mpsc::Receiver<(String, WebSocketStream<TcpStream>)>,
    tapwire: &Tapwire,
) -> (String, WebSocketStream<TcpStream>) {
    match tokio::time::timeout(Duration::from_secs(20), rx.recv()).await {
        Ok(Some(connection)) => connection,
        _ => panic!("the adapter did not connect; log: {}", tapwire.log()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stream_mode_acks_answers_once_and_reconnects_with_a_new_ticket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (d, api, server) = start_stand_in().await;
    let (endpoint, mut connections, gateway) = start_gateway(d.clone()).await;
    *d.ws.lock().expect("lock") = endpoint;
    let config = write_config(
        dir.path(),
        &format!(
            r#"[adapters.ding]
type = "dingtalk"
client_id = "{CLIENT_ID}"
client_secret = "${{{SECRET_VAR}}}"
api_base = "{api}"
oapi_base = "{api}"
[[routes]]
event = "message.received"
handler = "echo"
"#
        ),
    );
    let mut tapwire = run(&config);

    // The first connection: opened with the app's credentials, subscribed to the robot.
    let (ticket, mut socket) = next_connection(&mut connections, &tapwire).await;
    assert_eq!(ticket, "ticket-1+/=");
    let opened = d.opens.lock().expect("lock")[0].clone();
    assert!(
        opened["subscriptions"]
            .as_array()
            .expect("subscriptions")
            .iter()
            .any(|s| s["type"] == "CALLBACK" && s["topic"] == ROBOT_TOPIC),
        "{opened}"
    );

    // A ping comes back with its own data.
    push(
        &mut socket,
        system("ping", "ping-1", r#"{"opaque":"5c1e"}"#),
    )
    .await;
    let pong = next_json(&mut socket).await;
    assert_eq!(pong["code"], 200);
    assert_eq!(pong["headers"]["messageId"], "ping-1");
    assert_eq!(pong["data"], r#"{"opaque":"5c1e"}"#);

    // A group message: acknowledged with its frame's messageId, echoed through the
    // session webhook.
    let hour = now_ms() + 3_600_000;
    let first = robot_message(&Msg {
        id: "msgE2E-1",
        text: "今天谁值班？",
        group: Some(GROUP),
        hook: format!("{api}/robot/sendBySession?session=g1"),
        expires_ms: hour,
    });
    push(&mut socket, callback("frame-1", &first)).await;
    let ack = next_json(&mut socket).await;
    assert_eq!(ack["code"], 200, "{ack}");
    assert_eq!(ack["headers"]["messageId"], "frame-1");
    assert_eq!(ack["headers"]["contentType"], "application/json");
    wait_until(
        "the answer through the session webhook",
        Duration::from_secs(20),
        || !d.sends_to("/robot/sendBySession").is_empty(),
        || tapwire.log(),
    )
    .await;
    // DingTalk delivers it again in another frame: acknowledged, not answered again.
    push(&mut socket, callback("frame-2", &first)).await;
    let ack = next_json(&mut socket).await;
    assert_eq!(
        (ack["code"].clone(), ack["headers"]["messageId"].clone()),
        (200.into(), "frame-2".into())
    );
    // Known by its msgId at the door, not only by the pipeline's own dedup.
    wait_until(
        "the redelivery recognised",
        Duration::from_secs(5),
        || tapwire.log().contains("a robot message seen before"),
        || tapwire.log(),
    )
    .await;

    // The socket drops: a new connection, opened with a new ticket.
    drop(socket);
    let (ticket, mut socket) = next_connection(&mut connections, &tapwire).await;
    assert_eq!(ticket, "ticket-2+/=");
    assert_eq!(d.opens.lock().expect("lock").len(), 2);

    // After the reconnect: a single chat and another group whose webhooks have expired
    // are answered through the robot API, with one token.
    let past = now_ms() - 60_000;
    let single = robot_message(&Msg {
        id: "msgE2E-2",
        text: "你好",
        group: None,
        hook: format!("{api}/robot/sendBySession?session=u-expired"),
        expires_ms: past,
    });
    push(&mut socket, callback("frame-3", &single)).await;
    assert_eq!(
        next_json(&mut socket).await["headers"]["messageId"],
        "frame-3"
    );
    let group_2 = robot_message(&Msg {
        id: "msgE2E-3",
        text: "在吗",
        group: Some(GROUP_2),
        hook: format!("{api}/robot/sendBySession?session=g2-expired"),
        expires_ms: past,
    });
    push(&mut socket, callback("frame-4", &group_2)).await;
    assert_eq!(
        next_json(&mut socket).await["headers"]["messageId"],
        "frame-4"
    );
    wait_until(
        "the answers through the robot API",
        Duration::from_secs(20),
        || d.sends_to("/v1.0/robot/").len() >= 2,
        || tapwire.log(),
    )
    .await;

    // DingTalk announces a disconnect: acknowledged, then a third connection.
    push(
        &mut socket,
        system(
            "disconnect",
            "disc-1",
            r#"{"reason":"persistent connection is timeout"}"#,
        ),
    )
    .await;
    let ack = next_json(&mut socket).await;
    assert_eq!(ack["headers"]["messageId"], "disc-1");
    let (ticket, mut socket) = next_connection(&mut connections, &tapwire).await;
    assert_eq!(ticket, "ticket-3+/=");

    tokio::time::sleep(Duration::from_secs(2)).await;
    let text = |t: &str| serde_json::json!({"msgtype": "text", "text": {"content": t}});
    assert_eq!(
        d.sends_to("/robot/sendBySession"),
        [(
            "/robot/sendBySession?session=g1".to_string(),
            String::new(),
            text("今天谁值班？")
        )],
        "answered once, through the webhook; log: {}",
        tapwire.log()
    );
    let mut api_sends = d.sends_to("/v1.0/robot/");
    api_sends.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        api_sends,
        [
            (
                "/v1.0/robot/groupMessages/send".to_string(),
                "tok-1".to_string(),
                serde_json::json!({
                    "robotCode": CLIENT_ID,
                    "openConversationId": GROUP_2,
                    "msgKey": "sampleText",
                    "msgParam": serde_json::json!({"content": "在吗"}).to_string(),
                })
            ),
            (
                "/v1.0/robot/oToMessages/batchSend".to_string(),
                "tok-1".to_string(),
                serde_json::json!({
                    "robotCode": CLIENT_ID,
                    "userIds": [STAFF],
                    "msgKey": "sampleText",
                    "msgParam": serde_json::json!({"content": "你好"}).to_string(),
                })
            ),
        ],
        "log: {}",
        tapwire.log()
    );
    assert_eq!(
        *d.token_fetches.lock().expect("lock"),
        1,
        "the token is cached"
    );
    assert_eq!(d.sends().len(), 3, "nothing else went out");

    // SIGTERM: the adapter closes its socket and tapwire exits cleanly.
    let pid = tapwire.child.id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the socket was not closed; log: {}",
        tapwire.log()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(status) = tapwire.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "tapwire did not stop; log: {}",
            tapwire.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "log: {}", tapwire.log());
    let log = tapwire.log();
    assert!(!log.contains(SECRET), "the secret is never logged");
    assert!(
        !log.contains("session=g1"),
        "session webhooks are not logged"
    );
    gateway.abort();
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http_mode_answers_signed_callbacks_and_refuses_forgeries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (d, api, server) = start_stand_in().await;
    let config = write_config(
        dir.path(),
        &format!(
            r#"[adapters.ding]
type = "dingtalk"
mode = "http"
client_id = "{CLIENT_ID}"
client_secret = "${{{SECRET_VAR}}}"
api_base = "{api}"
oapi_base = "{api}"
[adapters.ops]
type = "dingtalk_webhook"
url = "{api}/robot/send?access_token=robot-token"
secret = "${{{ROBOT_SECRET_VAR}}}"
[handlers.to-ops]
type = "forward"
target = "ops"
template = "[{{sender}}] {{text}}"
[[routes]]
event = "message.received"
conversation = "group:{GROUP}"
handler = "to-ops"
priority = 10
continue = true
[[routes]]
event = "message.received"
handler = "echo"
"#
        ),
    );
    let tapwire = run(&config);
    let url = format!("http://{}/callback/ding", tapwire.listen_addr());
    let client = reqwest::Client::new();
    let post = |body: String, ts: String, sign: String| {
        client
            .post(&url)
            .header("Content-Type", "application/json; charset=utf-8")
            .header("timestamp", ts)
            .header("sign", sign)
            .body(body)
            .send()
    };
    let message = |id: &str, text: &str| {
        robot_message(&Msg {
            id,
            text,
            group: Some(GROUP),
            hook: format!("{api}/robot/sendBySession?session=h1"),
            expires_ms: now_ms() + 3_600_000,
        })
        .to_string()
    };

    // Signed as DingTalk signs: 200 at once with no synchronous reply, then the answer
    // through the webhook and the forward through the signed custom robot.
    let ts = now_ms().to_string();
    let answer = post(
        message("msgH-1", "值班表"),
        ts.clone(),
        ding_sign(&ts, SECRET),
    )
    .await
    .expect("post");
    assert_eq!(answer.status(), 200, "log: {}", tapwire.log());
    assert_eq!(
        answer.json::<serde_json::Value>().await.expect("json"),
        serde_json::json!({"msgtype": "empty"})
    );

    // Forgeries: another secret, a sign of another time, two hours old, two hours ahead,
    // none at all. Each 401, none answered.
    let forged = message("msgH-2", "转账");
    let ts = now_ms().to_string();
    for (ts, sign) in [
        (ts.clone(), ding_sign(&ts, "not the secret")),
        (
            ts.clone(),
            ding_sign(&(now_ms() - 5_000).to_string(), SECRET),
        ),
        {
            let old = (now_ms() - 2 * 3_600_000).to_string();
            (old.clone(), ding_sign(&old, SECRET))
        },
        {
            let ahead = (now_ms() + 2 * 3_600_000).to_string();
            (ahead.clone(), ding_sign(&ahead, SECRET))
        },
    ] {
        let refused = post(forged.clone(), ts, sign).await.expect("post");
        assert_eq!(refused.status(), 401);
    }
    let unsigned = client.post(&url).body(forged).send().await.expect("post");
    assert_eq!(unsigned.status(), 401);

    wait_until(
        "the answer and the forward",
        Duration::from_secs(20),
        || d.sends().len() >= 2,
        || tapwire.log(),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let text = |t: &str| serde_json::json!({"msgtype": "text", "text": {"content": t}});
    let mut sends = d.sends();
    sends.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        sends,
        [
            (
                "/robot/send".to_string(),
                String::new(),
                text("[李娜] 值班表")
            ),
            (
                "/robot/sendBySession?session=h1".to_string(),
                String::new(),
                text("值班表")
            ),
        ],
        "nothing forged was answered; log: {}",
        tapwire.log()
    );
    assert_eq!(*d.bad_signs.lock().expect("lock"), 0);
    assert_eq!(*d.token_fetches.lock().expect("lock"), 0);
    let log = tapwire.log();
    assert!(log.contains("callback refused"), "{log}");
    assert!(
        !log.contains(SECRET) && !log.contains(ROBOT_SECRET),
        "no secret is logged"
    );
    drop(tapwire);
    server.abort();
}

/// `tapwire config check` names what is wrong with DingTalk sections.
#[test]
fn config_check_names_bad_dingtalk_sections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("broken.toml");
    std::fs::write(
        &path,
        "[adapters.ding]\ntype = \"dingtalk\"\nclient_id = \"dingx\"\nclient_secret = \"${TAPWIRE_TEST_SURELY_UNSET_DING_SECRET}\"\noapi_base = \"ftp://oapi\"\n[adapters.ops]\ntype = \"dingtalk_webhook\"\nurl = \"https://oapi.dingtalk.com/robot/send\"\n",
    )
    .expect("write");
    let (ok, out) = support::tapwire_once(
        &["config", "check", &path.to_string_lossy()],
        Duration::from_secs(30),
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("TAPWIRE_TEST_SURELY_UNSET_DING_SECRET"),
        "{out}"
    );
    assert!(out.contains("oapi_base must be http or https"), "{out}");
    assert!(out.contains("access_token"), "{out}");
}
