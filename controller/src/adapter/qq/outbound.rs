//! Answers to QQ: the access token, the passive-reply bookkeeping (`msg_id` + `msg_seq`)
//! and how QQ's refusals map onto retry or give up.
//!
//! Sources (bot-docs `docs/develop/api-v2/`):
//! - `dev-prepare/interface-framework/api-use.md`: `POST https://bots.qq.com/app/getAppAccessToken`
//!   with `{"appId", "clientSecret"}` answers `{"access_token", "expires_in": "7200"}` (a
//!   string in its example; botgo `token/token_source.go` parses it as one); the token is
//!   sent as `Authorization: QQBot <token>`; within the last 60 s of a token's life a fetch
//!   returns a new one while the old one still works, and otherwise the same one.
//! - `server-inter/message/send-receive/send.md`: `POST /v2/groups/{group_openid}/messages`
//!   and `POST /v2/users/{openid}/messages` take `content`, `msg_type` (0 text, 2 markdown),
//!   `markdown`, `msg_id` and `msg_seq` ("相同的 msg_id + msg_seq 重复发送会失败"); a passive
//!   reply is taken within 60 min (private) / 5 min (group), at most 5 per message; active
//!   messages are 4 a month per user or group, and since 2025-04-21 no longer offered.
//!   Guild channels are `POST /channels/{channel_id}/messages` (`post_messages.md`:
//!   `content`, `markdown`, `msg_id`), guild DMs `POST /dms/{guild_id}/messages` with the
//!   same body (`dms/post_dms_messages.md`); both take a passive reply within 5 minutes.
//!   It also advises a timeout of at least 5 s.
//! - `server-inter/message/type/markdown.md`: markdown goes as `{"markdown": {"content"}}`;
//!   `openapi/error/error.md`: HTTP 401 is failed authentication, 429 a rate limit, and the
//!   body's `code` says more (the codes used are named where they are matched).
//! - botpy `botpy/http.py` sends `X-Union-Appid: <app id>` beside the token, and names
//!   the sandbox host `sandbox.api.sgroup.qq.com`.

use std::collections::HashMap;
use std::sync::Mutex as SyncMutex;
use std::time::{Duration, SystemTime};

use reqwest::{Client, StatusCode, Url};
use serde::Deserialize;

use super::inbound::{Kind, Target};
use crate::adapter::token::TokenCache;
use crate::adapter::{SendError, call};

/// api-use.md: a fetch in a token's last 60 s returns its successor, so that is when to
/// fetch.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);
/// api-use.md: "目前是7200秒之内的值"; a larger value from the network is not trusted.
const TOKEN_LIFE_MAX: Duration = Duration::from_secs(7200);
/// How long to wait on QQ's rate limits when it says nothing (`Retry-After`): a channel
/// takes 5 messages a second (post_messages.md); the limit behind 22009 is not stated.
const CHANNEL_RATE_WAIT: Duration = Duration::from_secs(1);
const RATE_WAIT: Duration = Duration::from_secs(30);

/// error.md: token missing (11241), token check failed, a system error worth one retry
/// (11242), token refused (11243). With HTTP 401 they mean: fetch a new token.
const TOKEN_CODES: [i64; 3] = [11241, 11242, 11243];
/// error.md: system errors "一般重试一次会好".
const BUSY_CODES: [i64; 3] = [11252, 11263, 11281];
/// error.md: 20028 ChannelHitWriteRateLimit; send.md: 22009 msg limit exceed.
const RATE_CODES: [i64; 2] = [20028, 22009];
/// error.md: 304023/304024, sent and waiting for a human audit: taken.
const AUDIT_CODES: [i64; 2] = [304023, 304024];
/// error.md: 304026 the replied message id is wrong, 304027 it has expired.
const EXPIRED_CODES: [i64; 2] = [304026, 304027];
/// error.md: 304036 no markdown template permission, 50055 invalid markdown content,
/// 50056 markdown content not allowed.
const MARKDOWN_CODES: [i64; 3] = [304036, 50055, 50056];
/// error.md: 304003 URL_NOT_ALLOWED (send.md: URLs must be registered first).
const URL_NOT_ALLOWED: i64 = 304003;
/// Not in error.md: the code open implementations report for a repeated msg_id +
/// msg_seq, which send.md says fails. Matched only to recognise a retry of a message
/// that did go out.
const DUPLICATE_SEQ: i64 = 40054005;

