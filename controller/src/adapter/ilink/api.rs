//! The iLink bot API over HTTP: its headers, its endpoints and what their answers mean.
//!
//! Sources: `Tencent/openclaw-weixin` (npm `@tencent-weixin/openclaw-weixin` 2.4.3), whose
//! README.md "Backend API Protocol" section is the protocol document, `src/api/api.ts` and
//! `src/api/types.ts` (the request and answer shapes), `src/api/session-guard.ts` (errcode
//! -14) and `src/auth/login-qr.ts` (the QR login).
//! - Every call but the login's is `POST <base>/ilink/bot/<endpoint>` with a JSON body
//!   that carries `base_info` (`channel_version`, `bot_agent`: who calls, like a
//!   User-Agent) and the headers `Content-Type: application/json`,
//!   `AuthorizationType: ilink_bot_token`, `Authorization: Bearer <token>` and
//!   `X-WECHAT-UIN`: a random uint32 written in decimal, then base64 (`randomWechatUin`).
//!   All requests, the login's GETs too, carry `iLink-App-Id` (package.json's
//!   `ilink_appid`, "bot") and `iLink-App-ClientVersion` (the plugin version as
//!   `major<<16 | minor<<8 | patch`).
//! - An answer is HTTP 200 whose body says how it went: `ret` and `errcode` 0 (or absent)
//!   is success; `errcode` (or `ret`) -14 is an expired session. The open implementations
//!   add that `sendmessage` refuses with `ret = -2` when it throttles (ZeroClaw
//!   `wechat.rs` `sendmessage_body_error` reads the same envelope for sends).
//! - Timeouts (api.ts): 35 s for the long poll (the server may name another in
//!   `longpolling_timeout_ms`), 15 s for `sendmessage`, 10 s for `getconfig` and
//!   `sendtyping`; a long poll that times out on our side is an empty answer, not a fault.

use std::time::Duration;

use base64::Engine;
use reqwest::{Client, Method, RequestBuilder, Url};
use serde::{Deserialize, Deserializer};

use crate::adapter::SendError;
use crate::http::{USER_AGENT, error_chain, shown_url};

/// The plugin release whose sources this follows; sent as `iLink-App-ClientVersion`
/// (api.ts `buildClientVersion`) and as `base_info.channel_version`.
pub const CLIENT_VERSION: (u32, u32, u32) = (2, 4, 3);
/// package.json `ilink_appid`.
pub const APP_ID: &str = "bot";
/// types.ts `MessageType`: who wrote a message.
pub const MESSAGE_TYPE_USER: u32 = 1;
pub const MESSAGE_TYPE_BOT: u32 = 2;
/// types.ts `MessageState.FINISH`: a message sent whole, not streamed.
pub const MESSAGE_STATE_FINISH: u32 = 2;
/// types.ts `MessageItemType`.
pub const ITEM_TEXT: u32 = 1;
pub const ITEM_IMAGE: u32 = 2;
pub const ITEM_VOICE: u32 = 3;
pub const ITEM_FILE: u32 = 4;
pub const ITEM_VIDEO: u32 = 5;
/// types.ts `TypingStatus`.
pub const TYPING: u32 = 1;
pub const TYPING_CANCEL: u32 = 2;
/// session-guard.ts `SESSION_EXPIRED_ERRCODE`.
pub const SESSION_EXPIRED: i64 = -14;
/// What `sendmessage` answers when it throttles the bot (see [`classify_send`]).
pub const THROTTLED: i64 = -2;

