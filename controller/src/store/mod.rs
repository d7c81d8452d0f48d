//! Everything durable, behind one trait: events before they are routed, actions before
//! they are executed (and how each ended), each phone conversation's read position,
//! permission grants and dead letters. Ids derive from idempotency keys, so storing the
//! same thing twice is a no-op rather than a duplicate.
//!
//! Backends: [`sqlite`] (the default, one file, group commit) and [`memory`] (nothing
//! survives the process: tests and trials). A backend is one file implementing [`Store`]
//! plus one line in [`open`]; callers hold a [`SharedStore`] and never see what is under it.

mod checkpoint;
pub mod memory;
pub mod sqlite;
pub mod views;

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;

use crate::event::{Action, Event, short_hash};
use crate::permission::Grant;

pub use memory::MemoryStore;
pub use sqlite::SqliteStore;

/// What every part of the controller holds: the store, whichever backend it is.
pub type SharedStore = Arc<dyn Store>;

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
    /// From the SQLite writer thread (rusqlite); `during` names the step, which SQLite's
    /// message alone does not (a batch runs many statements).
    #[error("database error while {during}: {source}")]
    Sqlite {
        during: &'static str,
        source: rusqlite::Error,
    },
    #[error("the store's writer has stopped")]
    WriterGone,
    #[error("cannot start the store's writer thread: {0}")]
    WriterThread(std::io::Error),
}

/// Where an action is in its life. Stored before it is carried out, so a restart knows
/// which ones to finish and which may have gone out already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionStatus {
    /// Decided, not yet taken by anyone.
    Pending,
    /// Handed to the executor: it may have gone out before a crash.
    Dispatched,
    Done,
    Failed,
}

impl ActionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionStatus::Pending => "pending",
            ActionStatus::Dispatched => "dispatched",
            ActionStatus::Done => "done",
            ActionStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<ActionStatus> {
        Some(match text {
            "pending" => ActionStatus::Pending,
            "dispatched" => ActionStatus::Dispatched,
            "done" => ActionStatus::Done,
            "failed" => ActionStatus::Failed,
            _ => return None,
        })
    }

    /// Still to be carried out (or to be found out about).
    pub fn is_open(self) -> bool {
        matches!(self, ActionStatus::Pending | ActionStatus::Dispatched)
    }
}

#[derive(Debug, Clone)]
pub struct StoredAction {
    pub id: String,
    pub action: Action,
    pub status: ActionStatus,
}

/// An action with how it has fared so far: what `GET /api/v1/actions/{id}` shows.
#[derive(Debug, Clone)]
pub struct ActionRecord {
    pub action: StoredAction,
    /// The last failure, if any (kept after a retry succeeds only until the next change).
    pub error: Option<String>,
    /// Times it was handed to its adapter (the memory store does not count them).
    pub attempts: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// A handler gave up on the event (a webhook past its retries): it goes to the
/// dead-letter queue, from which `tapwire dlq replay` can deliver it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterInfo {
    pub handler: String,
    /// The event as this handler received it.
    pub delivered: Event,
    pub error: String,
    pub attempts: u32,
}

/// An event a handler gave up on, waiting for `tapwire dlq replay` or `drop`.
/// One turn of an LLM conversation as its memory keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    /// `user` or `assistant` (what chat APIs call a message's role).
    pub role: String,
    pub text: String,
}

impl Turn {
    pub fn new(role: impl Into<String>, text: impl Into<String>) -> Turn {
        Turn {
            role: role.into(),
            text: text.into(),
        }
    }
}

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

/// A phone's read of one conversation, stored as one unit: the messages it found, the
/// read position after them and what they say about replies in flight.
#[derive(Debug, Clone, Copy)]
pub struct ReadBatch<'a> {
    pub device: &'a str,
    pub conversation: &'a str,
    /// The reader's position, opaque to the store: given back by [`Store::watermark`].
    pub watermark: &'a str,
    pub events: &'a [Event],
    /// The replies this read found in the chat, finished with it.
    pub delivered: &'a [String],
    /// Replies an earlier run handed to the phone and never saw finish: any whose text
    /// is among the batch's new own messages went out before the crash.
    pub unconfirmed: &'a [String],
}

/// What [`Store::record`] did with a phone's batch.
#[derive(Debug, Default)]
pub struct Recorded {
    /// Events not stored before (a re-read message is skipped by its key).
    pub fresh: Vec<Event>,
    /// Replies in flight that the batch's own messages show went out already.
    pub settled: Vec<String>,
}

