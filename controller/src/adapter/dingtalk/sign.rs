//! DingTalk's one signature, used both ways: DingTalk signs the robot messages it posts to
//! an HTTP callback with the app secret, and a custom robot's webhook is signed by us with
//! the robot's `SEC…` secret.
//!
//! Sources: 机器人接收消息 (open.dingtalk.com/document/orgapp/receive-message): the headers
//! `timestamp` (milliseconds) and `sign` = Base64(HmacSHA256(key = appSecret, message =
//! timestamp + "\n" + appSecret)); a timestamp more than an hour from our clock, or a sign
//! that differs, is not DingTalk. The custom robot's 安全设置 › 加签 (自定义机器人接入): the
//! same value with the robot's `SEC…` secret, URL-encoded, appended to the webhook as
//! `&timestamp=&sign=`, the timestamp again in milliseconds and within an hour of
//! DingTalk's clock. Both pages show the computation in Java and Python
//! (`hmac.new(secret, ts + "\n" + secret, sha256)`, then `base64`, then `quote_plus`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The header carrying the milliseconds the sign covers (receive-message).
pub const TIMESTAMP_HEADER: &str = "timestamp";
/// The header carrying DingTalk's sign (receive-message).
pub const SIGN_HEADER: &str = "sign";
/// receive-message: "timestamp 与系统当前时间戳如果相差1小时以上，则认为是非法的请求".
pub const WINDOW: Duration = Duration::from_secs(60 * 60);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("no {TIMESTAMP_HEADER} header")]
    NoTimestamp,
    #[error("no {SIGN_HEADER} header")]
    NoSign,
    #[error("{TIMESTAMP_HEADER} {0:?} is not Unix milliseconds")]
    BadTimestamp(String),
    #[error("{SIGN_HEADER} does not match the timestamp and the app secret")]
    Mismatch,
    #[error("{TIMESTAMP_HEADER} {millis} is {off_secs} s away from now (more than {} s)", WINDOW.as_secs())]
    Stale { millis: u64, off_secs: u64 },
}