/// api.ts `DEFAULT_LONG_POLL_TIMEOUT_MS`.
pub const LONG_POLL: Duration = Duration::from_secs(35);
/// How much longer than the long poll itself we wait for its answer: the server answers
/// at its timeout, and ours must not cut that answer off.
const LONG_POLL_MARGIN: Duration = Duration::from_secs(5);
/// The longest long poll a server's `longpolling_timeout_ms` is trusted with.
const LONG_POLL_MAX: Duration = Duration::from_secs(120);
/// api.ts `DEFAULT_API_TIMEOUT_MS`.
const SEND_TIMEOUT: Duration = Duration::from_secs(15);
/// api.ts `DEFAULT_CONFIG_TIMEOUT_MS`.
const LIGHT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait after `ret = -2`. The protocol names no window. Open
/// implementations report that the throttle is the bot's as a whole, that it lifts
/// after minutes to an hour, and that sends made while it lasts prolong it
/// (cc-connect #1640/#1643, hermes-agent #27234), so the retries are spaced widely.
pub const THROTTLE_WAIT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The session behind the token is over (errcode -14): a new login is needed.
    #[error("iLink session expired (errcode {SESSION_EXPIRED}{})", shown_msg(.0))]
    SessionExpired(String),
    /// iLink answered with a non-zero `ret`/`errcode`.
    #[error("iLink answered ret={ret} errcode={errcode}{}", shown_msg(.errmsg))]
    Refused {
        ret: i64,
        errcode: i64,
        errmsg: String,
    },
    #[error("iLink answered HTTP {status}{}", shown_msg(.body))]
    Status { status: u16, body: String },
    #[error("cannot reach iLink at {url}: {reason}")]
    Network { url: String, reason: String },
    #[error("iLink's answer is not what the protocol describes: {0}")]
    Malformed(String),
}

fn shown_msg(message: &str) -> String {
    let message = message.trim();
    if message.is_empty() {
        String::new()
    } else {
        // A body is shown in part: enough to name the problem, not a page of HTML.
        let cut: String = message.chars().take(200).collect();
        format!(": {cut}")
    }
}

/// `iLink-App-ClientVersion`: `0x00MMNNPP` as a decimal number (api.ts
/// `buildClientVersion`: "1.0.11" → 65547).
pub fn client_version((major, minor, patch): (u32, u32, u32)) -> u32 {
    ((major & 0xff) << 16) | ((minor & 0xff) << 8) | (patch & 0xff)
}

/// `X-WECHAT-UIN` for the random `value`: its decimal digits, base64-encoded (api.ts
/// `randomWechatUin`).
pub fn wechat_uin(value: u32) -> String {
    base64::engine::general_purpose::STANDARD.encode(value.to_string())
}

/// `base_info`, sent with every POST (api.ts `buildBaseInfo`). `bot_agent` is a
/// UA-style `Name/Version` (README "Custom BotAgent"): it says who calls.
pub fn base_info() -> serde_json::Value {
    let (major, minor, patch) = CLIENT_VERSION;
    serde_json::json!({
        "channel_version": format!("{major}.{minor}.{patch}"),
        "bot_agent": format!("Tapwire/{}", env!("CARGO_PKG_VERSION")),
    })
}

/// Reads an id the protocol types as a number (`message_id`, `seq`) whether it comes as
/// a number or, as large ids sometimes do, a string.
fn id_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Unsigned(u64),
        Signed(i64),
        Float(f64),
        Text(String),
    }
    Ok(match Option::<Id>::deserialize(d)? {
        None => None,
        Some(Id::Unsigned(n)) => Some(n.to_string()),
        Some(Id::Signed(n)) => Some(n.to_string()),
        // A float only where a JSON encoder wrote a whole number as one.
        Some(Id::Float(n)) => Some(format!("{n:.0}")),
        Some(Id::Text(s)) => Some(s),
    })
}

/// types.ts `TextItem`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct TextItem {
    #[serde(default)]
    pub text: Option<String>,
}

/// types.ts `VoiceItem`: only its transcript is read.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct VoiceItem {
    #[serde(default)]
    pub text: Option<String>,
}

/// types.ts `FileItem`: only its name is read.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct FileItem {
    #[serde(default)]
    pub file_name: Option<String>,
}

/// types.ts `RefMessage`: the message a reply quotes.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct RefMessage {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub message_item: Option<Box<MessageItem>>,
}

/// types.ts `MessageItem`: one part of a message. Media parts are CDN references
/// (AES-128-ECB) that are not fetched; they are named in the event.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct MessageItem {
    #[serde(rename = "type", default)]
    pub item_type: Option<u32>,
    #[serde(default)]
    pub text_item: Option<TextItem>,
    #[serde(default)]
    pub voice_item: Option<VoiceItem>,
    #[serde(default)]
    pub file_item: Option<FileItem>,
    #[serde(default)]
    pub ref_msg: Option<RefMessage>,
}

