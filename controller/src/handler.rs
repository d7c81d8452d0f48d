//! Handlers by name: what a route points at. A handler takes an event and decides actions;
//! it never executes them (the runtime stores them first). Kinds: the staged pipeline,
//! a webhook, an external plugin, a forward to another source.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;

use crate::event::{Action, Event, HandlerAction};
use crate::permission::Access;
use crate::pipeline::Pipeline;
use crate::plugin::{PluginHost, PluginRequest};
use crate::store::{Grant, Store, StoreError};
use crate::webhook::Webhook;

/// Pipelines may hand an event to other handlers (prefixes, fallback); a loop the config
/// check missed must still end.
const MAX_DEPTH: usize = 8;

pub enum Handler {
    Pipeline(Pipeline),
    Webhook(Webhook),
    /// Every routed event goes to this external plugin (e.g. `schedule.fired` to a roster).
    Plugin {
        plugin: String,
    },
    /// Every routed message's text, through a template, to a conversation of a target.
    Forward {
        target: String,
        conversation: String,
        template: Template,
    },
}

/// A forward's text: literal parts and `{field}`s of the event; `{{` and `}}` are braces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<Part>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Field(Field),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Text,
    Sender,
    Conversation,
    Source,
    Platform,
}

impl Template {
    pub fn parse(template: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = template.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    if !closed {
                        return Err("template has an unclosed `{`; write `{{` for a brace".into());
                    }
                    let field = match name.as_str() {
                        "text" => Field::Text,
                        "sender" => Field::Sender,
                        "conversation" => Field::Conversation,
                        "source" => Field::Source,
                        "platform" => Field::Platform,
                        other => {
                            return Err(format!(
                                "template field {{{other}}} does not exist; use {{text}}, {{sender}}, {{conversation}}, {{source}} or {{platform}} ({{{{ for a brace)"
                            ));
                        }
                    };
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Field(field));
                }
                '}' => return Err("template has a lone `}`; write `}}` for a brace".into()),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template(parts))
    }

    /// The text for `event`, or None if it has no text to forward.
    pub fn render(&self, event: &Event) -> Option<String> {
        let text = event.text()?;
        let mut out = String::new();
        for part in &self.0 {
            match part {
                Part::Literal(literal) => out.push_str(literal),
                Part::Field(Field::Text) => out.push_str(&text),
                Part::Field(Field::Sender) => out.push_str(
                    event
                        .sender
                        .as_ref()
                        .map(|s| s.display_name.as_deref().unwrap_or(&s.id))
                        .unwrap_or_default(),
                ),
                Part::Field(Field::Conversation) => out.push_str(
                    event
                        .conversation
                        .as_ref()
                        .map(|c| c.title.as_deref().unwrap_or(&c.id))
                        .unwrap_or_default(),
                ),
                Part::Field(Field::Source) => out.push_str(&event.source),
                Part::Field(Field::Platform) => out.push_str(&event.platform),
            }
        }
        Some(out)
    }
}

impl Handler {
    /// The handlers that exist without being declared: `echo` (commands, help, and
    /// anything else echoed) and `help` (commands and help only).
    pub fn builtins() -> HashMap<String, Handler> {
        HashMap::from([
            (
                "echo".to_string(),
                Handler::Pipeline(Pipeline::builtin("echo", true)),
            ),
            (
                "help".to_string(),
                Handler::Pipeline(Pipeline::builtin("help", false)),
            ),
        ])
    }
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

pub type HandlerFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Outcome, HandlerError>> + Send + 'a>>;

/// Every handler of a running controller, and what they share.
pub struct Handlers {
    handlers: HashMap<String, Handler>,
    pub store: Store,
    pub plugins: PluginHost,
    pub admins: HashSet<String>,
    /// Which platform each source speaks, so replies are formatted for where they go.
    platforms: HashMap<String, String>,
    /// Grants by user, read from the store once: every change goes through `grant` and
    /// `revoke` here, which keep it current.
    grants: std::sync::Mutex<HashMap<String, Vec<Grant>>>,
}

impl Handlers {
    pub fn new(
        handlers: HashMap<String, Handler>,
        store: Store,
        plugins: PluginHost,
        admins: HashSet<String>,
        platforms: HashMap<String, String>,
    ) -> Handlers {
        Handlers {
            handlers,
            store,
            plugins,
            admins,
            platforms,
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

    pub fn get(&self, name: &str) -> Option<&Handler> {
        self.handlers.get(name)
    }

    /// The platform a target source speaks; a source nobody declared is assumed to be a
    /// WeChat phone, the one source that needs no declaration to exist.
    pub fn platform_of(&self, source: &str) -> &str {
        self.platforms.get(source).map_or("wechat", String::as_str)
    }

    pub fn handle<'a>(&'a self, name: &'a str, event: &'a Event) -> HandlerFuture<'a> {
        self.handle_at(name, event, 0)
    }

