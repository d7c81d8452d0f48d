//! Latency of `POST /api/v1/messages` (issue 17's API send benchmark): each request has
//! a distinct `Idempotency-Key`, so each is a new action written to the outbox before
//! the 202 comes back. Run as its own process against a running `tapwire run` whose
//! API is on and which has the named target (a WeCom robot posting to a stand-in, say).
//!
//! `api_load URL --token T --target robot --conversation room --requests 2000
//! --concurrency 1`: `--concurrency` connections each send their next request when the
//! last is answered; latencies go into an HDR histogram; it prints requests/s, p50, p99,
//! max and errors (anything but 202).

#![allow(clippy::print_stdout)] // a benchmark's report

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use hdrhistogram::Histogram;

#[derive(Parser)]
#[command(about = "REST API send latency")]
struct Cli {
    /// The server, e.g. http://127.0.0.1:8787
    url: String,
    #[arg(long, env = "TAPWIRE_API_TOKEN")]
    token: String,
    #[arg(long, default_value = "robot")]
    target: String,
    #[arg(long, default_value = "room")]
    conversation: String,
    /// Measured requests (after 100 warm-up ones).
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let client = reqwest::Client::new();
    let url = format!("{}/api/v1/messages", cli.url.trim_end_matches('/'));
    let run = format!("{:x}", fastrand::u64(..));
    let send = |i: usize| {
        let request = client
            .post(&url)
            .bearer_auth(&cli.token)
            .header("Idempotency-Key", format!("load-{run}-{i}"))
            .json(&serde_json::json!({
                "target": cli.target,
                "conversation": cli.conversation,
                "text": format!("load {i}"),
            }));
        async move {
            let started = Instant::now();
            let ok = request
                .send()
                .await
                .is_ok_and(|r| r.status() == reqwest::StatusCode::ACCEPTED);
            (ok, started.elapsed())
        }
    };
    for i in 0..100 {
        let (ok, _) = send(usize::MAX - i).await;
        anyhow::ensure!(ok, "warm-up request {i} was not accepted (token, target?)");
    }
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let histogram = Arc::new(std::sync::Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).context("histogram")?,
    ));
    let started = Instant::now();
    let workers = (0..cli.concurrency.max(1)).map(|_| {
        let (next, errors, histogram, send, cli) = (&next, &errors, &histogram, &send, &cli);
        async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= cli.requests {
                    break;
                }
                let (ok, took) = send(i).await;
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
                if let Ok(mut h) = histogram.lock() {
                    let _ = h.record(micros.max(1));
                }
            }
        }
    });
    futures_util::future::join_all(workers).await;
    let elapsed = started.elapsed();
    let h = histogram.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let ms = |us: u64| Duration::from_micros(us).as_secs_f64() * 1000.0;
    println!(
        "{} requests, concurrency {}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, errors {}",
        cli.requests,
        cli.concurrency,
        cli.requests as f64 / elapsed.as_secs_f64(),
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max()),
        errors.load(Ordering::Relaxed)
    );
    Ok(())
}
