//! WeCom group robot (群机器人, DESIGN.md §6): send-only. A robot belongs to the one group
//! it was added to, so an action's conversation is ignored; what it posts is text, or
//! markdown.
//!
//! `POST …/cgi-bin/webhook/send?key=KEY` with `{"msgtype":"text","text":{"content":…}}`.
//! WeCom answers HTTP 200 even for failures and says so in `errcode` (0 = sent), allows
//! 20 messages a minute per robot (errcode 45009 past that) and 2048 bytes of text per
//! message. So the robot keeps its own minute window (the outbox respects the limit rather
//! than meeting it), and cuts long text into messages, at a line break where it can.
//!
//! 群机器人配置说明 (developer.work.weixin.qq.com/document/path/99110): a text message may
//! remind members, `mentioned_list` (userids, "@all") and `mentioned_mobile_list`;
//! `msgtype: markdown` takes up to 4096 bytes of a markdown subset and mentions members
//! only as `<@userid>` in its content ("text/markdown类型消息支持在content中使用<@userid>
//! 扩展语法来@群成员"). Reminders go only with text, which is the only type that takes them.
//!
//! Attachments, from the same document (also published as api/doc/90000/90136/91770; the
//! WxJava SDK's `WxCpGroupRobotMessage` quotes its field notes):
//! - image: `{"msgtype":"image","image":{"base64":…,"md5":…}}`, "图片内容（base64编码前）的
//!   md5值", "图片（base64编码前）最大不能超过2M，支持JPG,PNG格式";
//! - file: `POST …/cgi-bin/webhook/upload_media?key=KEY&type=file`, multipart/form-data with
//!   the file as "media", "要求文件大小在5B~20M之间", answers `media_id` ("仅三天内有效",
//!   usable only by the robot that uploaded it), then `{"msgtype":"file","file":{"media_id"}}`;
//! - news: `{"msgtype":"news","news":{"articles":[{title, description, url, picurl}]}}`,
//!   "一个图文消息支持1到8条图文".

use std::time::Duration;

use reqwest::{Client, Url};
use serde::Deserialize;

use async_trait::async_trait;
use base64::Engine;
use md5::{Digest, Md5};

use super::call;
use super::check::{Secret, http_url, unexpanded};
use super::media::{self, MAX_MEDIA_BYTES, Media};
use super::pace::{Limit, Pace};
use super::split;
use super::wecom::{self, Answer, MAX_TEXT_BYTES, TextMsgType, check_articles};
use super::{Adapter, Delivered, Outgoing, SendError};
use crate::event::{Article, Attachment, AttachmentKind};
use crate::format::TextFormat;
use crate::http::shown_url;

/// A robot posts `msgtype: text` unless told otherwise, which WeCom shows as it is:
/// markdown would show its asterisks.
pub const TEXT_FORMAT: TextFormat = TextFormat::Plain;

/// 99110: "markdown内容，最长不超过4096个字节".
const MAX_MARKDOWN_BYTES: usize = 4096;
const TIMEOUT: Duration = Duration::from_secs(10);
/// 91770: an image of at most 2 MB before base64.
const MAX_IMAGE_BYTES: u64 = 2 * 1024 * 1024;
/// 91770 (upload_media): a file of 5 B to 20 MB.
const MIN_FILE_BYTES: usize = 5;

/// One `type = "wecom_robot"` adapter of `tapwire.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WecomRobotConfig {
    /// The robot's webhook address, key included: put the key in the environment,
    /// `url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=${OPS_ROBOT_KEY}"`.
    pub url: Secret,
    /// Messages per minute; WeCom allows 20.
    #[serde(default = "default_per_minute")]
    pub per_minute: u32,
    /// `text` (the default) or `markdown`, which WeCom renders.
    #[serde(default)]
    pub msgtype: TextMsgType,
    /// Members reminded (@) by each text message: userids, or "@all".
    #[serde(default)]
    pub mentioned_list: Vec<String>,
    /// Members reminded by mobile number, for those whose userid is not known.
    #[serde(default)]
    pub mentioned_mobile_list: Vec<String>,
}

fn default_per_minute() -> u32 {
    20
}

