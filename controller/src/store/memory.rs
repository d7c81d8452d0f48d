//! A store in memory: the whole contract of [`Store`], durable for as long as the process
//! lives. For tests and trials; it is the smallest picture of what a backend must do.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use tapwire_device_agent::tail::same_text;

use async_trait::async_trait;

use super::{
    ActionRecord, ActionStatus, Backlog, DeadLetter, DeadLetterInfo, ReadBatch, Recorded, Store,
    StoreError, StoredAction, StoredSubscription, TargetBacklog, Turn, action_id, action_key,
    dead_letter_id, replay_key,
};
use crate::event::{Action, Event, now_rfc3339};
use crate::permission::Grant;

#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// In insertion order, with whether each is still pending.
    events: Vec<(Event, bool)>,
    event_ids: HashMap<String, usize>,
    /// In insertion order: (id, action, status).
    actions: Vec<(String, Action, ActionStatus)>,
    /// When each action was stored, by its index in `actions`.
    created: Vec<String>,
    /// Each action's last error and status change, by its id.
    outcomes: HashMap<String, (Option<String>, String)>,
    action_ids: HashMap<String, usize>,
    watermarks: HashMap<(String, String), String>,
    dead: Vec<(DeadLetter, &'static str)>,
    grants: BTreeMap<(String, String, String), Grant>,
    llm_turns: HashMap<String, Vec<Turn>>,
    subscriptions: Vec<StoredSubscription>,
}

impl State {
    fn insert_event(&mut self, event: &Event) -> bool {
        if self.event_ids.contains_key(&event.id) {
            return false;
        }
        self.event_ids.insert(event.id.clone(), self.events.len());
        self.events.push((event.clone(), true));
        true
    }

    fn insert_action(&mut self, key: &str, action: &Action) -> Option<StoredAction> {
        let id = action_id(key);
        if self.action_ids.contains_key(&id) {
            return None;
        }
        self.action_ids.insert(id.clone(), self.actions.len());
        self.actions
            .push((id.clone(), action.clone(), ActionStatus::Pending));
        self.created.push(now_rfc3339());
        Some(StoredAction {
            id,
            action: action.clone(),
            status: ActionStatus::Pending,
        })
    }

    fn set_status(&mut self, id: &str, status: ActionStatus) {
        if let Some(&index) = self.action_ids.get(id) {
            self.actions[index].2 = status;
        }
    }

    /// The action at `index` with how it ended, as [`Store::action`] tells it.
    fn record(&self, index: usize) -> ActionRecord {
        let (id, action, status) = self.actions[index].clone();
        let created_at = self.created.get(index).cloned().unwrap_or_default();
        let (error, updated_at) = self
            .outcomes
            .get(&id)
            .cloned()
            .unwrap_or_else(|| (None, created_at.clone()));
        ActionRecord {
            action: StoredAction { id, action, status },
            error,
            attempts: 0,
            created_at,
            updated_at,
        }
    }

    fn finish_event(&mut self, id: &str) {
        if let Some(&index) = self.event_ids.get(id) {
            self.events[index].1 = false;
        }
    }

    fn add_dead(&mut self, event: &Event, dead: &DeadLetterInfo) -> String {
        let id = dead_letter_id(event, &dead.handler);
        if !self.dead.iter().any(|(letter, _)| letter.id == id) {
            self.dead.push((
                DeadLetter {
                    id: id.clone(),
                    event: dead.delivered.clone(),
                    handler: dead.handler.clone(),
                    error: dead.error.clone(),
                    attempts: i64::from(dead.attempts),
                    created_at: now_rfc3339(),
                },
                "dead",
            ));
        }
        self.finish_event(&event.id);
        id
    }

    fn actions_where(&self, keep: impl Fn(ActionStatus) -> bool) -> Vec<StoredAction> {
        self.actions
            .iter()
            .filter(|(_, _, status)| keep(*status))
            .map(|(id, action, status)| StoredAction {
                id: id.clone(),
                action: action.clone(),
                status: *status,
            })
            .collect()
    }
}

