//! `tapwire.toml`: storage, queue, plugins, phones, adapters, routes, handlers
//! (pipelines, webhooks, plugins, forwards), schedules and the permissions bootstrap. Secrets never live here; `${NAME}`
//! takes a value from the environment. Parsing reports every error it can find at once,
//! each with file, line and column, so a broken config is fixed in one round.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::adapter::AdapterConfig;
use crate::adapter::phone::PhoneConfig;
use crate::handler::{BUILTIN_HANDLERS, ConfigScope, HandlerConfig};
use crate::permission::Until;
use crate::plugin::Manifest;
use crate::queue::QueueConfig;
use crate::router::{self, Router};
use crate::schedule::{Schedule, ScheduleConfig, ScheduleError};
use crate::server::ServerConfig;
use crate::store::StorageConfig;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}:{line}:{column}: environment variable {name} is not set")]
    MissingEnv {
        path: PathBuf,
        line: usize,
        column: usize,
        name: String,
    },
    /// A config that passed its checks and still cannot be built (a bug, not a typo).
    #[error("{0}")]
    Unbuildable(String),
}

/// Every error found in one config, in file order.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Where it was read from and its text (after `${NAME}` expansion), so that checks
    /// made after parsing can still name a line.
    path: PathBuf,
    text: String,
    pub storage: StorageConfig,
    pub queue: QueueConfig,
    pub server: ServerConfig,
    pub plugins: PluginsConfig,
    pub phones: Vec<PhoneConfig>,
    /// Platforms other than phones, by the name actions use as their target.
    pub adapters: BTreeMap<String, AdapterConfig>,
    pub routes: Vec<Route>,
    pub handlers: BTreeMap<String, HandlerConfig>,
    pub schedules: Vec<ScheduleConfig>,
    pub permissions: PermissionsConfig,
    /// Where each handler and schedule was declared, for errors found later.
    handler_spans: HashMap<String, std::ops::Range<usize>>,
    adapter_spans: HashMap<String, std::ops::Range<usize>>,
    schedule_spans: Vec<std::ops::Range<usize>>,
    /// Where each key of a schedule and of a handler stands, so an error about a value
    /// points at its line rather than at its table's header.
    schedule_keys: Vec<KeyOffsets>,
    handler_keys: HashMap<String, KeyOffsets>,
    phone_spans: Vec<std::ops::Range<usize>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsConfig {
    /// External plugins, one directory each; relative to the config file.
    #[serde(default = "default_plugins_dir")]
    pub dir: PathBuf,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        PluginsConfig {
            dir: default_plugins_dir(),
        }
    }
}

fn default_plugins_dir() -> PathBuf {
    PathBuf::from("plugins")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Names the route in logs; defaults to `route-N`. Must be unique.
    pub id: Option<Spanned<String>>,
    /// `message.received`, `message.*` or `*`.
    pub event: Spanned<String>,
    /// A `[handlers.NAME]`, or a built-in: `echo`, `help`.
    pub handler: Spanned<String>,
    /// Only events from this phone or adapter.
    pub source: Option<String>,
    /// Only events in this conversation (its id or title).
    pub conversation: Option<String>,
    #[serde(default)]
    pub priority: i32,
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Let later routes handle the event too.
    #[serde(default, rename = "continue")]
    pub continue_: bool,
}

