//! What the end-to-end tests share: a private adb server, a virtual phone connected to it,
//! and the real `tapwire` binary run against them. Everything started here is stopped by
//! its pid (or adb's own kill-server for the adb daemon) when the guard drops.

#![allow(dead_code)] // each test file uses a different part

pub mod platforms;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tapwire_phone_sim::wechat::model::SentRecord;
use tapwire_phone_sim::{SimConfig, SimControl, SimHandle};

pub fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// An adb server of our own on a private port, killed on drop.
pub struct AdbServer {
    pub port: u16,
}

impl AdbServer {
    pub fn start() -> AdbServer {
        let port = free_port();
        let status = Command::new("adb")
            .args(["-P", &port.to_string(), "start-server"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("`adb` must be installed: run scripts/setup");
        assert!(status.success(), "adb start-server failed on port {port}");
        AdbServer { port }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn adb(&self, args: &[&str]) -> String {
        let out = Command::new("adb")
            .arg("-P")
            .arg(self.port.to_string())
            .args(args)
            .output()
            .expect("adb runs");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// `adb connect`, then waits until the server lists the device in `state`.
    pub fn connect(&self, device: SocketAddr) {
        let serial = device.to_string();
        let out = self.adb(&["connect", &serial]);
        assert!(out.contains("connected"), "adb connect {serial}: {out}");
        self.wait_for_state(&serial, "device");
    }

    pub fn wait_for_state(&self, serial: &str, state: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let devices = self.adb(&["devices"]);
            if devices
                .lines()
                .any(|l| l.starts_with(serial) && l.split_whitespace().nth(1) == Some(state))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{serial} never became {state}: {devices}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for AdbServer {
    fn drop(&mut self) {
        let _ = Command::new("adb")
            .args(["-P", &self.port.to_string(), "kill-server"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A virtual phone on free loopback ports, connected to `adb`.
pub struct Phone {
    pub sim: SimHandle,
    pub control: SimControl,
    pub serial: String,
}

/// Tests run on a multi-thread runtime, so the blocking `adb connect` here leaves the
/// phone's own tasks other workers to run on.
pub async fn phone(adb: &AdbServer, config: SimConfig) -> Phone {
    let sim = tapwire_phone_sim::start(config)
        .await
        .expect("phone-sim starts");
    let serial = sim.adb_addr().to_string();
    adb.connect(sim.adb_addr());
    let control = sim.control();
    Phone {
        sim,
        control,
        serial,
    }
}

/// The real `tapwire run` against a phone, killed on drop.
pub struct Tapwire {
    pub child: Child,
    pub stderr_path: PathBuf,
}

pub fn tapwire_run(adb: &AdbServer, serial: &str, db: &Path, extra: &[&str]) -> Tapwire {
    tapwire_run_env(adb, serial, db, extra, &[])
}

/// [`tapwire_run`] with `env` added to its environment (the API's tokens).
pub fn tapwire_run_env(
    adb: &AdbServer,
    serial: &str,
    db: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Tapwire {
    let db_arg = db.to_string_lossy().to_string();
    let adb_addr = adb.addr();
    let mut args = vec![
        "run",
        "--listen",
        "127.0.0.1:0",
        "--device",
        serial,
        "--adb-server",
        &adb_addr,
        "--db",
        &db_arg,
        "--poll-ms",
        "50",
        // These tests are about what is answered, not when; pacing has its own test.
        "--no-pacing",
    ];
    args.extend_from_slice(extra);
    tapwire_command_env(&args, db, env)
}

/// Serves `router` (a platform's stand-in) on a free loopback port: its base URL, and the
/// task to abort when the test is done.
pub async fn serve(router: axum::Router) -> (String, tokio::task::JoinHandle<std::io::Result<()>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    (base, server)
}

/// `tapwire run` on the config file `config`, listening on a free loopback port, with `env`
/// added to its environment (the secrets the config names as `${VAR}`); killed on drop.
pub fn tapwire_config(config: &Path, env: &[(&str, &str)]) -> Tapwire {
    let config_arg = config.to_string_lossy();
    tapwire_command_env(
        &["run", "--listen", "127.0.0.1:0", "--config", &config_arg],
        config,
        env,
    )
}

/// The real `tapwire` with `args`, its log appended to a file beside `near`; killed on drop.
pub fn tapwire_command(args: &[&str], near: &Path) -> Tapwire {
    tapwire_command_env(args, near, &[])
}

/// [`tapwire_command`] with `env` added to its environment (secrets a config names as
/// `${VAR}`).
pub fn tapwire_command_env(args: &[&str], near: &Path, env: &[(&str, &str)]) -> Tapwire {
    let stderr_path = near.with_extension(format!("{}.log", std::process::id()));
    let stderr = std::fs::File::options()
        .create(true)
        .append(true)
        .open(&stderr_path)
        .expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_tapwire"))
        .args(args)
        .env("TAPWIRE_UI_MAPS", repo_root().join("ui-maps"))
        // TAPWIRE_TEST_LOG=info,tapwire_device_agent=debug shows the reader's steps in the
        // log a failing test prints.
        .env(
            "RUST_LOG",
            std::env::var("TAPWIRE_TEST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("tapwire starts");
    Tapwire { child, stderr_path }
}

impl Tapwire {
    /// The address `tapwire run --listen 127.0.0.1:0` bound, read from its log.
    pub fn listen_addr(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = self.log();
            if let Some(addr) = log
                .lines()
                .filter_map(|l| l.split("HTTP server listening addr=").nth(1))
                .filter_map(|rest| rest.split_whitespace().next())
                .next()
            {
                return addr.to_string();
            }
            assert!(Instant::now() < deadline, "never listened; log: {log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// SIGKILL: no chance to clean up, as in a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Tapwire {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `tapwire` to completion with a timeout and returns (exit success, stderr).
pub fn tapwire_once(args: &[&str], timeout: Duration) -> (bool, String) {
    tapwire_once_with_env(args, &[], timeout)
}

/// `tapwire_once` with these environment variables added.
pub fn tapwire_once_with_env(
    args: &[&str],
    env: &[(&str, &str)],
    timeout: Duration,
) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tapwire"))
        .args(args)
        .env("TAPWIRE_UI_MAPS", repo_root().join("ui-maps"))
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tapwire starts");
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let out = child.wait_with_output().expect("output");
            return (
                status.success(),
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "tapwire {args:?} did not exit within {timeout:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the phone's sent log has `count` entries (or the timeout passes) and returns it.
pub async fn wait_for_sent(
    control: &SimControl,
    count: usize,
    timeout: Duration,
) -> Vec<SentRecord> {
    let deadline = Instant::now() + timeout;
    loop {
        let sent = control.sent();
        if sent.len() >= count || Instant::now() > deadline {
            return sent;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The texts sent to one chat, in order.
pub fn sent_to(sent: &[SentRecord], chat: &str) -> Vec<String> {
    sent.iter()
        .filter(|s| s.chat == chat)
        .map(|s| s.text.clone())
        .collect()
}

/// Each chat got exactly the answers `expected` lists for it, in order; `context` is shown
/// on failure (the controller's log, the screen).
pub fn assert_answered_in_order(
    sent: &[SentRecord],
    expected: &[(&str, String)],
    context: impl Fn() -> String,
) {
    let mut chats: Vec<&str> = expected.iter().map(|(c, _)| *c).collect();
    chats.sort_unstable();
    chats.dedup();
    for chat in chats {
        let want: Vec<String> = expected
            .iter()
            .filter(|(c, _)| *c == chat)
            .map(|(_, t)| t.clone())
            .collect();
        assert_eq!(sent_to(sent, chat), want, "chat {chat}; {}", context());
    }
}

/// The generator of a test's random choices (kill points, pauses), seeded from
/// `TAPWIRE_TEST_SEED` when it is set; the seed is printed, so a failing run's choices can
/// be made again. The seed comes back too, for the test's own messages.
pub fn seeded_rng() -> (u64, fastrand::Rng) {
    let seed = std::env::var("TAPWIRE_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("seed {seed} (TAPWIRE_TEST_SEED={seed} repeats this run's choices)");
    (seed, fastrand::Rng::with_seed(seed))
}
