//! End to end through the router: the real `tapwire` binary, a virtual phone behind a
//! real adb server, and real HTTP webhooks, plugins and schedules behind the routes.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use support::{
    AdbServer, Tapwire, assert_answered_in_order, phone, repo_root, sent_to, tapwire_once,
    tapwire_run, wait_for_sent,
};
use tapwire_phone_sim::{IncomingMessage, SimConfig, SimControl};

fn incoming(chat: &str, text: &str) -> IncomingMessage {
    IncomingMessage {
        chat: chat.into(),
        group: false,
        sender: None,
        text: text.into(),
        system: false,
    }
}

/// A config with this phone, the given plugins directory and `body` appended.
fn write_config(dir: &Path, adb: &AdbServer, serial: &str, plugins: &Path, body: &str) -> PathBuf {
    let path = dir.join("tapwire.toml");
    let text = format!(
        "[storage]\npath = {db:?}\n[plugins]\ndir = {plugins:?}\n[[phones]]\nserial = {serial:?}\nadb_server = {adb:?}\npoll_ms = 50\npacing = {{ enabled = false }}\n{body}",
        db = dir.join("t.db").to_string_lossy(),
        plugins = plugins.to_string_lossy(),
        adb = adb.addr(),
    );
    std::fs::write(&path, text).expect("write config");
    path
}

/// Texts sent to `chat` once at least `count` arrived there (or the timeout passed).
async fn wait_for_chat(
    control: &SimControl,
    chat: &str,
    count: usize,
    timeout: Duration,
) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let texts = sent_to(&control.sent(), chat);
        if texts.len() >= count || Instant::now() > deadline {
            return texts;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Three SIGKILLs at seeded random points of a 100-message burst over 5 chats, each
/// followed by a restart on the same database: every message is answered exactly once,
/// in order per chat. The seed is printed; `TAPWIRE_TEST_SEED=N` repeats a run's choices
/// (the phone's timing still varies).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_at_random_points_of_a_100_message_burst_answers_each_once_in_order() {
    // Three private chats and two groups, whose members take turns.
    let chats = ["李雷", "韩梅梅", "张伟", "项目群", "家庭群"];
    kill_9_during_a_burst(&chats, None).await;
}

/// The same at a real phone's pace (a dump 150 ms, a reply about half a second): the list
/// re-sorts under nearly every tap, chats fill the screen before they are read, and the
/// kills land in the middle of slow steps.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_a_burst_at_a_real_phones_pace_answers_each_once_in_order() {
    let chats = ["李雷", "韩梅梅", "张伟", "王芳", "陈静"];
    kill_9_during_a_burst(
        &chats,
        Some(tapwire_phone_sim::Latency {
            dump_ms: 150,
            screencap_ms: 0,
            tap_ms: 40,
            input_ms: 80,
        }),
    )
    .await;
}

/// The same with two groups among the chats: the list re-sorts under nearly every tap,
/// chats open by mistake before they were ever read, and their badges go with the open.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_a_burst_at_a_real_phones_pace_with_groups() {
    let chats = ["李雷", "韩梅梅", "张伟", "项目群", "周末群"];
    kill_9_during_a_burst(
        &chats,
        Some(tapwire_phone_sim::Latency {
            dump_ms: 150,
            screencap_ms: 0,
            tap_ms: 40,
            input_ms: 80,
        }),
    )
    .await;
}

