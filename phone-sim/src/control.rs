//! Driving the phone from outside: [`SimControl`] in process, and the same operations as
//! JSON over HTTP ([`router`]) for tests and demos in other processes.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::accessibility::Component;
use crate::device::{Device, Faults, Latency, StatsSnapshot};
use crate::packages::PackageError;
use crate::settings::Namespace;
use crate::wechat::model::{Chat, Event, MsgKind, Notification, Popup, Screen, SentRecord};
use crate::wechat::ui::{self, Node, Paint};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IncomingMessage {
    pub chat: String,
    #[serde(default)]
    pub group: bool,
    /// Defaults to the chat's name (a private chat's other party).
    #[serde(default)]
    pub sender: Option<String>,
    #[serde(default)]
    pub text: String,
    /// A centred system line (`"X"邀请"Y"加入了群聊`) instead of a bubble.
    #[serde(default)]
    pub system: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OwnerMessage {
    pub chat: String,
    #[serde(default)]
    pub text: String,
}

/// The JSON of `POST /incoming` and `POST /outgoing-by-owner`: the message and its `kind`,
/// `text` (the default), `system`, `image`, `sticker` or `red_packet`. A red packet's `text`
/// is its greeting (WeChat's default when empty); a picture or sticker shows no text, so its
/// `text` may be left out.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WithKind<M> {
    #[serde(flatten)]
    pub message: M,
    #[serde(default)]
    pub kind: Option<MsgKind>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChatSettings {
    pub name: String,
    #[serde(default)]
    pub group: bool,
    #[serde(default)]
    pub muted: bool,
    #[serde(default)]
    pub pinned: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClockAdvance {
    pub seconds: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RowView {
    pub title: String,
    pub preview: String,
    pub time: String,
    /// The number on the badge; muted chats show a dot instead (`dot`).
    pub badge: Option<String>,
    pub dot: bool,
    pub muted: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MessageView {
    /// `text`, `image`, `sticker`, `red_packet`, `system` or `divider`
    pub kind: String,
    pub own: bool,
    pub sender: Option<String>,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ScreenView {
    /// `list`, `chat`, `popup` (over either) or `launcher`
    pub kind: String,
    pub chat: Option<String>,
    pub popup: Option<Popup>,
    pub rows: Vec<RowView>,
    pub messages: Vec<MessageView>,
    pub input: String,
    pub input_focused: bool,
    pub send_button: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChatsView {
    pub chats: Vec<ChatView>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChatView {
    pub name: String,
    pub group: bool,
    pub muted: bool,
    pub pinned: bool,
    pub unread: u32,
    pub draft: String,
    pub messages: Vec<ChatMessageView>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChatMessageView {
    pub id: u64,
    pub ts: i64,
    pub time: String,
    pub kind: MsgKind,
    pub own: bool,
    pub sender: Option<String>,
    pub text: String,
}

/// A setting to write, or with `value: null` to delete.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SettingChange {
    pub namespace: String,
    pub key: String,
    pub value: Option<String>,
}

/// Packages to add to or remove from the phone (only the optional ones: the Accessibility
/// Suite and 点明).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct PackageChange {
    pub install: Vec<String>,
    pub uninstall: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessibilityButton {
    pub shown: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AdbAuth {
    pub authorized: bool,
}

/// What the accessibility settings and packages add up to.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AccessibilityView {
    pub accessibility_enabled: bool,
    pub enabled_services: Vec<Component>,
    pub bound_services: Vec<Component>,
    pub touch_exploration: bool,
    /// WeChat's AccUtil sees a service it trusts (so ≥ 8.0.55 keeps its tree).
    pub wechat_trusts: bool,
    pub tree_hidden: bool,
    /// The floating accessibility button is on screen.
    pub button_shown: bool,
}

/// What a message row of the view tree shows: its kind (`text`, `image`, `sticker`,
/// `red_packet`) and text (a red packet's greeting; nothing for pictures).
fn message_content(row: &Node, ids: &crate::wechat::ids::Ids) -> Option<(&'static str, String)> {
    if let Some(t) = find(row, &ids.message_text) {
        return Some(("text", t.text.clone()));
    }
    let mut found = None;
    row.walk(&mut |n| {
        if found.is_some() {
            return;
        }
        found = match n.paint {
            Paint::Image => Some(("image", String::new())),
            Paint::Sticker => Some(("sticker", String::new())),
            Paint::RedPacket { .. } => Some((
                "red_packet",
                n.children
                    .first()
                    .map(|c| c.text.clone())
                    .unwrap_or_default(),
            )),
            _ => None,
        };
    });
    found
}

/// In-process equivalent of the HTTP control API.
#[derive(Clone)]
pub struct SimControl {
    device: Device,
}

fn find<'a>(node: &'a Node, id: &str) -> Option<&'a Node> {
    let mut hit = None;
    node.walk(&mut |n| {
        if hit.is_none() && n.id.ends_with(&format!(":id/{id}")) {
            hit = Some(n);
        }
    });
    hit
}

impl SimControl {
    pub fn new(device: Device) -> Self {
        SimControl { device }
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn incoming(&self, m: &IncomingMessage) {
        let kind = if m.system {
            MsgKind::System
        } else {
            MsgKind::Text
        };
        self.incoming_kind(m, kind);
    }

    /// A picture, sticker, red packet, text or system line from someone else.
    pub fn incoming_kind(&self, m: &IncomingMessage, kind: MsgKind) {
        self.device.with(|st| {
            let ts = st.clock.now();
            st.wechat
                .incoming(&m.chat, m.group, m.sender.as_deref(), &m.text, kind, ts);
        });
    }

    pub fn outgoing_by_owner(&self, m: &OwnerMessage) {
        self.outgoing_kind_by_owner(m, MsgKind::Text);
    }

    /// The owner sent a picture, sticker, red packet or text on the phone themselves.
    pub fn outgoing_kind_by_owner(&self, m: &OwnerMessage, kind: MsgKind) {
        self.device.with(|st| {
            let ts = st.clock.now();
            st.wechat.outgoing_kind_by_owner(&m.chat, &m.text, kind, ts);
        });
    }

    pub fn configure_chat(&self, c: &ChatSettings) {
        self.device.with(|st| {
            st.wechat
                .configure_chat(&c.name, c.group, c.muted, c.pinned)
        });
    }

    pub fn sent(&self) -> Vec<SentRecord> {
        self.device.read(|st| st.wechat.sent.clone())
    }

    pub fn events(&self) -> Vec<Event> {
        self.device.read(|st| st.wechat.events.clone())
    }

    pub fn notifications(&self) -> Vec<Notification> {
        self.device.read(|st| st.wechat.notifications.clone())
    }

    pub fn popup(&self, p: Popup) {
        self.device.with(|st| st.wechat.popup = Some(p));
    }

    pub fn set_latency(&self, l: Latency) {
        self.device.with(|st| st.latency = l);
    }

    pub fn set_faults(&self, f: Faults) {
        self.device.with(|st| st.faults = f);
    }

    pub fn advance_clock(&self, seconds: i64) {
        self.device.with(|st| st.clock.offset_secs += seconds);
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.device.stats().snapshot()
    }

    pub fn tap(&self, x: i32, y: i32) {
        self.device.tap(x, y);
    }

    pub fn settings(&self) -> BTreeMap<&'static str, BTreeMap<String, String>> {
        self.device.read(|st| {
            Namespace::ALL
                .into_iter()
                .map(|ns| (ns.name(), st.settings.table(ns)))
                .collect()
        })
    }

    pub fn change_setting(&self, c: &SettingChange) -> Result<(), String> {
        let ns = Namespace::parse(&c.namespace).ok_or_else(|| {
            format!(
                "unknown namespace {:?} (system, secure or global)",
                c.namespace
            )
        })?;
        if c.key.is_empty() {
            return Err("key must not be empty".into());
        }
        self.device.with(|st| match &c.value {
            Some(v) => st.put_setting(ns, &c.key, v),
            None => {
                st.settings.delete(ns, &c.key);
            }
        });
        Ok(())
    }

    pub fn packages(&self) -> Vec<&'static str> {
        self.device
            .read(|st| st.packages.installed().map(|p| p.name).collect())
    }

    /// All or nothing: an unknown name changes no package.
    pub fn change_packages(&self, c: &PackageChange) -> Result<(), PackageError> {
        self.device.with(|st| {
            let mut next = st.packages.clone();
            for name in &c.install {
                next.install(name)?;
            }
            for name in &c.uninstall {
                next.uninstall(name)?;
            }
            st.packages = next;
            Ok(())
        })
    }

    pub fn set_accessibility_button(&self, shown: bool) {
        self.device.with(|st| st.accessibility_button = shown);
    }

    pub fn set_adb_authorized(&self, authorized: bool) {
        self.device.with(|st| st.adb_authorized = authorized);
    }

    pub fn accessibility(&self) -> AccessibilityView {
        let tree_hidden = self.device.hides_tree();
        self.device.read(|st| {
            let a = st.a11y();
            AccessibilityView {
                accessibility_enabled: a.accessibility_enabled(),
                enabled_services: a.enabled(),
                bound_services: a.bound().into_iter().map(|b| b.component).collect(),
                touch_exploration: a.touch_exploration(),
                wechat_trusts: a.wechat_trusts(),
                tree_hidden,
                button_shown: st.accessibility_button && !a.button_targets().is_empty(),
            }
        })
    }

    pub fn chats(&self) -> ChatsView {
        self.device.read(|st| ChatsView {
            chats: crate::wechat::model::ordered(&st.wechat.chats)
                .into_iter()
                .map(|c: &Chat| ChatView {
                    name: c.name.clone(),
                    group: c.group,
                    muted: c.muted,
                    pinned: c.pinned,
                    unread: c.unread,
                    draft: c.draft.clone(),
                    messages: c
                        .messages
                        .iter()
                        .map(|m| ChatMessageView {
                            id: m.id,
                            ts: m.ts,
                            time: st.clock.hhmm(m.ts),
                            kind: m.kind,
                            own: m.own,
                            sender: m.sender.clone(),
                            text: m.text.clone(),
                        })
                        .collect(),
                })
                .collect(),
        })
    }

    /// The current screen, read back from the same view tree the dumps come from.
    pub fn screen(&self) -> ScreenView {
        let windows = self.device.windows();
        let ids = &self.device.config().ids;
        let (w_screen, fg, popup, focused) = self.device.read(|st| {
            (
                st.wechat.screen.clone(),
                st.wechat.foreground,
                st.wechat.popup.clone(),
                st.wechat.input_focused,
            )
        });
        let mut view = ScreenView {
            kind: String::new(),
            chat: None,
            popup: popup.clone(),
            rows: Vec::new(),
            messages: Vec::new(),
            input: String::new(),
            input_focused: false,
            send_button: false,
        };
        if !fg {
            view.kind = "launcher".into();
            return view;
        }
        let Some(app) = windows.iter().find(|w| w.package == ui::WECHAT_PKG) else {
            return view;
        };
        let text_of = |n: &Node, id: &str| find(n, id).map(|x| x.text.clone());
        match &w_screen {
            Screen::List => {
                view.kind = "list".into();
                app.walk(&mut |n| {
                    if n.id.ends_with(&format!(":id/{}", ids.conversation_row)) {
                        view.rows.push(RowView {
                            title: text_of(n, &ids.row_title).unwrap_or_default(),
                            preview: text_of(n, &ids.row_preview).unwrap_or_default(),
                            time: text_of(n, &ids.row_time).unwrap_or_default(),
                            badge: text_of(n, &ids.row_unread_badge),
                            dot: find(n, &ids.row_unread_dot).is_some(),
                            muted: find(n, &ids.row_muted).is_some(),
                        });
                    }
                });
            }
            Screen::Chat(name) => {
                view.kind = "chat".into();
                view.chat = Some(name.clone());
                if let Some(list) = find(app, &ids.message_list) {
                    for row in &list.children {
                        if let Some(d) = find(row, &ids.time_divider) {
                            view.messages.push(MessageView {
                                kind: "divider".into(),
                                own: false,
                                sender: None,
                                text: d.text.clone(),
                            });
                        }
                        let Some((kind, text)) = message_content(row, ids) else {
                            continue;
                        };
                        match find(row, &ids.message_avatar) {
                            None => view.messages.push(MessageView {
                                kind: "system".into(),
                                own: false,
                                sender: None,
                                text,
                            }),
                            Some(av) => {
                                let own = av.bounds.left > self.device.config().screen.width / 2;
                                let sender = if own {
                                    None
                                } else {
                                    av.desc
                                        .strip_suffix(ids.avatar_suffix.as_str())
                                        .map(str::to_string)
                                };
                                view.messages.push(MessageView {
                                    kind: kind.into(),
                                    own,
                                    sender,
                                    text,
                                });
                            }
                        }
                    }
                }
                let edit = {
                    let mut hit = None;
                    app.walk(&mut |n| {
                        if n.class == "android.widget.EditText" && hit.is_none() {
                            hit = Some(n.text.clone());
                        }
                    });
                    hit
                };
                view.input = edit.unwrap_or_default();
                view.input_focused = focused;
                view.send_button = find(app, &ids.send_button).is_some();
            }
        }
        if popup.is_some() {
            view.kind = "popup".into();
        }
        view
    }
}

struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

async fn incoming(
    State(c): State<SimControl>,
    Json(WithKind { message: m, kind }): Json<WithKind<IncomingMessage>>,
) -> Result<StatusCode, ApiError> {
    if m.chat.is_empty() {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "chat must not be empty".into(),
        ));
    }
    let kind = match (kind, m.system) {
        (None, true) => MsgKind::System,
        (None, false) => MsgKind::Text,
        (Some(k), system) if system && k != MsgKind::System => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!("system: true contradicts kind {k:?}"),
            ));
        }
        (Some(k), _) => k,
    };
    c.incoming_kind(&m, kind);
    Ok(StatusCode::NO_CONTENT)
}

