//! The adapter as a whole: the HTTP callback route (DingTalk's sign, the hour, a
//! redelivery), answers through session webhooks and the robot API, and the stream task
//! stopping.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use reqwest::StatusCode;

use super::message::SessionWebhook;
use super::*;
use crate::adapter::testing::{Kept, context, serve};

const CLIENT_ID: &str = "dingabcdefghijklmnop";
const SECRET: &str = "appsecret-for-tests-0123456789";

fn config(mode: Mode, base: &str) -> DingtalkConfig {
    DingtalkConfig {
        client_id: CLIENT_ID.into(),
        client_secret: SECRET.into(),
        mode,
        robot_code: None,
        api_base: base.into(),
        oapi_base: base.into(),
        markdown: false,
    }
}

fn now_ms() -> u64 {
    sign::millis(SystemTime::now())
}

fn robot_message(msg_id: &str, text: &str, hook: &str, expires_ms: u64) -> String {
    serde_json::json!({
        "conversationId": "cidGROUP==",
        "conversationType": "2",
        "conversationTitle": "值班群",
        "chatbotUserId": "$:LWCP_v1:$bot",
        "msgId": msg_id,
        "senderNick": "李娜",
        "senderStaffId": "manager1234",
        "senderId": "$:LWCP_v1:$user",
        "isInAtList": true,
        "createAt": now_ms(),
        "sessionWebhook": hook,
        "sessionWebhookExpiredTime": expires_ms,
        "text": {"content": format!(" {text}")},
        "msgtype": "text",
        "robotCode": CLIENT_ID,
    })
    .to_string()
}

#[tokio::test]
async fn callbacks_are_verified_before_they_are_read_and_kept_once() {
    let bot = Dingtalk::new("ding", &config(Mode::Http, "http://127.0.0.1:9")).expect("bot");
    let url = format!(
        "{}/callback/ding",
        serve(axum::Router::new().nest("/callback/ding", bot.routes().expect("routes"))).await
    );
    let client = reqwest::Client::new();
    let signed = |body: String, ts: u64| {
        let ts = ts.to_string();
        client
            .post(&url)
            .header("timestamp", &ts)
            .header("sign", sign::sign(&ts, SECRET))
            .body(body)
            .send()
    };
    let hook = "http://127.0.0.1:9/robot/sendBySession?session=s1";
    let message = robot_message("msg1", "值班", hook, now_ms() + 3_600_000);

    let early = signed(message.clone(), now_ms()).await.expect("post");
    assert_eq!(early.status(), 503);
    let kept = Arc::new(Kept::default());
    bot.start(context(&kept)).await.expect("start");

    // A message and its redelivery: 200 and no synchronous reply both times, one event, its webhook kept.
    // (Signed a millisecond apart: the same millisecond would be the same request.)
    for i in 0..2 {
        let answer = signed(message.clone(), now_ms() + i).await.expect("post");
        assert_eq!(answer.status(), 200);
        assert_eq!(
            answer.json::<serde_json::Value>().await.expect("json"),
            serde_json::json!({"msgtype": "empty"})
        );
    }
    let events = kept.0.lock().expect("lock").clone();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].text().as_deref(), Some("值班"));
    assert_eq!(
        events[0].conversation.as_ref().map(|c| c.id.as_str()),
        Some("group:cidGROUP==")
    );
    assert_eq!(
        bot.sessions
            .valid("group:cidGROUP==", SystemTime::now())
            .as_deref(),
        Some(hook)
    );

    // Unsigned, signed with another secret, tampered timestamp, an hour and more off
    // either way: 401, nothing kept.
    let forged = robot_message("msg2", "转账", hook, now_ms() + 3_600_000);
    let unsigned = client
        .post(&url)
        .body(forged.clone())
        .send()
        .await
        .expect("post");
    assert_eq!(unsigned.status(), 401);
    let ts = now_ms().to_string();
    let other = client
        .post(&url)
        .header("timestamp", &ts)
        .header("sign", sign::sign(&ts, "another secret"))
        .body(forged.clone())
        .send()
        .await
        .expect("post");
    assert_eq!(other.status(), 401);
    let moved = client
        .post(&url)
        .header("timestamp", (now_ms() + 1).to_string())
        .header("sign", sign::sign(&ts, SECRET))
        .body(forged.clone())
        .send()
        .await
        .expect("post");
    assert_eq!(moved.status(), 401);
    for off in [-(3_600_000 + 60_000_i64), 3_600_000 + 60_000] {
        let at = now_ms().saturating_add_signed(off);
        let stale = signed(forged.clone(), at).await.expect("post");
        assert_eq!(stale.status(), 401);
        assert!(stale.text().await.expect("text").contains("away from now"));
    }
    // Signed but no robot message: 400.
    let garbage = signed("{\"msgId\":".into(), now_ms()).await.expect("post");
    assert_eq!(garbage.status(), 400);
    assert_eq!(kept.0.lock().expect("lock").len(), 1);
    // The very same request again: answered as taken, not read again. Too large: 413.
    let at = now_ms();
    let again = robot_message("msg4", "再来", hook, now_ms() + 3_600_000);
    for _ in 0..2 {
        let answer = signed(again.clone(), at).await.expect("post");
        assert_eq!(answer.status(), 200);
    }
    let huge = signed("x".repeat(MAX_CALLBACK_BYTES + 1), now_ms())
        .await
        .expect("post");
    assert_eq!(huge.status(), 413);
    // Signed with our secret, but for another robot: answered, counted, not kept.
    let elsewhere = robot_message("msg5", "别人", hook, now_ms() + 3_600_000)
        .replace(CLIENT_ID, "dingotherrobot");
    assert_eq!(
        signed(elsewhere, now_ms()).await.expect("post").status(),
        200
    );
    assert_eq!(kept.0.lock().expect("lock").len(), 2);
    let door = &bot.inbound.door;
    assert_eq!(
        (
            door.count(Reason::Signature),
            door.count(Reason::Stale),
            door.count(Reason::Malformed),
            door.count(Reason::Replay),
            door.count(Reason::TooLarge),
            door.count(Reason::WrongRecipient),
        ),
        (3, 2, 1, 1, 1, 1)
    );

    // A webhook on another origin than oapi_base is never posted to.
    let elsewhere = robot_message(
        "msg3",
        "别处",
        "https://evil.example/robot/sendBySession?session=x",
        now_ms() + 3_600_000,
    )
    .replace("cidGROUP==", "cidOTHER==");
    assert_eq!(
        signed(elsewhere, now_ms()).await.expect("post").status(),
        200
    );
    assert_eq!(
        bot.sessions.valid("group:cidOTHER==", SystemTime::now()),
        None
    );

    // Stream mode has no callback route.
    let stream = Dingtalk::new("ding", &config(Mode::Stream, "http://127.0.0.1:9")).expect("bot");
    assert!(stream.routes().is_none());
}

