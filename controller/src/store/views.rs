//! Reads for people looking at a running controller (the REST API's conversations and
//! events, the dashboard): which conversations each source had, a conversation's recent
//! messages in and answers out, an event's status. Kept apart from [`Store`](super::Store)
//! because nothing that moves work relies on them: they read what the store already
//! keeps, and a backend may answer them from its read pool while the writer commits.

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::Row;

use super::{ActionStatus, MemoryStore, SqliteStore, StoreError, action_id, action_key};
use crate::event::{Action, Event};

/// The memory backend's contents as `views` reads them: events with their status, actions
/// with their status and when each was stored.
pub(super) type Snapshot = (
    Vec<(Event, String)>,
    Vec<(String, Action, ActionStatus, String)>,
);

/// One conversation of one source, with when it last saw a message in or out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationSummary {
    pub source: String,
    pub conversation: String,
    /// The title the last event carried, if any.
    pub title: Option<String>,
    /// RFC 3339, as the store writes times.
    pub last_activity: String,
    /// Events stored for it (messages and notices).
    pub events: u64,
}

/// A message of a conversation: an event that came in (or was read off the phone, the
/// phone's own messages included), or an action that went out.
#[derive(Debug, Clone)]
pub enum Exchanged {
    In {
        event: Box<Event>,
        status: String,
        at: String,
    },
    Out {
        id: String,
        action: Action,
        status: ActionStatus,
        at: String,
    },
}

impl Exchanged {
    pub fn at(&self) -> &str {
        match self {
            Exchanged::In { at, .. } | Exchanged::Out { at, .. } => at,
        }
    }
}

/// An event as stored, with how far it got and the actions it led to.
#[derive(Debug, Clone)]
pub struct EventRecord {
    pub event: Event,
    /// `pending` (stored, not handled yet), `handled`, or `dead` (in the dead-letter queue).
    pub status: String,
    pub stored_at: String,
    pub actions: Vec<(String, ActionStatus)>,
}

