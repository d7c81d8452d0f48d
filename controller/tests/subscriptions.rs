//! Outbound subscriptions end to end: the real `tapwire run` with a WeCom app whose API
//! is a loopback stand-in, a program subscribing through the REST API, and a receiver
//! that checks what a subscriber would. A WeCom member's message reaches the receiver
//! as the event's JSON, signed with the secret the subscription answered (checked here
//! with the hmac crate, as a receiver would); a 503 is retried under the same delivery
//! id; a refusal fails for good, is listed, and a retry through the API delivers it;
//! a deleted subscription gets nothing more; bad requests name their field; without a
//! signing key, subscriptions are off and say how to turn them on.

mod support;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use support::platforms::{self, Platforms, wecom_app_section};
use support::{Tapwire, tapwire_config};

const TOKEN: &str = "x-api-token-subscriptions";
const TOKENS_ENV: &str = "TAPWIRE_TEST_SUB_API_TOKENS";
const KEY_ENV: &str = "TAPWIRE_TEST_SUBSCRIPTION_KEY";

/// What the receiver was sent, and what it answers next.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    /// Statuses to answer, first to last; 200 once they run out.
    answers: Arc<Mutex<Vec<u16>>>,
}

impl Receiver {
    fn got(&self) -> Vec<(HeaderMap, String)> {
        self.got.lock().expect("lock").clone()
    }

    fn answer(&self, statuses: &[u16]) {
        *self.answers.lock().expect("lock") = statuses.to_vec();
    }

    fn router(&self) -> axum::Router {
        let me = self.clone();
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let me = me.clone();
                async move {
                    me.got.lock().expect("lock").push((headers, body));
                    let mut answers = me.answers.lock().expect("lock");
                    let status = if answers.is_empty() {
                        200
                    } else {
                        answers.remove(0)
                    };
                    StatusCode::from_u16(status).expect("status")
                }
            }),
        )
    }
}

async fn start(dir: &Path, key: Option<&str>) -> (Platforms, Tapwire, String) {
    let platforms = Platforms::default();
    let (api, _task) = platforms::serve(platforms.router()).await;
    let text = format!(
        "[storage]\npath = {:?}\n[server.api]\ntokens_env = \"{TOKENS_ENV}\"\nsubscription_key_env = \"{KEY_ENV}\"\n{}",
        dir.join("tapwire.db"),
        wecom_app_section("app", &api)
    );
    let config = dir.join("tapwire.toml");
    std::fs::write(&config, text).expect("write config");
    let mut env = platforms::secrets();
    env.push((TOKENS_ENV, TOKEN));
    if let Some(key) = key {
        env.push((KEY_ENV, key));
    }
    let tapwire = tapwire_config(&config, &env);
    let addr = tapwire.listen_addr();
    (platforms, tapwire, format!("http://{addr}"))
}

