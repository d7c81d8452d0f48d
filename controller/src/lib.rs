//! The Tapwire controller as a library: the binary's CLI, the tests and the benchmarks all
//! drive the same router, pipeline, store and runtime.

pub mod command;
pub mod config;
pub mod event;
pub mod format;
pub mod permission;
pub mod pipeline;
pub mod plugin;
pub mod router;
pub mod runtime;
pub mod schedule;
pub mod store;
pub mod webhook;
