//! The door of every callback route (DESIGN.md §7, "every network input is verified
//! before it is parsed further"): the body's size limit, and what happens to a request
//! turned away. A refusal is logged with its reason and counted per adapter and reason,
//! so `/metrics` can show what is knocking; the adapter answers it the way its platform
//! expects (a status and body each adapter chooses), and nothing of it is parsed further
//! or routed.
//!
//! The checks themselves belong to each platform (its signature, its clock window, its
//! envelope) and the replay cache to [`super::replay`]; the order is the same everywhere:
//! size, then signature, then timestamp, then replay, and only then decrypting and
//! reading the body.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Why a callback was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// No signature, a wrong one, or a wrong verification token: not the platform.
    Signature,
    /// Signed too long ago, or too far ahead of our clock.
    Stale,
    /// Signed exactly so before: the same request again.
    Replay,
    /// Signed, yet its ciphertext does not open (wrong key, truncated, bad padding).
    Undecryptable,
    /// Signed and readable, but for another corp, app or bot.
    WrongRecipient,
    /// Larger than the route takes.
    TooLarge,
    /// Not the shape the platform sends: a missing parameter, JSON or XML that does not
    /// parse, a message without its fields.
    Malformed,
}

impl Reason {
    pub const ALL: [Reason; 7] = [
        Reason::Signature,
        Reason::Stale,
        Reason::Replay,
        Reason::Undecryptable,
        Reason::WrongRecipient,
        Reason::TooLarge,
        Reason::Malformed,
    ];

    /// The label a metric carries.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Signature => "signature",
            Reason::Stale => "stale",
            Reason::Replay => "replay",
            Reason::Undecryptable => "undecryptable",
            Reason::WrongRecipient => "wrong_recipient",
            Reason::TooLarge => "too_large",
            Reason::Malformed => "malformed",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One adapter's door: its name for the log, and its refusals counted by reason.
#[derive(Debug)]
pub struct Door {
    adapter: String,
    counts: [AtomicU64; Reason::ALL.len()],
}

impl Door {
    pub fn new(adapter: &str) -> Door {
        Door {
            adapter: adapter.to_string(),
            counts: Default::default(),
        }
    }

    pub fn adapter(&self) -> &str {
        &self.adapter
    }

    /// Logs and counts a refusal; `detail` says what exactly was wrong (never a secret).
    pub fn refused(&self, reason: Reason, status: StatusCode, detail: &str) {
        self.counts[reason.index()].fetch_add(1, Ordering::Relaxed);
        tracing::warn!(adapter = %self.adapter, %reason, %status, detail, "callback refused");
    }

    /// [`Door::refused`], answered with `status` and `body`.
    pub fn refuse(
        &self,
        reason: Reason,
        status: StatusCode,
        body: impl Into<String>,
        detail: &str,
    ) -> Response {
        self.refused(reason, status, detail);
        (status, body.into()).into_response()
    }

    /// The body the route's limit let through, or the answer to one it did not
    /// (413, counted as too large) or that could not be read (400).
    #[allow(clippy::result_large_err)]
    pub fn body(&self, body: Result<Bytes, BytesRejection>) -> Result<Bytes, Response> {
        body.map_err(|rejection| {
            let status = rejection.status();
            let reason = if status == StatusCode::PAYLOAD_TOO_LARGE {
                Reason::TooLarge
            } else {
                Reason::Malformed
            };
            self.refuse(
                reason,
                status,
                rejection.body_text(),
                &rejection.body_text(),
            )
        })
    }

    /// How many requests were refused for each reason since the start.
    pub fn counts(&self) -> Vec<(Reason, u64)> {
        Reason::ALL
            .iter()
            .map(|&reason| (reason, self.counts[reason.index()].load(Ordering::Relaxed)))
            .collect()
    }

    pub fn count(&self, reason: Reason) -> u64 {
        self.counts[reason.index()].load(Ordering::Relaxed)
    }
}

/// `router` taking bodies of at most `max` bytes: a larger one is refused before it is
/// read whole (by its Content-Length, or as it streams in).
pub fn limited(router: axum::Router, max: usize) -> axum::Router {
    router.layer(DefaultBodyLimit::max(max))
}

#[cfg(test)]
mod tests {
    use axum::routing::post;

    use super::*;
    use crate::adapter::testing::serve;

    #[test]
    fn refusals_are_counted_by_reason() {
        let door = Door::new("a");
        door.refused(Reason::Signature, StatusCode::FORBIDDEN, "x");
        door.refused(Reason::Signature, StatusCode::FORBIDDEN, "x");
        let answer = door.refuse(Reason::Stale, StatusCode::UNAUTHORIZED, "stale", "old");
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(door.count(Reason::Signature), 2);
        assert_eq!(door.count(Reason::Stale), 1);
        assert_eq!(door.count(Reason::Replay), 0);
        assert_eq!(door.counts().len(), Reason::ALL.len());
        let labels: std::collections::HashSet<_> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(labels.len(), Reason::ALL.len());
    }

    #[tokio::test]
    async fn a_body_over_the_routes_limit_is_refused_and_counted_before_the_handler_reads_it() {
        let door = std::sync::Arc::new(Door::new("a"));
        let seen = door.clone();
        let router = limited(
            axum::Router::new().route(
                "/",
                post(move |body: Result<Bytes, BytesRejection>| async move {
                    match seen.body(body) {
                        Ok(body) => (StatusCode::OK, format!("{}", body.len())).into_response(),
                        Err(refused) => refused,
                    }
                }),
            ),
            1024,
        );
        let url = serve(router).await;
        let client = reqwest::Client::new();
        let ok = client
            .post(&url)
            .body(vec![b'x'; 1024])
            .send()
            .await
            .expect("post");
        assert_eq!(ok.status(), 200);
        let big = client
            .post(&url)
            .body(vec![b'x'; 1025])
            .send()
            .await
            .expect("post");
        assert_eq!(big.status(), 413);
        // Chunked, without a Content-Length: cut off as it comes in.
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(url.trim_start_matches("http://"))
            .await
            .expect("connect");
        stream
            .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            .await
            .expect("write");
        for _ in 0..4 {
            let mut chunk = b"320\r\n".to_vec();
            chunk.extend_from_slice(&[b'x'; 0x320]);
            chunk.extend_from_slice(b"\r\n");
            // The server may answer and close before the last chunk.
            if stream.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = stream.write_all(b"0\r\n\r\n").await;
        let mut answer = vec![0u8; 64];
        let read = stream.read(&mut answer).await.expect("read");
        let answer = String::from_utf8_lossy(&answer[..read]);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert_eq!(door.count(Reason::TooLarge), 2);
    }
}
