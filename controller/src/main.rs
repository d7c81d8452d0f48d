//! `tapwire`: the controller's command line.

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    one_openmp_thread();
    let args = cli::Cli::parse();
    cli::init_tracing(args.verbose);
    match cli::run(args) {
        Ok(code) => code,
        Err(error) => {
            // The one place where errors meet the user: print the whole chain.
            tracing::debug!(?error, "command failed");
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Tesseract's OpenMP threads spin while they wait: on the small crops the vision reader
/// hands it, two threads are several times slower than one (docs/benchmarks.md). libgomp
/// reads `OMP_THREAD_LIMIT` once, when the program loads, so the binary starts itself again
/// with it (same process id: `exec`) unless the user chose a value.
fn one_openmp_thread() {
    #[cfg(unix)]
    if std::env::var_os("OMP_THREAD_LIMIT").is_none()
        && let Ok(exe) = std::env::current_exe()
    {
        use std::os::unix::process::CommandExt;
        let error = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env("OMP_THREAD_LIMIT", "1")
            .exec();
        // Not fatal: the reader only runs slower.
        eprintln!("warning: could not restart with OMP_THREAD_LIMIT=1: {error}");
    }
}