fn signed(secret: &str, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn wait_for(what: &str, tapwire: &Tapwire, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "never: {what}; log: {}",
            tapwire.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn events_reach_a_subscriber_signed_retried_and_retryable_once_failed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_platforms, tapwire, base) = start(dir.path(), Some("a-signing-key-from-the-env")).await;
    let receiver = Receiver::default();
    let (receiver_base, _receiver_task) = support::serve(receiver.router()).await;
    let client = reqwest::Client::new();
    let api = format!("{base}/api/v1");

    // Bad requests name their field.
    for (body, field) in [
        (
            json!({"url": format!("{receiver_base}/hook"), "events": []}),
            "events",
        ),
        (
            json!({"url": format!("{receiver_base}/hook"), "events": ["message.*", "mess*"]}),
            "events[1]",
        ),
        (json!({"url": "ftp://x/hook", "events": ["*"]}), "url"),
        (json!({"events": ["*"]}), "url"),
    ] {
        let response = client
            .post(format!("{api}/subscriptions"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status(), 400, "{body}");
        let error: Value = response.json().await.expect("json");
        assert_eq!(error["error"]["field"], field, "{error}");
    }

    let created: Value = client
        .post(format!("{api}/subscriptions"))
        .bearer_auth(TOKEN)
        .json(&json!({"url": format!("{receiver_base}/hook"), "events": ["message.*"]}))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    let id = created["id"].as_str().expect("id").to_string();
    let secret = created["secret"].as_str().expect("secret").to_string();
    assert_eq!(created["signature_header"], "X-Tapwire-Signature-256");
    let listed: Value = client
        .get(format!("{api}/subscriptions"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    assert_eq!(listed[0]["id"], id.as_str(), "{listed}");
    assert!(
        listed[0].get("secret").is_none(),
        "the secret is shown once"
    );

    // A member's message; the receiver is down for the first try.
    receiver.answer(&[503]);
    let callback = format!("{base}/callback/app");
    assert_eq!(
        platforms::post_wecom(
            &client,
            &callback,
            &platforms::wecom_text("lisi", "在吗", 1)
        )
        .await,
        200
    );
    wait_for("a delivery after the 503", &tapwire, || {
        receiver.got().len() >= 2
    })
    .await;
    let got = receiver.got();
    let (headers, body) = &got[1];
    let event: Value = serde_json::from_str(body).expect("the body is the event's JSON");
    assert_eq!(event["type"], "message.received");
    assert_eq!(event["content"][0]["text"], "在吗", "{event}");
    assert_eq!(headers["x-tapwire-event"], "message.received");
    assert_eq!(headers["x-tapwire-subscription"], id.as_str());
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        headers["x-tapwire-signature-256"].to_str().expect("ascii"),
        signed(&secret, body),
        "the signature checks with the secret the subscription answered"
    );
    assert_ne!(
        headers["x-tapwire-signature-256"].to_str().expect("ascii"),
        signed("another secret", body)
    );
    // The retry is the same delivery, so a receiver can drop a repeat by its id.
    assert_eq!(
        got[0].0["x-tapwire-delivery"],
        got[1].0["x-tapwire-delivery"]
    );
    assert_eq!(got[0].1, got[1].1);

    // Refused for good: listed as a failure, then retried through the API.
    receiver.answer(&[400]);
    platforms::post_wecom(
        &client,
        &callback,
        &platforms::wecom_text("lisi", "第二条", 2),
    )
    .await;
    let failures_url = format!("{api}/subscriptions/{id}/failures");
    let deadline = Instant::now() + Duration::from_secs(15);
    let failures = loop {
        let failures: Value = client
            .get(&failures_url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("answered")
            .json()
            .await
            .expect("json");
        if failures.as_array().is_some_and(|f| f.len() == 1) {
            break failures;
        }
        assert!(
            Instant::now() < deadline,
            "the refused delivery never listed: {failures}; log: {}",
            tapwire.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(failures[0]["status"], "failed");
    assert!(
        failures[0]["error"]
            .as_str()
            .expect("error")
            .contains("400"),
        "{failures}"
    );
    let failed_id = failures[0]["id"].as_str().expect("id");
    let response = client
        .post(format!("{api}/actions/{failed_id}/retry"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 202);
    wait_for("the retried delivery", &tapwire, || {
        receiver.got().len() >= 4
    })
    .await;
    let got = receiver.got();
    let second: Value = serde_json::from_str(&got[3].1).expect("json");
    assert_eq!(second["content"][0]["text"], "第二条");
    // Only a failed action can be sent again.
    let response = client
        .post(format!("{api}/actions/{failed_id}/retry"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 404);

    // Deleted: nothing more reaches it.
    let response = client
        .delete(format!("{api}/subscriptions/{id}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 204);
    platforms::post_wecom(
        &client,
        &callback,
        &platforms::wecom_text("lisi", "第三条", 3),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.got().len(), 4, "{:?}", receiver.got());
    drop(tapwire);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_signing_key_subscriptions_are_off_and_say_how_to_turn_them_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_platforms, tapwire, base) = start(dir.path(), None).await;
    let response = reqwest::Client::new()
        .post(format!("{base}/api/v1/subscriptions"))
        .bearer_auth(TOKEN)
        .json(&json!({"url": "http://127.0.0.1:9/hook", "events": ["*"]}))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 409);
    let error: Value = response.json().await.expect("json");
    assert_eq!(error["error"]["code"], "subscriptions_off");
    assert!(
        error["error"]["message"]
            .as_str()
            .expect("text")
            .contains("subscription_key_env"),
        "{error}"
    );
    assert!(
        tapwire.log().contains("outbound subscriptions off"),
        "{}",
        tapwire.log()
    );
}
