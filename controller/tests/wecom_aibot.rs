//! End to end for the WeCom AI bot: the real `tapwire` binary with two `wecom_aibot`
//! adapters (no phone), fed callbacks encrypted and signed as WeCom does (JSON, receive
//! id ""), answered with encrypted streams that WeCom's refreshes watch grow; a late
//! answer goes to a loopback stand-in for the messages' `response_url`.

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Query, State};
use axum::routing::post;
use serde_json::{Value, json};
use tapwire::adapter::wecom_crypto::WeComCrypto;

const TOKEN: &str = "aibot-token";
// 43 characters of base64, as the bot's settings page hands out.
const KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const KEY_VAR: &str = "TAPWIRE_TEST_WECOM_AIBOT_KEY";
const BOT_ID: &str = "aib-test-1";
const WELCOME: &str = "你好，我是值班助手。";
const PIECES: [&str; 3] = ["第一段，", "第二段，", "第三段。"];

/// What the stand-in for `response_url`s got: (response_code, body).
#[derive(Clone, Default)]
struct ResponseUrls(Arc<Mutex<Vec<(String, Value)>>>);

async fn respond(
    State(posts): State<ResponseUrls>,
    Query(query): Query<HashMap<String, String>>,
    Json(body): Json<Value>,
) -> Json<Value> {
    let code = query.get("response_code").cloned().unwrap_or_default();
    posts.0.lock().expect("lock").push((code, body));
    Json(json!({"errcode": 0, "errmsg": "ok"}))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// Percent-encodes a query value as WeCom does (base64's `+`, `/`, `=` escaped).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn write_config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("tapwire.toml");
    let text = format!(
        r#"[storage]
path = {db:?}
[adapters.bot]
type = "wecom_aibot"
token = "{TOKEN}"
encoding_aes_key = "${{{KEY_VAR}}}"
aibot_id = "{BOT_ID}"
welcome = "{WELCOME}"
# Answers after a second miss the stream and go through the response_url.
[adapters.late]
type = "wecom_aibot"
token = "{TOKEN}"
encoding_aes_key = "${{{KEY_VAR}}}"
stream_secs = 1
[handlers.typing]
type = "pieces"
pieces = {pieces:?}
interval_ms = 400
[handlers.slow]
type = "pieces"
pieces = ["迟到的", "回答"]
interval_ms = 1500
[[routes]]
event = "message.received"
source = "bot"
handler = "typing"
[[routes]]
event = "message.received"
source = "late"
handler = "slow"
continue = true
[[routes]]
event = "message.received"
source = "late"
handler = "echo"
"#,
        db = dir.join("t.db").to_string_lossy(),
        pieces = PIECES,
    );
    std::fs::write(&path, text).expect("write config");
    path
}

/// WeCom's side of the conversation: callbacks sealed as it seals them, replies opened
/// and checked as it would.
struct WeCom {
    crypto: WeComCrypto,
    client: reqwest::Client,
    nonces: u32,
}

/// A callback's HTTP answer.
struct Reply {
    status: u16,
    body: String,
}

impl WeCom {
    /// Posts `plain` to `url` as WeCom does, signed at `timestamp`.
    async fn post_at(&mut self, url: &str, plain: &Value, timestamp: u64) -> (Reply, String) {
        self.nonces += 1;
        let nonce = format!("{}", 1_372_623_100 + self.nonces);
        let sealed = self
            .crypto
            .encrypt(&plain.to_string(), &timestamp.to_string(), &nonce)
            .expect("encrypt");
        let query = format!(
            "msg_signature={}&timestamp={}&nonce={}",
            sealed.signature, sealed.timestamp, sealed.nonce
        );
        let body = json!({"encrypt": sealed.encrypt}).to_string();
        (self.send(url, &query, &body).await, nonce)
    }

    async fn send(&self, url: &str, query: &str, body: &str) -> Reply {
        let answer = self
            .client
            .post(format!("{url}?{query}"))
            .body(body.to_string())
            .send()
            .await
            .expect("post");
        Reply {
            status: answer.status().as_u16(),
            body: answer.text().await.expect("body"),
        }
    }

    /// Posts, and opens the encrypted reply: it must be signed over our nonce.
    async fn call(&mut self, url: &str, plain: &Value) -> Value {
        let (reply, nonce) = self.post_at(url, plain, now_secs()).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        self.open(&reply.body, &nonce)
    }

    fn open(&self, body: &str, nonce: &str) -> Value {
        let envelope: Value = serde_json::from_str(body).expect("a JSON envelope");
        let field = |name: &str| envelope[name].as_str().expect(name).to_string();
        assert_eq!(
            field("nonce"),
            nonce,
            "101033: the reply uses the callback's nonce"
        );
        let plain = self
            .crypto
            .decrypt(
                &field("msgsignature"),
                &field("timestamp"),
                &field("nonce"),
                &field("encrypt"),
            )
            .expect("signed and encrypted for us");
        serde_json::from_str(&plain).expect("JSON inside")
    }
}

