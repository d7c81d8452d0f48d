//! Weixin iLink ("ClawBot", DESIGN.md §6): Tencent's bot channel for personal WeChat. A
//! user adds the bot as a contact and chats with it directly; the bot reads their
//! messages with a long poll of its own (no public URL needed) and answers each user
//! within limits iLink sets.
//!
//! Sources: `Tencent/openclaw-weixin` 2.4.3 (npm `@tencent-weixin/openclaw-weixin`), its
//! README's "Backend API Protocol" (the protocol document) and its sources: `api/api.ts`,
//! `api/types.ts`, `api/session-guard.ts`, `api/config-cache.ts`, `auth/login-qr.ts`,
//! `monitor/monitor.ts`, `messaging/send.ts`, `messaging/inbound.ts`,
//! `messaging/process-message.ts`, `channel.ts`. Each rule below names the file it
//! comes from; [`api`] has the wire, [`login`] the QR login, [`inbound`] how a message
//! becomes an event, [`state`] what is kept in the store and the reply budget.
//!
//! - Login: `tapwire ilink login` shows a QR code; WeChat's confirmation hands out the
//!   bot's token and the base URL of its API, which are stored. A `token` in the config
//!   (from the environment) is used instead when it is set.
//! - In: `getupdates` is polled with the cursor (`get_updates_buf`) of the last answer.
//!   A batch's events and the cursor after it are stored in one step before the next
//!   poll (monitor.ts stores the cursor before handling the batch, which a crash would
//!   turn into a loss), so after a crash the same batch comes again and the store,
//!   keyed by message id, takes each message once. Errors back off; errcode -14 (the
//!   session expired) pauses the poll for an hour (session-guard.ts) or until a new
//!   login is stored, and says that `tapwire ilink login` is needed.
//! - Out: `sendmessage` to the user with the `context_token` of their latest message
//!   (inbound.ts: "must be echoed verbatim in every outbound send"; kept in the store so
//!   that a restart can still answer), a `client_id` per piece that stays the same when
//!   the piece is sent again, and at most 4000 characters (channel.ts
//!   `textChunkLimit`). iLink takes messages only from a user who wrote first and then
//!   at most 10 within 24 h of their last message ([`state`]); a reply beyond that is
//!   failed with that reason, and `ret = -2` (throttled) is retried later.
//! - Typing: while a user's message is being answered, "typing…" is shown to them
//!   (`getconfig` hands out the ticket, `sendtyping` shows it, renewed every 5 s as
//!   process-message.ts does, and cleared when the answer goes out).

pub mod api;
pub mod inbound;
pub mod login;
pub mod state;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use reqwest::Url;
use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::check::{Secret, http_url, unexpanded};
use super::split;
use super::{Adapter, AdapterContext, AdapterError, Delivered, Outgoing, ReplyTiming, SendError};
use crate::event::{Event, short_hash};
use crate::format::TextFormat;
use crate::http::{backoff_delay, shown_url};
use api::{Api, ApiError, Credentials, LONG_POLL, TYPING, TYPING_CANCEL, classify_send};
use inbound::{Read, millis};
use state::{Contact, Saved, never_wrote};

pub const PLATFORM: &str = "ilink";
/// openclaw-weixin filters markdown out of answers (messaging/markdown-filter.ts: only
/// "partially supported"), so answers go as plain text.
pub const TEXT_FORMAT: TextFormat = TextFormat::Plain;
/// login-qr.ts `FIXED_BASE_URL`, api.ts's default.
pub const DEFAULT_BASE_URL: &str = "https://ilinkai.weixin.qq.com";
/// login-qr.ts `DEFAULT_ILINK_BOT_TYPE`.
pub const DEFAULT_BOT_TYPE: u32 = 3;
/// channel.ts `textChunkLimit`.
pub const MAX_TEXT_CHARS: usize = 4000;

