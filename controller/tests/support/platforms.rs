//! The official platforms for tests that mix sources: one loopback HTTP server standing
//! in for each platform's API (WeCom's app API and group robot, Feishu's open API,
//! DingTalk's session webhooks and robot API), builders of callbacks signed and
//! encrypted as each platform does, and the config sections that point Tapwire at the
//! stand-in. The per-platform test files (`wecom_app.rs`, `feishu.rs`, `dingtalk.rs`)
//! hold the rejection cases; these are for messages that go through.
//!
//! What each stand-in keeps is what the platform would show: Feishu's `im/v1/messages`
//! posts a request whose `uuid` it has seen within the hour at most once (发送消息,
//! open.feishu.cn/document/server-docs/im-v1/message/create: "持有相同 uuid 的请求 1 小时内
//! 至多成功发送一条消息"), so [`Platforms::feishu_shown`] is what the chat shows and
//! [`Platforms::feishu_posts`] every request. WeCom and DingTalk take no such key: every
//! post shows.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Query, RawQuery, State};
use axum::http::{HeaderMap, Uri};
use axum::routing::{get, post};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use tapwire::adapter::feishu::crypto::EventCrypto;
use tapwire::adapter::wecom_crypto::WeComCrypto;

/// WeCom's own example values (接收消息与事件 › 加解密方案).
pub const WECOM_TOKEN: &str = "QDG6eK";
pub const WECOM_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
pub const WECOM_CORP_ID: &str = "wx5823bf96d3bd56c7";
pub const WECOM_AGENT_ID: u32 = 1000002;
const WECOM_SECRET_VAR: &str = "TAPWIRE_TEST_X_WECOM_SECRET";
const WECOM_SECRET: &str = "x-wecom-app-secret";
const WECOM_ACCESS_TOKEN: &str = "x-wecom-token";
const ROBOT_KEY: &str = "x-robot-key";

pub const FEISHU_APP_ID: &str = "cli_x0123456789";
const FEISHU_VTOKEN: &str = "x-verification-token";
const FEISHU_SECRET_VAR: &str = "TAPWIRE_TEST_X_FEISHU_SECRET";
const FEISHU_SECRET: &str = "x-feishu-app-secret";
const FEISHU_KEY_VAR: &str = "TAPWIRE_TEST_X_FEISHU_KEY";
const FEISHU_KEY: &str = "x-feishu-encrypt-key";
const FEISHU_TENANT_TOKEN: &str = "t-x-token";
pub const FEISHU_BOT_OPEN_ID: &str = "ou_xbot";

pub const DING_CLIENT_ID: &str = "dingxclient0001";
const DING_SECRET_VAR: &str = "TAPWIRE_TEST_X_DING_SECRET";
const DING_SECRET: &str = "x-dingtalk-app-secret";
pub const DING_BOT_ID: &str = "$:LWCP_v1:$xbot";

/// The secrets the sections below name, for the child's environment: Tapwire takes
/// secrets from there only.
pub fn secrets() -> Vec<(&'static str, &'static str)> {
    vec![
        (WECOM_SECRET_VAR, WECOM_SECRET),
        (FEISHU_SECRET_VAR, FEISHU_SECRET),
        (FEISHU_KEY_VAR, FEISHU_KEY),
        (DING_SECRET_VAR, DING_SECRET),
    ]
}

/// `[adapters.NAME]` of a WeCom self-built app whose API is the stand-in at `api`.
///
/// Its answers all go through the stand-in's message/send (`passive_reply_ms = 0`), where
/// these tests count them; answers in the callback's response are `tests/wecom_app.rs`'s.
pub fn wecom_app_section(name: &str, api: &str) -> String {
    format!(
        "[adapters.{name}]\ntype = \"wecom_app\"\ncorp_id = \"{WECOM_CORP_ID}\"\nagent_id = {WECOM_AGENT_ID}\nsecret = \"${{{WECOM_SECRET_VAR}}}\"\ntoken = \"{WECOM_TOKEN}\"\nencoding_aes_key = \"{WECOM_KEY}\"\nbase_url = \"{api}\"\npassive_reply_ms = 0\n"
    )
}

/// `[adapters.NAME]` of a WeCom group robot posting to the stand-in, paced at
/// `per_minute` (WeCom's 20 unless a test needs a burst through).
pub fn wecom_robot_section(name: &str, api: &str, per_minute: u32) -> String {
    format!(
        "[adapters.{name}]\ntype = \"wecom_robot\"\nurl = \"{api}/cgi-bin/webhook/send?key={ROBOT_KEY}\"\nper_minute = {per_minute}\n"
    )
}

