//! The SQLite backend: one file, WAL, reads through a sqlx pool, and one writer thread
//! (rusqlite) that applies every write of this process in group commits.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;
use tapwire_device_agent::tail::same_text;

use async_trait::async_trait;
use rusqlite::{Connection, params};
use serde::Deserialize;
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::oneshot;

use super::checkpoint::Checkpointer;
use super::{
    ActionRecord, ActionStatus, Backlog, DeadLetter, DeadLetterInfo, ReadBatch, Recorded, Store,
    StoreError, StoredAction, StoredSubscription, TargetBacklog, Turn, action_id, action_key,
    dead_letter_id, replay_key,
};
use crate::event::{Action, Event, now_rfc3339};
use crate::permission::Grant;

/// `[storage] type = "sqlite"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqliteConfig {
    #[serde(default = "default_path")]
    pub path: PathBuf,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        SqliteConfig {
            path: default_path(),
        }
    }
}

fn default_path() -> PathBuf {
    PathBuf::from("tapwire.db")
}

/// The most writes one group commit takes: enough to absorb every lane at once, few
/// enough that one commit stays short and a bad write's retry alone is cheap.
const MAX_BATCH: usize = 256;
/// How long any of our connections waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Prepared statements the writer keeps: more than its two dozen texts, so none is
/// prepared twice (rusqlite's default is 16); 100 is what sqlx keeps per connection.
const STATEMENT_CACHE: usize = 100;

#[derive(Clone)]
pub struct SqliteStore {
    /// Reads. WAL lets them run beside the writer, each on a consistent snapshot.
    pool: SqlitePool,
    /// Every write of this process goes to the one writer thread, so our own connections
    /// never wait on each other's write lock (`busy_timeout` is left for other processes:
    /// `tapwire dlq`). Hot writes are group-committed there; rare ones (dead letter
    /// replays, grants) run there alone, between two batches.
    writer: mpsc::Sender<Job>,
}

