//! `tapwire config check FILE`: validate a configuration, and the plugins it names,
//! without starting anything.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use tapwire::config::Config;
use tapwire::plugin;

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a tapwire.toml: syntax, fields, `${NAME}` variables, routes, handlers,
    /// schedules, permissions and the plugins directory. Every error is listed with file,
    /// line and column; the exit code is non-zero when there is one.
    Check {
        #[arg(default_value = "tapwire.toml")]
        file: PathBuf,
    },
}

#[allow(clippy::print_stdout, clippy::print_stderr)] // CLI output.
pub fn run(args: ConfigArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        ConfigCommand::Check { file } => {
            let mut errors: Vec<String> = Vec::new();
            let config = match Config::load(&file) {
                Ok(config) => Some(config),
                Err(e) => {
                    errors.extend(e.0.iter().map(ToString::to_string));
                    None
                }
            };
            let mut plugins = 0;
            if let Some(config) = &config {
                match plugin::load_dir(&config.plugins_dir()) {
                    Ok(manifests) => {
                        plugins = manifests.len();
                        if let Err(e) = config.check_with_plugins(&manifests) {
                            errors.extend(e.0.iter().map(ToString::to_string));
                        }
                    }
                    Err(e) => errors.extend(e.iter().map(ToString::to_string)),
                }
            }
            if !errors.is_empty() {
                for error in &errors {
                    eprintln!("{error}");
                }
                eprintln!("{}: {} error(s)", file.display(), errors.len());
                return Ok(ExitCode::FAILURE);
            }
            if let Some(config) = config {
                println!(
                    "{}: ok ({} phone(s), {} adapter(s), {} route(s), {} handler(s), {} schedule(s), {} plugin(s))",
                    file.display(),
                    config.phones.len(),
                    config.adapters.len(),
                    config.routes.len(),
                    config.handlers.len(),
                    config.schedules.len(),
                    plugins,
                );
                for phone in &config.phones {
                    println!("  phone {}: pacing {}", phone.serial, phone.pacing);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