/// types.ts `WeixinMessage`, the fields an event needs.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct WeixinMessage {
    #[serde(default, deserialize_with = "id_text")]
    pub seq: Option<String>,
    #[serde(default, deserialize_with = "id_text")]
    pub message_id: Option<String>,
    #[serde(default)]
    pub from_user_id: Option<String>,
    #[serde(default)]
    pub to_user_id: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub create_time_ms: Option<u64>,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub group_id: Option<String>,
    #[serde(default)]
    pub message_type: Option<u32>,
    #[serde(default)]
    pub message_state: Option<u32>,
    #[serde(default)]
    pub item_list: Vec<MessageItem>,
    #[serde(default)]
    pub context_token: Option<String>,
}

/// The `getupdates` answer (types.ts `GetUpdatesResp`). `msgs` are kept as JSON so that
/// one message the types do not fit cannot hide the others, and so each event carries
/// the message as it came.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Updates {
    #[serde(default)]
    pub ret: Option<i64>,
    #[serde(default)]
    pub errcode: Option<i64>,
    #[serde(default)]
    pub errmsg: Option<String>,
    #[serde(default)]
    pub msgs: Vec<serde_json::Value>,
    #[serde(default)]
    pub get_updates_buf: Option<String>,
    #[serde(default)]
    pub longpolling_timeout_ms: Option<u64>,
}

impl Updates {
    /// The long poll to ask for next, as the server suggests it (monitor.ts).
    pub fn next_long_poll(&self) -> Option<Duration> {
        self.longpolling_timeout_ms
            .filter(|ms| *ms > 0)
            .map(|ms| Duration::from_millis(ms).min(LONG_POLL_MAX))
    }
}

/// `ret`/`errcode`/`errmsg`, the envelope of every answer.
#[derive(Debug, Clone, Default, Deserialize)]
struct Envelope {
    #[serde(default)]
    ret: Option<i64>,
    #[serde(default)]
    errcode: Option<i64>,
    #[serde(default)]
    errmsg: Option<String>,
}

/// An error when the envelope says the call failed: -14 in either field is an expired
/// session (monitor.ts checks both), any other non-zero a refusal.
fn check_envelope(
    ret: Option<i64>,
    errcode: Option<i64>,
    errmsg: Option<&str>,
) -> Result<(), ApiError> {
    let ret = ret.unwrap_or(0);
    let errcode = errcode.unwrap_or(0);
    let errmsg = errmsg.unwrap_or_default().to_string();
    if ret == SESSION_EXPIRED || errcode == SESSION_EXPIRED {
        return Err(ApiError::SessionExpired(errmsg));
    }
    if ret != 0 || errcode != 0 {
        return Err(ApiError::Refused {
            ret,
            errcode,
            errmsg,
        });
    }
    Ok(())
}

/// A text message to `to` (send.ts `buildTextMessageReq`): sent by the bot, whole, in
/// the conversation `context_token` names.
pub fn text_message(
    to: &str,
    text: &str,
    context_token: &str,
    client_id: &str,
) -> serde_json::Value {
    serde_json::json!({
        "msg": {
            "from_user_id": "",
            "to_user_id": to,
            "client_id": client_id,
            "message_type": MESSAGE_TYPE_BOT,
            "message_state": MESSAGE_STATE_FINISH,
            "item_list": [{"type": ITEM_TEXT, "text_item": {"text": text}}],
            "context_token": context_token,
        }
    })
}

/// What a failed send means for the outbox.
pub fn classify_send(error: ApiError) -> SendError {
    match error {
        ApiError::Refused { ret, errcode, .. } if ret == THROTTLED || errcode == THROTTLED => {
            SendError::Retry {
                reason: format!(
                    "{error}: iLink is throttling this bot (it answers so too when the user's context_token has lapsed)"
                ),
                after: Some(THROTTLE_WAIT),
            }
        }
        ApiError::SessionExpired(_) => SendError::Permanent(format!(
            "{error}: run `tapwire ilink login` to scan a new QR code"
        )),
        ApiError::Status { status, .. } if status == 429 || status >= 500 => SendError::Retry {
            reason: error.to_string(),
            after: None,
        },
        ApiError::Network { .. } => SendError::Retry {
            reason: error.to_string(),
            after: None,
        },
        // A refusal the protocol does not name, a 4xx, an answer that is not JSON:
        // sending the same again would not change it.
        other => SendError::Permanent(other.to_string()),
    }
}

