//! Command-line parsing and dispatch. Each subcommand lives in its own module.

mod config_cmd;
mod demo;
mod devices;
mod dlq;
mod doctor;
mod dump;
mod ilink;
mod inspect;
mod map;
mod phone;
mod read;
pub mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "tapwire",
    version,
    about = "Bots on personal WeChat through an Android phone, and one event pipeline for every platform"
)]
pub struct Cli {
    /// More logging (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// A virtual phone, a scripted conversation and Tapwire answering it live.
    Demo(demo::DemoArgs),
    /// Drive the phones and answer their messages until Ctrl-C.
    Run(run::RunArgs),
    /// List the phones the adb server knows, with their WeChat version.
    Devices(devices::DevicesArgs),
    /// Save a UI dump, a screenshot and their reading from a phone.
    Dump(dump::DumpArgs),
    /// Work with the configuration file.
    Config(config_cmd::ConfigArgs),
    /// The dead-letter queue: events a handler gave up on.
    Dlq(dlq::DlqArgs),
    /// Read a UI dump offline: the screen kind, conversation rows or chat messages.
    Read(read::ReadArgs),
    /// Check everything `run` needs (adb, the phone, WeChat, its UI map and tree, the
    /// keyboard, the database, the config), each with its fix.
    Doctor(doctor::DoctorArgs),
    /// Prepare a phone for reading (`prepare`) and undo it (`restore`).
    Phone(phone::PhoneArgs),
    /// Box every UI-map role on a screenshot and list the roles found, missing and
    /// ambiguous (from a phone, or from a saved dump and screenshot).
    Inspect(inspect::InspectArgs),
    /// UI maps: draft one for a WeChat build Tapwire has no map for.
    Map(map::MapArgs),
    /// Weixin iLink bots: `login` scans a QR code and stores the bot's token.
    Ilink(ilink::IlinkArgs),
}

pub fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info,tapwire=info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Colour codes only for a terminal: a log file or a service's journal gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Run(args) => run::run(args),
        Command::Devices(args) => devices::run(args),
        Command::Dump(args) => dump::run(args),
        Command::Read(args) => read::run(args),
        Command::Map(args) => map::run(args),
        Command::Config(args) => config_cmd::run(args),
        Command::Dlq(args) => dlq::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Phone(args) => phone::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Ilink(args) => ilink::run(args),
    }
}

/// The `ui-maps/` directory unless the user named one.
pub fn ui_maps_dir(explicit: Option<PathBuf>) -> PathBuf {
    explicit.unwrap_or_else(tapwire_device_agent::uimap::default_dir)
}

/// The phones a command works on: the one named, else every phone the adb server lists as
/// ready (an unauthorised or offline one is named with what to do).
pub fn ready_devices(
    server: std::net::SocketAddrV4,
    explicit: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    if let Some(serial) = explicit {
        return Ok(vec![serial.to_string()]);
    }
    let devices = tapwire_device_agent::transport::list_devices(server)?;
    for device in devices.iter().filter(|d| d.state != "device") {
        tracing::warn!(
            phone = %device.serial,
            state = %device.state,
            "skipped: not ready (unauthorized: accept the prompt on the phone; offline: replug it)"
        );
    }
    let ready: Vec<String> = devices
        .into_iter()
        .filter(|d| d.state == "device")
        .map(|d| d.serial)
        .collect();
    if ready.is_empty() {
        anyhow::bail!("no phone ready at the adb server {server} (`tapwire doctor` says why)");
    }
    Ok(ready)
}