async fn outgoing(
    State(c): State<SimControl>,
    Json(WithKind { message: m, kind }): Json<WithKind<OwnerMessage>>,
) -> Result<StatusCode, ApiError> {
    let kind = kind.unwrap_or(MsgKind::Text);
    if kind == MsgKind::System {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "the owner does not send system lines".into(),
        ));
    }
    c.outgoing_kind_by_owner(&m, kind);
    Ok(StatusCode::NO_CONTENT)
}

async fn configure_chat(State(c): State<SimControl>, Json(s): Json<ChatSettings>) -> StatusCode {
    c.configure_chat(&s);
    StatusCode::NO_CONTENT
}

async fn popup(State(c): State<SimControl>, Json(p): Json<Popup>) -> Result<StatusCode, ApiError> {
    if p.buttons.is_empty() {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "a popup needs at least one button".into(),
        ));
    }
    c.popup(p);
    Ok(StatusCode::NO_CONTENT)
}

async fn latency(State(c): State<SimControl>, Json(l): Json<Latency>) -> StatusCode {
    c.set_latency(l);
    StatusCode::NO_CONTENT
}

async fn faults(State(c): State<SimControl>, Json(f): Json<Faults>) -> StatusCode {
    c.set_faults(f);
    StatusCode::NO_CONTENT
}

