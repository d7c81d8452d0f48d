//! Handlers: what a route points at. A handler takes an event and decides actions; it
//! never executes them (the runtime stores them first). Every kind implements
//! [`Handler`] in a file of its own: the staged [`pipeline`], a [`webhook`], an external
//! [`plugin`], a [`forward`] to another source, [`pieces`] of text written over time. A handler sees the rest of the controller
//! only through [`HandlerContext`]: other handlers by name, permissions, the plugin host
//! and the text format of the place an answer goes.
//!
//! A new kind is one file implementing [`Handler`], a variant in [`HandlerConfig`] and
//! its line in [`build`].

pub mod digest;
pub mod forward;
pub mod llm;
pub mod pieces;
pub mod pipeline;
pub mod plugin;
pub mod webhook;

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use async_trait::async_trait;
use serde::Deserialize;

use crate::event::{Action, Event, HandlerAction};
use crate::format::TextFormat;
use crate::permission::{Access, Grant};
use crate::plugin::PluginHost;
use crate::store::{DeadLetterInfo, SharedStore, StoreError, Turn};

pub use forward::{Forward, ForwardConfig, Template};
pub use llm::{Llm, LlmConfig};
pub use pieces::{Pieces, PiecesConfig};
pub use pipeline::{Pipeline, PipelineConfig};
pub use plugin::{PluginHandler, PluginHandlerConfig};
pub use webhook::{Webhook, WebhookConfig};

/// Pipelines may hand an event to other handlers (prefixes, fallback); a loop the config
/// check missed must still end.
const MAX_DEPTH: usize = 8;

/// The handler names that exist without being declared.
pub const BUILTIN_HANDLERS: &[&str] = &["echo", "help"];

#[async_trait]
pub trait Handler: Send + Sync {
    /// Decides what to do about `event`. An `Err` leaves the event pending (a store
    /// fault) or finishes it with the error logged (a config mistake).
    async fn handle(
        &self,
        ctx: &HandlerContext<'_>,
        event: &Event,
    ) -> Result<Outcome, HandlerError>;
}

/// `[handlers.NAME]`: `type` picks the kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HandlerConfig {
    Pipeline(PipelineConfig),
    Webhook(WebhookConfig),
    /// Every routed event goes to one external plugin.
    Plugin(PluginHandlerConfig),
    /// Every routed message's text goes to a conversation of another source.
    Forward(ForwardConfig),
    /// Answers with configured pieces written over time (trying out streaming displays).
    Pieces(PiecesConfig),
    /// Asks a chat model (OpenAI-compatible or Dify), streaming, with memory.
    Llm(LlmConfig),
    /// Summarises a conversation's stored messages through an `llm` handler.
    Digest(digest::DigestConfig),
}

/// What a handler's section may ask of the rest of the config while it is checked.
pub trait ConfigScope {
    /// A declared or built-in handler of that name exists.
    fn handler_exists(&self, name: &str) -> bool;
    /// A phone's serial or an adapter's name.
    fn is_target(&self, name: &str) -> bool;
}

/// A mistake in a handler's section: the key it is about (the section itself when none),
/// so `config check` can point at that line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: Option<&'static str>,
    pub message: String,
}

impl ConfigProblem {
    pub fn at(key: &'static str, message: impl Into<String>) -> ConfigProblem {
        ConfigProblem {
            key: Some(key),
            message: message.into(),
        }
    }

    pub fn section(message: impl Into<String>) -> ConfigProblem {
        ConfigProblem {
            key: None,
            message: message.into(),
        }
    }
}

impl HandlerConfig {
    /// Every mistake in the section, each kind checking its own keys.
    pub fn check(&self, name: &str, scope: &dyn ConfigScope) -> Vec<ConfigProblem> {
        match self {
            HandlerConfig::Pipeline(p) => p.check(scope),
            HandlerConfig::Webhook(w) => w.check(name),
            HandlerConfig::Plugin(_) => Vec::new(),
            HandlerConfig::Forward(f) => f.check(scope),
            HandlerConfig::Pieces(p) => p.check(),
            HandlerConfig::Llm(l) => l.check(name),
            HandlerConfig::Digest(d) => d.check(scope),
        }
    }
}

/// Builds a declared handler; the error says what is wrong with its section.
pub fn build(name: &str, config: &HandlerConfig) -> Result<Box<dyn Handler>, String> {
    Ok(match config {
        HandlerConfig::Pipeline(p) => Box::new(Pipeline::new(name, p)),
        HandlerConfig::Webhook(w) => {
            Box::new(Webhook::new(name, w.clone()).map_err(|e| e.to_string())?)
        }
        HandlerConfig::Plugin(p) => Box::new(PluginHandler::new(p)),
        HandlerConfig::Forward(f) => Box::new(Forward::new(f)?),
        HandlerConfig::Pieces(p) => Box::new(Pieces::new(p)),
        HandlerConfig::Llm(l) => Box::new(Llm::new(name, l)?),
        HandlerConfig::Digest(d) => Box::new(digest::Digest::new(name, d)),
    })
}

