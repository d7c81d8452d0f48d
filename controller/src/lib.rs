//! The Tapwire controller as a library: the binary's CLI, the tests and the benchmarks all
//! drive the same router, pipeline, store and runtime.
//!
//! Layout: `event` (the vocabulary), `config` (`tapwire.toml`), `router` (which handler an
//! event goes to), `pipeline` (the staged command handler), `store` (durable events,
//! actions, watermarks), `runtime` (phones and router wired together).

pub mod config;
pub mod event;
pub mod format;
pub mod pipeline;
pub mod router;
pub mod runtime;
pub mod schedule;
pub mod store;
pub mod webhook;
