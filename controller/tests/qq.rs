//! End to end for the QQ official bot in webhook mode: the real `tapwire run` with a `qq`
//! adapter whose token and message endpoints are a loopback stand-in for bots.qq.com and
//! api.sgroup.qq.com, fed callbacks signed as QQ signs them (Ed25519 from the bot secret,
//! derived here independently of the adapter's code). The bot is event-emit.md's example
//! (app id 11111111, secret DG5g3B4j9X2KOErG), so its documented op 13 answer must come
//! back byte for byte. Group messages go to a slow webhook (acknowledged at 5 s, answered
//! later: two replies to one message), everything else to the built-in echo.

mod support;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Json;
use axum::extract::{Path as UrlPath, State};
use axum::http::HeaderMap;
use axum::routing::post;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier};

const APP_ID: &str = "11111111";
const SECRET: &str = "DG5g3B4j9X2KOErG";
const SECRET_VAR: &str = "TAPWIRE_TEST_QQ_SECRET";
const GROUP: &str = "C9F778FE6ADF9D1D1DBE395BF744A33A";
const MEMBER: &str = "E4F4AEA33253A2797FB897C50B81D7ED";
const USER: &str = "7D3AC1F0B5E24E8C9A61F0D2B3C4E5F6";
/// What the slow webhook answers, after the adapter's 5 s acknowledgement.
const LATE_ANSWER: &str = "今天值班的是李娜";
const ACK_TEXT: &str = "收到，正在处理…";

/// sign.md: the secret repeated to 32 bytes is the Ed25519 seed.
fn signing_key() -> SigningKey {
    let seed: Vec<u8> = SECRET.bytes().cycle().take(32).collect();
    SigningKey::from_bytes(&seed.try_into().expect("32 bytes"))
}

/// What the stand-in got: (Authorization, path, body) per send; token fetches; webhook
/// calls.
#[derive(Clone, Default)]
struct StandIn {
    sends: Arc<Mutex<Vec<(String, String, serde_json::Value)>>>,
    token_fetches: Arc<Mutex<u32>>,
    hook_calls: Arc<Mutex<u32>>,
}

impl StandIn {
    fn sends(&self) -> Vec<(String, String, serde_json::Value)> {
        self.sends.lock().expect("lock").clone()
    }
}

async fn token(
    State(qq): State<StandIn>,
    Json(body): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    if body != serde_json::json!({"appId": APP_ID, "clientSecret": SECRET}) {
        return Json(serde_json::json!({"code": 100016, "message": "invalid appid or secret"}));
    }
    *qq.token_fetches.lock().expect("lock") += 1;
    // api-use.md's example: expires_in is a string.
    Json(serde_json::json!({"access_token": "tok-1", "expires_in": "7200"}))
}

async fn send(
    State(qq): State<StandIn>,
    UrlPath((kind, id)): UrlPath<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    qq.sends
        .lock()
        .expect("lock")
        .push((auth, format!("{kind}/{id}"), body));
    Json(serde_json::json!({"id": "sent-1", "timestamp": 1764500000}))
}

/// The group's handler: slower than the 5 s after which the sender is acknowledged.
async fn slow_hook(State(qq): State<StandIn>) -> Json<serde_json::Value> {
    *qq.hook_calls.lock().expect("lock") += 1;
    tokio::time::sleep(Duration::from_secs(6)).await;
    Json(serde_json::json!({"actions": [{"action": "reply", "text": LATE_ANSWER}]}))
}

