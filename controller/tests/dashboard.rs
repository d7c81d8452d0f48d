//! The dashboard end to end, in a real headless Chromium driven over WebDriver
//! (chromedriver, which `scripts/setup` installs): the real `tapwire run` against phone-sim
//! through a private adb server, answering with the built-in echo. A wrong token is
//! refused at the login; with the right one, a message injected into the sim shows up in
//! the live phone view within a few seconds, and its answer in the conversation's page.
//! Screenshots of the pages are kept in `target/test-artifacts/dashboard-*.png`.

mod support;

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use support::{AdbServer, Tapwire, free_port, phone, repo_root, tapwire_run_env};
use tapwire_phone_sim::{IncomingMessage, SimConfig};

const TOKEN: &str = "dash-token-0123456789";

/// chromedriver on a private port, stopped by its pid when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Driver {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("`chromedriver` must be installed: run scripts/setup");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver { child, port }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Headless Chromium, in English whatever the machine's locale (the texts checked below
/// are the English ones); `--no-sandbox` because CI runs as root.
async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1400,1000", "--lang=en-US"],
            "prefs": {"intl.accept_languages": "en-US"},
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a Chromium session")
}

fn artifacts() -> PathBuf {
    let dir = repo_root().join("target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

async fn keep_screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(artifacts().join(format!("dashboard-{name}.png")), png).expect("write png");
}

/// Waits until an element matching `css` has text containing `wanted`; the time it took.
async fn wait_for_text(
    client: &Client,
    css: &str,
    wanted: &str,
    timeout: Duration,
    tapwire: &Tapwire,
) -> Duration {
    let started = Instant::now();
    loop {
        if let Ok(found) = client.find_all(Locator::Css(css)).await {
            for element in found {
                if element.text().await.is_ok_and(|t| t.contains(wanted)) {
                    return started.elapsed();
                }
            }
        }
        if started.elapsed() > timeout {
            keep_screenshot(client, "failed").await;
            let source = client.source().await.unwrap_or_default();
            panic!(
                "no {css:?} with {wanted:?} after {timeout:?}; page: {source}\nlog: {}",
                tapwire.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Screenshots the phone's actor took, from `/metrics`.
async fn screenshots(base: &str, serial: &str) -> u64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let line = format!("tapwire_screenshots_total{{phone=\"{serial}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&line))
        .map_or(0, |n| n.trim().parse().expect("a count"))
}

/// The controller's resident memory (Linux), for the numbers the test prints.
fn rss(tapwire: &Tapwire) -> String {
    std::fs::read_to_string(format!("/proc/{}/status", tapwire.child.id()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:").map(|v| v.trim().to_string()))
        })
        .unwrap_or_else(|| "unknown".into())
}

fn wait_for_log(tapwire: &Tapwire, wanted: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !tapwire.log().contains(wanted) {
        assert!(
            Instant::now() < deadline,
            "never {wanted:?}: {}",
            tapwire.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn sign_in(client: &Client, base: &str, token: &str) {
    client
        .goto(&format!("{base}/dashboard"))
        .await
        .expect("dashboard");
    let field = client
        .wait()
        .at_most(Duration::from_secs(5))
        .for_element(Locator::Css("#login-token"))
        .await
        .expect("the login form");
    field.send_keys(token).await.expect("typed");
    client
        .find(Locator::Css("#login-submit"))
        .await
        .expect("button")
        .click()
        .await
        .expect("clicked");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_shows_live_and_its_answer_in_the_conversation() {
    let adb = AdbServer::start();
    let phone = phone(&adb, SimConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let tapwire = tapwire_run_env(
        &adb,
        &phone.serial,
        &dir.path().join("t.db"),
        &[],
        &[("TAPWIRE_API_TOKENS", TOKEN)],
    );
    let base = format!("http://{}", tapwire.listen_addr());
    assert!(
        tapwire.log().contains("dashboard on"),
        "the run logs the dashboard: {}",
        tapwire.log()
    );
    // Once the phone is read, before any page watches it: no screenshot is taken (the
    // tree is read), which is what an unwatched live view must cost.
    wait_for_log(&tapwire, "phone ready");
    eprintln!("controller with one phone, no dashboard: {}", rss(&tapwire));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(screenshots(&base, &phone.serial).await, 0);
    let driver = Driver::start();
    let client = browser(&driver).await;

    // A wrong token: the form again, saying so, and no way in. (The page before the
    // submit has the line too, hidden: wait for the new page's, shown.)
    sign_in(&client, &base, "not-the-token").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let error = loop {
        if let Ok(error) = client.find(Locator::Css("#login-error")).await
            && error.is_displayed().await.unwrap_or(false)
        {
            break error;
        }
        assert!(Instant::now() < deadline, "the refusal is never shown");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        error.text().await.expect("text"),
        "That token is not one of this controller's."
    );
    client
        .goto(&format!("{base}/dashboard"))
        .await
        .expect("dashboard");
    assert!(
        client.find(Locator::Css("#phones")).await.is_err(),
        "refused, yet the dashboard shows"
    );

    sign_in(&client, &base, TOKEN).await;
    client
        .wait()
        .at_most(Duration::from_secs(5))
        .for_element(Locator::Css("#tab-live"))
        .await
        .expect("the dashboard after login")
        .click()
        .await
        .expect("live tab");
    let card = format!(".phone[data-phone=\"{}\"]", phone.serial);
    // The phone's first screen comes with a screenshot once the page watches.
    wait_for_text(
        &client,
        &format!("{card} .state"),
        "conversation list",
        Duration::from_secs(15),
        &tapwire,
    )
    .await;
    let text = format!("dashboard hello {}", std::process::id());
    phone.control.incoming(&IncomingMessage {
        chat: "李雷".into(),
        group: false,
        sender: None,
        text: text.clone(),
        system: false,
    });
    let live = wait_for_text(
        &client,
        &format!("{card} .log-list li.received"),
        &text,
        Duration::from_secs(10),
        &tapwire,
    )
    .await;
    eprintln!("live view: the message shown {live:?} after it reached the phone");
    wait_for_text(
        &client,
        &format!("{card} .read-list li"),
        &text,
        Duration::from_secs(5),
        &tapwire,
    )
    .await;
    let img = client
        .find(Locator::Css(&format!("{card} .screen img")))
        .await
        .expect("the screenshot");
    let src = img.attr("src").await.expect("src").unwrap_or_default();
    assert!(src.contains("/screen.png?at="), "{src}");
    let boxes = client
        .find_all(Locator::Css(&format!("{card} .screen svg rect")))
        .await
        .expect("boxes");
    assert!(!boxes.is_empty(), "no role boxed on the screenshot");
    keep_screenshot(&client, "live").await;
    let delays = client
        .execute("return window.liveDelays || [];", Vec::new())
        .await
        .expect("delays");
    let mut delays: Vec<i64> = serde_json::from_value(delays).expect("numbers");
    // The first is the screen read before the page opened, which the stream starts with.
    delays.remove(0);
    delays.sort_unstable();
    eprintln!(
        "live view: read → page {} ms median, {} ms max, over {} screens",
        delays.get(delays.len() / 2).copied().unwrap_or(-1),
        delays.last().copied().unwrap_or(-1),
        delays.len()
    );
    assert!(screenshots(&base, &phone.serial).await > 0);
    eprintln!(
        "controller with one phone and one open dashboard: {}",
        rss(&tapwire)
    );

    client
        .find(Locator::Css("#tab-conversations"))
        .await
        .expect("tab")
        .click()
        .await
        .expect("clicked");
    client
        .wait()
        .at_most(Duration::from_secs(5))
        .for_element(Locator::Css(
            "#conversation-list li[data-conversation=\"李雷\"]",
        ))
        .await
        .expect("the conversation is listed")
        .click()
        .await
        .expect("opened");
    wait_for_text(
        &client,
        "#messages li.in",
        &text,
        Duration::from_secs(5),
        &tapwire,
    )
    .await;
    // The echo's answer, once the phone has typed it and read it back.
    wait_for_text(
        &client,
        "#messages li.out[data-status=\"done\"]",
        &text,
        Duration::from_secs(15),
        &tapwire,
    )
    .await;
    keep_screenshot(&client, "conversation").await;

    // The phone's health as the API (and the sources page) shows it.
    let sources: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/api/v1/sources"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    let health = &sources[0]["health"];
    assert_eq!(sources[0]["name"], phone.serial.as_str(), "{sources}");
    assert_eq!(health["connected"], true, "{sources}");
    assert_eq!(health["reader_mode"], "tree", "{sources}");
    for field in ["last_screen_read", "last_message_read", "last_success"] {
        assert!(health[field].is_string(), "no {field}: {sources}");
    }
    client
        .find(Locator::Css("#tab-sources"))
        .await
        .expect("tab")
        .click()
        .await
        .expect("clicked");
    wait_for_text(
        &client,
        &format!("#sources-rows tr[data-source=\"{}\"]", phone.serial),
        "tree (auto:wechat-",
        Duration::from_secs(5),
        &tapwire,
    )
    .await;
    keep_screenshot(&client, "sources").await;

    // 中文: the switch changes every text, and stays chosen.
    client
        .find(Locator::Css("#lang-zh"))
        .await
        .expect("the language switch")
        .click()
        .await
        .expect("clicked");
    wait_for_text(
        &client,
        "#tab-conversations",
        "会话",
        Duration::from_secs(2),
        &tapwire,
    )
    .await;
    wait_for_text(
        &client,
        "#sources-rows",
        "是",
        Duration::from_secs(5),
        &tapwire,
    )
    .await;
    keep_screenshot(&client, "zh").await;

    client.close().await.expect("closed");
    drop(driver);
}

/// In vision mode the live view shows the frame the reader read (raw `screencap`, encoded
/// as PNG when asked for), through the stream a page subscribes to; a wrong cookie is
/// refused like a wrong token.
#[tokio::test(flavor = "multi_thread")]
async fn vision_frames_are_streamed_and_served_as_png() {
    let adb = AdbServer::start();
    let phone = phone(&adb, SimConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let tapwire = tapwire_run_env(
        &adb,
        &phone.serial,
        &dir.path().join("t.db"),
        &["--mode", "vision"],
        &[("TAPWIRE_API_TOKENS", TOKEN)],
    );
    let base = format!("http://{}/api/v1", tapwire.listen_addr());
    let client = reqwest::Client::new();
    let live = format!("{base}/phones/{}/live", phone.serial);
    let refused = client
        .get(&live)
        .header("Cookie", "tapwire_session=0123")
        .send()
        .await
        .expect("answered");
    assert_eq!(refused.status(), 401);

    let mut stream = client
        .get(&live)
        .header(
            "Cookie",
            format!(
                "tapwire_session={}",
                tapwire::server::api::cookie_value(TOKEN.as_bytes())
            ),
        )
        .send()
        .await
        .expect("answered");
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut text = String::new();
    let screen = loop {
        let chunk = tokio::time::timeout_at(deadline.into(), stream.chunk())
            .await
            .unwrap_or_else(|_| panic!("no screen with a screenshot: {text}\n{}", tapwire.log()))
            .expect("stream")
            .expect("open");
        text.push_str(&String::from_utf8_lossy(&chunk));
        let found = text
            .split("\n\n")
            .filter(|event| event.starts_with("event: screen"))
            .filter_map(|event| event.split("data: ").nth(1))
            .filter_map(|data| serde_json::from_str::<serde_json::Value>(data).ok())
            .find(|screen| screen["screenshot"].is_string());
        if let Some(screen) = found {
            break screen;
        }
    };
    assert!(
        screen["reader"]
            .as_str()
            .expect("reader")
            .starts_with("vision"),
        "{screen}"
    );
    let url = screen["screenshot"].as_str().expect("url");
    let png = client
        .get(format!("http://{}{url}", tapwire.listen_addr()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answered");
    assert_eq!(png.headers()["content-type"], "image/png");
    let png = png.bytes().await.expect("bytes");
    let size = tapwire_device_agent::reader::Frame::Png(png.to_vec())
        .size()
        .expect("a PNG");
    assert_eq!(
        serde_json::json!([size.0, size.1]),
        screen["size"],
        "{screen}"
    );
    drop(stream);
}
