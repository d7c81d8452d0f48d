use std::collections::{HashMap, VecDeque};

use axum::Json;
use axum::extract::{Path, Query};
use axum::http::HeaderValue;
use axum::routing::get;

use super::*;
use crate::adapter::testing::{Kept, context};

const APP_ID: &str = "cli_test";
const SECRET: &str = "s3cret";
const VTOKEN: &str = "v-token";
const KEY: &str = "test key";

fn config(base_url: &str, encrypt_key: Option<&str>) -> FeishuConfig {
    FeishuConfig {
        app_id: APP_ID.into(),
        app_secret: SECRET.into(),
        verification_token: VTOKEN.into(),
        encrypt_key: encrypt_key.map(crate::adapter::check::Secret::from),
        brand: Brand::Feishu,
        base_url: Some(base_url.into()),
    }
}

#[test]
fn config_checks_fields_brand_and_leaves_unexpanded_values() {
    assert_eq!(config(FEISHU_BASE_URL, Some(KEY)).check(), Ok(()));
    assert_eq!(config(FEISHU_BASE_URL, None).check(), Ok(()));
    let empty_secret = FeishuConfig {
        app_secret: " ".into(),
        ..config(FEISHU_BASE_URL, None)
    };
    assert!(empty_secret.check().unwrap_err().contains("app_secret"));
    let empty_key = config(FEISHU_BASE_URL, Some(""));
    assert!(empty_key.check().unwrap_err().contains("encrypt_key"));
    let bad_url = config("ftp://x", None);
    assert!(bad_url.check().unwrap_err().contains("http"));
    let env = FeishuConfig {
        app_secret: "${FEISHU_SECRET}".into(),
        base_url: Some("${FEISHU_API}".into()),
        ..config(FEISHU_BASE_URL, Some("${FEISHU_KEY}"))
    };
    assert_eq!(env.check(), Ok(()));
    // Lark differs only by its domain; an explicit base_url wins.
    let parsed: FeishuConfig = toml::from_str(
        "app_id = \"cli_a\"\napp_secret = \"s\"\nverification_token = \"v\"\nbrand = \"lark\"\n",
    )
    .expect("parsed");
    assert_eq!(parsed.encrypt_key, None);
    assert_eq!(
        parsed.parsed_base_url().expect("url").as_str(),
        "https://open.larksuite.com/"
    );
    let feishu: FeishuConfig =
        toml::from_str("app_id = \"cli_a\"\napp_secret = \"s\"\nverification_token = \"v\"\n")
            .expect("parsed");
    assert_eq!(
        feishu.parsed_base_url().expect("url").as_str(),
        "https://open.feishu.cn/"
    );
    assert!(
        toml::from_str::<FeishuConfig>(
            "app_id = \"a\"\napp_secret = \"s\"\nverification_token = \"v\"\nbogus = 1\n"
        )
        .is_err()
    );
    let app = Feishu::new("lark", &config(FEISHU_BASE_URL, Some(KEY))).expect("app");
    let shown = format!("{app:?}");
    assert!(!shown.contains(SECRET) && !shown.contains(KEY) && !shown.contains(VTOKEN));
}