/// The handlers that exist without being declared: `echo` (commands, help, and anything
/// else echoed) and `help` (commands and help only).
pub fn builtins() -> HashMap<String, Box<dyn Handler>> {
    HashMap::from([
        (
            "echo".to_string(),
            Box::new(Pipeline::builtin("echo", true)) as Box<dyn Handler>,
        ),
        (
            "help".to_string(),
            Box::new(Pipeline::builtin("help", false)) as Box<dyn Handler>,
        ),
    ])
}

/// What handling an event decided.
#[derive(Debug, Default)]
pub struct Outcome {
    pub actions: Vec<Action>,
    pub dead: Option<DeadLetterInfo>,
}

impl Outcome {
    pub fn actions(actions: Vec<Action>) -> Outcome {
        Outcome {
            actions,
            dead: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The event stays pending and is handled again on restart.
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no handler named {0:?}")]
    Unknown(String),
    #[error(
        "handlers call each other more than {MAX_DEPTH} deep (from {0:?}): a loop in the config"
    )]
    TooDeep(String),
}

/// Where a handler's answer-so-far goes while it is still being written.
pub type Progress<'a> = &'a (dyn Fn(&str) + Send + Sync);

/// What a handler may use of the controller, and nothing more.
pub struct HandlerContext<'a> {
    handlers: &'a Handlers,
    depth: usize,
    progress: Option<Progress<'a>>,
}

impl HandlerContext<'_> {
    /// Hands `event` to the handler `name` (a pipeline's prefix or fallback).
    pub async fn handle(&self, name: &str, event: &Event) -> Result<Outcome, HandlerError> {
        self.handlers
            .handle_at(name, event, self.depth + 1, self.progress)
            .await
    }

    /// The answer written so far, for a handler that writes it over time (an LLM's
    /// tokens): shown where the event came from if that place shows an answer as it grows
    /// (a WeCom AI bot's stream), ignored elsewhere. The whole answer must still be
    /// returned as an action: that is what is stored and what every other place gets.
    pub fn progress(&self, text_so_far: &str) {
        if let Some(progress) = self.progress {
            progress(text_so_far);
        }
    }

    /// What `user` may do now.
    pub async fn access(&self, user: &str) -> Result<Access, StoreError> {
        self.handlers.access(user).await
    }

    pub async fn grant(&self, grant: &Grant) -> Result<(), StoreError> {
        self.handlers.grant(grant).await
    }

    pub async fn revoke(
        &self,
        user: &str,
        scene: &str,
        command: Option<&str>,
    ) -> Result<u64, StoreError> {
        self.handlers.revoke(user, scene, command).await
    }

    pub fn plugins(&self) -> &PluginHost {
        &self.handlers.plugins
    }

    /// A conversation's stored messages (see [`Store::messages_in`]).
    ///
    /// [`Store::messages_in`]: crate::store::Store::messages_in
    pub async fn messages_in(
        &self,
        source: &str,
        conversation: &str,
        since: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.handlers
            .store
            .messages_in(source, conversation, since, limit)
            .await
    }

    /// The last `limit` turns of a conversation's memory (see [`Store::llm_turns`]).
    ///
    /// [`Store::llm_turns`]: crate::store::Store::llm_turns
    pub async fn llm_turns(&self, key: &str, limit: usize) -> Result<Vec<Turn>, StoreError> {
        self.handlers.store.llm_turns(key, limit).await
    }

    /// Remembers `turns`, keeping the newest `keep` under `key`.
    pub async fn push_llm_turns(
        &self,
        key: &str,
        turns: &[Turn],
        keep: usize,
    ) -> Result<(), StoreError> {
        self.handlers.store.push_llm_turns(key, turns, keep).await
    }

    /// The text format the phone or adapter `target` shows.
    pub fn format_of(&self, target: &str) -> TextFormat {
        self.handlers.format_of(target)
    }
}

/// Every handler of a running controller, and what they share.
pub struct Handlers {
    handlers: HashMap<String, Box<dyn Handler>>,
    store: SharedStore,
    plugins: PluginHost,
    admins: HashSet<String>,
    /// The text format of each target, so answers are formatted for where they go.
    formats: HashMap<String, TextFormat>,
    /// Grants by user, read from the store once: every change goes through `grant` and
    /// `revoke` here, which keep it current.
    grants: std::sync::Mutex<HashMap<String, Vec<Grant>>>,
}

impl Handlers {
    pub fn new(
        handlers: HashMap<String, Box<dyn Handler>>,
        store: SharedStore,
        plugins: PluginHost,
        admins: HashSet<String>,
        formats: HashMap<String, TextFormat>,
    ) -> Handlers {
        Handlers {
            handlers,
            store,
            plugins,
            admins,
            formats,
            grants: std::sync::Mutex::new(HashMap::new()),
        }
    }

