//! End to end for images, files and news: the real `tapwire` binary with a WeCom app
//! (callbacks in, uploads and sends out) and a WeCom group robot, both pointed at one
//! loopback stand-in for qyapi.weixin.qq.com, and a webhook handler (served by the same
//! stand-in) that answers with attachments. No phone: a config of platforms runs alone.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use md5::{Digest, Md5};
use support::Tapwire;
use tapwire::adapter::wecom_crypto::WeComCrypto;

const TOKEN: &str = "QDG6eK";
const KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const CORP_ID: &str = "wx5823bf96d3bd56c7";
const AGENT_ID: u32 = 1000002;
const SECRET_VAR: &str = "TAPWIRE_TEST_MEDIA_APP_SECRET";
/// The media id the stand-in's media/get knows: a member's image.
const MEMBER_IMAGE: &str = "M-IMG";

fn dot_png() -> PathBuf {
    support::repo_root().join("fixtures/media/dot.png")
}

/// One request the stand-in got, in the order they came.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    /// media/upload (app) or webhook/upload_media (robot): which, `type`, the part's
    /// filename and bytes.
    Upload {
        by: &'static str,
        kind: String,
        filename: String,
        bytes: Vec<u8>,
    },
    /// message/send (app) or webhook/send (robot): who and the body.
    Send {
        by: &'static str,
        body: serde_json::Value,
    },
    /// media/get for this media id.
    Download(String),
    /// The webhook handler got this event.
    Hook(serde_json::Value),
}

#[derive(Clone)]
struct Stand {
    seen: Arc<Mutex<Vec<Seen>>>,
    /// What the handler answers to a text message (it answers an image itself).
    report: Arc<serde_json::Value>,
}

impl Stand {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
    fn push(&self, seen: Seen) {
        self.seen.lock().expect("lock").push(seen);
    }
}

async fn gettoken(Query(query): Query<HashMap<String, String>>) -> Json<serde_json::Value> {
    if query.get("corpsecret").map(String::as_str) != Some("app-secret") {
        return Json(serde_json::json!({"errcode": 40001, "errmsg": "invalid credential"}));
    }
    Json(
        serde_json::json!({"errcode": 0, "errmsg": "ok", "access_token": "tok-1", "expires_in": 7200}),
    )
}

/// The one part of a multipart body, as (its name, its filename, its bytes); WeCom's
/// uploads take the file as the part named "media" (90253, 91770).
fn only_part(headers: &HeaderMap, body: &[u8]) -> Option<(String, String, Vec<u8>)> {
    let content_type = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let boundary = content_type.strip_prefix("multipart/form-data; boundary=")?;
    let inner = body
        .strip_prefix(format!("--{boundary}\r\n").as_bytes())?
        .strip_suffix(format!("\r\n--{boundary}--\r\n").as_bytes())?;
    let split = inner.windows(4).position(|w| w == b"\r\n\r\n")?;
    let part_headers = std::str::from_utf8(&inner[..split]).ok()?;
    let quoted = |key: &str| {
        let (_, rest) = part_headers.split_once(&format!("{key}=\""))?;
        rest.split('"').next().map(str::to_string)
    };
    Some((
        quoted("name")?,
        quoted("filename")?,
        inner[split + 4..].to_vec(),
    ))
}

