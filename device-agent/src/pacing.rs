//! Answering at a person's pace. Accounts that answer in 50 ms, around the clock, at the
//! same rate in every chat get restricted by WeChat; users of every WeChat bot ask for
//! this. A reply waits as long as typing it would take (with jitter), two sends keep a
//! gap, a chat gets at most so many replies an hour, and nothing is sent in quiet hours.
//! A reply that must wait stays queued: pacing delays, it never drops.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// `[phones.pacing]` of `tapwire.toml`. The defaults look like a person typing on a
/// phone; `enabled = false` answers as fast as the phone allows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PacingConfig {
    pub enabled: bool,
    /// Pause before a reply starts being "typed": reading the message.
    pub think_ms: u64,
    /// Added per character of the reply.
    pub per_char_ms: u64,
    /// No reply waits longer than this for its length (a long answer is pasted, not typed).
    pub max_delay_ms: u64,
    /// Each delay is scaled by a random factor in 1 ± jitter.
    pub jitter: f64,
    /// Least time between two sends on the phone, in any chats.
    pub min_gap_ms: u64,
    /// Most replies in one chat within any hour.
    pub per_chat_per_hour: u32,
    /// `HH:MM-HH:MM` in the phone owner's local time (may wrap past midnight); replies
    /// due then wait until it ends.
    pub quiet_hours: Option<String>,
}

impl Default for PacingConfig {
    fn default() -> Self {
        PacingConfig {
            enabled: true,
            think_ms: 1_200,
            per_char_ms: 120,
            max_delay_ms: 8_000,
            jitter: 0.3,
            min_gap_ms: 2_500,
            per_chat_per_hour: 40,
            quiet_hours: None,
        }
    }
}

impl PacingConfig {
    /// No pacing at all: the controller's own speed (benchmarks, tests, the demo).
    pub fn off() -> PacingConfig {
        PacingConfig {
            enabled: false,
            ..PacingConfig::default()
        }
    }

    /// Checks the values a user wrote, naming the key that is wrong.
    pub fn check(&self) -> Result<(), PacingError> {
        if !(0.0..1.0).contains(&self.jitter) {
            return Err(PacingError::Invalid {
                key: "jitter",
                message: format!("{} is not in 0.0..1.0", self.jitter),
            });
        }
        if self.per_chat_per_hour == 0 {
            return Err(PacingError::Invalid {
                key: "per_chat_per_hour",
                message: "0 would never answer; use enabled = false to turn pacing off".into(),
            });
        }
        if let Some(quiet) = &self.quiet_hours {
            QuietHours::parse(quiet)?;
        }
        Ok(())
    }
}

/// One line for `config check`.
impl std::fmt::Display for PacingConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.enabled {
            return write!(f, "off (replies go out as fast as the phone allows)");
        }
        write!(
            f,
            "on: {} ms + {} ms per character before a reply (at most {} ms, ±{:.0} %), at least {} ms between sends, at most {} replies per chat per hour, quiet hours {}",
            self.think_ms,
            self.per_char_ms,
            self.max_delay_ms,
            self.jitter * 100.0,
            self.min_gap_ms,
            self.per_chat_per_hour,
            self.quiet_hours.as_deref().unwrap_or("none"),
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacingError {
    #[error("pacing.{key}: {message}")]
    Invalid { key: &'static str, message: String },
}

/// A daily window in minutes of the day; `start > end` wraps past midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    start: u16,
    end: u16,
}

impl QuietHours {
    pub fn parse(text: &str) -> Result<QuietHours, PacingError> {
        let invalid = || PacingError::Invalid {
            key: "quiet_hours",
            message: format!("{text:?} is not HH:MM-HH:MM (e.g. \"23:30-07:30\")"),
        };
        let minute = |hm: &str| -> Option<u16> {
            let (h, m) = hm.trim().split_once(':')?;
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            (h < 24 && m < 60).then_some(h * 60 + m)
        };
        let (start, end) = text.split_once('-').ok_or_else(invalid)?;
        let (start, end) = (
            minute(start).ok_or_else(invalid)?,
            minute(end).ok_or_else(invalid)?,
        );
        if start == end {
            return Err(invalid());
        }
        Ok(QuietHours { start, end })
    }

    /// How long from `minute` (of the day) until the window ends; zero outside it.
    fn remaining(&self, minute: u16) -> Duration {
        const DAY: u16 = 24 * 60;
        let inside = if self.start < self.end {
            (self.start..self.end).contains(&minute)
        } else {
            minute >= self.start || minute < self.end
        };
        if !inside {
            return Duration::ZERO;
        }
        let left = (self.end + DAY - minute) % DAY;
        Duration::from_secs(u64::from(left) * 60)
    }
}

/// A moment as pacing sees it: monotonic time for gaps and caps, the local minute of the
/// day for quiet hours. Tests make their own; the phone's actor asks the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    pub at: Instant,
    pub minute_of_day: u16,
}

