//! The REST API under `/api/v1`: send through any phone or adapter (through the outbox,
//! once per idempotency key), read an action's status, list the sources, list, replay
//! and drop dead letters, list, give and revoke grants, conversations and their messages,
//! an event's status, a phone's live view. Every route
//! needs `Authorization: Bearer <token>` (or the dashboard's cookie, [`COOKIE`]), the tokens read from the environment variable
//! `[server.api] tokens_env` names (comma separated); with none set the API is not
//! mounted at all.
//!
//! The OpenAPI document at `/api/v1/openapi.json` is generated from the handlers'
//! `#[utoipa::path]` annotations, so it cannot drift from the routes. It sits behind the
//! token like the rest: one rule for the whole prefix, nothing to audit route by route,
//! and the document holds nothing an install could not read from the source anyway.

pub mod actions;
pub mod conversations;
pub mod dlq;
pub mod events;
pub mod grants;
pub mod messages;
pub mod phones;
pub mod sources;
pub mod subscriptions;

use std::sync::Arc;

use axum::extract::{FromRequest, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::runtime::Runtime;

/// Where the API is mounted.
pub const PREFIX: &str = "/api/v1";

/// `[server.api]` of `tapwire.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// The environment variable holding the bearer tokens, comma separated. Secrets come
    /// only from the environment, never from the config file.
    #[serde(default = "default_tokens_env")]
    pub tokens_env: String,
    /// The environment variable holding the key subscription secrets derive from
    /// ([`crate::subscription`]); unset = no outbound subscriptions.
    #[serde(default = "default_subscription_key_env")]
    pub subscription_key_env: String,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            tokens_env: default_tokens_env(),
            subscription_key_env: default_subscription_key_env(),
        }
    }
}

fn default_subscription_key_env() -> String {
    "TAPWIRE_SUBSCRIPTION_KEY".to_string()
}

fn default_tokens_env() -> String {
    "TAPWIRE_API_TOKENS".to_string()
}

/// The cookie the dashboard's login sets, which the API takes as well as a bearer token
/// (a browser's `EventSource` cannot send an `Authorization` header).
pub const COOKIE: &str = "tapwire_session";

/// The bearer tokens the API accepts; never empty.
#[derive(Clone)]
pub struct Tokens(Arc<Vec<Vec<u8>>>);

/// What the cookie holds for `token`: its SHA-256 in hex. Not the token itself, so the
/// cookie's value is safe in a cookie whatever characters the token has, and a cookie
/// read off a disk does not give the token away to other clients of the API (it still
/// opens the API through a browser, as any session cookie does).
pub fn cookie_value(token: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token))
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} configured)", self.0.len())
    }
}

impl Tokens {
    /// The tokens in `text` (comma separated, blanks ignored); None when there are none.
    pub fn parse(text: &str) -> Option<Tokens> {
        let tokens: Vec<Vec<u8>> = text
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| t.as_bytes().to_vec())
            .collect();
        (!tokens.is_empty()).then(|| Tokens(Arc::new(tokens)))
    }

    /// The tokens `config` points at in the environment; None (API off) when unset or
    /// empty, said once in the log either way.
    pub fn from_env(config: &ApiConfig) -> Option<Tokens> {
        let tokens = std::env::var(&config.tokens_env)
            .ok()
            .and_then(|text| Tokens::parse(&text));
        match &tokens {
            Some(t) => tracing::info!(
                env = %config.tokens_env,
                tokens = t.0.len(),
                "REST API on at {PREFIX}"
            ),
            None => tracing::info!(
                env = %config.tokens_env,
                "REST API off: no token in the environment variable"
            ),
        }
        tokens
    }

    /// Whether `given` is one of the tokens. Each comparison takes the same time whatever
    /// bytes match, so the answer's timing does not reveal a token's prefix.
    pub fn accepts(&self, given: &[u8]) -> bool {
        self.0
            .iter()
            .fold(false, |found, token| found | bool::from(token.ct_eq(given)))
    }

    /// Whether `given` is the cookie value of one of the tokens ([`cookie_value`]),
    /// compared in constant time like [`Tokens::accepts`].
    pub fn accepts_cookie(&self, given: &str) -> bool {
        self.0.iter().fold(false, |found, token| {
            found | bool::from(cookie_value(token).as_bytes().ct_eq(given.as_bytes()))
        })
    }

    /// Whether a request carries one of the tokens, as a bearer token or the dashboard's
    /// cookie; if not, why.
    pub fn authorizes(&self, headers: &axum::http::HeaderMap) -> Result<(), &'static str> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if let Some(token) = bearer {
            return if self.accepts(token.trim().as_bytes()) {
                Ok(())
            } else {
                Err("wrong bearer token")
            };
        }
        match cookie(headers, COOKIE) {
            Some(value) if self.accepts_cookie(value) => Ok(()),
            Some(_) => Err("wrong session cookie"),
            None => Err("no bearer token"),
        }
    }
}