/// A member's text message, as 100719 shows it.
fn text_message(msgid: &str, from: &str, text: &str, response_url: &str) -> Value {
    json!({
        "msgid": msgid,
        "aibotid": BOT_ID,
        "chattype": "single",
        "from": {"userid": from},
        "response_url": response_url,
        "msgtype": "text",
        "text": {"content": text},
    })
}

fn refresh(msgid: &str, from: &str, stream: &str) -> Value {
    json!({
        "msgid": msgid,
        "aibotid": BOT_ID,
        "chattype": "single",
        "from": {"userid": from},
        "msgtype": "stream",
        "stream": {"id": stream},
    })
}

/// Events the runtime has handled to the end (routes or none), from `/healthz`.
async fn handled(client: &reqwest::Client, health: &str) -> u64 {
    let body: Value = client
        .get(health)
        .send()
        .await
        .expect("healthz")
        .json()
        .await
        .expect("json");
    body["events_handled"].as_u64().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ai_bot_streams_its_answer_and_sends_a_late_one_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let posts = ResponseUrls::default();
    let app = axum::Router::new()
        .route("/cgi-bin/aibot/response", post(respond))
        .with_state(posts.clone());
    let (stand_in, server) = support::serve(app).await;
    let response_url =
        |code: &str| format!("{stand_in}/cgi-bin/aibot/response?response_code={code}");

    let config = write_config(dir.path());
    // The key reaches the child through its environment only (`${VAR}` in the config).
    let tapwire = support::tapwire_config(&config, &[(KEY_VAR, KEY)]);
    let addr = tapwire.listen_addr();
    let bot = format!("http://{addr}/callback/bot");
    let late = format!("http://{addr}/callback/late");
    let health = format!("http://{addr}/healthz");
    let client = reqwest::Client::new();
    let mut wecom = WeCom {
        crypto: WeComCrypto::new(TOKEN, KEY, "").expect("crypto"),
        client: client.clone(),
        nonces: 0,
    };

    // URL verification: the echostr comes URL-encoded, and is answered decrypted.
    let echo = "4215738826941337161";
    let sealed = wecom
        .crypto
        .encrypt(echo, &now_secs().to_string(), "263014780")
        .expect("encrypt");
    let verify = client
        .get(format!(
            "{bot}?msg_signature={}&timestamp={}&nonce={}&echostr={}",
            sealed.signature,
            sealed.timestamp,
            sealed.nonce,
            encode(&sealed.encrypt)
        ))
        .send()
        .await
        .expect("verify");
    assert_eq!(verify.status(), 200, "log: {}", tapwire.log());
    assert_eq!(verify.text().await.expect("text"), echo);

    // A message: answered at once with a new stream.
    let message = text_message("msg-1", "zhangsan", "今天谁值班？", &response_url("c1"));
    let first = wecom.call(&bot, &message).await;
    assert_eq!(first["msgtype"], "stream", "{first}");
    let stream = first["stream"]["id"]
        .as_str()
        .expect("stream id")
        .to_string();
    assert!(!stream.is_empty());
    assert_eq!(first["stream"]["finish"], false, "{first}");

    // WeCom's refreshes watch the answer grow until it is finished.
    let whole = PIECES.concat();
    let mut seen: Vec<String> = vec![first["stream"]["content"].as_str().expect("content").into()];
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut refreshes = 0;
    loop {
        assert!(
            Instant::now() < deadline,
            "never finished: {seen:?}; log: {}",
            tapwire.log()
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
        refreshes += 1;
        let shown = wecom
            .call(
                &bot,
                &refresh(&format!("r-{refreshes}"), "zhangsan", &stream),
            )
            .await;
        assert_eq!(shown["msgtype"], "stream");
        assert_eq!(shown["stream"]["id"], stream.as_str());
        let content = shown["stream"]["content"]
            .as_str()
            .expect("content")
            .to_string();
        if seen.last() != Some(&content) {
            seen.push(content);
        }
        if shown["stream"]["finish"] == true {
            break;
        }
    }
    assert_eq!(seen.last(), Some(&whole), "{seen:?}");
    for pair in seen.windows(2) {
        assert!(
            pair[1].starts_with(&pair[0]),
            "content only grows: {seen:?}"
        );
    }
    let growing = seen
        .iter()
        .filter(|c| !c.is_empty() && **c != whole)
        .count();
    assert!(
        growing >= 2,
        "the answer showed as it was written: {seen:?}"
    );

    // WeCom sends the same message again: the same stream, not a second answer.
    let routed = handled(&client, &health).await;
    let again = wecom.call(&bot, &message).await;
    assert_eq!(again["stream"]["id"], stream.as_str(), "{again}");
    assert_eq!(again["stream"]["finish"], true);
    assert_eq!(again["stream"]["content"], whole.as_str());

    // Forged, stale or for another bot: refused or ignored, nothing routed.
    let forged = text_message("msg-forged", "mallory", "伪造", &response_url("cf"));
    let sealed = wecom
        .crypto
        .encrypt(&forged.to_string(), &now_secs().to_string(), "1")
        .expect("encrypt");
    let refused = wecom
        .send(
            &bot,
            &format!(
                "msg_signature={}&timestamp={}&nonce=1",
                "0".repeat(40),
                sealed.timestamp
            ),
            &json!({"encrypt": sealed.encrypt}).to_string(),
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let (stale, _) = wecom
        .post_at(
            &bot,
            &text_message("msg-old", "zhangsan", "旧", &response_url("co")),
            now_secs() - 3600,
        )
        .await;
    assert_eq!(stale.status, 403, "{}", stale.body);
    assert_eq!(stale.body, "stale timestamp");
    let mut other_bot = text_message("msg-other", "zhangsan", "别的机器人", &response_url("cx"));
    other_bot["aibotid"] = "aib-someone-else".into();
    let (ignored, _) = wecom.post_at(&bot, &other_bot, now_secs()).await;
    assert_eq!((ignored.status, ignored.body.as_str()), (200, ""));

    // A member opens the chat: welcomed in the callback's reply (101031 回复欢迎语).
    let entered = json!({
        "msgid": "enter-1",
        "create_time": now_secs(),
        "aibotid": BOT_ID,
        "from": {"userid": "zhangsan"},
        "msgtype": "event",
        "event": {"eventtype": "enter_chat"},
    });
    let welcome = wecom.call(&bot, &entered).await;
    assert_eq!(
        welcome,
        json!({"msgtype": "text", "text": {"content": WELCOME}})
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        handled(&client, &health).await,
        routed + 1,
        "only enter_chat was routed; log: {}",
        tapwire.log()
    );

    // An answer slower than its stream: the stream closes saying so, and the answer (both
    // routes' parts) goes through the response_url, once.
    let message = text_message("late-1", "lisi", "晚点回答我", &response_url("c2"));
    let first = wecom.call(&late, &message).await;
    let late_stream = first["stream"]["id"]
        .as_str()
        .expect("stream id")
        .to_string();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let closed = wecom
        .call(&late, &refresh("r-late", "lisi", &late_stream))
        .await;
    assert_eq!(closed["stream"]["finish"], true, "{closed}");
    assert_eq!(closed["stream"]["content"], "收到，正在处理…");
    let deadline = Instant::now() + Duration::from_secs(15);
    while posts.0.lock().expect("lock").is_empty() {
        assert!(
            Instant::now() < deadline,
            "no late answer; log: {}",
            tapwire.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = posts.0.lock().expect("lock").clone();
    assert_eq!(
        got,
        [(
            "c2".to_string(),
            json!({"msgtype": "markdown", "markdown": {"content": "迟到的回答\n\n晚点回答我"}})
        )],
        "one post, to the late message's response_url only; log: {}",
        tapwire.log()
    );

    let log = tapwire.log();
    assert!(log.contains("callback refused"), "{log}");
    assert!(log.contains("callback for another bot"), "{log}");
    assert!(!log.contains(KEY), "the key is never logged");
    assert!(
        !log.contains("response_code=c2"),
        "a response_url's code is never logged"
    );
    drop(tapwire);
    server.abort();
}

/// `tapwire config check` names what is wrong with a `wecom_aibot` section.
#[test]
fn config_check_names_a_bad_key_and_a_stream_window_too_long() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("broken.toml");
    std::fs::write(
        &path,
        format!(
            "[adapters.bot]\ntype = \"wecom_aibot\"\ntoken = \"{TOKEN}\"\nencoding_aes_key = \"tooshort\"\n\
             [adapters.slow]\ntype = \"wecom_aibot\"\ntoken = \"{TOKEN}\"\nencoding_aes_key = \"{KEY}\"\nstream_secs = 400\n\
             [handlers.typing]\ntype = \"pieces\"\npieces = []\n"
        ),
    )
    .expect("write");
    let path = path.to_string_lossy().to_string();
    let (ok, out) = support::tapwire_once(&["config", "check", &path], Duration::from_secs(30));
    assert!(!ok, "{out}");
    assert!(
        out.contains("encoding_aes_key must be 43 characters"),
        "{out}"
    );
    assert!(out.contains("stream_secs must be 1 to 350"), "{out}");
    assert!(out.contains("pieces must hold some text"), "{out}");
}
