//! What WeCom's adapters share (the group robot, the self-built app, the AI bot): its
//! text limit, news messages, how its JSON answers say failure, and the door of its
//! callbacks: the signed query, the clock window, replays, the URL check.
//!
//! WeCom documents (developer.work.weixin.qq.com/document/path/…): 90236 and 99110 (a text
//! message holds 2048 bytes), 91770 and 90236 (news: 1 to 8 articles), 90313 全局错误码
//! (`errcode` 0 is success whatever the HTTP status; -1 system busy; 45009 over the rate
//! limit), 90930 (callback query values are URL-decoded: "需要做Urldecode处理"; the URL
//! check answers the decrypted `echostr`; an answer later than 5 s makes WeCom send the
//! callback again, three times in all), 91144 and 101033 (the signature over timestamp,
//! nonce and ciphertext; then AES).

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::SendError;
use super::door::{Door, Reason};
use super::replay::{Claim, Replays, Seen};
use super::wecom_crypto::{CryptoError, WeComCrypto};
use crate::event::Article;

/// WeCom's limit for one text message, in bytes of UTF-8 (90236, 99110).
pub const MAX_TEXT_BYTES: usize = 2048;
/// 91770: a news message holds 1 to 8 articles.
const MAX_ARTICLES: usize = 8;
/// 90313: "system busy, try again".
pub const ERR_BUSY: i64 = -1;
/// 90313: over the API's frequency limit.
pub const ERR_RATE_LIMITED: i64 = 45009;
/// How long a rate limit is waited out: WeCom counts sends per minute (the robot's 20 a
/// minute, an app's per member per minute and hour), so waiting out the minute is the
/// least that can help.
pub const RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// What a robot or an app posts text as: `text`, shown as it is, or `markdown`, which the
/// WeCom client renders (and WeChat's WeCom plugin does not).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextMsgType {
    #[default]
    Text,
    Markdown,
}

/// WeCom's JSON answers (90313): `errcode` 0 is success, whatever the HTTP status said;
/// the rest is what some APIs add.
#[derive(Debug, Deserialize)]
pub struct Answer {
    /// Required: JSON without it is not WeCom's answer, and must not pass for success.
    pub errcode: i64,
    #[serde(default)]
    pub errmsg: String,
    /// 91039 gettoken.
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
    /// 90236: recipients it could not send to, `|`-separated, with errcode 0.
    #[serde(default)]
    pub invaliduser: Option<String>,
    /// 90253 (an app's upload) and 91770 (a robot's upload_media): what an upload is
    /// known by from then on (three days).
    #[serde(default)]
    pub media_id: Option<String>,
}

/// WeCom's JSON answer read from `body`.
pub fn answer(body: &[u8], what: &str) -> Result<Answer, SendError> {
    serde_json::from_slice(body)
        .map_err(|e| SendError::Permanent(format!("{what}: the answer is not WeCom's JSON ({e})")))
}

/// An answer's `errcode` as a result (90313): 0 is success, busy and the rate limit are
/// worth another try, the rest a refusal.
pub fn settle(errcode: i64, errmsg: &str, what: &str) -> Result<(), SendError> {
    match errcode {
        0 => Ok(()),
        ERR_RATE_LIMITED => Err(SendError::Retry {
            reason: format!("{what}: WeCom rate limit (errcode 45009: {errmsg})"),
            after: Some(RATE_LIMIT_WAIT),
        }),
        ERR_BUSY => Err(SendError::Retry {
            reason: format!("{what}: WeCom busy (errcode -1: {errmsg})"),
            after: None,
        }),
        code => Err(SendError::Permanent(format!(
            "WeCom refused {what}: errcode {code}: {errmsg}"
        ))),
    }
}

/// What WeCom's news messages take, the robot's (91770) and an app's (90236) alike.
pub fn check_articles(articles: &[Article]) -> Result<(), SendError> {
    if articles.is_empty() || articles.len() > MAX_ARTICLES {
        return Err(SendError::Permanent(format!(
            "a WeCom news message holds 1 to {MAX_ARTICLES} articles, not {}",
            articles.len()
        )));
    }
    if let Some(article) = articles
        .iter()
        .find(|a| a.title.trim().is_empty() || a.url.trim().is_empty())
    {
        return Err(SendError::Permanent(format!(
            "a WeCom news article needs a title and a url: {article:?}"
        )));
    }
    Ok(())
}

/// The query's parameters, percent-decoded (90930: "需要做Urldecode处理"). `+` stays
/// `+`: the values are hex, digits and base64, and base64's `+` read as a form-encoded
/// space would break the signature (see `wecom_crypto`'s module notes).
pub fn query_params(raw: Option<&str>) -> Result<HashMap<String, String>, String> {
    let mut params = HashMap::new();
    for pair in raw.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        params.insert(percent_decode(key)?, percent_decode(value)?);
    }
    Ok(params)
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes =
        crate::http::percent_decode(text).map_err(|_| format!("bad percent-escape in {text:?}"))?;
    String::from_utf8(bytes).map_err(|_| format!("{text:?} does not decode to UTF-8"))
}

