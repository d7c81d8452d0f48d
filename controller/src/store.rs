//! The durable store (SQLite through sqlx): events before routing, actions before
//! execution, and each phone conversation's watermark. Ids derive from idempotency keys,
//! so storing the same thing twice is a no-op rather than a duplicate.

use std::path::Path;
use std::str::FromStr;

use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tapwire_device_agent::tail::Watermark;

use crate::event::{Action, Event, now_rfc3339};
use crate::handler::DeadLetterInfo;

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

/// An event a handler gave up on, waiting for `tapwire dlq replay` or `drop`.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub id: String,
    pub event: Event,
    /// The handler that failed: the one a replay delivers to.
    pub handler: String,
    pub error: String,
    pub attempts: i64,
    pub created_at: String,
}

/// One permission: `scene` `*` is everything, `command` empty the whole scene.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub user: String,
    pub scene: String,
    pub command: String,
    /// RFC 3339 UTC; `None` never expires.
    pub expires_at: Option<String>,
    pub granted_by: String,
}

/// What [`Store::record`] did with a phone's batch.
#[derive(Debug, Default)]
pub struct Recorded {
    /// Events not stored before (a re-read message is skipped by its key).
    pub fresh: Vec<Event>,
    /// Replies in flight that the batch's own messages show went out already.
    pub settled: Vec<String>,
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
            // WAL + NORMAL: a commit survives the process dying (kill -9, a panic) and the
            // file never corrupts; only a power cut may roll back the last commits. That
            // is safe here by construction: watermarks commit with their events (the phone
            // is re-read from the older mark), and events and actions are keyed (a redone
            // commit stores the same rows, a re-sent reply is checked against the chat).
            // FULL would fsync every commit, about 3× slower per event.
            .synchronous(SqliteSynchronous::Normal)
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

    /// Stores new events and the conversation's watermark in one transaction, with what
    /// they say about replies: `delivered` (the reply the watermark ends with) is done, and
    /// so is an `unconfirmed` reply (handed to the phone by a run that crashed) whose text
    /// is among the new own messages: it went out before the crash. Oldest such reply
    /// first, one per own message, so two equal answers in a row are told apart.
    pub async fn record(
        &self,
        device: &str,
        conversation: &str,
        watermark: &Watermark,
        events: &[Event],
        delivered: Option<&str>,
        unconfirmed: &[String],
    ) -> Result<Recorded, StoreError> {
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
        let mut recorded = Recorded::default();
        for event in events {
            let inserted = insert_event(&mut *tx, event).await?;
            if inserted {
                recorded.fresh.push(event.clone());
            }
        }
        if let Some(id) = delivered {
            set_action_status_in(&mut tx, id, ActionStatus::Done, None).await?;
        }
        let own: Vec<String> = recorded
            .fresh
            .iter()
            .filter(|e| e.sender.as_ref().is_some_and(|s| s.is_self))
            .filter_map(Event::text)
            .collect();
        if !own.is_empty() && !unconfirmed.is_empty() {
            recorded.settled =
                settle_sent_replies(&mut tx, device, conversation, &own, unconfirmed).await?;
        }
        tx.commit().await?;
        Ok(recorded)
    }