/// `chats` ending in 群 are groups.
async fn kill_9_during_a_burst(chats: &[&str], latency: Option<tapwire_phone_sim::Latency>) {
    let (seed, mut rng) = support::seeded_rng();
    let adb = AdbServer::start();
    let phone = phone(&adb, SimConfig::default()).await;
    if let Some(latency) = latency {
        phone.control.set_latency(latency);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("t.db");
    let members = ["王芳", "陈静", "赵强"];
    // Three kills, each once this many answers went out, then after a random pause so
    // that they land in different phases (reading, storing, typing, verifying).
    let mut kill_at: Vec<usize> = (0..3).map(|i| 10 + i * 28 + rng.usize(..20)).collect();
    kill_at.sort_unstable();
    let mut tapwire = tapwire_run(&adb, &phone.serial, &db, &[]);
    // SIGKILL, keep its log, start again on the same database.
    let kill_and_restart = |mut old: Tapwire, logs: &mut String| {
        old.kill();
        logs.push_str(&old.log());
        tapwire_run(&adb, &phone.serial, &db, &[])
    };
    let mut expected = Vec::new();
    let mut kills = 0;
    let mut logs = String::new();
    for i in 0..100 {
        let chat = chats[rng.usize(..chats.len())];
        let text = format!("{chat} 消息 {i}");
        phone.control.incoming(&if chat.ends_with('群') {
            IncomingMessage {
                sender: Some(members[i % members.len()].into()),
                group: true,
                ..incoming(chat, &text)
            }
        } else {
            incoming(chat, &text)
        });
        expected.push((chat, text));
        tokio::time::sleep(Duration::from_millis(20 + rng.u64(..100))).await;
        if kill_at
            .first()
            .is_some_and(|&at| phone.control.sent().len() >= at)
        {
            kill_at.remove(0);
            tokio::time::sleep(Duration::from_millis(rng.u64(..400))).await;
            kills += 1;
            tapwire = kill_and_restart(tapwire, &mut logs);
        }
    }
    // Kills still due once the burst is in: made while the backlog is answered.
    let deadline = Instant::now() + Duration::from_secs(240);
    while let Some(&at) = kill_at.first() {
        if phone.control.sent().len() >= at.min(expected.len() - 5) {
            kill_at.remove(0);
            tokio::time::sleep(Duration::from_millis(rng.u64(..400))).await;
            kills += 1;
            tapwire = kill_and_restart(tapwire, &mut logs);
        }
        assert!(
            Instant::now() < deadline,
            "stalled before kill {kills} (seed {seed}); log: {logs}{}",
            tapwire.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sent = wait_for_sent(&phone.control, expected.len(), Duration::from_secs(240)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let again = phone.control.sent();
    assert_eq!(
        again.len(),
        sent.len(),
        "late duplicates (seed {seed}); log: {logs}{}",
        tapwire.log()
    );
    assert_eq!(kills, 3, "seed {seed}");
    assert_answered_in_order(&again, &expected, || {
        format!("seed {seed}, {kills} kills; log: {logs}{}", tapwire.log())
    });
    drop(tapwire);
    phone.sim.shutdown().await;
}

/// A slow answer is delivered by going back to its chat; just before that tap a message
/// lands in a chat never read before, which jumps to the top and opens instead. Opening
/// it cleared its badge: it must still be read and answered (it once was lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_chat_opened_by_mistake_on_the_way_to_deliver_is_still_answered() {
    let adb = AdbServer::start();
    let phone = phone(&adb, SimConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).expect("plugins dir");
    // The answer comes after the phone has left the chat (it waits 1.5 s for replies).
    let body = r#"[[routes]]
event = "message.received"
handler = "later"
[handlers.later]
type = "pieces"
pieces = ["稍等", "好了"]
interval_ms = 1500
"#;
    let config = write_config(dir.path(), &adb, &phone.serial, &plugins, body);
    let tapwire = support::tapwire_config(&config, &[]);
    phone.control.incoming(&incoming("李雷", "在吗"));
    // Once 李雷 has been read, the next tap on the list meets the arrival.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !tapwire.log().contains("在吗") {
        assert!(
            Instant::now() < deadline,
            "never read; log: {}",
            tapwire.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    phone.control.set_faults(tapwire_phone_sim::Faults {
        arrives_before_next_list_tap: Some(tapwire_phone_sim::Arrival {
            chat: "赵敏".into(),
            text: "赵敏 刚到".into(),
            ..Default::default()
        }),
        ..Default::default()
    });
    let li_lei = wait_for_chat(&phone.control, "李雷", 1, Duration::from_secs(30)).await;
    let zhao_min = wait_for_chat(&phone.control, "赵敏", 1, Duration::from_secs(30)).await;
    let log = tapwire.log();
    assert!(
        log.contains("the chat that opened is not the row tapped"),
        "the arrival did not move the list under the tap; log: {log}"
    );
    assert_eq!(li_lei, ["稍等好了"], "log: {log}");
    assert_eq!(
        zhao_min,
        ["稍等好了"],
        "the chat opened by mistake; log: {log}"
    );
    drop(tapwire);
    phone.sim.shutdown().await;
}

/// A receiver for webhook deliveries: `/flaky` fails twice per delivery id and then
/// answers; `/down` fails until `up` is set; `/slow` answers after a pause.
#[derive(Clone, Default)]
struct Hooks {
    flaky_attempts: Arc<AtomicUsize>,
    delivery_ids: Arc<std::sync::Mutex<Vec<String>>>,
    up: Arc<AtomicBool>,
}

fn reply(text: String) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "actions": [{ "action": "reply", "text": text }] }))
}

