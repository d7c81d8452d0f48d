//! The one HTTP server of `tapwire run`: `/healthz`, `/metrics` ([`metrics`]: Prometheus
//! text), and each adapter's inbound routes at `/callback/<adapter-name>`. The REST API
//! ([`api`], under `/api/v1`) and the dashboard ([`dashboard`], at `/dashboard`) mount here
//! too when a token is configured. [`run`] takes a bound listener and a shutdown future, so
//! tests start the real server on port 0.

pub mod api;
pub mod dashboard;
pub mod metrics;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use serde::Deserialize;
use tokio::net::TcpListener;

use crate::runtime::Runtime;

/// `[server]` of `tapwire.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Where to listen; loopback by default (a platform reaches it through a tunnel).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// `[server.api]`: where the REST API's tokens come from.
    #[serde(default)]
    pub api: api::ApiConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            api: api::ApiConfig::default(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8787))
}

/// Every route of the server, for `runtime`'s adapters; the REST API and the dashboard
/// when there are `api_tokens`. Inside tokio, it also starts following the runtime's
/// sends for the sources' health ([`crate::health::follow`]).
pub fn app(runtime: Arc<Runtime>, api_tokens: Option<api::Tokens>) -> axum::Router {
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.spawn(crate::health::follow(runtime.subscribe()));
    }
    let mut app = axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::scrape))
        .with_state(runtime.clone());
    if let Some(tokens) = api_tokens {
        app = app
            .merge(api::router(runtime.clone(), tokens.clone()))
            .merge(dashboard::router(tokens));
    }
    for adapter in runtime.adapters() {
        if let Some(routes) = adapter.routes() {
            app = app.nest(&format!("/callback/{}", adapter.name()), routes);
        }
    }
    app
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests in flight
/// finish.
pub async fn run(
    listener: TcpListener,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "HTTP server listening");
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Alive, and what runs: 200 while no adapter has stopped by itself, 503 otherwise.
async fn healthz(
    State(runtime): State<Arc<Runtime>>,
) -> (axum::http::StatusCode, Json<serde_json::Value>) {
    let adapters: Vec<serde_json::Value> = runtime
        .adapters()
        .iter()
        .map(|a| {
            serde_json::json!({
                "name": a.name(),
                "platform": a.platform(),
                "running": !a.finished(),
            })
        })
        .collect();
    let healthy = runtime.adapters().iter().all(|a| !a.finished());
    let status = if healthy {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({
            "status": if healthy { "ok" } else { "degraded" },
            "adapters": adapters,
            "events_handled": runtime.handled_events(),
            "events_unmatched": runtime.unmatched_events(),
        })),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use async_trait::async_trait;

    use super::*;
    use crate::adapter::{Adapter, Delivered, Outgoing, SendError};
    use crate::format::TextFormat;
    use crate::handler::{Handlers, builtins};
    use crate::plugin::PluginHost;
    use crate::queue::QueueConfig;
    use crate::router::Router;
    use crate::store::MemoryStore;

    /// A platform that only listens: what a callback adapter looks like to the server.
    struct Listening;

    #[async_trait]
    impl Adapter for Listening {
        fn name(&self) -> &str {
            "hooks"
        }
        fn platform(&self) -> &'static str {
            "test"
        }
        fn text_format(&self) -> TextFormat {
            TextFormat::Markdown
        }
        async fn deliver(&self, _outgoing: &Outgoing) -> Result<Delivered, SendError> {
            Ok(Delivered::Sent)
        }
        fn routes(&self) -> Option<axum::Router> {
            Some(axum::Router::new().route("/ping", get(|| async { "pong" })))
        }
        fn rejections(&self) -> Vec<(crate::adapter::door::Reason, u64)> {
            use crate::adapter::door::Reason;
            vec![(Reason::Signature, 3), (Reason::Replay, 0)]
        }
    }

    #[tokio::test]
    async fn serves_health_and_each_adapters_callbacks_then_stops() {
        let store: crate::store::SharedStore = Arc::new(MemoryStore::default());
        let (faults, _) = tokio::sync::mpsc::unbounded_channel();
        let plugins = PluginHost::start(Vec::new(), faults).await;
        let handlers = Arc::new(Handlers::new(
            builtins(),
            store.clone(),
            plugins,
            HashSet::new(),
            HashMap::new(),
        ));
        let runtime = Runtime::start(
            store,
            Router::new(Vec::new()),
            handlers,
            &QueueConfig::default(),
        );
        runtime
            .start_adapter(Arc::new(Listening))
            .await
            .expect("adapter");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(run(listener, app(runtime, None), async move {
            let _ = stopped.await;
        }));

        let health = reqwest::get(format!("http://{addr}/healthz"))
            .await
            .expect("healthz");
        assert_eq!(health.status(), 200);
        let body: serde_json::Value = health.json().await.expect("json");
        assert_eq!(body["status"], "ok");
        assert_eq!(body["adapters"][0]["name"], "hooks");
        let pong = reqwest::get(format!("http://{addr}/callback/hooks/ping"))
            .await
            .expect("callback");
        assert_eq!(pong.text().await.expect("text"), "pong");
        let missing = reqwest::get(format!("http://{addr}/callback/nobody/ping"))
            .await
            .expect("404");
        assert_eq!(missing.status(), 404);

        metrics::install().expect("the recorder installs");
        {
            let scraped = reqwest::get(format!("http://{addr}/metrics"))
                .await
                .expect("metrics");
            assert_eq!(scraped.status(), 200);
            assert!(
                scraped.headers()["content-type"]
                    .to_str()
                    .expect("ascii")
                    .starts_with("text/plain; version=0.0.4"),
            );
            let text = scraped.text().await.expect("text");
            // Read from the adapter at scrape time, zeros included (rate() needs them).
            for line in [
                "tapwire_callback_rejections_total{adapter=\"hooks\",reason=\"signature\"} 3",
                "tapwire_callback_rejections_total{adapter=\"hooks\",reason=\"replay\"} 0",
                "tapwire_outbox_depth{adapter=\"hooks\"} 0",
                "tapwire_dlq_depth 0",
            ] {
                assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
            }
            assert!(
                text.contains("# HELP tapwire_callback_rejections_total "),
                "{text}"
            );
        }

        let _ = stop.send(());
        server.await.expect("joined").expect("served");
    }
}