/// Where the bot is and who it is: the base URL (the login's `baseurl`) and its token.
#[derive(Clone)]
pub struct Credentials {
    pub base: Url,
    pub token: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("base", &shown_url(&self.base))
            .finish_non_exhaustive()
    }
}

/// The HTTP side: one client for every call.
#[derive(Clone)]
pub struct Api {
    client: Client,
}

impl Default for Api {
    fn default() -> Self {
        Api::new()
    }
}

impl Api {
    pub fn new() -> Api {
        // No client-wide timeout: each call sets its own (the long poll is long).
        let client = Client::builder()
            .user_agent(USER_AGENT)
            .build()
            .unwrap_or_else(|_| Client::new());
        Api { client }
    }

    fn url(base: &Url, endpoint: &str) -> Result<Url, ApiError> {
        // api.ts `ensureTrailingSlash` + `new URL(endpoint, base)`: a base with a path
        // keeps it.
        let mut base = base.clone();
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        base.join(endpoint).map_err(|e| {
            ApiError::Malformed(format!("cannot join {endpoint:?} to the base URL: {e}"))
        })
    }

    /// The headers every request carries (api.ts `buildCommonHeaders`).
    fn common(&self, method: Method, url: Url) -> RequestBuilder {
        self.client
            .request(method, url)
            .header("iLink-App-Id", APP_ID)
            .header(
                "iLink-App-ClientVersion",
                client_version(CLIENT_VERSION).to_string(),
            )
    }

    /// A POST with the bot's headers (api.ts `buildHeaders`) and `base_info` in the body.
    fn post(
        &self,
        credentials: &Credentials,
        endpoint: &str,
        mut body: serde_json::Value,
        timeout: Duration,
    ) -> Result<RequestBuilder, ApiError> {
        let url = Api::url(&credentials.base, endpoint)?;
        if let Some(object) = body.as_object_mut() {
            object.insert("base_info".into(), base_info());
        }
        Ok(self
            .common(Method::POST, url)
            .header("AuthorizationType", "ilink_bot_token")
            .header("X-WECHAT-UIN", wechat_uin(fastrand::u32(..)))
            .bearer_auth(credentials.token.trim())
            .timeout(timeout)
            .json(&body))
    }

    /// A GET of the login endpoints, which need no token (login-qr.ts `apiGetFetch`).
    pub fn get(
        &self,
        base: &Url,
        endpoint: &str,
        timeout: Duration,
    ) -> Result<RequestBuilder, ApiError> {
        let url = Api::url(base, endpoint)?;
        Ok(self.common(Method::GET, url).timeout(timeout))
    }