fn enabled() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PermissionsConfig {
    /// Users who may grant, revoke and use everything: `<platform>:<sender id>`.
    #[serde(default)]
    pub admins: Vec<Spanned<String>>,
    /// Grants made at every start (again, so the file stays the source of truth for them).
    #[serde(default)]
    pub grants: Vec<Spanned<GrantConfig>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantConfig {
    pub user: String,
    pub scene: String,
    #[serde(default)]
    pub command: String,
    pub until: Option<String>,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            ConfigErrors(vec![ConfigError::Io {
                path: path.to_path_buf(),
                source,
            }])
        })?;
        Config::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
        let mut errors = Vec::new();
        let expanded = expand_env(text, path, |name| std::env::var(name).ok(), &mut errors);
        let mut config = Config {
            path: path.to_path_buf(),
            text: expanded.clone(),
            ..Config::default()
        };
        let (root, syntax) = DeTable::parse_recoverable(&expanded);
        for error in syntax {
            errors.push(config.toml_error(&error));
        }
        for (key, value) in root.get_ref().iter() {
            match key.get_ref().as_ref() {
                "storage" => {
                    if let Some(v) = config.typed(value, "sqlite", &mut errors) {
                        config.storage = v;
                    }
                }
                "queue" => {
                    if let Some(v) = config.typed(value, "local", &mut errors) {
                        config.queue = v;
                    }
                }
                "server" => {
                    if let Some(v) = config.one(value, &mut errors) {
                        config.server = v;
                    }
                }
                "plugins" => {
                    if let Some(v) = config.one(value, &mut errors) {
                        config.plugins = v;
                    }
                }
                "permissions" => {
                    if let Some(v) = config.one(value, &mut errors) {
                        config.permissions = v;
                    }
                }
                "phones" => {
                    for (phone, span, _) in config.each(value, &mut errors) {
                        config.phones.push(phone);
                        config.phone_spans.push(span);
                    }
                }
                "routes" => config.routes = config.each(value, &mut errors).into_iter().map(|(v, _, _)| v).collect(),
                "schedules" => {
                    for (schedule, span, keys) in config.each(value, &mut errors) {
                        config.schedules.push(schedule);
                        config.schedule_spans.push(span);
                        config.schedule_keys.push(keys);
                    }
                }
                "adapters" => {
                    for (name, span, adapter) in config.named(value, "adapters", &mut errors) {
                        config.adapter_spans.insert(name.clone(), span);
                        if let Some(adapter) = adapter {
                            config.adapters.insert(name, adapter);
                        }
                    }
                }
                "handlers" => {
                    if let DeValue::Table(table) = value.get_ref() {
                        for (name, item) in table.iter() {
                            config
                                .handler_keys
                                .insert(name.get_ref().to_string(), key_offsets(item));
                        }
                    }
                    for (name, span, handler) in config.named(value, "handlers", &mut errors) {
                        config.handler_spans.insert(name.clone(), span);
                        if let Some(handler) = handler {
                            config.handlers.insert(name, handler);
                        }
                    }
                }
                other => errors.push(config.invalid_at(
                    key.span().start,
                    format!("unknown section `{other}`; expected storage, queue, server, plugins, phones, adapters, routes, handlers, schedules or permissions"),
                )),
            }
        }
        config.check_references(&mut errors);
        if errors.is_empty() {
            Ok(config)
        } else {
            errors.sort_by_key(|e| match e {
                ConfigError::Invalid { line, column, .. }
                | ConfigError::MissingEnv { line, column, .. } => (*line, *column),
                _ => (usize::MAX, 0),
            });
            Err(ConfigErrors(errors))
        }
    }

    /// Checks a loaded config against the plugins it will run with: every error at once.
    pub fn check_with_plugins(&self, manifests: &[Manifest]) -> Result<(), ConfigErrors> {
        let mut errors = Vec::new();
        let plugins: HashSet<&str> = manifests.iter().map(|m| m.name.as_str()).collect();
        for (name, handler) in &self.handlers {
            let at = self.handler_spans.get(name).map_or(0, |s| s.start);
            match handler {
                HandlerConfig::Pipeline(p) => {
                    for scene in p.scenes.iter().flatten() {
                        if !plugins.contains(scene.as_str()) {
                            errors.push(self.invalid_at(at, format!("handler {name:?}: no plugin named {scene:?} in the plugins directory")));
                        }
                    }
                }
                HandlerConfig::Plugin(p) => {
                    if !plugins.contains(p.plugin.as_str()) {
                        errors.push(self.invalid_at(
                            at,
                            format!(
                                "handler {name:?}: no plugin named {:?} in the plugins directory",
                                p.plugin
                            ),
                        ));
                    }
                }
                HandlerConfig::Webhook(_)
                | HandlerConfig::Forward(_)
                | HandlerConfig::Pieces(_)
                | HandlerConfig::Llm(_)
                | HandlerConfig::Digest(_) => {}
            }
        }
        for grant in &self.permissions.grants {
            let (at, grant) = (grant.span().start, grant.get_ref());
            // `llm` (the LLM handlers' tools) and `digest` are scenes of built-in handlers.
            if grant.scene != "*"
                && grant.scene != crate::handler::llm::TOOL_SCENE
                && grant.scene != crate::handler::digest::SCENE
                && !plugins.contains(grant.scene.as_str())
            {
                errors.push(self.invalid_at(
                    at,
                    format!(
                        "grant for {}: no plugin named {:?} in the plugins directory",
                        grant.user, grant.scene
                    ),
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// Whether actions can be sent to `target`: a declared phone or adapter.
    pub fn is_target(&self, target: &str) -> bool {
        self.phones.iter().any(|p| p.serial == target) || self.adapters.contains_key(target)
    }

    /// The plugins directory, relative to the config file.
    pub fn plugins_dir(&self) -> PathBuf {
        if self.plugins.dir.is_absolute() || self.path.as_os_str().is_empty() {
            return self.plugins.dir.clone();
        }
        self.path
            .parent()
            .unwrap_or(Path::new("."))
            .join(&self.plugins.dir)
    }

    /// The schedules, built (their expressions were checked at parse time).
    pub fn build_schedules(&self) -> Vec<Schedule> {
        self.schedules
            .iter()
            .filter(|s| s.enabled)
            .filter_map(|s| Schedule::new(s.clone()).ok())
            .collect()
    }

    fn check_references(&self, errors: &mut Vec<ConfigError>) {
        for (name, handler) in &self.handlers {
            let at = self.handler_spans.get(name).map_or(0, |s| s.start);
            let key = |key: &str| {
                self.handler_keys
                    .get(name)
                    .and_then(|keys| keys.get(key))
                    .copied()
                    .unwrap_or(at)
            };
            if BUILTIN_HANDLERS.contains(&name.as_str()) {
                errors.push(self.invalid_at(
                    at,
                    format!("handler name {name:?} is built in; choose another name"),
                ));
            }
            if let HandlerConfig::Digest(digest) = handler
                && self
                    .handlers
                    .get(&digest.llm)
                    .is_some_and(|h| !matches!(h, HandlerConfig::Llm(_)))
            {
                errors.push(self.invalid_at(
                    key("llm"),
                    format!(
                        "handler {name:?}: llm {:?} must be a handler of type \"llm\"",
                        digest.llm
                    ),
                ));
            }
            for problem in handler.check(name, self) {
                let offset = problem.key.map_or(at, key);
                errors.push(
                    self.invalid_at(offset, format!("handler {name:?}: {}", problem.message)),
                );
            }
        }
        for (name, adapter) in &self.adapters {
            let at = self.adapter_spans.get(name).map_or(0, |s| s.start);
            if self.phones.iter().any(|p| &p.serial == name) {
                errors.push(self.invalid_at(
                    at,
                    format!("adapter {name:?} has a phone's serial as its name; actions could not tell them apart"),
                ));
            }
            if name == crate::subscription::TARGET {
                errors.push(self.invalid_at(
                    at,
                    format!("adapter name {name:?} is reserved for outbound subscriptions; choose another name"),
                ));
            }
            if let Err(error) = adapter.check() {
                errors.push(self.invalid_at(at, format!("adapter {name:?}: {error}")));
            }
        }
        if let Some(cycle) = self.handler_cycle() {
            let at = self.handler_spans.get(&cycle[0]).map_or(0, |s| s.start);
            errors.push(self.invalid_at(
                at,
                format!(
                    "handlers hand events to each other in a loop: {}",
                    cycle.join(" → ")
                ),
            ));
        }
        let mut ids = HashSet::new();
        for route in &self.routes {
            if let Some(id) = &route.id
                && !ids.insert(id.get_ref().clone())
            {
                errors.push(self.invalid_at(
                    id.span().start,
                    format!("duplicate route id {:?}", id.get_ref()),
                ));
            }
            if let Err(message) = router::Pattern::parse(route.event.get_ref()) {
                errors.push(self.invalid_at(route.event.span().start, message));
            }
            if !self.handler_exists(route.handler.get_ref()) {
                errors.push(self.invalid_at(
                    route.handler.span().start,
                    format!(
                        "unknown handler {:?}: declare [handlers.{}] or use echo or help",
                        route.handler.get_ref(),
                        route.handler.get_ref()
                    ),
                ));
            }
        }
        let mut schedule_ids = HashSet::new();
        let no_keys = KeyOffsets::new();
        for (index, (schedule, span)) in self.schedules.iter().zip(&self.schedule_spans).enumerate()
        {
            let keys = self.schedule_keys.get(index).unwrap_or(&no_keys);
            let key = |key: &str| keys.get(key).copied().unwrap_or(span.start);
            if !schedule_ids.insert(schedule.id.clone()) {
                errors.push(self.invalid_at(
                    span.start,
                    format!("duplicate schedule id {:?}", schedule.id),
                ));
            }
            if let Err(error) = Schedule::new(schedule.clone()) {
                let at = match error {
                    ScheduleError::Cron { .. } => key("cron"),
                    ScheduleError::TimeZone(_) => key("timezone"),
                    ScheduleError::EmptyId => key("id"),
                };
                errors.push(self.invalid_at(at, format!("schedule {:?}: {error}", schedule.id)));
            }
            if let Some(target) = &schedule.target
                && !self.is_target(target)
            {
                errors.push(self.invalid_at(
                    key("target"),
                    format!(
                        "schedule {:?}: target {target:?} is neither a phone nor an adapter",
                        schedule.id
                    ),
                ));
            }
        }
        let mut serials = HashSet::new();
        for (phone, span) in self.phones.iter().zip(&self.phone_spans) {
            if !serials.insert(phone.serial.clone()) {
                errors.push(self.invalid_at(
                    span.start,
                    format!("phone {:?} is declared twice", phone.serial),
                ));
            }
            if let Err(error) = phone.pacing.check() {
                errors.push(
                    self.invalid_at(span.start, format!("phone {:?}: {error}", phone.serial)),
                );
            }
        }
        for admin in &self.permissions.admins {
            if !admin.get_ref().contains(':') {
                let name = admin.get_ref();
                errors.push(self.invalid_at(
                    admin.span().start,
                    format!("admin {name:?} needs its platform, e.g. \"wechat:{name}\""),
                ));
            }
        }
        for grant in &self.permissions.grants {
            let (at, grant) = (grant.span().start, grant.get_ref());
            if let Some(until) = &grant.until
                && let Err(message) = Until::parse(until)
            {
                errors.push(self.invalid_at(at, format!("grant for {}: {message}", grant.user)));
            }
            if crate::plugin::RESERVED_SCENES.contains(&grant.scene.as_str()) {
                errors.push(self.invalid_at(
                    at,
                    format!("grant for {}: {:?} is not a scene", grant.user, grant.scene),
                ));
            }
        }
    }

    /// A loop of pipelines handing events to each other (prefix or fallback), if any.
    fn handler_cycle(&self) -> Option<Vec<String>> {
        let next = |name: &str| -> Vec<String> {
            match self.handlers.get(name) {
                Some(HandlerConfig::Pipeline(p)) => p
                    .prefixes
                    .iter()
                    .map(|x| x.handler.clone())
                    .chain(p.fallback.clone().filter(|f| f != "echo"))
                    .collect(),
                _ => Vec::new(),
            }
        };
        fn visit(
            name: &str,
            next: &dyn Fn(&str) -> Vec<String>,
            path: &mut Vec<String>,
            done: &mut HashSet<String>,
        ) -> Option<Vec<String>> {
            if let Some(at) = path.iter().position(|p| p == name) {
                let mut cycle = path[at..].to_vec();
                cycle.push(name.to_string());
                return Some(cycle);
            }
            if !done.insert(name.to_string()) {
                return None;
            }
            path.push(name.to_string());
            for n in next(name) {
                if let Some(cycle) = visit(&n, next, path, done) {
                    return Some(cycle);
                }
            }
            path.pop();
            None
        }
        let mut done = HashSet::new();
        for name in self.handlers.keys() {
            if let Some(cycle) = visit(name, &next, &mut Vec::new(), &mut done) {
                return Some(cycle);
            }
        }
        None
    }

    /// The router the `[[routes]]` describe, or, without any, `message.received` to
    /// `fallback` (what `tapwire run --handler` chose).
    pub fn router(&self, fallback: &str) -> Router {
        if self.routes.is_empty() {
            return Router::new(vec![router::Route {
                id: "default".into(),
                pattern: router::Pattern::Exact("message.received".into()),
                source: None,
                conversation: None,
                priority: 0,
                enabled: true,
                continue_: false,
                handler: fallback.to_string(),
            }]);
        }
        let routes = self
            .routes
            .iter()
            .enumerate()
            .filter_map(|(index, route)| {
                Some(router::Route {
                    id: route
                        .id
                        .as_ref()
                        .map_or_else(|| format!("route-{}", index + 1), |id| id.get_ref().clone()),
                    // Checked when the config was parsed.
                    pattern: router::Pattern::parse(route.event.get_ref()).ok()?,
                    source: route.source.clone(),
                    conversation: route.conversation.clone(),
                    priority: route.priority,
                    enabled: route.enabled,
                    continue_: route.continue_,
                    handler: route.handler.get_ref().clone(),
                })
            })
            .collect();
        Router::new(routes)
    }

    /// A component's section whose `type` picks the implementation; without one, it is
    /// `default` (`[storage]` with only a path is SQLite's).
    fn typed<T: DeserializeOwned>(
        &self,
        value: &Spanned<DeValue<'_>>,
        default: &'static str,
        errors: &mut Vec<ConfigError>,
    ) -> Option<T> {
        let mut value = value.clone();
        let span = value.span();
        if let DeValue::Table(table) = value.get_mut()
            && !table.keys().any(|key| key.get_ref() == "type")
        {
            table.insert(
                Spanned::new(span.clone(), "type".into()),
                Spanned::new(span, DeValue::String(default.into())),
            );
        }
        self.one(&value, errors)
    }

    fn one<T: DeserializeOwned>(
        &self,
        value: &Spanned<DeValue<'_>>,
        errors: &mut Vec<ConfigError>,
    ) -> Option<T> {
        T::deserialize(ValueDeserializer::from(value.clone()))
            .map_err(|e| errors.push(self.toml_error_or(&e, value.span().start)))
            .ok()
    }

    /// `[SECTION.NAME]` tables, each on its own: its name, where the name stands, and its
    /// value if that deserialized (otherwise the error is in `errors`).
    fn named<T: DeserializeOwned>(
        &self,
        value: &Spanned<DeValue<'_>>,
        section: &str,
        errors: &mut Vec<ConfigError>,
    ) -> Vec<(String, std::ops::Range<usize>, Option<T>)> {
        let DeValue::Table(table) = value.get_ref() else {
            errors.push(self.invalid_at(
                value.span().start,
                format!("{section} must be a table: [{section}.NAME]"),
            ));
            return Vec::new();
        };
        table
            .iter()
            .map(|(name, item)| {
                (
                    name.get_ref().to_string(),
                    name.span(),
                    self.one(item, errors),
                )
            })
            .collect()
    }

    /// Each element of an array of tables on its own, so one bad `[[routes]]` does not
    /// hide the next one's errors. Keeps each element's span and where its keys stand.
    fn each<T: DeserializeOwned>(
        &self,
        value: &Spanned<DeValue<'_>>,
        errors: &mut Vec<ConfigError>,
    ) -> Vec<(T, std::ops::Range<usize>, KeyOffsets)> {
        let DeValue::Array(items) = value.get_ref() else {
            errors.push(self.invalid_at(
                value.span().start,
                "expected an array of tables, e.g. [[routes]]".into(),
            ));
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|item| {
                self.one(item, errors)
                    .map(|v| (v, item.span(), key_offsets(item)))
            })
            .collect()
    }

    fn toml_error(&self, error: &toml::de::Error) -> ConfigError {
        self.toml_error_or(error, 0)
    }

    fn toml_error_or(&self, error: &toml::de::Error, fallback: usize) -> ConfigError {
        let at = error.span().map_or(fallback, |s| s.start);
        self.invalid_at(at, error.message().trim().to_string())
    }

    fn invalid_at(&self, offset: usize, message: String) -> ConfigError {
        let (line, column) = line_col(&self.text, offset);
        ConfigError::Invalid {
            path: self.path.clone(),
            line,
            column,
            message,
        }
    }
}

/// Where each key of a table starts, by name.
type KeyOffsets = HashMap<String, usize>;

fn key_offsets(table: &Spanned<DeValue<'_>>) -> KeyOffsets {
    match table.get_ref() {
        DeValue::Table(table) => table
            .iter()
            .map(|(key, _)| (key.get_ref().to_string(), key.span().start))
            .collect(),
        _ => KeyOffsets::new(),
    }
}

/// Replaces `${NAME}` with the variable's value, outside comments. A missing variable is
/// an error naming it, never an empty string.
fn expand_env(
    text: &str,
    path: &Path,
    lookup: impl Fn(&str) -> Option<String>,
    errors: &mut Vec<ConfigError>,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let code_end = comment_start(line).unwrap_or(line.len());
        let (code, comment) = line.split_at(code_end);
        let mut rest = code;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[start..]);
                rest = "";
                break;
            };
            let name = &after[..end];
            match lookup(name) {
                Some(value) => out.push_str(&value),
                None => {
                    // Left as written, so later checks see a placeholder, not a value.
                    out.push_str(&rest[start..start + 2 + end + 1]);
                    let at = offset + (code.len() - rest.len()) + start;
                    let (line, column) = line_col(text, at);
                    errors.push(ConfigError::MissingEnv {
                        path: path.to_path_buf(),
                        line,
                        column,
                        name: name.to_string(),
                    });
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out.push_str(comment);
        offset += line.len();
    }
    out
}

/// Where a TOML comment starts on a line: the first `#` outside a string.
fn comment_start(line: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c == '#' => return Some(i),
            None if c == '"' || c == '\'' => quote = Some(c),
            None => {}
        }
    }
    None
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl ConfigScope for Config {
    fn handler_exists(&self, name: &str) -> bool {
        BUILTIN_HANDLERS.contains(&name) || self.handlers.contains_key(name)
    }

    fn is_target(&self, name: &str) -> bool {
        Config::is_target(self, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("t.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_every_section() {
        let config = parse(
            r##"
[storage]
path = "x.db"
[queue]
concurrency = 4
[plugins]
dir = "my-plugins"
[[phones]]
serial = "127.0.0.1:5555"
adb_server = "127.0.0.1:5037"
ack_after_ms = 3000
[[routes]]
event = "message.received"
handler = "main"
[handlers.main]
type = "pipeline"
fallback = "llm"
rate_limit = { messages = 10, per_seconds = 60 }
prefixes = [{ prefix = "#", handler = "llm", help = "ask" }]
[handlers.llm]
type = "webhook"
url = "http://127.0.0.1:9/llm"
[handlers.duty]
type = "plugin"
plugin = "roster"
[[schedules]]
id = "duty"
cron = "0 9 * * 1-5"
timezone = "Asia/Shanghai"
[permissions]
admins = ["wechat:张伟"]
grants = [{ user = "wechat:李娜", scene = "roster", until = "2026-12-31" }]
"##,
        )
        .expect("valid");
        assert_eq!(config.phones[0].serial, "127.0.0.1:5555");
        assert_eq!(config.phones[0].timing().ack_after_ms, 3000);
        assert_eq!(
            config.queue,
            QueueConfig::Local(crate::queue::local::LocalConfig { concurrency: 4 })
        );
        assert_eq!(
            config.storage,
            StorageConfig::Sqlite(crate::store::sqlite::SqliteConfig {
                path: "x.db".into()
            })
        );
        assert_eq!(config.plugins_dir(), Path::new("my-plugins"));
        assert_eq!(config.handlers.len(), 3);
        assert_eq!(config.router("echo").route_count(), 1);
        assert_eq!(config.build_schedules().len(), 1);
    }

    #[test]
    fn every_error_is_reported_with_its_line() {
        let err = parse(
            r#"[[phones]]
serial = "a"
bogus = 1
[[routes]]
id = "r"
event = "message"
handler = "nobody"
[[routes]]
id = "r"
event = "*"
handler = "echo"
[[schedules]]
id = "s"
cron = "61 * * * *"
[handlers.hook]
type = "webhook"
url = "${TAPWIRE_TEST_SURELY_UNSET}"
"#,
        )
        .unwrap_err();
        let lines: Vec<&str> = err.lines().collect();
        assert!(
            lines[0].starts_with("t.toml:3:1:") && lines[0].contains("bogus"),
            "{err}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("t.toml:6:9:") && l.contains("bad event pattern")),
            "{err}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("t.toml:7:11:") && l.contains("unknown handler \"nobody\"")),
            "{err}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("t.toml:9:") && l.contains("duplicate route id")),
            "{err}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("t.toml:14:1:") && l.contains("schedule \"s\"")),
            "{err}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("t.toml:17:8:") && l.contains("TAPWIRE_TEST_SURELY_UNSET")),
            "{err}"
        );
    }

    #[test]
    fn handler_loops_and_unknown_references_are_named() {
        let err = parse(
            "[handlers.a]\ntype = \"pipeline\"\nfallback = \"b\"\n[handlers.b]\ntype = \"pipeline\"\nprefixes = [{ prefix = \"#\", handler = \"a\" }]\n",
        )
        .unwrap_err();
        assert!(err.contains("in a loop: a → b → a"), "{err}");
        let err = parse("[handlers.a]\ntype = \"pipeline\"\nfallback = \"ghost\"\n").unwrap_err();
        assert!(
            err.starts_with("t.toml:3:1:") && err.contains("fallback \"ghost\""),
            "{err}"
        );
        let err = parse("[handlers.a]\ntype = \"carrier-pigeon\"\n").unwrap_err();
        assert!(
            err.starts_with("t.toml:") && err.contains("carrier-pigeon"),
            "{err}"
        );
        let err = parse("[nonsense]\nx = 1\n").unwrap_err();
        assert!(
            err.starts_with("t.toml:1:2:") && err.contains("unknown section"),
            "{err}"
        );
    }

    #[test]
    fn missing_env_vars_are_all_named() {
        let mut errors = Vec::new();
        let out = expand_env(
            "a = \"${NOPE_X}\"\nb = \"${NOPE_Y}\"\n# ${NOT_IN_COMMENTS}\n",
            Path::new("t.toml"),
            |_| None,
            &mut errors,
        );
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            vec![
                "t.toml:1:6: environment variable NOPE_X is not set",
                "t.toml:2:6: environment variable NOPE_Y is not set"
            ]
        );
        assert!(out.contains("# ${NOT_IN_COMMENTS}"));
        let mut errors = Vec::new();
        let ok = expand_env(
            "b = \"${X}\"",
            Path::new("t.toml"),
            |_| Some("v".into()),
            &mut errors,
        );
        assert_eq!(ok, "b = \"v\"");
        assert!(errors.is_empty());
    }
}
