//! The LLM agent handler end to end: the real `tapwire` binary and a virtual phone (so
//! answers go to WeChat, sent whole), with a loopback stand-in of an OpenAI-compatible
//! chat API and of Dify's chat API that stream their answers in small reads (split
//! inside characters), break mid-stream, and stall.

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};
use support::{AdbServer, Tapwire, phone, sent_to};
use tapwire_phone_sim::{IncomingMessage, SimConfig, SimControl};

/// What the stand-in was asked, by which endpoint, in order.
#[derive(Clone, Default)]
struct Stand {
    asked: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Stand {
    fn asked(&self, kind: &str) -> Vec<Value> {
        self.asked
            .lock()
            .expect("lock")
            .iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, body)| body.clone())
            .collect()
    }
}

/// How a streamed response goes on after its text so far.
enum Step {
    Bytes(Vec<u8>),
    Break,
    Stall,
}

/// The SSE text cut into 7-byte reads (most Chinese characters are cut), each after a
/// short pause so they leave as separate reads.
fn reads(sse: &str) -> Vec<Step> {
    sse.as_bytes()
        .chunks(7)
        .map(|c| Step::Bytes(c.to_vec()))
        .collect()
}

fn streamed(steps: Vec<Step>) -> Response {
    let stream = futures_util::stream::unfold(steps.into_iter(), |mut steps| async move {
        match steps.next()? {
            Step::Bytes(bytes) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
                Some((Ok(Bytes::from(bytes)), steps))
            }
            Step::Break => Some((Err(std::io::Error::other("the model crashed")), steps)),
            Step::Stall => {
                std::future::pending::<()>().await;
                None
            }
        }
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .expect("response")
}

fn openai_sse(answer: &str) -> String {
    let mut sse = String::from(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n: keep-alive\n\n",
    );
    let chars: Vec<char> = answer.chars().collect();
    for piece in chars.chunks(2) {
        let piece: String = piece.iter().collect();
        let chunk =
            json!({"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": null}]});
        sse.push_str(&format!("data: {chunk}\n\n"));
    }
    sse.push_str("data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n");
    sse
}

/// `/{kind}/v1/chat/completions`: answers `答：<question>`. `flaky` breaks its first
/// answer to each question mid-stream, `stall` stops sending in the middle of it.
async fn chat(
    State(stand): State<Stand>,
    UrlPath(kind): UrlPath<String>,
    headers: axum::http::HeaderMap,
    Json(mut body): Json<Value>,
) -> Response {
    body["authorization"] = json!(
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    );
    let question = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string();
    let tries = {
        let mut asked = stand.asked.lock().expect("lock");
        asked.push((kind.clone(), body.clone()));
        asked
            .iter()
            .filter(|(k, b)| k == &kind && b["messages"] == body["messages"])
            .count()
    };
    let mut steps = reads(&openai_sse(&format!("答：{question}")));
    if tries == 1 && (kind == "flaky" || kind == "stall") {
        steps.truncate(steps.len() / 2);
        steps.push(if kind == "flaky" {
            Step::Break
        } else {
            Step::Stall
        });
    }
    streamed(steps)
}

/// `/dify/v1/chat-messages`: a chat app that answers `dify：<query>` in conversation
/// `conv-1`.
async fn dify(State(stand): State<Stand>, Json(body): Json<Value>) -> Response {
    let query = body["query"].as_str().unwrap_or_default().to_string();
    stand
        .asked
        .lock()
        .expect("lock")
        .push(("dify".into(), body));
    let mut sse = String::from("event: ping\n\n");
    for piece in ["dify：", &query] {
        let event = json!({"event": "message", "conversation_id": "conv-1", "message_id": "m", "answer": piece});
        sse.push_str(&format!("data: {event}\n\n"));
    }
    sse.push_str(
        "data: {\"event\":\"message_end\",\"conversation_id\":\"conv-1\",\"metadata\":{}}\n\n",
    );
    streamed(reads(&sse))
}

fn incoming(chat: &str, text: &str) -> IncomingMessage {
    IncomingMessage {
        chat: chat.into(),
        group: false,
        sender: None,
        text: text.into(),
        system: false,
    }
}

fn write_config(dir: &Path, adb: &AdbServer, serial: &str, base: &str) -> PathBuf {
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
ack_after_ms = 20000
give_up_after_ms = 60000
[[routes]]
event = "message.received"
handler = "bot"
[handlers.bot]
type = "pipeline"
fallback = "echo"
prefixes = [
  {{ prefix = "#", handler = "ai" }},
  {{ prefix = "!", handler = "flaky" }},
  {{ prefix = "~", handler = "stall" }},
  {{ prefix = "%", handler = "dify" }},
]
[handlers.ai]
type = "llm"
base_url = "{base}/ai/v1"
api_key = "${{TAPWIRE_TEST_LLM_KEY}}"
model = "deepseek-chat"
system_prompt = "你是客服"
memory_turns = 2
[handlers.flaky]
type = "llm"
base_url = "{base}/flaky/v1"
model = "qwen-plus"
backoff_ms = 50
[handlers.stall]
type = "llm"
base_url = "{base}/stall/v1"
model = "llama3.2"
timeout_ms = 800
backoff_ms = 50
[handlers.dify]
type = "llm"
api = "dify"
base_url = "{base}/dify/v1"
api_key = "app-test"
"##,
        db = dir.join("t.db").to_string_lossy(),
        plugins = dir.join("no-plugins").to_string_lossy(),
        adb = adb.addr(),
    );
    std::fs::write(&path, text).expect("write config");
    path
}

