//! External plugins: a directory `plugins/<name>/` with a `plugin.toml` and an executable
//! in any language that speaks JSON lines on stdin/stdout. Dropping a directory in adds a
//! scene of commands (`roster who`) and event subscriptions without touching core code.
//!
//! Layout: `manifest` (reading and checking `plugin.toml`), `wire` (the line protocol),
//! `host` (one supervised process per plugin: requests, restarts, faults).
//!
//! # Wire protocol
//!
//! One JSON object per line, UTF-8, `\n`-terminated, in both directions.
//!
//! Controller → plugin (stdin):
//!
//! ```text
//! {"id":"17","kind":"command","command":"who","args":["2026-11-24"],"event":{…}}
//! {"id":"18","kind":"event","event":{…}}
//! ```
//!
//! `event` is the [`Event`](crate::event::Event) JSON form. Plugin → controller (stdout),
//! one line per request, carrying the request's `id`:
//!
//! ```text
//! {"id":"17","actions":[{"action":"reply","text":"…"}]}
//! {"id":"18","actions":[]}
//! {"id":"17","error":"message for the user"}
//! ```
//!
//! Actions are [`HandlerAction`](crate::event::HandlerAction)s. Several requests may be in
//! flight at once; answers are matched by `id`, in any order. A stdout line that is not
//! JSON or carries no `id` is reported as garbage and ignored; anything meant for humans
//! goes to stderr, which is logged. The plugin runs with its directory as the working
//! directory and should exit when stdin closes. `plugins/README.md` is the same contract
//! written for plugin authors.

mod host;
mod manifest;
mod wire;

use std::path::PathBuf;
use std::time::Duration;

use crate::event::Event;

pub use host::{PluginHost, PluginStats};
pub use manifest::{CommandSpec, DEFAULT_TIMEOUT, Manifest, RESERVED_SCENES, load_dir};

/// What the host asks of a plugin.
#[derive(Debug, Clone, PartialEq)]
pub enum PluginRequest {
    /// `<scene> <command> <args…>` typed by a user, with the message that carried it.
    Command {
        event: Event,
        command: String,
        args: Vec<String>,
    },
    /// An event whose type matches one of the plugin's `events` patterns.
    Event { event: Event },
}

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
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
    #[error("no plugin named {0:?}")]
    UnknownPlugin(String),
    /// The process is down and waiting out its restart backoff; calls fail fast rather
    /// than queue behind it.
    #[error("plugin {plugin} is restarting; try again in {retry_in:?}")]
    Unavailable { plugin: String, retry_in: Duration },
    /// The process ended while the request was pending.
    #[error("plugin {plugin} stopped while answering ({status})")]
    Crashed { plugin: String, status: String },
    /// No answer in the manifest's `timeout_ms`; the process has been killed and restarted.
    #[error("plugin {plugin} did not answer within {after:?}")]
    Timeout { plugin: String, after: Duration },
    /// The plugin answered with `error`: its message is meant for the user.
    #[error("{plugin}: {message}")]
    Failed { plugin: String, message: String },
    /// The answer carried the request's id but no usable actions.
    #[error("plugin {plugin} answered with a bad response: {message}")]
    BadResponse { plugin: String, message: String },
    #[error("cannot encode the request for plugin {plugin}: {message}")]
    BadRequest { plugin: String, message: String },
    /// The host has been shut down.
    #[error("plugin {plugin} has been stopped")]
    Stopped { plugin: String },
}

/// A plugin misbehaving. The host keeps serving; each fault goes to the faults channel,
/// the log and the plugin's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginFault {
    pub plugin: String,
    pub kind: FaultKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultKind {
    #[error("cannot start: {0}")]
    SpawnFailed(String),
    #[error("exited unexpectedly: {status}")]
    Exited { status: String },
    /// The request id that went unanswered; the process was killed for it.
    #[error("request {request} timed out; process killed")]
    Timeout { request: String },
    /// A stdout line that is not a response (truncated for the report).
    #[error("garbage on stdout: {line}")]
    Garbage { line: String },
    /// A response whose id no pending request has (late, duplicated or invented).
    #[error("response for unknown request id {0:?}")]
    UnknownId(String),
}
