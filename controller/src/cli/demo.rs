//! `tapwire demo`: a virtual phone started in this process, a scripted conversation played
//! into it, and Tapwire answering it live — the whole product with no phone attached.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tapwire_device_agent::UiMaps;
use tapwire_phone_sim::{IncomingMessage, SimConfig, SimControl};

use super::run::{HandlerKind, serve, shutdown_signal, sqlite_at};
use tapwire::activity::Activity;
use tapwire::adapter::phone::PhoneConfig;
use tapwire::config::Config;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Stop once the scripted conversation has been answered (instead of waiting for Ctrl-C).
    #[arg(long)]
    pub once: bool,
    /// Talk to the virtual phone's adbd directly instead of through an adb server.
    #[arg(long)]
    pub direct: bool,
    #[arg(long, value_enum, default_value = "echo")]
    pub handler: HandlerKind,
    #[arg(long)]
    pub ui_maps: Option<std::path::PathBuf>,
}

/// (chat, group, sender, text, pause before it in ms)
const SCRIPT: &[(&str, bool, Option<&str>, &str, u64)] = &[
    ("李雷", false, None, "你好，在吗？", 500),
    ("项目群", true, Some("王芳"), "明天的评审会改到几点？", 400),
    (
        "项目群",
        true,
        Some("陈静"),
        "@王芳\u{2005}十点，三楼会议室",
        300,
    ),
    ("李雷", false, None, "周末一起去爬山吧 ⛰️", 700),
    ("韩梅梅", false, None, "help", 600),
    // Answered by the roster plugin when plugins/ is at hand (scripts/demo), echoed otherwise.
    ("张伟", false, None, "roster who", 500),
    ("李雷", false, None, "你好，在吗？", 500),
];

#[allow(clippy::print_stdout)] // CLI output: the demo's live transcript.
pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let maps = UiMaps::load_dir(&super::ui_maps_dir(args.ui_maps.clone()))?;
        let sim = tapwire_phone_sim::start(SimConfig::default())
            .await
            .context("cannot start the virtual phone")?;
        let phone_addr = sim.adb_addr();
        let control = sim.control();
        let (adb_server, direct) = if args.direct || which_adb().is_none() {
            (None, true)
        } else {
            (Some(PrivateAdb::start(phone_addr)?), false)
        };
        println!("Tapwire demo: a virtual phone with WeChat 8.0.50 at {phone_addr}");
        match &adb_server {
            Some(adb) => println!("  reached through a private adb server at 127.0.0.1:{}", adb.port),
            None => println!("  reached directly over TCP (no adb server)"),
        }
        if let Some(ctl) = sim.control_addr() {
            println!(
                "  talk to it yourself: curl -XPOST http://{ctl}/incoming -H 'content-type: application/json' -d '{{\"chat\":\"李雷\",\"text\":\"你好\"}}'"
            );
        }
        println!("  ← read on the phone    → answered by Tapwire ({:?} handler); Ctrl-C stops\n", args.handler);

        let db_dir = tempfile_dir()?;
        let db = db_dir.join("demo.db");
        let phone = PhoneConfig {
            adb_server: Some(SocketAddrV4::new(
                Ipv4Addr::LOCALHOST,
                adb_server.as_ref().map_or(5037, |a| a.port),
            )),
            direct,
            // The demo shows the controller's own speed; a real phone's replies wait as
            // a person's would (`pacing` in tapwire.toml).
            pacing: tapwire_device_agent::pacing::PacingConfig::off(),
            ..PhoneConfig::serial(phone_addr.to_string())
        };
        let expected = SCRIPT.len();
        let script = tokio::spawn(play_script(control.clone()));
        let once = args.once;
        let stop = async move {
            if once {
                wait_for_answers(&control, expected).await;
            } else {
                shutdown_signal().await;
            }
        };
        let mut config = Config::default();
        config.storage = sqlite_at(db);
        // The demo's server takes any free port: it must not collide with a real run.
        config.server.listen = std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let poll = Duration::from_millis(100);
        // A token for this run only, unless the environment gives one: the dashboard
        // is on for every demo, and nobody else on the machine can guess its token.
        let mut bytes = [0u8; 12];
        getrandom::fill(&mut bytes).context("no randomness for the dashboard's token")?;
        let token = hex::encode(bytes);
        let code = serve(&config, args.handler, vec![phone], poll, &maps, stop, Some(print_activity), Some(&token)).await;
        script.abort();
        drop(adb_server);
        sim.shutdown().await;
        let _ = std::fs::remove_dir_all(&db_dir);
        code
    })
}

