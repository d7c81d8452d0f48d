//! Cron schedules: each fires a `schedule.fired` event into the router at its slots
//! (DESIGN.md §1, §3), evaluated in its own IANA time zone.
//!
//! Expressions:
//! - 5 fields (`minute hour day-of-month month day-of-week`) are read as crontab(5) reads
//!   them: day-of-week 0-7 with 0 and 7 both Sunday (`1-5` is Monday to Friday), and when
//!   both day-of-month and day-of-week are restricted a day matching either fires.
//! - 6 and 7 fields (seconds first, an optional year last) and `@daily`-style shorthands
//!   are read as the `cron` crate reads them, Quartz style: day-of-week 1-7 is Sunday to
//!   Saturday, and day-of-month and day-of-week must both match.
//!
//! Around daylight-saving changes, a slot whose local time does not exist that day is
//! skipped, and a slot whose local time happens twice fires once.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::event::event_id;
use crate::event::{Conversation, ConversationKind, Event, now_rfc3339};

/// The type of the events schedules fire.
pub const SCHEDULE_FIRED: &str = crate::event::types::SCHEDULE_FIRED;

/// The source and platform of fired events.
pub const SOURCE: &str = "scheduler";
pub const PLATFORM: &str = "schedule";

/// The longest the runner sleeps before reading the wall clock again. A monotonic sleep
/// does not see the wall clock jump or the machine resume from suspend, so a slot is
/// never noticed later than this.
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// One `[[schedules]]` entry of `tapwire.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    pub id: String,
    pub cron: String,
    /// IANA name (`Asia/Shanghai`); UTC when absent.
    #[serde(default)]
    pub timezone: Option<String>,
    /// The source (phone or adapter) handlers should answer on.
    #[serde(default)]
    pub target: Option<String>,
    /// The conversation the event is about, treated as a group chat.
    #[serde(default)]
    pub conversation: Option<String>,
    /// Free-form payload handed to handlers in `raw.data`.
    #[serde(default)]
    pub data: serde_json::Value,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("schedule id is empty")]
    EmptyId,
    #[error("bad cron expression \"{expression}\": {reason}")]
    Cron { expression: String, reason: String },
    #[error("unknown time zone \"{0}\": use an IANA name such as Asia/Shanghai or UTC")]
    TimeZone(String),
}

/// A validated schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    config: ScheduleConfig,
    timezone: Tz,
    /// A slot is any slot of any of these: crontab's day-of-month *or* day-of-week rule
    /// needs two `cron` schedules, every other expression one.
    crons: Vec<cron::Schedule>,
}

impl Schedule {
    pub fn new(config: ScheduleConfig) -> Result<Schedule, ScheduleError> {
        if config.id.trim().is_empty() {
            return Err(ScheduleError::EmptyId);
        }
        let timezone = match config.timezone.as_deref() {
            None => Tz::UTC,
            Some(name) => {
                Tz::from_str(name.trim()).map_err(|_| ScheduleError::TimeZone(name.to_string()))?
            }
        };
        let bad = |reason: String| ScheduleError::Cron {
            expression: config.cron.clone(),
            reason,
        };
        let crons = crate_expressions(&config.cron)
            .map_err(bad)?
            .iter()
            .map(|expression| cron::Schedule::from_str(expression))
            .collect::<Result<Vec<_>, _>>()
            // The crate's message quotes the expression it was given (with our seconds
            // field) over a caret line; its last line is the reason.
            .map_err(|error| {
                let message = error.to_string();
                bad(message
                    .trim()
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .to_string())
            })?;
        let schedule = Schedule {
            config,
            timezone,
            crons,
        };
        if schedule.next_after(Utc::now()).is_none() {
            return Err(ScheduleError::Cron {
                expression: schedule.config.cron,
                reason: "no date from now on matches it".to_string(),
            });
        }
        Ok(schedule)
    }

