//! What the adapter remembers of each message it was sent, for the hour its answer may
//! take: the stream WeCom keeps asking about, which deliveries belong to it, and the
//! message's one-use `response_url`. In memory only: a stream outlives neither a restart
//! nor WeCom's six minutes, and a `response_url` not its hour.
//!
//! WeCom's rules (developer.work.weixin.qq.com/document/path/…):
//! - 101031 被动回复消息 · 流式消息回复: the first answer to a message sets `stream.id`;
//!   WeCom then calls back with that id and is answered with the content so far
//!   ("第一次回复内容为"1"，第二次回复"123"，则此时消息展示内容"123""), at most 20480 bytes,
//!   markdown, until `finish` is true.
//! - 100719 接收消息: the refreshes come "从用户发消息开始最多等待6min，超过6min结束推送".
//! - 101138 主动回复消息: "每个 response_url 用户可以调用接口一次，该 response_url 有效期为
//!   1 个小时".
//!
//! So an answer goes into its message's stream while the stream is open; once the stream
//! has closed (finished, or its window passed) the answer's parts are gathered and the
//! whole goes once through the message's `response_url`. A send that answers no message
//! of ours uses the conversation's latest unused `response_url`.

use std::time::{Duration, Instant};

use crate::adapter::Answering;
use crate::adapter::split::truncated;

/// 101138: a `response_url` lasts an hour; nothing is kept longer.
pub const RESPONSE_URL_LIFE: Duration = Duration::from_secs(3600);
/// 101031: stream content and markdown are at most 20480 bytes.
pub const MAX_CONTENT_BYTES: usize = 20480;
/// Between the parts of one answer.
const PART_SEPARATOR: &str = "\n\n";

/// What a refresh (or the first answer) shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub id: String,
    pub content: String,
    pub finish: bool,
}

