//! What an iLink adapter keeps in the store: the login (token and base URL), the long
//! poll's cursor, and per user the latest `context_token` with the budget of replies it
//! still allows.
//!
//! They live where a phone keeps its read positions ([`Store::watermark`] /
//! [`Store::record`], keyed by source and a name), which is what the cursor is: a
//! reader's position. The cursor is stored in the same step as the events it moves past,
//! so a crash leaves both or neither: nothing is skipped, and a batch fetched again is
//! stored once (events are keyed by message id).
//!
//! The reply budget: iLink lets a bot write to a user only after the user wrote to it,
//! and then at most [`MAX_REPLIES`] messages within [`WINDOW`] of the user's last
//! message; the user's next message opens a new budget. The protocol document does not
//! state it; it is what iLink enforces (DESIGN.md §6) and what the open implementations
//! learned from its refusals (hermes-agent #31131 counts about ten sends per
//! `context_token`). It is kept here, where the reason can be told, rather than left to
//! surface as an opaque `ret = -2`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::store::{ReadBatch, Recorded, SharedStore, StoreError};

/// Replies iLink takes after one message of the user.
pub const MAX_REPLIES: u32 = 10;
/// How long after the user's last message the bot may still answer.
pub const WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

/// The key names under the adapter's source. A user id is never one of them (iLink's
/// ids are `…@im.wechat`), so the per-user keys cannot collide.
const CURSOR: &str = "ilink:cursor";
const LOGIN: &str = "ilink:login";
const CONTACT_PREFIX: &str = "ilink:contact:";

/// A login's result, as `tapwire ilink login` stores it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    pub token: String,
    /// The `baseurl` the login answered with: where this bot's API is.
    pub base_url: String,
    #[serde(default)]
    pub bot_id: String,
    /// Who scanned the QR code.
    #[serde(default)]
    pub user_id: String,
    #[serde(default)]
    pub saved_at: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("base_url", &self.base_url)
            .field("bot_id", &self.bot_id)
            .field("saved_at", &self.saved_at)
            .finish_non_exhaustive()
    }
}

/// What is known of one user: the `context_token` of their latest message (sends must
/// pass it back), when that message was written, and how many replies went out since.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub context_token: String,
    /// The message that opened the budget: a redelivery of it does not open another.
    #[serde(default)]
    pub message_id: Option<String>,
    /// Unix milliseconds of the user's latest message.
    pub since_ms: u64,
    /// Replies sent since then.
    pub sent: u32,
}

impl Contact {
    /// A message from the user: it becomes the latest, with a fresh budget, unless it is
    /// the latest already (a redelivery) or older than it (a late redelivery must not
    /// reopen the budget); `None` then.
    pub fn note(
        current: Option<&Contact>,
        message_id: Option<&str>,
        context_token: &str,
        at_ms: u64,
    ) -> Option<Contact> {
        if let Some(current) = current {
            let same = message_id.is_some() && current.message_id.as_deref() == message_id;
            if same || at_ms < current.since_ms {
                return None;
            }
        }
        Some(Contact {
            context_token: context_token.to_string(),
            message_id: message_id.map(str::to_string),
            since_ms: at_ms,
            sent: 0,
        })
    }

    /// Whether one more reply may go out at `now_ms`, and if not, why, in words for the
    /// action's failure.
    pub fn allows(&self, now_ms: u64) -> Result<(), String> {
        let window_ms = u64::try_from(WINDOW.as_millis()).unwrap_or(u64::MAX);
        let age = now_ms.saturating_sub(self.since_ms);
        if age >= window_ms {
            return Err(format!(
                "the user must write again before the bot can answer: iLink allows {MAX_REPLIES} messages within 24 h of their last message, which was {} h ago",
                age / 3_600_000
            ));
        }
        if self.sent >= MAX_REPLIES {
            return Err(format!(
                "the user must write again before the bot can answer: iLink allows {MAX_REPLIES} messages within 24 h of their last message, and {} have been sent since",
                self.sent
            ));
        }
        Ok(())
    }
}

/// The reason given when nobody wrote first.
pub fn never_wrote(user: &str) -> String {
    format!(
        "{user} has not written to this bot: iLink lets a bot message only users who wrote to it first (and answer with at most {MAX_REPLIES} messages within 24 h of their last message)"
    )
}

/// The adapter's keys in the store.
#[derive(Clone)]
pub struct Saved {
    store: SharedStore,
    source: String,
}