impl MemoryStore {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What `views.rs` reads: events with their status (`pending`, `handled`, `dead`),
    /// actions with their status and when each was stored.
    pub(super) fn snapshot(&self) -> super::views::Snapshot {
        let state = self.state();
        let dead = |id: &str| {
            state
                .dead
                .iter()
                .any(|(letter, status)| letter.event.id == id && *status == "dead")
        };
        let events = state
            .events
            .iter()
            .map(|(event, pending)| {
                let status = match (*pending, dead(&event.id)) {
                    (true, _) => "pending",
                    (false, true) => "dead",
                    (false, false) => "handled",
                };
                (event.clone(), status.to_string())
            })
            .collect();
        let actions = state
            .actions
            .iter()
            .zip(&state.created)
            .map(|((id, action, status), at)| (id.clone(), action.clone(), *status, at.clone()))
            .collect();
        (events, actions)
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn views(&self) -> Option<&dyn super::views::Views> {
        Some(self)
    }

    async fn watermark(
        &self,
        device: &str,
        conversation: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .state()
            .watermarks
            .get(&(device.to_string(), conversation.to_string()))
            .cloned())
    }

    async fn record(&self, batch: ReadBatch<'_>) -> Result<Recorded, StoreError> {
        let mut state = self.state();
        let mut recorded = Recorded::default();
        let mut waiting: Vec<String> = batch.unconfirmed.to_vec();
        // Oldest reply first, as the actions were stored.
        waiting.sort_by_key(|id| state.action_ids.get(id).copied().unwrap_or(usize::MAX));
        for event in batch.events {
            if !state.insert_event(event) {
                continue;
            }
            recorded.fresh.push(event.clone());
            let own_text = event
                .sender
                .as_ref()
                .is_some_and(|s| s.is_self)
                .then(|| event.text())
                .flatten();
            let Some(text) = own_text else { continue };
            let matching = waiting.iter().position(|id| {
                state.action_ids.get(id).is_some_and(|&i| {
                    let (_, Action::Send { text: sent, .. }, status) = &state.actions[i];
                    same_text(sent, &text) && status.is_open()
                })
            });
            if let Some(position) = matching {
                let id = waiting.remove(position);
                state.set_status(&id, ActionStatus::Done);
                recorded.settled.push(id);
            }
        }
        for id in batch.delivered {
            state.set_status(id, ActionStatus::Done);
        }
        state.watermarks.insert(
            (batch.device.to_string(), batch.conversation.to_string()),
            batch.watermark.to_string(),
        );
        Ok(recorded)
    }

    async fn insert_event(&self, event: &Event) -> Result<bool, StoreError> {
        Ok(self.state().insert_event(event))
    }

    async fn pending_events(&self) -> Result<Vec<Event>, StoreError> {
        Ok(self
            .state()
            .events
            .iter()
            .filter(|(_, pending)| *pending)
            .map(|(event, _)| event.clone())
            .collect())
    }

    async fn complete_and_claim(
        &self,
        event: &Event,
        actions: &[Action],
        dead: Option<&DeadLetterInfo>,
        claim: &[bool],
    ) -> Result<Vec<StoredAction>, StoreError> {
        let mut state = self.state();
        let mut stored = Vec::new();
        for (index, action) in actions.iter().enumerate() {
            let Some(mut new) = state.insert_action(&action_key(event, index), action) else {
                continue;
            };
            if claim.get(index).copied().unwrap_or(false) {
                state.set_status(&new.id, ActionStatus::Dispatched);
                new.status = ActionStatus::Dispatched;
            }
            stored.push(new);
        }
        match dead {
            Some(dead) => {
                state.add_dead(event, dead);
            }
            None => state.finish_event(&event.id),
        }
        Ok(stored)
    }

    async fn add_interim_action(
        &self,
        event: &Event,
        tag: &str,
        action: &Action,
    ) -> Result<Option<StoredAction>, StoreError> {
        let key = format!("{}:{tag}", event.idempotency_key);
        Ok(self.state().insert_action(&key, action))
    }