    /// Sends a request and reads its body as JSON of type `T`. A timeout is `Ok(None)`
    /// when `timeout_is_empty`, else a network error.
    pub async fn send<T: serde::de::DeserializeOwned>(
        request: RequestBuilder,
        timeout_is_empty: bool,
    ) -> Result<Option<T>, ApiError> {
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) if e.is_timeout() && timeout_is_empty => return Ok(None),
            Err(e) => {
                let url = e.url().map(shown_url).unwrap_or_default();
                return Err(ApiError::Network {
                    url,
                    reason: error_chain(e),
                });
            }
        };
        let url = shown_url(response.url());
        let status = response.status();
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(e) if e.is_timeout() && timeout_is_empty => return Ok(None),
            Err(e) => {
                return Err(ApiError::Network {
                    url,
                    reason: error_chain(e),
                });
            }
        };
        if !status.is_success() {
            return Err(ApiError::Status {
                status: status.as_u16(),
                body: String::from_utf8_lossy(&bytes).into_owned(),
            });
        }
        // An empty body is an empty object: `sendmessage` answers `{}` (types.ts
        // `SendMessageResp`), and some servers nothing at all.
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(bytes)
            .map(Some)
            .map_err(|e| ApiError::Malformed(format!("{e} in {}", shown_msg_raw(bytes))))
    }

    /// `getupdates`: waits up to `long_poll` for messages after `cursor`. A long poll
    /// that our side times out is an empty answer at the same cursor.
    pub async fn get_updates(
        &self,
        credentials: &Credentials,
        cursor: &str,
        long_poll: Duration,
    ) -> Result<Updates, ApiError> {
        let request = self.post(
            credentials,
            "ilink/bot/getupdates",
            serde_json::json!({"get_updates_buf": cursor}),
            long_poll + LONG_POLL_MARGIN,
        )?;
        let Some(updates) = Api::send::<Updates>(request, true).await? else {
            return Ok(Updates::default());
        };
        check_envelope(updates.ret, updates.errcode, updates.errmsg.as_deref())?;
        Ok(updates)
    }

    /// `sendmessage` with one text item.
    pub async fn send_text(
        &self,
        credentials: &Credentials,
        to: &str,
        text: &str,
        context_token: &str,
        client_id: &str,
    ) -> Result<(), ApiError> {
        let request = self.post(
            credentials,
            "ilink/bot/sendmessage",
            text_message(to, text, context_token, client_id),
            SEND_TIMEOUT,
        )?;
        let answer = Api::send::<Envelope>(request, false)
            .await?
            .unwrap_or_default();
        check_envelope(answer.ret, answer.errcode, answer.errmsg.as_deref())
    }

    /// `getconfig`: the typing ticket for `user` (empty when the bot has none).
    pub async fn typing_ticket(
        &self,
        credentials: &Credentials,
        user: &str,
        context_token: &str,
    ) -> Result<String, ApiError> {
        #[derive(Deserialize, Default)]
        struct ConfigAnswer {
            #[serde(default)]
            ret: Option<i64>,
            #[serde(default)]
            errcode: Option<i64>,
            #[serde(default)]
            errmsg: Option<String>,
            #[serde(default)]
            typing_ticket: Option<String>,
        }
        let request = self.post(
            credentials,
            "ilink/bot/getconfig",
            serde_json::json!({"ilink_user_id": user, "context_token": context_token}),
            LIGHT_TIMEOUT,
        )?;
        let answer = Api::send::<ConfigAnswer>(request, false)
            .await?
            .unwrap_or_default();
        check_envelope(answer.ret, answer.errcode, answer.errmsg.as_deref())?;
        Ok(answer.typing_ticket.unwrap_or_default())
    }

    /// `sendtyping`: shows (`TYPING`) or clears (`TYPING_CANCEL`) "typing…" to `user`.
    pub async fn send_typing(
        &self,
        credentials: &Credentials,
        user: &str,
        ticket: &str,
        status: u32,
    ) -> Result<(), ApiError> {
        let request = self.post(
            credentials,
            "ilink/bot/sendtyping",
            serde_json::json!({"ilink_user_id": user, "typing_ticket": ticket, "status": status}),
            LIGHT_TIMEOUT,
        )?;
        let answer = Api::send::<Envelope>(request, false)
            .await?
            .unwrap_or_default();
        check_envelope(answer.ret, answer.errcode, answer.errmsg.as_deref())
    }
}

