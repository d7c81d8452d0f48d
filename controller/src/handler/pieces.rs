//! The pieces handler: answers with configured pieces of text written one after another,
//! `interval_ms` apart. It stands in for a handler that writes its answer over time (an
//! LLM streaming tokens) until there is one: where the event came from shows the answer
//! growing if it can (a WeCom AI bot's stream, through [`HandlerContext::progress`]);
//! everywhere else the whole answer arrives once it is complete.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::{ConfigProblem, Handler, HandlerContext, HandlerError, Outcome, resolve};
use crate::event::{Event, HandlerAction};

/// Longer pauses would only keep a conversation waiting; the runtime cancels slow answers.
const MAX_INTERVAL_MS: u64 = 60_000;

/// `[handlers.NAME]` with `type = "pieces"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PiecesConfig {
    /// The answer, in the pieces it is written in.
    pub pieces: Vec<String>,
    /// The pause before each piece.
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
}

fn default_interval_ms() -> u64 {
    500
}

impl PiecesConfig {
    pub fn check(&self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        if self.pieces.concat().trim().is_empty() {
            problems.push(ConfigProblem::at(
                "pieces",
                "pieces must hold some text: they make the answer",
            ));
        }
        if self.interval_ms > MAX_INTERVAL_MS {
            problems.push(ConfigProblem::at(
                "interval_ms",
                format!("interval_ms must be at most {MAX_INTERVAL_MS}"),
            ));
        }
        problems
    }
}

pub struct Pieces {
    pieces: Vec<String>,
    interval: Duration,
}

impl Pieces {
    pub fn new(config: &PiecesConfig) -> Pieces {
        Pieces {
            pieces: config.pieces.clone(),
            interval: Duration::from_millis(config.interval_ms),
        }
    }
}

#[async_trait]
impl Handler for Pieces {
    async fn handle(
        &self,
        ctx: &HandlerContext<'_>,
        event: &Event,
    ) -> Result<Outcome, HandlerError> {
        // Its own messages (a phone reading back what it sent) are never answered.
        if event.conversation.is_none() || event.sender.as_ref().is_some_and(|s| s.is_self) {
            return Ok(Outcome::default());
        }
        let mut written = String::new();
        for piece in &self.pieces {
            tokio::time::sleep(self.interval).await;
            written.push_str(piece);
            ctx.progress(&written);
        }
        Ok(Outcome::actions(resolve(
            vec![HandlerAction::reply(written)],
            event,
        )))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::event::{Action, test_message};
    use crate::handler::{Handlers, builtins};
    use crate::plugin::PluginHost;
    use crate::store::MemoryStore;

    fn config(pieces: &[&str], interval_ms: u64) -> PiecesConfig {
        PiecesConfig {
            pieces: pieces.iter().map(|p| p.to_string()).collect(),
            interval_ms,
        }
    }

    #[test]
    fn config_needs_text_and_a_sane_interval() {
        assert!(config(&["a"], 10).check().is_empty());
        let empty = config(&["", " "], 10).check();
        assert_eq!(empty.len(), 1);
        assert_eq!(empty[0].key, Some("pieces"));
        let slow = config(&["a"], MAX_INTERVAL_MS + 1).check();
        assert_eq!(slow[0].key, Some("interval_ms"));
        let parsed: PiecesConfig = toml::from_str("pieces = [\"a\", \"b\"]").expect("toml");
        assert_eq!(parsed.interval_ms, 500);
        assert!(toml::from_str::<PiecesConfig>("pieces = []\nbogus = 1").is_err());
    }

    /// Each piece is reported as the text so far, through the pipeline that hands the
    /// event on; the answer is the whole text.
    #[tokio::test(start_paused = true)]
    async fn reports_the_text_so_far_then_answers_with_all_of_it() {
        let (faults, _) = tokio::sync::mpsc::unbounded_channel();
        let plugins = PluginHost::start(Vec::new(), faults).await;
        let mut map = builtins();
        map.insert(
            "typing".into(),
            Box::new(Pieces::new(&config(&["你", "好", "！"], 300))),
        );
        let handlers = Handlers::new(
            map,
            Arc::new(MemoryStore::default()),
            plugins,
            HashSet::new(),
            HashMap::new(),
        );
        let seen = Mutex::new(Vec::new());
        let report = |text: &str| {
            seen.lock()
                .expect("lock")
                .push((text.to_string(), tokio::time::Instant::now()));
        };
        let started = tokio::time::Instant::now();
        let event = test_message("bot", "zhangsan", "hi", false);
        let outcome = handlers
            .handle_reporting("typing", &event, &report)
            .await
            .expect("handled");
        assert_eq!(outcome.actions, [Action::send("bot", "zhangsan", "你好！")]);
        let seen = seen.into_inner().expect("lock");
        let texts: Vec<&str> = seen.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(texts, ["你", "你好", "你好！"]);
        assert_eq!(seen[2].1 - started, Duration::from_millis(900));

        // Without anyone listening, the same answer; its own messages are not answered.
        let plain = handlers.handle("typing", &event).await.expect("handled");
        assert_eq!(plain.actions, outcome.actions);
        let own = test_message("bot", "zhangsan", "hi", true);
        assert!(
            handlers
                .handle("typing", &own)
                .await
                .expect("handled")
                .actions
                .is_empty()
        );
    }
}