async fn clock(State(c): State<SimControl>, Json(a): Json<ClockAdvance>) -> StatusCode {
    c.advance_clock(a.seconds);
    StatusCode::NO_CONTENT
}

async fn change_setting(
    State(c): State<SimControl>,
    Json(s): Json<SettingChange>,
) -> Result<StatusCode, ApiError> {
    c.change_setting(&s)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn change_packages(
    State(c): State<SimControl>,
    Json(p): Json<PackageChange>,
) -> Result<StatusCode, ApiError> {
    c.change_packages(&p)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn accessibility_button(
    State(c): State<SimControl>,
    Json(b): Json<AccessibilityButton>,
) -> StatusCode {
    c.set_accessibility_button(b.shown);
    StatusCode::NO_CONTENT
}

async fn adb_auth(State(c): State<SimControl>, Json(a): Json<AdbAuth>) -> StatusCode {
    c.set_adb_authorized(a.authorized);
    StatusCode::NO_CONTENT
}

pub fn router(control: SimControl) -> Router {
    Router::new()
        .route("/incoming", post(incoming))
        .route("/outgoing-by-owner", post(outgoing))
        .route("/chat", post(configure_chat))
        .route("/popup", post(popup))
        .route("/latency", post(latency))
        .route("/faults", post(faults))
        .route("/clock", post(clock))
        .route(
            "/settings",
            get(|State(c): State<SimControl>| async move { Json(c.settings()) })
                .post(change_setting),
        )
        .route(
            "/packages",
            get(|State(c): State<SimControl>| async move { Json(c.packages()) })
                .post(change_packages),
        )
        .route("/accessibility-button", post(accessibility_button))
        .route(
            "/accessibility",
            get(|State(c): State<SimControl>| async move { Json(c.accessibility()) }),
        )
        .route("/adb-auth", post(adb_auth))
        .route(
            "/sent",
            get(|State(c): State<SimControl>| async move { Json(c.sent()) }),
        )
        .route(
            "/screen",
            get(|State(c): State<SimControl>| async move { Json(c.screen()) }),
        )
        .route(
            "/chats",
            get(|State(c): State<SimControl>| async move { Json(c.chats()) }),
        )
        .route(
            "/events",
            get(|State(c): State<SimControl>| async move { Json(c.events()) }),
        )
        .route(
            "/notifications",
            get(|State(c): State<SimControl>| async move { Json(c.notifications()) }),
        )
        .route(
            "/stats",
            get(|State(c): State<SimControl>| async move { Json(c.stats()) }),
        )
        .with_state(control)
}
