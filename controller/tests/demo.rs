//! `tapwire demo --once`, through a private adb server and directly over TCP: the scripted
//! conversation is read and every message answered.

mod support;

use std::time::Duration;

use support::tapwire_once;

fn check_transcript(out: &str) {
    for line in [
        "← [李雷] 李雷: 你好，在吗？",
        "→ [李雷] 你好，在吗？",
        "← [项目群] 王芳: 明天的评审会改到几点？",
        "→ [项目群] @王芳\u{2005}十点，三楼会议室",
        "→ [韩梅梅] Tapwire commands: ⏎ help: this list",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    // The same text twice from 李雷: answered twice.
    assert_eq!(out.matches("→ [李雷] 你好，在吗？").count(), 2, "{out}");
    assert!(!out.contains("reply failed"), "{out}");
}

#[test]
fn demo_through_an_adb_server() {
    let (ok, out) = tapwire_once(&["demo", "--once"], Duration::from_secs(90));
    assert!(ok, "{out}");
    assert!(out.contains("private adb server"), "{out}");
    check_transcript(&out);
}

#[test]
fn demo_over_direct_tcp() {
    let (ok, out) = tapwire_once(&["demo", "--once", "--direct"], Duration::from_secs(90));
    assert!(ok, "{out}");
    assert!(out.contains("directly over TCP"), "{out}");
    check_transcript(&out);
}