    /// Stores one event (from a source without watermarks). False if it was already there.
    pub async fn insert_event(&self, event: &Event) -> Result<bool, StoreError> {
        // One statement is its own transaction: no BEGIN/COMMIT round trips.
        insert_event(&self.pool, event).await
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

    /// Stores a handled event's actions and marks it handled, in one transaction; with
    /// `dead`, the event also goes to the dead-letter queue in that same transaction.
    pub async fn complete_event(
        &self,
        event: &Event,
        actions: &[Action],
        dead: Option<&DeadLetterInfo>,
    ) -> Result<Vec<StoredAction>, StoreError> {
        if actions.is_empty() && dead.is_none() {
            // Most events decide nothing (chatter in a group): one statement, no
            // transaction round trips.
            sqlx::query("UPDATE events SET status = 'handled' WHERE id = ?")
                .bind(&event.id)
                .execute(&self.pool)
                .await?;
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await?;
        let keyed: Vec<(String, &Action)> = actions
            .iter()
            .enumerate()
            .map(|(index, action)| (format!("{}:{index}", event.idempotency_key), action))
            .collect();
        let stored = insert_actions(&mut tx, &event.id, &keyed).await?;
        match dead {
            Some(dead) => {
                insert_dead_letter(&mut tx, event, dead).await?;
            }
            None => set_event_status(&mut tx, &event.id, "handled").await?,
        }
        tx.commit().await?;
        Ok(stored)
    }

    /// Stores one action decided before the event is finished (an acknowledgement sent
    /// while slow work goes on). `tag` makes its key: the same tag is stored once.
    pub async fn add_interim_action(
        &self,
        event: &Event,
        tag: &str,
        action: &Action,
    ) -> Result<Option<StoredAction>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let key = format!("{}:{tag}", event.idempotency_key);
        let mut stored = insert_actions(&mut tx, &event.id, &[(key, action)]).await?;
        tx.commit().await?;
        Ok(stored.pop())
    }

    /// Moves an event to the dead-letter queue: the handler gave up on it. The event is
    /// finished for the router; `tapwire dlq replay` can take it up again.
    pub async fn dead_letter(
        &self,
        event: &Event,
        dead: &DeadLetterInfo,
    ) -> Result<String, StoreError> {
        let mut tx = self.pool.begin().await?;
        let id = insert_dead_letter(&mut tx, event, dead).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Dead letters still waiting (status `dead`), oldest first.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, handler, error, attempts, created_at, body FROM dead_letters \
             WHERE status = 'dead' ORDER BY created_at, rowid",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                let id: String = row.get(0);
                Ok(DeadLetter {
                    event: decode("event", id.clone(), &row.get::<String, _>(5))?,
                    handler: row.get(1),
                    error: row.get(2),
                    attempts: row.get(3),
                    created_at: row.get(4),
                    id,
                })
            })
            .collect()
    }

    /// Removes a dead letter for good. False if there was none waiting with that id.
    pub async fn drop_dead_letter(&self, id: &str) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE dead_letters SET status = 'dropped', updated_at = ? WHERE id = ? AND status = 'dead'",
        )
        .bind(now_rfc3339())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() > 0)
    }

    /// A replayed dead letter was delivered: its actions join the outbox (keyed so that a
    /// second replay of the same letter cannot send them twice) and the letter is closed.
    pub async fn resolve_dead_letter(
        &self,
        letter: &DeadLetter,
        actions: &[Action],
    ) -> Result<Vec<StoredAction>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let keyed: Vec<(String, &Action)> = actions
            .iter()
            .enumerate()
            .map(|(index, action)| {
                (
                    format!(
                        "{}:{}:replay:{index}",
                        letter.event.idempotency_key, letter.handler
                    ),
                    action,
                )
            })
            .collect();
        let stored = insert_actions(&mut tx, &letter.event.id, &keyed).await?;
        sqlx::query("UPDATE dead_letters SET status = 'replayed', updated_at = ? WHERE id = ?")
            .bind(now_rfc3339())
            .bind(&letter.id)
            .execute(&mut *tx)
            .await?;
        set_event_status(&mut tx, &letter.event.id, "handled").await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// Records a replay that failed again.
    pub async fn retry_failed(
        &self,
        letter: &DeadLetter,
        error: &str,
        attempts: u32,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE dead_letters SET error = ?, attempts = attempts + ?, updated_at = ? WHERE id = ?",
        )
        .bind(error)
        .bind(i64::from(attempts))
        .bind(now_rfc3339())
        .bind(&letter.id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Grants `user` a scene (`command` empty), a scene's command, or everything (`scene`
    /// `*`), until `expires_at` (RFC 3339, UTC) or for good. A second grant of the same
    /// thing replaces the first, so extending a grant is granting it again.
    pub async fn grant(&self, grant: &Grant) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO permissions (user_id, scene, command, expires_at, granted_by, created_at) VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (user_id, scene, command) DO UPDATE SET expires_at = excluded.expires_at, \
             granted_by = excluded.granted_by, created_at = excluded.created_at",
        )
        .bind(&grant.user)
        .bind(&grant.scene)
        .bind(&grant.command)
        .bind(&grant.expires_at)
        .bind(&grant.granted_by)
        .bind(now_rfc3339())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Revokes a grant; `command` `None` revokes the scene with all its commands, scene
    /// `*` everything the user had. Returns how many grants went.
    pub async fn revoke(
        &self,
        user: &str,
        scene: &str,
        command: Option<&str>,
    ) -> Result<u64, StoreError> {
        let result = match (scene, command) {
            ("*", _) => {
                sqlx::query("DELETE FROM permissions WHERE user_id = ?")
                    .bind(user)
                    .execute(&self.pool)
                    .await?
            }
            (scene, None) => {
                sqlx::query("DELETE FROM permissions WHERE user_id = ? AND scene = ?")
                    .bind(user)
                    .bind(scene)
                    .execute(&self.pool)
                    .await?
            }
            (scene, Some(command)) => {
                sqlx::query(
                    "DELETE FROM permissions WHERE user_id = ? AND scene = ? AND command = ?",
                )
                .bind(user)
                .bind(scene)
                .bind(command)
                .execute(&self.pool)
                .await?
            }
        };
        Ok(result.rows_affected())
    }

    /// A user's grants (every user's when `None`), expired ones included: the caller
    /// decides with its own clock, and `perms` shows what lapsed.
    pub async fn grants(&self, user: Option<&str>) -> Result<Vec<Grant>, StoreError> {
        let rows = match user {
            Some(user) => {
                sqlx::query(
                    "SELECT user_id, scene, command, expires_at, granted_by FROM permissions WHERE user_id = ? ORDER BY scene, command",
                )
                .bind(user)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(
                    "SELECT user_id, scene, command, expires_at, granted_by FROM permissions ORDER BY user_id, scene, command",
                )
                .fetch_all(&self.pool)
                .await?
            }
        };
        Ok(rows
            .into_iter()
            .map(|row| Grant {
                user: row.get(0),
                scene: row.get(1),
                command: row.get(2),
                expires_at: row.get(3),
                granted_by: row.get(4),
            })
            .collect())
    }

    /// Actions not yet done or failed, oldest first (what a restart must finish).
    pub async fn open_actions(&self) -> Result<Vec<StoredAction>, StoreError> {
        self.actions_where(
            "SELECT id, body, status FROM actions WHERE status IN ('pending', 'dispatched') ORDER BY created_at, rowid",
        )
        .await
    }

    /// Actions nobody has taken yet, oldest first.
    pub async fn pending_actions(&self) -> Result<Vec<StoredAction>, StoreError> {
        self.actions_where(
            "SELECT id, body, status FROM actions WHERE status = 'pending' ORDER BY created_at, rowid",
        )
        .await
    }

    async fn actions_where(&self, query: &'static str) -> Result<Vec<StoredAction>, StoreError> {
        let rows = sqlx::query(query).fetch_all(&self.pool).await?;
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

    /// Takes a pending action for execution. Only one caller wins, so the outbox sweep
    /// and the router can never both send the same action.
    pub async fn claim_action(&self, id: &str) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE actions SET status = 'dispatched', attempts = attempts + 1, updated_at = ? WHERE id = ? AND status = 'pending'",
        )
        .bind(now_rfc3339())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() > 0)
    }

    pub async fn set_action_status(
        &self,
        id: &str,
        status: ActionStatus,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        set_action_status_in(&mut conn, id, status, error).await
    }
}