impl Saved {
    pub fn new(store: SharedStore, source: &str) -> Saved {
        Saved {
            store,
            source: source.to_string(),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.store.watermark(&self.source, key).await
    }

    async fn put(&self, key: &str, value: &str, events: &[Event]) -> Result<Recorded, StoreError> {
        self.store
            .record(ReadBatch {
                device: &self.source,
                conversation: key,
                watermark: value,
                events,
                delivered: &[],
                unconfirmed: &[],
            })
            .await
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        match self.get(key).await? {
            None => Ok(None),
            Some(text) => {
                serde_json::from_str(&text)
                    .map(Some)
                    .map_err(|source| StoreError::Corrupt {
                        what: "iLink state",
                        id: format!("{}/{key}", self.source),
                        source,
                    })
            }
        }
    }

    pub async fn login(&self) -> Result<Option<Login>, StoreError> {
        self.get_json(LOGIN).await
    }

    /// Stores a new login. A different bot starts its long poll afresh: the cursor was
    /// the other bot's.
    pub async fn put_login(&self, login: &Login) -> Result<(), StoreError> {
        let previous = self.login().await.ok().flatten();
        if previous.is_some_and(|p| p.bot_id != login.bot_id) {
            self.put(CURSOR, "", &[]).await?;
        }
        self.put(LOGIN, &serde_json::to_string(login)?, &[]).await?;
        Ok(())
    }

    pub async fn cursor(&self) -> Result<String, StoreError> {
        Ok(self.get(CURSOR).await?.unwrap_or_default())
    }

    /// Stores a batch's events and the cursor after them, in one step; returns the
    /// events not stored before.
    pub async fn advance(&self, cursor: &str, events: &[Event]) -> Result<Vec<Event>, StoreError> {
        Ok(self.put(CURSOR, cursor, events).await?.fresh)
    }

    pub async fn contact(&self, user: &str) -> Result<Option<Contact>, StoreError> {
        self.get_json(&format!("{CONTACT_PREFIX}{user}")).await
    }

    pub async fn put_contact(&self, user: &str, contact: &Contact) -> Result<(), StoreError> {
        self.put(
            &format!("{CONTACT_PREFIX}{user}"),
            &serde_json::to_string(contact)?,
            &[],
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::{MemoryStore, SqliteStore};

    const HOUR_MS: u64 = 3_600_000;

    #[test]
    fn a_budget_opens_with_each_new_message_and_closes_at_ten_or_a_day() {
        let first = Contact::note(None, Some("m1"), "ctx-1", 1_000).expect("new");
        assert_eq!(first.sent, 0);
        assert!(first.allows(1_000).is_ok());
        let mut used = first.clone();
        used.sent = MAX_REPLIES - 1;
        assert!(used.allows(2_000).is_ok());
        used.sent = MAX_REPLIES;
        let refused = used.allows(2_000).expect_err("ten sent");
        assert!(
            refused.contains("must write again") && refused.contains("10 messages"),
            "{refused}"
        );
        let late = first.allows(1_000 + 24 * HOUR_MS).expect_err("a day later");
        assert!(late.contains("24 h ago"), "{late}");
        assert!(first.allows(1_000 + 24 * HOUR_MS - 1).is_ok());

        // The same message again, or an older one: nothing reopens.
        assert_eq!(Contact::note(Some(&used), Some("m1"), "ctx-1", 1_000), None);
        assert_eq!(Contact::note(Some(&used), Some("m0"), "ctx-0", 500), None);
        // A newer one: a new token and a fresh budget.
        let next = Contact::note(Some(&used), Some("m2"), "ctx-2", 5_000).expect("newer");
        assert_eq!((next.context_token.as_str(), next.sent), ("ctx-2", 0));
        // Without message ids, time alone decides.
        assert!(Contact::note(Some(&next), None, "ctx-3", 5_000).is_some());
        assert!(never_wrote("u@im.wechat").contains("wrote to it first"));
    }

    fn event(key: &str) -> Event {
        let mut event = crate::event::test_message("wx", "u@im.wechat", "hi", false);
        event.idempotency_key = key.into();
        event.id = format!("ev_{key}");
        event
    }

    async fn state_round_trips(store: SharedStore) {
        let saved = Saved::new(store.clone(), "wx");
        assert_eq!(saved.cursor().await.expect("cursor"), "");
        assert_eq!(saved.login().await.expect("login"), None);
        assert_eq!(saved.contact("u@im.wechat").await.expect("contact"), None);

        // A batch and its cursor in one step; fetched again, nothing is fresh.
        let fresh = saved
            .advance("c1", &[event("a"), event("b")])
            .await
            .expect("advance");
        assert_eq!(fresh.len(), 2);
        assert_eq!(saved.cursor().await.expect("cursor"), "c1");
        let again = saved
            .advance("c1", &[event("a"), event("b")])
            .await
            .expect("again");
        assert!(again.is_empty());

        let contact = Contact::note(None, Some("m1"), "ctx", 7).expect("contact");
        saved
            .put_contact("u@im.wechat", &contact)
            .await
            .expect("put");
        assert_eq!(
            saved.contact("u@im.wechat").await.expect("get"),
            Some(contact)
        );

        let login = Login {
            token: "tok".into(),
            base_url: "https://ilinkai.weixin.qq.com".into(),
            bot_id: "b1@im.bot".into(),
            user_id: "u@im.wechat".into(),
            saved_at: "now".into(),
        };
        saved.put_login(&login).await.expect("login");
        assert_eq!(saved.login().await.expect("login"), Some(login.clone()));
        assert!(
            !format!("{login:?}").contains("tok\""),
            "the token is not shown"
        );
        // The same bot again keeps the cursor; another bot starts afresh.
        saved.put_login(&login).await.expect("login");
        assert_eq!(saved.cursor().await.expect("cursor"), "c1");
        let other = Login {
            bot_id: "b2@im.bot".into(),
            ..login
        };
        saved.put_login(&other).await.expect("login");
        assert_eq!(saved.cursor().await.expect("cursor"), "");
        // Another adapter's keys are its own.
        assert_eq!(Saved::new(store, "wx2").login().await.expect("login"), None);
    }

    #[tokio::test]
    async fn state_round_trips_in_memory() {
        state_round_trips(Arc::new(MemoryStore::default())).await;
    }

    #[tokio::test]
    async fn state_round_trips_in_sqlite_and_survives_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        state_round_trips(Arc::new(SqliteStore::open(&path).await.expect("open"))).await;
        let reopened = Saved::new(
            Arc::new(SqliteStore::open(&path).await.expect("open")),
            "wx",
        );
        assert_eq!(reopened.cursor().await.expect("cursor"), "");
        assert!(reopened.login().await.expect("login").is_some());
        assert!(
            reopened
                .contact("u@im.wechat")
                .await
                .expect("contact")
                .is_some()
        );
    }
}
