//! The pace of a send-only bot that posts into a group (WeCom's group robot, Feishu's
//! and DingTalk's custom bots): each platform allows so many posts in any window of time
//! (WeCom 20 a minute, DingTalk 20 a minute, Feishu 5 a second and 100 a minute) and
//! answers more with an error, so the adapter waits for its turn instead of being
//! refused.
//!
//! The posts of the longest window are remembered, and one more may go when, for every
//! limit, fewer than its count went out in its window before now. That is the platforms'
//! own rule, "N in any window". A token bucket or GCRA (`governor`) is not the same: it
//! refills as it goes, so after a burst it lets nearly 2N through within one window
//! (N at the end of one, N more at the start of the next), which these platforms refuse.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// At most `count` posts in any `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub count: usize,
    pub window: Duration,
}

impl Limit {
    pub const fn per_minute(count: usize) -> Limit {
        Limit {
            count,
            window: Duration::from_secs(60),
        }
    }

    pub const fn per_second(count: usize) -> Limit {
        Limit {
            count,
            window: Duration::from_secs(1),
        }
    }
}

/// The recent posts, and the limits they are held to.
#[derive(Debug)]
pub struct Window {
    limits: Vec<Limit>,
    /// Oldest first; none older than the longest window.
    sent: VecDeque<Instant>,
}

impl Window {
    /// A limit of 0 is taken as 1: a bot that may never post is no bot.
    pub fn new(limits: &[Limit]) -> Window {
        Window {
            limits: limits
                .iter()
                .map(|l| Limit {
                    count: l.count.max(1),
                    window: l.window,
                })
                .collect(),
            sent: VecDeque::new(),
        }
    }

    /// How long from `now` until one more post keeps within every limit; posts older than
    /// the longest window are forgotten.
    pub fn wait(&mut self, now: Instant) -> Duration {
        let longest = self
            .limits
            .iter()
            .map(|l| l.window)
            .max()
            .unwrap_or_default();
        while self
            .sent
            .front()
            .is_some_and(|&at| now.duration_since(at) >= longest)
        {
            self.sent.pop_front();
        }
        let mut wait = Duration::ZERO;
        for limit in &self.limits {
            // The post that has to leave the window before one more may go: the
            // `count`-th most recent.
            let Some(index) = self.sent.len().checked_sub(limit.count) else {
                continue;
            };
            if let Some(&at) = self.sent.get(index) {
                wait = wait.max(limit.window.saturating_sub(now.duration_since(at)));
            }
        }
        wait
    }

    pub fn record(&mut self, now: Instant) {
        self.sent.push_back(now);
    }

    /// How many posts are remembered.
    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.sent.len()
    }
}

/// A [`Window`] shared by an adapter's concurrent sends.
#[derive(Debug)]
pub struct Pace {
    window: Mutex<Window>,
}

impl Pace {
    pub fn new(limits: &[Limit]) -> Pace {
        Pace {
            window: Mutex::new(Window::new(limits)),
        }
    }

    /// Waits until one more post keeps within the limits, and counts it as sent.
    pub async fn take_turn(&self, adapter: &str) {
        loop {
            let wait = {
                let mut window = self.window.lock().await;
                let now = Instant::now();
                let wait = window.wait(now);
                if wait.is_zero() {
                    window.record(now);
                    return;
                }
                wait
            };
            tracing::debug!(adapter, ?wait, "the platform's send rate is full; waiting");
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn one_limit_allows_its_count_then_waits_for_the_oldest() {
        let start = Instant::now();
        let mut window = Window::new(&[Limit::per_minute(3)]);
        for i in 0..3 {
            let at = start + Duration::from_secs(i);
            assert_eq!(window.wait(at), Duration::ZERO);
            window.record(at);
        }
        assert_eq!(
            window.wait(start + Duration::from_secs(10)),
            Duration::from_secs(50)
        );
        // Once the first post is a minute old, one more may go.
        assert_eq!(window.wait(start + Duration::from_secs(60)), Duration::ZERO);
        assert_eq!(window.remembered(), 2);
    }

    #[test]
    fn two_limits_each_hold() {
        let start = Instant::now();
        let mut window = Window::new(&[Limit::per_second(5), Limit::per_minute(100)]);
        for i in 0..5 {
            assert_eq!(window.wait(start), Duration::ZERO, "post {i}");
            window.record(start);
        }
        assert_eq!(window.wait(start), Duration::from_secs(1));
        assert_eq!(window.wait(start + ms(400)), ms(600));
        // A hundred spread over the minute: the next waits for the oldest to age out.
        let mut window = Window::new(&[Limit::per_second(5), Limit::per_minute(100)]);
        for i in 0..100 {
            window.record(start + ms(i * 500));
        }
        assert_eq!(window.wait(start + ms(50_000)), Duration::from_secs(10));
        assert_eq!(window.wait(start + Duration::from_secs(60)), Duration::ZERO);
        assert_eq!(window.remembered(), 99);
    }

    /// The difference from a token bucket: after a burst at the end of a minute, the start
    /// of the next is not a fresh allowance.
    #[test]
    fn a_burst_is_not_followed_by_a_second_one_within_the_window() {
        let start = Instant::now();
        let mut window = Window::new(&[Limit::per_minute(20)]);
        let late = start + Duration::from_secs(59);
        for _ in 0..20 {
            assert_eq!(window.wait(late), Duration::ZERO);
            window.record(late);
        }
        assert_eq!(
            window.wait(start + Duration::from_secs(61)),
            Duration::from_secs(58)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn taking_turns_sleeps_until_the_window_has_room() {
        let pace = Pace::new(&[Limit::per_minute(2)]);
        let start = Instant::now();
        pace.take_turn("t").await;
        pace.take_turn("t").await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        pace.take_turn("t").await;
        assert_eq!(start.elapsed(), Duration::from_secs(60));
    }
}
