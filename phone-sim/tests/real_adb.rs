//! Drives the sim with the real adb (Debian's adb 29) on a private server port.
//! Skips, saying so, when no `adb` binary is installed.

use std::net::TcpListener;
use std::process::Output;
use std::time::Duration;

use tapwire_phone_sim::{SimConfig, start};
use tokio::process::Command;

struct AdbServer {
    port: u16,
}

impl AdbServer {
    fn cmd(&self) -> Command {
        let mut c = Command::new("adb");
        c.arg("-P")
            .arg(self.port.to_string())
            .env("ANDROID_ADB_SERVER_PORT", self.port.to_string())
            .kill_on_drop(true);
        c
    }

    async fn run(&self, args: &[impl AsRef<std::ffi::OsStr>]) -> Output {
        let mut c = self.cmd();
        c.args(args);
        tokio::time::timeout(Duration::from_secs(30), c.output())
            .await
            .expect("adb finished in time")
            .expect("adb runs")
    }
}

impl Drop for AdbServer {
    // The server outlives the client commands; stop the one this test started.
    fn drop(&mut self) {
        let _ = std::process::Command::new("adb")
            .arg("-P")
            .arg(self.port.to_string())
            .arg("kill-server")
            .output();
    }
}

fn adb_installed() -> bool {
    std::process::Command::new("adb")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_adb_end_to_end() {
    if !adb_installed() {
        eprintln!("SKIPPED: no `adb` binary on PATH; install the `adb` package to run this test");
        return;
    }
    let sim = start(SimConfig {
        control_addr: None,
        ..SimConfig::default()
    })
    .await
    .expect("sim starts");
    let serial = sim.adb_addr().to_string();
    let adb = AdbServer { port: free_port() };

    let o = adb.run(&["connect", &serial]).await;
    assert!(
        text(&o).contains(&format!("connected to {serial}")),
        "connect: {o:?}"
    );
    let devices = text(&adb.run(&["devices", "-l"]).await);
    assert!(
        devices.contains(&serial) && devices.contains("product:PD2309 model:V2309A device:PD2309"),
        "{devices}"
    );

    let s = |args: &[&str]| -> Vec<String> {
        ["-s", serial.as_str()]
            .iter()
            .chain(args)
            .map(|a| a.to_string())
            .collect()
    };

    let o = adb.run(&s(&["shell", "echo", "hi"])).await;
    assert_eq!(text(&o), "hi\n");
    assert!(o.status.success());

    // shell_v2 carries the remote exit status back to adb's own exit code.
    let o = adb.run(&s(&["shell", "no_such_command"])).await;
    assert_eq!(o.status.code(), Some(127));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no_such_command: inaccessible or not found")
    );
    let o = adb.run(&s(&["shell", "sh", "-c", "'exit 3'"])).await;
    assert_eq!(o.status.code(), Some(3));

    let o = adb
        .run(&s(&["exec-out", "uiautomator", "dump", "/dev/tty"]))
        .await;
    let xml = text(&o);
    assert!(xml.starts_with("<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>"));
    assert!(xml.contains("com.tencent.mm:id/j8g"));
    assert!(xml.ends_with("UI hierchary dumped to: /dev/tty\n"));

    let o = adb.run(&s(&["shell", "uiautomator", "dump"])).await;
    assert_eq!(
        text(&o),
        "UI hierchary dumped to: /sdcard/window_dump.xml\n"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let pulled = dir.path().join("window_dump.xml");
    let o = adb
        .run(&s(&[
            "pull",
            "/sdcard/window_dump.xml",
            pulled.to_str().expect("utf8 path"),
        ]))
        .await;
    assert!(o.status.success(), "pull: {o:?}");
    assert!(
        std::fs::read_to_string(&pulled)
            .expect("pulled file")
            .contains("com.tencent.mm:id/cj1")
    );

    // Push then pull back a file bigger than one sync DATA chunk.
    let src = dir.path().join("src.bin");
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(&src, &payload).expect("write src");
    let o = adb
        .run(&s(&[
            "push",
            src.to_str().expect("utf8"),
            "/sdcard/Download/src.bin",
        ]))
        .await;
    assert!(o.status.success(), "push: {o:?}");
    let back = dir.path().join("back.bin");
    let o = adb
        .run(&s(&[
            "pull",
            "/sdcard/Download/src.bin",
            back.to_str().expect("utf8"),
        ]))
        .await;
    assert!(o.status.success(), "pull back: {o:?}");
    assert_eq!(std::fs::read(&back).expect("read back"), payload);

    // A tap on the first conversation row opens the chat.
    let _ = adb.run(&s(&["shell", "input", "tap", "360", "227"])).await;
    let o = adb
        .run(&s(&["shell", "dumpsys window | grep mCurrentFocus"]))
        .await;
    assert!(
        text(&o).contains("com.tencent.mm/com.tencent.mm.ui.chatting.ChattingUI"),
        "{}",
        text(&o)
    );

    let o = adb.run(&s(&["exec-out", "screencap", "-p"])).await;
    assert_eq!(&o.stdout[..8], b"\x89PNG\r\n\x1a\n");

    let _ = adb.run(&["disconnect", &serial]).await;
    drop(adb);
    sim.shutdown().await;
}

/// Debian's adb sees an unauthorised phone as real ones are seen: `adb connect` fails to
/// authenticate, `adb devices` lists the serial as `unauthorized`, and commands are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_adb_lists_an_unauthorized_phone() {
    if !adb_installed() {
        eprintln!("SKIPPED: no `adb` binary on PATH; install the `adb` package to run this test");
        return;
    }
    let sim = start(SimConfig {
        control_addr: None,
        unauthorized: true,
        ..SimConfig::default()
    })
    .await
    .expect("sim starts");
    let serial = sim.adb_addr().to_string();
    let adb = AdbServer { port: free_port() };

    let o = adb.run(&["connect", &serial]).await;
    assert!(
        text(&o).contains(&format!("failed to authenticate to {serial}")),
        "connect: {o:?}"
    );
    let devices = text(&adb.run(&["devices"]).await);
    assert!(
        devices.contains(&format!("{serial}\tunauthorized")),
        "{devices}"
    );
    let o = adb.run(&["-s", &serial, "shell", "echo", "hi"]).await;
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("unauthorized"),
        "{o:?}"
    );
    assert_eq!(sim.control().stats().connections, 0);

    drop(adb);
    sim.shutdown().await;
}

