//! `tapwire doctor`: everything `run` needs, one line per check, OK or the exact fix. It
//! only looks: nothing on the phone or the computer is changed.

use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use clap::Args;
use serde::Serialize;
use tapwire::adapter::phone::ReadMode;
use tapwire::config::Config;
use tapwire::store::StorageConfig;
use tapwire_device_agent::UiMaps;
use tapwire_device_agent::doctor::{Check, Status, check_phone};
use tapwire_device_agent::ocr;
use tapwire_device_agent::transport::{self, AdbServerTransport};

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Check only this phone (default: every phone the adb server lists).
    #[arg(long)]
    pub device: Option<String>,
    #[arg(long)]
    pub adb_server: Option<SocketAddrV4>,
    /// The configuration to check (default: tapwire.toml when it exists).
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub ui_maps: Option<PathBuf>,
    /// The checks as one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// One check with what it was about: the computer, or a phone by serial.
#[derive(Debug, Serialize)]
struct Scoped {
    scope: String,
    #[serde(flatten)]
    check: Check,
}

pub fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let checks = checks(&args);
    let blocked = checks.iter().any(|c| c.check.status == Status::Fail);
    print(&checks, args.json, blocked)?;
    Ok(if blocked {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn checks(args: &DoctorArgs) -> Vec<Scoped> {
    let computer = |check: Check| Scoped {
        scope: "computer".into(),
        check,
    };
    let mut checks = Vec::new();
    let (check, config) = config_check(args.config.as_deref());
    checks.push(computer(check));
    let config = config.unwrap_or_default();
    checks.push(computer(database_check(&config.storage)));
    checks.extend(ocr_checks(&config).into_iter().map(computer));
    let maps = match UiMaps::load_dir(&super::ui_maps_dir(args.ui_maps.clone())) {
        Ok(maps) => {
            let names: Vec<&str> = maps.maps().iter().map(|m| m.name.as_str()).collect();
            checks.push(computer(Check::ok("ui maps", names.join(", "))));
            maps
        }
        Err(error) => {
            checks.push(computer(Check::fail(
                "ui maps",
                error.to_string(),
                "fix the file named, or point --ui-maps at the project's ui-maps/",
            )));
            UiMaps::default()
        }
    };
    checks.push(computer(adb_binary_check()));
    let server = transport::adb_server_addr(args.adb_server);
    if let Err(error) = transport::check_server(server) {
        checks.push(computer(Check::fail(
            "adb server",
            error.to_string(),
            "start it with `adb start-server`",
        )));
        return checks;
    }
    checks.push(computer(Check::ok("adb server", format!("{server}"))));
    let devices = match transport::list_devices(server) {
        Ok(devices) => devices,
        Err(error) => {
            checks.push(computer(Check::fail(
                "phones",
                error.to_string(),
                "restart the server: `adb kill-server && adb start-server`",
            )));
            return checks;
        }
    };
    let wanted: Vec<_> = devices
        .into_iter()
        .filter(|d| args.device.as_deref().is_none_or(|s| s == d.serial))
        .collect();
    if wanted.is_empty() {
        checks.push(computer(Check::fail(
            "phones",
            match &args.device {
                Some(serial) => format!("{serial} is not attached"),
                None => "none attached".into(),
            },
            "plug the phone in with USB debugging on (Settings → Developer options → USB debugging)",
        )));
    }
    for device in wanted {
        let scope = device.serial.clone();
        let phone = |check: Check| Scoped {
            scope: scope.clone(),
            check,
        };
        match device.state.as_str() {
            "device" => {}
            "unauthorized" => {
                checks.push(phone(Check::fail(
                    "authorised",
                    "unauthorized",
                    "unauthorized: accept the prompt on the phone (Allow USB debugging, tick Always allow)",
                )));
                continue;
            }
            other => {
                checks.push(phone(Check::fail(
                    "authorised",
                    other.to_string(),
                    "replug the cable, or `adb reconnect offline`",
                )));
                continue;
            }
        }
        checks.push(phone(Check::ok("authorised", "yes")));
        match AdbServerTransport::connect(server, &device.serial) {
            Ok(mut transport) => {
                checks.extend(check_phone(&mut transport, &maps).into_iter().map(&phone))
            }
            Err(error) => checks.push(phone(Check::fail(
                "connection",
                error.to_string(),
                "replug the cable, then run `tapwire doctor` again",
            ))),
        }
    }
    checks
}

fn config_check(path: Option<&Path>) -> (Check, Option<Config>) {
    const NAME: &str = "config";
    let default = Path::new("tapwire.toml");
    let path = match path {
        Some(path) => path,
        None if default.exists() => default,
        None => return (Check::ok(NAME, "none (defaults: echo, tapwire.db)"), None),
    };
    match Config::load(path) {
        Ok(config) => (
            Check::ok(NAME, format!("{} is valid", path.display())),
            Some(config),
        ),
        Err(errors) => (
            Check::fail(
                NAME,
                format!("{} has errors:\n{errors}", path.display()),
                format!(
                    "fix the lines named; `tapwire config check {}` repeats them",
                    path.display()
                ),
            ),
            None,
        ),
    }
}

/// The database must be writable where it is, or creatable where it will be.
fn database_check(storage: &StorageConfig) -> Check {
    const NAME: &str = "database";
    let StorageConfig::Sqlite(sqlite) = storage;
    let path = &sqlite.path;
    let result = if path.exists() {
        std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop)
            .map(|()| format!("{} is writable", path.display()))
    } else {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let probe = dir.join(format!(".tapwire-doctor-{}", std::process::id()));
        std::fs::write(&probe, b"")
            .and_then(|()| std::fs::remove_file(&probe))
            .map(|()| format!("{} will be created", path.display()))
    };
    match result {
        Ok(detail) => Check::ok(NAME, detail),
        Err(error) => Check::fail(
            NAME,
            format!("{}: {error}", path.display()),
            "point [storage] path (or --db) at a writable place",
        ),
    }
}

/// Loads each OCR engine as a vision-mode phone would. Only a phone configured for `vision`
/// that needs that engine cannot run without it: one that names it (`ocr`, or
/// `TAPWIRE_OCR`), or one that names none when no engine loads at all. `auto` phones still
/// work wherever the tree can be had, and an engine no phone needs is optional.
fn ocr_checks(config: &Config) -> Vec<Check> {
    // A bad TAPWIRE_OCR is the engine's load error on a phone; here the preference stands in.
    let chosen = ocr::EngineKind::from_env().ok().flatten();
    let loads: Vec<_> = ocr::EngineKind::ALL
        .into_iter()
        .map(|kind| (kind, kind.load()))
        .collect();
    let preferred = ocr::EngineKind::PREFERENCE
        .into_iter()
        .find(|kind| loads.iter().any(|(k, load)| k == kind && load.is_ok()));
    loads
        .into_iter()
        .map(|(kind, load)| {
            let name = match kind {
                ocr::EngineKind::Tesseract => "ocr (tesseract)",
                ocr::EngineKind::Ppocr => "ocr (ppocr)",
            };
            let fix = match kind {
                ocr::EngineKind::Tesseract => {
                    "install tesseract with its chi_sim and eng data (scripts/setup does: Debian \
                     `tesseract-ocr tesseract-ocr-chi-sim tesseract-ocr-eng`, macOS \
                     `brew install tesseract tesseract-lang`)"
                }
                ocr::EngineKind::Ppocr => {
                    "run scripts/setup: it takes the PP-OCR model and ONNX Runtime from PyPI's \
                     rapidocr-onnxruntime and onnxruntime wheels"
                }
            };
            match load {
                Ok(engine) => {
                    let default = if chosen.is_none() && preferred == Some(kind) {
                        "; phones without `ocr` read screenshots with it"
                    } else {
                        ""
                    };
                    Check::ok(
                        name,
                        format!("{} loaded{default}", engine_detail(kind, &*engine)),
                    )
                }
                Err(error) => {
                    let blocks = config.phones.iter().any(|p| {
                        p.mode == ReadMode::Vision
                            && match p.ocr.or(chosen) {
                                Some(named) => named == kind,
                                None => preferred.is_none(),
                            }
                    });
                    if blocks {
                        Check::fail(name, error.to_string(), fix)
                    } else {
                        Check::warn(
                            name,
                            format!("{error}; no phone needs it to read screenshots"),
                            fix,
                        )
                    }
                }
            }
        })
        .collect()
}

fn engine_detail(kind: ocr::EngineKind, engine: &dyn ocr::OcrEngine) -> String {
    match kind {
        ocr::EngineKind::Tesseract => format!(
            "{} {}",
            engine.name(),
            ocr::tesseract::library_version().unwrap_or("?")
        ),
        ocr::EngineKind::Ppocr => format!("{} ({})", engine.name(), ocr::ppocr::MODEL_FILE),
    }
}

fn adb_binary_check() -> Check {
    const NAME: &str = "adb";
    let version = Command::new("adb")
        .arg("version")
        .stdin(Stdio::null())
        .output();
    match version {
        Ok(out) if out.status.success() => Check::ok(
            NAME,
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .unwrap_or("found")
                .to_string(),
        ),
        _ => Check::fail(
            NAME,
            "not found on PATH",
            "install it: Debian/Ubuntu `sudo apt install adb`, macOS `brew install android-platform-tools` (or run scripts/setup)",
        ),
    }
}

#[allow(clippy::print_stdout)] // CLI output.
fn print(checks: &[Scoped], json: bool, blocked: bool) -> anyhow::Result<()> {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "ok": !blocked, "checks": checks }))?
        );
        return Ok(());
    }
    for scoped in checks {
        let check = &scoped.check;
        let status = match check.status {
            Status::Ok => "OK  ",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        };
        let detail = check.detail.replace('\n', "\n      ");
        println!("{status}  {:<14} {:<12} {detail}", scoped.scope, check.name);
        if let Some(fix) = &check.fix
            && check.status != Status::Ok
        {
            println!("      fix: {fix}");
        }
    }
    println!(
        "{}",
        if blocked {
            "`run` is blocked until each FAIL is fixed."
        } else {
            "`run` can start."
        }
    );
    Ok(())
}
