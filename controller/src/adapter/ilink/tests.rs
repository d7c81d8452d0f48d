//! The adapter against a loopback stand-in of the iLink API: the long poll and its
//! cursor, the events it hands in, sends with their context token and client id, the
//! reply budget, throttling, typing, and an expired session.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use base64::Engine;

use super::*;
use crate::event::Event;
use crate::store::{MemoryStore, SharedStore};

/// What the stand-in saw and what it answers next.
#[derive(Clone, Default)]
struct Stand {
    /// `getupdates` answers in order; when none is left, an empty one after a pause.
    updates: Arc<Mutex<VecDeque<serde_json::Value>>>,
    cursors: Arc<Mutex<Vec<String>>>,
    /// `sendmessage` answers in order; when none is left, `{}`.
    send_answers: Arc<Mutex<VecDeque<serde_json::Value>>>,
    sends: Arc<Mutex<Vec<serde_json::Value>>>,
    typing: Arc<Mutex<Vec<(String, u64)>>>,
    tokens: Arc<Mutex<Vec<String>>>,
}

fn check_headers(stand: &Stand, headers: &HeaderMap, body: &serde_json::Value) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(header("authorizationtype"), "ilink_bot_token");
    assert_eq!(header("content-type"), "application/json");
    assert_eq!(header("ilink-app-id"), "bot");
    assert_eq!(header("ilink-app-clientversion"), "132099");
    let uin = base64::engine::general_purpose::STANDARD
        .decode(header("x-wechat-uin"))
        .expect("base64");
    assert!(String::from_utf8(uin).expect("utf8").parse::<u32>().is_ok());
    assert_eq!(body["base_info"]["channel_version"], "2.4.3");
    stand
        .tokens
        .lock()
        .expect("lock")
        .push(header("authorization"));
}

async fn getupdates(
    State(stand): State<Stand>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    check_headers(&stand, &headers, &body);
    let cursor = body["get_updates_buf"]
        .as_str()
        .expect("cursor")
        .to_string();
    stand.cursors.lock().expect("lock").push(cursor.clone());
    let next = stand.updates.lock().expect("lock").pop_front();
    match next {
        Some(answer) => Json(answer),
        None => {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Json(serde_json::json!({"ret": 0, "msgs": [], "get_updates_buf": cursor}))
        }
    }
}

async fn sendmessage(
    State(stand): State<Stand>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    check_headers(&stand, &headers, &body);
    stand.sends.lock().expect("lock").push(body["msg"].clone());
    let answer = stand.send_answers.lock().expect("lock").pop_front();
    Json(answer.unwrap_or_else(|| serde_json::json!({})))
}

async fn getconfig(
    State(stand): State<Stand>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    check_headers(&stand, &headers, &body);
    assert!(body["context_token"].is_string());
    Json(serde_json::json!({"ret": 0, "typing_ticket": "dGlja2V0"}))
}