impl WecomRobotConfig {
    /// What is wrong with the section, if anything. A url still holding `${…}` is left
    /// alone: the missing variable is reported on its own line.
    pub fn check(&self) -> Result<(), String> {
        if self.msgtype == TextMsgType::Markdown
            && !(self.mentioned_list.is_empty() && self.mentioned_mobile_list.is_empty())
        {
            return Err(
                "a markdown robot cannot take mentioned_list or mentioned_mobile_list: write <@userid> in the text instead"
                    .into(),
            );
        }
        if unexpanded(&self.url) {
            return Ok(());
        }
        self.parsed_url().map(drop)
    }

    /// What the robot's messages show of markdown.
    pub fn text_format(&self) -> TextFormat {
        match self.msgtype {
            TextMsgType::Text => TEXT_FORMAT,
            TextMsgType::Markdown => TextFormat::Markdown,
        }
    }

    /// The parsed address, or why it cannot be a robot's (the message never shows the key).
    fn parsed_url(&self) -> Result<Url, String> {
        let url = http_url("url", &self.url)?;
        if !url.query_pairs().any(|(k, v)| k == "key" && !v.is_empty()) {
            return Err(format!(
                "url {} has no key=… parameter: copy the robot's whole webhook address",
                shown_url(&url)
            ));
        }
        if self.per_minute == 0 {
            return Err("per_minute must be at least 1".into());
        }
        Ok(url)
    }
}

pub struct WecomRobot {
    name: String,
    url: Url,
    client: Client,
    pace: Pace,
    msgtype: TextMsgType,
    mentioned_list: Vec<String>,
    mentioned_mobile_list: Vec<String>,
    /// The last action whose first message carried the mentions: the pieces after it
    /// do not remind everyone again.
    mentioned_for: std::sync::Mutex<Option<String>>,
}

impl std::fmt::Debug for WecomRobot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a secret.
        f.debug_struct("WecomRobot")
            .field("url", &shown_url(&self.url))
            .finish_non_exhaustive()
    }
}

impl WecomRobot {
    pub fn new(name: &str, config: &WecomRobotConfig) -> Result<WecomRobot, String> {
        config.check()?;
        let url = config.parsed_url()?;
        let client = crate::http::client(TIMEOUT)?;
        Ok(WecomRobot {
            name: name.to_string(),
            url,
            client,
            pace: Pace::new(&[Limit::per_minute(config.per_minute as usize)]),
            msgtype: config.msgtype,
            mentioned_list: config.mentioned_list.clone(),
            mentioned_mobile_list: config.mentioned_mobile_list.clone(),
            mentioned_for: std::sync::Mutex::new(None),
        })
    }

    /// The body of one message; `mention` adds the configured reminders (text only).
    fn body(&self, content: &str, mention: bool) -> serde_json::Value {
        match self.msgtype {
            TextMsgType::Markdown => {
                serde_json::json!({"msgtype": "markdown", "markdown": {"content": content}})
            }
            TextMsgType::Text => {
                let mut text = serde_json::json!({"content": content});
                if mention && !self.mentioned_list.is_empty() {
                    text["mentioned_list"] = self.mentioned_list.clone().into();
                }
                if mention && !self.mentioned_mobile_list.is_empty() {
                    text["mentioned_mobile_list"] = self.mentioned_mobile_list.clone().into();
                }
                serde_json::json!({"msgtype": "text", "text": text})
            }
        }
    }

    /// Posts one message (at most [`MAX_TEXT_BYTES`], or 4096 of markdown), waiting for its
    /// turn in the minute window first.
    pub async fn post(&self, content: &str) -> Result<(), SendError> {
        self.post_body(self.body(content, false)).await
    }

    async fn post_body(&self, body: serde_json::Value) -> Result<(), SendError> {
        self.pace.take_turn(&self.name).await;
        let request = self.client.post(self.url.clone()).json(&body);
        self.call(request, "the message").await.map(drop)
    }

