//! End to end for the Weixin iLink adapter: the real `tapwire` binary against a loopback
//! stand-in of the iLink API (openclaw-weixin's README "Backend API Protocol" and
//! login-qr.ts).
//!
//! `tapwire ilink login` fetches a QR code that expires, a second one that is scanned
//! and confirmed, and stores the token it is given; the PNG it saves must scan as the
//! second code. `tapwire run` then polls with that token: two users write, the echo
//! answers are held at the stand-in, and the controller is killed with SIGKILL as soon
//! as it polls past their batch. Restarted, it must ask for the messages after the
//! stored cursor (never from the start again), and answer each user exactly once with
//! the context token of their message and the client id the killed run had used. A
//! third user's message goes to a webhook that answers eleven times: ten go out, the
//! eleventh fails with iLink's limit as its reason.

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use support::Tapwire;

const TOKEN: &str = "tok-e2e-7f3a";
const BOT: &str = "b0f5860fdecb@im.bot";
const ALICE: &str = "o9cq80alice@im.wechat";
const BOB: &str = "o9cq80bob@im.wechat";
const CAROL: &str = "o9cq80carol@im.wechat";

/// The batch answered to a cursor, and the cursor after it.
type Batches = HashMap<String, (Vec<serde_json::Value>, String)>;

/// What the stand-in saw, and what it hands out.
#[derive(Clone, Default)]
struct StandIn {
    base: Arc<Mutex<String>>,
    qr_fetches: Arc<Mutex<u32>>,
    /// (qrcode polled) per status poll.
    status_polls: Arc<Mutex<Vec<String>>>,
    /// (Authorization, get_updates_buf) per getupdates.
    polls: Arc<Mutex<Vec<(String, String)>>>,
    /// The batch answered to a cursor, and the cursor after it. Kept: the same cursor
    /// gets the same batch again, as a cursor-based server does.
    batches: Arc<Mutex<Batches>>,
    /// Closed: sends are held (never answered) and not counted as delivered.
    open: Arc<AtomicBool>,
    held: Arc<Mutex<Vec<serde_json::Value>>>,
    sends: Arc<Mutex<Vec<serde_json::Value>>>,
    typing: Arc<Mutex<Vec<(String, u64)>>>,
}

impl StandIn {
    fn sends_to(&self, user: &str) -> Vec<serde_json::Value> {
        self.sends
            .lock()
            .expect("lock")
            .iter()
            .filter(|m| m["to_user_id"] == user)
            .cloned()
            .collect()
    }

    fn cursors(&self) -> Vec<String> {
        self.polls
            .lock()
            .expect("lock")
            .iter()
            .map(|(_, c)| c.clone())
            .collect()
    }
}

/// The bot's headers (README "Common request headers"), checked on every POST.
fn check_bot_request(headers: &HeaderMap, body: &serde_json::Value) -> Result<String, String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    if header("authorizationtype") != "ilink_bot_token" {
        return Err("AuthorizationType".into());
    }
    let uin = base64::engine::general_purpose::STANDARD
        .decode(header("x-wechat-uin"))
        .map_err(|_| "X-WECHAT-UIN is not base64")?;
    String::from_utf8(uin)
        .ok()
        .and_then(|u| u.parse::<u32>().ok())
        .ok_or("X-WECHAT-UIN is not a decimal uint32")?;
    if header("ilink-app-id") != "bot" || body.get("base_info").is_none() {
        return Err("iLink-App-Id or base_info".into());
    }
    let auth = header("authorization");
    if auth != format!("Bearer {TOKEN}") {
        return Err(format!("Authorization {auth:?}"));
    }
    Ok(auth)
}

fn refuse(why: String) -> Response {
    (StatusCode::BAD_REQUEST, why).into_response()
}