    pub fn id(&self) -> &str {
        &self.config.id
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    pub fn config(&self) -> &ScheduleConfig {
        &self.config
    }

    /// The first slot strictly after `after`, or `None` when the schedule has no more
    /// (a 7-field expression whose years are past).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.timezone);
        self.crons
            .iter()
            // The crate searches by local time: in the hour repeated when daylight saving
            // ends its first answer can be the earlier, already past, instant.
            .filter_map(|cron| {
                cron.after(&local)
                    .map(|slot| slot.with_timezone(&Utc))
                    .find(|slot| *slot > after)
            })
            .min()
    }

    /// The last slot at or before `at`.
    fn latest_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // The crate searches backwards from strictly before a whole second, and from the
        // same second when there is a fraction: a nanosecond more makes `at` itself count.
        let local = (at + TimeDelta::nanoseconds(1)).with_timezone(&self.timezone);
        self.crons
            .iter()
            .filter_map(|cron| {
                cron.after(&local)
                    .rev()
                    .map(|slot| slot.with_timezone(&Utc))
                    .find(|slot| *slot <= at)
            })
            .max()
    }

    /// The `schedule.fired` event for the slot `scheduled_for`. Its idempotency key names
    /// the schedule and the slot, so once stored the same slot can never fire again, even
    /// across restarts.
    pub fn event(&self, scheduled_for: DateTime<Utc>) -> Event {
        let slot = scheduled_for.to_rfc3339_opts(SecondsFormat::Secs, true);
        let idempotency_key = format!("schedule:{}:{slot}", self.config.id);
        Event {
            id: event_id(&idempotency_key),
            event_type: SCHEDULE_FIRED.to_string(),
            source: SOURCE.to_string(),
            platform: PLATFORM.to_string(),
            idempotency_key,
            conversation: self.config.conversation.as_ref().map(|id| Conversation {
                id: id.clone(),
                title: Some(id.clone()),
                kind: ConversationKind::Group,
            }),
            sender: None,
            content: Vec::new(),
            platform_message_id: None,
            timestamp: now_rfc3339(),
            raw: serde_json::json!({
                "schedule": self.config.id,
                "scheduled_for": slot,
                "target": self.config.target,
                "conversation": self.config.conversation,
                "data": self.config.data,
            }),
        }
    }
}

/// The expressions the `cron` crate must evaluate for `expression`.
fn crate_expressions(expression: &str) -> Result<Vec<String>, String> {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    match fields.as_slice() {
        [shorthand] if shorthand.starts_with('@') => Ok(vec![shorthand.to_string()]),
        [minute, hour, day_of_month, month, day_of_week] => {
            let weekdays = crontab_weekdays(day_of_week)?;
            let restricted = |field: &str| !(field.starts_with('*') || field == "?");
            if restricted(day_of_month) && restricted(day_of_week) {
                Ok(vec![
                    format!("0 {minute} {hour} {day_of_month} {month} *"),
                    format!("0 {minute} {hour} * {month} {weekdays}"),
                ])
            } else {
                Ok(vec![format!(
                    "0 {minute} {hour} {day_of_month} {month} {weekdays}"
                )])
            }
        }
        fields if fields.len() == 6 || fields.len() == 7 => Ok(vec![fields.join(" ")]),
        fields => Err(format!(
            "expected 5 fields (minute hour day-of-month month day-of-week), or 6-7 \
             (seconds first, year last), found {}",
            fields.len()
        )),
    }
}