/// What waits in the store, for `/metrics`: counted by the store, never listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Open actions (pending or dispatched) per target, targets in name order.
    pub outbox: Vec<TargetBacklog>,
    /// Dead letters waiting for `tapwire dlq replay` or `drop`.
    pub dead_letters: u64,
}

/// One target's open actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetBacklog {
    pub target: String,
    pub open: u64,
    /// When the oldest of them was stored (RFC 3339, as the store writes times).
    pub oldest: String,
}

/// An outbound subscription as stored: where to POST, and which event types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubscription {
    pub id: String,
    pub url: String,
    /// Event-type patterns as written (`message.*`), checked when it was made.
    pub events: Vec<String>,
    pub created_at: String,
}

/// The durable state of a controller. Every method is one atomic step: a crash leaves
/// either all of it or none.
#[async_trait]
pub trait Store: Send + Sync {
    /// A conversation's read position as [`Store::record`] last stored it.
    async fn watermark(
        &self,
        device: &str,
        conversation: &str,
    ) -> Result<Option<String>, StoreError>;

    /// Stores a phone's read (new events, its watermark) in one transaction, with what
    /// it says about replies: `delivered` is done, and so is an `unconfirmed` reply whose
    /// text is among the new own messages, oldest reply first, one per own message, so two
    /// equal answers in a row are told apart.
    async fn record(&self, batch: ReadBatch<'_>) -> Result<Recorded, StoreError>;

    /// Stores one event (from a source without watermarks). False if it was there.
    async fn insert_event(&self, event: &Event) -> Result<bool, StoreError>;

    /// Events stored and not yet handled, oldest first.
    async fn pending_events(&self) -> Result<Vec<Event>, StoreError>;

    /// Stores a handled event's actions and marks it handled, in one step; with `dead`,
    /// the event also goes to the dead-letter queue in that same step. Actions stored
    /// before (the event handled twice) are not returned again.
    async fn complete_event(
        &self,
        event: &Event,
        actions: &[Action],
        dead: Option<&DeadLetterInfo>,
    ) -> Result<Vec<StoredAction>, StoreError> {
        self.complete_and_claim(event, actions, dead, &[]).await
    }

    /// [`Store::complete_event`], with the actions whose `claim` entry is true stored
    /// already claimed (dispatched, as [`Store::claim_action`] leaves them): what the
    /// outbox hands to a connected adapter at once needs no second write to claim it.
    async fn complete_and_claim(
        &self,
        event: &Event,
        actions: &[Action],
        dead: Option<&DeadLetterInfo>,
        claim: &[bool],
    ) -> Result<Vec<StoredAction>, StoreError>;

    /// Stores one action decided before the event is finished (an acknowledgement sent
    /// while slow work goes on). `tag` makes its key: the same tag is stored once.
    async fn add_interim_action(
        &self,
        event: &Event,
        tag: &str,
        action: &Action,
    ) -> Result<Option<StoredAction>, StoreError>;

    /// Moves an event to the dead-letter queue; returns the letter's id.
    async fn dead_letter(&self, event: &Event, dead: &DeadLetterInfo)
    -> Result<String, StoreError>;

    /// Dead letters still waiting, oldest first.
    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError>;

    /// Removes a dead letter for good. False if none with that id was waiting.
    async fn drop_dead_letter(&self, id: &str) -> Result<bool, StoreError>;

    /// A replayed dead letter was delivered: its actions join the outbox (keyed so that
    /// a second replay of the same letter cannot send them twice) and the letter closes.
    async fn resolve_dead_letter(
        &self,
        letter: &DeadLetter,
        actions: &[Action],
    ) -> Result<Vec<StoredAction>, StoreError>;

    /// Records a replay that failed again.
    async fn retry_failed(
        &self,
        letter: &DeadLetter,
        error: &str,
        attempts: u32,
    ) -> Result<(), StoreError>;

    /// Grants a scene, a scene's command, or everything; a second grant of the same thing
    /// replaces the first (extending a grant is granting it again).
    async fn grant(&self, grant: &Grant) -> Result<(), StoreError>;

    /// Revokes grants; `command` `None` revokes the scene with all its commands, scene
    /// `*` everything the user had. Returns how many went.
    async fn revoke(
        &self,
        user: &str,
        scene: &str,
        command: Option<&str>,
    ) -> Result<u64, StoreError>;

    /// A user's grants (every user's when `None`), expired ones included: the caller
    /// decides with its own clock. Ordered by user, scene, command.
    async fn grants(&self, user: Option<&str>) -> Result<Vec<Grant>, StoreError>;

    /// Actions pending or dispatched, oldest first (what a restart must finish).
    async fn open_actions(&self) -> Result<Vec<StoredAction>, StoreError>;

    /// Actions nobody has taken yet, oldest first.
    async fn pending_actions(&self) -> Result<Vec<StoredAction>, StoreError>;

    /// Takes a pending action for execution. Only one caller wins.
    async fn claim_action(&self, id: &str) -> Result<bool, StoreError>;

    /// Stores an action asked for from outside (the REST API), under the caller's
    /// idempotency `key`: None if an action with that key was stored before.
    async fn submit_action(
        &self,
        key: &str,
        action: &Action,
    ) -> Result<Option<StoredAction>, StoreError>;

    /// One action by id, with its status, last error and times.
    async fn action(&self, id: &str) -> Result<Option<ActionRecord>, StoreError>;

    async fn set_action_status(
        &self,
        id: &str,
        status: ActionStatus,
        error: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Message events (`message.*`) of one conversation of a source, oldest first: the
    /// newest `limit` of them, only those stamped at or after `since` (RFC 3339) if given.
    async fn messages_in(
        &self,
        source: &str,
        conversation: &str,
        since: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError>;

    /// Actions that failed for good (retries used up, or refused), newest first; only
    /// those to `target`, and to its `conversation`, when given. The outbox's dead letters.
    async fn failed_actions(
        &self,
        target: Option<&str>,
        conversation: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ActionRecord>, StoreError>;

    /// Puts a failed action back in the outbox (the sweep sends it within a second).
    /// False when no failed action has that id.
    async fn retry_action(&self, id: &str) -> Result<bool, StoreError>;

    /// Stores a new subscription (ids are unique; a second with the same id replaces it).
    async fn add_subscription(&self, subscription: &StoredSubscription) -> Result<(), StoreError>;

    /// Every subscription, oldest first.
    async fn subscriptions(&self) -> Result<Vec<StoredSubscription>, StoreError>;

    /// False when there was none with that id.
    async fn remove_subscription(&self, id: &str) -> Result<bool, StoreError>;

    /// How much waits in the outbox and the dead-letter queue; one cheap aggregate read,
    /// asked at every scrape of `/metrics`.
    async fn backlog(&self) -> Result<Backlog, StoreError>;

    /// The last `limit` turns kept under `key` (an LLM handler's conversation), oldest
    /// first.
    async fn llm_turns(&self, key: &str, limit: usize) -> Result<Vec<Turn>, StoreError>;

    /// The reads people make of a running controller (conversations, an event's status:
    /// [`views`]); None for a backend without them.
    fn views(&self) -> Option<&dyn views::Views> {
        None
    }

    /// Appends `turns` under `key`, then keeps only the newest `keep` of them.
    async fn push_llm_turns(
        &self,
        key: &str,
        turns: &[Turn],
        keep: usize,
    ) -> Result<(), StoreError>;
}

/// `[storage]` of `tapwire.toml`: `type` picks the backend.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum StorageConfig {
    Sqlite(sqlite::SqliteConfig),
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig::Sqlite(sqlite::SqliteConfig::default())
    }
}

/// Opens the configured backend.
pub async fn open(config: &StorageConfig) -> Result<SharedStore, StoreError> {
    Ok(match config {
        StorageConfig::Sqlite(sqlite) => Arc::new(SqliteStore::open(&sqlite.path).await?),
    })
}

/// The key of the `index`th action an event decided: the same decision stores once.
pub(crate) fn action_key(event: &Event, index: usize) -> String {
    format!("{}:{index}", event.idempotency_key)
}

/// An action's id from its key.
pub(crate) fn action_id(key: &str) -> String {
    format!("act_{}", short_hash(key))
}

/// A dead letter's id: one per event and handler.
pub(crate) fn dead_letter_id(event: &Event, handler: &str) -> String {
    format!("dl_{}", short_hash(&format!("{}:{handler}", event.id)))
}

/// The key of the `index`th action a replayed dead letter produced.
pub(crate) fn replay_key(letter: &DeadLetter, index: usize) -> String {
    format!(
        "{}:{}:replay:{index}",
        letter.event.idempotency_key, letter.handler
    )
}
