//! The router: which handlers an event goes to. Routes match an event type (exact,
//! `namespace.*` or `*`), optionally a source and a conversation; higher priority first,
//! declaration order among equals; the first match handles the event unless it says
//! `continue`. Unmatched events are logged and counted, never dropped silently.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::event::Event;

/// An event-type pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    Exact(String),
    /// `message.*`: every type in the namespace (and deeper: `platform.wecom.*`).
    Prefix(String),
    Any,
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, String> {
        let text = text.trim();
        if text == "*" {
            return Ok(Pattern::Any);
        }
        if let Some(prefix) = text.strip_suffix(".*") {
            if prefix.is_empty() || prefix.contains('*') {
                return Err(format!("bad event pattern {text:?}"));
            }
            return Ok(Pattern::Prefix(format!("{prefix}.")));
        }
        if text.is_empty() || text.contains('*') || !text.contains('.') {
            return Err(format!(
                "bad event pattern {text:?}: use a namespaced type (message.received), ns.* or *"
            ));
        }
        Ok(Pattern::Exact(text.to_string()))
    }

    pub fn matches(&self, event_type: &str) -> bool {
        match self {
            Pattern::Exact(t) => t == event_type,
            Pattern::Prefix(p) => event_type.starts_with(p.as_str()),
            Pattern::Any => true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Route {
    pub id: String,
    pub pattern: Pattern,
    pub source: Option<String>,
    pub conversation: Option<String>,
    pub priority: i32,
    pub enabled: bool,
    /// Let the next matching route see the event too.
    pub continue_: bool,
    /// A handler's name: `[handlers.NAME]` or a built-in.
    pub handler: String,
}

impl Route {
    fn matches(&self, event: &Event) -> bool {
        self.enabled
            && self.pattern.matches(&event.event_type)
            && self.source.as_deref().is_none_or(|s| s == event.source)
            && self.conversation.as_deref().is_none_or(|c| {
                event
                    .conversation
                    .as_ref()
                    .is_some_and(|conv| conv.id == c || conv.title.as_deref() == Some(c))
            })
    }
}

#[derive(Debug, Default)]
pub struct Router {
    routes: Vec<Route>,
    unmatched: AtomicU64,
}

impl Router {
    pub fn new(mut routes: Vec<Route>) -> Router {
        // Stable: declaration order decides among equal priorities.
        routes.sort_by_key(|r| std::cmp::Reverse(r.priority));
        Router {
            routes,
            unmatched: AtomicU64::new(0),
        }
    }

    /// The routes that handle `event`, in order.
    pub fn route<'a>(&'a self, event: &Event) -> Vec<&'a Route> {
        let mut chosen = Vec::new();
        for route in self.routes.iter().filter(|r| r.matches(event)) {
            chosen.push(route);
            if !route.continue_ {
                break;
            }
        }
        if chosen.is_empty() {
            self.unmatched.fetch_add(1, Ordering::Relaxed);
            tracing::info!(event = %event.id, r#type = %event.event_type, source = %event.source, "no route matches");
        }
        chosen
    }

    pub fn route_count(&self) -> usize {
        self.routes.len()
    }

    pub fn unmatched(&self) -> u64 {
        self.unmatched.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Conversation, ConversationKind};

    fn event(event_type: &str, source: &str, conversation: &str) -> Event {
        Event {
            id: "e".into(),
            event_type: event_type.into(),
            source: source.into(),
            platform: "wechat".into(),
            idempotency_key: "k".into(),
            conversation: Some(Conversation {
                id: conversation.into(),
                title: Some(conversation.into()),
                kind: ConversationKind::Private,
            }),
            sender: None,
            content: Vec::new(),
            platform_message_id: None,
            timestamp: String::new(),
            raw: serde_json::Value::Null,
        }
    }

    fn route(id: &str, pattern: &str, priority: i32) -> Route {
        Route {
            id: id.into(),
            pattern: Pattern::parse(pattern).expect("pattern"),
            source: None,
            conversation: None,
            priority,
            enabled: true,
            continue_: false,
            handler: "echo".into(),
        }
    }

    fn ids(router: &Router, e: &Event) -> Vec<String> {
        router.route(e).iter().map(|r| r.id.clone()).collect()
    }

    #[test]
    fn route_matching_table() {
        let mut disabled = route("disabled", "*", 100);
        disabled.enabled = false;
        let mut audit = route("audit", "*", 50);
        audit.continue_ = true;
        let mut vip = route("vip", "message.received", 20);
        vip.conversation = Some("老板".into());
        let mut phone_only = route("phone", "message.*", 10);
        phone_only.source = Some("phone-1".into());
        let router = Router::new(vec![
            route("catch-all", "*", 0),
            route("messages", "message.*", 10),
            phone_only,
            vip,
            audit,
            disabled,
            route("exact", "message.received", 10),
        ]);
        let cases: &[(&str, &str, &str, &[&str])] = &[
            // priority: audit (50, continue) then vip (20) for the boss's chat
            ("message.received", "phone-1", "老板", &["audit", "vip"]),
            // equal priority 10: declaration order (messages before phone before exact)
            (
                "message.received",
                "phone-1",
                "李雷",
                &["audit", "messages"],
            ),
            ("message.recalled", "wecom", "x", &["audit", "messages"]),
            // the wildcard namespace does not match other namespaces
            ("device.connected", "phone-1", "x", &["audit", "catch-all"]),
        ];
        for (event_type, source, conversation, expected) in cases {
            assert_eq!(
                ids(&router, &event(event_type, source, conversation)),
                *expected,
                "{event_type} from {source} in {conversation}"
            );
        }
    }

    #[test]
    fn source_filter_and_unmatched_count() {
        let mut phone_only = route("phone", "message.*", 0);
        phone_only.source = Some("phone-1".into());
        let router = Router::new(vec![phone_only]);
        assert_eq!(
            ids(&router, &event("message.received", "phone-1", "a")),
            ["phone"]
        );
        assert!(ids(&router, &event("message.received", "wecom", "a")).is_empty());
        assert!(ids(&router, &event("schedule.fired", "cron", "a")).is_empty());
        assert_eq!(router.unmatched(), 2);
    }

    #[test]
    fn patterns() {
        assert!(
            Pattern::parse("message.*")
                .expect("ok")
                .matches("message.sent")
        );
        assert!(
            !Pattern::parse("message.*")
                .expect("ok")
                .matches("messages.x")
        );
        assert!(
            Pattern::parse("platform.wecom.*")
                .expect("ok")
                .matches("platform.wecom.card")
        );
        assert!(Pattern::parse("*").expect("ok").matches("anything.at_all"));
        for bad in ["", "message", "mess*.x", ".*", "*.received"] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