/// session-guard.ts `SESSION_PAUSE_DURATION_MS`: after errcode -14, an hour without
/// requests.
const SESSION_PAUSE: Duration = Duration::from_secs(60 * 60);
/// How often a paused poll looks for a new login in the store.
const LOGIN_CHECK: Duration = Duration::from_secs(5);
/// monitor.ts: 2 s after a failed poll, 30 s after three in a row.
const POLL_BACKOFF: Duration = Duration::from_secs(2);
const POLL_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// process-message.ts `keepaliveIntervalMs`.
const TYPING_EVERY: Duration = Duration::from_secs(5);
/// How long "typing…" is kept up without an answer: until the acknowledgement would
/// go out ([`ACK_AFTER`]). A message no route answers shows it that long too: the
/// adapter cannot tell "no answer" from "a slow one".
const TYPING_FOR: Duration = ACK_AFTER;
/// When a slow answer is acknowledged (see [`Ilink::reply_timing`]).
const ACK_AFTER: Duration = Duration::from_secs(60);
/// config-cache.ts `CONFIG_CACHE_TTL_MS`: a typing ticket is fetched again within a day.
const TICKET_LIFE: Duration = Duration::from_secs(24 * 60 * 60);

/// One `type = "ilink"` adapter of `tapwire.toml`. Usually only its name is given and
/// `tapwire ilink login --adapter NAME` stores the token; `token = "${ILINK_TOKEN}"`
/// uses one from the environment instead.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IlinkConfig {
    /// Where the QR code comes from, and the API unless the login named another host.
    /// Default: https://ilinkai.weixin.qq.com; tests point it at a stand-in.
    #[serde(default)]
    pub base_url: Option<String>,
    /// A bot token to use instead of the stored login.
    #[serde(default)]
    pub token: Option<Secret>,
    /// The `bot_type` of the QR login (3, login-qr.ts).
    #[serde(default = "default_bot_type")]
    pub bot_type: u32,
}

fn default_bot_type() -> u32 {
    DEFAULT_BOT_TYPE
}

impl IlinkConfig {
    /// What is wrong with the section, if anything; messages never show the token.
    pub fn check(&self) -> Result<(), String> {
        if let Some(base) = &self.base_url
            && !unexpanded(base)
        {
            http_url("base_url", base)?;
        }
        if self.token.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err(
                "token must not be empty (leave it out to use `tapwire ilink login`)".into(),
            );
        }
        if self.bot_type == 0 {
            return Err("bot_type must be a positive number (iLink's is 3)".into());
        }
        Ok(())
    }

    /// Where the login's QR code comes from.
    pub fn login_base(&self) -> Result<Url, String> {
        http_url(
            "base_url",
            self.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL),
        )
    }

    fn token(&self) -> Option<&str> {
        self.token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }
}

/// The pieces of one action get `client_id`s `tapwire:<action>:<n>`: the same for a
/// piece sent again after a failure or a restart, another for the next piece. The
/// outbox delivers one adapter's pieces one at a time, in order.
#[derive(Debug, Default)]
struct Pieces {
    action: String,
    index: u32,
    settled: bool,
}

impl Pieces {
    fn client_id(&mut self, action: &str) -> String {
        if self.action != action {
            self.action = action.to_string();
            self.index = 0;
            self.settled = false;
        } else if self.settled {
            self.index += 1;
            self.settled = false;
        }
        format!("tapwire:{action}:{}", self.index)
    }

