//! `tapwire dump --out DIR`: a UI dump, a screenshot, the phone's WeChat package facts and
//! what Tapwire reads on them (from the dump with the UI map, and from the screenshot with
//! the vision reader), for making fixtures and UI maps (`tapwire map draft`), and for bug
//! reports.

use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use tapwire_device_agent::agent::{detect_map, parse_version_name};
use tapwire_device_agent::transport::{self, AdbServerTransport, Transport};
use tapwire_device_agent::{Dump, UiMaps, read_screen};

#[derive(Debug, Args)]
pub struct DumpArgs {
    /// Where to write `<stamp>.xml`, `<stamp>.png`, `<stamp>.package.txt` and `<stamp>.json`.
    #[arg(long, default_value = "dumps")]
    pub out: PathBuf,
    #[arg(long)]
    pub device: Option<String>,
    #[arg(long)]
    pub adb_server: Option<SocketAddrV4>,
    #[arg(long)]
    pub ui_maps: Option<PathBuf>,
}

#[allow(clippy::print_stdout)] // CLI output.
pub fn run(args: DumpArgs) -> anyhow::Result<ExitCode> {
    let server = transport::adb_server_addr(args.adb_server);
    let serial = match args.device {
        Some(serial) => serial,
        None => {
            let devices = transport::list_devices(server)?;
            match devices.as_slice() {
                [one] => one.serial.clone(),
                [] => anyhow::bail!("no phone attached to the adb server at {server}"),
                _ => anyhow::bail!("several phones attached: pick one with --device"),
            }
        }
    };
    let mut phone = AdbServerTransport::connect(server, &serial)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let stamp = tapwire::event::now_rfc3339().replace([':', '.'], "-");
    let base = args.out.join(&stamp);

    let xml = phone.shell("uiautomator dump /dev/tty")?.stdout_text();
    std::fs::write(base.with_extension("xml"), &xml)?;
    let png = phone.shell("screencap -p")?.stdout;
    std::fs::write(base.with_extension("png"), &png)?;
    let package = phone.shell("dumpsys package com.tencent.mm")?.stdout_text();
    // Kept whole, not only its version: `tapwire map draft` reads `versionName=` from it, and
    // a bug report shows every block a system app prints.
    let package_path = base.with_extension("package.txt");
    std::fs::write(&package_path, &package)?;
    let focus = phone
        .shell("dumpsys window | grep mCurrentFocus")?
        .stdout_text();
    let model = phone.shell("getprop ro.product.model")?.stdout_text();

    let maps = UiMaps::load_dir(&super::ui_maps_dir(args.ui_maps))?;
    let reading = match (detect_map(&mut phone, &maps, &serial), Dump::parse(&xml)) {
        (Ok((_, map)), Ok(dump)) => serde_json::to_value(read_screen(&dump, &map))?,
        (Err(e), _) => serde_json::Value::String(format!("no reading: {e}")),
        (_, Err(e)) => serde_json::Value::String(format!("no reading: {e}")),
    };
    // The screenshot read as on a phone whose WeChat hides its tree, to compare with the
    // dump's reading (`tapwire read` reads either file again later).
    let vision = match tapwire_device_agent::ocr::default_engine()
        .map_err(tapwire_device_agent::reader::vision::VisionError::from)
        .and_then(|mut engine| {
            tapwire_device_agent::reader::vision::read_screenshot(&png, engine.as_mut())
        }) {
        Ok(read) => serde_json::to_value(read.reading)?,
        Err(e) => serde_json::Value::String(format!("no reading: {e}")),
    };
    let metadata = serde_json::json!({
        "serial": serial,
        "model": model.trim(),
        "wechat": parse_version_name(&package),
        "focus": focus.trim(),
        "captured_at": tapwire::event::now_rfc3339(),
        "reading": reading,
        "vision": vision,
    });
    std::fs::write(
        base.with_extension("json"),
        serde_json::to_string_pretty(&metadata)?,
    )?;
    println!("{}", base.with_extension("xml").display());
    println!("{}", base.with_extension("png").display());
    println!("{}", package_path.display());
    println!("{}", base.with_extension("json").display());
    Ok(ExitCode::SUCCESS)
}
