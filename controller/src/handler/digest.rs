//! Group digests: what a conversation said, summarised by a chat model, from what Tapwire
//! stored. Asked for in the chat (a pipeline prefix: `/digest`, `/digest 50`,
//! `/digest 2h`, `/digest 今天`) or by a schedule (`raw.data`: `{"last": 200}` or
//! `{"since": "24h"}`, and `"to": {"target", "conversation"}` to post it elsewhere). The
//! transcript (`[HH:MM] sender: text`, the newest kept when it is too long) goes to the
//! `llm` handler named in the config, as the text of an event in the conversation the
//! digest is for, so that handler's retries, streaming and dead-lettering apply and its
//! answer goes where the digest goes. Give it an `llm` handler of its own with
//! `memory_turns = 0`: a transcript is no exchange worth remembering.
//!
//! Who may ask: anyone in a chat where the route sends it, unless `permission = true`;
//! then an admin or a grant of scene `digest` (command `run`). Either way, one digest per
//! conversation per `min_interval_secs`, so a chat cannot spend the model's budget by
//! asking again and again (schedules run when they are told to).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use serde::Deserialize;

use super::{ConfigProblem, ConfigScope, Handler, HandlerContext, HandlerError, Outcome};
use crate::event::{Action, Conversation, ConversationKind, Event, Segment};
use crate::permission::user_key;
use crate::schedule::SCHEDULE_FIRED;

/// The permission scene `permission = true` checks (command [`COMMAND`]).
pub const SCENE: &str = "digest";
pub const COMMAND: &str = "run";

/// More messages than this make a prompt no model reads well.
const MAX_MESSAGES: usize = 2000;

/// `[handlers.NAME]` with `type = "digest"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestConfig {
    /// The `llm` handler that writes the summary.
    pub llm: String,
    /// Messages summarised when the request names no span.
    #[serde(default = "default_last")]
    pub last: usize,
    /// The most messages one digest reads, whatever the request says.
    #[serde(default = "default_max_messages")]
    pub max_messages: usize,
    /// The most characters of transcript sent (the newest kept).
    #[serde(default = "default_max_chars")]
    pub max_chars: usize,
    /// What the model is asked to do with the transcript.
    #[serde(default = "default_instruction")]
    pub instruction: String,
    /// Require scene `digest` (command `run`) or an admin.
    #[serde(default)]
    pub permission: bool,
    #[serde(default = "default_min_interval_secs")]
    pub min_interval_secs: u64,
}

fn default_last() -> usize {
    100
}
fn default_max_messages() -> usize {
    500
}
fn default_max_chars() -> usize {
    12_000
}
fn default_min_interval_secs() -> u64 {
    60
}
fn default_instruction() -> String {
    "请用中文总结下面这段群聊：列出讨论的主要话题、达成的结论和待办事项（注明负责人），不要编造聊天里没有的内容。".into()
}

impl DigestConfig {
    pub fn check(&self, scope: &dyn ConfigScope) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        if !scope.handler_exists(&self.llm) {
            problems.push(ConfigProblem::at(
                "llm",
                format!(
                    "llm {:?} is not a handler (declare [handlers.{}] type = \"llm\")",
                    self.llm, self.llm
                ),
            ));
        }
        if self.max_messages == 0 || self.max_messages > MAX_MESSAGES {
            problems.push(ConfigProblem::at(
                "max_messages",
                format!("max_messages must be 1 to {MAX_MESSAGES}"),
            ));
        }
        if self.last == 0 || self.last > self.max_messages {
            problems.push(ConfigProblem::at(
                "last",
                "last must be at least 1 and at most max_messages",
            ));
        }
        if self.max_chars < 200 {
            problems.push(ConfigProblem::at(
                "max_chars",
                "max_chars must be at least 200",
            ));
        }
        problems
    }
}

/// Which messages a digest covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    Last(usize),
    Since(Duration),
    /// Since midnight UTC+8, the day WeChat users mean.
    Today,
}

