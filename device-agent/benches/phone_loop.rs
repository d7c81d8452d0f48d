//! The phone loop, measured against phone-sim: what an idle poll costs, how long a message
//! waits for its answer, and how many answers one phone gives per minute, for Tapwire's
//! change signal beside the plain "full dump every poll" approach (Tapwire's own actor
//! dumping on every poll, and `scripts/bench.d/poller.py`, the Python loop users run).
//!
//! `cargo bench -p tapwire-device-agent --bench phone_loop` (or `scripts/bench`). Prints a
//! table; docs/benchmarks.md keeps the figures.

// A benchmark report is printed output.
#![allow(clippy::print_stdout)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tapwire_device_agent::UiMaps;
use tapwire_device_agent::agent::{
    self, AgentConfig, Batch, DeviceStatus, IdleStrategy, Outbound, PhoneAgent, SendOutcome, Sink,
};
use tapwire_device_agent::ocr::{self, EngineKind};
use tapwire_device_agent::pacing::PacingConfig;
use tapwire_device_agent::reader::vision::{Capture, VisionReader};
use tapwire_device_agent::tail::Watermark;
use tapwire_device_agent::transport::AdbServerTransport;
use tapwire_phone_sim::{IncomingMessage, Latency, SimConfig, SimControl};

/// Answers every message with its text at once, as `--handler echo` does, with the
/// watermarks in memory.
struct EchoSink {
    watermarks: Arc<Mutex<HashMap<String, Watermark>>>,
    outbound: Sender<Outbound>,
}

impl Sink for EchoSink {
    fn watermark(&mut self, _: &str, conversation: &str) -> Result<Option<Watermark>, String> {
        Ok(self
            .watermarks
            .lock()
            .map_err(|e| e.to_string())?
            .get(conversation)
            .cloned())
    }
    fn record(&mut self, batch: Batch) -> Result<Vec<String>, String> {
        self.watermarks
            .lock()
            .map_err(|e| e.to_string())?
            .insert(batch.conversation.clone(), batch.watermark);
        for m in batch.messages.iter().filter(|m| !m.is_self) {
            let _ = self.outbound.send(Outbound {
                action_id: m.key.clone(),
                conversation: m.conversation.clone(),
                text: m.text.clone().unwrap_or_default(),
            });
        }
        Ok(Vec::new())
    }
    fn sent(&mut self, _: &str, _: SendOutcome) -> Result<(), String> {
        Ok(())
    }
    fn status(&mut self, _: &str, _: DeviceStatus) {}
}

/// A private adb server, killed on drop: the agent reaches the phone the default way.
struct AdbServer {
    port: u16,
}