/// The reads; see the module's documentation.
#[async_trait]
pub trait Views: Send + Sync {
    /// Conversations with any event or action, most recent first; one source's when
    /// `source` is given; at most `limit`.
    async fn conversations(
        &self,
        source: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>, StoreError>;

    /// The last `limit` messages in and out of one conversation, oldest first.
    async fn conversation_messages(
        &self,
        source: &str,
        conversation: &str,
        limit: usize,
    ) -> Result<Vec<Exchanged>, StoreError>;

    /// One event by id.
    async fn event(&self, id: &str) -> Result<Option<EventRecord>, StoreError>;
}

fn corrupt(what: &'static str, id: &str, source: serde_json::Error) -> StoreError {
    StoreError::Corrupt {
        what,
        id: id.to_string(),
        source,
    }
}

fn status_of(id: &str, text: &str) -> Result<ActionStatus, StoreError> {
    ActionStatus::parse(text).ok_or_else(|| {
        corrupt(
            "action status",
            id,
            serde::de::Error::custom(format!("unknown status {text:?}")),
        )
    })
}

/// The last `limit` of `all`, oldest first.
fn last_oldest_first(mut all: Vec<Exchanged>, limit: usize) -> Vec<Exchanged> {
    all.sort_by(|a, b| a.at().cmp(b.at()));
    let skip = all.len().saturating_sub(limit);
    all.split_off(skip)
}

#[async_trait]
impl Views for SqliteStore {
    async fn conversations(
        &self,
        source: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        // Events and actions both count as activity: a conversation the API only sent
        // to is one too. Titles come from the newest event's body (SQLite's bare column
        // beside MAX() is taken from the row holding the maximum).
        let rows = sqlx::query(
            "SELECT source, conversation, MAX(at) AS last, SUM(is_event) AS events,
                    (SELECT json_extract(e.body, '$.conversation.title') FROM events e
                      WHERE e.source = t.source AND e.conversation = t.conversation
                      ORDER BY e.created_at DESC, e.rowid DESC LIMIT 1) AS title
               FROM (SELECT source, conversation, created_at AS at, 1 AS is_event FROM events
                      WHERE conversation IS NOT NULL
                     UNION ALL
                     SELECT target, conversation, created_at, 0 FROM actions) t
              WHERE ?1 IS NULL OR source = ?1
              GROUP BY source, conversation
              ORDER BY last DESC
              LIMIT ?2",
        )
        .bind(source)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.read_pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| ConversationSummary {
                source: row.get("source"),
                conversation: row.get("conversation"),
                title: row.get("title"),
                last_activity: row.get("last"),
                events: u64::try_from(row.get::<i64, _>("events")).unwrap_or(0),
            })
            .collect())
    }

    async fn conversation_messages(
        &self,
        source: &str,
        conversation: &str,
        limit: usize,
    ) -> Result<Vec<Exchanged>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let events = sqlx::query(
            "SELECT id, body, status, created_at FROM events
              WHERE source = ? AND conversation = ? AND event_type LIKE 'message.%'
              ORDER BY created_at DESC, rowid DESC LIMIT ?",
        )
        .bind(source)
        .bind(conversation)
        .bind(limit)
        .fetch_all(self.read_pool())
        .await?;
        let actions = sqlx::query(
            "SELECT id, body, status, created_at FROM actions
              WHERE target = ? AND conversation = ?
              ORDER BY created_at DESC, rowid DESC LIMIT ?",
        )
        .bind(source)
        .bind(conversation)
        .bind(limit)
        .fetch_all(self.read_pool())
        .await?;
        let mut all = Vec::with_capacity(events.len() + actions.len());
        for row in events {
            let id: String = row.get("id");
            let body: String = row.get("body");
            all.push(Exchanged::In {
                event: Box::new(serde_json::from_str(&body).map_err(|e| corrupt("event", &id, e))?),
                status: row.get("status"),
                at: row.get("created_at"),
            });
        }
        for row in actions {
            let id: String = row.get("id");
            let body: String = row.get("body");
            let status: String = row.get("status");
            all.push(Exchanged::Out {
                action: serde_json::from_str(&body).map_err(|e| corrupt("action", &id, e))?,
                status: status_of(&id, &status)?,
                at: row.get("created_at"),
                id,
            });
        }
        Ok(last_oldest_first(all, usize::try_from(limit).unwrap_or(0)))
    }

    async fn event(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        let Some(row) = sqlx::query("SELECT body, status, created_at FROM events WHERE id = ?")
            .bind(id)
            .fetch_optional(self.read_pool())
            .await?
        else {
            return Ok(None);
        };
        let body: String = row.get("body");
        let actions = sqlx::query(
            "SELECT id, status FROM actions WHERE event_id = ? ORDER BY created_at, rowid",
        )
        .bind(id)
        .fetch_all(self.read_pool())
        .await?;
        let actions = actions
            .into_iter()
            .map(|row| {
                let action: String = row.get("id");
                let status: String = row.get("status");
                let status = status_of(&action, &status)?;
                Ok((action, status))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some(EventRecord {
            event: serde_json::from_str(&body).map_err(|e| corrupt("event", id, e))?,
            status: row.get("status"),
            stored_at: row.get("created_at"),
            actions,
        }))
    }
}

#[async_trait]
impl Views for MemoryStore {
    async fn conversations(
        &self,
        source: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        let (events, actions) = self.snapshot();
        let mut by_key: HashMap<(String, String), ConversationSummary> = HashMap::new();
        for (event, _) in &events {
            let Some(conversation) = &event.conversation else {
                continue;
            };
            let entry = by_key
                .entry((event.source.clone(), conversation.id.clone()))
                .or_insert_with(|| ConversationSummary {
                    source: event.source.clone(),
                    conversation: conversation.id.clone(),
                    title: None,
                    last_activity: String::new(),
                    events: 0,
                });
            entry.events += 1;
            entry.title = conversation.title.clone().or(entry.title.take());
            if event.timestamp > entry.last_activity {
                entry.last_activity = event.timestamp.clone();
            }
        }
        for (_, action, _, at) in &actions {
            let entry = by_key
                .entry((
                    action.target().to_string(),
                    action.conversation().to_string(),
                ))
                .or_insert_with(|| ConversationSummary {
                    source: action.target().to_string(),
                    conversation: action.conversation().to_string(),
                    title: None,
                    last_activity: String::new(),
                    events: 0,
                });
            if *at > entry.last_activity {
                entry.last_activity = at.clone();
            }
        }
        let mut all: Vec<ConversationSummary> = by_key
            .into_values()
            .filter(|c| source.is_none_or(|s| c.source == s))
            .collect();
        all.sort_by(|a, b| b.last_activity.cmp(&a.last_activity));
        all.truncate(limit);
        Ok(all)
    }