    async fn dead_letter(
        &self,
        event: &Event,
        dead: &DeadLetterInfo,
    ) -> Result<String, StoreError> {
        Ok(self.state().add_dead(event, dead))
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        Ok(self
            .state()
            .dead
            .iter()
            .filter(|(_, status)| *status == "dead")
            .map(|(letter, _)| letter.clone())
            .collect())
    }

    async fn drop_dead_letter(&self, id: &str) -> Result<bool, StoreError> {
        let mut state = self.state();
        let found = state
            .dead
            .iter_mut()
            .find(|(letter, status)| letter.id == id && *status == "dead");
        Ok(match found {
            Some((_, status)) => {
                *status = "dropped";
                true
            }
            None => false,
        })
    }

    async fn resolve_dead_letter(
        &self,
        letter: &DeadLetter,
        actions: &[Action],
    ) -> Result<Vec<StoredAction>, StoreError> {
        let mut state = self.state();
        let stored = actions
            .iter()
            .enumerate()
            .filter_map(|(index, action)| state.insert_action(&replay_key(letter, index), action))
            .collect();
        if let Some((_, status)) = state.dead.iter_mut().find(|(l, _)| l.id == letter.id) {
            *status = "replayed";
        }
        state.finish_event(&letter.event.id);
        Ok(stored)
    }

    async fn retry_failed(
        &self,
        letter: &DeadLetter,
        error: &str,
        attempts: u32,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        if let Some((stored, _)) = state.dead.iter_mut().find(|(l, _)| l.id == letter.id) {
            stored.error = error.to_string();
            stored.attempts += i64::from(attempts);
        }
        Ok(())
    }

    async fn grant(&self, grant: &Grant) -> Result<(), StoreError> {
        self.state().grants.insert(
            (
                grant.user.clone(),
                grant.scene.clone(),
                grant.command.clone(),
            ),
            grant.clone(),
        );
        Ok(())
    }

    async fn revoke(
        &self,
        user: &str,
        scene: &str,
        command: Option<&str>,
    ) -> Result<u64, StoreError> {
        let mut state = self.state();
        let before = state.grants.len();
        state.grants.retain(|(u, s, c), _| {
            let hit = u == user && (scene == "*" || (s == scene && command.is_none_or(|x| x == c)));
            !hit
        });
        Ok((before - state.grants.len()) as u64)
    }

    async fn grants(&self, user: Option<&str>) -> Result<Vec<Grant>, StoreError> {
        Ok(self
            .state()
            .grants
            .values()
            .filter(|g| user.is_none_or(|u| g.user == u))
            .cloned()
            .collect())
    }

    async fn open_actions(&self) -> Result<Vec<StoredAction>, StoreError> {
        Ok(self.state().actions_where(ActionStatus::is_open))
    }

    async fn backlog(&self) -> Result<Backlog, StoreError> {
        let state = self.state();
        let mut outbox: BTreeMap<String, TargetBacklog> = BTreeMap::new();
        for ((_, action, status), created) in state.actions.iter().zip(&state.created) {
            if !status.is_open() {
                continue;
            }
            let target = action.target().to_string();
            let entry = outbox.entry(target.clone()).or_insert(TargetBacklog {
                target,
                open: 0,
                oldest: created.clone(),
            });
            entry.open += 1;
            if *created < entry.oldest {
                entry.oldest = created.clone();
            }
        }
        let dead_letters = state.dead.iter().filter(|(_, s)| *s == "dead").count();
        Ok(Backlog {
            outbox: outbox.into_values().collect(),
            dead_letters: u64::try_from(dead_letters).unwrap_or(u64::MAX),
        })
    }

    async fn pending_actions(&self) -> Result<Vec<StoredAction>, StoreError> {
        Ok(self
            .state()
            .actions_where(|status| status == ActionStatus::Pending))
    }

    async fn claim_action(&self, id: &str) -> Result<bool, StoreError> {
        let mut state = self.state();
        let Some(&index) = state.action_ids.get(id) else {
            return Ok(false);
        };
        let status = &mut state.actions[index].2;
        if *status != ActionStatus::Pending {
            return Ok(false);
        }
        *status = ActionStatus::Dispatched;
        Ok(true)
    }

