//! Logging a bot in: a QR code to scan with WeChat, shown in the terminal and saved as a
//! PNG, then its status polled until WeChat confirms and hands out the bot's token.
//!
//! login-qr.ts (openclaw-weixin 2.4.3) is the source:
//! - `GET ilink/bot/get_bot_qrcode?bot_type=3` answers `qrcode` (the login's id) and
//!   `qrcode_img_content` (what the QR code encodes: a link WeChat opens). Release 2.3.1
//!   turned it into a POST carrying the bot's earlier tokens, so that iLink can tell an
//!   already bound bot; the GET of the earlier releases (and of CowAgent's
//!   `weixin_api.py`) is what is sent here, with no token to hand over.
//! - `GET ilink/bot/get_qrcode_status?qrcode=…[&verify_code=…]` is a long poll (35 s;
//!   a timeout or a gateway error means "wait") answering `status`: `wait`, `scaned`,
//!   `confirmed` (with `bot_token`, `ilink_bot_id`, `baseurl`, `ilink_user_id`),
//!   `expired` (a new QR code is fetched, three in all), `scaned_but_redirect` (poll
//!   `https://<redirect_host>` from now on), `need_verifycode` (the user types the number
//!   WeChat shows), `verify_code_blocked` (too many wrong numbers: a new QR code), and
//!   `binded_redirect` (this bot is bound already: nothing new is issued).
//! - It polls once a second and gives up after 480 s.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;
use tokio::time::Instant;

use super::api::{Api, ApiError};
use super::state::Login;
use crate::event::now_rfc3339;

/// login-qr.ts `QR_LONG_POLL_TIMEOUT_MS`.
const STATUS_LONG_POLL: Duration = Duration::from_secs(35);
/// login-qr.ts: QR codes fetched before giving up (`MAX_QR_REFRESH_COUNT`).
pub const MAX_QR_CODES: u32 = 3;
/// login-qr.ts `waitForWeixinLogin`'s default.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(480);
/// The pause between status polls (login-qr.ts waits 1 s).
pub const POLL_PAUSE: Duration = Duration::from_secs(1);
/// Pixels per module of the PNG, and its quiet zone in modules (ISO 18004 asks for 4).
const PNG_SCALE: u32 = 8;
const PNG_QUIET: u32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("iLink's login answer lacks {0}")]
    Incomplete(&'static str),
    #[error(
        "the QR code expired {MAX_QR_CODES} times without being confirmed; run the login again"
    )]
    Expired,
    #[error("nobody confirmed the login within {} s", LOGIN_TIMEOUT.as_secs())]
    TimedOut,
    #[error("the number WeChat showed was not entered")]
    NoVerifyCode,
    #[error("cannot draw the QR code: {0}")]
    Qr(String),
    #[error("cannot write {path}: {reason}")]
    Write { path: String, reason: String },
}

/// What `get_bot_qrcode` answers (login-qr.ts `QRCodeResponse`).
#[derive(Debug, Clone, Deserialize)]
pub struct QrCode {
    pub qrcode: String,
    /// What the QR code encodes.
    pub qrcode_img_content: String,
}

/// What `get_qrcode_status` answers (login-qr.ts `StatusResponse`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StatusAnswer {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub bot_token: Option<String>,
    #[serde(default)]
    pub ilink_bot_id: Option<String>,
    #[serde(default)]
    pub baseurl: Option<String>,
    #[serde(default)]
    pub ilink_user_id: Option<String>,
    #[serde(default)]
    pub redirect_host: Option<String>,
}

/// How a login ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    LoggedIn(Login),
    /// `binded_redirect`: the bot is bound to this program already; its stored token
    /// stays valid and nothing new was issued.
    AlreadyBound,
}

/// Where and how a login runs.
pub struct LoginOptions {
    /// Where the QR code comes from (the configured `base_url`).
    pub base: Url,
    pub bot_type: u32,
    /// Where the PNG of each QR code is written.
    pub png: std::path::PathBuf,
    pub timeout: Duration,
    pub pause: Duration,
}

