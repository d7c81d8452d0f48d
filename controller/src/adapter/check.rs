//! What the adapters' config sections check alike, for `tapwire config check`: values
//! still holding `${…}` (their missing variable is reported on its own line, so they are
//! not judged here), fields that must not be empty, http(s) URLs, and ids that may be
//! written as a number or as a string. Messages name the field, never its value when it
//! could be a secret.

use reqwest::Url;
use serde::Deserialize;

/// A value still holding `${…}`: its missing variable is reported on its own line.
pub fn unexpanded(value: &str) -> bool {
    value.contains("${")
}

/// The first of `fields` (name, value) that is empty or blank.
pub fn required(fields: &[(&str, &str)]) -> Result<(), String> {
    match fields.iter().find(|(_, value)| value.trim().is_empty()) {
        Some((field, _)) => Err(format!("{field} must not be empty")),
        None => Ok(()),
    }
}

/// `value` (trimmed) as an http or https URL; errors name `field`.
pub fn http_url(field: &str, value: &str) -> Result<Url, String> {
    let url = Url::parse(value.trim()).map_err(|e| format!("{field} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "{field} must be http or https, not {}",
            url.scheme()
        ));
    }
    Ok(url)
}

/// An id the platform shows as a number (WeCom's AgentId, QQ's AppID), taken written
/// with or without quotes.
pub fn number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Signed(i64),
        Unsigned(u64),
        Text(String),
    }
    Ok(match Either::deserialize(d)? {
        Either::Signed(n) => n.to_string(),
        Either::Unsigned(n) => n.to_string(),
        Either::Text(s) => s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_urls_and_numbers() {
        assert!(unexpanded("https://x/${HOOK}"));
        assert!(!unexpanded("$HOOK"));
        assert_eq!(required(&[("a", "x"), ("b", "y")]), Ok(()));
        assert_eq!(
            required(&[("a", "x"), ("b", " "), ("c", "")]),
            Err("b must not be empty".into())
        );
        assert_eq!(
            http_url("base_url", " https://h/p ").map(String::from),
            Ok("https://h/p".into())
        );
        assert!(
            http_url("base_url", "ftp://h")
                .unwrap_err()
                .contains("base_url must be http or https, not ftp")
        );
        assert!(
            http_url("url", "nope")
                .unwrap_err()
                .starts_with("url is not a URL")
        );
        #[derive(Deserialize)]
        struct Id {
            #[serde(deserialize_with = "number_or_string")]
            id: String,
        }
        let id = |text: &str| toml::from_str::<Id>(text).map(|i| i.id).ok();
        assert_eq!(id("id = 1000002").as_deref(), Some("1000002"));
        assert_eq!(id("id = \"1000002\"").as_deref(), Some("1000002"));
        assert_eq!(id("id = true"), None);
    }
}
