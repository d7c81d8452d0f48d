//! `tapwire run`: connect to the phones and answer them until Ctrl-C.

use std::net::{SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tapwire_device_agent::UiMaps;
use tapwire_device_agent::pacing::PacingConfig;
use tapwire_device_agent::transport;

use tapwire::activity::Activity;
use tapwire::adapter::Adapter;
use tapwire::adapter::phone::{PhoneAdapter, PhoneConfig, ReadMode};
use tapwire::app::App;
use tapwire::config::Config;
use tapwire::store::{self, StorageConfig, sqlite::SqliteConfig};

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
    /// The HTTP server's address (default: the config's server.listen, 127.0.0.1:8787);
    /// port 0 picks a free one.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Answer as fast as the phone allows, whatever the phones' `pacing` says.
    #[arg(long)]
    pub no_pacing: bool,
    /// Do not prepare the phones (their tree, animations), whatever their `prepare` says.
    #[arg(long)]
    pub no_prepare: bool,
    /// How every phone's screen is read, whatever its `mode` says: `auto` (the tree while
    /// WeChat shows it, screenshots while it hides it), `tree` or `vision`.
    #[arg(long, value_enum)]
    pub mode: Option<ReadMode>,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: RunArgs) -> anyhow::Result<ExitCode> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(db) = &args.db {
        config.storage = sqlite_at(db.clone());
    }
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    let default_server = transport::adb_server_addr(args.adb_server);
    let poll = Duration::from_millis(args.poll_ms);
    let mut phones: Vec<PhoneConfig> = config
        .phones
        .iter()
        .map(|p| PhoneConfig {
            adb_server: p.adb_server.or(Some(default_server)),
            ..p.clone()
        })
        .collect();
    phones.extend(args.devices.iter().map(|serial| PhoneConfig {
        adb_server: Some(default_server),
        direct: args.direct,
        ..PhoneConfig::serial(serial)
    }));
    // Without phones or platforms in the config, the one attached phone is meant; a
    // config of platforms alone runs without any phone.
    if phones.is_empty() && config.adapters.is_empty() {
        phones.push(PhoneConfig {
            adb_server: Some(default_server),
            ..PhoneConfig::serial(only_device(default_server).await?)
        });
    }
    for phone in &mut phones {
        if args.no_pacing {
            phone.pacing = PacingConfig::off();
        }
        if args.no_prepare {
            phone.prepare = false;
        }
        if let Some(mode) = args.mode {
            phone.mode = mode;
        }
    }
    let maps = UiMaps::load_dir(&super::ui_maps_dir(args.ui_maps.clone()))?;
    let shutdown = async {
        shutdown_signal().await;
        tracing::info!("stopping");
    };
    let printer = args
        .activity_json
        .then_some(print_activity_json as fn(&Activity));
    serve(
        &config,
        args.handler,
        phones,
        poll,
        &maps,
        shutdown,
        printer,
        None,
    )
    .await
}

/// `[storage]` moved to the SQLite file `path` (`--db`).
pub fn sqlite_at(path: PathBuf) -> StorageConfig {
    StorageConfig::Sqlite(SqliteConfig { path })
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

#[allow(clippy::print_stdout)] // CLI output: where the demo's dashboard is.
fn announce_dashboard(url: &str, on: bool, token: Option<&str>) {
    match (on, token) {
        (true, Some(token)) => println!("  dashboard: {url}  (token for this run: {token})\n"),
        (true, None) => println!("  dashboard: {url}  (sign in with a token of the environment)\n"),
        (false, _) => {}
    }
}

#[allow(clippy::print_stdout)] // CLI output: the activity stream the user asked for.
fn print_activity_json(activity: &Activity) {
    if let Ok(line) = serde_json::to_string(activity) {
        println!("{line}");
    }
}

/// Runs phones and the config's adapters until `shutdown` resolves or a phone has
/// stopped by itself. Exits non-zero when a phone stopped with an error. `demo_token`:
/// the token the API and dashboard take when the environment names none, and the
/// dashboard's address printed with it (`tapwire demo`).
#[allow(clippy::too_many_arguments)] // one per thing run and demo choose differently
pub async fn serve(
    config: &Config,
    handler: HandlerKind,
    phones: Vec<PhoneConfig>,
    poll: Duration,
    maps: &UiMaps,
    shutdown: impl std::future::Future<Output = ()>,
    on_activity: Option<fn(&Activity)>,
    demo_token: Option<&str>,
) -> anyhow::Result<ExitCode> {
    // Before anything runs: what is counted before the recorder is there is lost.
    let metrics = tapwire::server::metrics::install().map_err(anyhow::Error::msg)?;
    tapwire::server::metrics::spawn_upkeep(metrics);
    let store = store::open(&config.storage)
        .await
        .context("cannot open the database")?;
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (set [server] listen, or --listen)",
                config.server.listen
            )
        })?;
    let phones: Vec<Arc<dyn Adapter>> = phones
        .into_iter()
        .map(|phone| Arc::new(PhoneAdapter::new(phone, poll, maps.clone())) as Arc<dyn Adapter>)
        .collect();
    let api_config = config.server.api.clone();
    let app = App::start(config, handler.name(), store, phones).await?;
    let runtime = app.runtime.clone();
    if let Some(print) = on_activity {
        let mut rx = runtime.subscribe();
        tokio::spawn(async move {
            while let Ok(activity) = rx.recv().await {
                print(&activity);
            }
        });
    }
    let mut api_tokens = tapwire::server::api::Tokens::from_env(&api_config);
    let demo_token = demo_token.filter(|_| api_tokens.is_none());
    if let Some(token) = demo_token {
        api_tokens = tapwire::server::api::Tokens::parse(token);
    }
    let dashboard = listener
        .local_addr()
        .map(|addr| format!("http://{addr}{}", tapwire::server::dashboard::PATH))
        .unwrap_or_default();
    match &api_tokens {
        Some(_) => tracing::info!(url = %dashboard, "dashboard on: sign in with an API token"),
        None => {
            tracing::info!(env = %api_config.tokens_env, "dashboard off: no API token in the environment variable")
        }
    }
    if on_activity.is_some() {
        announce_dashboard(&dashboard, api_tokens.is_some(), demo_token);
    }
    let (server_stop, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tapwire::server::run(
        listener,
        tapwire::server::app(runtime.clone(), api_tokens),
        async move {
            let _ = server_stopped.await;
        },
    ));

    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                if app.adapter_finished() {
                    break;
                }
            }
        }
    }
    let _ = server_stop.send(());
    let errors = app.shutdown().await;
    if let Ok(Err(error)) = server.await {
        tracing::warn!(%error, "HTTP server stopped with an error");
    }
    tracing::info!(
        handled = runtime.handled_events(),
        unmatched = runtime.unmatched_events(),
        "events handled, and those no route matched"
    );
    for error in &errors {
        tracing::error!(%error, "stopped");
        eprintln!("error: {error}");
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
