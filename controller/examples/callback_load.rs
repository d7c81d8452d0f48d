//! Load generator for WeCom encrypted callbacks (issue 15's callback benchmark), run as
//! its own process so the server under test shares nothing with it but the loopback.
//!
//! `callback_load drive URL`: pre-builds distinct callbacks as WeCom posts them (unique
//! nonce and MsgId, timestamp now; encrypted and signed with `tapwire::adapter::wecom_crypto`
//! and WeCom's documented example token, key and corp id), then either
//! - `--rate 0` (full speed): `--concurrency` connections, each sending its next request as
//!   soon as the last one is answered, for `--seconds`; or
//! - `--rate R`: open loop, request i due at start + i/R whatever is still outstanding
//!   (one scheduling thread sends on time; a late answer does not delay the next send),
//!   latency counted from when the request was due, so queueing is not hidden
//!   (no coordinated omission).
//!
//! Latencies go into an HDR histogram; it prints one line of requests/s, p50, p99 and
//! errors. Any server answering 2xx counts as done; a non-empty answer must be a passive
//! reply encrypted for the same app (checked on the first one: decrypted and compared).
//!
//! `callback_load stand-in`: a loopback stand-in for qyapi.weixin.qq.com (gettoken and
//! message/send), for Tapwire's active replies; `GET /stats` tells how many sends it got.
//!
//! See `scripts/bench` (`BENCH=callback`) for how the two are used.

#![allow(clippy::print_stdout)] // a benchmark's report

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use tapwire::adapter::wecom_crypto::{WeComCrypto, extract_xml_encrypt};

/// WeCom's documented example callback secrets (document 91144 and its SDK samples),
/// also used by `controller/tests/wecom_app.rs`.
pub const TOKEN: &str = "QDG6eK";
pub const KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
pub const CORP_ID: &str = "wx5823bf96d3bd56c7";
pub const AGENT_ID: u32 = 1000002;
/// Distinct members writing to the app (each member is a conversation of its own).
const MEMBERS: usize = 200;

#[derive(Parser)]
#[command(about = "WeCom callback load generator and qyapi stand-in")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Send signed, encrypted callbacks to URL.
    Drive {
        url: String,
        /// Requests per second, open loop; 0 = full speed with --concurrency connections.
        #[arg(long, default_value_t = 0)]
        rate: u64,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Measured seconds.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Seconds of the same load before measuring, not counted.
        #[arg(long, default_value_t = 2)]
        warmup: u64,
        /// Callbacks to pre-build; default: enough for the run (full speed: 150 000, then
        /// they repeat, which a server that dedups by MsgId answers without routing).
        #[arg(long)]
        count: Option<usize>,
        /// Worker threads of the generator's runtime.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Label for the printed line.
        #[arg(long, default_value = "run")]
        label: String,
    },
    /// Serve a stand-in for WeCom's API on 127.0.0.1:PORT (0: any), printing its URL.
    StandIn {
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Answer every request 200 with an empty body and do nothing else, on
    /// 127.0.0.1:PORT: the most callbacks any server can answer on this machine with
    /// this generator beside it (no signature, no AES, no XML, no store).
    Ceiling {
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Worker threads (the machine's cores by default, as `tapwire run` has).
        #[arg(long)]
        threads: Option<usize>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Drive {
            url,
            rate,
            concurrency,
            seconds,
            warmup,
            count,
            threads,
            label,
        } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads.max(1))
                .enable_all()
                .build()?;
            let count = count.unwrap_or(if rate == 0 {
                150_000
            } else {
                usize::try_from(rate * (seconds + warmup))? + 1
            });
            let plan = Plan {
                url,
                rate,
                concurrency: concurrency.max(1),
                seconds,
                warmup,
                label,
            };
            runtime.block_on(drive(plan, count))
        }
        Cmd::StandIn { port } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?;
            runtime.block_on(stand_in(port))
        }
        Cmd::Ceiling { port, threads } => {
            let mut runtime = tokio::runtime::Builder::new_multi_thread();
            if let Some(threads) = threads {
                runtime.worker_threads(threads.max(1));
            }
            runtime.enable_all().build()?.block_on(ceiling(port))
        }
    }
}