async fn set_action_status_in(
    conn: &mut sqlx::SqliteConnection,
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
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks done the oldest `unconfirmed` dispatched reply to `conversation` on `device` for
/// each text in `own` (texts the phone shows as sent by its owner). Returns their ids.
async fn settle_sent_replies(
    conn: &mut sqlx::SqliteConnection,
    device: &str,
    conversation: &str,
    own: &[String],
    unconfirmed: &[String],
) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, body FROM actions WHERE status = 'dispatched' AND target = ? AND conversation = ? ORDER BY created_at, rowid",
    )
    .bind(device)
    .bind(conversation)
    .fetch_all(&mut *conn)
    .await?;
    let mut in_flight: Vec<(String, Action)> = rows
        .into_iter()
        .map(|row| {
            let id: String = row.get(0);
            Ok((id.clone(), decode("action", id, &row.get::<String, _>(1))?))
        })
        .collect::<Result<Vec<_>, StoreError>>()?
        .into_iter()
        .filter(|(id, _)| unconfirmed.contains(id))
        .collect();
    let mut settled = Vec::new();
    for text in own {
        let Some(at) = in_flight
            .iter()
            .position(|(_, Action::Send { text: t, .. })| t == text)
        else {
            continue;
        };
        let (id, _) = in_flight.remove(at);
        set_action_status_in(conn, &id, ActionStatus::Done, None).await?;
        settled.push(id);
    }
    Ok(settled)
}

