//! The shell's own words that need no program: `true`, `false`, `exit`, `sleep`, and the
//! environment and directory builtins, which change nothing later commands here depend on.

use std::time::Duration;

use super::CmdOutput;

/// `true`, `export`, `unset`, `set`, `cd` and `:`.
pub(super) fn succeed() -> CmdOutput {
    CmdOutput::default()
}

/// `false`.
pub(super) fn fail() -> CmdOutput {
    CmdOutput::err("", 1)
}

pub(super) fn exit(args: &[&str]) -> CmdOutput {
    CmdOutput::err("", args.first().and_then(|a| a.parse().ok()).unwrap_or(0))
}

/// Capped at 30 s so a stray `sleep 1000` cannot hold a test's stream open.
pub(super) async fn sleep(args: &[&str]) -> CmdOutput {
    let secs: f64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(0.0);
    tokio::time::sleep(Duration::from_secs_f64(secs.clamp(0.0, 30.0))).await;
    CmdOutput::default()
}
