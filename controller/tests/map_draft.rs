//! `tapwire map draft` end to end: draft a map from a directory of dumps, then read the dumps
//! with it through `tapwire read --map`. Once on fixtures/map-draft/ (the real 8.0.x dumps and
//! a package text), once on what `tapwire dump` saves from a virtual phone.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::{AdbServer, phone, repo_root};
use tapwire_phone_sim::{IncomingMessage, OwnerMessage, SimConfig};

const LIST: &str = "list-8.0.x-2026-01-groups.xml";
const CHAT: &str = "chat-8.0.x-2026-01-group.xml";

/// Runs the real binary to completion: (success, stdout, stderr).
fn tapwire(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tapwire"))
        .args(args)
        .env("TAPWIRE_UI_MAPS", repo_root().join("ui-maps"))
        .output()
        .expect("tapwire runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn fixture_dir() -> PathBuf {
    repo_root().join("fixtures/map-draft/wechat-8.0.50")
}

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn read_json(map: &Path, dump: &Path) -> serde_json::Value {
    let (ok, out, err) = tapwire(&["read", "--json", "--map", &path(map), &path(dump)]);
    assert!(ok, "{err}");
    serde_json::from_str(&out).expect("JSON")
}

#[test]
fn draft_a_map_from_a_dump_directory_and_read_the_dumps_with_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let map = dir.path().join("wechat-8.0.50-draft.toml");
    let (ok, out, err) = tapwire(&[
        "map",
        "draft",
        "--from",
        &path(&fixture_dir()),
        "--out",
        &path(&map),
    ]);
    assert!(ok, "{err}");
    assert!(out.is_empty(), "the map goes to --out, not stdout: {out}");
    assert!(
        err.contains("drafted wechat-8.0.50-draft (8.0.50 ≤ WeChat < 8.0.51) from 2 dump(s)"),
        "{err}"
    );
    assert!(
        err.contains("missing: ") && err.contains("send_button"),
        "{err}"
    );
    let toml = std::fs::read_to_string(&map).expect("the draft");
    assert!(
        toml.contains("versionName=8.0.50 in list-8.0.x-2026-01-groups.package.txt"),
        "{toml}"
    );
    assert!(toml.contains("min_version = \"8.0.50\"\nmax_version = \"8.0.51\""));

    let list = read_json(&map, &fixture_dir().join(LIST));
    assert_eq!(list["kind"], "conversation_list");
    assert_eq!(list["map"], "wechat-8.0.50-draft");
    let rows = list["list"]["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 11);
    assert_eq!(rows[0]["title"], "PS平面设计技术交流学习");
    assert_eq!(rows[0]["time"], "09:44");
    assert_eq!(rows[0]["unread"], "dot");
    assert_eq!(rows[0]["muted"], true);
    assert_eq!(rows[5]["muted"], false);
    assert_eq!(
        rows[10]["preview"],
        "[@所有人] A专业配音（小雅全天24小时在线）:…"
    );

    let chat = read_json(&map, &fixture_dir().join(CHAT));
    assert_eq!(chat["kind"], "chat");
    let messages = chat["chat"]["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 10);
    assert_eq!(messages[3]["kind"], "system");
    assert_eq!(messages[9]["side"], "left");
    assert_eq!(messages[9]["sender"], "万事如意，大吉大利");
    assert_eq!(chat["chat"]["back_unread"], 1);

    // The table output names the drafted map; --wechat must fall in its range.
    let (ok, out, err) = tapwire(&["read", "--map", &path(&map), &path(&fixture_dir())]);
    assert!(ok, "{err}");
    assert!(
        out.contains("(map wechat-8.0.50-draft)") && out.contains("A柚子设计"),
        "{out}"
    );
    let file = path(&fixture_dir().join(LIST));
    let (ok, _, err) = tapwire(&["read", "--map", &path(&map), "--wechat", "8.0.60", &file]);
    assert!(!ok);
    assert!(
        err.contains("covers 8.0.50 ≤ WeChat < 8.0.51, not 8.0.60"),
        "{err}"
    );
    let (ok, _, err) = tapwire(&["read", "--map", &path(&map), "--ui-maps", "ui-maps", &file]);
    assert!(!ok, "--map and --ui-maps together: {err}");
}

#[test]
fn without_package_text_the_version_must_be_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    for file in [LIST, CHAT] {
        std::fs::copy(
            repo_root().join("fixtures/real-dumps").join(file),
            dir.path().join(file),
        )
        .expect("copy");
    }
    let (ok, _, err) = tapwire(&["map", "draft", "--from", &path(dir.path())]);
    assert!(!ok);
    assert!(
        err.contains("no WeChat version") && err.contains("--version"),
        "{err}"
    );

    // Printed to stdout without --out.
    let (ok, out, err) = tapwire(&[
        "map",
        "draft",
        "--from",
        &path(dir.path()),
        "--version",
        "8.0.50",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("[roles]")
            && out.contains("# The dumps came from WeChat 8.0.50 (given with --version)"),
        "{out}"
    );

    // Two builds in one directory are refused unless --version picks one.
    std::fs::write(dir.path().join("a.package.txt"), "    versionName=8.0.50\n").expect("write");
    std::fs::write(dir.path().join("b.package.txt"), "    versionName=8.0.49\n").expect("write");
    let (ok, _, err) = tapwire(&["map", "draft", "--from", &path(dir.path())]);
    assert!(!ok);
    assert!(
        err.contains("several WeChat versions (8.0.49, 8.0.50)"),
        "{err}"
    );

    let (ok, _, err) = tapwire(&["map", "draft", "--from", &path(&dir.path().join("nowhere"))]);
    assert!(!ok);
    assert!(err.contains("cannot list"), "{err}");
}

/// The whole flow of the issue on a virtual phone: `tapwire dump` the list and a group chat
/// where both sides wrote and the input holds text, draft from what it saved (the version
/// from its `*.package.txt`), and read every dump with the draft as the bundled map reads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn draft_from_what_tapwire_dump_saved_on_a_virtual_phone() {
    let adb = AdbServer::start();
    let config = SimConfig {
        title_text: true,
        ..SimConfig::default()
    };
    let phone = phone(&adb, config).await;
    let group = "产品讨论群";
    phone.control.incoming(&IncomingMessage {
        chat: "张伟".into(),
        group: false,
        sender: None,
        text: "明天几点？".into(),
        system: false,
    });
    phone.control.outgoing_by_owner(&OwnerMessage {
        chat: group.into(),
        text: "好的，我准备一下".into(),
    });
    phone.control.incoming(&IncomingMessage {
        chat: group.into(),
        group: true,
        sender: Some("王芳".into()),
        text: "辛苦".into(),
        system: false,
    });
    let dir = tempfile::tempdir().expect("tempdir");
    // (the metadata with the bundled map's reading, the dump's path)
    let dump = || -> (serde_json::Value, PathBuf) {
        let (ok, out, err) = tapwire(&[
            "dump",
            "--adb-server",
            &adb.addr(),
            "--device",
            &phone.serial,
            "--out",
            &path(dir.path()),
        ]);
        assert!(ok, "{err}");
        let saved = |ext: &str| {
            out.lines()
                .find(|l| l.ends_with(ext))
                .unwrap_or_else(|| panic!("no {ext} in {out}"))
                .to_string()
        };
        // Stamps have millisecond resolution; two dumps must not share one.
        std::thread::sleep(Duration::from_millis(5));
        let meta = std::fs::read(saved(".json")).expect("metadata");
        (
            serde_json::from_slice(&meta).expect("JSON"),
            PathBuf::from(saved(".xml")),
        )
    };
    let centre = |bounds: &serde_json::Value| -> (i32, i32) {
        let nums: Vec<i32> = bounds
            .as_str()
            .expect("bounds")
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().expect("number"))
            .collect();
        ((nums[0] + nums[2]) / 2, (nums[1] + nums[3]) / 2)
    };

    let (list, list_xml) = dump();
    let row = list["reading"]["list"]["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["title"] == group)
        .expect("the group's row")
        .clone();
    let (x, y) = centre(&row["bounds"]);
    phone.control.tap(x, y);
    let (chat, chat_xml) = dump();
    assert_eq!(chat["reading"]["kind"], "chat", "{chat}");
    let (x, y) = centre(&chat["reading"]["chat"]["input"]["bounds"]);
    phone.control.tap(x, y);
    let typed = adb.adb(&["-s", &phone.serial, "shell", "input", "text", "ok"]);
    assert!(!typed.contains("error"), "{typed}");
    let (typing, typing_xml) = dump();
    assert!(
        !typing["reading"]["chat"]["send_button"].is_null(),
        "no send button after typing: {typing}"
    );
    let package_texts = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".package.txt"))
        .count();
    assert_eq!(package_texts, 3, "`tapwire dump` saves the package text");

    let map = dir.path().join("draft.toml");
    let (ok, _, err) = tapwire(&[
        "map",
        "draft",
        "--from",
        &path(dir.path()),
        "--out",
        &path(&map),
    ]);
    assert!(ok, "{err}");
    let toml = std::fs::read_to_string(&map).expect("draft");
    assert!(toml.contains("min_version = \"8.0.50\""), "{toml}");
    assert!(
        toml.contains("(versionName=8.0.50 in "),
        "the package text, not the JSON: {toml}"
    );
    for (saved, xml) in [(&list, list_xml), (&chat, chat_xml), (&typing, typing_xml)] {
        let mut drafted = read_json(&map, &xml);
        drafted["map"] = saved["reading"]["map"].clone();
        assert_eq!(
            drafted,
            saved["reading"],
            "{}: the draft reads it differently from the bundled map\n{toml}\n{err}",
            xml.display()
        );
    }
    let messages = typing["reading"]["chat"]["messages"]
        .as_array()
        .expect("messages");
    assert!(
        messages.iter().any(|m| m["side"] == "right")
            && messages.iter().any(|m| m["side"] == "left"),
        "{typing}"
    );
    phone.sim.shutdown().await;
}
