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
/// reads `OMP_THREAD_LIMIT` when it is loaded, which is when the first screenshot is read
/// (libtesseract is opened then, not linked), so setting it here is early enough; a value
/// the user chose is kept.
#[allow(unsafe_code)]
fn one_openmp_thread() {
    if std::env::var_os("OMP_THREAD_LIMIT").is_none() {
        // SAFETY: the first statement of `main`: no other thread exists yet to read or
        // write the environment at the same time.
        unsafe { std::env::set_var("OMP_THREAD_LIMIT", "1") };
    }
}
