//! Outbound subscriptions: programs that asked, through the REST API, to be told of
//! events of chosen types. Each matching event becomes an action to the reserved target
//! [`TARGET`] (the conversation is the subscription's id, the text the event's JSON),
//! stored with the event's other actions in the same step, so it is posted exactly as
//! reliably as an answer is sent: once the event is handled it will go out, retried with
//! backoff and `Retry-After`, in order per subscription, and a delivery that failed for
//! good stays as a failed action that `POST /api/v1/actions/{id}/retry` sends again.
//!
//! Every POST is signed: `X-Tapwire-Signature-256: sha256=<hex>` is HMAC-SHA256 over the
//! exact body with the subscription's secret (the scheme GitHub's webhooks use, so the
//! receivers' libraries for it work). The secret is derived from the key in the
//! environment variable `[server.api] subscription_key_env` names and the subscription's
//! id: nothing secret is stored in the database, and without the key no subscription can
//! be made.

pub mod sender;

use std::sync::{Arc, RwLock};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::adapter::check::Secret;
use crate::event::{Action, Event};
use crate::router::Pattern;
use crate::store::{SharedStore, StoreError, StoredSubscription};

/// The target subscription deliveries name, reserved: no phone or adapter may be called so.
pub const TARGET: &str = "subscriptions";

/// The header carrying the body's signature.
pub const SIGNATURE_HEADER: &str = "X-Tapwire-Signature-256";

type HmacSha256 = Hmac<Sha256>;

/// The key subscription secrets derive from.
#[derive(Clone)]
pub struct SubscriptionKey(Secret);

impl std::fmt::Debug for SubscriptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SubscriptionKey(…)")
    }
}

impl SubscriptionKey {
    /// None for an empty key: a blank variable must not sign with a guessable secret.
    pub fn new(key: impl Into<String>) -> Option<SubscriptionKey> {
        let key: String = key.into();
        (!key.trim().is_empty()).then(|| SubscriptionKey(Secret::from(key)))
    }

    /// The key in the environment variable `env`; None when unset or blank.
    pub fn from_env(env: &str) -> Option<SubscriptionKey> {
        std::env::var(env).ok().and_then(SubscriptionKey::new)
    }