impl SqliteStore {
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let options = connect_options(path)?;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            // The default pings a connection before handing it out: a round trip to its
            // thread (about as dear as the query) that cannot find anything wrong with a
            // local file the query itself would not.
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        // Before the writer opens: it takes the schema as it finds it.
        migrate(&pool).await?;
        // Not joined: the thread outlives any caller (one that gives up waiting cannot cut
        // a batch short) and ends once the last `SqliteStore` clone is dropped.
        let (writer, _thread) = start_writer(path).await?;
        Ok(SqliteStore { pool, writer })
    }

    /// The read pool, for `views.rs`.
    pub(super) fn read_pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Queues a write for the next group commit and waits until it has committed.
    async fn write(&self, write: Write) -> Result<Written, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(Job::Write(write, reply))
            .map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Runs a rare write on the writer thread, alone between two group commits (not
    /// worth a place in `Write`'s vocabulary), and waits for its answer. `job` opens its
    /// own transaction when it has more than one statement.
    async fn write_alone<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = move |writer: &mut Writer| {
            let result = job(&mut writer.conn);
            if result.is_err() {
                writer.settle();
            }
            let _ = reply.send(result);
        };
        self.writer
            .send(Job::Alone(Box::new(job)))
            .map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Stores one action through the group commit; None when its key was stored before.
    async fn store_one(
        &self,
        row: ActionRow,
        action: &Action,
    ) -> Result<Option<StoredAction>, StoreError> {
        let ids = vec![(row.id.clone(), false)];
        let written = self
            .write(Write {
                actions: vec![row],
                ..Write::default()
            })
            .await?;
        Ok(stored_actions(std::slice::from_ref(action), ids, written.stored).pop())
    }

    async fn actions_where(&self, query: &'static str) -> Result<Vec<StoredAction>, StoreError> {
        let rows = sqlx::query(query).fetch_all(&self.pool).await?;
        rows.into_iter()
            .map(|row| {
                let id: String = row.get(0);
                let status: String = row.get(2);
                Ok(StoredAction {
                    action: decode("action", id.clone(), &row.get::<String, _>(1))?,
                    status: ActionStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
                        what: "action status",
                        id: id.clone(),
                        source: serde::de::Error::custom(format!("unknown status {status:?}")),
                    })?,
                    id,
                })
            })
            .collect()
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn views(&self) -> Option<&dyn super::views::Views> {
        Some(self)
    }

    async fn watermark(
        &self,
        device: &str,
        conversation: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT state FROM watermarks WHERE device = ? AND conversation = ?")
            .bind(device)
            .bind(conversation)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| row.get::<String, _>(0)))
    }

    async fn record(&self, batch: ReadBatch<'_>) -> Result<Recorded, StoreError> {
        let ReadBatch {
            device,
            conversation,
            watermark,
            events,
            delivered,
            unconfirmed,
        } = batch;
        let rows = events.iter().map(EventRow::new).collect::<Result<_, _>>()?;
        let now = now_rfc3339();
        // Only after a crash are there replies to settle, and only own messages can.
        let own: Vec<(String, String)> = events
            .iter()
            .filter(|e| e.sender.as_ref().is_some_and(|s| s.is_self))
            .filter_map(|e| Some((e.idempotency_key.clone(), e.text()?)))
            .collect();
        let settle = (!own.is_empty() && !unconfirmed.is_empty()).then(|| SettleRow {
            device: device.to_string(),
            conversation: conversation.to_string(),
            own,
            unconfirmed: unconfirmed.to_vec(),
        });
        let written = self
            .write(Write {
                watermark: Some(WatermarkRow {
                    device: device.to_string(),
                    conversation: conversation.to_string(),
                    state: watermark.to_string(),
                    now: now.clone(),
                }),
                events: rows,
                status: delivered
                    .iter()
                    .map(|id| StatusRow {
                        id: id.clone(),
                        status: ActionStatus::Done.as_str(),
                        error: None,
                        now: now.clone(),
                    })
                    .collect(),
                settle,
                ..Write::default()
            })
            .await?;
        Ok(Recorded {
            fresh: events
                .iter()
                .zip(written.fresh)
                .filter(|(_, fresh)| *fresh)
                .map(|(event, _)| event.clone())
                .collect(),
            settled: written.settled,
        })
    }

    /// Stores one event (from a source without watermarks). False if it was already there.
    async fn insert_event(&self, event: &Event) -> Result<bool, StoreError> {
        let written = self
            .write(Write {
                events: vec![EventRow::new(event)?],
                ..Write::default()
            })
            .await?;
        Ok(written.fresh.first().copied().unwrap_or(false))
    }

    async fn pending_events(&self) -> Result<Vec<Event>, StoreError> {
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
    async fn complete_and_claim(
        &self,
        event: &Event,
        actions: &[Action],
        dead: Option<&DeadLetterInfo>,
        claim: &[bool],
    ) -> Result<Vec<StoredAction>, StoreError> {
        let mut write = completion(event, actions, dead)?;
        for (row, claimed) in write.actions.iter_mut().zip(claim) {
            row.claimed = *claimed;
        }
        let rows: Vec<(String, bool)> = write
            .actions
            .iter()
            .map(|row| (row.id.clone(), row.claimed))
            .collect();
        let written = self.write(write).await?;
        Ok(stored_actions(actions, rows, written.stored))
    }

    /// Stores one action decided before the event is finished (an acknowledgement sent
    /// while slow work goes on). `tag` makes its key: the same tag is stored once.
    async fn add_interim_action(
        &self,
        event: &Event,
        tag: &str,
        action: &Action,
    ) -> Result<Option<StoredAction>, StoreError> {
        let key = format!("{}:{tag}", event.idempotency_key);
        let row = ActionRow::new(key, &event.id, action, &now_rfc3339())?;
        self.store_one(row, action).await
    }

    /// Moves an event to the dead-letter queue: the handler gave up on it. The event is
    /// finished for the router; `tapwire dlq replay` can take it up again.
    async fn dead_letter(
        &self,
        event: &Event,
        dead: &DeadLetterInfo,
    ) -> Result<String, StoreError> {
        let row = DeadRow::new(event, dead, &now_rfc3339())?;
        let id = row.id.clone();
        self.write(Write {
            finish: Some(Finish::Dead(row)),
            ..Write::default()
        })
        .await?;
        Ok(id)
    }

    /// Dead letters still waiting (status `dead`), oldest first.
    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
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
    async fn drop_dead_letter(&self, id: &str) -> Result<bool, StoreError> {
        let (id, now) = (id.to_string(), now_rfc3339());
        let dropped = self
            .write_alone(move |conn| {
                execute(
                    conn,
                    "dropping a dead letter",
                    "UPDATE dead_letters SET status = 'dropped', updated_at = ? WHERE id = ? AND status = 'dead'",
                    params![now, id],
                )
            })
            .await?;
        Ok(dropped > 0)
    }

    /// A replayed dead letter was delivered: its actions join the outbox (keyed so that a
    /// second replay of the same letter cannot send them twice) and the letter is closed.
    async fn resolve_dead_letter(
        &self,
        letter: &DeadLetter,
        actions: &[Action],
    ) -> Result<Vec<StoredAction>, StoreError> {
        let now = now_rfc3339();
        let rows = actions
            .iter()
            .enumerate()
            .map(|(index, action)| {
                ActionRow::new(replay_key(letter, index), &letter.event.id, action, &now)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ids = rows.iter().map(|row| (row.id.clone(), false)).collect();
        let (letter_id, event_id) = (letter.id.clone(), letter.event.id.clone());
        // Rare (`tapwire dlq replay`): a transaction of its own on the writer.
        let stored = self
            .write_alone(move |conn| {
                let tx = conn
                    .transaction()
                    .during("beginning a dead letter's replay")?;
                let mut inserted = insert_actions(&tx, &rows.iter().collect::<Vec<_>>())?;
                execute(
                    &tx,
                    "closing a replayed dead letter",
                    "UPDATE dead_letters SET status = 'replayed', updated_at = ? WHERE id = ?",
                    params![now, letter_id],
                )?;
                set_handled(&tx, &[event_id.as_str()])?;
                tx.commit().during("committing a dead letter's replay")?;
                Ok(rows
                    .iter()
                    .map(|row| inserted.remove(&row.key))
                    .collect::<Vec<_>>())
            })
            .await?;
        Ok(stored_actions(actions, ids, stored))
    }

    /// Records a replay that failed again.
    async fn retry_failed(
        &self,
        letter: &DeadLetter,
        error: &str,
        attempts: u32,
    ) -> Result<(), StoreError> {
        let (error, id, now) = (error.to_string(), letter.id.clone(), now_rfc3339());
        self.write_alone(move |conn| {
            execute(
                conn,
                "recording a failed replay",
                "UPDATE dead_letters SET error = ?, attempts = attempts + ?, updated_at = ? WHERE id = ?",
                params![error, i64::from(attempts), now, id],
            )
        })
        .await?;
        Ok(())
    }

    /// Grants `user` a scene (`command` empty), a scene's command, or everything (`scene`
    /// `*`), until `expires_at` (RFC 3339, UTC) or for good. A second grant of the same
    /// thing replaces the first, so extending a grant is granting it again.
    async fn grant(&self, grant: &Grant) -> Result<(), StoreError> {
        let (grant, now) = (grant.clone(), now_rfc3339());
        self.write_alone(move |conn| {
            execute(
                conn,
                "storing a grant",
                "INSERT INTO permissions (user_id, scene, command, expires_at, granted_by, created_at) VALUES (?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (user_id, scene, command) DO UPDATE SET expires_at = excluded.expires_at, \
                 granted_by = excluded.granted_by, created_at = excluded.created_at",
                params![
                    grant.user,
                    grant.scene,
                    grant.command,
                    grant.expires_at,
                    grant.granted_by,
                    now
                ],
            )
        })
        .await?;
        Ok(())
    }

    /// Revokes a grant; `command` `None` revokes the scene with all its commands, scene
    /// `*` everything the user had. Returns how many grants went.
    async fn revoke(
        &self,
        user: &str,
        scene: &str,
        command: Option<&str>,
    ) -> Result<u64, StoreError> {
        let (sql, values) = match (scene, command) {
            ("*", _) => ("DELETE FROM permissions WHERE user_id = ?", vec![user]),
            (scene, None) => (
                "DELETE FROM permissions WHERE user_id = ? AND scene = ?",
                vec![user, scene],
            ),
            (scene, Some(command)) => (
                "DELETE FROM permissions WHERE user_id = ? AND scene = ? AND command = ?",
                vec![user, scene, command],
            ),
        };
        let values: Vec<String> = values.into_iter().map(str::to_string).collect();
        let revoked = self
            .write_alone(move |conn| {
                execute(
                    conn,
                    "revoking grants",
                    sql,
                    rusqlite::params_from_iter(values),
                )
            })
            .await?;
        Ok(u64::try_from(revoked).unwrap_or(u64::MAX))
    }

    /// A user's grants (every user's when `None`), expired ones included: the caller
    /// decides with its own clock, and `perms` shows what lapsed.
    async fn grants(&self, user: Option<&str>) -> Result<Vec<Grant>, StoreError> {
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
    async fn open_actions(&self) -> Result<Vec<StoredAction>, StoreError> {
        self.actions_where(
            "SELECT id, body, status FROM actions WHERE status IN ('pending', 'dispatched') ORDER BY created_at, rowid",
        )
        .await
    }

    /// Actions nobody has taken yet, oldest first.
    async fn backlog(&self) -> Result<Backlog, StoreError> {
        // Both read through the (status, created_at) indexes.
        let rows = sqlx::query(
            "SELECT target, COUNT(*), MIN(created_at) FROM actions \
             WHERE status IN ('pending', 'dispatched') GROUP BY target ORDER BY target",
        )
        .fetch_all(&self.pool)
        .await?;
        let outbox = rows
            .iter()
            .map(|row| {
                Ok(TargetBacklog {
                    target: row.try_get(0)?,
                    open: u64::try_from(row.try_get::<i64, _>(1)?).unwrap_or(0),
                    oldest: row.try_get(2)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let dead: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM dead_letters WHERE status = 'dead'")
                .fetch_one(&self.pool)
                .await?;
        Ok(Backlog {
            outbox,
            dead_letters: u64::try_from(dead).unwrap_or(0),
        })
    }

    async fn pending_actions(&self) -> Result<Vec<StoredAction>, StoreError> {
        self.actions_where(
            "SELECT id, body, status FROM actions WHERE status = 'pending' ORDER BY created_at, rowid",
        )
        .await
    }

    /// Takes a pending action for execution. Only one caller wins, so the outbox sweep
    /// and the router can never both send the same action.
    async fn claim_action(&self, id: &str) -> Result<bool, StoreError> {
        let written = self
            .write(Write {
                claim: Some(id.to_string()),
                ..Write::default()
            })
            .await?;
        Ok(written.claimed)
    }

    async fn submit_action(
        &self,
        key: &str,
        action: &Action,
    ) -> Result<Option<StoredAction>, StoreError> {
        let mut row = ActionRow::new(key.to_string(), "", action, &now_rfc3339())?;
        row.event_id = None;
        self.store_one(row, action).await
    }

    async fn action(&self, id: &str) -> Result<Option<ActionRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, body, status, last_error, attempts, created_at, updated_at FROM actions WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| action_record(&row)).transpose()
    }

    async fn messages_in(
        &self,
        source: &str,
        conversation: &str,
        since: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, body FROM (SELECT id, body, created_at, rowid AS r FROM events \
             WHERE source = ?1 AND conversation = ?2 AND event_type LIKE 'message.%' \
             AND (?3 IS NULL OR created_at >= ?3) ORDER BY created_at DESC, r DESC LIMIT ?4) \
             ORDER BY created_at, r",
        )
        .bind(source)
        .bind(conversation)
        .bind(since)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get(0)?;
                decode("event", id, &row.try_get::<String, _>(1)?)
            })
            .collect()
    }

    async fn failed_actions(
        &self,
        target: Option<&str>,
        conversation: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ActionRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, body, status, last_error, attempts, created_at, updated_at FROM actions \
             WHERE status = 'failed' AND (?1 IS NULL OR target = ?1) \
             AND (?2 IS NULL OR conversation = ?2) ORDER BY updated_at DESC, id LIMIT ?3",
        )
        .bind(target)
        .bind(conversation)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(action_record).collect()
    }

    /// A rare write (a person asking), so it runs alone as grants do.
    async fn retry_action(&self, id: &str) -> Result<bool, StoreError> {
        let (id, now) = (id.to_string(), now_rfc3339());
        let done = self
            .write_alone(move |conn| {
                execute(
                    conn,
                    "retrying a failed action",
                    "UPDATE actions SET status = 'pending', updated_at = ? WHERE id = ? AND status = 'failed'",
                    params![now, id],
                )
            })
            .await?;
        Ok(done == 1)
    }

    async fn add_subscription(&self, subscription: &StoredSubscription) -> Result<(), StoreError> {
        let events = serde_json::to_string(&subscription.events)?;
        let subscription = subscription.clone();
        self.write_alone(move |conn| {
            execute(
                conn,
                "storing a subscription",
                "INSERT OR REPLACE INTO subscriptions (id, url, events, created_at) VALUES (?, ?, ?, ?)",
                params![
                    subscription.id,
                    subscription.url,
                    events,
                    subscription.created_at
                ],
            )
        })
        .await?;
        Ok(())
    }

    async fn subscriptions(&self) -> Result<Vec<StoredSubscription>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, url, events, created_at FROM subscriptions ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                let id: String = row.try_get(0)?;
                let events: String = row.try_get(2)?;
                Ok(StoredSubscription {
                    events: serde_json::from_str(&events).map_err(|source| {
                        StoreError::Corrupt {
                            what: "subscription",
                            id: id.clone(),
                            source,
                        }
                    })?,
                    id,
                    url: row.try_get(1)?,
                    created_at: row.try_get(3)?,
                })
            })
            .collect()
    }

    async fn remove_subscription(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        let done = self
            .write_alone(move |conn| {
                execute(
                    conn,
                    "removing a subscription",
                    "DELETE FROM subscriptions WHERE id = ?",
                    params![id],
                )
            })
            .await?;
        Ok(done == 1)
    }

    async fn set_action_status(
        &self,
        id: &str,
        status: ActionStatus,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.write(Write {
            status: vec![StatusRow {
                id: id.to_string(),
                status: status.as_str(),
                error: error.map(str::to_string),
                now: now_rfc3339(),
            }],
            ..Write::default()
        })
        .await?;
        Ok(())
    }

    async fn llm_turns(&self, key: &str, limit: usize) -> Result<Vec<Turn>, StoreError> {
        let rows = sqlx::query(
            "SELECT role, text FROM (SELECT seq, role, text FROM llm_turns WHERE key = ? ORDER BY seq DESC LIMIT ?) ORDER BY seq",
        )
        .bind(key)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| Turn {
                role: row.get(0),
                text: row.get(1),
            })
            .collect())
    }

    /// One transaction on the writer: a rare write (one per LLM answer), so it runs alone
    /// as grants do rather than joining the group commit.
    async fn push_llm_turns(
        &self,
        key: &str,
        turns: &[Turn],
        keep: usize,
    ) -> Result<(), StoreError> {
        let (key, turns, now) = (key.to_string(), turns.to_vec(), now_rfc3339());
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        self.write_alone(move |conn| {
            let tx = conn.transaction().during("beginning an LLM memory's write")?;
            for turn in &turns {
                execute(
                    &tx,
                    "storing an LLM turn",
                    "INSERT INTO llm_turns (key, role, text, created_at) VALUES (?, ?, ?, ?)",
                    params![key, turn.role, turn.text, now],
                )?;
            }
            execute(
                &tx,
                "trimming an LLM memory",
                "DELETE FROM llm_turns WHERE key = ? AND seq NOT IN (SELECT seq FROM llm_turns WHERE key = ? ORDER BY seq DESC LIMIT ?)",
                params![key, key, keep],
            )?;
            tx.commit().during("committing an LLM memory's write")
        })
        .await
    }
}

