//! `/metrics` end to end: the real `tapwire run` answers a virtual phone through a real
//! adb server, then its scrape must show what this test saw happen (messages in, replies
//! out, the phone's own count of the commands it ran) and pass `promtool check metrics`.
//! Beside it, the alert rules and the dashboard in `deploy/` are checked with promtool
//! and against the metric names the code records.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use support::platforms::{self, Platforms};
use support::{AdbServer, phone, repo_root, tapwire_run, wait_for_sent};
use tapwire_phone_sim::{IncomingMessage, SimConfig};

/// One sample of a scrape: its name and labels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Series {
    name: String,
    labels: BTreeMap<String, String>,
}

/// The samples of a Prometheus text scrape. Label values here never hold `,` `"` or `}`
/// (serials, kinds, event types), so a plain split reads them.
fn parse(text: &str) -> BTreeMap<Series, f64> {
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
        let value: f64 = value.parse().expect("a number");
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let inner = rest.strip_suffix('}').expect("labels close");
                let labels = inner
                    .split(',')
                    .filter(|pair| !pair.is_empty())
                    .map(|pair| {
                        let (k, v) = pair.split_once('=').expect("label=value");
                        (k.to_string(), v.trim_matches('"').to_string())
                    })
                    .collect();
                (name.to_string(), labels)
            }
            None => (series.to_string(), BTreeMap::new()),
        };
        samples.insert(
            Series {
                name: name.to_string(),
                labels,
            },
            value,
        );
    }
    samples
}

/// The sum of `name`'s samples whose labels include `labels`.
fn sum(samples: &BTreeMap<Series, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(s, _)| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .fold(0.0, |total, (_, v)| total + v)
}

async fn scrape(addr: &str) -> String {
    let response = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("GET /metrics");
    assert_eq!(response.status(), 200);
    response.text().await.expect("text")
}

