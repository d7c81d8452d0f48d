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
        .args(["run", "--config", &config.to_string_lossy()])
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
        &["run", "--config", &config.to_string_lossy()],
        Duration::from_secs(30),
    );
    assert!(!ok);
    assert!(out.contains("bad.toml:3:"), "{out}");
}

#[test]
fn config_check_names_the_line_of_each_kind_of_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: &[(&str, &str, &str)] = &[
        (
            "unknown handler",
            "[[routes]]\nevent = \"message.received\"\nhandler = \"llm\"\n",
            ":3:",
        ),
        (
            "bad event pattern",
            "[[routes]]\nevent = \"message\"\nhandler = \"echo\"\n",
            ":2:",
        ),
        (
            "missing env var",
            "[storage]\npath = \"${TAPWIRE_TEST_SURELY_UNSET}\"\n",
            ":2:",
        ),
        (
            "duplicate route id",
            "[[routes]]\nid = \"a\"\nevent = \"*\"\nhandler = \"echo\"\n\n[[routes]]\nid = \"a\"\nevent = \"*\"\nhandler = \"help\"\n",
            ":7:",
        ),
        (
            "unknown field",
            "[[phones]]\nserial = \"x\"\nserail = \"y\"\n",
            ":3:",
        ),
    ];
    for (what, text, line) in cases {
        let file = dir.path().join("tapwire.toml");
        std::fs::write(&file, text).expect("write");
        let (ok, out) = tapwire_once(
            &["config", "check", &file.to_string_lossy()],
            Duration::from_secs(30),
        );
        assert!(!ok, "{what}: accepted");
        assert!(
            out.contains(&format!("tapwire.toml{line}")),
            "{what}: {out}"
        );
    }
    let example = repo_root().join("tapwire.example.toml");
    let (ok, out) = tapwire_once(
        &["config", "check", &example.to_string_lossy()],
        Duration::from_secs(30),
    );
    assert!(ok && out.contains("ok (1 phone(s), 1 route(s))"), "{out}");
}