/// `[adapters.NAME]` of a Feishu app bot whose open API is the stand-in, with an
/// Encrypt Key (so pushes are encrypted and signed).
pub fn feishu_section(name: &str, api: &str) -> String {
    format!(
        "[adapters.{name}]\ntype = \"feishu\"\napp_id = \"{FEISHU_APP_ID}\"\napp_secret = \"${{{FEISHU_SECRET_VAR}}}\"\nverification_token = \"{FEISHU_VTOKEN}\"\nencrypt_key = \"${{{FEISHU_KEY_VAR}}}\"\nbase_url = \"{api}\"\n"
    )
}

/// `[adapters.NAME]` of a DingTalk robot in HTTP mode (DingTalk posts signed callbacks).
pub fn dingtalk_http_section(name: &str, api: &str) -> String {
    format!(
        "[adapters.{name}]\ntype = \"dingtalk\"\nmode = \"http\"\nclient_id = \"{DING_CLIENT_ID}\"\nclient_secret = \"${{{DING_SECRET_VAR}}}\"\napi_base = \"{api}\"\noapi_base = \"{api}\"\n"
    )
}

/// One message as a Feishu chat shows it (or as it was requested).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeishuPost {
    pub uuid: String,
    pub receive_id_type: String,
    pub receive_id: String,
    pub text: String,
}

/// What the platforms were sent.
#[derive(Clone, Default)]
pub struct Platforms {
    /// WeCom app `message/send` with a valid token: (touser, text).
    wecom_sends: Arc<Mutex<Vec<(String, String)>>>,
    wecom_token_fetches: Arc<Mutex<u32>>,
    /// WeCom group robot posts with our key: the text.
    robot_posts: Arc<Mutex<Vec<String>>>,
    /// Every `im/v1/messages` request with a valid token.
    feishu_posts: Arc<Mutex<Vec<FeishuPost>>>,
    /// DingTalk sends: (path, text): a session webhook's path carries its `session`.
    ding_sends: Arc<Mutex<Vec<(String, String)>>>,
    /// How long a send takes to be answered once the platform has taken it: a kill in
    /// that time leaves a message sent that Tapwire never heard was.
    answer_after_ms: Arc<AtomicU64>,
    /// Sends taken and not answered yet, by platform (`wecom`, `robot`, `feishu`).
    in_flight: Arc<Mutex<HashMap<&'static str, usize>>>,
}

fn lock<T: Clone>(m: &Mutex<T>) -> T {
    m.lock().expect("lock").clone()
}

impl Platforms {
    /// Sends (WeCom's app API and robot, Feishu's messages) are answered `delay` after
    /// the platform took them.
    pub fn answer_after(&self, delay: Duration) {
        self.answer_after_ms.store(
            u64::try_from(delay.as_millis()).expect("ms"),
            Ordering::SeqCst,
        );
    }

    /// Sends `platform` (`wecom`, `robot`, `feishu`) has taken and not answered yet.
    pub fn in_flight(&self, platform: &str) -> usize {
        self.in_flight
            .lock()
            .expect("lock")
            .get(platform)
            .copied()
            .unwrap_or_default()
    }

    async fn answering(&self, platform: &'static str) {
        let ms = self.answer_after_ms.load(Ordering::SeqCst);
        if ms > 0 {
            *self
                .in_flight
                .lock()
                .expect("lock")
                .entry(platform)
                .or_default() += 1;
            tokio::time::sleep(Duration::from_millis(ms)).await;
            if let Some(n) = self.in_flight.lock().expect("lock").get_mut(platform) {
                *n -= 1;
            }
        }
    }

    pub fn wecom_sends(&self) -> Vec<(String, String)> {
        lock(&self.wecom_sends)
    }

    /// The texts the WeCom app sent to one member, in order.
    pub fn wecom_sent_to(&self, user: &str) -> Vec<String> {
        self.wecom_sends()
            .into_iter()
            .filter(|(to, _)| to == user)
            .map(|(_, text)| text)
            .collect()
    }

    pub fn wecom_token_fetches(&self) -> u32 {
        lock(&self.wecom_token_fetches)
    }

    pub fn robot_posts(&self) -> Vec<String> {
        lock(&self.robot_posts)
    }

    pub fn feishu_posts(&self) -> Vec<FeishuPost> {
        lock(&self.feishu_posts)
    }