/// Every error the API answers: `{"error": {"code", "message", "field"?}}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine readable: `unauthorized`, `invalid_request`, `not_found`,
    /// `unknown_target`, `idempotency_conflict`, `internal`.
    pub code: String,
    pub message: String,
    /// The request field (or header) at fault, for a bad request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An error answer: its status and body.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                error: ErrorDetail {
                    code: code.to_string(),
                    message: message.into(),
                    field: None,
                },
            },
        }
    }

    /// A bad request naming the field at fault.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        let mut error = ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message);
        error.body.error.field = Some(field.into());
        error
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> ApiError {
        tracing::error!(%error, "API request failed in the store");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the store failed; see the controller's log",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

/// A JSON body whose errors are API errors naming the field, not axum's plain text.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !json {
            return Err(ApiError::invalid(
                "Content-Type",
                "the body must be JSON (Content-Type: application/json)",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::invalid("body", format!("cannot read the body: {e}")))?;
        parse_body(&bytes).map(ApiJson)
    }
}

/// A query string whose errors are API errors naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(query)) => Ok(ApiQuery(query)),
            Err(rejection) => {
                let text = rejection.body_text();
                let field = text
                    .split("missing field `")
                    .nth(1)
                    .and_then(|rest| rest.split('`').next())
                    .unwrap_or("query");
                Err(ApiError::invalid(field, text.clone()))
            }
        }
    }
}

/// Parses a request body; an error names the field (its path, `attachments[0].kind`) or
/// `body` when the JSON itself is broken.
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut json = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut json).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        // A missing field is reported one level up, its name only in the message (an
        // unknown one is in the path already).
        let text = inner.to_string();
        let missing = text
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
            .map(str::to_string);
        let field = match (missing, path.as_str()) {
            (Some(name), "." | "" | "?") => name,
            (Some(name), parent) => format!("{parent}.{name}"),
            (None, "." | "" | "?") => "body".to_string(),
            (None, path) => path.to_string(),
        };
        ApiError::invalid(field, inner.to_string())
    })
}

/// The value of cookie `name` in the request's `Cookie` headers (RFC 6265 §5.4:
/// `name=value` pairs separated by `; `).
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Refuses a request without one of the tokens: 401 with a `WWW-Authenticate`
/// challenge (RFC 6750 §3), and a warning naming why.
async fn authorize(State(tokens): State<Tokens>, request: Request, next: Next) -> Response {
    let reason = match tokens.authorizes(request.headers()) {
        Ok(()) => return next.run(request).await,
        Err(reason) => reason,
    };
    tracing::warn!(path = %request.uri().path(), reason, "API request refused");
    let mut response =
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", reason).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"tapwire\""),
    );
    response
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tapwire REST API",
        description = "Send through any phone or adapter, follow actions and events, list sources with their health and conversations with their messages, manage dead letters and grants, subscribe a URL to event types (deliveries signed with X-Tapwire-Signature-256: sha256=HMAC-SHA256 of the body), watch a phone live."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(ErrorBody, ErrorDetail))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document served at `/api/v1/openapi.json`.
type Document = Arc<serde_json::Value>;

/// This API's OpenAPI document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi_document",
    tag = "meta",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of this API", body = Object),
        (status = 401, description = "No or a wrong bearer token", body = ErrorBody),
    )
)]
async fn openapi(Extension(document): Extension<Document>) -> Json<serde_json::Value> {
    Json((*document).clone())
}

/// Every API route with the OpenAPI document describing them, paths under [`PREFIX`].
fn parts() -> (axum::Router<Arc<Runtime>>, utoipa::openapi::OpenApi) {
    let api = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(messages::send))
        .routes(routes!(actions::get))
        .routes(routes!(actions::retry))
        .routes(routes!(subscriptions::list, subscriptions::create))
        .routes(routes!(subscriptions::get, subscriptions::delete))
        .routes(routes!(subscriptions::failures))
        .routes(routes!(sources::list))
        .routes(routes!(dlq::list))
        .routes(routes!(dlq::replay))
        .routes(routes!(dlq::drop))
        .routes(routes!(grants::list, grants::grant, grants::revoke))
        .routes(routes!(conversations::list))
        .routes(routes!(conversations::messages))
        .routes(routes!(events::get))
        .routes(routes!(phones::live))
        .routes(routes!(phones::screenshot))
        .routes(routes!(openapi));
    OpenApiRouter::new().nest(PREFIX, api).split_for_parts()
}