impl AdbServer {
    fn start() -> AdbServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let server = AdbServer { port };
        server.adb(&["start-server"]);
        server
    }
    fn adb(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("adb")
            .arg("-P")
            .arg(self.port.to_string())
            .args(args)
            .output()
            .expect("adb is installed (scripts/setup)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    fn connect(&self, device: std::net::SocketAddr) {
        self.adb(&["connect", &device.to_string()]);
        for _ in 0..100 {
            if self
                .adb(&["devices"])
                .contains(&format!("{device}\tdevice"))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{device} never came online");
    }
}

impl Drop for AdbServer {
    fn drop(&mut self) {
        self.adb(&["kill-server"]);
    }
}

struct Rig {
    adb: AdbServer,
    sim: tapwire_phone_sim::SimHandle,
    control: SimControl,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Result<agent::AgentStats, agent::AgentError>>>,
    /// The Python poller users run today, when it watches the phone instead of Tapwire.
    poller: Option<std::process::Child>,
}

/// How the actor reads the phone's screen.
#[derive(Clone, Copy)]
enum Reading {
    /// `uiautomator dump`, on a WeChat build that shows its tree.
    Tree,
    /// Screenshots read by `engine`, on a 1080×2400 phone whose WeChat (8.0.78, no trusted
    /// accessibility service) hides its tree, as `mode = "vision"` runs.
    Vision(EngineKind),
}

impl Rig {
    async fn start(
        idle: IdleStrategy,
        latency: Latency,
        pacing: PacingConfig,
        hot_window: Duration,
    ) -> Rig {
        Rig::start_reading(Reading::Tree, idle, latency, pacing, hot_window).await
    }

    async fn start_reading(
        reading: Reading,
        idle: IdleStrategy,
        latency: Latency,
        pacing: PacingConfig,
        hot_window: Duration,
    ) -> Rig {
        let sim_config = match reading {
            Reading::Tree => SimConfig::default(),
            Reading::Vision(_) => SimConfig {
                wechat_version: "8.0.78".into(),
                accessibility_suite: false,
                screen: tapwire_phone_sim::Screen::FHD,
                ..SimConfig::default()
            },
        };
        let (sim, control, adb) = phone(sim_config, latency).await;
        let maps = UiMaps::load_dir(&std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../ui-maps"
        )))
        .expect("maps");
        let addr = sim.adb_addr();
        let server = std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, adb.port);
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = EchoSink {
            watermarks: Arc::default(),
            outbound: tx,
        };
        let mut config = AgentConfig::new(addr.to_string());
        config.poll_interval = Duration::from_millis(200);
        config.idle = idle;
        config.pacing = pacing;
        config.hot_window = hot_window;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = tokio::task::spawn_blocking(move || {
            let transport =
                AdbServerTransport::connect(server, &addr.to_string()).expect("adb transport");
            let agent = match reading {
                Reading::Tree => {
                    PhoneAgent::new(config, Box::new(transport), &maps, Box::new(sink), rx)
                }
                Reading::Vision(kind) => {
                    // Loaded before the first poll, as the controller does at start.
                    let engine = ocr::engine(Some(kind)).expect("OCR engine (scripts/setup)");
                    let reader = VisionReader::new(addr.to_string(), engine, Capture::Raw);
                    PhoneAgent::with_reader(
                        config,
                        Box::new(transport),
                        Box::new(reader),
                        Box::new(sink),
                        rx,
                    )
                }
            }
            .expect("agent");
            agent::spawn(agent, stop2).expect("thread")
        })
        .await
        .expect("spawn");
        Rig {
            adb,
            sim,
            control,
            stop,
            thread: Some(thread),
            poller: None,
        }
    }

    /// The phone watched by `scripts/bench.d/poller.py` (a dump every poll, parsed by
    /// ElementTree, one `adb` process per command), polling as often as the agent does.
    async fn start_python(latency: Latency) -> Rig {
        let (sim, control, adb) = phone(SimConfig::default(), latency).await;
        let addr = sim.adb_addr();
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let poller = std::process::Command::new("python3")
            .arg(format!("{root}/scripts/bench.d/poller.py"))
            .args(["--adb-port", &adb.port.to_string()])
            .args(["--serial", &addr.to_string()])
            .args(["--map", &format!("{root}/ui-maps/wechat-8.0.toml")])
            .args(["--poll", "0.2"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("python3 (scripts/setup)");
        Rig {
            adb,
            sim,
            control,
            stop: Arc::default(),
            thread: None,
            poller: Some(poller),
        }
    }

    async fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        if let Some(mut poller) = self.poller.take() {
            let _ = poller.kill();
            let _ = poller.wait();
        }
        self.sim.shutdown().await;
        drop(self.adb);
    }

    async fn wait_sent(&self, count: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.control.sent().len() >= count {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        false
    }
}

/// A phone-sim at `latency`, online on a private adb server of its own.
async fn phone(
    config: SimConfig,
    latency: Latency,
) -> (tapwire_phone_sim::SimHandle, SimControl, AdbServer) {
    let sim = tapwire_phone_sim::start(SimConfig {
        control_addr: None,
        ..config
    })
    .await
    .expect("sim");
    let control = sim.control();
    control.set_latency(latency);
    let adb = AdbServer::start();
    adb.connect(sim.adb_addr());
    (sim, control, adb)
}

/// How long to wait after an answer before the next message, so that each one is
/// measured from a watcher gone idle, not from the tail of its previous visit.
fn settle(latency: Latency, pacing: &PacingConfig) -> Duration {
    Duration::from_millis(latency.dump_ms * 5 + 500)
        + Duration::from_millis(if pacing.enabled { pacing.min_gap_ms } else { 0 })
}

fn message(chat: &str, text: String) -> IncomingMessage {
    IncomingMessage {
        chat: chat.into(),
        group: false,
        sender: None,
        text,
        system: false,
    }
}

const REAL_PHONE: Latency = Latency {
    dump_ms: 500,
    screencap_ms: 300,
    tap_ms: 50,
    input_ms: 50,
};
const ZERO: Latency = Latency {
    dump_ms: 0,
    screencap_ms: 0,
    tap_ms: 0,
    input_ms: 0,
};
const CHATS: [&str; 5] = ["李雷", "韩梅梅", "张伟", "王芳", "陈静"];

async fn idle_cost(idle: IdleStrategy) {
    let rig = Rig::start(idle, ZERO, PacingConfig::off(), HOT).await;
    tokio::time::sleep(Duration::from_secs(2)).await; // settle: first scan, baseline
    let before = rig.control.stats();
    let window = Duration::from_secs(5);
    tokio::time::sleep(window).await;
    let after = rig.control.stats();
    let services: u64 =
        after.services.values().sum::<u64>() - before.services.values().sum::<u64>();
    let bytes = after.bytes_to_host - before.bytes_to_host;
    let dumps = after.commands.get("uiautomator").copied().unwrap_or(0)
        - before.commands.get("uiautomator").copied().unwrap_or(0);
    // One poll per 200 ms pause plus the call itself: count polls by the services.
    let polls = match idle {
        IdleStrategy::ChangeSignal => services.max(1),
        IdleStrategy::FullDump => dumps.max(1),
    };
    println!(
        "idle {idle:?}: {:.2} ADB calls, {:.0} bytes, {:.2} dumps per poll ({polls} polls in {window:?})",
        services as f64 / polls as f64,
        bytes as f64 / polls as f64,
        dumps as f64 / polls as f64,
    );
    rig.stop().await;
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// The agent's default hot window (screen read on every poll for a while after news).
const HOT: Duration = Duration::from_secs(20);

/// `hot_window` zero measures the first message after a quiet spell (longer than the
/// window): the change signal alone.
async fn latency(
    reading: Reading,
    idle: IdleStrategy,
    latency: Latency,
    pacing: PacingConfig,
    hot_window: Duration,
    label: &str,
    count: usize,
) {
    let between = settle(latency, &pacing);
    let rig = Rig::start_reading(reading, idle, latency, pacing, hot_window).await;
    let strategy = format!(
        "{idle:?}{}",
        if idle == IdleStrategy::FullDump {
            ""
        } else if hot_window.is_zero() {
            " (first message after a quiet spell)"
        } else {
            " (within a conversation: hot window)"
        }
    );
    measure_latency(rig, between, &format!("{label} {strategy}"), count).await;
}

/// Messages offered one at a time, each after the watcher has gone idle again; prints
/// arrival → reply sent.
async fn measure_latency(rig: Rig, settle: Duration, label: &str, count: usize) {
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Screen reads: dumps in tree mode, screenshots in vision mode.
    let reads = |stats: &tapwire_phone_sim::device::StatsSnapshot| {
        ["uiautomator", "screencap"]
            .iter()
            .map(|c| stats.commands.get(*c).copied().unwrap_or(0))
            .sum::<u64>()
    };
    let reads_before = reads(&rig.control.stats());
    let mut samples = Vec::new();
    for i in 0..count {
        let sent = rig.control.sent().len();
        let start = Instant::now();
        rig.control
            .incoming(&message(CHATS[i % CHATS.len()], format!("延迟测试 {i}")));
        if !rig.wait_sent(sent + 1, Duration::from_secs(30)).await {
            println!("latency {label}: message {i} not answered within 30 s");
            break;
        }
        samples.push(start.elapsed());
        // Let the actor leave the chat and go idle: each message then measures the way
        // from an idle phone to the answer, not the tail of the previous visit.
        tokio::time::sleep(settle).await;
    }
    samples.sort();
    let screen_reads = reads(&rig.control.stats()) - reads_before;
    if !samples.is_empty() {
        println!(
            "latency {label}: arrival → reply sent p50 {:?}, p99 {:?}, max {:?} ({} messages, {:.1} screen reads per message)",
            percentile(&samples, 0.5),
            percentile(&samples, 0.99),
            samples[samples.len() - 1],
            samples.len(),
            screen_reads as f64 / samples.len() as f64
        );
    }
    rig.stop().await;
}

/// `per_second` messages offered, round robin over 5 chats, for a minute; offered above
/// what the phone can answer, the replies in that minute are its capacity.
async fn throughput(idle: IdleStrategy, pacing: PacingConfig, per_second: u32, label: &str) {
    let rig = Rig::start(idle, REAL_PHONE, pacing, HOT).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let window = Duration::from_secs(60);
    let start = Instant::now();
    let mut injected = 0;
    // 5 busy chats: one message every second, round robin (60 per minute offered).
    while start.elapsed() < window {
        rig.control.incoming(&message(
            CHATS[injected % CHATS.len()],
            format!("吞吐 {injected}"),
        ));
        injected += 1;
        tokio::time::sleep(Duration::from_secs(1) / per_second).await;
    }
    let in_window = rig.control.sent().len();
    // Drain: until everything is answered or nothing moved for 20 s.
    let mut last = in_window;
    let mut still = Instant::now();
    while rig.control.sent().len() < injected && still.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = rig.control.sent().len();
        if now != last {
            last = now;
            still = Instant::now();
        }
    }
    let sent = rig.control.sent();
    let answered: std::collections::HashSet<_> = sent.iter().map(|s| s.text.clone()).collect();
    let lost: Vec<String> = (0..injected)
        .map(|i| format!("吞吐 {i}"))
        .filter(|t| !answered.contains(t))
        .collect();
    if !lost.is_empty() {
        eprintln!("lost: {lost:?}");
    }
    println!(
        "throughput {idle:?} {label}(real-phone latencies, 5 chats, {injected} messages in {window:?}): {in_window} replies/min during the burst, {} answered after draining, {} lost, {} duplicates",
        answered.len(),
        injected - answered.len().min(injected),
        sent.len() - answered.len()
    );
    rig.stop().await;
}

fn main() {
    // RUST_LOG=tapwire_device_agent=debug shows what the actor does.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    // PHONE_LOOP=throughput runs only that part (also: idle, latency, latency-real, vision,
    // saturated).
    let only = std::env::var("PHONE_LOOP").unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let wants = |part: &str| only.is_empty() || only == part;
    runtime.block_on(async {
        if wants("idle") {
            for idle in [IdleStrategy::ChangeSignal, IdleStrategy::FullDump] {
                idle_cost(idle).await;
            }
        }
        if only == "latency-real" {
            for hot in [HOT, Duration::ZERO] {
                latency(
                    Reading::Tree,
                    IdleStrategy::ChangeSignal,
                    REAL_PHONE,
                    PacingConfig::off(),
                    hot,
                    "real-phone latencies",
                    3,
                )
                .await;
            }
        }
        if wants("latency") {
            let off = PacingConfig::off;
            latency(
                Reading::Tree,
                IdleStrategy::ChangeSignal,
                ZERO,
                off(),
                HOT,
                "zero-latency phone",
                30,
            )
            .await;
            for (idle, hot) in [
                (IdleStrategy::ChangeSignal, HOT),
                (IdleStrategy::ChangeSignal, Duration::ZERO),
                (IdleStrategy::FullDump, HOT),
            ] {
                latency(
                    Reading::Tree,
                    idle,
                    REAL_PHONE,
                    off(),
                    hot,
                    "real-phone latencies",
                    12,
                )
                .await;
            }
            // What users run today: a Python script dumping on every poll.
            measure_latency(
                Rig::start_python(REAL_PHONE).await,
                settle(REAL_PHONE, &PacingConfig::off()),
                "real-phone latencies python-poller",
                12,
            )
            .await;
            // What a user runs: a person's pace on top of the phone's.
            latency(
                Reading::Tree,
                IdleStrategy::ChangeSignal,
                REAL_PHONE,
                PacingConfig::default(),
                HOT,
                "real-phone latencies, pacing defaults",
                8,
            )
            .await;
        }
        if wants("vision") {
            for kind in EngineKind::ALL {
                for hot in [HOT, Duration::ZERO] {
                    latency(
                        Reading::Vision(kind),
                        IdleStrategy::ChangeSignal,
                        REAL_PHONE,
                        PacingConfig::off(),
                        hot,
                        &format!("vision ({}), real-phone latencies", kind.name()),
                        10,
                    )
                    .await;
                }
            }
        }
        if only == "saturated" {
            throughput(
                IdleStrategy::ChangeSignal,
                PacingConfig::off(),
                2,
                "saturated ",
            )
            .await;
        }
        if wants("throughput") {
            for idle in [IdleStrategy::ChangeSignal, IdleStrategy::FullDump] {
                throughput(idle, PacingConfig::off(), 1, "").await;
                throughput(idle, PacingConfig::off(), 2, "saturated ").await;
            }
            throughput(
                IdleStrategy::ChangeSignal,
                PacingConfig::default(),
                1,
                "with pacing defaults ",
            )
            .await;
        }
    });
}
