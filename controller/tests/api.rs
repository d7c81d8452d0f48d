//! The REST API end to end: the real `tapwire run` with a WeCom group robot whose API is
//! a loopback stand-in. Requests without or with a wrong token are refused; a send
//! retried with the same `Idempotency-Key` reaches the robot once; bad requests name
//! their field; the OpenAPI document lists every route and passes
//! `openapi-spec-validator` (PyPI). Without a token in the environment the API is off.
//! Through a phone (phone-sim behind a real adb server), a send retried with its key is
//! typed once.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::platforms::{self, Platforms, wecom_robot_section};
use support::{AdbServer, Tapwire, tapwire_config, tapwire_run_env};
use tapwire::event::{
    Conversation, ConversationKind, Event, Segment, Sender, event_id, now_rfc3339,
};
use tapwire::store::{DeadLetterInfo, SqliteStore, Store};

const TOKEN: &str = "x-api-token-0123456789";
const TOKENS_ENV: &str = "TAPWIRE_TEST_X_API_TOKENS";

/// A config with storage in `dir`, the robot posting to `robot_api`, tokens from
/// [`TOKENS_ENV`].
fn write_config(dir: &Path, robot_api: &str) -> PathBuf {
    let text = format!(
        "[storage]\npath = {:?}\n[server.api]\ntokens_env = \"{TOKENS_ENV}\"\n{}",
        dir.join("tapwire.db"),
        wecom_robot_section("robot", robot_api, 20)
    );
    let path = dir.join("tapwire.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

async fn start(dir: &Path, env: &[(&str, &str)]) -> (Platforms, Tapwire, String) {
    let platforms = Platforms::default();
    let (robot_api, _task) = platforms::serve(platforms.router()).await;
    let config = write_config(dir, &robot_api);
    let tapwire = tapwire_config(&config, env);
    let addr = tapwire.listen_addr();
    (platforms, tapwire, format!("http://{addr}/api/v1"))
}

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("a JSON error body");
    (status, body["error"].clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn refuses_without_the_token_and_sends_a_retried_request_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (platforms, tapwire, base) = start(
        dir.path(),
        &[(TOKENS_ENV, &format!("someone-else, {TOKEN}"))],
    )
    .await;
    let client = reqwest::Client::new();
    let message = json!({"target": "robot", "conversation": "room", "text": "deploy done"});

    // No token, a wrong one, a right one given as another scheme: refused, and nothing
    // is stored.
    for request in [
        client.post(format!("{base}/messages")),
        client
            .post(format!("{base}/messages"))
            .bearer_auth("x-api-token-012345678"),
        client
            .post(format!("{base}/messages"))
            .basic_auth(TOKEN, None::<&str>),
        client.get(format!("{base}/openapi.json")),
    ] {
        let response = request.json(&message).send().await.expect("answered");
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer realm=\"tapwire\""
        );
        let (status, error) = error_of(response).await;
        assert_eq!(status, 401, "{error}");
        assert_eq!(error["code"], "unauthorized");
    }

    // A bad request names its field; an unknown target is named.
    let response = client
        .post(format!("{base}/messages"))
        .bearer_auth(TOKEN)
        .json(&json!({"target": "robot", "text": "x"}))
        .send()
        .await
        .expect("answered");
    let (status, error) = error_of(response).await;
    assert_eq!(
        (status, &error["field"]),
        (400, &json!("conversation")),
        "{error}"
    );
    let response = client
        .post(format!("{base}/messages"))
        .bearer_auth(TOKEN)
        .json(&json!({"target": "robot", "conversation": "room", "text": 7}))
        .send()
        .await
        .expect("answered");
    let (status, error) = error_of(response).await;
    assert_eq!((status, &error["field"]), (400, &json!("text")), "{error}");
    let response = client
        .post(format!("{base}/messages"))
        .bearer_auth(TOKEN)
        .json(&json!({"target": "nobody", "conversation": "room", "text": "x"}))
        .send()
        .await
        .expect("answered");
    let (status, error) = error_of(response).await;
    assert_eq!((status, &error["code"]), (404, &json!("unknown_target")));
    assert!(
        error["message"].as_str().expect("text").contains("nobody"),
        "{error}"
    );
    assert!(platforms.robot_posts().is_empty(), "refused requests sent");

    // The same key twice: one action, one post.
    let mut answers = Vec::new();
    for _ in 0..2 {
        let response = client
            .post(format!("{base}/messages"))
            .bearer_auth(TOKEN)
            .header("Idempotency-Key", "deploy-42")
            .json(&message)
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status(), 202);
        answers.push(response.json::<Value>().await.expect("json"));
    }
    assert_eq!(answers[0]["id"], answers[1]["id"], "{answers:?}");
    assert_eq!(answers[0]["replayed"], false);
    assert_eq!(answers[1]["replayed"], true);
    let status_url = answers[0]["status_url"].as_str().expect("status url");

    let deadline = Instant::now() + Duration::from_secs(10);
    let done = loop {
        let action: Value = client
            .get(format!(
                "{}{}",
                base.trim_end_matches("/api/v1"),
                status_url
            ))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("answered")
            .json()
            .await
            .expect("json");
        if action["status"] == "done" {
            break action;
        }
        assert!(
            Instant::now() < deadline,
            "never done: {action}; log: {}",
            tapwire.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(done["target"], "robot");
    assert_eq!(done["text"], "deploy done");

    // The send shows in its conversation, and the robot's health has a last success.
    let conversations: Value = client
        .get(format!("{base}/conversations?source=robot"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    assert_eq!(conversations[0]["source"], "robot", "{conversations}");
    assert_eq!(conversations[0]["id"], "room", "{conversations}");
    let messages: Value = client
        .get(format!("{base}/conversations/robot/room/messages?limit=5"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    assert_eq!(messages[0]["direction"], "out", "{messages}");
    assert_eq!(messages[0]["text"], "deploy done", "{messages}");
    assert_eq!(messages[0]["status"], "done", "{messages}");
    let response = client
        .get(format!("{base}/conversations/robot/room/messages?limit=0"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answered");
    let (status, error) = error_of(response).await;
    assert_eq!((status, &error["field"]), (400, &json!("limit")), "{error}");
    let response = client
        .get(format!("{base}/events/evt_nothing"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answered");
    assert_eq!(error_of(response).await.0, 404);
    // Past the outbox's one-second sweep: a second send would have gone by now.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(platforms.robot_posts(), vec!["deploy done".to_string()]);

    // The key again for another message: refused, not sent.
    let response = client
        .post(format!("{base}/messages"))
        .bearer_auth(TOKEN)
        .header("Idempotency-Key", "deploy-42")
        .json(&json!({"target": "robot", "conversation": "room", "text": "other"}))
        .send()
        .await
        .expect("answered");
    let (status, error) = error_of(response).await;
    assert_eq!(
        (status, &error["code"]),
        (409, &json!("idempotency_conflict"))
    );

    let response = client
        .get(format!("{base}/actions/act_nothing"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answered");
    assert_eq!(error_of(response).await.0, 404);

    let sources: Value = client
        .get(format!("{base}/sources"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    assert_eq!(sources[0]["name"], "robot", "{sources}");
    assert_eq!(sources[0]["platform"], "wecom", "{sources}");
    assert_eq!(sources[0]["running"], true, "{sources}");
    assert!(
        sources[0]["health"]["last_success"].is_string(),
        "{sources}"
    );

    // The document lists every route the server answers, and validates.
    let document: Value = client
        .get(format!("{base}/openapi.json"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    let paths = document["paths"].as_object().expect("paths");
    let mut listed: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("path item")
                .keys()
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            ("delete", "/api/v1/dlq/{id}"),
            ("delete", "/api/v1/grants"),
            ("delete", "/api/v1/subscriptions/{id}"),
            ("get", "/api/v1/actions/{id}"),
            ("get", "/api/v1/conversations"),
            ("get", "/api/v1/conversations/{source}/{id}/messages"),
            ("get", "/api/v1/dlq"),
            ("get", "/api/v1/events/{id}"),
            ("get", "/api/v1/grants"),
            ("get", "/api/v1/openapi.json"),
            ("get", "/api/v1/phones/{name}/live"),
            ("get", "/api/v1/phones/{name}/screen.png"),
            ("get", "/api/v1/sources"),
            ("get", "/api/v1/subscriptions"),
            ("get", "/api/v1/subscriptions/{id}"),
            ("get", "/api/v1/subscriptions/{id}/failures"),
            ("post", "/api/v1/actions/{id}/retry"),
            ("post", "/api/v1/dlq/{id}/replay"),
            ("post", "/api/v1/grants"),
            ("post", "/api/v1/messages"),
            ("post", "/api/v1/subscriptions"),
        ]
        .map(|(m, p)| (m.to_string(), p.to_string()))
    );
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, document.to_string()).expect("write document");
    // scripts/setup installs PyPI's openapi-spec-validator into the project's own venv.
    let python =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tools-venv/bin/python");
    let validated = std::process::Command::new(&python)
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("{} does not run ({e}): run scripts/setup", python.display()));
    assert!(
        validated.status.success(),
        "openapi-spec-validator refused the document: {}{}",
        String::from_utf8_lossy(&validated.stdout),
        String::from_utf8_lossy(&validated.stderr)
    );
    drop(tapwire);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_token_the_api_is_off_and_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_platforms, tapwire, base) = start(dir.path(), &[(TOKENS_ENV, " , ")]).await;
    let response = reqwest::Client::new()
        .get(format!("{base}/sources"))
        .bearer_auth(" , ")
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 404);
    assert!(
        tapwire.log().contains("REST API off"),
        "log: {}",
        tapwire.log()
    );
}

/// A message the robot's group sent, as the `echo` handler would have received it.
fn robot_message(text: &str) -> Event {
    let key = format!("robot:{text}");
    Event {
        id: event_id(&key),
        event_type: "message.received".into(),
        source: "robot".into(),
        platform: "wecom".into(),
        idempotency_key: key,
        conversation: Some(Conversation {
            id: "room".into(),
            title: None,
            kind: ConversationKind::Group,
        }),
        sender: Some(Sender {
            id: "u1".into(),
            display_name: None,
            is_self: false,
        }),
        content: vec![Segment::Text { text: text.into() }],
        platform_message_id: None,
        timestamp: now_rfc3339(),
        raw: Value::Null,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_are_listed_replayed_once_and_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        // Two letters waiting before the start, as a failed handler leaves them.
        let store = SqliteStore::open(&dir.path().join("tapwire.db"))
            .await
            .expect("open");
        for text in ["replay me", "drop me"] {
            let event = robot_message(text);
            store.insert_event(&event).await.expect("event");
            store
                .dead_letter(
                    &event,
                    &DeadLetterInfo {
                        handler: "echo".into(),
                        delivered: event.clone(),
                        error: "upstream said 502".into(),
                        attempts: 3,
                    },
                )
                .await
                .expect("dead letter");
        }
    }
    let (platforms, tapwire, base) = start(dir.path(), &[(TOKENS_ENV, TOKEN)]).await;
    let client = reqwest::Client::new();
    let list = || async {
        client
            .get(format!("{base}/dlq"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("answered")
            .json::<Value>()
            .await
            .expect("json")
    };
    let letters = list().await;
    let letters = letters.as_array().expect("a list");
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert_eq!(letters[0]["handler"], "echo");
    assert_eq!(letters[0]["attempts"], 3);
    let id_of = |text: &str| {
        letters
            .iter()
            .find(|l| l["event"]["content"][0]["text"] == text)
            .and_then(|l| l["id"].as_str())
            .expect("letter")
            .to_string()
    };
    let (replayed, dropped) = (id_of("replay me"), id_of("drop me"));
    let event = robot_message("drop me");
    let found: Value = client
        .get(format!("{base}/events/{}", event.id))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    assert_eq!(found["id"], event.id.as_str(), "{found}");
    assert_eq!(found["status"], "dead", "{found}");
    assert_eq!(found["event"]["source"], "robot", "{found}");

    for expected in [204, 404] {
        let response = client
            .delete(format!("{base}/dlq/{dropped}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status(), expected);
    }
    let response = client
        .post(format!("{base}/dlq/{replayed}/replay"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 200);
    let result: Value = response.json().await.expect("json");
    assert_eq!(result["delivered"], true, "{result}");
    assert_eq!(result["actions"].as_array().expect("actions").len(), 1);
    // Closed: a second replay finds nothing, so nothing goes twice.
    let response = client
        .post(format!("{base}/dlq/{replayed}/replay"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 404);
    assert_eq!(list().await, json!([]));

    let deadline = Instant::now() + Duration::from_secs(10);
    while platforms.robot_posts().is_empty() {
        assert!(
            Instant::now() < deadline,
            "echo never sent; log: {}",
            tapwire.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let posts = platforms.robot_posts();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert!(posts[0].contains("replay me"), "{posts:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn grants_are_given_listed_and_revoked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_platforms, _tapwire, base) = start(dir.path(), &[(TOKENS_ENV, TOKEN)]).await;
    let client = reqwest::Client::new();
    let grants = |user: &'static str| {
        let client = client.clone();
        let url = format!("{base}/grants?user={user}");
        async move {
            client
                .get(url)
                .bearer_auth(TOKEN)
                .send()
                .await
                .expect("answered")
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    let response = client
        .post(format!("{base}/grants"))
        .bearer_auth(TOKEN)
        .json(&json!({"user": "wechat:amy", "scene": "weather", "expires_at": "2099-01-01T00:00:00Z"}))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 201);
    let response = client
        .post(format!("{base}/grants"))
        .bearer_auth(TOKEN)
        .json(&json!({"user": "wechat:amy", "scene": "x", "expires_at": "tomorrow"}))
        .send()
        .await
        .expect("answered");
    let (status, error) = error_of(response).await;
    assert_eq!(
        (status, &error["field"]),
        (400, &json!("expires_at")),
        "{error}"
    );
    assert_eq!(
        grants("wechat:amy").await,
        json!([{"user": "wechat:amy", "scene": "weather", "expires_at": "2099-01-01T00:00:00.000Z", "granted_by": "api"}])
    );
    assert_eq!(grants("wechat:bob").await, json!([]));

    let response = client
        .delete(format!("{base}/grants?scene=weather"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answered");
    let (status, error) = error_of(response).await;
    assert_eq!((status, &error["field"]), (400, &json!("user")), "{error}");
    let revoked: Value = client
        .delete(format!("{base}/grants?user=wechat:amy&scene=weather"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    assert_eq!(revoked, json!({"revoked": 1}));
    assert_eq!(grants("wechat:amy").await, json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_send_through_the_phone_retried_with_its_key_is_typed_once() {
    let adb = AdbServer::start();
    let phone = support::phone(&adb, tapwire_phone_sim::SimConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let tapwire = tapwire_run_env(
        &adb,
        &phone.serial,
        &dir.path().join("t.db"),
        &[],
        &[("TAPWIRE_API_TOKENS", TOKEN)],
    );
    let base = format!("http://{}/api/v1", tapwire.listen_addr());
    let client = reqwest::Client::new();
    let message =
        json!({"target": phone.serial, "conversation": "文件传输助手", "text": "备份完成"});
    let mut ids = Vec::new();
    for _ in 0..3 {
        let response = client
            .post(format!("{base}/messages"))
            .bearer_auth(TOKEN)
            .header("Idempotency-Key", "backup-7")
            .json(&message)
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status(), 202);
        let answer: Value = response.json().await.expect("json");
        ids.push(answer["id"].clone());
        // The retries come while the first is being typed, and after.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let sent = support::wait_for_sent(&phone.control, 1, Duration::from_secs(30)).await;
    assert_eq!(
        support::sent_to(&sent, "文件传输助手"),
        ["备份完成"],
        "log: {}",
        tapwire.log()
    );
    // Past the outbox's sweep and the phone's check of its send: nothing more is typed.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(phone.control.sent().len(), 1, "{:?}", phone.control.sent());
    let action: Value = client
        .get(format!("{base}/actions/{}", ids[0].as_str().expect("id")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    assert_eq!(action["status"], "done", "{action}");
    drop(tapwire);
    phone.sim.shutdown().await;
}
