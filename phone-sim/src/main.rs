//! `tapwire-phone-sim serve`: runs one virtual phone until SIGINT/SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tapwire_phone_sim::settings::Preset;
use tapwire_phone_sim::{AttrSet, Scenario, Screen, SimConfig, Theme};

#[derive(Parser)]
#[command(
    name = "tapwire-phone-sim",
    about = "A virtual Android phone running a model of WeChat, reachable over ADB"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Listen for ADB hosts and control-API clients.
    Serve {
        #[arg(long, default_value = "127.0.0.1:5555")]
        adb: SocketAddr,
        #[arg(long, default_value = "127.0.0.1:7100")]
        control: SocketAddr,
        /// WeChat version the phone reports. 6.6.6 speaks that build's reported ids, every
        /// other version 8.0.x's; 8.0.55 and later hide the view tree from dumps unless a
        /// service WeChat trusts runs.
        #[arg(long, default_value = "8.0.50")]
        wechat: String,
        /// Attribute set of dumps: modern (uiautomator2-style) or stock (older `uiautomator dump`).
        #[arg(long, default_value = "modern")]
        attrs: AttrSet,
        /// Show the chat's name in the title bar (real 8.0.x dumps do not).
        #[arg(long)]
        title_text: bool,
        /// Chats to start with (TOML); a small built-in set otherwise.
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// A UI map whose roles replace those of the version's build.
        #[arg(long)]
        ui_map: Option<PathBuf>,
        /// Without Google's Android Accessibility Suite (com.google.android.marvin.talkback),
        /// as on phones without Google services.
        #[arg(long)]
        no_accessibility_suite: bool,
        /// With the 点明 screen reader (com.dianming.phoneapp) installed.
        #[arg(long)]
        with_dianming: bool,
        /// A setting the phone starts with, NAMESPACE:KEY=VALUE; repeat for more. E.g. a
        /// user's own service: secure:enabled_accessibility_services=com.iflytek.inputmethod/.FlyService
        #[arg(long = "setting", value_name = "NAMESPACE:KEY=VALUE")]
        settings: Vec<Preset>,
        /// Show Android's floating accessibility button (a System UI window at the right edge)
        /// while a running service asks for it, as Select to Speak does.
        #[arg(long)]
        a11y_button: bool,
        /// The phone has not accepted this computer's ADB key: it answers with AUTH and
        /// `adb devices` lists it as unauthorized.
        #[arg(long)]
        unauthorized: bool,
        /// The display, WIDTHxHEIGHT: 720x1608 (the real dumps' phone, 320 dpi), 1080x2400
        /// (480 dpi) or 1440x3200 (640 dpi). Dumps and screenshots share its pixels.
        #[arg(long, default_value = "720x1608")]
        screen: Screen,
        /// WeChat's look in screenshots: light or dark (dumps are the same).
        #[arg(long, default_value = "light")]
        theme: Theme,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let Cmd::Serve {
        adb,
        control,
        wechat,
        attrs,
        title_text,
        scenario,
        ui_map,
        no_accessibility_suite,
        with_dianming,
        settings,
        a11y_button,
        unauthorized,
        screen,
        theme,
    } = Cli::parse().cmd;
    let scenario = match scenario {
        Some(p) => {
            Scenario::load(&p).with_context(|| format!("loading scenario {}", p.display()))?
        }
        None => Scenario::default_chats(),
    };
    let config = SimConfig {
        adb_addr: adb,
        control_addr: Some(control),
        wechat_version: wechat,
        attrs,
        title_text,
        ui_map,
        scenario,
        accessibility_suite: !no_accessibility_suite,
        dianming: with_dianming,
        settings,
        accessibility_button: a11y_button,
        unauthorized,
        screen,
        theme,
        ..SimConfig::default()
    };
    let handle = tapwire_phone_sim::start(config)
        .await
        .context("starting the phone")?;
    let line = serde_json::json!({
        "adb": handle.adb_addr().to_string(),
        "control": handle.control_addr().map(|a| a.to_string()),
    });
    {
        // The one line on stdout: callers read it to learn the ports that port 0 picked.
        #[allow(clippy::print_stdout)]
        {
            println!("{line}");
        }
        std::io::stdout().flush().context("flushing stdout")?;
    }

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for SIGINT")?,
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    handle.shutdown().await;
    Ok(())
}