/// The OpenAPI document, as `/api/v1/openapi.json` serves it (also for tests and tools).
pub fn document() -> serde_json::Value {
    serde_json::to_value(parts().1).unwrap_or_default()
}

/// The API's routes, behind `tokens`, ready to merge into the server.
pub fn router(runtime: Arc<Runtime>, tokens: Tokens) -> axum::Router {
    let (router, doc) = parts();
    let document: Document = Arc::new(serde_json::to_value(doc).unwrap_or_default());
    router
        .layer(Extension(document))
        .route_layer(axum::middleware::from_fn_with_state(tokens, authorize))
        .with_state(runtime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_comma_separated_and_blank_means_off() {
        assert!(Tokens::parse("").is_none());
        assert!(Tokens::parse(" , ,").is_none());
        let tokens = Tokens::parse("alpha, beta").expect("two tokens");
        assert!(tokens.accepts(b"alpha"));
        assert!(tokens.accepts(b"beta"));
        assert!(!tokens.accepts(b"alph"));
        assert!(!tokens.accepts(b"alphaa"));
        assert!(!tokens.accepts(b""));
        assert!(tokens.accepts_cookie(&cookie_value(b"beta")));
        assert!(!tokens.accepts_cookie("beta"));
    }

    #[test]
    fn a_request_passes_with_the_token_or_its_cookie_only() {
        use axum::http::{HeaderMap, HeaderValue};
        let tokens = Tokens::parse("alpha").expect("a token");
        let with = |name: header::HeaderName, value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(name, HeaderValue::from_str(value).expect("ascii"));
            headers
        };
        let good = format!("theme=dark; {COOKIE}={}", cookie_value(b"alpha"));
        assert_eq!(tokens.authorizes(&with(header::COOKIE, &good)), Ok(()));
        assert_eq!(
            tokens.authorizes(&with(header::AUTHORIZATION, "Bearer alpha")),
            Ok(())
        );
        assert_eq!(
            tokens.authorizes(&with(header::COOKIE, &format!("{COOKIE}=alpha"))),
            Err("wrong session cookie")
        );
        assert_eq!(
            tokens.authorizes(&with(header::AUTHORIZATION, "Bearer beta")),
            Err("wrong bearer token")
        );
        assert_eq!(tokens.authorizes(&HeaderMap::new()), Err("no bearer token"));
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        target: String,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        kind: u32,
    }

    fn field_of(body: &str) -> String {
        let error = parse_body::<Body>(body.as_bytes()).expect_err("refused");
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
        error.body.error.field.expect("a field")
    }

    #[test]
    fn a_bad_body_names_its_field() {
        assert_eq!(field_of("{}"), "target");
        assert_eq!(field_of(r#"{"target": 3}"#), "target");
        assert_eq!(field_of(r#"{"target": "a", "inner": {}}"#), "inner.kind");
        assert_eq!(
            field_of(r#"{"target": "a", "inner": {"kind": "x"}}"#),
            "inner.kind"
        );
        assert_eq!(field_of(r#"{"target": "a", "extra": 1}"#), "extra");
        assert_eq!(field_of("{not json"), "body");
    }

    #[test]
    fn the_document_lists_every_route_with_bearer_security() {
        let doc = document();
        let paths = doc["paths"].as_object().expect("paths");
        for path in [
            "/api/v1/messages",
            "/api/v1/actions/{id}",
            "/api/v1/sources",
            "/api/v1/dlq",
            "/api/v1/dlq/{id}/replay",
            "/api/v1/dlq/{id}",
            "/api/v1/grants",
            "/api/v1/openapi.json",
            "/api/v1/conversations",
            "/api/v1/conversations/{source}/{id}/messages",
            "/api/v1/events/{id}",
            "/api/v1/phones/{name}/live",
            "/api/v1/phones/{name}/screen.png",
        ] {
            assert!(paths.contains_key(path), "{path} missing from {paths:?}");
        }
        // Generators name functions after operation ids: each must be unique (the
        // default, the Rust function's name, is not: two `list`s).
        let mut ids: Vec<&str> = paths
            .values()
            .flat_map(|item| item.as_object().expect("item").values())
            .map(|op| op["operationId"].as_str().expect("an operation id"))
            .collect();
        let count = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), count, "operation ids repeat: {ids:?}");
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
    }
}