async fn app_upload(
    State(stand): State<Stand>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Json<serde_json::Value> {
    let Some(("media", filename, bytes)) = only_part(&headers, &body)
        .as_ref()
        .map(|(n, f, b)| (n.as_str(), f.clone(), b.clone()))
    else {
        return Json(serde_json::json!({"errcode": 41004, "errmsg": "media data missing"}));
    };
    if query.get("access_token").map(String::as_str) != Some("tok-1") {
        return Json(serde_json::json!({"errcode": 40014, "errmsg": "invalid access_token"}));
    }
    stand.push(Seen::Upload {
        by: "app",
        kind: query.get("type").cloned().unwrap_or_default(),
        filename,
        bytes,
    });
    Json(
        serde_json::json!({"errcode": 0, "errmsg": "", "type": "image", "media_id": "app-media-1", "created_at": "1380000000"}),
    )
}

async fn app_send(
    State(stand): State<Stand>,
    Json(body): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    stand.push(Seen::Send { by: "app", body });
    Json(serde_json::json!({"errcode": 0, "errmsg": "ok", "invaliduser": ""}))
}

/// 90254: the bytes with their name, or an error as JSON.
async fn media_get(
    State(stand): State<Stand>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let media_id = query.get("media_id").cloned().unwrap_or_default();
    stand.push(Seen::Download(media_id.clone()));
    if media_id != MEMBER_IMAGE {
        return Json(serde_json::json!({"errcode": 40007, "errmsg": "invalid media_id"}))
            .into_response();
    }
    (
        [
            (header::CONTENT_TYPE, "image/png"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"M-IMG.png\"",
            ),
        ],
        std::fs::read(dot_png()).expect("fixture"),
    )
        .into_response()
}

/// 91770: checks the key, and an image's MD5 against its base64-decoded bytes.
async fn robot_send(
    State(stand): State<Stand>,
    Query(query): Query<HashMap<String, String>>,
    Json(body): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    if query.get("key").map(String::as_str) != Some("robot-key") {
        return Json(serde_json::json!({"errcode": 93000, "errmsg": "invalid webhook url"}));
    }
    if body["msgtype"] == "image" {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body["image"]["base64"].as_str().unwrap_or_default())
            .unwrap_or_default();
        if hex::encode(Md5::digest(&bytes)) != body["image"]["md5"].as_str().unwrap_or_default() {
            // The stand-in's own errcode: WeCom's is not documented.
            return Json(serde_json::json!({"errcode": 40099, "errmsg": "image md5 mismatch"}));
        }
    }
    stand.push(Seen::Send { by: "robot", body });
    Json(serde_json::json!({"errcode": 0, "errmsg": "ok"}))
}

async fn robot_upload(
    State(stand): State<Stand>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Json<serde_json::Value> {
    if query.get("key").map(String::as_str) != Some("robot-key") {
        return Json(serde_json::json!({"errcode": 93000, "errmsg": "invalid webhook url"}));
    }
    let Some((name, filename, bytes)) = only_part(&headers, &body) else {
        return Json(serde_json::json!({"errcode": 41004, "errmsg": "media data missing"}));
    };
    if name != "media" {
        return Json(serde_json::json!({"errcode": 41004, "errmsg": "media data missing"}));
    }
    stand.push(Seen::Upload {
        by: "robot",
        kind: query.get("type").cloned().unwrap_or_default(),
        filename,
        bytes,
    });
    Json(
        serde_json::json!({"errcode": 0, "errmsg": "ok", "type": "file", "media_id": "robot-media-1", "created_at": "1380000000"}),
    )
}

/// The handler: an image is answered with itself (from the path Tapwire saved it at) and
/// forwarded to the robot's group; text with the report queued in `report`.
async fn hook(
    State(stand): State<Stand>,
    Json(event): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    stand.push(Seen::Hook(event.clone()));
    let image_path = event["content"][0]["path"].as_str().map(str::to_string);
    Json(match (event["content"][0]["type"].as_str(), image_path) {
        (Some("image"), Some(path)) => serde_json::json!({"actions": [
            {"action": "reply", "text": "收到图片", "attachments": [{"kind": "image", "path": path}]},
            {"action": "forward", "target": "ops", "conversation": ""},
        ]}),
        (Some("text"), _) => (*stand.report).clone(),
        _ => serde_json::json!({"actions": [{"action": "reply", "text": "没有收到图片"}]}),
    })
}

async fn serve(stand: Stand) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let api = format!("http://{}", listener.local_addr().expect("addr"));
    let app = axum::Router::new()
        .route("/cgi-bin/gettoken", get(gettoken))
        .route("/cgi-bin/message/send", post(app_send))
        .route("/cgi-bin/media/upload", post(app_upload))
        .route("/cgi-bin/media/get", get(media_get))
        .route("/cgi-bin/webhook/send", post(robot_send))
        .route("/cgi-bin/webhook/upload_media", post(robot_upload))
        .route("/hook", post(hook))
        .with_state(stand);
    tokio::spawn(async move { axum::serve(listener, app).await });
    api
}