    /// One request to the robot's API, and its answer read: errcode 0 is success whatever
    /// the HTTP status said. Errors never show the key.
    async fn call(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<Answer, SendError> {
        let shown = shown_url(&self.url);
        let answered = call::call(request, &shown).await?;
        call::check_status(answered.status, &shown)?;
        let answer = wecom::answer(&answered.body, what)?;
        wecom::settle(answer.errcode, &answer.errmsg, what)?;
        Ok(answer)
    }

    /// The message an attachment becomes; a file is uploaded first, for its media_id.
    async fn attachment_body(
        &self,
        attachment: &Attachment,
    ) -> Result<serde_json::Value, SendError> {
        match attachment {
            Attachment::Image { source } => {
                let media = media::load(&self.client, source, MAX_IMAGE_BYTES).await?;
                image_body(&media.bytes, source)
            }
            Attachment::File { source, name } => {
                let mut media = media::load(&self.client, source, MAX_MEDIA_BYTES).await?;
                if let Some(name) = name.as_deref().filter(|n| !n.trim().is_empty()) {
                    media.name = media::safe_file_name(name);
                    media.content_type = media::content_type_for(&media.name).to_string();
                }
                let media_id = self.upload(&media).await?;
                Ok(serde_json::json!({"msgtype": "file", "file": {"media_id": media_id}}))
            }
            Attachment::News { articles } => news_body(articles),
        }
    }

    /// upload_media: the robot's own key, `type=file`, the file as the form's "media".
    async fn upload(&self, media: &Media) -> Result<String, SendError> {
        if media.bytes.len() <= MIN_FILE_BYTES {
            return Err(SendError::Permanent(format!(
                "{} is {} bytes: WeCom takes files of more than {MIN_FILE_BYTES}",
                media.name,
                media.bytes.len()
            )));
        }
        let (content_type, body) = media::multipart("media", media);
        let request = self
            .client
            .post(self.upload_url()?)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        let answer = self.call(request, "the upload").await?;
        answer
            .media_id
            .filter(|id| !id.is_empty())
            .ok_or_else(|| SendError::Retry {
                reason: "upload_media answered errcode 0 without a media_id".into(),
                after: None,
            })
    }

    /// `…/webhook/upload_media?key=KEY&type=file` beside the robot's `…/webhook/send`.
    fn upload_url(&self) -> Result<Url, SendError> {
        let mut url = self.url.clone();
        let Some(base) = url.path().strip_suffix("/send").map(str::to_string) else {
            return Err(SendError::Permanent(format!(
                "cannot find the upload address beside {}: it does not end in /send",
                shown_url(&self.url)
            )));
        };
        url.set_path(&format!("{base}/upload_media"));
        url.query_pairs_mut().append_pair("type", "file");
        Ok(url)
    }
}

#[async_trait]
impl Adapter for WecomRobot {
    fn name(&self) -> &str {
        &self.name
    }

    fn platform(&self) -> &'static str {
        "wecom"
    }

    fn text_format(&self) -> TextFormat {
        match self.msgtype {
            TextMsgType::Text => TEXT_FORMAT,
            TextMsgType::Markdown => TextFormat::Markdown,
        }
    }

    fn split<'t>(&self, text: &'t str) -> Vec<&'t str> {
        match self.msgtype {
            TextMsgType::Text => split::bytes(text, MAX_TEXT_BYTES),
            TextMsgType::Markdown => split::bytes(text, MAX_MARKDOWN_BYTES),
        }
    }

    /// 91770: images, files and news, each a message type of its own.
    fn can_send(&self, _kind: AttachmentKind) -> Result<(), SendError> {
        Ok(())
    }

    /// A robot posts into its one group: the conversation is not needed.
    async fn deliver(&self, outgoing: &Outgoing) -> Result<Delivered, SendError> {
        outgoing.warn_if_resumed(&self.name);
        if let Some(attachment) = outgoing.attachment() {
            let body = self.attachment_body(attachment).await?;
            self.post_body(body).await?;
            return Ok(Delivered::Sent);
        }
        // An action's first message reminds the members; its other pieces, and a retry
        // of a piece after the first went, do not.
        let mention = {
            let mentioned = self.mentioned_for.lock().unwrap_or_else(|p| p.into_inner());
            mentioned.as_deref() != Some(outgoing.action_id.as_str())
        };
        self.post_body(self.body(&outgoing.text, mention)).await?;
        if mention {
            *self.mentioned_for.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(outgoing.action_id.clone());
        }
        Ok(Delivered::Sent)
    }
}

/// 91770's image message: the bytes in base64 and the MD5 of the bytes (before base64),
/// for a JPG or PNG only.
pub fn image_body(bytes: &[u8], source: &str) -> Result<serde_json::Value, SendError> {
    if media::image_format(bytes).is_none() {
        return Err(SendError::Permanent(format!(
            "a WeCom robot takes JPG or PNG images, and {source} is neither"
        )));
    }
    Ok(serde_json::json!({
        "msgtype": "image",
        "image": {
            "base64": base64::engine::general_purpose::STANDARD.encode(bytes),
            "md5": hex::encode(Md5::digest(bytes)),
        },
    }))
}

