//! The access token a platform's API wants with each call (WeCom's `access_token`,
//! Feishu's `tenant_access_token`, DingTalk's and QQ's app tokens), cached until shortly
//! before it expires, as every one of those platforms asks (they rate-limit the fetch).
//!
//! The rules the four share, each adapter citing its platform's own numbers: a token is
//! fetched again `margin` before the platform says it expires (a short-lived one keeps
//! half its life, so it is used at all); a lifetime from the network is capped, since a
//! huge one would overflow the clock's arithmetic; one fetch at a time, so concurrent
//! sends wait for one answer instead of each asking; and a token the platform refused is
//! forgotten only if no other send has replaced it meanwhile.

use std::future::Future;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use super::SendError;

/// A token and when to stop using it.
#[derive(Debug, Clone)]
struct Cached {
    token: String,
    refresh_at: Instant,
}

/// One adapter's cached token.
#[derive(Debug)]
pub struct TokenCache {
    margin: Duration,
    life_max: Duration,
    cached: Mutex<Option<Cached>>,
}

impl TokenCache {
    /// `margin`: how long before its expiry a token is replaced; `life_max`: the longest
    /// lifetime believed.
    pub fn new(margin: Duration, life_max: Duration) -> TokenCache {
        TokenCache {
            margin,
            life_max,
            cached: Mutex::new(None),
        }
    }

    /// The cached token while it is fresh, else the one `fetch` gets with how long it
    /// lives. The lock is held while fetching: concurrent callers wait for that fetch.
    pub async fn get<F, Fut>(&self, fetch: F) -> Result<String, SendError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(String, Duration), SendError>>,
    {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| Instant::now() < t.refresh_at) {
            return Ok(token.token.clone());
        }
        let (token, expires_in) = fetch().await?;
        *cached = Some(Cached {
            token: token.clone(),
            refresh_at: self.refresh_at(expires_in, Instant::now()),
        });
        Ok(token)
    }

    /// Forgets `token` (the platform refused it) unless another call has already
    /// replaced it.
    pub async fn forget(&self, token: &str) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|t| t.token == token) {
            *cached = None;
        }
    }

    /// When a token fetched at `now`, said to live `expires_in`, is replaced.
    pub fn refresh_at(&self, expires_in: Duration, now: Instant) -> Instant {
        let life = expires_in.min(self.life_max);
        now + life - self.margin.min(life / 2)
    }

    /// Puts `token` in the cache as if just fetched: tests start from a stale token.
    #[cfg(test)]
    pub async fn set(&self, token: &str, expires_in: Duration) {
        *self.cached.lock().await = Some(Cached {
            token: token.to_string(),
            refresh_at: self.refresh_at(expires_in, Instant::now()),
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[test]
    fn a_token_is_replaced_a_margin_before_it_expires_and_a_short_one_at_half_life() {
        let cache = TokenCache::new(Duration::from_secs(300), Duration::from_secs(86_400));
        let now = Instant::now();
        let secs = |s: u64| Duration::from_secs(s);
        assert_eq!(cache.refresh_at(secs(7200), now), now + secs(6900));
        assert_eq!(cache.refresh_at(secs(60), now), now + secs(30));
        // A lifetime past the cap is the cap's.
        assert_eq!(
            cache.refresh_at(secs(u64::MAX / 4), now),
            now + secs(86_100)
        );
        assert_eq!(cache.refresh_at(Duration::ZERO, now), now);
    }

    #[tokio::test(start_paused = true)]
    async fn one_fetch_serves_until_the_refresh_and_a_refused_token_is_forgotten_once() {
        let cache = Arc::new(TokenCache::new(
            Duration::from_secs(300),
            Duration::from_secs(7200),
        ));
        let fetches = Arc::new(AtomicU32::new(0));
        let get = |cache: Arc<TokenCache>, fetches: Arc<AtomicU32>| async move {
            cache
                .get(|| async {
                    // Slow enough that concurrent callers overlap it.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let n = fetches.fetch_add(1, Ordering::SeqCst) + 1;
                    Ok((format!("t{n}"), Duration::from_secs(7200)))
                })
                .await
        };
        let (a, b) = tokio::join!(
            get(cache.clone(), fetches.clone()),
            get(cache.clone(), fetches.clone())
        );
        assert_eq!((a, b), (Ok("t1".into()), Ok("t1".into())));
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(6899)).await;
        assert_eq!(get(cache.clone(), fetches.clone()).await, Ok("t1".into()));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(get(cache.clone(), fetches.clone()).await, Ok("t2".into()));
        // A refusal of a token already replaced keeps the new one.
        cache.forget("t1").await;
        assert_eq!(get(cache.clone(), fetches.clone()).await, Ok("t2".into()));
        cache.forget("t2").await;
        assert_eq!(get(cache.clone(), fetches.clone()).await, Ok("t3".into()));
        // A failed fetch caches nothing.
        cache.forget("t3").await;
        let failed = cache
            .get(|| async {
                Err(SendError::Retry {
                    reason: "down".into(),
                    after: None,
                })
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(get(cache.clone(), fetches.clone()).await, Ok("t4".into()));
    }
}