fn start(dir: &Path, api: &str) -> Tapwire {
    let config = dir.join("tapwire.toml");
    let text = format!(
        r#"[storage]
path = {db:?}
[adapters.app]
type = "wecom_app"
corp_id = "{CORP_ID}"
agent_id = {AGENT_ID}
secret = "${{{SECRET_VAR}}}"
token = "{TOKEN}"
encoding_aes_key = "{KEY}"
base_url = "{api}"
# Every answer through message/send, where this test counts them.
passive_reply_ms = 0
[adapters.ops]
type = "wecom_robot"
url = "{api}/cgi-bin/webhook/send?key=robot-key"
[handlers.hook]
type = "webhook"
url = "{api}/hook"
[[routes]]
event = "message.received"
handler = "hook"
"#,
        db = dir.join("t.db").to_string_lossy(),
    );
    std::fs::write(&config, text).expect("write config");
    support::tapwire_config(&config, &[(SECRET_VAR, "app-secret")])
}

/// A member's message as WeCom posts it to the app's callback: query and body.
fn callback(message: &str, msg_id: u64) -> (String, String) {
    let crypto = WeComCrypto::new(TOKEN, KEY, CORP_ID).expect("crypto");
    let plain = format!(
        "<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[lisi]]></FromUserName><CreateTime>1764500000</CreateTime>{message}<MsgId>{msg_id}</MsgId><AgentID>{AGENT_ID}</AgentID></xml>"
    );
    // Signed now: one signed long ago is refused as stale.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let sealed = crypto
        .encrypt(&plain, &now.to_string(), &format!("n{msg_id}"))
        .expect("encrypt");
    (
        format!(
            "msg_signature={}&timestamp={}&nonce={}",
            sealed.signature, sealed.timestamp, sealed.nonce
        ),
        format!(
            "<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{}]]></Encrypt><AgentID><![CDATA[{AGENT_ID}]]></AgentID></xml>",
            sealed.encrypt
        ),
    )
}

async fn post_callback(tapwire: &Tapwire, message: &str, msg_id: u64) {
    let (query, body) = callback(message, msg_id);
    let answer = reqwest::Client::new()
        .post(format!(
            "http://{}/callback/app?{query}",
            tapwire.listen_addr()
        ))
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(answer.status(), 200, "log: {}", tapwire.log());
}

async fn wait_for(
    stand: &Stand,
    tapwire: &Tapwire,
    what: &str,
    done: impl Fn(&[Seen]) -> bool,
) -> Vec<Seen> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = stand.seen();
        if done(&seen) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; seen: {seen:#?}\nlog: {}",
            tapwire.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn sends<'s>(seen: &'s [Seen], who: &str) -> Vec<&'s serde_json::Value> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Send { by, body } if *by == who => Some(body),
            _ => None,
        })
        .collect()
}

/// A member's image is downloaded through media/get before the handler sees it; the
/// handler's answer, that image as an attachment, goes back up through media/upload and
/// out as `msgtype: image` with that media_id; its forward reaches the robot's group as a
/// base64 image whose MD5 the stand-in checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_members_image_is_downloaded_answered_with_itself_and_forwarded_to_a_robot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stand = Stand {
        seen: Arc::default(),
        report: Arc::new(serde_json::json!({})),
    };
    let api = serve(stand.clone()).await;
    let tapwire = start(dir.path(), &api);
    let png = std::fs::read(dot_png()).expect("fixture");

    post_callback(
        &tapwire,
        &format!("<MsgType><![CDATA[image]]></MsgType><PicUrl><![CDATA[https://wework.qpic.cn/p]]></PicUrl><MediaId><![CDATA[{MEMBER_IMAGE}]]></MediaId>"),
        8001,
    )
    .await;
    let seen = wait_for(
        &stand,
        &tapwire,
        "the app's image and the robot's",
        |seen| sends(seen, "app").len() == 2 && sends(seen, "robot").len() == 1,
    )
    .await;

    // Downloaded before the handler saw it, into media/ beside the database.
    let hook = seen
        .iter()
        .position(|s| matches!(s, Seen::Hook(_)))
        .expect("the handler was called");
    assert_eq!(seen[0], Seen::Download(MEMBER_IMAGE.into()), "{seen:#?}");
    let Seen::Hook(event) = &seen[hook] else {
        unreachable!()
    };
    let segment = &event["content"][0];
    assert_eq!(segment["url"], "https://wework.qpic.cn/p");
    let path = PathBuf::from(segment["path"].as_str().expect("a local path"));
    assert_eq!(path.parent(), Some(dir.path().join("media").as_path()));
    assert!(path.to_string_lossy().ends_with("-M-IMG.png"), "{path:?}");
    assert_eq!(std::fs::read(&path).expect("saved"), png);

    // Up as an image, then sent by the media_id the upload answered.
    let upload = seen
        .iter()
        .position(|s| matches!(s, Seen::Upload { by: "app", .. }))
        .expect("uploaded");
    let Seen::Upload {
        kind,
        filename,
        bytes,
        ..
    } = &seen[upload]
    else {
        unreachable!()
    };
    assert_eq!(kind, "image");
    assert_eq!(
        Some(filename.as_str()),
        path.file_name().and_then(|n| n.to_str())
    );
    assert_eq!(bytes, &png);
    let app = sends(&seen, "app");
    assert_eq!(app[0]["text"]["content"], "收到图片", "the text first");
    let image_send = seen
        .iter()
        .position(|s| matches!(s, Seen::Send { by: "app", body } if body["msgtype"] == "image"))
        .expect("sent");
    assert!(upload < image_send, "uploaded before it was sent");
    assert_eq!(
        *app.last().expect("image"),
        &serde_json::json!({"touser": "lisi", "msgtype": "image", "agentid": AGENT_ID, "image": {"media_id": "app-media-1"}})
    );

    // The forward: the image alone (no text), its MD5 checked by the stand-in.
    let robot = sends(&seen, "robot");
    assert_eq!(robot[0]["msgtype"], "image");
    assert_eq!(
        robot[0]["image"]["base64"],
        base64::engine::general_purpose::STANDARD.encode(&png)
    );
    assert!(
        !tapwire.log().contains("app-secret"),
        "the secret is never logged"
    );
}

