//! End to end for Feishu/Lark: the real `tapwire run` binary (platforms only, no phone)
//! with a `feishu` adapter whose open API is a loopback stand-in for open.feishu.cn, and
//! a `feishu_webhook` custom bot posting to the same stand-in. Callbacks are encrypted
//! and signed as Feishu does; the signature and the custom bot's sign are computed here
//! with sha2/hmac directly, not with the adapter's own code.

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use tapwire::adapter::feishu::crypto::EventCrypto;

const APP_ID: &str = "cli_e2e0123456789";
const VTOKEN: &str = "e2e-verification-token";
const SECRET_VAR: &str = "TAPWIRE_TEST_FEISHU_APP_SECRET";
const SECRET: &str = "e2e-app-secret";
const KEY_VAR: &str = "TAPWIRE_TEST_FEISHU_ENCRYPT_KEY";
const KEY: &str = "e2e-encrypt-key";
const HOOK_SECRET_VAR: &str = "TAPWIRE_TEST_FEISHU_HOOK_SECRET";
const HOOK_SECRET: &str = "e2e-hook-secret";
const BOT_OPEN_ID: &str = "ou_e2ebot";

/// What the stand-in was asked: token fetches, message sends (Authorization, query,
/// body), custom-bot posts (body, whether the sign held).
#[derive(Clone, Default)]
struct OpenFeishu {
    token_fetches: Arc<Mutex<u32>>,
    sends: Arc<Mutex<Vec<(String, String, serde_json::Value)>>>,
    hook_posts: Arc<Mutex<Vec<(serde_json::Value, bool)>>>,
}

async fn tenant_token(
    State(api): State<OpenFeishu>,
    Json(body): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    if body["app_id"] != APP_ID || body["app_secret"] != SECRET {
        return Json(serde_json::json!({"code": 10014, "msg": "app secret invalid"}));
    }
    *api.token_fetches.lock().expect("lock") += 1;
    Json(
        serde_json::json!({"code": 0, "msg": "ok", "tenant_access_token": "t-e2e-token", "expire": 7200}),
    )
}