/// Base64(HmacSHA256(key = secret, message = `timestamp` + "\n" + secret)).
pub fn sign(timestamp: &str, secret: &str) -> String {
    // HMAC takes a key of any length; the error branch exists only for fixed-size MACs
    // (and an empty sign never equals a header, which must not be empty).
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp.as_bytes());
    mac.update(b"\n");
    mac.update(secret.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Milliseconds since the Unix epoch, as DingTalk writes `timestamp`.
pub fn millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

/// Checks a callback's `timestamp` and `sign` headers against the app secret: the sign
/// first (constant time), then the hour window, so nothing unsigned is read further.
/// The signed time, when both hold.
pub fn verify(
    timestamp: Option<&str>,
    signature: Option<&str>,
    secret: &str,
    now: SystemTime,
) -> Result<SystemTime, SignError> {
    let timestamp = timestamp
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(SignError::NoTimestamp)?;
    let signature = signature
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(SignError::NoSign)?;
    let expected = sign(timestamp, secret);
    if !bool::from(expected.as_bytes().ct_eq(signature.as_bytes())) {
        return Err(SignError::Mismatch);
    }
    let millis_at: u64 = timestamp
        .parse()
        .map_err(|_| SignError::BadTimestamp(timestamp.to_string()))?;
    let now = millis(now);
    let off = now.abs_diff(millis_at);
    if off > u64::try_from(WINDOW.as_millis()).unwrap_or(u64::MAX) {
        return Err(SignError::Stale {
            millis: millis_at,
            off_secs: off / 1000,
        });
    }
    Ok(UNIX_EPOCH + Duration::from_millis(millis_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The secret and the header timestamp are the documents' own examples ("this is
    /// secret", receive-message's `"timestamp": "1577262236757"`); the expected values
    /// were computed with their Python recipe (hmac + base64 + quote_plus).
    const DOC_SECRET: &str = "this is secret";
    const DOC_TS: &str = "1577262236757";
    const DOC_SIGN: &str = "hmPWwU+7lVdm3ZZz0r9tSfx0L4Q26jWOZr9+Gs6EZQM=";

    fn at(millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(millis)
    }

    #[test]
    fn signs_like_the_documents_recipe() {
        assert_eq!(sign(DOC_TS, DOC_SECRET), DOC_SIGN);
        // A secret with the characters quote_plus escapes.
        assert_eq!(
            sign("1700000000000", "SECabc+/="),
            "ZG3cBQiDq62/xkwVduhittJkmG/G0fVwWonSJ5Ju/2Q="
        );
    }

    #[test]
    fn a_callback_is_checked_for_sign_then_window() {
        let now = at(1_577_262_236_757 + 5_000);
        assert_eq!(
            verify(Some(DOC_TS), Some(DOC_SIGN), DOC_SECRET, now),
            Ok(at(1_577_262_236_757))
        );
        // Either side of the hour, a little inside and a little outside.
        let inside = at(1_577_262_236_757 + 3_600_000);
        assert!(verify(Some(DOC_TS), Some(DOC_SIGN), DOC_SECRET, inside).is_ok());
        let before = at(1_577_262_236_757 - 3_600_000);
        assert!(verify(Some(DOC_TS), Some(DOC_SIGN), DOC_SECRET, before).is_ok());
        let late = at(1_577_262_236_757 + 3_600_001);
        assert!(matches!(
            verify(Some(DOC_TS), Some(DOC_SIGN), DOC_SECRET, late),
            Err(SignError::Stale { off_secs: 3600, .. })
        ));
        let early = at(1_577_262_236_757 - 2 * 3_600_000);
        assert!(matches!(
            verify(Some(DOC_TS), Some(DOC_SIGN), DOC_SECRET, early),
            Err(SignError::Stale { .. })
        ));
        assert_eq!(
            verify(Some(DOC_TS), Some(DOC_SIGN), "another secret", now),
            Err(SignError::Mismatch)
        );
        assert_eq!(
            verify(Some("1577262236758"), Some(DOC_SIGN), DOC_SECRET, now),
            Err(SignError::Mismatch)
        );
        assert_eq!(
            verify(None, Some(DOC_SIGN), DOC_SECRET, now),
            Err(SignError::NoTimestamp)
        );
        assert_eq!(
            verify(Some(DOC_TS), Some(" "), DOC_SECRET, now),
            Err(SignError::NoSign)
        );
        // A signed timestamp that is not a number is refused, not read as zero.
        let words = sign("soon", DOC_SECRET);
        assert_eq!(
            verify(Some("soon"), Some(&words), DOC_SECRET, now),
            Err(SignError::BadTimestamp("soon".into()))
        );
    }

    /// No input panics: any headers are checked or refused; a sign made within the hour
    /// verifies, one made outside it is stale.
    mod props {
        use proptest::prelude::*;

        use super::*;
        use crate::adapter::testing::props::config;

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn any_headers_are_refused_or_taken(
                timestamp in proptest::option::of(any::<String>()),
                signature in proptest::option::of(any::<String>()),
                secret in any::<String>(),
                now in any::<u64>(),
            ) {
                let now = UNIX_EPOCH + Duration::from_millis(now >> 2);
                let _ = verify(timestamp.as_deref(), signature.as_deref(), &secret, now);
                if let Some(timestamp) = &timestamp {
                    let signed = sign(timestamp, &secret);
                    let _ = verify(Some(timestamp), Some(&signed), &secret, now);
                }
            }

            #[test]
            fn a_sign_verifies_within_the_hour_and_not_after(
                secret in any::<String>(),
                sent in 0u64..4_000_000_000_000,
                off in 0u64..7_200_000,
            ) {
                let timestamp = sent.to_string();
                let signed = sign(&timestamp, &secret);
                let now = UNIX_EPOCH + Duration::from_millis(sent + off);
                let result = verify(Some(&timestamp), Some(&signed), &secret, now);
                if off <= 3_600_000 {
                    prop_assert_eq!(result, Ok(UNIX_EPOCH + Duration::from_millis(sent)));
                } else {
                    let stale = matches!(result, Err(SignError::Stale { .. }));
                    prop_assert!(stale);
                }
            }
        }
    }
}
