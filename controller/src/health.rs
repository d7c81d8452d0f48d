//! Each source's health as people look at it (`GET /api/v1/sources`, the dashboard): a
//! phone's connection, how its screen is read and when it last was; an adapter's last
//! successful send and last failure with its reason.
//!
//! Written where the work happens (the phone's sink, the live view's observer, the
//! outbox's activity) into atomics and small locks, and only copied when someone asks: a
//! request never queries the store for it. Process-wide like the `metrics` recorder,
//! because the phone's thread, the outbox and the server each reach it without being
//! wired to one another; keyed by source name, which is unique in a controller.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use serde::Serialize;
use tokio::sync::broadcast;
use utoipa::ToSchema;

use crate::activity::Activity;

/// What one source reported last.
#[derive(Default)]
pub struct SourceHealth {
    /// 0 not known yet, 1 connected, 2 disconnected.
    connected: AtomicU8,
    reader: Mutex<Option<String>>,
    /// Unix milliseconds; 0 for never.
    last_screen_read: AtomicU64,
    last_message: AtomicU64,
    last_success: AtomicU64,
    last_failure: Mutex<Option<(u64, String)>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn rfc3339(ms: u64) -> Option<String> {
    (ms > 0)
        .then(|| crate::event::rfc3339_since_epoch(std::time::Duration::from_millis(ms)))
        .flatten()
}

impl SourceHealth {
    pub fn connected(&self, connected: bool) {
        self.connected
            .store(if connected { 1 } else { 2 }, Ordering::Relaxed);
    }

    /// What the screen is read with now: the reader's name (`wechat-8.0` for the tree,
    /// `vision:…` for screenshots).
    pub fn reader(&self, name: &str) {
        *lock(&self.reader) = Some(name.to_string());
    }

    pub fn screen_read(&self) {
        self.last_screen_read.store(now_ms(), Ordering::Relaxed);
    }

    pub fn message_read(&self) {
        self.last_message.store(now_ms(), Ordering::Relaxed);
    }

    pub fn sent(&self) {
        self.last_success.store(now_ms(), Ordering::Relaxed);
    }

    pub fn failed(&self, reason: &str) {
        *lock(&self.last_failure) = Some((now_ms(), reason.to_string()));
    }

    pub fn snapshot(&self) -> Health {
        let reader = lock(&self.reader).clone();
        let mode = reader.as_deref().map(|r| {
            // `vision:…`, or `auto:vision:…` while auto mode reads screenshots.
            if r.strip_prefix("auto:").unwrap_or(r).starts_with("vision") {
                "vision".to_string()
            } else {
                "tree".to_string()
            }
        });
        let failure = lock(&self.last_failure).clone();
        Health {
            connected: match self.connected.load(Ordering::Relaxed) {
                1 => Some(true),
                2 => Some(false),
                _ => None,
            },
            reader_mode: mode,
            reader,
            last_screen_read: rfc3339(self.last_screen_read.load(Ordering::Relaxed)),
            last_message_read: rfc3339(self.last_message.load(Ordering::Relaxed)),
            last_success: rfc3339(self.last_success.load(Ordering::Relaxed)),
            last_failure: failure.and_then(|(at, reason)| {
                Some(Failure {
                    at: rfc3339(at)?,
                    reason,
                })
            }),
        }
    }
}

/// A source's health as the API shows it; what was never reported is left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Health {
    /// A phone: whether it answers over ADB (absent until it first tried).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connected: Option<bool>,
    /// A phone: `tree` (the UI tree) or `vision` (screenshots read with OCR).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reader_mode: Option<String>,
    /// A phone: the reader's own name (the UI map's for the tree).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reader: Option<String>,
    /// A phone: when its screen was last read (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_screen_read: Option<String>,
    /// A phone: when a new message was last read off it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_message_read: Option<String>,
    /// When something was last sent through it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_success: Option<String>,
    /// The last send that failed for good, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<Failure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Failure {
    pub at: String,
    pub reason: String,
}

fn registry() -> &'static Mutex<HashMap<String, Arc<SourceHealth>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Arc<SourceHealth>>>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

/// The health of `source`, created on first use. Callers on hot paths keep the `Arc`.
pub fn of(source: &str) -> Arc<SourceHealth> {
    lock(registry())
        .entry(source.to_string())
        .or_default()
        .clone()
}

/// Keeps adapters' last success and failure from the runtime's activity until the
/// runtime goes: the outbox reports every send it finishes there, with a failure's
/// reason. (A phone reports its own sends through the same activity.) Falling behind
/// only skips reports, which the next send overwrites anyway.
pub async fn follow(mut activity: broadcast::Receiver<Activity>) {
    loop {
        match activity.recv().await {
            Ok(Activity::Replied { device, .. }) => of(&device).sent(),
            Ok(Activity::ReplyFailed { device, reason, .. }) => of(&device).failed(&reason),
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reports_become_a_snapshot_and_sends_are_followed() {
        let phone = of("health-test-phone");
        assert_eq!(phone.snapshot(), Health::default());
        phone.connected(true);
        phone.reader("auto:wechat-8.0");
        assert_eq!(phone.snapshot().reader_mode.as_deref(), Some("tree"));
        phone.reader("auto:vision:tesseract");
        phone.screen_read();
        let seen = phone.snapshot();
        assert_eq!(seen.connected, Some(true));
        assert_eq!(seen.reader_mode.as_deref(), Some("vision"));
        assert!(seen.last_screen_read.is_some());
        assert!(seen.last_message_read.is_none());

        let (tx, rx) = broadcast::channel(8);
        let following = tokio::spawn(follow(rx));
        tx.send(Activity::ReplyFailed {
            device: "health-test-robot".into(),
            conversation: "c".into(),
            reason: "HTTP 502".into(),
        })
        .expect("sent");
        tx.send(Activity::Replied {
            device: "health-test-robot".into(),
            conversation: "c".into(),
            text: "t".into(),
        })
        .expect("sent");
        drop(tx);
        following.await.expect("followed to the end");
        let robot = of("health-test-robot").snapshot();
        assert!(robot.last_success.is_some(), "{robot:?}");
        assert_eq!(
            robot.last_failure.map(|f| f.reason),
            Some("HTTP 502".to_string())
        );
        assert_eq!(robot.connected, None);
    }
}