fn authorization(headers: &HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

async fn bot_info(headers: HeaderMap) -> Json<serde_json::Value> {
    if authorization(&headers) != "Bearer t-e2e-token" {
        return Json(serde_json::json!({"code": 99991663, "msg": "Invalid access token"}));
    }
    Json(
        serde_json::json!({"code": 0, "msg": "ok", "bot": {"app_name": "Tapwire", "open_id": BOT_OPEN_ID}}),
    )
}

async fn messages(
    State(api): State<OpenFeishu>,
    headers: HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    Json(body): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    let token = authorization(&headers);
    let ok = token == "Bearer t-e2e-token";
    api.sends
        .lock()
        .expect("lock")
        .push((token, query.unwrap_or_default(), body));
    Json(if ok {
        serde_json::json!({"code": 0, "msg": "success", "data": {"message_id": "om_sent"}})
    } else {
        serde_json::json!({"code": 99991663, "msg": "Invalid access token for authorization"})
    })
}

/// The custom bot's sign, as 自定义机器人使用指南 defines it.
fn hook_sign(timestamp: &str, secret: &str) -> String {
    let mac = <Hmac<Sha256> as Mac>::new_from_slice(format!("{timestamp}\n{secret}").as_bytes())
        .expect("hmac key");
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

async fn hook(
    State(api): State<OpenFeishu>,
    Json(body): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    let timestamp = body["timestamp"].as_str().unwrap_or_default().to_string();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("now")
        .as_secs();
    let fresh = timestamp
        .parse::<u64>()
        .is_ok_and(|ts| now.abs_diff(ts) < 3600);
    let signed = fresh && body["sign"] == hook_sign(&timestamp, HOOK_SECRET);
    api.hook_posts.lock().expect("lock").push((body, signed));
    Json(if signed {
        serde_json::json!({"code": 0, "data": {}, "msg": "success"})
    } else {
        serde_json::json!({"code": 19021, "data": {}, "msg": "sign match fail or timestamp is not within one hour from current time"})
    })
}

fn write_config(dir: &Path, api: &str) -> PathBuf {
    let path = dir.join("tapwire.toml");
    let text = format!(
        r#"[storage]
path = {db:?}
[adapters.lark]
type = "feishu"
app_id = "{APP_ID}"
app_secret = "${{{SECRET_VAR}}}"
verification_token = "{VTOKEN}"
encrypt_key = "${{{KEY_VAR}}}"
base_url = "{api}"
[adapters.ops]
type = "feishu_webhook"
url = "{api}/open-apis/bot/v2/hook/e2e-hook-token"
secret = "${{{HOOK_SECRET_VAR}}}"
[[routes]]
event = "message.received"
conversation = "oc_project"
handler = "to-ops"
continue = true
[[routes]]
event = "message.received"
handler = "echo"
[handlers.to-ops]
type = "forward"
target = "ops"
template = "[{{conversation}}] {{text}}"
"#,
        db = dir.join("t.db").to_string_lossy(),
    );
    std::fs::write(&path, text).expect("write config");
    path
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("now")
        .as_secs()
}

/// An `im.message.receive_v1` push as Feishu sends it: the encrypted body and its
/// signature headers at `timestamp`. Group messages start with the bot's @-mention.
fn push(
    message_id: &str,
    chat_id: &str,
    chat_type: &str,
    text: &str,
    timestamp: u64,
) -> (String, Vec<(&'static str, String)>) {
    let (content, mentions) = if chat_type == "group" {
        (
            format!("@_user_1 {text}"),
            serde_json::json!([{"key": "@_user_1", "id": {"open_id": BOT_OPEN_ID}, "name": "Tapwire", "tenant_key": "tk"}]),
        )
    } else {
        (text.to_string(), serde_json::Value::Null)
    };
    let event = serde_json::json!({
        "schema": "2.0",
        "header": {
            "event_id": format!("evt-{message_id}"),
            "event_type": "im.message.receive_v1",
            "create_time": "1764500000000",
            "token": VTOKEN,
            "app_id": APP_ID,
            "tenant_key": "tk"
        },
        "event": {
            "sender": {"sender_id": {"open_id": "ou_lina", "union_id": "on_lina", "user_id": "lina"}, "sender_type": "user", "tenant_key": "tk"},
            "message": {
                "message_id": message_id,
                "create_time": "1764500000000",
                "chat_id": chat_id,
                "chat_type": chat_type,
                "message_type": "text",
                "content": serde_json::json!({"text": content}).to_string(),
                "mentions": mentions
            }
        }
    })
    .to_string();
    let encrypt = EventCrypto::new(KEY).encrypt(&event).expect("encrypt");
    let body = serde_json::json!({ "encrypt": encrypt }).to_string();
    let timestamp = timestamp.to_string();
    let nonce = format!("nonce-{message_id}-{}", fastrand::u32(..));
    // X-Lark-Signature = hex(sha256(timestamp + nonce + encrypt_key + body)).
    let mut hasher = Sha256::new();
    hasher.update(format!("{timestamp}{nonce}{KEY}").as_bytes());
    hasher.update(body.as_bytes());
    let signature = hex::encode(hasher.finalize());
    (
        body,
        vec![
            ("X-Lark-Request-Timestamp", timestamp),
            ("X-Lark-Request-Nonce", nonce),
            ("X-Lark-Signature", signature),
        ],
    )
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    body: &str,
    headers: &[(&'static str, String)],
) -> (u16, String) {
    let mut request = client
        .post(url)
        .header("content-type", "application/json; charset=utf-8")
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.expect("post");
    let status = response.status().as_u16();
    (status, response.text().await.expect("text"))
}

/// Events the runtime has handled or found no route for, from `/healthz`.
async fn handled(client: &reqwest::Client, health: &str) -> u64 {
    let body: serde_json::Value = client
        .get(health)
        .send()
        .await
        .expect("healthz")
        .json()
        .await
        .expect("json");
    body["events_handled"].as_u64().unwrap_or_default()
        + body["events_unmatched"].as_u64().unwrap_or_default()
}

async fn wait_for(count: impl Fn() -> usize, want: usize, timeout: Duration) -> usize {
    let deadline = Instant::now() + timeout;
    loop {
        let n = count();
        if n >= want || Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn feishu_messages_are_verified_answered_once_and_forwarded_to_a_signed_custom_bot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = OpenFeishu::default();
    let stand_in = axum::Router::new()
        .route(
            "/open-apis/auth/v3/tenant_access_token/internal",
            post_route(tenant_token),
        )
        .route("/open-apis/bot/v3/info", get(bot_info))
        .route("/open-apis/im/v1/messages", post_route(messages))
        .route("/open-apis/bot/v2/hook/e2e-hook-token", post_route(hook))
        .with_state(api.clone());
    let (api_url, server) = support::serve(stand_in).await;
    let config = write_config(dir.path(), &api_url);
    // Secrets reach the child through its environment only (`${VAR}` in the config).
    let tapwire = support::tapwire_config(
        &config,
        &[
            (SECRET_VAR, SECRET),
            (KEY_VAR, KEY),
            (HOOK_SECRET_VAR, HOOK_SECRET),
        ],
    );
    let addr = tapwire.listen_addr();
    let callback = format!("http://{addr}/callback/lark");
    let health = format!("http://{addr}/healthz");
    let client = reqwest::Client::new();
    let sends = || api.sends.lock().expect("lock").len();

    // The URL check: encrypted, unsigned (Feishu signs events only), answered in JSON.
    let crypto = EventCrypto::new(KEY);
    let challenge = serde_json::json!({"encrypt": crypto.encrypt(&format!(
        r#"{{"challenge":"6f9b1c2e-e2e","token":"{VTOKEN}","type":"url_verification"}}"#
    )).expect("encrypt")})
    .to_string();
    let (status, text) = post(&client, &callback, &challenge, &[]).await;
    assert_eq!(status, 200, "log: {}", tapwire.log());
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&text).expect("json"),
        serde_json::json!({"challenge": "6f9b1c2e-e2e"})
    );

    // A group message to the bot: acknowledged at once, answered through im/v1/messages.
    let (body, headers) = push("om_e2e_1", "oc_team", "group", "今天谁值班？", now_secs());
    let started = Instant::now();
    let (status, text) = post(&client, &callback, &body, &headers).await;
    assert_eq!(
        (status, text.as_str()),
        (200, r#"{"msg":"success"}"#),
        "log: {}",
        tapwire.log()
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        wait_for(sends, 1, Duration::from_secs(30)).await,
        1,
        "log: {}",
        tapwire.log()
    );
    let handled_before = handled(&client, &health).await;

    // Feishu's redelivery of the same message (signed anew): acknowledged, not routed.
    let (body, headers) = push("om_e2e_1", "oc_team", "group", "今天谁值班？", now_secs());
    assert_eq!(post(&client, &callback, &body, &headers).await.0, 200);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        handled(&client, &health).await,
        handled_before,
        "the redelivery was routed again; log: {}",
        tapwire.log()
    );

    // A private message: the second answer, with the same cached token.
    let (body, headers) = push("om_e2e_2", "oc_dm", "p2p", "second question", now_secs());
    assert_eq!(post(&client, &callback, &body, &headers).await.0, 200);
    assert_eq!(
        wait_for(sends, 2, Duration::from_secs(30)).await,
        2,
        "log: {}",
        tapwire.log()
    );

    // Forgeries: a bad signature, a stale timestamp, no signature at all. Refused, and
    // nothing goes out for them.
    let (body, mut headers) = push("om_e2e_3", "oc_dm", "p2p", "forged", now_secs());
    headers[2].1 = "0".repeat(64);
    let (status, _) = post(&client, &callback, &body, &headers).await;
    assert_eq!(status, 401);
    let (body, headers) = push(
        "om_e2e_4",
        "oc_dm",
        "p2p",
        "replayed",
        now_secs() - 24 * 3600,
    );
    assert_eq!(post(&client, &callback, &body, &headers).await.0, 401);
    let (body, _) = push("om_e2e_5", "oc_dm", "p2p", "unsigned", now_secs());
    assert_eq!(post(&client, &callback, &body, &[]).await.0, 401);

    // A message in the project chat: echoed, and forwarded to the custom bot, signed.
    let (body, headers) = push(
        "om_e2e_6",
        "oc_project",
        "group",
        "明天十点开会",
        now_secs(),
    );
    assert_eq!(post(&client, &callback, &body, &headers).await.0, 200);
    let hook_posts = || api.hook_posts.lock().expect("lock").len();
    assert_eq!(
        wait_for(hook_posts, 1, Duration::from_secs(30)).await,
        1,
        "log: {}",
        tapwire.log()
    );
    assert_eq!(wait_for(sends, 3, Duration::from_secs(30)).await, 3);
    tokio::time::sleep(Duration::from_secs(2)).await;

    let sends = api.sends.lock().expect("lock").clone();
    let expected = |chat: &str, text: &str| {
        (
            "Bearer t-e2e-token".to_string(),
            "receive_id_type=chat_id".to_string(),
            chat.to_string(),
            serde_json::json!({"text": text}).to_string(),
        )
    };
    let seen: Vec<(String, String, String, String)> = sends
        .iter()
        .map(|(token, query, body)| {
            assert_eq!(body["msg_type"], "text", "{body}");
            let uuid = body["uuid"].as_str().unwrap_or_default();
            assert!(!uuid.is_empty() && uuid.len() <= 50, "{body}");
            (
                token.clone(),
                query.clone(),
                body["receive_id"].as_str().unwrap_or_default().to_string(),
                body["content"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            expected("oc_team", "今天谁值班？"),
            expected("oc_dm", "second question"),
            expected("oc_project", "明天十点开会"),
        ],
        "one answer per message, the bot's mention taken out; log: {}",
        tapwire.log()
    );
    assert_eq!(
        *api.token_fetches.lock().expect("lock"),
        1,
        "the tenant token is fetched once and cached"
    );
    let posts = api.hook_posts.lock().expect("lock").clone();
    assert_eq!(posts.len(), 1);
    let (hook_body, signed) = &posts[0];
    assert!(signed, "the custom bot's sign did not verify: {hook_body}");
    assert_eq!(hook_body["msg_type"], "text");
    assert_eq!(hook_body["content"]["text"], "[oc_project] 明天十点开会");

    let log = tapwire.log();
    assert!(log.contains("callback refused"), "{log}");
    assert!(log.contains("stale X-Lark-Request-Timestamp"), "{log}");
    for secret in [
        SECRET,
        KEY,
        HOOK_SECRET,
        VTOKEN,
        "e2e-hook-token",
        "t-e2e-token",
    ] {
        assert!(!log.contains(secret), "{secret} was logged");
    }
    drop(tapwire);
    server.abort();
}

fn post_route<H, T>(handler: H) -> axum::routing::MethodRouter<OpenFeishu>
where
    H: axum::handler::Handler<T, OpenFeishu>,
    T: 'static,
{
    axum::routing::post(handler)
}

/// `tapwire config check` names what is wrong with `feishu` sections, and the secrets
/// may stay in the environment.
#[test]
fn config_check_names_an_empty_encrypt_key_a_bad_hook_and_an_unset_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("broken.toml");
    std::fs::write(
        &path,
        format!(
            "[adapters.lark]\ntype = \"feishu\"\napp_id = \"{APP_ID}\"\napp_secret = \"${{TAPWIRE_TEST_SURELY_UNSET_FEISHU_SECRET}}\"\nverification_token = \"{VTOKEN}\"\nencrypt_key = \"\"\n[adapters.ops]\ntype = \"feishu_webhook\"\nurl = \"https://open.feishu.cn/open-apis/im/v1/messages\"\n"
        ),
    )
    .expect("write");
    let path = path.to_string_lossy().to_string();
    let (ok, out) = support::tapwire_once(&["config", "check", &path], Duration::from_secs(30));
    assert!(!ok, "{out}");
    assert!(out.contains("encrypt_key must not be empty"), "{out}");
    assert!(out.contains("not a custom bot's webhook"), "{out}");
    assert!(
        out.contains("TAPWIRE_TEST_SURELY_UNSET_FEISHU_SECRET"),
        "{out}"
    );
    assert!(out.contains("3 error(s)"), "{out}");
}
