//! Wiring a running controller from its config: plugins started, handlers built, the
//! permissions bootstrap stored, adapters (phones and platforms) started, unfinished
//! work resumed, the scheduler and the HTTP server running. What `tapwire run`,
//! `tapwire demo` and the tests start, the same way.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use crate::adapter::{self, Adapter, AdapterConfig, AdapterError, Inbox};
use crate::config::{Config, ConfigError, ConfigErrors};
use crate::event::{Event, now_rfc3339};
use crate::handler::{self, Handlers};
use crate::permission::{Grant, Until};
use crate::plugin::{self, PluginFault, PluginHost};
use crate::runtime::Runtime;
use crate::store::{SharedStore, StorageConfig, StoreError};
use crate::subscription::sender::SubscriptionSender;
use crate::subscription::{SubscriptionKey, Subscriptions};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    #[error("plugins in {dir}:\n{errors}")]
    Plugins { dir: String, errors: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Adapter(#[from] AdapterError),
    #[error("nothing could be started:\n{0}")]
    NothingStarted(String),
}

/// A running controller.
pub struct App {
    pub runtime: Arc<Runtime>,
    pub plugins: PluginHost,
    stop: tokio::sync::watch::Sender<bool>,
}

impl App {
    /// Starts everything the config declares, and `phones` beside its adapters (a
    /// phone may also come from the command line). `fallback` is the handler of the
    /// default route when the config has no routes (`tapwire run --handler`).
    pub async fn start(
        config: &Config,
        fallback: &str,
        store: SharedStore,
        phones: Vec<Arc<dyn Adapter>>,
    ) -> Result<App, AppError> {
        let plugins_dir = config.plugins_dir();
        let manifests = load_plugins(&plugins_dir)?;
        config.check_with_plugins(&manifests)?;
        let (faults_tx, faults_rx) = tokio::sync::mpsc::unbounded_channel();
        let plugins = PluginHost::start(manifests, faults_tx).await;

        let mut adapters = phones;
        for (name, section) in &config.adapters {
            let section = with_default_media_dir(section, config);
            adapters.push(
                adapter::build(name, &section)
                    .map_err(|e| unbuildable(format!("adapter {name:?}: {e}")))?,
            );
        }
        let mut handlers = handler::builtins();
        for (name, section) in &config.handlers {
            let built = handler::build(name, section)
                .map_err(|e| unbuildable(format!("handler {name:?}: {e}")))?;
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
        let formats: HashMap<_, _> = adapters
            .iter()
            .map(|a| (a.name().to_string(), a.text_format()))
            .collect();
        let handlers = Arc::new(Handlers::new(
            handlers,
            store.clone(),
            plugins.clone(),
            admins,
            formats,
        ));
        let runtime = Runtime::start(
            store.clone(),
            config.router(fallback),
            handlers,
            &config.queue,
        );
        start_subscriptions(&runtime, store, &config.server.api.subscription_key_env).await?;
        // A phone that cannot be driven (hidden tree, TalkBack, unplugged) must not keep
        // the others and the platforms from running; it is said why, and `run` goes on.
        let mut refused = Vec::new();
        let count = adapters.len();
        for adapter in adapters {
            let name = adapter.name().to_string();
            if let Err(error) = runtime.start_adapter(adapter).await {
                tracing::error!(adapter = %name, "{error}");
                refused.push(error);
            }
        }
        if count > 0 && refused.len() == count {
            return Err(AppError::NothingStarted(
                refused
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n"),
            ));
        }
        runtime.recover().await?;

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

    /// True once an adapter's own work ended by itself (a phone's actor gave up).
    pub fn adapter_finished(&self) -> bool {
        self.runtime.adapters().iter().any(|a| a.finished())
    }

    /// Stops the schedules, the adapters and the plugins; the errors are the adapters
    /// that had stopped on a fault.
    pub async fn shutdown(&self) -> Vec<AdapterError> {
        let _ = self.stop.send(true);
        let mut errors = Vec::new();
        for adapter in self.runtime.adapters() {
            if let Err(error) = adapter.stop().await {
                errors.push(error);
            }
        }
        self.plugins.shutdown().await;
        errors
    }
}

/// Outbound subscriptions, when the environment holds their signing key: loaded, their
/// sender connected before anything stored is resumed, so deliveries a crash left open
/// go out. Without the key, stored ones wait (said once) and none can be made.
async fn start_subscriptions(
    runtime: &Arc<Runtime>,
    store: SharedStore,
    key_env: &str,
) -> Result<(), AppError> {
    let Some(key) = SubscriptionKey::from_env(key_env) else {
        let waiting = store.subscriptions().await?.len();
        if waiting > 0 {
            tracing::warn!(env = %key_env, subscriptions = waiting, "outbound subscriptions paused: their signing key is not in the environment");
        } else {
            tracing::info!(env = %key_env, "outbound subscriptions off: no signing key in the environment");
        }
        return Ok(());
    };
    let subscriptions = Arc::new(Subscriptions::load(store, key).await?);
    let sender = SubscriptionSender::new(subscriptions.clone())
        .map_err(|e| unbuildable(format!("subscriptions: {e}")))?;
    runtime.set_subscriptions(subscriptions);
    runtime.start_adapter(Arc::new(sender)).await?;
    Ok(())
}

/// A section that downloads media and was told nowhere to put it keeps it in `media/`
/// beside the database, with the rest of the controller's data.
fn with_default_media_dir(section: &AdapterConfig, config: &Config) -> AdapterConfig {
    let mut section = section.clone();
    if let AdapterConfig::WecomApp(app) = &mut section
        && app.media_dir.is_none()
    {
        let StorageConfig::Sqlite(sqlite) = &config.storage;
        let data_dir = sqlite.path.parent().unwrap_or(Path::new(""));
        app.media_dir = Some(data_dir.join("media"));
    }
    section
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
