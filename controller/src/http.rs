//! What every HTTP client of the controller shares (webhook handlers, platform
//! adapters): the backoff between retries, `Retry-After`, and URLs shown in errors and
//! logs without the secrets that tend to live in their query strings.

use std::time::{Duration, SystemTime};

use reqwest::{Client, Url};

pub const USER_AGENT: &str = concat!("tapwire/", env!("CARGO_PKG_VERSION"));

/// The wait before retry number `attempt` (1 = after the first try): `base` doubled per
/// attempt, capped at `max`, then jittered into its upper half so that many senders that
/// failed together do not retry together. `jitter` is in [0, 1).
pub fn backoff_delay(base: Duration, max: Duration, attempt: u32, jitter: f64) -> Duration {
    let doubled = base.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
    let delay = doubled.min(max);
    delay / 2 + (delay / 2).mul_f64(jitter.clamp(0.0, 1.0))
}

/// `Retry-After` as delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A client for one platform's API: our user agent, and `timeout` for a whole request.
pub fn client(timeout: Duration) -> Result<Client, String> {
    Client::builder()
        .timeout(timeout)
        .user_agent(USER_AGENT)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {}", error_chain(e)))
}

/// A reqwest error and its causes, without the URL reqwest would print.
pub fn error_chain(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut parts = vec![error.to_string()];
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

/// `%XX` escapes decoded, `+` left as it is (a query's base64 needs its `+`). An escape
/// that is not two hex digits is an error, which carries the text decoded with such
/// escapes kept as they are, for callers that take what they can.
pub fn percent_decode(text: &str) -> Result<Vec<u8>, Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut broken = false;
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                broken |= bytes[i] == b'%';
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    if broken { Err(out) } else { Ok(out) }
}

pub fn shown_url(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    // Both fail only for URLs that cannot have credentials, which then have none to hide.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

/// A URL that may not parse, cut before its query or fragment and stripped of
/// credentials, for error messages.
pub fn redact_raw_url(url: &str) -> String {
    let url = url.trim();
    let url = url.split(['?', '#']).next().unwrap_or_default();
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}{}", &rest[at + 1..]),
        None => format!("{scheme}{rest}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        let base = Duration::from_millis(500);
        let max = Duration::from_millis(30_000);
        for (attempt, full) in [(1, 500), (2, 1_000), (3, 2_000), (4, 4_000), (10, 30_000)] {
            let low = backoff_delay(base, max, attempt, 0.0);
            let high = backoff_delay(base, max, attempt, 0.999_999);
            assert_eq!(low, Duration::from_millis(full / 2), "attempt {attempt}");
            assert!(
                high <= Duration::from_millis(full) && high > low,
                "attempt {attempt}"
            );
        }
        // No overflow however many attempts.
        assert_eq!(backoff_delay(base, max, u32::MAX, 0.0), max / 2);
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn percent_escapes_are_decoded_and_broken_ones_kept_in_the_error() {
        assert_eq!(
            percent_decode("a%2Bb+c%e4%bd%a0"),
            Ok("a+b+c你".as_bytes().to_vec())
        );
        assert_eq!(percent_decode("%zz%41"), Err(b"%zzA".to_vec()));
        assert_eq!(percent_decode("50%"), Err(b"50%".to_vec()));
        assert_eq!(percent_decode(""), Ok(Vec::new()));
    }

    #[test]
    fn urls_are_shown_without_secrets() {
        assert_eq!(
            redact_raw_url("https://u:p@h.example/a/b?k=v#f"),
            "https://h.example/a/b"
        );
        let url = Url::parse("https://u:p@h.example/send?key=SECRET").expect("url");
        assert_eq!(shown_url(&url), "https://h.example/send");
    }

    mod props {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            // As the adapters' properties (adapter::testing::props), which this module
            // must not import: adapters use it.
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn any_text_percent_decodes_or_says_where_it_could_not(text in any::<String>()) {
                match percent_decode(&text) {
                    Ok(bytes) => prop_assert!(bytes.len() <= text.len()),
                    Err(kept) => prop_assert!(text.contains('%') && kept.len() <= text.len()),
                }
                let _ = redact_raw_url(&text);
            }
        }
    }
}
