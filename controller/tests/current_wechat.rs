//! WeChat as people's phones run it today (8.0.55 and later hide their tree), through the
//! real adb server and the real binary: `run` prepares the phone and answers, `phone
//! restore` undoes exactly what it changed, `doctor` and `run` explain what blocks them,
//! a phone with TalkBack on gets no tap, and `inspect` boxes what the map finds.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use tapwire_phone_sim::{IncomingMessage, SimConfig, settings::Preset};

use support::{
    AdbServer, assert_answered_in_order, phone, tapwire_once, tapwire_once_with_env, tapwire_run,
    wait_for_sent,
};

const TODAY: &str = "8.0.78";
const USERS_SERVICE: &str = "com.iflytek.inputmethod/com.iflytek.inputmethod.FlyService";
const SELECT_TO_SPEAK: &str = "com.google.android.marvin.talkback/com.google.android.accessibility.selecttospeak.SelectToSpeakService";

fn current(extra: impl FnOnce(&mut SimConfig)) -> SimConfig {
    let mut config = SimConfig {
        wechat_version: TODAY.into(),
        ..SimConfig::default()
    };
    extra(&mut config);
    config
}

fn preset(text: &str) -> Preset {
    text.parse().expect("a setting preset")
}

fn incoming(chat: &str, text: &str) -> IncomingMessage {
    IncomingMessage {
        chat: chat.into(),
        group: false,
        sender: None,
        text: text.into(),
        system: false,
    }
}

/// `tapwire phone VERB` for one phone.
fn phone_command(adb: &AdbServer, serial: &str, verb: &str) -> (bool, String) {
    tapwire_once(
        &[
            "phone",
            verb,
            "--device",
            serial,
            "--adb-server",
            &adb.addr(),
        ],
        Duration::from_secs(30),
    )
}

type Settings = BTreeMap<&'static str, BTreeMap<String, String>>;

