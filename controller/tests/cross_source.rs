//! Across sources: the real `tapwire run` with a virtual phone behind a real adb server
//! and official platforms beside it (their APIs one loopback stand-in, their callbacks
//! signed and encrypted as each platform does; `support/platforms.rs`). One router
//! serves them all: a WeChat group is copied to WeCom and Feishu, a WeCom member runs a
//! plugin's command within grants given on WeCom, a DingTalk group and a WeChat group
//! are bridged, one webhook answers every source and sees one event shape, and a
//! SIGKILL in the middle of a mixed burst loses nothing and repeats a message only where
//! the platform cannot be asked whether it got it (docs/events.md, "Delivery").

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use support::platforms::{
    self, DING_BOT_ID, DingMessage, FEISHU_BOT_OPEN_ID, FeishuMessage, FeishuPost, Platforms,
};
use support::{AdbServer, Tapwire, assert_answered_in_order, phone, repo_root, sent_to};
use tapwire_phone_sim::{IncomingMessage, SimConfig};

fn private(chat: &str, text: &str) -> IncomingMessage {
    IncomingMessage {
        chat: chat.into(),
        group: false,
        sender: None,
        text: text.into(),
        system: false,
    }
}

fn in_group(group: &str, sender: &str, text: &str) -> IncomingMessage {
    IncomingMessage {
        chat: group.into(),
        group: true,
        sender: Some(sender.into()),
        text: text.into(),
        system: false,
    }
}

/// A config: storage in `dir`, the phone if any, the plugins directory, then `body`.
fn write_config(
    dir: &Path,
    phone: Option<(&AdbServer, &str)>,
    plugins: Option<&Path>,
    body: &str,
) -> PathBuf {
    let path = dir.join("tapwire.toml");
    let plugins = plugins.map_or_else(|| dir.join("no-plugins"), Path::to_path_buf);
    let mut text = format!(
        "[storage]\npath = {:?}\n[plugins]\ndir = {:?}\n",
        dir.join("t.db").to_string_lossy(),
        plugins.to_string_lossy()
    );
    if let Some((adb, serial)) = phone {
        text.push_str(&format!(
            "[[phones]]\nserial = {serial:?}\nadb_server = {:?}\npoll_ms = 50\npacing = {{ enabled = false }}\n",
            adb.addr()
        ));
    }
    text.push_str(body);
    std::fs::write(&path, text).expect("write config");
    path
}

/// `tapwire run` on `config` listening on `listen`, the platforms' secrets in its
/// environment only.
fn run(config: &Path, listen: &str) -> Tapwire {
    support::tapwire_command_env(
        &[
            "run",
            "--listen",
            listen,
            "--config",
            &config.to_string_lossy(),
        ],
        config,
        &platforms::secrets(),
    )
}

async fn wait_until(
    what: &str,
    timeout: Duration,
    check: impl Fn() -> bool,
    log: impl Fn() -> String,
) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen; log: {}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// (receive_id_type, receive_id, text) of Feishu posts.
fn feishu_texts(posts: &[FeishuPost]) -> Vec<(String, String, String)> {
    posts
        .iter()
        .map(|p| {
            (
                p.receive_id_type.clone(),
                p.receive_id.clone(),
                p.text.clone(),
            )
        })
        .collect()
}

