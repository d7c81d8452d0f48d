//! The durable store (SQLite through sqlx): events before routing, actions before
//! execution, and each phone conversation's watermark. Ids derive from idempotency keys,
//! so storing the same thing twice is a no-op rather than a duplicate.

use std::path::Path;
use std::str::FromStr;

use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use tapwire_device_agent::tail::Watermark;

use crate::event::{Action, Event, now_rfc3339};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored {what} {id} is not valid JSON: {source}")]
    Corrupt {
        what: &'static str,
        id: String,
        source: serde_json::Error,
    },
    #[error("cannot encode {what}: {0}", what = "JSON")]
    Encode(#[from] serde_json::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionStatus {
    /// Handed to the executor: it may have gone out before a crash.
    Dispatched,
    Done,
    Failed,
}

impl ActionStatus {
    fn as_str(self) -> &'static str {
        match self {
            ActionStatus::Dispatched => "dispatched",
            ActionStatus::Done => "done",
            ActionStatus::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone)]
pub struct StoredAction {
    pub id: String,
    pub action: Action,
    pub status: String,
}

#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Store { pool })
    }

    pub async fn watermark(
        &self,
        device: &str,
        conversation: &str,
    ) -> Result<Option<Watermark>, StoreError> {
        let row = sqlx::query("SELECT state FROM watermarks WHERE device = ? AND conversation = ?")
            .bind(device)
            .bind(conversation)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            decode(
                "watermark",
                format!("{device}/{conversation}"),
                &row.get::<String, _>(0),
            )
        })
        .transpose()
    }

    /// Stores new events and the conversation's watermark in one transaction. Returns the
    /// events that were not stored before (a re-read message is skipped by its key).
    pub async fn record(
        &self,
        device: &str,
        conversation: &str,
        watermark: &Watermark,
        events: &[Event],
    ) -> Result<Vec<Event>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let now = now_rfc3339();
        sqlx::query(
            "INSERT INTO watermarks (device, conversation, state, updated_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (device, conversation) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
        )
        .bind(device)
        .bind(conversation)
        .bind(serde_json::to_string(watermark)?)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        let mut fresh = Vec::new();
        for event in events {
            let inserted = insert_event(&mut tx, event).await?;
            if inserted {
                fresh.push(event.clone());
            }
        }
        tx.commit().await?;
        Ok(fresh)
    }

    /// Stores one event (from a source without watermarks). False if it was already there.
    pub async fn insert_event(&self, event: &Event) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let inserted = insert_event(&mut tx, event).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    pub async fn pending_events(&self) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, body FROM events WHERE status = 'pending' ORDER BY created_at, rowid",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| decode("event", row.get(0), &row.get::<String, _>(1)))
            .collect()
    }

    /// Stores a handled event's actions and marks it handled, in one transaction.
    pub async fn complete_event(
        &self,
        event: &Event,
        actions: &[Action],
    ) -> Result<Vec<StoredAction>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let now = now_rfc3339();
        let mut stored = Vec::new();
        for (index, action) in actions.iter().enumerate() {
            let key = format!("{}:{index}", event.idempotency_key);
            let id = format!("act_{}", short_hash(&key));
            let result = sqlx::query(
                "INSERT INTO actions (id, idempotency_key, event_id, target, conversation, body, status, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT (idempotency_key) DO NOTHING",
            )
            .bind(&id)
            .bind(&key)
            .bind(&event.id)
            .bind(action.target())
            .bind(action.conversation())
            .bind(serde_json::to_string(action)?)
            .bind(&now)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
            if result.rows_affected() > 0 {
                stored.push(StoredAction {
                    id,
                    action: action.clone(),
                    status: "pending".into(),
                });
            }
        }
        sqlx::query("UPDATE events SET status = 'handled' WHERE id = ?")
            .bind(&event.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// Actions not yet done or failed, oldest first (what a restart must finish).
    pub async fn open_actions(&self) -> Result<Vec<StoredAction>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, body, status FROM actions WHERE status IN ('pending', 'dispatched') ORDER BY created_at, rowid",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                let id: String = row.get(0);
                Ok(StoredAction {
                    action: decode("action", id.clone(), &row.get::<String, _>(1))?,
                    id,
                    status: row.get(2),
                })
            })
            .collect()
    }

    pub async fn set_action_status(
        &self,
        id: &str,
        status: ActionStatus,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE actions SET status = ?, last_error = ?, attempts = attempts + CASE WHEN ? = 'dispatched' THEN 1 ELSE 0 END, updated_at = ? WHERE id = ?",
        )
        .bind(status.as_str())
        .bind(error)
        .bind(status.as_str())
        .bind(now_rfc3339())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

async fn insert_event(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    event: &Event,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "INSERT INTO events (id, idempotency_key, source, event_type, conversation, body, status, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, 'pending', ?) ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(&event.id)
    .bind(&event.idempotency_key)
    .bind(&event.source)
    .bind(&event.event_type)
    .bind(event.conversation.as_ref().map(|c| c.id.as_str()))
    .bind(serde_json::to_string(event)?)
    .bind(&event.timestamp)
    .execute(&mut **tx)
    .await?;
    Ok(result.rows_affected() > 0)
}

/// Decodes a stored JSON column, naming what and which row when it is not valid.
fn decode<T: serde::de::DeserializeOwned>(
    what: &'static str,
    id: String,
    json: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|source| StoreError::Corrupt { what, id, source })
}

/// A short, stable id fragment.
pub fn short_hash(key: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(key.as_bytes())[..12])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::types;

    fn event(key: &str) -> Event {
        Event {
            id: format!("ev_{}", short_hash(key)),
            event_type: types::MESSAGE_RECEIVED.into(),
            source: "p".into(),
            platform: "wechat".into(),
            idempotency_key: key.into(),
            conversation: None,
            sender: None,
            content: Vec::new(),
            platform_message_id: None,
            timestamp: now_rfc3339(),
            raw: serde_json::Value::Null,
        }
    }

    #[tokio::test]
    async fn events_are_stored_once_and_actions_survive_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let store = Store::open(&path).await.expect("open");
        let wm = Watermark {
            tail: Vec::new(),
            next_seq: 3,
        };
        let fresh = store
            .record("p", "c", &wm, &[event("a"), event("b")])
            .await
            .expect("record");
        assert_eq!(fresh.len(), 2);
        let again = store
            .record("p", "c", &wm, &[event("a")])
            .await
            .expect("record");
        assert!(again.is_empty(), "a re-read message is not stored twice");
        assert_eq!(store.watermark("p", "c").await.expect("wm"), Some(wm));
        assert_eq!(store.pending_events().await.expect("pending").len(), 2);

        let send = Action::Send {
            target: "p".into(),
            conversation: "c".into(),
            text: "hi".into(),
        };
        let stored = store
            .complete_event(&event("a"), std::slice::from_ref(&send))
            .await
            .expect("complete");
        assert_eq!(stored.len(), 1);
        let twice = store
            .complete_event(&event("a"), std::slice::from_ref(&send))
            .await
            .expect("complete");
        assert!(
            twice.is_empty(),
            "an event handled twice yields its actions once"
        );
        store
            .set_action_status(&stored[0].id, ActionStatus::Dispatched, None)
            .await
            .expect("status");
        drop(store);

        let reopened = Store::open(&path).await.expect("reopen");
        assert_eq!(reopened.pending_events().await.expect("pending").len(), 1);
        let open = reopened.open_actions().await.expect("open actions");
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].status, "dispatched");
    }
}