/// What a tool does over adb to bring WeChat's tree back, and what it reads on the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_adb_brings_the_tree_back_with_settings() {
    if !adb_installed() {
        eprintln!("SKIPPED: no `adb` binary on PATH; install the `adb` package to run this test");
        return;
    }
    let sim = start(SimConfig {
        control_addr: None,
        wechat_version: "8.0.74".into(),
        settings: vec![
            "secure:enabled_accessibility_services=com.iflytek.inputmethod/.FlyAccessibilityService"
                .parse()
                .expect("preset"),
        ],
        ..SimConfig::default()
    })
    .await
    .expect("sim starts");
    let serial = sim.adb_addr().to_string();
    let adb = AdbServer { port: free_port() };
    let o = adb.run(&["connect", &serial]).await;
    assert!(text(&o).contains("connected to"), "{o:?}");
    let shell = |cmd: &str| {
        let args = ["-s", serial.as_str(), "shell", cmd].map(str::to_string);
        let adb = &adb;
        async move { adb.run(&args).await }
    };

    assert_eq!(text(&shell("wm size").await), "Physical size: 720x1608\n");
    assert_eq!(text(&shell("wm density").await), "Physical density: 320\n");
    assert_eq!(
        text(&shell("pm list packages talkback").await),
        "package:com.google.android.marvin.talkback\n"
    );
    let o = shell("pm list packages dianming").await;
    assert_eq!((text(&o).as_str(), o.status.code()), ("", Some(0)));
    let o = shell("settings get secure nonexistent_key").await;
    assert_eq!(text(&o), "null\n");
    let o = shell("settings get bogus x").await;
    assert_eq!(o.status.code(), Some(255));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "Invalid namespace 'bogus'\n"
    );

    let xml = text(
        &adb.run(&["-s", &serial, "exec-out", "uiautomator", "dump", "/dev/tty"])
            .await,
    );
    assert!(!xml.contains("com.tencent.mm:id/j8g"), "hidden at first");

    // Keep the user's own service first, append Select to Speak, switch accessibility on.
    let existing = text(&shell("settings get secure enabled_accessibility_services").await);
    let existing = existing.trim_end();
    let sts = "com.google.android.marvin.talkback/com.google.android.accessibility.selecttospeak.SelectToSpeakService";
    let o = shell(&format!(
        "settings put secure enabled_accessibility_services {existing}:{sts}"
    ))
    .await;
    assert!(o.status.success(), "{o:?}");
    let o = shell("settings put secure accessibility_enabled 1").await;
    assert!(o.status.success(), "{o:?}");

    let a11y = text(&shell("dumpsys accessibility").await);
    assert!(
        a11y.contains("Enabled services:{{com.iflytek.inputmethod/com.iflytek.inputmethod.FlyAccessibilityService}, {com.google.android.marvin.talkback/com.google.android.accessibility.selecttospeak.SelectToSpeakService}}"),
        "{a11y}"
    );
    assert!(
        a11y.contains("Bound services:{Service[label=随选朗读"),
        "{a11y}"
    );
    let xml = text(
        &adb.run(&["-s", &serial, "exec-out", "uiautomator", "dump", "/dev/tty"])
            .await,
    );
    assert!(xml.contains("com.tencent.mm:id/j8g"), "the tree is back");

    let o = shell("settings delete secure enabled_accessibility_services").await;
    assert_eq!(text(&o), "Deleted 1 rows\n");
    let xml = text(
        &adb.run(&["-s", &serial, "exec-out", "uiautomator", "dump", "/dev/tty"])
            .await,
    );
    assert!(!xml.contains("com.tencent.mm:id/j8g"), "hidden again");

    let _ = adb.run(&["disconnect", &serial]).await;
    drop(adb);
    sim.shutdown().await;
}