    /// The secret a subscription's receiver checks signatures with: hex of
    /// HMAC-SHA256(key, "tapwire subscription " + id). The same for the same id and key,
    /// so it needs no storing, and one subscription's secret tells nothing of another's.
    pub fn secret_for(&self, subscription: &str) -> String {
        let mut mac = mac(self.0.as_bytes());
        mac.update(b"tapwire subscription ");
        mac.update(subscription.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length; `new_from_slice` only fails for fixed-size MACs.
    <HmacSha256 as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC keys have no length limit"))
}

/// `sha256=<hex>`: the signature header's value for `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = mac(secret.as_bytes());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A subscription with its patterns parsed.
#[derive(Debug, Clone)]
struct Live {
    stored: StoredSubscription,
    patterns: Vec<Pattern>,
}

/// Why a subscription could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The subscriptions in force: read on every handled event, so kept in memory and
/// changed only through here (the store first, then memory).
pub struct Subscriptions {
    store: SharedStore,
    key: SubscriptionKey,
    live: RwLock<Arc<Vec<Live>>>,
}

impl Subscriptions {
    /// Loads what the store holds. One whose patterns no longer parse (a database edited
    /// by hand) is skipped with a warning rather than stopping the start.
    pub async fn load(
        store: SharedStore,
        key: SubscriptionKey,
    ) -> Result<Subscriptions, StoreError> {
        let mut live = Vec::new();
        for stored in store.subscriptions().await? {
            match parse_patterns(&stored.events) {
                Ok(patterns) => live.push(Live { stored, patterns }),
                Err(error) => {
                    tracing::warn!(subscription = %stored.id, %error, "stored subscription skipped")
                }
            }
        }
        if !live.is_empty() {
            tracing::info!(subscriptions = live.len(), "outbound subscriptions loaded");
        }
        Ok(Subscriptions {
            store,
            key,
            live: RwLock::new(Arc::new(live)),
        })
    }

    fn snapshot(&self) -> Arc<Vec<Live>> {
        self.live.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The secret `id`'s receiver checks signatures with.
    pub fn secret_for(&self, id: &str) -> String {
        self.key.secret_for(id)
    }

    pub fn list(&self) -> Vec<StoredSubscription> {
        self.snapshot().iter().map(|l| l.stored.clone()).collect()
    }

    pub fn get(&self, id: &str) -> Option<StoredSubscription> {
        self.snapshot()
            .iter()
            .find(|l| l.stored.id == id)
            .map(|l| l.stored.clone())
    }

    /// Stores and starts a subscription; the patterns and the URL are checked first.
    pub async fn add(&self, subscription: StoredSubscription) -> Result<(), SubscriptionError> {
        let patterns = parse_patterns(&subscription.events).map_err(SubscriptionError::Invalid)?;
        check_url(&subscription.url).map_err(SubscriptionError::Invalid)?;
        self.store.add_subscription(&subscription).await?;
        let mut live = self.live.write().unwrap_or_else(|p| p.into_inner());
        let mut next: Vec<Live> = live
            .iter()
            .filter(|l| l.stored.id != subscription.id)
            .cloned()
            .collect();
        next.push(Live {
            stored: subscription,
            patterns,
        });
        *live = Arc::new(next);
        Ok(())
    }

    /// Ends a subscription; deliveries still queued for it then fail, saying so.
    pub async fn remove(&self, id: &str) -> Result<bool, StoreError> {
        let removed = self.store.remove_subscription(id).await?;
        let mut live = self.live.write().unwrap_or_else(|p| p.into_inner());
        *live = Arc::new(live.iter().filter(|l| l.stored.id != id).cloned().collect());
        Ok(removed)
    }

    /// One delivery per subscription whose patterns match `event`'s type. Events about
    /// subscriptions' own deliveries do not exist, so this cannot feed itself.
    pub fn deliveries(&self, event: &Event) -> Result<Vec<Action>, serde_json::Error> {
        let live = self.snapshot();
        let mut matching = live
            .iter()
            .filter(|l| l.patterns.iter().any(|p| p.matches(&event.event_type)))
            .peekable();
        if matching.peek().is_none() {
            return Ok(Vec::new());
        }
        let body = serde_json::to_string(event)?;
        Ok(matching
            .map(|l| Action::send(TARGET, l.stored.id.clone(), body.clone()))
            .collect())
    }
}

fn parse_patterns(events: &[String]) -> Result<Vec<Pattern>, String> {
    if events.is_empty() {
        return Err("events: name at least one event type (message.received, message.*, *)".into());
    }
    events
        .iter()
        .enumerate()
        .map(|(i, e)| Pattern::parse(e).map_err(|error| format!("events[{i}]: {error}")))
        .collect()
}

fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("url: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err("url: must be an http(s) URL with a host".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{now_rfc3339, test_message};
    use crate::store::MemoryStore;

    fn key() -> SubscriptionKey {
        SubscriptionKey::new("test key").expect("key")
    }

    fn subscription(id: &str, events: &[&str]) -> StoredSubscription {
        StoredSubscription {
            id: id.into(),
            url: "http://127.0.0.1:9/hook".into(),
            events: events.iter().map(|e| e.to_string()).collect(),
            created_at: now_rfc3339(),
        }
    }

    #[test]
    fn the_signature_is_githubs_hmac_sha256_over_the_body() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn secrets_differ_per_subscription_and_key_and_a_blank_key_is_none() {
        let key = SubscriptionKey::new("k1").expect("key");
        let other = SubscriptionKey::new("k2").expect("key");
        assert_eq!(key.secret_for("sub_a"), key.secret_for("sub_a"));
        assert_ne!(key.secret_for("sub_a"), key.secret_for("sub_b"));
        assert_ne!(key.secret_for("sub_a"), other.secret_for("sub_a"));
        assert_eq!(key.secret_for("sub_a").len(), 64);
        assert!(SubscriptionKey::new("  ").is_none());
        assert_eq!(format!("{key:?}"), "SubscriptionKey(…)");
    }

    #[tokio::test]
    async fn matching_events_become_one_delivery_per_subscription_and_survive_a_reload() {
        let store: SharedStore = Arc::new(MemoryStore::default());
        let subs = Subscriptions::load(store.clone(), key())
            .await
            .expect("load");
        subs.add(subscription("sub_msgs", &["message.*"]))
            .await
            .expect("add");
        subs.add(subscription("sub_dev", &["device.connected"]))
            .await
            .expect("add");
        let event = test_message("phone", "chat", "hello", false);
        let deliveries = subs.deliveries(&event).expect("json");
        assert_eq!(deliveries.len(), 1);
        let Action::Send {
            target,
            conversation,
            text,
            ..
        } = &deliveries[0];
        assert_eq!(
            (target.as_str(), conversation.as_str()),
            (TARGET, "sub_msgs")
        );
        let posted: Event = serde_json::from_str(text).expect("the event's JSON");
        assert_eq!(posted, event);

        let reloaded = Subscriptions::load(store, key()).await.expect("load");
        assert_eq!(reloaded.list().len(), 2);
        assert!(reloaded.remove("sub_msgs").await.expect("remove"));
        assert!(reloaded.deliveries(&event).expect("json").is_empty());
        assert!(!reloaded.remove("sub_msgs").await.expect("remove"));
    }

    #[tokio::test]
    async fn bad_patterns_and_urls_are_refused_naming_the_field() {
        let store: SharedStore = Arc::new(MemoryStore::default());
        let subs = Subscriptions::load(store, key()).await.expect("load");
        let refused = |r: Result<(), SubscriptionError>| match r {
            Err(SubscriptionError::Invalid(m)) => m,
            other => panic!("not refused: {other:?}"),
        };
        assert!(refused(subs.add(subscription("a", &[])).await).starts_with("events:"));
        assert!(
            refused(subs.add(subscription("a", &["message.*", "mess*"])).await)
                .starts_with("events[1]:")
        );
        let mut ftp = subscription("a", &["*"]);
        ftp.url = "ftp://example.com/x".into();
        assert!(refused(subs.add(ftp).await).starts_with("url:"));
        assert!(subs.list().is_empty());
    }
}
