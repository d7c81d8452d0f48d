//! The state of the modelled WeChat app and how it reacts to input and to messages.
//! Geometry (what is where on screen) lives in [`super::ui`]; this module only holds state.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MsgKind {
    Text,
    /// Centred lines such as `"X"邀请"Y"加入了群聊`: no sender, no bubble.
    System,
    /// A picture: a thumbnail without a bubble; the text is not shown.
    Image,
    /// A sticker (动画表情): a larger picture without a bubble; the text is not shown.
    Sticker,
    /// A red packet (微信红包): an orange card with its greeting (the text, or WeChat's default).
    RedPacket,
}

/// The greeting a red packet shows when its sender wrote none.
pub const RED_PACKET_DEFAULT: &str = "恭喜发财，大吉大利";

impl MsgKind {
    /// A message with a sender and an avatar (all but system lines).
    pub fn has_sender(self) -> bool {
        self != MsgKind::System
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub id: u64,
    /// Unix seconds.
    pub ts: i64,
    pub kind: MsgKind,
    /// `None` for the phone owner's own messages and for system lines.
    pub sender: Option<String>,
    pub text: String,
    pub own: bool,
}

impl Message {
    /// What the conversation list's preview and a notification say for this message, as
    /// WeChat words it: `[图片]`, `[动画表情]`, `[微信红包]` before the greeting.
    pub fn summary(&self) -> String {
        match self.kind {
            MsgKind::Text | MsgKind::System => self.text.clone(),
            MsgKind::Image => "[图片]".to_string(),
            MsgKind::Sticker => "[动画表情]".to_string(),
            MsgKind::RedPacket => format!("[微信红包]{}", self.red_packet_greeting()),
        }
    }