fn shown_msg_raw(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let cut: String = text.chars().take(120).collect();
    format!("{cut:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_follow_api_ts() {
        // api.ts's own example: "1.0.11" -> 0x0001000B = 65547.
        assert_eq!(client_version((1, 0, 11)), 65547);
        assert_eq!(client_version(CLIENT_VERSION), 0x0002_0403);
        // The uin is the decimal text, base64-encoded: "1234567890" -> "MTIzNDU2Nzg5MA==".
        assert_eq!(wechat_uin(1_234_567_890), "MTIzNDU2Nzg5MA==");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(wechat_uin(u32::MAX))
            .expect("base64");
        assert_eq!(decoded, b"4294967295");
        let info = base_info();
        assert_eq!(info["channel_version"], "2.4.3");
        assert!(
            info["bot_agent"]
                .as_str()
                .is_some_and(|a| a.starts_with("Tapwire/"))
        );
    }

    #[test]
    fn urls_keep_the_base_path() {
        let base = Url::parse("https://ilinkai.weixin.qq.com").expect("url");
        assert_eq!(
            Api::url(&base, "ilink/bot/getupdates")
                .expect("url")
                .as_str(),
            "https://ilinkai.weixin.qq.com/ilink/bot/getupdates"
        );
        let nested = Url::parse("http://127.0.0.1:9/prefix").expect("url");
        assert_eq!(
            Api::url(&nested, "ilink/bot/sendmessage")
                .expect("url")
                .as_str(),
            "http://127.0.0.1:9/prefix/ilink/bot/sendmessage"
        );
    }

    /// README "getUpdates" and "Message Structure", with a message filled in field by
    /// field from the WeixinMessage and MessageItem tables.
    #[test]
    fn the_protocol_examples_parse() {
        let answer = serde_json::json!({
            "ret": 0,
            "msgs": [{
                "seq": 12,
                "message_id": 7380012345678901234u64,
                "from_user_id": "o9cq8abc@im.wechat",
                "to_user_id": "bot123@im.bot",
                "create_time_ms": 1775000000000u64,
                "session_id": "s-1",
                "message_type": 1,
                "message_state": 2,
                "item_list": [{"type": 1, "text_item": {"text": "Hello"}}],
                "context_token": "ctx-abc"
            }],
            "get_updates_buf": "<new cursor>",
            "longpolling_timeout_ms": 35000
        });
        let updates: Updates = serde_json::from_value(answer).expect("updates");
        assert!(check_envelope(updates.ret, updates.errcode, None).is_ok());
        assert_eq!(updates.get_updates_buf.as_deref(), Some("<new cursor>"));
        assert_eq!(updates.next_long_poll(), Some(Duration::from_secs(35)));
        let message: WeixinMessage =
            serde_json::from_value(updates.msgs[0].clone()).expect("message");
        assert_eq!(message.message_id.as_deref(), Some("7380012345678901234"));
        assert_eq!(message.seq.as_deref(), Some("12"));
        assert_eq!(message.message_type, Some(MESSAGE_TYPE_USER));
        assert_eq!(message.context_token.as_deref(), Some("ctx-abc"));
        assert_eq!(
            message.item_list[0]
                .text_item
                .as_ref()
                .and_then(|t| t.text.as_deref()),
            Some("Hello")
        );
        // Ids as strings too; unknown fields and absent ones are fine.
        let loose: WeixinMessage =
            serde_json::from_value(serde_json::json!({"message_id": "99", "extra": {"x": 1}}))
                .expect("loose");
        assert_eq!(loose.message_id.as_deref(), Some("99"));
        assert!(loose.item_list.is_empty());
        // An empty long-poll answer (no msgs, no cursor).
        let empty: Updates = serde_json::from_str("{\"ret\":0}").expect("empty");
        assert!(empty.msgs.is_empty() && empty.get_updates_buf.is_none());
    }

    #[test]
    fn envelopes_say_session_expired_throttled_or_refused() {
        assert!(matches!(
            check_envelope(Some(-1), Some(-14), Some("session timeout")),
            Err(ApiError::SessionExpired(m)) if m == "session timeout"
        ));
        assert!(matches!(
            check_envelope(Some(-14), None, None),
            Err(ApiError::SessionExpired(_))
        ));
        let throttled = check_envelope(Some(-2), None, Some("rate limited")).expect_err("refused");
        assert!(matches!(
            classify_send(throttled),
            SendError::Retry {
                after: Some(THROTTLE_WAIT),
                ..
            }
        ));
        let odd = check_envelope(Some(-5), Some(0), None).expect_err("refused");
        assert!(matches!(classify_send(odd), SendError::Permanent(m) if m.contains("ret=-5")));
        assert!(matches!(
            classify_send(ApiError::SessionExpired(String::new())),
            SendError::Permanent(m) if m.contains("tapwire ilink login")
        ));
        assert!(matches!(
            classify_send(ApiError::Status {
                status: 502,
                body: String::new()
            }),
            SendError::Retry { after: None, .. }
        ));
        assert!(matches!(
            classify_send(ApiError::Status {
                status: 403,
                body: "no".into()
            }),
            SendError::Permanent(_)
        ));
    }

    #[test]
    fn a_text_message_is_send_ts_shape() {
        assert_eq!(
            text_message("u@im.wechat", "Hello", "ctx", "tapwire:act_1:0"),
            serde_json::json!({"msg": {
                "from_user_id": "",
                "to_user_id": "u@im.wechat",
                "client_id": "tapwire:act_1:0",
                "message_type": 2,
                "message_state": 2,
                "item_list": [{"type": 1, "text_item": {"text": "Hello"}}],
                "context_token": "ctx",
            }})
        );
    }
}
