//! What the adapters' config sections check alike, for `tapwire config check`: values
//! still holding `${…}` (their missing variable is reported on its own line, so they are
//! not judged here), fields that must not be empty, http(s) URLs, and ids that may be
//! written as a number or as a string. Messages name the field, never its value when it
//! could be a secret; and a [`Secret`] (a key, a token, a webhook address with its key)
//! never shows in a config's `Debug`.

use reqwest::Url;
use serde::Deserialize;

/// A config value that must never reach a log or an error: its `Debug` is `Secret(…)`,
/// and it has no `Display`. Read it as the `str` it derefs to.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl std::ops::Deref for Secret {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret(value.to_string())
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

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

    #[test]
    fn a_secret_reads_as_its_text_and_never_shows() {
        #[derive(Debug, Deserialize)]
        struct Section {
            #[allow(dead_code)]
            key: Secret,
        }
        let section: Section = toml::from_str("key = \"s3cret\"").expect("toml");
        assert_eq!(&*section.key, "s3cret");
        assert_eq!(section.key.trim(), "s3cret");
        assert!(!format!("{section:?}").contains("s3cret"));
        assert_eq!(Secret::from("a"), Secret::from(String::from("a")));
    }

    /// Every adapter's section, holding the same secret wherever it takes one: its
    /// `Debug` (which `Config`'s includes) shows none.
    #[test]
    fn no_adapter_section_shows_a_secret_in_debug() {
        const S: &str = "s3cretAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let sections = [
            format!("type = \"wecom_robot\"\nurl = \"https://h/cgi-bin/webhook/send?key={S}\""),
            format!(
                "type = \"wecom_app\"\ncorp_id = \"c\"\nagent_id = 1\nsecret = \"{S}\"\ntoken = \"{S}\"\nencoding_aes_key = \"{S}\""
            ),
            format!("type = \"wecom_aibot\"\ntoken = \"{S}\"\nencoding_aes_key = \"{S}\""),
            format!(
                "type = \"feishu\"\napp_id = \"a\"\napp_secret = \"{S}\"\nverification_token = \"{S}\"\nencrypt_key = \"{S}\""
            ),
            format!(
                "type = \"feishu_webhook\"\nurl = \"https://h/open-apis/bot/v2/hook/{S}\"\nsecret = \"{S}\""
            ),
            format!("type = \"qq\"\napp_id = 1\napp_secret = \"{S}\""),
            format!("type = \"dingtalk\"\nclient_id = \"c\"\nclient_secret = \"{S}\""),
            format!(
                "type = \"dingtalk_webhook\"\nurl = \"https://h/robot/send?access_token={S}\"\nsecret = \"{S}\""
            ),
            format!("type = \"ilink\"\ntoken = \"{S}\""),
        ];
        for text in sections {
            let section: crate::adapter::AdapterConfig = toml::from_str(&text).expect(&text);
            let shown = format!("{section:?}");
            assert!(!shown.contains("s3cret"), "{shown}");
        }
    }
}