async fn insert_actions(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    event_id: &str,
    actions: &[(String, &Action)],
) -> Result<Vec<StoredAction>, StoreError> {
    let now = now_rfc3339();
    let mut stored = Vec::new();
    for (key, action) in actions {
        let id = format!("act_{}", short_hash(key));
        let result = sqlx::query(
            "INSERT INTO actions (id, idempotency_key, event_id, target, conversation, body, status, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(&id)
        .bind(key)
        .bind(event_id)
        .bind(action.target())
        .bind(action.conversation())
        .bind(serde_json::to_string(action)?)
        .bind(&now)
        .bind(&now)
        .execute(&mut **tx)
        .await?;
        if result.rows_affected() > 0 {
            stored.push(StoredAction {
                id,
                action: (*action).clone(),
                status: "pending".into(),
            });
        }
    }
    Ok(stored)
}

async fn insert_dead_letter(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    event: &Event,
    dead: &DeadLetterInfo,
) -> Result<String, StoreError> {
    let now = now_rfc3339();
    let id = format!(
        "dl_{}",
        short_hash(&format!("{}:{}", event.id, dead.handler))
    );
    sqlx::query(
        "INSERT INTO dead_letters (id, event_id, handler, body, error, attempts, status, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, 'dead', ?, ?) \
         ON CONFLICT (event_id, handler) DO UPDATE SET error = excluded.error, body = excluded.body, \
         attempts = dead_letters.attempts + excluded.attempts, status = 'dead', updated_at = excluded.updated_at",
    )
    .bind(&id)
    .bind(&event.id)
    .bind(&dead.handler)
    .bind(serde_json::to_string(&dead.delivered)?)
    .bind(&dead.error)
    .bind(i64::from(dead.attempts))
    .bind(&now)
    .bind(&now)
    .execute(&mut **tx)
    .await?;
    set_event_status(tx, &event.id, "dead").await?;
    Ok(id)
}

async fn set_event_status(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    event_id: &str,
    status: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE events SET status = ? WHERE id = ?")
        .bind(status)
        .bind(event_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn insert_event<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Sqlite>,
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
    .execute(executor)
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
            .record("p", "c", &wm, &[event("a"), event("b")], None, &[])
            .await
            .expect("record");
        assert_eq!(fresh.fresh.len(), 2);
        let again = store
            .record("p", "c", &wm, &[event("a")], None, &[])
            .await
            .expect("record");
        assert!(
            again.fresh.is_empty(),
            "a re-read message is not stored twice"
        );
        assert_eq!(store.watermark("p", "c").await.expect("wm"), Some(wm));
        assert_eq!(store.pending_events().await.expect("pending").len(), 2);

        let send = Action::Send {
            target: "p".into(),
            conversation: "c".into(),
            text: "hi".into(),
        };
        let stored = store
            .complete_event(&event("a"), std::slice::from_ref(&send), None)
            .await
            .expect("complete");
        assert_eq!(stored.len(), 1);
        let twice = store
            .complete_event(&event("a"), std::slice::from_ref(&send), None)
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

    /// Replies are settled by what the phone shows: the one a batch delivers, and those
    /// a crashed run may have sent, matched one own message each, oldest first.
    #[tokio::test]
    async fn a_batch_settles_its_delivered_reply_and_unconfirmed_ones_it_shows_sent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("t.db")).await.expect("open");
        let send = |text: &str| Action::Send {
            target: "p".into(),
            conversation: "c".into(),
            text: text.into(),
        };
        let replies = [send("ok"), send("ok"), send("ok"), send("other")];
        assert!(store.insert_event(&event("q")).await.expect("insert"));
        let stored = store
            .complete_event(&event("q"), &replies, None)
            .await
            .expect("complete");
        for action in &stored {
            assert!(store.claim_action(&action.id).await.expect("claim"));
        }
        let ids: Vec<String> = stored.iter().map(|a| a.id.clone()).collect();
        let own = |key: &str, text: &str| Event {
            idempotency_key: key.into(),
            id: format!("ev_{}", short_hash(key)),
            ..crate::event::test_message("p", "c", text, true)
        };
        let wm = Watermark::default();
        // The first "ok" was delivered with this batch; two own "ok" bubbles are new, but
        // only the third reply is unconfirmed: the second was handed out in this run.
        let recorded = store
            .record(
                "p",
                "c",
                &wm,
                &[own("o1", "ok"), own("o2", "ok"), own("o3", "other")],
                Some(&ids[0]),
                &[ids[2].clone()],
            )
            .await
            .expect("record");
        assert_eq!(recorded.settled, vec![ids[2].clone()]);
        let open: Vec<String> = store
            .open_actions()
            .await
            .expect("open")
            .into_iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(open, vec![ids[1].clone(), ids[3].clone()]);
        // A message stored before settles nothing again.
        let again = store
            .record("p", "c", &wm, &[own("o1", "ok")], None, &ids)
            .await
            .expect("record");
        assert!(again.settled.is_empty());
    }

    fn dead(delivered: &Event, error: &str, attempts: u32) -> DeadLetterInfo {
        DeadLetterInfo {
            delivered: delivered.clone(),
            handler: "hook".into(),
            error: error.into(),
            attempts,
        }
    }

    #[tokio::test]
    async fn dead_letters_replay_once_and_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("t.db")).await.expect("open");
        let ev = event("dl");
        assert!(store.insert_event(&ev).await.expect("insert"));
        let id = store
            .dead_letter(&ev, &dead(&ev, "HTTP 500 after 4 attempts", 4))
            .await
            .expect("dead letter");
        assert!(store.pending_events().await.expect("pending").is_empty());
        let letters = store.dead_letters().await.expect("list");
        assert_eq!(letters.len(), 1);
        assert_eq!(
            (letters[0].id.as_str(), letters[0].attempts),
            (id.as_str(), 4)
        );
        assert_eq!(letters[0].event, ev);

        let send = Action::Send {
            target: "p".into(),
            conversation: "c".into(),
            text: "late answer".into(),
        };
        let stored = store
            .resolve_dead_letter(&letters[0], std::slice::from_ref(&send))
            .await
            .expect("resolve");
        assert_eq!(stored.len(), 1);
        assert!(store.dead_letters().await.expect("list").is_empty());
        let again = store
            .resolve_dead_letter(&letters[0], std::slice::from_ref(&send))
            .await
            .expect("resolve twice");
        assert!(
            again.is_empty(),
            "a second replay cannot queue the answer twice"
        );

        let ev2 = event("dl2");
        store.insert_event(&ev2).await.expect("insert");
        let id2 = store
            .dead_letter(&ev2, &dead(&ev2, "x", 1))
            .await
            .expect("dl");
        assert!(store.drop_dead_letter(&id2).await.expect("drop"));
        assert!(!store.drop_dead_letter(&id2).await.expect("drop twice"));
        assert!(store.dead_letters().await.expect("list").is_empty());
    }

    #[tokio::test]
    async fn grants_replace_and_revoke() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("t.db")).await.expect("open");
        let grant = |scene: &str, command: &str, expires: Option<&str>| Grant {
            user: "wechat:李娜".into(),
            scene: scene.into(),
            command: command.into(),
            expires_at: expires.map(str::to_string),
            granted_by: "wechat:张伟".into(),
        };
        store
            .grant(&grant("roster", "", None))
            .await
            .expect("grant");
        store
            .grant(&grant("roster", "", Some("2027-01-01T00:00:00.000Z")))
            .await
            .expect("regrant");
        store
            .grant(&grant("ops", "deploy", None))
            .await
            .expect("grant");
        let grants = store.grants(Some("wechat:李娜")).await.expect("grants");
        assert_eq!(grants.len(), 2, "{grants:?}");
        assert_eq!(
            grants[1].expires_at.as_deref(),
            Some("2027-01-01T00:00:00.000Z")
        );
        assert_eq!(
            store
                .revoke("wechat:李娜", "ops", Some("deploy"))
                .await
                .expect("revoke"),
            1
        );
        assert_eq!(
            store
                .revoke("wechat:李娜", "*", None)
                .await
                .expect("revoke all"),
            1
        );
        assert!(store.grants(None).await.expect("grants").is_empty());
    }
}