    /// What the Feishu chats show: the requests whose `uuid` was new.
    pub fn feishu_shown(&self) -> Vec<FeishuPost> {
        let mut seen = HashSet::new();
        self.feishu_posts()
            .into_iter()
            .filter(|p| p.uuid.is_empty() || seen.insert(p.uuid.clone()))
            .collect()
    }

    pub fn ding_sends(&self) -> Vec<(String, String)> {
        lock(&self.ding_sends)
    }

    /// The stand-in's routes; a test may merge its own (a webhook) before serving.
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .route("/cgi-bin/gettoken", get(wecom_gettoken))
            .route("/cgi-bin/message/send", post(wecom_message_send))
            .route("/cgi-bin/webhook/send", post(wecom_robot_send))
            .route(
                "/open-apis/auth/v3/tenant_access_token/internal",
                post(feishu_tenant_token),
            )
            .route("/open-apis/bot/v3/info", get(feishu_bot_info))
            .route("/open-apis/im/v1/messages", post(feishu_messages))
            .route("/v1.0/oauth2/accessToken", post(ding_token))
            .route("/v1.0/robot/groupMessages/send", post(ding_robot_api))
            .route("/v1.0/robot/oToMessages/batchSend", post(ding_robot_api))
            .route("/robot/sendBySession", post(ding_session_hook))
            .with_state(self.clone())
    }
}

/// Serves `router` on a loopback port: its base URL and its task.
pub async fn serve(router: axum::Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (url, task)
}

async fn wecom_gettoken(
    State(p): State<Platforms>,
    Query(query): Query<HashMap<String, String>>,
) -> Json<serde_json::Value> {
    if query.get("corpid").map(String::as_str) != Some(WECOM_CORP_ID)
        || query.get("corpsecret").map(String::as_str) != Some(WECOM_SECRET)
    {
        return Json(serde_json::json!({"errcode": 40001, "errmsg": "invalid credential"}));
    }
    *p.wecom_token_fetches.lock().expect("lock") += 1;
    Json(
        serde_json::json!({"errcode": 0, "errmsg": "ok", "access_token": WECOM_ACCESS_TOKEN, "expires_in": 7200}),
    )
}