    pub(crate) fn handle_at<'a>(
        &'a self,
        name: &'a str,
        event: &'a Event,
        depth: usize,
    ) -> HandlerFuture<'a> {
        Box::pin(async move {
            if depth >= MAX_DEPTH {
                return Err(HandlerError::TooDeep(name.to_string()));
            }
            let handler = self
                .handlers
                .get(name)
                .ok_or_else(|| HandlerError::Unknown(name.to_string()))?;
            match handler {
                Handler::Pipeline(pipeline) => pipeline.handle(self, event, depth).await,
                Handler::Webhook(webhook) => Ok(self.deliver(name, webhook, event).await),
                Handler::Forward {
                    target,
                    conversation,
                    template,
                } => Ok(Outcome::actions(
                    template
                        .render(event)
                        .map(|text| Action::Send {
                            target: target.clone(),
                            conversation: conversation.clone(),
                            text,
                        })
                        .into_iter()
                        .collect(),
                )),
                Handler::Plugin { plugin } => {
                    let request = PluginRequest::Event {
                        event: event.clone(),
                    };
                    match self.plugins.call(plugin, request).await {
                        Ok(actions) => Ok(Outcome::actions(resolve(actions, event))),
                        Err(error) => {
                            // The host reports the fault; an event nobody typed has no one
                            // to tell, so it is logged and finished.
                            tracing::warn!(handler = name, %plugin, event = %event.id, %error, "plugin failed on an event");
                            Ok(Outcome::default())
                        }
                    }
                }
            }
        })
    }

    /// Delivers to a webhook; past its retries the event becomes a dead letter.
    pub async fn deliver(&self, name: &str, webhook: &Webhook, event: &Event) -> Outcome {
        match webhook.deliver(event).await {
            Ok(delivery) => {
                tracing::debug!(handler = name, event = %event.id, attempts = delivery.attempts, "webhook delivered");
                Outcome::actions(resolve(delivery.actions, event))
            }
            Err(error) => {
                tracing::error!(handler = name, event = %event.id, %error, "webhook gave up; event dead-lettered");
                Outcome {
                    actions: Vec::new(),
                    dead: Some(DeadLetterInfo {
                        handler: name.to_string(),
                        delivered: event.clone(),
                        attempts: error.attempts(),
                        error: error.to_string(),
                    }),
                }
            }
        }
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

    #[test]
    fn templates_fill_fields_and_keep_escaped_braces() {
        let event = test_message("phone-1", "李雷", "明天开会", false);
        let render = |t: &str| Template::parse(t).expect("parses").render(&event);
        assert_eq!(render("{text}").as_deref(), Some("明天开会"));
        assert_eq!(
            render("[{conversation}] {sender}: {text} ({platform} via {source}) {{ok}}").as_deref(),
            Some("[李雷] 李雷: 明天开会 (wechat via phone-1) {ok}")
        );
        let unknown = Template::parse("{who}: {text}").unwrap_err();
        assert!(unknown.contains("{who}"), "{unknown}");
        assert!(Template::parse("a } b").is_err());
        assert!(Template::parse("{text").is_err());
        let no_text = Event {
            content: Vec::new(),
            ..event
        };
        assert_eq!(
            Template::parse("{sender}")
                .expect("parses")
                .render(&no_text),
            None
        );
    }
}
