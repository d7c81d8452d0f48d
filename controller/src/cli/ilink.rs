//! `tapwire ilink login`: logs a Weixin iLink bot in. The QR code is shown in the
//! terminal and saved as a PNG; once WeChat confirms, the bot's token and API address
//! are stored in the database, where `tapwire run` finds them (a run whose session
//! expired picks the new login up by itself).

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use tapwire::adapter::AdapterConfig;
use tapwire::adapter::ilink::IlinkConfig;
use tapwire::adapter::ilink::api::Api;
use tapwire::adapter::ilink::login::{self, LoginOptions, Outcome};
use tapwire::adapter::ilink::state::Saved;
use tapwire::config::Config;
use tapwire::store;

#[derive(Debug, Args)]
pub struct IlinkArgs {
    #[command(subcommand)]
    pub command: IlinkCommand,
}

#[derive(Debug, Subcommand)]
pub enum IlinkCommand {
    /// Scan a QR code with WeChat to log the bot in; its token is stored for `run`.
    Login {
        /// The `type = "ilink"` adapter to log in (default: the config's only one).
        #[arg(long)]
        adapter: Option<String>,
        /// The config declaring the adapter; its storage.path is where the login goes.
        #[arg(long, default_value = "tapwire.toml")]
        config: PathBuf,
        /// The database, when not the config's storage.path.
        #[arg(long)]
        db: Option<PathBuf>,
        /// Where to save the QR code as a PNG (default: ilink-<adapter>-qr.png here).
        #[arg(long)]
        png: Option<PathBuf>,
    },
}

pub fn run(args: IlinkArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    match args.command {
        IlinkCommand::Login {
            adapter,
            config,
            db,
            png,
        } => runtime.block_on(login_command(adapter, config, db, png)),
    }
}

/// The adapter named, or the only `ilink` one.
fn pick<'c>(config: &'c Config, name: Option<&str>) -> anyhow::Result<(String, &'c IlinkConfig)> {
    let ilinks: Vec<(&String, &IlinkConfig)> = config
        .adapters
        .iter()
        .filter_map(|(n, a)| match a {
            AdapterConfig::Ilink(ilink) => Some((n, ilink)),
            _ => None,
        })
        .collect();
    match name {
        Some(name) => match ilinks.iter().find(|(n, _)| n.as_str() == name) {
            Some((n, c)) => Ok(((*n).clone(), *c)),
            None => bail!(
                "the config has no `type = \"ilink\"` adapter named {name:?} (it has: {})",
                names(&ilinks)
            ),
        },
        None => match ilinks.as_slice() {
            [(n, c)] => Ok(((*n).clone(), *c)),
            [] => bail!(
                "the config declares no `type = \"ilink\"` adapter; add one:\n[adapters.wx]\ntype = \"ilink\""
            ),
            _ => bail!(
                "the config has several iLink adapters ({}); name one with --adapter",
                names(&ilinks)
            ),
        },
    }
}

fn names(ilinks: &[(&String, &IlinkConfig)]) -> String {
    if ilinks.is_empty() {
        return "none".into();
    }
    ilinks
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[allow(clippy::print_stdout)] // CLI output.
async fn login_command(
    adapter: Option<String>,
    config_path: PathBuf,
    db: Option<PathBuf>,
    png: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let config = Config::load(&config_path)?;
    let (name, section) = pick(&config, adapter.as_deref())?;
    let storage = match db {
        Some(db) => super::run::sqlite_at(db),
        None => config.storage.clone(),
    };
    let store = store::open(&storage)
        .await
        .context("cannot open the database")?;
    if section.token.is_some() {
        tracing::warn!(adapter = %name, "this adapter's config sets `token`, which `run` uses instead of the login stored now");
    }
    let options = LoginOptions {
        base: section.login_base().map_err(anyhow::Error::msg)?,
        bot_type: section.bot_type,
        png: png.unwrap_or_else(|| PathBuf::from(format!("ilink-{name}-qr.png"))),
        timeout: login::LOGIN_TIMEOUT,
        pause: login::POLL_PAUSE,
    };
    let mut stdout = std::io::stdout();
    let mut ask = |prompt: &str| {
        print!("{prompt}");
        let _ = std::io::Write::flush(&mut std::io::stdout());
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).ok()?;
        Some(line.trim().to_string()).filter(|l| !l.is_empty())
    };
    let outcome = login::login(&Api::new(), &options, &mut stdout, &mut ask)
        .await
        .context("the iLink login failed")?;
    match outcome {
        Outcome::LoggedIn(login) => {
            Saved::new(store, &name)
                .put_login(&login)
                .await
                .context("cannot store the login")?;
            println!(
                "Logged in: bot {} (API at {}). The token is stored for adapter {name:?}: `tapwire run` uses it (restart one that is running, unless its session had expired: that one picks it up by itself).",
                login.bot_id, login.base_url
            );
        }
        Outcome::AlreadyBound => {
            println!("Nothing changed: the stored login of adapter {name:?} stays in use.");
        }
    }
    Ok(ExitCode::SUCCESS)
}
