//! `GET /api/v1/sources`: the phones and adapters connected, with their health: running,
//! callback rejections, and what [`crate::health`] keeps (a phone's connection, reader
//! mode and last read; an adapter's last success and last failure). Copied from atomics,
//! no store query: cheap enough to poll every second.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::ErrorBody;
use crate::runtime::Runtime;

/// One phone or adapter.
#[derive(Debug, Serialize, ToSchema)]
pub struct Source {
    /// The name actions use as their target.
    pub name: String,
    /// `wechat` for a phone, the platform for an adapter.
    pub platform: String,
    /// False once it stopped by itself (what makes `/healthz` answer 503).
    pub running: bool,
    /// Callback requests refused since the start, by reason.
    pub rejections: Vec<Rejection>,
    pub health: crate::health::Health,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Rejection {
    pub reason: String,
    pub count: u64,
}

/// The sources, by name.
#[utoipa::path(
    get,
    path = "/sources",
    operation_id = "list_sources",
    tag = "sources",
    responses(
        (status = 200, description = "Every phone and adapter, by name", body = Vec<Source>),
        (status = 401, description = "No or a wrong bearer token", body = ErrorBody),
    )
)]
pub async fn list(State(runtime): State<Arc<Runtime>>) -> Json<Vec<Source>> {
    let mut sources: Vec<Source> = runtime
        .adapters()
        .iter()
        .map(|a| Source {
            name: a.name().to_string(),
            platform: a.platform().to_string(),
            running: !a.finished(),
            rejections: a
                .rejections()
                .into_iter()
                .map(|(reason, count)| Rejection {
                    reason: reason.as_str().to_string(),
                    count,
                })
                .collect(),
            health: crate::health::of(a.name()).snapshot(),
        })
        .collect();
    sources.sort_by(|a, b| a.name.cmp(&b.name));
    Json(sources)
}
