//! What the controller counts for `/metrics`, recorded at the seams through the `metrics`
//! facade: events accepted into the inbox, actions carried out or failed, retries, dead
//! letters, handler latency, plugin restarts and each phone's connection and last read.
//! What the store and the adapters already know (the outbox's depth and age, the
//! dead-letter queue, callbacks refused) is read at scrape time by `server::metrics`,
//! which also installs the Prometheus recorder; without one every record is a no-op.
//!
//! Labels are bounded: an adapter's or phone's name, a handler's or plugin's configured
//! name, an event type (a fixed list per source), a refusal's reason. Never a message,
//! a conversation or a user. docs/metrics.md lists every metric; the device side's are in
//! `tapwire_device_agent::telemetry`.

use std::time::{Instant, SystemTime};

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge};

pub const EVENTS: &str = "tapwire_events_total";
pub const ACTIONS: &str = "tapwire_actions_total";
pub const ACTION_RETRIES: &str = "tapwire_action_retries_total";
pub const DEAD_LETTERS: &str = "tapwire_dead_letters_total";
pub const HANDLER_SECONDS: &str = "tapwire_handler_duration_seconds";
pub const PLUGIN_RESTARTS: &str = "tapwire_plugin_restarts_total";
pub const CALLBACK_REJECTIONS: &str = "tapwire_callback_rejections_total";
pub const PASSIVE_SKIPPED: &str = "tapwire_passive_replies_skipped_total";
pub const OUTBOX_DEPTH: &str = "tapwire_outbox_depth";
pub const OUTBOX_OLDEST_AGE: &str = "tapwire_outbox_oldest_age_seconds";
pub const DLQ_DEPTH: &str = "tapwire_dlq_depth";
pub const PHONE_CONNECTED: &str = "tapwire_phone_connected";
pub const PHONE_LAST_READ: &str = "tapwire_phone_last_read_timestamp_seconds";

/// Gives every metric its help text (the device side's too); called once, where the
/// recorder is installed.
pub fn describe() {
    describe_counter!(
        EVENTS,
        "Events accepted into the inbox (stored for the first time), by source (phone serial or adapter name) and event type"
    );
    describe_counter!(
        ACTIONS,
        "Actions the outbox carried out (outcome=sent) or gave up on (outcome=failed, kept as failed in the store), by adapter or phone"
    );
    describe_counter!(
        ACTION_RETRIES,
        "Sends retried after a passing failure (a rate limit, a timeout), by adapter"
    );
    describe_counter!(
        DEAD_LETTERS,
        "Events a handler gave up on and moved to the dead-letter queue, by handler"
    );
    describe_histogram!(
        HANDLER_SECONDS,
        Unit::Seconds,
        "How long a routed handler took with one event (cancelled ones until they were cancelled), by handler"
    );
    describe_counter!(
        PLUGIN_RESTARTS,
        "External plugin processes started again after a crash, a hang or garbage, by plugin"
    );
    describe_counter!(
        CALLBACK_REJECTIONS,
        "Callbacks refused at an adapter's door, by adapter and reason"
    );
    describe_counter!(
        PASSIVE_SKIPPED,
        "Callbacks answered without waiting for a passive reply because too many were waiting (answers lagging behind a burst); their answers went through the platform's API, by adapter"
    );
    describe_gauge!(
        OUTBOX_DEPTH,
        "Actions stored and not yet finished (pending or dispatched), by target adapter or phone"
    );
    describe_gauge!(
        OUTBOX_OLDEST_AGE,
        Unit::Seconds,
        "Age of the oldest unfinished action, by target adapter or phone; 0 when none waits"
    );
    describe_gauge!(
        DLQ_DEPTH,
        "Dead letters waiting for `tapwire dlq replay` or `drop`"
    );
    describe_gauge!(
        PHONE_CONNECTED,
        "1 while the phone answers over ADB, 0 while it is unreachable or stopped"
    );
    describe_gauge!(
        PHONE_LAST_READ,
        Unit::Seconds,
        "Unix time of the last new message read off the phone (the connection's time until one is read)"
    );
    tapwire_device_agent::telemetry::describe();
}

/// An event stored for the first time, about to be routed.
pub fn event_accepted(source: &str, event_type: &str) {
    counter!(EVENTS, "source" => source.to_string(), "type" => event_type.to_string()).increment(1);
}

/// An action finished: sent, or failed for good.
pub fn action_finished(adapter: &str, sent: bool) {
    let outcome = if sent { "sent" } else { "failed" };
    counter!(ACTIONS, "adapter" => adapter.to_string(), "outcome" => outcome).increment(1);
}

pub fn action_retried(adapter: &str) {
    counter!(ACTION_RETRIES, "adapter" => adapter.to_string()).increment(1);
}

pub fn dead_lettered(handler: &str) {
    counter!(DEAD_LETTERS, "handler" => handler.to_string()).increment(1);
}

pub fn passive_skipped(adapter: &str) {
    counter!(PASSIVE_SKIPPED, "adapter" => adapter.to_string()).increment(1);
}

pub fn plugin_restarted(plugin: &str) {
    counter!(PLUGIN_RESTARTS, "plugin" => plugin.to_string()).increment(1);
}

pub fn phone_connected(phone: &str, connected: bool) {
    gauge!(PHONE_CONNECTED, "phone" => phone.to_string()).set(if connected { 1.0 } else { 0.0 });
}

/// A new message was read off `phone` at `at`.
pub fn phone_read(phone: &str, at: SystemTime) {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    gauge!(PHONE_LAST_READ, "phone" => phone.to_string()).set(secs);
}

/// Times one handler with one event; recorded when dropped, so a handler cancelled at
/// its deadline is measured too (up to the cancel).
pub struct HandlerTimer {
    handler: String,
    started: Instant,
}

impl HandlerTimer {
    pub fn start(handler: &str) -> HandlerTimer {
        HandlerTimer {
            handler: handler.to_string(),
            started: Instant::now(),
        }
    }
}

impl Drop for HandlerTimer {
    fn drop(&mut self) {
        metrics::histogram!(HANDLER_SECONDS, "handler" => std::mem::take(&mut self.handler))
            .record(self.started.elapsed().as_secs_f64());
    }
}