/// An action's row (`id, body, status, last_error, attempts, created_at, updated_at`).
fn action_record(row: &sqlx::sqlite::SqliteRow) -> Result<ActionRecord, StoreError> {
    let id: String = row.try_get(0)?;
    let status: String = row.try_get(2)?;
    Ok(ActionRecord {
        action: StoredAction {
            action: decode("action", id.clone(), &row.try_get::<String, _>(1)?)?,
            status: ActionStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
                what: "action status",
                id: id.clone(),
                source: serde::de::Error::custom(format!("unknown status {status:?}")),
            })?,
            id,
        },
        error: row.try_get(3)?,
        attempts: row.try_get(4)?,
        created_at: row.try_get(5)?,
        updated_at: row.try_get(6)?,
    })
}

/// Brings the schema up to date. A migration that rebuilds a table (0006) copies every
/// row once, which on a database of millions of events takes a while (21 s for a million
/// events and their actions here): said before it starts, so a long start is not
/// mistaken for a hang.
async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    let migrator = sqlx::migrate!("./migrations");
    let latest = migrator.migrations.iter().map(|m| m.version).max();
    // None on a new database (no table yet): nothing to copy, nothing to say.
    let applied: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
        .fetch_one(pool)
        .await
        .ok()
        .flatten();
    let started = std::time::Instant::now();
    let updating = matches!((applied, latest), (Some(applied), Some(latest)) if applied < latest);
    if updating {
        tracing::info!(
            from = applied,
            to = latest,
            "updating the store's schema; on a large database this takes a while, once"
        );
    }
    migrator.run(pool).await?;
    if updating {
        // A rebuild goes through the log: a million events left a 700 MB WAL file, which
        // SQLite reuses but never shrinks by itself.
        let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(pool)
            .await;
        tracing::info!(
            seconds = started.elapsed().as_secs_f64(),
            "the store's schema is up to date"
        );
    }
    Ok(())
}

/// The pool's connections. `open_writer` sets the writer's up the same way (a test
/// compares them): a change here belongs there too.
fn connect_options(path: &Path) -> Result<SqliteConnectOptions, StoreError> {
    Ok(SqliteConnectOptions::from_str("sqlite:")?
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
        .busy_timeout(BUSY_TIMEOUT))
}

/// One caller's write. All of it commits in one transaction, together with the other
/// writes of its batch. Rows are encoded by the caller, off the writer's path.
#[derive(Default)]
struct Write {
    watermark: Option<WatermarkRow>,
    events: Vec<EventRow>,
    actions: Vec<ActionRow>,
    finish: Option<Finish>,
    /// An action to move from pending to dispatched.
    claim: Option<String>,
    /// Actions whose status changes (replies a phone read back, one per action).
    status: Vec<StatusRow>,
    settle: Option<SettleRow>,
}

/// What a write did, in the order of its parts.
#[derive(Debug, Default)]
struct Written {
    /// Per event: stored now, not before.
    fresh: Vec<bool>,
    /// Per action: stored now, not before.
    stored: Vec<bool>,
    /// This caller moved the action to dispatched.
    claimed: bool,
    /// Replies its own messages show were sent (see [`SettleRow`]).
    settled: Vec<String>,
}

type Reply = oneshot::Sender<Result<Written, StoreError>>;

/// How an event ends: handled, or in the dead-letter queue.
enum Finish {
    Handled(String),
    Dead(DeadRow),
}

struct WatermarkRow {
    device: String,
    conversation: String,
    state: String,
    now: String,
}

struct EventRow {
    id: String,
    key: String,
    source: String,
    event_type: String,
    conversation: Option<String>,
    body: String,
    created_at: String,
}

impl EventRow {
    fn new(event: &Event) -> Result<EventRow, StoreError> {
        Ok(EventRow {
            id: event.id.clone(),
            key: event.idempotency_key.clone(),
            source: event.source.clone(),
            event_type: event.event_type.clone(),
            conversation: event.conversation.as_ref().map(|c| c.id.clone()),
            body: serde_json::to_string(event)?,
            created_at: event.timestamp.clone(),
        })
    }
}

struct ActionRow {
    id: String,
    key: String,
    /// None for an action asked for from outside (the REST API), not decided on an event.
    event_id: Option<String>,
    target: String,
    conversation: String,
    body: String,
    now: String,
    /// Stored dispatched (claimed by the one storing it), not pending.
    claimed: bool,
}

impl ActionRow {
    /// Action ids derive from their keys: storing an action again finds the same row.
    fn new(key: String, event_id: &str, action: &Action, now: &str) -> Result<Self, StoreError> {
        Ok(ActionRow {
            id: action_id(&key),
            key,
            event_id: Some(event_id.to_string()),
            target: action.target().to_string(),
            conversation: action.conversation().to_string(),
            body: serde_json::to_string(action)?,
            now: now.to_string(),
            claimed: false,
        })
    }
}

struct DeadRow {
    id: String,
    event_id: String,
    handler: String,
    body: String,
    error: String,
    attempts: i64,
    now: String,
}

impl DeadRow {
    fn new(event: &Event, dead: &DeadLetterInfo, now: &str) -> Result<DeadRow, StoreError> {
        Ok(DeadRow {
            id: dead_letter_id(event, &dead.handler),
            event_id: event.id.clone(),
            handler: dead.handler.clone(),
            body: serde_json::to_string(&dead.delivered)?,
            error: dead.error.clone(),
            attempts: i64::from(dead.attempts),
            now: now.to_string(),
        })
    }
}

/// Replies that a crashed run handed to a phone (`unconfirmed`), to be marked done if
/// the batch's own messages (key, text) that are stored now show them sent: oldest reply
/// first, one per message, so two equal answers in a row are told apart.
struct SettleRow {
    device: String,
    conversation: String,
    own: Vec<(String, String)>,
    unconfirmed: Vec<String>,
}

struct StatusRow {
    id: String,
    status: &'static str,
    error: Option<String>,
    now: String,
}

/// A handled event's write: its actions, and its mark (handled, or dead with its letter).
fn completion(
    event: &Event,
    actions: &[Action],
    dead: Option<&DeadLetterInfo>,
) -> Result<Write, StoreError> {
    let now = now_rfc3339();
    let rows = actions
        .iter()
        .enumerate()
        .map(|(index, action)| ActionRow::new(action_key(event, index), &event.id, action, &now))
        .collect::<Result<Vec<_>, _>>()?;
    let finish = match dead {
        Some(dead) => Finish::Dead(DeadRow::new(event, dead, &now)?),
        None => Finish::Handled(event.id.clone()),
    };
    Ok(Write {
        actions: rows,
        finish: Some(finish),
        ..Write::default()
    })
}

/// The actions a write stored now (not before), as the outbox holds them; `rows` are
/// their ids and whether each was stored claimed.
fn stored_actions(
    actions: &[Action],
    rows: Vec<(String, bool)>,
    stored: Vec<bool>,
) -> Vec<StoredAction> {
    actions
        .iter()
        .zip(rows)
        .zip(stored)
        .filter(|(_, stored)| *stored)
        .map(|((action, (id, claimed)), _)| StoredAction {
            id,
            action: action.clone(),
            status: if claimed {
                ActionStatus::Dispatched
            } else {
                ActionStatus::Pending
            },
        })
        .collect()
}

/// What the writer thread is asked to do, in queue order.
#[allow(
    clippy::large_enum_variant,
    reason = "nearly every job is a Write: boxing it would add an allocation per write to save queue slots"
)]
enum Job {
    /// A hot write, group-committed with the others queued beside it.
    Write(Write, Reply),
    /// A rare write (grants, dead-letter replays, subscriptions, LLM turns), run alone
    /// between two batches; it answers its caller itself (`SqliteStore::write_alone`).
    Alone(Box<dyn FnOnce(&mut Writer) + Send>),
}