/// The three values every callback is signed with.
#[derive(Debug, Clone)]
pub struct Signed {
    pub msg_signature: String,
    pub timestamp: String,
    pub nonce: String,
}

pub fn signed(params: &HashMap<String, String>) -> Result<Signed, String> {
    let take = |key: &str| {
        params
            .get(key)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or_else(|| format!("no {key} in the query"))
    };
    Ok(Signed {
        msg_signature: take("msg_signature")?,
        timestamp: take("timestamp")?,
        nonce: take("nonce")?,
    })
}

/// A callback signed this far from our clock is refused. WeCom documents no window; it
/// calls at once and retries within seconds (90930), so a request much older is a
/// replay, or this machine's clock is wrong (which the log then says). Replays inside
/// the window are the replay cache's.
pub const CLOCK_SKEW: Duration = Duration::from_secs(600);

/// A callback's body, at most. A message's text is at most 2048 bytes (90236) and its
/// envelope adds a third for base64 and a few hundred bytes of XML or JSON; the largest
/// callbacks (a member's mixed message, a card event) stay far below this, which still
/// keeps a flood from filling memory.
pub const MAX_CALLBACK_BYTES: usize = 128 * 1024;

/// The signed timestamp (Unix seconds), if it is close enough to `now` to be a fresh call.
pub fn check_timestamp(timestamp: &str, now: SystemTime) -> Result<SystemTime, String> {
    let sent: u64 = timestamp
        .parse()
        .map_err(|_| format!("timestamp {timestamp:?} is not a number of seconds"))?;
    let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let skew = now_secs.abs_diff(sent);
    if skew > CLOCK_SKEW.as_secs() {
        return Err(format!(
            "timestamp is {skew} s away from this machine's clock (at most {} allowed): a replay, or this clock is wrong",
            CLOCK_SKEW.as_secs()
        ));
    }
    Ok(UNIX_EPOCH + Duration::from_secs(sent))
}

/// A refusal as WeCom's callbacks get it: a status, a word, the reason logged and counted.
pub fn refuse(door: &Door, reason: Reason, status: StatusCode, detail: &str) -> Response {
    let body = match (reason, status) {
        (_, StatusCode::PAYLOAD_TOO_LARGE) => "too large",
        (Reason::Signature, _) => "bad signature",
        (Reason::Stale, _) => "stale timestamp",
        (_, StatusCode::SERVICE_UNAVAILABLE) => "try again",
        _ => "bad request",
    };
    door.refuse(reason, status, body, detail)
}

/// A crypto failure's refusal: the signature is who WeCom is; a ciphertext that does
/// not open, or opens for another corp, is WeCom's request gone wrong.
fn crypto_refusal(door: &Door, error: &CryptoError) -> Response {
    let (reason, status) = match error {
        CryptoError::BadSignature(_) => (Reason::Signature, StatusCode::FORBIDDEN),
        CryptoError::WrongReceiver { .. } => (Reason::WrongRecipient, StatusCode::BAD_REQUEST),
        CryptoError::BadEnvelope(_) => (Reason::Malformed, StatusCode::BAD_REQUEST),
        _ => (Reason::Undecryptable, StatusCode::BAD_REQUEST),
    };
    refuse(door, reason, status, &error.to_string())
}

/// 90930 / 101033 验证URL有效性: the signature, the clock, then the decrypted `echostr`
/// answered as it is, in plain text.
pub fn verify_url(
    door: &Door,
    crypto: &WeComCrypto,
    raw: Option<&str>,
    now: SystemTime,
) -> Response {
    let params = match query_params(raw) {
        Ok(params) => params,
        Err(reason) => return refuse(door, Reason::Malformed, StatusCode::BAD_REQUEST, &reason),
    };
    let (signed, echostr) = match (signed(&params), params.get("echostr")) {
        (Ok(signed), Some(echostr)) if !echostr.is_empty() => (signed, echostr),
        (Err(reason), _) => {
            return refuse(door, Reason::Malformed, StatusCode::BAD_REQUEST, &reason);
        }
        _ => {
            return refuse(
                door,
                Reason::Malformed,
                StatusCode::BAD_REQUEST,
                "no echostr in the query",
            );
        }
    };
    let (sig, ts, nonce) = (&signed.msg_signature, &signed.timestamp, &signed.nonce);
    if let Err(error) = crypto.verify("echostr", sig, ts, nonce, echostr) {
        return crypto_refusal(door, &error);
    }
    if let Err(reason) = check_timestamp(ts, now) {
        return refuse(door, Reason::Stale, StatusCode::FORBIDDEN, &reason);
    }
    match crypto.verify_url(sig, ts, nonce, echostr) {
        Ok(plain) => {
            tracing::info!(adapter = door.adapter(), "callback URL verified");
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                plain,
            )
                .into_response()
        }
        Err(error) => crypto_refusal(door, &error),
    }
}

/// A callback that passed the door.
#[derive(Debug)]
pub enum Admitted<V> {
    /// New: its decrypted message, the values it was signed with (a passive reply uses
    /// its nonce), and the claim to settle once it is handled.
    Fresh {
        plain: String,
        signed: Signed,
        claim: Claim<V>,
    },
    /// Handled before: answer as then, with this, and nothing else.
    Again { answer: V, signed: Signed },
}