async fn sendtyping(
    State(stand): State<Stand>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    check_headers(&stand, &headers, &body);
    assert_eq!(body["typing_ticket"], "dGlja2V0");
    stand.typing.lock().expect("lock").push((
        body["ilink_user_id"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        body["status"].as_u64().unwrap_or_default(),
    ));
    Json(serde_json::json!({"ret": 0}))
}

async fn serve(stand: Stand) -> String {
    let router = axum::Router::new()
        .route("/ilink/bot/getupdates", post(getupdates))
        .route("/ilink/bot/sendmessage", post(sendmessage))
        .route("/ilink/bot/getconfig", post(getconfig))
        .route("/ilink/bot/sendtyping", post(sendtyping))
        .with_state(stand);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

/// An inbox that keeps what is submitted (the adapter stores events itself).
#[derive(Default)]
struct Kept(Mutex<Vec<Event>>);

#[async_trait]
impl super::super::Inbox for Kept {
    async fn accept(&self, event: Event) -> Result<bool, crate::store::StoreError> {
        self.0.lock().expect("lock").push(event);
        Ok(true)
    }
    fn submit(&self, event: Event) {
        self.0.lock().expect("lock").push(event);
    }
}

fn context(store: SharedStore, inbox: Arc<Kept>) -> AdapterContext {
    AdapterContext {
        store,
        inbox,
        activity: tokio::sync::broadcast::channel(4).0,
    }
}

fn message(id: u64, user: &str, text: &str, token: &str) -> serde_json::Value {
    serde_json::json!({
        "message_id": id,
        "from_user_id": user,
        "to_user_id": "bot@im.bot",
        "create_time_ms": millis(SystemTime::now()),
        "message_type": 1,
        "message_state": 2,
        "item_list": [{"type": 1, "text_item": {"text": text}}],
        "context_token": token,
    })
}

fn outgoing(action: &str, user: &str, text: &str) -> Outgoing {
    Outgoing {
        action_id: action.into(),
        conversation: user.into(),
        text: text.into(),
        attachments: Vec::new(),
        resumed: false,
    }
}

fn config(base: &str, token: Option<&str>) -> IlinkConfig {
    IlinkConfig {
        base_url: Some(base.into()),
        token: token.map(crate::adapter::check::Secret::from),
        bot_type: 3,
    }
}

async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn config_is_checked_and_the_token_never_shown() {
    let parsed: IlinkConfig = toml::from_str("token = \"secret-token\"").expect("toml");
    assert_eq!(parsed.bot_type, 3);
    assert_eq!(
        parsed.login_base().expect("url").as_str(),
        "https://ilinkai.weixin.qq.com/"
    );
    assert!(parsed.check().is_ok());
    assert!(!format!("{parsed:?}").contains("secret-token"));
    assert!(toml::from_str::<IlinkConfig>("tokn = \"x\"").is_err());
    let bad = IlinkConfig {
        base_url: Some("ftp://x".into()),
        ..parsed.clone()
    };
    assert!(bad.check().is_err_and(|e| e.contains("http")));
    let empty = IlinkConfig {
        token: Some(" ".into()),
        ..parsed.clone()
    };
    assert!(empty.check().is_err());
    // `${VAR}` still unexpanded is reported by the config on its own line.
    let placeholder = IlinkConfig {
        base_url: Some("${ILINK_URL}".into()),
        ..parsed
    };
    assert!(placeholder.check().is_ok());
}

#[test]
fn text_is_cut_at_4000_characters_and_client_ids_follow_pieces() {
    let long = "字".repeat(MAX_TEXT_CHARS * 2 + 1);
    let pieces = crate::adapter::split::chars(&long, MAX_TEXT_CHARS);
    assert_eq!(pieces.len(), 3);
    assert_eq!(pieces[0].chars().count(), MAX_TEXT_CHARS);

    let mut pieces = Pieces::default();
    assert_eq!(pieces.client_id("a1"), "tapwire:a1:0");
    // Not settled: a retry of the same piece.
    assert_eq!(pieces.client_id("a1"), "tapwire:a1:0");
    pieces.settle();
    assert_eq!(pieces.client_id("a1"), "tapwire:a1:1");
    pieces.settle();
    assert_eq!(pieces.client_id("a2"), "tapwire:a2:0");
}

#[tokio::test]
async fn without_a_token_it_refuses_to_start_and_says_how_to_log_in() {
    let bot = Ilink::new("wx", &config("http://127.0.0.1:9", None)).expect("bot");
    let store: SharedStore = Arc::new(MemoryStore::default());
    let error = bot
        .start(context(store, Arc::new(Kept::default())))
        .await
        .expect_err("no token");
    assert!(
        error
            .to_string()
            .contains("tapwire ilink login --adapter wx"),
        "{error}"
    );
}

#[tokio::test]
async fn batches_are_stored_with_their_cursor_and_answered_within_the_budget() {
    let stand = Stand::default();
    let base = serve(stand.clone()).await;
    let store: SharedStore = Arc::new(MemoryStore::default());
    // The login is stored (as `tapwire ilink login` does); its base URL is used.
    Saved::new(store.clone(), "wx")
        .put_login(&state::Login {
            token: "tok-1".into(),
            base_url: base.clone(),
            bot_id: "bot@im.bot".into(),
            user_id: String::new(),
            saved_at: String::new(),
        })
        .await
        .expect("login");
    stand.updates.lock().expect("lock").extend([
        serde_json::json!({
            "ret": 0,
            "msgs": [
                message(1, "alice@im.wechat", "hi", "ctx-a1"),
                message(2, "bob@im.wechat", "你好", "ctx-b1"),
                // The bot's own message, and one that cannot be answered: not events.
                serde_json::json!({"message_id": 3, "from_user_id": "bot@im.bot", "message_type": 2, "context_token": "x"}),
                serde_json::json!({"message_id": 4, "from_user_id": "carol@im.wechat", "message_type": 1}),
            ],
            "get_updates_buf": "c1",
            "longpolling_timeout_ms": 2000,
        }),
        // A redelivery of message 1 (same id): stored once.
        serde_json::json!({"ret": 0, "msgs": [message(1, "alice@im.wechat", "hi", "ctx-a1")], "get_updates_buf": "c2"}),
    ]);
    let inbox = Arc::new(Kept::default());
    let bot = Ilink::new(
        "wx",
        &IlinkConfig {
            base_url: None,
            token: None,
            bot_type: 3,
        },
    )
    .expect("bot");
    bot.start(context(store.clone(), inbox.clone()))
        .await
        .expect("start");
    wait_until("the second cursor", || {
        stand
            .cursors
            .lock()
            .expect("lock")
            .iter()
            .any(|c| c == "c2")
    })
    .await;
    let cursors = stand.cursors.lock().expect("lock").clone();
    assert_eq!(&cursors[..3], ["", "c1", "c2"]);
    let events = inbox.0.lock().expect("lock").clone();
    let texts: Vec<_> = events
        .iter()
        .map(|e| e.text().unwrap_or_default())
        .collect();
    assert_eq!(texts, ["hi", "你好"]);
    assert_eq!(events[0].source, "wx");
    assert_eq!(events[0].platform, "ilink");
    let saved = Saved::new(store.clone(), "wx");
    assert_eq!(saved.cursor().await.expect("cursor"), "c2");
    assert_eq!(
        saved
            .contact("bob@im.wechat")
            .await
            .expect("contact")
            .map(|c| c.context_token),
        Some("ctx-b1".to_string())
    );
    // Both senders see "typing…" while their answer is worked on.
    wait_until("typing", || stand.typing.lock().expect("lock").len() >= 2).await;

    // Answers carry the sender's context token and the piece's client id; the typing
    // indicator is cleared first.
    bot.deliver(&outgoing("act_1", "alice@im.wechat", "hello"))
        .await
        .expect("sent");
    let sends = stand.sends.lock().expect("lock").clone();
    assert_eq!(
        sends[0],
        serde_json::json!({
            "from_user_id": "",
            "to_user_id": "alice@im.wechat",
            "client_id": "tapwire:act_1:0",
            "message_type": 2,
            "message_state": 2,
            "item_list": [{"type": 1, "text_item": {"text": "hello"}}],
            "context_token": "ctx-a1",
        })
    );
    wait_until("typing cleared", || {
        stand
            .typing
            .lock()
            .expect("lock")
            .contains(&("alice@im.wechat".to_string(), TYPING_CANCEL as u64))
    })
    .await;
    assert!(
        stand
            .tokens
            .lock()
            .expect("lock")
            .iter()
            .all(|t| t == "Bearer tok-1")
    );

    // Throttled: retried later with the same client id, then sent.
    stand
        .send_answers
        .lock()
        .expect("lock")
        .push_back(serde_json::json!({"ret": -2, "errmsg": "rate limited"}));
    let throttled = bot.deliver(&outgoing("act_2", "bob@im.wechat", "一")).await;
    assert!(
        matches!(&throttled, Err(SendError::Retry { after: Some(after), .. }) if *after == api::THROTTLE_WAIT),
        "{throttled:?}"
    );
    bot.deliver(&outgoing("act_2", "bob@im.wechat", "一"))
        .await
        .expect("sent");
    bot.deliver(&outgoing("act_2", "bob@im.wechat", "二"))
        .await
        .expect("sent");
    let ids: Vec<_> = stand
        .sends
        .lock()
        .expect("lock")
        .iter()
        .skip(1)
        .map(|m| m["client_id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        ids,
        ["tapwire:act_2:0", "tapwire:act_2:0", "tapwire:act_2:1"]
    );

    // Nine more to alice make ten; the eleventh is refused with the reason, unsent.
    for n in 0..9 {
        bot.deliver(&outgoing(&format!("b{n}"), "alice@im.wechat", "x"))
            .await
            .expect("within the budget");
    }
    let before = stand.sends.lock().expect("lock").len();
    let refused = bot.deliver(&outgoing("b10", "alice@im.wechat", "x")).await;
    assert!(
        matches!(&refused, Err(SendError::Permanent(why)) if why.contains("the user must write again") && why.contains("10 messages within 24 h")),
        "{refused:?}"
    );
    assert_eq!(stand.sends.lock().expect("lock").len(), before);
    // The count is stored: a restart would refuse too.
    assert_eq!(
        saved
            .contact("alice@im.wechat")
            .await
            .expect("contact")
            .map(|c| c.sent),
        Some(10)
    );
    // Nobody who never wrote can be messaged.
    let stranger = bot.deliver(&outgoing("c1", "dave@im.wechat", "hi")).await;
    assert!(
        matches!(&stranger, Err(SendError::Permanent(why)) if why.contains("wrote to it first")),
        "{stranger:?}"
    );

    // Alice writes again: a new token and a new budget.
    stand.updates.lock().expect("lock").push_back(serde_json::json!({
        "ret": 0, "msgs": [message(5, "alice@im.wechat", "again", "ctx-a2")], "get_updates_buf": "c3"
    }));
    wait_until("the new message", || {
        inbox.0.lock().expect("lock").len() == 3
    })
    .await;
    bot.deliver(&outgoing("b11", "alice@im.wechat", "y"))
        .await
        .expect("sent");
    assert_eq!(
        stand
            .sends
            .lock()
            .expect("lock")
            .last()
            .map(|m| m["context_token"].clone()),
        Some(serde_json::json!("ctx-a2"))
    );
    assert!(bot.stop().await.is_ok());
}

#[tokio::test]
async fn an_expired_session_pauses_until_a_new_login_is_stored() {
    let stand = Stand::default();
    let base = serve(stand.clone()).await;
    let store: SharedStore = Arc::new(MemoryStore::default());
    let saved = Saved::new(store.clone(), "wx");
    let login = state::Login {
        token: "tok-old".into(),
        base_url: base.clone(),
        bot_id: "bot@im.bot".into(),
        user_id: String::new(),
        saved_at: String::new(),
    };
    saved.put_login(&login).await.expect("login");
    saved
        .put_contact(
            "alice@im.wechat",
            &Contact::note(None, Some("1"), "ctx-a1", millis(SystemTime::now())).expect("contact"),
        )
        .await
        .expect("contact");
    stand
        .updates
        .lock()
        .expect("lock")
        .push_back(serde_json::json!({"ret": -1, "errcode": -14, "errmsg": "session timeout"}));
    let inbox = Arc::new(Kept::default());
    let bot = Ilink::new("wx", &config(&base, None)).expect("bot");
    bot.start(context(store.clone(), inbox.clone()))
        .await
        .expect("start");
    wait_until("the session-expired event", || {
        !inbox.0.lock().expect("lock").is_empty()
    })
    .await;
    let notice = inbox.0.lock().expect("lock")[0].clone();
    assert_eq!(notice.event_type, "platform.ilink.session_expired");
    assert!(
        notice.raw["reason"]
            .as_str()
            .is_some_and(|r| r.contains("tapwire ilink login --adapter wx"))
    );
    // Sends are refused with the same reason; nothing is polled meanwhile.
    let refused = bot.deliver(&outgoing("a1", "alice@im.wechat", "hi")).await;
    assert!(
        matches!(&refused, Err(SendError::Permanent(why)) if why.contains("expired") && why.contains("tapwire ilink login")),
        "{refused:?}"
    );
    let polls = stand.cursors.lock().expect("lock").len();
    assert_eq!(polls, 1);

    // A new login (another terminal's `tapwire ilink login`): polling resumes with it.
    saved
        .put_login(&state::Login {
            token: "tok-new".into(),
            ..login
        })
        .await
        .expect("login");
    wait_until("a poll with the new token", || {
        stand
            .tokens
            .lock()
            .expect("lock")
            .iter()
            .any(|t| t == "Bearer tok-new")
    })
    .await;
    bot.deliver(&outgoing("a1", "alice@im.wechat", "hi"))
        .await
        .expect("sent");
    assert!(bot.stop().await.is_ok());

    // Stopped while expired, it says so.
    let stand = Stand::default();
    let base = serve(stand.clone()).await;
    stand
        .updates
        .lock()
        .expect("lock")
        .push_back(serde_json::json!({"ret": -14}));
    let bot = Ilink::new("wx", &config(&base, Some("tok"))).expect("bot");
    let inbox = Arc::new(Kept::default());
    bot.start(context(Arc::new(MemoryStore::default()), inbox.clone()))
        .await
        .expect("start");
    wait_until("the session-expired event", || {
        !inbox.0.lock().expect("lock").is_empty()
    })
    .await;
    let stopped = bot.stop().await;
    assert!(
        matches!(&stopped, Err(AdapterError::Stopped(why)) if why.contains("expired")),
        "{stopped:?}"
    );
}