/// Where a delivery goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Into the stream: WeCom's next refresh shows it.
    Streamed,
    /// A late answer's part, kept until its last part comes.
    Held,
    /// Nothing to do, for this reason (an acknowledgement after the stream closed).
    Dropped(&'static str),
    /// Post `content` once to `url`, then say how it went with [`Exchanges::posted`].
    Post {
        event: String,
        url: String,
        content: String,
    },
    /// It cannot go anywhere, for this reason.
    Refused(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Ack,
    Answer { last: bool },
}

#[derive(Debug)]
struct Stream {
    id: String,
    /// What stands in for the answer: an acknowledgement, or the answer so far.
    interim: String,
    /// `interim` is the answer so far (an acknowledgement must not replace it).
    partial: bool,
    /// The answer's parts delivered in time.
    answer: String,
    finished: bool,
}

#[derive(Debug)]
struct Exchange {
    event: String,
    msgid: String,
    conversation: String,
    received: Instant,
    /// None when there was none, or once it has been used.
    response_url: Option<String>,
    stream: Option<Stream>,
    /// Actions announced as part of this answer and not yet delivered.
    announced: Vec<(String, Part)>,
    /// Parts of an answer that missed the stream, until its last part.
    late: String,
}

impl Exchange {
    fn in_window(&self, window: Duration, now: Instant) -> bool {
        now.saturating_duration_since(self.received) < window
    }

    /// The stream, while an answer can still appear in it.
    fn open_stream(&mut self, window: Duration, now: Instant) -> Option<&mut Stream> {
        let open = self.in_window(window, now);
        self.stream.as_mut().filter(|s| open && !s.finished)
    }

    fn fresh_url(&self, now: Instant) -> Option<&str> {
        self.response_url
            .as_deref()
            .filter(|_| now.saturating_duration_since(self.received) < RESPONSE_URL_LIFE)
    }
}

/// The table of messages of the last hour.
#[derive(Debug)]
pub struct Exchanges {
    items: Vec<Exchange>,
    /// How long after its message an answer may still appear in the stream.
    window: Duration,
}

impl Exchanges {
    pub fn new(window: Duration) -> Exchanges {
        Exchanges {
            items: Vec::new(),
            window,
        }
    }

    /// Remembers a message (and its event); `stream` names the stream its answer shows
    /// in, if it has one (messages do, events do not). False if this msgid is remembered
    /// already (WeCom sent it again): the first stays as it is.
    pub fn open(
        &mut self,
        event: &str,
        msgid: &str,
        conversation: &str,
        response_url: Option<String>,
        stream: Option<String>,
        now: Instant,
    ) -> bool {
        self.prune(now);
        if self.items.iter().any(|x| x.msgid == msgid) {
            return false;
        }
        self.items.push(Exchange {
            event: event.to_string(),
            msgid: msgid.to_string(),
            conversation: conversation.to_string(),
            received: now,
            response_url,
            stream: stream.map(|id| Stream {
                id,
                interim: String::new(),
                partial: false,
                answer: String::new(),
                finished: false,
            }),
            announced: Vec::new(),
            late: String::new(),
        });
        true
    }

    /// Forgets a message that turned out not to need an answer from this run (its event
    /// was stored before).
    pub fn forget(&mut self, event: &str) {
        self.items.retain(|x| x.event != event);
    }

    /// A message with this msgid is known: WeCom sent it again. Its stream as it is now,
    /// if it has one.
    pub fn known(&mut self, msgid: &str, now: Instant, ack_text: &str) -> Option<Option<Shown>> {
        let index = self.items.iter().position(|x| x.msgid == msgid)?;
        Some(self.show(index, now, ack_text))
    }

    /// What stream `id` shows now; None for a stream not known (from before a restart,
    /// or more than an hour old).
    pub fn refresh(&mut self, id: &str, now: Instant, ack_text: &str) -> Option<Shown> {
        let index = self
            .items
            .iter()
            .position(|x| x.stream.as_ref().is_some_and(|s| s.id == id))?;
        self.show(index, now, ack_text)
    }

    /// The stream's content so far. Past its window the stream is finished with what it
    /// shows, or with the acknowledgement if it shows nothing yet: the answer will come
    /// through the `response_url`.
    fn show(&mut self, index: usize, now: Instant, ack_text: &str) -> Option<Shown> {
        let window = self.window;
        let exchange = &mut self.items[index];
        let in_window = exchange.in_window(window, now);
        let stream = exchange.stream.as_mut()?;
        if !in_window && !stream.finished {
            stream.finished = true;
            if stream.answer.is_empty() && stream.interim.is_empty() {
                stream.interim = ack_text.to_string();
            }
        }
        let content = if stream.answer.is_empty() {
            &stream.interim
        } else {
            &stream.answer
        };
        Some(Shown {
            id: stream.id.clone(),
            content: truncated(content, MAX_CONTENT_BYTES).to_string(),
            finish: stream.finished,
        })
    }

    /// What the runtime says about the answer to `event`.
    pub fn answering(&mut self, event: &str, progress: Answering<'_>, now: Instant) {
        let window = self.window;
        let Some(exchange) = self.items.iter_mut().find(|x| x.event == event) else {
            return;
        };
        match progress {
            Answering::Partial(text) => {
                if let Some(stream) = exchange.open_stream(window, now) {
                    stream.interim = text.to_string();
                    stream.partial = true;
                }
            }
            Answering::Acknowledged { action } => {
                exchange.announced.push((action.to_string(), Part::Ack));
            }
            Answering::Answer { action, last } => {
                exchange
                    .announced
                    .push((action.to_string(), Part::Answer { last }));
            }
            Answering::Unanswered => {
                if let Some(stream) = exchange.open_stream(window, now) {
                    stream.finished = true;
                    if !stream.partial {
                        stream.interim.clear();
                    }
                }
            }
        }
    }

    /// Where the action `action` (text for `conversation`) goes.
    pub fn deliver(
        &mut self,
        action: &str,
        conversation: &str,
        text: &str,
        now: Instant,
    ) -> Delivery {
        self.prune(now);
        let window = self.window;
        let found = self.items.iter_mut().find_map(|x| {
            let part = x.announced.iter().find(|(id, _)| id == action)?.1;
            Some((x, part))
        });
        let Some((exchange, part)) = found else {
            return self.unannounced(conversation, text, now);
        };
        let done = |x: &mut Exchange| x.announced.retain(|(id, _)| id != action);
        if let Some(stream) = exchange.open_stream(window, now) {
            match part {
                Part::Ack => {
                    if !stream.partial && stream.answer.is_empty() {
                        stream.interim = text.to_string();
                    }
                }
                Part::Answer { last } => {
                    if !stream.answer.is_empty() {
                        stream.answer.push_str(PART_SEPARATOR);
                    }
                    stream.answer.push_str(text);
                    stream.finished = last;
                }
            }
            done(exchange);
            return Delivery::Streamed;
        }
        match part {
            Part::Ack => {
                done(exchange);
                Delivery::Dropped("an acknowledgement after the stream closed")
            }
            Part::Answer { last: false } => {
                if !exchange.late.is_empty() {
                    exchange.late.push_str(PART_SEPARATOR);
                }
                exchange.late.push_str(text);
                done(exchange);
                Delivery::Held
            }
            Part::Answer { last: true } => {
                let content = if exchange.late.is_empty() {
                    text.to_string()
                } else {
                    format!("{}{PART_SEPARATOR}{text}", exchange.late)
                };
                match exchange.fresh_url(now) {
                    Some(url) => Delivery::Post {
                        event: exchange.event.clone(),
                        url: url.to_string(),
                        content,
                    },
                    None => Delivery::Refused(format!(
                        "the answer to message {} came after its stream closed, and {}",
                        exchange.msgid,
                        no_url_because(exchange, now)
                    )),
                }
            }
        }
    }

    /// A send that answers no message of ours: the conversation's latest unused
    /// `response_url`, if any.
    fn unannounced(&mut self, conversation: &str, text: &str, now: Instant) -> Delivery {
        let latest = self
            .items
            .iter()
            .rev()
            .filter(|x| x.conversation == conversation)
            .find_map(|x| Some((x.event.clone(), x.fresh_url(now)?.to_string())));
        match latest {
            Some((event, url)) => Delivery::Post {
                event,
                url,
                content: text.to_string(),
            },
            None => Delivery::Refused(format!(
                "a WeCom AI bot can only answer messages: no message from {conversation:?} in the last hour left a response_url unused (each works once, for an hour)"
            )),
        }
    }

    /// How a [`Delivery::Post`] went: `spent` when the `response_url` must not be used
    /// again (it was taken, or WeCom refused it); not after a failure worth retrying.
    pub fn posted(&mut self, event: &str, action: &str, spent: bool) {
        if !spent {
            return;
        }
        if let Some(exchange) = self.items.iter_mut().find(|x| x.event == event) {
            exchange.response_url = None;
            exchange.late.clear();
            exchange.announced.retain(|(id, _)| id != action);
        }
    }

    /// Forgets what is older than a `response_url` lives.
    fn prune(&mut self, now: Instant) {
        self.items
            .retain(|x| now.saturating_duration_since(x.received) < RESPONSE_URL_LIFE);
    }
}

fn no_url_because(exchange: &Exchange, now: Instant) -> &'static str {
    if exchange.response_url.is_none() {
        "its response_url is used (it works once) or there was none"
    } else if now.saturating_duration_since(exchange.received) >= RESPONSE_URL_LIFE {
        "its response_url has expired (it works for an hour)"
    } else {
        "it has no response_url"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(350);
    const ACK: &str = "收到，正在处理…";

    fn table(now: Instant) -> Exchanges {
        let mut table = Exchanges::new(WINDOW);
        table.open(
            "ev1",
            "m1",
            "lisi",
            Some("https://r/1".into()),
            Some("s1".into()),
            now,
        );
        table
    }

    fn shown(table: &mut Exchanges, now: Instant) -> (String, bool) {
        let shown = table.refresh("s1", now, ACK).expect("known stream");
        assert_eq!(shown.id, "s1");
        (shown.content, shown.finish)
    }

    fn at(t0: Instant, secs: u64) -> Instant {
        t0 + Duration::from_secs(secs)
    }

    #[test]
    fn the_answer_grows_in_the_stream_until_its_last_part() {
        let t0 = Instant::now();
        let mut table = table(t0);
        assert_eq!(shown(&mut table, t0), (String::new(), false));
        table.answering("ev1", Answering::Partial("第一"), at(t0, 1));
        assert_eq!(shown(&mut table, at(t0, 1)), ("第一".into(), false));
        // A slow answer's acknowledgement does not hide what is written already.
        table.answering("ev1", Answering::Acknowledged { action: "ack" }, at(t0, 5));
        assert_eq!(
            table.deliver("ack", "lisi", ACK, at(t0, 5)),
            Delivery::Streamed
        );
        table.answering("ev1", Answering::Partial("第一第二"), at(t0, 6));
        assert_eq!(shown(&mut table, at(t0, 6)), ("第一第二".into(), false));
        table.answering(
            "ev1",
            Answering::Answer {
                action: "a0",
                last: false,
            },
            at(t0, 7),
        );
        table.answering(
            "ev1",
            Answering::Answer {
                action: "a1",
                last: true,
            },
            at(t0, 7),
        );
        assert_eq!(
            table.deliver("a0", "lisi", "第一第二", at(t0, 7)),
            Delivery::Streamed
        );
        assert_eq!(shown(&mut table, at(t0, 7)), ("第一第二".into(), false));
        assert_eq!(
            table.deliver("a1", "lisi", "另一条", at(t0, 8)),
            Delivery::Streamed
        );
        assert_eq!(
            shown(&mut table, at(t0, 8)),
            ("第一第二\n\n另一条".into(), true)
        );
        // Finished: later words change nothing, and a retried message shows the same.
        table.answering("ev1", Answering::Partial("x"), at(t0, 9));
        assert_eq!(
            table.known("m1", at(t0, 9), ACK),
            Some(Some(Shown {
                id: "s1".into(),
                content: "第一第二\n\n另一条".into(),
                finish: true
            }))
        );
        assert_eq!(table.known("m2", at(t0, 9), ACK), None);
        assert_eq!(table.refresh("s2", at(t0, 9), ACK), None);
    }

    #[test]
    fn an_acknowledgement_stands_in_until_the_answer() {
        let t0 = Instant::now();
        let mut table = table(t0);
        table.answering("ev1", Answering::Acknowledged { action: "ack" }, t0);
        assert_eq!(
            table.deliver("ack", "lisi", ACK, at(t0, 5)),
            Delivery::Streamed
        );
        assert_eq!(shown(&mut table, at(t0, 5)), (ACK.into(), false));
        table.answering(
            "ev1",
            Answering::Answer {
                action: "a0",
                last: true,
            },
            at(t0, 9),
        );
        assert_eq!(
            table.deliver("a0", "lisi", "答案", at(t0, 9)),
            Delivery::Streamed
        );
        assert_eq!(shown(&mut table, at(t0, 9)), ("答案".into(), true));
    }

    #[test]
    fn no_answer_finishes_the_stream_and_keeps_only_real_text() {
        let t0 = Instant::now();
        let mut table = table(t0);
        table.answering("ev1", Answering::Acknowledged { action: "ack" }, t0);
        table.deliver("ack", "lisi", ACK, at(t0, 5));
        table.answering("ev1", Answering::Unanswered, at(t0, 6));
        assert_eq!(shown(&mut table, at(t0, 6)), (String::new(), true));

        let mut table = self::table(t0);
        table.answering("ev1", Answering::Partial("写了一半"), t0);
        table.answering("ev1", Answering::Unanswered, at(t0, 6));
        assert_eq!(shown(&mut table, at(t0, 6)), ("写了一半".into(), true));
    }

    #[test]
    fn past_the_window_the_stream_closes_and_the_whole_late_answer_is_posted_once() {
        let t0 = Instant::now();
        let mut table = table(t0);
        table.answering("ev1", Answering::Partial("半"), at(t0, 10));
        // The window passes: the stream finishes with what it shows.
        assert_eq!(shown(&mut table, at(t0, 351)), ("半".into(), true));
        table.answering("ev1", Answering::Partial("半句"), at(t0, 352));
        assert_eq!(shown(&mut table, at(t0, 352)), ("半".into(), true));
        table.answering(
            "ev1",
            Answering::Acknowledged { action: "ack" },
            at(t0, 352),
        );
        table.answering(
            "ev1",
            Answering::Answer {
                action: "a0",
                last: false,
            },
            at(t0, 400),
        );
        table.answering(
            "ev1",
            Answering::Answer {
                action: "a1",
                last: true,
            },
            at(t0, 400),
        );
        assert!(matches!(
            table.deliver("ack", "lisi", ACK, at(t0, 400)),
            Delivery::Dropped(_)
        ));
        assert_eq!(
            table.deliver("a0", "lisi", "一", at(t0, 400)),
            Delivery::Held
        );
        let post = Delivery::Post {
            event: "ev1".into(),
            url: "https://r/1".into(),
            content: "一\n\n二".into(),
        };
        assert_eq!(table.deliver("a1", "lisi", "二", at(t0, 400)), post);
        // A failure worth retrying spends nothing: the retry posts the same.
        table.posted("ev1", "a1", false);
        assert_eq!(table.deliver("a1", "lisi", "二", at(t0, 401)), post);
        table.posted("ev1", "a1", true);
        // The response_url worked once: nothing more can go.
        table.answering(
            "ev1",
            Answering::Answer {
                action: "a2",
                last: true,
            },
            at(t0, 402),
        );
        let refused = table.deliver("a2", "lisi", "三", at(t0, 402));
        assert!(
            matches!(&refused, Delivery::Refused(why) if why.contains("m1") && why.contains("used")),
            "{refused:?}"
        );
        let refused = table.deliver("other", "lisi", "四", at(t0, 403));
        assert!(
            matches!(&refused, Delivery::Refused(why) if why.contains("lisi")),
            "{refused:?}"
        );
    }

    #[test]
    fn a_stream_that_never_showed_anything_closes_with_the_acknowledgement() {
        let t0 = Instant::now();
        let mut table = table(t0);
        assert_eq!(shown(&mut table, at(t0, 351)), (ACK.into(), true));
        // An answer in time is one delivered before the window ends, refresh or not.
        let mut table = self::table(t0);
        table.answering(
            "ev1",
            Answering::Answer {
                action: "a0",
                last: true,
            },
            at(t0, 351),
        );
        assert!(matches!(
            table.deliver("a0", "lisi", "迟", at(t0, 351)),
            Delivery::Post { content, .. } if content == "迟"
        ));
    }

    #[test]
    fn sends_that_answer_no_message_use_the_latest_unused_url_of_the_conversation() {
        let t0 = Instant::now();
        let mut table = table(t0);
        table.open(
            "ev2",
            "m2",
            "lisi",
            Some("https://r/2".into()),
            Some("s2".into()),
            at(t0, 1),
        );
        table.open(
            "ev3",
            "m3",
            "wangwu",
            Some("https://r/3".into()),
            None,
            at(t0, 2),
        );
        let post = table.deliver("x", "lisi", "通知", at(t0, 3));
        assert_eq!(
            post,
            Delivery::Post {
                event: "ev2".into(),
                url: "https://r/2".into(),
                content: "通知".into()
            }
        );
        table.posted("ev2", "x", true);
        assert!(matches!(
            table.deliver("y", "lisi", "再通知", at(t0, 4)),
            Delivery::Post { event, .. } if event == "ev1"
        ));
        // An hour on, nothing is left to answer with.
        assert!(matches!(
            table.deliver("z", "wangwu", "晚了", at(t0, 3602)),
            Delivery::Refused(_)
        ));
        assert!(table.items.is_empty(), "pruned after an hour");
    }

    #[test]
    fn a_message_forgotten_is_not_answered_and_long_content_is_cut_at_a_character() {
        let t0 = Instant::now();
        let mut table = table(t0);
        assert!(
            !table.open("ev1", "m1", "lisi", None, None, t0),
            "sent again"
        );
        assert_eq!(
            table.known("m1", t0, ACK).flatten().map(|s| s.id),
            Some("s1".into())
        );
        table.forget("ev1");
        assert_eq!(table.known("m1", t0, ACK), None);
        assert_eq!(truncated("你好", 4), "你");
        assert_eq!(truncated("你好", 6), "你好");
        let mut table = self::table(t0);
        table.answering(
            "ev1",
            Answering::Answer {
                action: "a0",
                last: true,
            },
            t0,
        );
        table.deliver("a0", "lisi", &"长".repeat(10_000), t0);
        let (content, finish) = shown(&mut table, t0);
        assert!(finish);
        assert_eq!(content.len(), MAX_CONTENT_BYTES - MAX_CONTENT_BYTES % 3);
    }
}