    async fn set_action_status(
        &self,
        id: &str,
        status: ActionStatus,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        state.set_status(id, status);
        state
            .outcomes
            .insert(id.to_string(), (error.map(str::to_string), now_rfc3339()));
        Ok(())
    }

    async fn submit_action(
        &self,
        key: &str,
        action: &Action,
    ) -> Result<Option<StoredAction>, StoreError> {
        Ok(self.state().insert_action(key, action))
    }

    async fn action(&self, id: &str) -> Result<Option<ActionRecord>, StoreError> {
        let state = self.state();
        Ok(state.action_ids.get(id).map(|&index| state.record(index)))
    }

    async fn messages_in(
        &self,
        source: &str,
        conversation: &str,
        since: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let state = self.state();
        let mut found: Vec<Event> = state
            .events
            .iter()
            .map(|(event, _)| event)
            .filter(|e| {
                e.source == source
                    && e.event_type.starts_with("message.")
                    && e.conversation
                        .as_ref()
                        .is_some_and(|c| c.id == conversation)
                    && since.is_none_or(|since| e.timestamp.as_str() >= since)
            })
            .cloned()
            .collect();
        // Stable: events stamped alike stay in the order they came.
        found.sort_by(|a, b| a.timestamp.cmp(&b.timestamp));
        let excess = found.len().saturating_sub(limit);
        found.drain(..excess);
        Ok(found)
    }

    async fn failed_actions(
        &self,
        target: Option<&str>,
        conversation: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ActionRecord>, StoreError> {
        let state = self.state();
        let mut failed: Vec<ActionRecord> = (0..state.actions.len())
            .filter(|&i| {
                let (_, action, status) = &state.actions[i];
                *status == ActionStatus::Failed
                    && target.is_none_or(|t| action.target() == t)
                    && conversation.is_none_or(|c| action.conversation() == c)
            })
            .map(|i| state.record(i))
            .collect();
        failed.sort_by(|a, b| b.updated_at.cmp(&a.updated_at));
        failed.truncate(limit);
        Ok(failed)
    }

    async fn retry_action(&self, id: &str) -> Result<bool, StoreError> {
        let mut state = self.state();
        let Some(&index) = state.action_ids.get(id) else {
            return Ok(false);
        };
        if state.actions[index].2 != ActionStatus::Failed {
            return Ok(false);
        }
        state.actions[index].2 = ActionStatus::Pending;
        if let Some(outcome) = state.outcomes.get_mut(id) {
            outcome.1 = now_rfc3339();
        }
        Ok(true)
    }

    async fn add_subscription(&self, subscription: &StoredSubscription) -> Result<(), StoreError> {
        let mut state = self.state();
        state.subscriptions.retain(|s| s.id != subscription.id);
        state.subscriptions.push(subscription.clone());
        Ok(())
    }

    async fn subscriptions(&self) -> Result<Vec<StoredSubscription>, StoreError> {
        Ok(self.state().subscriptions.clone())
    }

    async fn remove_subscription(&self, id: &str) -> Result<bool, StoreError> {
        let mut state = self.state();
        let before = state.subscriptions.len();
        state.subscriptions.retain(|s| s.id != id);
        Ok(state.subscriptions.len() < before)
    }

    async fn llm_turns(&self, key: &str, limit: usize) -> Result<Vec<Turn>, StoreError> {
        let state = self.state();
        let turns = state.llm_turns.get(key).map(Vec::as_slice).unwrap_or(&[]);
        Ok(turns[turns.len().saturating_sub(limit)..].to_vec())
    }

    async fn push_llm_turns(
        &self,
        key: &str,
        turns: &[Turn],
        keep: usize,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        let kept = state.llm_turns.entry(key.to_string()).or_default();
        kept.extend_from_slice(turns);
        let excess = kept.len().saturating_sub(keep);
        kept.drain(..excess);
        Ok(())
    }
}