    async fn conversation_messages(
        &self,
        source: &str,
        conversation: &str,
        limit: usize,
    ) -> Result<Vec<Exchanged>, StoreError> {
        let (events, actions) = self.snapshot();
        let mut all: Vec<Exchanged> = events
            .into_iter()
            .filter(|(e, _)| {
                e.source == source
                    && e.event_type.starts_with("message.")
                    && e.conversation
                        .as_ref()
                        .is_some_and(|c| c.id == conversation)
            })
            .map(|(event, status)| Exchanged::In {
                at: event.timestamp.clone(),
                event: Box::new(event),
                status,
            })
            .collect();
        all.extend(
            actions
                .into_iter()
                .filter(|(_, a, _, _)| a.target() == source && a.conversation() == conversation)
                .map(|(id, action, status, at)| Exchanged::Out {
                    id,
                    action,
                    status,
                    at,
                }),
        );
        Ok(last_oldest_first(all, limit))
    }

    async fn event(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        let (events, actions) = self.snapshot();
        Ok(events
            .into_iter()
            .find(|(e, _)| e.id == id)
            .map(|(event, status)| {
                // A handler's actions are keyed by the event and their index
                // (`action_key`), so they are found without a link of their own.
                let answers = (0..)
                    .map_while(|index| {
                        let wanted = action_id(&action_key(&event, index));
                        actions
                            .iter()
                            .find(|(id, ..)| *id == wanted)
                            .map(|(id, _, status, _)| (id.clone(), *status))
                    })
                    .collect();
                EventRecord {
                    stored_at: event.timestamp.clone(),
                    actions: answers,
                    event,
                    status,
                }
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::test_message;
    use crate::store::SharedStore;

    async fn stores() -> Vec<(SharedStore, tempfile::TempDir)> {
        let dir = tempfile::tempdir().expect("tempdir");
        let sqlite = SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("open");
        vec![
            (
                std::sync::Arc::new(MemoryStore::default()),
                tempfile::tempdir().expect("tempdir"),
            ),
            (std::sync::Arc::new(sqlite), dir),
        ]
    }

    #[tokio::test]
    async fn conversations_list_messages_in_and_answers_out_on_both_backends() {
        for (store, _dir) in stores().await {
            let views = store.views().expect("views");
            let first = test_message("phone", "amy", "hello", false);
            store.insert_event(&first).await.expect("insert");
            let answer = Action::send("phone", "amy", "hello back");
            store
                .complete_event(&first, std::slice::from_ref(&answer), None)
                .await
                .expect("complete");
            let mut other = test_message("robot", "bob", "hi", false);
            other.idempotency_key = "k2".into();
            other.id = crate::event::event_id("k2");
            store.insert_event(&other).await.expect("insert");

            let listed = views.conversations(None, 10).await.expect("list");
            let names: Vec<(&str, &str)> = listed
                .iter()
                .map(|c| (c.source.as_str(), c.conversation.as_str()))
                .collect();
            assert!(names.contains(&("phone", "amy")), "{listed:?}");
            assert!(names.contains(&("robot", "bob")), "{listed:?}");
            let only = views.conversations(Some("robot"), 10).await.expect("list");
            assert_eq!(only.len(), 1, "{only:?}");
            assert_eq!(only[0].events, 1);

            let messages = views
                .conversation_messages("phone", "amy", 10)
                .await
                .expect("messages");
            assert_eq!(messages.len(), 2, "{messages:?}");
            assert!(
                matches!(&messages[0], Exchanged::In { event, status, .. } if event.text().as_deref() == Some("hello") && status == "handled"),
                "{messages:?}"
            );
            assert!(
                matches!(&messages[1], Exchanged::Out { action: Action::Send { text, .. }, status: ActionStatus::Pending, .. } if text == "hello back"),
                "{messages:?}"
            );
            let last = views
                .conversation_messages("phone", "amy", 1)
                .await
                .expect("messages");
            assert!(
                matches!(last.as_slice(), [Exchanged::Out { .. }]),
                "{last:?}"
            );

            let record = views.event(&first.id).await.expect("event").expect("found");
            assert_eq!(record.status, "handled");
            assert_eq!(record.actions.len(), 1);
            assert_eq!(record.actions[0].1, ActionStatus::Pending);
            assert!(views.event("evt_none").await.expect("event").is_none());
        }
    }
}