fn setting<'a>(settings: &'a Settings, namespace: &str, key: &str) -> Option<&'a str> {
    settings
        .get(namespace)
        .and_then(|n| n.get(key))
        .map(String::as_str)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_prepares_a_current_phone_answers_once_and_restore_puts_every_setting_back() {
    let adb = AdbServer::start();
    // A user who already runs an accessibility service of their own.
    let phone = phone(
        &adb,
        current(|c| {
            c.settings = vec![
                preset(&format!(
                    "secure:enabled_accessibility_services={USERS_SERVICE}"
                )),
                preset("global:window_animation_scale=0.5"),
            ];
        }),
    )
    .await;
    let before = phone.control.settings();
    assert!(
        phone.control.accessibility().tree_hidden,
        "8.0.78 starts hidden"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("t.db");
    let tapwire = tapwire_run(&adb, &phone.serial, &db, &[]);
    let mut expected = Vec::new();
    for (i, chat) in ["李雷", "韩梅梅", "李雷"].iter().enumerate() {
        let text = format!("你好 {i}");
        phone.control.incoming(&incoming(chat, &text));
        expected.push((*chat, text));
    }
    let sent = wait_for_sent(&phone.control, expected.len(), Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_answered_in_order(&phone.control.sent(), &expected, || tapwire.log());
    assert_eq!(sent.len(), expected.len(), "{}", tapwire.log());

    let prepared = phone.control.settings();
    assert_eq!(
        setting(&prepared, "secure", "enabled_accessibility_services"),
        Some(format!("{USERS_SERVICE}:{SELECT_TO_SPEAK}").as_str()),
        "the user's service stays first"
    );
    assert_eq!(
        setting(&prepared, "secure", "accessibility_enabled"),
        Some("1")
    );
    for key in [
        "window_animation_scale",
        "transition_animation_scale",
        "animator_duration_scale",
    ] {
        assert_eq!(setting(&prepared, "global", key), Some("0"), "{key}");
    }
    drop(tapwire);

    let (ok, out) = phone_command(&adb, &phone.serial, "restore");
    assert!(ok, "{out}");
    assert_eq!(phone.control.settings(), before, "restore: {out}");
    assert!(phone.control.accessibility().tree_hidden);
    // Nothing left to undo the second time.
    let (ok, out) = phone_command(&adb, &phone.serial, "restore");
    assert!(ok && out.contains("nothing to restore"), "{out}");
    assert_eq!(phone.control.settings(), before);
    phone.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn phone_prepare_then_restore_deletes_what_was_never_set() {
    let adb = AdbServer::start();
    let phone = phone(&adb, current(|_| {})).await;
    let before = phone.control.settings();
    assert_eq!(
        setting(&before, "secure", "enabled_accessibility_services"),
        None,
        "a phone that never had an accessibility service"
    );
    let run = |verb| phone_command(&adb, &phone.serial, verb);
    let (ok, out) = run("prepare");
    assert!(ok && out.contains("readable again"), "{out}");
    assert!(!phone.control.accessibility().tree_hidden, "{out}");
    assert_eq!(
        setting(
            &phone.control.settings(),
            "secure",
            "enabled_accessibility_services"
        ),
        Some(SELECT_TO_SPEAK)
    );
    // Prepared twice: the second changes nothing and forgets nothing.
    let (ok, out) = run("prepare");
    assert!(ok, "{out}");
    let (ok, out) = run("restore");
    assert!(ok, "{out}");
    assert_eq!(phone.control.settings(), before, "{out}");
    phone.sim.shutdown().await;
}

fn doctor_json(adb: &AdbServer, serial: &str) -> (bool, Value) {
    let (ok, out) = tapwire_once(
        &[
            "doctor",
            "--json",
            "--device",
            serial,
            "--adb-server",
            &adb.addr(),
        ],
        Duration::from_secs(60),
    );
    let start = out.find('{').unwrap_or_else(|| panic!("no JSON in: {out}"));
    let end = out.rfind('}').expect("JSON end") + 1;
    let json: Value =
        serde_json::from_str(&out[start..end]).unwrap_or_else(|e| panic!("{e}: {out}"));
    (ok, json)
}

/// The check `name` about the phone `serial`.
fn check<'a>(json: &'a Value, serial: &str, name: &str) -> &'a Value {
    json["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["scope"] == serial && c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check for {serial}: {json:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn doctor_names_each_problem_and_its_fix() {
    let adb = AdbServer::start();

    let healthy = phone(&adb, SimConfig::default()).await;
    let (ok, json) = doctor_json(&adb, &healthy.serial);
    assert!(ok && json["ok"] == true, "{json:#}");
    for name in [
        "authorised",
        "screen",
        "wechat",
        "ui map",
        "ui tree",
        "keyboard",
    ] {
        assert_eq!(
            check(&json, &healthy.serial, name)["status"],
            "ok",
            "{name}: {json:#}"
        );
    }
    assert_eq!(
        check(&json, &healthy.serial, "animations")["status"],
        "warn"
    );
    for engine in ["tesseract", "ppocr"] {
        let ocr = check(&json, "computer", &format!("ocr ({engine})"));
        assert_eq!(ocr["status"], "ok", "{ocr}");
    }

    // Hidden, but Select to Speak is installed: run will bring it back.
    let hidden = phone(&adb, current(|_| {})).await;
    let (ok, json) = doctor_json(&adb, &hidden.serial);
    let tree = check(&json, &hidden.serial, "ui tree");
    assert!(ok, "a restorable tree does not block run: {json:#}");
    assert_eq!(tree["status"], "warn");
    assert!(
        tree["detail"]
            .as_str()
            .expect("detail")
            .contains("restorable"),
        "{tree}"
    );

    // Hidden, and nothing WeChat trusts is installed.
    let bare = phone(&adb, current(|c| c.accessibility_suite = false)).await;
    let (ok, json) = doctor_json(&adb, &bare.serial);
    let tree = check(&json, &bare.serial, "ui tree");
    assert!(!ok, "{json:#}");
    assert_eq!(tree["status"], "fail");
    assert!(
        tree["fix"]
            .as_str()
            .expect("fix")
            .contains("Accessibility Suite"),
        "{tree}"
    );

    let unknown = phone(&adb, current(|c| c.wechat_version = "9.1.0".into())).await;
    let (ok, json) = doctor_json(&adb, &unknown.serial);
    assert!(!ok);
    let map = check(&json, &unknown.serial, "ui map");
    assert_eq!(map["status"], "fail");
    assert!(
        map["fix"]
            .as_str()
            .expect("fix")
            .contains("tapwire map draft"),
        "{map}"
    );

    // A phone whose owner has not accepted this computer's key: adb says so on connect.
    let locked_out = tapwire_phone_sim::start(current(|c| c.unauthorized = true))
        .await
        .expect("phone-sim starts");
    let serial = locked_out.adb_addr().to_string();
    let said = adb.adb(&["connect", &serial]);
    assert!(said.contains("authenticate"), "{said}");
    adb.wait_for_state(&serial, "unauthorized");
    let (ok, json) = doctor_json(&adb, &serial);
    assert!(!ok);
    let auth = check(&json, &serial, "authorised");
    assert_eq!(auth["status"], "fail");
    assert!(
        auth["fix"]
            .as_str()
            .expect("fix")
            .contains("accept the prompt on the phone"),
        "{auth}"
    );

    for p in [healthy, hidden, bare, unknown] {
        p.sim.shutdown().await;
    }
    locked_out.shutdown().await;
}

/// Without an engine's data, only a phone configured for screenshots that needs that engine
/// is blocked: one that names it, or one that names none when no engine loads. Otherwise the
/// engine is reported as unusable, not as blocking `run`.
#[test]
fn doctor_blocks_a_vision_phone_without_its_ocr_engine_and_warns_the_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-ppocr-here");
    let missing = missing.to_str().expect("utf-8 path");
    // `without`: the engines whose files are made unfindable.
    let ocr_check = |phone: &str, without: &[&str], engine: &str| {
        let config = dir.path().join("tapwire.toml");
        std::fs::write(
            &config,
            format!("[[phones]]\nserial = \"emulator-5554\"\n{phone}\n"),
        )
        .expect("config written");
        let mut env = Vec::new();
        if without.contains(&"tesseract") {
            env.push(("TAPWIRE_TESSERACT_LANGS", "tapwire_no_such_language"));
        }
        if without.contains(&"ppocr") {
            env.push(("TAPWIRE_PPOCR_DIR", missing));
        }
        let (_, out) = tapwire_once_with_env(
            &[
                "doctor",
                "--json",
                "--config",
                config.to_str().expect("utf-8 path"),
                // Nothing listens there: the computer's checks are all this needs.
                "--adb-server",
                "127.0.0.1:1",
            ],
            &env,
            Duration::from_secs(60),
        );
        let start = out.find('{').unwrap_or_else(|| panic!("no JSON in: {out}"));
        let end = out.rfind('}').expect("JSON end") + 1;
        let json: Value =
            serde_json::from_str(&out[start..end]).unwrap_or_else(|e| panic!("{e}: {out}"));
        check(&json, "computer", &format!("ocr ({engine})")).clone()
    };
    let both = ["tesseract", "ppocr"];
    // No engine at all: a vision phone naming none is blocked by each.
    let vision = ocr_check("mode = \"vision\"", &both, "tesseract");
    assert_eq!(vision["status"], "fail", "{vision}");
    assert!(
        vision["fix"]
            .as_str()
            .expect("fix")
            .contains("tesseract-ocr-chi-sim"),
        "{vision}"
    );
    assert_eq!(
        ocr_check("mode = \"vision\"", &both, "ppocr")["status"],
        "fail"
    );
    // PP-OCR stands in for a missing tesseract where the phone names no engine…
    assert_eq!(
        ocr_check("mode = \"vision\"", &["tesseract"], "tesseract")["status"],
        "warn"
    );
    let stand_in = ocr_check("mode = \"vision\"", &["tesseract"], "ppocr");
    assert_eq!(stand_in["status"], "ok", "{stand_in}");
    assert!(
        stand_in["detail"]
            .as_str()
            .expect("detail")
            .contains("phones without `ocr` read screenshots with it"),
        "{stand_in}"
    );
    // …but never for one the phone names.
    assert_eq!(
        ocr_check(
            "mode = \"vision\"\nocr = \"tesseract\"",
            &["tesseract"],
            "tesseract"
        )["status"],
        "fail"
    );
    let ppocr = ocr_check("mode = \"vision\"\nocr = \"ppocr\"", &["ppocr"], "ppocr");
    assert_eq!(ppocr["status"], "fail", "{ppocr}");
    assert!(
        ppocr["detail"].as_str().expect("detail").contains(missing),
        "{ppocr}"
    );
    assert_eq!(
        ocr_check("mode = \"auto\"", &both, "tesseract")["status"],
        "warn"
    );
}

fn run_once(adb: &AdbServer, serial: &str, db: &str, mode: &str) -> (bool, String) {
    tapwire_once(
        &[
            "run",
            "--mode",
            mode,
            "--listen",
            "127.0.0.1:0",
            "--no-pacing",
            "--device",
            serial,
            "--adb-server",
            &adb.addr(),
            "--db",
            db,
        ],
        Duration::from_secs(60),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_trusted_service_or_with_talkback_run_says_why_and_taps_nothing() {
    let adb = AdbServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("t.db").to_string_lossy().to_string();

    // In `tree` mode; `auto` (the default) reads such a phone from screenshots
    // (vision_e2e.rs).
    let bare = phone(&adb, current(|c| c.accessibility_suite = false)).await;
    let (ok, out) = run_once(&adb, &bare.serial, &db, "tree");
    assert!(!ok, "{out}");
    for needle in ["Accessibility Suite", "点明", "vision mode"] {
        assert!(out.contains(needle), "missing {needle:?} in {out}");
    }

    let talkback = phone(
        &adb,
        current(|c| {
            c.settings = vec![
                preset("secure:enabled_accessibility_services=com.google.android.marvin.talkback/com.google.android.marvin.talkback.TalkBackService"),
                preset("secure:accessibility_enabled=1"),
                preset("secure:touch_exploration_enabled=1"),
            ];
        }),
    )
    .await;
    talkback.control.incoming(&incoming("李雷", "在吗"));
    let before = talkback.control.settings();
    let (ok, out) = run_once(&adb, &talkback.serial, &db, "auto");
    assert!(!ok, "{out}");
    assert!(out.contains("TalkBack is on"), "{out}");
    let stats = talkback.control.stats();
    assert_eq!(stats.input.get("tap").copied().unwrap_or(0), 0, "{stats:?}");
    assert_eq!(
        stats.input.get("tap_focus_only").copied().unwrap_or(0),
        0,
        "{stats:?}"
    );
    assert_eq!(
        talkback.control.settings(),
        before,
        "TalkBack's phone is left alone"
    );

    bare.sim.shutdown().await;
    talkback.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inspect_boxes_the_rows_where_the_dump_puts_them() {
    let adb = AdbServer::start();
    let phone = phone(&adb, SimConfig::default()).await;
    phone.control.incoming(&incoming("李雷", "早"));
    let dir = tempfile::tempdir().expect("tempdir");
    let out_png = dir.path().join("inspect.png");
    let (ok, out) = tapwire_once(
        &[
            "inspect",
            "--device",
            &phone.serial,
            "--adb-server",
            &adb.addr(),
            "--out",
            &out_png.to_string_lossy(),
            "--json",
        ],
        Duration::from_secs(60),
    );
    assert!(ok, "{out}");
    let start = out.find('{').expect("JSON");
    let json: Value = serde_json::from_str(&out[start..]).expect("inspect JSON");
    let picture = image::open(&out_png).expect("a PNG").to_rgba8();
    let screenshot = image::load_from_memory(&phone.control.device().screencap_png().expect("png"))
        .expect("screenshot")
        .to_rgba8();
    let rows: Vec<&Value> = json["boxes"]
        .as_array()
        .expect("boxes")
        .iter()
        .filter(|b| b["role"] == "conversation_row")
        .collect();
    assert!(rows.len() >= 3, "{json:#}");
    for row in rows {
        // uiautomator's own notation: [left,top][right,bottom]
        let numbers: Vec<i64> = row["bounds"]
            .as_str()
            .expect("bounds")
            .split(|c: char| !c.is_ascii_digit())
            .filter(|n| !n.is_empty())
            .map(|n| n.parse().expect("a number"))
            .collect();
        let [left, _top, right, bottom] = numbers[..] else {
            panic!("bounds {row}");
        };
        // The row's bottom edge is boxed in the picture, and was no box colour before.
        let y = u32::try_from(bottom - 1).expect("y");
        let mut boxed = 0;
        let mut span = 0;
        for x in (left + 4..right - 4).step_by(7) {
            let x = u32::try_from(x).expect("x");
            span += 1;
            if tapwire_device_agent::inspect::is_role_colour(*picture.get_pixel(x, y))
                && !tapwire_device_agent::inspect::is_role_colour(*screenshot.get_pixel(x, y))
            {
                boxed += 1;
            }
        }
        assert!(boxed * 10 >= span * 9, "row {row}: {boxed} of {span} boxed");
    }
    phone.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_build_gets_its_own_map_and_an_unknown_one_is_named() {
    let adb = AdbServer::start();
    let with_version = |v: &str| SimConfig {
        wechat_version: v.into(),
        ..SimConfig::default()
    };
    let phones = [
        phone(&adb, with_version("8.0.50")).await,
        phone(&adb, with_version("6.6.6")).await,
        phone(&adb, with_version("9.1.0")).await,
    ];
    let (ok, out) = tapwire_once(
        &["devices", "--adb-server", &adb.addr()],
        Duration::from_secs(60),
    );
    assert!(ok, "{out}");
    let line = |serial: &str| {
        out.lines()
            .find(|l| l.starts_with(serial))
            .unwrap_or_else(|| panic!("{serial} not listed: {out}"))
            .to_string()
    };
    assert!(
        line(&phones[0].serial).contains("8.0.50 (map wechat-8.0)"),
        "{out}"
    );
    assert!(
        line(&phones[1].serial).contains("6.6.6 (map wechat-6.6.6)"),
        "{out}"
    );
    let unknown = line(&phones[2].serial);
    assert!(
        unknown.contains("9.1.0") && unknown.contains("tapwire map draft"),
        "{out}"
    );
    // The 6.6.6 phone is read with its own ids: its conversation list comes out whole.
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, out) = tapwire_once(
        &[
            "dump",
            "--out",
            &dir.path().to_string_lossy(),
            "--device",
            &phones[1].serial,
            "--adb-server",
            &adb.addr(),
        ],
        Duration::from_secs(60),
    );
    assert!(ok, "{out}");
    let json_path = out
        .lines()
        .find(|l| l.ends_with(".json"))
        .unwrap_or_else(|| panic!("no reading saved: {out}"));
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(json_path).expect("reading")).expect("JSON");
    assert_eq!(saved["reading"]["map"], "wechat-6.6.6", "{saved:#}");
    assert_eq!(saved["reading"]["kind"], "conversation_list", "{saved:#}");
    let rows = saved["reading"]["list"]["rows"].as_array().expect("rows");
    assert!(
        rows.len() >= 3 && rows.iter().all(|r| r["title"].is_string()),
        "{saved:#}"
    );
    for p in phones {
        p.sim.shutdown().await;
    }
}

/// Pacing as the actor applies it: replies into one chat keep the configured gap, and none
/// is dropped for waiting. Only lower bounds are checked: a slow machine can only widen
/// the gaps.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paced_replies_keep_their_gap_and_all_go_out() {
    let adb = AdbServer::start();
    let phone = phone(&adb, SimConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("tapwire.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\npath = {db:?}\n[[phones]]\nserial = {serial:?}\nadb_server = {adb:?}\npoll_ms = 50\npacing = {{ think_ms = 200, per_char_ms = 0, max_delay_ms = 200, jitter = 0.0, min_gap_ms = 1500 }}\n",
            db = dir.path().join("t.db").to_string_lossy(),
            serial = phone.serial,
            adb = adb.addr(),
        ),
    )
    .expect("config");
    let (ok, out) = tapwire_once(
        &["config", "check", &config.to_string_lossy()],
        Duration::from_secs(30),
    );
    assert!(
        ok && out.contains("at least 1500 ms between sends"),
        "{out}"
    );
    let tapwire = support::tapwire_command(
        &[
            "run",
            "--listen",
            "127.0.0.1:0",
            "--config",
            &config.to_string_lossy(),
        ],
        &config,
    );
    for i in 0..3 {
        phone
            .control
            .incoming(&incoming("李雷", &format!("第 {i} 条")));
    }
    // When each reply appeared, watched every 20 ms.
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while seen.len() < 3 && std::time::Instant::now() < deadline {
        let count = phone.control.sent().len();
        while seen.len() < count {
            seen.push(std::time::Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen.len(), 3, "{}", tapwire.log());
    for pair in seen.windows(2) {
        let gap = pair[1] - pair[0];
        // 1500 ms apart on the phone; the 20 ms watch can shift each end by one tick.
        assert!(
            gap >= Duration::from_millis(1450),
            "gap {gap:?}: {}",
            tapwire.log()
        );
    }
    drop(tapwire);
    phone.sim.shutdown().await;
}