async fn qrcode(
    State(s): State<StandIn>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<serde_json::Value> {
    assert_eq!(q.get("bot_type").map(String::as_str), Some("3"));
    let mut n = s.qr_fetches.lock().expect("lock");
    *n += 1;
    Json(serde_json::json!({
        "qrcode": format!("qr-{n}"),
        "qrcode_img_content": format!("https://liteapp.weixin.qq.com/q/7GiQu{n}?qrcode=qr-{n}&bot_type=3"),
    }))
}

/// The first code expires at once; the second is scanned, then confirmed.
async fn qr_status(
    State(s): State<StandIn>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<serde_json::Value> {
    let code = q.get("qrcode").cloned().unwrap_or_default();
    let mut polls = s.status_polls.lock().expect("lock");
    polls.push(code.clone());
    let seen = polls.iter().filter(|c| **c == code).count();
    let base = s.base.lock().expect("lock").clone();
    Json(match (code.as_str(), seen) {
        ("qr-1", _) => serde_json::json!({"status": "expired"}),
        ("qr-2", 1) => serde_json::json!({"status": "wait"}),
        ("qr-2", 2) => serde_json::json!({"status": "scaned"}),
        ("qr-2", _) => serde_json::json!({
            "status": "confirmed",
            "bot_token": TOKEN,
            "ilink_bot_id": BOT,
            "baseurl": base,
            "ilink_user_id": "o9cq80owner@im.wechat",
        }),
        _ => serde_json::json!({"status": "wait"}),
    })
}

async fn getupdates(
    State(s): State<StandIn>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Response {
    let auth = match check_bot_request(&headers, &body) {
        Ok(auth) => auth,
        Err(why) => return refuse(why),
    };
    let cursor = body["get_updates_buf"].as_str().unwrap_or("?").to_string();
    s.polls.lock().expect("lock").push((auth, cursor.clone()));
    let batch = s.batches.lock().expect("lock").get(&cursor).cloned();
    match batch {
        Some((msgs, next)) => {
            Json(serde_json::json!({"ret": 0, "msgs": msgs, "get_updates_buf": next}))
                .into_response()
        }
        None => {
            // A short long poll, so the test does not wait 35 s for each.
            tokio::time::sleep(Duration::from_millis(300)).await;
            Json(serde_json::json!({"ret": 0, "msgs": [], "get_updates_buf": cursor, "longpolling_timeout_ms": 1000}))
                .into_response()
        }
    }
}

async fn sendmessage(
    State(s): State<StandIn>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Response {
    if let Err(why) = check_bot_request(&headers, &body) {
        return refuse(why);
    }
    if !s.open.load(Ordering::SeqCst) {
        s.held.lock().expect("lock").push(body["msg"].clone());
        tokio::time::sleep(Duration::from_secs(60)).await;
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    s.sends.lock().expect("lock").push(body["msg"].clone());
    Json(serde_json::json!({})).into_response()
}

async fn getconfig(
    State(_): State<StandIn>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Response {
    if let Err(why) = check_bot_request(&headers, &body) {
        return refuse(why);
    }
    Json(serde_json::json!({"ret": 0, "typing_ticket": "dHlwaW5n"})).into_response()
}

async fn sendtyping(
    State(s): State<StandIn>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Response {
    if let Err(why) = check_bot_request(&headers, &body) {
        return refuse(why);
    }
    s.typing.lock().expect("lock").push((
        body["ilink_user_id"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        body["status"].as_u64().unwrap_or_default(),
    ));
    Json(serde_json::json!({"ret": 0})).into_response()
}

/// Carol's handler: eleven answers to one message.
async fn eleven() -> Json<serde_json::Value> {
    let actions: Vec<_> = (1..=11)
        .map(|n| serde_json::json!({"action": "reply", "text": format!("第{n}条")}))
        .collect();
    Json(serde_json::json!({ "actions": actions }))
}

fn message(id: u64, user: &str, text: &str, token: &str) -> serde_json::Value {
    serde_json::json!({
        "seq": id,
        "message_id": id,
        "from_user_id": user,
        "to_user_id": BOT,
        "create_time_ms": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64,
        "session_id": format!("s-{user}"),
        "message_type": 1,
        "message_state": 2,
        "item_list": [{"type": 1, "text_item": {"text": text}}],
        "context_token": token,
    })
}

fn write_config(dir: &Path, base: &str) -> std::path::PathBuf {
    let path = dir.join("tapwire.toml");
    let text = format!(
        r#"[storage]
path = {db:?}
[adapters.wx]
type = "ilink"
base_url = "{base}"
[handlers.eleven]
type = "webhook"
url = "{base}/hook"
[[routes]]
event = "message.received"
conversation = "{CAROL}"
handler = "eleven"
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

fn run(config: &Path, log: &Path) -> Tapwire {
    let stderr = std::fs::File::options()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_tapwire"))
        .args(["run", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("tapwire starts");
    Tapwire {
        child,
        stderr_path: log.to_path_buf(),
    }
}

async fn wait_until(what: &str, timeout: Duration, log: &Tapwire, done: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; log: {}",
            log.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The carol actions' (status, last_error), from the database.
async fn carol_actions(db: &Path) -> Vec<(String, Option<String>)> {
    use sqlx::Row;
    let url = format!("sqlite://{}?mode=ro", db.to_string_lossy());
    let Ok(pool) = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
    else {
        return Vec::new();
    };
    let rows = sqlx::query(
        "SELECT status, last_error FROM actions WHERE conversation = ? ORDER BY created_at, rowid",
    )
    .bind(CAROL)
    .fetch_all(&pool)
    .await
    .unwrap_or_default();
    pool.close().await;
    rows.iter()
        .map(|r| (r.get::<String, _>(0), r.get::<Option<String>, _>(1)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ilink_bot_logs_in_resumes_at_its_cursor_after_a_kill_and_keeps_to_ten_replies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stand_in = StandIn::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    *stand_in.base.lock().expect("lock") = base.clone();
    let router = axum::Router::new()
        .route("/ilink/bot/get_bot_qrcode", get(qrcode))
        .route("/ilink/bot/get_qrcode_status", get(qr_status))
        .route("/ilink/bot/getupdates", post(getupdates))
        .route("/ilink/bot/sendmessage", post(sendmessage))
        .route("/ilink/bot/getconfig", post(getconfig))
        .route("/ilink/bot/sendtyping", post(sendtyping))
        .route("/hook", post(eleven))
        .with_state(stand_in.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let config = write_config(dir.path(), &base);
    let db = dir.path().join("t.db");

    // Log in: the first QR code expires, the second is confirmed.
    let login = {
        let config = config.clone();
        let cwd = dir.path().to_path_buf();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_tapwire"))
                .args(["ilink", "login", "--config"])
                .arg(&config)
                .current_dir(&cwd)
                .output()
                .expect("tapwire ilink login runs")
        })
        .await
        .expect("join")
    };
    let stdout = String::from_utf8_lossy(&login.stdout);
    let stderr = String::from_utf8_lossy(&login.stderr);
    assert!(login.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("Logged in") && stdout.contains(BOT),
        "{stdout}"
    );
    assert!(stdout.contains("expired"), "{stdout}");
    assert!(
        stdout.contains('█'),
        "the QR code is drawn in the terminal: {stdout}"
    );
    assert!(!stdout.contains(TOKEN), "the token is not shown");
    assert_eq!(*stand_in.qr_fetches.lock().expect("lock"), 2);
    let png = dir.path().join("ilink-wx-qr.png");
    let image = image::open(&png)
        .expect("the PNG is saved and decodes")
        .to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the PNG");
    let (_, content) = grids[0].decode().expect("the QR code decodes");
    assert_eq!(
        content,
        "https://liteapp.weixin.qq.com/q/7GiQu2?qrcode=qr-2&bot_type=3"
    );

    // Alice and Bob write. Their answers are held at the stand-in, and the controller is
    // killed as soon as it has polled past their batch.
    stand_in.batches.lock().expect("lock").insert(
        String::new(),
        (
            vec![
                message(1001, ALICE, "hello", "ctx-alice-1"),
                message(1002, BOB, "你好", "ctx-bob-1"),
            ],
            "c1".into(),
        ),
    );
    let log = dir.path().join("run.log");
    let mut first = run(&config, &log);
    // A sender is shown "typing…" while the answer is on its way: the one whose answer
    // waits behind the held one surely (the other's may be quicker than its ticket).
    let waiting_typed = || {
        let held = stand_in.held.lock().expect("lock").clone();
        let Some(first_held) = held.first().and_then(|m| m["to_user_id"].as_str()) else {
            return false;
        };
        let other = if first_held == ALICE { BOB } else { ALICE };
        stand_in
            .typing
            .lock()
            .expect("lock")
            .contains(&(other.to_string(), 1))
    };
    wait_until(
        "a poll past the first batch, a held answer and the other user's typing",
        Duration::from_secs(30),
        &first,
        || stand_in.cursors().iter().any(|c| c == "c1") && waiting_typed(),
    )
    .await;
    first.kill();
    let held = stand_in.held.lock().expect("lock").clone();
    assert!(stand_in.sends.lock().expect("lock").is_empty());

    // Restarted: it polls at the stored cursor, and each user is answered once, with
    // their message's context token and the client id the killed run used.
    stand_in.open.store(true, Ordering::SeqCst);
    let second = run(&config, &log);
    wait_until("both answers", Duration::from_secs(30), &second, || {
        !stand_in.sends_to(ALICE).is_empty() && !stand_in.sends_to(BOB).is_empty()
    })
    .await;
    let cursors = stand_in.cursors();
    assert_eq!(
        cursors.iter().filter(|c| c.is_empty()).count(),
        1,
        "only the very first poll starts from nothing: {cursors:?}"
    );
    let alice = stand_in.sends_to(ALICE);
    assert_eq!(
        alice[0]["item_list"],
        serde_json::json!([{"type": 1, "text_item": {"text": "hello"}}])
    );
    assert_eq!(alice[0]["context_token"], "ctx-alice-1");
    let bob = stand_in.sends_to(BOB);
    assert_eq!(bob[0]["item_list"][0]["text_item"]["text"], "你好");
    assert_eq!(bob[0]["context_token"], "ctx-bob-1");
    for message in &held {
        let user = message["to_user_id"].as_str().expect("to_user_id");
        let sent = stand_in.sends_to(user);
        assert_eq!(
            sent[0]["client_id"], message["client_id"],
            "the same piece, the same client id"
        );
    }

    // Carol's message: eleven answers, of which iLink takes ten.
    stand_in.batches.lock().expect("lock").insert(
        "c1".into(),
        (
            vec![message(1003, CAROL, "来十一条", "ctx-carol-1")],
            "c2".into(),
        ),
    );
    let mut failed = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let actions = carol_actions(&db).await;
        if actions.len() == 11
            && actions
                .iter()
                .all(|(status, _)| status == "done" || status == "failed")
        {
            failed = actions;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(failed.len(), 11, "log: {}", second.log());
    let carol = stand_in.sends_to(CAROL);
    assert_eq!(carol.len(), 10, "log: {}", second.log());
    for (n, sent) in carol.iter().enumerate() {
        assert_eq!(
            sent["item_list"][0]["text_item"]["text"],
            format!("第{}条", n + 1)
        );
        assert_eq!(sent["context_token"], "ctx-carol-1");
    }
    let statuses: Vec<&str> = failed.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(statuses[..10], ["done"; 10]);
    assert_eq!(statuses[10], "failed");
    let reason = failed[10].1.clone().unwrap_or_default();
    assert!(
        reason.contains("the user must write again") && reason.contains("10 messages within 24 h"),
        "{reason}"
    );

    // Nothing was answered twice, every poll carried the stored token, and the token
    // never reached the log.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(stand_in.sends_to(ALICE).len(), 1);
    assert_eq!(stand_in.sends_to(BOB).len(), 1);
    assert!(
        stand_in
            .polls
            .lock()
            .expect("lock")
            .iter()
            .all(|(auth, _)| auth == &format!("Bearer {TOKEN}"))
    );
    let text = second.log();
    assert!(text.contains("resuming at the stored cursor"), "{text}");
    assert!(
        text.contains("not sent") && text.contains("the user must write again"),
        "{text}"
    );
    assert!(!text.contains(TOKEN), "the token is never logged");
    drop(second);
}