/// Starts the writer thread on a migrated database and waits until its connection is
/// open. The thread ends when the last sender is dropped.
async fn start_writer(path: &Path) -> Result<(mpsc::Sender<Job>, JoinHandle<()>), StoreError> {
    let (jobs, queue) = mpsc::channel();
    let (opened, ready) = oneshot::channel();
    let path = path.to_path_buf();
    let thread = std::thread::Builder::new()
        .name("tapwire-store-writer".into())
        .spawn(move || match open_writer(&path) {
            Ok(conn) => {
                let _ = opened.send(Ok(()));
                let checkpointer = match Checkpointer::start(&path) {
                    // Not joined: it ends once the writer drops its handle.
                    Ok((checkpointer, _thread)) => Some(checkpointer),
                    Err(error) => {
                        tracing::warn!(%error, "no checkpoint thread; the writer checkpoints alone");
                        None
                    }
                };
                Writer {
                    conn,
                    path,
                    checkpointer,
                }
                .serve(&queue);
            }
            Err(error) => {
                let _ = opened.send(Err(error));
            }
        })
        .map_err(StoreError::WriterThread)?;
    // Opening does file I/O: waited for through the oneshot, never by blocking here.
    ready.await.map_err(|_| StoreError::WriterGone)??;
    Ok((jobs, thread))
}

/// What only the writer needs. Under a burst of callbacks it writes to indexes keyed by
/// random ids, so each row dirties its own pages: SQLite's default 2 MiB cache made it
/// read those pages back from the file (pread ≈ 5 % of a profile at 5 000/s); the cache
/// fills only with use. The log is copied into the database by `checkpoint.rs` between
/// commits; the writer's own checkpoint, every 1 024 pages, finds only the last few
/// commits left to copy and lets the log start again from its beginning. (Before that
/// thread, the writer copied 8 192 pages at a time, ≈ 50 ms with every caller waiting.)
const WRITER_TUNING: &str = "PRAGMA cache_size = -8192; PRAGMA wal_autocheckpoint = 1024;";

/// The writer's connection, set up as `connect_options` sets up the pool's: WAL,
/// synchronous NORMAL, foreign keys (sqlx's default, not SQLite's) and the busy timeout.
fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).during("opening the writer's connection")?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .during("setting the writer's busy timeout")?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
    )
    .during("setting the writer's pragmas")?;
    conn.execute_batch(WRITER_TUNING)
        .during("setting the writer's cache and checkpoint size")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// The one writing connection of the process, on a thread of its own. Every statement
/// is a plain call into SQLite on this thread: through sqlx each was a round trip to the
/// connection's worker thread (a channel and a wake-up each way), which under load cost
/// more than the statements.
struct Writer {
    conn: Connection,
    /// To open the connection again should one be stuck in a transaction (`settle`).
    path: PathBuf,
    /// Copies the log into the database between commits (`checkpoint.rs`).
    checkpointer: Option<Checkpointer>,
}

impl Writer {
    /// Applies queued writes in batches until the last sender is gone: what was queued
    /// while the previous batch committed goes into one transaction, and each caller is answered only once that transaction
    /// has committed (so an event is still stored before it is routed, and actions before
    /// they are dispatched). Under load the cost of a commit (the WAL append, BEGIN and
    /// COMMIT) is shared by the batch; a write alone costs one commit, as before.
    fn serve(mut self, queue: &mpsc::Receiver<Job>) {
        let mut batch = Vec::new();
        while let Ok(first) = queue.recv() {
            let mut next = Some(first);
            while let Some(job) = next {
                match job {
                    Job::Write(write, reply) => batch.push((write, reply)),
                    Job::Alone(job) => {
                        // In queue order: the writes queued before it commit first.
                        commit_batch(&mut self, std::mem::take(&mut batch));
                        job(&mut self);
                    }
                }
                next = if batch.len() < MAX_BATCH {
                    queue.try_recv().ok()
                } else {
                    None
                };
            }
            commit_batch(&mut self, std::mem::take(&mut batch));
            if let Some(checkpointer) = &self.checkpointer {
                checkpointer.nudge();
            }
        }
    }

    /// After a failed write, makes sure the connection is not left inside a transaction:
    /// a dropped `Transaction` rolls back, but if that ROLLBACK failed every later batch
    /// would join the open transaction and none would ever commit. Such a connection is
    /// rolled back again, or replaced.
    fn settle(&mut self) {
        if self.conn.is_autocommit() {
            return;
        }
        match self.conn.execute_batch("ROLLBACK") {
            Ok(()) if self.conn.is_autocommit() => return,
            Ok(()) => {}
            Err(error) => tracing::warn!(%error, "rolling back the store's writer"),
        }
        match open_writer(&self.path) {
            Ok(fresh) => {
                let stuck = std::mem::replace(&mut self.conn, fresh);
                // Closing rolls back whatever it still had open.
                if let Err((_, error)) = stuck.close() {
                    tracing::warn!(%error, "closing the store's stuck writer");
                }
            }
            Err(error) => tracing::error!(%error, "cannot reopen the store's writer"),
        }
    }
}

/// Commits a batch and answers each of its callers. A caller that stopped waiting is
/// fine: its write stands, like one committed just before a crash, and is picked up the
/// same way.
fn commit_batch(writer: &mut Writer, batch: Vec<(Write, Reply)>) {
    if batch.is_empty() {
        return;
    }
    let (writes, mut replies): (Vec<Write>, Vec<Reply>) = batch.into_iter().unzip();
    match apply(&mut writer.conn, &writes) {
        Ok(written) => {
            for (reply, written) in replies.into_iter().zip(written) {
                let _ = reply.send(Ok(written));
            }
        }
        Err(error) if writes.len() == 1 => {
            writer.settle();
            if let Some(reply) = replies.pop() {
                let _ = reply.send(Err(error));
            }
        }
        Err(error) => {
            // Nothing of the batch committed. One bad write must not fail the others,
            // so each is applied again on its own and answered for itself.
            tracing::warn!(%error, writes = writes.len(), "group commit failed; writing one by one");
            writer.settle();
            for (write, reply) in writes.iter().zip(replies) {
                let result = apply(&mut writer.conn, std::slice::from_ref(write));
                if result.is_err() {
                    writer.settle();
                }
                let _ = reply.send(result.map(|mut written| written.pop().unwrap_or_default()));
            }
        }
    }
}

/// Applies writes in one transaction; a single statement needs none of its own.
fn apply(conn: &mut Connection, writes: &[Write]) -> Result<Vec<Written>, StoreError> {
    if statements(writes) <= 1 {
        // One statement is atomic by itself: no BEGIN and COMMIT.
        return run(conn, writes);
    }
    // A deferred BEGIN is enough: the first statement writes, so the write lock is taken
    // (waiting under busy_timeout) before anything is read. Dropped on an error, the
    // transaction rolls back.
    let tx = conn.transaction().during("beginning a group commit")?;
    let written = run(&tx, writes)?;
    tx.commit().during("committing a group commit")?;
    Ok(written)
}

/// How many statements `run` will execute.
fn statements(writes: &[Write]) -> usize {
    let count = |part: fn(&Write) -> usize| writes.iter().map(part).sum::<usize>();
    count(|w| usize::from(w.watermark.is_some()))
        + count(|w| w.events.len())
        + count(|w| w.actions.len())
        + count(|w| match w.finish {
            Some(Finish::Dead(_)) => 2,
            Some(Finish::Handled(_)) => 1,
            None => 0,
        })
        + count(|w| usize::from(w.claim.is_some()))
        + count(|w| w.status.len())
        + count(|w| 2 * usize::from(w.settle.is_some()))
}

/// The batch's statements, in an order that keeps foreign keys whole (events before
/// their actions and dead letters). The writes of a batch were all queued before any
/// was answered, so no caller can tell in which order they are applied; where two
/// write the same key, the first in the queue gets it, as if applied one by one.
fn run(conn: &Connection, writes: &[Write]) -> Result<Vec<Written>, StoreError> {
    for row in writes.iter().filter_map(|w| w.watermark.as_ref()) {
        upsert_watermark(conn, row)?;
    }
    let events: Vec<&EventRow> = writes.iter().flat_map(|w| &w.events).collect();
    let mut fresh = insert_events(conn, &events)?;
    let actions: Vec<&ActionRow> = writes.iter().flat_map(|w| &w.actions).collect();
    let mut stored = insert_actions(conn, &actions)?;
    let mut handled = Vec::new();
    for finish in writes.iter().filter_map(|w| w.finish.as_ref()) {
        match finish {
            Finish::Handled(id) => handled.push(id.as_str()),
            Finish::Dead(row) => insert_dead_letter(conn, row)?,
        }
    }
    set_handled(conn, &handled)?;
    let claims: Vec<&str> = writes.iter().filter_map(|w| w.claim.as_deref()).collect();
    let mut claimed = claim_actions(conn, &claims)?;
    for row in writes.iter().flat_map(|w| &w.status) {
        set_action_status(conn, row)?;
    }
    let mut settled = Vec::with_capacity(writes.len());
    for write in writes {
        settled.push(match &write.settle {
            Some(row) => settle_sent_replies(conn, row, &fresh)?,
            None => Vec::new(),
        });
    }
    Ok(writes
        .iter()
        .zip(settled)
        .map(|(w, settled)| Written {
            fresh: w.events.iter().map(|row| fresh.remove(&row.key)).collect(),
            stored: w
                .actions
                .iter()
                .map(|row| stored.remove(&row.key))
                .collect(),
            claimed: w.claim.as_ref().is_some_and(|id| claimed.remove(id)),
            settled,
        })
        .collect())
}

