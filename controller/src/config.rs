//! `tapwire.toml`, as far as the phone slice needs it: storage, phones and the handler
//! that answers them. Secrets never live here; `${NAME}` takes a value from the
//! environment. Every error names the file, line and column.

use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::pipeline::HandlerKind;

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
    pub event: String,
    pub handler: HandlerKind,
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
        toml::from_str(&expanded).map_err(|e| {
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
        })
    }

    /// The handler for `message.received`: the first route that names it.
    pub fn message_handler(&self) -> Option<HandlerKind> {
        self.routes
            .iter()
            .find(|r| r.event == "message.received" || r.event == "message.*" || r.event == "*")
            .map(|r| r.handler)
    }
}

/// Replaces `${NAME}` with the variable's value. A missing variable is an error naming it,
/// never an empty string.
fn expand_env(
    text: &str,
    path: &Path,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        match lookup(name) {
            Some(value) => out.push_str(&value),
            None => {
                let offset = text.len() - rest.len() + start;
                let (line, column) = line_col(text, offset);
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
    Ok(out)
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
        assert_eq!(config.message_handler(), Some(HandlerKind::Echo));
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