fn to_chat(chat: &str, text: &str) -> (String, String, String) {
    ("chat_id".into(), chat.into(), text.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wechat_group_goes_to_a_wecom_robot_and_a_feishu_chat_while_private_chats_are_answered() {
    let api = Platforms::default();
    let (api_url, server) = platforms::serve(api.router()).await;
    let adb = AdbServer::start();
    let phone = phone(&adb, SimConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let body = format!(
        r#"{robot}{lark}
[[routes]]
event = "message.received"
conversation = "项目群"
handler = "to-ops"
continue = true
[[routes]]
event = "message.received"
conversation = "项目群"
handler = "to-lark"
[[routes]]
event = "message.received"
handler = "echo"
[handlers.to-ops]
type = "forward"
target = "ops"
template = "[{{conversation}}] {{sender}}: {{text}}"
[handlers.to-lark]
type = "forward"
target = "lark"
conversation = "oc_ops"
template = "{{sender}}: {{text}}"
"#,
        robot = platforms::wecom_robot_section("ops", &api_url, 20),
        lark = platforms::feishu_section("lark", &api_url),
    );
    let config = write_config(dir.path(), Some((&adb, &phone.serial)), None, &body);
    let tapwire = run(&config, "127.0.0.1:0");
    let group = [
        ("王芳", "明天十点开会"),
        ("李雷", "我带投影仪"),
        ("陈静", "会议室定了吗？"),
    ];
    let c = &phone.control;
    c.incoming(&in_group("项目群", group[0].0, group[0].1));
    c.incoming(&private("韩梅梅", "只回我，不转发"));
    c.incoming(&in_group("项目群", group[1].0, group[1].1));
    c.incoming(&private("张伟", "在吗"));
    c.incoming(&in_group("项目群", group[2].0, group[2].1));
    wait_until(
        "the forwards and the answers",
        Duration::from_secs(60),
        || api.robot_posts().len() >= 3 && api.feishu_shown().len() >= 3 && c.sent().len() >= 2,
        || tapwire.log(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let log = || tapwire.log();
    assert_eq!(
        api.robot_posts(),
        group
            .iter()
            .map(|(who, text)| format!("[项目群] {who}: {text}"))
            .collect::<Vec<_>>(),
        "each group message once, in order, to the WeCom robot; log: {}",
        log()
    );
    let posts = api.feishu_posts();
    assert_eq!(
        feishu_texts(&posts),
        group
            .iter()
            .map(|(who, text)| to_chat("oc_ops", &format!("{who}: {text}")))
            .collect::<Vec<_>>(),
        "each group message once, in order, to the Feishu chat; log: {}",
        log()
    );
    let uuids: std::collections::HashSet<&str> = posts.iter().map(|p| p.uuid.as_str()).collect();
    assert!(
        uuids.len() == posts.len() && !uuids.contains(""),
        "every Feishu send carries its own uuid: {posts:?}"
    );
    let sent = c.sent();
    assert_eq!(
        sent_to(&sent, "韩梅梅"),
        ["只回我，不转发"],
        "log: {}",
        log()
    );
    assert_eq!(sent_to(&sent, "张伟"), ["在吗"], "log: {}", log());
    assert!(
        sent_to(&sent, "项目群").is_empty(),
        "the group is copied, not answered: {sent:?}"
    );
    drop(tapwire);
    server.abort();
    phone.sim.shutdown().await;
}

/// Posts a WeCom callback and expects WeCom's 200.
async fn say(client: &reqwest::Client, base: &str, from: &str, text: &str, msg_id: u64) {
    let status =
        platforms::post_wecom(client, base, &platforms::wecom_text(from, text, msg_id)).await;
    assert_eq!(status, 200, "{from}: {text}");
}

/// A WeCom member asks the roster plugin; permissions are WeCom users' (`wecom:USERID`),
/// granted by a WeCom admin: the same id on WeChat is someone else.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wecom_member_runs_a_plugin_command_within_the_grants_a_wecom_admin_gave() {
    let api = Platforms::default();
    let (api_url, server) = platforms::serve(api.router()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let body = format!(
        "{app}[permissions]\nadmins = [\"wecom:zhangwei\"]\n[[routes]]\nevent = \"message.received\"\nhandler = \"help\"\n",
        app = platforms::wecom_app_section("app", &api_url)
    );
    let plugins = repo_root().join("plugins");
    let config = write_config(dir.path(), None, Some(&plugins), &body);
    let tapwire = run(&config, "127.0.0.1:0");
    let base = format!("http://{}/callback/app", tapwire.listen_addr());
    let client = reqwest::Client::new();
    let answers = |user: &'static str, n: usize| {
        let api = api.clone();
        move || api.wecom_sent_to(user).len() >= n
    };
    let wait = |what: &'static str, check: Box<dyn Fn() -> bool>| {
        let tapwire = &tapwire;
        async move { wait_until(what, Duration::from_secs(30), check, || tapwire.log()).await }
    };

    // A public command; then one that needs a grant, refused.
    say(&client, &base, "lisi", "roster who 2026-11-24", 8001).await;
    say(&client, &base, "lisi", "roster list 3", 8002).await;
    wait("lisi's two answers", Box::new(answers("lisi", 2))).await;
    // The admin grants lisi on WeCom, and wangwu on WeChat.
    say(
        &client,
        &base,
        "zhangwei",
        "grant lisi roster list until 2999-12-31",
        8003,
    )
    .await;
    say(
        &client,
        &base,
        "zhangwei",
        "grant wechat:wangwu roster",
        8004,
    )
    .await;
    wait("the grants", Box::new(answers("zhangwei", 2))).await;
    say(&client, &base, "lisi", "roster list 3", 8005).await;
    say(&client, &base, "wangwu", "roster list 3", 8006).await;
    say(&client, &base, "zhangwei", "roster list 2", 8007).await;
    wait("lisi's third answer", Box::new(answers("lisi", 3))).await;
    wait("wangwu's answer", Box::new(answers("wangwu", 1))).await;
    wait("the admin's list", Box::new(answers("zhangwei", 3))).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let refused = "You may not use roster list; ask an admin for a grant.";
    let lisi = api.wecom_sent_to("lisi");
    assert_eq!(lisi.len(), 3, "{lisi:?}; log: {}", tapwire.log());
    assert_eq!(lisi[0], "2026-11-24 值班: 李娜", "the plugin's data");
    assert_eq!(lisi[1], refused);
    assert!(lisi[2].starts_with("未来 3 天值班:"), "granted: {lisi:?}");
    assert_eq!(lisi[2].lines().count(), 4, "{lisi:?}");
    let zhangwei = api.wecom_sent_to("zhangwei");
    assert_eq!(
        zhangwei[..2],
        [
            "Granted wecom:lisi roster list until 3000-01-01.",
            "Granted wechat:wangwu roster."
        ],
        "a WeCom admin's grants name WeCom users unless told otherwise"
    );
    assert!(zhangwei[2].starts_with("未来 2 天值班:"), "{zhangwei:?}");
    assert_eq!(
        api.wecom_sent_to("wangwu"),
        [refused],
        "wechat:wangwu's grant is not wecom:wangwu's"
    );
    assert_eq!(api.wecom_sends().len(), 7, "nothing else went out");
    assert_eq!(api.wecom_token_fetches(), 1, "one cached token");
    drop(tapwire);
    server.abort();
}

/// A DingTalk group and a WeChat group on the phone, bridged both ways through the
/// router: what one says is typed into the other, and what Tapwire typed is not sent back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dingtalk_group_and_a_wechat_group_are_bridged_through_the_phone() {
    const GROUP: &str = "cidXGROUP==";
    let api = Platforms::default();
    let (api_url, server) = platforms::serve(api.router()).await;
    let adb = AdbServer::start();
    let phone = phone(&adb, SimConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let serial = phone.serial.clone();
    let body = format!(
        r#"{ding}
[[routes]]
event = "message.received"
source = "ding"
handler = "to-wechat"
[[routes]]
event = "message.received"
source = "{serial}"
conversation = "产品讨论群"
handler = "to-ding"
[handlers.to-wechat]
type = "forward"
target = "{serial}"
conversation = "产品讨论群"
template = "[钉钉] {{sender}}: {{text}}"
[handlers.to-ding]
type = "forward"
target = "ding"
conversation = "group:{GROUP}"
template = "[微信] {{sender}}: {{text}}"
"#,
        ding = platforms::dingtalk_http_section("ding", &api_url),
    );
    let config = write_config(dir.path(), Some((&adb, &serial)), None, &body);
    let tapwire = run(&config, "127.0.0.1:0");
    let callback = format!("http://{}/callback/ding", tapwire.listen_addr());
    let client = reqwest::Client::new();

    let (body, headers) = platforms::ding_callback(&DingMessage {
        msg_id: "msgX-1",
        group: GROUP,
        title: "发布群",
        staff_id: "lina01",
        nick: "李娜",
        text: "今晚八点发布",
        hook: format!("{api_url}/robot/sendBySession?session=g1"),
    });
    let (status, answer) = platforms::post_callback(&client, &callback, &body, &headers).await;
    assert_eq!(
        (status, answer.as_str()),
        (200, r#"{"msgtype":"empty"}"#),
        "log: {}",
        tapwire.log()
    );
    let c = &phone.control;
    wait_until(
        "the DingTalk message in the WeChat group",
        Duration::from_secs(60),
        || !sent_to(&c.sent(), "产品讨论群").is_empty(),
        || tapwire.log(),
    )
    .await;
    c.incoming(&in_group("产品讨论群", "王芳", "收到，我来盯"));
    wait_until(
        "the WeChat message in the DingTalk group",
        Duration::from_secs(60),
        || !api.ding_sends().is_empty(),
        || tapwire.log(),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        sent_to(&c.sent(), "产品讨论群"),
        ["[钉钉] 李娜: 今晚八点发布"],
        "log: {}",
        tapwire.log()
    );
    assert_eq!(
        api.ding_sends(),
        [(
            "/robot/sendBySession?session=g1".to_string(),
            "[微信] 王芳: 收到，我来盯".to_string()
        )],
        "through the group's session webhook, once, and never the bridged text back; log: {}",
        tapwire.log()
    );
    assert_eq!(c.sent().len(), 1, "nothing else typed: {:?}", c.sent());
    drop(tapwire);
    server.abort();
    phone.sim.shutdown().await;
}

/// What the webhook of the next test was asked: every event, as JSON.
#[derive(Clone, Default)]
struct Hook {
    events: Arc<Mutex<Vec<serde_json::Value>>>,
}

/// Answers every message with its platform and text; a text with 慢 takes 6 s, longer
/// than any platform's reply deadline.
async fn hook(
    State(hook): State<Hook>,
    Json(event): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    hook.events.lock().expect("lock").push(event.clone());
    let text: String = event["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["text"].as_str())
        .collect();
    if text.contains('慢') {
        tokio::time::sleep(Duration::from_secs(6)).await;
    }
    let platform = event["platform"].as_str().unwrap_or_default();
    Json(
        serde_json::json!({"actions": [{"action": "reply", "text": format!("答复 {platform}: {text}")}]}),
    )
}

/// One router for all: a message from the phone, a WeCom app, a Feishu group and a
/// DingTalk group reaches the same webhook as the same `message.received` (platform,
/// conversation, sender, segments with the mentions) and its `reply` goes back through
/// the source. A slow answer on WeCom and on Feishu: the callback is answered at once
/// (WeCom waits 5 s before it retries, Feishu 3 s), the sender is told it is coming, and
/// the answer is pushed when ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_source_reaches_one_webhook_as_one_event_shape_and_slow_answers_are_pushed_later() {
    const GROUP: &str = "cidXTEAM==";
    let api = Platforms::default();
    let recorded = Hook::default();
    let router = api.router().merge(
        axum::Router::new()
            .route("/hook", post(hook))
            .with_state(recorded.clone()),
    );
    let (api_url, server) = platforms::serve(router).await;
    let adb = AdbServer::start();
    let phone = phone(&adb, SimConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let body = format!(
        r#"{app}{lark}{ding}
[[routes]]
event = "message.received"
handler = "hook"
[handlers.hook]
type = "webhook"
url = "{api_url}/hook"
timeout_ms = 20000
"#,
        app = platforms::wecom_app_section("app", &api_url),
        lark = platforms::feishu_section("lark", &api_url),
        ding = platforms::dingtalk_http_section("ding", &api_url),
    );
    let config = write_config(dir.path(), Some((&adb, &phone.serial)), None, &body);
    let tapwire = run(&config, "127.0.0.1:0");
    let addr = tapwire.listen_addr();
    let callback = |name: &str| format!("http://{addr}/callback/{name}");
    let client = reqwest::Client::new();

    // The slow ones first, each callback timed.
    let started = Instant::now();
    say(&client, &callback("app"), "wangwu", "慢 企业微信", 9101).await;
    let wecom_took = started.elapsed();
    let (body, headers) = platforms::feishu_push(&FeishuMessage {
        message_id: "om_x_slow",
        chat_id: "oc_dm",
        chat_type: "p2p",
        sender_open_id: "ou_lina",
        text: "慢 飞书",
        mentions: &[],
    });
    let started = Instant::now();
    let (status, _) = platforms::post_callback(&client, &callback("lark"), &body, &headers).await;
    let feishu_took = started.elapsed();
    assert_eq!(status, 200, "log: {}", tapwire.log());
    assert!(
        wecom_took < Duration::from_secs(1) && feishu_took < Duration::from_secs(1),
        "callbacks answered at once, whatever the handler takes: WeCom {wecom_took:?}, Feishu {feishu_took:?}"
    );

    phone.control.incoming(&private("李雷", "你好 微信"));
    say(&client, &callback("app"), "lisi", "你好 企业微信", 9102).await;
    let (body, headers) = platforms::feishu_push(&FeishuMessage {
        message_id: "om_x_team",
        chat_id: "oc_team",
        chat_type: "group",
        sender_open_id: "ou_lina",
        text: "@_user_1 你好 飞书，抄送 @_user_2",
        mentions: &[
            ("@_user_1", FEISHU_BOT_OPEN_ID, "Tapwire"),
            ("@_user_2", "ou_wangfang", "王芳"),
        ],
    });
    assert_eq!(
        platforms::post_callback(&client, &callback("lark"), &body, &headers)
            .await
            .0,
        200
    );
    let (body, headers) = platforms::ding_callback(&DingMessage {
        msg_id: "msgX-team",
        group: GROUP,
        title: "团队群",
        staff_id: "lina01",
        nick: "李娜",
        text: "你好 钉钉",
        hook: format!("{api_url}/robot/sendBySession?session=team"),
    });
    assert_eq!(
        platforms::post_callback(&client, &callback("ding"), &body, &headers)
            .await
            .0,
        200
    );

    wait_until(
        "every answer",
        Duration::from_secs(60),
        || {
            api.wecom_sends().len() >= 3
                && api.feishu_shown().len() >= 3
                && !api.ding_sends().is_empty()
                && !phone.control.sent().is_empty()
        },
        || tapwire.log(),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let events = recorded.events.lock().expect("lock").clone();
    assert_eq!(events.len(), 6, "{events:#?}");
    let find = |platform: &str, conversation: &str| -> serde_json::Value {
        events
            .iter()
            .find(|e| e["platform"] == platform && e["conversation"]["id"] == conversation)
            .cloned()
            .unwrap_or_else(|| panic!("no {platform} event in {conversation}: {events:#?}"))
    };
    let text_of = |e: &serde_json::Value| -> String {
        e["content"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["type"] == "text")
            .filter_map(|s| s["text"].as_str())
            .collect()
    };
    let mentions = |e: &serde_json::Value| -> Vec<String> {
        e["content"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["type"] == "mention")
            .filter_map(|s| s["user"].as_str().map(str::to_string))
            .collect()
    };
    // (platform, source, conversation, kind, sender id, text)
    let serial = phone.serial.as_str();
    let expected = [
        ("wechat", serial, "李雷", "private", "李雷", "你好 微信"),
        ("wecom", "app", "lisi", "private", "lisi", "你好 企业微信"),
        ("wecom", "app", "wangwu", "private", "wangwu", "慢 企业微信"),
        ("feishu", "lark", "oc_dm", "private", "ou_lina", "慢 飞书"),
        (
            "dingtalk",
            "ding",
            &format!("group:{GROUP}"),
            "group",
            "lina01",
            "你好 钉钉",
        ),
    ];
    for (platform, source, conversation, kind, sender, text) in expected {
        let e = find(platform, conversation);
        assert_eq!(e["type"], "message.received", "{e:#}");
        assert_eq!(e["source"], source, "{e:#}");
        assert_eq!(e["conversation"]["kind"], kind, "{e:#}");
        assert_eq!(e["sender"]["id"], sender, "{e:#}");
        assert_eq!(e["sender"]["is_self"], false, "{e:#}");
        assert_eq!(text_of(&e), text, "{e:#}");
        for field in ["id", "idempotency_key", "timestamp"] {
            assert!(
                e[field].as_str().is_some_and(|v| !v.is_empty()),
                "{field}: {e:#}"
            );
        }
    }
    let feishu_team = find("feishu", "oc_team");
    assert_eq!(feishu_team["conversation"]["kind"], "group");
    assert_eq!(feishu_team["sender"]["id"], "ou_lina");
    assert_eq!(
        mentions(&feishu_team),
        [FEISHU_BOT_OPEN_ID, "ou_wangfang"],
        "{feishu_team:#}"
    );
    let ding = find("dingtalk", &format!("group:{GROUP}"));
    assert_eq!(mentions(&ding), [DING_BOT_ID], "the robot's @: {ding:#}");

    // Each answer went back through its source; the slow ones acknowledged first.
    let ack = "收到，正在处理…";
    assert_eq!(
        sent_to(&phone.control.sent(), "李雷"),
        ["答复 wechat: 你好 微信"]
    );
    assert_eq!(api.wecom_sent_to("lisi"), ["答复 wecom: 你好 企业微信"]);
    assert_eq!(
        api.wecom_sent_to("wangwu"),
        [ack, "答复 wecom: 慢 企业微信"],
        "log: {}",
        tapwire.log()
    );
    let shown = feishu_texts(&api.feishu_shown());
    let in_chat = |chat: &str| -> Vec<String> {
        shown
            .iter()
            .filter(|(_, id, _)| id == chat)
            .map(|(_, _, text)| text.clone())
            .collect()
    };
    assert_eq!(
        in_chat("oc_team"),
        [format!("答复 feishu: {}", text_of(&feishu_team))],
        "log: {}",
        tapwire.log()
    );
    assert_eq!(
        in_chat("oc_dm"),
        [ack, "答复 feishu: 慢 飞书"],
        "log: {}",
        tapwire.log()
    );
    assert_eq!(shown.len(), 3, "{shown:?}");
    assert_eq!(
        api.ding_sends(),
        [(
            "/robot/sendBySession?session=team".to_string(),
            "答复 dingtalk: 你好 钉钉".to_string()
        )]
    );
    drop(tapwire);
    server.abort();
    phone.sim.shutdown().await;
}

/// How many times each of `texts` occurs in `got`, and what `got` holds besides.
fn tally(got: &[String], texts: &[String]) -> (Vec<usize>, Vec<String>) {
    let counts = texts
        .iter()
        .map(|t| got.iter().filter(|g| *g == t).count())
        .collect();
    let strangers = got.iter().filter(|g| !texts.contains(g)).cloned().collect();
    (counts, strangers)
}

/// `got` with each text kept at its first occurrence only.
fn first_occurrences(got: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    got.iter().filter(|g| seen.insert(*g)).cloned().collect()
}

/// Two SIGKILLs in the middle of a mixed burst (WeCom callbacks, phone chats, a WeChat
/// group copied to Feishu and to a WeCom robot), each followed by a restart on the same
/// database and port. The stand-ins answer a send 250 ms after taking it, and each kill
/// lands while one is taken and unanswered: the first at Feishu, the second at the robot.
/// WeCom is played as WeCom behaves: a callback without an answer is posted again. Then:
/// every message is answered; the phone and Feishu (which runs a request's `uuid` once)
/// show each answer exactly once; WeCom's message API and its robot, which cannot be
/// asked and take no key, get each at least once, in order, and a repeat only of what a
/// kill caught in flight, which the log owns up to (docs/events.md, "Delivery").
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_mid_burst_across_platforms_loses_nothing_and_repeats_only_where_allowed() {
    let (seed, mut rng) = support::seeded_rng();
    let api = Platforms::default();
    // Each send answered a while after the platform took it: kills land in that window.
    api.answer_after(Duration::from_millis(250));
    let (api_url, server) = platforms::serve(api.router()).await;
    let adb = AdbServer::start();
    let phone = phone(&adb, SimConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let body = format!(
        r#"{app}{lark}{robot}
[[routes]]
event = "message.received"
conversation = "项目群"
handler = "to-lark"
continue = true
[[routes]]
event = "message.received"
conversation = "项目群"
handler = "to-ops"
continue = true
[[routes]]
event = "message.received"
handler = "echo"
[handlers.to-lark]
type = "forward"
target = "lark"
conversation = "oc_ops"
template = "{{sender}}: {{text}}"
[handlers.to-ops]
type = "forward"
target = "ops"
template = "{{sender}}: {{text}}"
"#,
        app = platforms::wecom_app_section("app", &api_url),
        lark = platforms::feishu_section("lark", &api_url),
        // Paced above the burst: the pace has its own test, the count is this one's.
        robot = platforms::wecom_robot_section("ops", &api_url, 600),
    );
    let config = write_config(dir.path(), Some((&adb, &phone.serial)), None, &body);
    // One port across restarts: WeCom knows one callback URL.
    let listen = format!("127.0.0.1:{}", support::free_port());
    let mut tapwire = run(&config, &listen);
    tapwire.listen_addr();
    let base = format!("http://{listen}/callback/app");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");

    let chats = ["李雷", "韩梅梅", "项目群"];
    let members = ["王芳", "陈静"];
    let users = ["lisi", "wangwu", "zhaoliu"];
    let mut phone_expected: Vec<(&str, String)> = Vec::new();
    let mut group_forwards = Vec::new();
    let mut wecom_expected: Vec<(&str, String)> = Vec::new();
    // WeCom, played as it behaves: one member's callbacks in order, each posted again
    // while it gets no answer; here for up to a minute, which outlasts any restart
    // (WeCom itself tries three times, 5 s apart).
    let mut callbacks = tokio::task::JoinSet::new();
    let mut queues = std::collections::HashMap::new();
    for user in users {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
        queues.insert(user, tx);
        let (client, base) = (client.clone(), base.clone());
        callbacks.spawn(async move {
            while let Some((query, body)) = rx.recv().await {
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    let sent = client
                        .post(format!("{base}?{query}"))
                        .body(body.clone())
                        .send()
                        .await;
                    if sent.is_ok_and(|r| r.status() == 200) {
                        break;
                    }
                    if Instant::now() > deadline {
                        return Err(body);
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            Ok(())
        });
    }
    let mut logs = String::new();
    let mut kills = 0;
    let kill_after = [12 + rng.usize(..6), 28 + rng.usize(..6)];
    for i in 0..44 {
        if i % 2 == 0 {
            let chat = chats[rng.usize(..chats.len())];
            let text = format!("{chat} 消息 {i}");
            if chat == "项目群" {
                let member = members[i % members.len()];
                phone.control.incoming(&in_group(chat, member, &text));
                group_forwards.push(format!("{member}: {text}"));
            } else {
                phone.control.incoming(&private(chat, &text));
            }
            phone_expected.push((chat, text));
        } else {
            let user = users[rng.usize(..users.len())];
            let text = format!("{user} 消息 {i}");
            wecom_expected.push((user, text.clone()));
            queues[user]
                .send(platforms::wecom_text(user, &text, 70_000 + i as u64))
                .expect("queue");
        }
        tokio::time::sleep(Duration::from_millis(40 + rng.u64(..120))).await;
        if let Some(k) = kill_after.iter().position(|&at| at == i) {
            // A group message, then the kill while its copy is with Feishu (the first
            // time) or with the WeCom robot (the second): taken there, not yet answered.
            let platform = ["feishu", "robot"][k];
            let text = format!("项目群 消息 {i}+");
            phone.control.incoming(&in_group("项目群", "王芳", &text));
            group_forwards.push(format!("王芳: {text}"));
            phone_expected.push(("项目群", text));
            let deadline = Instant::now() + Duration::from_secs(20);
            while api.in_flight(platform) == 0 {
                assert!(
                    Instant::now() < deadline,
                    "nothing reached {platform}; log: {}",
                    tapwire.log()
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            tapwire.kill();
            kills += 1;
            logs.push_str(&tapwire.log());
            tapwire = run(&config, &listen);
        }
    }
    drop(queues);
    while let Some(posted) = callbacks.join_next().await {
        assert!(
            posted.expect("task").is_ok(),
            "a callback never got WeCom's 200 (seed {seed})"
        );
    }
    let log = |tapwire: &Tapwire| format!("(seed {seed}) log: {logs}{}", tapwire.log());
    let wecom_texts: Vec<String> = wecom_expected.iter().map(|(_, t)| t.clone()).collect();
    let wecom_missing = || {
        let wecom: Vec<String> = api.wecom_sends().into_iter().map(|(_, t)| t).collect();
        wecom_texts
            .iter()
            .filter(|t| !wecom.contains(t))
            .cloned()
            .collect::<Vec<_>>()
    };
    wait_until(
        "every answer",
        Duration::from_secs(90),
        || {
            phone.control.sent().len() >= phone_expected.len()
                && wecom_missing().is_empty()
                && api.feishu_shown().len() >= group_forwards.len()
                && api.robot_posts().len() >= group_forwards.len()
        },
        // Which of the four is short, before the logs: a failure names its side.
        || {
            format!(
                "phone sent {} of {}; WeCom missing {:?}; Feishu {} of {}; robot {} of {}; {}",
                phone.control.sent().len(),
                phone_expected.len(),
                wecom_missing(),
                api.feishu_shown().len(),
                group_forwards.len(),
                api.robot_posts().len(),
                group_forwards.len(),
                log(&tapwire)
            )
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(kills, 2);

    // The phone: each exactly once, in order per chat (it reads its chats back).
    assert_answered_in_order(&phone.control.sent(), &phone_expected, || log(&tapwire));
    // Feishu: each exactly once, in order, though the one in flight at the first kill
    // was posted again (under its uuid).
    let posts = api.feishu_posts();
    assert!(
        posts.len() > group_forwards.len(),
        "the Feishu send caught by the kill was not resumed: {posts:?}; {}",
        log(&tapwire)
    );
    assert_eq!(
        feishu_texts(&api.feishu_shown()),
        group_forwards
            .iter()
            .map(|t| to_chat("oc_ops", t))
            .collect::<Vec<_>>(),
        "{}",
        log(&tapwire)
    );
    // WeCom's app API and robot: each at least once, in order; a repeat only of what a
    // kill caught in flight, which the log owns up to (bounds per conversation below).
    let resumed = |adapter: &str| {
        format!("{logs}{}", tapwire.log())
            .lines()
            .filter(|l| {
                l.contains("this may have gone out before the restart")
                    && l.contains(&format!("adapter={adapter} "))
            })
            .count()
    };
    for (name, got, expected) in [
        (
            "app",
            api.wecom_sends()
                .into_iter()
                .map(|(_, t)| t)
                .collect::<Vec<_>>(),
            wecom_texts.clone(),
        ),
        ("ops", api.robot_posts(), group_forwards.clone()),
    ] {
        let (counts, strangers) = tally(&got, &expected);
        assert!(strangers.is_empty(), "{name}: {strangers:?}");
        assert!(
            counts.iter().all(|&n| n >= 1),
            "{name} lost one: {counts:?}; {}",
            log(&tapwire)
        );
        let repeats = got.len() - expected.len();
        assert!(
            repeats <= resumed(name),
            "{name}: {repeats} repeats, {} resumed sends, {kills} kills: {got:?}; {}",
            resumed(name),
            log(&tapwire)
        );
        if name == "ops" {
            assert_eq!(first_occurrences(&got), expected, "{}", log(&tapwire));
        }
        eprintln!(
            "{name}: {} sends for {} messages, {} resumed",
            got.len(),
            expected.len(),
            resumed(name)
        );
    }
    eprintln!(
        "lark: {} posts for {} shown, {} resumed",
        posts.len(),
        group_forwards.len(),
        resumed("lark")
    );
    // The robot sends one at a time, so a kill repeats at most one of its posts; the app
    // serves members side by side (`parallel_sends`), one send in flight each, so a kill
    // repeats at most one answer per member.
    let robot_repeats = api.robot_posts().len() - group_forwards.len();
    assert!(
        robot_repeats <= kills,
        "ops: {robot_repeats} repeats, {kills} kills"
    );
    for user in users {
        let want: Vec<String> = wecom_expected
            .iter()
            .filter(|(u, _)| *u == user)
            .map(|(_, t)| t.clone())
            .collect();
        let got = api.wecom_sent_to(user);
        assert!(
            got.len() - want.len() <= kills,
            "{user}: {} repeats, {kills} kills: {got:?}; {}",
            got.len() - want.len(),
            log(&tapwire)
        );
        assert_eq!(
            first_occurrences(&got),
            want,
            "{user}'s answers in order; {}",
            log(&tapwire)
        );
    }
    drop(tapwire);
    server.abort();
    phone.sim.shutdown().await;
}