    fn settle(&mut self) {
        self.settled = true;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// "typing…": per user, a ticket (`getconfig`) and the task that keeps it shown.
struct Typing {
    api: Api,
    tickets: Mutex<HashMap<String, (String, Instant)>>,
    running: Mutex<HashMap<String, JoinHandle<()>>>,
}

impl Typing {
    async fn ticket(
        &self,
        credentials: &Credentials,
        user: &str,
        context_token: &str,
    ) -> Option<String> {
        if let Some((ticket, at)) = lock(&self.tickets).get(user)
            && at.elapsed() < TICKET_LIFE
        {
            return Some(ticket.clone()).filter(|t| !t.is_empty());
        }
        match self
            .api
            .typing_ticket(credentials, user, context_token)
            .await
        {
            Ok(ticket) => {
                lock(&self.tickets).insert(user.to_string(), (ticket.clone(), Instant::now()));
                Some(ticket).filter(|t| !t.is_empty())
            }
            Err(error) => {
                // config-cache.ts: a failed getconfig only means no typing indicator.
                tracing::debug!(%error, "no typing ticket");
                None
            }
        }
    }

    /// Shows "typing…" to `user` until [`Typing::stop`] or [`TYPING_FOR`].
    fn start(self: &Arc<Self>, credentials: Credentials, user: &str, context_token: &str) {
        let typing = self.clone();
        let (user, context_token) = (user.to_string(), context_token.to_string());
        let key = user.clone();
        let task = tokio::spawn(async move {
            let Some(ticket) = typing.ticket(&credentials, &user, &context_token).await else {
                return;
            };
            let until = Instant::now() + TYPING_FOR;
            while Instant::now() < until {
                if let Err(error) = typing
                    .api
                    .send_typing(&credentials, &user, &ticket, TYPING)
                    .await
                {
                    tracing::debug!(%error, "typing indicator not shown");
                    return;
                }
                tokio::time::sleep(TYPING_EVERY).await;
            }
        });
        if let Some(previous) = lock(&self.running).insert(key, task) {
            previous.abort();
        }
    }

    /// Ends "typing…" for `user` (an answer goes out).
    fn stop(self: &Arc<Self>, credentials: &Credentials, user: &str) {
        let Some(task) = lock(&self.running).remove(user) else {
            return;
        };
        task.abort();
        let ticket = lock(&self.tickets)
            .get(user)
            .map(|(t, _)| t.clone())
            .filter(|t| !t.is_empty());
        if let Some(ticket) = ticket {
            let (api, credentials, user) =
                (self.api.clone(), credentials.clone(), user.to_string());
            tokio::spawn(async move {
                if let Err(error) = api
                    .send_typing(&credentials, &user, &ticket, TYPING_CANCEL)
                    .await
                {
                    tracing::debug!(%error, "typing indicator not cleared");
                }
            });
        }
    }

    fn stop_all(&self) {
        for (_, task) in lock(&self.running).drain() {
            task.abort();
        }
    }
}

/// What the adapter and its poll share.
struct Inner {
    name: String,
    config: IlinkConfig,
    api: Api,
    credentials: RwLock<Option<Credentials>>,
    saved: OnceLock<Saved>,
    ctx: OnceLock<AdapterContext>,
    /// The users known, as the store has them (read on first use).
    contacts: Mutex<HashMap<String, Contact>>,
    pieces: Mutex<Pieces>,
    typing: Arc<Typing>,
    /// Set while the session is expired: what to tell a send.
    expired: Mutex<Option<String>>,
}

impl Inner {
    fn credentials(&self) -> Option<Credentials> {
        self.credentials
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_credentials(&self, credentials: Credentials) {
        *self.credentials.write().unwrap_or_else(|p| p.into_inner()) = Some(credentials);
    }

    fn expired(&self) -> Option<String> {
        lock(&self.expired).clone()
    }

    /// The latest of `user`, from memory or the store.
    async fn contact(
        &self,
        saved: &Saved,
        user: &str,
    ) -> Result<Option<Contact>, crate::store::StoreError> {
        if let Some(contact) = lock(&self.contacts).get(user) {
            return Ok(Some(contact.clone()));
        }
        let stored = saved.contact(user).await?;
        if let Some(contact) = &stored {
            lock(&self.contacts)
                .entry(user.to_string())
                .or_insert_with(|| contact.clone());
        }
        Ok(stored)
    }

    /// errcode -14: said once, loudly, and as a `platform.ilink.session_expired` event a
    /// route can send to an admin.
    fn expire(&self, errmsg: &str) {
        let why = format!(
            "the iLink session of adapter {:?} expired (errcode {}{}): run `tapwire ilink login --adapter {}` to scan a new QR code",
            self.name,
            api::SESSION_EXPIRED,
            if errmsg.is_empty() {
                String::new()
            } else {
                format!(", {errmsg}")
            },
            self.name
        );
        let mut expired = lock(&self.expired);
        if expired.is_some() {
            return;
        }
        tracing::error!(adapter = %self.name, "{why}; polling paused until a new login is stored (or for an hour, then the old token is tried again)");
        *expired = Some(why.clone());
        drop(expired);
        let (Some(ctx), Some(credentials)) = (self.ctx.get(), self.credentials()) else {
            return;
        };
        let event = Event::notice(
            &format!("platform.{PLATFORM}.session_expired"),
            &self.name,
            PLATFORM,
            format!(
                "ilink:{}:session_expired:{}",
                self.name,
                short_hash(&credentials.token)
            ),
            serde_json::json!({"adapter": self.name, "reason": why}),
        );
        let inbox = ctx.inbox.clone();
        tokio::spawn(async move {
            if let Err(error) = inbox.accept(event).await {
                tracing::error!(%error, "cannot store the session-expired event");
            }
        });
    }

    /// Stores one batch: each user's latest token first, then the events with the
    /// cursor after them; then the fresh events go to the pipeline, and their senders
    /// see "typing…".
    async fn take_batch(
        &self,
        saved: &Saved,
        cursor: &str,
        messages: &[serde_json::Value],
    ) -> Result<(), crate::store::StoreError> {
        let now = SystemTime::now();
        let mut events = Vec::new();
        let mut tokens = HashMap::new();
        for raw in messages {
            match inbound::read(&self.name, PLATFORM, raw, now) {
                Ok(Read::Message {
                    event,
                    user,
                    context_token,
                    message_id,
                    at_ms,
                }) => {
                    let current = self.contact(saved, &user).await?;
                    if let Some(next) = Contact::note(
                        current.as_ref(),
                        message_id.as_deref(),
                        &context_token,
                        at_ms,
                    ) {
                        // Stored before the events: a crash in between only repeats it.
                        saved.put_contact(&user, &next).await?;
                        lock(&self.contacts).insert(user.clone(), next);
                    }
                    tokens.insert(user, context_token);
                    events.push(*event);
                }
                Ok(Read::Skipped(why)) => {
                    tracing::debug!(adapter = %self.name, %why, "iLink message not routed");
                }
                Err(why) => {
                    tracing::warn!(adapter = %self.name, %why, "an iLink message cannot be read; skipped");
                }
            }
        }
        let fresh = saved.advance(cursor, &events).await?;
        let (Some(ctx), credentials) = (self.ctx.get(), self.credentials()) else {
            return Ok(());
        };
        for event in fresh {
            let user = event
                .conversation
                .as_ref()
                .map(|c| c.id.clone())
                .unwrap_or_default();
            tracing::info!(adapter = %self.name, event = %event.id, user = %user, "iLink message received");
            if let (Some(credentials), Some(token)) = (&credentials, tokens.get(&user)) {
                self.typing.start(credentials.clone(), &user, token);
            }
            ctx.inbox.submit(event);
        }
        Ok(())
    }
}

pub struct Ilink {
    inner: Arc<Inner>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Ilink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ilink")
            .field("name", &self.inner.name)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Ilink {
    pub fn new(name: &str, config: &IlinkConfig) -> Result<Ilink, String> {
        config.check()?;
        config.login_base()?;
        let api = Api::new();
        Ok(Ilink {
            inner: Arc::new(Inner {
                name: name.to_string(),
                config: config.clone(),
                api: api.clone(),
                credentials: RwLock::new(None),
                saved: OnceLock::new(),
                ctx: OnceLock::new(),
                contacts: Mutex::new(HashMap::new()),
                pieces: Mutex::new(Pieces::default()),
                typing: Arc::new(Typing {
                    api,
                    tickets: Mutex::new(HashMap::new()),
                    running: Mutex::new(HashMap::new()),
                }),
                expired: Mutex::new(None),
            }),
            stop: watch::channel(false).0,
            task: Mutex::new(None),
        })
    }

    /// The token and base URL to use: the config's token with the config's URL, else
    /// the stored login with its own URL (unless the config names one).
    fn credentials_from(
        name: &str,
        config: &IlinkConfig,
        login: Option<&state::Login>,
    ) -> Result<Credentials, String> {
        if let Some(token) = config.token() {
            return Ok(Credentials {
                base: config.login_base()?,
                token: token.to_string(),
            });
        }
        let login = login.filter(|l| !l.token.trim().is_empty()).ok_or_else(|| {
            format!("no bot token: run `tapwire ilink login --adapter {name}` to scan a QR code (or set token = \"${{ILINK_TOKEN}}\")")
        })?;
        let base = match &config.base_url {
            Some(base) => http_url("base_url", base)?,
            None => http_url("the stored login's baseurl", &login.base_url)?,
        };
        Ok(Credentials {
            base,
            token: login.token.trim().to_string(),
        })
    }
}

async fn sleep_or_stop(wait: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(wait) => false,
        _ = stop.wait_for(|s| *s) => true,
    }
}

/// The long poll, until stopped.
async fn poll(inner: Arc<Inner>, saved: Saved, mut stop: watch::Receiver<bool>) {
    let name = inner.name.clone();
    let mut failures = 0u32;
    let mut cursor = loop {
        match saved.cursor().await {
            Ok(cursor) => break cursor,
            Err(error) => {
                failures += 1;
                tracing::error!(adapter = %name, %error, "cannot read the iLink cursor");
                if sleep_or_stop(
                    backoff_delay(POLL_BACKOFF, POLL_BACKOFF_MAX, failures, fastrand::f64()),
                    &mut stop,
                )
                .await
                {
                    return;
                }
            }
        }
    };
    failures = 0;
    if cursor.is_empty() {
        tracing::info!(adapter = %name, "iLink long poll starting afresh");
    } else {
        tracing::info!(adapter = %name, cursor_len = cursor.len(), "iLink long poll resuming at the stored cursor");
    }
    let mut long_poll = LONG_POLL;
    loop {
        let Some(credentials) = inner.credentials() else {
            return;
        };
        let answer = tokio::select! {
            answer = inner.api.get_updates(&credentials, &cursor, long_poll) => answer,
            _ = stop.wait_for(|s| *s) => return,
        };
        let wait = match answer {
            Ok(updates) => {
                failures = 0;
                // A poll that works is a session that works (a send may have seen -14).
                if lock(&inner.expired).take().is_some() {
                    tracing::info!(adapter = %name, "the iLink session works again");
                }
                if let Some(next) = updates.next_long_poll() {
                    long_poll = next;
                }
                // monitor.ts keeps the old cursor when an answer brings none.
                let next = updates
                    .get_updates_buf
                    .clone()
                    .filter(|c| !c.is_empty())
                    .unwrap_or_else(|| cursor.clone());
                if updates.msgs.is_empty() && next == cursor {
                    continue;
                }
                match inner.take_batch(&saved, &next, &updates.msgs).await {
                    Ok(()) => {
                        cursor = next;
                        continue;
                    }
                    Err(error) => {
                        // The cursor stays: the same batch is asked for again.
                        tracing::error!(adapter = %name, %error, "cannot store an iLink batch; fetching it again");
                        POLL_BACKOFF
                    }
                }
            }
            Err(ApiError::SessionExpired(errmsg)) => {
                inner.expire(&errmsg);
                match wait_for_login(&inner, &saved, &credentials, &mut stop).await {
                    Some(resumed) => {
                        if let Some(stored) = resumed {
                            cursor = stored;
                        }
                        continue;
                    }
                    None => return,
                }
            }
            Err(error) => {
                failures += 1;
                let wait = backoff_delay(POLL_BACKOFF, POLL_BACKOFF_MAX, failures, fastrand::f64());
                tracing::warn!(adapter = %name, %error, failures, retry_in = ?wait, "iLink getupdates failed");
                wait
            }
        };
        if sleep_or_stop(wait, &mut stop).await {
            return;
        }
    }
}

/// After errcode -14: waits for a new login in the store (`tapwire ilink login`), or an
/// hour (session-guard.ts), then lets the poll go on. `None` when stopped; the cursor to
/// resume at when a new login reset it.
async fn wait_for_login(
    inner: &Inner,
    saved: &Saved,
    expired: &Credentials,
    stop: &mut watch::Receiver<bool>,
) -> Option<Option<String>> {
    let since = Instant::now();
    loop {
        if sleep_or_stop(LOGIN_CHECK, stop).await {
            return None;
        }
        if inner.config.token().is_none()
            && let Ok(Some(login)) = saved.login().await
            && login.token.trim() != expired.token
        {
            match Ilink::credentials_from(&inner.name, &inner.config, Some(&login)) {
                Ok(credentials) => {
                    tracing::info!(adapter = %inner.name, base = %shown_url(&credentials.base), "a new iLink login is stored; polling again");
                    inner.set_credentials(credentials);
                    *lock(&inner.expired) = None;
                    return Some(saved.cursor().await.ok());
                }
                Err(error) => {
                    tracing::error!(adapter = %inner.name, %error, "the stored iLink login cannot be used");
                }
            }
        }
        if since.elapsed() >= SESSION_PAUSE {
            tracing::info!(adapter = %inner.name, "an hour since the iLink session expired; trying its token again");
            *lock(&inner.expired) = None;
            return Some(None);
        }
    }
}

#[async_trait]
impl Adapter for Ilink {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn platform(&self) -> &'static str {
        PLATFORM
    }

    fn text_format(&self) -> TextFormat {
        TEXT_FORMAT
    }

    fn split<'t>(&self, text: &'t str) -> Vec<&'t str> {
        split::chars(text, MAX_TEXT_CHARS)
    }