/// Marks done, for each own message stored now, the oldest unconfirmed reply of the same
/// text (`tail::same_text`) to that conversation. Returns their ids.
fn settle_sent_replies(
    conn: &Connection,
    row: &SettleRow,
    fresh: &HashSet<String>,
) -> Result<Vec<String>, StoreError> {
    let during = "reading replies in flight";
    let mut in_flight = Vec::new();
    let mut select = conn
        .prepare_cached(
            "SELECT id, body FROM actions WHERE status = 'dispatched' AND target = ? AND conversation = ? ORDER BY created_at, rowid",
        )
        .during(during)?;
    let mut rows = select
        .query(params![row.device, row.conversation])
        .during(during)?;
    while let Some(action) = rows.next().during(during)? {
        let id: String = action.get(0).during(during)?;
        if row.unconfirmed.contains(&id) {
            let body: String = action.get(1).during(during)?;
            let Action::Send { text, .. } = decode("action", id.clone(), &body)?;
            in_flight.push((id, text));
        }
    }
    let now = now_rfc3339();
    let mut settled = Vec::new();
    for (_, text) in row.own.iter().filter(|(key, _)| fresh.contains(key)) {
        // The own message may be read from a screenshot: the phone's own comparison of
        // a reply with its reading (OCR noise folded, every letter kept).
        let Some(at) = in_flight.iter().position(|(_, t)| same_text(t, text)) else {
            continue;
        };
        let (id, _) = in_flight.remove(at);
        set_action_status(
            conn,
            &StatusRow {
                id: id.clone(),
                status: ActionStatus::Done.as_str(),
                error: None,
                now: now.clone(),
            },
        )?;
        settled.push(id);
    }
    Ok(settled)
}

fn upsert_watermark(conn: &Connection, row: &WatermarkRow) -> Result<(), StoreError> {
    execute(
        conn,
        "storing a watermark",
        "INSERT INTO watermarks (device, conversation, state, updated_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT (device, conversation) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
        params![row.device, row.conversation, row.state, row.now],
    )?;
    Ok(())
}

// The hot statements below change one row each and run once per row, from the
// statement cache. A statement that may change several rows (a multi-row VALUES, an
// `IN (…)` list) and may abort on a constraint makes SQLite keep a statement journal
// inside a transaction, a copy of every page before the statement first changes it, so
// that an abort can undo the statement alone: a fifth of the writer's time at full
// speed (`perf`, session 11), more than the per-statement overhead it saved. One row by
// primary key needs no journal.

/// Inserts events; returns the keys stored now. A key stored before (its id is the key's
/// hash) is skipped by ON CONFLICT and changes no row.
fn insert_events(conn: &Connection, rows: &[&EventRow]) -> Result<HashSet<String>, StoreError> {
    let during = "inserting an event";
    let mut inserted = HashSet::new();
    if rows.is_empty() {
        return Ok(inserted);
    }
    let mut statement = conn
        .prepare_cached(
            "INSERT INTO events (id, idempotency_key, source, event_type, conversation, body, status, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, 'pending', ?) ON CONFLICT (id) DO NOTHING",
        )
        .during(during)?;
    for row in rows {
        let changed = statement
            .execute(params![
                row.id,
                row.key,
                row.source,
                row.event_type,
                row.conversation,
                row.body,
                row.created_at
            ])
            .during(during)?;
        if changed == 1 {
            inserted.insert(row.key.clone());
        }
    }
    Ok(inserted)
}

/// Inserts actions; returns the keys stored now (see `insert_events`).
fn insert_actions(conn: &Connection, rows: &[&ActionRow]) -> Result<HashSet<String>, StoreError> {
    let during = "inserting an action";
    let mut inserted = HashSet::new();
    if rows.is_empty() {
        return Ok(inserted);
    }
    let mut statement = conn
        .prepare_cached(
            "INSERT INTO actions (id, idempotency_key, event_id, target, conversation, body, status, attempts, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        )
        .during(during)?;
    for row in rows {
        // A claimed row is handed out now: counted as one attempt, as a claim is.
        let (status, attempts) = if row.claimed {
            (ActionStatus::Dispatched.as_str(), 1)
        } else {
            (ActionStatus::Pending.as_str(), 0)
        };
        let changed = statement
            .execute(params![
                row.id,
                row.key,
                row.event_id,
                row.target,
                row.conversation,
                row.body,
                status,
                attempts,
                row.now,
                row.now
            ])
            .during(during)?;
        if changed == 1 {
            inserted.insert(row.key.clone());
        }
    }
    Ok(inserted)
}

/// Marks events handled.
fn set_handled(conn: &Connection, ids: &[&str]) -> Result<(), StoreError> {
    let during = "marking an event handled";
    if ids.is_empty() {
        return Ok(());
    }
    let mut statement = conn
        .prepare_cached("UPDATE events SET status = 'handled' WHERE id = ?")
        .during(during)?;
    for id in ids {
        statement.execute([id]).during(during)?;
    }
    Ok(())
}

/// Moves pending actions to dispatched; returns the ids it moved. The `status =
/// 'pending'` condition makes a second claim of the same action, in this batch or any
/// later one, move nothing.
fn claim_actions(conn: &Connection, ids: &[&str]) -> Result<HashSet<String>, StoreError> {
    let during = "claiming an action";
    let mut claimed = HashSet::new();
    if ids.is_empty() {
        return Ok(claimed);
    }
    let now = now_rfc3339();
    let mut statement = conn
        .prepare_cached(
            "UPDATE actions SET status = 'dispatched', attempts = attempts + 1, updated_at = ? \
             WHERE id = ? AND status = 'pending'",
        )
        .during(during)?;
    for id in ids {
        if statement.execute(params![now, id]).during(during)? == 1 {
            claimed.insert((*id).to_string());
        }
    }
    Ok(claimed)
}

fn set_action_status(conn: &Connection, row: &StatusRow) -> Result<(), StoreError> {
    execute(
        conn,
        "setting an action's status",
        "UPDATE actions SET status = ?, last_error = ?, attempts = attempts + CASE WHEN ? = 'dispatched' THEN 1 ELSE 0 END, updated_at = ? WHERE id = ?",
        params![row.status, row.error, row.status, row.now, row.id],
    )?;
    Ok(())
}

/// Stores a dead letter and marks its event dead (two statements: always inside a
/// transaction).
fn insert_dead_letter(conn: &Connection, row: &DeadRow) -> Result<(), StoreError> {
    execute(
        conn,
        "storing a dead letter",
        "INSERT INTO dead_letters (id, event_id, handler, body, error, attempts, status, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, 'dead', ?, ?) \
         ON CONFLICT (event_id, handler) DO UPDATE SET error = excluded.error, body = excluded.body, \
         attempts = dead_letters.attempts + excluded.attempts, status = 'dead', updated_at = excluded.updated_at",
        params![
            row.id,
            row.event_id,
            row.handler,
            row.body,
            row.error,
            row.attempts,
            row.now,
            row.now
        ],
    )?;
    execute(
        conn,
        "marking an event dead",
        "UPDATE events SET status = 'dead' WHERE id = ?",
        params![row.event_id],
    )?;
    Ok(())
}

/// Runs one statement through the writer's statement cache; returns the rows it changed.
fn execute(
    conn: &Connection,
    during: &'static str,
    sql: &str,
    values: impl rusqlite::Params,
) -> Result<usize, StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut statement| statement.execute(values))
        .during(during)
}

/// Names the step a rusqlite error happened in: SQLite's own message rarely says which
/// of a batch's statements failed.
trait During<T> {
    fn during(self, during: &'static str) -> Result<T, StoreError>;
}

impl<T> During<T> for rusqlite::Result<T> {
    fn during(self, during: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Sqlite { during, source })
    }
}

