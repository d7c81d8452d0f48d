//! `plugin.toml`: what a plugin is called, how to start it, which commands and events it
//! answers. Loading reports every problem in every manifest at once, each with
//! `path:line:column`, so one `tapwire config check` run shows all of them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::PluginError;
use crate::router::Pattern;

/// Per-request timeout when the manifest names none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(5000);

/// Scene names the built-in commands own; a plugin taking one would shadow them.
/// The words that are not scenes: they belong to the controller's own commands.
pub const RESERVED_SCENES: &[&str] = &["help", "grant", "revoke", "perms"];

const MANIFEST_FILE: &str = "plugin.toml";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The scene name users type first: `roster who`.
    pub name: String,
    pub description: String,
    /// The plugin's directory, absolute; the process runs in it.
    pub dir: PathBuf,
    /// argv. A program given as a path (or naming a file in `dir`) is made absolute
    /// against `dir`; a bare name is looked up on `PATH`.
    pub exec: Vec<String>,
    /// Event-type patterns it wants besides its commands: exact, `ns.*` or `*`.
    pub events: Vec<String>,
    pub timeout: Duration,
    pub commands: Vec<CommandSpec>,
    /// Environment variables passed through to the process, besides the basic ones
    /// (`PATH`, `HOME`, locale, time zone): the plugin's secrets. Nothing else of the
    /// controller's environment (other adapters' tokens) reaches it.
    pub env: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    pub name: String,
    pub usage: String,
    pub help: String,
    /// Usable without a permission grant.
    pub public: bool,
}

impl Manifest {
    /// Whether an event of this type goes to the plugin (commands aside).
    pub fn wants(&self, event_type: &str) -> bool {
        self.events
            .iter()
            .any(|p| Pattern::parse(p).is_ok_and(|p| p.matches(event_type)))
    }