    /// "typing…" shows the user that work is going on, and an acknowledgement would
    /// spend one of the 10 replies iLink allows: only a minute of silence earns one.
    fn reply_timing(&self) -> ReplyTiming {
        ReplyTiming {
            ack_after_ms: u64::try_from(ACK_AFTER.as_millis()).unwrap_or(u64::MAX),
            ..ReplyTiming::default()
        }
    }

    async fn deliver(&self, outgoing: &Outgoing) -> Result<Delivered, SendError> {
        let inner = &self.inner;
        if let Some(why) = inner.expired() {
            return Err(SendError::Permanent(why));
        }
        let (Some(credentials), Some(saved)) = (inner.credentials(), inner.saved.get()) else {
            return Err(SendError::Retry {
                reason: "the iLink adapter has not started".into(),
                after: None,
            });
        };
        let user = outgoing.conversation.trim();
        if user.is_empty() {
            return Err(SendError::Permanent("no iLink user to send to".into()));
        }
        let contact = inner
            .contact(saved, user)
            .await
            .map_err(|e| SendError::Retry {
                reason: format!("cannot read what is known of {user}: {e}"),
                after: None,
            })?;
        let Some(contact) = contact else {
            return Err(SendError::Permanent(never_wrote(user)));
        };
        contact
            .allows(millis(SystemTime::now()))
            .map_err(SendError::Permanent)?;
        let client_id = lock(&inner.pieces).client_id(&outgoing.action_id);
        if outgoing.resumed {
            tracing::info!(adapter = %inner.name, action = %outgoing.action_id, %client_id, "this may have gone out before the restart; sending it again with the same client_id");
        }
        inner.typing.stop(&credentials, user);
        match inner
            .api
            .send_text(
                &credentials,
                user,
                &outgoing.text,
                &contact.context_token,
                &client_id,
            )
            .await
        {
            Ok(()) => {
                lock(&inner.pieces).settle();
                // Counted against the budget it was sent under; a message that arrived
                // meanwhile opened a new one.
                let counted = {
                    let mut contacts = lock(&inner.contacts);
                    contacts.get_mut(user).and_then(|current| {
                        (current.message_id == contact.message_id
                            && current.since_ms == contact.since_ms)
                            .then(|| {
                                current.sent += 1;
                                current.clone()
                            })
                    })
                };
                if let Some(counted) = counted
                    && let Err(error) = saved.put_contact(user, &counted).await
                {
                    tracing::warn!(adapter = %inner.name, %error, "cannot store the reply count");
                }
                Ok(Delivered::Sent)
            }
            Err(ApiError::SessionExpired(errmsg)) => {
                inner.expire(&errmsg);
                Err(SendError::Permanent(inner.expired().unwrap_or(errmsg)))
            }
            Err(error) => Err(classify_send(error)),
        }
    }

