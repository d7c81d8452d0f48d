//! One request to a platform's API as every adapter makes it: a transport failure, or
//! an answer cut off while it is read, is the network's and worth retrying; HTTP 429 and
//! 5xx are worth retrying, another status that is no success is a refusal (where a
//! platform answers failures as JSON under any status, the adapter reads the body
//! first). Errors never show the URL: on several platforms it holds a key or a token.

use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, Response, StatusCode};

use super::SendError;
use crate::http::{error_chain, parse_retry_after};

/// An answer, read whole.
#[derive(Debug)]
pub struct Answered {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answered {
    /// What `Retry-After` asks to wait, if it says.
    pub fn retry_after(&self) -> Option<Duration> {
        self.headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()))
    }
}

/// Sends `request`; `what` names it in errors.
pub async fn send(request: RequestBuilder, what: &str) -> Result<Response, SendError> {
    request.send().await.map_err(|e| SendError::Retry {
        reason: format!("{what}: {}", error_chain(e)),
        after: None,
    })
}

/// Sends `request` and reads its answer whole.
pub async fn call(request: RequestBuilder, what: &str) -> Result<Answered, SendError> {
    let response = send(request, what).await?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.map_err(|e| SendError::Retry {
        reason: format!("{what}: reading the answer: {}", error_chain(e)),
        after: None,
    })?;
    Ok(Answered {
        status,
        headers,
        body,
    })
}

/// A status that is no success, as an error: 429 and 5xx retried, the rest refused.
pub fn check_status(status: StatusCode, what: &str) -> Result<(), SendError> {
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return Err(SendError::Retry {
            reason: format!("{what}: answered HTTP {status}"),
            after: None,
        });
    }
    if !status.is_success() {
        return Err(SendError::Permanent(format!(
            "{what}: answered HTTP {status}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn transport_failures_are_retried_and_statuses_judged_without_the_url() {
        let client = reqwest::Client::new();
        let down = call(client.get("http://127.0.0.1:9/x?key=s3cret"), "the post").await;
        assert!(
            matches!(&down, Err(SendError::Retry { reason, .. }) if reason.starts_with("the post: ") && !reason.contains("s3cret")),
            "{down:?}"
        );
        assert_eq!(check_status(StatusCode::OK, "x"), Ok(()));
        assert!(matches!(
            check_status(StatusCode::BAD_GATEWAY, "x"),
            Err(SendError::Retry { .. })
        ));
        assert!(matches!(
            check_status(StatusCode::TOO_MANY_REQUESTS, "x"),
            Err(SendError::Retry { .. })
        ));
        assert!(matches!(
            check_status(StatusCode::NOT_FOUND, "x"),
            Err(SendError::Permanent(m)) if m == "x: answered HTTP 404 Not Found"
        ));
    }
}
