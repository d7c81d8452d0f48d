//! Group digests end to end: the real `tapwire run`, a virtual phone (phone-sim through a
//! real adb server) with a WeChat group, and a loopback stand-in of an OpenAI-compatible
//! chat API. A member's `/digest 30` gets the model's summary of the group's thirty
//! messages before it, in the group; asking again at once is refused for a while; a schedule
//! posts the digest of the same group to another chat.

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};
use support::{AdbServer, Tapwire, phone, sent_to};
use tapwire_phone_sim::{IncomingMessage, SimConfig, SimControl};

/// What the model was asked: each request's last user message.
#[derive(Clone, Default)]
struct Model {
    asked: Arc<Mutex<Vec<String>>>,
}

/// Answers `摘要：<n> 行` (n = the transcript's lines), streamed as chat completions do.
async fn chat(State(model): State<Model>, Json(body): Json<Value>) -> Response {
    let question = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string();
    let lines = question.lines().filter(|l| l.starts_with('[')).count();
    model.asked.lock().expect("lock").push(question);
    let chunk = json!({"choices": [{"index": 0, "delta": {"content": format!("摘要：{lines} 行")}, "finish_reason": null}]});
    let sse = format!(
        "data: {chunk}\n\ndata: {{\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"stop\"}}]}}\n\ndata: [DONE]\n\n"
    );
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(axum::body::Body::from(sse))
        .expect("response")
}

fn said(chat: &str, sender: &str, text: &str) -> IncomingMessage {
    IncomingMessage {
        chat: chat.into(),
        group: true,
        sender: Some(sender.into()),
        text: text.into(),
        system: false,
    }
}

/// A 6-field (seconds first) cron firing once a day, `ahead` from now, in UTC.
fn cron_in(ahead: Duration) -> String {
    let at = SystemTime::now() + ahead;
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    format!(
        "{} {} {} * * *",
        secs % 60,
        (secs / 60) % 60,
        (secs / 3600) % 24
    )
}

fn write_config(dir: &Path, adb: &AdbServer, serial: &str, model: &str, cron: &str) -> PathBuf {
    let path = dir.join("tapwire.toml");
    let text = format!(
        r##"[storage]
path = {db:?}
[plugins]
dir = {plugins:?}
[[phones]]
serial = {serial:?}
adb_server = {adb:?}
poll_ms = 50
pacing = {{ enabled = false }}
[[routes]]
event = "message.received"
handler = "bot"
[[routes]]
event = "schedule.fired"
handler = "digest"
[handlers.bot]
type = "pipeline"
prefixes = [{{ prefix = "/digest", handler = "digest" }}]
[handlers.digest]
type = "digest"
llm = "summariser"
[handlers.summariser]
type = "llm"
base_url = "{model}/v1"
model = "qwen-plus"
system_prompt = "你是群聊秘书"
memory_turns = 0
[[schedules]]
id = "evening"
cron = "{cron}"
target = {serial:?}
conversation = "项目群"
data = {{ last = 10, to = {{ target = {serial:?}, conversation = "文件传输助手" }} }}
"##,
        db = dir.join("t.db").to_string_lossy(),
        plugins = dir.join("no-plugins").to_string_lossy(),
        adb = adb.addr(),
    );
    std::fs::write(&path, text).expect("write config");
    path
}

async fn wait_for_chat(control: &SimControl, chat: &str, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let texts = sent_to(&control.sent(), chat);
        if texts.len() >= count || Instant::now() > deadline {
            return texts;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_group_asks_for_its_digest_and_a_schedule_posts_one_elsewhere() {
    let model = Model::default();
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(chat))
        .with_state(model.clone());
    let (base, server) = support::serve(app).await;
    let adb = AdbServer::start();
    let phone = phone(&adb, SimConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // Late enough for the group's messages and the asked digest to come first.
    let config = write_config(
        dir.path(),
        &adb,
        &phone.serial,
        &base,
        &cron_in(Duration::from_secs(20)),
    );
    let tapwire: Tapwire = support::tapwire_config(&config, &[]);
    let c = &phone.control;

    // Thirty messages from four members, then a member asks for the digest.
    let members = ["王芳", "李雷", "陈静", "赵强"];
    let said_texts: Vec<String> = (0..30).map(|i| format!("第{i}条：进度更新 {i}")).collect();
    for (i, text) in said_texts.iter().enumerate() {
        c.incoming(&said("项目群", members[i % members.len()], text));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    c.incoming(&said("项目群", "王芳", "/digest 30"));
    let answers = wait_for_chat(c, "项目群", 1).await;
    assert_eq!(answers, ["摘要：30 行"], "log: {}", tapwire.log());
    let asked = model.asked.lock().expect("lock").clone();
    assert_eq!(asked.len(), 1, "{asked:?}");
    let transcript: Vec<&str> = asked[0].lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(transcript.len(), 30, "{}", asked[0]);
    for (i, (line, text)) in transcript.iter().zip(&said_texts).enumerate() {
        let expected = format!("{}: {text}", members[i % members.len()]);
        assert!(line.ends_with(&expected), "{line} / {expected}");
    }
    assert!(asked[0].starts_with("请用中文总结"), "{}", asked[0]);

    // At once again: refused for a while, the model not asked.
    c.incoming(&said("项目群", "李雷", "/digest"));
    let answers = wait_for_chat(c, "项目群", 2).await;
    assert!(answers[1].starts_with("刚总结过"), "{answers:?}");
    assert_eq!(model.asked.lock().expect("lock").len(), 1);

    // The schedule: the group's last ten messages, posted to another chat.
    let posted = wait_for_chat(c, "文件传输助手", 1).await;
    assert_eq!(posted.len(), 1, "log: {}", tapwire.log());
    let asked = model.asked.lock().expect("lock").clone();
    assert_eq!(asked.len(), 2, "{asked:?}");
    let lines: Vec<&str> = asked[1].lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(lines.len(), 10, "{}", asked[1]);
    // The newest ten of the group: the last eight updates and both requests.
    assert!(lines[0].ends_with(said_texts[22].as_str()), "{}", asked[1]);
    assert!(lines[8].ends_with("/digest 30"), "{}", asked[1]);
    assert!(lines[9].ends_with("/digest"), "{}", asked[1]);
    // What members said, not the bot's own answers (no summary of summaries).
    assert!(!asked[1].contains("摘要："), "{}", asked[1]);
    assert!(posted[0].starts_with("摘要："), "{posted:?}");
    drop(tapwire);
    server.abort();
    phone.sim.shutdown().await;
}
