//! `tapwire inspect`: a screenshot with every UI-map role found boxed and labelled, and a
//! table of roles found, missing and ambiguous, from a phone or from saved files.

use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use tapwire_device_agent::agent::detect_map;
use tapwire_device_agent::inspect::{self, Inspection, RoleState};
use tapwire_device_agent::transport::{self, AdbServerTransport, Transport};
use tapwire_device_agent::{Dump, UiMap, UiMaps, Version};

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A saved dump (`tapwire dump` writes one), and optionally its screenshot; without
    /// them the phone's current screen is used.
    pub files: Vec<PathBuf>,
    /// The phone to look at (default: the only one attached).
    #[arg(long, conflicts_with = "files")]
    pub device: Option<String>,
    #[arg(long)]
    pub adb_server: Option<SocketAddrV4>,
    /// Where to write the picture.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long)]
    pub ui_maps: Option<PathBuf>,
    /// Use this map (a file), not the one chosen by version.
    #[arg(long)]
    pub map: Option<PathBuf>,
    /// For a saved dump: the WeChat version it came from (else the map that finds most).
    #[arg(long)]
    pub wechat_version: Option<String>,
    /// The table as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let maps = UiMaps::load_dir(&super::ui_maps_dir(args.ui_maps.clone()))?;
    let explicit = args.map.as_deref().map(UiMap::load).transpose()?;
    let (xml, png, map) = match args.files.as_slice() {
        [] => from_phone(&args, &maps, explicit)?,
        [dump, rest @ ..] => {
            if rest.len() > 1 {
                anyhow::bail!("give a dump and at most one screenshot");
            }
            let xml = std::fs::read_to_string(dump)
                .with_context(|| format!("cannot read {}", dump.display()))?;
            let png = rest
                .first()
                .map(|p| std::fs::read(p).with_context(|| format!("cannot read {}", p.display())))
                .transpose()?;
            let parsed = Dump::parse(&xml).with_context(|| format!("{}", dump.display()))?;
            let map = match (explicit, &args.wechat_version) {
                (Some(map), _) => map,
                (None, Some(version)) => maps.for_version(&Version::parse(version)?)?.clone(),
                (None, None) => {
                    best_map(&parsed, &maps).context("no UI map finds anything in this dump")?
                }
            };
            (xml, png, map)
        }
    };
    let dump = Dump::parse(&xml).context("the dump")?;
    let inspection = inspect::inspect(&dump, &map);
    let font = inspect::find_font();
    if font.is_none() {
        tracing::warn!("no font found for labels (set TAPWIRE_FONT to a .ttf); drawing boxes only");
    }
    let picture = inspect::draw(png.as_deref(), &dump, &inspection, font.as_ref())?;
    std::fs::write(&args.out, picture)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    print(&inspection, &map, &args)?;
    Ok(ExitCode::SUCCESS)
}

/// Dump and screenshot of the phone's current screen, with the map for its WeChat.
fn from_phone(
    args: &InspectArgs,
    maps: &UiMaps,
    explicit: Option<UiMap>,
) -> anyhow::Result<(String, Option<Vec<u8>>, UiMap)> {
    let server = transport::adb_server_addr(args.adb_server);
    let serial = match super::ready_devices(server, args.device.as_deref())?.as_slice() {
        [one] => one.clone(),
        _ => anyhow::bail!("several phones attached: pick one with --device"),
    };
    let mut phone = AdbServerTransport::connect(server, &serial)?;
    let map = match explicit {
        Some(map) => map,
        None => detect_map(&mut phone, maps, &serial)?.1,
    };
    let xml = phone.shell("uiautomator dump /dev/tty")?.stdout_text();
    let png = phone.shell("screencap -p")?.stdout;
    Ok((xml, Some(png), map))
}

/// For a dump of unknown origin: the map whose selectors find the most roles.
fn best_map(dump: &Dump, maps: &UiMaps) -> Option<UiMap> {
    maps.maps()
        .iter()
        .map(|map| {
            let found = inspect::inspect(dump, map)
                .table
                .iter()
                .filter(|l| l.state == RoleState::Found)
                .count();
            (found, map)
        })
        .filter(|(found, _)| *found > 0)
        .max_by_key(|(found, _)| *found)
        .map(|(_, map)| map.clone())
}

#[allow(clippy::print_stdout)] // CLI output.
fn print(inspection: &Inspection, map: &UiMap, args: &InspectArgs) -> anyhow::Result<()> {
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "map": map.name,
                "picture": args.out,
                "roles": inspection.table,
                "boxes": inspection.hits,
            }))?
        );
        return Ok(());
    }
    println!(
        "map {} ({}) → {}",
        map.name,
        map.source.display(),
        args.out.display()
    );
    println!("{:<20} {:<10} {:>5}  ids", "role", "state", "nodes");
    for line in &inspection.table {
        let state = match line.state {
            RoleState::Found => "found",
            RoleState::Missing => "missing",
            RoleState::Ambiguous => "AMBIGUOUS",
            RoleState::NotInMap => "-",
        };
        println!(
            "{:<20} {:<10} {:>5}  {}",
            line.role,
            state,
            line.count,
            line.ids.join(" ")
        );
    }
    Ok(())
}
