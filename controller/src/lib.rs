//! The Tapwire controller as a library: the binary's CLI, the tests and the benchmarks all
//! drive the same router, handlers, store and runtime. `docs/architecture.md` follows an
//! event through them.
//!
//! Layout (each seam a trait in its folder's `mod.rs`, one file per implementation):
//! - `event`: the vocabulary (events, actions, ids); `activity`: what happened, for display;
//! - `config`: `tapwire.toml`, each component's section parsed by its own type;
//! - `adapter/`: trait `Adapter`, phones and platforms (`phone`, `wecom_robot`);
//! - `store/`: trait `Store` (`sqlite`, `memory`); `queue/`: trait `Queue` (`local`);
//! - `handler/`: trait `Handler` (`pipeline/`, `webhook`, `plugin`, `forward`);
//! - `router`: which handler an event goes to; `command` and `permission`: what a message
//!   asks and who may ask it; `plugin/`: external plugin processes; `schedule`: cron;
//!   `format`: text formats; `http`: what HTTP clients share;
//! - `runtime/`: accept → store → queue → handle → outbox, with reply deadlines;
//! - `server/`: the HTTP server (`/metrics` in `server/metrics.rs`); `telemetry`: what is
//!   counted for it; `app`: all of it wired from a config.

pub mod activity;
pub mod adapter;
pub mod app;
pub mod command;
pub mod config;
pub mod event;
pub mod format;
pub mod handler;
pub mod health;
pub mod http;
pub mod live;
pub mod permission;
pub mod plugin;
pub mod queue;
pub mod router;
pub mod runtime;
pub mod schedule;
pub mod server;
pub mod store;
pub mod subscription;
pub mod telemetry;