/// 91770's news message: 1 to 8 articles, each a title and a link at least.
pub fn news_body(articles: &[Article]) -> Result<serde_json::Value, SendError> {
    check_articles(articles)?;
    Ok(serde_json::json!({"msgtype": "news", "news": {"articles": articles}}))
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Arc;

    use tokio::time::Instant;

    use axum::Json;
    use axum::extract::{Query, State};
    use axum::routing::post;

    use super::*;

    fn config() -> WecomRobotConfig {
        WecomRobotConfig {
            url: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc".into(),
            per_minute: 20,
            msgtype: TextMsgType::Text,
            mentioned_list: Vec::new(),
            mentioned_mobile_list: Vec::new(),
        }
    }

    #[test]
    fn config_names_what_is_wrong_without_showing_the_key() {
        let check = |url: &str| {
            WecomRobotConfig {
                url: url.into(),
                ..config()
            }
            .check()
        };
        assert!(check("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc").is_ok());
        let no_key = check("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=").unwrap_err();
        assert!(no_key.contains("no key="), "{no_key}");
        assert!(
            check("ftp://x/send?key=a")
                .unwrap_err()
                .contains("http or https")
        );
        assert!(check("not a url").unwrap_err().contains("not a URL"));
        let zero = WecomRobotConfig {
            url: "https://x/send?key=a".into(),
            per_minute: 0,
            ..config()
        };
        assert!(zero.check().unwrap_err().contains("per_minute"));
        let robot = WecomRobot::new(
            "ops",
            &WecomRobotConfig {
                url: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=s3cret".into(),
                ..config()
            },
        )
        .expect("robot");
        assert!(!format!("{robot:?}").contains("s3cret"));
    }

    /// A stand-in for qyapi.weixin.qq.com: checks the key, keeps every body it gets, and
    /// answers with the errcodes queued in `answers` (0 once they run out).
    #[derive(Clone, Default)]
    struct Qyapi {
        answers: Arc<std::sync::Mutex<VecDeque<serde_json::Value>>>,
        received: Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
        uploads: Arc<std::sync::Mutex<Vec<Upload>>>,
    }

    /// What upload_media got: query, Content-Type, body.
    type Upload = (String, String, Vec<u8>);

    async fn upload_media(
        State(qyapi): State<Qyapi>,
        axum::extract::RawQuery(query): axum::extract::RawQuery,
        headers: axum::http::HeaderMap,
        body: axum::body::Bytes,
    ) -> Json<serde_json::Value> {
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let mut uploads = qyapi.uploads.lock().expect("lock");
        uploads.push((query.unwrap_or_default(), content_type, body.to_vec()));
        Json(serde_json::json!({
            "errcode": 0, "errmsg": "ok", "type": "file",
            "media_id": format!("m{}", uploads.len()), "created_at": "1380000000",
        }))
    }

    /// The one part of a multipart body: its headers and its content.
    fn only_part(content_type: &str, body: &[u8]) -> (String, Vec<u8>) {
        let boundary = content_type
            .strip_prefix("multipart/form-data; boundary=")
            .expect("a multipart content type");
        let opening = format!("--{boundary}\r\n");
        let closing = format!("\r\n--{boundary}--\r\n");
        let inner = body
            .strip_prefix(opening.as_bytes())
            .and_then(|b| b.strip_suffix(closing.as_bytes()))
            .expect("one part between the boundaries");
        let split = inner
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("headers end");
        (
            String::from_utf8(inner[..split].to_vec()).expect("headers are text"),
            inner[split + 4..].to_vec(),
        )
    }

    async fn send(
        State(qyapi): State<Qyapi>,
        Query(query): Query<std::collections::HashMap<String, String>>,
        Json(body): Json<serde_json::Value>,
    ) -> Json<serde_json::Value> {
        if query.get("key").map(String::as_str) != Some("k1") {
            return Json(serde_json::json!({"errcode": 93000, "errmsg": "invalid webhook url"}));
        }
        qyapi.received.lock().expect("lock").push(body);
        let answer = qyapi.answers.lock().expect("lock").pop_front();
        Json(answer.unwrap_or_else(|| serde_json::json!({"errcode": 0, "errmsg": "ok"})))
    }

    async fn serve(qyapi: Qyapi) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = axum::Router::new()
            .route("/cgi-bin/webhook/send", post(send))
            .route("/cgi-bin/webhook/upload_media", post(upload_media))
            .with_state(qyapi);
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/cgi-bin/webhook/send")
    }

    fn robot(url: &str) -> WecomRobot {
        WecomRobot::new(
            "ops",
            &WecomRobotConfig {
                url: url.into(),
                ..config()
            },
        )
        .expect("robot")
    }

    #[tokio::test]
    async fn errcodes_decide_sent_retry_or_give_up() {
        let qyapi = Qyapi::default();
        let url = serve(qyapi.clone()).await;
        let ok = robot(&format!("{url}?key=k1"));
        ok.post("今天值班：张伟").await.expect("sent");
        assert_eq!(
            qyapi.received.lock().expect("lock").as_slice(),
            [serde_json::json!({"msgtype": "text", "text": {"content": "今天值班：张伟"}})]
        );

        qyapi.answers.lock().expect("lock").extend([
            serde_json::json!({"errcode": 45009, "errmsg": "api freq out of limit"}),
            serde_json::json!({"errcode": -1, "errmsg": "system busy"}),
            serde_json::json!({"errcode": 40008, "errmsg": "invalid message type"}),
        ]);
        assert!(matches!(
            ok.post("x").await,
            Err(SendError::Retry { after: Some(after), .. }) if after == wecom::RATE_LIMIT_WAIT
        ));
        assert!(matches!(
            ok.post("x").await,
            Err(SendError::Retry { after: None, .. })
        ));
        let refused = ok.post("x").await;
        assert!(
            matches!(&refused, Err(SendError::Permanent(m)) if m.contains("40008")),
            "{refused:?}"
        );
        let wrong_key = robot(&format!("{url}?key=nope")).post("x").await;
        assert!(
            matches!(&wrong_key, Err(SendError::Permanent(m)) if m.contains("93000") && !m.contains("nope")),
            "{wrong_key:?}"
        );
        let down = robot("http://127.0.0.1:9/cgi-bin/webhook/send?key=k1")
            .post("x")
            .await;
        assert!(matches!(down, Err(SendError::Retry { .. })), "{down:?}");
    }

    #[tokio::test]
    async fn a_long_text_goes_in_pieces_and_a_retry_resumes_at_the_failed_one() {
        let qyapi = Qyapi::default();
        let url = serve(qyapi.clone()).await;
        let adapter = robot(&format!("{url}?key=k1"));
        let outgoing = |text: &str| Outgoing {
            action_id: "act_1".into(),
            conversation: "any".into(),
            text: text.into(),
            attachments: Vec::new(),
            resumed: false,
        };
        let text = format!(
            "{}\n{}\n{}",
            "甲".repeat(600),
            "乙".repeat(600),
            "丙".repeat(600)
        );
        // The first piece goes; the second is refused once as busy, then goes.
        qyapi
            .answers
            .lock()
            .expect("lock")
            .push_back(serde_json::json!({"errcode": 0, "errmsg": "ok"}));
        qyapi
            .answers
            .lock()
            .expect("lock")
            .push_back(serde_json::json!({"errcode": -1, "errmsg": "system busy"}));
        super::super::deliver_all(&adapter, &outgoing(&text))
            .await
            .expect("delivered");
        let contents: Vec<String> = qyapi
            .received
            .lock()
            .expect("lock")
            .iter()
            .map(|b| {
                b["text"]["content"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        let (first, second, third) = (
            format!("{}\n", "甲".repeat(600)),
            format!("{}\n", "乙".repeat(600)),
            "丙".repeat(600),
        );
        assert_eq!(contents, [first, second.clone(), second, third]);
        let refused =
            super::super::deliver_all(&robot(&format!("{url}?key=bad")), &outgoing("x")).await;
        assert!(
            matches!(&refused, Err(m) if m.contains("93000") && m.contains("1 attempt")),
            "{refused:?}"
        );
    }

    /// A text robot reminds its members with an action's first message only; a markdown
    /// robot posts markdown, in 4096-byte pieces, and cannot take reminder lists.
    #[tokio::test]
    async fn mentions_go_with_an_actions_first_message_and_markdown_is_its_own_type() {
        let qyapi = Qyapi::default();
        let url = format!("{}?key=k1", serve(qyapi.clone()).await);
        let toml = format!(
            "url = {url:?}\nmentioned_list = [\"zhangwei\", \"@all\"]\nmentioned_mobile_list = [\"13800001111\"]\n"
        );
        let parsed: WecomRobotConfig = toml::from_str(&toml).expect("toml");
        let reminding = WecomRobot::new("ops", &parsed).expect("robot");
        let outgoing = |action: &str, text: &str| Outgoing {
            action_id: action.into(),
            conversation: "any".into(),
            text: text.into(),
            attachments: Vec::new(),
            resumed: false,
        };
        let long = format!("{}\n{}", "甲".repeat(600), "乙".repeat(600));
        super::super::deliver_all(&reminding, &outgoing("act_1", &long))
            .await
            .expect("sent");
        super::super::deliver_all(&reminding, &outgoing("act_2", "值班提醒"))
            .await
            .expect("sent");
        let received = qyapi.received.lock().expect("lock").clone();
        let reminded = serde_json::json!({
            "content": format!("{}\n", "甲".repeat(600)),
            "mentioned_list": ["zhangwei", "@all"],
            "mentioned_mobile_list": ["13800001111"],
        });
        assert_eq!(
            received[0],
            serde_json::json!({"msgtype": "text", "text": reminded})
        );
        assert_eq!(
            received[1],
            serde_json::json!({"msgtype": "text", "text": {"content": "乙".repeat(600)}})
        );
        assert_eq!(received[2]["text"]["mentioned_list"][1], "@all");

        let markdown = WecomRobot::new(
            "ops",
            &WecomRobotConfig {
                url: url.clone().into(),
                msgtype: TextMsgType::Markdown,
                ..config()
            },
        )
        .expect("robot");
        assert_eq!(markdown.text_format(), TextFormat::Markdown);
        assert_eq!(markdown.split(&"长".repeat(2000)).len(), 2);
        markdown
            .deliver(&outgoing("act_3", "**<@zhangwei>** 今天值班"))
            .await
            .expect("sent");
        assert_eq!(
            qyapi.received.lock().expect("lock")[3],
            serde_json::json!({"msgtype": "markdown", "markdown": {"content": "**<@zhangwei>** 今天值班"}})
        );
        let both = WecomRobotConfig {
            msgtype: TextMsgType::Markdown,
            mentioned_list: vec!["@all".into()],
            ..config()
        };
        assert!(both.check().unwrap_err().contains("<@userid>"));
        assert!(
            toml::from_str::<WecomRobotConfig>(&format!("url = {url:?}\nmsgtype = \"news\""))
                .is_err()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_minute_waits_instead_of_being_refused() {
        let robot = WecomRobot::new(
            "ops",
            &WecomRobotConfig {
                url: "http://127.0.0.1:9/cgi-bin/webhook/send?key=k1".into(),
                per_minute: 2,
                ..config()
            },
        )
        .expect("robot");
        let started = Instant::now();
        robot.pace.take_turn("ops").await;
        robot.pace.take_turn("ops").await;
        assert!(started.elapsed() < Duration::from_secs(1));
        robot.pace.take_turn("ops").await;
        // The third waited (in virtual time) for the first one's minute to pass.
        assert!(
            started.elapsed() >= Duration::from_secs(60),
            "{:?}",
            started.elapsed()
        );
    }

    fn fixture(name: &str) -> std::path::PathBuf {
        std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/media"))
            .join(name)
    }

    /// `fixtures/media/dot.png` is a 1×1 PNG; its base64 and MD5 are what `base64 -w0` and
    /// `md5sum` print for it.
    #[test]
    fn an_image_goes_as_its_base64_and_the_md5_of_its_bytes() {
        let bytes = std::fs::read(fixture("dot.png")).expect("fixture");
        let body = image_body(&bytes, "dot.png").expect("png");
        assert_eq!(
            body,
            serde_json::json!({"msgtype": "image", "image": {
                "base64": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGNgP5gAAAH7ASkHCmeyAAAAAElFTkSuQmCC",
                "md5": "8bab4e131ff251a205b3956efdff536c",
            }})
        );
        let gif = image_body(b"GIF89a\x01\x00", "/tmp/a.gif");
        assert!(
            matches!(&gif, Err(SendError::Permanent(m)) if m.contains("JPG or PNG") && m.contains("/tmp/a.gif")),
            "{gif:?}"
        );
    }

    #[test]
    fn news_holds_one_to_eight_articles_each_titled_and_linked() {
        let article = |title: &str, picurl: Option<&str>| Article {
            title: title.into(),
            description: Some("今年中秋节公司有豪礼相送".into()),
            url: "https://example.com/a".into(),
            picurl: picurl.map(Into::into),
        };
        assert_eq!(
            news_body(&[article("中秋节礼品领取", Some("https://example.com/p.png"))])
                .expect("news"),
            serde_json::json!({"msgtype": "news", "news": {"articles": [{
                "title": "中秋节礼品领取",
                "description": "今年中秋节公司有豪礼相送",
                "url": "https://example.com/a",
                "picurl": "https://example.com/p.png",
            }]}})
        );
        // Optional fields left out are not sent as null.
        let plain = news_body(&[Article {
            description: None,
            ..article("t", None)
        }])
        .expect("news");
        assert_eq!(
            plain["news"]["articles"][0],
            serde_json::json!({"title": "t", "url": "https://example.com/a"})
        );
        assert!(news_body(&[]).is_err());
        assert!(news_body(&vec![article("t", None); 9]).is_err());
        assert!(news_body(&[article(" ", None)]).is_err());
    }

    #[tokio::test]
    async fn an_action_posts_its_text_then_image_file_and_news_in_order() {
        let qyapi = Qyapi::default();
        let url = serve(qyapi.clone()).await;
        let adapter = robot(&format!("{url}?key=k1"));
        let dir = tempfile::tempdir().expect("tempdir");
        let report = dir.path().join("report.csv");
        std::fs::write(&report, "day,who\nmon,张伟\n").expect("write");
        let outgoing = Outgoing {
            action_id: "act_9".into(),
            conversation: "any".into(),
            text: "今日报表".into(),
            attachments: vec![
                Attachment::Image {
                    source: fixture("dot.png").to_string_lossy().into(),
                },
                Attachment::File {
                    source: report.to_string_lossy().into(),
                    name: Some("周报.csv".into()),
                },
                Attachment::News {
                    articles: vec![Article {
                        title: "发布说明".into(),
                        description: None,
                        url: "https://example.com/notes".into(),
                        picurl: None,
                    }],
                },
            ],
            resumed: false,
        };
        super::super::deliver_all(&adapter, &outgoing)
            .await
            .expect("delivered");
        let received = qyapi.received.lock().expect("lock").clone();
        let types: Vec<&str> = received
            .iter()
            .map(|b| b["msgtype"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(types, ["text", "image", "file", "news"]);
        assert_eq!(
            received[1]["image"]["md5"],
            "8bab4e131ff251a205b3956efdff536c"
        );
        assert_eq!(
            received[2],
            serde_json::json!({"msgtype": "file", "file": {"media_id": "m1"}})
        );
        assert_eq!(received[3]["news"]["articles"][0]["title"], "发布说明");

        // The upload: the robot's key, type=file, one part named "media" with the file.
        let uploads = qyapi.uploads.lock().expect("lock").clone();
        let [(query, content_type, body)] = uploads.as_slice() else {
            panic!("one upload, not {}", uploads.len());
        };
        assert_eq!(query, "key=k1&type=file");
        let (headers, content) = only_part(content_type, body);
        assert_eq!(
            headers,
            "Content-Disposition: form-data; name=\"media\"; filename=\"周报.csv\"; filelength=19\r\nContent-Type: text/csv"
        );
        assert_eq!(content, "day,who\nmon,张伟\n".as_bytes());

        // Nothing but JPG or PNG goes as an image, and nothing of the action before it.
        let gif = dir.path().join("a.gif");
        std::fs::write(&gif, b"GIF89a\x01\x00\x01\x00").expect("write");
        let refused = super::super::deliver_all(
            &adapter,
            &Outgoing {
                text: String::new(),
                attachments: vec![Attachment::Image {
                    source: gif.to_string_lossy().into(),
                }],
                ..outgoing
            },
        )
        .await;
        assert!(
            matches!(&refused, Err(m) if m.contains("JPG or PNG")),
            "{refused:?}"
        );
        assert_eq!(qyapi.received.lock().expect("lock").len(), 4);
    }
}