/// Runs `promtool` with `args` (and `stdin`), from `dir`; its output on failure.
fn promtool(args: &[&str], dir: &std::path::Path, stdin: Option<&str>) -> Result<String, String> {
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (scripts/setup installs the prometheus package)");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("promtool ends");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

fn incoming(chat: &str, group: bool, sender: Option<&str>, text: &str) -> IncomingMessage {
    IncomingMessage {
        chat: chat.into(),
        group,
        sender: sender.map(Into::into),
        text: text.into(),
        system: false,
    }
}

/// What the phone ran, by program, as the phone itself counts it.
fn phone_commands(control: &tapwire_phone_sim::SimControl, program: &str) -> f64 {
    control.stats().commands.get(program).copied().unwrap_or(0) as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scrape_after_answering_shows_what_the_test_saw() {
    let started = SystemTime::now();
    let adb = AdbServer::start();
    let phone = phone(&adb, SimConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let tapwire = tapwire_run(&adb, &phone.serial, &dir.path().join("t.db"), &[]);
    let addr = tapwire.listen_addr();
    let serial = phone.serial.as_str();

    let c = &phone.control;
    c.incoming(&incoming("李雷", false, None, "你好"));
    c.incoming(&incoming("李雷", false, None, "在吗"));
    c.incoming(&incoming("李雷", false, None, "周末一起吃饭吗？"));
    c.incoming(&incoming("项目群", true, Some("王芳"), "明天几点开会？"));
    c.incoming(&incoming("项目群", true, Some("陈静"), "十点"));
    let received = 5.0;
    let sent = wait_for_sent(c, 5, Duration::from_secs(90)).await;
    assert_eq!(sent.len(), 5, "log: {}", tapwire.log());

    // The phone's replies count once the read that shows them is stored: a moment after
    // the phone saw them typed.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (text, samples, dumps_before, dumps_after, inputs_before, inputs_after) = loop {
        let dumps_before = phone_commands(c, "uiautomator");
        let inputs_before = phone_commands(c, "input");
        let text = scrape(&addr).await;
        let dumps_after = phone_commands(c, "uiautomator");
        let inputs_after = phone_commands(c, "input");
        let samples = parse(&text);
        let done = sum(
            &samples,
            "tapwire_actions_total",
            &[("adapter", serial), ("outcome", "sent")],
        );
        if done >= sent.len() as f64 || Instant::now() > deadline {
            break (
                text,
                samples,
                dumps_before,
                dumps_after,
                inputs_before,
                inputs_after,
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let context = || format!("scrape:\n{text}\nlog: {}", tapwire.log());
    let value = |name: &str, labels: &[(&str, &str)]| sum(&samples, name, labels);

    // Events in, as the test made them: five messages, one connection.
    assert_eq!(
        value(
            "tapwire_events_total",
            &[("source", serial), ("type", "message.received")]
        ),
        received,
        "{}",
        context()
    );
    assert_eq!(
        value(
            "tapwire_events_total",
            &[("source", serial), ("type", "device.connected")]
        ),
        1.0,
        "{}",
        context()
    );
    // Actions out: each reply the phone saw typed, none failed.
    assert_eq!(
        value(
            "tapwire_actions_total",
            &[("adapter", serial), ("outcome", "sent")]
        ),
        c.sent().len() as f64,
        "{}",
        context()
    );
    assert_eq!(
        value(
            "tapwire_actions_total",
            &[("adapter", serial), ("outcome", "failed")]
        ),
        0.0,
        "{}",
        context()
    );
    // The default route sends each message.received to echo, once.
    assert_eq!(
        value(
            "tapwire_handler_duration_seconds_count",
            &[("handler", "echo")]
        ),
        received,
        "{}",
        context()
    );
    // ADB calls by kind against the phone's own count of what it ran. The phone counts a
    // command as it starts and Tapwire once it returns, so between the two readings that
    // bracket the scrape, one call may be in flight.
    let dump_calls = value(
        "tapwire_adb_calls_total",
        &[("phone", serial), ("kind", "dump")],
    );
    assert!(
        dump_calls >= dumps_before - 1.0 && dump_calls <= dumps_after && dump_calls > 0.0,
        "dump calls {dump_calls}, the phone ran {dumps_before}..{dumps_after}; {}",
        context()
    );
    let input_calls = value(
        "tapwire_adb_calls_total",
        &[("phone", serial), ("kind", "input")],
    );
    assert!(
        input_calls >= inputs_before - 1.0 && input_calls <= inputs_after && input_calls > 0.0,
        "input calls {input_calls}, the phone ran {inputs_before}..{inputs_after}; {}",
        context()
    );
    assert!(
        value(
            "tapwire_adb_calls_total",
            &[("phone", serial), ("kind", "dumpsys")]
        ) > 0.0,
        "{}",
        context()
    );
    assert_eq!(
        value(
            "tapwire_adb_calls_total",
            &[("phone", serial), ("outcome", "error")]
        ),
        0.0,
        "{}",
        context()
    );
    // Every call timed: the histogram's count is the counter's (one call may fall
    // between the two as the scrape renders).
    let timed = value(
        "tapwire_adb_call_duration_seconds_count",
        &[("phone", serial), ("kind", "dump")],
    );
    assert!((timed - dump_calls).abs() <= 1.0, "{}", context());
    // Dumps the reader took: the running actor's, not the start's checks.
    let dumps = value("tapwire_dumps_total", &[("phone", serial)]);
    assert!(
        dumps > 0.0 && dumps <= dump_calls,
        "dumps {dumps}, dump calls {dump_calls}; {}",
        context()
    );
    assert_eq!(
        value("tapwire_screenshots_total", &[("phone", serial)]),
        0.0,
        "the tree reader takes no screenshots; {}",
        context()
    );
    assert_eq!(
        value(
            "tapwire_send_verification_failures_total",
            &[("phone", serial)]
        ),
        0.0,
        "{}",
        context()
    );
    // The phone is there, read within this test, and nothing waits.
    assert_eq!(
        value("tapwire_phone_connected", &[("phone", serial)]),
        1.0,
        "{}",
        context()
    );
    let last_read = value(
        "tapwire_phone_last_read_timestamp_seconds",
        &[("phone", serial)],
    );
    let since = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs_f64()
    };
    assert!(
        last_read >= since(started) - 1.0 && last_read <= since(SystemTime::now()) + 1.0,
        "last read {last_read}; {}",
        context()
    );
    assert_eq!(
        value("tapwire_outbox_depth", &[("adapter", serial)]),
        0.0,
        "{}",
        context()
    );
    assert_eq!(value("tapwire_dlq_depth", &[]), 0.0, "{}", context());

    // And Prometheus' own linter takes the scrape as it is.
    if let Err(problems) = promtool(&["check", "metrics"], dir.path(), Some(&text)) {
        panic!("promtool check metrics: {problems}\n{}", context());
    }
    drop(tapwire);
    phone.sim.shutdown().await;
}

/// Scrapes until `done` holds for a scrape (or 20 s passed); the last scrape.
async fn scrape_until(addr: &str, done: impl Fn(&BTreeMap<Series, f64>) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = scrape(addr).await;
        if done(&parse(&text)) || Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A platform's side: callbacks that pass the door become events, forged and replayed
/// ones are counted by reason at scrape time, the answers are counted as sent when the
/// platform took them, and an answer the platform is slow to take waits in the outbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scrape_shows_a_platforms_callbacks_refusals_answers_and_outbox() {
    let api = Platforms::default();
    let (api_url, server) = platforms::serve(api.router()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // One plugin, which exits when asked to `crash`.
    let plugins = dir.path().join("plugins");
    let crashy = plugins.join("crashy");
    std::fs::create_dir_all(&crashy).expect("plugins dir");
    let fixture = repo_root().join("controller/tests/fixtures/plugins/crashy");
    for file in ["plugin.toml", "crashy.sh"] {
        std::fs::copy(fixture.join(file), crashy.join(file)).expect("copy the plugin");
    }
    let config = dir.path().join("tapwire.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\npath = {db:?}\n[plugins]\ndir = {plugins:?}\n[permissions]\nadmins = [\"wecom:ops\"]\n{app}[[routes]]\nevent = \"message.received\"\nhandler = \"echo\"\n[handlers.hook]\ntype = \"webhook\"\nurl = \"{api_url}/no-such-hook\"\nattempts = 2\nbackoff_ms = 10\n[[routes]]\nevent = \"message.received\"\nconversation = \"wangwu\"\npriority = 10\nhandler = \"hook\"\n",
            db = dir.path().join("t.db").to_string_lossy(),
            plugins = plugins.to_string_lossy(),
            app = platforms::wecom_app_section("app", &api_url),
        ),
    )
    .expect("config");
    let tapwire = support::tapwire_command_env(
        &[
            "run",
            "--listen",
            "127.0.0.1:0",
            "--config",
            &config.to_string_lossy(),
        ],
        &config,
        &platforms::secrets(),
    );
    let addr = tapwire.listen_addr();
    let base = format!("http://{addr}/callback/app");
    let client = reqwest::Client::new();
    let context = |text: &str| format!("scrape:\n{text}\nlog: {}", tapwire.log());

    let first = platforms::wecom_text("lisi", "一", 9101);
    for (n, text) in [(9102, "二"), (9103, "三")] {
        let status =
            platforms::post_wecom(&client, &base, &platforms::wecom_text("lisi", text, n)).await;
        assert_eq!(status, 200);
    }
    // The first twice: WeCom's retry of the same request, taken once.
    for _ in 0..2 {
        assert_eq!(platforms::post_wecom(&client, &base, &first).await, 200);
    }
    // And again a second later, signed anew (WeCom's retry after a timeout): it passes
    // the door and is no new event (the same MsgId).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = platforms::wecom_text("lisi", "一", 9101);
    assert_ne!(again, first, "signed at another second");
    assert_eq!(platforms::post_wecom(&client, &base, &again).await, 200);
    // Two forgeries.
    for n in [9104, 9105] {
        let (query, body) = platforms::wecom_text("lisi", "假", n);
        let forged = (query.replacen("msg_signature=", "msg_signature=0", 1), body);
        assert_eq!(platforms::post_wecom(&client, &base, &forged).await, 403);
    }
    let text = scrape_until(&addr, |s| {
        sum(
            s,
            "tapwire_actions_total",
            &[("adapter", "app"), ("outcome", "sent")],
        ) >= 3.0
    })
    .await;
    let samples = parse(&text);
    let value = |name: &str, labels: &[(&str, &str)]| sum(&samples, name, labels);
    assert_eq!(api.wecom_sent_to("lisi").len(), 3, "{}", context(&text));
    assert_eq!(
        value(
            "tapwire_events_total",
            &[("source", "app"), ("type", "message.received")]
        ),
        3.0,
        "{}",
        context(&text)
    );
    assert_eq!(
        value(
            "tapwire_actions_total",
            &[("adapter", "app"), ("outcome", "sent")]
        ),
        api.wecom_sent_to("lisi").len() as f64,
        "{}",
        context(&text)
    );
    assert_eq!(
        value(
            "tapwire_handler_duration_seconds_count",
            &[("handler", "echo")]
        ),
        3.0
    );
    for (reason, count) in [
        ("signature", 2.0),
        ("replay", 1.0),
        ("stale", 0.0),
        ("malformed", 0.0),
    ] {
        assert_eq!(
            value(
                "tapwire_callback_rejections_total",
                &[("adapter", "app"), ("reason", reason)]
            ),
            count,
            "{reason}: {}",
            context(&text)
        );
    }
    assert_eq!(
        value("tapwire_outbox_depth", &[("adapter", "app")]),
        0.0,
        "{}",
        context(&text)
    );

    // An answer WeCom takes two seconds to acknowledge waits in the outbox meanwhile.
    api.answer_after(Duration::from_secs(2));
    let status =
        platforms::post_wecom(&client, &base, &platforms::wecom_text("lisi", "四", 9106)).await;
    assert_eq!(status, 200);
    let text = scrape_until(&addr, |s| {
        sum(
            s,
            "tapwire_outbox_oldest_age_seconds",
            &[("adapter", "app")],
        ) > 0.5
    })
    .await;
    let samples = parse(&text);
    assert_eq!(
        sum(&samples, "tapwire_outbox_depth", &[("adapter", "app")]),
        1.0,
        "{}",
        context(&text)
    );
    let text = scrape_until(&addr, |s| {
        sum(s, "tapwire_outbox_depth", &[("adapter", "app")]) == 0.0
    })
    .await;
    let samples = parse(&text);
    assert_eq!(
        sum(
            &samples,
            "tapwire_outbox_oldest_age_seconds",
            &[("adapter", "app")]
        ),
        0.0,
        "{}",
        context(&text)
    );
    assert_eq!(
        sum(
            &samples,
            "tapwire_actions_total",
            &[("adapter", "app"), ("outcome", "sent")]
        ),
        4.0,
        "{}",
        context(&text)
    );
    assert_eq!(
        sum(
            &samples,
            "tapwire_plugin_restarts_total",
            &[("plugin", "crashy")]
        ),
        0.0,
        "{}",
        context(&text)
    );

    // An admin crashes the plugin: it is started again once.
    api.answer_after(Duration::ZERO);
    let status = platforms::post_wecom(
        &client,
        &base,
        &platforms::wecom_text("ops", "crashy crash", 9107),
    )
    .await;
    assert_eq!(status, 200);
    let text = scrape_until(&addr, |s| {
        sum(s, "tapwire_plugin_restarts_total", &[("plugin", "crashy")]) >= 1.0
    })
    .await;
    let samples = parse(&text);
    assert_eq!(
        sum(
            &samples,
            "tapwire_plugin_restarts_total",
            &[("plugin", "crashy")]
        ),
        1.0,
        "{}",
        context(&text)
    );

    // wangwu's messages go to a webhook that is not there: after its two tries the
    // event is a dead letter, and waits.
    let status = platforms::post_wecom(
        &client,
        &base,
        &platforms::wecom_text("wangwu", "在吗", 9108),
    )
    .await;
    assert_eq!(status, 200);
    let text = scrape_until(&addr, |s| sum(s, "tapwire_dlq_depth", &[]) >= 1.0).await;
    let samples = parse(&text);
    assert_eq!(
        sum(&samples, "tapwire_dlq_depth", &[]),
        1.0,
        "{}",
        context(&text)
    );
    assert_eq!(
        sum(
            &samples,
            "tapwire_dead_letters_total",
            &[("handler", "hook")]
        ),
        1.0,
        "{}",
        context(&text)
    );
    if let Err(problems) = promtool(&["check", "metrics"], dir.path(), Some(&text)) {
        panic!("promtool check metrics: {problems}\n{}", context(&text));
    }
    drop(tapwire);
    server.abort();
}

/// The alert rules load, and each fires when it should and not before
/// (`tapwire.rules.test.yml` holds made-up series for each).
#[test]
fn the_alert_rules_pass_promtool() {
    let dir = repo_root().join("deploy/prometheus");
    for args in [
        &["check", "rules", "tapwire.rules.yml"][..],
        &["test", "rules", "tapwire.rules.test.yml"][..],
    ] {
        if let Err(problems) = promtool(args, &dir, None) {
            panic!("promtool {args:?}: {problems}");
        }
    }
}

/// Every metric the code records, with the series a histogram adds.
fn known_metrics() -> BTreeSet<String> {
    let docs = std::fs::read_to_string(repo_root().join("docs/metrics.md")).expect("docs");
    let mut names = BTreeSet::new();
    for name in [
        tapwire::telemetry::EVENTS,
        tapwire::telemetry::ACTIONS,
        tapwire::telemetry::ACTION_RETRIES,
        tapwire::telemetry::DEAD_LETTERS,
        tapwire::telemetry::PLUGIN_RESTARTS,
        tapwire::telemetry::CALLBACK_REJECTIONS,
        tapwire::telemetry::PASSIVE_SKIPPED,
        tapwire::telemetry::OUTBOX_DEPTH,
        tapwire::telemetry::OUTBOX_OLDEST_AGE,
        tapwire::telemetry::DLQ_DEPTH,
        tapwire::telemetry::PHONE_CONNECTED,
        tapwire::telemetry::PHONE_LAST_READ,
        tapwire_device_agent::telemetry::ADB_CALLS,
        tapwire_device_agent::telemetry::DUMPS,
        tapwire_device_agent::telemetry::SCREENSHOTS,
        tapwire_device_agent::telemetry::SEND_VERIFICATION_FAILURES,
    ] {
        names.insert(name.to_string());
    }
    for histogram in [
        tapwire::telemetry::HANDLER_SECONDS,
        tapwire_device_agent::telemetry::ADB_CALL_SECONDS,
    ] {
        for suffix in ["_bucket", "_count", "_sum"] {
            names.insert(format!("{histogram}{suffix}"));
        }
        names.insert(histogram.to_string());
    }
    for name in &names {
        if !name.ends_with("_bucket") && !name.ends_with("_count") && !name.ends_with("_sum") {
            assert!(
                docs.contains(&format!("`{name}`")),
                "docs/metrics.md does not describe {name}"
            );
        }
    }
    names
}

/// The `tapwire_…` names a file mentions.
fn mentioned(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("tapwire_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        found.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    found
}

/// The rules and the dashboard ask only for metrics that exist, so a renamed metric
/// cannot leave an alert that never fires or a panel that stays empty; and the dashboard
/// is JSON Grafana can import.
#[test]
fn the_rules_and_the_dashboard_use_the_metrics_the_code_records() {
    let known = known_metrics();
    let rules = std::fs::read_to_string(repo_root().join("deploy/prometheus/tapwire.rules.yml"))
        .expect("rules");
    let dashboard_text = std::fs::read_to_string(repo_root().join("deploy/grafana/tapwire.json"))
        .expect("dashboard");
    let dashboard: serde_json::Value =
        serde_json::from_str(&dashboard_text).expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut exprs = String::new();
    for panel in panels {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push_str(target["expr"].as_str().unwrap_or_default());
            exprs.push('\n');
        }
    }
    for (file, text) in [("rules", rules.as_str()), ("dashboard", exprs.as_str())] {
        let used = mentioned(text);
        assert!(!used.is_empty(), "{file} names no metric");
        let unknown: Vec<&String> = used.difference(&known).collect();
        assert!(
            unknown.is_empty(),
            "{file} asks for unknown metrics {unknown:?}"
        );
    }
    // Every metric has a panel.
    let shown = mentioned(&exprs);
    for name in &known {
        let base = name
            .trim_end_matches("_bucket")
            .trim_end_matches("_count")
            .trim_end_matches("_sum");
        assert!(
            shown.iter().any(|s| s.starts_with(base)),
            "no panel shows {name}"
        );
    }
}
