//! End to end for the WeCom self-built app: the real `tapwire` binary with a `wecom_app`
//! adapter whose API is a loopback stand-in for qyapi.weixin.qq.com, fed callbacks
//! encrypted and signed as WeCom does (its documented example token, key and corp id).
//! `tapwire run` wants a phone, so a virtual one sits beside it, idle.

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use support::{AdbServer, phone};
use tapwire::adapter::wecom_crypto::WeComCrypto;
use tapwire_phone_sim::SimConfig;

const TOKEN: &str = "QDG6eK";
const KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const CORP_ID: &str = "wx5823bf96d3bd56c7";
const AGENT_ID: u32 = 1000002;
const SECRET_VAR: &str = "TAPWIRE_TEST_WECOM_APP_SECRET";

/// What the stand-in's message/send got: (access_token, body).
#[derive(Clone, Default)]
struct Qyapi {
    sends: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
    token_fetches: Arc<Mutex<u32>>,
}

async fn gettoken(
    State(qyapi): State<Qyapi>,
    Query(query): Query<HashMap<String, String>>,
) -> Json<serde_json::Value> {
    if query.get("corpid").map(String::as_str) != Some(CORP_ID)
        || query.get("corpsecret").map(String::as_str) != Some("app-secret")
    {
        return Json(serde_json::json!({"errcode": 40001, "errmsg": "invalid credential"}));
    }
    *qyapi.token_fetches.lock().expect("lock") += 1;
    Json(
        serde_json::json!({"errcode": 0, "errmsg": "ok", "access_token": "tok-1", "expires_in": 7200}),
    )
}

