//! `GET /metrics`: everything `telemetry` (and the device side's) recorded, in the
//! Prometheus text format, rendered by `metrics-exporter-prometheus` on this server rather
//! than on a listener of its own. At each scrape it first reads what others already keep:
//! the store's backlog (outbox depth and oldest age per target, dead letters waiting) and
//! each adapter's refused callbacks ([`Adapter::rejections`]).
//!
//! The recorder is process-wide (the `metrics` facade has one), so [`install`] runs once,
//! before the runtime starts, and what is recorded before it is lost.
//!
//! [`Adapter::rejections`]: crate::adapter::Adapter::rejections

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics::{counter, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::runtime::Runtime;
use crate::store::Backlog;
use crate::telemetry;

/// The content type of the Prometheus text format, version 0.0.4.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Handler latency: a command answers in milliseconds, a webhook or an LLM in seconds,
/// and the deadline cancels at two minutes.
const HANDLER_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];
/// ADB calls: a tap takes tens of milliseconds, a dump 0.3-2 s on a real phone (DESIGN.md
/// §4), more on a busy screen.
const ADB_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
];

/// How often histograms are drained when nobody scrapes (the recorder keeps samples until
/// then).
const UPKEEP: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// Installs the process's Prometheus recorder (once; later calls return the same
/// handle) and gives every metric its help text.
pub fn install() -> Result<PrometheusHandle, String> {
    HANDLE
        .get_or_init(|| {
            let recorder = builder()
                .map_err(|e| format!("cannot set up the metrics recorder: {e}"))?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder)
                .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
            telemetry::describe();
            Ok(handle)
        })
        .clone()
}

/// Drains histogram samples now and then, for as long as the process runs; needs tokio.
pub fn spawn_upkeep(handle: PrometheusHandle) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(UPKEEP);
        loop {
            tick.tick().await;
            handle.run_upkeep();
        }
    });
}

fn builder() -> Result<PrometheusBuilder, metrics_exporter_prometheus::BuildError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(telemetry::HANDLER_SECONDS.into()),
            HANDLER_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(tapwire_device_agent::telemetry::ADB_CALL_SECONDS.into()),
            ADB_BUCKETS,
        )
}

/// The route: scrape-time values first, then the text.
pub async fn scrape(State(runtime): State<Arc<Runtime>>) -> Response {
    let Some(Ok(handle)) = HANDLE.get() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics are not recorded in this process\n",
        )
            .into_response();
    };
    if let Err(error) = collect(&runtime).await {
        // The counters recorded as things happened are still worth showing.
        tracing::warn!(%error, "metrics: cannot read the store's backlog");
    }
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], handle.render()).into_response()
}

/// Sets what is read at scrape time: each adapter's refusals, the outbox and the
/// dead-letter queue.
async fn collect(runtime: &Runtime) -> Result<(), crate::store::StoreError> {
    let adapters = runtime.adapters();
    for adapter in &adapters {
        for (reason, count) in adapter.rejections() {
            counter!(
                telemetry::CALLBACK_REJECTIONS,
                "adapter" => adapter.name().to_string(),
                "reason" => reason.as_str()
            )
            .absolute(count);
        }
    }
    let backlog = runtime.store().backlog().await?;
    let names: Vec<&str> = adapters.iter().map(|a| a.name()).collect();
    publish_backlog(&backlog, &names, SystemTime::now());
    Ok(())
}

/// Every connected adapter shows a depth (0 when nothing waits for it), and so does a
/// target with work waiting that is not connected now.
fn publish_backlog(backlog: &Backlog, adapters: &[&str], now: SystemTime) {
    let mut depth: BTreeMap<&str, (u64, f64)> =
        adapters.iter().map(|name| (*name, (0, 0.0))).collect();
    for target in &backlog.outbox {
        let age = humantime::parse_rfc3339(&target.oldest)
            .ok()
            .and_then(|oldest| now.duration_since(oldest).ok())
            .map_or(0.0, |age| age.as_secs_f64());
        depth.insert(&target.target, (target.open, age));
    }
    for (target, (open, age)) in depth {
        // Gauges take f64; a depth past 2^53 would be the least of the problems.
        #[allow(clippy::cast_precision_loss)]
        let open = open as f64;
        gauge!(telemetry::OUTBOX_DEPTH, "adapter" => target.to_string()).set(open);
        gauge!(telemetry::OUTBOX_OLDEST_AGE, "adapter" => target.to_string()).set(age);
    }
    #[allow(clippy::cast_precision_loss)]
    let dead = backlog.dead_letters as f64;
    gauge!(telemetry::DLQ_DEPTH).set(dead);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TargetBacklog;

    /// Renders what `publish_backlog` sets through a recorder of this test's own.
    fn rendered(backlog: &Backlog, adapters: &[&str], now: SystemTime) -> String {
        let recorder = builder().expect("builder").build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || publish_backlog(backlog, adapters, now));
        handle.render()
    }

    #[test]
    fn the_backlog_shows_per_target_with_zero_for_idle_adapters() {
        let now = humantime::parse_rfc3339("2026-01-01T00:10:00Z").expect("time");
        let backlog = Backlog {
            outbox: vec![
                TargetBacklog {
                    target: "bot".into(),
                    open: 3,
                    oldest: "2026-01-01T00:00:00.000Z".into(),
                },
                TargetBacklog {
                    target: "gone".into(),
                    open: 1,
                    oldest: "2026-01-01T00:09:30.000Z".into(),
                },
            ],
            dead_letters: 2,
        };
        let text = rendered(&backlog, &["bot", "phone-1"], now);
        for line in [
            "tapwire_outbox_depth{adapter=\"bot\"} 3",
            "tapwire_outbox_oldest_age_seconds{adapter=\"bot\"} 600",
            "tapwire_outbox_depth{adapter=\"phone-1\"} 0",
            "tapwire_outbox_oldest_age_seconds{adapter=\"phone-1\"} 0",
            "tapwire_outbox_depth{adapter=\"gone\"} 1",
            "tapwire_outbox_oldest_age_seconds{adapter=\"gone\"} 30",
            "tapwire_dlq_depth 2",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
        }
    }

    /// Histograms render as histograms (buckets), not as the recorder's default summary,
    /// so Prometheus can aggregate them across phones and compute quantiles.
    #[test]
    fn latencies_render_as_histograms_with_buckets() {
        let recorder = builder().expect("builder").build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            drop(telemetry::HandlerTimer::start("echo"));
            metrics::histogram!(
                tapwire_device_agent::telemetry::ADB_CALL_SECONDS,
                "phone" => "p", "kind" => "dump"
            )
            .record(0.3);
        });
        let text = handle.render();
        assert!(
            text.contains("tapwire_handler_duration_seconds_bucket{handler=\"echo\",le=\"0.001\"}"),
            "{text}"
        );
        assert!(
            text.contains("tapwire_handler_duration_seconds_count{handler=\"echo\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "tapwire_adb_call_duration_seconds_bucket{phone=\"p\",kind=\"dump\",le=\"0.5\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "tapwire_adb_call_duration_seconds_bucket{phone=\"p\",kind=\"dump\",le=\"0.25\"} 0"
            ),
            "{text}"
        );
    }
}
