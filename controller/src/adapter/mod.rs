//! Platform adapters: the sources and targets that are not phones (DESIGN.md §1). An
//! action whose target names an adapter is carried out by it, through one queue per
//! adapter (in order, at the platform's pace). Built so far: the WeCom group robot, a
//! send-only target (forward a WeChat group to a WeCom group, post a duty reminder).

pub mod wecom_robot;

use std::time::Duration;

use serde::Deserialize;

use crate::webhook::backoff_delay;
use wecom_robot::{WecomRobot, WecomRobotConfig};

/// Tries per message piece before the action is failed.
const ATTEMPTS: u32 = 6;
const BACKOFF: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// One `[adapters.NAME]` of `tapwire.toml`; `type` selects the platform.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AdapterConfig {
    WecomRobot(WecomRobotConfig),
}

impl AdapterConfig {
    /// The platform its events and replies belong to (formatting, permissions' user ids).
    pub fn platform(&self) -> &'static str {
        match self {
            AdapterConfig::WecomRobot(_) => "wecom",
        }
    }

    /// What is wrong with it, if anything, in words for `tapwire config check`.
    pub fn check(&self) -> Result<(), String> {
        match self {
            AdapterConfig::WecomRobot(robot) => robot.check().map(drop),
        }
    }
}

#[derive(Debug)]
pub enum Adapter {
    WecomRobot(WecomRobot),
}

/// Why a send did not go through, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("{reason}")]
    Retry {
        reason: String,
        /// The platform said when (a rate limit); otherwise backoff decides.
        after: Option<Duration>,
    },
    #[error("{0}")]
    Permanent(String),
}

impl Adapter {
    pub fn build(config: &AdapterConfig) -> Result<Adapter, String> {
        match config {
            AdapterConfig::WecomRobot(robot) => WecomRobot::new(robot).map(Adapter::WecomRobot),
        }
    }

    /// Sends `text` to `conversation`, cut into as many messages as the platform needs,
    /// each retried with backoff on a passing failure. A retry resumes at the piece that
    /// failed, so the pieces before it are not posted twice.
    pub async fn deliver(&self, conversation: &str, text: &str) -> Result<(), String> {
        let pieces = match self {
            Adapter::WecomRobot(_) => wecom_robot::split_text(text, wecom_robot::MAX_TEXT_BYTES),
        };
        let count = pieces.len();
        for (index, piece) in pieces.into_iter().enumerate() {
            let mut attempt = 1;
            loop {
                let result = match self {
                    // A robot posts into its one group: the conversation is not needed.
                    Adapter::WecomRobot(robot) => robot.post(piece).await,
                };
                let described = |reason: &str| {
                    let part = if count > 1 {
                        format!(" (part {} of {count})", index + 1)
                    } else {
                        String::new()
                    };
                    format!("{reason}{part} after {attempt} attempt(s)")
                };
                match result {
                    Ok(()) => break,
                    Err(SendError::Permanent(reason)) => return Err(described(&reason)),
                    Err(SendError::Retry { reason, .. }) if attempt >= ATTEMPTS => {
                        return Err(described(&reason));
                    }
                    Err(SendError::Retry { reason, after }) => {
                        let wait = after.unwrap_or_else(|| {
                            backoff_delay(BACKOFF, BACKOFF_MAX, attempt, fastrand::f64())
                        });
                        tracing::warn!(conversation, %reason, attempt, retry_in = ?wait, "send failed; retrying");
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                    }
                }
            }
        }
        Ok(())
    }
}
