//! The web dashboard at `/dashboard`: sources and their health, each phone's live view,
//! conversations with their messages, the dead-letter queue (replay, drop) and grants,
//! in English and Chinese. Plain HTML, CSS and one small script, embedded in the binary
//! with `include_str!`: nothing to build or fetch, no CDN.
//!
//! Behind the REST API's tokens: the login form takes one and sets an `HttpOnly`,
//! `SameSite=Strict` cookie ([`api::COOKIE`]) that the API, and so the page's reads and
//! its live `EventSource`, accept. `SameSite=Strict` is what keeps another site from
//! making the browser replay or drop a dead letter with that cookie. No `Secure`
//! attribute: the server speaks plain HTTP on loopback by default, where a browser would
//! then never send it back; behind a TLS proxy the proxy can add it. The pages
//! themselves hold no data, only the API's answers do.

use axum::extract::{Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::api::{self, Tokens};

/// Where the dashboard is mounted.
pub const PATH: &str = "/dashboard";

const LOGIN: &str = include_str!("login.html");
const APP: &str = include_str!("app.html");
const APP_JS: &str = include_str!("app.js");
const I18N_JS: &str = include_str!("i18n.js");
const STYLE: &str = include_str!("style.css");

/// How long a login lasts in the browser: a month, as the token itself lives as long as
/// the environment says.
const SESSION_SECS: u32 = 30 * 24 * 3600;

/// The dashboard's routes, behind `tokens`.
pub fn router(tokens: Tokens) -> axum::Router {
    axum::Router::new()
        .route(PATH, get(page))
        .route("/dashboard/", get(page))
        .route("/dashboard/login", post(login))
        .route("/dashboard/logout", post(logout))
        .route(
            "/dashboard/app.js",
            get(|| asset("text/javascript", APP_JS)),
        )
        .route(
            "/dashboard/i18n.js",
            get(|| asset("text/javascript", I18N_JS)),
        )
        .route("/dashboard/style.css", get(|| asset("text/css", STYLE)))
        .with_state(tokens)
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            // The binary's own files: they change only with the binary.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

/// The login form, with or without the "wrong token" line.
fn login_page(wrong: bool) -> Html<String> {
    Html(LOGIN.replace("{{error_hidden}}", if wrong { "" } else { "hidden" }))
}

/// The dashboard for a browser with the cookie, the login form for one without.
async fn page(State(tokens): State<Tokens>, headers: HeaderMap) -> Response {
    match tokens.authorizes(&headers) {
        Ok(()) => Html(APP).into_response(),
        Err(_) => login_page(false).into_response(),
    }
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

/// Checks the token; right: the session cookie and back to the dashboard; wrong: 401
/// with the form again, and a warning in the log as for the API.
async fn login(State(tokens): State<Tokens>, Form(form): Form<LoginForm>) -> Response {
    let token = form.token.trim();
    if !tokens.accepts(token.as_bytes()) {
        tracing::warn!(
            path = "/dashboard/login",
            reason = "wrong token",
            "dashboard login refused"
        );
        return (StatusCode::UNAUTHORIZED, login_page(true)).into_response();
    }
    let cookie = format!(
        "{}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={SESSION_SECS}",
        api::COOKIE,
        api::cookie_value(token.as_bytes())
    );
    let mut response = Redirect::to(PATH).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn logout() -> Response {
    let mut response = Redirect::to(PATH).into_response();
    let cookie = format!(
        "{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
        api::COOKIE
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn serve(tokens: Tokens) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router(tokens)).await });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn login_sets_the_cookie_for_the_right_token_only() {
        let base = serve(Tokens::parse("sesame").expect("token")).await;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let form = client
            .get(format!("{base}/dashboard"))
            .send()
            .await
            .expect("page");
        let text = form.text().await.expect("text");
        assert!(text.contains("id=\"login-token\""), "{text}");
        assert!(
            text.contains("id=\"login-error\" class=\"error\" data-i18n=\"login.wrong\" hidden"),
            "{text}"
        );

        let wrong = client
            .post(format!("{base}/dashboard/login"))
            .form(&[("token", "open")])
            .send()
            .await
            .expect("answered");
        assert_eq!(wrong.status(), 401);
        assert!(wrong.headers().get(header::SET_COOKIE).is_none());
        assert!(
            !wrong
                .text()
                .await
                .expect("text")
                .contains("login.wrong\" hidden")
        );

        let right = client
            .post(format!("{base}/dashboard/login"))
            .form(&[("token", "sesame")])
            .send()
            .await
            .expect("answered");
        assert_eq!(right.status(), 303);
        let cookie = right.headers()[header::SET_COOKIE]
            .to_str()
            .expect("ascii")
            .to_string();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        let pair = cookie.split(';').next().expect("pair").to_string();
        let app = client
            .get(format!("{base}/dashboard"))
            .header(header::COOKIE, pair)
            .send()
            .await
            .expect("page");
        assert!(app.text().await.expect("text").contains("id=\"phones\""));
        let js = client
            .get(format!("{base}/dashboard/app.js"))
            .send()
            .await
            .expect("js");
        assert_eq!(js.headers()[header::CONTENT_TYPE], "text/javascript");
    }
}
