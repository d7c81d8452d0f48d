//! `tapwire map draft --from DIR [--out FILE]`: a first UI map for a WeChat build that has
//! none, drafted from what `tapwire dump` saved on a phone running it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use tapwire_device_agent::agent::parse_version_name;
use tapwire_device_agent::draft::{self, Confidence, DraftOptions, Finding};
use tapwire_device_agent::{Dump, Version};

#[derive(Debug, Args)]
pub struct MapArgs {
    #[command(subcommand)]
    pub command: MapCommand,
}

#[derive(Debug, Subcommand)]
pub enum MapCommand {
    /// Draft a UI map for a WeChat build Tapwire has no map for. On the phone, dump the 微信
    /// tab and a chat with messages from both sides (type a word first, so 发送 shows) with
    /// `tapwire dump --out DIR`; then draft from DIR. The draft says for each role how sure
    /// it is, and why a role is missing.
    Draft(DraftArgs),
}

#[derive(Debug, Args)]
pub struct DraftArgs {
    /// What `tapwire dump --out DIR` saved: `*.xml` dumps, and `*.package.txt` for the
    /// WeChat version.
    #[arg(long, value_name = "DIR")]
    pub from: PathBuf,
    /// Write the map to FILE instead of printing it.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The WeChat version the dumps came from: needed when DIR holds no `*.package.txt`,
    /// and wins over them when given.
    #[arg(long, value_name = "VERSION")]
    pub version: Option<String>,
    /// The map's name [default: wechat-<VERSION>-draft].
    #[arg(long)]
    pub name: Option<String>,
}

pub fn run(args: MapArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        MapCommand::Draft(args) => draft_map(args),
    }
}

#[allow(clippy::print_stderr)] // CLI output: what was drafted, beside the map itself.
fn draft_map(args: DraftArgs) -> anyhow::Result<ExitCode> {
    let files = files_in(&args.from)?;
    let dumps_found: Vec<&PathBuf> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    anyhow::ensure!(
        !dumps_found.is_empty(),
        "no .xml dumps in {}; save the 微信 tab and a chat with `tapwire dump --out {}`",
        args.from.display(),
        args.from.display()
    );
    let (version, version_source) = match &args.version {
        Some(version) => (Version::parse(version)?, "given with --version".to_string()),
        None => version_from_files(&args.from, &files)?,
    };

    let mut dumps = Vec::new();
    for path in dumps_found {
        let name = file_name(path);
        // One dump taken mid-animation should not cost the user the others.
        let parsed = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))
            .and_then(|raw| Dump::parse(&raw).map_err(anyhow::Error::from));
        match parsed {
            Ok(dump) => dumps.push((name, dump)),
            Err(error) => eprintln!("{}: skipped: {error:#}", path.display()),
        }
    }
    anyhow::ensure!(
        !dumps.is_empty(),
        "none of the dumps in {} could be read",
        args.from.display()
    );

    let mut options = DraftOptions::new(version, version_source);
    options.name = args.name.clone();
    let draft = draft::draft(&dumps, &options)?;
    let map = draft
        .to_map()
        .context("the drafted map does not load (a bug in the drafter)")?;
    let toml = draft.to_toml();
    match &args.out {
        Some(out) => {
            std::fs::write(out, &toml).with_context(|| format!("cannot write {}", out.display()))?
        }
        None => std::io::stdout().lock().write_all(toml.as_bytes())?,
    }

    let count = |c: Confidence| {
        draft
            .findings
            .iter()
            .filter(|(_, f)| matches!(f, Finding::Found { confidence, .. } if *confidence == c))
            .count()
    };
    let keys = |pick: &dyn Fn(&Finding) -> bool| {
        draft
            .findings
            .iter()
            .filter(|(_, f)| pick(f))
            .map(|(role, _)| role.key())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let low = keys(&|f| {
        matches!(
            f,
            Finding::Found {
                confidence: Confidence::Low,
                ..
            }
        )
    });
    let missing = keys(&|f| matches!(f, Finding::Missing { .. }));
    eprintln!(
        "drafted {} ({} ≤ WeChat < {}) from {} dump(s): {} high, {} medium, {} low; {} missing",
        map.name,
        map.min_version,
        map.max_version,
        dumps.len(),
        count(Confidence::High),
        count(Confidence::Medium),
        count(Confidence::Low),
        missing.split(' ').filter(|k| !k.is_empty()).count(),
    );
    for source in &draft.sources {
        eprintln!("  {source}");
    }
    if !low.is_empty() {
        eprintln!("low: {low}");
    }
    if !missing.is_empty() {
        eprintln!("missing: {missing}");
    }
    if let Some(out) = &args.out {
        eprintln!(
            "wrote {}; check it with `tapwire read {} --map {}`",
            out.display(),
            args.from.display(),
            out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn files_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into(),
    )
}

/// The version from what `tapwire dump` saved: `versionName=` in `*.package.txt`, else the
/// `wechat` field of its `*.json` (dumps saved before the package text was). The dumps of one
/// draft must come from one build.
fn version_from_files(dir: &Path, files: &[PathBuf]) -> anyhow::Result<(Version, String)> {
    let mut found: Vec<(String, String)> = Vec::new();
    for path in files {
        let name = file_name(path);
        let version = if name.ends_with(".package.txt") {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            parse_version_name(&text).map(|v| (format!("versionName={v} in {name}"), v))
        } else if name.ends_with(".json") {
            std::fs::read_to_string(path)
                .ok()
                .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
                .and_then(|json| json["wechat"].as_str().map(str::to_string))
                .map(|v| (format!("\"wechat\": \"{v}\" in {name}"), v))
        } else {
            None
        };
        if let Some((source, version)) = version {
            found.push((version, source));
        }
    }
    // The package text is what the phone printed; the JSON only repeats what was parsed
    // from it, so it speaks only for dumps saved without one.
    if found
        .iter()
        .any(|(_, source)| source.starts_with("versionName="))
    {
        found.retain(|(_, source)| source.starts_with("versionName="));
    }
    let mut versions: Vec<&str> = found.iter().map(|(v, _)| v.as_str()).collect();
    versions.sort_unstable();
    versions.dedup();
    match versions.as_slice() {
        [] => anyhow::bail!(
            "no WeChat version for the dumps in {}: it holds no *.package.txt (`tapwire dump` \
             saves one beside each dump); give the version with --version, e.g. --version 8.0.50",
            dir.display()
        ),
        [one] => {
            let version = Version::parse(one)?;
            let source = found
                .iter()
                .find(|(v, _)| v == one)
                .map(|(_, s)| s.clone())
                .unwrap_or_default();
            Ok((version, source))
        }
        several => anyhow::bail!(
            "the dumps in {} come from several WeChat versions ({}): draft from one build at a \
             time, or pick one with --version",
            dir.display(),
            several.join(", ")
        ),
    }
}