/// A crontab day-of-week field (0-7, 0 and 7 Sunday) in the `cron` crate's terms, by
/// writing the days as names, which both agree on. Names, `*` and `*/n` already mean
/// the same in both and pass through.
fn crontab_weekdays(field: &str) -> Result<String, String> {
    const NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    let day = |text: &str| -> Result<usize, String> {
        text.parse::<usize>()
            .ok()
            .filter(|day| *day <= 7)
            .ok_or_else(|| format!("day of week \"{text}\" is not 0-7 (0 and 7 are Sunday)"))
    };
    let mut parts = Vec::new();
    for part in field.split(',') {
        let (base, step) = match part.split_once('/') {
            Some((base, step)) => (base, Some(step)),
            None => (part, None),
        };
        if !base.contains(|c: char| c.is_ascii_digit()) {
            parts.push(part.to_string());
            continue;
        }
        if base.contains(|c: char| c.is_ascii_alphabetic()) {
            return Err(format!(
                "day of week \"{part}\" mixes names and numbers: use one or the other"
            ));
        }
        let step = match step {
            None => 1,
            Some(step) => step
                .parse::<usize>()
                .ok()
                .filter(|step| *step > 0)
                .ok_or_else(|| format!("bad step \"{step}\" in day of week \"{part}\""))?,
        };
        let (first, last) = match base.split_once('-') {
            Some((first, last)) => (day(first)?, day(last)?),
            // `5/2` runs to the end of the week, as in crontab.
            None if step > 1 => (day(base)?, 7),
            None => (day(base)?, day(base)?),
        };
        if first > last {
            return Err(format!("day-of-week range \"{base}\" runs backwards"));
        }
        let names: Vec<&str> = (first..=last)
            .step_by(step)
            .map(|day| NAMES[day % 7])
            .collect();
        parts.push(names.join(","));
    }
    Ok(parts.join(","))
}

