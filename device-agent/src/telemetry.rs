//! What the device side counts for `/metrics`, recorded through the `metrics` facade only:
//! the controller installs the recorder (Prometheus text), and where none is installed
//! (`tapwire dump`, tests, benchmarks) every record is a no-op. So this crate never knows
//! which exporter shows its numbers.
//!
//! Labels are bounded: `phone` is a serial (or `HOST:PORT`), `kind` one of
//! [`COMMAND_KINDS`], `check` one of two words. A command's text or a chat's name never
//! becomes a label. docs/metrics.md lists every metric with its meaning.

use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_histogram, histogram};

/// ADB shell calls to a phone, by phone, kind and whether the call came back.
pub const ADB_CALLS: &str = "tapwire_adb_calls_total";
/// How long each ADB shell call took, by phone and kind.
pub const ADB_CALL_SECONDS: &str = "tapwire_adb_call_duration_seconds";
/// UI dumps the screen reader took (`uiautomator dump`).
pub const DUMPS: &str = "tapwire_dumps_total";
/// Screenshots the vision reader took (`screencap`).
pub const SCREENSHOTS: &str = "tapwire_screenshots_total";
/// Replies whose check failed: typed text not shown in the input box, or a pressed reply
/// not found in the chat afterwards.
pub const SEND_VERIFICATION_FAILURES: &str = "tapwire_send_verification_failures_total";

/// Every value the `kind` label of [`ADB_CALLS`] takes.
pub const COMMAND_KINDS: [&str; 9] = [
    "dump",
    "screencap",
    "input",
    "broadcast",
    "am",
    "dumpsys",
    "settings",
    "pm",
    "shell",
];

/// Gives the device side's metrics their help text; called once by whoever installs
/// the recorder.
pub fn describe() {
    describe_counter!(
        ADB_CALLS,
        "ADB shell calls to a phone, by phone, kind of command and outcome (ok or error)"
    );
    describe_histogram!(
        ADB_CALL_SECONDS,
        Unit::Seconds,
        "How long ADB shell calls took, by phone and kind of command"
    );
    describe_counter!(DUMPS, "UI dumps taken by the screen reader, by phone");
    describe_counter!(
        SCREENSHOTS,
        "Screenshots taken by the vision reader, by phone"
    );
    describe_counter!(
        SEND_VERIFICATION_FAILURES,
        "Replies whose check failed (check=typed: the input box did not show the text; check=sent: the reply did not appear in the chat), by phone"
    );
}

/// The kind of a shell command, for the `kind` label: what it does to the phone, from
/// its program (and, for `am`, its verb).
pub fn command_kind(command: &str) -> &'static str {
    let mut words = command.split_whitespace();
    match words.next().map(|w| w.rsplit('/').next().unwrap_or(w)) {
        Some("uiautomator") => "dump",
        Some("screencap") => "screencap",
        Some("input") => "input",
        Some("am") if words.next() == Some("broadcast") => "broadcast",
        Some("am") => "am",
        Some("dumpsys") => "dumpsys",
        Some("settings") => "settings",
        Some("pm") => "pm",
        _ => "shell",
    }
}

/// One shell call to `phone` that came back (`ok`) or failed on the way, after `took`.
pub(crate) fn adb_call(phone: &str, command: &str, took: Duration, ok: bool) {
    let kind = command_kind(command);
    let outcome = if ok { "ok" } else { "error" };
    counter!(ADB_CALLS, "phone" => phone.to_string(), "kind" => kind, "outcome" => outcome)
        .increment(1);
    histogram!(ADB_CALL_SECONDS, "phone" => phone.to_string(), "kind" => kind)
        .record(took.as_secs_f64());
}

pub(crate) fn dump_taken(phone: &str) {
    counter!(DUMPS, "phone" => phone.to_string()).increment(1);
}

pub(crate) fn screenshot_taken(phone: &str) {
    counter!(SCREENSHOTS, "phone" => phone.to_string()).increment(1);
}

/// Which check of a reply failed: its text in the input box before send was pressed
/// (`typed`), or its bubble in the chat after (`sent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    Typed,
    Sent,
}

pub(crate) fn verification_failed(phone: &str, check: Check, count: usize) {
    let check = match check {
        Check::Typed => "typed",
        Check::Sent => "sent",
    };
    counter!(SEND_VERIFICATION_FAILURES, "phone" => phone.to_string(), "check" => check)
        .increment(u64::try_from(count).unwrap_or(u64::MAX));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_told_apart_by_what_they_do() {
        assert_eq!(command_kind("uiautomator dump /dev/tty"), "dump");
        assert_eq!(command_kind("screencap -p"), "screencap");
        assert_eq!(command_kind("/system/bin/screencap"), "screencap");
        assert_eq!(command_kind("input tap 10 20"), "input");
        assert_eq!(
            command_kind("am broadcast -a ADB_INPUT_B64 --es msg 5L2g"),
            "broadcast"
        );
        assert_eq!(
            command_kind("am start -n com.tencent.mm/.ui.LauncherUI"),
            "am"
        );
        assert_eq!(
            command_kind("dumpsys window | grep mCurrentFocus"),
            "dumpsys"
        );
        assert_eq!(command_kind("settings get secure x"), "settings");
        assert_eq!(command_kind("pm list packages"), "pm");
        assert_eq!(command_kind("date +%z"), "shell");
        assert_eq!(command_kind(""), "shell");
        for kind in ["date", "uiautomator", "input"].map(command_kind) {
            assert!(COMMAND_KINDS.contains(&kind), "{kind}");
        }
    }

    /// What the device side records reaches whichever recorder is installed, with the
    /// labels the dashboard and the alerts use.
    #[test]
    fn calls_are_counted_and_timed_per_phone_and_kind() {
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            adb_call(
                "p1",
                "uiautomator dump /dev/tty",
                Duration::from_millis(30),
                true,
            );
            adb_call(
                "p1",
                "uiautomator dump /dev/tty",
                Duration::from_millis(10),
                true,
            );
            adb_call("p1", "input tap 1 2", Duration::from_millis(5), false);
            dump_taken("p1");
            verification_failed("p1", Check::Sent, 2);
        });
        let mut seen = Vec::new();
        for (key, _, _, value) in snapshotter.snapshot().into_vec() {
            let labels: Vec<String> = key
                .key()
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            seen.push(format!(
                "{} {} {value:?}",
                key.key().name(),
                labels.join(",")
            ));
        }
        seen.sort();
        let joined = seen.join("\n");
        assert!(
            joined.contains("tapwire_adb_calls_total phone=p1,kind=dump,outcome=ok Counter(2)"),
            "{joined}"
        );
        assert!(
            joined.contains("tapwire_adb_calls_total phone=p1,kind=input,outcome=error Counter(1)"),
            "{joined}"
        );
        assert!(
            joined.contains("tapwire_adb_call_duration_seconds phone=p1,kind=dump Histogram"),
            "{joined}"
        );
        assert!(
            joined.contains("tapwire_dumps_total phone=p1 Counter(1)"),
            "{joined}"
        );
        assert!(
            joined.contains(
                "tapwire_send_verification_failures_total phone=p1,check=sent Counter(2)"
            ),
            "{joined}"
        );
    }
}
