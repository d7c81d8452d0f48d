//! Grants: `GET /api/v1/grants`, `POST /api/v1/grants`, `DELETE /api/v1/grants`: what
//! an admin's `#grant` / `#revoke` commands do, through the handlers so that what they
//! know of permissions follows at once.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, ApiJson, ApiQuery, ErrorBody};
use crate::permission::Grant;
use crate::runtime::Runtime;

/// One permission: `scene` `*` is everything; no `command` is the whole scene.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantView {
    /// The user as events name senders (`wechat:<name>`, a platform's user id).
    pub user: String,
    pub scene: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// RFC 3339 UTC (`…Z`); none never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Who granted it (`api` for grants made here).
    #[serde(default, skip_deserializing)]
    pub granted_by: String,
}

impl From<Grant> for GrantView {
    fn from(g: Grant) -> GrantView {
        GrantView {
            user: g.user,
            scene: g.scene,
            command: (!g.command.is_empty()).then_some(g.command),
            expires_at: g.expires_at,
            granted_by: g.granted_by,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this user's grants.
    pub user: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RevokeQuery {
    pub user: String,
    /// `*` revokes everything the user had.
    pub scene: String,
    /// Only this command of the scene; without it the scene and all its commands.
    pub command: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {
    pub revoked: u64,
}

/// Grants, expired ones included, by user, scene, command.
#[utoipa::path(
    get,
    path = "/grants",
    operation_id = "list_grants",
    tag = "grants",
    params(ListQuery),
    responses(
        (status = 200, description = "The grants", body = Vec<GrantView>),
        (status = 401, description = "No or a wrong bearer token", body = ErrorBody),
    )
)]
pub async fn list(
    State(runtime): State<Arc<Runtime>>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Vec<GrantView>>, ApiError> {
    let grants = runtime.store().grants(query.user.as_deref()).await?;
    Ok(Json(grants.into_iter().map(GrantView::from).collect()))
}

/// Grants a scene, a scene's command, or everything; granting again replaces.
#[utoipa::path(
    post,
    path = "/grants",
    operation_id = "grant",
    tag = "grants",
    request_body = GrantView,
    responses(
        (status = 201, description = "Granted", body = GrantView),
        (status = 400, description = "A bad request, naming the field", body = ErrorBody),
        (status = 401, description = "No or a wrong bearer token", body = ErrorBody),
    )
)]
pub async fn grant(
    State(runtime): State<Arc<Runtime>>,
    ApiJson(request): ApiJson<GrantView>,
) -> Result<(StatusCode, Json<GrantView>), ApiError> {
    if request.user.is_empty() {
        return Err(ApiError::invalid("user", "user must not be empty"));
    }
    if request.scene.is_empty() {
        return Err(ApiError::invalid(
            "scene",
            "scene must not be empty (`*` is everything)",
        ));
    }
    let expires_at = match &request.expires_at {
        None => None,
        Some(text) => {
            let at = humantime::parse_rfc3339(text).map_err(|e| {
                ApiError::invalid("expires_at", format!("not RFC 3339 UTC (…Z): {e}"))
            })?;
            // The store compares times as text: one format for all.
            Some(humantime::format_rfc3339_millis(at).to_string())
        }
    };
    let grant = Grant {
        user: request.user,
        scene: request.scene,
        command: request.command.unwrap_or_default(),
        expires_at,
        granted_by: "api".to_string(),
    };
    runtime.handlers().grant(&grant).await?;
    tracing::info!(user = %grant.user, scene = %grant.scene, command = %grant.command, "granted through the API");
    Ok((StatusCode::CREATED, Json(GrantView::from(grant))))
}

/// Revokes grants.
#[utoipa::path(
    delete,
    path = "/grants",
    operation_id = "revoke",
    tag = "grants",
    params(RevokeQuery),
    responses(
        (status = 200, description = "How many grants went", body = Revoked),
        (status = 400, description = "A bad request, naming the field", body = ErrorBody),
        (status = 401, description = "No or a wrong bearer token", body = ErrorBody),
    )
)]
pub async fn revoke(
    State(runtime): State<Arc<Runtime>>,
    ApiQuery(query): ApiQuery<RevokeQuery>,
) -> Result<Json<Revoked>, ApiError> {
    let revoked = runtime
        .handlers()
        .revoke(&query.user, &query.scene, query.command.as_deref())
        .await?;
    tracing::info!(user = %query.user, scene = %query.scene, revoked, "revoked through the API");
    Ok(Json(Revoked { revoked }))
}
