//! What WeCom's adapters share (the group robot, the self-built app, the AI bot): its
//! text limit, news messages, how its JSON answers say failure, and the query its
//! callbacks are signed in.
//!
//! WeCom documents (developer.work.weixin.qq.com/document/path/…): 90236 and 99110 (a text
//! message holds 2048 bytes), 91770 and 90236 (news: 1 to 8 articles), 90313 全局错误码
//! (`errcode` 0 is success whatever the HTTP status; -1 system busy; 45009 over the rate
//! limit), 90930 (callback query values are URL-decoded: "需要做Urldecode处理").

use std::collections::HashMap;
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::SendError;
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

/// WeCom's JSON answer; one without `errcode` is not WeCom's and must not pass for
/// success (so `errcode` is a required field of `T`).
pub fn answer<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, SendError> {
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
        #[derive(serde::Deserialize, Debug)]
        struct Answer {
            #[allow(dead_code)]
            errcode: i64,
        }
        assert!(answer::<Answer>(br#"{"errcode":0}"#, "x").is_ok());
        assert!(matches!(
            answer::<Answer>(b"{}", "x"),
            Err(SendError::Permanent(m)) if m.contains("not WeCom's JSON")
        ));
    }
}
