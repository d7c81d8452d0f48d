//! The staged message handler: dedup → self-filter → rate limit → command dispatch (with
//! permissions) → plugins → fallback → per-platform formatting. Any stage may end the
//! chain; each says why in the log. Stages that keep no state (the dedup key, the
//! self-filter, formatting) are plain functions; dedup's memory and the rate limiter
//! are the pipeline's state.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::command::{Admin, Parsed, Prefix, Registry, Scene};
use crate::event::{Action, Event, Segment, types};
use crate::handler::{
    ConfigProblem, ConfigScope, Handler, HandlerContext, HandlerError, Outcome, resolve,
};
use crate::permission::Grant;
use crate::permission::{Access, Target, qualify, user_key};
use crate::plugin::{PluginError, PluginRequest};

/// `[handlers.NAME]` with `type = "pipeline"`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// At most this many messages per conversation in a window; the first message over
    /// the limit is told so, the rest are dropped quietly until the window ends.
    pub rate_limit: Option<RateLimit>,
    #[serde(default)]
    pub prefixes: Vec<PrefixConfig>,
    /// Which plugins' commands and events this pipeline offers; all when left out.
    pub scenes: Option<Vec<String>>,
    /// A handler for messages nothing else answered (an LLM webhook), or `echo`.
    pub fallback: Option<String>,
    /// A fixed answer for messages nothing else answered.
    pub fallback_reply: Option<String>,
}