    /// Reads the credentials (the config's token or the stored login) and starts the
    /// long poll; without a token it refuses to start, saying how to log in.
    async fn start(&self, ctx: AdapterContext) -> Result<(), AdapterError> {
        let inner = &self.inner;
        if inner.ctx.set(ctx.clone()).is_err() {
            return Ok(());
        }
        let saved = Saved::new(ctx.store.clone(), &inner.name);
        let _ = inner.saved.set(saved.clone());
        let login = saved.login().await.map_err(|e| {
            AdapterError::Start(format!(
                "adapter {:?}: cannot read its login: {e}",
                inner.name
            ))
        })?;
        let credentials = Ilink::credentials_from(&inner.name, &inner.config, login.as_ref())
            .map_err(|e| AdapterError::Start(format!("adapter {:?}: {e}", inner.name)))?;
        tracing::info!(adapter = %inner.name, base = %shown_url(&credentials.base), from = if inner.config.token().is_some() { "config" } else { "login" }, "iLink bot starting");
        inner.set_credentials(credentials);
        let task = tokio::spawn(poll(inner.clone(), saved, self.stop.subscribe()));
        *lock(&self.task) = Some(task);
        Ok(())
    }

    async fn stop(&self) -> Result<(), AdapterError> {
        let _ = self.stop.send(true);
        let task = lock(&self.task).take();
        if let Some(task) = task {
            let _ = task.await;
        }
        self.inner.typing.stop_all();
        match self.inner.expired() {
            Some(why) => Err(AdapterError::Stopped(why)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
