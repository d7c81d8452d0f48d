//! End to end: the real `tapwire` binary drives a virtual phone through a real adb server.

mod support;

use std::time::Duration;

use support::{
    AdbServer, assert_answered_in_order, phone, sent_to, tapwire_once, tapwire_run, wait_for_sent,
};
use tapwire::store::{ReadBatch, Store};
use tapwire_device_agent::tail::{TailKind, Watermark};
use tapwire_phone_sim::wechat::model::Popup;
use tapwire_phone_sim::{IncomingMessage, OwnerMessage, SimConfig};

fn incoming(chat: &str, group: bool, sender: Option<&str>, text: &str) -> IncomingMessage {
    IncomingMessage {
        chat: chat.into(),
        group,
        sender: sender.map(Into::into),
        text: text.into(),
        system: false,
    }
}

const LONG: &str = "这是一条很长的消息，用来检查换行和滚动：第一段讲的是周一早上的例会安排，第二段讲的是下午的客户拜访，第三段讲的是周五之前要交的报告，最后再说一遍，别忘了带电脑。";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn echoes_every_message_exactly_once_in_its_own_chat() {
    let adb = AdbServer::start();
    let phone = phone(&adb, SimConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let tapwire = tapwire_run(&adb, &phone.serial, &dir.path().join("t.db"), &[]);

    let c = &phone.control;
    c.incoming(&incoming("李雷", false, None, "你好"));
    c.incoming(&incoming("李雷", false, None, "你好"));
    c.incoming(&incoming("李雷", false, None, "周末一起吃饭吗？😀"));
    // The owner writes first (on the phone, which also marks the chat read), then a long
    // message arrives: only the long one is answered.
    c.outgoing_by_owner(&OwnerMessage {
        chat: "韩梅梅".into(),
        text: "我自己发的，不用回".into(),
    });
    c.incoming(&incoming("韩梅梅", false, None, LONG));
    c.incoming(&incoming("项目群", true, Some("王芳"), "明天几点开会？"));
    c.incoming(&incoming("项目群", true, Some("陈静"), "@王芳\u{2005}十点"));

    let sent = wait_for_sent(c, 6, Duration::from_secs(90)).await;
    // Give a wrong extra answer time to show up before judging.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent_after = c.sent();
    assert_eq!(
        sent_after,
        sent,
        "nothing more may be sent: {}",
        tapwire.log()
    );
    assert_eq!(
        sent_to(&sent, "李雷"),
        ["你好", "你好", "周末一起吃饭吗？😀"],
        "log: {}",
        tapwire.log()
    );
    assert_eq!(sent_to(&sent, "韩梅梅"), [LONG], "log: {}", tapwire.log());
    assert_eq!(
        sent_to(&sent, "项目群"),
        ["明天几点开会？", "@王芳\u{2005}十点"],
        "log: {}",
        tapwire.log()
    );
    assert_eq!(sent.len(), 6, "exactly one answer per message: {sent:?}");
    drop(tapwire);
    phone.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restart_in_the_middle_of_a_burst_answers_each_message_once() {
    let adb = AdbServer::start();
    let phone = phone(&adb, SimConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("t.db");
    let chats = ["李雷", "韩梅梅", "项目群"];
    let mut expected = Vec::new();
    let mut tapwire = tapwire_run(&adb, &phone.serial, &db, &[]);
    for round in 0..6 {
        for chat in chats {
            let text = format!("{chat} 第{round}条");
            phone.control.incoming(&if chat == "项目群" {
                incoming(chat, true, Some("王芳"), &text)
            } else {
                incoming(chat, false, None, &text)
            });
            expected.push((chat, text));
        }
        if round == 2 {
            // Kill it once it is busy answering, then start it again on the same database.
            wait_for_sent(&phone.control, 2, Duration::from_secs(60)).await;
            tapwire.kill();
            tapwire = tapwire_run(&adb, &phone.serial, &db, &[]);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let sent = wait_for_sent(&phone.control, expected.len(), Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent = {
        let again = phone.control.sent();
        assert_eq!(again.len(), sent.len(), "late duplicates: {again:?}");
        again
    };
    assert_answered_in_order(&sent, &expected, || format!("log: {}", tapwire.log()));
    drop(tapwire);
    phone.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_popup_is_dismissed_without_a_tap_on_anything_behind_it() {
    let adb = AdbServer::start();
    let phone = phone(&adb, SimConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let tapwire = tapwire_run(&adb, &phone.serial, &dir.path().join("t.db"), &[]);
    phone.control.popup(Popup {
        title: "发现新版本".into(),
        text: "微信 8.0.51 已发布，是否立即更新？".into(),
        buttons: vec!["以后再说".into(), "立即更新".into()],
    });
    phone
        .control
        .incoming(&incoming("李雷", false, None, "在吗"));
    let sent = wait_for_sent(&phone.control, 1, Duration::from_secs(60)).await;
    assert_eq!(sent_to(&sent, "李雷"), ["在吗"], "log: {}", tapwire.log());
    let events = phone.control.events();
    let blocked: Vec<_> = events.iter().filter(|e| e.kind == "tap_blocked").collect();
    assert!(
        blocked.is_empty(),
        "taps landed behind the popup: {blocked:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.kind.contains("popup") && e.detail.contains("以后再说")),
        "the popup was dismissed with its harmless button: {events:?}"
    );
    drop(tapwire);
    phone.sim.shutdown().await;
}

/// `tapwire run --mode MODE` against `serial` must fail and say all of `needles`.
fn run_fails_saying(adb_server: &str, serial: &str, db: &str, mode: &str, needles: &[&str]) {
    let (ok, out) = tapwire_once(
        &[
            "run",
            "--mode",
            mode,
            "--listen",
            "127.0.0.1:0",
            "--device",
            serial,
            "--adb-server",
            adb_server,
            "--db",
            db,
        ],
        Duration::from_secs(60),
    );
    assert!(!ok, "tapwire run should have failed: {out}");
    for needle in needles {
        assert!(out.contains(needle), "missing {needle:?} in: {out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn problems_the_user_must_fix_are_explained() {
    let adb = AdbServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("t.db").to_string_lossy().to_string();
    let with_version = |version: &str| SimConfig {
        wechat_version: version.into(),
        ..SimConfig::default()
    };

    // Hidden, and no accessibility service WeChat trusts to bring it back: in `tree` mode
    // (`auto` reads it from screenshots, vision_e2e.rs).
    let hidden = phone(
        &adb,
        SimConfig {
            accessibility_suite: false,
            ..with_version("8.0.56")
        },
    )
    .await;
    run_fails_saying(
        &adb.addr(),
        &hidden.serial,
        &db,
        "tree",
        &["hides its screen", "Accessibility Suite", "vision mode"],
    );

    let unknown = phone(&adb, with_version("9.1.0")).await;
    run_fails_saying(
        &adb.addr(),
        &unknown.serial,
        &db,
        "auto",
        &["9.1.0", "tapwire dump", "tapwire map draft"],
    );

    // A phone that went away: adb keeps it listed as offline.
    let gone = phone(&adb, SimConfig::default()).await;
    let serial = gone.serial.clone();
    gone.sim.shutdown().await;
    adb.wait_for_state(&serial, "offline");
    run_fails_saying(&adb.addr(), &serial, &db, "auto", &["offline", "cable"]);

    // No adb server at all: a port nobody listens on.
    let nothing = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        listener.local_addr().expect("addr").to_string()
    };
    run_fails_saying(
        &nothing,
        "x",
        &db,
        "auto",
        &["no adb server", "adb start-server"],
    );

    hidden.sim.shutdown().await;
    unknown.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messages_arriving_while_answering_are_answered_too() {
    // Slow screens leave room for messages to land between reading a chat, typing the
    // answer and leaving: each must still be answered exactly once.
    let adb = AdbServer::start();
    let phone = phone(&adb, SimConfig::default()).await;
    phone.control.set_latency(tapwire_phone_sim::Latency {
        dump_ms: 120,
        screencap_ms: 0,
        tap_ms: 20,
        input_ms: 60,
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let tapwire = tapwire_run(&adb, &phone.serial, &dir.path().join("t.db"), &[]);
    let chats = ["李雷", "韩梅梅", "张伟", "王芳", "陈静"];
    let mut expected = Vec::new();
    for i in 0..20 {
        let chat = chats[i % chats.len()];
        let text = format!("忙碌 {i}");
        phone.control.incoming(&incoming(chat, false, None, &text));
        expected.push((chat, text));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let sent = wait_for_sent(&phone.control, expected.len(), Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(phone.control.sent().len(), sent.len(), "late duplicates");
    assert_answered_in_order(&sent, &expected, || {
        format!(
            "screen: {:?}; log: {}",
            phone.control.screen(),
            tapwire.log()
        )
    });
    drop(tapwire);
    phone.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_draft_left_in_the_input_box_is_cleared_before_the_answer() {
    // What a crash in the middle of typing leaves behind: text in the box, never sent.
    let adb = AdbServer::start();
    let phone = phone(&adb, SimConfig::default()).await;
    phone
        .control
        .incoming(&incoming("李雷", false, None, "先来一条"));
    // Open the newest chat (the first row), focus the input box, type, leave.
    phone.control.tap(360, 162 + 65);
    phone.control.tap(324, 1558);
    let shell = |args: &[&str]| {
        let mut all = vec!["-s", phone.serial.as_str(), "shell"];
        all.extend_from_slice(args);
        adb.adb(&all)
    };
    shell(&["input", "text", "half%styped"]);
    shell(&["input", "keyevent", "4"]);
    shell(&["input", "keyevent", "4"]);
    let drafts: Vec<String> = phone
        .control
        .chats()
        .chats
        .iter()
        .map(|c| c.draft.clone())
        .filter(|d| !d.is_empty())
        .collect();
    assert_eq!(drafts, ["half typed"], "the setup left no draft");

    let dir = tempfile::tempdir().expect("tempdir");
    let tapwire = tapwire_run(&adb, &phone.serial, &dir.path().join("t.db"), &[]);
    phone
        .control
        .incoming(&incoming("李雷", false, None, "在吗"));
    let sent = wait_for_sent(&phone.control, 1, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        sent_to(&phone.control.sent(), "李雷"),
        ["在吗"],
        "sent {sent:?}; log: {}",
        tapwire.log()
    );
    // Typed once: the draft was deleted before typing, not noticed after a wrong attempt.
    let typed: Vec<String> = phone
        .control
        .events()
        .into_iter()
        .filter(|e| e.kind == "text")
        .map(|e| e.detail)
        .collect();
    assert_eq!(typed.len(), 2, "setup + one answer: {typed:?}");
    drop(tapwire);
    phone.sim.shutdown().await;
}

/// What the restart tests start from: `chat` sent `text`, it was answered, and the
/// controller was then killed while idle (so its bookkeeping is all in).
struct AnsweredThenKilled {
    adb: AdbServer,
    phone: support::Phone,
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    log: String,
}

async fn answered_then_killed(chat: &str, text: &str) -> AnsweredThenKilled {
    let adb = AdbServer::start();
    let phone = phone(&adb, SimConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("t.db");
    let mut tapwire = tapwire_run(&adb, &phone.serial, &db, &[]);
    phone.control.incoming(&incoming(chat, false, None, text));
    wait_for_sent(&phone.control, 1, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    tapwire.kill();
    let log = tapwire.log();
    AnsweredThenKilled {
        adb,
        phone,
        _dir: dir,
        db,
        log,
    }
}

/// The narrowest crash window: the reply is on the phone, but the controller died before
/// it recorded so (the action still `dispatched`, the watermark ending before the bubble).
/// The restarted controller must see the bubble and not type the reply again. The state
/// is made exactly: answer once, stop, then roll the store back to that moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reply_sent_just_before_a_crash_is_not_typed_again() {
    let AnsweredThenKilled {
        adb,
        phone,
        _dir,
        db,
        log: first_log,
    } = answered_then_killed("李雷", "在吗").await;

    let store = tapwire::store::SqliteStore::open(&db).await.expect("store");
    let stored = store
        .watermark(&phone.serial, "李雷")
        .await
        .expect("watermark")
        .expect("the chat was read");
    let mut watermark: Watermark = serde_json::from_str(&stored).expect("a phone's watermark");
    let bubble = watermark.tail.pop().expect("a tail");
    assert_eq!(
        (bubble.kind, bubble.text.as_deref()),
        (TailKind::Own, Some("在吗")),
        "the watermark ends with the reply: {first_log}"
    );
    let rolled = serde_json::to_string(&watermark).expect("json");
    store
        .record(ReadBatch {
            device: &phone.serial,
            conversation: "李雷",
            watermark: &rolled,
            events: &[],
            delivered: &[],
            unconfirmed: &[],
        })
        .await
        .expect("roll the watermark back");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("db");
    let rolled_back = sqlx::query("UPDATE actions SET status = 'dispatched' WHERE status = 'done'")
        .execute(&pool)
        .await
        .expect("roll the action back")
        .rows_affected();
    assert_eq!(rolled_back, 1, "one reply was sent: {first_log}");
    pool.close().await;
    drop(store);

    let tapwire = tapwire_run(&adb, &phone.serial, &db, &[]);
    // Something new in the same chat: once it is answered, the old reply's fate is known.
    phone
        .control
        .incoming(&incoming("李雷", false, None, "人呢"));
    wait_for_sent(&phone.control, 2, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        sent_to(&phone.control.sent(), "李雷"),
        ["在吗", "人呢"],
        "log: {}",
        tapwire.log()
    );
    let store = tapwire::store::SqliteStore::open(&db).await.expect("store");
    assert!(
        store.open_actions().await.expect("actions").is_empty(),
        "the reply sent before the crash is settled: {}",
        tapwire.log()
    );
    drop(tapwire);
    phone.sim.shutdown().await;
}

/// A message that comes while its chat is open raises no badge. If the controller is
/// down then, the restarted one finds the chat open with no name in the title bar, and
/// the list shows only a preview: the stored watermark is what tells it that is news.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_that_came_into_an_open_chat_while_down_is_answered_after_restart() {
    let AnsweredThenKilled {
        adb,
        phone,
        _dir,
        db,
        ..
    } = answered_then_killed("李雷", "第一条").await;
    // Open the newest chat (the first row) and let a message arrive in it.
    phone.control.tap(360, 162 + 65);
    phone
        .control
        .incoming(&incoming("李雷", false, None, "第二条"));
    let unread: u32 = phone.control.chats().chats.iter().map(|c| c.unread).sum();
    assert_eq!(unread, 0, "the setup must leave no badge");

    let tapwire = tapwire_run(&adb, &phone.serial, &db, &[]);
    wait_for_sent(&phone.control, 2, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        sent_to(&phone.control.sent(), "李雷"),
        ["第一条", "第二条"],
        "log: {}",
        tapwire.log()
    );
    drop(tapwire);
    phone.sim.shutdown().await;
}

/// The cable comes out in the middle of a burst (`adb disconnect`: every call fails with
/// the device gone, whatever was being typed) and goes back in two seconds later: each
/// message is answered once, in order, including the reply that was being typed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unplugged_cable_mid_burst_loses_and_repeats_nothing() {
    let adb = AdbServer::start();
    let phone = phone(&adb, SimConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // A real phone's pace: a reply takes about half a second, so the cable comes out in
    // the middle of one.
    phone.control.set_latency(tapwire_phone_sim::Latency {
        dump_ms: 150,
        screencap_ms: 0,
        tap_ms: 40,
        input_ms: 80,
    });
    let tapwire = tapwire_run(&adb, &phone.serial, &dir.path().join("t.db"), &[]);
    let chats = ["李雷", "韩梅梅", "张伟"];
    let mut expected = Vec::new();
    for i in 0..18 {
        let chat = chats[i % chats.len()];
        let text = format!("{chat} 第{i}条");
        phone.control.incoming(&incoming(chat, false, None, &text));
        expected.push((chat, text));
        tokio::time::sleep(Duration::from_millis(120)).await;
        if i == 6 {
            // Out just after a reply was typed and before it is sent; messages keep
            // coming meanwhile.
            wait_for_sent(&phone.control, 2, Duration::from_secs(30)).await;
            let typed = |control: &tapwire_phone_sim::SimControl| {
                control.events().iter().filter(|e| e.kind == "text").count()
            };
            let before = typed(&phone.control);
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while typed(&phone.control) == before && std::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            adb.adb(&["disconnect", &phone.serial]);
        }
        if i == 12 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            adb.connect(phone.sim.adb_addr());
        }
    }
    let sent = wait_for_sent(&phone.control, expected.len(), Duration::from_secs(90)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let again = phone.control.sent();
    assert_eq!(again.len(), sent.len(), "late duplicates: {again:?}");
    assert_answered_in_order(&again, &expected, || format!("log: {}", tapwire.log()));
    drop(tapwire);
    phone.sim.shutdown().await;
}