/// How a reply goes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Plan {
    /// Answering `msg_id`, as reply number `seq`. `again` when this very piece was tried
    /// with this seq before: QQ refusing it as a duplicate means it went out then.
    Passive {
        msg_id: String,
        seq: u32,
        again: bool,
    },
    /// No message to answer: an active message, which QQ limits or refuses. `why` is
    /// told if it is refused.
    Active { why: String },
}

/// The message a conversation's answers reply to, and the replies it has had.
#[derive(Debug, Clone)]
struct Thread {
    msg_id: String,
    sent_at: SystemTime,
    /// The seq the next reply takes: 1 for the first (send.md's default).
    next_seq: u32,
    /// The piece being delivered and its seq, kept until it is settled so that a retry of
    /// the same piece sends the same seq and QQ drops it if the first try went out.
    in_flight: Option<(String, String, u32)>,
}

/// The last message of each conversation, kept in memory.
///
/// After a restart nothing is known: an answer the previous run left unsent goes out as
/// an active message, as does one whose message is older than QQ's reply window (5 min
/// in groups and guilds, 60 min in private chats) or has had its 5 replies. QQ limits
/// active messages (4 a month per user or group) and says it stopped offering them on
/// 2025-04-21, so such an answer most likely fails, with a reason that says which of
/// these happened.
#[derive(Debug, Default)]
pub(super) struct Replies {
    threads: SyncMutex<HashMap<String, Thread>>,
}

/// The longest reply window (a private chat's): a thread older than this is of no use.
const LONGEST_WINDOW: Duration = Duration::from_secs(60 * 60);

impl Replies {
    fn threads(&self) -> std::sync::MutexGuard<'_, HashMap<String, Thread>> {
        self.threads.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A message arrived in `conversation`: its answers reply to it from now on, unless
    /// it is the message already noted (a redelivery keeps its seq) or older than it (a
    /// late redelivery must not take the thread back).
    pub(super) fn note(
        &self,
        conversation: &str,
        msg_id: &str,
        sent_at: Option<SystemTime>,
        now: SystemTime,
    ) {
        let sent_at = sent_at.unwrap_or(now);
        let mut threads = self.threads();
        threads.retain(|_, t| {
            now.duration_since(t.sent_at)
                .is_ok_and(|age| age <= LONGEST_WINDOW)
                || t.sent_at > now
        });
        if let Some(thread) = threads.get(conversation)
            && (thread.msg_id == msg_id || thread.sent_at > sent_at)
        {
            return;
        }
        threads.insert(
            conversation.to_string(),
            Thread {
                msg_id: msg_id.to_string(),
                sent_at,
                next_seq: 1,
                in_flight: None,
            },
        );
    }

    /// How the piece `text` of action `action` goes to `target` now.
    pub(super) fn plan(&self, target: &Target, action: &str, text: &str, now: SystemTime) -> Plan {
        let conversation = target.to_string();
        let mut threads = self.threads();
        let Some(thread) = threads.get_mut(&conversation) else {
            return Plan::Active {
                why: "no message of this conversation is known to reply to (none since the start)"
                    .into(),
            };
        };
        let window = target.kind.reply_window();
        if now
            .duration_since(thread.sent_at)
            .is_ok_and(|age| age > window)
        {
            return Plan::Active {
                why: format!(
                    "the last message is older than QQ's {} min reply window",
                    window.as_secs() / 60
                ),
            };
        }
        if let Some((in_action, in_text, seq)) = &thread.in_flight
            && in_action == action
            && in_text == text
        {
            return Plan::Passive {
                msg_id: thread.msg_id.clone(),
                seq: *seq,
                again: true,
            };
        }
        let seq = thread.next_seq;
        if let Some(max) = target.kind.max_replies()
            && seq > max
        {
            return Plan::Active {
                why: format!("the last message has had the {max} replies QQ takes"),
            };
        }
        thread.next_seq += 1;
        thread.in_flight = Some((action.to_string(), text.to_string(), seq));
        Plan::Passive {
            msg_id: thread.msg_id.clone(),
            seq,
            again: false,
        }
    }

