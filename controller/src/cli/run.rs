//! `tapwire run`: connect to the phones and answer them until Ctrl-C.

use std::net::{SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tapwire_device_agent::UiMaps;
use tapwire_device_agent::agent::{AgentConfig, AgentError, AgentStats};
use tapwire_device_agent::transport::{self, AdbServerTransport, DirectTcpTransport, Transport};

use tapwire::app::App;
use tapwire::config::{Config, PhoneConfig};
use tapwire::runtime::Activity;
use tapwire::store::Store;

/// What answers messages when no config routes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HandlerKind {
    /// Answers commands and `help`, and anything else with exactly its text.
    Echo,
    /// Answers commands and `help` only.
    Help,
}

impl HandlerKind {
    pub fn name(self) -> &'static str {
        match self {
            HandlerKind::Echo => "echo",
            HandlerKind::Help => "help",
        }
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A phone's serial as `adb devices` shows it; repeat for several phones. Without it
    /// (and without --config) the only attached phone is used.
    #[arg(long = "device")]
    pub devices: Vec<String>,
    /// What answers messages (when no --config is given).
    #[arg(long, value_enum, default_value = "echo")]
    pub handler: HandlerKind,
    /// The adb server, HOST:PORT (default: ANDROID_ADB_SERVER_PORT or 5037 on loopback).
    #[arg(long)]
    pub adb_server: Option<SocketAddrV4>,
    /// Reach the phones' adbd directly over TCP (serial = HOST:PORT), without an adb server.
    #[arg(long)]
    pub direct: bool,
    /// A tapwire.toml with phones and routes.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The SQLite database (default: tapwire.db, or the config's storage.path).
    #[arg(long)]
    pub db: Option<PathBuf>,
    #[arg(long)]
    pub ui_maps: Option<PathBuf>,
    /// Pause between idle checks, in milliseconds.
    #[arg(long, default_value_t = 250)]
    pub poll_ms: u64,
    /// Print each message read and each reply sent as a JSON line on stdout.
    #[arg(long)]
    pub activity_json: bool,
}

/// One phone to drive.
#[derive(Debug, Clone)]
pub struct PhoneSpec {
    pub serial: String,
    pub adb_server: SocketAddrV4,
    pub direct: bool,
    pub poll: Duration,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let db = args
        .db
        .clone()
        .unwrap_or_else(|| config.storage.path.clone());
    let default_server = transport::adb_server_addr(args.adb_server);
    let poll = Duration::from_millis(args.poll_ms);
    let mut phones: Vec<PhoneSpec> = config
        .phones
        .iter()
        .map(|p: &PhoneConfig| PhoneSpec {
            serial: p.serial.clone(),
            adb_server: p.adb_server.unwrap_or(default_server),
            direct: p.direct,
            poll: p.poll_ms.map_or(poll, Duration::from_millis),
        })
        .collect();
    phones.extend(args.devices.iter().map(|serial| PhoneSpec {
        serial: serial.clone(),
        adb_server: default_server,
        direct: args.direct,
        poll,
    }));
    if phones.is_empty() {
        phones.push(PhoneSpec {
            serial: only_device(default_server).await?,
            adb_server: default_server,
            direct: false,
            poll,
        });
    }
    let maps = UiMaps::load_dir(&super::ui_maps_dir(args.ui_maps.clone()))?;
    let shutdown = async {
        shutdown_signal().await;
        tracing::info!("stopping");
    };
    let printer = args
        .activity_json
        .then_some(print_activity_json as fn(&Activity));
    serve(&db, &config, args.handler, phones, &maps, shutdown, printer).await
}

async fn only_device(server: SocketAddrV4) -> anyhow::Result<String> {
    let devices = tokio::task::spawn_blocking(move || transport::list_devices(server)).await??;
    match devices.as_slice() {
        [one] => Ok(one.serial.clone()),
        [] => anyhow::bail!(
            "no phone is attached to the adb server at {server}: plug one in with USB debugging on (or `adb connect HOST:PORT`), then check `tapwire devices`"
        ),
        many => anyhow::bail!(
            "several phones are attached ({}): pick one or more with --device",
            many.iter()
                .map(|d| d.serial.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Ctrl-C, or SIGTERM on Unix.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[allow(clippy::print_stdout)] // CLI output: the activity stream the user asked for.
fn print_activity_json(activity: &Activity) {
    if let Ok(line) = serde_json::to_string(activity) {
        println!("{line}");
    }
}

fn connect(spec: &PhoneSpec) -> Result<Box<dyn Transport>, transport::TransportError> {
    if spec.direct {
        let addr: SocketAddr = spec
            .serial
            .parse()
            .map_err(|_| transport::TransportError::Adb {
                target: spec.serial.clone(),
                message: "with --direct the serial must be HOST:PORT".into(),
            })?;
        Ok(Box::new(DirectTcpTransport::connect(addr)?))
    } else {
        Ok(Box::new(AdbServerTransport::connect(
            spec.adb_server,
            &spec.serial,
        )?))
    }
}

/// Runs phones against a store and pipeline until `shutdown` resolves or every phone has
/// stopped. Exits non-zero when a phone stopped with an error.
pub async fn serve(
    db: &std::path::Path,
    config: &Config,
    handler: HandlerKind,
    phones: Vec<PhoneSpec>,
    maps: &UiMaps,
    shutdown: impl std::future::Future<Output = ()>,
    on_activity: Option<fn(&Activity)>,
) -> anyhow::Result<ExitCode> {
    let store = Store::open(db)
        .await
        .with_context(|| format!("cannot open the database {}", db.display()))?;
    let app = App::start(config, handler.name(), store).await?;
    let runtime = app.runtime.clone();
    if let Some(print) = on_activity {
        let mut rx = runtime.subscribe();
        tokio::spawn(async move {
            while let Ok(activity) = rx.recv().await {
                print(&activity);
            }
        });
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut agents = Vec::new();
    for spec in phones {
        let outbound = runtime.register_phone(&spec.serial);
        let connect_spec = spec.clone();
        let transport = tokio::task::spawn_blocking(move || connect(&connect_spec))
            .await?
            .with_context(|| format!("phone {}", spec.serial))?;
        let mut config = AgentConfig::new(spec.serial.clone());
        config.poll_interval = spec.poll;
        let runtime_for_phone = runtime.clone();
        let maps = maps.clone();
        let stop_for_phone = stop.clone();
        let handle = tokio::task::spawn_blocking(move || {
            runtime_for_phone.start_phone(config, transport, &maps, stop_for_phone, outbound)
        });
        let handle = handle
            .await?
            .with_context(|| format!("phone {}", spec.serial))?;
        agents.push((spec.serial, handle));
    }
    runtime.recover().await?;

    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                if agents.iter().any(|(_, h)| h.is_finished()) {
                    break;
                }
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    runtime.close_phones();
    app.shutdown().await;
    tracing::info!(
        handled = runtime.handled_events(),
        unmatched = runtime.unmatched_events(),
        "events handled, and those no route matched"
    );
    let mut failed = false;
    for (serial, handle) in agents {
        let result: Result<AgentStats, AgentError> = tokio::task::spawn_blocking(move || {
            handle
                .join()
                .unwrap_or_else(|_| Err(AgentError::Sink("the phone's thread panicked".into())))
        })
        .await?;
        match result {
            Ok(stats) => tracing::info!(phone = %serial, ?stats, "phone stopped"),
            Err(error) => {
                failed = true;
                tracing::error!(phone = %serial, %error, "phone stopped");
                eprintln!("error: phone {serial}: {error}");
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