/// Reads what follows the prefix: nothing, a count (`50`), a duration (`30m`, `2h`,
/// `1d`, `2小时`, `30分钟`, `1天`) or `today` / `今天`.
pub fn parse_span(text: &str) -> Result<Option<Span>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if matches!(text, "today" | "今天" | "今日") {
        return Ok(Some(Span::Today));
    }
    if let Ok(count) = text.parse::<usize>() {
        return if count == 0 {
            Err(usage(text))
        } else {
            Ok(Some(Span::Last(count)))
        };
    }
    let split = text
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit())
        .map_or(text.len(), |(i, _)| i);
    let (number, unit) = text.split_at(split);
    let amount: u64 = number.parse().map_err(|_| usage(text))?;
    let seconds = match unit.trim() {
        "m" | "min" | "分钟" | "分" => 60,
        "h" | "小时" | "个小时" | "时" => 3600,
        "d" | "天" => 86_400,
        _ => return Err(usage(text)),
    };
    if amount == 0 {
        return Err(usage(text));
    }
    Ok(Some(Span::Since(Duration::from_secs(
        amount.saturating_mul(seconds),
    ))))
}

fn usage(text: &str) -> String {
    format!("不明白 \"{text}\"：可以写条数（50）、时长（30m、2h、1d）或 今天")
}

/// A transcript line per message, `[HH:MM] sender: text` (times in UTC+8, as the chat
/// shows them to its members), the newest kept within `max_chars`.
pub fn transcript(messages: &[Event], max_chars: usize) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut used = 0;
    for event in messages.iter().rev() {
        let Some(text) = event.text().filter(|t| !t.trim().is_empty()) else {
            continue;
        };
        let who = event.sender.as_ref().map_or("?", |s| {
            if s.is_self {
                "我"
            } else {
                s.display_name.as_deref().unwrap_or(&s.id)
            }
        });
        let line = format!("[{}] {who}: {}", clock_of(&event.timestamp), text.trim());
        let cost = line.chars().count() + 1;
        if used + cost > max_chars && !lines.is_empty() {
            break;
        }
        used += cost;
        lines.push(line);
    }
    lines.reverse();
    lines.join("\n")
}

/// `HH:MM` in UTC+8 of an RFC 3339 UTC stamp; the stamp as is when it is not one.
fn clock_of(stamp: &str) -> String {
    let parsed = humantime::parse_rfc3339_weak(stamp);
    match parsed {
        Ok(at) => {
            let secs = at
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
                + 8 * 3600;
            format!("{:02}:{:02}", (secs / 3600) % 24, (secs / 60) % 60)
        }
        Err(_) => stamp.to_string(),
    }
}

pub struct Digest {
    name: String,
    config: DigestConfig,
    /// When each conversation last had a digest.
    last_run: Mutex<HashMap<String, Instant>>,
}

impl Digest {
    pub fn new(name: &str, config: &DigestConfig) -> Digest {
        Digest {
            name: name.to_string(),
            config: config.clone(),
            last_run: Mutex::new(HashMap::new()),
        }
    }

    /// Where the digest is of, where it goes, and which span, from the event.
    fn request(&self, event: &Event) -> Result<Option<Request>, String> {
        if event.event_type == SCHEDULE_FIRED {
            let raw = &event.raw;
            let (Some(source), Some(conversation)) =
                (raw["target"].as_str(), raw["conversation"].as_str())
            else {
                return Err(format!(
                    "digest {:?}: the schedule names no target and conversation to summarise",
                    self.name
                ));
            };
            let data = &raw["data"];
            let span = match (data["last"].as_u64(), data["since"].as_str()) {
                (Some(n), _) => parse_span(&n.to_string())?,
                (None, Some(since)) => parse_span(since)?,
                (None, None) => None,
            };
            let to = match (
                data["to"]["target"].as_str(),
                data["to"]["conversation"].as_str(),
            ) {
                (Some(t), Some(c)) => (t.to_string(), c.to_string()),
                _ => (source.to_string(), conversation.to_string()),
            };
            return Ok(Some(Request {
                source: source.to_string(),
                conversation: conversation.to_string(),
                span,
                to,
            }));
        }
        // Its own messages (a phone reading back what it sent) never ask.
        if event.sender.as_ref().is_none_or(|s| s.is_self) {
            return Ok(None);
        }
        let Some(conversation) = &event.conversation else {
            return Ok(None);
        };
        let span = parse_span(&event.text().unwrap_or_default())?;
        Ok(Some(Request {
            source: event.source.clone(),
            conversation: conversation.id.clone(),
            span,
            to: (event.source.clone(), conversation.id.clone()),
        }))
    }