    fn cached_grants(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Grant>>> {
        self.grants.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What `user` may do now.
    pub async fn access(&self, user: &str) -> Result<Access, StoreError> {
        let cached = self.cached_grants().get(user).cloned();
        let grants = match cached {
            Some(grants) => grants,
            None => {
                let grants = self.store.grants(Some(user)).await?;
                self.cached_grants()
                    .insert(user.to_string(), grants.clone());
                grants
            }
        };
        Ok(Access::at(
            self.admins.contains(user),
            grants,
            SystemTime::now(),
        ))
    }

    pub async fn grant(&self, grant: &Grant) -> Result<(), StoreError> {
        self.store.grant(grant).await?;
        self.cached_grants().remove(&grant.user);
        Ok(())
    }

    pub async fn revoke(
        &self,
        user: &str,
        scene: &str,
        command: Option<&str>,
    ) -> Result<u64, StoreError> {
        let removed = self.store.revoke(user, scene, command).await?;
        self.cached_grants().remove(user);
        Ok(removed)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.handlers.contains_key(name)
    }

    pub fn plugins(&self) -> &PluginHost {
        &self.plugins
    }

    /// The format a target shows; a target nobody declared is a phone (the one source
    /// that needs no declaration to exist), which shows plain text.
    pub fn format_of(&self, target: &str) -> TextFormat {
        self.formats
            .get(target)
            .copied()
            .unwrap_or(TextFormat::Plain)
    }

    pub async fn handle(&self, name: &str, event: &Event) -> Result<Outcome, HandlerError> {
        self.handle_at(name, event, 0, None).await
    }

    /// [`Handlers::handle`], with the answer-so-far of handlers that write over time
    /// going to `progress` (see [`HandlerContext::progress`]).
    pub async fn handle_reporting(
        &self,
        name: &str,
        event: &Event,
        progress: Progress<'_>,
    ) -> Result<Outcome, HandlerError> {
        self.handle_at(name, event, 0, Some(progress)).await
    }

    async fn handle_at(
        &self,
        name: &str,
        event: &Event,
        depth: usize,
        progress: Option<Progress<'_>>,
    ) -> Result<Outcome, HandlerError> {
        if depth >= MAX_DEPTH {
            return Err(HandlerError::TooDeep(name.to_string()));
        }
        let handler = self
            .handlers
            .get(name)
            .ok_or_else(|| HandlerError::Unknown(name.to_string()))?;
        let ctx = HandlerContext {
            handlers: self,
            depth,
            progress,
        };
        handler.handle(&ctx, event).await
    }
}

/// Turns handler answers into actions; one that cannot apply to this event is dropped
/// with a warning rather than failing the rest.
pub fn resolve(actions: Vec<HandlerAction>, event: &Event) -> Vec<Action> {
    actions
        .into_iter()
        .filter_map(|action| {
            let described = format!("{action:?}");
            let resolved = action.resolve(event);
            if resolved.is_none() {
                tracing::warn!(event = %event.id, action = %described, "action does not apply to this event; dropped");
            }
            resolved
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::test_message;
    use crate::store::MemoryStore;
    use std::sync::Arc;

    /// A handler of a kind the controller does not ship: it answers through the context
    /// by asking another handler, so both the trait and the context are exercised.
    struct Shouting;

    #[async_trait]
    impl Handler for Shouting {
        async fn handle(
            &self,
            ctx: &HandlerContext<'_>,
            event: &Event,
        ) -> Result<Outcome, HandlerError> {
            let mut outcome = ctx.handle("echo", event).await?;
            for action in &mut outcome.actions {
                let Action::Send { text, .. } = action;
                *text = text.to_uppercase();
            }
            Ok(outcome)
        }
    }

    struct Loop;

    #[async_trait]
    impl Handler for Loop {
        async fn handle(
            &self,
            ctx: &HandlerContext<'_>,
            event: &Event,
        ) -> Result<Outcome, HandlerError> {
            ctx.handle("loop", event).await
        }
    }

    #[tokio::test]
    async fn a_new_kind_of_handler_plugs_in_and_reaches_others_through_its_context() {
        let (faults, _) = tokio::sync::mpsc::unbounded_channel();
        let plugins = PluginHost::start(Vec::new(), faults).await;
        let mut map = builtins();
        map.insert("shout".into(), Box::new(Shouting));
        map.insert("loop".into(), Box::new(Loop));
        let handlers = Handlers::new(
            map,
            Arc::new(MemoryStore::default()),
            plugins,
            HashSet::new(),
            HashMap::new(),
        );
        let event = test_message("phone-1", "Alice", "hello", false);
        let outcome = handlers.handle("shout", &event).await.expect("handled");
        assert_eq!(outcome.actions, [Action::send("phone-1", "Alice", "HELLO")]);
        assert!(matches!(
            handlers.handle("loop", &event).await,
            Err(HandlerError::TooDeep(_))
        ));
        assert!(matches!(
            handlers.handle("nobody", &event).await,
            Err(HandlerError::Unknown(_))
        ));
    }
}