/// The QR code as Unicode half blocks, light modules drawn, for a terminal with a dark
/// background (the usual one); the quiet zone is included.
pub fn render_terminal(content: &str) -> Result<String, LoginError> {
    let code =
        qrcode::QrCode::new(content.as_bytes()).map_err(|e| LoginError::Qr(e.to_string()))?;
    Ok(code
        .render::<qrcode::render::unicode::Dense1x2>()
        .dark_color(qrcode::render::unicode::Dense1x2::Light)
        .light_color(qrcode::render::unicode::Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

/// The QR code as a black-on-white PNG at `path`.
pub fn write_png(content: &str, path: &Path) -> Result<(), LoginError> {
    let code =
        qrcode::QrCode::new(content.as_bytes()).map_err(|e| LoginError::Qr(e.to_string()))?;
    let width = u32::try_from(code.width()).map_err(|e| LoginError::Qr(e.to_string()))?;
    let colors = code.to_colors();
    let side = (width + 2 * PNG_QUIET) * PNG_SCALE;
    let image = image::GrayImage::from_fn(side, side, |x, y| {
        let (mx, my) = (x / PNG_SCALE, y / PNG_SCALE);
        let inside = (PNG_QUIET..PNG_QUIET + width).contains(&mx)
            && (PNG_QUIET..PNG_QUIET + width).contains(&my);
        let dark = inside
            && colors
                .get(((my - PNG_QUIET) * width + (mx - PNG_QUIET)) as usize)
                .is_some_and(|c| *c == qrcode::Color::Dark);
        image::Luma([if dark { 0 } else { 255 }])
    });
    image.save(path).map_err(|e| LoginError::Write {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

pub async fn fetch_qr(api: &Api, base: &Url, bot_type: u32) -> Result<QrCode, ApiError> {
    let request = api.get(
        base,
        &format!("ilink/bot/get_bot_qrcode?bot_type={bot_type}"),
        Duration::from_secs(15),
    )?;
    let answer: Option<QrCode> = Api::send(request, false).await?;
    answer.ok_or_else(|| ApiError::Malformed("no QR code".into()))
}

/// One status poll. As login-qr.ts `pollQRStatus`: our timeout and a gateway's error
/// are "wait".
pub async fn poll_status(
    api: &Api,
    base: &Url,
    qrcode: &str,
    verify_code: Option<&str>,
) -> StatusAnswer {
    let mut endpoint = format!("ilink/bot/get_qrcode_status?qrcode={}", url_form(qrcode));
    if let Some(code) = verify_code {
        endpoint.push_str(&format!("&verify_code={}", url_form(code)));
    }
    let request = match api.get(base, &endpoint, STATUS_LONG_POLL) {
        Ok(request) => request,
        Err(error) => {
            tracing::warn!(%error, "cannot poll the login's status");
            return StatusAnswer::default();
        }
    };
    match Api::send::<StatusAnswer>(request, true).await {
        Ok(Some(answer)) => answer,
        Ok(None) => StatusAnswer::default(),
        Err(error) => {
            tracing::warn!(%error, "the login's status poll failed; polling on");
            StatusAnswer::default()
        }
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay).
fn url_form(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Shows a QR code: in the terminal, its link beside it, and as the PNG.
fn show(out: &mut dyn Write, qr: &QrCode, png: &Path) -> Result<(), LoginError> {
    let drawn = render_terminal(&qr.qrcode_img_content)?;
    write_png(&qr.qrcode_img_content, png)?;
    let _ = writeln!(
        out,
        "\nScan this QR code with WeChat (扫码登录) and confirm on the phone:\n\n{drawn}\n"
    );
    let _ = writeln!(
        out,
        "The same code is saved as {}; if neither scans, open this link in WeChat:\n{}\n",
        png.display(),
        qr.qrcode_img_content
    );
    let _ = out.flush();
    Ok(())
}

/// Runs a login to its end: QR codes shown (a new one when one expires), the status
/// polled, the number WeChat may ask for read through `ask`.
pub async fn login(
    api: &Api,
    options: &LoginOptions,
    out: &mut dyn Write,
    ask: &mut dyn FnMut(&str) -> Option<String>,
) -> Result<Outcome, LoginError> {
    let deadline = Instant::now() + options.timeout;
    let mut qr = fetch_qr(api, &options.base, options.bot_type).await?;
    let mut codes = 1;
    show(out, &qr, &options.png)?;
    let mut base = options.base.clone();
    let mut scanned = false;
    let mut verify_code: Option<String> = None;
    while Instant::now() < deadline {
        let answer = poll_status(api, &base, &qr.qrcode, verify_code.as_deref()).await;
        let mut new_code = false;
        match answer.status.as_str() {
            "scaned" => {
                verify_code = None;
                if !scanned {
                    let _ = writeln!(out, "Scanned; confirm the login on the phone.");
                    scanned = true;
                }
            }
            "need_verifycode" => {
                let prompt = if verify_code.is_some() {
                    "That number did not match; type the number WeChat shows: "
                } else {
                    "Type the number WeChat shows on the phone: "
                };
                verify_code = Some(ask(prompt).ok_or(LoginError::NoVerifyCode)?);
                continue;
            }
            "expired" => {
                let _ = writeln!(out, "The QR code expired.");
                new_code = true;
            }
            "verify_code_blocked" => {
                let _ = writeln!(out, "Too many wrong numbers.");
                verify_code = None;
                new_code = true;
            }
            "scaned_but_redirect" => match answer.redirect_host.as_deref().map(str::trim) {
                Some(host) if !host.is_empty() => match Url::parse(&format!("https://{host}")) {
                    Ok(url) => {
                        tracing::info!(%host, "the login continues at another host");
                        base = url;
                    }
                    Err(error) => {
                        tracing::warn!(%host, %error, "cannot poll the host the login names")
                    }
                },
                _ => tracing::warn!("a redirect without a host; polling on where we are"),
            },
            "binded_redirect" => {
                let _ = writeln!(
                    out,
                    "This bot is connected already; its stored token stays valid."
                );
                return Ok(Outcome::AlreadyBound);
            }
            "confirmed" => {
                let token = answer
                    .bot_token
                    .filter(|t| !t.trim().is_empty())
                    .ok_or(LoginError::Incomplete("bot_token"))?;
                let bot_id = answer
                    .ilink_bot_id
                    .filter(|b| !b.trim().is_empty())
                    .ok_or(LoginError::Incomplete("ilink_bot_id"))?;
                let base_url = answer
                    .baseurl
                    .filter(|b| !b.trim().is_empty())
                    .unwrap_or_else(|| options.base.to_string());
                return Ok(Outcome::LoggedIn(Login {
                    token: token.trim().to_string(),
                    base_url: base_url.trim().trim_end_matches('/').to_string(),
                    bot_id,
                    user_id: answer.ilink_user_id.unwrap_or_default(),
                    saved_at: now_rfc3339(),
                }));
            }
            // "wait", our timeout, anything new: keep polling.
            _ => {}
        }
        if new_code {
            if codes >= MAX_QR_CODES {
                return Err(LoginError::Expired);
            }
            codes += 1;
            qr = fetch_qr(api, &options.base, options.bot_type).await?;
            base = options.base.clone();
            scanned = false;
            let _ = writeln!(out, "A new QR code ({codes} of {MAX_QR_CODES}):");
            show(out, &qr, &options.png)?;
        }
        tokio::time::sleep(options.pause).await;
    }
    Err(LoginError::TimedOut)
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use axum::Json;
    use axum::extract::{Query, State};
    use axum::http::HeaderMap;
    use axum::routing::get;

    use super::*;

    #[test]
    fn the_qr_code_is_drawn_and_saved_scannable() {
        let link = "https://liteapp.weixin.qq.com/q/7GiQu1?qrcode=abc&bot_type=3";
        let drawn = render_terminal(link).expect("drawn");
        assert!(drawn.lines().count() > 10 && drawn.contains('█'));
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("qr.png");
        write_png(link, &path).expect("png");
        let image = image::open(&path).expect("a PNG").to_luma8();
        let mut prepared = rqrr::PreparedImage::prepare(image);
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, content) = grids[0].decode().expect("decodes");
        assert_eq!(content, link);
        assert_eq!(url_form("a b/é"), "a%20b%2F%C3%A9");
    }

    /// (qrcode, verify_code) of each status poll.
    type Polls = Arc<Mutex<Vec<(String, Option<String>)>>>;

    /// Status answers handed out in order, then "wait"; the polls and QR fetches seen.
    #[derive(Clone, Default)]
    struct Stand {
        statuses: Arc<Mutex<VecDeque<serde_json::Value>>>,
        polls: Polls,
        codes: Arc<Mutex<u32>>,
    }

    async fn qrcode(
        State(stand): State<Stand>,
        headers: HeaderMap,
        Query(q): Query<Vec<(String, String)>>,
    ) -> Json<serde_json::Value> {
        assert_eq!(q, [("bot_type".to_string(), "3".to_string())]);
        assert_eq!(
            headers.get("ilink-app-id").and_then(|v| v.to_str().ok()),
            Some("bot")
        );
        let mut codes = stand.codes.lock().expect("lock");
        *codes += 1;
        Json(
            serde_json::json!({"qrcode": format!("q{codes}"), "qrcode_img_content": format!("https://liteapp.weixin.qq.com/q/{codes}")}),
        )
    }

    async fn status(
        State(stand): State<Stand>,
        Query(q): Query<Vec<(String, String)>>,
    ) -> Json<serde_json::Value> {
        let get = |name: &str| q.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        stand
            .polls
            .lock()
            .expect("lock")
            .push((get("qrcode").unwrap_or_default(), get("verify_code")));
        let next = stand.statuses.lock().expect("lock").pop_front();
        Json(next.unwrap_or_else(|| serde_json::json!({"status": "wait"})))
    }

    async fn stand(statuses: Vec<serde_json::Value>) -> (Stand, Url) {
        let stand = Stand::default();
        stand.statuses.lock().expect("lock").extend(statuses);
        let router = axum::Router::new()
            .route("/ilink/bot/get_bot_qrcode", get(qrcode))
            .route("/ilink/bot/get_qrcode_status", get(status))
            .with_state(stand.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url =
            Url::parse(&format!("http://{}", listener.local_addr().expect("addr"))).expect("url");
        tokio::spawn(async move { axum::serve(listener, router).await });
        (stand, url)
    }

    fn options(base: Url, png: &Path) -> LoginOptions {
        LoginOptions {
            base,
            bot_type: 3,
            png: png.to_path_buf(),
            timeout: Duration::from_secs(20),
            pause: Duration::from_millis(10),
        }
    }

    #[tokio::test]
    async fn an_expired_code_is_replaced_and_a_verify_code_asked_for() {
        let (stand, base) = stand(vec![
            serde_json::json!({"status": "wait"}),
            serde_json::json!({"status": "expired"}),
            serde_json::json!({"status": "scaned"}),
            serde_json::json!({"status": "need_verifycode"}),
            serde_json::json!({"status": "scaned"}),
            serde_json::json!({"status": "confirmed", "bot_token": "tok-9", "ilink_bot_id": "b@im.bot", "baseurl": "https://ilinkai.weixin.qq.com/", "ilink_user_id": "u@im.wechat"}),
        ])
        .await;
        let dir = tempfile::tempdir().expect("tempdir");
        let png = dir.path().join("qr.png");
        let mut out = Vec::new();
        let mut asked = Vec::new();
        let outcome = login(&Api::new(), &options(base, &png), &mut out, &mut |prompt| {
            asked.push(prompt.to_string());
            Some("42".into())
        })
        .await
        .expect("logged in");
        let Outcome::LoggedIn(login) = outcome else {
            panic!("{outcome:?}");
        };
        assert_eq!(login.token, "tok-9");
        assert_eq!(login.base_url, "https://ilinkai.weixin.qq.com");
        assert_eq!(login.bot_id, "b@im.bot");
        assert_eq!(asked.len(), 1);
        let polls = stand.polls.lock().expect("lock").clone();
        let seen: Vec<(&str, Option<&str>)> = polls
            .iter()
            .map(|(q, v)| (q.as_str(), v.as_deref()))
            .collect();
        assert_eq!(
            seen,
            [
                ("q1", None),
                ("q1", None),
                ("q2", None),
                ("q2", None),
                ("q2", Some("42")),
                ("q2", None)
            ]
        );
        let text = String::from_utf8(out).expect("utf8");
        assert!(
            text.contains("expired") && text.contains("https://liteapp.weixin.qq.com/q/2"),
            "{text}"
        );
        // The PNG is the latest code's.
        let mut prepared = rqrr::PreparedImage::prepare(image::open(&png).expect("png").to_luma8());
        let (_, content) = prepared.detect_grids()[0].decode().expect("decodes");
        assert_eq!(content, "https://liteapp.weixin.qq.com/q/2");
    }

    #[tokio::test]
    async fn three_expiries_give_up_and_a_bound_bot_is_no_error() {
        let expired = serde_json::json!({"status": "expired"});
        let (stand_a, base) = stand(vec![expired.clone(), expired.clone(), expired]).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let png = dir.path().join("qr.png");
        let result = login(
            &Api::new(),
            &options(base, &png),
            &mut Vec::new(),
            &mut |_| None,
        )
        .await;
        assert!(matches!(result, Err(LoginError::Expired)), "{result:?}");
        assert_eq!(*stand_a.codes.lock().expect("lock"), MAX_QR_CODES);

        let (_, base) = stand(vec![serde_json::json!({"status": "binded_redirect"})]).await;
        let result = login(
            &Api::new(),
            &options(base, &png),
            &mut Vec::new(),
            &mut |_| None,
        )
        .await;
        assert!(matches!(result, Ok(Outcome::AlreadyBound)), "{result:?}");

        let (_, base) = stand(vec![
            serde_json::json!({"status": "confirmed", "bot_token": "t"}),
        ])
        .await;
        let result = login(
            &Api::new(),
            &options(base, &png),
            &mut Vec::new(),
            &mut |_| None,
        )
        .await;
        assert!(
            matches!(result, Err(LoginError::Incomplete("ilink_bot_id"))),
            "{result:?}"
        );
    }
}