    /// Whether `conversation` may have a digest now; if so, now is noted.
    fn take_turn(&self, conversation: &str) -> Option<Duration> {
        let gap = Duration::from_secs(self.config.min_interval_secs);
        let mut last = self.last_run.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if let Some(at) = last.get(conversation)
            && now.duration_since(*at) < gap
        {
            return Some(gap - now.duration_since(*at));
        }
        last.insert(conversation.to_string(), now);
        None
    }
}

struct Request {
    source: String,
    conversation: String,
    span: Option<Span>,
    /// (target, conversation) the digest is posted to.
    to: (String, String),
}

fn reply_to(event: &Event, text: impl Into<String>) -> Outcome {
    match &event.conversation {
        Some(conversation) => Outcome::actions(vec![Action::send(
            event.source.clone(),
            conversation.id.clone(),
            text,
        )]),
        None => Outcome::default(),
    }
}

#[async_trait]
impl Handler for Digest {
    async fn handle(
        &self,
        ctx: &HandlerContext<'_>,
        event: &Event,
    ) -> Result<Outcome, HandlerError> {
        let request = match self.request(event) {
            Ok(Some(request)) => request,
            Ok(None) => return Ok(Outcome::default()),
            Err(message) if event.event_type == SCHEDULE_FIRED => {
                tracing::error!(handler = %self.name, event = %event.id, "{message}");
                return Ok(Outcome::default());
            }
            Err(message) => return Ok(reply_to(event, message)),
        };
        if self.config.permission && event.event_type != SCHEDULE_FIRED {
            let user = user_key(event).unwrap_or_default();
            if !ctx.access(&user).await?.may(SCENE, COMMAND, false) {
                return Ok(reply_to(
                    event,
                    format!("没有权限：需要 {SCENE} {COMMAND} 的授权"),
                ));
            }
        }
        let key = format!("{}/{}", request.source, request.conversation);
        // A schedule is the operator's own choice of how often; the wait is for chats.
        if event.event_type != SCHEDULE_FIRED
            && let Some(wait) = self.take_turn(&key)
        {
            return Ok(reply_to(
                event,
                format!("刚总结过，请 {} 秒后再试", wait.as_secs().max(1)),
            ));
        }
        let (since, limit) = match request.span {
            None => (None, self.config.last),
            Some(Span::Last(n)) => (None, n),
            Some(Span::Since(ago)) => (
                Some(stamp(
                    SystemTime::now()
                        .checked_sub(ago)
                        .unwrap_or(SystemTime::UNIX_EPOCH),
                )),
                self.config.max_messages,
            ),
            Some(Span::Today) => (
                Some(start_of_day_utc8(SystemTime::now())),
                self.config.max_messages,
            ),
        };
        let limit = limit.min(self.config.max_messages);
        // One more than asked: the request itself is among the newest and left out.
        let mut messages = ctx
            .messages_in(
                &request.source,
                &request.conversation,
                since.as_deref(),
                limit + 1,
            )
            .await?;
        messages.retain(|m| m.id != event.id);
        let excess = messages.len().saturating_sub(limit);
        messages.drain(..excess);
        let (target, to_conversation) = request.to;
        let body = transcript(&messages, self.config.max_chars);
        if body.is_empty() {
            return Ok(Outcome::actions(vec![Action::send(
                target,
                to_conversation,
                "这段时间没有可总结的消息。",
            )]));
        }
        tracing::info!(handler = %self.name, event = %event.id, conversation = %key, messages = messages.len(), chars = body.chars().count(), "digest asked of the model");
        let mut ask = event.clone();
        ask.event_type = crate::event::types::MESSAGE_RECEIVED.into();
        ask.source = target;
        ask.conversation = Some(Conversation {
            id: to_conversation,
            title: None,
            kind: ConversationKind::Group,
        });
        if ask.sender.is_none() {
            ask.sender = Some(crate::event::Sender {
                id: format!("digest:{}", self.name),
                display_name: None,
                is_self: false,
            });
        }
        ask.content = vec![Segment::Text {
            text: format!("{}\n\n{body}", self.config.instruction),
        }];
        ctx.handle(&self.config.llm, &ask).await
    }
}

