//! `tapwire config check FILE`: validate a configuration without starting anything.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use tapwire::config::Config;
use tapwire::pipeline::HandlerKind;

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a tapwire.toml: syntax, fields, `${NAME}` variables, routes. Errors name
    /// file, line and column; the exit code is non-zero when there is one.
    Check {
        #[arg(default_value = "tapwire.toml")]
        file: PathBuf,
    },
}

#[allow(clippy::print_stdout)] // CLI output.
pub fn run(args: ConfigArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        ConfigCommand::Check { file } => {
            let config = Config::load(&file)?;
            let router = config.router(HandlerKind::Echo)?;
            println!(
                "{}: ok ({} phone(s), {} route(s))",
                file.display(),
                config.phones.len(),
                router.route_count()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