/// Decodes a stored JSON column, naming what and which row when it is not valid.
fn decode<T: serde::de::DeserializeOwned>(
    what: &'static str,
    id: String,
    json: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|source| StoreError::Corrupt { what, id, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::types;

    /// A read of conversation `c` on phone `p`.
    fn read<'a>(
        watermark: &'a str,
        events: &'a [Event],
        delivered: &'a [String],
        unconfirmed: &'a [String],
    ) -> ReadBatch<'a> {
        ReadBatch {
            device: "p",
            conversation: "c",
            watermark,
            events,
            delivered,
            unconfirmed,
        }
    }

    fn event(key: &str) -> Event {
        Event {
            id: crate::event::event_id(key),
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

    /// An API send: no event behind it (a NULL foreign key), one row per key, read back
    /// by id with its outcome.
    #[tokio::test]
    async fn a_submitted_action_is_stored_once_per_key_without_an_event_on_both_backends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sqlite = SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("open");
        let memory = crate::store::MemoryStore::default();
        let stores: [&dyn Store; 2] = [&sqlite, &memory];
        for store in stores {
            let action = Action::send("robot", "room", "hello");
            let first = store
                .submit_action("api:k1", &action)
                .await
                .expect("stored")
                .expect("fresh");
            assert_eq!(first.id, action_id("api:k1"));
            assert!(
                store
                    .submit_action("api:k1", &action)
                    .await
                    .expect("stored")
                    .is_none(),
                "the same key stores nothing new"
            );
            assert_eq!(store.pending_actions().await.expect("pending").len(), 1);
            let record = store.action(&first.id).await.expect("read").expect("found");
            assert_eq!(record.action.action, action);
            assert_eq!(record.action.status, ActionStatus::Pending);
            store
                .set_action_status(&first.id, ActionStatus::Failed, Some("refused"))
                .await
                .expect("status");
            let record = store.action(&first.id).await.expect("read").expect("found");
            assert_eq!(record.action.status, ActionStatus::Failed);
            assert_eq!(record.error.as_deref(), Some("refused"));
            assert!(store.action("act_none").await.expect("read").is_none());
        }
    }

    /// The window of turns, the same on both backends: newest kept, oldest first, keys
    /// apart; and SQLite's outlive a reopen (a restart).
    #[tokio::test]
    async fn actions_stored_claimed_are_handed_out_by_no_one_else_on_both_backends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sqlite = SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("open");
        let memory = crate::store::MemoryStore::default();
        let stores: [&dyn Store; 2] = [&sqlite, &memory];
        for store in stores {
            let mut event = crate::event::test_message("phone", "chat", "hi", false);
            event.id = "ev_claim".into();
            event.idempotency_key = "k_claim".into();
            store.insert_event(&event).await.expect("insert");
            let actions = [
                Action::send("bot", "chat", "now"),
                Action::send("away", "chat", "later"),
            ];
            let stored = store
                .complete_and_claim(&event, &actions, None, &[true, false])
                .await
                .expect("complete");
            let statuses: Vec<ActionStatus> = stored.iter().map(|a| a.status).collect();
            assert_eq!(statuses, [ActionStatus::Dispatched, ActionStatus::Pending]);
            // The sweep sees only the unclaimed one; a claim of the other finds it taken.
            let pending = store.pending_actions().await.expect("pending");
            assert_eq!(pending.len(), 1);
            assert_eq!(pending[0].id, stored[1].id);
            assert!(!store.claim_action(&stored[0].id).await.expect("claim"));
            // A restart resumes both.
            assert_eq!(store.open_actions().await.expect("open").len(), 2);
            // Completed again (handled twice): nothing new, nothing returned.
            let again = store
                .complete_and_claim(&event, &actions, None, &[true, true])
                .await
                .expect("complete");
            assert!(again.is_empty());
        }
        let record = sqlite
            .action(&action_id(&action_key(
                &{
                    let mut e = crate::event::test_message("phone", "chat", "hi", false);
                    e.id = "ev_claim".into();
                    e.idempotency_key = "k_claim".into();
                    e
                },
                0,
            )))
            .await
            .expect("read")
            .expect("stored");
        assert_eq!(record.attempts, 1, "a claim counts as an attempt");
    }

    #[tokio::test]
    async fn a_conversations_messages_are_read_back_newest_kept_oldest_first_on_both_backends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sqlite = SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("open");
        let memory = crate::store::MemoryStore::default();
        let stores: [&dyn Store; 2] = [&sqlite, &memory];
        let message = |n: u32, chat: &str, minute: u32| {
            let mut event = crate::event::test_message("phone", chat, &format!("m{n}"), false);
            event.id = format!("ev_{n}");
            event.idempotency_key = format!("k{n}");
            event.timestamp = format!("2026-11-30T10:{minute:02}:00.000Z");
            event
        };
        for store in stores {
            // Stored out of time order, as a phone's reads and a restart can.
            for (n, chat, minute) in [
                (1, "群", 1),
                (3, "群", 3),
                (2, "群", 2),
                (4, "别的", 4),
                (5, "群", 5),
            ] {
                store
                    .insert_event(&message(n, chat, minute))
                    .await
                    .expect("insert");
            }
            let mut notice = message(6, "群", 6);
            notice.event_type = "device.connected".into();
            store.insert_event(&notice).await.expect("insert");
            let texts = |events: Vec<Event>| -> Vec<String> {
                events.iter().filter_map(Event::text).collect()
            };
            let all = store
                .messages_in("phone", "群", None, 10)
                .await
                .expect("read");
            assert_eq!(texts(all), ["m1", "m2", "m3", "m5"]);
            let newest = store
                .messages_in("phone", "群", None, 2)
                .await
                .expect("read");
            assert_eq!(texts(newest), ["m3", "m5"]);
            let since = store
                .messages_in("phone", "群", Some("2026-11-30T10:02:00.000Z"), 10)
                .await
                .expect("read");
            assert_eq!(texts(since), ["m2", "m3", "m5"]);
            assert!(
                store
                    .messages_in("other", "群", None, 10)
                    .await
                    .expect("read")
                    .is_empty()
            );
        }
    }

    #[tokio::test]
    async fn failed_actions_are_listed_and_retried_once_and_subscriptions_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let sqlite = SqliteStore::open(&path).await.expect("open");
        let memory = crate::store::MemoryStore::default();
        let stores: [&dyn Store; 2] = [&sqlite, &memory];
        for store in stores {
            let a = store
                .submit_action("k1", &Action::send("subscriptions", "sub_1", "{}"))
                .await
                .expect("submit")
                .expect("new");
            let b = store
                .submit_action("k2", &Action::send("bot", "chat", "hi"))
                .await
                .expect("submit")
                .expect("new");
            for id in [&a.id, &b.id] {
                store.claim_action(id).await.expect("claim");
                store
                    .set_action_status(id, ActionStatus::Failed, Some("HTTP 500"))
                    .await
                    .expect("fail");
            }
            let failed = store.failed_actions(None, None, 10).await.expect("failed");
            assert_eq!(failed.len(), 2);
            let to_subs = store
                .failed_actions(Some("subscriptions"), None, 10)
                .await
                .expect("failed");
            assert_eq!(to_subs.len(), 1);
            assert_eq!(to_subs[0].action.id, a.id);
            assert_eq!(to_subs[0].error.as_deref(), Some("HTTP 500"));
            let other_conversation = store
                .failed_actions(Some("subscriptions"), Some("sub_2"), 10)
                .await
                .expect("failed");
            assert!(other_conversation.is_empty());
            assert_eq!(
                store
                    .failed_actions(Some("subscriptions"), Some("sub_1"), 10)
                    .await
                    .expect("failed")
                    .len(),
                1
            );
            assert!(store.retry_action(&a.id).await.expect("retry"));
            // Only a failed one goes back, and only once.
            assert!(!store.retry_action(&a.id).await.expect("retry"));
            assert!(!store.retry_action("act_none").await.expect("retry"));
            let pending = store.pending_actions().await.expect("pending");
            assert_eq!(
                pending.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
                [a.id.as_str()]
            );
            assert_eq!(
                store
                    .failed_actions(None, None, 10)
                    .await
                    .expect("failed")
                    .len(),
                1
            );

            let sub = StoredSubscription {
                id: "sub_1".into(),
                url: "http://127.0.0.1:9/hook".into(),
                events: vec!["message.*".into()],
                created_at: now_rfc3339(),
            };
            store.add_subscription(&sub).await.expect("add");
            assert_eq!(
                store.subscriptions().await.expect("list"),
                std::slice::from_ref(&sub)
            );
        }
        drop(sqlite);
        let reopened = SqliteStore::open(&path).await.expect("reopen");
        let kept = reopened.subscriptions().await.expect("list");
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].events, ["message.*"]);
        assert!(reopened.remove_subscription("sub_1").await.expect("remove"));
        assert!(!reopened.remove_subscription("sub_1").await.expect("remove"));
        assert!(reopened.subscriptions().await.expect("list").is_empty());
    }

    #[tokio::test]
    async fn llm_turns_keep_a_window_per_key_on_both_backends_and_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let sqlite = SqliteStore::open(&path).await.expect("open");
        let memory = crate::store::MemoryStore::default();
        let stores: [&dyn Store; 2] = [&sqlite, &memory];
        for store in stores {
            assert!(store.llm_turns("a", 10).await.expect("read").is_empty());
            for n in 0..3 {
                let turns = [
                    Turn::new("user", format!("q{n}")),
                    Turn::new("assistant", format!("a{n}")),
                ];
                store.push_llm_turns("a", &turns, 4).await.expect("push");
            }
            store
                .push_llm_turns("b", &[Turn::new("user", "other")], 4)
                .await
                .expect("push");
            let kept = store.llm_turns("a", 10).await.expect("read");
            let texts: Vec<&str> = kept.iter().map(|t| t.text.as_str()).collect();
            assert_eq!(texts, ["q1", "a1", "q2", "a2"]);
            assert_eq!(kept[0].role, "user");
            let last = store.llm_turns("a", 1).await.expect("read");
            assert_eq!(last, [Turn::new("assistant", "a2")]);
            assert_eq!(store.llm_turns("b", 10).await.expect("read").len(), 1);
        }
        drop(sqlite);
        let reopened = SqliteStore::open(&path).await.expect("reopen");
        let kept = reopened.llm_turns("a", 10).await.expect("read");
        assert_eq!(kept.len(), 4, "{kept:?}");
        assert_eq!(kept[3].text, "a2");
    }

    /// What `/metrics` shows of the store, the same on both backends: open actions per
    /// target with the oldest one's time (done and failed ones gone from it), and dead
    /// letters until they are dropped.
    #[tokio::test]
    async fn the_backlog_counts_open_actions_per_target_and_waiting_dead_letters() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sqlite = SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("open");
        let memory = crate::store::MemoryStore::default();
        let stores: [&dyn Store; 2] = [&sqlite, &memory];
        for store in stores {
            assert_eq!(store.backlog().await.expect("backlog"), Backlog::default());
            let before = now_rfc3339();
            let q = event("q");
            store.insert_event(&q).await.expect("insert");
            let actions = [
                Action::send("p", "c", "1"),
                Action::send("p", "c", "2"),
                Action::send("bot", "c", "3"),
                Action::send("p", "c", "4"),
            ];
            let stored = store
                .complete_event(&q, &actions, None)
                .await
                .expect("complete");
            assert!(store.claim_action(&stored[0].id).await.expect("claim"));
            store
                .set_action_status(&stored[3].id, ActionStatus::Done, None)
                .await
                .expect("done");
            let dl = event("dl");
            store.insert_event(&dl).await.expect("insert");
            let letter = store
                .dead_letter(&dl, &dead(&dl, "HTTP 500", 4))
                .await
                .expect("dead");
            let backlog = store.backlog().await.expect("backlog");
            let open: Vec<(&str, u64)> = backlog
                .outbox
                .iter()
                .map(|t| (t.target.as_str(), t.open))
                .collect();
            assert_eq!(open, [("bot", 1), ("p", 2)]);
            for target in &backlog.outbox {
                assert!(target.oldest >= before, "{target:?} is older than {before}");
                assert!(
                    humantime::parse_rfc3339(&target.oldest).is_ok(),
                    "{target:?}"
                );
            }
            assert_eq!(backlog.dead_letters, 1);
            store.drop_dead_letter(&letter).await.expect("drop");
            for action in &stored[..3] {
                store
                    .set_action_status(&action.id, ActionStatus::Failed, Some("gone"))
                    .await
                    .expect("failed");
            }
            assert_eq!(store.backlog().await.expect("backlog"), Backlog::default());
        }
    }

    #[tokio::test]
    async fn events_are_stored_once_and_actions_survive_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let store = SqliteStore::open(&path).await.expect("open");
        let wm = r#"{"tail":[],"next_seq":3}"#;
        let fresh = store
            .record(read(wm, &[event("a"), event("b")], &[], &[]))
            .await
            .expect("record");
        assert_eq!(fresh.fresh.len(), 2);
        let again = store
            .record(read(wm, &[event("a")], &[], &[]))
            .await
            .expect("record");
        assert!(
            again.fresh.is_empty(),
            "a re-read message is not stored twice"
        );
        assert_eq!(
            store.watermark("p", "c").await.expect("wm"),
            Some(wm.to_string())
        );
        assert_eq!(store.pending_events().await.expect("pending").len(), 2);

        let send = Action::send("p", "c", "hi");
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

        let reopened = SqliteStore::open(&path).await.expect("reopen");
        assert_eq!(reopened.pending_events().await.expect("pending").len(), 1);
        let open = reopened.open_actions().await.expect("open actions");
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].status, ActionStatus::Dispatched);
    }

    /// Replies are settled by what the phone shows: the one a batch delivers, and those
    /// a crashed run may have sent, matched one own message each, oldest first.
    #[tokio::test]
    async fn a_batch_settles_its_delivered_reply_and_unconfirmed_ones_it_shows_sent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("open");
        let send = |text: &str| Action::send("p", "c", text);
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
            id: crate::event::event_id(key),
            ..crate::event::test_message("p", "c", text, true)
        };
        let wm = "{}";
        // The first "ok" was delivered with this batch; two own "ok" bubbles are new, but
        // only the third reply is unconfirmed: the second was handed out in this run.
        let recorded = store
            .record(read(
                wm,
                &[own("o1", "ok"), own("o2", "ok"), own("o3", "other")],
                &ids[..1],
                &[ids[2].clone()],
            ))
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
            .record(read(wm, &[own("o1", "ok")], &[], &ids))
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
        let store = SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("open");
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

        let send = Action::send("p", "c", "late answer");
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
        let store = SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("open");
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

    fn send(text: &str) -> Action {
        Action::send("p", "c", text)
    }

    /// Commits `writes` as one batch on the writer thread, the way the group commit does,
    /// and returns each caller's answer.
    async fn one_batch(
        store: &SqliteStore,
        writes: Vec<Write>,
    ) -> Vec<Result<Written, StoreError>> {
        let (batch, answers): (Vec<_>, Vec<_>) = writes
            .into_iter()
            .map(|write| {
                let (reply, answer) = oneshot::channel();
                ((write, reply), answer)
            })
            .unzip();
        let job = move |writer: &mut Writer| commit_batch(writer, batch);
        store
            .writer
            .send(Job::Alone(Box::new(job)))
            .expect("writer running");
        let mut results = Vec::new();
        for answer in answers {
            results.push(answer.await.expect("answered"));
        }
        results
    }

    async fn count(store: &SqliteStore, sql: &str, id: &str) -> i64 {
        sqlx::query_scalar(sql)
            .bind(id)
            .fetch_one(&store.pool)
            .await
            .expect("count")
    }

    #[tokio::test]
    async fn one_batch_gives_each_key_to_its_first_writer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let store = SqliteStore::open(&path).await.expect("open");
        let old = event("old");
        store.insert_event(&old).await.expect("insert");
        let stored = store
            .complete_event(&old, &[send("a")], None)
            .await
            .expect("complete");
        let action = stored[0].id.clone();
        let new = event("new");
        let claim = || Write {
            claim: Some(action.clone()),
            ..Write::default()
        };
        let insert = || Write {
            events: vec![EventRow::new(&new).expect("row")],
            ..Write::default()
        };
        let answers = one_batch(
            &store,
            vec![
                claim(),
                insert(),
                claim(),
                insert(),
                // Events go in before actions, so even the event's own completion in the
                // same batch finds it (actions.event_id is a foreign key).
                completion(&new, &[send("b")], None).expect("completion"),
            ],
        )
        .await;
        let answers: Vec<Written> = answers.into_iter().map(|a| a.expect("ok")).collect();
        assert!(answers[0].claimed && !answers[2].claimed, "{answers:?}");
        assert_eq!(
            (answers[1].fresh.as_slice(), answers[3].fresh.as_slice()),
            (&[true][..], &[false][..])
        );
        assert_eq!(answers[4].stored, [true]);
        let attempts = count(&store, "SELECT attempts FROM actions WHERE id = ?", &action).await;
        assert_eq!(attempts, 1, "the losing claim changed nothing");
        assert!(store.pending_events().await.expect("pending").is_empty());
    }

    #[tokio::test]
    async fn a_failing_write_fails_alone_and_commits_nothing_of_itself() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let store = SqliteStore::open(&path).await.expect("open");
        let (good, bad, other) = (event("good"), event("bad"), event("other"));
        store.insert_event(&good).await.expect("insert");
        store.insert_event(&bad).await.expect("insert");
        // A test-only fault: marking `bad` handled fails, after its actions went in.
        sqlx::query(&format!(
            "CREATE TRIGGER fail_bad BEFORE UPDATE OF status ON events WHEN NEW.id = '{}' \
             BEGIN SELECT RAISE(ABORT, 'injected fault'); END",
            bad.id
        ))
        .execute(&store.pool)
        .await
        .expect("trigger");
        let answers = one_batch(
            &store,
            vec![
                completion(&good, &[send("g")], None).expect("completion"),
                completion(&bad, &[send("b")], None).expect("completion"),
                Write {
                    events: vec![EventRow::new(&other).expect("row")],
                    ..Write::default()
                },
            ],
        )
        .await;
        let [good_answer, bad_answer, other_answer] = <[_; 3]>::try_from(answers).expect("three");
        assert_eq!(good_answer.expect("good commits").stored, [true]);
        assert!(bad_answer.is_err(), "the bad write reports its error");
        assert_eq!(other_answer.expect("other commits").fresh, [true]);
        let actions = "SELECT COUNT(*) FROM actions WHERE event_id = ?";
        assert_eq!(
            count(&store, actions, &bad.id).await,
            0,
            "no actions without the mark"
        );
        let pending: Vec<String> = store
            .pending_events()
            .await
            .expect("pending")
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(pending, [bad.id.clone(), other.id.clone()]);
        let idle = store.write_alone(|conn| Ok(conn.is_autocommit())).await;
        assert!(
            idle.expect("asked"),
            "the writer is left inside a transaction"
        );

        // Through the queue, alone: the same failure, and the writer goes on afterwards.
        assert!(
            store
                .complete_event(&bad, &[send("b")], None)
                .await
                .is_err()
        );
        assert_eq!(count(&store, actions, &bad.id).await, 0);
        sqlx::query("DROP TRIGGER fail_bad")
            .execute(&store.pool)
            .await
            .expect("drop trigger");
        let stored = store
            .complete_event(&bad, &[send("b")], None)
            .await
            .expect("complete");
        assert_eq!(stored.len(), 1);
    }

    #[tokio::test]
    async fn a_dead_letter_commits_with_its_events_mark() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("open");
        let ev = event("dies");
        store.insert_event(&ev).await.expect("insert");
        let stored = store
            .complete_event(&ev, &[send("partial")], Some(&dead(&ev, "HTTP 500", 4)))
            .await
            .expect("complete");
        assert_eq!(stored.len(), 1);
        assert!(store.pending_events().await.expect("pending").is_empty());
        let letters = store.dead_letters().await.expect("letters");
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].event, ev);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_callers_store_an_event_once_and_claim_an_action_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("open");
        let ev = event("raced");
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let (store, ev) = (store.clone(), ev.clone());
            tasks.spawn(async move { store.insert_event(&ev).await.expect("insert") });
        }
        let fresh = tasks.join_all().await.into_iter().filter(|f| *f).count();
        assert_eq!(fresh, 1);
        let stored = store
            .complete_event(&ev, &[send("once")], None)
            .await
            .expect("complete");
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let (store, id) = (store.clone(), stored[0].id.clone());
            tasks.spawn(async move { store.claim_action(&id).await.expect("claim") });
        }
        let won = tasks.join_all().await.into_iter().filter(|w| *w).count();
        assert_eq!(won, 1, "exactly one caller dispatches the action");
    }

    /// The writer is opened by rusqlite, the pool by sqlx: both must run SQLite alike
    /// (foreign keys are sqlx's default, not SQLite's).
    #[tokio::test]
    async fn the_writer_runs_with_the_pools_pragmas() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("open");
        let pragmas = [
            "journal_mode",
            "synchronous",
            "foreign_keys",
            "busy_timeout",
        ];
        let mut pool = Vec::new();
        for pragma in pragmas {
            let value: sqlx::sqlite::SqliteRow = sqlx::query(&format!("PRAGMA {pragma}"))
                .fetch_one(&store.pool)
                .await
                .expect("pool pragma");
            // journal_mode answers with text, the others with numbers.
            pool.push(
                value
                    .try_get::<String, _>(0)
                    .or_else(|_| value.try_get::<i64, _>(0).map(|n| n.to_string()))
                    .expect("pragma value"),
            );
        }
        let writer = store
            .write_alone(move |conn| {
                pragmas
                    .iter()
                    .map(|pragma| {
                        conn.query_row(&format!("PRAGMA {pragma}"), [], |row| {
                            row.get::<_, rusqlite::types::Value>(0)
                        })
                        .map(|value| match value {
                            rusqlite::types::Value::Text(text) => text,
                            rusqlite::types::Value::Integer(n) => n.to_string(),
                            other => format!("{other:?}"),
                        })
                        .during("reading a pragma")
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .await
            .expect("writer pragmas");
        assert_eq!(writer, pool);
        assert_eq!(writer, ["wal", "1", "1", "5000"]);
    }

    /// Tests open many stores: each one's thread must end with it.
    #[tokio::test]
    async fn the_writer_thread_ends_with_its_last_sender() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let store = SqliteStore::open(&path).await.expect("open");
        let (writer, thread) = start_writer(&path).await.expect("writer");
        let (reply, answer) = oneshot::channel();
        let job = move |_: &mut Writer| {
            let _ = reply.send(());
        };
        writer.send(Job::Alone(Box::new(job))).expect("send");
        answer.await.expect("the thread serves");
        let other = writer.clone();
        drop(writer);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!thread.is_finished(), "a clone still holds it");
        drop(other);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !thread.is_finished() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the thread lives on"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(store);
    }

    /// A database from before migration 0006 (a second unique index on the keys) keeps
    /// every row, rowid and pointer through the rebuild, and still stores a key once.
    #[tokio::test]
    async fn the_key_index_rebuild_keeps_every_row_and_still_stores_a_key_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        {
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(connect_options(&path).expect("options"))
                .await
                .expect("connect");
            let mut before = sqlx::migrate!("./migrations");
            let last = before
                .migrations
                .iter()
                .position(|m| m.version == 6)
                .expect("migration 6");
            before.migrations = before.migrations[..last].to_vec().into();
            before.run(&pool).await.expect("migrate to 5");
            // Rowids out of key order, as a long-lived database has them after deletes.
            for (rowid, key, status) in [(7, "k_b", "handled"), (3, "k_a", "pending")] {
                sqlx::query(
                    "INSERT INTO events (rowid, id, idempotency_key, source, event_type, body, status, created_at) \
                     VALUES (?, ?, ?, 'p', 'message.received', ?, ?, '2026-11-30T10:00:00.000Z')",
                )
                .bind(rowid)
                .bind(crate::event::event_id(key))
                .bind(key)
                .bind(serde_json::to_string(&event(key)).expect("json"))
                .bind(status)
                .execute(&pool)
                .await
                .expect("event");
            }
            sqlx::query(
                "INSERT INTO actions (rowid, id, idempotency_key, event_id, target, conversation, body, status, attempts, last_error, created_at, updated_at) \
                 VALUES (5, 'act_x', 'k_b:0', ?, 'p', 'c', '{}', 'failed', 3, 'unplugged', 't0', 't1')",
            )
            .bind(crate::event::event_id("k_b"))
            .execute(&pool)
            .await
            .expect("action");
            sqlx::query(
                "INSERT INTO dead_letters (id, event_id, handler, body, error, attempts, created_at, updated_at) \
                 VALUES ('dl_x', ?, 'hook', '{}', 'gone', 5, 't0', 't1')",
            )
            .bind(crate::event::event_id("k_b"))
            .execute(&pool)
            .await
            .expect("dead letter");
            pool.close().await;
        }

        let store = SqliteStore::open(&path).await.expect("open migrates");
        let pool = store.read_pool();
        let events: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT rowid, idempotency_key, status FROM events ORDER BY rowid")
                .fetch_all(pool)
                .await
                .expect("events");
        assert_eq!(
            events,
            [
                (3, "k_a".to_string(), "pending".to_string()),
                (7, "k_b".to_string(), "handled".to_string())
            ]
        );
        let action: (i64, String, String, i64, Option<String>, String) = sqlx::query_as(
            "SELECT rowid, event_id, status, attempts, last_error, updated_at FROM actions",
        )
        .fetch_one(pool)
        .await
        .expect("action");
        assert_eq!(
            action,
            (
                5,
                crate::event::event_id("k_b"),
                "failed".into(),
                3,
                Some("unplugged".into()),
                "t1".into()
            )
        );
        let dead: (String, String, i64) =
            sqlx::query_as("SELECT id, event_id, attempts FROM dead_letters")
                .fetch_one(pool)
                .await
                .expect("dead letter");
        assert_eq!(dead, ("dl_x".into(), crate::event::event_id("k_b"), 5));
        // The pointers still name tables that exist: a dangling one would be listed.
        let dangling: Vec<(String,)> =
            sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check")
                .fetch_all(pool)
                .await
                .expect("check");
        assert!(dangling.is_empty(), "{dangling:?}");
        let schema: Vec<(String,)> = sqlx::query_as(
            "SELECT sql FROM sqlite_master WHERE tbl_name IN ('actions', 'dead_letters') AND type = 'table'",
        )
        .fetch_all(pool)
        .await
        .expect("schema");
        assert!(
            schema.len() == 2
                && schema
                    .iter()
                    .all(|(sql,)| sql.contains("REFERENCES \"events\" (id)")),
            "{schema:?}"
        );
        // One unique index per table left: the primary key's.
        let unique: Vec<(String,)> = sqlx::query_as(
            "SELECT m.name FROM sqlite_master m, pragma_index_list(m.name) i \
             WHERE m.type = 'table' AND m.name IN ('events', 'actions') AND i.\"unique\" = 1 ORDER BY m.name",
        )
        .fetch_all(pool)
        .await
        .expect("indexes");
        assert_eq!(unique, [("actions".to_string(),), ("events".to_string(),)]);
        let named: Vec<(String,)> = sqlx::query_as(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .fetch_all(pool)
        .await
        .expect("named indexes");
        let named: Vec<&str> = named.iter().map(|(n,)| n.as_str()).collect();
        assert!(
            ["actions_status", "events_conversation", "events_status"]
                .iter()
                .all(|n| named.contains(n)),
            "{named:?}"
        );
        // A redelivered key is still stored once; a new one is stored.
        assert!(!store.insert_event(&event("k_a")).await.expect("again"));
        assert!(store.insert_event(&event("k_c")).await.expect("new"));
        // Foreign keys are enforced again on the connections after the migration.
        let orphan = sqlx::query(
            "INSERT INTO dead_letters (id, event_id, handler, body, error, attempts, created_at, updated_at) \
             VALUES ('dl_y', 'ev_none', 'hook', '{}', 'gone', 1, 't0', 't1')",
        )
        .execute(pool)
        .await;
        assert!(orphan.is_err(), "a dead letter of no event was stored");
    }
}