async fn play_script(control: SimControl) {
    for (chat, group, sender, text, pause) in SCRIPT {
        tokio::time::sleep(Duration::from_millis(*pause)).await;
        control.incoming(&IncomingMessage {
            chat: (*chat).into(),
            group: *group,
            sender: sender.map(Into::into),
            text: (*text).into(),
            system: false,
        });
    }
}

async fn wait_for_answers(control: &SimControl, count: usize) {
    // Bounded: a demo that cannot answer should end, not hang.
    for _ in 0..600 {
        if control.sent().len() >= count {
            tokio::time::sleep(Duration::from_millis(300)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[allow(clippy::print_stdout)] // CLI output: the demo's live transcript.
fn print_activity(activity: &Activity) {
    match activity {
        Activity::Received {
            conversation,
            sender,
            text,
            is_self,
            ..
        } => {
            let who = if *is_self {
                "(owner)".to_string()
            } else {
                sender.clone().unwrap_or_default()
            };
            let text = text.as_deref().unwrap_or("(not readable)");
            println!("  ← [{conversation}] {who}: {}", one_line(text));
        }
        Activity::Replied {
            conversation, text, ..
        } => println!("  → [{conversation}] {}", one_line(text)),
        Activity::ReplyFailed {
            conversation,
            reason,
            ..
        } => println!("  ✗ [{conversation}] reply failed: {reason}"),
        Activity::Device { device, status } => {
            println!(
                "  · {device}: {}",
                serde_json::to_string(status).unwrap_or_default()
            )
        }
        Activity::Prepared { device, report } => {
            println!("  · {}", report.prepared.advice(device));
            for change in &report.changes {
                println!(
                    "    {} {}: {} → {}",
                    change.namespace,
                    change.key,
                    change.before.as_deref().unwrap_or("(unset)"),
                    change.after
                );
            }
        }
    }
}

fn one_line(text: &str) -> String {
    text.replace('\n', " ⏎ ")
}

fn which_adb() -> Option<()> {
    Command::new("adb")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()
        .filter(|s| s.success())
        .map(drop)
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("tapwire-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// An adb server on a free port for the demo alone, stopped when dropped.
struct PrivateAdb {
    port: u16,
}

impl PrivateAdb {
    fn start(phone: SocketAddr) -> anyhow::Result<PrivateAdb> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let adb = PrivateAdb { port };
        adb.adb(&["start-server"])?;
        let out = adb.adb(&["connect", &phone.to_string()])?;
        anyhow::ensure!(out.contains("connected"), "adb connect {phone}: {out}");
        // adb lists a new TCP device a moment after `connect` returns.
        for _ in 0..100 {
            let devices = adb.adb(&["devices"])?;
            if devices
                .lines()
                .any(|l| l.starts_with(&phone.to_string()) && l.ends_with("device"))
            {
                return Ok(adb);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        anyhow::bail!("the virtual phone did not come online in adb")
    }

    fn adb(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new("adb")
            .arg("-P")
            .arg(self.port.to_string())
            .args(args)
            .output()
            .context("cannot run adb")?;
        Ok(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl Drop for PrivateAdb {
    fn drop(&mut self) {
        let _ = self.adb(&["kill-server"]);
    }
}