async fn wecom_message_send(
    State(p): State<Platforms>,
    Query(query): Query<HashMap<String, String>>,
    Json(body): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    if query.get("access_token").map(String::as_str) != Some(WECOM_ACCESS_TOKEN) {
        return Json(serde_json::json!({"errcode": 40014, "errmsg": "invalid access_token"}));
    }
    if body["agentid"] != WECOM_AGENT_ID || body["msgtype"] != "text" {
        return Json(serde_json::json!({"errcode": 40008, "errmsg": "invalid message type"}));
    }
    p.wecom_sends.lock().expect("lock").push((
        body["touser"].as_str().unwrap_or_default().to_string(),
        body["text"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    ));
    p.answering("wecom").await;
    Json(serde_json::json!({"errcode": 0, "errmsg": "ok", "invaliduser": ""}))
}

async fn wecom_robot_send(
    State(p): State<Platforms>,
    Query(query): Query<HashMap<String, String>>,
    Json(body): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    if query.get("key").map(String::as_str) != Some(ROBOT_KEY) {
        return Json(serde_json::json!({"errcode": 93000, "errmsg": "invalid webhook url"}));
    }
    p.robot_posts.lock().expect("lock").push(
        body["text"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    );
    p.answering("robot").await;
    Json(serde_json::json!({"errcode": 0, "errmsg": "ok"}))
}

async fn feishu_tenant_token(Json(body): Json<serde_json::Value>) -> Json<serde_json::Value> {
    if body["app_id"] != FEISHU_APP_ID || body["app_secret"] != FEISHU_SECRET {
        return Json(serde_json::json!({"code": 10014, "msg": "app secret invalid"}));
    }
    Json(
        serde_json::json!({"code": 0, "msg": "ok", "tenant_access_token": FEISHU_TENANT_TOKEN, "expire": 7200}),
    )
}

fn feishu_authorized(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {FEISHU_TENANT_TOKEN}"))
}

async fn feishu_bot_info(headers: HeaderMap) -> Json<serde_json::Value> {
    if !feishu_authorized(&headers) {
        return Json(serde_json::json!({"code": 99991663, "msg": "Invalid access token"}));
    }
    Json(
        serde_json::json!({"code": 0, "msg": "ok", "bot": {"app_name": "Tapwire", "open_id": FEISHU_BOT_OPEN_ID}}),
    )
}

async fn feishu_messages(
    State(p): State<Platforms>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    Json(body): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    if !feishu_authorized(&headers) {
        return Json(
            serde_json::json!({"code": 99991663, "msg": "Invalid access token for authorization"}),
        );
    }
    let receive_id_type = query
        .unwrap_or_default()
        .strip_prefix("receive_id_type=")
        .unwrap_or_default()
        .to_string();
    let content: serde_json::Value =
        serde_json::from_str(body["content"].as_str().unwrap_or("{}")).unwrap_or_default();
    let id = {
        let mut posts = p.feishu_posts.lock().expect("lock");
        posts.push(FeishuPost {
            uuid: body["uuid"].as_str().unwrap_or_default().to_string(),
            receive_id_type,
            receive_id: body["receive_id"].as_str().unwrap_or_default().to_string(),
            text: content["text"].as_str().unwrap_or_default().to_string(),
        });
        format!("om_sent_{}", posts.len())
    };
    p.answering("feishu").await;
    Json(serde_json::json!({"code": 0, "msg": "success", "data": {"message_id": id}}))
}

async fn ding_token(Json(body): Json<serde_json::Value>) -> Json<serde_json::Value> {
    if body != serde_json::json!({"appKey": DING_CLIENT_ID, "appSecret": DING_SECRET}) {
        return Json(serde_json::json!({"code": "InvalidAuthentication", "message": "bad app"}));
    }
    Json(serde_json::json!({"accessToken": "x-ding-token", "expireIn": 7200}))
}

async fn ding_robot_api(
    State(p): State<Platforms>,
    uri: Uri,
    Json(body): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    let param: serde_json::Value =
        serde_json::from_str(body["msgParam"].as_str().unwrap_or("{}")).unwrap_or_default();
    p.ding_sends.lock().expect("lock").push((
        uri.path().to_string(),
        param["content"].as_str().unwrap_or_default().to_string(),
    ));
    Json(serde_json::json!({"processQueryKey": "pqk-x"}))
}

async fn ding_session_hook(
    State(p): State<Platforms>,
    uri: Uri,
    Json(body): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    p.ding_sends.lock().expect("lock").push((
        format!("{}?{}", uri.path(), uri.query().unwrap_or_default()),
        body["text"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    ));
    Json(serde_json::json!({"errcode": 0, "errmsg": "ok"}))
}

/// A WeCom app text message from member `from`, as WeCom posts it to the callback URL:
/// the query (`msg_signature`, `timestamp`, `nonce`) and the encrypted XML body.
pub fn wecom_text(from: &str, text: &str, msg_id: u64) -> (String, String) {
    let crypto = WeComCrypto::new(WECOM_TOKEN, WECOM_KEY, WECOM_CORP_ID).expect("crypto");
    let plain = format!(
        "<xml><ToUserName><![CDATA[{WECOM_CORP_ID}]]></ToUserName><FromUserName><![CDATA[{from}]]></FromUserName><CreateTime>1764500000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{text}]]></Content><MsgId>{msg_id}</MsgId><AgentID>{WECOM_AGENT_ID}</AgentID></xml>"
    );
    let sealed = crypto
        .encrypt(&plain, &now_secs().to_string(), &format!("n{msg_id}"))
        .expect("encrypt");
    let query = format!(
        "msg_signature={}&timestamp={}&nonce={}",
        sealed.signature, sealed.timestamp, sealed.nonce
    );
    let body = format!(
        "<xml><ToUserName><![CDATA[{WECOM_CORP_ID}]]></ToUserName><Encrypt><![CDATA[{}]]></Encrypt><AgentID><![CDATA[{WECOM_AGENT_ID}]]></AgentID></xml>",
        sealed.encrypt
    );
    (query, body)
}

/// A Feishu `im.message.receive_v1` text message. `mentions` are (key, open_id, name),
/// each written into the text by its key as Feishu does (`@_user_1`).
pub struct FeishuMessage<'a> {
    pub message_id: &'a str,
    pub chat_id: &'a str,
    /// `group` or `p2p`.
    pub chat_type: &'a str,
    pub sender_open_id: &'a str,
    pub text: &'a str,
    pub mentions: &'a [(&'a str, &'a str, &'a str)],
}

