//! The plugin handler: every routed event goes to one external plugin (a `schedule.fired`
//! to a duty roster, say), and its answer becomes actions.

use async_trait::async_trait;
use serde::Deserialize;

use super::{Handler, HandlerContext, HandlerError, Outcome, resolve};
use crate::event::Event;
use crate::plugin::PluginRequest;

/// `[handlers.NAME]` with `type = "plugin"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginHandlerConfig {
    pub plugin: String,
}

pub struct PluginHandler {
    plugin: String,
}

impl PluginHandler {
    pub fn new(config: &PluginHandlerConfig) -> PluginHandler {
        PluginHandler {
            plugin: config.plugin.clone(),
        }
    }
}

#[async_trait]
impl Handler for PluginHandler {
    async fn handle(
        &self,
        ctx: &HandlerContext<'_>,
        event: &Event,
    ) -> Result<Outcome, HandlerError> {
        let request = PluginRequest::Event {
            event: event.clone(),
        };
        match ctx.plugins().call(&self.plugin, request).await {
            Ok(actions) => Ok(Outcome::actions(resolve(actions, event))),
            Err(error) => {
                // The host reports the fault; an event nobody typed has no one to tell, so
                // it is logged and finished.
                tracing::warn!(plugin = %self.plugin, event = %event.id, %error, "plugin failed on an event");
                Ok(Outcome::default())
            }
        }
    }
}
