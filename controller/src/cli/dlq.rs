//! `tapwire dlq list|replay|drop`: the events a handler gave up on. A replay delivers
//! the event to its handler again, now; the actions it answers with join the outbox,
//! which a running `tapwire run` sends within a second (or the next one, at start).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use tapwire::config::Config;
use tapwire::handler::{HandlerConfig, Webhook, resolve};
use tapwire::store::{self, DeadLetter};

#[derive(Debug, Args)]
pub struct DlqArgs {
    /// The config whose handlers replay uses, and whose storage.path is the database.
    #[arg(long, default_value = "tapwire.toml", global = true)]
    pub config: PathBuf,
    /// The database, when not the config's.
    #[arg(long, global = true)]
    pub db: Option<PathBuf>,
    #[command(subcommand)]
    pub command: DlqCommand,
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// The dead letters waiting, oldest first.
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Deliver dead letters to their handler again: the ids given, or --all.
    Replay {
        ids: Vec<String>,
        #[arg(long)]
        all: bool,
    },
    /// Forget dead letters for good.
    Drop { ids: Vec<String> },
}

pub fn run(args: DlqArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(run_async(args))
}

fn load_config(path: &std::path::Path) -> anyhow::Result<Option<Config>> {
    if !path.exists() {
        return Ok(None);
    }
    Ok(Some(Config::load(path)?))
}

#[allow(clippy::print_stdout)] // CLI output.
async fn run_async(args: DlqArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(&args.config)?;
    let storage = match (&args.db, &config) {
        (Some(db), _) => super::run::sqlite_at(db.clone()),
        (None, Some(config)) => config.storage.clone(),
        (None, None) => Default::default(),
    };
    let store = store::open(&storage)
        .await
        .context("cannot open the database")?;
    let letters = store.dead_letters().await?;
    match args.command {
        DlqCommand::List { json } => {
            if letters.is_empty() && !json {
                println!("no dead letters");
            }
            for letter in &letters {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "id": letter.id,
                            "handler": letter.handler,
                            "attempts": letter.attempts,
                            "error": letter.error,
                            "created_at": letter.created_at,
                            "event": letter.event,
                        })
                    );
                } else {
                    println!(
                        "{}  {}  {}  {} attempt(s)  {}  {}",
                        letter.id,
                        letter.created_at,
                        letter.handler,
                        letter.attempts,
                        letter.event.event_type,
                        letter.error
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        DlqCommand::Drop { ids } => {
            let mut missing = false;
            for id in ids {
                if store.drop_dead_letter(&id).await? {
                    println!("{id}: dropped");
                } else {
                    missing = true;
                    eprintln!("{id}: no such dead letter waiting");
                }
            }
            Ok(exit(missing))
        }
        DlqCommand::Replay { ids, all } => {
            let chosen: Vec<&DeadLetter> = if all {
                letters.iter().collect()
            } else {
                let mut chosen = Vec::new();
                for id in &ids {
                    match letters.iter().find(|l| &l.id == id) {
                        Some(letter) => chosen.push(letter),
                        None => anyhow::bail!(
                            "{id}: no such dead letter waiting (see tapwire dlq list)"
                        ),
                    }
                }
                chosen
            };
            let Some(config) = config else {
                anyhow::bail!(
                    "replay needs the handlers' config: {} does not exist (use --config)",
                    args.config.display()
                );
            };
            let mut failed = false;
            for letter in chosen {
                let webhook = match config.handlers.get(&letter.handler) {
                    Some(HandlerConfig::Webhook(w)) => Webhook::new(&letter.handler, w.clone())?,
                    _ => anyhow::bail!(
                        "{}: handler {:?} is not a webhook in {}",
                        letter.id,
                        letter.handler,
                        args.config.display()
                    ),
                };
                match webhook.deliver(&letter.event).await {
                    Ok(delivery) => {
                        let actions = resolve(delivery.actions, &letter.event);
                        let stored = store.resolve_dead_letter(letter, &actions).await?;
                        println!(
                            "{}: delivered to {} after {} attempt(s); {} action(s) queued",
                            letter.id,
                            letter.handler,
                            delivery.attempts,
                            stored.len()
                        );
                    }
                    Err(error) => {
                        failed = true;
                        store
                            .retry_failed(letter, &error.to_string(), error.attempts())
                            .await?;
                        eprintln!("{}: still failing: {error}", letter.id);
                    }
                }
            }
            Ok(exit(failed))
        }
    }
}

fn exit(failed: bool) -> ExitCode {
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
