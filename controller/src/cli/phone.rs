//! `tapwire phone prepare|restore`: make a phone's WeChat readable through its UI tree
//! (the same step `run` takes first), and put back every setting that changed.

use std::net::SocketAddrV4;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use tapwire_device_agent::prepare::{self, SettingChange};
use tapwire_device_agent::transport::{self, AdbServerTransport};

#[derive(Debug, Args)]
pub struct PhoneArgs {
    #[command(subcommand)]
    pub command: PhoneCommand,
}

#[derive(Debug, Subcommand)]
pub enum PhoneCommand {
    /// Bring WeChat's hidden tree back (a trusted accessibility service, animations off),
    /// recording every setting changed.
    Prepare(Target),
    /// Put back every setting `prepare` changed, exactly as it was.
    Restore(Target),
}

#[derive(Debug, Args)]
pub struct Target {
    /// The phone's serial; without it, every phone the adb server lists as ready.
    #[arg(long)]
    pub device: Option<String>,
    #[arg(long)]
    pub adb_server: Option<SocketAddrV4>,
    /// One JSON object per phone on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: PhoneArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        PhoneCommand::Prepare(target) => each_phone(&target, prepare_one),
        PhoneCommand::Restore(target) => each_phone(&target, restore_one),
    }
}

/// Runs `work` on each targeted phone; the exit code is failure when any phone was not
/// made ready (or could not be reached).
fn each_phone(
    target: &Target,
    work: fn(&mut AdbServerTransport, &str, bool) -> anyhow::Result<bool>,
) -> anyhow::Result<ExitCode> {
    let server = transport::adb_server_addr(target.adb_server);
    let mut all_ok = true;
    for serial in super::ready_devices(server, target.device.as_deref())? {
        let ok = AdbServerTransport::connect(server, &serial)
            .map_err(anyhow::Error::from)
            .and_then(|mut phone| work(&mut phone, &serial, target.json));
        match ok {
            Ok(ok) => all_ok &= ok,
            Err(error) => {
                all_ok = false;
                tracing::error!(phone = %serial, "{error:#}");
            }
        }
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[allow(clippy::print_stdout)] // CLI output.
fn prepare_one(phone: &mut AdbServerTransport, serial: &str, json: bool) -> anyhow::Result<bool> {
    let report = prepare::prepare(phone)?;
    if json {
        println!(
            "{}",
            serde_json::json!({ "device": serial, "report": report })
        );
    } else {
        println!("{}", report.prepared.advice(serial));
        print_changes(&report.changes);
    }
    Ok(report.prepared.ready())
}

#[allow(clippy::print_stdout)] // CLI output.
fn restore_one(phone: &mut AdbServerTransport, serial: &str, json: bool) -> anyhow::Result<bool> {
    let report = prepare::restore(phone)?;
    if json {
        println!(
            "{}",
            serde_json::json!({ "device": serial, "report": report })
        );
        return Ok(true);
    }
    if report.restored.is_empty() && report.left.is_empty() {
        println!("{serial}: nothing to restore (`tapwire phone prepare` changed nothing here)");
        return Ok(true);
    }
    println!("{serial}: settings put back");
    for change in &report.restored {
        println!(
            "  restored {} {}: {} → {}",
            change.namespace,
            change.key,
            change.after,
            change.before.as_deref().unwrap_or("(unset)")
        );
    }
    for (change, now) in &report.left {
        println!(
            "  left  {} {}: changed since prepare, now {}",
            change.namespace,
            change.key,
            now.as_deref().unwrap_or("(unset)")
        );
    }
    Ok(true)
}

#[allow(clippy::print_stdout)] // CLI output.
fn print_changes(changes: &[SettingChange]) {
    for change in changes {
        println!(
            "  changed {} {}: {} → {}",
            change.namespace,
            change.key,
            change.before.as_deref().unwrap_or("(unset)"),
            change.after
        );
    }
}