fn write_config(dir: &Path, api: &str) -> std::path::PathBuf {
    let path = dir.join("tapwire.toml");
    let text = format!(
        r#"[storage]
path = {db:?}
[adapters.qq]
type = "qq"
app_id = {APP_ID}
app_secret = "${{{SECRET_VAR}}}"
api_base = "{api}"
token_url = "{api}/app/getAppAccessToken"
[handlers.slow]
type = "webhook"
url = "{api}/hook"
timeout_ms = 20000
[[routes]]
event = "message.received"
conversation = "group:{GROUP}"
handler = "slow"
priority = 10
[[routes]]
event = "message.received"
handler = "echo"
"#,
        db = dir.join("t.db").to_string_lossy(),
    );
    std::fs::write(&path, text).expect("write config");
    path
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn dispatch(t: &str, d: serde_json::Value) -> String {
    serde_json::json!({"id": format!("{t}:{}", d["id"].as_str().unwrap_or_default()), "op": 0, "t": t, "d": d})
        .to_string()
}

fn group_message(id: &str, text: &str) -> String {
    dispatch(
        "GROUP_AT_MESSAGE_CREATE",
        serde_json::json!({
            "id": id,
            "content": format!(" {text}"),
            "group_openid": GROUP,
            "author": {"member_openid": MEMBER},
            "timestamp": humantime::format_rfc3339(SystemTime::now()).to_string(),
        }),
    )
}

fn c2c_message(id: &str, text: &str) -> String {
    dispatch(
        "C2C_MESSAGE_CREATE",
        serde_json::json!({
            "id": id,
            "content": text,
            "author": {"user_openid": USER},
            "timestamp": humantime::format_rfc3339(SystemTime::now()).to_string(),
        }),
    )
}

struct Qq {
    client: reqwest::Client,
    url: String,
    key: SigningKey,
}

impl Qq {
    /// Posts `body` as QQ does: signed over the timestamp and the raw body.
    async fn signed(&self, body: &str, ts: u64) -> reqwest::Response {
        let ts = ts.to_string();
        let signature = self.key.sign(format!("{ts}{body}").as_bytes());
        self.client
            .post(&self.url)
            .header("User-Agent", "QQBot-Callback")
            .header("X-Bot-Appid", APP_ID)
            .header("X-Signature-Timestamp", &ts)
            .header("X-Signature-Method", "Ed25519")
            .header("X-Signature-Ed25519", hex::encode(signature.to_bytes()))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("post")
    }

    async fn raw(&self, headers: &[(&str, String)], body: &str) -> reqwest::Response {
        let mut request = self.client.post(&self.url).body(body.to_string());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.send().await.expect("post")
    }
}

async fn wait_for_sends(qq: &StandIn, count: usize, timeout: Duration) -> usize {
    let deadline = Instant::now() + timeout;
    loop {
        let n = qq.sends.lock().expect("lock").len();
        if n >= count || Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn json(response: reqwest::Response) -> serde_json::Value {
    response.json().await.expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_qq_bot_validates_acks_and_answers_groups_and_c2c_with_passive_replies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stand_in = StandIn::default();
    let router = axum::Router::new()
        .route("/app/getAppAccessToken", post(token))
        .route("/v2/{kind}/{id}/messages", post(send))
        .route("/hook", post(slow_hook))
        .with_state(stand_in.clone());
    let (api, server) = support::serve(router).await;
    let config = write_config(dir.path(), &api);
    // The secret reaches the child through its environment only (`${VAR}` in the config).
    let tapwire = support::tapwire_config(&config, &[(SECRET_VAR, SECRET)]);
    let qq = Qq {
        client: reqwest::Client::new(),
        url: format!("http://{}/callback/qq", tapwire.listen_addr()),
        key: signing_key(),
    };

    // op 13, as event-emit.md shows it (no signature headers): the documented answer,
    // which verifies with the public key of the secret.
    let validation =
        r#"{"d":{"plain_token":"Arq0D5A61EgUu4OxUvOp","event_ts":"1725442341"},"op":13}"#;
    let answer = qq
        .raw(
            &[
                ("User-Agent", "QQBot-Callback".into()),
                ("X-Bot-Appid", APP_ID.into()),
            ],
            validation,
        )
        .await;
    assert_eq!(answer.status(), 200, "log: {}", tapwire.log());
    let answer = json(answer).await;
    assert_eq!(answer["plain_token"], "Arq0D5A61EgUu4OxUvOp");
    let signature = answer["signature"].as_str().expect("signature");
    assert_eq!(
        signature,
        "87befc99c42c651b3aac0278e71ada338433ae26fcb24307bdc5ad38c1adc2d01bcfcadc0842edac85e85205028a1132afe09280305f13aa6909ffc2d652c706"
    );
    let signature = Signature::from_bytes(
        &hex::decode(signature)
            .expect("hex")
            .try_into()
            .expect("64 bytes"),
    );
    signing_key()
        .verifying_key()
        .verify(b"1725442341Arq0D5A61EgUu4OxUvOp", &signature)
        .expect("the answer verifies with the secret's public key");
    // Signed, as QQ may send it: the same answer.
    assert_eq!(json(qq.signed(validation, now_secs()).await).await, answer);

    // A group @-message: acknowledged with op 12 at once; the slow handler's sender is
    // told at 5 s (msg_seq 1) and answered when it is done (msg_seq 2), both as replies
    // to the message.
    let started = Instant::now();
    let group = group_message("ROBOT1.0_group-1", "今天谁值班？");
    let acked = qq.signed(&group, now_secs()).await;
    assert_eq!(acked.status(), 200, "log: {}", tapwire.log());
    assert_eq!(json(acked).await, serde_json::json!({"op": 12, "d": 0}));
    assert!(started.elapsed() < Duration::from_secs(3));
    // QQ delivers it again (signed anew): acknowledged, not handled again.
    let again = qq.signed(&group, now_secs()).await;
    assert_eq!(json(again).await, serde_json::json!({"op": 12, "d": 0}));

    // A private message, echoed as a reply to it.
    let c2c = qq
        .signed(&c2c_message("ROBOT1.0_c2c-1", "你好"), now_secs())
        .await;
    assert_eq!(json(c2c).await, serde_json::json!({"op": 12, "d": 0}));

    // Unsigned, signed by someone else, tampered or stale: 401 with the reason.
    let forged_body = c2c_message("ROBOT1.0_c2c-2", "伪造");
    let unsigned = qq.raw(&[], &forged_body).await;
    assert_eq!(unsigned.status(), 401);
    assert!(
        unsigned
            .text()
            .await
            .expect("text")
            .contains("X-Signature-Ed25519")
    );
    let ts = now_secs().to_string();
    let stranger = SigningKey::from_bytes(&[7u8; 32]);
    let forged = qq
        .raw(
            &[
                ("X-Signature-Timestamp", ts.clone()),
                (
                    "X-Signature-Ed25519",
                    hex::encode(
                        stranger
                            .sign(format!("{ts}{forged_body}").as_bytes())
                            .to_bytes(),
                    ),
                ),
            ],
            &forged_body,
        )
        .await;
    assert_eq!(forged.status(), 401);
    let tampered = qq
        .raw(
            &[
                ("X-Signature-Timestamp", ts.clone()),
                (
                    "X-Signature-Ed25519",
                    hex::encode(qq.key.sign(format!("{ts}{group}").as_bytes()).to_bytes()),
                ),
            ],
            &forged_body,
        )
        .await;
    assert_eq!(tampered.status(), 401);
    let stale = qq.signed(&forged_body, now_secs() - 3 * 3600).await;
    assert_eq!(stale.status(), 401);
    // An unsigned op 13 whose token is a callback body would make us sign a forgery.
    let oracle = serde_json::json!({"op": 13, "d": {"event_ts": ts, "plain_token": forged_body}});
    assert_eq!(qq.raw(&[], &oracle.to_string()).await.status(), 400);

    assert_eq!(
        wait_for_sends(&stand_in, 3, Duration::from_secs(30)).await,
        3,
        "log: {}",
        tapwire.log()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sends = stand_in.sends();
    let reply = |path: &str, text: &str, msg_id: &str, seq: u32| {
        (
            "QQBot tok-1".to_string(),
            path.to_string(),
            serde_json::json!({"content": text, "msg_type": 0, "msg_id": msg_id, "msg_seq": seq}),
        )
    };
    let to_group: Vec<_> = sends
        .iter()
        .filter(|s| s.1 == format!("groups/{GROUP}"))
        .cloned()
        .collect();
    assert_eq!(
        to_group,
        [
            reply(&format!("groups/{GROUP}"), ACK_TEXT, "ROBOT1.0_group-1", 1),
            reply(
                &format!("groups/{GROUP}"),
                LATE_ANSWER,
                "ROBOT1.0_group-1",
                2
            ),
        ],
        "log: {}",
        tapwire.log()
    );
    let to_user: Vec<_> = sends
        .iter()
        .filter(|s| s.1 != format!("groups/{GROUP}"))
        .cloned()
        .collect();
    assert_eq!(
        to_user,
        [reply(&format!("users/{USER}"), "你好", "ROBOT1.0_c2c-1", 1)],
        "nothing forged went out; log: {}",
        tapwire.log()
    );
    assert_eq!(
        *stand_in.hook_calls.lock().expect("lock"),
        1,
        "the redelivery was handled again"
    );
    assert_eq!(
        *stand_in.token_fetches.lock().expect("lock"),
        1,
        "the token is cached"
    );
    let log = tapwire.log();
    assert!(log.contains("callback refused"), "{log}");
    assert!(!log.contains(SECRET), "the secret is never logged");
    drop(tapwire);
    server.abort();
}

/// `tapwire config check` names what is wrong with a `qq` section, and the secret may
/// stay in the environment.
#[test]
fn config_check_names_a_bad_app_id_and_an_unset_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("broken.toml");
    std::fs::write(
        &path,
        "[adapters.qq]\ntype = \"qq\"\napp_id = \"my-bot\"\napp_secret = \"${TAPWIRE_TEST_SURELY_UNSET_QQ_SECRET}\"\n",
    )
    .expect("write");
    let (ok, out) = support::tapwire_once(
        &["config", "check", &path.to_string_lossy()],
        Duration::from_secs(30),
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("app_id must be the bot's numeric AppID"),
        "{out}"
    );
    assert!(out.contains("TAPWIRE_TEST_SURELY_UNSET_QQ_SECRET"), "{out}");
    assert!(out.contains("2 error(s)"), "{out}");
}