    /// The piece in flight in `target` ended (sent, or given up): its seq is spent.
    pub(super) fn settle(&self, target: &Target, action: &str) {
        if let Some(thread) = self.threads().get_mut(&target.to_string())
            && thread
                .in_flight
                .as_ref()
                .is_some_and(|(in_action, _, _)| in_action == action)
        {
            thread.in_flight = None;
        }
    }
}

/// What QQ's answer to a send means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Answer {
    Sent,
    /// The token was refused: fetch another and try once more.
    TokenRefused(String),
    /// The same msg_id + msg_seq went out before.
    Duplicate(String),
    Failed(SendError),
}

/// QQ's error body (error.md): `code` and `message`; some answers name it `err_code`.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    err_code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
}

/// Reads an answer of the message API.
pub(super) fn classify(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Answer {
    let error: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let code = error.code.or(error.err_code).filter(|c| *c != 0);
    let message = error.message.unwrap_or_default();
    let described = match code {
        Some(code) => format!("HTTP {status}, code {code}: {message}"),
        None => format!("HTTP {status}"),
    };
    let code = code.unwrap_or_default();
    if (200..300).contains(&status) || AUDIT_CODES.contains(&code) {
        if AUDIT_CODES.contains(&code) {
            tracing::info!(code, %message, "QQ holds the message for audit");
        }
        return Answer::Sent;
    }
    if status == 401 || TOKEN_CODES.contains(&code) {
        return Answer::TokenRefused(described);
    }
    if code == DUPLICATE_SEQ {
        return Answer::Duplicate(described);
    }
    if status == 429 || RATE_CODES.contains(&code) {
        let wait = if code == 20028 {
            CHANNEL_RATE_WAIT
        } else {
            RATE_WAIT
        };
        return Answer::Failed(SendError::Retry {
            reason: format!("QQ rate limit ({described})"),
            after: Some(retry_after.unwrap_or(wait)),
        });
    }
    if status >= 500 || BUSY_CODES.contains(&code) {
        return Answer::Failed(SendError::Retry {
            reason: format!("QQ is busy ({described})"),
            after: retry_after,
        });
    }
    let hint = if EXPIRED_CODES.contains(&code) {
        ": the message it answers is past QQ's reply window or unknown"
    } else if MARKDOWN_CODES.contains(&code) {
        ": this bot may not send markdown; set markdown = false"
    } else if code == URL_NOT_ALLOWED {
        ": a URL in the text is not registered in the bot's message URL settings"
    } else {
        ""
    };
    Answer::Failed(SendError::Permanent(format!(
        "QQ refused the message ({described}){hint}"
    )))
}

/// `expires_in`: a string in api-use.md's example, a number in its table.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Seconds {
    Number(u64),
    Text(String),
}

#[derive(Debug, Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<Seconds>,
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
}

/// The HTTP side of sending: token and requests.
pub(super) struct Api {
    pub(super) app_id: String,
    secret: String,
    api_base: Url,
    token_url: Url,
    client: Client,
    token: TokenCache,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("app_id", &self.app_id)
            .field("api_base", &self.api_base.as_str())
            .field("token_url", &self.token_url.as_str())
            .finish_non_exhaustive()
    }
}

impl Api {
    pub(super) fn new(
        app_id: String,
        secret: String,
        api_base: Url,
        token_url: Url,
        client: Client,
    ) -> Api {
        Api {
            app_id,
            secret,
            api_base,
            token_url,
            client,
            token: TokenCache::new(TOKEN_MARGIN, TOKEN_LIFE_MAX),
        }
    }