/// Fires the schedules' slots into `fired` until `shutdown` completes or nobody receives.
///
/// One task serves every schedule: it sleeps until the earliest next slot (at most
/// [`MAX_SLEEP`]), then reads the wall clock again, because a sleep can wake late or
/// early against the wall clock and the clock itself can jump. Each slot fires at most
/// once: a schedule's next slot is always computed after the last one fired. When several
/// slots of one schedule are due at once (the machine was suspended, the clock jumped
/// forward), only the latest fires; when the clock is set back, slots are recomputed from
/// the new time but never at or before a slot already fired.
///
/// Slots missed while the process was not running are not replayed: the first slots
/// considered are those after start-up. Disabled schedules never fire.
pub async fn run(
    schedules: Vec<Schedule>,
    fired: mpsc::Sender<Event>,
    shutdown: impl Future<Output = ()>,
) {
    let mut shutdown = std::pin::pin!(shutdown);
    let (schedules, disabled): (Vec<Schedule>, Vec<Schedule>) =
        schedules.into_iter().partition(Schedule::enabled);
    for schedule in &disabled {
        tracing::info!(schedule = %schedule.id(), "schedule disabled");
    }
    let started = Utc::now();
    // The last slot fired per schedule: the next is always computed after it.
    let mut last_fired: Vec<Option<DateTime<Utc>>> = vec![None; schedules.len()];
    let mut next: Vec<Option<DateTime<Utc>>> = schedules
        .iter()
        .map(|schedule| schedule.next_after(started))
        .collect();
    for (schedule, slot) in schedules.iter().zip(&next) {
        tracing::info!(schedule = %schedule.id(), timezone = %schedule.timezone(), next = ?slot, "schedule armed");
    }
    let mut previous_now = started;
    loop {
        let now = Utc::now();
        if now < previous_now - TimeDelta::seconds(1) {
            // The clock was set back: slots computed from the later time may be far off.
            // Recompute them, never before a slot already fired.
            tracing::warn!(from = %previous_now, to = %now, "wall clock went back: rescheduling");
            for (index, schedule) in schedules.iter().enumerate() {
                let from = last_fired[index].map_or(now, |last| last.max(now));
                next[index] = schedule.next_after(from);
            }
        }
        previous_now = now;
        let mut due: Vec<(DateTime<Utc>, usize)> = Vec::new();
        for (index, schedule) in schedules.iter().enumerate() {
            let Some(slot) = next[index].filter(|slot| *slot <= now) else {
                continue;
            };
            let latest = schedule
                .latest_at_or_before(now)
                .filter(|latest| *latest > slot)
                .unwrap_or(slot);
            if latest > slot {
                tracing::warn!(
                    schedule = %schedule.id(), first_skipped = %slot, firing = %latest,
                    "fell behind the clock (suspend or clock jump): firing only the latest due slot"
                );
            }
            if last_fired[index].is_some_and(|last| latest <= last) {
                next[index] = schedule.next_after(now);
                continue;
            }
            due.push((latest, index));
            last_fired[index] = Some(latest);
            next[index] = schedule.next_after(now.max(latest));
        }
        due.sort();
        for (slot, index) in due {
            let event = schedules[index].event(slot);
            tracing::info!(
                schedule = %schedules[index].id(), scheduled_for = %slot, event = %event.id,
                late_ms = (now - slot).num_milliseconds(), "schedule fired"
            );
            tokio::select! {
                () = &mut shutdown => return,
                sent = fired.send(event) => if sent.is_err() {
                    tracing::info!("nobody receives fired schedules: scheduler stops");
                    return;
                },
            }
        }
        let sleep = next
            .iter()
            .flatten()
            .min()
            .map(|slot| (*slot - Utc::now()).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(MAX_SLEEP)
            .min(MAX_SLEEP);
        tokio::select! {
            () = &mut shutdown => {
                tracing::info!("scheduler stopped");
                return;
            }
            () = tokio::time::sleep(sleep) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("test time")
            .with_timezone(&Utc)
    }

    fn schedule(cron: &str, timezone: Option<&str>) -> Result<Schedule, ScheduleError> {
        Schedule::new(ScheduleConfig {
            id: "s".into(),
            cron: cron.into(),
            timezone: timezone.map(str::to_string),
            target: None,
            conversation: None,
            data: serde_json::Value::Null,
            enabled: true,
        })
    }

    fn next(cron: &str, timezone: Option<&str>, after: &str) -> String {
        schedule(cron, timezone)
            .expect("valid schedule")
            .next_after(at(after))
            .expect("a next slot")
            .to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    #[test]
    fn five_six_and_seven_fields_parse() {
        // Five fields: whole minutes.
        assert_eq!(
            next("*/5 * * * *", None, "2026-11-24T00:00:00Z"),
            "2026-11-24T00:05:00Z"
        );
        // Six: seconds first.
        assert_eq!(
            next("30 */5 * * * *", None, "2026-11-24T00:00:00Z"),
            "2026-11-24T00:00:30Z"
        );
        // Seven: a year last.
        assert_eq!(
            next("0 0 12 * * * 2027", None, "2026-11-24T00:00:00Z"),
            "2027-01-01T12:00:00Z"
        );
        assert_eq!(
            next("@daily", None, "2026-11-24T00:00:00Z"),
            "2026-11-25T00:00:00Z"
        );
        // Strictly after: a slot at `after` itself is not next.
        assert_eq!(
            next("0 * * * *", None, "2026-11-24T01:00:00Z"),
            "2026-11-24T02:00:00Z"
        );
    }

    #[test]
    fn weekdays_in_shanghai() {
        let cron = "0 9 * * 1-5";
        let zone = Some("Asia/Shanghai");
        // Tuesday 08:00 in Shanghai → 09:00 that day.
        assert_eq!(
            next(cron, zone, "2026-11-24T00:00:00Z"),
            "2026-11-24T01:00:00Z"
        );
        // Thursday 10:00 → Friday 09:00: 5 is Friday, as in crontab.
        assert_eq!(
            next(cron, zone, "2026-11-26T02:00:00Z"),
            "2026-11-27T01:00:00Z"
        );
        // Friday 09:00 → Monday: Saturday and Sunday are skipped.
        assert_eq!(
            next(cron, zone, "2026-11-27T01:00:00Z"),
            "2026-11-30T01:00:00Z"
        );
        // Named days mean the same.
        assert_eq!(
            next("0 9 * * MON-FRI", zone, "2026-11-27T01:00:00Z"),
            "2026-11-30T01:00:00Z"
        );
    }

    #[test]
    fn daylight_saving_changes() {
        let zone = Some("America/New_York");
        // 2026-11-01: 01:00-02:00 happens twice. 01:30 fires at its first occurrence...
        assert_eq!(
            next("30 1 * * *", zone, "2026-11-01T04:00:00Z"),
            "2026-11-01T05:30:00Z"
        );
        // ...not again at the second...
        assert_eq!(
            next("30 1 * * *", zone, "2026-11-01T05:30:00Z"),
            "2026-11-02T06:30:00Z"
        );
        // ...and never in the past when asked during the repeated hour.
        assert_eq!(
            next("30 1 * * *", zone, "2026-11-01T06:10:00Z"),
            "2026-11-01T06:30:00Z"
        );
        // 2026-03-08: 02:30 does not exist; that day is skipped.
        assert_eq!(
            next("30 2 * * *", zone, "2026-03-08T05:00:00Z"),
            "2026-03-09T06:30:00Z"
        );
    }

    #[test]
    fn crontab_weekday_numbers() {
        // Tuesday 2026-11-24: the next Sunday is the 29th, whether written 0 or 7.
        for cron in ["0 12 * * 0", "0 12 * * 7", "0 12 * * SUN"] {
            assert_eq!(
                next(cron, None, "2026-11-24T00:00:00Z"),
                "2026-11-29T12:00:00Z",
                "{cron}"
            );
        }
        // 5-7 is Friday to Sunday.
        assert_eq!(
            next("0 12 * * 5-7", None, "2026-11-28T13:00:00Z"),
            "2026-11-29T12:00:00Z"
        );
        assert_eq!(
            next("0 12 * * 5-7", None, "2026-11-29T13:00:00Z"),
            "2026-12-04T12:00:00Z"
        );
        // Both restricted: the 1st of the month or a Monday, as crontab(5) says.
        let cron = "0 0 1 * 1";
        assert_eq!(
            next(cron, None, "2026-11-24T00:00:00Z"),
            "2026-11-30T00:00:00Z"
        );
        assert_eq!(
            next(cron, None, "2026-11-30T00:00:00Z"),
            "2026-12-01T00:00:00Z"
        );
    }

    #[test]
    fn bad_input_says_what_is_wrong() {
        let error = schedule("61 * * * *", None).expect_err("bad minute");
        let message = error.to_string();
        assert!(
            message.starts_with("bad cron expression \"61 * * * *\": "),
            "{message}"
        );
        assert!(message.contains("'61'"), "names the bad value: {message}");
        assert!(!message.contains('\n'), "one line: {message}");
        let message = schedule("0 0 30 2 *", None)
            .expect_err("Feb 30")
            .to_string();
        assert!(message.contains("no date from now on"), "{message}");
        let message = schedule("0 9 * * MON-5", None)
            .expect_err("mixed")
            .to_string();
        assert!(message.contains("mixes names and numbers"), "{message}");
        let message = schedule("* * *", None).expect_err("3 fields").to_string();
        assert!(message.contains("expected 5 fields"), "{message}");
        let message = schedule("0 9 * * 8", None).expect_err("day 8").to_string();
        assert!(
            message.contains("day of week \"8\" is not 0-7"),
            "{message}"
        );
        let message = schedule("0 9 * * 5-1", None)
            .expect_err("backwards")
            .to_string();
        assert!(message.contains("runs backwards"), "{message}");
        let message = schedule("0 9 * * *", Some("Mars/Olympus"))
            .expect_err("bad zone")
            .to_string();
        assert!(
            message.starts_with("unknown time zone \"Mars/Olympus\""),
            "{message}"
        );
    }

    #[test]
    fn config_defaults_and_unknown_fields() {
        let config: ScheduleConfig =
            toml::from_str("id = \"daily\"\ncron = \"0 9 * * *\"").expect("minimal config");
        assert!(config.enabled);
        assert_eq!(config.timezone, None);
        assert_eq!(config.data, serde_json::Value::Null);
        let schedule = Schedule::new(config).expect("valid");
        assert_eq!(schedule.timezone(), Tz::UTC);
        let error = toml::from_str::<ScheduleConfig>("id = \"x\"\ncron = \"* * * * *\"\ncorn = 1")
            .expect_err("typo");
        assert!(error.to_string().contains("corn"), "{error}");
    }

    #[test]
    fn event_names_the_slot() {
        let schedule = Schedule::new(ScheduleConfig {
            id: "standup".into(),
            cron: "0 9 * * 1-5".into(),
            timezone: Some("Asia/Shanghai".into()),
            target: Some("phone-1".into()),
            conversation: Some("项目群".into()),
            data: serde_json::json!({"text": "站会"}),
            enabled: true,
        })
        .expect("valid");
        let slot = at("2026-11-24T01:00:00Z");
        let event = schedule.event(slot);
        assert_eq!(event.event_type, "schedule.fired");
        assert_eq!(event.source, "scheduler");
        assert_eq!(event.platform, "schedule");
        assert_eq!(
            event.idempotency_key,
            "schedule:standup:2026-11-24T01:00:00Z"
        );
        assert_eq!(event.id, event_id(&event.idempotency_key));
        let conversation = event.conversation.as_ref().expect("conversation");
        assert_eq!(conversation.id, "项目群");
        assert_eq!(conversation.kind, ConversationKind::Group);
        assert_eq!(event.raw["schedule"], "standup");
        assert_eq!(event.raw["scheduled_for"], "2026-11-24T01:00:00Z");
        assert_eq!(event.raw["target"], "phone-1");
        assert_eq!(event.raw["conversation"], "项目群");
        assert_eq!(event.raw["data"]["text"], "站会");
        assert!(humantime::parse_rfc3339(&event.timestamp).is_ok());
        // The same slot gives the same identity; the next slot another.
        let again = schedule.event(slot);
        assert_eq!(
            (again.id, again.idempotency_key),
            (event.id.clone(), event.idempotency_key.clone())
        );
        assert_ne!(schedule.event(at("2026-11-25T01:00:00Z")).id, event.id);
    }

    #[test]
    fn latest_due_slot() {
        let schedule = schedule("0 * * * *", None).expect("valid");
        assert_eq!(
            schedule.latest_at_or_before(at("2026-11-24T05:00:00Z")),
            Some(at("2026-11-24T05:00:00Z"))
        );
        assert_eq!(
            schedule.latest_at_or_before(at("2026-11-24T05:59:59.900Z")),
            Some(at("2026-11-24T05:00:00Z"))
        );
    }

    #[tokio::test]
    async fn run_fires_each_slot_once_and_stops_on_shutdown() {
        let every_second = schedule("* * * * * *", None).expect("valid");
        let mut disabled = schedule("* * * * * *", None).expect("valid");
        disabled.config.id = "off".into();
        disabled.config.enabled = false;
        let (fired_tx, mut fired) = mpsc::channel(16);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run(vec![every_second, disabled], fired_tx, async {
            let _ = stopped.await;
        }));

        tokio::time::sleep(Duration::from_millis(2500)).await;
        stop.send(()).expect("runner alive");
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .expect("stops on shutdown")
            .expect("no panic");

        let mut events = Vec::new();
        // The runner dropped its sender: this drains and ends.
        while let Some(event) = fired.recv().await {
            events.push(event);
        }
        assert!(events.len() >= 2, "{events:?}");
        let slots: Vec<&str> = events
            .iter()
            .map(|event| event.raw["scheduled_for"].as_str().expect("slot"))
            .collect();
        assert!(slots.windows(2).all(|pair| pair[0] < pair[1]), "{slots:?}");
        assert!(events.iter().all(|event| event.raw["schedule"] == "s"));
    }
}