async fn message_send(
    State(qyapi): State<Qyapi>,
    Query(query): Query<HashMap<String, String>>,
    Json(body): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    let token = query.get("access_token").cloned().unwrap_or_default();
    let ok = token == "tok-1";
    qyapi.sends.lock().expect("lock").push((token, body));
    Json(if ok {
        serde_json::json!({"errcode": 0, "errmsg": "ok", "invaliduser": ""})
    } else {
        serde_json::json!({"errcode": 40014, "errmsg": "invalid access_token"})
    })
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

fn write_config(dir: &Path, adb: &AdbServer, serial: &str, api: &str) -> std::path::PathBuf {
    let path = dir.join("tapwire.toml");
    let text = format!(
        r#"[storage]
path = {db:?}
[[phones]]
serial = {serial:?}
adb_server = {adb:?}
poll_ms = 50
pacing = {{ enabled = false }}
[adapters.app]
type = "wecom_app"
corp_id = "{CORP_ID}"
agent_id = {AGENT_ID}
secret = "${{{SECRET_VAR}}}"
token = "{TOKEN}"
encoding_aes_key = "{KEY}"
base_url = "{api}"
[[routes]]
event = "message.received"
handler = "echo"
"#,
        db = dir.join("t.db").to_string_lossy(),
        adb = adb.addr(),
    );
    std::fs::write(&path, text).expect("write config");
    path
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// A text message from `from`, as WeCom posts it: query and body.
fn text_callback(crypto: &WeComCrypto, from: &str, text: &str, msg_id: u64) -> (String, String) {
    let plain = format!(
        "<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[{from}]]></FromUserName><CreateTime>1764500000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{text}]]></Content><MsgId>{msg_id}</MsgId><AgentID>{AGENT_ID}</AgentID></xml>"
    );
    // Signed now: WeCom signs each callback as it sends it, and one signed long ago is
    // refused as stale.
    let sealed = crypto
        .encrypt(&plain, &now_secs().to_string(), &format!("n{msg_id}"))
        .expect("encrypt");
    let query = format!(
        "msg_signature={}&timestamp={}&nonce={}",
        sealed.signature, sealed.timestamp, sealed.nonce
    );
    let body = format!(
        "<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{}]]></Encrypt><AgentID><![CDATA[{AGENT_ID}]]></AgentID></xml>",
        sealed.encrypt
    );
    (query, body)
}

/// A passive reply opened as WeCom opens it: `<Encrypt>` checked against `<MsgSignature>`
/// with the callback's own timestamp and nonce (from its `query`), then decrypted.
fn open_reply(crypto: &WeComCrypto, query: &str, reply: &str) -> String {
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
            .expect("query param")
            .to_string()
    };
    let cdata = |tag: &str| {
        let open = format!("<{tag}><![CDATA[");
        let start = reply.find(&open).expect(tag) + open.len();
        let end = reply[start..].find("]]>").expect("end of CDATA");
        reply[start..start + end].to_string()
    };
    let (timestamp, nonce) = (param("timestamp"), param("nonce"));
    assert!(
        reply.contains(&format!("<TimeStamp>{timestamp}</TimeStamp>")),
        "{reply}"
    );
    assert_eq!(cdata("Nonce"), nonce);
    crypto
        .decrypt(
            &cdata("MsgSignature"),
            &timestamp,
            &nonce,
            &cdata("Encrypt"),
        )
        .expect("a reply WeCom can open")
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wecom_app_member_is_verified_echoed_once_and_forgeries_are_refused() {
    let adb = AdbServer::start();
    let phone = phone(&adb, SimConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let qyapi = Qyapi::default();
    let stand_in = axum::Router::new()
        .route("/cgi-bin/gettoken", get(gettoken))
        .route("/cgi-bin/message/send", post(message_send))
        .with_state(qyapi.clone());
    let (api, server) = support::serve(stand_in).await;
    let config = write_config(dir.path(), &adb, &phone.serial, &api);
    // The secret reaches the child through its environment only (`${VAR}` in the config).
    let tapwire = support::tapwire_config(&config, &[(SECRET_VAR, "app-secret")]);
    let base = format!("http://{}/callback/app", tapwire.listen_addr());
    let client = reqwest::Client::new();
    let crypto = WeComCrypto::new(TOKEN, KEY, CORP_ID).expect("crypto");

    // URL verification: the echostr (base64 with + / =) comes URL-encoded.
    let echo_plain = "1616140317555161061";
    let sealed = crypto
        .encrypt(echo_plain, &now_secs().to_string(), "263014780")
        .expect("encrypt");
    let verify = client
        .get(format!(
            "{base}?msg_signature={}&timestamp={}&nonce={}&echostr={}",
            sealed.signature,
            sealed.timestamp,
            sealed.nonce,
            encode(&sealed.encrypt)
        ))
        .send()
        .await
        .expect("verify");
    assert_eq!(verify.status(), 200, "log: {}", tapwire.log());
    assert_eq!(verify.text().await.expect("text"), echo_plain);

    // A text message: echoed within WeCom's 5 s in the callback's own response (a
    // passive reply, 90241), sealed with the callback's timestamp and nonce.
    let (query, body) = text_callback(&crypto, "lisi", "今天谁值班？", 7001);
    let started = Instant::now();
    let answer = client
        .post(format!("{base}?{query}"))
        .body(body.clone())
        .send()
        .await
        .expect("post");
    assert_eq!(answer.status(), 200, "log: {}", tapwire.log());
    assert!(started.elapsed() < Duration::from_secs(5));
    let reply = answer.text().await.expect("text");
    let opened = open_reply(&crypto, &query, &reply);
    assert!(
        opened.contains("<Content><![CDATA[今天谁值班？]]></Content>"),
        "{opened}"
    );
    assert!(
        opened.contains("<ToUserName><![CDATA[lisi]]></ToUserName>"),
        "{opened}"
    );
    assert!(
        opened.contains(&format!(
            "<FromUserName><![CDATA[{CORP_ID}]]></FromUserName>"
        )),
        "{opened}"
    );
    let health = format!("http://{}/healthz", tapwire.listen_addr());
    let handled_before = handled(&client, &health).await;

    // WeCom's retry of the same callback (it did not get the answer): the same reply,
    // not routed again.
    let again = client
        .post(format!("{base}?{query}"))
        .body(body.clone())
        .send()
        .await
        .expect("post");
    assert_eq!(again.status(), 200);
    assert_eq!(again.text().await.expect("text"), reply);
    // Not even routed (the echo pipeline's own dedup would hide a second echo): the
    // store already holds this MsgId's event.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        handled(&client, &health).await,
        handled_before,
        "the retry was routed again; log: {}",
        tapwire.log()
    );

    // A forgery: a signature that is not over this body with our token.
    let forged_query = query.replacen("msg_signature=", "msg_signature=0", 1);
    let (_, other_body) = text_callback(&crypto, "mallory", "伪造", 7002);
    let forged = client
        .post(format!("{base}?{forged_query}"))
        .body(other_body)
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), 403);
    let forged_verify = client
        .get(format!(
            "{base}?msg_signature=deadbeef&timestamp=1&nonce=2&echostr={}",
            encode(&sealed.encrypt)
        ))
        .send()
        .await
        .expect("verify");
    assert_eq!(forged_verify.status(), 403);

    tokio::time::sleep(Duration::from_secs(2)).await;
    let sends = qyapi.sends.lock().expect("lock").clone();
    assert!(
        sends.is_empty(),
        "the echo went back passively, not through message/send too: {sends:?}"
    );
    assert_eq!(*qyapi.token_fetches.lock().expect("lock"), 0);
    let log = tapwire.log();
    assert!(log.contains("callback refused"), "{log}");
    assert!(!log.contains("app-secret"), "the secret is never logged");
    drop(tapwire);
    server.abort();
    phone.sim.shutdown().await;
}

/// `tapwire config check` names what is wrong with a `wecom_app` section, and the
/// secret may stay in the environment.
#[test]
fn config_check_names_a_bad_key_and_an_unset_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, key: &str| {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            format!(
                "[adapters.app]\ntype = \"wecom_app\"\ncorp_id = \"{CORP_ID}\"\nagent_id = {AGENT_ID}\nsecret = \"${{TAPWIRE_TEST_SURELY_UNSET_APP_SECRET}}\"\ntoken = \"{TOKEN}\"\nencoding_aes_key = \"{key}\"\n"
            ),
        )
        .expect("write");
        path.to_string_lossy().to_string()
    };
    let broken = write("broken.toml", "tooshort");
    let (ok, out) = support::tapwire_once(&["config", "check", &broken], Duration::from_secs(30));
    assert!(!ok, "{out}");
    assert!(
        out.contains("encoding_aes_key must be 43 characters"),
        "{out}"
    );
    assert!(
        out.contains("TAPWIRE_TEST_SURELY_UNSET_APP_SECRET"),
        "{out}"
    );
    assert!(out.contains("2 error(s)"), "{out}");
}