#[test]
fn conversations_name_their_target_by_prefix() {
    assert_eq!(
        Target::parse("oc_5ad11d72b830411d72b836c20"),
        Ok(Target::Send("chat_id", "oc_5ad11d72b830411d72b836c20"))
    );
    assert_eq!(Target::parse(" om_dc13 "), Ok(Target::Reply("om_dc13")));
    assert_eq!(
        Target::parse("ou_7d8a"),
        Ok(Target::Send("open_id", "ou_7d8a"))
    );
    assert_eq!(
        Target::parse("on_9a"),
        Ok(Target::Send("union_id", "on_9a"))
    );
    assert_eq!(
        Target::parse("li.na@example.com"),
        Ok(Target::Send("email", "li.na@example.com"))
    );
    for bad in ["", "oc_", "李娜", "om_../../x", "oc_a?b=c", "a b@c"] {
        assert!(
            matches!(Target::parse(bad), Err(SendError::Permanent(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn a_requests_uuid_is_stable_per_piece_and_short() {
    let a = request_uuid("act_1", "part one");
    assert_eq!(a, request_uuid("act_1", "part one"));
    assert_ne!(a, request_uuid("act_1", "part two"));
    assert_ne!(a, request_uuid("act_2", "part one"));
    assert!(a.len() <= 50, "{a}");
}

#[test]
fn a_token_is_used_until_three_minutes_before_it_expires() {
    let now = tokio::time::Instant::now();
    let cache = TokenCache::new(TOKEN_MARGIN, TOKEN_LIFE_MAX);
    assert_eq!(
        cache.refresh_at(Duration::from_secs(7200), now),
        now + Duration::from_secs(7020)
    );
    assert_eq!(
        cache.refresh_at(Duration::from_secs(60), now),
        now + Duration::from_secs(30)
    );
}

#[test]
fn a_pushs_timestamp_must_be_within_the_window() {
    let crypto = EventCrypto::new(KEY);
    let body = br#"{"encrypt":"x"}"#;
    let now = UNIX_EPOCH + Duration::from_secs(1_764_500_000);
    let headers_at = |secs: u64, signature: Option<String>| {
        let timestamp = secs.to_string();
        let mut headers = HeaderMap::new();
        let signature = signature.unwrap_or_else(|| crypto.signature(&timestamp, "n1", body));
        headers.insert(
            "X-Lark-Request-Timestamp",
            HeaderValue::from_str(&timestamp).expect("header"),
        );
        headers.insert("X-Lark-Request-Nonce", HeaderValue::from_static("n1"));
        headers.insert(
            "X-Lark-Signature",
            HeaderValue::from_str(&signature).expect("header"),
        );
        headers
    };
    let check = |headers: &HeaderMap| {
        verify_push(&crypto, headers, body, now)
            .map(|push| push.is_some())
            .map_err(|e| e.1)
    };
    assert_eq!(check(&headers_at(1_764_500_000, None)), Ok(true));
    // The last retry, some 7 h late, is still taken; a day-old one is not.
    assert_eq!(
        check(&headers_at(1_764_500_000 - 7 * 3600 - 600, None)),
        Ok(true)
    );
    assert_eq!(check(&headers_at(1_764_500_000 - 8 * 3600, None)), Ok(true));
    assert_eq!(
        check(&headers_at(1_764_500_000 - 8 * 3600 - 1, None)),
        Err(StatusCode::UNAUTHORIZED)
    );
    assert_eq!(check(&headers_at(1_764_500_000 + 900, None)), Ok(true));
    assert_eq!(
        check(&headers_at(1_764_500_000 + 901, None)),
        Err(StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        check(&headers_at(1_764_500_000, Some("0".repeat(64)))),
        Err(StatusCode::UNAUTHORIZED)
    );
    assert_eq!(check(&HeaderMap::new()), Ok(false));
    let mut partial = headers_at(1_764_500_000, None);
    partial.remove("X-Lark-Signature");
    assert_eq!(check(&partial), Err(StatusCode::UNAUTHORIZED));
    // A signed timestamp that is not a number: malformed.
    let mut words = HeaderMap::new();
    words.insert("X-Lark-Request-Timestamp", HeaderValue::from_static("soon"));
    words.insert("X-Lark-Request-Nonce", HeaderValue::from_static("n1"));
    words.insert(
        "X-Lark-Signature",
        HeaderValue::from_str(&crypto.signature("soon", "n1", body)).expect("header"),
    );
    assert_eq!(check(&words), Err(StatusCode::BAD_REQUEST));
}

/// One answer the stand-in gives: HTTP status, `x-ogw-ratelimit-reset`, body.
type Canned = (u16, Option<&'static str>, serde_json::Value);

/// A request the stand-in got: path, Authorization, `receive_id_type`, body.
type Received = (String, String, String, serde_json::Value);

/// A stand-in for open.feishu.cn: hands out tokens t1, t2, …, keeps what the message
/// APIs got (path, token, query, body), and answers them from `answers`.
#[derive(Clone, Default)]
struct OpenApi {
    tokens: Arc<std::sync::Mutex<u32>>,
    answers: Arc<std::sync::Mutex<VecDeque<Canned>>>,
    received: Arc<std::sync::Mutex<Vec<Received>>>,
}

async fn token(
    State(api): State<OpenApi>,
    Json(body): Json<serde_json::Value>,
) -> (StatusCode, Json<serde_json::Value>) {
    if body["app_id"] != APP_ID || body["app_secret"] != SECRET {
        return (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"code": 10014, "msg": "app secret invalid"})),
        );
    }
    let mut count = api.tokens.lock().expect("lock");
    *count += 1;
    (
        StatusCode::OK,
        Json(
            serde_json::json!({"code": 0, "msg": "ok", "tenant_access_token": format!("t{count}"), "expire": 7200}),
        ),
    )
}

fn bearer(headers: &HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn answer(api: &OpenApi) -> Response {
    let (status, reset, body) = api.answers.lock().expect("lock").pop_front().unwrap_or((
        200,
        None,
        serde_json::json!({"code": 0, "msg": "success", "data": {}}),
    ));
    let mut response = if body.is_null() {
        "upstream unavailable".into_response()
    } else {
        Json(body).into_response()
    };
    *response.status_mut() = StatusCode::from_u16(status).expect("status");
    if let Some(reset) = reset {
        response
            .headers_mut()
            .insert("x-ogw-ratelimit-reset", HeaderValue::from_static(reset));
    }
    response
}

async fn create(
    State(api): State<OpenApi>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    Json(body): Json<serde_json::Value>,
) -> Response {
    let query = query.get("receive_id_type").cloned().unwrap_or_default();
    api.received.lock().expect("lock").push((
        "/open-apis/im/v1/messages".into(),
        bearer(&headers),
        query,
        body,
    ));
    answer(&api)
}

async fn reply(
    State(api): State<OpenApi>,
    headers: HeaderMap,
    Path(message_id): Path<String>,
    Json(body): Json<serde_json::Value>,
) -> Response {
    api.received.lock().expect("lock").push((
        format!("/open-apis/im/v1/messages/{message_id}/reply"),
        bearer(&headers),
        String::new(),
        body,
    ));
    answer(&api)
}

async fn bot_info(headers: HeaderMap) -> Json<serde_json::Value> {
    if !bearer(&headers).starts_with("Bearer t") {
        return Json(serde_json::json!({"code": 99991661, "msg": "Missing access token"}));
    }
    Json(
        serde_json::json!({"code": 0, "msg": "ok", "bot": {"activate_status": 2, "app_name": "Tapwire", "open_id": "ou_bot"}}),
    )
}

async fn serve(api: OpenApi) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new()
        .route(
            "/open-apis/auth/v3/tenant_access_token/internal",
            post(token),
        )
        .route("/open-apis/im/v1/messages", post(create))
        .route("/open-apis/im/v1/messages/{message_id}/reply", post(reply))
        .route("/open-apis/bot/v3/info", get(bot_info))
        .with_state(api);
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn sends_with_a_cached_token_renews_it_once_and_reads_feishus_codes() {
    let api = OpenApi::default();
    let app = Feishu::new("lark", &config(&serve(api.clone()).await, None)).expect("app");
    app.send_text("oc_chat", "你好", "u1").await.expect("sent");
    app.send_text("oc_chat", "again", "u2").await.expect("sent");
    api.answers.lock().expect("lock").extend([
        // Invalid token, then fine with the new one.
        (
            400,
            None,
            serde_json::json!({"code": 99991663, "msg": "Invalid access token for authorization"}),
        ),
        (200, None, serde_json::json!({"code": 0, "msg": "success"})),
        // The documented rate limit, with its wait.
        (
            429,
            Some("7"),
            serde_json::json!({"code": 99991400, "msg": "request trigger frequency limit"}),
        ),
        // A chat's rate limit, under HTTP 400, with no wait named.
        (
            400,
            None,
            serde_json::json!({"code": 230020, "msg": "chat rate limit"}),
        ),
        // HTTP 200 with a non-zero code is a refusal.
        (
            200,
            None,
            serde_json::json!({"code": 230002, "msg": "Bot/User can NOT be out of the chat."}),
        ),
        // A gateway failure without JSON.
        (503, None, serde_json::Value::Null),
        // Refused, renewed, refused again: once only, then retry later.
        (
            400,
            None,
            serde_json::json!({"code": 99991663, "msg": "Invalid access token"}),
        ),
        (
            400,
            None,
            serde_json::json!({"code": 99991663, "msg": "Invalid access token"}),
        ),
    ]);
    app.send_text("oc_chat", "renewed", "u3")
        .await
        .expect("sent");
    let limited = app.send_text("oc_chat", "x", "u4").await;
    assert_eq!(
        limited,
        Err(SendError::Retry {
            reason:
                "im/v1/messages: Feishu rate limit (code 99991400: request trigger frequency limit)"
                    .into(),
            after: Some(Duration::from_secs(7)),
        })
    );
    assert!(matches!(
        app.send_text("oc_chat", "x", "u5").await,
        Err(SendError::Retry { after: Some(after), .. }) if after == RATE_LIMIT_WAIT
    ));
    let refused = app.send_text("oc_chat", "x", "u6").await;
    assert!(
        matches!(&refused, Err(SendError::Permanent(m)) if m.contains("230002")),
        "{refused:?}"
    );
    assert!(matches!(
        app.send_text("oc_chat", "x", "u7").await,
        Err(SendError::Retry { after: None, .. })
    ));
    assert!(matches!(
        app.send_text("oc_chat", "x", "u8").await,
        Err(SendError::Retry { after: None, .. })
    ));
    // A message id is answered with a reply; an open_id gets a direct message.
    app.send_text("om_abc", "quoted", "u9")
        .await
        .expect("replied");
    app.send_text("ou_alice", "direct", "u10")
        .await
        .expect("sent");
    assert!(matches!(
        app.send_text("no such chat", "x", "u11").await,
        Err(SendError::Permanent(_))
    ));

    let received = api.received.lock().expect("lock").clone();
    let tokens: Vec<&str> = received.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(
        tokens,
        [
            "Bearer t1",
            "Bearer t1",
            "Bearer t1",
            "Bearer t2",
            "Bearer t2",
            "Bearer t2",
            "Bearer t2",
            "Bearer t2",
            "Bearer t2",
            "Bearer t3",
            "Bearer t4",
            "Bearer t4"
        ]
    );
    assert_eq!(*api.tokens.lock().expect("lock"), 4);
    assert_eq!(
        received[0],
        (
            "/open-apis/im/v1/messages".to_string(),
            "Bearer t1".to_string(),
            "chat_id".to_string(),
            serde_json::json!({"receive_id": "oc_chat", "msg_type": "text", "content": "{\"text\":\"你好\"}", "uuid": "u1"})
        )
    );
    let replied = &received[10];
    assert_eq!(replied.0, "/open-apis/im/v1/messages/om_abc/reply");
    assert_eq!(
        replied.3,
        serde_json::json!({"msg_type": "text", "content": "{\"text\":\"quoted\"}", "uuid": "u9"})
    );
    assert_eq!(received[11].2, "open_id");
    assert_eq!(received[11].3["receive_id"], "ou_alice");

    // A wrong secret is refused at the token, without showing it.
    let wrong = Feishu::new(
        "lark",
        &FeishuConfig {
            app_secret: "nope".into(),
            ..config(&serve(OpenApi::default()).await, None)
        },
    )
    .expect("app");
    let refused = wrong.send_text("oc_chat", "x", "u").await;
    assert!(
        matches!(&refused, Err(SendError::Permanent(m)) if m.contains("10014") && m.contains("app_secret") && !m.contains("nope")),
        "{refused:?}"
    );
    let down = Feishu::new("lark", &config("http://127.0.0.1:9", None))
        .expect("app")
        .send_text("oc_chat", "x", "u")
        .await;
    assert!(
        matches!(&down, Err(SendError::Retry { reason, .. }) if !reason.contains(SECRET)),
        "{down:?}"
    );
}

#[tokio::test]
async fn deliver_sends_each_piece_under_its_own_uuid() {
    let api = OpenApi::default();
    let app = Feishu::new("lark", &config(&serve(api.clone()).await, None)).expect("app");
    let outgoing = Outgoing {
        action_id: "act_1".into(),
        conversation: "oc_chat".into(),
        text: "hello".into(),
        attachments: Vec::new(),
        resumed: true,
    };
    assert_eq!(app.deliver(&outgoing).await, Ok(Delivered::Sent));
    let received = api.received.lock().expect("lock").clone();
    assert_eq!(received[0].3["uuid"], request_uuid("act_1", "hello"));
    let long = "周一 张伟\n".repeat(4000);
    let pieces = app.split(&long);
    assert!(pieces.len() > 1 && pieces.iter().all(|p| p.len() <= MAX_TEXT_BYTES));
}

/// The app's callback route on a loopback port, as the server mounts it.
async fn callbacks(app: &Feishu) -> String {
    crate::adapter::testing::callbacks(app, "lark").await
}

fn message_body(message_id: &str, text: &str, token: &str, app_id: &str) -> String {
    serde_json::json!({
        "schema": "2.0",
        "header": {
            "event_id": format!("ev-{message_id}"),
            "event_type": "im.message.receive_v1",
            "create_time": "1764500000000",
            "token": token,
            "app_id": app_id,
            "tenant_key": "tk"
        },
        "event": {
            "sender": {"sender_id": {"open_id": "ou_alice"}, "sender_type": "user", "tenant_key": "tk"},
            "message": {
                "message_id": message_id,
                "create_time": "1764500000000",
                "chat_id": "oc_group",
                "chat_type": "group",
                "message_type": "text",
                "content": serde_json::json!({"text": format!("@_user_1 {text}")}).to_string(),
                "mentions": [{"key": "@_user_1", "id": {"open_id": "ou_bot"}, "name": "Tapwire"}]
            }
        }
    })
    .to_string()
}

/// A body encrypted with `KEY` and the headers signing it at `timestamp`.
fn sealed(plain: &str, timestamp: u64) -> (String, Vec<(&'static str, String)>) {
    let crypto = EventCrypto::new(KEY);
    let body = serde_json::json!({"encrypt": crypto.encrypt(plain).expect("encrypt")}).to_string();
    let timestamp = timestamp.to_string();
    let signature = crypto.signature(&timestamp, "nonce-1", body.as_bytes());
    (
        body,
        vec![
            ("X-Lark-Request-Timestamp", timestamp),
            ("X-Lark-Request-Nonce", "nonce-1".into()),
            ("X-Lark-Signature", signature),
        ],
    )
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("now")
        .as_secs()
}

async fn post_to(
    client: &Client,
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
    (status, response.text().await.expect("text"))
}

#[tokio::test]
async fn encrypted_callbacks_are_verified_decrypted_and_accepted_once() {
    let api = OpenApi::default();
    let app = Feishu::new("lark", &config(&serve(api.clone()).await, Some(KEY))).expect("app");
    let url = callbacks(&app).await;
    let client = Client::new();

    // Before `start` there is nowhere to put an event: Feishu is asked to retry.
    let (body, headers) = sealed(&message_body("om_1", "#duty", VTOKEN, APP_ID), now_secs());
    assert_eq!(post_to(&client, &url, &body, &headers).await.0, 503);

    // The URL check comes encrypted but unsigned, and is answered before `start` too.
    let crypto = EventCrypto::new(KEY);
    let challenge = serde_json::json!({"encrypt": crypto.encrypt(&format!(r#"{{"challenge":"ajls384kdjx98XX","token":"{VTOKEN}","type":"url_verification"}}"#)).expect("encrypt")}).to_string();
    let (status, text) = post_to(&client, &url, &challenge, &[]).await;
    assert_eq!(
        (status, text.as_str()),
        (200, r#"{"challenge":"ajls384kdjx98XX"}"#)
    );
    // …but not with somebody else's token, and never in plain text to an encrypted app.
    let other = serde_json::json!({"encrypt": crypto.encrypt(r#"{"challenge":"c","token":"other","type":"url_verification"}"#).expect("encrypt")}).to_string();
    assert_eq!(post_to(&client, &url, &other, &[]).await.0, 401);
    let plain = r#"{"challenge":"c","token":"v-token","type":"url_verification"}"#;
    assert_eq!(post_to(&client, &url, plain, &[]).await.0, 400);

    let kept = Arc::new(Kept::default());
    app.start(context(&kept)).await.expect("start");
    // The bot learns its open_id in the background.
    for _ in 0..50 {
        if app.inbound.bot_open_id.get().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        app.inbound.bot_open_id.get().map(String::as_str),
        Some("ou_bot")
    );

    // Signed and encrypted: accepted; the same push again (Feishu's retry, signed anew)
    // is acknowledged and not kept twice.
    for _ in 0..2 {
        let (body, headers) = sealed(&message_body("om_1", "#duty", VTOKEN, APP_ID), now_secs());
        let (status, text) = post_to(&client, &url, &body, &headers).await;
        assert_eq!((status, text.as_str()), (200, r#"{"msg":"success"}"#));
    }
    let events = kept.0.lock().expect("lock").clone();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].text().as_deref(), Some("#duty"));
    assert_eq!(events[0].idempotency_key, "feishu:lark:msg:om_1");
    assert!(!events[0].raw.to_string().contains(VTOKEN));
    // The very same request again (a replay, or Feishu's retry of one it had no answer
    // to): answered as taken, without being decrypted or read.
    let (body, headers) = sealed(&message_body("om_r", "#duty", VTOKEN, APP_ID), now_secs());
    for _ in 0..2 {
        let (status, text) = post_to(&client, &url, &body, &headers).await;
        assert_eq!((status, text.as_str()), (200, r#"{"msg":"success"}"#));
    }
    assert_eq!(kept.0.lock().expect("lock").len(), 2);
    assert_eq!(app.inbound.door.count(Reason::Replay), 1);

    // Refused, nothing kept: a forged signature, a stale or future timestamp, no
    // signature on an event, another Verification Token, a body that is not encrypted.
    let (body, mut headers) = sealed(&message_body("om_2", "x", VTOKEN, APP_ID), now_secs());
    let good = headers.clone();
    headers[2].1 = "0".repeat(64);
    assert_eq!(post_to(&client, &url, &body, &headers).await.0, 401);
    let tampered = body.replace("\"}", "A\"}");
    assert_eq!(post_to(&client, &url, &tampered, &good).await.0, 401);
    let (body, headers) = sealed(
        &message_body("om_3", "x", VTOKEN, APP_ID),
        now_secs() - 9 * 3600,
    );
    assert_eq!(post_to(&client, &url, &body, &headers).await.0, 401);
    let (body, headers) = sealed(
        &message_body("om_4", "x", VTOKEN, APP_ID),
        now_secs() + 3600,
    );
    assert_eq!(post_to(&client, &url, &body, &headers).await.0, 401);
    let (body, _) = sealed(&message_body("om_5", "x", VTOKEN, APP_ID), now_secs());
    assert_eq!(post_to(&client, &url, &body, &[]).await.0, 401);
    let (body, headers) = sealed(&message_body("om_6", "x", "other", APP_ID), now_secs());
    assert_eq!(post_to(&client, &url, &body, &headers).await.0, 401);
    let plain_event = message_body("om_7", "x", VTOKEN, APP_ID);
    let crypto = EventCrypto::new(KEY);
    let ts = now_secs().to_string();
    let signature = crypto.signature(&ts, "n", plain_event.as_bytes());
    let signed_plain = [
        ("X-Lark-Request-Timestamp", ts),
        ("X-Lark-Request-Nonce", "n".to_string()),
        ("X-Lark-Signature", signature),
    ];
    assert_eq!(
        post_to(&client, &url, &plain_event, &signed_plain).await.0,
        400
    );
    // Signed, but its ciphertext does not open; and too large for the route.
    let cut = serde_json::json!({"encrypt": "AAAAAAAAAAAAAAAAAAAAAAAAAAAA"}).to_string();
    let ts = now_secs().to_string();
    let signed_cut = [
        ("X-Lark-Request-Timestamp", ts.clone()),
        ("X-Lark-Request-Nonce", "n".to_string()),
        (
            "X-Lark-Signature",
            crypto.signature(&ts, "n", cut.as_bytes()),
        ),
    ];
    assert_eq!(post_to(&client, &url, &cut, &signed_cut).await.0, 400);
    let huge = "x".repeat(MAX_CALLBACK_BYTES + 1);
    assert_eq!(post_to(&client, &url, &huge, &signed_cut).await.0, 413);
    assert_eq!(kept.0.lock().expect("lock").len(), 2);
    let door = &app.inbound.door;
    assert_eq!(
        (
            door.count(Reason::Signature),
            door.count(Reason::Stale),
            door.count(Reason::Malformed),
            door.count(Reason::Undecryptable),
            door.count(Reason::TooLarge),
        ),
        (5, 2, 2, 1, 1)
    );

    // Verified, but for another app or of a kind not routed: acknowledged, ignored.
    let (body, headers) = sealed(&message_body("om_8", "x", VTOKEN, "cli_other"), now_secs());
    assert_eq!(post_to(&client, &url, &body, &headers).await.0, 200);
    assert_eq!(app.inbound.door.count(Reason::WrongRecipient), 1);
    let read = message_body("om_9", "x", VTOKEN, APP_ID)
        .replace("im.message.receive_v1", "im.message.message_read_v1");
    let (body, headers) = sealed(&read, now_secs());
    assert_eq!(post_to(&client, &url, &body, &headers).await.0, 200);
    assert_eq!(kept.0.lock().expect("lock").len(), 2);
    app.stop().await.expect("stop");
}

#[tokio::test]
async fn without_an_encrypt_key_the_verification_token_vouches() {
    let app = Feishu::new("lark", &config("http://127.0.0.1:9", None)).expect("app");
    let url = callbacks(&app).await;
    let client = Client::new();
    let kept = Arc::new(Kept::default());
    app.start(context(&kept)).await.expect("start");
    let (status, text) = post_to(
        &client,
        &url,
        r#"{"challenge":"ajls384kdjx98XX","token":"v-token","type":"url_verification"}"#,
        &[],
    )
    .await;
    assert_eq!(
        (status, text.as_str()),
        (200, r#"{"challenge":"ajls384kdjx98XX"}"#)
    );
    let forged = r#"{"challenge":"c","token":"guess","type":"url_verification"}"#;
    assert_eq!(post_to(&client, &url, forged, &[]).await.0, 401);
    let event = message_body("om_1", "hi", VTOKEN, APP_ID);
    assert_eq!(post_to(&client, &url, &event, &[]).await.0, 200);
    let forged = message_body("om_2", "hi", "guess", APP_ID);
    assert_eq!(post_to(&client, &url, &forged, &[]).await.0, 401);
    // Encrypted while no key is configured: said so, not guessed at.
    let (sealed_body, headers) = sealed(&event, now_secs());
    assert_eq!(post_to(&client, &url, &sealed_body, &headers).await.0, 400);
    assert_eq!(post_to(&client, &url, "not json", &[]).await.0, 400);
    let events = kept.0.lock().expect("lock").clone();
    assert_eq!(events.len(), 1);
    // The bot's id is unknown here (its API is down): the leading mention is taken out.
    assert_eq!(events[0].text().as_deref(), Some("hi"));
    app.stop().await.expect("stop");
}