    /// The endpoint of `target`'s messages, its id one escaped path segment.
    pub(super) fn endpoint(&self, target: &Target) -> Result<Url, SendError> {
        let (first, last) = match target.kind {
            Kind::Group => ("v2/groups", "messages"),
            Kind::C2c => ("v2/users", "messages"),
            Kind::Channel => ("channels", "messages"),
            Kind::Dm => ("dms", "messages"),
        };
        let mut url = self.api_base.clone();
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|()| SendError::Permanent("api_base cannot take a path".into()))?;
            segments.pop_if_empty();
            segments.extend(first.split('/'));
            segments.push(&target.id);
            segments.push(last);
        }
        Ok(url)
    }

    /// A cached token, or a new one (api-use.md).
    async fn access_token(&self) -> Result<String, SendError> {
        self.token.get(|| self.fetch_token()).await
    }

    async fn fetch_token(&self) -> Result<(String, Duration), SendError> {
        let body = serde_json::json!({"appId": self.app_id, "clientSecret": self.secret});
        let request = self.client.post(self.token_url.clone()).json(&body);
        let answered = call::call(request, "getAppAccessToken").await?;
        let status = answered.status;
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            call::check_status(status, "getAppAccessToken")?;
        }
        let answer: Option<TokenAnswer> = serde_json::from_slice(&answered.body).ok();
        let token = answer
            .as_ref()
            .and_then(|a| a.access_token.clone())
            .filter(|t| !t.is_empty());
        let (Some(token), true) = (token, status.is_success()) else {
            let (code, message) = answer
                .map(|a| (a.code.unwrap_or_default(), a.message.unwrap_or_default()))
                .unwrap_or_default();
            return Err(SendError::Permanent(format!(
                "QQ gave no access token (HTTP {status}, code {code}: {message}); check app_id and app_secret"
            )));
        };
        let expires_in = match answer.and_then(|a| a.expires_in) {
            Some(Seconds::Number(n)) => Some(n),
            Some(Seconds::Text(text)) => text.trim().parse().ok(),
            None => None,
        };
        Ok((
            token,
            expires_in.map_or(TOKEN_LIFE_MAX, Duration::from_secs),
        ))
    }

    /// Forgets `token` unless another send has replaced it already.
    async fn forget_token(&self, token: &str) {
        self.token.forget(token).await;
    }

    async fn post_once(
        &self,
        url: &Url,
        token: &str,
        body: &serde_json::Value,
    ) -> Result<Answer, SendError> {
        let request = self
            .client
            .post(url.clone())
            .header("Authorization", format!("QQBot {token}"))
            .header("X-Union-Appid", &self.app_id)
            .json(body);
        let answered = call::call(request, "QQ message API").await?;
        Ok(classify(
            answered.status.as_u16(),
            answered.retry_after(),
            &answered.body,
        ))
    }

    /// Posts `body` to `url`; a refused token is replaced once and the post tried again.
    pub(super) async fn post(&self, url: &Url, body: &serde_json::Value) -> Answer {
        let attempt = async {
            let token = self.access_token().await?;
            let answer = self.post_once(url, &token, body).await?;
            let Answer::TokenRefused(reason) = answer else {
                return Ok(answer);
            };
            tracing::info!(%reason, "QQ refused the access token; fetching a new one");
            self.forget_token(&token).await;
            let token = self.access_token().await?;
            Ok(match self.post_once(url, &token, body).await? {
                Answer::TokenRefused(reason) => {
                    self.forget_token(&token).await;
                    Answer::Failed(SendError::Retry {
                        reason: format!("QQ refused a fresh access token too ({reason})"),
                        after: None,
                    })
                }
                other => other,
            })
        };
        attempt.await.unwrap_or_else(Answer::Failed)
    }
}

