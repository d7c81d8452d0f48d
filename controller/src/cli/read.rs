//! `tapwire read FILE.xml|FILE.png|DIR`: what Tapwire reads on a screen, without a phone. A
//! user can check a dump of their own phone, and a bug report can carry one. A screenshot
//! (PNG, or raw `screencap` output) is read by the vision reader, as on phones whose WeChat
//! hides its tree; the file's first bytes decide, not its name.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use tapwire_device_agent::ocr::{self, OcrEngine};
use tapwire_device_agent::reader::vision::{self, Timings};
use tapwire_device_agent::screen::{ChatView, ConversationList, Dialog, Unread};
use tapwire_device_agent::{
    Dump, ScreenReading, UiMap, UiMaps, Version, read_screen, read_screen_any,
};

#[derive(Debug, Args)]
pub struct ReadArgs {
    /// A dump (`.xml`), a screenshot (`.png`, or raw `screencap` output) or a directory of
    /// them.
    pub path: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The WeChat version the dump came from (picks the UI map); tried against every map
    /// when left out.
    #[arg(long)]
    pub wechat: Option<String>,
    /// Directory of UI maps.
    #[arg(long)]
    pub ui_maps: Option<PathBuf>,
    /// Read with this one UI map file (a draft from `tapwire map draft`, say) instead of the
    /// directory's maps.
    #[arg(long, value_name = "FILE", conflicts_with = "ui_maps")]
    pub map: Option<PathBuf>,
    /// The OCR engine for screenshots: tesseract or ppocr (default: `TAPWIRE_OCR`, else
    /// ppocr where installed, else tesseract).
    #[arg(long, value_name = "ENGINE")]
    pub ocr: Option<ocr::EngineKind>,
}

/// The maps a dump may be read with.
enum Maps {
    /// `--map FILE`: this one, whatever the dump.
    One(UiMap),
    Dir(UiMaps),
}

pub fn run(args: ReadArgs) -> anyhow::Result<ExitCode> {
    let maps = match &args.map {
        Some(file) => Maps::One(UiMap::load(file)?),
        None => Maps::Dir(UiMaps::load_dir(&super::ui_maps_dir(args.ui_maps.clone()))?),
    };
    let files = dump_files(&args.path)?;
    let mut failed = false;
    let mut out = std::io::stdout().lock();
    // Loaded on the first screenshot only, and once: a model takes a moment to load.
    let mut engine: Option<Box<dyn OcrEngine>> = None;
    for file in &files {
        match read_any(file, &maps, args.wechat.as_deref(), (&mut engine, args.ocr)) {
            Ok((reading, timings)) => {
                let rendered = if args.json {
                    let mut json = serde_json::to_value(&reading)?;
                    if files.len() > 1 {
                        json["file"] = file.display().to_string().into();
                    }
                    if let Some(t) = timings {
                        json["timings_ms"] = serde_json::to_value(t)?;
                    }
                    serde_json::to_string_pretty(&json)?
                } else {
                    let mut table = render_table(&reading);
                    if let Some(t) = timings {
                        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
                        let _ = writeln!(
                            table,
                            "timings: decode {:.0} ms, segmentation {:.0} ms, OCR {:.0} ms ({} crops)",
                            ms(t.decode),
                            ms(t.segment),
                            ms(t.ocr),
                            t.crops
                        );
                    }
                    format!("== {}\n{table}", file.display())
                };
                writeln!(out, "{rendered}")?;
            }
            Err(error) => {
                failed = true;
                eprintln!("{}: {error:#}", file.display());
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn dump_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("cannot list {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "xml" || e == "png" || e == "raw")
        })
        .collect();
    files.sort();
    anyhow::ensure!(
        !files.is_empty(),
        "no .xml dumps or .png screenshots in {}",
        path.display()
    );
    Ok(files)
}

/// A dump or a screenshot, told apart by the file's bytes: an XML dump starts with `<`
/// (after any blank), everything else is tried as a picture.
fn read_any(
    path: &Path,
    maps: &Maps,
    wechat: Option<&str>,
    (engine, kind): (&mut Option<Box<dyn OcrEngine>>, Option<ocr::EngineKind>),
) -> anyhow::Result<(ScreenReading, Option<Timings>)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let is_xml = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'<');
    if is_xml {
        return Ok((read_file(path, maps, wechat)?, None));
    }
    let engine = match engine {
        Some(engine) => engine,
        None => engine.insert(ocr::engine(kind)?),
    };
    let reading = vision::read_screenshot(&bytes, engine.as_mut())?;
    Ok((reading.reading, Some(reading.timings)))
}