/// `tapwire run` on `config`, with the API key in its environment only (as secrets are).
fn run(config: &Path) -> Tapwire {
    support::tapwire_config(config, &[("TAPWIRE_TEST_LLM_KEY", "sk-test")])
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

fn roles_and_texts(body: &Value) -> Vec<(String, String)> {
    body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or_default().to_string(),
                m["content"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streamed_answers_arrive_whole_remember_the_conversation_and_survive_breaks_and_stalls() {
    let stand = Stand::default();
    let app = axum::Router::new()
        .route("/{kind}/v1/chat/completions", post(chat))
        .route("/dify/v1/chat-messages", post(dify))
        .with_state(stand.clone());
    let (base, server) = support::serve(app).await;

    let adb = AdbServer::start();
    let phone = phone(&adb, SimConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &adb, &phone.serial, &base);
    let mut tapwire = run(&config);
    let c = &phone.control;

    // The `#` prefix reaches the model; the answer, streamed in pieces, arrives whole.
    c.incoming(&incoming("李雷", "#我叫李雷"));
    let answers = wait_for_chat(c, "李雷", 1).await;
    assert_eq!(answers, ["答：我叫李雷"], "log: {}", tapwire.log());
    // Without the prefix, the pipeline's fallback (echo) answers instead.
    c.incoming(&incoming("李雷", "你好"));
    let answers = wait_for_chat(c, "李雷", 2).await;
    assert_eq!(answers[1], "你好", "log: {}", tapwire.log());

    // The next question carries the previous exchange, after the system prompt.
    c.incoming(&incoming("李雷", "#我叫什么"));
    let answers = wait_for_chat(c, "李雷", 3).await;
    assert_eq!(answers[2], "答：我叫什么", "log: {}", tapwire.log());
    let asked = stand.asked("ai");
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert_eq!(asked[1]["model"], "deepseek-chat");
    assert_eq!(asked[1]["stream"], true);
    assert_eq!(
        asked[1]["authorization"], "Bearer sk-test",
        "the key, from the environment"
    );
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(r, t)| (r.to_string(), t.to_string()))
            .collect()
    };
    assert_eq!(
        roles_and_texts(&asked[1]),
        pairs(&[
            ("system", "你是客服"),
            ("user", "我叫李雷"),
            ("assistant", "答：我叫李雷"),
            ("user", "我叫什么"),
        ])
    );

    // A stream that breaks mid-answer is asked again; only the whole answer is sent.
    c.incoming(&incoming("韩梅梅", "!天气"));
    let answers = wait_for_chat(c, "韩梅梅", 1).await;
    assert_eq!(answers, ["答：天气"], "log: {}", tapwire.log());
    assert_eq!(stand.asked("flaky").len(), 2, "one break, one answer");

    // A stream that stalls longer than timeout_ms is given up and asked again.
    c.incoming(&incoming("赵敏", "~在吗"));
    let answers = wait_for_chat(c, "赵敏", 1).await;
    assert_eq!(answers, ["答：在吗"], "log: {}", tapwire.log());
    assert_eq!(stand.asked("stall").len(), 2, "one stall, one answer");
    assert!(
        tapwire.log().contains("the stream stalled"),
        "log: {}",
        tapwire.log()
    );

    // Dify: streamed answer whole, and its conversation id carried to the next question.
    c.incoming(&incoming("周芷若", "%一"));
    assert_eq!(wait_for_chat(c, "周芷若", 1).await, ["dify：一"]);
    c.incoming(&incoming("周芷若", "%二"));
    assert_eq!(
        wait_for_chat(c, "周芷若", 2).await,
        ["dify：一", "dify：二"]
    );
    let asked = stand.asked("dify");
    assert_eq!(asked[0]["conversation_id"], "");
    assert_eq!(asked[1]["conversation_id"], "conv-1");
    assert_eq!(asked[1]["response_mode"], "streaming");

    // Memory outlives a restart: after kill -9, the window (2 exchanges) comes back.
    tapwire.kill();
    let tapwire = run(&config);
    c.incoming(&incoming("李雷", "#还记得吗"));
    let answers = wait_for_chat(c, "李雷", 4).await;
    assert_eq!(answers[3], "答：还记得吗", "log: {}", tapwire.log());
    let asked = stand.asked("ai");
    let last = roles_and_texts(asked.last().expect("asked"));
    assert_eq!(
        last,
        pairs(&[
            ("system", "你是客服"),
            ("user", "我叫李雷"),
            ("assistant", "答：我叫李雷"),
            ("user", "我叫什么"),
            ("assistant", "答：我叫什么"),
            ("user", "还记得吗"),
        ])
    );
    // Each question reached the model once (apart from the retries above).
    assert_eq!(asked.len(), 3, "{asked:?}");

    drop(tapwire);
    server.abort();
    phone.sim.shutdown().await;
}
