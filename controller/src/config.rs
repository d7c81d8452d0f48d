//! `tapwire.toml`, as far as the phone slice needs it: storage, phones and the handler
//! that answers them. Secrets never live here; `${NAME}` takes a value from the
//! environment. Every error names the file, line and column.

use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::pipeline::HandlerKind;
use crate::router::{self, Router};

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
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where it was read from and its text (after `${NAME}` expansion), so that checks
    /// made after parsing can still name a line.
    #[serde(skip)]
    path: PathBuf,
    #[serde(skip)]
    text: String,
    #[serde(default)]
    pub storage: Storage,
    #[serde(default)]
    pub phones: Vec<PhoneConfig>,
    #[serde(default)]
    pub routes: Vec<Route>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    #[serde(default = "default_db")]
    pub path: PathBuf,
}

impl Default for Storage {
    fn default() -> Self {
        Storage { path: default_db() }
    }
}

fn default_db() -> PathBuf {
    PathBuf::from("tapwire.db")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneConfig {
    /// The serial `adb devices` shows (for a phone over Wi-Fi, `HOST:PORT`).
    pub serial: String,
    /// The adb server; adb's own default (ANDROID_ADB_SERVER_PORT or 5037) when left out.
    pub adb_server: Option<SocketAddrV4>,
    /// Talk to the phone's adbd over TCP directly, without an adb server.
    #[serde(default)]
    pub direct: bool,
    pub poll_ms: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Names the route in logs; defaults to `route-N`. Must be unique.
    pub id: Option<toml::Spanned<String>>,
    /// `message.received`, `message.*` or `*`.
    pub event: toml::Spanned<String>,
    pub handler: HandlerKind,
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

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let expanded = expand_env(text, path, |name| std::env::var(name).ok())?;
        let mut config: Config = toml::from_str(&expanded).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|span| line_col(&expanded, span.start))
                .unwrap_or((1, 1));
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                column,
                message: e.message().to_string(),
            }
        })?;
        config.path = path.to_path_buf();
        config.text = expanded;
        Ok(config)
    }

    /// The router the `[[routes]]` describe, or, without any, `message.received` to
    /// `fallback` (what `tapwire run --handler` chose).
    pub fn router(&self, fallback: HandlerKind) -> Result<Router, ConfigError> {
        if self.routes.is_empty() {
            return Ok(Router::new(vec![router::Route {
                id: "default".into(),
                pattern: router::Pattern::Exact("message.received".into()),
                source: None,
                conversation: None,
                priority: 0,
                enabled: true,
                continue_: false,
                handler: fallback,
            }]));
        }
        let mut routes = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (index, route) in self.routes.iter().enumerate() {
            let id = match &route.id {
                Some(id) => {
                    if !seen.insert(id.get_ref().clone()) {
                        return Err(self.invalid_at(
                            id.span().start,
                            format!("duplicate route id {:?}", id.get_ref()),
                        ));
                    }
                    id.get_ref().clone()
                }
                None => format!("route-{}", index + 1),
            };
            let pattern = router::Pattern::parse(route.event.get_ref())
                .map_err(|message| self.invalid_at(route.event.span().start, message))?;
            routes.push(router::Route {
                id,
                pattern,
                source: route.source.clone(),
                conversation: route.conversation.clone(),
                priority: route.priority,
                enabled: route.enabled,
                continue_: route.continue_,
                handler: route.handler,
            });
        }
        Ok(Router::new(routes))
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

/// Replaces `${NAME}` with the variable's value, outside comments. A missing variable is
/// an error naming it, never an empty string.
fn expand_env(
    text: &str,
    path: &Path,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
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
                    let at = offset + (code.len() - rest.len()) + start;
                    let (line, column) = line_col(text, at);
                    return Err(ConfigError::MissingEnv {
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
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_phones_and_routes() {
        let config = Config::parse(
            "[storage]\npath = \"x.db\"\n[[phones]]\nserial = \"127.0.0.1:5555\"\nadb_server = \"127.0.0.1:5037\"\n[[routes]]\nevent = \"message.received\"\nhandler = \"echo\"\n",
            Path::new("t.toml"),
        )
        .expect("valid");
        assert_eq!(config.phones[0].serial, "127.0.0.1:5555");
        assert!(config.router(HandlerKind::Help).is_ok());
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let err = Config::parse(
            "[[phones]]\nserial = \"a\"\nbogus = 1\n",
            Path::new("t.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("t.toml:3:"), "{err}");
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn bad_route_patterns_and_duplicate_ids_name_their_line() {
        let bad_pattern = "[[routes]]\nevent = \"message\"\nhandler = \"echo\"\n";
        let err = Config::parse(bad_pattern, Path::new("t.toml"))
            .expect("parses")
            .router(HandlerKind::Echo)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("t.toml:2:9:"), "{err}");
        let duplicate = "[[routes]]\nid = \"a\"\nevent = \"*\"\nhandler = \"echo\"\n[[routes]]\nid = \"a\"\nevent = \"*\"\nhandler = \"help\"\n";
        let err = Config::parse(duplicate, Path::new("t.toml"))
            .expect("parses")
            .router(HandlerKind::Echo)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("t.toml:6:") && err.contains("duplicate route id"),
            "{err}"
        );
    }

    #[test]
    fn missing_env_var_is_named() {
        let err = expand_env("a = 1\nb = \"${NOPE_X}\"\n", Path::new("t.toml"), |_| None)
            .unwrap_err()
            .to_string();
        assert_eq!(err, "t.toml:2:6: environment variable NOPE_X is not set");
        let ok =
            expand_env("b = \"${X}\"", Path::new("t.toml"), |_| Some("v".into())).expect("expands");
        assert_eq!(ok, "b = \"v\"");
    }
}
