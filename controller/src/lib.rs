//! The Tapwire controller as a library: the binary's CLI, the tests and the benchmarks all
//! drive the same router, pipeline, store and runtime.
//!
//! Layout: `event` (the vocabulary), `config` (`tapwire.toml`), `router` (which handler an
//! event goes to), `handler` (handlers by name), `pipeline` (the staged command handler),
//! `command` and `permission` (what a message asks and who may ask it), `plugin`
//! (external plugin processes), `webhook`, `schedule` (cron), `format` (replies per
//! platform), `store` (durable events, actions, watermarks, grants, dead letters),
//! `runtime` (per-conversation lanes, deadlines, the outbox) and `app` (all of it wired
//! from a config).

pub mod adapter;
pub mod app;
pub mod command;
pub mod config;
pub mod event;
pub mod format;
pub mod handler;
pub mod permission;
pub mod pipeline;
pub mod plugin;
pub mod router;
pub mod runtime;
pub mod schedule;
pub mod store;
pub mod webhook;
