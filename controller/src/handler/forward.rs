//! The forward handler: every routed message's text, through a template, to a
//! conversation of another phone or adapter (a WeChat group copied to a WeCom group), with
//! the images and files the message's adapter downloaded.

use async_trait::async_trait;
use serde::Deserialize;

use super::{ConfigProblem, ConfigScope, Handler, HandlerContext, HandlerError, Outcome};
use crate::event::{Action, Event};

/// `[handlers.NAME]` with `type = "forward"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardConfig {
    /// A phone's serial or an adapter's name.
    pub target: String,
    /// The conversation there (a chat's name on a phone; a robot has only its group).
    #[serde(default)]
    pub conversation: String,
    /// What is sent: `{text}`, `{sender}`, `{conversation}`, `{source}`, `{platform}`.
    #[serde(default = "default_template")]
    pub template: String,
}

fn default_template() -> String {
    "{text}".into()
}

impl ForwardConfig {
    pub fn check(&self, scope: &dyn ConfigScope) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        if !scope.is_target(&self.target) {
            problems.push(ConfigProblem::at(
                "target",
                format!(
                    "forward target {:?} is neither a phone nor an adapter",
                    self.target
                ),
            ));
        }
        if let Err(error) = Template::parse(&self.template) {
            problems.push(ConfigProblem::at("template", error));
        }
        problems
    }
}

pub struct Forward {
    target: String,
    conversation: String,
    template: Template,
}

impl Forward {
    pub fn new(config: &ForwardConfig) -> Result<Forward, String> {
        Ok(Forward {
            target: config.target.clone(),
            conversation: config.conversation.clone(),
            template: Template::parse(&config.template)?,
        })
    }
}

#[async_trait]
impl Handler for Forward {
    async fn handle(
        &self,
        _ctx: &HandlerContext<'_>,
        event: &Event,
    ) -> Result<Outcome, HandlerError> {
        let attachments = event.local_attachments();
        // An image without text still goes, under the template's caption (who sent it).
        let text = match event.text() {
            Some(text) => self.template.fill(event, &text),
            None if !attachments.is_empty() => self.template.fill(event, ""),
            None => return Ok(Outcome::actions(Vec::new())),
        };
        Ok(Outcome::actions(vec![Action::Send {
            target: self.target.clone(),
            conversation: self.conversation.clone(),
            text,
            attachments,
        }]))
    }
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
        Some(self.fill(event, &event.text()?))
    }

    /// The template filled from `event`, with `text` for `{text}`.
    fn fill(&self, event: &Event, text: &str) -> String {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                Part::Literal(literal) => out.push_str(literal),
                Part::Field(Field::Text) => out.push_str(text),
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
        out
    }
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

    /// A downloaded image goes with the text, or alone under the template's caption; a
    /// message with neither text nor media is not forwarded.
    #[tokio::test]
    async fn downloaded_media_is_forwarded_with_or_without_text() {
        use std::collections::{HashMap, HashSet};
        use std::sync::Arc;

        use crate::event::{Attachment, Segment};
        use crate::handler::{Handlers, builtins};

        let (faults, _) = tokio::sync::mpsc::unbounded_channel();
        let plugins = crate::plugin::PluginHost::start(Vec::new(), faults).await;
        let mut map = builtins();
        let config = ForwardConfig {
            target: "ops".into(),
            conversation: String::new(),
            template: "{sender}: {text}".into(),
        };
        map.insert(
            "to-ops".into(),
            Box::new(Forward::new(&config).expect("forward")),
        );
        let handlers = Handlers::new(
            map,
            Arc::new(crate::store::MemoryStore::default()),
            plugins,
            HashSet::new(),
            HashMap::new(),
        );
        let image = Segment::Image {
            url: None,
            path: Some("/data/media/1.png".into()),
        };
        let mut event = test_message("app", "李雷", "看图", false);
        event.content.push(image.clone());
        let forwarded = |outcome: super::Outcome| -> Vec<(String, Vec<Attachment>)> {
            outcome
                .actions
                .into_iter()
                .map(
                    |Action::Send {
                         text, attachments, ..
                     }| (text, attachments),
                )
                .collect()
        };
        let png = vec![Attachment::Image {
            source: "/data/media/1.png".into(),
        }];
        let with_text = handlers.handle("to-ops", &event).await.expect("handled");
        assert_eq!(
            forwarded(with_text),
            [("李雷: 看图".to_string(), png.clone())]
        );
        event.content = vec![image];
        let alone = handlers.handle("to-ops", &event).await.expect("handled");
        assert_eq!(forwarded(alone), [("李雷: ".to_string(), png)]);
        event.content = vec![Segment::Image {
            url: None,
            path: None,
        }];
        let nothing = handlers.handle("to-ops", &event).await.expect("handled");
        assert!(nothing.actions.is_empty());
    }
}