async fn ceiling(port: u16) -> anyhow::Result<()> {
    let app = axum::Router::new().fallback(|| async { "" });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("ceiling listening http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

struct Plan {
    url: String,
    rate: u64,
    concurrency: usize,
    seconds: u64,
    warmup: u64,
    label: String,
}

/// One callback ready to send: the full URL with its signed query, and the XML body.
struct Callback {
    url: String,
    body: axum::body::Bytes,
}

/// A text message from member `i % MEMBERS`, as WeCom posts it (90239 text message inside
/// the 90930 envelope: `ToUserName`, `Encrypt`, `AgentID`; signature over the ciphertext).
fn build(crypto: &WeComCrypto, base: &str, i: usize, msg_id: u64, now: u64) -> Callback {
    let from = format!("member{}", i % MEMBERS);
    let plain = format!(
        "<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[{from}]]></FromUserName><CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[压测消息 {i}]]></Content><MsgId>{msg_id}</MsgId><AgentID>{AGENT_ID}</AgentID></xml>"
    );
    // The nonce: digits, unique per request (WeCom's are random digits).
    let nonce = format!("{}{:06}", i, fastrand::u32(..1_000_000));
    let sealed = crypto
        .encrypt(&plain, &now.to_string(), &nonce)
        .expect("encrypting a short message cannot fail");
    let sep = if base.contains('?') { '&' } else { '?' };
    Callback {
        url: format!(
            "{base}{sep}msg_signature={}&timestamp={}&nonce={}",
            sealed.signature, sealed.timestamp, sealed.nonce
        ),
        body: format!(
            "<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{}]]></Encrypt><AgentID><![CDATA[{AGENT_ID}]]></AgentID></xml>",
            sealed.encrypt
        )
        .into(),
    }
}

/// Checks a passive reply: an encrypted envelope, signed, decrypting to XML that answers
/// `member0` with the text sent (what an echoing server replies).
fn check_reply(crypto: &WeComCrypto, body: &str) -> anyhow::Result<String> {
    let field = |name: &str| -> anyhow::Result<String> {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let start = body
            .find(&open)
            .with_context(|| format!("reply has no <{name}>: {body}"))?
            + open.len();
        let end = body[start..]
            .find(&close)
            .with_context(|| format!("reply's <{name}> is not closed"))?
            + start;
        let value = &body[start..end];
        Ok(value
            .strip_prefix("<![CDATA[")
            .and_then(|v| v.strip_suffix("]]>"))
            .unwrap_or(value)
            .to_string())
    };
    let encrypt = extract_xml_encrypt(body)?;
    let plain = crypto.decrypt(
        &field("MsgSignature")?,
        &field("TimeStamp")?,
        &field("Nonce")?,
        &encrypt,
    )?;
    if !plain.contains("<ToUserName><![CDATA[member0]]></ToUserName>")
        || !plain.contains("压测消息 0")
    {
        bail!("the reply does not answer the callback: {plain}");
    }
    Ok(plain)
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 60 s, 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

struct Shared {
    client: reqwest::Client,
    callbacks: Vec<Callback>,
    next: AtomicUsize,
    errors: AtomicU64,
    /// Callbacks answered with a passive reply the first time they were sent: their
    /// answers will not reach the stand-in's message/send.
    passive: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Shared {
    /// The next callback, and whether it is sent for the first time.
    fn next(&self) -> (&Callback, bool) {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        (
            &self.callbacks[i % self.callbacks.len()],
            i < self.callbacks.len(),
        )
    }

    /// Sends one callback; true if answered 2xx and read to the end.
    async fn send(&self, (callback, first): (&Callback, bool)) -> bool {
        let result = async {
            let response = self
                .client
                .post(&callback.url)
                .header("content-type", "text/xml")
                .body(callback.body.clone())
                .send()
                .await?;
            let status = response.status();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        }
        .await;
        let problem = match result {
            Ok((status, body)) if status.is_success() => {
                if first && !body.is_empty() {
                    self.passive.fetch_add(1, Ordering::Relaxed);
                }
                return true;
            }
            Ok((status, body)) => format!("HTTP {status}: {}", String::from_utf8_lossy(&body)),
            Err(error) => tapwire::http::error_chain(error),
        };
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.first_error
            .lock()
            .expect("lock")
            .get_or_insert(problem);
        false
    }
}

async fn drive(plan: Plan, count: usize) -> anyhow::Result<()> {
    let crypto = WeComCrypto::new(TOKEN, KEY, CORP_ID)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    // MsgIds unique across runs against the same store: the clock in µs, then the index.
    let first_id = SystemTime::now().duration_since(UNIX_EPOCH)?.as_micros() as u64 * 1000;
    let built = Instant::now();
    let callbacks: Vec<Callback> = (0..count)
        .map(|i| build(&crypto, &plan.url, i, first_id + i as u64, now))
        .collect();
    eprintln!(
        "{}: {} callbacks built in {:.1} s",
        plan.label,
        count,
        built.elapsed().as_secs_f64()
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .build()?;

    // One request first, outside the figures: the server answers, and a passive reply,
    // if any, is what WeCom would accept.
    let first = &callbacks[0];
    let answer = client
        .post(&first.url)
        .header("content-type", "text/xml")
        .body(first.body.clone())
        .send()
        .await
        .with_context(|| format!("{} does not answer", plan.url))?;
    let status = answer.status();
    let body = answer.text().await?;
    if !status.is_success() {
        bail!("first callback answered HTTP {status}: {body}");
    }
    let reply = if body.is_empty() {
        "empty body (no passive reply)".to_string()
    } else {
        check_reply(&crypto, &body)?;
        format!(
            "encrypted passive reply, {} bytes, decrypted and checked",
            body.len()
        )
    };
    eprintln!("{}: first answer: HTTP {status}, {reply}", plan.label);
    let first_was_passive = !body.is_empty();

    let shared = Arc::new(Shared {
        client,
        callbacks,
        next: AtomicUsize::new(1),
        errors: AtomicU64::new(0),
        passive: AtomicU64::new(u64::from(first_was_passive)),
        first_error: Mutex::new(None),
    });
    let (histogram, seconds, sent, errors) = if plan.rate == 0 {
        full_speed(&shared, &plan).await
    } else {
        open_loop(&shared, &plan).await?
    };
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    let mode = if plan.rate == 0 {
        format!("full speed, {} connections", plan.concurrency)
    } else {
        format!("open loop at {}/s", plan.rate)
    };
    let taken = shared.next.load(Ordering::Relaxed);
    let repeated = taken.saturating_sub(shared.callbacks.len());
    let unique = taken.min(shared.callbacks.len());
    println!(
        "{label}: {mode}: {sent} requests in {seconds:.1} s = {rps:.0} req/s; p50 {p50:.2} ms, p90 {p90:.2} ms, p99 {p99:.2} ms, p99.9 {p999:.2} ms, max {max:.2} ms; errors {errors}; repeated callbacks {repeated}; unique callbacks {unique} (warm-up included); passive replies {passive}",
        label = plan.label,
        passive = shared.passive.load(Ordering::Relaxed),
        rps = sent as f64 / seconds,
        p50 = ms(0.50),
        p90 = ms(0.90),
        p99 = ms(0.99),
        p999 = ms(0.999),
        max = histogram.max() as f64 / 1000.0,
    );
    if let Some(error) = shared.first_error.lock().expect("lock").as_ref() {
        println!("{}: first error: {error}", plan.label);
    }
    Ok(())
}

/// `concurrency` loops, each sending its next request when the last is answered.
/// Returns (latencies, measured seconds, requests answered in them, errors in them).
async fn full_speed(shared: &Arc<Shared>, plan: &Plan) -> (Histogram<u64>, f64, u64, u64) {
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(plan.warmup);
    let end = measure_from + Duration::from_secs(plan.seconds);
    let tasks: Vec<_> = (0..plan.concurrency)
        .map(|_| {
            let shared = shared.clone();
            tokio::spawn(async move {
                let mut histogram = histogram();
                let mut errors = 0u64;
                loop {
                    let sent = Instant::now();
                    if sent >= end {
                        break;
                    }
                    let ok = shared.send(shared.next()).await;
                    if sent >= measure_from {
                        if ok {
                            let _ = histogram.record(sent.elapsed().as_micros() as u64);
                        } else {
                            errors += 1;
                        }
                    }
                }
                (histogram, errors)
            })
        })
        .collect();
    let mut all = histogram();
    let mut errors = 0;
    for task in tasks {
        if let Ok((histogram, e)) = task.await {
            let _ = all.add(&histogram);
            errors += e;
        }
    }
    // Requests sent before `end` finish after it: the window runs to the last answer.
    let seconds = (Instant::now() - measure_from).as_secs_f64();
    let answered = all.len();
    (all, seconds, answered + errors, errors)
}

/// Request i due at start + i/rate; latency from when it was due.
async fn open_loop(
    shared: &Arc<Shared>,
    plan: &Plan,
) -> anyhow::Result<(Histogram<u64>, f64, u64, u64)> {
    let handle = tokio::runtime::Handle::current();
    let results = Arc::new(Mutex::new((histogram(), 0u64, 0u64)));
    let outstanding = Arc::new(AtomicU64::new(0));
    let max_outstanding = Arc::new(AtomicU64::new(0));
    let period = Duration::from_secs_f64(1.0 / plan.rate as f64);
    let warmup_requests = plan.rate * plan.warmup;
    let total = plan.rate * (plan.warmup + plan.seconds);
    let scheduler = {
        let shared = shared.clone();
        let results = results.clone();
        let outstanding = outstanding.clone();
        let max_outstanding = max_outstanding.clone();
        // A thread of its own, sleeping with the OS's fine timers (tokio's are 1 ms).
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut max_lag = Duration::ZERO;
            for i in 0..total {
                let due = start + period.mul_f64(i as f64);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                } else {
                    max_lag = max_lag.max(now - due);
                }
                let shared = shared.clone();
                let results = results.clone();
                let outstanding = outstanding.clone();
                let now_out = outstanding.fetch_add(1, Ordering::Relaxed) + 1;
                if i >= warmup_requests {
                    max_outstanding.fetch_max(now_out, Ordering::Relaxed);
                }
                handle.spawn(async move {
                    let ok = shared.send(shared.next()).await;
                    let latency = due.elapsed();
                    outstanding.fetch_sub(1, Ordering::Relaxed);
                    if i >= warmup_requests {
                        let mut results = results.lock().expect("lock");
                        if ok {
                            let _ = results.0.record(latency.as_micros() as u64);
                        } else {
                            results.2 += 1;
                        }
                        results.1 += 1;
                    }
                });
            }
            (start, max_lag)
        })
    };
    let (start, max_lag) = tokio::task::spawn_blocking(move || scheduler.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the scheduling thread panicked"))?;
    let last_due = start + period.mul_f64(total as f64);
    // Wait for what is still outstanding (up to the client's timeout).
    let deadline = Instant::now() + Duration::from_secs(35);
    while outstanding.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let measured_from = start + period.mul_f64(warmup_requests as f64);
    let seconds = (Instant::now().max(last_due) - measured_from).as_secs_f64();
    eprintln!(
        "{}: open loop: sends at most {:.2} ms late; at most {} outstanding; {:.2} s from first measured send to last answer",
        plan.label,
        max_lag.as_secs_f64() * 1000.0,
        max_outstanding.load(Ordering::Relaxed),
        seconds
    );
    let results = results.lock().expect("lock");
    // Throughput of an open loop is the offered rate if it kept up; report what was
    // answered over the time it took.
    Ok((results.0.clone(), seconds, results.1, results.2))
}

/// gettoken hands out one token; message/send counts what it gets and says ok.
async fn stand_in(port: u16) -> anyhow::Result<()> {
    use axum::routing::{get, post};
    let sends = Arc::new(AtomicU64::new(0));
    let app = axum::Router::new()
        .route(
            "/cgi-bin/gettoken",
            get(|| async {
                axum::Json(serde_json::json!({"errcode": 0, "errmsg": "ok", "access_token": "bench-token", "expires_in": 7200}))
            }),
        )
        .route(
            "/cgi-bin/message/send",
            post({
                let sends = sends.clone();
                move |body: axum::body::Bytes| {
                    let sends = sends.clone();
                    async move {
                        if serde_json::from_slice::<serde_json::Value>(&body).is_ok() {
                            sends.fetch_add(1, Ordering::Relaxed);
                        }
                        axum::Json(serde_json::json!({"errcode": 0, "errmsg": "ok", "invaliduser": ""}))
                    }
                }
            }),
        )
        .route(
            "/stats",
            get({
                let sends = sends.clone();
                move || {
                    let sends = sends.clone();
                    async move { axum::Json(serde_json::json!({"sends": sends.load(Ordering::Relaxed)})) }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("stand-in listening http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