/// The body of a message (send.md; post_messages.md for guilds; markdown.md).
pub(super) fn body(kind: Kind, text: &str, markdown: bool, plan: &Plan) -> serde_json::Value {
    let mut body = serde_json::Map::new();
    let guild = matches!(kind, Kind::Channel | Kind::Dm);
    if markdown {
        // error.md 50037: a markdown message holds markdown (or a keyboard) only.
        body.insert("markdown".into(), serde_json::json!({"content": text}));
        if !guild {
            body.insert("msg_type".into(), 2.into());
        }
    } else {
        body.insert("content".into(), text.into());
        if !guild {
            body.insert("msg_type".into(), 0.into());
        }
    }
    if let Plan::Passive { msg_id, seq, .. } = plan {
        body.insert("msg_id".into(), msg_id.clone().into());
        // The guild pages take no msg_seq.
        if !guild {
            body.insert("msg_seq".into(), (*seq).into());
        }
    }
    serde_json::Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group() -> Target {
        Target {
            kind: Kind::Group,
            id: "G1".into(),
        }
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    fn passive(msg_id: &str, seq: u32, again: bool) -> Plan {
        Plan::Passive {
            msg_id: msg_id.into(),
            seq,
            again,
        }
    }

    #[test]
    fn replies_to_one_message_count_their_seq_and_a_retry_keeps_its_own() {
        let replies = Replies::default();
        let g = group();
        assert!(matches!(
            replies.plan(&g, "a1", "x", at(0)),
            Plan::Active { why } if why.contains("since the start")
        ));
        replies.note("group:G1", "m1", Some(at(0)), at(1));
        assert_eq!(
            replies.plan(&g, "a1", "ack", at(2)),
            passive("m1", 1, false)
        );
        // Not settled: the same piece tried again keeps seq 1.
        assert_eq!(replies.plan(&g, "a1", "ack", at(3)), passive("m1", 1, true));
        replies.settle(&g, "a1");
        assert_eq!(
            replies.plan(&g, "a2", "result", at(4)),
            passive("m1", 2, false)
        );
        replies.settle(&g, "a2");
        // Two equal pieces of one action are two replies.
        assert_eq!(
            replies.plan(&g, "a3", "same", at(5)),
            passive("m1", 3, false)
        );
        replies.settle(&g, "a3");
        assert_eq!(
            replies.plan(&g, "a3", "same", at(5)),
            passive("m1", 4, false)
        );
        replies.settle(&g, "a3");
        // QQ's redelivery of m1 does not start it over.
        replies.note("group:G1", "m1", Some(at(0)), at(6));
        assert_eq!(replies.plan(&g, "a4", "x", at(7)), passive("m1", 5, false));
        replies.settle(&g, "a4");
        // send.md: 5 replies to a message at most.
        assert!(matches!(
            replies.plan(&g, "a5", "x", at(8)),
            Plan::Active { why } if why.contains("5 replies")
        ));
        // A newer message starts at 1; an older one redelivered late does not take over.
        replies.note("group:G1", "m2", Some(at(10)), at(10));
        replies.note("group:G1", "m0", Some(at(0)), at(11));
        assert_eq!(replies.plan(&g, "a6", "x", at(12)), passive("m2", 1, false));
        // Other conversations are counted apart.
        let c2c = Target {
            kind: Kind::C2c,
            id: "U1".into(),
        };
        replies.note("c2c:U1", "p1", None, at(12));
        assert_eq!(
            replies.plan(&c2c, "a7", "x", at(13)),
            passive("p1", 1, false)
        );
    }

    #[test]
    fn past_the_reply_window_an_answer_is_active() {
        let replies = Replies::default();
        let g = group();
        replies.note("group:G1", "m1", Some(at(0)), at(0));
        assert_eq!(replies.plan(&g, "a", "x", at(300)), passive("m1", 1, false));
        assert!(matches!(
            replies.plan(&g, "b", "x", at(301)),
            Plan::Active { why } if why.contains("5 min")
        ));
        let c2c = Target {
            kind: Kind::C2c,
            id: "U1".into(),
        };
        replies.note("c2c:U1", "p1", Some(at(0)), at(0));
        assert_eq!(
            replies.plan(&c2c, "a", "x", at(3000)),
            passive("p1", 1, false)
        );
        assert!(matches!(
            replies.plan(&c2c, "b", "x", at(3601)),
            Plan::Active { why } if why.contains("60 min")
        ));
        // Threads past the longest window are dropped when another message comes.
        replies.note("c2c:U2", "p2", Some(at(4000)), at(4000));
        assert!(replies.threads().get("group:G1").is_none());
        assert!(replies.threads().get("c2c:U2").is_some());
    }

    #[test]
    fn bodies_follow_send_md_and_markdown_md() {
        let reply = passive("m1", 2, false);
        assert_eq!(
            body(Kind::Group, "你好", false, &reply),
            serde_json::json!({"content": "你好", "msg_type": 0, "msg_id": "m1", "msg_seq": 2})
        );
        assert_eq!(
            body(Kind::C2c, "**你好**", true, &reply),
            serde_json::json!({"markdown": {"content": "**你好**"}, "msg_type": 2, "msg_id": "m1", "msg_seq": 2})
        );
        assert_eq!(
            body(Kind::Channel, "hi", false, &reply),
            serde_json::json!({"content": "hi", "msg_id": "m1"})
        );
        assert_eq!(
            body(Kind::Dm, "# hi", true, &reply),
            serde_json::json!({"markdown": {"content": "# hi"}, "msg_id": "m1"})
        );
        assert_eq!(
            body(Kind::Group, "hi", false, &Plan::Active { why: "w".into() }),
            serde_json::json!({"content": "hi", "msg_type": 0})
        );
    }

    #[test]
    fn qqs_answers_map_to_sent_retry_or_permanent() {
        let json = |v: serde_json::Value| v.to_string().into_bytes();
        assert_eq!(
            classify(
                200,
                None,
                &json(serde_json::json!({"id": "x", "timestamp": 1}))
            ),
            Answer::Sent
        );
        assert_eq!(classify(204, None, b""), Answer::Sent);
        assert_eq!(
            classify(
                202,
                None,
                &json(serde_json::json!({"code": 304024, "message": "reply waiting for audit"}))
            ),
            Answer::Sent
        );
        assert!(matches!(
            classify(401, None, b"{}"),
            Answer::TokenRefused(_)
        ));
        assert!(matches!(
            classify(
                400,
                None,
                &json(serde_json::json!({"code": 11243, "message": "token"}))
            ),
            Answer::TokenRefused(_)
        ));
        assert!(matches!(
            classify(
                400,
                None,
                &json(serde_json::json!({"code": 40054005, "message": "消息被去重"}))
            ),
            Answer::Duplicate(_)
        ));
        assert_eq!(
            classify(429, Some(Duration::from_secs(3)), b""),
            Answer::Failed(SendError::Retry {
                reason: "QQ rate limit (HTTP 429)".into(),
                after: Some(Duration::from_secs(3))
            })
        );
        assert!(matches!(
            classify(400, None, &json(serde_json::json!({"code": 20028, "message": "limit"}))),
            Answer::Failed(SendError::Retry { after: Some(d), .. }) if d == CHANNEL_RATE_WAIT
        ));
        assert!(matches!(
            classify(400, None, &json(serde_json::json!({"code": 22009, "message": "msg limit exceed"}))),
            Answer::Failed(SendError::Retry { after: Some(d), .. }) if d == RATE_WAIT
        ));
        assert!(matches!(
            classify(502, None, b"<html>"),
            Answer::Failed(SendError::Retry { after: None, .. })
        ));
        assert!(matches!(
            classify(
                400,
                None,
                &json(serde_json::json!({"code": 11281, "message": "sys"}))
            ),
            Answer::Failed(SendError::Retry { .. })
        ));
        let expired = classify(
            400,
            None,
            &json(serde_json::json!({"code": 304027, "message": "MSG_EXPIRE"})),
        );
        assert!(
            matches!(&expired, Answer::Failed(SendError::Permanent(m)) if m.contains("304027") && m.contains("reply window")),
            "{expired:?}"
        );
        assert!(matches!(
            classify(400, None, &json(serde_json::json!({"code": 50056, "message": "no md"}))),
            Answer::Failed(SendError::Permanent(m)) if m.contains("markdown = false")
        ));
        assert!(matches!(
            classify(403, None, &json(serde_json::json!({"err_code": 304003, "message": "url"}))),
            Answer::Failed(SendError::Permanent(m)) if m.contains("URL")
        ));
        assert!(matches!(
            classify(404, None, b"not json"),
            Answer::Failed(SendError::Permanent(m)) if m.contains("HTTP 404")
        ));
    }

    #[test]
    fn a_token_is_used_until_a_minute_before_it_expires() {
        let now = tokio::time::Instant::now();
        let cache = TokenCache::new(TOKEN_MARGIN, TOKEN_LIFE_MAX);
        assert_eq!(
            cache.refresh_at(Duration::from_secs(7200), now),
            now + Duration::from_secs(7140)
        );
        assert_eq!(
            cache.refresh_at(Duration::from_secs(60), now),
            now + Duration::from_secs(30)
        );
    }
}
