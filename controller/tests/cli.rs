//! The smaller commands: `read` on the real dumps, `devices` and `dump` against a virtual
//! phone, and `run --config`.

mod support;

use std::time::Duration;

use support::{AdbServer, phone, repo_root, sent_to, tapwire_once, wait_for_sent};
use tapwire_phone_sim::{IncomingMessage, SimConfig};

#[test]
fn read_prints_what_the_reader_sees_in_real_dumps() {
    let dir = repo_root().join("fixtures/real-dumps");
    let (ok, out) = tapwire_once(&["read", &dir.to_string_lossy()], Duration::from_secs(30));
    assert!(ok, "{out}");
    assert!(
        out.contains("A柚子设计") && out.contains("PS平面设计技术交流学习"),
        "{out}"
    );

    let file = dir.join("chat-8.0.x-2026-01-group.xml");
    let (ok, out) = tapwire_once(
        &[
            "read",
            "--json",
            "--wechat",
            "8.0.50",
            &file.to_string_lossy(),
        ],
        Duration::from_secs(30),
    );
    assert!(ok, "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(json["kind"], "chat");
    assert_eq!(json["chat"]["messages"].as_array().map(Vec::len), Some(10));
    assert_eq!(json["chat"]["messages"][9]["sender"], "万事如意，大吉大利");
}

#[test]
fn read_prints_what_the_vision_reader_sees_in_a_screenshot() {
    use tapwire_phone_sim::wechat::model::MsgKind;
    let device = tapwire_phone_sim::build_device(&SimConfig::default()).expect("device");
    device.with(|st| {
        let ts = st.clock.now();
        st.wechat.configure_chat("项目群", true, false, false);
        st.wechat.incoming(
            "项目群",
            true,
            Some("王芳"),
            "周五之前把设计稿发我",
            MsgKind::Text,
            ts,
        );
        st.wechat.outgoing_by_owner("项目群", "收到", ts + 5);
        st.wechat.open_chat("项目群");
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let png = dir.path().join("chat.png");
    std::fs::write(&png, device.screencap_png().expect("png")).expect("write");
    // Raw `screencap` output, named however: the bytes say what it is.
    let raw = dir.path().join("chat.bin");
    std::fs::write(&raw, device.screencap_raw()).expect("write");
    // Without `--ocr`, the preferred engine that is installed: PP-OCR, which scripts/setup
    // installs beside tesseract.
    for (file, ocr, reader) in [
        (&png, None, "vision:ppocr"),
        (&raw, Some("tesseract"), "vision:tesseract"),
    ] {
        let file = file.to_string_lossy();
        let args: Vec<&str> = match ocr {
            Some(engine) => vec!["read", "--json", "--ocr", engine, &file],
            None => vec!["read", "--json", &file],
        };
        let (ok, out) = tapwire_once(&args, Duration::from_secs(60));
        assert!(ok, "{out}");
        let json: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        assert_eq!(json["kind"], "chat", "{out}");
        assert_eq!(json["map"], reader);
        assert_eq!(json["chat"]["title"], "项目群");
        let messages = json["chat"]["messages"].as_array().expect("messages");
        let texts: Vec<(&str, &str, &str)> = messages
            .iter()
            .filter(|m| m["kind"] == "text")
            .map(|m| {
                (
                    m["side"].as_str().unwrap_or(""),
                    m["sender"].as_str().unwrap_or(""),
                    m["text"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            texts,
            [
                ("left", "王芳", "周五之前把设计稿发我"),
                ("right", "", "收到")
            ],
            "{out}"
        );
        assert!(json["timings_ms"]["ocr"].as_f64().is_some(), "{out}");
    }
    // A table by default, with the time each step took.
    let (ok, out) = tapwire_once(&["read", &png.to_string_lossy()], Duration::from_secs(60));
    assert!(ok, "{out}");
    assert!(
        out.contains("vision:ppocr") && out.contains("segmentation"),
        "{out}"
    );
}

#[test]
fn read_rejects_a_broken_dump_with_its_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("broken.xml");
    std::fs::write(
        &file,
        "<hierarchy>\n<node bounds=\"[0,0][1,1]\">\n</nde>\n</hierarchy>",
    )
    .expect("write");
    let (ok, out) = tapwire_once(&["read", &file.to_string_lossy()], Duration::from_secs(30));
    assert!(!ok);
    assert!(
        out.contains("broken.xml") && out.contains("line 3"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn devices_and_dump_against_a_virtual_phone() {
    let adb = AdbServer::start();
    let phone = phone(&adb, SimConfig::default()).await;
    let (ok, out) = tapwire_once(
        &["devices", "--adb-server", &adb.addr()],
        Duration::from_secs(30),
    );
    assert!(ok, "{out}");
    assert!(
        out.contains(&phone.serial) && out.contains("8.0.50 (map wechat-8.0)"),
        "{out}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, out) = tapwire_once(
        &[
            "dump",
            "--adb-server",
            &adb.addr(),
            "--device",
            &phone.serial,
            "--out",
            &dir.path().to_string_lossy(),
        ],
        Duration::from_secs(30),
    );
    assert!(ok, "{out}");
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    let with = |ext: &str| {
        files
            .iter()
            .find(|f| f.extension().is_some_and(|e| e == ext))
    };
    let png = std::fs::read(with("png").expect("a screenshot")).expect("png");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(with("json").expect("metadata")).expect("json"))
            .expect("JSON");
    assert_eq!(meta["wechat"], "8.0.50");
    assert_eq!(meta["reading"]["kind"], "conversation_list");
    // The screenshot read by the vision reader, beside the dump's reading.
    assert_eq!(
        meta["vision"]["kind"], "conversation_list",
        "{}",
        meta["vision"]
    );
    phone.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_with_a_config_file() {
    let adb = AdbServer::start();
    let phone = phone(&adb, SimConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("tapwire.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\npath = \"{}\"\n\n[[phones]]\nserial = \"{}\"\nadb_server = \"{}\"\npoll_ms = 50\n\n[[routes]]\nevent = \"message.received\"\nhandler = \"help\"\n",
            dir.path().join("t.db").display(),
            phone.serial,
            adb.addr()
        ),
    )
    .expect("config");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tapwire"))
        .args([
            "run",
            "--listen",
            "127.0.0.1:0",
            "--config",
            &config.to_string_lossy(),
        ])
        .env("TAPWIRE_UI_MAPS", repo_root().join("ui-maps"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("tapwire");
    let say = |text: &str| IncomingMessage {
        chat: "李雷".into(),
        group: false,
        sender: None,
        text: text.into(),
        system: false,
    };
    phone.control.incoming(&say("你好"));
    phone.control.incoming(&say("help"));
    let sent = wait_for_sent(&phone.control, 1, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = child.kill();
    let _ = child.wait();
    // The `help` handler answers only `help`.
    let answers = sent_to(&sent, "李雷");
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert!(answers[0].starts_with("Tapwire commands:"), "{answers:?}");
    phone.sim.shutdown().await;
}

#[test]
fn a_broken_config_names_file_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[[phones]]\nserial = \"x\"\npoll_ms = \"soon\"\n").expect("write");
    let (ok, out) = tapwire_once(
        &[
            "run",
            "--listen",
            "127.0.0.1:0",
            "--config",
            &config.to_string_lossy(),
        ],
        Duration::from_secs(30),
    );
    assert!(!ok);
    assert!(out.contains("bad.toml:3:"), "{out}");
}

/// Each file in fixtures/configs/broken says what `config check` must report in its
/// `# expect: LINE: text` comments; every expected error must be there, on its line.
#[test]
fn config_check_reports_every_error_of_each_broken_config_with_its_line() {
    let dir = repo_root().join("fixtures/configs/broken");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures/configs/broken")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 6, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read");
        let expected: Vec<(String, String)> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .map(|e| {
                let (line, message) = e.split_once(": ").expect("# expect: LINE: text");
                (line.to_string(), message.to_string())
            })
            .collect();
        assert!(!expected.is_empty(), "{} expects nothing", file.display());
        let (ok, out) = tapwire_once(
            &["config", "check", &file.to_string_lossy()],
            Duration::from_secs(30),
        );
        assert!(!ok, "{}: accepted", file.display());
        let name = file
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        for (line, message) in &expected {
            assert!(
                out.lines().any(|l| l.contains(&format!("{name}:{line}:")) && l.contains(message.as_str())),
                "{name}: no error on line {line} saying {message:?} in:\n{out}"
            );
        }
        assert!(
            out.contains(&format!("{} error(s)", expected.len())),
            "{name}: exactly the expected errors:\n{out}"
        );
    }
}

#[test]
fn the_example_config_is_valid() {
    let example = repo_root().join("tapwire.example.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tapwire"))
        .args(["config", "check", &example.to_string_lossy()])
        .env("ASSISTANT_TOKEN", "example")
        .env("OPS_ROBOT_KEY", "example")
        .output()
        .expect("tapwire runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(
            "ok (1 phone(s), 1 adapter(s), 4 route(s), 5 handler(s), 1 schedule(s), 1 plugin(s))"
        ),
        "{text}"
    );
    // Without the secret in the environment, the check names it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tapwire"))
        .args(["config", "check", &example.to_string_lossy()])
        .env_remove("ASSISTANT_TOKEN")
        .env("OPS_ROBOT_KEY", "example")
        .output()
        .expect("tapwire runs");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("environment variable ASSISTANT_TOKEN is not set")
    );
}