/// A handler's report to the robot's group: its text, then an image (base64 and MD5), a
/// file (upload_media, then the file by its media_id) and news, in that order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_report_reaches_a_robots_group_as_text_image_file_and_news() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("r.csv");
    std::fs::write(&csv, "day,who\nmon,张伟\n").expect("write");
    let stand = Stand {
        seen: Arc::default(),
        report: Arc::new(serde_json::json!({"actions": [{
            "action": "send", "target": "ops", "conversation": "", "text": "本周报表",
            "attachments": [
                {"kind": "image", "path": dot_png()},
                {"kind": "file", "path": csv, "name": "周报.csv"},
                {"kind": "news", "articles": [{"title": "发布说明", "url": "https://example.com/notes", "picurl": "https://example.com/p.png"}]},
            ],
        }]})),
    };
    let api = serve(stand.clone()).await;
    let tapwire = start(dir.path(), &api);

    post_callback(
        &tapwire,
        "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[报表]]></Content>",
        8101,
    )
    .await;
    let seen = wait_for(&stand, &tapwire, "four robot messages", |seen| {
        sends(seen, "robot").len() == 4
    })
    .await;

    let robot: Vec<&Seen> = seen
        .iter()
        .filter(|s| {
            matches!(
                s,
                Seen::Send { by: "robot", .. } | Seen::Upload { by: "robot", .. }
            )
        })
        .collect();
    let png = std::fs::read(dot_png()).expect("fixture");
    let expected = [
        Seen::Send {
            by: "robot",
            body: serde_json::json!({"msgtype": "text", "text": {"content": "本周报表"}}),
        },
        Seen::Send {
            by: "robot",
            body: serde_json::json!({"msgtype": "image", "image": {
                "base64": base64::engine::general_purpose::STANDARD.encode(&png),
                "md5": hex::encode(Md5::digest(&png)),
            }}),
        },
        Seen::Upload {
            by: "robot",
            kind: "file".into(),
            filename: "周报.csv".into(),
            bytes: "day,who\nmon,张伟\n".as_bytes().to_vec(),
        },
        Seen::Send {
            by: "robot",
            body: serde_json::json!({"msgtype": "file", "file": {"media_id": "robot-media-1"}}),
        },
        Seen::Send {
            by: "robot",
            body: serde_json::json!({"msgtype": "news", "news": {"articles": [
                {"title": "发布说明", "url": "https://example.com/notes", "picurl": "https://example.com/p.png"}
            ]}}),
        },
    ];
    assert_eq!(
        robot.into_iter().cloned().collect::<Vec<_>>(),
        expected,
        "log: {}",
        tapwire.log()
    );
    assert!(
        sends(&seen, "app").is_empty(),
        "nothing went back to the member"
    );
    assert!(
        !tapwire.log().contains("robot-key"),
        "the key is never logged"
    );
}
