//! Wiring a running controller from its config: plugins started, handlers built, the
//! permissions bootstrap stored, the runtime and the scheduler running. What `tapwire
//! run`, `tapwire demo` and the tests start, the same way.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use crate::adapter::Adapter;
use crate::config::{Config, ConfigError, ConfigErrors, HandlerConfig};
use crate::event::{Event, now_rfc3339};
use crate::handler::Template;
use crate::handler::{Handler, Handlers};
use crate::permission::Until;
use crate::pipeline::Pipeline;
use crate::plugin::{self, PluginFault, PluginHost};
use crate::runtime::Runtime;
use crate::store::{Grant, Store, StoreError};
use crate::webhook::Webhook;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    #[error("plugins in {dir}:\n{errors}")]
    Plugins { dir: String, errors: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A running controller minus its phones (which `tapwire run` attaches).
pub struct App {
    pub runtime: Arc<Runtime>,
    pub plugins: PluginHost,
    stop: tokio::sync::watch::Sender<bool>,
}

impl App {
    /// Starts everything the config declares. `fallback` is the handler of the default
    /// route when the config has no routes (`tapwire run --handler`).
    pub async fn start(config: &Config, fallback: &str, store: Store) -> Result<App, AppError> {
        let plugins_dir = config.plugins_dir();
        let manifests = load_plugins(&plugins_dir)?;
        config.check_with_plugins(&manifests)?;
        let (faults_tx, faults_rx) = tokio::sync::mpsc::unbounded_channel();
        let plugins = PluginHost::start(manifests, faults_tx).await;

        let mut handlers = Handler::builtins();
        for (name, handler) in &config.handlers {
            let built = match handler {
                HandlerConfig::Pipeline(p) => Handler::Pipeline(Pipeline::new(name, p)),
                HandlerConfig::Webhook(w) => Handler::Webhook(
                    // Checked when the config was parsed; a failure here is a bug.
                    Webhook::new(name, w.clone())
                        .map_err(|e| unbuildable(format!("handler {name:?}: {e}")))?,
                ),
                HandlerConfig::Plugin(p) => Handler::Plugin {
                    plugin: p.plugin.clone(),
                },
                HandlerConfig::Forward(f) => Handler::Forward {
                    target: f.target.clone(),
                    conversation: f.conversation.clone(),
                    template: Template::parse(&f.template)
                        .map_err(|e| unbuildable(format!("handler {name:?}: {e}")))?,
                },
            };
            handlers.insert(name.clone(), built);
        }
        for grant in config.permissions.grants.iter().map(|g| g.get_ref()) {
            store
                .grant(&Grant {
                    user: grant.user.clone(),
                    scene: grant.scene.clone(),
                    command: grant.command.clone(),
                    expires_at: grant
                        .until
                        .as_deref()
                        .and_then(|u| Until::parse(u).ok())
                        .and_then(|u| u.expires_at()),
                    granted_by: "config".into(),
                })
                .await?;
        }
        let admins: HashSet<String> = config
            .permissions
            .admins
            .iter()
            .map(|a| a.get_ref().clone())
            .collect();
        let platforms = config
            .phones
            .iter()
            .map(|p| (p.serial.clone(), "wechat".to_string()))
            .chain(
                config
                    .adapters
                    .iter()
                    .map(|(name, a)| (name.clone(), a.platform().to_string())),
            )
            .collect();
        let mut adapters = Vec::new();
        for (name, adapter) in &config.adapters {
            let built = Adapter::build(adapter)
                .map_err(|e| unbuildable(format!("adapter {name:?}: {e}")))?;
            adapters.push((name.clone(), built));
        }
        let handlers = Arc::new(Handlers::new(
            handlers,
            store.clone(),
            plugins.clone(),
            admins,
            platforms,
        ));
        let timing = config
            .phones
            .iter()
            .map(|p| (p.serial.clone(), p.timing()))
            .collect();
        let runtime = Runtime::start(
            store,
            config.router(fallback),
            handlers,
            timing,
            config.queue.concurrency,
        );
        for (name, adapter) in adapters {
            runtime.start_adapter(&name, adapter);
        }

        let (stop, stopped) = tokio::sync::watch::channel(false);
        let schedules = config.build_schedules();
        if !schedules.is_empty() {
            let (fired_tx, mut fired_rx) = tokio::sync::mpsc::channel(64);
            let mut stopped = stopped.clone();
            let stop_signal = async move {
                let _ = stopped.changed().await;
            };
            tokio::spawn(crate::schedule::run(schedules, fired_tx, stop_signal));
            let rt = runtime.clone();
            tokio::spawn(async move {
                while let Some(event) = fired_rx.recv().await {
                    if let Err(error) = rt.accept(event).await {
                        tracing::error!(%error, "cannot store a schedule event");
                    }
                }
            });
        }
        tokio::spawn(report_faults(runtime.clone(), faults_rx));
        Ok(App {
            runtime,
            plugins,
            stop,
        })
    }

    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        self.plugins.shutdown().await;
    }
}

/// Parts of a config that passed its checks and still cannot be built: a bug, not a typo.
fn unbuildable(message: String) -> ConfigErrors {
    ConfigErrors(vec![ConfigError::Unbuildable(message)])
}

fn load_plugins(dir: &Path) -> Result<Vec<plugin::Manifest>, AppError> {
    plugin::load_dir(dir).map_err(|errors| AppError::Plugins {
        dir: dir.display().to_string(),
        errors: errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
    })
}

/// Every plugin fault becomes a `plugin.fault` event, so a route can tell an admin.
async fn report_faults(
    runtime: Arc<Runtime>,
    mut faults: tokio::sync::mpsc::UnboundedReceiver<PluginFault>,
) {
    while let Some(fault) = faults.recv().await {
        let key = format!("plugin:{}:{}:{:?}", fault.plugin, now_rfc3339(), fault.kind);
        let event = Event::notice(
            crate::event::types::PLUGIN_FAULT,
            "plugins",
            "tapwire",
            key,
            serde_json::json!({
                "plugin": fault.plugin,
                "fault": format!("{:?}", fault.kind),
            }),
        );
        if let Err(error) = runtime.accept(event).await {
            tracing::error!(%error, "cannot store a plugin fault event");
        }
    }
}
