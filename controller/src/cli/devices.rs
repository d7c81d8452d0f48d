//! `tapwire devices`: the phones the adb server knows, with their WeChat version and
//! whether a UI map covers it.

use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use tapwire_device_agent::UiMaps;
use tapwire_device_agent::agent::detect_map;
use tapwire_device_agent::transport::{self, AdbServerTransport};

#[derive(Debug, Args)]
pub struct DevicesArgs {
    #[arg(long)]
    pub adb_server: Option<SocketAddrV4>,
    #[arg(long)]
    pub ui_maps: Option<PathBuf>,
}

#[allow(clippy::print_stdout)] // CLI output.
pub fn run(args: DevicesArgs) -> anyhow::Result<ExitCode> {
    let server = transport::adb_server_addr(args.adb_server);
    let maps = UiMaps::load_dir(&super::ui_maps_dir(args.ui_maps))?;
    let devices = transport::list_devices(server)?;
    if devices.is_empty() {
        println!("no phones attached to the adb server at {server}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<24} {:<12} {:<20} wechat", "serial", "state", "model");
    for device in devices {
        let wechat = if device.state == "device" {
            match AdbServerTransport::connect(server, &device.serial)
                .map_err(tapwire_device_agent::agent::AgentError::from)
                .and_then(|mut t| detect_map(&mut t, &maps, &device.serial))
            {
                Ok((version, map)) => format!("{version} (map {})", map.name),
                Err(error) => error.to_string(),
            }
        } else {
            "-".into()
        };
        println!(
            "{:<24} {:<12} {:<20} {}",
            device.serial,
            device.state,
            device.model.as_deref().unwrap_or("-"),
            wechat
        );
    }
    Ok(ExitCode::SUCCESS)
}