/// The push as Feishu sends it: the encrypted body and its signature headers.
pub fn feishu_push(m: &FeishuMessage<'_>) -> (String, Vec<(&'static str, String)>) {
    let mentions: Vec<serde_json::Value> = m
        .mentions
        .iter()
        .map(|(key, open_id, name)| {
            serde_json::json!({"key": key, "id": {"open_id": open_id}, "name": name, "tenant_key": "tk"})
        })
        .collect();
    let event = serde_json::json!({
        "schema": "2.0",
        "header": {
            "event_id": format!("evt-{}", m.message_id),
            "event_type": "im.message.receive_v1",
            "create_time": "1764500000000",
            "token": FEISHU_VTOKEN,
            "app_id": FEISHU_APP_ID,
            "tenant_key": "tk"
        },
        "event": {
            "sender": {"sender_id": {"open_id": m.sender_open_id}, "sender_type": "user", "tenant_key": "tk"},
            "message": {
                "message_id": m.message_id,
                "create_time": "1764500000000",
                "chat_id": m.chat_id,
                "chat_type": m.chat_type,
                "message_type": "text",
                "content": serde_json::json!({"text": m.text}).to_string(),
                "mentions": mentions
            }
        }
    })
    .to_string();
    let encrypt = EventCrypto::new(FEISHU_KEY)
        .encrypt(&event)
        .expect("encrypt");
    let body = serde_json::json!({ "encrypt": encrypt }).to_string();
    let timestamp = now_secs().to_string();
    let nonce = format!("nonce-{}-{}", m.message_id, fastrand::u32(..));
    // X-Lark-Signature = hex(sha256(timestamp + nonce + encrypt_key + body)): 事件订阅
    // › 安全校验, computed here apart from the adapter's own code.
    let mut hasher = Sha256::new();
    hasher.update(format!("{timestamp}{nonce}{FEISHU_KEY}").as_bytes());
    hasher.update(body.as_bytes());
    let signature = hex::encode(hasher.finalize());
    (
        body,
        vec![
            ("content-type", "application/json; charset=utf-8".into()),
            ("X-Lark-Request-Timestamp", timestamp),
            ("X-Lark-Request-Nonce", nonce),
            ("X-Lark-Signature", signature),
        ],
    )
}

/// A DingTalk robot message (机器人接收消息) in a group `cid`, from a member with a staff
/// id, mentioning the robot; answered through `hook` for the next hour.
pub struct DingMessage<'a> {
    pub msg_id: &'a str,
    pub group: &'a str,
    pub title: &'a str,
    pub staff_id: &'a str,
    pub nick: &'a str,
    pub text: &'a str,
    pub hook: String,
}

/// The body and its `timestamp`/`sign` headers, signed as DingTalk signs:
/// base64(HmacSHA256(key = secret, message = timestamp + "\n" + secret)).
pub fn ding_callback(m: &DingMessage<'_>) -> (String, Vec<(&'static str, String)>) {
    let now = now_ms();
    let body = serde_json::json!({
        "conversationId": m.group,
        "atUsers": [{"dingtalkId": DING_BOT_ID}],
        "chatbotCorpId": "dingxcorp",
        "chatbotUserId": DING_BOT_ID,
        "msgId": m.msg_id,
        "senderNick": m.nick,
        "isAdmin": false,
        "senderStaffId": m.staff_id,
        "sessionWebhookExpiredTime": now + 3_600_000,
        "createAt": now,
        "senderCorpId": "dingxcorp",
        "conversationType": "2",
        "senderId": format!("$:LWCP_v1:${}", m.staff_id),
        "conversationTitle": m.title,
        "isInAtList": true,
        "sessionWebhook": m.hook,
        "text": {"content": format!(" {}", m.text)},
        "robotCode": DING_CLIENT_ID,
        "msgtype": "text",
    })
    .to_string();
    let timestamp = now.to_string();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(DING_SECRET.as_bytes()).expect("hmac");
    mac.update(format!("{timestamp}\n{DING_SECRET}").as_bytes());
    let sign = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (
        body,
        vec![
            ("content-type", "application/json; charset=utf-8".into()),
            ("timestamp", timestamp),
            ("sign", sign),
        ],
    )
}

/// POSTs a callback; (status, body).
pub async fn post_callback(
    client: &reqwest::Client,
    url: &str,
    body: &str,
    headers: &[(&'static str, String)],
) -> (u16, String) {
    let mut request = client.post(url).body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.expect("post");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// POSTs a WeCom callback to `base` (`http://…/callback/NAME`).
pub async fn post_wecom(client: &reqwest::Client, base: &str, callback: &(String, String)) -> u16 {
    let (query, body) = callback;
    post_callback(client, &format!("{base}?{query}"), body, &[])
        .await
        .0
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

pub fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_millis(),
    )
    .expect("ms")
}