/// A POST callback through the door, in 91144's order: the query, the envelope's
/// ciphertext (`envelope` finds it: `<Encrypt>` or `encrypt`), the signature over it,
/// the clock, the replay cache, and only then AES and the receive id. A refusal comes
/// back as the answer to give.
#[allow(clippy::result_large_err)]
pub fn admit<V: Clone>(
    door: &Door,
    crypto: &WeComCrypto,
    replays: &Replays<V>,
    raw: Option<&str>,
    body: &[u8],
    envelope: fn(&str) -> Result<String, CryptoError>,
    now: SystemTime,
) -> Result<Admitted<V>, Response> {
    let signed = query_params(raw)
        .and_then(|params| signed(&params))
        .map_err(|reason| refuse(door, Reason::Malformed, StatusCode::BAD_REQUEST, &reason))?;
    let body = std::str::from_utf8(body).map_err(|_| {
        refuse(
            door,
            Reason::Malformed,
            StatusCode::BAD_REQUEST,
            "the body is not UTF-8",
        )
    })?;
    // Only the ciphertext is read before the signature over it is checked.
    let encrypt = envelope(body).map_err(|error| crypto_refusal(door, &error))?;
    let (sig, ts, nonce) = (&signed.msg_signature, &signed.timestamp, &signed.nonce);
    crypto
        .verify("encrypt", sig, ts, nonce, &encrypt)
        .map_err(|error| crypto_refusal(door, &error))?;
    let sent = check_timestamp(ts, now)
        .map_err(|reason| refuse(door, Reason::Stale, StatusCode::FORBIDDEN, &reason))?;
    // The signature covers the ciphertext, so it names this very request.
    let key = format!("{ts}:{nonce}:{sig}");
    let claim = match replays.check(&key, sent + CLOCK_SKEW, now) {
        Seen::New(claim) => claim,
        Seen::Done(answer) => {
            door.refused(
                Reason::Replay,
                StatusCode::OK,
                "a callback taken before; answered as then",
            );
            return Ok(Admitted::Again { answer, signed });
        }
        Seen::InFlight => {
            return Err(refuse(
                door,
                Reason::Replay,
                StatusCode::SERVICE_UNAVAILABLE,
                "the same callback is being handled; WeCom is asked to send it again",
            ));
        }
    };
    let plain = crypto
        .decrypt(sig, ts, nonce, &encrypt)
        .map_err(|error| crypto_refusal(door, &error))?;
    Ok(Admitted::Fresh {
        plain,
        signed,
        claim,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_decoded_and_plus_stays_plus() {
        let params =
            query_params(Some("echostr=P9n%2B4R%2F%3D%3D&nonce=1+2&timestamp=140")).expect("ok");
        assert_eq!(params["echostr"], "P9n+4R/==");
        assert_eq!(params["nonce"], "1+2");
        assert!(query_params(Some("a=%zz")).is_err());
        assert!(query_params(Some("a=%e4")).is_err());
        assert!(query_params(None).expect("empty").is_empty());
    }

    #[test]
    fn timestamps_far_from_our_clock_are_refused() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let at = |secs: u64| check_timestamp(&secs.to_string(), now);
        assert_eq!(at(1_800_000_000), Ok(now));
        assert!(at(1_800_000_000 - 590).is_ok());
        assert!(at(1_800_000_000 + 590).is_ok());
        assert!(at(1_800_000_000 - 700).is_err());
        assert!(at(1_800_000_000 + 700).is_err());
        assert!(check_timestamp("1e9", now).is_err());
        assert!(check_timestamp("", now).is_err());
    }

    #[test]
    fn errcodes_settle_as_sent_retried_or_refused() {
        assert_eq!(settle(0, "ok", "the message"), Ok(()));
        assert!(matches!(
            settle(45009, "api freq out of limit", "x"),
            Err(SendError::Retry {
                after: Some(RATE_LIMIT_WAIT),
                ..
            })
        ));
        assert!(matches!(
            settle(-1, "system busy", "x"),
            Err(SendError::Retry { after: None, .. })
        ));
        assert_eq!(
            settle(40008, "invalid message type", "the message"),
            Err(SendError::Permanent(
                "WeCom refused the message: errcode 40008: invalid message type".into()
            ))
        );
        assert!(answer(br#"{"errcode":0}"#, "x").is_ok());
        assert!(matches!(
            answer(b"{}", "x"),
            Err(SendError::Permanent(m)) if m.contains("not WeCom's JSON")
        ));
    }

    mod props {
        use proptest::prelude::*;

        use super::*;
        use crate::adapter::testing::props::config;

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn any_query_and_timestamp_are_read_or_refused(
                raw in any::<String>(),
                timestamp in any::<String>(),
                now in any::<u32>(),
            ) {
                if let Ok(params) = query_params(Some(&raw)) {
                    let _ = signed(&params);
                }
                let now = UNIX_EPOCH + Duration::from_secs(u64::from(now) * 2);
                let _ = check_timestamp(&timestamp, now);
            }
        }
    }
}