impl PipelineConfig {
    pub fn check(&self, scope: &dyn ConfigScope) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        if self.fallback.is_some() && self.fallback_reply.is_some() {
            problems.push(ConfigProblem::section(
                "set fallback or fallback_reply, not both",
            ));
        }
        if let Some(fallback) = &self.fallback
            && fallback != "echo"
            && !scope.handler_exists(fallback)
        {
            problems.push(ConfigProblem::at(
                "fallback",
                format!("fallback {fallback:?} is not a handler"),
            ));
        }
        for prefix in &self.prefixes {
            if prefix.prefix.trim().is_empty() {
                problems.push(ConfigProblem::section(
                    "an empty prefix would catch every message",
                ));
            }
            if !scope.handler_exists(&prefix.handler) {
                problems.push(ConfigProblem::at(
                    "prefixes",
                    format!(
                        "prefix {:?} goes to {:?}, which is not a handler",
                        prefix.prefix, prefix.handler
                    ),
                ));
            }
        }
        if let Some(limit) = self.rate_limit
            && (limit.messages == 0 || limit.per_seconds == 0)
        {
            problems.push(ConfigProblem::at(
                "rate_limit",
                "rate_limit needs messages and per_seconds above 0",
            ));
        }
        problems
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub messages: u32,
    pub per_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixConfig {
    pub prefix: String,
    pub handler: String,
    #[serde(default)]
    pub help: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fallback {
    None,
    Echo,
    Reply(String),
    Handler(String),
}

/// How many message keys the dedup stage remembers, and for how long.
const DEDUP_CAPACITY: usize = 10_000;
const DEDUP_WINDOW: Duration = Duration::from_secs(24 * 3600);

pub struct Pipeline {
    name: String,
    rate_limit: Option<RateLimit>,
    prefixes: Vec<Prefix>,
    scenes: Option<HashSet<String>>,
    fallback: Fallback,
    windows: Mutex<HashMap<String, Window>>,
    seen: Mutex<Seen>,
    /// Built on first use: the plugins, and so the scenes, are fixed once running.
    registry: std::sync::OnceLock<Registry>,
}

struct Window {
    started: Instant,
    count: u32,
}

#[derive(Default)]
struct Seen {
    keys: HashSet<String>,
    order: VecDeque<(Instant, String)>,
}

impl Seen {
    /// True the first time a key is offered within the window.
    fn first(&mut self, key: &str, now: Instant) -> bool {
        while let Some((at, _)) = self.order.front() {
            if self.order.len() < DEDUP_CAPACITY && now.duration_since(*at) < DEDUP_WINDOW {
                break;
            }
            if let Some((_, old)) = self.order.pop_front() {
                self.keys.remove(&old);
            }
        }
        if !self.keys.insert(key.to_string()) {
            return false;
        }
        self.order.push_back((now, key.to_string()));
        true
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The guarded maps stay consistent even if a holder panicked.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Pipeline {
    pub fn new(name: &str, config: &PipelineConfig) -> Pipeline {
        let fallback = match (&config.fallback, &config.fallback_reply) {
            (Some(handler), _) if handler == "echo" => Fallback::Echo,
            (Some(handler), _) => Fallback::Handler(handler.clone()),
            (None, Some(text)) => Fallback::Reply(text.clone()),
            (None, None) => Fallback::None,
        };
        Pipeline {
            name: name.to_string(),
            rate_limit: config.rate_limit,
            prefixes: config
                .prefixes
                .iter()
                .map(|p| Prefix {
                    prefix: p.prefix.clone(),
                    handler: p.handler.clone(),
                    help: p.help.clone(),
                })
                .collect(),
            scenes: config.scenes.as_ref().map(|s| s.iter().cloned().collect()),
            fallback,
            windows: Mutex::new(HashMap::new()),
            seen: Mutex::new(Seen::default()),
            registry: std::sync::OnceLock::new(),
        }
    }

    /// The built-in pipelines: `echo` answers anything else with its own text, `help`
    /// answers commands only.
    pub fn builtin(name: &str, echo: bool) -> Pipeline {
        Pipeline::new(
            name,
            &PipelineConfig {
                fallback: echo.then(|| "echo".to_string()),
                ..PipelineConfig::default()
            },
        )
    }

    pub fn fallback(&self) -> &Fallback {
        &self.fallback
    }

    pub fn prefix_handlers(&self) -> impl Iterator<Item = &str> {
        self.prefixes.iter().map(|p| p.handler.as_str())
    }

    fn offers(&self, plugin: &str) -> bool {
        self.scenes.as_ref().is_none_or(|s| s.contains(plugin))
    }

    /// The commands this pipeline answers to, from the plugins it offers.
    fn registry(&self, ctx: &HandlerContext<'_>) -> &Registry {
        self.registry.get_or_init(|| self.build_registry(ctx))
    }

    fn build_registry(&self, ctx: &HandlerContext<'_>) -> Registry {
        let scenes = ctx
            .plugins()
            .manifests()
            .iter()
            .filter(|m| !m.commands.is_empty() && self.offers(&m.name))
            .map(|m| Scene {
                name: m.name.clone(),
                description: m.description.clone(),
                commands: m
                    .commands
                    .iter()
                    .map(|c| crate::command::CommandInfo {
                        name: c.name.clone(),
                        usage: c.usage.clone(),
                        help: c.help.clone(),
                        public: c.public,
                    })
                    .collect(),
            })
            .collect();
        Registry::new(scenes, self.prefixes.clone())
    }

    async fn answer(
        &self,
        ctx: &HandlerContext<'_>,
        event: &Event,
    ) -> Result<Outcome, HandlerError> {
        match self.stages(ctx, event).await? {
            // The controller's own answers are plain text already (and their `<user>`
            // placeholders would read as HTML tags).
            Answer::Builtin(outcome) => Ok(outcome),
            Answer::Handler(outcome) => Ok(formatted_for_targets(ctx, outcome)),
        }
    }

    async fn stages(
        &self,
        ctx: &HandlerContext<'_>,
        event: &Event,
    ) -> Result<Answer, HandlerError> {
        let stop = |stage: &str| {
            tracing::debug!(pipeline = %self.name, event = %event.id, stage, "chain stopped");
            Ok(Answer::Builtin(Outcome::default()))
        };
        if event.event_type != types::MESSAGE_RECEIVED {
            return self.plugins_then_fallback(ctx, event).await;
        }
        if !lock(&self.seen).first(&dedup_key(event), Instant::now()) {
            return stop("dedup");
        }
        if !from_someone_else(event) {
            return stop("self-filter");
        }
        let (Some(conversation), Some(text)) = (&event.conversation, event.text()) else {
            return self.plugins_then_fallback(ctx, event).await;
        };
        let reply =
            |text: String| Action::send(event.source.clone(), conversation.id.clone(), text);
        if let Some(limit) = self.rate_limit {
            match self.admit(&format!("{}/{}", event.source, conversation.id), limit) {
                Admission::Admitted => {}
                Admission::FirstRefused => {
                    return Ok(Answer::Builtin(Outcome::actions(vec![reply(format!(
                        "Too many messages: at most {} every {} s here. Please wait.",
                        limit.messages, limit.per_seconds
                    ))])));
                }
                Admission::Refused => return stop("rate-limit"),
            }
        }

        let registry = self.registry(ctx);
        let parsed = match registry.parse(&text) {
            Parsed::NotCommand => return self.plugins_then_fallback(ctx, event).await,
            Parsed::Prefix { handler, rest } => {
                let mut inner = event.clone();
                inner.content = vec![Segment::Text { text: rest }];
                return Ok(Answer::Handler(ctx.handle(&handler, &inner).await?));
            }
            parsed => parsed,
        };
        let user = user_key(event).unwrap_or_default();
        let access = ctx.access(&user).await?;
        let answer = match parsed {
            Parsed::NotCommand | Parsed::Prefix { .. } => return stop("command"),
            Parsed::Help { scene, command } => {
                registry.help(&access, scene.as_deref(), command.as_deref())
            }
            Parsed::UnknownCommand { scene, command } => match command {
                Some(command) => format!(
                    "{scene} has no command \"{command}\". Send help {scene} for its commands."
                ),
                None => registry.help(&access, Some(&scene), None),
            },
            Parsed::Invalid(usage) => usage,
            Parsed::Admin(admin) => self.admin(ctx, event, &access, registry, admin).await?,
            Parsed::Command {
                scene,
                command,
                args,
            } => {
                let public = registry
                    .scene(&scene)
                    .and_then(|s| s.commands.iter().find(|c| c.name == command))
                    .is_some_and(|c| c.public);
                if !access.may(&scene, &command, public) {
                    tracing::info!(pipeline = %self.name, %user, %scene, %command, "command refused: no grant");
                    format!("You may not use {scene} {command}; ask an admin for a grant.")
                } else {
                    let request = PluginRequest::Command {
                        event: event.clone(),
                        command: command.clone(),
                        args,
                    };
                    match ctx.plugins().call(&scene, request).await {
                        Ok(actions) => {
                            return Ok(Answer::Handler(Outcome::actions(resolve(actions, event))));
                        }
                        Err(error) => plugin_failure(&scene, &command, &error),
                    }
                }
            }
        };
        Ok(Answer::Builtin(Outcome::actions(vec![reply(answer)])))
    }

    async fn admin(
        &self,
        ctx: &HandlerContext<'_>,
        event: &Event,
        access: &Access,
        registry: &Registry,
        admin: Admin,
    ) -> Result<String, HandlerError> {
        let me = user_key(event).unwrap_or_default();
        if let Admin::Perms { user: None } = admin {
            return Ok(access.describe());
        }
        if !access.admin {
            return Ok("Only an admin may grant, revoke or look at others' permissions.".into());
        }
        let known = |target: &Target| -> Result<(), String> {
            let (scene, command) = target.columns();
            // `llm send` / `llm forward` are the LLM handlers' tools, not a plugin's.
            if scene == "*" || scene == crate::handler::llm::TOOL_SCENE {
                return Ok(());
            }
            let Some(found) = registry.scene(scene) else {
                return Err(format!("No scene \"{scene}\"."));
            };
            if !command.is_empty() && !found.commands.iter().any(|c| c.name == command) {
                return Err(format!("{scene} has no command \"{command}\"."));
            }
            Ok(())
        };
        Ok(match admin {
            Admin::Grant {
                user,
                target,
                until,
            } => {
                if let Err(message) = known(&target) {
                    return Ok(message);
                }
                let user = qualify(&user, &event.platform);
                let (scene, command) = target.columns();
                ctx.grant(&Grant {
                    user: user.clone(),
                    scene: scene.to_string(),
                    command: command.to_string(),
                    expires_at: until.expires_at(),
                    granted_by: me.clone(),
                })
                .await?;
                tracing::info!(admin = %me, %user, what = %target.describe(), ?until, "granted");
                match until.expires_at() {
                    Some(end) => format!(
                        "Granted {user} {} until {}.",
                        target.describe(),
                        &end[..10.min(end.len())]
                    ),
                    None => format!("Granted {user} {}.", target.describe()),
                }
            }
            Admin::Revoke { user, target } => {
                let user = qualify(&user, &event.platform);
                let (scene, command) = target.columns();
                let command = (!command.is_empty()).then_some(command);
                let removed = ctx.revoke(&user, scene, command).await?;
                tracing::info!(admin = %me, %user, what = %target.describe(), removed, "revoked");
                format!("Revoked {removed} grant(s) of {user}.")
            }
            Admin::Perms { user: Some(user) } => {
                let user = qualify(&user, &event.platform);
                let theirs = ctx.access(&user).await?;
                format!("{user}:\n{}", theirs.describe())
            }
            Admin::Perms { user: None } => access.describe(),
        })
    }

    /// Events that are not commands: plugins that asked for this event type see it; if
    /// none of them answered, the fallback does.
    async fn plugins_then_fallback(
        &self,
        ctx: &HandlerContext<'_>,
        event: &Event,
    ) -> Result<Answer, HandlerError> {
        let mut actions = Vec::new();
        let wanting: Vec<String> = ctx
            .plugins()
            .manifests()
            .iter()
            .filter(|m| self.offers(&m.name) && m.wants(&event.event_type))
            .map(|m| m.name.clone())
            .collect();
        for plugin in wanting {
            let request = PluginRequest::Event {
                event: event.clone(),
            };
            match ctx.plugins().call(&plugin, request).await {
                Ok(answer) => actions.extend(resolve(answer, event)),
                Err(error) => {
                    tracing::warn!(pipeline = %self.name, %plugin, event = %event.id, %error, "plugin failed on an event")
                }
            }
        }
        if !actions.is_empty() || event.event_type != types::MESSAGE_RECEIVED {
            return Ok(Answer::Handler(Outcome::actions(actions)));
        }
        let Some(conversation) = &event.conversation else {
            return Ok(Answer::Builtin(Outcome::default()));
        };
        let reply =
            |text: String| Action::send(event.source.clone(), conversation.id.clone(), text);
        match &self.fallback {
            Fallback::None => Ok(Answer::Builtin(Outcome::default())),
            // An echo is the sender's own text, exactly.
            Fallback::Echo => Ok(Answer::Builtin(Outcome::actions(
                event.text().map(reply).into_iter().collect(),
            ))),
            Fallback::Reply(text) => {
                Ok(Answer::Handler(Outcome::actions(vec![reply(text.clone())])))
            }
            Fallback::Handler(handler) => Ok(Answer::Handler(ctx.handle(handler, event).await?)),
        }
    }

    fn admit(&self, conversation: &str, limit: RateLimit) -> Admission {
        let now = Instant::now();
        let mut windows = lock(&self.windows);
        let window = windows.entry(conversation.to_string()).or_insert(Window {
            started: now,
            count: 0,
        });
        if now.duration_since(window.started) >= Duration::from_secs(limit.per_seconds) {
            *window = Window {
                started: now,
                count: 0,
            };
        }
        window.count = window.count.saturating_add(1);
        if window.count <= limit.messages {
            Admission::Admitted
        } else if window.count == limit.messages.saturating_add(1) {
            Admission::FirstRefused
        } else {
            Admission::Refused
        }
    }
}

/// Where an outcome came from: the controller's own answers are plain text; what
/// plugins, webhooks and configured replies say may be markdown, and is formatted for
/// the platform it goes to.
enum Answer {
    Builtin(Outcome),
    Handler(Outcome),
}

enum Admission {
    Admitted,
    FirstRefused,
    Refused,
}

/// What the user is told when a plugin could not answer; the host reports the fault.
/// The dedup stage's key: a platform that redelivers under a new event id still carries
/// its message id.
fn dedup_key(event: &Event) -> String {
    format!(
        "{}:{}",
        event.source,
        event
            .platform_message_id
            .as_deref()
            .unwrap_or(&event.idempotency_key)
    )
}

/// The self-filter: a bot never answers its own messages (nor ones with no sender).
fn from_someone_else(event: &Event) -> bool {
    event.sender.as_ref().is_some_and(|s| !s.is_self)
}

/// The formatting stage: each reply in the text format its target accepts.
fn formatted_for_targets(ctx: &HandlerContext<'_>, mut outcome: Outcome) -> Outcome {
    for action in &mut outcome.actions {
        let Action::Send { target, text, .. } = action;
        *text = crate::format::for_format(ctx.format_of(target), text);
    }
    outcome
}

fn plugin_failure(scene: &str, command: &str, error: &PluginError) -> String {
    match error {
        PluginError::Failed { message, .. } => format!("{scene} {command}: {message}"),
        PluginError::Timeout { .. } => {
            format!("{scene} {command} took too long and was stopped. Please try again.")
        }
        _ => format!("{scene} is unavailable right now; please try again shortly."),
    }
}

#[async_trait::async_trait]
impl Handler for Pipeline {
    async fn handle(
        &self,
        ctx: &HandlerContext<'_>,
        event: &Event,
    ) -> Result<Outcome, HandlerError> {
        self.answer(ctx, event).await
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::event::test_message;
    use crate::handler::{Handler, Handlers, builtins};
    use crate::plugin::PluginHost;
    use crate::store::SqliteStore;

    struct Setup {
        handlers: Arc<Handlers>,
        _dir: tempfile::TempDir,
    }

    /// Handlers with a fresh store, the repo's own plugins (the roster) and `张伟` as
    /// the admin; `extra` adds named handlers.
    async fn setup(extra: Vec<(&str, Box<dyn Handler>)>, with_plugins: bool) -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(
            SqliteStore::open(&dir.path().join("t.db"))
                .await
                .expect("store"),
        );
        let manifests = if with_plugins {
            let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
            crate::plugin::load_dir(&plugins).expect("the repo's plugins load")
        } else {
            Vec::new()
        };
        let (faults, _) = tokio::sync::mpsc::unbounded_channel();
        let host = PluginHost::start(manifests, faults).await;
        let mut handlers = builtins();
        for (name, handler) in extra {
            handlers.insert(name.to_string(), handler);
        }
        let handlers = Arc::new(Handlers::new(
            handlers,
            store,
            host,
            HashSet::from(["wechat:张伟".to_string()]),
            HashMap::new(),
        ));
        Setup {
            handlers,
            _dir: dir,
        }
    }

    fn message(sender: &str, text: &str, key: &str) -> Event {
        let mut event = test_message("phone", sender, text, false);
        event.idempotency_key = key.into();
        event.id = crate::event::event_id(key);
        event
    }

    async fn answer(setup: &Setup, handler: &str, sender: &str, text: &str) -> Vec<String> {
        let key = format!("{sender}:{text}:{}", fastrand::u64(..));
        setup
            .handlers
            .handle(handler, &message(sender, text, &key))
            .await
            .expect("handled")
            .actions
            .into_iter()
            .map(|Action::Send { text, .. }| text)
            .collect()
    }

    #[tokio::test]
    async fn dedup_self_filter_help_and_echo() {
        let setup = setup(Vec::new(), false).await;
        let h = &setup.handlers;
        let hi = message("Alice", "hi", "k1");
        assert_eq!(h.handle("echo", &hi).await.expect("ok").actions.len(), 1);
        assert!(
            h.handle("echo", &hi).await.expect("ok").actions.is_empty(),
            "dedup"
        );
        let mut own = message("Alice", "mine", "k2");
        own.sender.as_mut().expect("sender").is_self = true;
        assert!(
            h.handle("echo", &own).await.expect("ok").actions.is_empty(),
            "self-filter"
        );
        let help = answer(&setup, "echo", "Alice", "help").await;
        assert!(
            help[0].starts_with("Tapwire commands:\nhelp: this list"),
            "{help:?}"
        );
        assert!(answer(&setup, "help", "Alice", "hello").await.is_empty());
        assert_eq!(
            answer(&setup, "echo", "Alice", "你好 😀").await,
            ["你好 😀"]
        );
    }

    #[tokio::test]
    async fn rate_limit_tells_once_then_drops_quietly() {
        let limited = Pipeline::new(
            "limited",
            &PipelineConfig {
                rate_limit: Some(RateLimit {
                    messages: 2,
                    per_seconds: 3600,
                }),
                fallback: Some("echo".into()),
                ..PipelineConfig::default()
            },
        );
        let setup = setup(vec![("limited", Box::new(limited))], false).await;
        let mut answers = Vec::new();
        for i in 0..5 {
            answers.push(answer(&setup, "limited", "Alice", &format!("m{i}")).await);
        }
        assert_eq!(answers[0], ["m0"]);
        assert_eq!(answers[1], ["m1"]);
        assert!(
            answers[2][0].starts_with("Too many messages"),
            "{answers:?}"
        );
        assert!(
            answers[3].is_empty() && answers[4].is_empty(),
            "{answers:?}"
        );
        assert_eq!(
            answer(&setup, "limited", "Bob", "own window").await,
            ["own window"]
        );
    }

    #[tokio::test]
    async fn prefixes_hand_the_rest_on_and_replies_are_plain_on_wechat() {
        let inner = Pipeline::new(
            "inner",
            &PipelineConfig {
                fallback_reply: Some("**bold** and [docs](https://example.com/d)".into()),
                ..PipelineConfig::default()
            },
        );
        let outer = Pipeline::new(
            "outer",
            &PipelineConfig {
                prefixes: vec![
                    PrefixConfig {
                        prefix: "#".into(),
                        handler: "echo".into(),
                        help: "echo it".into(),
                    },
                    PrefixConfig {
                        prefix: "?".into(),
                        handler: "inner".into(),
                        help: "ask".into(),
                    },
                ],
                ..PipelineConfig::default()
            },
        );
        let setup = setup(
            vec![("inner", Box::new(inner)), ("outer", Box::new(outer))],
            false,
        )
        .await;
        assert_eq!(
            answer(&setup, "outer", "Alice", "#  什么是 Rust").await,
            ["什么是 Rust"]
        );
        assert_eq!(
            answer(&setup, "outer", "Alice", "?x").await,
            ["bold and docs (https://example.com/d)"]
        );
        assert!(answer(&setup, "outer", "Alice", "plain").await.is_empty());
        let help = answer(&setup, "outer", "Alice", "help").await;
        assert!(
            help[0].contains("#<text>: echo it") && help[0].contains("?<text>: ask"),
            "{help:?}"
        );
    }

    #[tokio::test]
    async fn commands_need_grants_that_admins_give_and_that_expire() {
        let setup = setup(Vec::new(), true).await;
        let who = answer(&setup, "help", "李娜", "roster who 2026-11-24").await;
        assert_eq!(who.len(), 1, "public command answered: {who:?}");
        assert!(who[0].contains("2026-11-24"), "{who:?}");

        let refused = answer(&setup, "help", "李娜", "roster list 3").await;
        assert_eq!(
            refused,
            ["You may not use roster list; ask an admin for a grant."]
        );
        let help = answer(&setup, "help", "李娜", "help roster").await;
        assert!(
            help[0].contains("roster who") && !help[0].contains("roster list"),
            "{help:?}"
        );

        assert_eq!(
            answer(&setup, "help", "李娜", "grant 李娜 roster").await,
            ["Only an admin may grant, revoke or look at others' permissions."]
        );
        assert_eq!(
            answer(
                &setup,
                "help",
                "张伟",
                "grant 李娜 roster list until 2999-12-31"
            )
            .await,
            ["Granted wechat:李娜 roster list until 3000-01-01."]
        );
        let listed = answer(&setup, "help", "李娜", "roster list 3").await;
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert!(!listed[0].starts_with("You may not"), "{listed:?}");
        assert_eq!(
            answer(&setup, "help", "李娜", "perms").await,
            ["roster list until 3000-01-01"]
        );

        assert_eq!(
            answer(&setup, "help", "张伟", "revoke 李娜 roster").await,
            ["Revoked 1 grant(s) of wechat:李娜."]
        );
        assert!(answer(&setup, "help", "李娜", "roster list").await[0].starts_with("You may not"));

        // A grant that ended yesterday no longer opens the command.
        answer(&setup, "help", "张伟", "grant 李娜 * until 2020-01-01").await;
        assert!(answer(&setup, "help", "李娜", "roster list").await[0].starts_with("You may not"));
        assert_eq!(
            answer(&setup, "help", "张伟", "perms 李娜").await,
            ["wechat:李娜:\neverything (expired 2020-01-02)"]
        );
        assert_eq!(
            answer(&setup, "help", "张伟", "grant 李娜 ghosts").await,
            ["No scene \"ghosts\"."]
        );
        // The LLM handlers' tools are granted like a plugin's commands.
        assert_eq!(
            answer(&setup, "help", "张伟", "grant 李娜 llm send").await,
            ["Granted wechat:李娜 llm send."]
        );
        setup.handlers.plugins.shutdown().await;
    }
}
