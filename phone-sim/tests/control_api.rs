//! The binary and its HTTP control API: ports from the JSON line, the routes, SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_control_api_and_adb() {
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_tapwire-phone-sim"))
            .args([
                "serve",
                "--adb",
                "127.0.0.1:0",
                "--control",
                "127.0.0.1:0",
                "--wechat",
                "8.0.50",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("binary starts"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await
    .expect("join")
    .expect("one line");
    let ports: Value = serde_json::from_str(&line).expect("JSON line");
    let control = format!(
        "http://{}",
        ports["control"].as_str().expect("control addr")
    );
    let adb: std::net::SocketAddr = ports["adb"]
        .as_str()
        .expect("adb addr")
        .parse()
        .expect("addr");
    let http = reqwest::Client::new();

    let post = |path: &str, body: Value| {
        let req = http.post(format!("{control}{path}")).json(&body);
        async move { req.send().await.expect("POST").status().as_u16() }
    };
    let get = |path: &str| {
        let req = http.get(format!("{control}{path}"));
        async move {
            req.send()
                .await
                .expect("GET")
                .json::<Value>()
                .await
                .expect("JSON")
        }
    };

    assert_eq!(
        post("/incoming", json!({"chat": "Alice", "text": "ping"})).await,
        204
    );
    assert_eq!(
        post(
            "/incoming",
            json!({"chat": "Team", "group": true, "sender": "Bob", "text": "hello all"})
        )
        .await,
        204
    );
    let screen = get("/screen").await;
    assert_eq!(screen["kind"], "list");
    assert_eq!(screen["rows"][0]["title"], "Team");
    assert_eq!(screen["rows"][0]["preview"], "Bob: hello all");
    assert_eq!(screen["rows"][1]["badge"], "1");
    let chats = get("/chats").await;
    assert_eq!(chats["chats"][1]["unread"], 1);

    // Over ADB: the notification and its logcat line are visible.
    let (mut host, _) = common::RawHost::connect(adb, 0x0100_0001, "host::").await;
    let notes =
        String::from_utf8(host.exec(1, "dumpsys notification --noredact").await).expect("utf8");
    assert!(
        notes.contains("pkg=com.tencent.mm")
            && notes.contains("android.title=String (Team)")
            && notes.contains("android.text=String (Bob: hello all)"),
        "{notes}"
    );
    let log = String::from_utf8(
        host.exec(2, "logcat -b events -d | grep notification_enqueue")
            .await,
    )
    .expect("utf8");
    assert_eq!(log.lines().count(), 2, "{log}");

    // Open Alice's chat, type through the ADB keyboard, send.
    host.exec(3, "input tap 360 357").await; // second row
    host.exec(4, "input tap 300 1558").await; // the input box
    host.exec(5, "am broadcast -a ADB_INPUT_B64 --es msg 5L2g5aW9")
        .await; // 你好
    let screen = get("/screen").await;
    assert_eq!(screen["kind"], "chat");
    assert_eq!(screen["chat"], "Alice");
    assert_eq!(screen["input"], "你好");
    assert_eq!(screen["send_button"], true);
    host.exec(6, "input tap 650 1558").await;
    assert_eq!(
        get("/sent").await,
        json!([{"chat": "Alice", "text": "你好"}])
    );
    assert_eq!(
        post(
            "/outgoing-by-owner",
            json!({"chat": "Alice", "text": "typed by hand"})
        )
        .await,
        204
    );
    assert_eq!(
        get("/sent").await.as_array().map(Vec::len),
        Some(1),
        "owner's own messages are not 'sent'"
    );

    // Popups block taps; faults and latency apply to dumps.
    assert_eq!(
        post(
            "/popup",
            json!({"title": "提示", "text": "版本更新", "buttons": ["取消", "确定"]})
        )
        .await,
        204
    );
    host.exec(7, "input tap 360 300").await;
    let events = get("/events").await;
    assert!(
        events
            .as_array()
            .expect("array")
            .iter()
            .any(|e| e["kind"] == "tap_blocked")
    );
    assert_eq!(get("/screen").await["kind"], "popup");
    host.exec(8, "input keyevent KEYCODE_BACK").await;
    assert_eq!(get("/screen").await["kind"], "chat");

    assert_eq!(post("/faults", json!({"dump_idle_errors": 1})).await, 204);
    host.open(9, "shell,v2,raw:uiautomator dump /dev/tty").await;
    let framed = host.read_to_close(9).await;
    assert!(String::from_utf8_lossy(&framed).contains("ERROR: could not get idle state."));
    assert_eq!(framed.last(), Some(&1), "exit code 1");
    assert_eq!(post("/latency", json!({"dump_ms": 300})).await, 204);
    let t = std::time::Instant::now();
    let ok = String::from_utf8(host.exec(10, "uiautomator dump /dev/tty").await).expect("utf8");
    assert!(ok.contains("<hierarchy") && t.elapsed() >= Duration::from_millis(300));

    let stats = get("/stats").await;
    assert!(stats["services"]["exec"].as_u64().unwrap_or(0) >= 9);
    assert!(stats["bytes_to_host"].as_u64().unwrap_or(0) > 1000);

    // SIGTERM ends it cleanly (a signal only Unix has).
    #[cfg(unix)]
    {
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&child.0),
            rustix::process::Signal::TERM,
        )
        .expect("SIGTERM delivered");
        let mut waited = 0;
        loop {
            if let Some(status) = child.0.try_wait().expect("wait") {
                assert!(status.success(), "clean exit: {status:?}");
                break;
            }
            waited += 1;
            assert!(waited < 50, "exits within 5 s of SIGTERM");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Starts the binary with `extra` flags after the listening addresses; returns the child, the
/// control API's base URL and the ADB address.
async fn spawn(extra: &[&str]) -> (Child, String, std::net::SocketAddr) {
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_tapwire-phone-sim"))
            .args(["serve", "--adb", "127.0.0.1:0", "--control", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("binary starts"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await
    .expect("join")
    .expect("one line");
    let ports: Value = serde_json::from_str(&line).expect("JSON line");
    let control = format!("http://{}", ports["control"].as_str().expect("control"));
    let adb = ports["adb"].as_str().expect("adb").parse().expect("addr");
    (child, control, adb)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_and_routes_for_packages_settings_and_accessibility() {
    let (_child, control, adb) = spawn(&[
        "--wechat",
        "8.0.74",
        "--no-accessibility-suite",
        "--with-dianming",
        "--setting",
        "secure:enabled_accessibility_services=com.iflytek.inputmethod/.FlyAccessibilityService",
        "--a11y-button",
    ])
    .await;
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        let req = http.post(format!("{control}{path}")).json(&body);
        async move { req.send().await.expect("POST").status().as_u16() }
    };
    let get = |path: &str| {
        let req = http.get(format!("{control}{path}"));
        async move {
            req.send()
                .await
                .expect("GET")
                .json::<Value>()
                .await
                .expect("JSON")
        }
    };

    let packages = get("/packages").await;
    let names: Vec<&str> = packages
        .as_array()
        .expect("array")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(names.contains(&"com.dianming.phoneapp"));
    assert!(!names.contains(&"com.google.android.marvin.talkback"));
    assert_eq!(
        get("/settings").await["secure"]["enabled_accessibility_services"],
        "com.iflytek.inputmethod/.FlyAccessibilityService"
    );
    assert_eq!(get("/accessibility").await["tree_hidden"], true);

    // Append 点明's service after the user's own and switch accessibility on.
    assert_eq!(
        post(
            "/settings",
            json!({"namespace": "secure", "key": "enabled_accessibility_services",
                   "value": "com.iflytek.inputmethod/.FlyAccessibilityService:com.dianming.phoneapp/com.dianming.phoneapp.MyAccessibilityService"})
        )
        .await,
        204
    );
    assert_eq!(
        post(
            "/settings",
            json!({"namespace": "secure", "key": "accessibility_enabled", "value": "1"})
        )
        .await,
        204
    );
    let a11y = get("/accessibility").await;
    assert_eq!(a11y["wechat_trusts"], true);
    assert_eq!(a11y["tree_hidden"], false);
    assert_eq!(
        a11y["bound_services"][0]["package"],
        "com.dianming.phoneapp"
    );
    assert_eq!(a11y["button_shown"], false, "点明 asks for no button");

    // The suite comes back; Select to Speak asks for the button, which the flag shows.
    assert_eq!(
        post(
            "/packages",
            json!({"install": ["com.google.android.marvin.talkback"]})
        )
        .await,
        204
    );
    assert_eq!(
        post(
            "/settings",
            json!({"namespace": "secure", "key": "enabled_accessibility_services",
                   "value": "com.google.android.marvin.talkback/com.google.android.accessibility.selecttospeak.SelectToSpeakService"})
        )
        .await,
        204
    );
    assert_eq!(get("/accessibility").await["button_shown"], true);
    assert_eq!(
        post("/accessibility-button", json!({"shown": false})).await,
        204
    );
    assert_eq!(get("/accessibility").await["button_shown"], false);

    // Bad requests change nothing.
    assert_eq!(
        post("/packages", json!({"uninstall": ["com.tencent.mm"]})).await,
        400
    );
    assert_eq!(
        post(
            "/settings",
            json!({"namespace": "secret", "key": "k", "value": "v"})
        )
        .await,
        400
    );
    assert_eq!(
        post(
            "/settings",
            json!({"namespace": "secure", "key": "accessibility_enabled", "value": null})
        )
        .await,
        204
    );
    assert_eq!(
        get("/settings").await["secure"].get("accessibility_enabled"),
        None
    );

    // An unauthorised phone answers the next connection with AUTH.
    assert_eq!(post("/adb-auth", json!({"authorized": false})).await, 204);
    let (_host, reply) = common::RawHost::connect(adb, 0x0100_0001, "host::").await;
    assert_eq!(reply.command, tapwire_phone_sim::adb::packet::A_AUTH);
    assert_eq!(get("/stats").await["adb_auth"]["token_sent"], 1);
}

/// `--screen` and `--theme` start the phone with that display; `/incoming` and
/// `/outgoing-by-owner` take a message's `kind`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_kinds_over_http_on_a_1080_screen() {
    let (_child, control, _adb) = spawn(&["--screen", "1080x2400", "--theme", "dark"]).await;
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        let req = http.post(format!("{control}{path}")).json(&body);
        async move { req.send().await.expect("POST").status().as_u16() }
    };
    for kind in ["image", "sticker"] {
        assert_eq!(
            post("/incoming", json!({"chat": "Alice", "kind": kind})).await,
            204
        );
    }
    assert_eq!(
        post(
            "/incoming",
            json!({"chat": "Alice", "kind": "red_packet", "text": "新年快乐"})
        )
        .await,
        204
    );
    assert_eq!(
        post(
            "/outgoing-by-owner",
            json!({"chat": "Alice", "kind": "image"})
        )
        .await,
        204
    );
    // Contradictions are refused.
    assert_eq!(
        post(
            "/incoming",
            json!({"chat": "Alice", "kind": "image", "system": true})
        )
        .await,
        400
    );
    assert_eq!(
        post(
            "/outgoing-by-owner",
            json!({"chat": "Alice", "kind": "system", "text": "x"})
        )
        .await,
        400
    );
    assert_eq!(
        post("/incoming", json!({"chat": "Alice", "kind": "video"})).await,
        422
    );
    let chats: Value = http
        .get(format!("{control}/chats"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    let kinds: Vec<(&str, bool)> = chats["chats"][0]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| (m["kind"].as_str().unwrap_or(""), m["own"] == true))
        .collect();
    assert_eq!(
        kinds,
        [
            ("image", false),
            ("sticker", false),
            ("red_packet", false),
            ("image", true)
        ]
    );
}