fn text_of(event: &serde_json::Value) -> String {
    event["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn flaky(
    State(hooks): State<Hooks>,
    headers: HeaderMap,
    Json(event): Json<serde_json::Value>,
) -> Result<Json<serde_json::Value>, StatusCode> {
    let delivery = headers
        .get("x-tapwire-delivery")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    hooks.delivery_ids.lock().expect("lock").push(delivery);
    if hooks.flaky_attempts.fetch_add(1, Ordering::SeqCst) < 2 {
        return Err(StatusCode::INTERNAL_SERVER_ERROR);
    }
    Ok(reply(format!("webhook: {}", text_of(&event))))
}

async fn down(
    State(hooks): State<Hooks>,
    Json(event): Json<serde_json::Value>,
) -> Result<Json<serde_json::Value>, StatusCode> {
    if !hooks.up.load(Ordering::SeqCst) {
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    Ok(reply(format!("replayed: {}", text_of(&event))))
}

async fn slow(Json(event): Json<serde_json::Value>) -> Json<serde_json::Value> {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    reply(format!("slow: {}", text_of(&event)))
}

async fn stuck(Json(_): Json<serde_json::Value>) -> Json<serde_json::Value> {
    tokio::time::sleep(Duration::from_secs(30)).await;
    reply("too late".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_retry_then_dead_letter_and_replay_and_slow_answers_are_acknowledged() {
    let hooks = Hooks::default();
    let app = axum::Router::new()
        .route("/flaky", post(flaky))
        .route("/down", post(down))
        .route("/slow", post(slow))
        .route("/stuck", post(stuck))
        .with_state(hooks.clone());
    let (base, server) = support::serve(app).await;

    let adb = AdbServer::start();
    let phone = phone(&adb, SimConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let body = format!(
        r##"ack_after_ms = 700
give_up_after_ms = 2500
ack_text = "working on it"
timeout_text = "gave up"
[[routes]]
event = "message.received"
handler = "bot"
[handlers.bot]
type = "pipeline"
fallback = "echo"
prefixes = [
  {{ prefix = "#", handler = "flaky" }},
  {{ prefix = "!", handler = "down" }},
  {{ prefix = "~", handler = "slow" }},
  {{ prefix = "^", handler = "stuck" }},
]
[handlers.flaky]
type = "webhook"
url = "{base}/flaky"
attempts = 4
backoff_ms = 50
[handlers.down]
type = "webhook"
url = "{base}/down"
attempts = 2
backoff_ms = 20
[handlers.slow]
type = "webhook"
url = "{base}/slow"
[handlers.stuck]
type = "webhook"
url = "{base}/stuck"
timeout_ms = 60000
"##
    );
    let config = write_config(
        dir.path(),
        &adb,
        &phone.serial,
        &dir.path().join("no-plugins"),
        &body,
    );
    let tapwire = support::tapwire_config(&config, &[]);
    let c = &phone.control;

    c.incoming(&incoming("李雷", "#天气"));
    let flaky_answers = wait_for_chat(c, "李雷", 1, Duration::from_secs(60)).await;
    assert_eq!(flaky_answers, ["webhook: 天气"], "log: {}", tapwire.log());
    let ids = hooks.delivery_ids.lock().expect("lock").clone();
    assert_eq!(ids.len(), 3, "two failures, then success: {ids:?}");
    assert!(
        ids.iter().all(|id| id == &ids[0] && !id.is_empty()),
        "one delivery id across retries: {ids:?}"
    );

    c.incoming(&incoming("韩梅梅", "!ping"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let config_arg = config.to_string_lossy().to_string();
    let letter = loop {
        let (ok, out) = tapwire_once(
            &["dlq", "list", "--json", "--config", &config_arg],
            Duration::from_secs(30),
        );
        assert!(ok, "{out}");
        if let Some(line) = out.lines().find(|l| l.starts_with('{')) {
            break serde_json::from_str::<serde_json::Value>(line).expect("json line");
        }
        assert!(
            Instant::now() < deadline,
            "no dead letter; log: {}",
            tapwire.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(letter["handler"], "down");
    assert_eq!(letter["attempts"], 2);
    assert_eq!(
        text_of(&letter["event"]),
        "ping",
        "the event as the webhook got it"
    );
    assert!(
        sent_to(&c.sent(), "韩梅梅").is_empty(),
        "nothing answered yet"
    );

    // The receiver is back: a replay delivers it, and the running controller sends the answer.
    hooks.up.store(true, Ordering::SeqCst);
    let id = letter["id"].as_str().expect("id").to_string();
    let (ok, out) = tapwire_once(
        &["dlq", "replay", &id, "--config", &config_arg],
        Duration::from_secs(30),
    );
    assert!(ok && out.contains("delivered"), "{out}");
    let replayed = wait_for_chat(c, "韩梅梅", 1, Duration::from_secs(30)).await;
    assert_eq!(replayed, ["replayed: ping"], "log: {}", tapwire.log());
    let (ok, out) = tapwire_once(
        &["dlq", "replay", &id, "--config", &config_arg],
        Duration::from_secs(30),
    );
    assert!(
        !ok && out.contains("no such dead letter"),
        "a letter replays once: {out}"
    );

    // Slow work: acknowledged first, the answer follows. Stuck work: cancelled, user told.
    c.incoming(&incoming("张伟", "~report"));
    let slow_answers = wait_for_chat(c, "张伟", 2, Duration::from_secs(30)).await;
    assert_eq!(
        slow_answers,
        ["working on it", "slow: report"],
        "log: {}",
        tapwire.log()
    );
    c.incoming(&incoming("王芳", "^forever"));
    let stuck_answers = wait_for_chat(c, "王芳", 2, Duration::from_secs(30)).await;
    assert_eq!(
        stuck_answers,
        ["working on it", "gave up"],
        "log: {}",
        tapwire.log()
    );

    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        sent_to(&c.sent(), "韩梅梅").len(),
        1,
        "replayed answer sent once"
    );
    drop(tapwire);
    server.abort();
    phone.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crashing_hanging_and_babbling_plugins_do_not_stop_other_chats() {
    let adb = AdbServer::start();
    let phone = phone(&adb, SimConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = repo_root().join("controller/tests/fixtures/plugins");
    let body = r#"[[routes]]
event = "message.received"
handler = "bot"
[handlers.bot]
type = "pipeline"
scenes = ["crashy", "hangy", "garbage"]
fallback = "echo"
[permissions]
admins = ["wechat:李雷", "wechat:韩梅梅", "wechat:王芳"]
"#;
    let config = write_config(dir.path(), &adb, &phone.serial, &plugins, body);
    let tapwire = support::tapwire_config(&config, &[]);
    let c = &phone.control;
    c.incoming(&incoming("李雷", "crashy crash"));
    c.incoming(&incoming("韩梅梅", "hangy hang"));
    c.incoming(&incoming("王芳", "garbage ping"));
    c.incoming(&incoming("陈静", "还在吗"));
    let sent = wait_for_sent(c, 4, Duration::from_secs(60)).await;
    let context = || format!("sent {sent:?}; log: {}", tapwire.log());
    assert_eq!(sent_to(&sent, "陈静"), ["还在吗"], "{}", context());
    assert_eq!(sent_to(&sent, "王芳"), ["still fine"], "{}", context());
    assert_eq!(
        sent_to(&sent, "李雷"),
        ["crashy is unavailable right now; please try again shortly."],
        "{}",
        context()
    );
    assert_eq!(
        sent_to(&sent, "韩梅梅"),
        ["hangy hang took too long and was stopped. Please try again."],
        "{}",
        context()
    );
    // After its restart the crashed plugin answers again.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        c.incoming(&incoming("李雷", "crashy ping"));
        let answers = wait_for_chat(
            c,
            "李雷",
            sent_to(&c.sent(), "李雷").len() + 1,
            Duration::from_secs(10),
        )
        .await;
        if answers.last().is_some_and(|a| a == "pong") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "crashy never came back: {answers:?}; log: {}",
            tapwire.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Each fault is on record as a routable plugin.fault event.
    let faults = plugin_faults(&dir.path().join("t.db")).await;
    for (plugin, kind) in [
        ("crashy", "Exited"),
        ("hangy", "Timeout"),
        ("garbage", "Garbage"),
    ] {
        assert!(
            faults
                .iter()
                .any(|f| f["plugin"] == plugin
                    && f["fault"].as_str().is_some_and(|s| s.contains(kind))),
            "no {kind} fault for {plugin}: {faults:?}"
        );
    }
    drop(tapwire);
    phone.sim.shutdown().await;
}

async fn plugin_faults(db: &Path) -> Vec<serde_json::Value> {
    use sqlx::Row;
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(db)
        .read_only(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.expect("db");
    let rows = sqlx::query("SELECT body FROM events WHERE event_type = 'plugin.fault'")
        .fetch_all(&pool)
        .await
        .expect("query");
    rows.iter()
        .filter_map(|r| serde_json::from_str::<serde_json::Value>(&r.get::<String, _>(0)).ok())
        .map(|event| event["raw"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_schedule_reminds_a_group_through_the_phone_and_the_roster_answers_who() {
    let adb = AdbServer::start();
    let phone = phone(&adb, SimConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let body = format!(
        r#"[[routes]]
event = "message.received"
handler = "help"
[[routes]]
event = "schedule.fired"
handler = "duty"
[handlers.duty]
type = "plugin"
plugin = "roster"
[[schedules]]
id = "duty-reminder"
cron = "*/3 * * * * *"
timezone = "Asia/Shanghai"
target = "{serial}"
conversation = "产品讨论群"
"#,
        serial = phone.serial
    );
    let config = write_config(
        dir.path(),
        &adb,
        &phone.serial,
        &repo_root().join("plugins"),
        &body,
    );
    let tapwire = support::tapwire_config(&config, &[]);
    let reminders = wait_for_chat(&phone.control, "产品讨论群", 1, Duration::from_secs(60)).await;
    assert!(
        reminders
            .first()
            .is_some_and(|r| r.starts_with("今日值班: ")),
        "{reminders:?}; log: {}",
        tapwire.log()
    );
    phone
        .control
        .incoming(&incoming("张伟", "roster who 2026-11-24"));
    let who = wait_for_chat(&phone.control, "张伟", 1, Duration::from_secs(60)).await;
    assert_eq!(who, ["2026-11-24 值班: 李娜"], "log: {}", tapwire.log());
    drop(tapwire);
    phone.sim.shutdown().await;
}

/// A stand-in for WeCom's group-robot endpoint: keeps each text it is sent with the
/// errcode it answered, refusing the first one as "system busy" (errcode -1).
#[derive(Clone, Default)]
struct Robot {
    posts: Arc<std::sync::Mutex<Vec<(String, i64)>>>,
}

async fn robot_send(
    State(robot): State<Robot>,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
    Json(body): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    let mut posts = robot.posts.lock().expect("lock");
    let errcode = if query.get("key").map(String::as_str) != Some("robot-key") {
        93000
    } else if posts.is_empty() {
        -1
    } else {
        0
    };
    let text = body["text"]["content"].as_str().unwrap_or_default();
    posts.push((text.to_string(), errcode));
    Json(
        serde_json::json!({"errcode": errcode, "errmsg": if errcode == 0 { "ok" } else { "refused" }}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wechat_group_is_forwarded_to_a_wecom_robot_while_chats_are_answered() {
    let adb = AdbServer::start();
    let phone = phone(&adb, SimConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let robot = Robot::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new()
        .route("/cgi-bin/webhook/send", post(robot_send))
        .with_state(robot.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let body = format!(
        r#"[adapters.ops]
type = "wecom_robot"
url = "http://{addr}/cgi-bin/webhook/send?key=robot-key"
[[routes]]
event = "message.received"
conversation = "项目群"
handler = "to-ops"
continue = true
[[routes]]
event = "message.received"
handler = "echo"
[handlers.to-ops]
type = "forward"
target = "ops"
template = "[{{conversation}}] {{sender}}: {{text}}"
"#
    );
    let config = write_config(
        dir.path(),
        &adb,
        &phone.serial,
        &repo_root().join("plugins"),
        &body,
    );
    let tapwire = support::tapwire_config(&config, &[]);
    phone.control.incoming(&IncomingMessage {
        chat: "项目群".into(),
        group: true,
        sender: Some("王芳".into()),
        text: "明天十点开会".into(),
        system: false,
    });
    phone.control.incoming(&incoming("李雷", "只回我，不转发"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while robot.posts.lock().expect("lock").len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let echoed = wait_for_sent(&phone.control, 2, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let posts = robot.posts.lock().expect("lock").clone();
    let forwarded = "[项目群] 王芳: 明天十点开会".to_string();
    assert_eq!(
        posts,
        [(forwarded.clone(), -1), (forwarded, 0)],
        "refused once, sent once, nothing else; log: {}",
        tapwire.log()
    );
    assert_eq!(sent_to(&echoed, "项目群"), ["明天十点开会"]);
    assert_eq!(sent_to(&echoed, "李雷"), ["只回我，不转发"]);
    drop(tapwire);
    server.abort();
    phone.sim.shutdown().await;
}