/// A stand-in for api.dingtalk.com and oapi.dingtalk.com: tokens t1, t2, …; each send kept
/// with its path and token and answered with the queued (status, body) of its kind.
#[derive(Clone, Default)]
struct Dingtalk_ {
    tokens: Arc<Mutex<u32>>,
    api_answers: Arc<Mutex<VecDeque<(u16, serde_json::Value)>>>,
    hook_answers: Arc<Mutex<VecDeque<serde_json::Value>>>,
    sends: Arc<Mutex<Vec<(String, String, serde_json::Value)>>>,
}

async fn token(State(api): State<Dingtalk_>, Json(body): Json<serde_json::Value>) -> Response {
    if body != serde_json::json!({"appKey": CLIENT_ID, "appSecret": SECRET}) {
        return (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"code": "InvalidAuthentication", "message": "appKey or appSecret is invalid"})),
        )
            .into_response();
    }
    let mut count = api.tokens.lock().expect("lock");
    *count += 1;
    Json(serde_json::json!({"accessToken": format!("t{count}"), "expireIn": 7200})).into_response()
}

async fn robot_api(
    State(api): State<Dingtalk_>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Response {
    let token = headers
        .get("x-acs-dingtalk-access-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    api.sends
        .lock()
        .expect("lock")
        .push((uri.path().to_string(), token, body));
    let (status, answer) = api
        .api_answers
        .lock()
        .expect("lock")
        .pop_front()
        .unwrap_or((200, serde_json::json!({"processQueryKey": "pqk"})));
    (StatusCode::from_u16(status).expect("status"), Json(answer)).into_response()
}

async fn session_hook(
    State(api): State<Dingtalk_>,
    uri: axum::http::Uri,
    Json(body): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    let query = uri.query().unwrap_or_default().to_string();
    api.sends.lock().expect("lock").push((
        format!("/robot/sendBySession?{query}"),
        String::new(),
        body,
    ));
    let answer = api.hook_answers.lock().expect("lock").pop_front();
    Json(answer.unwrap_or_else(|| serde_json::json!({"errcode": 0, "errmsg": "ok"})))
}

async fn stand_in(api: Dingtalk_) -> String {
    serve(
        axum::Router::new()
            .route("/v1.0/oauth2/accessToken", post(token))
            .route("/v1.0/robot/groupMessages/send", post(robot_api))
            .route("/v1.0/robot/oToMessages/batchSend", post(robot_api))
            .route("/robot/sendBySession", post(session_hook))
            .with_state(api),
    )
    .await
}

fn outgoing(action: &str, conversation: &str, text: &str) -> Outgoing {
    Outgoing {
        action_id: action.into(),
        conversation: conversation.into(),
        text: text.into(),
        attachments: Vec::new(),
        resumed: false,
    }
}

fn session(base: &str, name: &str, expires_in: Duration) -> SessionWebhook {
    SessionWebhook {
        url: format!("{base}/robot/sendBySession?session={name}"),
        expires_at: SystemTime::now() + expires_in,
    }
}

#[tokio::test]
async fn answers_take_the_session_webhook_until_it_expires_then_the_robot_api() {
    let api = Dingtalk_::default();
    let base = stand_in(api.clone()).await;
    let bot = Dingtalk::new("ding", &config(Mode::Http, &base)).expect("bot");
    let now = SystemTime::now();
    let hour = Duration::from_secs(3600);
    bot.sessions
        .note("group:G1", session(&base, "g1", hour), now);
    bot.sessions.note(
        "user:U1",
        session(&base, "u1", Duration::from_secs(10)),
        now,
    );

    // G1's webhook lasts: used, no token fetched.
    bot.deliver(&outgoing("a1", "group:G1", "收到"))
        .await
        .expect("sent");
    // U1's is within its last 30 s: the robot API (batchSend), with a token.
    bot.deliver(&outgoing("a2", "user:U1", "你好"))
        .await
        .expect("sent");
    // The token is cached; refused once, it is renewed and the send made again.
    api.api_answers.lock().expect("lock").push_back((
        400,
        serde_json::json!({"code": "InvalidAuthentication", "message": "不合法的access_token", "requestid": "r1"}),
    ));
    bot.deliver(&outgoing("a3", "user:U1", "再来"))
        .await
        .expect("sent after a new token");
    // The group's webhook is refused: forgotten, and the answer goes through the API.
    api.hook_answers
        .lock()
        .expect("lock")
        .push_back(serde_json::json!({"errcode": 300001, "errmsg": "session invalid"}));
    bot.deliver(&outgoing("a4", "group:G1", "结果"))
        .await
        .expect("sent through the API");
    assert_eq!(bot.sessions.valid("group:G1", SystemTime::now()), None);

    let seen = api.sends.lock().expect("lock").clone();
    let text = |t: &str| serde_json::json!({"msgtype": "text", "text": {"content": t}});
    let group = |t: &str| {
        serde_json::json!({
            "robotCode": CLIENT_ID,
            "openConversationId": "G1",
            "msgKey": "sampleText",
            "msgParam": serde_json::json!({"content": t}).to_string(),
        })
    };
    let user = |t: &str| {
        serde_json::json!({
            "robotCode": CLIENT_ID,
            "userIds": ["U1"],
            "msgKey": "sampleText",
            "msgParam": serde_json::json!({"content": t}).to_string(),
        })
    };
    let s = |path: &str, token: &str, body: serde_json::Value| {
        (path.to_string(), token.to_string(), body)
    };
    assert_eq!(
        seen,
        [
            s("/robot/sendBySession?session=g1", "", text("收到")),
            s("/v1.0/robot/oToMessages/batchSend", "t1", user("你好")),
            s("/v1.0/robot/oToMessages/batchSend", "t1", user("再来")),
            s("/v1.0/robot/oToMessages/batchSend", "t2", user("再来")),
            s("/robot/sendBySession?session=g1", "", text("结果")),
            s("/v1.0/robot/groupMessages/send", "t2", group("结果")),
        ]
    );
    assert_eq!(*api.tokens.lock().expect("lock"), 2);

    // Rate limits wait; a single chat without a webhook cannot be answered; a bad id is
    // refused before anything is sent.
    api.api_answers.lock().expect("lock").push_back((
        403,
        serde_json::json!({"code": "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", "message": "qps"}),
    ));
    let limited = bot.deliver(&outgoing("b1", "group:G1", "x")).await;
    assert!(
        matches!(limited, Err(SendError::Retry { after: Some(_), .. })),
        "{limited:?}"
    );
    let single = bot.deliver(&outgoing("b2", "single:cid9", "x")).await;
    assert!(
        matches!(&single, Err(SendError::Permanent(m)) if m.contains("sessionWebhook")),
        "{single:?}"
    );
    let bad = bot.deliver(&outgoing("b3", "cid9", "x")).await;
    assert!(matches!(bad, Err(SendError::Permanent(_))), "{bad:?}");

    // Markdown where configured, with robot_code set apart from the client id.
    let markdown = Dingtalk::new(
        "ding",
        &DingtalkConfig {
            markdown: true,
            robot_code: Some("dingrobot".into()),
            ..config(Mode::Http, &base)
        },
    )
    .expect("bot");
    assert_eq!(markdown.text_format(), TextFormat::Markdown);
    markdown
        .deliver(&outgoing("c1", "group:G2", "# 值班\n- **李娜**"))
        .await
        .expect("sent");
    assert_eq!(
        api.sends.lock().expect("lock").last().map(|s| s.2.clone()),
        Some(serde_json::json!({
            "robotCode": "dingrobot",
            "openConversationId": "G2",
            "msgKey": "sampleMarkdown",
            "msgParam": serde_json::json!({"title": "值班", "text": "# 值班\n- **李娜**"}).to_string(),
        }))
    );
    // A wrong secret is refused at the token and not shown.
    let wrong = Dingtalk::new(
        "ding",
        &DingtalkConfig {
            client_secret: "wrong-secret".into(),
            ..config(Mode::Http, &base)
        },
    )
    .expect("bot");
    let refused = wrong.deliver(&outgoing("d1", "user:U1", "x")).await;
    assert!(
        matches!(&refused, Err(SendError::Permanent(m)) if m.contains("InvalidAuthentication") && !m.contains("wrong-secret")),
        "{refused:?}"
    );
    let down = Dingtalk::new("ding", &config(Mode::Http, "http://127.0.0.1:9"))
        .expect("bot")
        .deliver(&outgoing("e1", "user:U1", "x"))
        .await;
    assert!(matches!(down, Err(SendError::Retry { .. })), "{down:?}");
}

#[test]
fn config_names_what_is_wrong_and_hides_the_secret() {
    let good = config(Mode::Stream, "https://api.dingtalk.com");
    assert_eq!(good.check(), Ok(()));
    let empty = DingtalkConfig {
        client_secret: " ".into(),
        ..good.clone()
    };
    assert!(empty.check().unwrap_err().contains("client_secret"));
    let code = DingtalkConfig {
        robot_code: Some(String::new()),
        ..good.clone()
    };
    assert!(code.check().unwrap_err().contains("robot_code"));
    let base = DingtalkConfig {
        oapi_base: "ftp://oapi".into(),
        ..good.clone()
    };
    assert!(base.check().unwrap_err().contains("oapi_base"));
    let unset = DingtalkConfig {
        api_base: "${DINGTALK_API}".into(),
        ..good.clone()
    };
    assert_eq!(unset.check(), Ok(()));
    let parsed: DingtalkConfig = toml::from_str(&format!(
        "client_id = \"{CLIENT_ID}\"\nclient_secret = \"{SECRET}\"\n"
    ))
    .expect("toml");
    assert_eq!(parsed.mode, Mode::Stream);
    assert_eq!(parsed.api_base, "https://api.dingtalk.com");
    assert_eq!(parsed.oapi_base, "https://oapi.dingtalk.com");
    assert_eq!(parsed.robot_code(), CLIENT_ID);
    let http: DingtalkConfig = toml::from_str(&format!(
        "client_id = \"{CLIENT_ID}\"\nclient_secret = \"{SECRET}\"\nmode = \"http\"\n"
    ))
    .expect("toml");
    assert_eq!(http.mode, Mode::Http);
    assert!(
        toml::from_str::<DingtalkConfig>(
            "client_id = \"a\"\nclient_secret = \"b\"\nmode = \"ws\"\n"
        )
        .is_err()
    );
    let shown = format!("{good:?}{:?}", Dingtalk::new("ding", &good).expect("bot"));
    assert!(!shown.contains(SECRET), "{shown}");
}

/// In Stream mode `start` runs the connection task and `stop` ends it, also while it
/// waits to reconnect to an API that is not there.
#[tokio::test]
async fn the_stream_task_starts_and_stops() {
    let bot = Dingtalk::new("ding", &config(Mode::Stream, "http://127.0.0.1:9")).expect("bot");
    bot.start(context(&Arc::new(Kept::default())))
        .await
        .expect("start");
    assert!(bot.task().is_some());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    bot.stop().await.expect("stop");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(bot.task().is_none());
    // Stopping again is nothing.
    bot.stop().await.expect("stop");
}