/// RFC 3339 UTC with milliseconds, as the store stamps events.
fn stamp(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// Midnight of the current day in UTC+8, as RFC 3339 UTC.
fn start_of_day_utc8(now: SystemTime) -> String {
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let local_midnight = (secs + 8 * 3600) / 86_400 * 86_400;
    stamp(SystemTime::UNIX_EPOCH + Duration::from_secs(local_midnight.saturating_sub(8 * 3600)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::test_message;

    #[test]
    fn spans_are_counts_durations_or_today_and_anything_else_says_how() {
        assert_eq!(parse_span(""), Ok(None));
        assert_eq!(parse_span(" 50 "), Ok(Some(Span::Last(50))));
        assert_eq!(
            parse_span("30m"),
            Ok(Some(Span::Since(Duration::from_secs(1800))))
        );
        assert_eq!(
            parse_span("2h"),
            Ok(Some(Span::Since(Duration::from_secs(7200))))
        );
        assert_eq!(
            parse_span("2小时"),
            Ok(Some(Span::Since(Duration::from_secs(7200))))
        );
        assert_eq!(
            parse_span("1天"),
            Ok(Some(Span::Since(Duration::from_secs(86_400))))
        );
        assert_eq!(parse_span("今天"), Ok(Some(Span::Today)));
        for bad in ["0", "0h", "2y", "lots", "h"] {
            let error = parse_span(bad).expect_err(bad);
            assert!(error.contains("30m"), "{bad}: {error}");
        }
    }

    fn said(n: u32, who: &str, text: &str, stamp: &str) -> Event {
        let mut event = test_message("phone", "项目群", text, who == "我");
        event.id = format!("ev_{n}");
        event.timestamp = stamp.into();
        if let Some(sender) = &mut event.sender {
            sender.id = who.into();
            sender.display_name = Some(who.into());
        }
        event
    }

    #[test]
    fn the_transcript_names_times_in_china_and_keeps_the_newest_within_the_budget() {
        let messages = vec![
            said(1, "王芳", "早上好", "2026-11-30T01:05:00.000Z"),
            said(2, "我", "收到", "2026-11-30T01:06:00Z"),
            said(3, "李雷", "  下午三点开会  ", "2026-11-30T06:30:00.000Z"),
        ];
        assert_eq!(
            transcript(&messages, 1000),
            "[09:05] 王芳: 早上好\n[09:06] 我: 收到\n[14:30] 李雷: 下午三点开会"
        );
        // Room for the newest two lines only.
        assert_eq!(
            transcript(&messages, 40),
            "[09:06] 我: 收到\n[14:30] 李雷: 下午三点开会"
        );
    }

    #[test]
    fn the_day_starts_at_midnight_in_china() {
        // 2026-11-30T17:00Z is 01:00 on Dec 1 in UTC+8: the day began at 16:00Z.
        let at = humantime::parse_rfc3339("2026-11-30T17:00:00Z").expect("time");
        assert!(start_of_day_utc8(at).starts_with("2026-11-30T16:00:00"));
        let at = humantime::parse_rfc3339("2026-11-30T15:59:00Z").expect("time");
        assert!(start_of_day_utc8(at).starts_with("2026-11-29T16:00:00"));
    }
}