    pub fn command(&self, name: &str) -> Option<&CommandSpec> {
        self.commands.iter().find(|c| c.name == name)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    exec: Spanned<Vec<String>>,
    #[serde(default)]
    events: Vec<Spanned<String>>,
    timeout_ms: Option<Spanned<u64>>,
    #[serde(default)]
    commands: Vec<RawCommand>,
    #[serde(default)]
    env: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommand {
    name: Spanned<String>,
    usage: Option<String>,
    #[serde(default)]
    help: String,
    #[serde(default)]
    public: bool,
}

/// Loads `dir/*/plugin.toml`, sorted by plugin name. Subdirectories without a manifest
/// (and hidden ones) are skipped; a missing `dir` means no plugins.
pub fn load_dir(dir: &Path) -> Result<Vec<Manifest>, Vec<PluginError>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(vec![PluginError::Io {
                path: dir.to_path_buf(),
                source,
            }]);
        }
    };
    let mut errors = Vec::new();
    let mut plugin_dirs = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => {
                let path = entry.path();
                let hidden = entry.file_name().to_string_lossy().starts_with('.');
                if !hidden && path.join(MANIFEST_FILE).is_file() {
                    plugin_dirs.push(path);
                }
            }
            Err(source) => errors.push(PluginError::Io {
                path: dir.to_path_buf(),
                source,
            }),
        }
    }
    // Directory order decides which of two same-named plugins is the duplicate, so it
    // must not depend on the filesystem.
    plugin_dirs.sort();

    let mut manifests = Vec::new();
    let mut first_seen: HashMap<String, PathBuf> = HashMap::new();
    for plugin_dir in plugin_dirs {
        let path = plugin_dir.join(MANIFEST_FILE);
        match load_one(&plugin_dir, &path) {
            Ok((manifest, name_offset, text)) => {
                if let Some(other) = first_seen.get(&manifest.name) {
                    errors.push(invalid(
                        &path,
                        &text,
                        name_offset,
                        format!(
                            "duplicate plugin name {:?} (also in {})",
                            manifest.name,
                            other.display()
                        ),
                    ));
                    continue;
                }
                first_seen.insert(manifest.name.clone(), path);
                manifests.push(manifest);
            }
            Err(mut file_errors) => errors.append(&mut file_errors),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    manifests.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(manifests)
}

/// One manifest, with the offset of its `name` (for a duplicate found later) and its text.
fn load_one(plugin_dir: &Path, path: &Path) -> Result<(Manifest, usize, String), Vec<PluginError>> {
    let io = |source| {
        vec![PluginError::Io {
            path: path.to_path_buf(),
            source,
        }]
    };
    let text = std::fs::read_to_string(path).map_err(io)?;
    let raw: RawManifest = toml::from_str(&text).map_err(|e| {
        let offset = e.span().map_or(0, |span| span.start);
        vec![invalid(path, &text, offset, e.message().to_string())]
    })?;
    let dir = plugin_dir.canonicalize().map_err(io)?;

    let mut errors = Vec::new();
    let mut problem = |offset: usize, message: String| {
        errors.push(invalid(path, &text, offset, message));
    };

    let name = raw.name.get_ref();
    if RESERVED_SCENES.contains(&name.as_str()) {
        problem(
            raw.name.span().start,
            format!("plugin name {name:?} is reserved for a built-in command"),
        );
    } else if !is_word(name) {
        problem(
            raw.name.span().start,
            format!("plugin name {name:?} must be one lowercase word: [a-z][a-z0-9_-]*"),
        );
    }

    let mut exec = raw.exec.get_ref().clone();
    match exec.first_mut() {
        None => problem(
            raw.exec.span().start,
            "exec is empty: name a program".into(),
        ),
        Some(program) if program.is_empty() => {
            problem(raw.exec.span().start, "exec names an empty program".into())
        }
        Some(program) => match resolve_program(&dir, program) {
            Ok(resolved) => *program = resolved,
            Err(message) => problem(raw.exec.span().start, message),
        },
    }

    for pattern in &raw.events {
        if let Err(message) = Pattern::parse(pattern.get_ref()) {
            problem(pattern.span().start, message);
        }
    }

    let timeout = match &raw.timeout_ms {
        Some(ms) if *ms.get_ref() == 0 => {
            problem(ms.span().start, "timeout_ms must be more than 0".into());
            DEFAULT_TIMEOUT
        }
        Some(ms) => Duration::from_millis(*ms.get_ref()),
        None => DEFAULT_TIMEOUT,
    };

    let mut commands: Vec<CommandSpec> = Vec::new();
    for command in raw.commands {
        let command_name = command.name.get_ref();
        if !is_word(command_name) {
            problem(
                command.name.span().start,
                format!(
                    "command name {command_name:?} must be one lowercase word: [a-z][a-z0-9_-]*"
                ),
            );
        }
        if commands.iter().any(|c| &c.name == command_name) {
            problem(
                command.name.span().start,
                format!("duplicate command {command_name:?} in plugin {name:?}"),
            );
            continue;
        }
        commands.push(CommandSpec {
            usage: command
                .usage
                .unwrap_or_else(|| format!("{name} {command_name}")),
            name: command_name.clone(),
            help: command.help,
            public: command.public,
        });
    }

    for variable in &raw.env {
        let variable_name = variable.get_ref();
        let valid = variable_name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && variable_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            problem(
                variable.span().start,
                format!("{variable_name:?} is not an environment variable name"),
            );
        } else if std::env::var_os(variable_name).is_none() {
            problem(
                variable.span().start,
                format!(
                    "plugin {name:?} needs environment variable {variable_name}, which is not set"
                ),
            );
        }
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    let manifest = Manifest {
        name: name.clone(),
        description: raw.description,
        dir,
        exec,
        events: raw.events.into_iter().map(Spanned::into_inner).collect(),
        timeout,
        commands,
        env: raw.env.into_iter().map(Spanned::into_inner).collect(),
    };
    Ok((manifest, raw.name.span().start, text))
}

/// `exec[0]` made absolute when it is a path, because a relative program combined with
/// a working directory is resolved differently across platforms.
fn resolve_program(dir: &Path, program: &str) -> Result<String, String> {
    let as_path = Path::new(program);
    if as_path.is_absolute() {
        return Ok(program.to_string());
    }
    let in_dir = dir.join(as_path);
    if program.contains('/') {
        return if in_dir.exists() {
            Ok(in_dir.to_string_lossy().into_owned())
        } else {
            Err(format!(
                "exec program {program:?} not found in {}",
                dir.display()
            ))
        };
    }
    // A bare name shipped beside the manifest is what the author meant; otherwise PATH.
    if in_dir.is_file() {
        Ok(in_dir.to_string_lossy().into_owned())
    } else {
        Ok(program.to_string())
    }
}

fn is_word(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn invalid(path: &Path, text: &str, offset: usize, message: String) -> PluginError {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    PluginError::Invalid {
        path: path.to_path_buf(),
        line,
        column,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugins_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins")
    }

    fn write(root: &Path, plugin: &str, text: &str) {
        std::fs::create_dir_all(root.join(plugin)).expect("mkdir");
        std::fs::write(root.join(plugin).join(MANIFEST_FILE), text).expect("write");
    }

    #[test]
    fn the_shipped_roster_plugin_loads() {
        let manifests = load_dir(&plugins_dir()).expect("loads");
        let roster = manifests
            .iter()
            .find(|m| m.name == "roster")
            .expect("roster");
        assert!(roster.dir.is_absolute() && roster.dir.ends_with("plugins/roster"));
        assert_eq!(roster.exec, ["python3", "roster.py"]);
        assert_eq!(roster.timeout, Duration::from_millis(5000));
        let who = roster.command("who").expect("who");
        assert!(who.public);
        assert_eq!(who.usage, "roster who [YYYY-MM-DD]");
        assert!(!roster.command("list").expect("list").public);
        assert!(roster.wants("schedule.fired"));
        assert!(!roster.wants("message.received"));
    }

    #[test]
    fn event_patterns_match_exact_namespace_and_any() {
        let mut manifest = load_dir(&plugins_dir())
            .expect("loads")
            .into_iter()
            .find(|m| m.name == "roster")
            .expect("roster");
        manifest.events = vec!["device.*".into(), "message.received".into()];
        assert!(manifest.wants("device.connected"));
        assert!(manifest.wants("message.received"));
        assert!(!manifest.wants("message.sent"));
        assert!(!manifest.wants("devices.x"));
        manifest.events = vec!["*".into()];
        assert!(manifest.wants("anything.at_all"));
        manifest.events.clear();
        assert!(!manifest.wants("schedule.fired"));
    }

    #[test]
    fn a_missing_plugins_dir_is_no_plugins() {
        let tmp = tempfile::tempdir().expect("tmp");
        assert_eq!(load_dir(&tmp.path().join("nope")).expect("ok"), Vec::new());
    }

    #[test]
    fn programs_resolve_against_the_plugin_dir() {
        let tmp = tempfile::tempdir().expect("tmp");
        write(
            tmp.path(),
            "a",
            "name = \"a\"\nexec = [\"./run.sh\", \"x\"]\n",
        );
        std::fs::write(tmp.path().join("a/run.sh"), "").expect("write");
        write(tmp.path(), "b", "name = \"b\"\nexec = [\"sh\", \"b.sh\"]\n");
        write(tmp.path(), "c", "name = \"c\"\nexec = [\"tool\"]\n");
        std::fs::write(tmp.path().join("c/tool"), "").expect("write");
        std::fs::create_dir(tmp.path().join("no-manifest")).expect("mkdir");
        std::fs::write(tmp.path().join("stray.txt"), "").expect("write");
        let manifests = load_dir(tmp.path()).expect("loads");
        let names: Vec<_> = manifests.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        let a_dir = tmp.path().join("a").canonicalize().expect("canon");
        assert_eq!(
            manifests[0].exec[0],
            a_dir.join("./run.sh").to_string_lossy()
        );
        assert_eq!(manifests[0].exec[1], "x");
        assert_eq!(manifests[1].exec, ["sh", "b.sh"]);
        assert!(
            manifests[2].exec[0].ends_with("/c/tool"),
            "{:?}",
            manifests[2].exec
        );
    }

    #[test]
    fn every_broken_manifest_is_reported_with_its_line() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path();
        write(root, "fine", "name = \"fine\"\nexec = [\"true\"]\n");
        write(root, "bad-toml", "name = \"x\"\nexec = [\"a\",\n");
        write(
            root,
            "unknown-field",
            "name = \"unknown\"\nexec = [\"true\"]\nbogus = 1\n",
        );
        write(root, "empty-exec", "name = \"empty\"\nexec = []\n");
        write(root, "dup-a", "name = \"twin\"\nexec = [\"true\"]\n");
        write(
            root,
            "dup-b",
            "description = \"second\"\nname = \"twin\"\nexec = [\"true\"]\n",
        );
        write(
            root,
            "dup-cmd",
            "name = \"dupcmd\"\nexec = [\"true\"]\n[[commands]]\nname = \"go\"\n[[commands]]\nname = \"go\"\n",
        );
        write(
            root,
            "bad-name",
            "name = \"Roster Bot\"\nexec = [\"true\"]\n",
        );
        write(root, "reserved", "exec = [\"true\"]\nname = \"help\"\n");
        write(
            root,
            "several",
            "name = \"several\"\nexec = [\"./missing.py\"]\nevents = [\"schedule\"]\ntimeout_ms = 0\n",
        );
        // A variable no environment has, and a name no environment can have.
        write(
            root,
            "secrets",
            "name = \"secrets\"\nexec = [\"true\"]\nenv = [\"PATH\",\n  \"TAPWIRE_TEST_NEVER_SET_9F2C\", \"NOT-A-NAME\"]\n",
        );

        let errors: Vec<String> = load_dir(root)
            .expect_err("broken")
            .iter()
            .map(|e| e.to_string())
            .collect();
        let at = |plugin: &str, line_col: &str, words: &str| {
            let prefix = format!(
                "{}:{line_col}:",
                root.join(plugin).join(MANIFEST_FILE).display()
            );
            assert!(
                errors
                    .iter()
                    .any(|e| e.starts_with(&prefix) && e.contains(words)),
                "no {prefix} … {words} in {errors:#?}"
            );
        };
        at("bad-toml", "2", "");
        at("unknown-field", "3:1", "bogus");
        at("empty-exec", "2:8", "exec is empty");
        at("dup-b", "2:8", "duplicate plugin name \"twin\"");
        at("dup-cmd", "6:8", "duplicate command \"go\"");
        at("bad-name", "1:8", "one lowercase word");
        at("reserved", "2:8", "reserved");
        at("several", "2:8", "not found");
        at("several", "3:11", "bad event pattern");
        at("several", "4:14", "timeout_ms");
        at(
            "secrets",
            "4:3",
            "needs environment variable TAPWIRE_TEST_NEVER_SET_9F2C, which is not set",
        );
        at(
            "secrets",
            "4:34",
            "\"NOT-A-NAME\" is not an environment variable name",
        );
        assert_eq!(errors.len(), 12, "{errors:#?}");
    }
}