fn read_file(path: &Path, maps: &Maps, wechat: Option<&str>) -> anyhow::Result<ScreenReading> {
    let raw =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let dump = Dump::parse(&raw)?;
    let version = wechat.map(Version::parse).transpose()?;
    match (maps, version) {
        (Maps::One(map), Some(version)) if !map.covers(&version) => anyhow::bail!(
            "the map {} ({}) covers {} ≤ WeChat < {}, not {version}",
            map.name,
            map.source.display(),
            map.min_version,
            map.max_version
        ),
        (Maps::One(map), _) => Ok(read_screen(&dump, map)),
        (Maps::Dir(maps), Some(version)) => Ok(read_screen(&dump, maps.for_version(&version)?)),
        (Maps::Dir(maps), None) => read_screen_any(&dump, maps).context("no UI maps loaded"),
    }
}

fn render_table(reading: &ScreenReading) -> String {
    let mut out = format!("screen: {:?} (map {})\n", reading.kind, reading.map);
    if let Some(dialog) = &reading.dialog {
        render_dialog(&mut out, dialog);
    }
    if let Some(chat) = &reading.chat {
        render_chat(&mut out, chat);
    }
    if let Some(list) = &reading.list {
        render_list(&mut out, list);
    }
    out
}

fn render_dialog(out: &mut String, dialog: &Dialog) {
    let _ = writeln!(
        out,
        "dialog ({}): {}",
        dialog.package,
        dialog.texts.join(" / ")
    );
    for button in &dialog.buttons {
        let _ = writeln!(out, "  button {:?} at {}", button.text, button.bounds);
    }
}

fn render_chat(out: &mut String, chat: &ChatView) {
    let _ = writeln!(
        out,
        "chat: {} (back badge {})",
        chat.title.as_deref().unwrap_or("(title not in dump)"),
        chat.back_unread.map_or("-".into(), |n| n.to_string())
    );
    let _ = writeln!(
        out,
        "{:>3}  {:<12} {:<6} {:<16} text",
        "#", "kind", "side", "sender"
    );
    for (i, m) in chat.messages.iter().enumerate() {
        let sender = m
            .sender
            .clone()
            .or_else(|| m.avatar.as_ref().map(|a| format!("({a})")))
            .unwrap_or_default();
        let text = m.text.as_deref().map_or_else(
            || format!("(not in dump, bubble {})", m.bounds),
            |t| format!("{t:?}"),
        );
        let _ = writeln!(
            out,
            "{:>3}  {:<12} {:<6} {:<16} {}",
            i + 1,
            format!("{:?}", m.kind),
            format!("{:?}", m.side),
            sender,
            text
        );
    }
}

fn render_list(out: &mut String, list: &ConversationList) {
    let _ = writeln!(
        out,
        "conversation list: {} (tab badge {})",
        list.title.as_deref().unwrap_or("-"),
        list.tab_unread.map_or("-".into(), |n| n.to_string())
    );
    let _ = writeln!(
        out,
        "{:>3}  {:<24} {:<8} {:<6} {:<12} preview",
        "#", "title", "unread", "muted", "time"
    );
    for (i, row) in list.rows.iter().enumerate() {
        let unread = match &row.unread {
            Unread::None => "-".to_string(),
            Unread::Dot => "dot".to_string(),
            Unread::Uncounted => "badge ?".to_string(),
            Unread::Count(n) => n.to_string(),
        };
        let muted = match row.muted {
            Some(true) => "yes",
            Some(false) => "no",
            None => "?",
        };
        let _ = writeln!(
            out,
            "{:>3}  {:<24} {:<8} {:<6} {:<12} {:?}",
            i + 1,
            row.title.as_deref().unwrap_or("(cut off)"),
            unread,
            muted,
            format!("{:?}", row.time.as_deref().unwrap_or("")),
            row.preview.as_deref().unwrap_or("")
        );
    }
}