    /// A red packet's greeting: its text, or WeChat's default when it has none.
    pub fn red_packet_greeting(&self) -> &str {
        if self.text.is_empty() {
            RED_PACKET_DEFAULT
        } else {
            &self.text
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Chat {
    pub name: String,
    pub group: bool,
    pub muted: bool,
    pub pinned: bool,
    pub unread: u32,
    pub draft: String,
    pub messages: Vec<Message>,
    /// Orders the list: larger = more recent activity.
    #[serde(skip)]
    pub activity: u64,
    #[serde(skip)]
    pub notification_id: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "chat", rename_all = "snake_case")]
pub enum Screen {
    List,
    Chat(String),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Popup {
    pub title: String,
    pub text: String,
    pub buttons: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SentRecord {
    pub chat: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub seq: u64,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<i32>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    pub id: u32,
    pub chat: String,
    pub title: String,
    pub text: String,
    pub when_ms: i64,
    pub count: u32,
}

/// Something the system outside WeChat must hear about (the notification service's event log).
#[derive(Debug, Clone)]
pub enum SystemEffect {
    NotificationPosted(Notification),
    NotificationCancelled(Notification),
}

/// What a tap landed on, decided by hit-testing the UI tree.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Action {
    OpenChat(String),
    Back,
    FocusInput,
    Send,
    PopupButton(usize),
    /// The WeChat icon on the launcher.
    Launch,
    /// A view that swallows the tap without doing anything the model cares about.
    Absorb,
    /// Android's floating accessibility button, over the app: the tap starts the service
    /// (Select to Speak) and never reaches WeChat.
    AccessibilityButton,
}

pub const KEY_HOME: u32 = 3;
pub const KEY_BACK: u32 = 4;
pub const KEY_ENTER: u32 = 66;
pub const KEY_DEL: u32 = 67;
pub const KEY_PASTE: u32 = 279;

#[derive(Debug, Clone)]
pub struct WeChat {
    pub chats: Vec<Chat>,
    pub screen: Screen,
    /// False while the launcher is in front (after HOME, or BACK from the list).
    pub foreground: bool,
    pub list_scroll: i32,
    /// Pixels of chat content scrolled past the top of the message list.
    pub chat_scroll: i32,
    /// New messages keep the view at the bottom only while it is already there.
    pub chat_at_bottom: bool,
    pub input_focused: bool,
    pub popup: Option<Popup>,
    pub clipboard: String,
    pub sent: Vec<SentRecord>,
    pub events: Vec<Event>,
    pub notifications: Vec<Notification>,
    pub effects: Vec<SystemEffect>,
    /// The phone's clock, set by the device before each operation.
    pub now: i64,
    seq: u64,
    next_msg_id: u64,
    next_notification_id: u32,
}

impl Default for WeChat {
    fn default() -> Self {
        WeChat {
            chats: Vec::new(),
            screen: Screen::List,
            foreground: true,
            list_scroll: 0,
            chat_scroll: 0,
            chat_at_bottom: true,
            input_focused: false,
            popup: None,
            clipboard: String::new(),
            sent: Vec::new(),
            events: Vec::new(),
            notifications: Vec::new(),
            effects: Vec::new(),
            now: 0,
            seq: 0,
            next_msg_id: 1,
            next_notification_id: 40,
        }
    }
}

/// The list order: pinned chats first, then by latest activity.
pub fn ordered(chats: &[Chat]) -> Vec<&Chat> {
    let mut v: Vec<&Chat> = chats.iter().collect();
    v.sort_by(|a, b| b.pinned.cmp(&a.pinned).then(b.activity.cmp(&a.activity)));
    v
}

impl WeChat {
    pub fn chat(&self, name: &str) -> Option<&Chat> {
        self.chats.iter().find(|c| c.name == name)
    }

    fn chat_mut(&mut self, name: &str) -> Option<&mut Chat> {
        self.chats.iter_mut().find(|c| c.name == name)
    }

    pub fn open_chat_name(&self) -> Option<&str> {
        match (&self.screen, self.foreground) {
            (Screen::Chat(n), true) => Some(n),
            _ => None,
        }
    }

    pub fn log(&mut self, kind: &str, at: Option<(i32, i32)>, detail: impl Into<String>) {
        self.seq += 1;
        self.events.push(Event {
            seq: self.seq,
            kind: kind.to_string(),
            x: at.map(|p| p.0),
            y: at.map(|p| p.1),
            detail: detail.into(),
        });
    }

    /// Creates a chat if missing, or updates its flags. Returns its index.
    pub fn ensure_chat(&mut self, name: &str, group: bool) -> usize {
        if let Some(i) = self.chats.iter().position(|c| c.name == name) {
            return i;
        }
        self.seq += 1;
        let notification_id = self.next_notification_id;
        self.next_notification_id += 1;
        self.chats.push(Chat {
            name: name.to_string(),
            group,
            muted: false,
            pinned: false,
            unread: 0,
            draft: String::new(),
            messages: Vec::new(),
            activity: self.seq,
            notification_id,
        });
        self.chats.len() - 1
    }

    pub fn configure_chat(&mut self, name: &str, group: bool, muted: bool, pinned: bool) {
        let i = self.ensure_chat(name, group);
        let c = &mut self.chats[i];
        c.group = group;
        c.muted = muted;
        c.pinned = pinned;
    }

    fn push_message(
        &mut self,
        idx: usize,
        ts: i64,
        kind: MsgKind,
        sender: Option<String>,
        text: &str,
        own: bool,
    ) -> u64 {
        self.seq += 1;
        let id = self.next_msg_id;
        self.next_msg_id += 1;
        let seq = self.seq;
        let c = &mut self.chats[idx];
        c.messages.push(Message {
            id,
            ts,
            kind,
            sender,
            text: text.to_string(),
            own,
        });
        c.activity = seq;
        id
    }

    /// A message from someone else (or a system line) arrives.
    pub fn incoming(
        &mut self,
        chat: &str,
        group: bool,
        sender: Option<&str>,
        text: &str,
        kind: MsgKind,
        ts: i64,
    ) {
        let idx = self.ensure_chat(chat, group);
        let sender = kind
            .has_sender()
            .then(|| sender.unwrap_or(chat).to_string());
        self.push_message(idx, ts, kind, sender.clone(), text, false);
        let text = self.chats[idx]
            .messages
            .last()
            .map(Message::summary)
            .unwrap_or_default();
        if self.open_chat_name() == Some(chat) {
            return;
        }
        let c = &mut self.chats[idx];
        c.unread += 1;
        if c.muted || kind == MsgKind::System {
            return;
        }
        let count = c.unread;
        let body = match (&sender, c.group) {
            (Some(s), true) => format!("{s}: {text}"),
            _ => text.to_string(),
        };
        let text = if count > 1 {
            format!("[{count}条]{body}")
        } else {
            body
        };
        let n = Notification {
            id: c.notification_id,
            chat: chat.to_string(),
            title: chat.to_string(),
            text,
            when_ms: ts * 1000,
            count,
        };
        self.notifications.retain(|x| x.chat != chat);
        self.notifications.push(n.clone());
        self.effects.push(SystemEffect::NotificationPosted(n));
    }

    /// The owner sent a message on the phone themselves (not through ADB).
    pub fn outgoing_by_owner(&mut self, chat: &str, text: &str, ts: i64) {
        self.outgoing_kind_by_owner(chat, text, MsgKind::Text, ts);
    }

    /// The owner sent a picture, a sticker or a red packet (or text) on the phone themselves.
    pub fn outgoing_kind_by_owner(&mut self, chat: &str, text: &str, kind: MsgKind, ts: i64) {
        let idx = self.ensure_chat(chat, false);
        self.push_message(idx, ts, kind, None, text, true);
        self.mark_read(chat);
    }

    fn mark_read(&mut self, chat: &str) {
        if let Some(c) = self.chat_mut(chat) {
            c.unread = 0;
        }
        let (gone, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.notifications)
            .into_iter()
            .partition(|n| n.chat == chat);
        self.notifications = keep;
        self.effects
            .extend(gone.into_iter().map(SystemEffect::NotificationCancelled));
    }

    pub fn open_chat(&mut self, name: &str) {
        if self.chat(name).is_none() {
            return;
        }
        self.screen = Screen::Chat(name.to_string());
        self.chat_at_bottom = true;
        self.chat_scroll = i32::MAX;
        self.input_focused = self.chat(name).is_some_and(|c| !c.draft.is_empty());
        self.mark_read(name);
        self.log("open_chat", None, name);
    }

    /// Coming back to the foreground counts as seeing the open chat.
    pub fn bring_to_front(&mut self) {
        self.foreground = true;
        if let Screen::Chat(name) = self.screen.clone() {
            self.mark_read(&name);
        }
    }

    pub fn apply_tap(&mut self, x: i32, y: i32, action: Option<Action>) {
        if matches!(action, Some(Action::AccessibilityButton)) {
            self.log(
                "a11y_button",
                Some((x, y)),
                "tap taken by the accessibility button",
            );
            return;
        }
        if self.popup.is_some() && !matches!(action, Some(Action::PopupButton(_))) {
            self.log("tap_blocked", Some((x, y)), "popup");
            return;
        }
        self.log("tap", Some((x, y)), format!("{action:?}"));
        match action {
            Some(Action::OpenChat(name)) => self.open_chat(&name),
            Some(Action::Back) => self.back(),
            Some(Action::FocusInput) => self.input_focused = true,
            Some(Action::Send) => self.send(),
            Some(Action::PopupButton(i)) => {
                if let Some(p) = self.popup.take() {
                    let label = p.buttons.get(i).cloned().unwrap_or_default();
                    self.log("popup_dismissed", Some((x, y)), label);
                }
            }
            Some(Action::Launch) => self.bring_to_front(),
            Some(Action::Absorb | Action::AccessibilityButton) | None => {}
        }
    }

    fn back(&mut self) {
        match self.screen.clone() {
            Screen::Chat(_) => {
                self.screen = Screen::List;
                self.input_focused = false;
            }
            Screen::List => self.foreground = false,
        }
    }

    fn send(&mut self) {
        let Screen::Chat(name) = self.screen.clone() else {
            return;
        };
        let Some(c) = self.chat_mut(&name) else {
            return;
        };
        if c.draft.is_empty() {
            return;
        }
        let text = std::mem::take(&mut c.draft);
        let ts = self.now;
        let idx = self.ensure_chat(&name, false);
        self.push_message(idx, ts, MsgKind::Text, None, &text, true);
        self.chat_at_bottom = true;
        self.chat_scroll = i32::MAX;
        self.sent.push(SentRecord {
            chat: name.clone(),
            text: text.clone(),
        });
        self.log("send", None, format!("{name}: {text}"));
    }

    pub fn key(&mut self, code: u32) {
        self.log("key", None, code.to_string());
        if code == KEY_HOME {
            self.foreground = false;
            return;
        }
        if !self.foreground {
            return;
        }
        if self.popup.is_some() {
            if code == KEY_BACK {
                self.popup = None;
                self.log("popup_dismissed", None, "back");
            }
            return;
        }
        match code {
            KEY_BACK if self.input_focused => self.input_focused = false,
            KEY_BACK => self.back(),
            KEY_ENTER => self.type_text("\n", "enter"),
            KEY_DEL => {
                if let Some(c) = self.focused_chat_mut() {
                    c.draft.pop();
                }
            }
            KEY_PASTE => {
                let clip = self.clipboard.clone();
                self.type_text(&clip, "paste");
            }
            _ => {}
        }
    }

    fn focused_chat_mut(&mut self) -> Option<&mut Chat> {
        if !self.input_focused || !self.foreground || self.popup.is_some() {
            return None;
        }
        let Screen::Chat(name) = self.screen.clone() else {
            return None;
        };
        self.chat_mut(&name)
    }

    /// Text from an IME (or `input text`): lands in the input box only while it has focus.
    pub fn type_text(&mut self, text: &str, via: &str) {
        match self.focused_chat_mut() {
            Some(c) => {
                c.draft.push_str(text);
                self.log("text", None, format!("{via}: {text}"));
            }
            None => self.log("text_dropped", None, format!("{via}: {text}")),
        }
    }

    pub fn set_unread(&mut self, chat: &str, n: u32) {
        if let Some(c) = self.chat_mut(chat) {
            c.unread = n;
        }
    }

    pub fn set_draft(&mut self, chat: &str, text: &str) {
        if let Some(c) = self.chat_mut(chat) {
            c.draft = text.to_string();
        }
    }

    pub fn scroll_list(&mut self, dy: i32, max: i32) {
        self.list_scroll = (self.list_scroll + dy).clamp(0, max.max(0));
    }

    pub fn scroll_chat(&mut self, dy: i32, max: i32) {
        let cur = self.chat_scroll.min(max.max(0));
        self.chat_scroll = (cur + dy).clamp(0, max.max(0));
        self.chat_at_bottom = self.chat_scroll >= max;
    }

    /// Settles the chat scroll against the current content height (called before layout).
    pub fn settle_chat_scroll(&mut self, max: i32) {
        if self.chat_at_bottom {
            self.chat_scroll = max.max(0);
        } else {
            self.chat_scroll = self.chat_scroll.clamp(0, max.max(0));
        }
    }

    pub fn take_effects(&mut self) -> Vec<SystemEffect> {
        std::mem::take(&mut self.effects)
    }
}