/// Decides when each reply may go out. One per phone, owned by its actor.
#[derive(Debug)]
pub struct Pacer {
    config: PacingConfig,
    quiet: Option<QuietHours>,
    last_send: Option<Instant>,
    /// Sends per chat within the last hour, oldest first.
    recent: HashMap<String, VecDeque<Instant>>,
    rng: fastrand::Rng,
}

const HOUR: Duration = Duration::from_secs(3600);

impl Pacer {
    /// Assumes `config` passed [`PacingConfig::check`]; a bad quiet window is ignored.
    pub fn new(config: PacingConfig) -> Pacer {
        Pacer::with_seed(config, fastrand::u64(..))
    }

    /// Same decisions for the same seed (tests).
    pub fn with_seed(config: PacingConfig, seed: u64) -> Pacer {
        let quiet = config
            .quiet_hours
            .as_deref()
            .and_then(|q| QuietHours::parse(q).ok());
        Pacer {
            config,
            quiet,
            last_send: None,
            recent: HashMap::new(),
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    /// How long a reply of `text` waits after its message was read, as if typed.
    pub fn typing_delay(&mut self, text: &str) -> Duration {
        if !self.config.enabled {
            return Duration::ZERO;
        }
        let chars = u64::try_from(text.chars().count()).unwrap_or(u64::MAX);
        let base = self
            .config
            .think_ms
            .saturating_add(chars.saturating_mul(self.config.per_char_ms))
            .min(self.config.max_delay_ms);
        let factor = 1.0 + self.config.jitter * (self.rng.f64() * 2.0 - 1.0);
        Duration::from_millis(base).mul_f64(factor.max(0.0))
    }

    /// How long from `now` until a send into `chat` is allowed: the gap since the last
    /// send, the chat's hourly cap, quiet hours. Zero means now.
    pub fn wait(&mut self, chat: &str, now: Moment) -> Duration {
        if !self.config.enabled {
            return Duration::ZERO;
        }
        let gap = Duration::from_millis(self.config.min_gap_ms);
        let gap_left = self.last_send.map_or(Duration::ZERO, |last| {
            (last + gap).saturating_duration_since(now.at)
        });
        let cap = usize::try_from(self.config.per_chat_per_hour).unwrap_or(usize::MAX);
        let cap_left = match self.recent.get_mut(chat) {
            Some(sends) => {
                while sends
                    .front()
                    .is_some_and(|first| now.at.saturating_duration_since(*first) >= HOUR)
                {
                    sends.pop_front();
                }
                match sends.front() {
                    Some(first) if sends.len() >= cap => {
                        (*first + HOUR).saturating_duration_since(now.at)
                    }
                    _ => Duration::ZERO,
                }
            }
            None => Duration::ZERO,
        };
        let quiet_left = self
            .quiet
            .map_or(Duration::ZERO, |q| q.remaining(now.minute_of_day));
        gap_left.max(cap_left).max(quiet_left)
    }

    /// The longest wait worth spending in a chat for a reply being "typed"; longer ones
    /// (a cap, quiet hours) are left for a later visit.
    pub fn stay_limit(&self) -> Duration {
        Duration::from_millis(self.config.max_delay_ms)
            .mul_f64(1.0 + self.config.jitter)
            .saturating_add(Duration::from_millis(self.config.min_gap_ms))
    }

    /// Notes a send into `chat` at `at`.
    pub fn sent(&mut self, chat: &str, at: Instant) {
        self.last_send = Some(at);
        if self.config.enabled {
            self.recent
                .entry(chat.to_string())
                .or_default()
                .push_back(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moment(start: Instant, after_ms: u64, minute_of_day: u16) -> Moment {
        Moment {
            at: start + Duration::from_millis(after_ms),
            minute_of_day,
        }
    }

    #[test]
    fn off_never_waits() {
        let mut pacer = Pacer::with_seed(PacingConfig::off(), 1);
        let start = Instant::now();
        assert_eq!(
            pacer.typing_delay("a long reply of many characters"),
            Duration::ZERO
        );
        for i in 0..100 {
            assert_eq!(pacer.wait("chat", moment(start, i, 0)), Duration::ZERO);
            pacer.sent("chat", start + Duration::from_millis(i));
        }
    }

    #[test]
    fn typing_grows_with_length_within_jitter_and_cap() {
        let mut pacer = Pacer::with_seed(PacingConfig::default(), 7);
        for _ in 0..200 {
            let short = pacer.typing_delay("好的");
            // 1200 + 2 × 120 = 1440 ms ± 30 %
            assert!(
                short >= Duration::from_millis(1008) && short <= Duration::from_millis(1872),
                "{short:?}"
            );
            let long = pacer.typing_delay(&"字".repeat(500));
            assert!(long <= Duration::from_millis(8000 * 13 / 10), "{long:?}");
            assert!(long >= Duration::from_millis(8000 * 7 / 10), "{long:?}");
        }
    }

    #[test]
    fn sends_keep_the_gap_and_the_hourly_cap() {
        let config = PacingConfig {
            min_gap_ms: 3_000,
            per_chat_per_hour: 3,
            ..PacingConfig::default()
        };
        let mut pacer = Pacer::with_seed(config, 1);
        let start = Instant::now();
        assert_eq!(pacer.wait("a", moment(start, 0, 600)), Duration::ZERO);
        pacer.sent("a", start);
        // Any chat waits for the gap.
        assert_eq!(
            pacer.wait("b", moment(start, 1_000, 600)),
            Duration::from_millis(2_000)
        );
        pacer.sent("a", start + Duration::from_secs(10));
        pacer.sent("a", start + Duration::from_secs(20));
        // The fourth reply into "a" waits until the first falls out of the hour.
        assert_eq!(
            pacer.wait("a", moment(start, 30_000, 600)),
            HOUR - Duration::from_secs(30)
        );
        assert_eq!(pacer.wait("b", moment(start, 30_000, 600)), Duration::ZERO);
        assert_eq!(
            pacer.wait("a", moment(start, 3_600_000, 660)),
            Duration::ZERO
        );
    }

    #[test]
    fn quiet_hours_hold_replies_until_they_end_even_across_midnight() {
        let config = PacingConfig {
            quiet_hours: Some("23:30-07:00".into()),
            ..PacingConfig::default()
        };
        let mut pacer = Pacer::with_seed(config, 1);
        let start = Instant::now();
        // 23:45 → 7 h 15 min to go; 06:59 → one minute; 07:00 and noon → free.
        assert_eq!(
            pacer.wait("a", moment(start, 0, 23 * 60 + 45)),
            Duration::from_secs((7 * 60 + 15) * 60)
        );
        assert_eq!(
            pacer.wait("a", moment(start, 0, 6 * 60 + 59)),
            Duration::from_secs(60)
        );
        assert_eq!(pacer.wait("a", moment(start, 0, 7 * 60)), Duration::ZERO);
        assert_eq!(pacer.wait("a", moment(start, 0, 12 * 60)), Duration::ZERO);
    }

    #[test]
    fn bad_values_name_their_key() {
        for (config, key) in [
            (
                PacingConfig {
                    jitter: 1.5,
                    ..PacingConfig::default()
                },
                "jitter",
            ),
            (
                PacingConfig {
                    per_chat_per_hour: 0,
                    ..PacingConfig::default()
                },
                "per_chat_per_hour",
            ),
            (
                PacingConfig {
                    quiet_hours: Some("25:00-07:00".into()),
                    ..PacingConfig::default()
                },
                "quiet_hours",
            ),
            (
                PacingConfig {
                    quiet_hours: Some("late".into()),
                    ..PacingConfig::default()
                },
                "quiet_hours",
            ),
        ] {
            let error = config.check().expect_err("invalid").to_string();
            assert!(error.contains(key), "{error}");
        }
    }
}
